"""Reading the body of a request to an issuer endpoint: method, size, content type, then parse.

Every POST endpoint checks the same things in the same order, each with its own error class
and code, so the checks live here once:

* :func:`require_post` — POST (else 405) and at most ``config.max_body_size`` bytes (else 413);
* :func:`parse_form_post` — the above plus ``application/x-www-form-urlencoded`` (token, PAR);
* :func:`parse_json_body` — ``application/json`` (else ``media_status``) and valid JSON
  (credential, deferred credential, notification).
"""

from __future__ import annotations

from typing import Any

from oid4vci.errors import ErrorCode, ProtocolError, WireFormatError
from oid4vci.http import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, HttpRequest
from oid4vci.issuer.config import IssuerConfig

__all__ = ["parse_form_post", "parse_json_body", "require_post"]


def require_post(
    req: HttpRequest,
    config: IssuerConfig,
    *,
    error_cls: type[ProtocolError],
    error_code: str = ErrorCode.INVALID_REQUEST,
) -> None:
    """Refuse another method than POST (405) and a body over ``config.max_body_size`` (413)."""
    if req.method != "POST":
        raise error_cls(error_code, "method not allowed; use POST", status=405)
    if len(req.body) > config.max_body_size:
        raise error_cls(error_code, "request body too large", status=413)


def parse_form_post(
    req: HttpRequest, config: IssuerConfig, *, error_cls: type[ProtocolError]
) -> dict[str, str]:
    """The form parameters of a form-encoded POST (each name at most once)."""
    require_post(req, config, error_cls=error_cls)
    if req.media_type != FORM_CONTENT_TYPE:
        raise error_cls(
            ErrorCode.INVALID_REQUEST, "content type must be application/x-www-form-urlencoded"
        )
    try:
        return req.form_body()
    except WireFormatError as exc:
        raise error_cls(ErrorCode.INVALID_REQUEST, str(exc)) from None


def parse_json_body(
    req: HttpRequest,
    *,
    error_cls: type[ProtocolError],
    error_code: str,
    media_status: int | None = 415,
) -> Any:
    """The JSON body of ``req``; ``media_status`` is the status for another content type."""
    if req.media_type != JSON_CONTENT_TYPE:
        raise error_cls(error_code, "content type must be application/json", status=media_status)
    try:
        return req.json_body()
    except WireFormatError as exc:
        raise error_cls(error_code, str(exc)) from None
