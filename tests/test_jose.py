"""JOSE helpers: thumbprints, JWS verification policy, keys, base64url."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oid4vci.errors import JoseError
from oid4vci.jose import (
    ASYMMETRIC_ALGORITHMS,
    DecodedJws,
    LocalSigner,
    Signer,
    b64url_decode,
    b64url_encode,
    create_jws,
    decode_jws,
    generate_signer,
    jwk_thumbprint,
    jwk_thumbprint_uri,
    public_jwk,
    verify_jws,
)


def _segment(obj: Any) -> str:
    return b64url_encode(json.dumps(obj).encode())


def _ec(x: str, y: str) -> dict[str, str]:
    return {"kty": "EC", "crv": "P-256", "x": x, "y": y}


# --- RFC 7638 and the other thumbprint vectors --------------------------------------------------


def test_rfc7638_rsa_thumbprint(vectors: dict[str, Any]) -> None:
    vec = vectors["rfc7638_section_3_1"]
    jwk = vec["jwk"]
    assert jwk["alg"] == "RS256"
    assert jwk["kid"] == "2011-04-29"
    assert jwk_thumbprint(jwk) == vec["thumbprint"]
    bare = {"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}
    assert jwk_thumbprint(bare) == vec["thumbprint"]
    assert jwk_thumbprint({**bare, "use": "sig", "kid": "other"}) == vec["thumbprint"]
    assert list(b64url_decode(jwk_thumbprint(jwk))) == vec["sha256_octets"]
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
    assert hashlib.sha256(canonical.encode()).digest() == bytes(vec["sha256_octets"])
    assert jwk_thumbprint_uri(jwk) == (
        "urn:ietf:params:oauth:jwk-thumbprint:sha-256:" + vec["thumbprint"]
    )


@pytest.mark.parametrize(
    ("x", "y", "thumbprint"),
    [
        (
            "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
            "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I",
        ),
        (
            "nUWAoAv3XZith8E7i19OdaxOLYFOwM-Z2EuM02TirT4",
            "HskHU8BjUi1U9Xqi7Swmj8gwAK_0xkcDjEW_71SosEY",
            "nsnRYXLu2y5KUIxcX-zph8ZtLWiJfLKxVDVYUWPwhcc",
        ),
        (
            "TCAER19Zvu3OHF4j4W4vfSVoHIP1ILilDls7vCeGemc",
            "ZxjiWWbZMQGHVWKVQ4hbSIirsVfuecCE6t4jT9F2HZQ",
            "aISfTcr9M_Zd09AXGAAeFxnLbFY6lBa87UN515wm5d4",
        ),
        (
            "b28d4MwZMjw8-00CG4xfnn9SLMVMM19SlqZpVb_uNtQ",
            "Xv5zWwuoaTgdS6hV43yI6gBwTnjukmFQQnJ_kCxzqk8",
            "Q5yTSREAbvZL131ynDBhalXJcF9fL0foJlMN8u6ldiY",
        ),
        (
            "_LC1FTUl0MltKAOQzXNsofVMpWFV2obLGrNCat_CQ-g",
            "kBjoyjNuMVAOq--qVUgylDoLKuMdk4imS-Kk5ahuYIU",
            "mlUpog7vEewFBem6Ul09c2dtTwc8dFzVpIDX3sqGWW0",
        ),
        (
            "MdC-OKq4AQJfVCX5zpQoL8j4VEfvPX98tU9hxcNXGro",
            "nsWnfb6NWsK39BH-hAaSkCSe4BymeNscJE_saD3D3bM",
            "VbJOSvjxU6L8C7GUO4dshIYV3zbvFwkYB43YJ5Ktt8E",
        ),
    ],
)
def test_ec_thumbprints_from_vectors_md(x: str, y: str, thumbprint: str) -> None:
    assert jwk_thumbprint(_ec(x, y)) == thumbprint
    assert jwk_thumbprint({**_ec(x, y), "kid": "k", "alg": "ES256", "use": "sig"}) == thumbprint


def test_ec_thumbprints_from_vectors_json(vectors: dict[str, Any]) -> None:
    assert jwk_thumbprint(vectors["rfc9449"]["public_jwk"]) == vectors["rfc9449"]["jkt"]
    assert (
        jwk_thumbprint(vectors["sdjwt_example_holder_key"])
        == vectors["sdjwt_example_holder_key_thumbprint"]
    )
    assert (
        jwk_thumbprint(vectors["sdjwt_example_issuer_key"])
        == vectors["sdjwt_example_issuer_key_thumbprint"]
    )
    proof_jwk = decode_jws(vectors["oid4vci"]["jwt_proof_example"]).header["jwk"]
    assert jwk_thumbprint(proof_jwk) == vectors["oid4vci"]["jwt_proof_example_jwk_thumbprint"]
    issuer_jwk = vectors["oid4vci"]["jwt_vc_json_issuer_jwk"]
    assert jwk_thumbprint_uri(issuer_jwk) == issuer_jwk["kid"]
    did = vectors["oid4vci"]["did_jwk_subject_of_jwt_vc_json"]
    did_jwk = json.loads(b64url_decode(did["did"].removeprefix("did:jwk:")))
    assert jwk_thumbprint(did_jwk) == did["thumbprint"]
    assert did_jwk["kid"] == jwk_thumbprint_uri(did_jwk)


def test_okp_thumbprint_uses_crv_kty_x_only() -> None:
    signer = LocalSigner.generate("EdDSA")
    jwk = signer.public_jwk
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": jwk["x"]}, separators=(",", ":"))
    expected = b64url_encode(hashlib.sha256(canonical.encode()).digest())
    assert jwk_thumbprint(jwk) == expected
    assert jwk_thumbprint({**jwk, "kid": "x"}) == expected


@pytest.mark.parametrize(
    "jwk",
    [
        {},
        {"kty": "XYZ"},
        {"kty": "EC", "crv": "P-256", "x": "abc"},  # no y
        {"kty": "EC", "crv": "P-256", "x": "abc", "y": 5},
        {"kty": 1},
    ],
)
def test_thumbprint_refuses_incomplete_keys(jwk: dict[str, Any]) -> None:
    with pytest.raises(JoseError):
        jwk_thumbprint(jwk)


# --- spec examples that verify -----------------------------------------------------------------


def test_oid4vci_jwt_proof_example_verifies(vectors: dict[str, Any]) -> None:
    token = vectors["oid4vci"]["jwt_proof_example"]
    jwk = decode_jws(token).header["jwk"]
    decoded = verify_jws(token, jwk, algorithms=("ES256",))
    assert decoded.header["typ"] == "openid4vci-proof+jwt"
    assert decoded.payload == {
        "aud": "https://credential-issuer.example.com",
        "iat": 1701960444,
        "nonce": "LarRGSbmUPYtRYO6BQ4yn8",
    }
    with pytest.raises(JoseError):
        verify_jws(token, vectors["sdjwt_example_issuer_key"], algorithms=("ES256",))
    with pytest.raises(JoseError):
        verify_jws(token, jwk, algorithms=("ES384",))


def test_sd_jwt_vc_issuer_signature_verifies(vectors: dict[str, Any]) -> None:
    issuer_jwt = vectors["sdjwtvc_example"]["issuance"].split("~")[0]
    decoded = verify_jws(issuer_jwt, vectors["sdjwt_example_issuer_key"], algorithms=("ES256",))
    assert decoded.header["typ"] == "dc+sd-jwt"
    assert decoded.payload["vct"] == "https://credentials.example.com/identity_credential"
    with pytest.raises(JoseError, match="signature"):
        verify_jws(issuer_jwt, vectors["sdjwt_example_holder_key"], algorithms=("ES256",))


# --- algorithm policy ------------------------------------------------------------------------


async def test_alg_not_in_allow_list() -> None:
    signer = LocalSigner.generate("ES384")
    token = await create_jws(signer, {"a": 1})
    assert verify_jws(token, signer.public_jwk, algorithms=("ES384",)).payload == {"a": 1}
    with pytest.raises(JoseError, match="not allowed"):
        verify_jws(token, signer.public_jwk, algorithms=("ES256", "EdDSA"))
    with pytest.raises(JoseError, match="not allowed"):
        verify_jws(token, signer.public_jwk, algorithms=())


def test_alg_none_is_refused_even_when_listed() -> None:
    signer = LocalSigner.generate()
    token = f"{_segment({'alg': 'none'})}.{_segment({'a': 1})}."
    with pytest.raises(JoseError, match="not allowed"):
        verify_jws(token, signer.public_jwk, algorithms=("none", "ES256"))


def test_hs256_is_refused_even_when_listed() -> None:
    signing_input = f"{_segment({'alg': 'HS256'})}.{_segment({'a': 1})}"
    mac = hmac.new(b"s" * 32, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url_encode(mac)}"
    oct_key = {"kty": "oct", "k": b64url_encode(b"s" * 32)}
    with pytest.raises(JoseError):
        verify_jws(token, oct_key, algorithms=("HS256",))
    with pytest.raises(JoseError, match="not allowed"):
        verify_jws(token, LocalSigner.generate().public_jwk, algorithms=("HS256",))
    assert "HS256" not in ASYMMETRIC_ALGORITHMS
    assert "none" not in ASYMMETRIC_ALGORITHMS


async def test_wrong_curve_for_es256() -> None:
    es384 = LocalSigner.generate("ES384")
    header = _segment({"alg": "ES256"})
    signing_input = f"{header}.{_segment({'a': 1})}"
    token = f"{signing_input}.{b64url_encode(es384.sign_sync(signing_input.encode()))}"
    with pytest.raises(JoseError, match="signature"):
        verify_jws(token, es384.public_jwk, algorithms=("ES256",))
    # An ES256 token checked against a P-384 key also fails.
    es256 = LocalSigner.generate("ES256")
    token256 = await create_jws(es256, {"a": 1})
    with pytest.raises(JoseError, match="signature"):
        verify_jws(token256, es384.public_jwk, algorithms=("ES256",))
    # And an Ed25519 key never verifies ES256.
    with pytest.raises(JoseError, match="signature"):
        verify_jws(token256, LocalSigner.generate("EdDSA").public_jwk, algorithms=("ES256",))


async def test_tampered_payload_fails() -> None:
    signer = LocalSigner.generate()
    token = await create_jws(signer, {"a": 1})
    head, _, sig = token.split(".")
    with pytest.raises(JoseError, match="signature"):
        verify_jws(f"{head}.{_segment({'a': 2})}.{sig}", signer.public_jwk, algorithms=("ES256",))
    with pytest.raises(JoseError, match="signature"):
        verify_jws(
            f"{head}.{_segment({'a': 1})}.{sig[:-4]}", signer.public_jwk, algorithms=("ES256",)
        )


# --- private keys where public ones are expected ----------------------------------------------


async def test_private_jwk_refused_by_public_jwk_and_verify_jws() -> None:
    signer = LocalSigner.generate()
    private = signer.private_jwk()
    assert "d" in private
    with pytest.raises(JoseError, match="private") as info:
        public_jwk(private)
    assert private["d"] not in str(info.value)
    token = await create_jws(signer, {"a": 1})
    with pytest.raises(JoseError, match="private"):
        verify_jws(token, private, algorithms=("ES256",))


@pytest.mark.parametrize(
    "jwk",
    [
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"},
        {"kty": "RSA", "n": "AQAB", "e": "AQAB", "p": "AQAB"},
        {"crv": "P-256"},
    ],
)
def test_public_jwk_refuses_unusable_keys(jwk: dict[str, Any]) -> None:
    with pytest.raises(JoseError):
        public_jwk(jwk)


def test_public_jwk_refuses_members_it_cannot_encode() -> None:
    """A lone surrogate in a member (legal JSON text, not encodable as UTF-8) and a member
    nested past the recursion limit are a JoseError, never UnicodeEncodeError/RecursionError:
    an untrusted DPoP header ``jwk`` or ``cnf.jwk`` reaches this function."""
    base = LocalSigner.generate().public_jwk
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    for jwk in (
        {**base, "kid": "\ud800"},
        {**base, "kid": 5, "note": "\udfff"},
        {**base, "ext": deep},
    ):
        with pytest.raises(JoseError):
            public_jwk(jwk)


def test_public_jwk_accepts_public_keys(vectors: dict[str, Any]) -> None:
    key = vectors["rfc9449"]["public_jwk"]
    assert public_jwk(key) == key
    assert public_jwk(vectors["rfc7638_section_3_1"]["jwk"])["kty"] == "RSA"


# --- malformed JWS ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        "abc.def",  # two parts
        "a.b.c.d",
        "!!!.e30.AAAA",  # bad base64
        f"{b64url_encode(b'not json')}.e30.AAAA",
        f"{_segment([1, 2])}.e30.AAAA",  # header not an object
        f"{_segment({'alg': 'ES256'})}.{_segment('text')}.AAAA",  # payload not an object
        f"{_segment({'typ': 'JWT'})}.e30.AAAA",  # no alg
        f"{_segment({'alg': 'ES256', 'crit': ['exp']})}.e30.AAAA",  # crit
        f"{_segment({'alg': 'ES256'})}.e30.AA=A",
    ],
)
def test_malformed_jws(token: str) -> None:
    with pytest.raises(JoseError):
        decode_jws(token)
    with pytest.raises(JoseError):
        verify_jws(token, LocalSigner.generate().public_jwk, algorithms=("ES256",))


def test_decode_refuses_non_strings_and_huge_input() -> None:
    with pytest.raises(JoseError):
        decode_jws(b"a.b.c")  # type: ignore[arg-type]
    with pytest.raises(JoseError):
        decode_jws("a" * (1 << 20) + ".e30.AAAA")


async def test_crit_is_refused_even_when_signed() -> None:
    signer = LocalSigner.generate()
    token = await create_jws(signer, {"a": 1}, {"crit": ["b64"], "b64": True})
    with pytest.raises(JoseError, match="critical"):
        verify_jws(token, signer.public_jwk, algorithms=("ES256",))


# --- signers -------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "EdDSA"])
async def test_sign_and_verify_each_alg(alg: str) -> None:
    signer = generate_signer(alg, kid="k1")
    assert isinstance(signer, Signer)
    assert signer.kid == "k1"
    assert signer.public_jwk["kid"] == "k1"
    token = await create_jws(signer, {"hello": "world"}, {"typ": "test+jwt"})
    decoded = verify_jws(token, signer.public_jwk, algorithms=(alg,))
    assert decoded.header == {"typ": "test+jwt", "alg": alg}
    assert decoded.payload == {"hello": "world"}
    again = verify_jws(decoded, signer.public_jwk, algorithms=(alg,))
    assert isinstance(again, DecodedJws)
    assert "hello" not in repr(decoded)


def test_unsupported_signing_alg() -> None:
    for alg in ("HS256", "none", "RS256"):
        with pytest.raises(JoseError):
            LocalSigner.generate(alg)


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_local_signer_repr_has_no_key_material(alg: str) -> None:
    signer = LocalSigner.generate(alg, kid="my-kid")
    private = signer.private_jwk()
    text = repr(signer) + str(signer)
    assert private["d"] not in text
    assert private["x"] not in text
    assert "my-kid" in text
    assert alg in text


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "EdDSA"])
async def test_private_jwk_from_jwk_round_trip(alg: str) -> None:
    signer = LocalSigner.generate(alg, kid="kid-1")
    exported = signer.private_jwk()
    assert exported["alg"] == alg
    assert exported["kid"] == "kid-1"
    loaded = LocalSigner.from_jwk(exported)
    assert loaded.alg == alg
    assert loaded.kid == "kid-1"
    assert loaded.public_jwk == signer.public_jwk
    assert loaded.private_jwk() == exported
    token = await create_jws(loaded, {"n": 1})
    assert verify_jws(token, signer.public_jwk, algorithms=(alg,)).payload == {"n": 1}
    # alg inferred from the curve when the JWK has none.
    without_alg = {k: v for k, v in exported.items() if k != "alg"}
    assert LocalSigner.from_jwk(without_alg).alg == alg


def test_from_jwk_refuses_public_and_garbage_keys() -> None:
    signer = LocalSigner.generate()
    with pytest.raises(JoseError):
        LocalSigner.from_jwk(signer.public_jwk)
    with pytest.raises(JoseError):
        LocalSigner.from_jwk({"kty": "EC", "crv": "P-256", "d": "AAAA"})


def test_public_jwk_property_is_a_copy() -> None:
    signer = LocalSigner.generate()
    jwk = signer.public_jwk
    jwk["x"] = "changed"
    assert signer.public_jwk["x"] != "changed"


# --- base64url -----------------------------------------------------------------------------


def test_b64url_basics() -> None:
    assert b64url_encode(b"\xfb\xff") == "-_8"
    assert b64url_decode("-_8") == b"\xfb\xff"
    assert b64url_encode(b"") == ""
    assert b64url_decode("") == b""


@pytest.mark.parametrize("bad", ["YQ==", "+_8", "/_8", "a b", "YQ\n", "a", "é", "YQ.."])
def test_b64url_decode_is_strict(bad: str) -> None:
    with pytest.raises(JoseError):
        b64url_decode(bad)


def test_b64url_decode_refuses_non_str() -> None:
    with pytest.raises(JoseError):
        b64url_decode(b"YQ")  # type: ignore[arg-type]


@given(st.binary(max_size=200))
def test_b64url_round_trip(data: bytes) -> None:
    encoded = b64url_encode(data)
    assert "=" not in encoded
    assert "+" not in encoded
    assert "/" not in encoded
    assert b64url_decode(encoded) == data


def test_decode_jws_refuses_deeply_nested_json_as_jose_error() -> None:
    from oid4vci.jose import b64url_encode, decode_jws

    deep = b64url_encode(b"[" * 100_000 + b"]" * 100_000)
    header = b64url_encode(b'{"alg":"ES256"}')
    with pytest.raises(JoseError):
        decode_jws(f"{header}.{deep}.AA")
