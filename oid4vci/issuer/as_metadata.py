"""OAuth 2.0 Authorization Server Metadata (RFC 8414) of the built-in authorization server.

The authorization server's ``issuer`` is the credential issuer identifier itself, so wallets
find it at ``/.well-known/oauth-authorization-server`` inserted before the issuer's path.
"""

from __future__ import annotations

from typing import Any

from oid4vci.attestation import ATTEST_JWT_CLIENT_AUTH, ATTEST_JWT_CLIENT_AUTH_DPOP
from oid4vci.errors import AuthorizationError, ErrorCode, UsageError
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer._documents import cached_document
from oid4vci.issuer.config import IssuerConfig
from oid4vci.issuer.refresh_token import REFRESH_TOKEN_GRANT
from oid4vci.issuer.responses import create_error_response, json_response
from oid4vci.issuer.token import AUTHORIZATION_CODE_GRANT
from oid4vci.models import PRE_AUTHORIZED_CODE_GRANT
from oid4vci.urls import insert_well_known

__all__ = ["as_metadata_url", "create_as_metadata", "handle_as_metadata"]


def as_metadata_url(config: IssuerConfig) -> str:
    """Where the built-in authorization server's metadata is served (RFC 8414 §3)."""
    return insert_well_known(config.credential_issuer, "oauth-authorization-server")


def create_as_metadata(config: IssuerConfig) -> dict[str, Any]:
    """The RFC 8414 metadata document of the built-in authorization server.

    Raises ``ValueError`` when an external authorization server is configured (the built-in
    one is then off).
    """
    if not config.builtin_authorization_server:
        raise UsageError("an external authorization server is configured")
    code_flow = config.user_authenticator is not None
    grant_types = [PRE_AUTHORIZED_CODE_GRANT]
    metadata: dict[str, Any] = {
        "issuer": config.credential_issuer,
        "token_endpoint": config.endpoint("token"),
    }
    if code_flow:
        grant_types.insert(0, AUTHORIZATION_CODE_GRANT)
        metadata.update(
            {
                "authorization_endpoint": config.endpoint("authorize"),
                "pushed_authorization_request_endpoint": config.endpoint("par"),
                "require_pushed_authorization_requests": config.require_par,
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "code_challenge_methods_supported": ["S256"],
                "authorization_response_iss_parameter_supported": True,
                "authorization_details_types_supported": ["openid_credential"],
            }
        )
        scopes = sorted(
            {s.scope for s in config.credential_configurations.values() if s.scope is not None}
        )
        if scopes:
            metadata["scopes_supported"] = scopes
    if config.refresh_tokens is not None:
        grant_types.append(REFRESH_TOKEN_GRANT)  # RFC 8414 §2, RFC 6749 §6
    metadata.update(
        {
            "grant_types_supported": grant_types,
            "token_endpoint_auth_methods_supported": _auth_methods(config),
            "dpop_signing_alg_values_supported": list(config.dpop_algorithms),
            "pre-authorized_grant_anonymous_access_supported": (
                config.pre_authorized_anonymous_access
            ),
        }
    )
    settings = config.attestation
    if settings is not None and settings.client_trust_anchors:
        # draft-ietf-oauth-attestation-based-client-auth-07 §13.4: both lists when offered.
        metadata["client_attestation_signing_alg_values_supported"] = list(settings.algorithms)
        metadata["client_attestation_pop_signing_alg_values_supported"] = list(settings.algorithms)
        if settings.require_challenge:
            metadata["challenge_endpoint"] = config.endpoint("challenge")
    return metadata


def _auth_methods(config: IssuerConfig) -> list[str]:
    """``none`` (public clients) and/or ``attest_jwt_client_auth`` (wallet attestation), and
    ``attest_jwt_client_auth_dpop`` when DPoP-combined mode is accepted."""
    settings = config.attestation
    if settings is None or not settings.client_trust_anchors:
        return ["none"]
    methods = [ATTEST_JWT_CLIENT_AUTH]
    if settings.dpop_combined:
        methods.append(ATTEST_JWT_CLIENT_AUTH_DPOP)
    if not settings.require_client_attestation:
        methods.append("none")
    return methods


async def handle_as_metadata(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> HttpResponse:
    """``GET /.well-known/oauth-authorization-server[/path]`` → 200 JSON (RFC 8414 §3).

    404 with an external AS, 405 for another method; never raises.
    """
    req = HttpRequest.coerce(request)
    if req.method not in ("GET", "HEAD"):
        response = create_error_response(
            AuthorizationError(ErrorCode.INVALID_REQUEST, "method not allowed", status=405)
        )
        return HttpResponse(
            status=405, headers=response.headers.with_header("Allow", "GET"), body=response.body
        )
    if not config.builtin_authorization_server:
        return create_error_response(
            AuthorizationError(
                ErrorCode.INVALID_REQUEST, "no authorization server here", status=404
            )
        )
    return cached_document(config, "as", lambda: json_response(200, create_as_metadata(config)))
