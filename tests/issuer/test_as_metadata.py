"""RFC 8414 metadata of the built-in authorization server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from oid4vci.http import HttpRequest
from oid4vci.issuer.as_metadata import as_metadata_url, create_as_metadata, handle_as_metadata
from oid4vci.issuer.config import (
    Authenticated,
    AuthenticationResult,
    CredentialConfigurationSpec,
    ExternalAuthorizationServer,
    IssuerConfig,
    PendingLogin,
)
from oid4vci.issuer.store import MemoryStore
from oid4vci.jose import LocalSigner
from tests.conftest import FakeClock

ISSUER = "https://issuer.example.com/tenant"
PRE_AUTH = "urn:ietf:params:oauth:grant-type:pre-authorized_code"


async def _claims(subject: str, configuration_id: str) -> Mapping[str, Any]:
    return {}


async def _login(request: HttpRequest, pending: PendingLogin) -> AuthenticationResult:
    return Authenticated(subject="alice")


def make_config(clock: FakeClock, **overrides: Any) -> IssuerConfig:
    return IssuerConfig(
        credential_issuer=ISSUER,
        credential_signer=LocalSigner.generate(),
        credential_configurations=[
            CredentialConfigurationSpec(id="pid", vct="urn:pid", scope="pid"),
            CredentialConfigurationSpec(id="mdl", vct="urn:mdl", scope="mdl"),
            CredentialConfigurationSpec(id="x", vct="urn:x"),
        ],
        claims_source=_claims,
        store=MemoryStore(clock=clock),
        clock=clock,
        **overrides,
    )


def test_full_metadata(clock: FakeClock) -> None:
    config = make_config(clock, user_authenticator=_login, require_par=True)
    metadata = create_as_metadata(config)
    assert metadata == {
        "issuer": ISSUER,
        "authorization_endpoint": ISSUER + "/authorize",
        "token_endpoint": ISSUER + "/token",
        "pushed_authorization_request_endpoint": ISSUER + "/par",
        "require_pushed_authorization_requests": True,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "authorization_details_types_supported": ["openid_credential"],
        "scopes_supported": ["mdl", "pid"],
        "grant_types_supported": ["authorization_code", PRE_AUTH],
        "token_endpoint_auth_methods_supported": ["none"],
        "dpop_signing_alg_values_supported": ["ES256", "ES384", "EdDSA"],
        "pre-authorized_grant_anonymous_access_supported": True,
    }


def test_pre_authorized_only_metadata(clock: FakeClock) -> None:
    metadata = create_as_metadata(make_config(clock, pre_authorized_anonymous_access=False))
    assert "authorization_endpoint" not in metadata
    assert metadata["grant_types_supported"] == [PRE_AUTH]
    assert metadata["pre-authorized_grant_anonymous_access_supported"] is False


async def test_handle_as_metadata(clock: FakeClock) -> None:
    config = make_config(clock)
    url = as_metadata_url(config)
    assert url == "https://issuer.example.com/.well-known/oauth-authorization-server/tenant"
    response = await handle_as_metadata(HttpRequest(method="GET", url=url), config)
    assert response.status == 200
    assert response.json_body()["issuer"] == ISSUER
    post = await handle_as_metadata(HttpRequest(method="POST", url=url), config)
    assert (post.status, post.headers.get("Allow")) == (405, "GET")


async def test_external_as_has_no_builtin_metadata(clock: FakeClock) -> None:
    config = make_config(
        clock,
        external_authorization_server=ExternalAuthorizationServer(
            issuer="https://as.example.com", jwks=[LocalSigner.generate().public_jwk]
        ),
    )
    assert config.authorization_server == "https://as.example.com"
    with pytest.raises(ValueError):
        create_as_metadata(config)
    response = await handle_as_metadata(
        HttpRequest(method="GET", url=as_metadata_url(config)), config
    )
    assert response.status == 404
