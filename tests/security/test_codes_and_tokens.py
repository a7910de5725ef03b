"""Codes and tokens under attack: reuse, brute force, PKCE, client and redirect binding, PAR,
expiry and revocation."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer.access_token import revoke_grant
from oid4vci.issuer.authorization import REQUEST_URI_PREFIX
from oid4vci.issuer.store_keys import access_token_key
from oid4vci.jose import LocalSigner, jwk_thumbprint
from oid4vci.pkce import code_challenge, generate_code_verifier
from tests.conftest import FakeClock
from tests.security.support import (
    AUTHORIZE,
    CLIENT_ID,
    PAR,
    REDIRECT,
    TOKEN,
    TX_CODE,
    Env,
    assert_error,
    redirect_query,
)


def assert_page(response: HttpResponse, status: int, error: str) -> None:
    """An authorization error shown to the user (never redirected)."""
    assert response.status == status, (response.status, response.body)
    assert response.headers.get("Cache-Control") == "no-store"
    assert response.headers.get("Location") is None
    assert response.media_type == "text/html"
    assert f"<code>{error}</code>".encode() in response.body


async def credential_ok(env: Env, token: str, key: LocalSigner) -> bool:
    return await env.nonce_works(await env.c_nonce(), token, key)


# -- pre-authorized codes ------------------------------------------------------------------


async def test_pre_authorized_code_is_single_use(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code = await env.pre_auth_code()
    assert (await env.redeem(code, key)).status == 200
    for _ in range(3):
        assert_error(await env.redeem(code, key), 400, "invalid_grant")
        assert_error(await env.redeem(code, LocalSigner.generate()), 400, "invalid_grant")
    assert env.tokens_minted() == 1


async def test_pre_authorized_code_expires(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code = await env.pre_auth_code()
    clock.advance(601)
    assert_error(await env.redeem(code, key), 400, "invalid_grant")
    assert env.tokens_minted() == 0


@pytest.mark.parametrize("code", ["", "A" * 43, "pre_auth:x", "x" * 5000, "é"])
async def test_unknown_pre_authorized_codes(clock: FakeClock, code: str) -> None:
    env = Env(clock)
    response = await env.redeem(code, LocalSigner.generate())
    assert_error(response, 400, "invalid_request" if not code else "invalid_grant")
    assert env.tokens_minted() == 0


async def test_tx_code_limit_allows_mistakes_below_it(clock: FakeClock) -> None:
    env = Env(clock)  # tx_code_max_attempts = 5
    key = LocalSigner.generate()
    code = await env.pre_auth_code(tx_code=True)
    for guess in ("000000", "111111", "222222", "333333"):
        body = assert_error(await env.redeem(code, key, tx_code=guess), 400, "invalid_grant")
        assert body["error_description"] == "tx_code is wrong"
    assert (await env.redeem(code, key, tx_code=TX_CODE)).status == 200


async def test_tx_code_brute_force_burns_the_code(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code = await env.pre_auth_code(tx_code=True)
    for guess in range(5):
        assert_error(await env.redeem(code, key, tx_code=f"{guess:06d}"), 400, "invalid_grant")
    # The code is gone, even with the right tx_code.
    assert_error(await env.redeem(code, key, tx_code=TX_CODE), 400, "invalid_grant")
    assert env.tokens_minted() == 0


async def test_tx_code_missing_or_unexpected(clock: FakeClock) -> None:
    env = Env(clock, tx_code_max_attempts=1)
    key = LocalSigner.generate()
    code = await env.pre_auth_code(tx_code=True)
    # Missing tx_code: invalid_request, and it costs no attempt.
    for _ in range(3):
        body = assert_error(await env.redeem(code, key), 400, "invalid_request")
        assert body["error_description"] == "tx_code is required"
    assert (await env.redeem(code, key, tx_code=TX_CODE)).status == 200
    plain = await env.pre_auth_code()
    body = assert_error(await env.redeem(plain, key, tx_code=TX_CODE), 400, "invalid_request")
    assert body["error_description"] == "tx_code was not expected"
    assert (await env.redeem(plain, key)).status == 200


@pytest.mark.parametrize("guess", ["", " 493817", "493817 ", "４９３８１７", "4938170"])
async def test_tx_code_near_misses(clock: FakeClock, guess: str) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code = await env.pre_auth_code(tx_code=True)
    assert_error(await env.redeem(code, key, tx_code=guess), 400, "invalid_grant")
    assert (await env.redeem(code, key, tx_code=TX_CODE)).status == 200


async def test_anonymous_access_disabled(clock: FakeClock) -> None:
    env = Env(clock, pre_authorized_anonymous_access=False)
    key = LocalSigner.generate()
    code = await env.pre_auth_code()
    assert_error(await env.redeem(code, key), 400, "invalid_client")
    assert_error(await env.redeem(code, key, client_id=""), 400, "invalid_client")
    assert (await env.redeem(code, key, client_id=CLIENT_ID)).status == 200


# -- authorization codes -------------------------------------------------------------------


async def test_authorization_code_happy_path_then_reuse_revokes(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code, verifier = await env.authorization_code()
    response = await env.redeem_code(code, verifier, key)
    assert response.status == 200, response.body
    token = str(response.json_body()["access_token"])
    assert await credential_ok(env, token, key)
    # The code again (an attacker who saw it): refused, and the first token is revoked.
    assert_error(await env.redeem_code(code, verifier, key), 400, "invalid_grant")
    assert env.tokens_minted() == 1
    nonce = await env.c_nonce()
    response = await env.issue(token, key, [await env.key_proof(LocalSigner.generate(), nonce)])
    body = assert_error(response, 401, "invalid_token", www_authenticate=True)
    assert body["error_description"] == "access token revoked"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"code_verifier": "W" * 64}, "PKCE verification failed"),
        ({"code_verifier": "short"}, "PKCE verification failed"),
        ({"redirect_uri": "https://evil.example/cb"}, "redirect_uri does not match"),
        ({"redirect_uri": REDIRECT + "/"}, "redirect_uri does not match"),
        ({"client_id": "other-client"}, "code was issued to another client"),
    ],
)
async def test_authorization_code_binding(
    clock: FakeClock, overrides: dict[str, str], reason: str
) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code, verifier = await env.authorization_code()
    body = assert_error(
        await env.redeem_code(code, verifier, key, **overrides), 400, "invalid_grant"
    )
    assert body["error_description"] == reason
    # Single use: the failed attempt used the code up (no second guess), nothing was minted.
    assert_error(await env.redeem_code(code, verifier, key), 400, "invalid_grant")
    assert env.tokens_minted() == 0


@pytest.mark.parametrize("missing", ["code", "code_verifier", "redirect_uri", "client_id"])
async def test_authorization_code_missing_parameters_do_not_consume(
    clock: FakeClock, missing: str
) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code, verifier = await env.authorization_code()
    response = await env.redeem_code(code, verifier, key, **{missing: ""})
    assert_error(response, 400, "invalid_request")
    assert (await env.redeem_code(code, verifier, key)).status == 200


async def test_authorization_code_expires(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code, verifier = await env.authorization_code()
    clock.advance(61)
    assert_error(await env.redeem_code(code, verifier, key), 400, "invalid_grant")
    assert env.tokens_minted() == 0


async def test_dpop_jkt_binding(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code, verifier = await env.authorization_code(dpop_jkt=jwk_thumbprint(key.public_jwk))
    thief = LocalSigner.generate()
    body = assert_error(await env.redeem_code(code, verifier, thief), 400, "invalid_grant")
    assert body["error_description"] == "DPoP key does not match dpop_jkt"
    assert env.tokens_minted() == 0
    code, verifier = await env.authorization_code(dpop_jkt=jwk_thumbprint(key.public_jwk))
    assert (await env.redeem_code(code, verifier, key)).status == 200


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": ""}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "nothing-known"}, "invalid_scope"),
        ({"issuer_state": "made-up"}, "invalid_request"),
        ({"dpop_jkt": "not-a-thumbprint"}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
        ({"request": "eyJ..."}, "request_not_supported"),
    ],
)
async def test_authorization_errors_are_redirected_without_a_code(
    clock: FakeClock, params: dict[str, str], error: str
) -> None:
    env = Env(clock)
    verifier = generate_code_verifier()
    response = await env.authorize(env.authorization_params(verifier, **params))
    assert response.status == 303
    assert response.headers.get("Cache-Control") == "no-store"
    query = redirect_query(response)
    assert query["error"] == error
    assert query["state"] == "st-1"
    assert "code" not in query
    assert env.store.count("code:") == 0


@pytest.mark.parametrize(
    "params",
    [
        {"redirect_uri": "http://evil.example/cb"},
        {"redirect_uri": "https://wallet.example.org/cb#frag"},
        {"redirect_uri": "javascript:alert(1)"},
        {"redirect_uri": ""},
        {"client_id": ""},
    ],
)
async def test_bad_redirect_uri_is_never_redirected(
    clock: FakeClock, params: dict[str, str]
) -> None:
    env = Env(clock)
    verifier = generate_code_verifier()
    response = await env.authorize(env.authorization_params(verifier, **params))
    assert_page(response, 400, "invalid_request")
    assert env.store.count("code:") == 0


# -- PAR -------------------------------------------------------------------------------------


def par_params(env: Env, verifier: str, **extra: str) -> dict[str, str]:
    params = env.authorization_params(verifier)
    params.update(extra)
    return params


async def push(env: Env, verifier: str, **extra: str) -> str:
    response = await env.par(par_params(env, verifier, **extra))
    assert response.status == 201, response.body
    assert response.headers.get("Cache-Control") == "no-store"
    body = response.json_body()
    assert body["expires_in"] == 60
    request_uri = str(body["request_uri"])
    assert request_uri.startswith(REQUEST_URI_PREFIX)
    return request_uri


async def front_channel(env: Env, request_uri: str, client_id: str = CLIENT_ID) -> HttpResponse:
    query = urlencode({"client_id": client_id, "request_uri": request_uri})
    return await env.send(HttpRequest(method="GET", url=f"{AUTHORIZE}?{query}"))


async def test_par_request_uri_is_single_use(clock: FakeClock) -> None:
    env = Env(clock)
    verifier = generate_code_verifier()
    request_uri = await push(env, verifier)
    first = await front_channel(env, request_uri)
    assert first.status == 303
    code = redirect_query(first)["code"]
    assert_page(await front_channel(env, request_uri), 400, "invalid_request_uri")
    assert (await env.redeem_code(code, verifier, LocalSigner.generate())).status == 200


async def test_par_request_uri_expires(clock: FakeClock) -> None:
    env = Env(clock)
    request_uri = await push(env, generate_code_verifier())
    clock.advance(61)
    assert_page(await front_channel(env, request_uri), 400, "invalid_request_uri")


@pytest.mark.parametrize(
    "request_uri",
    [REQUEST_URI_PREFIX + "made-up", "https://evil.example/request", "", REQUEST_URI_PREFIX],
)
async def test_par_unknown_request_uri(clock: FakeClock, request_uri: str) -> None:
    env = Env(clock)
    assert_page(await front_channel(env, request_uri), 400, "invalid_request_uri")


async def test_par_request_uri_of_another_client(clock: FakeClock) -> None:
    env = Env(clock)
    request_uri = await push(env, generate_code_verifier())
    assert_page(await front_channel(env, request_uri, "other-client"), 400, "invalid_request_uri")
    # The other client's attempt did not use up the pushed request.
    assert (await front_channel(env, request_uri)).status == 303


async def test_par_front_channel_parameters_cannot_override(clock: FakeClock) -> None:
    env = Env(clock)
    verifier = generate_code_verifier()
    request_uri = await push(env, verifier)
    query = urlencode(
        {
            "client_id": CLIENT_ID,
            "request_uri": request_uri,
            "redirect_uri": "https://evil.example/cb",
            "code_challenge": code_challenge(generate_code_verifier()),
        }
    )
    response = await env.send(HttpRequest(method="GET", url=f"{AUTHORIZE}?{query}"))
    assert response.status == 303
    location = response.headers.get("Location")
    assert location is not None and location.startswith(REDIRECT + "?")
    code = redirect_query(response)["code"]
    assert (await env.redeem_code(code, verifier, LocalSigner.generate())).status == 200


async def test_require_par(clock: FakeClock) -> None:
    env = Env(clock, require_par=True)
    response = await env.authorize(env.authorization_params(generate_code_verifier()))
    assert response.status == 303
    assert redirect_query(response)["error"] == "invalid_request"
    assert env.store.count("code:") == 0


async def test_par_dpop_header_and_dpop_jkt_must_agree(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    other = LocalSigner.generate()
    params = par_params(env, generate_code_verifier(), dpop_jkt=jwk_thumbprint(other.public_jwk))
    response = await env.par(params, headers=[("DPoP", await env.dpop(key, PAR))])
    assert_error(response, 400, "invalid_dpop_proof")
    assert env.store.count("par:") == 0
    # A DPoP proof for another endpoint is refused too.
    params = par_params(env, generate_code_verifier())
    response = await env.par(params, headers=[("DPoP", await env.dpop(key, TOKEN))])
    assert_error(response, 400, "invalid_dpop_proof")
    assert env.store.count("par:") == 0


async def test_par_dpop_header_binds_the_code(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    verifier = generate_code_verifier()
    response = await env.par(
        par_params(env, verifier), headers=[("DPoP", await env.dpop(key, PAR))]
    )
    assert response.status == 201
    redirect = await front_channel(env, str(response.json_body()["request_uri"]))
    code = redirect_query(redirect)["code"]
    thief = LocalSigner.generate()
    assert_error(await env.redeem_code(code, verifier, thief), 400, "invalid_grant")


# -- access tokens ---------------------------------------------------------------------------


async def test_revoked_token(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    context = await env.store.get(access_token_key(token))
    assert isinstance(context, dict)
    await revoke_grant(str(context["grant_id"]), env.config)
    nonce = await env.c_nonce()
    response = await env.issue(token, key, [await env.key_proof(LocalSigner.generate(), nonce)])
    body = assert_error(response, 401, "invalid_token", www_authenticate=True)
    assert body["error_description"] == "access token revoked"
    assert env.claims.calls == 0
    assert await env.nonce_works(nonce, await env.access_token(key), key)


async def test_expired_token(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    clock.advance(601)
    nonce = await env.c_nonce()
    response = await env.issue(token, key, [await env.key_proof(LocalSigner.generate(), nonce)])
    assert_error(response, 401, "invalid_token", www_authenticate=True)
    assert env.claims.calls == 0


async def test_unknown_token_and_token_of_other_tenant(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    # A token minted by another tenant (same store, other issuer identifier).
    tenant = Env(clock)
    tenant.config = env.config.for_issuer("https://tenant.example.com")
    from oid4vci.issuer import Issuer

    tenant.issuer = Issuer(tenant.config)
    code = await tenant.pre_auth_code()
    proof = await tenant.dpop(key, "https://tenant.example.com/token")
    response = await tenant.send(
        HttpRequest.form(
            "POST",
            "https://tenant.example.com/token",
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code",
                "pre-authorized_code": code,
            },
            {"DPoP": proof},
        )
    )
    assert response.status == 200, response.body
    foreign = str(response.json_body()["access_token"])
    for token in (foreign, "A" * 43):
        nonce = await env.c_nonce()
        response = await env.issue(token, key, [await env.key_proof(LocalSigner.generate(), nonce)])
        assert_error(response, 401, "invalid_token", www_authenticate=True)
    assert env.claims.calls == 0
