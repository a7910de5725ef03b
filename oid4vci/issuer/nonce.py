"""The Nonce Endpoint (OID4VCI §7, Draft 15+): hands out a fresh ``c_nonce``.

POST only, no access token, any (normally empty) body. The answer is
``200 {"c_nonce": "..."}`` with ``Cache-Control: no-store``, plus a ``DPoP-Nonce`` header when
the issuer requires server DPoP nonces (``require_dpop_nonce``), so the wallet can use it in the
DPoP proof of its next credential request. Each ``c_nonce`` is single use and lives
``config.c_nonce_ttl`` seconds.
"""

from __future__ import annotations

from oid4vci.errors import CredentialRequestError, ErrorCode
from oid4vci.http import Headers, HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer.access_token import mint_c_nonce, mint_dpop_nonce
from oid4vci.issuer.config import IssuerConfig
from oid4vci.issuer.responses import json_response

__all__ = ["handle_nonce", "new_c_nonce"]


async def new_c_nonce(config: IssuerConfig) -> str:
    """A fresh single-use ``c_nonce`` of this issuer."""
    return await mint_c_nonce(config.store, config.c_nonce_ttl, config.clock)


async def handle_nonce(request: HttpRequest | RequestDict, config: IssuerConfig) -> HttpResponse:
    """Answer a Nonce Endpoint request. Raises :class:`CredentialRequestError` (405) for non-POST."""
    req = HttpRequest.coerce(request)
    if req.method != "POST":
        raise CredentialRequestError(
            ErrorCode.INVALID_REQUEST, "method not allowed; use POST", status=405
        )
    headers = Headers()
    if config.require_dpop_nonce:
        headers = headers.with_header("DPoP-Nonce", await mint_dpop_nonce(config))
    return json_response(200, {"c_nonce": await new_c_nonce(config)}, headers=headers)
