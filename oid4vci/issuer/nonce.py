"""The Nonce Endpoint (OID4VCI 1.0 §7, Draft 15+): hands out a fresh ``c_nonce``.

Stages: :func:`parse_nonce_request` (POST, no access token, any — normally empty — body) →
:func:`create_nonce_response`, composed by :func:`handle_nonce`. There is nothing to verify:
the endpoint takes no credentials (OID4VCI 1.0 §7.1).

The answer is ``200 {"c_nonce": "..."}`` with ``Cache-Control: no-store`` (OID4VCI 1.0 §7.2), plus a
``DPoP-Nonce`` header when the issuer requires server DPoP nonces (``require_dpop_nonce``), so the
wallet can use it in the DPoP proof of its next credential request. Each ``c_nonce`` is single use
(:func:`take_c_nonce`) and lives ``config.c_nonce_ttl`` seconds under ``c_nonce:<value>``
(:mod:`oid4vci.issuer.store_keys`).
"""

from __future__ import annotations

import secrets

import attrs

from oid4vci._wire import record_to_json, store_record
from oid4vci.errors import CredentialRequestError, ErrorCode, ProtocolError, StoreError
from oid4vci.http import Headers, HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer import store_keys
from oid4vci.issuer.access_token import NONCE_RE, create_dpop_nonce
from oid4vci.issuer.config import IssuerConfig
from oid4vci.issuer.responses import (
    create_error_response,
    json_response,
    temporarily_unavailable,
    with_allow,
)

__all__ = [
    "NonceRequest",
    "create_c_nonce",
    "create_nonce_response",
    "handle_nonce",
    "parse_nonce_request",
    "take_c_nonce",
]


@attrs.frozen(kw_only=True)
class NonceRequest:
    """A parsed Nonce Request (OID4VCI 1.0 §7.1): nothing but the HTTP request."""

    request: HttpRequest = attrs.field(repr=False)


@store_record
@attrs.frozen(kw_only=True)
class CNonceRecord:
    """What the store keeps for a live ``c_nonce``: when it was created."""

    iat: float


async def create_c_nonce(config: IssuerConfig) -> str:
    """A fresh single-use ``c_nonce`` of this issuer (OID4VCI 1.0 §7.2)."""
    nonce = secrets.token_urlsafe(24)
    record = record_to_json(CNonceRecord(iat=config.clock()))
    await config.store.put(store_keys.c_nonce_key(nonce), record, store_keys.C_NONCE.ttl(config))
    return nonce


async def take_c_nonce(nonce: str, config: IssuerConfig) -> bool:
    """Use up ``nonce``: True when it was a live ``c_nonce`` of this issuer (it is then gone)."""
    if not isinstance(nonce, str) or not NONCE_RE.fullmatch(nonce):
        return False
    return await config.store.take(store_keys.c_nonce_key(nonce)) is not None


def parse_nonce_request(request: HttpRequest | RequestDict, config: IssuerConfig) -> NonceRequest:
    """Check a Nonce Request: POST only (405 otherwise). Raises :class:`CredentialRequestError`."""
    req = HttpRequest.coerce(request)
    if req.method != "POST":
        raise CredentialRequestError(
            ErrorCode.INVALID_REQUEST, "method not allowed; use POST", status=405
        )
    if len(req.body) > config.max_body_size:
        raise CredentialRequestError(
            ErrorCode.INVALID_REQUEST, "request body too large", status=413
        )
    return NonceRequest(request=req)


async def create_nonce_response(parsed: NonceRequest, config: IssuerConfig) -> HttpResponse:
    """``200 {"c_nonce"}`` (and a ``DPoP-Nonce`` header when server DPoP nonces are on)."""
    del parsed
    headers = Headers()
    if config.require_dpop_nonce:
        headers = headers.with_header("DPoP-Nonce", await create_dpop_nonce(config))
    return json_response(200, {"c_nonce": await create_c_nonce(config)}, headers=headers)


async def handle_nonce(request: HttpRequest | RequestDict, config: IssuerConfig) -> HttpResponse:
    """The Nonce Endpoint: parse → create the response. Answers errors, never raises them."""
    try:
        parsed = parse_nonce_request(request, config)
        return await create_nonce_response(parsed, config)
    except ProtocolError as err:
        return with_allow(create_error_response(err), ("POST",))
    except StoreError:
        return temporarily_unavailable()
