"""An in-process transport: requests go straight to async handlers, no sockets.

:class:`InMemoryTransport` routes each :class:`~oid4vci.http.HttpRequest` by the origin of its
URL (scheme, host and port, normalized with :func:`oid4vci.urls.origin_of`, so
``https://a.example:443`` and ``https://A.example`` are the same origin) to the handler mounted
for that origin, so one wallet can talk to several in-memory issuers and authorization servers.
A default handler, when given, answers every origin that has no route of its own.

It behaves like a network transport where that matters for tests: it never follows redirects
(by default a 3xx answer raises :class:`~oid4vci.errors.RedirectRefused`, as
:class:`oid4vci.transports.aiohttp.AiohttpTransport` does), an unknown origin is a
:class:`~oid4vci.errors.ConnectError`, an optional response size cap raises
:class:`~oid4vci.errors.ResponseTooLarge`, and every ``send`` is a cancellation checkpoint.
It does not enforce https: routes are explicit, and URL policy is the caller's job.

An exception raised by a handler is **not** converted: it propagates out of :meth:`send`
unchanged, so a test sees the bug in the handler instead of a generic 500. (The aiohttp server
adapter, by contrast, turns it into a 500 ``server_error`` answer.)

Uses only anyio, so it runs on asyncio and trio.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

import anyio.lowlevel

from oid4vci.errors import (
    ArgumentTypeError,
    ConnectError,
    RedirectRefused,
    ResponseTooLarge,
    TransportError,
    UsageError,
)
from oid4vci.http import REDIRECT_STATUSES, AsyncTransport, HttpRequest, HttpResponse
from oid4vci.transports._common import safe_url
from oid4vci.urls import origin_of

__all__ = ["REDIRECT_STATUSES", "Handler", "InMemoryTransport"]

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]
"""An async function answering one request: ``async def handler(request) -> response``."""


def _normalize_origin(origin: str) -> str:
    """``origin`` in :func:`origin_of` form; refuses anything but ``scheme://host[:port][/]``."""
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise UsageError("route origin is not a valid URL") from exc
    if parts.scheme.lower() not in {"http", "https"} or not parts.hostname:
        raise UsageError("route origin must look like 'https://host[:port]'")
    if parts.path not in {"", "/"} or parts.query or parts.fragment or parts.username:
        raise UsageError(
            "routes are keyed by origin only ('https://host[:port]'); "
            "route paths inside the handler"
        )
    return origin_of(origin)


class InMemoryTransport(AsyncTransport):
    """A :class:`~oid4vci.http.Transport` that calls async handlers in-process.

    :param handler: the default handler, used for any origin without a route of its own.
    :param routes: ``{origin: handler}``, e.g. ``{"https://issuer.example": issuer.handle}``.
        Keys must be bare origins (a trailing ``/`` is allowed); anything with a path, query
        or fragment raises :class:`ValueError`.
    :param max_response_size: when set, a response body longer than this many bytes raises
        :class:`~oid4vci.errors.ResponseTooLarge` (parity with the network transport).
    :param raise_on_redirect: when true (the default), a 301/302/303/307/308 answer raises
        :class:`~oid4vci.errors.RedirectRefused`; when false it is returned as the response.
        Redirects are never followed either way.

    A request to an origin with no route and no default handler raises
    :class:`~oid4vci.errors.ConnectError`. Exceptions raised by a handler propagate unchanged.
    After :meth:`aclose`, :meth:`send` raises :class:`~oid4vci.errors.TransportError`.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        routes: Mapping[str, Handler] | None = None,
        max_response_size: int | None = None,
        raise_on_redirect: bool = True,
    ) -> None:
        if max_response_size is not None and max_response_size < 0:
            raise UsageError("max_response_size must not be negative")
        self._default = handler
        self._routes: dict[str, Handler] = {}
        self._max_response_size = max_response_size
        self._raise_on_redirect = raise_on_redirect
        self._closed = False
        for origin, route_handler in (routes or {}).items():
            self.mount(origin, route_handler)

    @classmethod
    def for_handler(
        cls,
        handler: Handler,
        *,
        max_response_size: int | None = None,
        raise_on_redirect: bool = True,
    ) -> InMemoryTransport:
        """A transport sending every request, whatever its origin, to ``handler``."""
        return cls(
            handler, max_response_size=max_response_size, raise_on_redirect=raise_on_redirect
        )

    def mount(self, origin: str, handler: Handler) -> None:
        """Route requests for ``origin`` (``scheme://host[:port]``) to ``handler``.

        Mounting an origin again replaces its handler.
        """
        self._routes[_normalize_origin(origin)] = handler

    def unmount(self, origin: str) -> None:
        """Remove the route for ``origin``; a no-op when there is none."""
        self._routes.pop(_normalize_origin(origin), None)

    @property
    def origins(self) -> frozenset[str]:
        """The normalized origins that have a route."""
        return frozenset(self._routes)

    def _handler_for(self, request: HttpRequest) -> Handler:
        try:
            origin = origin_of(request.url)
        except ValueError:
            raise TransportError("request URL is not a valid URL") from None
        handler = self._routes.get(origin, self._default)
        if handler is None:
            raise ConnectError(
                f"no in-memory route for {origin} ({request.method} {safe_url(request.url)})"
            )
        return handler

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Pass ``request`` to the handler for its origin and return the handler's response."""
        await anyio.lowlevel.checkpoint()
        if self._closed:
            raise TransportError("transport is closed")
        handler = self._handler_for(request)
        response = await handler(request)
        if not isinstance(response, HttpResponse):
            raise ArgumentTypeError(
                f"in-memory handler returned {type(response).__name__}, expected HttpResponse"
            )
        if self._max_response_size is not None and len(response.body) > self._max_response_size:
            raise ResponseTooLarge(
                f"response body exceeds {self._max_response_size} bytes "
                f"({request.method} {safe_url(request.url)})"
            )
        if self._raise_on_redirect and response.status in REDIRECT_STATUSES:
            raise RedirectRefused(
                f"server answered {response.status} to {request.method} "
                f"{safe_url(request.url)}; redirects are not followed",
                status=response.status,
                location=response.headers.get("Location"),
            )
        return response

    async def aclose(self) -> None:
        """Mark the transport closed (idempotent). Handlers are not touched."""
        self._closed = True

    def __repr__(self) -> str:
        default = ", default handler" if self._default is not None else ""
        return f"InMemoryTransport(origins={sorted(self._routes)!r}{default})"
