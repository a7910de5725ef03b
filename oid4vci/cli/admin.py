"""The demo issuer's admin endpoint (``oid4vci serve`` only): set a credential's status.

``POST <issuer>/admin/status`` with ``Authorization: Bearer <token>`` (RFC 6750 §2.1) and a
JSON body ``{"uri": URI, "idx": N, "status": "valid" | "invalid" | "suspended"}`` sets that
Token Status List entry (draft-ietf-oauth-status-list-20 §7) through
:meth:`~oid4vci.issuer.Issuer.set_credential_status` and answers ``204``. Without the token or
with a wrong one: ``401`` with ``WWW-Authenticate: Bearer`` (RFC 6750 §3; the token is compared
in constant time); a body that is not such an object: ``400``; an entry this issuer never
issued: ``404``; another method: ``405``; a store that is down or full: ``503`` with
``Retry-After``, as at every issuer endpoint.

The token is a secret made when the server starts (shared by ``--workers``): it is printed only
in the ``--json`` ready line (``"admin": {"status_url", "token"}``), never logged. The
endpoint is not part of the library's issuer: a real issuer calls
:meth:`~oid4vci.issuer.Issuer.set_credential_status` from its own back office.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from oid4vci.errors import StoreError, UsageError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer.responses import temporarily_unavailable

__all__ = ["ADMIN_STATUS_PATH", "admin_handler", "admin_status_url", "new_admin_token"]

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]

#: Where the admin endpoint is, below the issuer identifier.
ADMIN_STATUS_PATH = "/admin/status"
_STATUSES = frozenset({"valid", "invalid", "suspended"})
_MAX_BODY = 4096


def new_admin_token() -> str:
    """A fresh admin token (256 random bits, base64url)."""
    return secrets.token_urlsafe(32)


def admin_status_url(issuer_url: str) -> str:
    """The admin endpoint's URL for the issuer at ``issuer_url``."""
    return issuer_url.rstrip("/") + ADMIN_STATUS_PATH


def _error(status: int, error: str, description: str, **headers: str) -> HttpResponse:
    return HttpResponse.json(status, {"error": error, "error_description": description}, headers)


def _authorized(request: HttpRequest, token: str) -> bool:
    scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "replace"), token.encode()
    )


def _read_body(body: bytes) -> tuple[str, int, str] | str:
    """``(uri, idx, status)``, or what is wrong with the body."""
    if len(body) > _MAX_BODY:
        return "the body is too large"
    try:
        data: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "the body is not JSON"
    if not isinstance(data, dict):
        return "the body must be a JSON object"
    uri, idx, status = data.get("uri"), data.get("idx"), data.get("status")
    if not isinstance(uri, str) or not uri:
        return "'uri' must be a status list URI"
    if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
        return "'idx' must be a non-negative integer"
    if status not in _STATUSES:
        return "'status' must be 'valid', 'invalid' or 'suspended'"
    return uri, idx, str(status)


def admin_handler(issuer: Any, token: str, handler: Handler, *, issuer_url: str) -> Handler:
    """``handler`` with the admin endpoint added at :data:`ADMIN_STATUS_PATH` of
    ``issuer_url``; ``issuer`` is the :class:`~oid4vci.issuer.Issuer` whose statuses it sets."""
    path = urlsplit(admin_status_url(issuer_url)).path

    async def handle(request: HttpRequest) -> HttpResponse:
        # The substring test first: a URL without the admin path anywhere in it (every issuer
        # request) is passed on without being parsed.
        if path not in request.url or urlsplit(request.url).path != path:
            return await handler(request)
        if request.method != "POST":
            return _error(405, "invalid_request", "use POST", Allow="POST")
        if not _authorized(request, token):
            challenge = 'Bearer realm="oid4vci-demo-admin"'
            if request.headers.get("Authorization"):
                challenge += ', error="invalid_token"'
            return _error(401, "invalid_token", "a valid admin token is needed",
                          **{"WWW-Authenticate": challenge})  # fmt: skip
        found = _read_body(request.body)
        if isinstance(found, str):
            return _error(400, "invalid_request", found)
        uri, idx, status = found
        try:
            await issuer.set_credential_status((uri, idx), status)
        except UsageError:
            return _error(404, "not_found", "this issuer issued no credential with that entry")
        except StoreError:  # down, full or slow: retry later, as every endpoint answers it
            return temporarily_unavailable()
        return HttpResponse(status=204)

    return handle
