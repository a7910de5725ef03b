"""PKCE (RFC 7636) and the random state/nonce helpers."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oid4vci.errors import ValidationError
from oid4vci.jose import b64url_decode, b64url_encode
from oid4vci.pkce import (
    UNRESERVED_CHARACTERS,
    code_challenge,
    generate_code_verifier,
    generate_nonce,
    generate_state,
    verify_code_challenge,
)

_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def test_rfc7636_appendix_b(vectors: dict[str, Any]) -> None:
    vec = vectors["rfc7636_appendix_b"]
    verifier = b64url_encode(bytes(vec["verifier_octets"]))
    assert verifier == vec["code_verifier"]
    assert list(hashlib.sha256(verifier.encode("ascii")).digest()) == vec["sha256_octets"]
    assert code_challenge(verifier) == vec["code_challenge"]
    assert code_challenge(verifier, "S256") == vec["code_challenge"]
    assert verify_code_challenge(verifier, vec["code_challenge"])
    assert verify_code_challenge(verifier, vec["code_challenge"], "S256")


def test_verify_rejects_wrong_verifier_and_wrong_challenge(vectors: dict[str, Any]) -> None:
    vec = vectors["rfc7636_appendix_b"]
    other = generate_code_verifier()
    assert not verify_code_challenge(other, vec["code_challenge"])
    assert not verify_code_challenge(vec["code_verifier"], vec["code_challenge"][:-1] + "A")
    assert not verify_code_challenge(vec["code_verifier"], "")
    assert not verify_code_challenge(vec["code_verifier"], "é" * 43)


def test_plain_method_is_refused_and_never_verifies(vectors: dict[str, Any]) -> None:
    verifier = vectors["rfc7636_appendix_b"]["code_verifier"]
    with pytest.raises(ValidationError, match="S256"):
        code_challenge(verifier, "plain")
    with pytest.raises(ValidationError):
        code_challenge(verifier, "s256")
    with pytest.raises(ValidationError):
        code_challenge(verifier, "S512")
    # With plain the challenge equals the verifier: that must still be refused.
    assert not verify_code_challenge(verifier, verifier, "plain")
    assert not verify_code_challenge(verifier, code_challenge(verifier), "plain")
    assert not verify_code_challenge(verifier, code_challenge(verifier), "unknown")


@pytest.mark.parametrize(
    "verifier",
    [
        "a" * 42,  # too short
        "a" * 129,  # too long
        "a" * 42 + " ",  # space is not unreserved
        "a" * 42 + "+",
        "a" * 42 + "/",
        "a" * 42 + "=",
        "a" * 42 + "é",
        "a" * 43 + "\n",
        "",
    ],
)
def test_invalid_verifier_is_refused(verifier: str) -> None:
    with pytest.raises(ValidationError) as info:
        code_challenge(verifier)
    assert verifier.strip() == "" or verifier not in str(info.value)
    challenge = b64url_encode(hashlib.sha256(verifier.encode()).digest())
    assert not verify_code_challenge(verifier, challenge)


def test_boundary_lengths_are_accepted() -> None:
    for verifier in ("A" * 43, "~" * 128, UNRESERVED_CHARACTERS[:43]):
        assert verify_code_challenge(verifier, code_challenge(verifier))


def test_generate_code_verifier() -> None:
    verifier = generate_code_verifier()
    assert len(verifier) == 64
    assert _VERIFIER.fullmatch(verifier)
    assert len(generate_code_verifier(43)) == 43
    assert len(generate_code_verifier(128)) == 128
    assert generate_code_verifier() != generate_code_verifier()
    for bad in (42, 129, 0, -1):
        with pytest.raises(ValidationError):
            generate_code_verifier(bad)
    with pytest.raises(ValidationError):
        generate_code_verifier(True)


def test_generate_code_verifier_uses_whole_alphabet() -> None:
    seen = set("".join(generate_code_verifier(128) for _ in range(40)))
    assert seen <= set(UNRESERVED_CHARACTERS)
    # 5120 draws from 66 symbols: every one should show up (failure odds are negligible).
    assert len(seen) > 60


def test_state_and_nonce_are_random_base64url_with_enough_entropy() -> None:
    for make in (generate_state, generate_nonce):
        first, second = make(), make()
        assert first != second
        assert _B64URL.fullmatch(first)
        assert len(b64url_decode(first)) >= 16  # >= 128 bits


@given(st.text(alphabet=UNRESERVED_CHARACTERS, min_size=43, max_size=128))
def test_code_challenge_is_always_43_base64url_chars(verifier: str) -> None:
    challenge = code_challenge(verifier)
    assert len(challenge) == 43
    assert _B64URL.fullmatch(challenge)
    assert b64url_decode(challenge) == hashlib.sha256(verifier.encode()).digest()
    assert verify_code_challenge(verifier, challenge)
