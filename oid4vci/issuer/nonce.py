"""The Nonce Endpoint (OID4VCI 1.0 §7, Draft 15+): hands out a fresh ``c_nonce``.

Stages: :func:`parse_nonce_request` (POST, no access token, any — normally empty — body) →
:func:`create_nonce_response`, composed by :func:`handle_nonce`. There is nothing to verify:
the endpoint takes no credentials (OID4VCI 1.0 §7.1).

The answer is ``200 {"c_nonce": "..."}`` with ``Cache-Control: no-store`` (OID4VCI 1.0 §7.2), plus a
``DPoP-Nonce`` header when the issuer requires server DPoP nonces (``require_dpop_nonce``), so the
wallet can use it in the DPoP proof of its next credential request.

Nonces are stateless (:mod:`oid4vci.issuer.stateless_nonce`): a ``c_nonce`` is sealed with the
issuer's :attr:`~oid4vci.issuer.config.IssuerConfig.nonce_keys` and carries its own expiry
(``config.c_nonce_ttl`` seconds), so this endpoint writes nothing to the store. It is single use
at redemption: :func:`take_c_nonce`, called once a credential request's access token, DPoP proof
and key proofs have passed, records it under ``c_nonce_used:<id>`` with ``add_if_absent`` until
it expires (:mod:`oid4vci.issuer.store_keys`), so of two concurrent redemptions exactly one wins.
"""

from __future__ import annotations

import math

import attrs

from oid4vci.errors import CredentialRequestError, ErrorCode, ProtocolError, StoreError
from oid4vci.http import Headers, HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer import store_keys
from oid4vci.issuer.access_token import create_dpop_nonce
from oid4vci.issuer.config import IssuerConfig
from oid4vci.issuer.flood_limits import refused
from oid4vci.issuer.responses import (
    create_error_response,
    json_response,
    with_allow,
)
from oid4vci.issuer.stateless_nonce import NonceError, NoncePurpose, open_nonce, seal_nonce

__all__ = [
    "NonceRequest",
    "create_c_nonce",
    "create_nonce_response",
    "handle_nonce",
    "parse_nonce_request",
    "seal_c_nonce",
    "take_c_nonce",
]


@attrs.frozen(kw_only=True)
class NonceRequest:
    """A parsed Nonce Request (OID4VCI 1.0 §7.1): nothing but the HTTP request."""

    request: HttpRequest = attrs.field(repr=False)


async def create_c_nonce(config: IssuerConfig) -> str:
    """A fresh ``c_nonce`` of this issuer (OID4VCI 1.0 §7.2), valid ``config.c_nonce_ttl`` s.

    Stateless: sealed with ``config.nonce_keys``; nothing is written to the store.
    """
    return seal_c_nonce(config)


def seal_c_nonce(config: IssuerConfig) -> str:
    """:func:`create_c_nonce` for synchronous code (a parse stage's Draft 13/14 error)."""
    return seal_nonce(
        config.nonce_keys,
        NoncePurpose.C_NONCE,
        audience=config.credential_issuer,
        expires_at=config.clock() + config.c_nonce_ttl,
    )


async def take_c_nonce(nonce: str, config: IssuerConfig) -> bool:
    """Use up ``nonce``: True when it is a live ``c_nonce`` of this issuer not used before.

    A nonce that is forged, tampered with, made with a key no longer accepted, a ``DPoP-Nonce``,
    expired or already used gives False. Otherwise it is recorded (``add_if_absent``) until it
    expires, so it is accepted once across every worker sharing the store.
    """
    now = config.clock()
    try:
        opened = open_nonce(
            nonce,
            config.nonce_keys,
            NoncePurpose.C_NONCE,
            audience=config.credential_issuer,
            now=now,
        )
    except NonceError:
        return False
    ttl = max(1.0, math.ceil(opened.expires_at - now))
    key = store_keys.c_nonce_used_key(opened.nonce_id)
    return await config.store.add_if_absent(key, True, ttl)


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
    except StoreError as exc:
        return refused(exc, config, "nonce")
