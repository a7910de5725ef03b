"""Pushed authorization requests (RFC 9126) and their use at the authorization endpoint."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from oid4vci.dpop import build_dpop_jwt
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer.authorization import MAX_PARAMETERS, handle_authorization
from oid4vci.issuer.config import (
    Authenticated,
    AuthenticationResult,
    CredentialConfigurationSpec,
    IssuerConfig,
    PendingLogin,
)
from oid4vci.issuer.par import handle_par
from oid4vci.issuer.store import MemoryStore
from oid4vci.issuer.token import handle_token
from oid4vci.jose import LocalSigner, jwk_thumbprint
from oid4vci.pkce import code_challenge, generate_code_verifier
from tests.conftest import FakeClock

ISSUER = "https://issuer.example.com"
PAR = ISSUER + "/par"
AUTHORIZE = ISSUER + "/authorize"
TOKEN = ISSUER + "/token"
REDIRECT = "https://wallet.example.org/cb"
VERIFIER = generate_code_verifier()


async def _claims(subject: str, configuration_id: str) -> Mapping[str, Any]:
    return {}


class AutoLogin:
    """Authenticates at once and remembers what it saw."""

    def __init__(self) -> None:
        self.seen: list[PendingLogin] = []

    async def __call__(self, request: HttpRequest, pending: PendingLogin) -> AuthenticationResult:
        self.seen.append(pending)
        return Authenticated(subject="alice")


def make_config(clock: FakeClock, **overrides: Any) -> IssuerConfig:
    return IssuerConfig(
        credential_issuer=ISSUER,
        credential_signer=LocalSigner.generate(),
        credential_configurations=[
            CredentialConfigurationSpec(id="pid", vct="urn:eudi:pid:1", scope="pid")
        ],
        claims_source=_claims,
        user_authenticator=AutoLogin(),
        store=MemoryStore(clock=clock),
        clock=clock,
        **overrides,
    )


def par_form(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": "wallet",
        "redirect_uri": REDIRECT,
        "code_challenge": code_challenge(VERIFIER),
        "code_challenge_method": "S256",
        "state": "st-1",
        "scope": "pid",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


async def push(
    config: IssuerConfig, form: Mapping[str, str], headers: Mapping[str, str] | None = None
) -> HttpResponse:
    return await handle_par(HttpRequest.form("POST", PAR, form, headers), config)


async def authorize(
    config: IssuerConfig, request_uri: str, client_id: str = "wallet"
) -> HttpResponse:
    query = urlencode({"client_id": client_id, "request_uri": request_uri})
    return await handle_authorization(HttpRequest(method="GET", url=f"{AUTHORIZE}?{query}"), config)


def error_of(response: HttpResponse) -> str:
    assert response.headers.get("Cache-Control") == "no-store"
    return str(response.json_body()["error"])


def code_of(response: HttpResponse) -> str:
    assert response.status == 303, response.body
    query = parse_qs(urlsplit(response.headers.get("Location") or "").query)
    assert query["state"] == ["st-1"]
    assert query["iss"] == [ISSUER]
    return query["code"][0]


async def redeem(config: IssuerConfig, code: str, key: LocalSigner) -> HttpResponse:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "client_id": "wallet",
    }
    proof = await build_dpop_jwt(key, "POST", TOKEN, clock=config.clock)
    return await handle_token(HttpRequest.form("POST", TOKEN, form, {"DPoP": proof}), config)


async def test_par_happy_path_and_single_use(clock: FakeClock) -> None:
    config = make_config(clock)
    response = await push(config, par_form())
    assert response.status == 201, response.body
    assert response.headers.get("Cache-Control") == "no-store"
    body = response.json_body()
    assert body["expires_in"] == 60
    request_uri = body["request_uri"]
    assert request_uri.startswith("urn:ietf:params:oauth:request_uri:")
    assert len(request_uri) > len("urn:ietf:params:oauth:request_uri:") + 40
    code = code_of(await authorize(config, request_uri))
    assert (await redeem(config, code, LocalSigner.generate())).status == 200
    reused = await authorize(config, request_uri)
    assert reused.status == 400
    assert b"invalid_request_uri" in reused.body
    assert "Location" not in reused.headers


async def test_par_required_flow(clock: FakeClock) -> None:
    config = make_config(clock, require_par=True)
    request_uri = (await push(config, par_form())).json_body()["request_uri"]
    assert (await authorize(config, request_uri)).status == 303


async def test_par_expiry(clock: FakeClock) -> None:
    config = make_config(clock)
    request_uri = (await push(config, par_form())).json_body()["request_uri"]
    clock.advance(61)
    response = await authorize(config, request_uri)
    assert response.status == 400
    assert b"invalid_request_uri" in response.body


async def test_par_request_uri_bound_to_client(clock: FakeClock) -> None:
    config = make_config(clock)
    request_uri = (await push(config, par_form())).json_body()["request_uri"]
    response = await authorize(config, request_uri, client_id="intruder")
    assert (response.status, "Location" in response.headers) == (400, False)
    other = await authorize(config, "https://evil.example.com/request")
    assert other.status == 400


async def test_par_wrong_method_and_content_type(clock: FakeClock) -> None:
    config = make_config(clock)
    get = await handle_par(HttpRequest(method="GET", url=PAR), config)
    assert get.status == 405
    assert get.headers.get("Allow") == "POST"
    as_json = await handle_par(HttpRequest.json("POST", PAR, par_form()), config)
    assert (as_json.status, error_of(as_json)) == (400, "invalid_request")


@pytest.mark.parametrize(
    "overrides",
    [
        {"request_uri": "urn:ietf:params:oauth:request_uri:x"},
        {"client_id": None},
        {"code_challenge_method": "plain"},
        {"code_challenge": None},
        {"redirect_uri": "http://evil.example.com/cb"},
        {"issuer_state": "unknown"},
    ],
)
async def test_par_invalid_requests(clock: FakeClock, overrides: dict[str, str | None]) -> None:
    config = make_config(clock)
    response = await push(config, par_form(**overrides))
    assert (response.status, error_of(response)) == (400, "invalid_request")
    assert response.media_type == "application/json"


async def test_par_unknown_configuration(clock: FakeClock) -> None:
    config = make_config(clock)
    details = '[{"type":"openid_credential","credential_configuration_id":"nope"}]'
    response = await push(config, par_form(authorization_details=details))
    assert error_of(response) == "invalid_authorization_details"


def _deep(depth: int) -> Any:
    value: Any = "given_name"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "claims",
    [
        [{"path": _deep(500)}],  # 2 KB: used to reach a RecursionError (a 500) when stored
        {"given_name": _deep(100)},
        [{"path": []}],
        [{"path": ["a", -1]}],
        [{"path": ["a", True]}],
        [{"path": "given_name"}],
        [],
        ["given_name"],
        "given_name",
    ],
)
async def test_par_refuses_claims_that_are_no_claims_description(
    clock: FakeClock, claims: Any
) -> None:
    """``claims`` of an authorization details entry is checked before anything is stored
    (OID4VCI 1.0 Appendix B.1; RFC 9126 §2.3): 400, never a stored request that fails later;
    at the authorization endpoint the same is an error redirect, never a 500."""
    config = make_config(clock)
    entry = {"type": "openid_credential", "credential_configuration_id": "pid", "claims": claims}
    details = json.dumps([entry])
    response = await push(config, par_form(authorization_details=details, scope=None))
    assert (response.status, error_of(response)) == (400, "invalid_authorization_details")
    query = urlencode({**par_form(authorization_details=details, scope=None)})
    direct = await handle_authorization(
        HttpRequest(method="GET", url=f"{AUTHORIZE}?{query}"), config
    )
    assert direct.status == 303
    location = parse_qs(urlsplit(direct.headers.get("Location") or "").query)
    assert location["error"] == ["invalid_authorization_details"]


async def test_par_keeps_a_claims_description(clock: FakeClock) -> None:
    config = make_config(clock)
    claims = [{"path": ["address", "street_address"]}, {"path": ["nationalities", None]}]
    entry = {"type": "openid_credential", "credential_configuration_id": "pid", "claims": claims}
    form = par_form(authorization_details=json.dumps([entry]), scope=None)
    response = await push(config, form)
    assert response.status == 201, response.body


async def test_par_dpop_header_binds_code(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    proof = await build_dpop_jwt(key, "POST", PAR, clock=clock)
    response = await push(config, par_form(), {"DPoP": proof})
    assert response.status == 201, response.body
    request_uri = response.json_body()["request_uri"]
    hook = config.user_authenticator
    assert isinstance(hook, AutoLogin)
    code = code_of(await authorize(config, request_uri))
    assert hook.seen[-1].dpop_jkt == jwk_thumbprint(key.public_jwk)
    other = await redeem(config, code, LocalSigner.generate())
    assert error_of(other) == "invalid_grant"


async def test_par_dpop_binding_same_key_succeeds(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    jkt = jwk_thumbprint(key.public_jwk)
    proof = await build_dpop_jwt(key, "POST", PAR, clock=clock)
    response = await push(config, par_form(dpop_jkt=jkt), {"DPoP": proof})
    code = code_of(await authorize(config, response.json_body()["request_uri"]))
    assert (await redeem(config, code, key)).status == 200


async def test_par_dpop_jkt_mismatch_with_header(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    other_jkt = jwk_thumbprint(LocalSigner.generate().public_jwk)
    proof = await build_dpop_jwt(key, "POST", PAR, clock=clock)
    response = await push(config, par_form(dpop_jkt=other_jkt), {"DPoP": proof})
    assert (response.status, error_of(response)) == (400, "invalid_dpop_proof")


async def test_par_invalid_dpop_header(clock: FakeClock) -> None:
    config = make_config(clock)
    proof = await build_dpop_jwt(LocalSigner.generate(), "POST", TOKEN, clock=clock)
    response = await push(config, par_form(), {"DPoP": proof})
    assert error_of(response) == "invalid_dpop_proof"


async def test_par_body_too_large(clock: FakeClock) -> None:
    config = make_config(clock, max_body_size=100)
    response = await push(config, par_form(state="x" * 200))
    assert response.status == 413


async def test_par_bounds_what_one_request_makes_the_store_hold(clock: FakeClock) -> None:
    """Every parameter is kept with the pushed request: 250 unknown ones of 4,000 characters
    (1 MB) were accepted and held for ``par_ttl``. At most ``MAX_PARAMETERS`` parameters, each
    name at most 64 characters, about 32 KB in all (RFC 9126 §2.1 lets the server refuse what
    it will not keep)."""
    config = make_config(clock)
    many = par_form(**{f"x{i}": "v" for i in range(MAX_PARAMETERS)})
    response = await push(config, many)
    assert (response.status, error_of(response)) == (400, "invalid_request")
    assert "too many parameters" in response.json_body()["error_description"]
    long_name = par_form(**{"n" * 65: "v"})
    assert error_of(await push(config, long_name)) == "invalid_request"
    large = par_form(**{f"x{i}": "v" * 4000 for i in range(9)})  # 36 KB in all
    refused = await push(config, large)
    assert "too large" in refused.json_body()["error_description"]
    fits = par_form(**{f"x{i}": "v" for i in range(MAX_PARAMETERS - len(par_form()))})
    assert (await push(config, fits)).status == 201
