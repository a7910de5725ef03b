"""Real HTTP with httpx: :class:`HttpxTransport`, on asyncio and trio.

:class:`HttpxTransport` implements :class:`oid4vci.http.Transport` over one reused
:class:`httpx.AsyncClient`, with the same safe defaults as
:class:`oid4vci.transports.aiohttp.AiohttpTransport`: https only (http only to loopback hosts,
and only when ``allow_insecure_loopback`` is set), no redirects followed, connect and total
timeouts, a response size cap enforced while streaming (on the decoded body), no cookies kept,
and httpx's exceptions mapped to :class:`~oid4vci.errors.TransportError` and its subclasses
with messages that never contain the URL's query.

httpx runs on whatever event loop is current, so the same transport works under
``anyio.run(main)`` and ``anyio.run(main, backend="trio")``. Needs the ``httpx`` extra
(``pip install 'oid4vci[httpx]'``).
"""

from __future__ import annotations

import zlib
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING

from oid4vci.errors import UsageError

try:
    import httpx
except ModuleNotFoundError as exc:  # exercised in a venv without the extra
    from oid4vci.transports._common import missing_extra

    raise missing_extra(__name__, "httpx") from exc

import anyio

from oid4vci.errors import (
    ConnectError,
    TransportError,
    TransportTimeout,
)
from oid4vci.http import REDIRECT_STATUSES, AsyncTransport, HttpRequest, HttpResponse
from oid4vci.transports._common import (
    DEFAULT_MAX_RESPONSE_SIZE,
    describe,
    invalid_host,
    read_response,
    refuse_unusable_host,
)
from oid4vci.urls import require_secure_url

if TYPE_CHECKING:
    from zlib import _Decompress

__all__ = ["DEFAULT_MAX_RESPONSE_SIZE", "REDIRECT_STATUSES", "HttpxTransport"]


class _MalformedBody(Exception):
    """The response body cannot be decoded (bad or truncated compression, unknown coding)."""


def _inflater(content_encoding: str) -> _Decompress | None:
    """A decompressor for ``content_encoding`` (``None`` for identity)."""
    codings = [c.strip().lower() for c in content_encoding.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not codings:
        return None
    if codings in (["gzip"], ["x-gzip"]):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if codings == ["deflate"]:
        return zlib.decompressobj(zlib.MAX_WBITS)
    raise _MalformedBody("unsupported Content-Encoding")


async def _read_capped(response: httpx.Response, limit: int) -> bytes | None:
    """The decoded body of ``response``, or ``None`` once it exceeds ``limit`` bytes.

    Decompression is bounded too: never more than ``limit + 1`` decoded bytes are produced,
    so a compression bomb costs no more memory than an honest answer at the cap.
    """
    inflater = _inflater(response.headers.get("content-encoding", ""))
    chunks: list[bytes] = []
    total = 0
    received = False
    async for raw in response.aiter_raw():
        received = received or bool(raw)
        if inflater is None:
            data = raw
        else:
            try:
                # At most limit + 1 bytes: when that many come out, the body is too large.
                data = inflater.decompress(raw, limit + 1 - total)
            except zlib.error:
                raise _MalformedBody("bad compressed data") from None
        total += len(data)
        if total > limit:
            return None
        chunks.append(data)
    if inflater is not None and received and (not inflater.eof or inflater.unused_data):
        raise _MalformedBody("truncated or trailing compressed data")
    return b"".join(chunks)


def _refuse_all_cookies() -> CookieJar:
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


class HttpxTransport(AsyncTransport):
    """A :class:`~oid4vci.http.Transport` over httpx; runs on asyncio and trio.

    :param client: an existing :class:`httpx.AsyncClient` to send through (its connection
        pool, TLS settings, proxy and event hooks are used); the caller keeps ownership
        (:meth:`aclose` does not close it). Each request is still sent exactly as given, with
        this transport's timeouts and without the client's default headers, cookies, auth or
        base URL. Without one, a client is created on the first :meth:`send` and closed by
        :meth:`aclose`; it ignores proxy and TLS environment variables and keeps no cookies.
    :param connect_timeout: seconds allowed to establish a connection.
    :param total_timeout: seconds allowed for the whole exchange, body included.
    :param max_response_size: a response body longer than this raises
        :class:`~oid4vci.errors.ResponseTooLarge`; a larger ``Content-Length`` is refused
        before the body is read. The cap applies to the decoded body, and decompression stops
        at the cap (a compressed bomb cannot slip through). Requests ask for
        ``Accept-Encoding: identity`` unless they name an encoding themselves; gzip and
        deflate answers are decoded, any other coding is a
        :class:`~oid4vci.errors.TransportError`.
    :param allow_insecure_loopback: allow ``http://`` to 127.0.0.0/8, ``localhost`` and ``::1``.
        Every other non-https URL raises :class:`~oid4vci.errors.InsecureUrlError` before any
        network I/O.
    :param raise_on_redirect: when true (the default), a 301/302/303/307/308 answer raises
        :class:`~oid4vci.errors.RedirectRefused`; when false it is returned as the response
        (the body is not read). Redirects are never followed either way.
    :param limits: connection pool limits of the client this transport creates (httpx's
        defaults when ``None``); give ``client`` *or* ``limits``, not both.

    Errors: :class:`~oid4vci.errors.TransportTimeout`, :class:`~oid4vci.errors.ConnectError`
    (the server could not be reached), :class:`~oid4vci.errors.TransportError` (anything else
    that broke the exchange, e.g. a truncated or malformed response, or an invalid request URL
    such as a host name that cannot be looked up: an empty label, a label too long, not
    IDNA-encodable; refused before any network I/O). httpx exceptions are never raised to the
    caller and are not chained (their text can hold the full URL). A header value that is not
    ASCII is the caller's mistake: :class:`~oid4vci.errors.UsageError`.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        connect_timeout: float = 10,
        total_timeout: float = 30,
        max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
        allow_insecure_loopback: bool = False,
        raise_on_redirect: bool = True,
        limits: httpx.Limits | None = None,
    ) -> None:
        if connect_timeout <= 0 or total_timeout <= 0:
            raise UsageError("timeouts must be positive")
        if max_response_size < 0:
            raise UsageError("max_response_size must not be negative")
        if client is not None and limits is not None:
            raise UsageError("limits configure the client this transport creates; not both")
        self._client = client
        self._owns_client = client is None
        self._limits = limits
        self._total_timeout = total_timeout
        self._timeout = httpx.Timeout(
            connect=connect_timeout, read=total_timeout, write=total_timeout, pool=total_timeout
        )
        self._max_response_size = max_response_size
        self._allow_insecure_loopback = allow_insecure_loopback
        self._raise_on_redirect = raise_on_redirect
        self._closed = False

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                timeout=self._timeout,
                limits=self._limits if self._limits is not None else httpx.Limits(),
                cookies=_refuse_all_cookies(),
                trust_env=False,
            )
        return self._client

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
        outgoing = self._build(request)
        client = self._get_client()
        try:
            with anyio.fail_after(self._total_timeout):
                return await self._exchange(client, outgoing, request)
        except TransportError:
            raise
        except UnicodeError:  # trio's resolver: the IDNA codec refused the host
            raise invalid_host(request, "cannot be IDNA-encoded") from None
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise TransportTimeout(self._message(request, "timed out", exc)) from None
        except (httpx.ConnectError, httpx.ProxyError) as exc:
            raise ConnectError(self._message(request, "could not connect", exc)) from None
        except httpx.NetworkError as exc:
            raise TransportError(self._message(request, "connection broken", exc)) from None
        except (httpx.RemoteProtocolError, httpx.DecodingError, _MalformedBody) as exc:
            raise TransportError(
                self._message(request, "response incomplete or malformed", exc)
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise TransportError(self._message(request, "request failed", exc)) from None

    @staticmethod
    def _message(request: HttpRequest, what: str, exc: BaseException) -> str:
        # The exception's own text may contain the full URL; only its type name is kept.
        return f"{describe(request)}: {what} ({type(exc).__name__})"

    def _build(self, request: HttpRequest) -> httpx.Request:
        """The httpx request for ``request``; nothing is sent yet."""
        headers = request.headers
        if "accept-encoding" not in headers:
            headers = headers.with_header("Accept-Encoding", "identity")
        try:
            return httpx.Request(
                request.method,
                request.url,
                headers=list(headers.multi_items()),
                content=request.body or None,
                extensions={"timeout": self._timeout.as_dict()},
            )
        except UnicodeEncodeError:
            raise UsageError(f"{describe(request)}: header values must be ASCII") from None
        except (httpx.InvalidURL, ValueError):  # ValueError: IDNA and other host errors
            raise TransportError(f"{describe(request)}: invalid request URL") from None

    async def _exchange(
        self, client: httpx.AsyncClient, outgoing: httpx.Request, request: HttpRequest
    ) -> HttpResponse:
        resp = await client.send(outgoing, stream=True, follow_redirects=False, auth=None)
        try:
            declared = resp.headers.get("content-length")
            return await read_response(
                request,
                resp.status_code,
                lambda: [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.headers.raw],
                declared_size=int(declared) if declared and declared.strip().isdigit() else None,
                read_body=lambda cap: _read_capped(resp, cap),
                max_size=self._max_response_size,
                raise_on_redirect=self._raise_on_redirect,
            )
        finally:
            await resp.aclose()

    @property
    def allow_insecure_loopback(self) -> bool:
        """Whether ``http://`` to loopback hosts is allowed (a wallet client over this
        transport then allows it too)."""
        return self._allow_insecure_loopback

    async def aclose(self) -> None:
        """Close the client if this transport created it (idempotent)."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None and self._owns_client:
            await client.aclose()

    def __repr__(self) -> str:
        return (
            f"HttpxTransport(total_timeout={self._total_timeout}, "
            f"max_response_size={self._max_response_size}, "
            f"allow_insecure_loopback={self._allow_insecure_loopback})"
        )
