"""Hostile DPoP proofs at the token endpoint (400 JSON) and the credential endpoint (401 + challenge).

After every rejection at the token endpoint the pre-authorized code is still redeemable and no
token was minted; after every rejection at the credential endpoint the ``c_nonce`` is still
usable and nothing was issued.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from oid4vci.dpop import access_token_hash
from oid4vci.http import Headers, HttpRequest
from oid4vci.jose import LocalSigner, create_jws
from tests.conftest import FakeClock
from tests.security.support import (
    CREDENTIAL,
    DPOP_ALGS,
    ISSUER,
    NONCE,
    TOKEN,
    Env,
    assert_error,
    hs256_jws,
    unsigned_jws,
)


async def custom_dpop(
    env: Env,
    key: LocalSigner,
    *,
    url: str = TOKEN,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    signer: LocalSigner | None = None,
) -> str:
    """A DPoP proof by ``key`` for POST ``url`` with parts overridden or dropped."""
    hdr: dict[str, Any] = {"typ": "dpop+jwt", "jwk": key.public_jwk, **(header or {})}
    body: dict[str, Any] = {
        "jti": secrets.token_urlsafe(16),
        "htm": "POST",
        "htu": url,
        "iat": int(env.clock()),
        **(claims or {}),
    }
    for name in drop:
        hdr.pop(name, None)
        body.pop(name, None)
    return await create_jws(signer or key, body, hdr)


ProofMaker = Callable[[Env, LocalSigner], Awaitable[str]]


def _claims(**claims: Any) -> ProofMaker:
    async def make(env: Env, key: LocalSigner) -> str:
        return await custom_dpop(env, key, claims=claims)

    return make


def _header(**header: Any) -> ProofMaker:
    async def make(env: Env, key: LocalSigner) -> str:
        return await custom_dpop(env, key, header=header)

    return make


def _drop(*names: str) -> ProofMaker:
    async def make(env: Env, key: LocalSigner) -> str:
        return await custom_dpop(env, key, drop=names)

    return make


def _iat(offset: float) -> ProofMaker:
    async def make(env: Env, key: LocalSigner) -> str:
        return await custom_dpop(env, key, claims={"iat": int(env.clock() + offset)})

    return make


async def _alg_none(env: Env, key: LocalSigner) -> str:
    claims = {"jti": "j1", "htm": "POST", "htu": TOKEN, "iat": int(env.clock())}
    return unsigned_jws({"typ": "dpop+jwt", "alg": "none", "jwk": key.public_jwk}, claims, b"")


async def _alg_hs256(env: Env, key: LocalSigner) -> str:
    claims = {"jti": "j1", "htm": "POST", "htu": TOKEN, "iat": int(env.clock())}
    secret = b"k" * 32
    jwk = {"kty": "oct", "k": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s"}
    return hs256_jws({"typ": "dpop+jwt", "jwk": jwk}, claims, secret)


async def _alg_hs256_ec_jwk(env: Env, key: LocalSigner) -> str:
    """HS256 "signed" with the public key bytes as the MAC secret (key confusion)."""
    claims = {"jti": "j1", "htm": "POST", "htu": TOKEN, "iat": int(env.clock())}
    return hs256_jws(
        {"typ": "dpop+jwt", "jwk": key.public_jwk}, claims, key.public_jwk["x"].encode()
    )


async def _alg_es512(env: Env, key: LocalSigner) -> str:
    other = LocalSigner.generate("ES512")
    return await custom_dpop(env, other)


async def _private_jwk(env: Env, key: LocalSigner) -> str:
    return await custom_dpop(env, key, header={"jwk": key.private_jwk()})


async def _other_signer(env: Env, key: LocalSigner) -> str:
    return await custom_dpop(env, key, signer=LocalSigner.generate())


async def _garbage_signature(env: Env, key: LocalSigner) -> str:
    proof = await custom_dpop(env, key)
    head, payload, _ = proof.split(".")
    return f"{head}.{payload}.{'A' * 86}"


async def _two_in_one(env: Env, key: LocalSigner) -> str:
    return f"{await custom_dpop(env, key)},{await custom_dpop(env, key)}"


async def _not_jws(env: Env, key: LocalSigner) -> str:
    return "not-a-jwt"


async def _five_parts(env: Env, key: LocalSigner) -> str:
    return (await custom_dpop(env, key)) + ".a.b"


INVALID_PROOFS: list[tuple[str, ProofMaker]] = [
    ("htm-get", _claims(htm="GET")),
    ("htm-lowercase", _claims(htm="post")),
    ("htm-number", _claims(htm=1)),
    ("htu-other-host", _claims(htu="https://evil.example.com/token")),
    ("htu-http", _claims(htu="http://issuer.example.com/token")),
    ("htu-path-case", _claims(htu=ISSUER + "/TOKEN")),
    ("htu-other-port", _claims(htu="https://issuer.example.com:8443/token")),
    ("htu-trailing-slash", _claims(htu=ISSUER + "/token/")),
    ("htu-other-endpoint", _claims(htu=CREDENTIAL)),
    ("htu-userinfo-host-trick", _claims(htu="https://issuer.example.com@evil.example/token")),
    ("htu-trailing-dot", _claims(htu="https://issuer.example.com./token")),
    ("htu-encoded-path", _claims(htu=ISSUER + "/%74oken")),
    ("htu-not-url", _claims(htu="https://[broken/token")),
    ("htu-list", _claims(htu=[TOKEN])),
    ("iat-stale", _iat(-301)),
    ("iat-future", _iat(61)),
    ("iat-string", _claims(iat="1750000000")),
    ("iat-bool", _claims(iat=True)),
    ("jti-missing", _drop("jti")),
    ("jti-empty", _claims(jti="")),
    ("jti-number", _claims(jti=7)),
    ("jti-huge", _claims(jti="j" * 300)),
    ("typ-missing", _drop("typ")),
    ("typ-jwt", _header(typ="JWT")),
    ("typ-proof", _header(typ="openid4vci-proof+jwt")),
    ("jwk-missing", _drop("jwk")),
    ("jwk-string", _header(jwk="key")),
    ("jwk-private", _private_jwk),
    ("jwk-symmetric", _header(jwk={"kty": "oct", "k": "c2VjcmV0"})),
    ("alg-none", _alg_none),
    ("alg-hs256", _alg_hs256),
    ("alg-hs256-public-key-as-secret", _alg_hs256_ec_jwk),
    ("alg-not-allowed", _alg_es512),
    ("crit", _header(crit=["exp"], exp=1)),
    ("signed-by-other-key", _other_signer),
    ("bad-signature", _garbage_signature),
    ("two-proofs-one-header", _two_in_one),
    ("not-a-jws", _not_jws),
    ("five-parts", _five_parts),
]


@pytest.mark.parametrize("make", [pytest.param(m, id=i) for i, m in INVALID_PROOFS])
async def test_token_endpoint_rejects_invalid_dpop(clock: FakeClock, make: ProofMaker) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code = await env.pre_auth_code()
    response = await env.redeem(code, key, proof=await make(env, key))
    assert_error(response, 400, "invalid_dpop_proof")
    assert env.tokens_minted() == 0
    assert (await env.redeem(code, key)).status == 200
    assert env.tokens_minted() == 1


ACCEPTED_HTU = [
    ISSUER.upper() + "/token",
    "HTTPS://Issuer.Example.Com/token",
    "https://issuer.example.com:443/token",
    "https://issuer.example.com/a/../token",
    TOKEN + "?x=1",
    TOKEN + "#frag",
    # userinfo is not part of the origin compared (lenient, same host): accepted.
    "https://user@issuer.example.com/token",
]


@pytest.mark.parametrize("htu", ACCEPTED_HTU)
async def test_htu_normalization_accepts_equivalent_urls(clock: FakeClock, htu: str) -> None:
    """RFC 3986 §6.2.2–6.2.3 equivalents (scheme/host case, default port, dot segments)
    are accepted; query and fragment of ``htu`` are ignored."""
    env = Env(clock)
    key = LocalSigner.generate()
    proof = await custom_dpop(env, key, claims={"htu": htu})
    response = await env.redeem(await env.pre_auth_code(), key, proof=proof)
    assert response.status == 200, response.body


@pytest.mark.parametrize("offset", [-300, 60])
async def test_iat_window_edges_are_accepted(clock: FakeClock, offset: int) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    response = await env.redeem(await env.pre_auth_code(), key, proof=await _iat(offset)(env, key))
    assert response.status == 200, response.body


async def test_missing_dpop_at_token_endpoint(clock: FakeClock) -> None:
    env = Env(clock)
    code = await env.pre_auth_code()
    response = await env.redeem(code, None)
    body = assert_error(response, 400, "invalid_request")
    assert body["error_description"] == "DPoP proof required"
    assert (await env.redeem(code, LocalSigner.generate())).status == 200


async def test_replayed_proof_at_token_endpoint(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    proof = await env.dpop(key, TOKEN)
    assert (await env.redeem(await env.pre_auth_code(), key, proof=proof)).status == 200
    second = await env.pre_auth_code()
    assert_error(await env.redeem(second, key, proof=proof), 400, "invalid_dpop_proof")
    # Still replayed just before the proof ages out ...
    clock.advance(299)
    assert_error(await env.redeem(second, key, proof=proof), 400, "invalid_dpop_proof")
    assert env.tokens_minted() == 1
    assert (await env.redeem(second, key)).status == 200


async def test_two_dpop_headers_at_token_endpoint(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code = await env.pre_auth_code()
    headers = Headers([("DPoP", await env.dpop(key, TOKEN)), ("DPoP", await env.dpop(key, TOKEN))])
    request = HttpRequest.form(
        "POST",
        TOKEN,
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code",
            "pre-authorized_code": code,
        },
        headers,
    )
    assert_error(await env.send(request), 400, "invalid_dpop_proof")
    assert (await env.redeem(code, key)).status == 200


async def test_empty_dpop_header_at_token_endpoint(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code = await env.pre_auth_code()
    assert_error(await env.redeem(code, key, proof=" "), 400, "invalid_dpop_proof")
    assert (await env.redeem(code, key)).status == 200


# -- server nonces (require_dpop_nonce) --------------------------------------------------


async def test_token_endpoint_server_nonce(clock: FakeClock) -> None:
    env = Env(clock, require_dpop_nonce=True)
    key = LocalSigner.generate()
    code = await env.pre_auth_code()
    # No nonce: 400 use_dpop_nonce with a DPoP-Nonce header; the code is untouched.
    first = await env.token_request(
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code",
            "pre-authorized_code": code,
        },
        key,
    )
    assert_error(first, 400, "use_dpop_nonce", dpop_nonce=True)
    nonce = first.headers.get("DPoP-Nonce")
    assert nonce is not None
    # A made-up nonce and a nonce in the wrong claim type: refused the same way.
    for bad in ("A" * 32, 12345):
        proof = await custom_dpop(env, key, claims={"nonce": bad})
        response = await env.redeem(code, key, proof=proof)
        assert_error(response, 400, "use_dpop_nonce", dpop_nonce=True)
        assert response.headers.get("DPoP-Nonce") != nonce
    # An expired nonce.
    clock.advance(301)
    response = await env.redeem(
        code, key, proof=await custom_dpop(env, key, claims={"nonce": nonce})
    )
    assert_error(response, 400, "use_dpop_nonce", dpop_nonce=True)
    fresh = response.headers.get("DPoP-Nonce")
    assert env.tokens_minted() == 0
    proof = await custom_dpop(env, key, claims={"nonce": fresh})
    assert (await env.redeem(code, key, proof=proof)).status == 200


# -- the credential endpoint (a resource server: 401 + WWW-Authenticate) -----------------


async def _resource_setup(env: Env) -> tuple[LocalSigner, str, str, dict[str, Any]]:
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    body = {
        "credential_configuration_id": "pid",
        "proofs": {"jwt": [await env.key_proof(LocalSigner.generate(), nonce)]},
    }
    return key, token, nonce, body


async def _resource_proof(env: Env, key: LocalSigner, token: str, **claims: Any) -> str:
    return await custom_dpop(
        env, key, url=CREDENTIAL, claims={"ath": access_token_hash(token), **claims}
    )


RESOURCE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("ath-wrong", {"ath": "A" * 43}),
    ("ath-of-other-token", {"ath": "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"}),
    ("ath-number", {"ath": 5}),
    ("htu-token-endpoint", {"htu": TOKEN}),
    ("htu-other-host", {"htu": "https://evil.example.com/credential"}),
    ("htm-get", {"htm": "GET"}),
    ("iat-stale", {"iat": 1_750_000_000 - 400}),
]


@pytest.mark.parametrize("claims", [pytest.param(c, id=i) for i, c in RESOURCE_CASES])
async def test_credential_endpoint_rejects_invalid_dpop(
    clock: FakeClock, claims: dict[str, Any]
) -> None:
    env = Env(clock)
    key, token, nonce, body = await _resource_setup(env)
    proof = await _resource_proof(env, key, token, **claims)
    response = await env.credential(token, key, body, proof=proof)
    assert_error(response, 401, "invalid_dpop_proof", www_authenticate=True)
    assert env.claims.calls == 0
    assert await env.nonce_works(nonce, token, key)


async def test_credential_endpoint_missing_ath(clock: FakeClock) -> None:
    env = Env(clock)
    key, token, nonce, body = await _resource_setup(env)
    proof = await custom_dpop(env, key, url=CREDENTIAL)
    response = await env.credential(token, key, body, proof=proof)
    assert_error(response, 401, "invalid_dpop_proof", www_authenticate=True)
    assert await env.nonce_works(nonce, token, key)


async def test_credential_endpoint_key_other_than_token_jkt(clock: FakeClock) -> None:
    env = Env(clock)
    key, token, nonce, body = await _resource_setup(env)
    thief = LocalSigner.generate()
    response = await env.credential(token, thief, body)
    body_out = assert_error(response, 401, "invalid_dpop_proof", www_authenticate=True)
    assert "bound key" in body_out["error_description"]
    assert env.claims.calls == 0
    assert await env.nonce_works(nonce, token, key)


@pytest.mark.parametrize("allow_bearer", [False, True])
async def test_bearer_use_of_dpop_bound_token(clock: FakeClock, allow_bearer: bool) -> None:
    env = Env(clock, allow_bearer=allow_bearer)
    key, token, nonce, body = await _resource_setup(env)
    for headers in ((), (("DPoP", await env.dpop(key, CREDENTIAL, access_token=token)),)):
        request = HttpRequest.json(
            "POST", CREDENTIAL, body, [("Authorization", f"Bearer {token}"), *headers]
        )
        response = await env.send(request)
        assert_error(response, 401, "invalid_token", www_authenticate=True)
    assert env.claims.calls == 0
    assert await env.nonce_works(nonce, token, key)


async def test_dpop_scheme_without_proof(clock: FakeClock) -> None:
    env = Env(clock)
    key, token, nonce, body = await _resource_setup(env)
    request = HttpRequest.json("POST", CREDENTIAL, body, {"Authorization": f"DPoP {token}"})
    assert_error(await env.send(request), 401, "invalid_dpop_proof", www_authenticate=True)
    assert await env.nonce_works(nonce, token, key)


async def test_two_dpop_headers_at_credential_endpoint(clock: FakeClock) -> None:
    env = Env(clock)
    key, token, nonce, body = await _resource_setup(env)
    extra = (("DPoP", await env.dpop(key, CREDENTIAL, access_token=token)),)
    response = await env.credential(token, key, body, headers=extra)
    assert_error(response, 401, "invalid_dpop_proof", www_authenticate=True)
    assert await env.nonce_works(nonce, token, key)


async def test_no_credentials_and_two_authorization_headers(clock: FakeClock) -> None:
    env = Env(clock)
    key, token, nonce, body = await _resource_setup(env)
    # No Authorization at all: 401, a bare challenge, no body (RFC 6750 §3.1).
    response = await env.send(HttpRequest.json("POST", CREDENTIAL, body))
    assert response.status == 401
    assert response.headers.get("WWW-Authenticate") == f"DPoP {DPOP_ALGS}"
    assert response.headers.get("Cache-Control") == "no-store"
    assert response.body == b""
    # An unknown scheme is treated the same way.
    response = await env.send(
        HttpRequest.json("POST", CREDENTIAL, body, {"Authorization": f"Basic {token}"})
    )
    assert response.status == 401
    assert response.headers.get("WWW-Authenticate") == f"DPoP {DPOP_ALGS}"
    # Two Authorization headers: 400 invalid_request (ambiguous).
    proof = await env.dpop(key, CREDENTIAL, access_token=token)
    request = HttpRequest.json(
        "POST",
        CREDENTIAL,
        body,
        [("Authorization", f"DPoP {token}"), ("Authorization", f"DPoP {token}"), ("DPoP", proof)],
    )
    assert_error(await env.send(request), 400, "invalid_request", www_authenticate=True)
    assert env.claims.calls == 0
    assert await env.nonce_works(nonce, token, key)


@pytest.mark.parametrize("token_text", ["", "a b", "tok\u00e9n", "x" * 9000, "=abc", "abc==x"])
async def test_malformed_access_token(clock: FakeClock, token_text: str) -> None:
    env = Env(clock)
    key, token, nonce, body = await _resource_setup(env)
    proof = await env.dpop(key, CREDENTIAL, access_token=token)
    request = HttpRequest.json(
        "POST", CREDENTIAL, body, {"Authorization": f"DPoP {token_text}", "DPoP": proof}
    )
    response = await env.send(request)
    if token_text == "":
        assert response.status == 401
    else:
        assert_error(response, 401, "invalid_token", www_authenticate=True)
    assert await env.nonce_works(nonce, token, key)


async def test_replayed_proof_at_credential_endpoint(clock: FakeClock) -> None:
    env = Env(clock)
    key, token, _, body = await _resource_setup(env)
    proof = await env.dpop(key, CREDENTIAL, access_token=token)
    assert (await env.credential(token, key, body, proof=proof)).status == 200
    other = await env.c_nonce()
    body2 = {
        "credential_configuration_id": "pid",
        "proofs": {"jwt": [await env.key_proof(LocalSigner.generate(), other)]},
    }
    response = await env.credential(token, key, body2, proof=proof)
    assert_error(response, 401, "invalid_dpop_proof", www_authenticate=True)
    assert env.claims.calls == 1
    assert await env.nonce_works(other, token, key)


async def test_credential_endpoint_server_nonce(clock: FakeClock) -> None:
    env = Env(clock, require_dpop_nonce=True)
    key = LocalSigner.generate()
    code = await env.pre_auth_code()
    first = await env.redeem(code, key)
    nonce = first.headers.get("DPoP-Nonce")
    assert nonce is not None
    proof = await custom_dpop(env, key, claims={"nonce": nonce})
    response = await env.redeem(code, key, proof=proof)
    assert response.status == 200, response.body
    token = str(response.json_body()["access_token"])
    # The nonce endpoint hands out a c_nonce and a DPoP-Nonce.
    nonce_response = await env.send(HttpRequest(method="POST", url=NONCE))
    assert nonce_response.status == 200
    server_nonce = nonce_response.headers.get("DPoP-Nonce")
    assert server_nonce is not None
    c_nonce = str(nonce_response.json_body()["c_nonce"])
    body = {
        "credential_configuration_id": "pid",
        "proofs": {"jwt": [await env.key_proof(LocalSigner.generate(), c_nonce)]},
    }
    # Missing and wrong server nonce: 401 use_dpop_nonce + challenge + DPoP-Nonce.
    for proof in (
        await _resource_proof(env, key, token),
        await _resource_proof(env, key, token, nonce="B" * 32),
    ):
        response = await env.credential(token, key, body, proof=proof)
        assert_error(response, 401, "use_dpop_nonce", www_authenticate=True, dpop_nonce=True)
    assert env.claims.calls == 0
    response = await env.credential(
        token, key, body, proof=await _resource_proof(env, key, token, nonce=server_nonce)
    )
    assert response.status == 200, response.body
