"""The pushed authorization request endpoint (RFC 9126).

Stages, composed by :func:`handle_par`:

* :func:`parse_par_request` — POST, form-encoded (RFC 9126 §2.1); ``client_id`` required,
  ``request_uri`` refused (RFC 9126 §2.1);
* :func:`verify_par_request` — the client's wallet attestation when sent or required
  (:func:`~oid4vci.issuer.client_attestation.verify_client_authentication`,
  draft-ietf-oauth-attestation-based-client-auth-07 §6.3; ``client_id`` must equal its
  ``sub``; the code will be bound to its instance key), the parameters exactly as the authorization endpoint checks them
  (:func:`~oid4vci.issuer.authorization.verify_authorization_request`), and the DPoP binding:
  ``dpop_jkt`` in the body or a ``DPoP`` header proof (RFC 9449 §10.1); both present and
  different → ``invalid_dpop_proof``;
* :func:`create_par_response` — the request stored as ``par:<request_uri>`` (a
  :class:`ParRecord`) for ``par_ttl`` seconds, ``request_uri`` =
  ``urn:ietf:params:oauth:request_uri:<random>``; 201 ``{"request_uri", "expires_in"}``
  (RFC 9126 §2.2). The authorization endpoint takes it once.

Errors are 400 JSON in the token-endpoint format (RFC 9126 §2.3; 405 for another method, 413
for a large body, 503 with ``Retry-After`` when the store is full).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping

import attrs

from oid4vci._wire import record_to_json
from oid4vci.errors import AuthorizationError, DpopError, ErrorCode, ProtocolError, StoreError
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer import store_keys
from oid4vci.issuer._request_body import parse_form_post
from oid4vci.issuer.access_token import verify_dpop_proof
from oid4vci.issuer.authorization import (
    REQUEST_URI_PREFIX,
    AuthorizationRequest,
    ParRecord,
    verify_authorization_request,
)
from oid4vci.issuer.client_attestation import (
    attestation_binding,
    refuse_other_client_authentication,
    verify_client_authentication,
    verify_dpop_combined,
)
from oid4vci.issuer.config import IssuerConfig
from oid4vci.issuer.flood_limits import claim_room, refused
from oid4vci.issuer.responses import json_response
from oid4vci.issuer.token import error_response

__all__ = [
    "ParRecord",
    "ParRequest",
    "create_par_response",
    "handle_par",
    "parse_par_request",
    "verify_par_request",
]


@attrs.frozen(kw_only=True, repr=False)
class ParRequest:
    """A parsed pushed authorization request: the HTTP request and its form parameters."""

    request: HttpRequest
    params: Mapping[str, str]

    def __repr__(self) -> str:
        return f"ParRequest(client_id={self.params.get('client_id')!r})"


def parse_par_request(request: HttpRequest | RequestDict, config: IssuerConfig) -> ParRequest:
    """Parse a pushed authorization request; raises :class:`AuthorizationError`.

    404 when an external authorization server is configured (no PAR endpoint here).
    """
    if config.external_authorization_server is not None:
        raise AuthorizationError(ErrorCode.INVALID_REQUEST, "no PAR endpoint here", status=404)
    req = HttpRequest.coerce(request)
    params = parse_form_post(req, config, error_cls=AuthorizationError)
    refuse_other_client_authentication(req, params, error_cls=AuthorizationError)
    if "request_uri" in params:
        raise AuthorizationError(ErrorCode.INVALID_REQUEST, "request_uri must not be pushed")
    if not params.get("client_id"):
        raise AuthorizationError(ErrorCode.INVALID_REQUEST, "client_id is required")
    return ParRequest(request=req, params=params)


async def verify_par_request(parsed: ParRequest, config: IssuerConfig) -> ParRecord:
    """Verify the pushed parameters and resolve the DPoP binding; returns what to store.

    The stored parameters have ``dpop_jkt`` filled in from a ``DPoP`` header proof. Raises
    :class:`AuthorizationError` / :class:`DpopError`.
    """
    # Anybody may push a request: claim room in the PAR quota before anything is written
    # (the DPoP proof's jti, then the request itself).
    await claim_room("par", config)
    params = dict(parsed.params)
    attested = await verify_client_authentication(
        parsed.request, config, client_id=params["client_id"], error_cls=AuthorizationError
    )
    if parsed.request.headers.get_all("DPoP"):
        proof = await verify_dpop_proof(parsed.request, config, htu=config.endpoint("par"))
        body_jkt = params.get("dpop_jkt")
        if body_jkt is not None and not hmac.compare_digest(body_jkt.encode(), proof.jkt.encode()):
            raise DpopError(
                ErrorCode.INVALID_DPOP_PROOF, "dpop_jkt does not match the DPoP proof key"
            )
        params["dpop_jkt"] = proof.jkt
        verify_dpop_combined(attested, proof, AuthorizationError)
    else:
        verify_dpop_combined(attested, None, AuthorizationError)
    await verify_authorization_request(
        AuthorizationRequest(request=parsed.request, params=params), config
    )
    return ParRecord(
        client_id=params["client_id"], params=params, attested_jkt=attestation_binding(attested)
    )


async def create_par_response(record: ParRecord, config: IssuerConfig) -> HttpResponse:
    """Store the request under a fresh ``request_uri`` and answer 201 (RFC 9126 §2.2)."""
    request_uri = REQUEST_URI_PREFIX + secrets.token_urlsafe(32)
    await config.store.put(
        store_keys.par_key(request_uri), record_to_json(record), store_keys.PAR.ttl(config)
    )
    return json_response(201, {"request_uri": request_uri, "expires_in": config.par_ttl})


async def handle_par(request: HttpRequest | RequestDict, config: IssuerConfig) -> HttpResponse:
    """The PAR endpoint: parse → verify → create the response. Answers errors, never raises."""
    try:
        parsed = parse_par_request(request, config)
        record = await verify_par_request(parsed, config)
        return await create_par_response(record, config)
    except ProtocolError as err:
        return error_response(err)
    except StoreError as exc:
        return refused(exc, config, "par")
