"""Floods and races: a bounded store under a flood, and single-use values used in parallel.

The store refuses new entries when full of live ones (503 ``temporarily_unavailable``) instead
of evicting what honest flows depend on; once the flood's entries expire, honest clients carry
on. Parallel use of one pre-authorized code, one DPoP proof or one ``c_nonce`` succeeds exactly
once — also with a store that yields to the event loop between operations (as a networked
store would).
"""

from __future__ import annotations

from urllib.parse import urlencode

import anyio
import pytest

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import PendingLogin, Respond, store_keys
from oid4vci.issuer.access_token import grant_is_revoked
from oid4vci.issuer.flood_limits import FloodLimits
from oid4vci.issuer.responses import html_response
from oid4vci.issuer.store_keys import access_token_key
from oid4vci.jose import LocalSigner
from oid4vci.models import PRE_AUTHORIZED_CODE_GRANT
from oid4vci.pkce import generate_code_verifier
from tests.conftest import FakeClock
from tests.security.support import (
    AUTHORIZE,
    CLIENT_ID,
    NONCE,
    PAR,
    TOKEN,
    TX_CODE,
    Env,
    assert_error,
)

PARALLEL = 50


def assert_unavailable(response: HttpResponse, *, retry_after: bool) -> None:
    assert_error(response, 503, "temporarily_unavailable")
    if retry_after:
        assert response.headers.get("Retry-After") == "5"


async def flood(env: Env, request: HttpRequest, limit: int) -> int:
    """Send ``request`` until refused; returns how many were accepted."""
    for accepted in range(limit):
        response = await env.send(request)
        if response.status == 503:
            return accepted
        assert response.status in (200, 201), response.body
    raise AssertionError("the store never filled up")


async def test_nonce_flood_writes_nothing(clock: FakeClock) -> None:
    """Stateless nonces: a flood of nonce requests neither fills the store nor refuses anyone."""
    env = Env(clock, max_entries=40)
    key = LocalSigner.generate()
    code = await env.pre_auth_code()
    held = len(env.store)
    for _ in range(500):
        assert (await env.send(HttpRequest(method="POST", url=NONCE))).status == 200
    assert len(env.store) == held
    response = await env.redeem(code, key)
    assert response.status == 200, response.body
    token = str(response.json_body()["access_token"])
    assert await env.nonce_works(await env.c_nonce(), token, key)


# The next tests show the store's own bound, with the quotas off (NO_QUOTAS); the quotas that
# keep a flood of one kind from filling it are tested in tests/issuer/test_flood_limits.py.
NO_QUOTAS = FloodLimits(quotas={})


async def test_flood_is_bounded_and_spares_live_codes(clock: FakeClock) -> None:
    env = Env(clock, max_entries=40, flood_limits=NO_QUOTAS)
    key = LocalSigner.generate()
    code = await env.pre_auth_code()
    params = env.authorization_params("v" * 64)
    accepted = await flood(env, HttpRequest.form("POST", PAR, params), 500)
    assert accepted == 39
    assert len(env.store) == 40
    # More flooding stays refused, and memory stays bounded.
    for _ in range(20):
        response = await env.send(HttpRequest.form("POST", PAR, params))
        assert_unavailable(response, retry_after=False)
    assert len(env.store) == 40
    # The honest wallet is told to retry later; its code is not lost.
    assert_unavailable(await env.redeem(code, key), retry_after=False)
    assert await env.store.get(store_keys.pre_authorized_code_key(code)) is not None
    assert env.tokens_minted() == 0
    # Once the flood's entries expire (60 s; the code lives 600 s) everything works again.
    clock.advance(61)
    response = await env.redeem(code, key)
    assert response.status == 200, response.body
    token = str(response.json_body()["access_token"])
    assert await env.nonce_works(await env.c_nonce(), token, key)


async def test_par_flood_spares_live_nonces_and_tokens(clock: FakeClock) -> None:
    env = Env(clock, max_entries=30, flood_limits=NO_QUOTAS)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    params = env.authorization_params("v" * 64)
    accepted = await flood(env, HttpRequest.form("POST", PAR, params), 500)
    assert accepted > 0
    assert len(env.store) == 30
    assert_unavailable(await env.send(HttpRequest.form("POST", PAR, params)), retry_after=False)
    # While full, a credential request cannot even record its DPoP jti: 503, nonce kept.
    holder = LocalSigner.generate()
    response = await env.issue(token, key, [await env.key_proof(holder, nonce)])
    assert_unavailable(response, retry_after=True)
    assert env.claims.calls == 0
    assert len(env.store) == 30
    # PAR entries live 60 s; the token (600 s) and the c_nonce (300 s) survive them.
    clock.advance(61)
    assert await env.nonce_works(nonce, token, key)
    assert (await env.send(HttpRequest.form("POST", PAR, params))).status == 201


async def test_authorization_endpoint_flood_is_bounded(clock: FakeClock) -> None:
    async def login_page(request: HttpRequest, pending: PendingLogin) -> Respond:
        return Respond(response=html_response(200, "<form></form>"))

    env = Env(clock, max_entries=20, user_authenticator=login_page, flood_limits=NO_QUOTAS)
    url = f"{AUTHORIZE}?{urlencode(env.authorization_params('v' * 64))}"
    statuses = [(await env.send(HttpRequest(method="GET", url=url))).status for _ in range(40)]
    assert statuses[:20] == [200] * 20
    assert set(statuses[20:]) == {503}
    assert len(env.store) == 20
    clock.advance(601)
    assert (await env.send(HttpRequest(method="GET", url=url))).status == 200


# -- races -----------------------------------------------------------------------------------


@pytest.mark.parametrize("yielding", [False, True])
async def test_parallel_redemption_of_one_code(clock: FakeClock, yielding: bool) -> None:
    env = Env(clock, yielding=yielding)
    code = await env.pre_auth_code()
    results: list[HttpResponse] = []

    async def redeem() -> None:
        results.append(await env.redeem(code, LocalSigner.generate()))

    async with anyio.create_task_group() as tg:
        for _ in range(PARALLEL):
            tg.start_soon(redeem)
    assert len(results) == PARALLEL
    assert sorted(r.status for r in results) == [200] + [400] * (PARALLEL - 1)
    for response in results:
        if response.status == 400:
            assert_error(response, 400, "invalid_grant")
    assert env.tokens_minted() == 1


@pytest.mark.parametrize("yielding", [False, True])
async def test_parallel_tx_code_guessing(clock: FakeClock, yielding: bool) -> None:
    env = Env(clock, yielding=yielding)
    key = LocalSigner.generate()
    code = await env.pre_auth_code(tx_code=True)
    results: list[HttpResponse] = []

    async def guess(value: str) -> None:
        results.append(await env.redeem(code, LocalSigner.generate(), tx_code=value))

    async with anyio.create_task_group() as tg:
        for n in range(PARALLEL):
            tg.start_soon(guess, f"{n:06d}")
    assert {r.status for r in results} == {400}
    # Parallel guesses could not exceed the limit: the code is burned.
    assert_error(await env.redeem(code, key, tx_code=TX_CODE), 400, "invalid_grant")
    assert env.tokens_minted() == 0


@pytest.mark.parametrize("yielding", [False, True])
async def test_parallel_correct_tx_code(clock: FakeClock, yielding: bool) -> None:
    env = Env(clock, yielding=yielding)
    code = await env.pre_auth_code(tx_code=True)
    results: list[HttpResponse] = []

    async def redeem() -> None:
        results.append(await env.redeem(code, LocalSigner.generate(), tx_code=TX_CODE))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(redeem)
    assert sorted(r.status for r in results) == [200] + [400] * 19
    assert env.tokens_minted() == 1


@pytest.mark.parametrize("yielding", [False, True])
async def test_parallel_replay_of_one_dpop_proof(clock: FakeClock, yielding: bool) -> None:
    env = Env(clock, yielding=yielding)
    key = LocalSigner.generate()
    codes = [await env.pre_auth_code() for _ in range(PARALLEL)]
    proof = await env.dpop(key, TOKEN)
    results: dict[str, HttpResponse] = {}

    async def redeem(code: str) -> None:
        results[code] = await env.redeem(code, key, proof=proof)

    async with anyio.create_task_group() as tg:
        for code in codes:
            tg.start_soon(redeem, code)
    accepted = [code for code, r in results.items() if r.status == 200]
    assert len(accepted) == 1
    for code, response in results.items():
        if code not in accepted:
            assert_error(response, 400, "invalid_dpop_proof")
    assert env.tokens_minted() == 1
    # Every other code is still redeemable with a fresh proof.
    for code in codes:
        if code not in accepted:
            assert (await env.redeem(code, key)).status == 200
    assert env.tokens_minted() == PARALLEL


@pytest.mark.parametrize("yielding", [False, True])
async def test_parallel_use_of_one_c_nonce(clock: FakeClock, yielding: bool) -> None:
    env = Env(clock, yielding=yielding)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    results: list[HttpResponse] = []

    async def request() -> None:
        proof = await env.key_proof(LocalSigner.generate(), nonce)
        results.append(await env.issue(token, key, [proof]))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(request)
    assert sorted(r.status for r in results) == [200] + [400] * 19
    for response in results:
        if response.status == 400:
            assert_error(response, 400, "invalid_nonce")
    assert env.claims.calls == 1


async def test_parallel_authorization_code_redemption(clock: FakeClock) -> None:
    env = Env(clock, yielding=True)
    code, verifier = await env.authorization_code()
    results: list[HttpResponse] = []

    async def redeem() -> None:
        results.append(await env.redeem_code(code, verifier, LocalSigner.generate()))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(redeem)
    statuses = sorted(r.status for r in results)
    assert statuses == [200] + [400] * 19
    assert env.tokens_minted() == 1
    token = next(str(r.json_body()["access_token"]) for r in results if r.status == 200)
    # The replays revoked what the code issued.
    stored = await env.store.get(access_token_key(token))
    assert isinstance(stored, dict)
    assert await grant_is_revoked(str(stored["grant_id"]), env.config)


async def test_token_flood_with_one_form(clock: FakeClock) -> None:
    """Token requests with unknown codes write nothing, not even their DPoP jtis."""
    env = Env(clock, max_entries=100)
    key = LocalSigner.generate()
    for n in range(60):
        response = await env.token_request(
            {"grant_type": PRE_AUTHORIZED_CODE_GRANT, "pre-authorized_code": f"guess-{n}"}, key
        )
        assert_error(response, 400, "invalid_grant")
    assert len(env.store) == 0  # the code is checked before the proof's jti is recorded
    code = await env.pre_auth_code()
    assert (await env.redeem(code, key)).status == 200


async def test_a_quota_refusal_leaves_the_pushed_request_usable(clock: FakeClock) -> None:
    """503 with Retry-After asks the wallet to send the same request again (RFC 9110
    §15.6.4): its single-use ``request_uri`` must not have been spent by the refusal."""
    env = Env(clock, flood_limits=FloodLimits(quotas={"authorization_request": 2, "par": 100}))
    for i in range(3):  # anybody can fill the quota with front-channel requests
        params = env.authorization_params(
            generate_code_verifier(), client_id=f"flooder-{i}", redirect_uri="https://f.example/cb"
        )
        await env.authorize(params)
    clock.advance(env.config.pending_authorization_ttl - 3)  # the end of the quota's window
    pushed = await env.par(env.authorization_params(generate_code_verifier()))
    request_uri = pushed.json_body()["request_uri"]
    refused = await env.authorize({"client_id": CLIENT_ID, "request_uri": request_uri})
    assert refused.status == 503 and refused.headers.get("Retry-After")
    clock.advance(int(refused.headers.get("Retry-After") or 0))
    retried = await env.authorize({"client_id": CLIENT_ID, "request_uri": request_uri})
    assert retried.status == 303, retried.body
    assert "error=" not in (retried.headers.get("Location") or "")
