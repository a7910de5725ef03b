"""Resource-server authentication: DPoP/Bearer tokens, exact WWW-Authenticate challenges,
external RFC 9068 JWT access tokens, nonce helpers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from oid4vci._wire import record_from_json, record_to_json
from oid4vci.dpop import build_dpop_jwt
from oid4vci.errors import TokenError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer.access_token import (
    TokenContext,
    create_access_token,
    create_dpop_nonce,
    is_live_dpop_nonce,
    revoke_grant,
    verify_access_token,
)
from oid4vci.issuer.config import (
    CredentialConfigurationSpec,
    ExternalAuthorizationServer,
    IssuerConfig,
)
from oid4vci.issuer.nonce import create_c_nonce, take_c_nonce
from oid4vci.issuer.responses import ResourceServerError, create_error_response
from oid4vci.issuer.store import MemoryStore
from oid4vci.jose import LocalSigner, create_jws, jwk_thumbprint
from oid4vci.versions import SpecVersion
from tests.conftest import FakeClock

ISSUER = "https://issuer.example.com"
CREDENTIAL = ISSUER + "/credential"
AS = "https://as.example.com"
ALGS = 'algs="ES256 ES384 EdDSA"'


async def _claims(subject: str, configuration_id: str) -> Mapping[str, Any]:
    return {}


def make_config(clock: FakeClock, **overrides: Any) -> IssuerConfig:
    return IssuerConfig(
        credential_issuer=ISSUER,
        credential_signer=LocalSigner.generate(),
        credential_configurations=[
            CredentialConfigurationSpec(id="pid", vct="urn:pid", scope="pid_scope"),
            CredentialConfigurationSpec(id="mdl", vct="urn:mdl"),
        ],
        claims_source=_claims,
        store=MemoryStore(clock=clock),
        clock=clock,
        **overrides,
    )


def context(jkt: str | None, **overrides: Any) -> TokenContext:
    values: dict[str, Any] = {
        "grant_id": "g1",
        "subject": "alice",
        "client_id": "wallet",
        "jkt": jkt,
        "token_type": "DPoP" if jkt else "Bearer",
        "configuration_ids": ("pid",),
        "credential_identifiers": {"pid-1": "pid"},
        "version": SpecVersion.V1,
    }
    values.update(overrides)
    return TokenContext(**values)


async def request_with(
    clock: FakeClock,
    authorization: str | None,
    key: LocalSigner | None = None,
    *,
    token: str | None = None,
    nonce: str | None = None,
    url: str = CREDENTIAL,
) -> HttpRequest:
    headers: list[tuple[str, str]] = []
    if authorization is not None:
        headers.append(("Authorization", authorization))
    if key is not None:
        proof = await build_dpop_jwt(key, "POST", url, access_token=token, nonce=nonce, clock=clock)
        headers.append(("DPoP", proof))
    return HttpRequest.json("POST", CREDENTIAL, {}, headers)


async def refused(request: HttpRequest, config: IssuerConfig) -> HttpResponse:
    with pytest.raises(ResourceServerError) as info:
        await verify_access_token(request, config)
    response = create_error_response(info.value)
    assert response.headers.get("Cache-Control") == "no-store"
    return response


async def test_valid_dpop_token(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    token, expires_in = await create_access_token(context(jwk_thumbprint(key.public_jwk)), config)
    assert expires_in == 600
    request = await request_with(clock, f"DPoP {token}", key, token=token)
    ctx = await verify_access_token(request, config)
    assert ctx.subject == "alice"
    assert ctx.configuration_for_identifier("pid-1") == "pid"
    assert ctx.expires_at == clock.now + 600
    assert token not in repr(ctx)


async def test_missing_authorization_challenge(clock: FakeClock) -> None:
    response = await refused(await request_with(clock, None), make_config(clock))
    assert response.status == 401
    assert response.headers.get_all("WWW-Authenticate") == [f"DPoP {ALGS}"]
    assert response.body == b""
    with_bearer = await refused(
        await request_with(clock, None), make_config(clock, allow_bearer=True)
    )
    assert with_bearer.headers.get_all("WWW-Authenticate") == [f"Bearer, DPoP {ALGS}"]


async def test_unknown_scheme_is_no_credentials(clock: FakeClock) -> None:
    response = await refused(await request_with(clock, "Basic abc"), make_config(clock))
    assert (response.status, response.headers.get("WWW-Authenticate")) == (401, f"DPoP {ALGS}")


async def test_unknown_token(clock: FakeClock) -> None:
    key = LocalSigner.generate()
    request = await request_with(clock, "DPoP nope", key, token="nope")
    response = await refused(request, make_config(clock))
    assert response.status == 401
    assert response.headers.get("WWW-Authenticate") == (
        f'DPoP error="invalid_token", error_description="unknown or expired access token", {ALGS}'
    )
    assert response.json_body()["error"] == "invalid_token"


async def test_expired_token(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    token, _ = await create_access_token(context(jwk_thumbprint(key.public_jwk)), config)
    clock.advance(601)
    response = await refused(await request_with(clock, f"DPoP {token}", key, token=token), config)
    assert 'error="invalid_token"' in (response.headers.get("WWW-Authenticate") or "")


async def test_revoked_grant(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    token, _ = await create_access_token(context(jwk_thumbprint(key.public_jwk)), config)
    await revoke_grant("g1", config)
    response = await refused(await request_with(clock, f"DPoP {token}", key, token=token), config)
    assert response.headers.get("WWW-Authenticate") == (
        f'DPoP error="invalid_token", error_description="access token revoked", {ALGS}'
    )


@pytest.mark.parametrize("allow_bearer", [False, True])
async def test_dpop_bound_token_as_bearer_refused(clock: FakeClock, allow_bearer: bool) -> None:
    config = make_config(clock, allow_bearer=allow_bearer)
    key = LocalSigner.generate()
    token, _ = await create_access_token(context(jwk_thumbprint(key.public_jwk)), config)
    response = await refused(await request_with(clock, f"Bearer {token}"), config)
    assert response.status == 401
    header = response.headers.get("WWW-Authenticate") or ""
    assert header.startswith('DPoP error="invalid_token"')
    assert header.endswith(ALGS)


async def test_missing_dpop_proof(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    token, _ = await create_access_token(context(jwk_thumbprint(key.public_jwk)), config)
    response = await refused(await request_with(clock, f"DPoP {token}"), config)
    assert response.status == 401
    assert response.headers.get("WWW-Authenticate") == (
        f'DPoP error="invalid_dpop_proof", error_description="missing DPoP header", {ALGS}'
    )


async def test_proof_with_other_key_or_without_ath(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    token, _ = await create_access_token(context(jwk_thumbprint(key.public_jwk)), config)
    other = await request_with(clock, f"DPoP {token}", LocalSigner.generate(), token=token)
    no_ath = await request_with(clock, f"DPoP {token}", key)
    wrong_url = await request_with(
        clock, f"DPoP {token}", key, token=token, url=ISSUER + "/deferred"
    )
    for request in (other, no_ath, wrong_url):
        response = await refused(request, config)
        assert response.status == 401
        assert 'DPoP error="invalid_dpop_proof"' in (response.headers.get("WWW-Authenticate") or "")


async def test_replayed_resource_proof(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    token, _ = await create_access_token(context(jwk_thumbprint(key.public_jwk)), config)
    request = await request_with(clock, f"DPoP {token}", key, token=token)
    await verify_access_token(request, config)
    response = await refused(request, config)
    assert 'error="invalid_dpop_proof"' in (response.headers.get("WWW-Authenticate") or "")


async def test_resource_nonce_challenge(clock: FakeClock) -> None:
    config = make_config(clock, require_dpop_nonce=True)
    key = LocalSigner.generate()
    token, _ = await create_access_token(context(jwk_thumbprint(key.public_jwk)), config)
    response = await refused(await request_with(clock, f"DPoP {token}", key, token=token), config)
    assert response.status == 401
    header = response.headers.get("WWW-Authenticate") or ""
    assert header.startswith('DPoP error="use_dpop_nonce", error_description="')
    nonce = response.headers.get("DPoP-Nonce")
    assert nonce
    retry = await request_with(clock, f"DPoP {token}", key, token=token, nonce=nonce)
    assert (await verify_access_token(retry, config)).subject == "alice"


async def test_expected_htu_overrides_request_url(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    token, _ = await create_access_token(context(jwk_thumbprint(key.public_jwk)), config)
    proof = await build_dpop_jwt(key, "POST", CREDENTIAL, access_token=token, clock=clock)
    internal = HttpRequest.json(
        "POST",
        "http://10.0.0.5:8080/credential",
        {},
        {"Authorization": f"DPoP {token}", "DPoP": proof},
    )
    ctx = await verify_access_token(internal, config, htu=CREDENTIAL)
    assert ctx.subject == "alice"


async def test_bearer_tokens(clock: FakeClock) -> None:
    config = make_config(clock, allow_bearer=True)
    token, _ = await create_access_token(context(None), config)
    ctx = await verify_access_token(await request_with(clock, f"Bearer {token}"), config)
    assert ctx.jkt is None
    unknown = await refused(await request_with(clock, "Bearer nope"), config)
    assert unknown.headers.get("WWW-Authenticate") == (
        'Bearer error="invalid_token", error_description="unknown or expired access token"'
    )
    as_dpop = await refused(
        await request_with(clock, f"DPoP {token}", LocalSigner.generate(), token=token), config
    )
    assert 'DPoP error="invalid_token"' in (as_dpop.headers.get("WWW-Authenticate") or "")
    # a bearer token stops working when the policy no longer allows bearer tokens
    strict = make_config(clock)
    strict_token, _ = await create_access_token(context(None), strict)
    response = await refused(await request_with(clock, f"Bearer {strict_token}"), strict)
    assert 'error="invalid_token"' in (response.headers.get("WWW-Authenticate") or "")


async def test_repeated_or_malformed_authorization(clock: FakeClock) -> None:
    config = make_config(clock)
    two = HttpRequest(
        method="POST",
        url=CREDENTIAL,
        headers=[("Authorization", "DPoP a"), ("Authorization", "DPoP b")],
    )
    response = await refused(two, config)
    assert (response.status, response.json_body()["error"]) == (400, "invalid_request")
    malformed = await refused(await request_with(clock, "DPoP a b c"), config)
    assert malformed.status == 401
    assert 'error="invalid_token"' in (malformed.headers.get("WWW-Authenticate") or "")


# -- external authorization server ---------------------------------------------------------


def external_config(clock: FakeClock, as_key: LocalSigner, **overrides: Any) -> IssuerConfig:
    return make_config(
        clock,
        external_authorization_server=ExternalAuthorizationServer(
            issuer=AS, jwks=[as_key.public_jwk]
        ),
        **overrides,
    )


async def jwt_token(
    signer: LocalSigner, clock: FakeClock, *, typ: str = "at+jwt", **claims: Any
) -> str:
    payload: dict[str, Any] = {
        "iss": AS,
        "aud": [ISSUER],
        "sub": "carol",
        "client_id": "wallet",
        "exp": int(clock.now) + 300,
        "iat": int(clock.now),
        "jti": "jwt-1",
        "authorization_details": [
            {
                "type": "openid_credential",
                "credential_configuration_id": "pid",
                "credential_identifiers": ["pid-a", "pid-b"],
            }
        ],
        "scope": "pid_scope other",
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return await create_jws(signer, payload, {"typ": typ})


async def test_external_jwt_access_token(clock: FakeClock) -> None:
    as_key = LocalSigner.generate()
    config = external_config(clock, as_key)
    key = LocalSigner.generate()
    token = await jwt_token(as_key, clock, cnf={"jkt": jwk_thumbprint(key.public_jwk)})
    request = await request_with(clock, f"DPoP {token}", key, token=token)
    ctx = await verify_access_token(request, config)
    assert ctx.subject == "carol"
    assert ctx.external
    assert ctx.jkt == jwk_thumbprint(key.public_jwk)
    assert ctx.configuration_ids == ("pid",)
    assert ctx.credential_identifiers == {"pid-a": "pid", "pid-b": "pid"}
    assert ctx.grant_id == "jwt-1"


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ({"iss": "https://evil.example.com"}, "access token issuer is not trusted"),
        (
            {"aud": "https://other.example.com"},
            "access token audience is not this credential issuer",
        ),
        ({"exp": 1_000}, "access token expired"),
        ({"exp": None}, "access token has no exp"),
        ({"sub": None}, "access token has no sub"),
    ],
)
async def test_external_jwt_claims_refused(
    clock: FakeClock, claims: dict[str, Any], description: str
) -> None:
    as_key = LocalSigner.generate()
    config = external_config(clock, as_key)
    key = LocalSigner.generate()
    token = await jwt_token(as_key, clock, cnf={"jkt": jwk_thumbprint(key.public_jwk)}, **claims)
    response = await refused(await request_with(clock, f"DPoP {token}", key, token=token), config)
    assert response.status == 401
    assert response.headers.get("WWW-Authenticate") == (
        f'DPoP error="invalid_token", error_description="{description}", {ALGS}'
    )


async def test_external_jwt_bad_signature_and_typ(clock: FakeClock) -> None:
    as_key = LocalSigner.generate()
    config = external_config(clock, as_key)
    key = LocalSigner.generate()
    jkt = jwk_thumbprint(key.public_jwk)
    forged = await jwt_token(LocalSigner.generate(), clock, cnf={"jkt": jkt})
    plain_jwt = await jwt_token(as_key, clock, typ="JWT", cnf={"jkt": jkt})
    for token, description in (
        (forged, "access token signature is invalid"),
        (plain_jwt, "access token typ is not at+jwt"),
        ("not-a-jwt", "access token is not a JWT"),
    ):
        response = await refused(
            await request_with(clock, f"DPoP {token}", key, token=token), config
        )
        assert f'error_description="{description}"' in (
            response.headers.get("WWW-Authenticate") or ""
        )


async def test_external_jwt_without_cnf_used_with_dpop(clock: FakeClock) -> None:
    as_key = LocalSigner.generate()
    config = external_config(clock, as_key)
    key = LocalSigner.generate()
    token = await jwt_token(as_key, clock)
    response = await refused(await request_with(clock, f"DPoP {token}", key, token=token), config)
    assert response.headers.get("WWW-Authenticate") == (
        f'DPoP error="invalid_token", error_description="access token is not DPoP-bound", {ALGS}'
    )
    bearer_config = external_config(clock, as_key, allow_bearer=True)
    ctx = await verify_access_token(await request_with(clock, f"Bearer {token}"), bearer_config)
    assert ctx.token_type == "Bearer"
    assert ctx.configuration_ids == ("pid",)


async def test_external_jwt_application_typ_and_audiences(clock: FakeClock) -> None:
    as_key = LocalSigner.generate()
    config = make_config(
        clock,
        external_authorization_server=ExternalAuthorizationServer(
            issuer=AS, jwks=[as_key.public_jwk], audiences=["urn:issuer"]
        ),
    )
    key = LocalSigner.generate()
    jkt = jwk_thumbprint(key.public_jwk)
    token = await jwt_token(
        as_key, clock, typ="application/at+jwt", aud="urn:issuer", cnf={"jkt": jkt}
    )
    ctx = await verify_access_token(
        await request_with(clock, f"DPoP {token}", key, token=token), config
    )
    assert ctx.subject == "carol"


# -- nonce helpers -------------------------------------------------------------------------


async def test_c_nonce_single_use_and_expiry(clock: FakeClock) -> None:
    config = make_config(clock, c_nonce_ttl=300)
    nonce = await create_c_nonce(config)
    assert await take_c_nonce(nonce, config)
    assert not await take_c_nonce(nonce, config)
    late = await create_c_nonce(config)
    clock.advance(301)
    assert not await take_c_nonce(late, config)
    assert not await take_c_nonce("short", config)


async def test_dpop_nonce_reusable_until_expiry(clock: FakeClock) -> None:
    config = make_config(clock)
    nonce = await create_dpop_nonce(config)
    assert await is_live_dpop_nonce(nonce, config)
    assert await is_live_dpop_nonce(nonce, config)
    clock.advance(301)
    assert not await is_live_dpop_nonce(nonce, config)


def test_token_context_round_trip() -> None:
    ctx = context("jkt-value", anonymous=True, client_id=None)
    assert record_from_json(record_to_json(ctx), TokenContext) == ctx


def test_as_error_response_for_token_errors() -> None:
    response = create_error_response(TokenError("use_dpop_nonce", "need nonce", dpop_nonce="n1"))
    assert response.status == 400
    assert response.headers.get("DPoP-Nonce") == "n1"
    assert "WWW-Authenticate" not in response.headers
    assert response.json_body() == {"error": "use_dpop_nonce", "error_description": "need nonce"}
