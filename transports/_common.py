"""What the network transports and server adapters share: defaults, redaction, error answers.

Private to ``oid4vci.transports``; imports nothing outside the standard library and the core,
so every transport module can use it whatever extras are installed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from oid4vci.errors import (
    MissingDependencyError,
    RedirectRefused,
    ResponseTooLarge,
    TransportError,
)
from oid4vci.http import (
    JSON_CONTENT_TYPE,
    REDIRECT_STATUSES,
    Headers,
    HttpRequest,
    HttpResponse,
)

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]
"""An async function answering one request: ``async def handler(request) -> response``."""

DEFAULT_MAX_RESPONSE_SIZE = 4 * 1024 * 1024
"""Default client response body cap: 4 MiB."""
DEFAULT_MAX_BODY_SIZE = 1024 * 1024
"""Default server request body limit: 1 MiB."""

# Hop-by-hop and framing headers: the HTTP server computes these itself.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})

# host, IPv4 or [IPv6], optional port: what an issuer may safely build its URL from.
HOST_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?"
)


def missing_extra(module: str, extra: str) -> MissingDependencyError:
    """The one-line error for ``module`` imported without the ``extra`` installed."""
    return MissingDependencyError(
        f"{module} needs the '{extra}' extra: pip install 'oid4vci[{extra}]'"
    )


def safe_url(url: str) -> str:
    """``url`` without user info, query and fragment (they may carry codes or tokens)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<invalid URL>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    return f"{parts.scheme}://{netloc}{parts.path}"


def describe(request: HttpRequest) -> str:
    """``METHOD url`` for messages, without the URL's secrets (see :func:`safe_url`)."""
    return f"{request.method} {safe_url(request.url)}"


# RFC 1035 §2.3.4: a label is at most 63 octets and a name at most 255 octets on the wire,
# which is 253 characters written out (without the root's trailing dot).
_MAX_LABEL_LENGTH = 63
_MAX_NAME_LENGTH = 253


def host_name_problem(url: str) -> str | None:
    """What makes the host name of ``url`` impossible to look up, or ``None``.

    An empty label (``a..b``, ``.example``; one trailing dot, the root, is allowed) and, for an
    ASCII name, a label longer than 63 characters or a name longer than 253 (RFC 1035 §2.3.4).
    These are the names the IDNA encoders on the way to the resolver refuse with a bare
    ``UnicodeError``. IP literals pass; whether a non-ASCII name can be encoded (and how long
    its encoding is) is left to the transport's IDNA encoder. The answer completes "host name
    ...", e.g. ``"has an empty label"``.
    """
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None  # not a URL at all: require_secure_url refuses it
    if not host or ":" in host:
        return None  # no host (refused by require_secure_url) or an IPv6 literal
    name = host.removesuffix(".")
    labels = name.split(".")
    if not all(labels):
        return "has an empty label"
    if not name.isascii():
        return None
    if max(map(len, labels)) > _MAX_LABEL_LENGTH:
        return f"has a label longer than {_MAX_LABEL_LENGTH} characters"
    if len(name) > _MAX_NAME_LENGTH:
        return f"is longer than {_MAX_NAME_LENGTH} characters"
    return None


def invalid_host(request: HttpRequest, problem: str) -> TransportError:
    """The one-line error for ``request`` whose host name ``problem`` (see
    :func:`host_name_problem`); like every transport message, without the URL's query."""
    return TransportError(f"{describe(request)}: invalid request URL (host name {problem})")


def refuse_unusable_host(request: HttpRequest) -> None:
    """Raise :func:`invalid_host`'s error, before any network I/O, when the host name of
    ``request`` cannot be looked up (see :func:`host_name_problem`)."""
    problem = host_name_problem(request.url)
    if problem is not None:
        raise invalid_host(request, problem)


def json_error(status: int, error: str, description: str | None = None) -> HttpResponse:
    """An OAuth-style JSON error answer with ``Cache-Control: no-store``."""
    data = (
        {"error": error}
        if description is None
        else {"error": error, "error_description": description}
    )
    return HttpResponse(
        status=status,
        headers={"Content-Type": JSON_CONTENT_TYPE, "Cache-Control": "no-store"},
        body=json.dumps(data, separators=(",", ":")),
    )


def body_too_large() -> HttpResponse:
    """The 413 answer to a request body over the server's limit."""
    return json_error(413, "invalid_request", "request body too large")


async def read_response(
    request: HttpRequest,
    status: int,
    header_pairs: Callable[[], Iterable[tuple[str, str]]],
    *,
    declared_size: int | None,
    read_body: Callable[[int], Awaitable[bytes | None]],
    max_size: int,
    raise_on_redirect: bool,
) -> HttpResponse:
    """The response policy every client transport shares: a redirect is refused (or returned
    without its body), headers must be well formed, a body over ``max_size`` (declared or
    streamed; ``read_body(cap)`` answers None past it) raises :class:`ResponseTooLarge`."""
    try:
        headers = Headers(list(header_pairs()))
    except (TypeError, ValueError):
        raise TransportError(f"{describe(request)}: malformed response headers") from None
    if raise_on_redirect and status in REDIRECT_STATUSES:
        raise RedirectRefused(
            f"{describe(request)}: server answered {status}; redirects are not followed",
            status=status,
            location=headers.get("Location"),
        )
    if status in REDIRECT_STATUSES:
        return HttpResponse(status=status, headers=headers)
    too_large = ResponseTooLarge(f"{describe(request)}: response body exceeds {max_size} bytes")
    if declared_size is not None and declared_size > max_size:
        raise too_large
    body = await read_body(max_size)
    if body is None:
        raise too_large
    return HttpResponse(status=status, headers=headers, body=body)
