"""Real HTTP with aiohttp: the client transport and the server adapter (asyncio only).

Client: :class:`AiohttpTransport` implements :class:`oid4vci.http.Transport` over one reused
:class:`aiohttp.ClientSession`, with the library's safe defaults: https only (http only to
loopback hosts, and only when ``allow_insecure_loopback`` is set), no redirects followed,
connect and total timeouts, a response size cap enforced while streaming, no cookies kept, and
aiohttp's exceptions mapped to :class:`~oid4vci.errors.TransportError` and its subclasses with
messages that never contain the URL's query.

Server: :func:`make_aiohttp_server` (aiohttp's low-level server, what :func:`serve` and
``oid4vci serve`` run), :func:`make_aiohttp_app`, :func:`handler_for_aiohttp` expose an async
``handler(HttpRequest) -> HttpResponse`` (such as an issuer's ``handle``) over HTTP. The
request body size limit is enforced before the handler runs (413), a handler exception becomes
a bare 500 ``server_error`` answer, and aiohttp's access log (which would record query strings
holding codes) is off in :func:`make_aiohttp_server` and :func:`serve`, which log a malformed
request as one line without its bytes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

from oid4vci.errors import ArgumentTypeError, UsageError

try:
    import aiohttp
    import yarl
    from aiohttp import web
    from aiohttp.http_exceptions import HttpProcessingError
    from aiohttp.log import server_logger
    from multidict import CIMultiDict
except ModuleNotFoundError as exc:  # exercised in a venv without the extra
    from oid4vci.transports._common import missing_extra

    raise missing_extra(__name__, "aiohttp") from exc

import attrs

from oid4vci.errors import (
    ConnectError,
    TransportError,
    TransportTimeout,
)
from oid4vci.http import (
    REDIRECT_STATUSES,
    AsyncTransport,
    Headers,
    HttpRequest,
    HttpResponse,
)
from oid4vci.transports._common import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_RESPONSE_SIZE,
    FRAMING_HEADERS,
    HOST_RE,
    Handler,
    body_too_large,
    describe,
    invalid_host,
    json_error,
    read_response,
    refuse_unusable_host,
)
from oid4vci.urls import require_secure_url

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "REDIRECT_STATUSES",
    "AiohttpTransport",
    "Handler",
    "ServedApp",
    "handler_for_aiohttp",
    "make_aiohttp_app",
    "make_aiohttp_server",
    "serve",
]

logger = logging.getLogger(__name__)

AiohttpHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_READ_CHUNK = 64 * 1024

# printable ASCII, no space: such a URL is sent exactly as given (no re-quoting by yarl)
_WIRE_READY_URL = re.compile(r"[!-~]+")


def _wire_url(url: str) -> yarl.URL:
    """``url`` for aiohttp; already-encoded URLs are kept byte for byte (``%2F`` stays)."""
    return yarl.URL(url, encoded=bool(_WIRE_READY_URL.fullmatch(url)))


class _Readable(Protocol):
    async def read(self, n: int = -1, /) -> bytes: ...


async def _read_capped(stream: _Readable, limit: int) -> bytes | None:
    """Read ``stream`` to its end, or ``None`` once more than ``limit`` bytes arrive.

    Never asks the stream for more than ``limit + 1`` bytes in total.
    """
    chunks: list[bytes] = []
    total = 0
    while True:
        remaining = limit + 1 - total
        if remaining <= 0:
            return None
        chunk = await stream.read(min(remaining, _READ_CHUNK))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)


def _is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError)


class AiohttpTransport(AsyncTransport):
    """A :class:`~oid4vci.http.Transport` over aiohttp.

    :param session: an existing :class:`aiohttp.ClientSession` to use; the caller keeps
        ownership (:meth:`aclose` does not close it). Without one, a session is created lazily
        inside the running event loop on the first :meth:`send` and closed by :meth:`aclose`;
        it keeps no cookies.
    :param connect_timeout: seconds allowed to establish a connection.
    :param total_timeout: seconds allowed for the whole exchange, body included.
    :param max_response_size: a response body longer than this raises
        :class:`~oid4vci.errors.ResponseTooLarge`; at most ``max_response_size + 1`` bytes are
        read. The cap applies to the decoded body (a compressed bomb cannot slip through).
    :param allow_insecure_loopback: allow ``http://`` to 127.0.0.0/8, ``localhost`` and ``::1``.
        Every other non-https URL raises :class:`~oid4vci.errors.InsecureUrlError` before any
        network I/O.
    :param raise_on_redirect: when true (the default), a 301/302/303/307/308 answer raises
        :class:`~oid4vci.errors.RedirectRefused`; when false it is returned as the response
        (the body is not read). Redirects are never followed either way.

    Errors: :class:`~oid4vci.errors.TransportTimeout`, :class:`~oid4vci.errors.ConnectError`
    (the server could not be reached), :class:`~oid4vci.errors.TransportError` (anything else
    that broke the exchange, e.g. a truncated or malformed response, or a host name that cannot
    be looked up: an empty label, a label too long, not IDNA-encodable; refused before any
    network I/O). aiohttp exceptions are never raised to the caller and are not chained (their
    text can hold the full URL).
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        connect_timeout: float = 10,
        total_timeout: float = 30,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        allow_insecure_loopback: bool = False,
        raise_on_redirect: bool = True,
    ) -> None:
        if connect_timeout <= 0 or total_timeout <= 0:
            raise UsageError("timeouts must be positive")
        if max_response_size < 0:
            raise UsageError("max_response_size must not be negative")
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=total_timeout, connect=connect_timeout)
        self._max_response_size = max_response_size
        self._allow_insecure_loopback = allow_insecure_loopback
        self._raise_on_redirect = raise_on_redirect
        self._closed = False

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, cookie_jar=aiohttp.DummyCookieJar()
            )
        return self._session

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` and return the response (see the class docstring for errors)."""
        if self._closed:
            raise TransportError("transport is closed")
        require_secure_url(
            request.url,
            allow_insecure_loopback=self._allow_insecure_loopback,
            what="request URL",
        )
        refuse_unusable_host(request)
        try:
            url = _wire_url(request.url)
        except ValueError:  # yarl's IDNA encoding refused the host (UnicodeError is a ValueError)
            raise invalid_host(request, "cannot be IDNA-encoded") from None
        session = self._get_session()
        try:
            return await self._exchange(session, request, url)
        except TransportError:
            raise
        except UnicodeError:  # the resolver's IDNA codec refused the host
            raise invalid_host(request, "cannot be IDNA-encoded") from None
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(self._message(request, "could not connect", exc)) from None
        except aiohttp.ServerDisconnectedError as exc:
            raise TransportError(
                self._message(request, "server closed the connection", exc)
            ) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            if _is_timeout(exc):
                raise TransportTimeout(self._message(request, "timed out", exc)) from None
            if isinstance(exc, aiohttp.ClientConnectionError):
                raise ConnectError(self._message(request, "connection failed", exc)) from None
            if isinstance(exc, aiohttp.ClientPayloadError):
                raise TransportError(
                    self._message(request, "response body incomplete or malformed", exc)
                ) from None
            raise TransportError(self._message(request, "request failed", exc)) from None

    @staticmethod
    def _message(request: HttpRequest, what: str, exc: BaseException) -> str:
        # The exception's own text may contain the full URL; only its type name is kept.
        return f"{describe(request)}: {what} ({type(exc).__name__})"

    async def _exchange(
        self, session: aiohttp.ClientSession, request: HttpRequest, url: yarl.URL
    ) -> HttpResponse:
        headers: CIMultiDict[str] = CIMultiDict(request.headers.multi_items())
        skip_auto_headers = () if "content-type" in request.headers else ("Content-Type",)
        async with session.request(
            request.method,
            url,
            headers=headers,
            data=request.body or None,
            allow_redirects=False,
            raise_for_status=False,
            timeout=self._timeout,
            skip_auto_headers=skip_auto_headers,
        ) as resp:
            return await read_response(
                request,
                resp.status,
                lambda: resp.headers.items(),
                declared_size=resp.content_length,
                read_body=lambda cap: _read_capped(resp.content, cap),
                max_size=self._max_response_size,
                raise_on_redirect=self._raise_on_redirect,
            )

    @property
    def allow_insecure_loopback(self) -> bool:
        """Whether ``http://`` to loopback hosts is allowed (a wallet client over this
        transport then allows it too)."""
        return self._allow_insecure_loopback

    async def aclose(self) -> None:
        """Close the session if this transport created it (idempotent)."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    def __repr__(self) -> str:
        return (
            f"AiohttpTransport(total_timeout={self._timeout.total}, "
            f"max_response_size={self._max_response_size}, "
            f"allow_insecure_loopback={self._allow_insecure_loopback})"
        )


# --- server adapter -------------------------------------------------------------------------

# A malformed request is the client's error (RFC 9110 §15.5.1), answered 400 and not a fault
# of this server: INFO, not ERROR. Still worth a line when looking into a flow that stalled
# (a wallet's callback listener refusing the browser's redirect); hidden at the usual WARNING.
_MALFORMED_REQUEST_LEVEL = logging.INFO


def _client_fault(exc: BaseException | None) -> str | None:
    """The name of what is wrong with the client's request when ``exc`` is aiohttp refusing
    it (its HTTP parser's errors, a body that cannot be decoded), else ``None``."""
    if isinstance(exc, web.RequestPayloadError):
        cause = exc.__cause__
        return type(cause if isinstance(cause, HttpProcessingError) else exc).__name__
    if isinstance(exc, HttpProcessingError):
        return type(exc).__name__
    return None


def _log_refusal(remote: object, fault: str, level: int = _MALFORMED_REQUEST_LEVEL) -> None:
    """One line for a malformed request: the peer's IP address (when that is what ``remote``
    is) and the error's type name; never the error's text, which quotes the request."""
    try:
        address = str(ipaddress.ip_address(remote)) if isinstance(remote, str) else None
    except ValueError:
        address = None
    if address is None:
        logger.log(level, "refused a malformed HTTP request: %s", fault)
    else:
        logger.log(level, "refused a malformed HTTP request from %s: %s", address, fault)


class _ServerLog(logging.LoggerAdapter[logging.Logger]):
    """The ``logger`` of :func:`make_aiohttp_server`'s connections.

    aiohttp logs a request its parser refuses at ERROR with a traceback whose last line quotes
    the offending bytes (a request line holding ``code=...``). Such a record becomes one line
    on this module's logger (:func:`_log_refusal`); everything else goes to aiohttp's
    ``aiohttp.server`` logger unchanged (a failure of this server stays an ERROR with its
    traceback). A body error aiohttp meets again while draining a request a handler has
    answered (and reported) goes to DEBUG.
    """

    def __init__(self) -> None:
        super().__init__(server_logger)

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log like :class:`logging.LoggerAdapter`, a malformed request as one line."""
        exc_info = kwargs.get("exc_info")
        if exc_info is True:
            exc_info = sys.exc_info()
        if isinstance(exc_info, tuple) and len(exc_info) == 3:
            exc_info = exc_info[1]
        fault = _client_fault(exc_info if isinstance(exc_info, BaseException) else None)
        if fault is None:
            super().log(level, msg, *args, **kwargs)
            return
        # Newer aiohttp (aio-libs/aiohttp#10332; not 3.10) passes the peer's address as the
        # only argument; _log_refusal names it only if it is an IP address.
        remote = args[0] if len(args) == 1 else None
        if isinstance(exc_info, web.RequestPayloadError):
            _log_refusal(remote, fault, logging.DEBUG)
        else:
            _log_refusal(remote, fault)


async def _to_http_request(
    request: web.BaseRequest, max_body_size: int
) -> HttpRequest | web.Response:
    """The :class:`HttpRequest` for ``request``, or the error response to send instead."""
    host = request.host
    if not HOST_RE.fullmatch(host):
        return _to_aiohttp_response(json_error(400, "invalid_request", "invalid Host header"))
    declared = request.content_length
    if declared is not None and declared > max_body_size:
        return _to_aiohttp_response(body_too_large())
    # Without a body (no Content-Length, not chunked: every GET of a flow) aiohttp hands an
    # empty stream; nothing to read. With a Content-Length (checked above) aiohttp's parser
    # ends the body there: one read of exactly that many bytes. A chunked body is counted as
    # it arrives.
    body: bytes | None = b""
    try:
        if not request.body_exists:
            pass
        elif declared is not None:
            body = await request.content.readexactly(declared)
        else:
            body = await _read_capped(request.content, max_body_size)
    except (asyncio.IncompleteReadError, ConnectionError):
        # The client stopped sending before the body's end (aiohttp reports a half-closed
        # connection as lost): never a request for the handler; the answer may not arrive.
        return _to_aiohttp_response(
            json_error(400, "invalid_request", "the request body ended early")
        )
    except (web.RequestPayloadError, HttpProcessingError) as exc:
        # aiohttp's parser refused the body (a Content-Encoding that does not decode, broken
        # chunk framing): the client's error (RFC 9110 §15.5.1), not the server's 500. The
        # connection's parser is done for: the answer closes it.
        _log_refusal(request.remote, _client_fault(exc) or type(exc).__name__)
        refused = _to_aiohttp_response(json_error(400, "invalid_request", "malformed request body"))
        refused.force_close()
        return refused
    if body is None:
        return _to_aiohttp_response(body_too_large())
    try:
        headers = Headers.from_parsed(tuple(request.headers.items()))
    except (TypeError, ValueError):
        return _to_aiohttp_response(json_error(400, "invalid_request", "invalid header"))
    url = f"{request.scheme}://{host}{request.raw_path}"
    return HttpRequest(
        method=request.method, url=url, headers=headers, body=body, client_address=request.remote
    )


def _to_aiohttp_response(response: HttpResponse) -> web.Response:
    headers: CIMultiDict[str] = CIMultiDict(response.headers.multi_items())
    for name in FRAMING_HEADERS:  # aiohttp frames the response itself
        headers.popall(name, None)
    return web.Response(status=response.status, headers=headers, body=response.body or None)


def handler_for_aiohttp(
    handler: Handler, *, max_body_size: int = DEFAULT_MAX_BODY_SIZE
) -> AiohttpHandler:
    """An aiohttp request handler that runs ``handler``; mount it in your own application.

    The request URL given to ``handler`` is the one the client addressed: the request's scheme
    (as aiohttp sees it: ``https`` only when TLS terminates in this process), the ``Host``
    header and the raw path and query. A malformed ``Host`` answers 400. A body longer than
    ``max_body_size`` answers 413 ``invalid_request`` before ``handler`` is called. An
    exception from ``handler`` answers 500 ``{"error": "server_error"}`` with no details; it is
    logged at ERROR with method, path and exception type only (the traceback at DEBUG).
    """
    return _adapter(handler, max_body_size)


def _adapter(
    handler: Handler, max_body_size: int
) -> Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]:
    """:func:`handler_for_aiohttp` for any aiohttp request (low-level server or application)."""
    if max_body_size < 0:
        raise UsageError("max_body_size must not be negative")

    async def aiohttp_handler(request: web.BaseRequest) -> web.StreamResponse:
        converted = await _to_http_request(request, max_body_size)
        if isinstance(converted, web.Response):
            return converted
        started = time.monotonic()
        try:
            response = await handler(converted)
            if not isinstance(response, HttpResponse):
                raise ArgumentTypeError(f"handler returned {type(response).__name__}")
            return _to_aiohttp_response(response)
        except Exception as exc:
            logger.error(
                "handler failed: %s %s (%s after %.3fs)",
                request.method,
                request.path,
                type(exc).__name__,
                time.monotonic() - started,
            )
            logger.debug("handler traceback", exc_info=True)
            return _to_aiohttp_response(json_error(500, "server_error"))

    return aiohttp_handler


_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def make_aiohttp_server(
    handler: Handler, *, max_body_size: int = DEFAULT_MAX_BODY_SIZE
) -> web.Server:
    """An aiohttp low-level :class:`aiohttp.web.Server` sending every request to ``handler``.

    The same conversion rules as :func:`handler_for_aiohttp`, without an
    :class:`~aiohttp.web.Application`'s router, middlewares and signals, which a server with
    one catch-all handler does not use: they cost about a tenth of aiohttp's work per request.
    What the router's default expect handler did is done here (RFC 9110 §10.1.1): a request
    with ``Expect: 100-continue`` whose declared body fits gets the interim ``100 Continue``
    before its body is read; any other expectation answers 417. Run it with
    :class:`aiohttp.web.ServerRunner`, as :func:`serve` and ``oid4vci serve`` do.

    Logging: aiohttp's access log is off (request lines carry codes). A request aiohttp's
    parser refuses (a request line or header over 8190 bytes, a garbage request line, a bad
    ``Content-Length`` or chunked body, TLS spoken to this plain-http port) is still answered
    400 by aiohttp, and logged as one INFO line on ``oid4vci.transports.aiohttp``, e.g.
    ``refused a malformed HTTP request from 127.0.0.1: LineTooLong``: no traceback and none of
    the request's bytes. Other failures are logged by ``aiohttp.server`` as ERRORs as usual.
    """
    inner = _adapter(handler, max_body_size)

    async def server_handler(request: web.BaseRequest) -> web.StreamResponse:
        expect = request.headers.get("Expect")
        if expect is not None and request.version >= aiohttp.HttpVersion11:
            if expect.lower() != "100-continue":
                return _to_aiohttp_response(json_error(417, "invalid_request", "unknown Expect"))
            declared = request.content_length
            if declared is None or declared <= max_body_size:
                await request.writer.write(_CONTINUE)
        return await inner(request)

    # The keywords go to each connection's aiohttp.web.RequestHandler (both exist in aiohttp
    # 3.10). ServerRunner(access_log=None) would not do: only an AppRunner passes it on.
    return web.Server(server_handler, logger=_ServerLog(), access_log=None)


def make_aiohttp_app(
    handler: Handler, *, max_body_size: int = DEFAULT_MAX_BODY_SIZE
) -> web.Application:
    """An :class:`aiohttp.web.Application` sending every method and path to ``handler``.

    See :func:`handler_for_aiohttp` for the conversion rules.
    """
    app = web.Application(client_max_size=max_body_size)
    app.router.add_route(
        "*", "/{tail:.*}", handler_for_aiohttp(handler, max_body_size=max_body_size)
    )
    return app


@attrs.frozen(kw_only=True)
class ServedApp:
    """A running server from :func:`serve`."""

    host: str
    """The host the socket is bound to."""
    port: int
    """The bound port (the free port chosen when 0 was asked for)."""

    @property
    def base_url(self) -> str:
        """``http://host:port`` (IPv6 hosts in brackets), no trailing slash."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@asynccontextmanager
async def serve(
    handler: Handler,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    shutdown_timeout: float = 5.0,
) -> AsyncIterator[ServedApp]:
    """Serve ``handler`` over plain HTTP on ``host:port`` for the duration of the block.

    ``port=0`` binds a free port; the yielded :class:`ServedApp` tells which. The access log is
    off (request lines carry query strings with codes). On exit the socket is closed and
    in-flight requests get up to ``shutdown_timeout`` seconds to finish.
    """
    server = make_aiohttp_server(handler, max_body_size=max_body_size)
    runner = web.ServerRunner(server, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = int(runner.addresses[0][1])
        yield ServedApp(host=host, port=bound_port)
    finally:
        await runner.cleanup()
