"""Building the issuer's HTTP responses: JSON, errors, redirects and small HTML pages.

Every response carries ``Cache-Control: no-store`` (tokens, codes and nonces must never be
cached). :func:`create_error_response` turns a :class:`~oid4vci.errors.ProtocolError` into the
exact response the specs ask for:

* authorization-server errors: the error status (400 by default) with a JSON body
  ``{"error", "error_description"?, "c_nonce"?, "c_nonce_expires_in"?, "interval"?}`` and a
  ``DPoP-Nonce`` header when the error carries one (``use_dpop_nonce``);
* resource-server errors (``err.www_authenticate_scheme`` set, e.g. by
  :func:`resource_error`): one ``WWW-Authenticate`` header holding a challenge per scheme,
  comma-separated (RFC 6750 §3, RFC 9449 §7.1), e.g. ``DPoP error="invalid_token",
  error_description="…", algs="ES256 ES384 EdDSA"`` or, without credentials and with Bearer
  allowed, ``Bearer, DPoP algs="ES256 ES384 EdDSA"``; status 401 for ``invalid_token``,
  ``invalid_dpop_proof`` and ``use_dpop_nonce``. An empty ``error`` means "no credentials were
  sent": the challenge then has no error attribute and the body is empty.
"""

from __future__ import annotations

import html as _html
import json
from collections.abc import Mapping, Sequence
from typing import Any

from oid4vci._json import dumps_long_strings
from oid4vci.errors import CredentialRequestError, ErrorCode, ProtocolError
from oid4vci.http import JSON_CONTENT_TYPE, Headers, HttpResponse

__all__ = [
    "MAX_ERROR_DESCRIPTION",
    "NO_STORE",
    "ResourceServerError",
    "clean_error_description",
    "create_error_response",
    "html_response",
    "json_response",
    "redirect_response",
    "resource_error",
    "temporarily_unavailable",
    "too_many_requests",
    "with_allow",
]

#: Headers on every issuer response: tokens, codes and nonces must never be cached.
NO_STORE: Mapping[str, str] = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: Seconds a client is asked to wait (``Retry-After``) when the store is full.
RETRY_AFTER_SECONDS = 5

_UNAUTHORIZED_ERRORS = frozenset(
    {"", ErrorCode.INVALID_TOKEN, ErrorCode.INVALID_DPOP_PROOF, ErrorCode.USE_DPOP_NONCE}
)


class ResourceServerError(CredentialRequestError):
    """An error at a protected resource (credential, deferred, notification endpoint).

    Carries the ``WWW-Authenticate`` scheme(s) and the DPoP algorithms to advertise.
    ``error == ""`` means the request had no credentials at all (no error attribute).
    """

    def __init__(
        self,
        error: str,
        error_description: str | None = None,
        *,
        schemes: Sequence[str] = ("DPoP",),
        dpop_algorithms: Sequence[str] = (),
        status: int | None = None,
        dpop_nonce: str | None = None,
    ) -> None:
        self.dpop_algorithms = tuple(dpop_algorithms)
        self.schemes = tuple(schemes)
        if status is None:
            status = 401 if error in _UNAUTHORIZED_ERRORS else 400
            if error == ErrorCode.INSUFFICIENT_SCOPE:
                status = 403
        super().__init__(
            error,
            error_description,
            status=status,
            dpop_nonce=dpop_nonce,
            www_authenticate_scheme=", ".join(self.schemes),
        )


def resource_error(
    error: str,
    error_description: str | None = None,
    *,
    schemes: Sequence[str] = ("DPoP",),
    dpop_algorithms: Sequence[str] = (),
    dpop_nonce: str | None = None,
) -> ResourceServerError:
    """A :class:`ResourceServerError` with the status the error code calls for."""
    return ResourceServerError(
        error,
        error_description,
        schemes=schemes,
        dpop_algorithms=dpop_algorithms,
        dpop_nonce=dpop_nonce,
    )


_NO_STORE_HEADERS = Headers(NO_STORE)
# Built once: json.dumps with options builds a new encoder on every call (same output as
# HttpResponse.json's).
_COMPACT = json.JSONEncoder(separators=(",", ":"))  # built once: most responses add nothing else


def _no_store(headers: object) -> Headers:
    if headers is None:
        return _NO_STORE_HEADERS
    base = headers if isinstance(headers, Headers) else Headers(headers)
    for name, value in NO_STORE.items():
        base = base.with_header(name, value)
    return base


# What HttpResponse.json adds to _NO_STORE_HEADERS, built once.
_NO_STORE_JSON_HEADERS = _NO_STORE_HEADERS.with_header("Content-Type", JSON_CONTENT_TYPE)


def json_response(status: int, body: Any, *, headers: object = None) -> HttpResponse:
    """A JSON response with ``Cache-Control: no-store``."""
    if headers is None:
        return HttpResponse(
            status=status, headers=_NO_STORE_JSON_HEADERS, body=_COMPACT.encode(body)
        )
    return HttpResponse.json(status, body, headers=_no_store(headers))


def credentials_response(status: int, body: Any) -> HttpResponse:
    """:func:`json_response` for a body that carries credentials (a few long strings): the
    same bytes, encoded by :func:`~oid4vci._json.dumps_long_strings`."""
    return HttpResponse(
        status=status, headers=_NO_STORE_JSON_HEADERS, body=dumps_long_strings(body)
    )


def redirect_response(url: str, *, status: int = 303, headers: object = None) -> HttpResponse:
    """A redirect (303 See Other by default) to ``url``, not cacheable."""
    hdrs = _no_store(headers).with_header("Location", url)
    return HttpResponse(status=status, headers=hdrs)


def html_response(status: int, html: str, *, headers: object = None) -> HttpResponse:
    """An HTML page, not cacheable, framed by nobody."""
    hdrs = (
        _no_store(headers)
        .with_header("Content-Type", "text/html; charset=utf-8")
        .with_header("X-Frame-Options", "DENY")
        .with_header("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
    )
    return HttpResponse(status=status, headers=hdrs, body=html.encode("utf-8"))


def error_page(
    status: int, error: str, description: str | None = None, *, headers: object = None
) -> HttpResponse:
    """A minimal HTML error page (for authorization errors that must not be redirected)."""
    text = _html.escape(error)
    desc = f"<p>{_html.escape(description)}</p>" if description else ""
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Authorization error</title>"
        f"</head><body><h1>Authorization error</h1><p><code>{text}</code></p>{desc}</body></html>"
    )
    return html_response(status, page, headers=headers)


def with_allow(response: HttpResponse, methods: Sequence[str]) -> HttpResponse:
    """``response`` with ``Allow: <methods>`` when it is a 405 (RFC 9110 §15.5.6)."""
    if response.status != 405:
        return response
    return HttpResponse(
        status=405,
        headers=response.headers.with_header("Allow", ", ".join(methods)),
        body=response.body,
    )


def _retry_after() -> Headers:
    return Headers({"Retry-After": str(RETRY_AFTER_SECONDS)})


def temporarily_unavailable(*, html: bool = False) -> HttpResponse:
    """503 ``temporarily_unavailable`` with ``Retry-After``: the answer to a full store.

    JSON (``{"error", "error_description"}``) by default; ``html`` gives the error page the
    authorization endpoint shows in the browser.
    """
    description = "try again later"
    if html:
        return error_page(
            503, ErrorCode.TEMPORARILY_UNAVAILABLE, description, headers=_retry_after()
        )
    body = {"error": ErrorCode.TEMPORARILY_UNAVAILABLE, "error_description": description}
    return json_response(503, body, headers=_retry_after())


def too_many_requests(retry_after: int, *, html: bool = False) -> HttpResponse:
    """429 with ``Retry-After: <seconds>`` (RFC 6585 §4): a client over its rate limit.

    The body has the OAuth error shape, ``{"error": "temporarily_unavailable",
    "error_description"}`` (RFC 6749 §4.1.2.1); ``html`` gives the authorization endpoint's
    error page instead.
    """
    headers = Headers({"Retry-After": str(int(retry_after))})
    description = "too many requests; retry later"
    if html:
        return error_page(429, ErrorCode.TEMPORARILY_UNAVAILABLE, description, headers=headers)
    body = {"error": ErrorCode.TEMPORARILY_UNAVAILABLE, "error_description": description}
    return json_response(429, body, headers=headers)


#: The longest ``error_description`` sent: longer ones (a description quoting a client-chosen
#: member name) are cut.
MAX_ERROR_DESCRIPTION = 300


def clean_error_description(text: str) -> str:
    """``text`` within the characters RFC 6749 §5.2 / §4.1.2.1 and RFC 6750 §3 allow in an
    ``error_description`` (%x20-21 / %x23-5B / %x5D-7E: ``"`` becomes ``'``, ``\\`` ``/``,
    anything else outside it ``?``), cut at :data:`MAX_ERROR_DESCRIPTION` characters. A
    description may quote what the client sent (a member or parameter name)."""
    if len(text) > MAX_ERROR_DESCRIPTION:
        text = text[: MAX_ERROR_DESCRIPTION - 3] + "..."
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    return "".join(
        ch
        if 0x20 <= ord(ch) <= 0x7E and ch not in '"\\'
        else "'"
        if ch == '"'
        else "/"
        if ch == "\\"
        else "?"
        for ch in text
    )


def _quoted(value: str) -> str:
    return f'"{clean_error_description(value)}"'


def www_authenticate(
    scheme: str,
    *,
    error: str | None = None,
    error_description: str | None = None,
    algs: Sequence[str] = (),
) -> str:
    """One challenge: ``<scheme> error="…", error_description="…", algs="…"``; a ``Basic``
    one starts with the ``realm`` RFC 7617 §2 requires."""
    params: list[str] = ['realm="oid4vci"'] if scheme.lower() == "basic" else []
    if error:
        params.append(f"error={_quoted(error)}")
        if error_description:
            params.append(f"error_description={_quoted(error_description)}")
    if algs and scheme.lower() == "dpop":
        params.append(f"algs={_quoted(' '.join(algs))}")
    return f"{scheme} {', '.join(params)}" if params else scheme


def create_error_response(
    err: ProtocolError, *, dpop_algorithms: Sequence[str] | None = None
) -> HttpResponse:
    """The exact HTTP response for ``err`` (see the module docstring).

    ``dpop_algorithms`` overrides the ``algs`` advertised in a DPoP challenge (otherwise the
    error's own, when it is a :class:`ResourceServerError`).
    """
    headers = Headers()
    if err.dpop_nonce:
        headers = headers.with_header("DPoP-Nonce", err.dpop_nonce)
    status = err.status
    scheme_text = err.www_authenticate_scheme
    if scheme_text:
        schemes = [s.strip() for s in scheme_text.replace(",", " ").split() if s.strip()]
        algs: Sequence[str] = (
            dpop_algorithms if dpop_algorithms is not None else getattr(err, "dpop_algorithms", ())
        )
        challenges = [
            www_authenticate(
                scheme, error=err.error, error_description=err.error_description, algs=algs
            )
            for scheme in schemes
        ]
        if err.error in _UNAUTHORIZED_ERRORS:
            status = 401
        headers = headers.with_header("WWW-Authenticate", ", ".join(challenges))
        if not err.error:
            return HttpResponse(status=status, headers=_no_store(headers))
    body: dict[str, Any] = {"error": err.error}
    if err.error_description:
        body["error_description"] = clean_error_description(err.error_description)
    if err.c_nonce is not None:
        body["c_nonce"] = err.c_nonce
        if err.c_nonce_expires_in is not None:
            body["c_nonce_expires_in"] = err.c_nonce_expires_in
    if err.interval is not None:
        body["interval"] = err.interval
    return json_response(status, body, headers=headers)
