"""DPoP (RFC 9449): RFC vectors, round trips and one test per rejection reason."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import pytest

from oid4vci.dpop import (
    DpopProof,
    JtiStore,
    access_token_hash,
    build_dpop_jwt,
    verify_dpop_jwt,
)
from oid4vci.errors import DpopError, ErrorCode
from oid4vci.http import HttpRequest
from oid4vci.jose import (
    LocalSigner,
    b64url_encode,
    create_jws,
    decode_jws,
    jwk_thumbprint,
)
from tests.conftest import FakeClock

URL = "https://issuer.example.com/token"
RFC_TOKEN_URL = "https://server.example.com/token"
RFC_RESOURCE_URL = "https://resource.example.org/protectedresource"
SECRET_TOKEN = "at-SECRET-Kz~8mXK1EalYznwH"


class MemoryJtiStore:
    """A tiny replay cache for the tests."""

    def __init__(self) -> None:
        self.keys: dict[str, float] = {}

    async def add_if_absent(self, key: str, ttl: float) -> bool:
        if key in self.keys:
            return False
        self.keys[key] = ttl
        return True


@pytest.fixture(scope="module")
def signer() -> LocalSigner:
    return LocalSigner.generate("ES256")


def _request(proof: str | None, method: str = "POST", url: str = URL) -> HttpRequest:
    headers = {} if proof is None else {"DPoP": proof}
    return HttpRequest(method=method, url=url, headers=headers)


def _claims(clock: FakeClock, **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"jti": "jti-1", "htm": "POST", "htu": URL, "iat": int(clock.now)}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not _DROP}


_DROP: Any = object()


async def _proof(signer: LocalSigner, claims: Mapping[str, Any], **header: Any) -> str:
    base: dict[str, Any] = {"typ": "dpop+jwt", "jwk": signer.public_jwk}
    base.update(header)
    return await create_jws(signer, claims, {k: v for k, v in base.items() if v is not _DROP})


def _segment(obj: Any) -> str:
    return b64url_encode(json.dumps(obj).encode())


async def _reject(request: HttpRequest | Mapping[str, Any], reason: str, **kw: Any) -> DpopError:
    with pytest.raises(DpopError) as info:
        await verify_dpop_jwt(request, **kw)
    err = info.value
    assert err.error == ErrorCode.INVALID_DPOP_PROOF
    assert err.status == 400
    assert err.dpop_nonce is None
    assert reason in str(err)
    return err


# --- RFC 9449 vectors -------------------------------------------------------------------------


def test_rfc9449_jkt_and_ath(vectors: dict[str, Any]) -> None:
    rfc = vectors["rfc9449"]
    assert jwk_thumbprint(rfc["public_jwk"]) == rfc["jkt"]
    assert access_token_hash(rfc["access_token"]) == rfc["ath"]
    assert access_token_hash(rfc["access_token"] + "x") != rfc["ath"]


@pytest.mark.parametrize(
    ("name", "iat"), [("proof_token_request", 1562262616), ("proof_refresh_request", 1562265296)]
)
async def test_rfc9449_token_proofs_verify(vectors: dict[str, Any], name: str, iat: int) -> None:
    rfc = vectors["rfc9449"]
    request = _request(rfc[name], "POST", RFC_TOKEN_URL)
    proof = await verify_dpop_jwt(request, clock=lambda: float(iat), expected_jkt=rfc["jkt"])
    assert isinstance(proof, DpopProof)
    assert proof.jkt == rfc["jkt"]
    assert proof.jwk == rfc["public_jwk"]
    assert proof.claims["jti"] == "-BwC3ESc6acc2lTc"
    assert proof.header["typ"] == "dpop+jwt"
    # The same proof at another URL, with another method or much later fails.
    await _reject(_request(rfc[name], "POST", RFC_RESOURCE_URL), "htu", clock=lambda: float(iat))
    await _reject(_request(rfc[name], "GET", RFC_TOKEN_URL), "htm", clock=lambda: float(iat))
    await _reject(request, "too old", clock=lambda: float(iat + 301))


async def test_rfc9449_resource_proof_with_access_token(vectors: dict[str, Any]) -> None:
    rfc = vectors["rfc9449"]
    request = _request(rfc["proof_resource_request"], "GET", RFC_RESOURCE_URL)

    def at_iat() -> float:
        return 1562262618.0

    proof = await verify_dpop_jwt(
        request, access_token=rfc["access_token"], expected_jkt=rfc["jkt"], clock=at_iat
    )
    assert proof.claims["ath"] == rfc["ath"]
    # Dict requests are accepted too.
    as_dict = {
        "method": "GET",
        "url": RFC_RESOURCE_URL,
        "headers": {"DPoP": rfc["proof_resource_request"]},
    }
    assert (await verify_dpop_jwt(as_dict, access_token=rfc["access_token"], clock=at_iat)).jkt
    err = await _reject(request, "ath", access_token=rfc["access_token"] + "x", clock=at_iat)
    assert rfc["access_token"] not in str(err)
    await _reject(
        request,
        "bound key",
        expected_jkt=jwk_thumbprint(LocalSigner.generate().public_jwk),
        clock=at_iat,
    )


# --- round trips --------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "ES384", "EdDSA"])
async def test_round_trip(alg: str, clock: FakeClock) -> None:
    signer = LocalSigner.generate(alg)
    token = await build_dpop_jwt(
        signer, "post", URL + "?x=1#frag", access_token=SECRET_TOKEN, nonce="n0nce", clock=clock
    )
    decoded = decode_jws(token)
    assert decoded.header["typ"] == "dpop+jwt"
    assert decoded.header["alg"] == alg
    assert decoded.header["jwk"] == signer.public_jwk
    assert "d" not in decoded.header["jwk"]
    assert decoded.payload["htm"] == "POST"
    assert decoded.payload["htu"] == URL  # the client drops query and fragment
    assert decoded.payload["iat"] == int(clock.now)
    assert decoded.payload["ath"] == access_token_hash(SECRET_TOKEN)
    assert decoded.payload["nonce"] == "n0nce"
    assert len(decoded.payload["jti"]) >= 16  # >= 96 bits of base64url randomness

    proof = await verify_dpop_jwt(
        _request(token, url=URL + "?x=1"),
        access_token=SECRET_TOKEN,
        expected_jkt=jwk_thumbprint(signer.public_jwk),
        clock=clock,
    )
    assert proof.jkt == jwk_thumbprint(signer.public_jwk)
    assert "n0nce" not in repr(proof)


async def test_build_without_token_or_nonce_has_no_ath_or_nonce(
    signer: LocalSigner, clock: FakeClock
) -> None:
    first = decode_jws(await build_dpop_jwt(signer, "GET", URL, clock=clock)).payload
    second = decode_jws(await build_dpop_jwt(signer, "GET", URL, clock=clock)).payload
    assert "ath" not in first
    assert "nonce" not in first
    assert first["jti"] != second["jti"]


async def test_ath_present_without_token_is_fine(signer: LocalSigner, clock: FakeClock) -> None:
    token = await build_dpop_jwt(signer, "POST", URL, access_token=SECRET_TOKEN, clock=clock)
    assert (await verify_dpop_jwt(_request(token), clock=clock)).claims["ath"]


# --- header-level rejections --------------------------------------------------------------------


async def test_missing_header(clock: FakeClock) -> None:
    await _reject(_request(None), "missing", clock=clock)


async def test_two_dpop_headers(signer: LocalSigner, clock: FakeClock) -> None:
    token = await build_dpop_jwt(signer, "POST", URL, clock=clock)
    request = HttpRequest(method="POST", url=URL, headers=[("DPoP", token), ("dpop", token)])
    await _reject(request, "more than one", clock=clock)


async def test_comma_joined_dpop_header(signer: LocalSigner, clock: FakeClock) -> None:
    token = await build_dpop_jwt(signer, "POST", URL, clock=clock)
    await _reject(_request(f"{token}, {token}"), "more than one", clock=clock)


@pytest.mark.parametrize("bad", ["abc.def", "a.b.c.d", "onlyonepart", ""])
async def test_not_three_parts(bad: str, clock: FakeClock) -> None:
    with pytest.raises(DpopError) as info:
        await verify_dpop_jwt(_request(bad), clock=clock)
    assert info.value.error == ErrorCode.INVALID_DPOP_PROOF


async def test_two_part_reason(clock: FakeClock) -> None:
    await _reject(_request("abc.def"), "three parts", clock=clock)


async def test_malformed_jws(signer: LocalSigner, clock: FakeClock) -> None:
    await _reject(_request("a!b.c$d.e"), "well-formed", clock=clock)
    not_object = f"{_segment([1, 2])}.{_segment({})}.AAAA"
    await _reject(_request(not_object), "well-formed", clock=clock)
    crit = await _proof(signer, _claims(clock), crit=["exp"])
    await _reject(_request(crit), "well-formed", clock=clock)


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt", None, 1])
async def test_wrong_typ(typ: Any, signer: LocalSigner, clock: FakeClock) -> None:
    token = await _proof(signer, _claims(clock), typ=_DROP if typ is None else typ)
    await _reject(_request(token), "typ", clock=clock)


async def test_typ_media_type_forms_accepted(signer: LocalSigner, clock: FakeClock) -> None:
    for typ in ("DPoP+JWT", "application/dpop+jwt"):
        token = await _proof(signer, _claims(clock, jti=typ), typ=typ)
        assert (await verify_dpop_jwt(_request(token), clock=clock)).claims["jti"] == typ


async def test_alg_not_in_allow_list(clock: FakeClock) -> None:
    es384 = LocalSigner.generate("ES384")
    token = await _proof(es384, _claims(clock))
    await _reject(_request(token), "algorithm", algorithms=("ES256",), clock=clock)


async def test_alg_none(signer: LocalSigner, clock: FakeClock) -> None:
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": signer.public_jwk}
    token = f"{_segment(header)}.{_segment(_claims(clock))}."
    await _reject(_request(token), "algorithm", algorithms=("ES256", "none"), clock=clock)


async def test_hs256_even_when_listed(signer: LocalSigner, clock: FakeClock) -> None:
    header = {"typ": "dpop+jwt", "alg": "HS256", "jwk": signer.public_jwk}
    signing_input = f"{_segment(header)}.{_segment(_claims(clock))}"
    mac = hmac.new(b"k" * 32, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{b64url_encode(mac)}"
    await _reject(_request(token), "algorithm", algorithms=("HS256", "ES256"), clock=clock)


async def test_no_jwk(signer: LocalSigner, clock: FakeClock) -> None:
    token = await _proof(signer, _claims(clock), jwk=_DROP)
    await _reject(_request(token), "no jwk", clock=clock)
    kid_only = await _proof(signer, _claims(clock), jwk=_DROP, kid="key-1")
    await _reject(_request(kid_only), "no jwk", clock=clock)
    not_object = await _proof(signer, _claims(clock), jwk="not-a-jwk")
    await _reject(_request(not_object), "no jwk", clock=clock)


async def test_jwk_with_private_members(signer: LocalSigner, clock: FakeClock) -> None:
    token = await _proof(signer, _claims(clock), jwk=signer.private_jwk())
    err = await _reject(_request(token), "private", clock=clock)
    assert signer.private_jwk()["d"] not in str(err)


async def test_jwk_not_a_valid_key(signer: LocalSigner, clock: FakeClock) -> None:
    bad = {**signer.public_jwk, "x": "AAAA"}
    token = await _proof(signer, _claims(clock), jwk=bad)
    await _reject(_request(token), "valid public key", clock=clock)


async def test_bad_signature(signer: LocalSigner, clock: FakeClock) -> None:
    other = LocalSigner.generate("ES256")
    # Signed by another key but naming ours.
    forged = await _proof(other, _claims(clock), jwk=signer.public_jwk)
    await _reject(_request(forged), "signature", clock=clock)
    # Payload changed after signing.
    good = await _proof(signer, _claims(clock))
    head, _, sig = good.split(".")
    tampered = f"{head}.{_segment(_claims(clock, jti='other'))}.{sig}"
    await _reject(_request(tampered), "signature", clock=clock)


async def test_a_known_header_skips_no_check(clock: FakeClock) -> None:
    # The header's checks are kept per header segment; whatever else a proof carries is
    # checked again with every proof of that header.
    holder = LocalSigner.generate("ES256")
    good = await _proof(holder, _claims(clock))
    proof = await verify_dpop_jwt(_request(good), clock=clock)
    head, body, sig = good.split(".")
    again = await verify_dpop_jwt(_request(good), clock=clock)  # the kept header
    assert again == proof
    again.header["jwk"]["x"] = "changed"  # what a caller does to its copy stays there
    assert (await verify_dpop_jwt(_request(good), clock=clock)).header == proof.header
    tampered = f"{head}.{_segment(_claims(clock, jti='other'))}.{sig}"
    await _reject(_request(tampered), "signature", clock=clock)
    forged = await _proof(LocalSigner.generate("ES256"), _claims(clock), jwk=holder.public_jwk)
    await _reject(_request(forged), "signature", clock=clock)
    await _reject(_request(f"{head}.{body}.{sig}x"), "signature", clock=clock)
    await _reject(_request(f"{head}.{body}!.{sig}"), "well-formed", clock=clock)
    await _reject(_request(f"{head}.{_segment([1])}.{sig}"), "well-formed", clock=clock)
    await _reject(_request(good), "algorithm", algorithms=("ES384",), clock=clock)
    stale = await _proof(holder, _claims(clock, iat=int(clock.now) - 3600))
    await _reject(_request(stale), "too old", clock=clock)
    store = MemoryJtiStore()
    await verify_dpop_jwt(_request(good), clock=clock, jti_store=store)
    await _reject(_request(good), "replayed", clock=clock, jti_store=store)


async def test_key_curve_must_match_alg(clock: FakeClock) -> None:
    es384 = LocalSigner.generate("ES384")
    # A P-384 key presented with alg ES256 never verifies.
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": es384.public_jwk}
    signing_input = f"{_segment(header)}.{_segment(_claims(clock))}"
    token = f"{signing_input}.{b64url_encode(es384.sign_sync(signing_input.encode()))}"
    await _reject(_request(token), "signature", clock=clock)


# --- claim-level rejections ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claim", "value", "reason"),
    [
        ("jti", _DROP, "jti"),
        ("jti", 12345, "jti"),
        ("jti", "", "jti"),
        ("jti", "x" * 257, "jti is too long"),
        ("htm", _DROP, "htm"),
        ("htm", ["POST"], "htm"),
        ("htu", _DROP, "htu"),
        ("htu", 7, "htu"),
        ("iat", _DROP, "numeric iat"),
        ("iat", "1750000000", "numeric iat"),
        ("iat", True, "numeric iat"),
        ("iat", None, "numeric iat"),
        ("iat", 10**400, "numeric iat"),  # float() of it would overflow: refused, no crash
        ("iat", -(10**400), "numeric iat"),
    ],
)
async def test_missing_or_ill_typed_claims(
    claim: str, value: Any, reason: str, signer: LocalSigner, clock: FakeClock
) -> None:
    token = await _proof(signer, _claims(clock, **{claim: value}))
    await _reject(_request(token), reason, clock=clock)


async def test_jti_of_256_chars_and_float_iat_are_fine(
    signer: LocalSigner, clock: FakeClock
) -> None:
    token = await _proof(signer, _claims(clock, jti="x" * 256, iat=clock.now + 0.5))
    assert (await verify_dpop_jwt(_request(token), clock=clock)).claims["jti"] == "x" * 256


async def test_htm_mismatch(signer: LocalSigner, clock: FakeClock) -> None:
    token = await build_dpop_jwt(signer, "GET", URL, clock=clock)
    await _reject(_request(token, "POST"), "htm", clock=clock)
    lower = await _proof(signer, _claims(clock, htm="post"))
    await _reject(_request(lower, "POST"), "htm", clock=clock)


async def test_htu_different_path(signer: LocalSigner, clock: FakeClock) -> None:
    token = await build_dpop_jwt(signer, "POST", URL, clock=clock)
    await _reject(_request(token, url=URL + "/other"), "htu", clock=clock)
    await _reject(_request(token, url="https://issuer.example.com/credential"), "htu", clock=clock)


async def test_htu_other_host_or_port_or_scheme(signer: LocalSigner, clock: FakeClock) -> None:
    token = await build_dpop_jwt(signer, "POST", URL, clock=clock)
    await _reject(_request(token, url="https://evil.example.com/token"), "htu", clock=clock)
    await _reject(_request(token, url="https://issuer.example.com:8443/token"), "htu", clock=clock)
    await _reject(_request(token, url="http://issuer.example.com/token"), "htu", clock=clock)


async def test_htu_invalid_url(signer: LocalSigner, clock: FakeClock) -> None:
    token = await _proof(signer, _claims(clock, htu="https://issuer.example.com:99999/token"))
    await _reject(_request(token), "htu", clock=clock)


@pytest.mark.parametrize(
    ("proof_htu", "request_url"),
    [
        (URL + "?x=1", URL),  # query sent by a sloppy client is ignored by the server
        (URL + "#frag", URL),
        (URL, URL + "?client_id=abc"),
        ("https://ISSUER.Example.COM/token", URL),
        ("HTTPS://issuer.example.com/token", URL),
        ("https://issuer.example.com:443/token", URL),
        (URL, "https://issuer.example.com:443/token"),
        ("https://issuer.example.com/a/../token", URL),
    ],
)
async def test_htu_normalization_equal(
    proof_htu: str, request_url: str, signer: LocalSigner, clock: FakeClock
) -> None:
    token = await _proof(signer, _claims(clock, htu=proof_htu))
    assert await verify_dpop_jwt(_request(token, url=request_url), clock=clock)


async def test_htu_http_and_https_differ(signer: LocalSigner, clock: FakeClock) -> None:
    token = await _proof(signer, _claims(clock, htu="http://issuer.example.com/token"))
    await _reject(_request(token), "htu", clock=clock)
    token80 = await _proof(signer, _claims(clock, htu="http://issuer.example.com:80/token"))
    await verify_dpop_jwt(_request(token80, url="http://issuer.example.com/token"), clock=clock)


async def test_iat_window(signer: LocalSigner, clock: FakeClock) -> None:
    token = await build_dpop_jwt(signer, "POST", URL, clock=clock)
    clock.advance(300)
    assert await verify_dpop_jwt(_request(token), clock=clock)  # exactly max_age is fine
    clock.advance(1)
    await _reject(_request(token), "too old", clock=clock)
    await _reject(_request(token), "too old", clock=clock, max_age=30)
    assert await verify_dpop_jwt(_request(token), clock=clock, max_age=600)


async def test_iat_in_the_future(signer: LocalSigner, clock: FakeClock) -> None:
    ahead = await _proof(signer, _claims(clock, iat=int(clock.now) + 61))
    await _reject(_request(ahead), "future", clock=clock)
    assert await verify_dpop_jwt(_request(ahead), clock=clock, max_future=120)
    near = await _proof(signer, _claims(clock, iat=int(clock.now) + 60))
    assert await verify_dpop_jwt(_request(near), clock=clock)


async def test_ath_missing_when_token_given(signer: LocalSigner, clock: FakeClock) -> None:
    token = await build_dpop_jwt(signer, "POST", URL, clock=clock)
    err = await _reject(_request(token), "lacks ath", access_token=SECRET_TOKEN, clock=clock)
    assert SECRET_TOKEN not in str(err)
    assert SECRET_TOKEN not in repr(err)


async def test_ath_wrong(signer: LocalSigner, clock: FakeClock) -> None:
    token = await build_dpop_jwt(signer, "POST", URL, access_token="other-token", clock=clock)
    err = await _reject(_request(token), "does not match", access_token=SECRET_TOKEN, clock=clock)
    assert SECRET_TOKEN not in str(err)
    non_string = await _proof(signer, _claims(clock, ath=123))
    await _reject(_request(non_string), "ath", access_token=SECRET_TOKEN, clock=clock)


async def test_jkt_mismatch(signer: LocalSigner, clock: FakeClock) -> None:
    token = await build_dpop_jwt(signer, "POST", URL, clock=clock)
    other = jwk_thumbprint(LocalSigner.generate().public_jwk)
    await _reject(_request(token), "bound key", expected_jkt=other, clock=clock)
    jkt = jwk_thumbprint(signer.public_jwk)
    assert (await verify_dpop_jwt(_request(token), expected_jkt=jkt, clock=clock)).jkt == jkt


# --- nonces -----------------------------------------------------------------------------------


class NonceServer:
    """Hands out nonces and accepts only the latest one."""

    def __init__(self) -> None:
        self.issued: list[str] = []

    async def new_nonce(self) -> str:
        nonce = f"server-nonce-{len(self.issued)}"
        self.issued.append(nonce)
        return nonce

    async def check_nonce(self, nonce: str) -> bool:
        return bool(self.issued) and nonce == self.issued[-1]


async def test_nonce_flow(signer: LocalSigner, clock: FakeClock) -> None:
    server = NonceServer()
    store = MemoryJtiStore()
    kw: dict[str, Any] = {
        "nonce_required": True,
        "check_nonce": server.check_nonce,
        "new_nonce": server.new_nonce,
        "jti_store": store,
        "clock": clock,
    }
    # 1. No nonce yet → use_dpop_nonce carrying a fresh nonce; the jti is not burned.
    first = await build_dpop_jwt(signer, "POST", URL, clock=clock)
    with pytest.raises(DpopError) as info:
        await verify_dpop_jwt(_request(first), **kw)
    assert info.value.error == ErrorCode.USE_DPOP_NONCE
    assert info.value.status == 400
    assert info.value.dpop_nonce == server.issued[-1] == "server-nonce-0"
    assert "server-nonce" not in str(info.value)
    assert store.keys == {}

    # 2. A wrong nonce → use_dpop_nonce again, with a new nonce.
    wrong = await build_dpop_jwt(signer, "POST", URL, nonce="guessed-nonce", clock=clock)
    with pytest.raises(DpopError) as info:
        await verify_dpop_jwt(_request(wrong), **kw)
    assert info.value.error == ErrorCode.USE_DPOP_NONCE
    assert info.value.dpop_nonce == "server-nonce-1"
    assert "guessed-nonce" not in str(info.value)
    assert store.keys == {}

    # 3. The latest nonce passes.
    right = await build_dpop_jwt(signer, "POST", URL, nonce=server.issued[-1], clock=clock)
    proof = await verify_dpop_jwt(_request(right), **kw)
    assert proof.claims["nonce"] == "server-nonce-1"
    assert len(store.keys) == 1
    assert "server-nonce" not in repr(proof)


async def test_non_string_nonce_is_treated_as_missing(
    signer: LocalSigner, clock: FakeClock
) -> None:
    server = NonceServer()
    token = await _proof(signer, _claims(clock, nonce=42))
    with pytest.raises(DpopError) as info:
        await verify_dpop_jwt(
            _request(token),
            nonce_required=True,
            check_nonce=server.check_nonce,
            new_nonce=server.new_nonce,
            clock=clock,
        )
    assert info.value.error == ErrorCode.USE_DPOP_NONCE


async def test_nonce_not_checked_when_not_required(signer: LocalSigner, clock: FakeClock) -> None:
    token = await build_dpop_jwt(signer, "POST", URL, clock=clock)
    assert await verify_dpop_jwt(_request(token), clock=clock)


async def test_nonce_required_needs_callbacks(signer: LocalSigner, clock: FakeClock) -> None:
    token = await build_dpop_jwt(signer, "POST", URL, clock=clock)
    with pytest.raises(TypeError):
        await verify_dpop_jwt(_request(token), nonce_required=True, clock=clock)


async def test_invalid_proof_is_reported_before_nonce(
    signer: LocalSigner, clock: FakeClock
) -> None:
    server = NonceServer()
    token = await build_dpop_jwt(signer, "GET", URL, clock=clock)
    await _reject(
        _request(token, "POST"),
        "htm",
        nonce_required=True,
        check_nonce=server.check_nonce,
        new_nonce=server.new_nonce,
        clock=clock,
    )
    assert server.issued == []


# --- replay -----------------------------------------------------------------------------------


async def test_replay_is_rejected(signer: LocalSigner, clock: FakeClock) -> None:
    store = MemoryJtiStore()
    assert isinstance(store, JtiStore)
    token = await build_dpop_jwt(signer, "POST", URL, clock=clock)
    await verify_dpop_jwt(_request(token), jti_store=store, clock=clock)
    [(key, ttl)] = store.keys.items()
    jti = decode_jws(token).payload["jti"]
    assert key == f"dpop-jti:{jwk_thumbprint(signer.public_jwk)}:{URL}:{jti}"
    assert ttl == 360
    await _reject(_request(token), "replayed", jti_store=store, clock=clock)
    # Without a store the same proof is accepted again (stateless check).
    assert await verify_dpop_jwt(_request(token), clock=clock)


async def test_replay_key_uses_normalized_htu(signer: LocalSigner, clock: FakeClock) -> None:
    store = MemoryJtiStore()
    a = await _proof(signer, _claims(clock, htu="https://ISSUER.example.com:443/token"))
    b = await _proof(signer, _claims(clock, htu=URL))
    await verify_dpop_jwt(_request(a), jti_store=store, clock=clock)
    await _reject(_request(b), "replayed", jti_store=store, clock=clock)


async def test_same_jti_other_key_or_url_is_not_a_replay(
    signer: LocalSigner, clock: FakeClock
) -> None:
    store = MemoryJtiStore()
    other = LocalSigner.generate()
    await verify_dpop_jwt(
        _request(await _proof(signer, _claims(clock))), jti_store=store, clock=clock
    )
    await verify_dpop_jwt(
        _request(await _proof(other, _claims(clock))), jti_store=store, clock=clock
    )
    url2 = "https://issuer.example.com/credential"
    token = await _proof(signer, _claims(clock, htu=url2))
    await verify_dpop_jwt(_request(token, url=url2), jti_store=store, clock=clock)
    assert len(store.keys) == 3


async def test_invalid_proofs_do_not_burn_the_jti(signer: LocalSigner, clock: FakeClock) -> None:
    store = MemoryJtiStore()
    claims = _claims(clock, jti="shared-jti")
    bad_ones: list[tuple[str, dict[str, Any]]] = [
        (await _proof(signer, claims), {"access_token": SECRET_TOKEN}),  # no ath
        (await _proof(signer, claims), {"expected_jkt": "wrong"}),  # key mismatch
        (await _proof(signer, {**claims, "htm": "GET"}), {}),  # htm mismatch
        (await _proof(signer, claims, typ="JWT"), {}),  # typ
    ]
    for token, kw in bad_ones:
        with pytest.raises(DpopError):
            await verify_dpop_jwt(_request(token), jti_store=store, clock=clock, **kw)
    assert store.keys == {}
    good = await _proof(signer, claims)
    assert await verify_dpop_jwt(_request(good), jti_store=store, clock=clock)
    assert len(store.keys) == 1


# --- secrets stay out of errors and reprs ------------------------------------------------------


async def test_errors_and_repr_hide_secrets(signer: LocalSigner, clock: FakeClock) -> None:
    token = await build_dpop_jwt(
        signer, "POST", URL, access_token="t", nonce="secret-n", clock=clock
    )
    err = await _reject(_request(token), "ath", access_token=SECRET_TOKEN, clock=clock)
    for text in (str(err), repr(err)):
        assert SECRET_TOKEN not in text
        assert "secret-n" not in text
        assert token not in text
    proof = await verify_dpop_jwt(_request(token), clock=clock)
    assert "secret-n" not in repr(proof)
    assert "secret-n" not in repr(_request(token))


@pytest.mark.parametrize("ath", ["\ud800", "\u00e9" * 43])
async def test_an_ath_that_is_not_ascii_does_not_match(
    signer: LocalSigner, clock: FakeClock, ath: str
) -> None:
    # A lone surrogate is legal JSON text but cannot be encoded: it was a UnicodeEncodeError.
    proof = await _proof(signer, _claims(clock, ath=ath))
    err = await _reject(_request(proof), "ath", access_token=SECRET_TOKEN, clock=clock)
    assert SECRET_TOKEN not in str(err)
