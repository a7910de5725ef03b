"""Hostile key proofs at the credential endpoint.

By design (see :mod:`oid4vci.issuer.proof`) every proof of a request is verified before the
``c_nonce`` is consumed, once per request: a request refused for a bad proof leaves the
``c_nonce`` usable; a request whose proofs all verify consumes it even when issuance is then
refused. Nothing is issued for a refused request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest

from oid4vci.errors import CredentialRequestError, ErrorCode
from oid4vci.http import HttpRequest
from oid4vci.jose import LocalSigner, b64url_encode, create_jws
from oid4vci.sdjwt import parse_sd_jwt
from oid4vci.versions import SpecVersion
from tests.conftest import FakeClock
from tests.security.support import (
    CREDENTIAL,
    ISSUER,
    PROOF_TYP,
    Env,
    assert_error,
    hs256_jws,
    unsigned_jws,
)

ProofsMaker = Callable[[Env, str], Awaitable[list[str]]]


def one(**kwargs: Any) -> ProofsMaker:
    async def make(env: Env, nonce: str) -> list[str]:
        return [await env.key_proof(LocalSigner.generate(), nonce, **kwargs)]

    return make


async def _private_jwk(env: Env, nonce: str) -> list[str]:
    holder = LocalSigner.generate()
    return [await env.key_proof(holder, nonce, header={"jwk": holder.private_jwk()})]


async def _jwk_and_kid(env: Env, nonce: str) -> list[str]:
    holder = LocalSigner.generate()
    return [await env.key_proof(holder, nonce, header={"kid": "did:example:123#0"})]


async def _did_jwk_and_jwk(env: Env, nonce: str) -> list[str]:
    import json

    holder = LocalSigner.generate()
    did = "did:jwk:" + b64url_encode(json.dumps(holder.public_jwk).encode()) + "#0"
    return [await env.key_proof(holder, nonce, header={"kid": did})]


async def _no_key(env: Env, nonce: str) -> list[str]:
    return [await env.key_proof(LocalSigner.generate(), nonce, drop=("jwk",))]


async def _unresolvable_kid(env: Env, nonce: str) -> list[str]:
    return [
        await env.key_proof(
            LocalSigner.generate(), nonce, header={"kid": "did:web:evil.example"}, drop=("jwk",)
        )
    ]


async def _other_signer(env: Env, nonce: str) -> list[str]:
    named = LocalSigner.generate()
    body = {"aud": ISSUER, "iat": int(env.clock()), "nonce": nonce}
    return [
        await create_jws(LocalSigner.generate(), body, {"typ": PROOF_TYP, "jwk": named.public_jwk})
    ]


async def _alg_none(env: Env, nonce: str) -> list[str]:
    holder = LocalSigner.generate()
    body = {"aud": ISSUER, "iat": int(env.clock()), "nonce": nonce}
    return [unsigned_jws({"typ": PROOF_TYP, "alg": "none", "jwk": holder.public_jwk}, body, b"")]


async def _alg_hs256(env: Env, nonce: str) -> list[str]:
    holder = LocalSigner.generate()
    body = {"aud": ISSUER, "iat": int(env.clock()), "nonce": nonce}
    secret = holder.public_jwk["x"].encode()
    return [hs256_jws({"typ": PROOF_TYP, "jwk": holder.public_jwk}, body, secret)]


async def _alg_not_allowed(env: Env, nonce: str) -> list[str]:
    return [await env.key_proof(LocalSigner.generate("ES512"), nonce)]


async def _too_many(env: Env, nonce: str) -> list[str]:
    # batch_size is 3 in the test configuration.
    return [await env.key_proof(LocalSigner.generate(), nonce) for _ in range(4)]


async def _same_key_twice(env: Env, nonce: str) -> list[str]:
    holder = LocalSigner.generate()
    return [await env.key_proof(holder, nonce), await env.key_proof(holder, nonce)]


async def _mixed_nonces(env: Env, nonce: str) -> list[str]:
    other = await env.c_nonce()
    return [
        await env.key_proof(LocalSigner.generate(), nonce),
        await env.key_proof(LocalSigner.generate(), other),
    ]


async def _one_bad_in_batch(env: Env, nonce: str) -> list[str]:
    return [
        await env.key_proof(LocalSigner.generate(), nonce),
        await env.key_proof(LocalSigner.generate(), nonce, claims={"aud": "https://evil.example"}),
    ]


async def _garbage(env: Env, nonce: str) -> list[str]:
    return ["eyJhbGciOiJFUzI1NiJ9.e30.AAAA", "..", "x" * 5000][:1]


INVALID_PROOF_CASES: list[tuple[str, ProofsMaker]] = [
    ("no-nonce", one(drop=("nonce",))),
    ("nonce-number", one(claims={"nonce": 12345})),
    ("wrong-aud", one(claims={"aud": "https://evil.example"})),
    ("aud-list-without-issuer", one(claims={"aud": ["https://evil.example"]})),
    ("aud-missing", one(drop=("aud",))),
    ("aud-trailing-slash", one(claims={"aud": ISSUER + "/"})),
    ("typ-missing", one(drop=("typ",))),
    ("typ-jwt", one(header={"typ": "JWT"})),
    ("typ-dpop", one(header={"typ": "dpop+jwt"})),
    ("iat-stale", one(claims={"iat": 1_750_000_000 - 301})),
    ("iat-future", one(claims={"iat": 1_750_000_000 + 61})),
    ("iat-missing", one(drop=("iat",))),
    ("iat-string", one(claims={"iat": "1750000000"})),
    ("iss-on-anonymous-grant", one(claims={"iss": "wallet-client"})),
    ("private-jwk", _private_jwk),
    ("jwk-and-kid", _jwk_and_kid),
    ("jwk-and-did-jwk", _did_jwk_and_jwk),
    ("no-key", _no_key),
    ("unresolvable-kid", _unresolvable_kid),
    ("x5c-garbage", one(header={"x5c": ["!!"]}, drop=("jwk",))),
    ("signed-by-other-key", _other_signer),
    ("alg-none", _alg_none),
    ("alg-hs256", _alg_hs256),
    ("alg-not-allowed", _alg_not_allowed),
    ("crit", one(header={"crit": ["x"], "x": 1})),
    ("more-than-batch-size", _too_many),
    ("same-key-twice", _same_key_twice),
    ("mixed-nonces", _mixed_nonces),
    ("one-bad-in-batch", _one_bad_in_batch),
    ("garbage", _garbage),
]


@pytest.mark.parametrize("make", [pytest.param(m, id=i) for i, m in INVALID_PROOF_CASES])
async def test_invalid_proofs_leave_the_nonce_usable(clock: FakeClock, make: ProofsMaker) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    response = await env.issue(token, key, await make(env, nonce))
    assert_error(response, 400, "invalid_proof")
    assert env.claims.calls == 0
    assert env.store.count("notification:") == 0
    assert await env.nonce_works(nonce, token, key)


async def test_unknown_nonce(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    for nonce in ("A" * 32, "short", "x" * 500, "not valid!"):
        response = await env.issue(token, key, [await env.key_proof(LocalSigner.generate(), nonce)])
        assert_error(response, 400, "invalid_nonce")
    assert env.claims.calls == 0


async def test_expired_nonce(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    clock.advance(301)
    response = await env.issue(token, key, [await env.key_proof(LocalSigner.generate(), nonce)])
    assert_error(response, 400, "invalid_nonce")
    assert env.claims.calls == 0
    assert await env.nonce_works(await env.c_nonce(), token, key)


async def test_reused_nonce_and_batch(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    holders = [LocalSigner.generate() for _ in range(3)]
    proofs = [await env.key_proof(h, nonce) for h in holders]
    response = await env.issue(token, key, proofs)
    assert response.status == 200, response.body
    credentials = response.json_body()["credentials"]
    assert len(credentials) == 3
    # One credential per key, bound to that key.
    for holder, item in zip(holders, credentials, strict=True):
        parsed = parse_sd_jwt(item["credential"])
        assert parsed.jws.payload["cnf"]["jwk"]["x"] == holder.public_jwk["x"]
    # The same proofs again, and new proofs with the same nonce: invalid_nonce.
    assert_error(await env.issue(token, key, proofs), 400, "invalid_nonce")
    fresh = [await env.key_proof(LocalSigner.generate(), nonce)]
    assert_error(await env.issue(token, key, fresh), 400, "invalid_nonce")
    assert env.claims.calls == 1


async def test_denied_issuance_consumes_the_nonce(clock: FakeClock) -> None:
    """Proofs verified → the nonce is used up, even though issuance is then refused."""

    async def deny(subject: str, configuration_id: str) -> Mapping[str, Any]:
        raise CredentialRequestError(ErrorCode.CREDENTIAL_REQUEST_DENIED, "no")

    env = Env(clock, claims_source=deny)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    proof = [await env.key_proof(LocalSigner.generate(), nonce)]
    assert_error(await env.issue(token, key, proof), 400, "credential_request_denied")
    assert_error(await env.issue(token, key, proof), 400, "invalid_nonce")
    assert env.store.count("notification:") == 0


async def test_nonce_from_another_tenant_store_is_unknown(clock: FakeClock) -> None:
    """A c_nonce minted by one issuer (tenant) is not valid at another."""
    env = Env(clock)
    other = env.config.for_issuer("https://other.example.com")
    from oid4vci.issuer.nonce import create_c_nonce

    foreign = await create_c_nonce(other)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    response = await env.issue(token, key, [await env.key_proof(LocalSigner.generate(), foreign)])
    assert_error(response, 400, "invalid_nonce")


async def test_singular_proof_counts_as_batch_of_one(clock: FakeClock) -> None:
    """A Draft 15 ``proof`` member carries exactly one proof."""
    env = Env(clock, published_version=SpecVersion.DRAFT_15)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    body = {
        "credential_configuration_id": "pid",
        "proof": {
            "proof_type": "jwt",
            "jwt": [await env.key_proof(LocalSigner.generate(), nonce)] * 2,
        },
    }
    response = await env.credential(token, key, body)
    assert_error(response, 400, "invalid_proof")
    assert await env.nonce_works(nonce, token, key)


async def test_draft13_invalid_proof_carries_a_fresh_nonce(clock: FakeClock) -> None:
    env = Env(clock, published_version=SpecVersion.DRAFT_13)
    key = LocalSigner.generate()
    response = await env.redeem(await env.pre_auth_code(), key)
    assert response.status == 200
    token_body = response.json_body()
    token = str(token_body["access_token"])
    nonce = str(token_body["c_nonce"])
    holder = LocalSigner.generate()
    vct = env.config.credential_configurations["pid"].vct

    async def request(proof: str) -> Any:
        body = {"format": "vc+sd-jwt", "vct": vct, "proof": {"proof_type": "jwt", "jwt": proof}}
        return await env.credential(token, key, body)

    # A bad proof: invalid_proof with a fresh c_nonce; the original is still usable.
    bad = await env.key_proof(holder, nonce, claims={"aud": "https://evil.example"})
    body = assert_error(await request(bad), 400, "invalid_proof")
    fresh = body["c_nonce"]
    assert isinstance(fresh, str) and fresh != nonce
    assert body["c_nonce_expires_in"] == 300
    # An unknown nonce: invalid_proof (Draft 13 has no invalid_nonce), again a fresh one.
    body = assert_error(await request(await env.key_proof(holder, "Z" * 32)), 400, "invalid_proof")
    assert body["c_nonce"] not in (nonce, fresh)
    ok = await request(await env.key_proof(holder, nonce))
    assert ok.status == 200, ok.body
    ok = await request(await env.key_proof(LocalSigner.generate(), fresh))
    assert ok.status == 200, ok.body


async def test_proofs_by_a_registered_client(clock: FakeClock) -> None:
    """With a client_id on the grant, ``iss`` may be absent or that client, nothing else."""
    env = Env(clock)
    key = LocalSigner.generate()
    code = await env.pre_auth_code()
    response = await env.redeem(code, key, client_id="wallet-client")
    token = str(response.json_body()["access_token"])
    nonce = await env.c_nonce()
    bad = await env.key_proof(LocalSigner.generate(), nonce, claims={"iss": "someone-else"})
    assert_error(await env.issue(token, key, [bad]), 400, "invalid_proof")
    good = await env.key_proof(LocalSigner.generate(), nonce, claims={"iss": "wallet-client"})
    assert (await env.issue(token, key, [good])).status == 200


async def test_credential_endpoint_method(clock: FakeClock) -> None:
    env = Env(clock)
    response = await env.send(HttpRequest(method="GET", url=CREDENTIAL))
    assert_error(response, 405, "invalid_request")
    assert response.headers.get("Allow") == "POST"
