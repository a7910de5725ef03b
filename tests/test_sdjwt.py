"""SD-JWT (RFC 9901) and SD-JWT VC: known-answer vectors, round trips, every failure reason."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from oid4vci.errors import CredentialVerificationError, JoseError, ValidationError
from oid4vci.jose import (
    LocalSigner,
    b64url_decode,
    b64url_encode,
    create_jws,
    generate_signer,
    jwk_thumbprint,
)
from oid4vci.sdjwt import (
    RESERVED_CLAIMS,
    SdJwtOptions,
    SdJwtReason,
    SdJwtVerificationError,
    SelectivelyDisclosable,
    disclosure_digest,
    issue_batch,
    issue_sd_jwt_vc,
    make_disclosure,
    parse_sd_jwt,
    sd,
    verify_sd_jwt,
    verify_sd_jwt_vc,
)
from tests.conftest import FakeClock

VCT = "https://credentials.example.com/identity_credential"
ISSUER = "https://issuer.example"

RFC_ADDRESS = {
    "street_address": "123 Main St",
    "locality": "Anytown",
    "region": "Anystate",
    "country": "US",
}

RFC9901_DIGESTS = {
    "given_name": "jsu9yVulwQQlhFlM_3JlzMaSFzglhQG0DpfayQwLUK4",
    "family_name": "TGf4oLbgwd5JQaHyKVQZU9UdGE0w5rtDsrZzfUaomLo",
    "email": "JzYjH4svliH0R3PyEMfeZu6Jt69u5qehZo7F7EPYlSE",
    "phone_number": "PorFbpKuVu6xymJagvkFsFXAbRoc2JGlAUA2BA4o7cI",
    "phone_number_verified": "XQ_3kPKt1XyX7KANkqVR6yZ2Va5NrPIvPYbyMvRKBMM",
    "address": "XzFrzwscM6Gn6CJDc6vVK8BkMnfG8vOSKfpPIZdAfdE",
    "birthdate": "gbOsI4Edq2x2Kw-w5wPEzakob9hV1cRD0ATN3oQL9JM",
    "updated_at": "CrQe7S5kqBAHt-nMYXgc6bdt2SH5aTY1sU_M-PgkjPI",
    "US": "pFndjkZ_VCzmyTa6UjlZo3dh-ko8aIKQc9DlGzhaVYo",
    "DE": "7Cf6JkPudry3lcbwHgeZ8khAv1U1OSlerP0VkBJrWZ0",
}

SDJWTVC_DIGESTS = {
    "given_name": "jsu9yVulwQQlhFlM_3JlzMaSFzglhQG0DpfayQwLUK4",
    "family_name": "TGf4oLbgwd5JQaHyKVQZU9UdGE0w5rtDsrZzfUaomLo",
    "email": "JzYjH4svliH0R3PyEMfeZu6Jt69u5qehZo7F7EPYlSE",
    "phone_number": "PorFbpKuVu6xymJagvkFsFXAbRoc2JGlAUA2BA4o7cI",
    "address": "IlDzIKeiZdDwpqpK6ZfbyphFvz5FgnWa-sN6wqQXCiw",
    "birthdate": "jdrTE8YcbY4EifugihiAe_BPekxJQZICeiUQwY9QqxI",
    "is_over_18": "09vKrJMOlyTWM0sjpu_pdOBVBQ2M1y3KhpH515nXkpY",
    "is_over_21": "2rsjGbaC0ky8mT0pJrPioWTq0_daw1sX76poUlgCwbI",
    "is_over_65": "EkO8dhW0dHEJbvUHlE_VCeuC9uRELOieLZhh7XbUTtA",
}


def _b64json(data: bytes) -> Any:
    return json.loads(base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4)))


def _raw_disclosure(array: list[Any]) -> tuple[str, str]:
    """A disclosure built by hand (bypasses make_disclosure's own checks)."""
    text = b64url_encode(json.dumps(array).encode())
    return text, disclosure_digest(text)


async def _forge(
    signer: LocalSigner,
    payload: Mapping[str, Any],
    disclosures: Sequence[str] = (),
    *,
    header: Mapping[str, Any] | None = None,
) -> str:
    jwt = await create_jws(signer, payload, header if header is not None else {"typ": "dc+sd-jwt"})
    return "~".join([jwt, *disclosures, ""])


def _expect(reason: str, text: str, **kwargs: Any) -> SdJwtVerificationError:
    with pytest.raises(CredentialVerificationError) as info:
        verify_sd_jwt_vc(text, **kwargs)
    assert isinstance(info.value, SdJwtVerificationError)
    assert info.value.reason == reason, str(info.value)
    return info.value


# ---------------------------------------------------------------------------- inline vectors


def test_inline_object_disclosure(vectors: dict[str, Any]) -> None:
    vec = vectors["sdjwt_inline"]["object_disclosure"]
    assert disclosure_digest(vec["disclosure"]) == vec["digest"]
    assert _b64json(vec["disclosure"].encode()) == vec["array"]


def test_inline_array_element_disclosure(vectors: dict[str, Any]) -> None:
    vec = vectors["sdjwt_inline"]["array_element_disclosure"]
    assert disclosure_digest(vec["disclosure"]) == vec["digest"]
    assert _b64json(vec["disclosure"].encode()) == vec["array"]


def test_same_claim_different_digests(vectors: dict[str, Any]) -> None:
    base = vectors["sdjwt_inline"]["object_disclosure"]
    variants = vectors["sdjwt_inline"]["object_disclosure_variants_same_claim_different_digest"]
    assert len(variants) == 3
    digests = {base["digest"]}
    for variant in variants:
        assert disclosure_digest(variant["disclosure"]) == variant["digest"]
        assert _b64json(variant["disclosure"].encode()) == base["array"]
        digests.add(variant["digest"])
    assert len(digests) == 4  # no canonicalization: the string is what is hashed


def test_recursive_array_elements_compact(vectors: dict[str, Any]) -> None:
    for vec in vectors["sdjwt_inline"]["recursive_array_elements_compact_json"]:
        salt, value = vec["array"]
        disclosure, digest = make_disclosure(salt, None, value)
        assert b64url_decode(disclosure) == json.dumps(vec["array"], separators=(",", ":")).encode()
        assert digest == vec["digest"]
        assert disclosure_digest(disclosure) == vec["digest"]


def test_make_disclosure_is_compact_utf8() -> None:
    disclosure, digest = make_disclosure("_26bc4LT-ac6q2KI6cBW5es", "family_name", "Möbius")
    assert (
        b64url_decode(disclosure) == '["_26bc4LT-ac6q2KI6cBW5es","family_name","Möbius"]'.encode()
    )
    assert digest == disclosure_digest(disclosure)
    with pytest.raises(ValidationError):
        make_disclosure("salt", "_sd", 1)
    with pytest.raises(ValidationError):
        make_disclosure("salt", "x", float("nan"))


def test_disclosure_digest_hash_algorithms() -> None:
    text = "WyJsa2x4RjVqTVlsR1RQVW92TU5JdkNBIiwgIkZSIl0"
    lengths = {
        alg: len(b64url_decode(disclosure_digest(text, alg))) for alg in ("sha-384", "sha-512")
    }
    assert lengths == {"sha-384": 48, "sha-512": 64}
    with pytest.raises(ValidationError):
        disclosure_digest(text, "md5")
    with pytest.raises(ValidationError):
        disclosure_digest("Möbius")


# ---------------------------------------------------------------------------- spec examples


def test_rfc9901_issuance(vectors: dict[str, Any], clock: FakeClock) -> None:
    text = vectors["sdjwt_rfc9901_section5"]["issuance"]
    holder = vectors["sdjwt_example_holder_key"]
    parsed = parse_sd_jwt(text)
    assert parsed.key_binding_jwt is None
    assert parsed.hash_alg == "sha-256"
    by_label = {d.name if d.name is not None else d.value: d.digest for d in parsed.disclosures}
    assert by_label == RFC9901_DIGESTS
    verified = verify_sd_jwt(
        text,
        issuer_keys=[vectors["sdjwt_example_issuer_key"]],
        expected_typ=("example+sd-jwt",),
        clock=clock,
    )
    assert verified.claims == {
        "iss": "https://issuer.example.com",
        "iat": 1683000000,
        "exp": 1883000000,
        "sub": "user_42",
        "nationalities": ["US", "DE"],
        "cnf": {"jwk": holder},
        "given_name": "John",
        "family_name": "Doe",
        "email": "johndoe@example.com",
        "phone_number": "+1-202-555-0101",
        "phone_number_verified": True,
        "address": RFC_ADDRESS,
        "birthdate": "1940-01-01",
        "updated_at": 1570000000,
    }
    assert "_sd" in verified.payload and "_sd" not in verified.claims
    assert verified.holder_jwk == holder
    assert verified.header["typ"] == "example+sd-jwt"


def test_rfc9901_issuance_is_not_an_sd_jwt_vc(vectors: dict[str, Any], clock: FakeClock) -> None:
    text = vectors["sdjwt_rfc9901_section5"]["issuance"]
    key = vectors["sdjwt_example_issuer_key"]
    _expect(SdJwtReason.TYP, text, issuer_keys=[key], clock=clock)
    _expect(
        SdJwtReason.VCT_MISSING,
        text,
        issuer_keys=[key],
        expected_typ=("example+sd-jwt",),
        clock=clock,
    )


def test_rfc9901_presentation_with_kb(vectors: dict[str, Any], clock: FakeClock) -> None:
    vec = vectors["sdjwt_rfc9901_section5"]
    key = vectors["sdjwt_example_issuer_key"]
    with pytest.raises(SdJwtVerificationError) as info:
        verify_sd_jwt(vec["presentation_sd_jwt_kb"], issuer_keys=[key], clock=clock)
    assert info.value.reason == SdJwtReason.KEY_BINDING
    # The KB-JWT's iat must be within kb_max_age (RFC 9901 §7.3 step 5): verified when it
    # was presented, refused as too old at the test clock's time.
    kb_iat = _b64json(vec["presentation_sd_jwt_kb"].rsplit("~", 1)[1].split(".")[1].encode())["iat"]
    presented = FakeClock(kb_iat + 60)
    arguments: dict[str, Any] = {
        "issuer_keys": [key],
        "expected_typ": ("example+sd-jwt",),
        "allow_key_binding": True,
        "kb_nonce": "1234567890",
        "kb_audience": "https://verifier.example.org",
    }
    assert clock.now > kb_iat + 300 + 60
    with pytest.raises(SdJwtVerificationError, match="too old") as info:
        verify_sd_jwt(vec["presentation_sd_jwt_kb"], clock=clock, **arguments)
    assert info.value.reason == SdJwtReason.KEY_BINDING_INVALID
    assert verify_sd_jwt(
        vec["presentation_sd_jwt_kb"], clock=clock, kb_max_age=clock.now - kb_iat, **arguments
    ).key_binding
    verified = verify_sd_jwt(vec["presentation_sd_jwt_kb"], clock=presented, **arguments)
    assert verified.key_binding is not None
    assert verified.key_binding["sd_hash"] == vec["kb_sd_hash"]
    assert verified.claims["nationalities"] == ["US"]  # the withheld "DE" placeholder is gone
    assert "email" not in verified.claims
    assert verified.claims["address"] == RFC_ADDRESS
    with pytest.raises(SdJwtVerificationError) as info:
        verify_sd_jwt(
            vec["presentation_sd_jwt_kb"],
            issuer_keys=[key],
            allow_key_binding=True,
            kb_nonce="other",
            clock=presented,
        )
    assert info.value.reason == SdJwtReason.KEY_BINDING_INVALID
    # a nonce the encoder cannot turn into UTF-8 (a lone surrogate) does not match either
    with pytest.raises(SdJwtVerificationError, match="nonce") as info:
        verify_sd_jwt(
            vec["presentation_sd_jwt_kb"], clock=presented, **{**arguments, "kb_nonce": "\ud800"}
        )
    assert info.value.reason == SdJwtReason.KEY_BINDING_INVALID


def test_sdjwtvc_example(vectors: dict[str, Any], clock: FakeClock) -> None:
    text = vectors["sdjwtvc_example"]["issuance"]
    verified = verify_sd_jwt_vc(
        text,
        issuer_keys=[vectors["sdjwt_example_issuer_key"]],
        expected_vct=VCT,
        expected_issuer="https://example.com/issuer",
        expected_cnf_jwk=vectors["sdjwt_example_holder_key"],
        clock=clock,
    )
    assert verified.vct == VCT
    assert verified.header["kid"] == "doc-signer-05-25-2022"
    assert verified.holder_jwk is not None
    assert jwk_thumbprint(verified.holder_jwk) == vectors["sdjwt_example_holder_key_thumbprint"]
    assert {d.name: d.digest for d in verified.disclosures} == SDJWTVC_DIGESTS
    assert verified.claims == {
        "iss": "https://example.com/issuer",
        "iat": 1683000000,
        "exp": 1883000000,
        "vct": VCT,
        "cnf": {"jwk": vectors["sdjwt_example_holder_key"]},
        "given_name": "John",
        "family_name": "Doe",
        "email": "johndoe@example.com",
        "phone_number": "+1-202-555-0101",
        "address": RFC_ADDRESS,
        "birthdate": "1940-01-01",
        "is_over_18": True,
        "is_over_21": True,
        "is_over_65": True,
    }
    assert verified.raw == text


@pytest.mark.parametrize(
    ("name", "typ"),
    [
        ("sd_jwt_vc_credential_v1_0_and_draft15", "dc+sd-jwt"),
        ("sd_jwt_vc_credential_draft14_vc_sd_jwt", "vc+sd-jwt"),
    ],
)
def test_oid4vci_example_credentials(
    vectors: dict[str, Any], clock: FakeClock, name: str, typ: str
) -> None:
    text = vectors["oid4vci"][name]
    verified = verify_sd_jwt_vc(
        text, issuer_keys=[vectors["sdjwt_example_issuer_key"]], expected_vct=VCT, clock=clock
    )
    assert verified.header["typ"] == typ
    assert len(verified.disclosures) == 9
    assert verified.claims["given_name"] == "John"
    _expect(
        SdJwtReason.TYP,
        text,
        issuer_keys=[vectors["sdjwt_example_issuer_key"]],
        expected_typ=("dc+sd-jwt",) if typ == "vc+sd-jwt" else ("vc+sd-jwt",),
        clock=clock,
    )


def test_sdjwtvc_presentations(vectors: dict[str, Any], clock: FakeClock) -> None:
    vec = vectors["sdjwtvc_example"]
    key = vectors["sdjwt_example_issuer_key"]
    clock.now = 1_787_325_900.0  # just after the KB-JWT's iat (1787325881)
    bare = verify_sd_jwt_vc(vec["presentation_no_kb"], issuer_keys=[key], clock=clock)
    assert bare.holder_jwk is None
    assert set(bare.claims) == {"iss", "iat", "exp", "vct", "is_over_65", "address"}
    _expect(SdJwtReason.KEY_BINDING, vec["presentation_sd_jwt_kb"], issuer_keys=[key], clock=clock)
    with_kb = verify_sd_jwt_vc(
        vec["presentation_sd_jwt_kb"],
        issuer_keys=[key],
        allow_key_binding=True,
        kb_audience="https://example.com/verifier",
        clock=clock,
    )
    assert with_kb.key_binding is not None
    assert with_kb.key_binding["sd_hash"] == vec["kb_sd_hash"]


def test_issuer_key_selection_by_kid(vectors: dict[str, Any], clock: FakeClock) -> None:
    text = vectors["sdjwtvc_example"]["issuance"]
    right = {**vectors["sdjwt_example_issuer_key"], "kid": "doc-signer-05-25-2022"}
    wrong = {**generate_signer().public_jwk, "kid": "other"}
    assert verify_sd_jwt_vc(text, issuer_keys=[wrong, right], clock=clock).vct == VCT
    _expect(SdJwtReason.UNKNOWN_KEY, text, issuer_keys=[wrong], clock=clock)
    unkeyed = generate_signer().public_jwk
    _expect(SdJwtReason.SIGNATURE, text, issuer_keys=[unkeyed], clock=clock)


# ---------------------------------------------------------------------------- parsing


def test_parse_refuses_malformed_input(vectors: dict[str, Any]) -> None:
    issuance: str = vectors["sdjwtvc_example"]["issuance"]
    jwt = issuance.split("~")[0]

    def bad_disclosure(raw: bytes) -> str:
        return jwt + "~" + b64url_encode(raw) + "~"

    bad = [
        jwt,  # no "~"
        "not-a-jwt~",
        jwt + "~~",  # empty disclosure
        jwt + "~!!!~",  # not base64url
        bad_disclosure(b"{}"),  # not an array
        bad_disclosure(b"[1, 2]"),  # salt not a string
        bad_disclosure(b'["s", 1, 2]'),  # name not a string
        bad_disclosure(b'["s"]'),  # too short
        bad_disclosure(b'["s", NaN]'),  # not standard JSON
        bad_disclosure(bytes([0xFF, 0xFE])),  # not UTF-8
        issuance + "not.a.kbjwt",
        issuance + "nope",
    ]
    for text in bad:
        with pytest.raises(SdJwtVerificationError) as info:
            parse_sd_jwt(text)
        assert info.value.reason == SdJwtReason.MALFORMED, text
    with pytest.raises(SdJwtVerificationError):
        parse_sd_jwt(123)  # type: ignore[arg-type]


def test_parse_keeps_disclosures_verbatim(vectors: dict[str, Any]) -> None:
    text = vectors["sdjwtvc_example"]["issuance"]
    parsed = parse_sd_jwt(text)
    assert [d.raw for d in parsed.disclosures] == text.split("~")[1:-1]
    assert parsed.issuer_jwt == text.split("~")[0]
    given = next(d for d in parsed.disclosures if d.name == "given_name")
    assert (given.salt, given.value) == ("2GLC42sKQveCfGfryNRN9w", "John")


# ---------------------------------------------------------------------------- round trips


async def _issue(signer: LocalSigner, claims: Mapping[str, Any], **kwargs: Any) -> str:
    kwargs.setdefault("holder_jwk", None)
    kwargs.setdefault("issuer", ISSUER)
    return await issue_sd_jwt_vc(signer, vct=VCT, claims=claims, **kwargs)


async def test_round_trip_top_level(clock: FakeClock) -> None:
    signer = generate_signer()
    holder = generate_signer().public_jwk
    text = await _issue(
        signer,
        {"given_name": sd("Erika"), "family_name": sd("Mustermann"), "sub": "u1"},
        holder_jwk=holder,
        exp=int(clock.now) + 3600,
        nbf=int(clock.now) - 10,
        status={"status_list": {"idx": 3, "uri": "https://issuer.example/status/1"}},
        clock=clock,
    )
    assert text.endswith("~") and text.count("~") == 3
    verified = verify_sd_jwt_vc(
        text,
        issuer_keys=[signer.public_jwk],
        expected_vct=VCT,
        expected_issuer=ISSUER,
        expected_cnf_jwk=holder,
        clock=clock,
    )
    assert verified.claims == {
        "given_name": "Erika",
        "family_name": "Mustermann",
        "sub": "u1",
        "iss": ISSUER,
        "iat": int(clock.now),
        "exp": int(clock.now) + 3600,
        "nbf": int(clock.now) - 10,
        "vct": VCT,
        "status": {"status_list": {"idx": 3, "uri": "https://issuer.example/status/1"}},
        "cnf": {"jwk": holder},
    }
    payload = verified.payload
    assert payload["_sd_alg"] == "sha-256"
    assert payload["_sd"] == sorted(payload["_sd"]) and len(payload["_sd"]) == 2
    assert "given_name" not in payload and payload["sub"] == "u1"
    assert verified.header == {"typ": "dc+sd-jwt", "alg": "ES256"}
    for disclosure in verified.disclosures:
        assert len(b64url_decode(disclosure.salt)) >= 16
        assert b", " not in b64url_decode(disclosure.raw)


async def test_round_trip_nested_arrays_and_recursive(clock: FakeClock) -> None:
    signer = generate_signer()
    claims = {
        "address": {"street": sd("Main St 1"), "country": "DE"},
        "nationalities": [sd("DE"), "FR", sd({"code": sd("UK")})],
        "degree": sd({"type": sd("BSc"), "name": sd("Physics"), "year": 2020}),
        "empty": sd({}),
        "list_in_sd": sd([sd(1), 2, [sd(None)]]),
    }
    text = await _issue(signer, claims, clock=clock)
    verified = verify_sd_jwt_vc(text, issuer_keys=[signer.public_jwk], clock=clock)
    expected = {
        "address": {"street": "Main St 1", "country": "DE"},
        "nationalities": ["DE", "FR", {"code": "UK"}],
        "degree": {"type": "BSc", "name": "Physics", "year": 2020},
        "empty": {},
        "list_in_sd": [1, 2, [None]],
    }
    assert {k: verified.claims[k] for k in expected} == expected
    payload = verified.payload
    assert payload["address"]["country"] == "DE" and len(payload["address"]["_sd"]) == 1
    assert payload["nationalities"][1] == "FR"
    assert set(payload["nationalities"][0]) == {"..."}
    assert set(payload) >= {"_sd", "address", "nationalities"} and "degree" not in payload
    assert len(verified.disclosures) == 11
    degree = next(d for d in verified.disclosures if d.name == "degree")
    assert degree.value["year"] == 2020 and len(degree.value["_sd"]) == 2


async def test_withheld_disclosures_are_dropped(clock: FakeClock) -> None:
    signer = generate_signer()
    text = await _issue(
        signer, {"a": sd(1), "b": sd(2), "arr": [sd("x"), "y", sd("z")]}, clock=clock
    )
    parts = text.split("~")
    jwt, disclosures = parts[0], parts[1:-1]
    keep = [d for d in disclosures if _b64json(d.encode())[-1] in (1, "z")]
    assert len(keep) == 2
    verified = verify_sd_jwt_vc(
        "~".join([jwt, *keep, ""]), issuer_keys=[signer.public_jwk], clock=clock
    )
    assert verified.claims["a"] == 1 and "b" not in verified.claims
    assert verified.claims["arr"] == ["y", "z"]


async def test_decoys_present_and_ignored(clock: FakeClock) -> None:
    signer = generate_signer()
    text = await _issue(
        signer, {"a": sd(1), "nested": {"b": sd(2)}, "plain": {"c": 3}}, decoys=3, clock=clock
    )
    verified = verify_sd_jwt_vc(text, issuer_keys=[signer.public_jwk], clock=clock)
    assert len(verified.payload["_sd"]) == 4
    assert len(verified.payload["nested"]["_sd"]) == 3 + 1
    assert "_sd" not in verified.payload["plain"]
    assert len(verified.disclosures) == 2
    assert verified.claims["a"] == 1 and verified.claims["nested"] == {"b": 2}
    no_sd = await _issue(signer, {"plain": 1}, decoys=2, clock=clock)
    assert (
        len(verify_sd_jwt_vc(no_sd, issuer_keys=[signer.public_jwk], clock=clock).payload["_sd"])
        == 2
    )


async def test_max_decoys_draws_a_count_per_sd_array(clock: FakeClock) -> None:
    signer = generate_signer()
    claims = {"a": sd(1), "nested": {"b": sd(2)}}
    top: set[int] = set()
    pairs: set[tuple[int, int]] = set()
    for _ in range(30):
        text = await _issue(signer, claims, decoys=1, max_decoys=5, clock=clock)
        verified = verify_sd_jwt_vc(text, issuer_keys=[signer.public_jwk], clock=clock)
        assert verified.claims["a"] == 1 and verified.claims["nested"] == {"b": 2}
        outer, inner = len(verified.payload["_sd"]) - 1, len(verified.payload["nested"]["_sd"]) - 1
        assert 1 <= outer <= 5 and 1 <= inner <= 5
        assert verified.payload["_sd"] == sorted(verified.payload["_sd"])
        top.add(outer)
        pairs.add((outer, inner))
    assert len(top) > 1
    assert any(outer != inner for outer, inner in pairs), "one draw per array, not per credential"
    for bad in (0, 1001, True):
        with pytest.raises(ValidationError, match="max_decoys"):
            await _issue(signer, claims, decoys=1, max_decoys=bad, clock=clock)


@pytest.mark.parametrize(
    ("alg", "hash_alg"), [("EdDSA", "sha-256"), ("ES384", "sha-384"), ("ES512", "sha-512")]
)
async def test_round_trip_other_algorithms(clock: FakeClock, alg: str, hash_alg: str) -> None:
    signer = generate_signer(alg)
    text = await _issue(signer, {"name": sd("Ana")}, hash_alg=hash_alg, clock=clock)
    verified = verify_sd_jwt_vc(text, issuer_keys=[signer.public_jwk], clock=clock)
    assert verified.header["alg"] == alg
    assert verified.payload["_sd_alg"] == hash_alg
    assert verified.disclosures[0].digest == disclosure_digest(
        verified.disclosures[0].raw, hash_alg
    )
    assert verified.claims["name"] == "Ana"


async def test_kid_and_x5c_headers(clock: FakeClock) -> None:
    signer = generate_signer(kid="key-1")
    with_kid = await _issue(signer, {"a": sd(1)}, kid="key-1", typ="vc+sd-jwt", clock=clock)
    verified = verify_sd_jwt_vc(with_kid, issuer_keys=[signer.public_jwk], clock=clock)
    assert verified.header == {"typ": "vc+sd-jwt", "kid": "key-1", "alg": "ES256"}
    chain = ["MIIBdGVzdA==", "MIICdGVzdA=="]
    with_x5c = await _issue(signer, {"a": sd(1)}, x5c=chain, clock=clock)
    verified = verify_sd_jwt_vc(with_x5c, issuer_keys=[signer.public_jwk], clock=clock)
    assert verified.header["x5c"] == chain and "kid" not in verified.header
    with pytest.raises(ValidationError):
        await _issue(signer, {"a": 1}, kid="key-1", x5c=chain, clock=clock)


async def test_issue_batch_distinct_keys_and_salts(clock: FakeClock) -> None:
    signer = generate_signer()
    holders = [generate_signer().public_jwk for _ in range(3)]
    texts = await issue_batch(
        signer,
        holder_jwks=holders,
        vct=VCT,
        claims={"given_name": sd("Erika"), "age": sd(40)},
        issuer=ISSUER,
        options=SdJwtOptions(clock=clock),
    )
    assert len(texts) == 3
    results = [
        verify_sd_jwt_vc(t, issuer_keys=[signer.public_jwk], expected_cnf_jwk=h, clock=clock)
        for t, h in zip(texts, holders, strict=True)
    ]
    assert len({jwk_thumbprint(r.holder_jwk or {}) for r in results}) == 3
    salts = [d.salt for r in results for d in r.disclosures]
    assert len(salts) == 6 and len(set(salts)) == 6
    assert all(r.claims["given_name"] == "Erika" and r.claims["age"] == 40 for r in results)
    with pytest.raises(ValidationError):
        await issue_batch(signer, holder_jwks=[], vct=VCT, claims={}, issuer=ISSUER)


# ---------------------------------------------------------------------------- issuance refusals


@pytest.mark.parametrize("name", sorted(RESERVED_CLAIMS))
async def test_reserved_claims_not_disclosable(name: str) -> None:
    signer = generate_signer()
    with pytest.raises(ValidationError):
        await _issue(signer, {name: sd("x")})


async def test_sd_and_ellipsis_refused_at_any_level() -> None:
    signer = generate_signer()
    for claims in ({"a": {"_sd": ["x"]}}, {"a": [{"...": "x"}]}, {"a": sd({"...": sd(1)})}):
        with pytest.raises(ValidationError):
            await _issue(signer, claims)
    # below the top level, ordinary registered names may be disclosable
    text = await _issue(signer, {"a": {"iss": sd("x")}})
    assert "~" in text


async def test_issuance_refuses_bad_input() -> None:
    signer = generate_signer()
    holder = generate_signer()
    with pytest.raises(JoseError):
        await _issue(signer, {}, holder_jwk=holder.private_jwk())
    with pytest.raises(ValidationError):
        await _issue(signer, {"iat": 5})  # set via keyword
    with pytest.raises(ValidationError):
        await _issue(signer, {"a": {1: "x"}})  # non-string member name
    with pytest.raises(ValidationError):
        sd(sd(1))
    with pytest.raises(ValidationError):
        await _issue(signer, {"a": object()})
    with pytest.raises(ValidationError):
        await _issue(signer, {"a": sd(float("inf"))})
    with pytest.raises(ValidationError):
        await _issue(signer, {"a": 1}, hash_alg="md5")
    with pytest.raises(ValidationError):
        await _issue(signer, {"a": 1}, decoys=-1)
    with pytest.raises(ValidationError):
        await issue_sd_jwt_vc(signer, vct="", claims={}, holder_jwk=None, issuer=None)
    assert isinstance(sd(1), SelectivelyDisclosable) and sd(1).value == 1


# ---------------------------------------------------------------------------- failure reasons


async def test_tampered_signature(clock: FakeClock) -> None:
    signer = generate_signer()
    text = await _issue(signer, {"a": sd(1), "role": "user"}, clock=clock)
    header, payload, signature = text.split("~")[0].split(".")
    claims = _b64json(payload.encode())
    claims["role"] = "admin"
    forged = ".".join([header, b64url_encode(json.dumps(claims).encode()), signature])
    rest = text.split("~", 1)[1]
    _expect(SdJwtReason.SIGNATURE, f"{forged}~{rest}", issuer_keys=[signer.public_jwk], clock=clock)
    other = generate_signer().public_jwk
    _expect(SdJwtReason.SIGNATURE, text, issuer_keys=[other], clock=clock)


async def test_alg_not_allowed(clock: FakeClock) -> None:
    signer = generate_signer()
    text = await _issue(signer, {"a": 1}, clock=clock)
    _expect(
        SdJwtReason.ALG, text, issuer_keys=[signer.public_jwk], algorithms=("ES384",), clock=clock
    )
    none_header = b64url_encode(b'{"alg":"none","typ":"dc+sd-jwt"}')
    unsigned = none_header + "." + text.split(".")[1] + ".~"
    _expect(SdJwtReason.ALG, unsigned, issuer_keys=[signer.public_jwk], clock=clock)


async def test_stray_and_duplicated_disclosures(clock: FakeClock) -> None:
    signer = generate_signer()
    text = await _issue(signer, {"a": sd(1)}, clock=clock)
    stray, _ = make_disclosure("c2FsdHNhbHRzYWx0c2FsdA", "extra", "x")
    _expect(
        SdJwtReason.DISCLOSURE_NOT_REFERENCED,
        text + stray + "~",
        issuer_keys=[signer.public_jwk],
        clock=clock,
    )
    first = text.split("~")[1]
    _expect(
        SdJwtReason.DUPLICATE_DISCLOSURE,
        text + first + "~",
        issuer_keys=[signer.public_jwk],
        clock=clock,
    )


async def test_duplicate_digest(clock: FakeClock) -> None:
    signer = generate_signer()
    disclosure, digest = make_disclosure("c2FsdA", "a", 1)
    base: dict[str, Any] = {"vct": VCT, "iat": int(clock.now)}
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({**base, "_sd": [digest, digest]}, [disclosure]),
        ({**base, "_sd": [digest], "nested": {"_sd": [digest]}}, [disclosure]),
        ({**base, "_sd": ["decoy", "decoy"]}, []),
    ]
    for payload, disclosures in cases:
        text = await _forge(signer, payload, disclosures)
        _expect(SdJwtReason.DUPLICATE_DIGEST, text, issuer_keys=[signer.public_jwk], clock=clock)
    element, element_digest = make_disclosure("c2FsdA", None, 1)
    text = await _forge(
        signer, {**base, "arr": [{"...": element_digest}, {"...": element_digest}]}, [element]
    )
    _expect(SdJwtReason.DUPLICATE_DIGEST, text, issuer_keys=[signer.public_jwk], clock=clock)


@pytest.mark.parametrize(
    ("array", "where", "reason"),
    [
        (["salt", "_sd", ["x"]], "_sd", SdJwtReason.RESERVED_NAME),
        (["salt", "...", "x"], "_sd", SdJwtReason.RESERVED_NAME),
        (["salt", "iss", "https://evil.example"], "_sd", SdJwtReason.RESERVED_CLAIM),
        (["salt", "exp", 9999999999], "_sd", SdJwtReason.RESERVED_CLAIM),
        (["salt", "vct", VCT], "_sd", SdJwtReason.RESERVED_CLAIM),
        (["salt", "cnf", {}], "_sd", SdJwtReason.RESERVED_CLAIM),
        (["salt", "plain", "shadow"], "_sd", SdJwtReason.CLAIM_COLLISION),
        (["salt", "value-only"], "_sd", SdJwtReason.DISCLOSURE_SHAPE),
        (["salt", "name", "value"], "array", SdJwtReason.DISCLOSURE_SHAPE),
    ],
)
async def test_bad_disclosures(clock: FakeClock, array: list[Any], where: str, reason: str) -> None:
    signer = generate_signer()
    disclosure, digest = _raw_disclosure(array)
    payload: dict[str, Any] = {"vct": VCT, "iat": int(clock.now), "plain": 1}
    if where == "_sd":
        payload["_sd"] = [digest]
    else:
        payload["arr"] = [{"...": digest}]
    text = await _forge(signer, payload, [disclosure])
    _expect(reason, text, issuer_keys=[signer.public_jwk], clock=clock)


async def test_disclosed_name_collision_between_disclosures(clock: FakeClock) -> None:
    signer = generate_signer()
    one, d1 = make_disclosure("c2FsdDE", "name", "a")
    two, d2 = make_disclosure("c2FsdDI", "name", "b")
    text = await _forge(signer, {"vct": VCT, "_sd": [d1, d2]}, [one, two])
    _expect(SdJwtReason.CLAIM_COLLISION, text, issuer_keys=[signer.public_jwk], clock=clock)


async def test_iat_may_be_disclosed(clock: FakeClock) -> None:
    signer = generate_signer()
    disclosure, digest = make_disclosure("c2FsdA", "iat", int(clock.now))
    text = await _forge(signer, {"vct": VCT, "_sd": [digest]}, [disclosure])
    assert verify_sd_jwt_vc(text, issuer_keys=[signer.public_jwk], clock=clock).claims == {
        "vct": VCT,
        "iat": int(clock.now),
    }


async def test_vct_issuer_and_cnf_mismatch(clock: FakeClock) -> None:
    signer = generate_signer()
    holder = generate_signer().public_jwk
    text = await _issue(signer, {"a": 1}, holder_jwk=holder, clock=clock)
    keys = [signer.public_jwk]
    _expect(SdJwtReason.VCT_MISMATCH, text, issuer_keys=keys, expected_vct="urn:other", clock=clock)
    _expect(
        SdJwtReason.ISSUER_MISMATCH,
        text,
        issuer_keys=keys,
        expected_issuer="https://other.example",
        clock=clock,
    )
    other = generate_signer().public_jwk
    _expect(SdJwtReason.CNF_MISMATCH, text, issuer_keys=keys, expected_cnf_jwk=other, clock=clock)
    unbound = await _issue(signer, {"a": 1}, clock=clock)
    _expect(
        SdJwtReason.CNF_MISMATCH, unbound, issuer_keys=keys, expected_cnf_jwk=holder, clock=clock
    )
    # same key with extra members still matches by thumbprint
    same = {**holder, "kid": "k", "use": "sig"}
    assert verify_sd_jwt_vc(text, issuer_keys=keys, expected_cnf_jwk=same, clock=clock).vct == VCT


async def test_time_claims(clock: FakeClock) -> None:
    signer = generate_signer()
    keys = [signer.public_jwk]
    now = int(clock.now)
    expiring = await _issue(signer, {"a": 1}, exp=now + 100, clock=clock)
    clock.advance(150)
    assert verify_sd_jwt_vc(expiring, issuer_keys=keys, clock=clock).vct == VCT  # leeway
    clock.advance(20)
    _expect(SdJwtReason.EXPIRED, expiring, issuer_keys=keys, clock=clock)
    assert verify_sd_jwt_vc(expiring, issuer_keys=keys, clock=clock, leeway=100).vct == VCT
    future = await _issue(signer, {"a": 1}, nbf=now + 1000, iat=now, clock=clock)
    _expect(SdJwtReason.NOT_YET_VALID, future, issuer_keys=keys, clock=clock)
    issued_later = await _issue(signer, {"a": 1}, iat=now + 1000, clock=clock)
    _expect(SdJwtReason.ISSUED_IN_FUTURE, issued_later, issuer_keys=keys, clock=clock)
    bad_exp = await _forge(signer, {"vct": VCT, "exp": "tomorrow"})
    _expect(SdJwtReason.CLAIM_TYPE, bad_exp, issuer_keys=keys, clock=clock)


def _sign_raw(signer: LocalSigner, payload_json: str) -> str:
    """A compact JWS of ``payload_json`` as written (JSON a strict encoder would refuse)."""
    head = b64url_encode(json.dumps({"alg": signer.alg, "typ": "dc+sd-jwt"}).encode())
    body = b64url_encode(payload_json.encode())
    signature = signer.sign_sync(f"{head}.{body}".encode())
    return f"{head}.{body}.{b64url_encode(signature)}~"


@pytest.mark.parametrize("name", ["exp", "nbf", "iat"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "1" + "0" * 400])
def test_time_claims_must_be_finite_numbers(name: str, value: str, clock: FakeClock) -> None:
    # NaN fails every comparison (an exp of NaN never expires) and a 400-digit integer is
    # beyond any float: both are a claim type error (RFC 7519 §2 NumericDate, RFC 8259 §6).
    signer = generate_signer()
    text = _sign_raw(signer, f'{{"vct": "{VCT}", "{name}": {value}}}')
    error = _expect(SdJwtReason.CLAIM_TYPE, text, issuer_keys=[signer.public_jwk], clock=clock)
    assert name in str(error)


async def test_wrong_typ(clock: FakeClock) -> None:
    signer = generate_signer()
    text = await _issue(signer, {"a": 1}, typ="JWT", clock=clock)
    _expect(SdJwtReason.TYP, text, issuer_keys=[signer.public_jwk], clock=clock)
    missing = await _forge(signer, {"vct": VCT}, header={})
    _expect(SdJwtReason.TYP, missing, issuer_keys=[signer.public_jwk], clock=clock)


async def test_unsupported_sd_alg(clock: FakeClock) -> None:
    signer = generate_signer()
    for alg in ("md5", "SHA-256", 256):
        text = await _forge(signer, {"vct": VCT, "_sd_alg": alg})
        _expect(SdJwtReason.SD_ALG, text, issuer_keys=[signer.public_jwk], clock=clock)


async def test_malformed_disclosure_and_sd(clock: FakeClock) -> None:
    signer = generate_signer()
    text = await _issue(signer, {"a": sd(1)}, clock=clock)
    _expect(SdJwtReason.MALFORMED, text + "%%%~", issuer_keys=[signer.public_jwk], clock=clock)
    not_list = await _forge(signer, {"vct": VCT, "_sd": "abc"})
    _expect(SdJwtReason.MALFORMED, not_list, issuer_keys=[signer.public_jwk], clock=clock)
    not_str = await _forge(signer, {"vct": VCT, "_sd": [1]})
    _expect(SdJwtReason.MALFORMED, not_str, issuer_keys=[signer.public_jwk], clock=clock)


async def test_key_binding_jwt_refused_by_default(clock: FakeClock) -> None:
    signer = generate_signer()
    holder = generate_signer()
    text = await _issue(signer, {"a": sd(1)}, holder_jwk=holder.public_jwk, clock=clock)
    kb = await create_jws(
        holder, {"nonce": "n", "aud": "v", "iat": int(clock.now)}, {"typ": "kb+jwt"}
    )
    _expect(SdJwtReason.KEY_BINDING, text + kb, issuer_keys=[signer.public_jwk], clock=clock)
    # allowed, but the sd_hash is missing
    _expect(
        SdJwtReason.KEY_BINDING_INVALID,
        text + kb,
        issuer_keys=[signer.public_jwk],
        allow_key_binding=True,
        clock=clock,
    )


@pytest.mark.parametrize(
    ("iat", "words"),
    [
        ("NaN", "missing or in future"),  # NaN passes every comparison
        ("1e400", "missing or in future"),
        ("0", "too old"),  # 1970: outside any acceptable window (RFC 9901 §7.3 step 5)
        (-400, "too old"),  # seconds from now: past kb_max_age (300) and the leeway (60)
        (120, "missing or in future"),
    ],
)
async def test_key_binding_iat_window(iat: str | int, words: str, clock: FakeClock) -> None:
    signer = generate_signer()
    holder = generate_signer()
    text = await _issue(signer, {"a": sd(1)}, holder_jwk=holder.public_jwk, clock=clock)
    sd_hash = b64url_encode(hashlib.sha256(text.encode()).digest())
    value = iat if isinstance(iat, str) else str(int(clock.now) + iat)
    payload = f'{{"nonce":"n","aud":"v","iat":{value},"sd_hash":"{sd_hash}"}}'
    head = b64url_encode(json.dumps({"alg": holder.alg, "typ": "kb+jwt"}).encode())
    body = b64url_encode(payload.encode())
    kb = f"{head}.{body}.{b64url_encode(holder.sign_sync(f'{head}.{body}'.encode()))}"
    with pytest.raises(SdJwtVerificationError, match=words) as info:
        verify_sd_jwt_vc(
            text + kb, issuer_keys=[signer.public_jwk], allow_key_binding=True, clock=clock
        )
    assert info.value.reason == SdJwtReason.KEY_BINDING_INVALID
    fresh = payload.replace(f'"iat":{value}', f'"iat":{int(clock.now) - 10}')
    body = b64url_encode(fresh.encode())
    kb = f"{head}.{body}.{b64url_encode(holder.sign_sync(f'{head}.{body}'.encode()))}"
    verified = verify_sd_jwt_vc(
        text + kb, issuer_keys=[signer.public_jwk], allow_key_binding=True, clock=clock
    )
    assert verified.key_binding is not None


async def test_cnf_must_be_a_public_key(clock: FakeClock) -> None:
    signer = generate_signer()
    private = generate_signer().private_jwk()
    text = await _forge(signer, {"vct": VCT, "cnf": {"jwk": private}})
    _expect(SdJwtReason.CNF_INVALID, text, issuer_keys=[signer.public_jwk], clock=clock)


def test_error_messages_do_not_leak_values(vectors: dict[str, Any], clock: FakeClock) -> None:
    text = vectors["sdjwtvc_example"]["issuance"]
    err = _expect(
        SdJwtReason.CNF_MISMATCH,
        text,
        issuer_keys=[vectors["sdjwt_example_issuer_key"]],
        expected_cnf_jwk=generate_signer().public_jwk,
        clock=clock,
    )
    assert "John" not in str(err) and "TCAER19" not in str(err)
    assert str(err).startswith(SdJwtReason.CNF_MISMATCH)
