"""Property tests for SD-JWT: random claim trees with random ``sd`` marks round-trip."""

from __future__ import annotations

import functools
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oid4vci.jose import LocalSigner, generate_signer
from oid4vci.sdjwt import (
    RESERVED_CLAIMS,
    SdJwtVerificationError,
    SelectivelyDisclosable,
    issue_sd_jwt_vc,
    parse_sd_jwt,
    sd,
    verify_sd_jwt_vc,
)
from tests.conftest import FakeClock

VCT = "urn:example:vct"
NOW = 1_750_000_000

_NAMES = st.text(st.characters(codec="utf-8"), min_size=1, max_size=6).filter(
    lambda n: n not in ("_sd", "...")
)
_TOP_NAMES = _NAMES.filter(lambda n: n not in RESERVED_CLAIMS)
_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8"), max_size=8)
)


def _maybe_sd(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return values | values.map(sd)


_TREES = st.recursive(
    _LEAVES,
    lambda children: (
        st.lists(_maybe_sd(children), max_size=4)
        | st.dictionaries(_NAMES, _maybe_sd(children), max_size=4)
    ),
    max_leaves=12,
)
_CLAIMS = st.dictionaries(_TOP_NAMES, _maybe_sd(_TREES), max_size=5)


def unwrap(value: Any) -> Any:
    """The claims a verifier should see: every ``sd`` marker removed."""
    if isinstance(value, SelectivelyDisclosable):
        return unwrap(value.value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def _count_marks(value: Any) -> int:
    if isinstance(value, SelectivelyDisclosable):
        return 1 + _count_marks(value.value)
    if isinstance(value, dict):
        return sum(_count_marks(v) for v in value.values())
    if isinstance(value, list):
        return sum(_count_marks(v) for v in value)
    return 0


_SIGNER = generate_signer()


@pytest.fixture
def anyio_backend() -> str:
    """Hypothesis drives many examples; one event loop kind is enough here."""
    return "asyncio"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claims=_CLAIMS, decoys=st.integers(min_value=0, max_value=2))
async def test_issue_verify_round_trip(claims: dict[str, Any], decoys: int) -> None:
    signer: LocalSigner = _SIGNER
    text = await issue_sd_jwt_vc(
        signer, vct=VCT, claims=claims, holder_jwk=None, issuer=None, iat=NOW, decoys=decoys
    )
    verified = verify_sd_jwt_vc(
        text, issuer_keys=[signer.public_jwk], expected_vct=VCT, clock=lambda: float(NOW)
    )
    assert verified.claims == {**unwrap(claims), "iat": NOW, "vct": VCT}
    assert len(verified.disclosures) == _count_marks(claims)
    assert len({d.salt for d in verified.disclosures}) == len(verified.disclosures)


@settings(max_examples=50, deadline=None)
@given(
    data=st.binary(max_size=64).map(lambda b: b.decode("latin-1"))
    | st.text(st.sampled_from('~.abcXYZ_-=0123{}"[]'), max_size=64)
)
def test_parse_never_raises_unexpected_errors(data: str) -> None:
    try:
        parsed = parse_sd_jwt(data)
    except SdJwtVerificationError as exc:
        assert exc.reason
    else:
        assert parsed.jws.header


@settings(max_examples=30, deadline=None)
@given(cut=st.integers(min_value=1, max_value=400), char=st.sampled_from("A_-~.x"))
def test_mutated_credentials_fail_cleanly(cut: int, char: str) -> None:
    text = _fixed_text()
    index = cut % len(text)
    mutated = text[:index] + char + text[index + 1 :]
    try:
        verified = verify_sd_jwt_vc(mutated, issuer_keys=[_SIGNER.public_jwk], clock=FakeClock())
    except SdJwtVerificationError as exc:
        assert exc.reason
    else:
        # only a mutation that changed nothing observable may verify (e.g. a no-op replacement)
        assert verified.claims["name"] == "Ana"


@functools.cache
def _fixed_text() -> str:
    async def make() -> str:
        return await issue_sd_jwt_vc(
            _SIGNER,
            vct=VCT,
            claims={"name": sd("Ana"), "list": [sd(1), 2]},
            holder_jwk=None,
            issuer=None,
            iat=NOW,
        )

    return anyio.run(make)
