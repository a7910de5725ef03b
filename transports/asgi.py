"""Serve an issuer (any async ``handler(HttpRequest) -> HttpResponse``) as an ASGI application.

:func:`asgi_app` turns ``issuer.handle`` into an ASGI 3 application that runs under any ASGI
server (uvicorn, hypercorn, granian, ...) or mounted in any ASGI framework (Starlette,
FastAPI, Litestar, Quart, ...)::

    from starlette.applications import Starlette
    from starlette.routing import Mount
    from oid4vci.transports.asgi import asgi_app

    app = Starlette(routes=[Mount("/", app=asgi_app(issuer.handle))])

The same rules as the aiohttp server adapter (:mod:`oid4vci.transports.aiohttp`): the URL
given to the handler is the one the client addressed; the request body limit is enforced
before the handler runs (413); repeated headers are kept both ways; a handler exception
becomes a bare 500 ``server_error`` answer. It also answers the ASGI lifespan protocol and
refuses WebSocket connections. Needs no extra: it is plain ASGI, on asyncio or trio.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from oid4vci.errors import ArgumentTypeError, UsageError
from oid4vci.http import Headers, HttpRequest, HttpResponse
from oid4vci.transports._common import (
    DEFAULT_MAX_BODY_SIZE,
    FRAMING_HEADERS,
    HOST_RE,
    Handler,
    body_too_large,
    json_error,
)

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "ASGIApp",
    "Handler",
    "Receive",
    "Scope",
    "Send",
    "asgi_app",
]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
"""An ASGI connection scope."""
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
"""The ASGI ``receive`` callable."""
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
"""The ASGI ``send`` callable."""
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application."""

# What may stay unescaped in a path rebuilt from its decoded form (RFC 3986 pchar and "/").
_PATH_SAFE = "/:@!$&'()*+,;=~"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _public_parts(public_url: str) -> tuple[str, str]:
    """``(scheme://host[:port], path prefix)`` of a public base URL; ValueError if unusable."""
    try:
        parts = urlsplit(public_url)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise UsageError("public_url is not a valid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError("public_url must look like 'https://host[:port][/path]'")
    if parts.query or parts.fragment or parts.username is not None:
        raise UsageError("public_url must not have a query, fragment or user info")
    return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")


def _full_path(scope: Scope) -> str:
    """The request path as the client sent it (percent-encoded), mount point included.

    ASGI servers and frameworks put the mount point in ``root_path``; current ones also keep
    it at the start of ``path`` and ``raw_path`` (Starlette's ``Mount``, uvicorn's
    ``--root-path``), older ones gave the path below it. Both are understood. ``raw_path`` is
    preferred (``%2F`` stays ``%2F``) whenever it agrees with ``path``.
    """
    root = str(scope.get("root_path") or "").rstrip("/")
    path = str(scope.get("path") or "/")
    below = bool(root) and not (path == root or path.startswith(root + "/"))
    full = root + path if below else path
    raw = scope.get("raw_path")
    if isinstance(raw, bytes | bytearray):
        text = bytes(raw).decode("latin-1")
        if unquote(text) == full:
            return text
        if below and unquote(text) == path:
            return quote(root, safe=_PATH_SAFE) + text
    return quote(full, safe=_PATH_SAFE)


def _host(scope: Scope, headers: Headers) -> str | None:
    """``host[:port]`` from the Host header (validated), else the server address."""
    host = headers.get("host")
    if host is not None:
        return host if HOST_RE.fullmatch(host) else None
    server = scope.get("server")
    if not server or server[0] is None:
        return None
    name, port = str(server[0]), server[1]
    if ":" in name:
        name = f"[{name}]"
    if port is None or port == _DEFAULT_PORTS.get(str(scope.get("scheme", "http"))):
        return name
    return f"{name}:{port}"


def _response_headers(response: HttpResponse) -> list[tuple[bytes, bytes]]:
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.multi_items()
        if name.lower() not in FRAMING_HEADERS
    ]
    headers.append((b"content-length", str(len(response.body)).encode("ascii")))
    return headers


def _client_address(scope: Mapping[str, Any]) -> str | None:
    """The peer's host from the ASGI scope's ``client`` (``None`` when the server gives none)."""
    client = scope.get("client")
    if isinstance(client, list | tuple) and client and isinstance(client[0], str):
        return client[0]
    return None


#: A request method as HttpRequest keeps it: an upper-case token.
_METHOD = re.compile(r"[A-Z][A-Z0-9_-]{0,31}")


async def _respond(send: Send, response: HttpResponse) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": _response_headers(response),
        }
    )
    await send({"type": "http.response.body", "body": response.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def asgi_app(
    handle: Handler,
    *,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    public_url: str | None = None,
) -> ASGIApp:
    """An ASGI 3 application sending every HTTP request to ``handle`` (e.g. ``issuer.handle``).

    :param handle: ``async handle(HttpRequest) -> HttpResponse``.
    :param max_body_size: a request body longer than this answers 413 ``invalid_request``
        before ``handle`` is called (a larger ``Content-Length`` is refused without reading).
    :param public_url: the public base URL (``https://issuer.example.com`` or with a path,
        ``https://example.com/base``) when the application sits behind a proxy that does not
        pass the original scheme and host on. Its scheme and host replace those the server
        saw, and its path (if any) goes in front of the request path. Without it, the URL
        is built from the ASGI scope's scheme, the ``Host`` header and the path.

    The URL given to ``handle`` is ``scheme://host`` + ``root_path`` + path + ``?query``:
    mounted under a prefix (Starlette's ``Mount("/prefix", ...)``, ``uvicorn --root-path``),
    the prefix is part of it, as the issuer's endpoint URLs expect. A malformed ``Host``
    header answers 400. Request headers keep their order and repeats; response headers are
    sent with their repeats (framing headers are the server's job: ``Content-Length`` is
    set from the body). An exception from ``handle`` answers 500 ``{"error":
    "server_error"}``; it is logged at ERROR with method, path and exception type only (the
    traceback at DEBUG). Lifespan events are answered; WebSocket connections are refused.
    """
    if max_body_size < 0:
        raise UsageError("max_body_size must not be negative")
    public = _public_parts(public_url) if public_url is not None else None

    async def serve_http(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            headers = Headers(
                [
                    (bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
                    for k, v in scope["headers"]
                ]
            )
        except (TypeError, ValueError):
            await _respond(send, json_error(400, "invalid_request", "invalid header"))
            return
        path = _full_path(scope)
        if public is not None:
            base = public[0] + public[1]
        else:
            host = _host(scope, headers)
            if host is None:
                await _respond(send, json_error(400, "invalid_request", "invalid Host header"))
                return
            base = f"{scope.get('scheme', 'http')}://{host}"
        query = bytes(scope.get("query_string") or b"").decode("latin-1")
        url = base + path + (f"?{query}" if query else "")

        declared = headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > max_body_size:
            await _respond(send, body_too_large())
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = bytes(message.get("body") or b"")
            total += len(chunk)
            if total > max_body_size:
                await _respond(send, body_too_large())
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break

        method = str(scope.get("method", "GET"))
        if not _METHOD.fullmatch(method):
            # Methods are case-sensitive tokens (RFC 9110 §9.1): "get" is not GET. The
            # aiohttp adapter's parser refuses it the same way.
            await _respond(send, json_error(400, "invalid_request", "invalid method"))
            return
        started = time.monotonic()
        try:
            request = HttpRequest(
                method=method,
                url=url,
                headers=headers,
                body=b"".join(chunks),
                client_address=_client_address(scope),
            )
            response = await handle(request)
            if not isinstance(response, HttpResponse):
                raise ArgumentTypeError(f"handler returned {type(response).__name__}")
            _response_headers(response)  # refuse unencodable headers before anything is sent
        except Exception as exc:
            logger.error(
                "handler failed: %s %s (%s after %.3fs)",
                method,
                path,
                type(exc).__name__,
                time.monotonic() - started,
            )
            logger.debug("handler traceback", exc_info=True)
            response = json_error(500, "server_error")
        await _respond(send, response)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await serve_http(scope, receive, send)
        elif kind == "lifespan":
            await _lifespan(receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
        else:
            raise UsageError(f"unsupported ASGI scope type {kind!r}")

    return app
