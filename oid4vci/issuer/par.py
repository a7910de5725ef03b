"""The pushed authorization request endpoint (RFC 9126).

POST, form-encoded. The parameters are validated exactly as the authorization endpoint would
(:func:`~oid4vci.issuer.authorization.validate_authorization_parameters`); ``client_id`` is
required and ``request_uri`` refused. DPoP binding comes from ``dpop_jkt`` in the body or a
``DPoP`` header proof (RFC 9449 §10.1); both present and different → ``invalid_dpop_proof``.

The request is stored as ``par:<request_uri>`` → ``{"client_id", "params"}`` for ``par_ttl``
seconds; ``request_uri`` is ``urn:ietf:params:oauth:request_uri:<random>``. The authorization
endpoint takes it once. Success: 201 ``{"request_uri", "expires_in"}``; errors: 400 JSON in
the token-endpoint format (405 for another method, 413 for a large body, 503 with
``Retry-After`` when the store is full).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping

import attrs

from oid4vci.errors import AuthorizationError, DpopError, ErrorCode, ProtocolError, StoreError
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer._request_body import read_form_post
from oid4vci.issuer.access_token import verify_dpop_proof
from oid4vci.issuer.authorization import REQUEST_URI_PREFIX, validate_authorization_parameters
from oid4vci.issuer.config import IssuerConfig, PendingAuthorization
from oid4vci.issuer.responses import json_response, temporarily_unavailable
from oid4vci.issuer.token import error_response

__all__ = [
    "PushedRequest",
    "create_par_response",
    "handle_par",
    "parse_par_request",
    "verify_par_request",
]


@attrs.frozen(kw_only=True, repr=False)
class PushedRequest:
    """A parsed PAR request: the HTTP request and its form parameters."""

    request: HttpRequest
    params: Mapping[str, str]

    def __repr__(self) -> str:
        return f"PushedRequest(client_id={self.params.get('client_id')!r})"


def parse_par_request(request: HttpRequest | RequestDict, config: IssuerConfig) -> PushedRequest:
    """Check method, size, content type and the PAR-specific parameter rules."""
    req = HttpRequest.coerce(request)
    params = read_form_post(req, config, error_cls=AuthorizationError)
    if "request_uri" in params:
        raise AuthorizationError(ErrorCode.INVALID_REQUEST, "request_uri must not be pushed")
    if not params.get("client_id"):
        raise AuthorizationError(ErrorCode.INVALID_REQUEST, "client_id is required")
    return PushedRequest(request=req, params=params)


async def verify_par_request(
    pushed: PushedRequest, config: IssuerConfig
) -> tuple[dict[str, str], PendingAuthorization]:
    """Validate the pushed parameters and resolve the DPoP binding.

    Returns the parameters to store (``dpop_jkt`` filled in from a ``DPoP`` header) and the
    validated request. Raises :class:`AuthorizationError` / :class:`DpopError`.
    """
    params = dict(pushed.params)
    if pushed.request.headers.get_all("DPoP"):
        proof = await verify_dpop_proof(config, pushed.request, htu=config.endpoint("par"))
        body_jkt = params.get("dpop_jkt")
        if body_jkt is not None and not hmac.compare_digest(body_jkt.encode(), proof.jkt.encode()):
            raise DpopError(
                ErrorCode.INVALID_DPOP_PROOF, "dpop_jkt does not match the DPoP proof key"
            )
        params["dpop_jkt"] = proof.jkt
    pending = await validate_authorization_parameters(params, config)
    return params, pending


async def create_par_response(config: IssuerConfig, params: Mapping[str, str]) -> HttpResponse:
    """Store the request under a fresh ``request_uri`` and answer 201."""
    request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
    await config.store.put(
        f"par:{request_uri}",
        {"client_id": params["client_id"], "params": dict(params)},
        config.par_ttl,
    )
    return json_response(201, {"request_uri": request_uri, "expires_in": config.par_ttl})


async def handle_par(request: HttpRequest | RequestDict, config: IssuerConfig) -> HttpResponse:
    """The PAR endpoint: parse → verify → store → 201 (errors as 400 JSON)."""
    try:
        if config.external_authorization_server is not None:
            raise AuthorizationError(ErrorCode.INVALID_REQUEST, "no PAR endpoint here", status=404)
        pushed = parse_par_request(request, config)
        params, _ = await verify_par_request(pushed, config)
        return await create_par_response(config, params)
    except ProtocolError as err:
        return error_response(err)
    except StoreError:
        return temporarily_unavailable()
