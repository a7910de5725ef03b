"""Authorization endpoint: validation, login hook round trip, redirects and error pages."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from oid4vci.dpop import build_dpop_jwt
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import store_keys
from oid4vci.issuer.authorization import handle_authorization
from oid4vci.issuer.config import (
    Authenticated,
    AuthenticationResult,
    ClientPolicy,
    CredentialConfigurationSpec,
    Denied,
    IssuerConfig,
    PendingLogin,
    Respond,
)
from oid4vci.issuer.responses import html_response
from oid4vci.issuer.store import MemoryStore
from oid4vci.issuer.token import handle_token
from oid4vci.jose import LocalSigner
from oid4vci.pkce import code_challenge, generate_code_verifier
from tests.conftest import FakeClock

ISSUER = "https://issuer.example.com"
AUTHORIZE = ISSUER + "/authorize"
REDIRECT = "https://wallet.example.org/cb"
VERIFIER = generate_code_verifier()


async def _claims(subject: str, configuration_id: str) -> Mapping[str, Any]:
    return {}


class LoginHook:
    """Shows a login page first; the page posts back ``handle`` and ``username``."""

    def __init__(self, *, deny: bool = False, approve: tuple[str, ...] | None = None) -> None:
        self.deny = deny
        self.approve = approve
        self.seen: list[PendingLogin] = []

    async def __call__(self, request: HttpRequest, pending: PendingLogin) -> AuthenticationResult:
        self.seen.append(pending)
        if request.method == "GET":
            return Respond(response=html_response(200, f"<form>{pending.handle}</form>"))
        form = request.form_body()
        if self.deny or form.get("username") != "alice":
            return Denied()
        return Authenticated(subject="alice", configuration_ids=self.approve)


def make_config(clock: FakeClock, hook: Any = None, **overrides: Any) -> IssuerConfig:
    return IssuerConfig(
        credential_issuer=ISSUER,
        credential_signer=LocalSigner.generate(),
        credential_configurations=[
            CredentialConfigurationSpec(id="pid", vct="urn:eudi:pid:1", scope="pid"),
            CredentialConfigurationSpec(
                id="diploma", vct="urn:diploma", scope="diploma", format="vc+sd-jwt"
            ),
        ],
        claims_source=_claims,
        user_authenticator=LoginHook() if hook is None else hook,
        store=MemoryStore(clock=clock),
        clock=clock,
        **overrides,
    )


DETAILS = json.dumps([{"type": "openid_credential", "credential_configuration_id": "pid"}])


def auth_params(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": "wallet",
        "redirect_uri": REDIRECT,
        "code_challenge": code_challenge(VERIFIER),
        "code_challenge_method": "S256",
        "state": "st-1",
        "authorization_details": DETAILS,
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


async def get_authorize(config: IssuerConfig, **overrides: str | None) -> HttpResponse:
    url = AUTHORIZE + "?" + urlencode(auth_params(**overrides))
    return await handle_authorization(HttpRequest(method="GET", url=url), config)


async def post_login(config: IssuerConfig, handle: str, username: str = "alice") -> HttpResponse:
    request = HttpRequest.form("POST", AUTHORIZE, {"handle": handle, "username": username})
    return await handle_authorization(request, config)


def redirect_params(response: HttpResponse, base: str = REDIRECT) -> dict[str, str]:
    assert response.status == 303, response.body
    assert response.headers.get("Cache-Control") == "no-store"
    location = response.headers.get("Location") or ""
    assert location.startswith(base + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def handle_of(hook: LoginHook) -> str:
    return hook.seen[-1].handle


async def test_code_flow_happy_path(clock: FakeClock) -> None:
    hook = LoginHook()
    config = make_config(clock, hook)
    page = await get_authorize(config)
    assert page.status == 200
    assert page.media_type == "text/html"
    pending = hook.seen[-1]
    assert pending.configuration_ids == ("pid",)
    assert pending.handle.encode() in page.body
    params = redirect_params(await post_login(config, handle_of(hook)))
    assert params["state"] == "st-1"
    assert params["iss"] == ISSUER
    assert set(params) == {"code", "state", "iss"}
    # the code is good at the token endpoint
    key = LocalSigner.generate()
    proof = await build_dpop_jwt(key, "POST", ISSUER + "/token", clock=clock)
    form = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "client_id": "wallet",
    }
    token = await handle_token(
        HttpRequest.form("POST", ISSUER + "/token", form, {"DPoP": proof}), config
    )
    assert token.status == 200, token.body
    assert token.json_body()["authorization_details"][0]["credential_configuration_id"] == "pid"
    # the pending authorization is single use
    again = await post_login(config, handle_of(hook))
    assert again.status == 400
    assert "Location" not in again.headers


async def test_redirect_uri_with_query_keeps_it(clock: FakeClock) -> None:
    hook = LoginHook()
    config = make_config(clock, hook)
    await get_authorize(config, redirect_uri=REDIRECT + "?app=1")
    params = redirect_params(await post_login(config, handle_of(hook)), REDIRECT)
    assert params["app"] == "1"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"authorization_details": "not json"}, "invalid_authorization_details"),
        (
            {
                "authorization_details": json.dumps(
                    [{"type": "openid_credential", "credential_configuration_id": "nope"}]
                )
            },
            "invalid_authorization_details",
        ),
        (
            {
                "authorization_details": json.dumps(
                    [
                        {
                            "type": "openid_credential",
                            "credential_configuration_id": "pid",
                            "locations": ["https://other.example.com"],
                        }
                    ]
                )
            },
            "invalid_authorization_details",
        ),
        (
            {"authorization_details": json.dumps([{"type": "other"}])},
            "invalid_authorization_details",
        ),
        ({"authorization_details": None, "scope": "unknown"}, "invalid_scope"),
        ({"issuer_state": "never-minted"}, "invalid_request"),
        ({"dpop_jkt": "not a thumbprint"}, "invalid_request"),
        ({"request": "eyJ..."}, "request_not_supported"),
    ],
)
async def test_redirected_errors(
    clock: FakeClock, overrides: dict[str, str | None], error: str
) -> None:
    hook = LoginHook()
    config = make_config(clock, hook)
    params = redirect_params(await get_authorize(config, **overrides))
    assert params["error"] == error
    assert params["state"] == "st-1"
    assert params["iss"] == ISSUER
    assert "code" not in params
    assert hook.seen == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": None},
        {"redirect_uri": None},
        {"redirect_uri": "http://wallet.example.org/cb"},
        {"redirect_uri": "https://wallet.example.org/cb#frag"},
        {"redirect_uri": "com.example.wallet:/cb"},
        {"redirect_uri": "not a url"},
    ],
)
async def test_bad_client_or_redirect_uri_shown_not_redirected(
    clock: FakeClock, overrides: dict[str, str | None]
) -> None:
    config = make_config(clock)
    response = await get_authorize(config, **overrides)
    assert response.status == 400
    assert "Location" not in response.headers
    assert response.media_type == "text/html"
    assert b"invalid_request" in response.body


async def test_registered_clients(clock: FakeClock) -> None:
    hook = LoginHook()
    policy = ClientPolicy(
        registered={"wallet": ["https://wallet.example.org/cb", "http://127.0.0.1/cb"]},
        allow_unregistered_public_clients=False,
    )
    config = make_config(clock, hook, clients=policy)
    wrong = await get_authorize(config, redirect_uri="https://wallet.example.org/other")
    assert wrong.status == 400
    unknown = await get_authorize(config, client_id="stranger")
    assert (unknown.status, b"invalid_client" in unknown.body) == (400, True)
    loopback_any_port = await get_authorize(config, redirect_uri="http://127.0.0.1:53124/cb")
    assert loopback_any_port.status == 200
    assert (await get_authorize(config)).status == 200


def test_client_policy_rules() -> None:
    policy = ClientPolicy(allow_custom_schemes=True)
    assert policy.redirect_uri_allowed("w", "http://localhost:8080/cb")
    assert policy.redirect_uri_allowed("w", "com.example.wallet:/cb")
    assert not policy.redirect_uri_allowed("w", "wallet:/cb")
    assert not policy.redirect_uri_allowed("w", "http://evil.example/cb")
    assert not policy.redirect_uri_allowed("", "https://ok.example/cb")


async def test_denied(clock: FakeClock) -> None:
    hook = LoginHook(deny=True)
    config = make_config(clock, hook)
    await get_authorize(config)
    params = redirect_params(await post_login(config, handle_of(hook)))
    assert params["error"] == "access_denied"
    assert params["state"] == "st-1"
    assert params["iss"] == ISSUER


async def test_user_can_approve_a_subset(clock: FakeClock) -> None:
    hook = LoginHook(approve=("diploma",))
    config = make_config(clock, hook)
    await get_authorize(config, authorization_details=None, scope="pid diploma")
    assert hook.seen[-1].configuration_ids == ("pid", "diploma")
    params = redirect_params(await post_login(config, handle_of(hook)))
    assert "code" in params
    stored = await config.store.get(store_keys.authorization_code_key(params["code"]))
    assert stored is not None
    assert stored["configuration_ids"] == ["diploma"]
    assert stored["subject"] == "alice"


async def test_unknown_or_expired_handle(clock: FakeClock) -> None:
    hook = LoginHook()
    config = make_config(clock, hook)
    assert (await post_login(config, "no-such-handle")).status == 400
    await get_authorize(config)
    clock.advance(601)
    response = await post_login(config, handle_of(hook))
    assert response.status == 400
    assert "Location" not in response.headers


async def test_issuer_state_from_offer(clock: FakeClock) -> None:
    hook = LoginHook()
    config = make_config(clock, hook)
    await config.store.put(
        store_keys.issuer_state_key("abc"), {"configuration_ids": ["diploma"]}, 600
    )
    page = await get_authorize(config, authorization_details=None, issuer_state="abc")
    assert page.status == 200
    pending = hook.seen[-1]
    assert pending.configuration_ids == ("diploma",)
    assert pending.issuer_state == "abc"
    params = redirect_params(await post_login(config, handle_of(hook)))
    stored2 = await config.store.get(store_keys.authorization_code_key(params["code"]))
    assert stored2 is not None
    assert stored2["issuer_state"] == "abc"


async def test_issuer_state_is_single_use(clock: FakeClock) -> None:
    hook = LoginHook()
    config = make_config(clock, hook)
    await config.store.put(
        store_keys.issuer_state_key("abc"), {"configuration_ids": ["diploma"]}, 600
    )
    # Two authorizations start with the same offer; a refused login uses nothing up.
    assert (
        await get_authorize(config, authorization_details=None, issuer_state="abc")
    ).status == 200
    first = handle_of(hook)
    assert (
        await get_authorize(config, authorization_details=None, issuer_state="abc")
    ).status == 200
    second = handle_of(hook)
    denied = redirect_params(await post_login(config, second, username="mallory"))
    assert denied["error"] == "access_denied"
    assert await config.store.get(store_keys.issuer_state_key("abc")) is not None
    # The first code issued takes it; another authorization with it gets no code.
    assert "code" in redirect_params(await post_login(config, first))
    assert await config.store.get(store_keys.issuer_state_key("abc")) is None
    await config.store.put(
        store_keys.issuer_state_key("xyz"), {"configuration_ids": ["diploma"]}, 600
    )
    assert (
        await get_authorize(config, authorization_details=None, issuer_state="xyz")
    ).status == 200
    third = handle_of(hook)
    await config.store.take(
        store_keys.issuer_state_key("xyz")
    )  # used meanwhile by another authorization
    params = redirect_params(await post_login(config, third))
    assert params["error"] == "invalid_request"
    assert "code" not in params
    assert params["state"] == "st-1"


async def test_draft13_format_and_vct_details(clock: FakeClock) -> None:
    hook = LoginHook()
    config = make_config(clock, hook)
    details = json.dumps(
        [{"type": "openid_credential", "format": "vc+sd-jwt", "vct": "urn:diploma"}]
    )
    page = await get_authorize(config, authorization_details=details)
    assert page.status == 200
    assert hook.seen[-1].configuration_ids == ("diploma",)


async def test_require_par(clock: FakeClock) -> None:
    config = make_config(clock, require_par=True)
    params = redirect_params(await get_authorize(config))
    assert params["error"] == "invalid_request"
    assert "PAR" in params["error_description"]


async def test_code_flow_off_without_authenticator(clock: FakeClock) -> None:
    config = IssuerConfig(
        credential_issuer=ISSUER,
        credential_signer=LocalSigner.generate(),
        credential_configurations=[CredentialConfigurationSpec(id="pid", vct="urn:pid")],
        claims_source=_claims,
        store=MemoryStore(clock=clock),
        clock=clock,
    )
    params = redirect_params(await get_authorize(config))
    assert params["error"] == "unsupported_response_type"


async def test_wrong_method(clock: FakeClock) -> None:
    config = make_config(clock)
    response = await handle_authorization(HttpRequest(method="PUT", url=AUTHORIZE), config)
    assert response.status == 405
