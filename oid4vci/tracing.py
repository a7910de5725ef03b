"""Seeing what happened: every HTTP exchange of the wallet, with secrets redacted.

* :func:`send` sends one request through a transport, logs the exchange at DEBUG on the
  ``oid4vci.http`` logger (method, URL, status, timing; headers and bodies redacted), hands it
  to an optional ``on_exchange`` callback, and marks a
  :class:`~oid4vci.errors.TransportError` with the redacted request line. The wallet's driver,
  its low-level calls, discovery and offer fetching all send through it.
* :class:`TracingTransport` wraps any transport and reports each exchange to a callback (to
  print, count, or export them).
* :func:`redact_url`, :func:`redact_headers`, :func:`redact_body` and :func:`request_line` are
  what both use: query values, secret headers (``Authorization``, ``DPoP``, ``DPoP-Nonce``,
  cookies) and secret body members (tokens, codes, ``tx_code``, PKCE verifier, ``state``,
  nonces, proofs, credentials, transaction and notification ids, private keys) never appear.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import attrs

from .errors import ProtocolError, TransportError
from .http import AsyncTransport, Headers, HttpRequest, HttpResponse, Transport

__all__ = [
    "SECRET_MEMBERS",
    "Exchange",
    "ExchangeHook",
    "TracingTransport",
    "attach_request",
    "redact_body",
    "redact_headers",
    "redact_url",
    "request_line",
    "scrub",
    "send",
    "sent_secrets",
]

log = logging.getLogger("oid4vci.http")

#: JSON / form members whose values are never shown.
SECRET_MEMBERS: Final = frozenset(
    {
        "access_token",
        "refresh_token",
        "code",
        "code_verifier",
        "pre-authorized_code",
        "tx_code",
        "state",
        "issuer_state",
        "request_uri",
        "c_nonce",
        "nonce",
        "proof",
        "proofs",
        "jwt",
        "credential",
        "credentials",
        "transaction_id",
        "notification_id",
        "client_assertion",
        "d",
        "p",
        "q",
        "dp",
        "dq",
        "qi",
        "k",
    }
)
_SECRET_HEADERS: Final = frozenset(
    {
        "authorization",
        "dpop",
        "dpop-nonce",
        "cookie",
        "set-cookie",
        "proxy-authorization",
        # wallet attestation (draft-ietf-oauth-attestation-based-client-auth-07 §6.1)
        "oauth-client-attestation",
        "oauth-client-attestation-pop",
        "oauth-client-attestation-challenge",
    }
)
_URL_HEADERS: Final = frozenset({"location", "content-location", "referer"})
#: The longest body text shown (redacted bodies are cut after this many characters).
MAX_SHOWN_BODY: Final = 2000


def redact_url(url: str) -> str:
    """``url`` with every query and fragment value replaced by ``***`` (names kept)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    query = "&".join(f"{name}=***" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    fragment = "***" if parts.fragment else ""
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, fragment))


def request_line(request: HttpRequest) -> str:
    """``METHOD URL`` of ``request``, the URL redacted."""
    return f"{request.method} {redact_url(request.url)}"


def redact_headers(headers: Headers) -> tuple[tuple[str, str], ...]:
    """Every header pair, secret values as ``***`` and URL values redacted."""
    out: list[tuple[str, str]] = []
    for name, value in headers.multi_items():
        lower = name.lower()
        if lower in _SECRET_HEADERS:
            value = "***"
        elif lower in _URL_HEADERS:
            value = redact_url(value)
        out.append((name, value))
    return tuple(out)


def _masked(value: Any, depth: int = 0) -> Any:
    if depth > 20:
        return "…"
    if isinstance(value, Mapping):
        return {
            k: "***" if k in SECRET_MEMBERS else _masked(v, depth + 1) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked(v, depth + 1) for v in value]
    return value


def redact_body(body: bytes, media_type: str) -> str:
    """A body safe to log: JSON and form members of :data:`SECRET_MEMBERS` as ``***``;
    other bodies only as their length."""
    if not body:
        return ""
    text: str
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            text = json.dumps(_masked(json.loads(body)), separators=(",", ":"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            return f"<{len(body)} bytes, not JSON>"
    elif media_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(body.decode(), keep_blank_values=True)
        except (UnicodeDecodeError, ValueError):
            return f"<{len(body)} bytes, not a form>"
        text = "&".join(f"{k}={'***' if k in SECRET_MEMBERS else v}" for k, v in pairs)
    else:
        return f"<{len(body)} bytes of {media_type or 'unknown type'}>"
    return text if len(text) <= MAX_SHOWN_BODY else text[:MAX_SHOWN_BODY] + "…"


def _media_type(headers: Headers) -> str:
    return (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()


#: Sent values shorter than this are not searched for in answers (too likely to occur by chance
#: in other text); a ``tx_code`` is at least this long in practice (OID4VCI 1.0 §4.1.1 leaves
#: its length to the issuer).
_MIN_SECRET_LENGTH: Final = 4


def _secret_strings(value: Any, out: set[str], depth: int = 0) -> None:
    if depth > 20:
        return
    if isinstance(value, str):
        out.add(value)
    elif isinstance(value, Mapping):
        for member in value.values():
            _secret_strings(member, out, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _secret_strings(item, out, depth + 1)


def sent_secrets(request: HttpRequest) -> frozenset[str]:
    """The secret values ``request`` carries (what :func:`redact_url`, :func:`redact_headers`
    and :func:`redact_body` hide): query values, secret headers (and an ``Authorization``
    header's credentials alone), body members of :data:`SECRET_MEMBERS`."""
    found: set[str] = set()
    with suppress(ValueError):
        found.update(v for _, v in parse_qsl(urlsplit(request.url).query))
    for name, value in request.headers.multi_items():
        if name.lower() in _SECRET_HEADERS:
            found.add(value)
            found.add(value.partition(" ")[2])
    body = request.body
    media_type = _media_type(request.headers)
    if body and media_type == "application/x-www-form-urlencoded":
        with suppress(UnicodeDecodeError, ValueError):
            found.update(v for k, v in parse_qsl(body.decode()) if k in SECRET_MEMBERS)
    elif body and (media_type == "application/json" or media_type.endswith("+json")):
        try:
            document = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError):
            document = None
        if isinstance(document, Mapping):
            for name, member in document.items():
                if name in SECRET_MEMBERS:
                    _secret_strings(member, found)
    return frozenset(s for s in found if len(s) >= _MIN_SECRET_LENGTH)


def scrub(text: str, secrets: frozenset[str]) -> str:
    """``text`` with every occurrence of each of ``secrets`` replaced by ``***`` (longest
    first, so a secret inside another goes with it)."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


@attrs.frozen(kw_only=True)
class Exchange:
    """One request and its outcome, every secret redacted.

    ``status`` is ``None`` and ``error`` the exception's type name when no response came.
    """

    request_line: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: str
    status: int | None
    response_headers: tuple[tuple[str, str], ...] = ()
    response_body: str = ""
    elapsed: float
    error: str | None = None

    @classmethod
    def of(
        cls,
        request: HttpRequest,
        response: HttpResponse | None,
        *,
        elapsed: float,
        error: BaseException | None = None,
    ) -> Exchange:
        """The redacted record of ``request`` and its ``response`` (or ``error``).

        What the server sends back may quote what was sent (an ``error_description`` in a
        body or a ``WWW-Authenticate`` challenge, a debugging echo in a 200 body): every
        secret of the request is scrubbed from the response's header values and body."""
        if response is None:
            response_headers: tuple[tuple[str, str], ...] = ()
            response_body = ""
        else:
            sent = sent_secrets(request)
            response_headers = tuple(
                (name, scrub(value, sent)) for name, value in redact_headers(response.headers)
            )
            response_body = scrub(redact_body(response.body, _media_type(response.headers)), sent)
        return cls(
            request_line=request_line(request),
            request_headers=redact_headers(request.headers),
            request_body=redact_body(request.body, _media_type(request.headers)),
            status=response.status if response is not None else None,
            response_headers=response_headers,
            response_body=response_body,
            elapsed=elapsed,
            error=type(error).__name__ if error is not None else None,
        )


ExchangeHook = Callable[[Exchange], Awaitable[None] | None]
"""``on_exchange(exchange)``, plain or async: called once per request, after its outcome."""


async def _report(hook: ExchangeHook | None, exchange: Exchange, *, logged: bool) -> None:
    if logged and log.isEnabledFor(logging.DEBUG):
        outcome = exchange.status if exchange.status is not None else exchange.error
        log.debug(
            "%s -> %s in %.1f ms; request headers %s body %s; response headers %s body %s",
            exchange.request_line,
            outcome,
            exchange.elapsed * 1000,
            exchange.request_headers,
            exchange.request_body or "-",
            exchange.response_headers,
            exchange.response_body or "-",
        )
    if hook is not None:
        result = hook(exchange)
        if result is not None:
            await result


async def send(
    transport: Transport,
    request: HttpRequest,
    *,
    on_exchange: ExchangeHook | None = None,
    logged: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> HttpResponse:
    """Send ``request`` through ``transport``, log (unless ``logged`` is false) and report
    the exchange (redacted).

    A :class:`TransportError` gets the redacted ``request_line`` of the request it failed on.
    """
    # The redacted record is built only when someone reads it (a hook, or DEBUG logging).
    watched = on_exchange is not None or (logged and log.isEnabledFor(logging.DEBUG))
    start = clock()
    try:
        response = await transport.send(request)
    except Exception as exc:
        if isinstance(exc, TransportError) and exc.request_line is None:
            exc.request_line = request_line(request)
        if watched:
            await _report(
                on_exchange,
                Exchange.of(request, None, elapsed=clock() - start, error=exc),
                logged=logged,
            )
        raise
    if watched:
        await _report(
            on_exchange, Exchange.of(request, response, elapsed=clock() - start), logged=logged
        )
    return response


@contextmanager
def attach_request(request: HttpRequest) -> Iterator[None]:
    """Give a :class:`ProtocolError` raised inside the redacted ``request_line`` of the
    request whose answer it reads."""
    try:
        yield
    except ProtocolError as err:
        if err.request_line is None:
            err.request_line = request_line(request)
            # The issuer's text may quote the request (its code, tx_code or token): never
            # let a secret the wallet sent come back in the error's message.
            description = err.error_description
            if description:
                scrubbed = scrub(description, sent_secrets(request))
                if scrubbed != description:
                    err.error_description = scrubbed
                    err.args = (f"{err.error}: {scrubbed}",)
        raise


class TracingTransport(AsyncTransport):
    """A transport that reports every exchange through ``inner`` to ``on_exchange``.

    ::

        seen: list[Exchange] = []
        client = Oid4vciClient(TracingTransport(AiohttpTransport(), seen.append))

    Closing it closes ``inner`` when that has ``aclose``. Its ``allow_insecure_loopback`` is
    the inner transport's.
    """

    def __init__(self, inner: Transport, on_exchange: ExchangeHook) -> None:
        if not callable(getattr(inner, "send", None)):
            from .errors import ArgumentTypeError

            raise ArgumentTypeError("inner must be a transport (an async send(request) method)")
        self.inner = inner
        self.on_exchange = on_exchange

    @property
    def allow_insecure_loopback(self) -> bool:
        """The inner transport's loopback switch."""
        return getattr(self.inner, "allow_insecure_loopback", False) is True

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send through ``inner`` and report the exchange (the wallet logs it already)."""
        return await send(self.inner, request, on_exchange=self.on_exchange, logged=False)

    async def aclose(self) -> None:
        """Close ``inner`` when it can be closed."""
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()

    def __repr__(self) -> str:
        return f"TracingTransport({self.inner!r})"
