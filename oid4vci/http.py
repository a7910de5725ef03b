"""HTTP values and the :class:`Transport` protocol.

Nothing here does I/O. :class:`HttpRequest` and :class:`HttpResponse` are frozen values that the
wallet's sans-IO steps produce and consume, and that the issuer's helpers read and return.
:class:`Headers` is an immutable, case-insensitive multi-map. A transport (see
``oid4vci.transports``) turns an :class:`HttpRequest` into an :class:`HttpResponse`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable
from urllib.parse import parse_qsl, urlencode

import attrs

from ._json import loads_bytes
from .errors import ArgumentTypeError, UsageError, WireFormatError

__all__ = [
    "FORM_CONTENT_TYPE",
    "JSON_CONTENT_TYPE",
    "REDIRECT_STATUSES",
    "AsyncTransport",
    "Headers",
    "HttpRequest",
    "HttpResponse",
    "RequestDict",
    "ResponseDict",
    "Transport",
]

JSON_CONTENT_TYPE = "application/json"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
"""The statuses that are redirects (RFC 9110 §15.4): never followed on API calls."""

RequestDict = Mapping[str, Any]
"""A framework-neutral request: ``{"method", "url", "headers", "body"}`` and optionally
``"client_address"`` (the IP address of the TCP peer, as the server adapter saw it)."""
ResponseDict = dict[str, Any]
"""A framework-neutral response: ``{"status", "headers", "body"}``."""


# Built once: json.dumps with options builds a new encoder on every call (same output).
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def _to_items(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    kind = type(value)
    if kind is Headers:
        return value.multi_items()  # type: ignore[attr-defined,no-any-return]
    # Pairs in a tuple or list (what adapters and the library pass) skip the two ABC checks.
    if kind is tuple or kind is list:
        pairs: Iterable[Any] = value  # type: ignore[assignment]
    elif isinstance(value, Headers):
        return value.multi_items()
    elif isinstance(value, Mapping):
        pairs = value.items()
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        pairs = value
    else:
        raise ArgumentTypeError("headers must be a mapping or an iterable of (name, value) pairs")
    # Checked in C, pair by pair: each a (name, value) pair (tuple() of a pair that already is
    # a tuple is that tuple), each name and value a str (join refuses anything else), and no
    # CR or LF anywhere (a header line must not be split).
    try:
        out = tuple(map(tuple, pairs))
    except TypeError:
        raise ArgumentTypeError("headers must be (name, value) pairs") from None
    if out and set(map(len, out)) != {2}:
        raise ArgumentTypeError("headers must be (name, value) pairs")
    try:
        _refuse_line_breaks(out)
    except TypeError:
        raise ArgumentTypeError("header names and values must be str") from None
    return out  # pairs of two str: checked above


def _refuse_line_breaks(items: tuple[tuple[str, str], ...]) -> None:
    """:class:`UsageError` for a CR or LF in any name or value (a header line must not be
    split); one join and two scans in C (``TypeError`` for a part that is not a str)."""
    text = "".join(chain.from_iterable(items))
    if "\r" in text or "\n" in text:
        raise UsageError("header names and values must not contain CR or LF")


@attrs.frozen(init=False, repr=False)
class Headers(Mapping[str, str]):
    """Immutable HTTP headers: a ``Mapping[str, str]`` with case-insensitive keys that keeps
    the order and the repeats of the wire.

    ``headers["dpop"]`` and ``headers.get("DPoP")`` give the first value; ``get_all(name)``
    every value of a repeated header; ``multi_items()`` every ``(name, value)`` pair as sent.
    Iterating gives each name once (in its first spelling), so ``dict(headers)`` holds the
    first value of each. ``repr`` hides the values of ``Authorization``, ``DPoP``,
    ``DPoP-Nonce`` and cookie headers, and the query of ``Location``-like headers
    (authorization codes travel there).
    """

    _items: tuple[tuple[str, str], ...]
    # The values of each lower-cased name, in order: built on the first lookup (a request's
    # headers are read several times per request: Authorization, DPoP, Content-Type, ...).
    _index: dict[str, tuple[str, ...]] | None = attrs.field(
        default=None, init=False, eq=False, hash=False, repr=False
    )

    def __init__(self, items: object = None) -> None:
        self.__attrs_init__(_to_items(items))

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def _by_name(self) -> dict[str, tuple[str, ...]]:
        index = self._index
        if index is None:
            index = {}
            for key, value in self._items:
                lower = key.lower()
                index[lower] = (*index[lower], value) if lower in index else (value,)
            object.__setattr__(self, "_index", index)
        return index

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        """The first value of ``name`` (any case), or ``default``."""
        if not isinstance(name, str):
            return default
        values = self._by_name().get(name.lower())
        return default if values is None else values[0]

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name`` (any case), in order."""
        return list(self._by_name().get(name.lower(), ()))

    def multi_items(self) -> tuple[tuple[str, str], ...]:
        """All ``(name, value)`` pairs in order, repeats included."""
        return self._items

    def with_header(self, name: str, value: str) -> Headers:
        """A copy with ``name`` set to ``value`` (replacing any existing values)."""
        added = _to_items(((name, value),))  # only the new pair needs checking
        lower = name.lower()
        kept = tuple((k, v) for k, v in self._items if k.lower() != lower)
        return Headers._of_checked(kept + added)

    @classmethod
    def from_parsed(cls, items: tuple[tuple[str, str], ...]) -> Headers:
        """Headers of the ``(name, value)`` pairs an HTTP parser produced (server adapters).

        ``items`` must be a tuple of pairs of ``str`` (as aiohttp's and the ASGI adapter's
        parsing give them; not checked again); a CR or LF anywhere is still refused
        (:class:`~oid4vci.errors.UsageError`).
        """
        _refuse_line_breaks(items)
        return cls._of_checked(items)

    @classmethod
    def _of_checked(cls, items: tuple[tuple[str, str], ...]) -> Headers:
        """Headers of ``items`` that :func:`_to_items` has already checked."""
        out = cls.__new__(cls)
        out.__attrs_init__(items)
        return out

    def without(self, name: str) -> Headers:
        """A copy without ``name``."""
        lower = name.lower()
        return Headers([(k, v) for k, v in self._items if k.lower() != lower])

    def to_dict(self) -> dict[str, str]:
        """A plain dict; repeated headers are joined with ``", "`` (RFC 9110 §5.3), except
        ``Set-Cookie``, which is never joined (RFC 6265 §3): repeated ``Set-Cookie`` headers
        raise :class:`~oid4vci.errors.UsageError` (use :meth:`multi_items`)."""
        out: dict[str, str] = {}
        names: dict[str, str] = {}
        for key, value in self._items:
            lower = key.lower()
            if lower not in names:
                names[lower] = key
                out[key] = value
                continue
            if lower == "set-cookie":
                raise UsageError("repeated Set-Cookie headers cannot be joined; use multi_items()")
            first = names[lower]
            out[first] = f"{out[first]}, {value}"
        return out

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for key, _ in self._items:
            lower = key.lower()
            if lower not in seen:
                seen.add(lower)
                yield key

    def __len__(self) -> int:
        return len({key.lower() for key, _ in self._items})

    def __repr__(self) -> str:
        shown = [(k, _redacted(k, v)) for k, v in self._items]
        return f"Headers({shown!r})"


_SECRET_HEADERS = frozenset({"authorization", "dpop", "cookie", "set-cookie", "dpop-nonce"})
_URL_HEADERS = frozenset({"location", "content-location", "referer"})


def _redacted(name: str, value: str) -> str:
    """A header value safe for reprs: secrets hidden, URL queries (codes, state) dropped."""
    lower = name.lower()
    if lower in _SECRET_HEADERS:
        return "***"
    if lower in _URL_HEADERS:
        return value.split("?", 1)[0].split("#", 1)[0] + ("?***" if "?" in value else "")
    return value


def _headers(value: object) -> Headers:
    return value if isinstance(value, Headers) else Headers(value)


def _body(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    if value is None:
        return b""
    raise ArgumentTypeError("body must be bytes or str")


def _upper(value: str) -> str:
    return value.upper()


def _media_type(headers: Headers) -> str:
    values = headers._by_name().get("content-type")
    if values is None:
        return ""
    if len(values) > 1:
        # Content-Type is a singleton field (RFC 9110 §8.3, §5.3): a repeated one is no media
        # type, rather than whichever one a reader happens to take.
        return "" if len(set(values)) > 1 else values[0].split(";", 1)[0].strip().lower()
    return values[0].split(";", 1)[0].strip().lower()


def _parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = loads_bytes(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise WireFormatError("body is not valid JSON") from exc
    if not isinstance(value, dict):
        raise WireFormatError("body is not a JSON object")
    return value


def _parse_form(body: bytes) -> dict[str, str]:
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except (UnicodeDecodeError, ValueError) as exc:
        raise WireFormatError("body is not valid form data") from exc
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            # RFC 6749 §3.1: request parameters MUST NOT be included more than once.
            raise WireFormatError("parameter repeated", path=name)
        out[name] = value
    return out


@attrs.frozen(kw_only=True, repr=False)
class HttpRequest:
    """An HTTP request as a value. ``repr`` shows method and URL without the query.

    ``client_address`` is the IP address of the TCP peer that sent the request, filled in by
    the server adapters (aiohttp, ASGI) for the issuer's per-client rate limits; ``None`` when
    unknown (requests built by a wallet, the in-memory transport). ``Forwarded`` /
    ``X-Forwarded-For`` are never folded in here: the issuer reads them only from a configured
    proxy (:mod:`oid4vci.issuer.client_address`).
    """

    method: str = attrs.field(converter=_upper)
    url: str
    headers: Headers = attrs.field(factory=Headers, converter=_headers)
    body: bytes = attrs.field(default=b"", converter=_body)
    client_address: str | None = None

    @classmethod
    def json(
        cls, method: str, url: str, data: Mapping[str, Any], headers: object = None
    ) -> HttpRequest:
        """A request with a JSON body and ``Content-Type: application/json``."""
        hdrs = _headers(headers).with_header("Content-Type", JSON_CONTENT_TYPE)
        return cls(method=method, url=url, headers=hdrs, body=_COMPACT_JSON.encode(data))

    @classmethod
    def form(
        cls, method: str, url: str, data: Mapping[str, str], headers: object = None
    ) -> HttpRequest:
        """A request with a form-encoded body."""
        hdrs = _headers(headers).with_header("Content-Type", FORM_CONTENT_TYPE)
        return cls(method=method, url=url, headers=hdrs, body=urlencode(list(data.items())))

    @property
    def media_type(self) -> str:
        """The ``Content-Type`` without parameters, lower-cased (``""`` when absent, and when
        repeated with different values)."""
        return _media_type(self.headers)

    def json_body(self) -> dict[str, Any]:
        """The body as a JSON object; :class:`WireFormatError` otherwise."""
        return _parse_json_object(self.body)

    def form_body(self) -> dict[str, str]:
        """The body as form parameters; repeated parameters are a :class:`WireFormatError`."""
        return _parse_form(self.body)

    def to_dict(self) -> dict[str, Any]:
        """The framework-neutral dict form ``{"method", "url", "headers", "body"}`` (and
        ``"client_address"`` when known)."""
        out: dict[str, Any] = {
            "method": self.method,
            "url": self.url,
            "headers": self.headers.to_dict(),
            "body": self.body,
        }
        if self.client_address is not None:
            out["client_address"] = self.client_address
        return out

    @classmethod
    def from_dict(cls, data: RequestDict) -> HttpRequest:
        """Build from a plain request dict; ``headers``, ``body`` and ``client_address`` may
        be absent."""
        method = data.get("method")
        url = data.get("url")
        if not isinstance(method, str) or not isinstance(url, str):
            raise WireFormatError("request dict needs str 'method' and 'url'")
        address = data.get("client_address")
        if address is not None and not isinstance(address, str):
            raise WireFormatError("request dict 'client_address' must be a str")
        return cls(
            method=method,
            url=url,
            headers=data.get("headers"),
            body=data.get("body") or b"",
            client_address=address,
        )

    @classmethod
    def coerce(cls, request: HttpRequest | RequestDict) -> HttpRequest:
        """Accept either an :class:`HttpRequest` or a request dict."""
        return request if isinstance(request, HttpRequest) else cls.from_dict(request)

    def __repr__(self) -> str:
        return f"HttpRequest(method={self.method!r}, url={self.url.split('?', 1)[0].split('#', 1)[0]!r})"


@attrs.frozen(kw_only=True, repr=False)
class HttpResponse:
    """An HTTP response as a value. ``repr`` shows only the status and content type."""

    status: int
    headers: Headers = attrs.field(factory=Headers, converter=_headers)
    body: bytes = attrs.field(default=b"", converter=_body)

    @classmethod
    def json(cls, status: int, data: Any, headers: object = None) -> HttpResponse:
        """A JSON response."""
        hdrs = _headers(headers).with_header("Content-Type", JSON_CONTENT_TYPE)
        return cls(status=status, headers=hdrs, body=_COMPACT_JSON.encode(data))

    @property
    def media_type(self) -> str:
        """The ``Content-Type`` without parameters, lower-cased (``""`` when absent, and when
        repeated with different values)."""
        return _media_type(self.headers)

    def json_body(self) -> dict[str, Any]:
        """The body as a JSON object; :class:`WireFormatError` otherwise."""
        return _parse_json_object(self.body)

    def to_dict(self) -> ResponseDict:
        """The framework-neutral dict form ``{"status", "headers", "body"}``."""
        return {"status": self.status, "headers": self.headers.to_dict(), "body": self.body}

    def __repr__(self) -> str:
        return f"HttpResponse(status={self.status}, media_type={self.media_type!r})"


@runtime_checkable
class Transport(Protocol):
    """Sends one :class:`HttpRequest` and returns its :class:`HttpResponse`.

    The one required method is ``send``; a request recorder is four lines::

        class Recorder:
            def __init__(self, inner): self.inner, self.seen = inner, []
            async def send(self, request):
                self.seen.append(request); return await self.inner.send(request)

    Implementations raise :class:`~oid4vci.errors.TransportError` subclasses and never follow
    redirects. Lifecycle (``aclose``, ``async with``) is optional: inherit it from
    :class:`AsyncTransport` when a transport holds connections.
    """

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` and return the response."""
        ...


class AsyncTransport:
    """A base class giving a transport ``aclose`` and ``async with`` (override ``aclose``).

    Subclasses implement ``send``; ``async with transport:`` closes it on exit.
    """

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` and return the response (subclasses implement this)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the transport holds (nothing here)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
