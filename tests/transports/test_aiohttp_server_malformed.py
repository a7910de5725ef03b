"""serve() and requests aiohttp's parser refuses: still a 400, logged as one line.

aiohttp logs such a request at ERROR with a traceback whose last line quotes the first bytes of
the offending data (``LineTooLong: ... bytearray(b'/callback?code=...')``). The server built by
:func:`make_aiohttp_server` logs one INFO line on ``oid4vci.transports.aiohttp`` instead: no
traceback, none of the request's bytes. Each test sends raw bytes to a real server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl

import pytest
from aiohttp import http_exceptions, web

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.transports.aiohttp import ServedApp, _ServerLog, serve

SECRET = "SECRET-CODE-789"
LOGGER = "oid4vci.transports.aiohttp"
REFUSAL = re.compile(r"refused a malformed HTTP request(?: from 127\.0\.0\.1)?: (\w+)")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Recorder:
    """A handler that records the requests it is given and answers 200."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        return HttpResponse.json(200, {"ok": True})


def tls_client_hello() -> bytes:
    """The first flight of a TLS client (a ClientHello), whose SNI carries the secret."""
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=f"{SECRET.lower()}.example")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = outgoing.read()
    assert SECRET.lower().encode() in hello
    return hello


HEAD = b"Host: 127.0.0.1\r\n"
TARGET = f"/callback?code={SECRET}&state=s".encode()

# (request bytes, the aiohttp exception class the refusal names, or a base of it)
MALFORMED: dict[str, tuple[bytes, type[Exception]]] = {
    "request line over 8190 bytes": (
        b"GET " + TARGET + b"&pad=" + b"a" * 9000 + b" HTTP/1.1\r\n" + HEAD + b"\r\n",
        http_exceptions.LineTooLong,
    ),
    "header over 8190 bytes": (
        b"GET / HTTP/1.1\r\n" + HEAD + b"Referer: http://x" + TARGET + b"a" * 9000 + b"\r\n\r\n",
        http_exceptions.LineTooLong,
    ),
    "garbage request line": (b"GARBAGE\r\n\r\n", http_exceptions.BadStatusLine),
    "negative Content-Length": (
        b"POST /token HTTP/1.1\r\n" + HEAD + b"Content-Length: -5\r\n\r\ncode=" + SECRET.encode(),
        http_exceptions.BadHttpMessage,
    ),
    "bad chunk size": (
        b"POST /token HTTP/1.1\r\n" + HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
        b"zz" + SECRET.encode() + b"\r\ncode\r\n0\r\n\r\n",
        http_exceptions.BadHttpMessage,
    ),
    "TLS ClientHello to the http port": (b"", http_exceptions.BadStatusLine),
}


async def exchange(served: ServedApp, data: bytes) -> bytes:
    """Send ``data`` in one write and read everything the server sends until it closes."""
    reader, writer = await asyncio.open_connection(served.host, served.port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def status_of(response: bytes) -> int:
    line = response.split(b"\r\n", 1)[0]
    assert re.fullmatch(rb"HTTP/1\.[01] \d{3} .*", line), response[:80]
    return int(line.split()[1])


def assert_quiet_about_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """No record has a traceback, none quotes the secret, none is an error."""
    for record in caplog.records:
        assert record.exc_info is None, (record.name, record.getMessage())
        assert record.exc_text is None
        text = record.getMessage()
        assert SECRET not in text and SECRET.lower() not in text, (record.name, text)
        assert record.levelno < logging.WARNING, (record.name, text)


@pytest.mark.parametrize("case", list(MALFORMED))
async def test_malformed_request_is_400_and_one_log_line(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    data, refused_as = MALFORMED[case]
    if not data:
        data = tls_client_hello()
    caplog.set_level(logging.DEBUG)
    handler = Recorder()
    async with serve(handler) as served:
        assert status_of(await exchange(served, data)) == 400
        # The server goes on serving; the access log is off (it would record this query).
        normal = f"GET /callback?code={SECRET} HTTP/1.1\r\n".encode() + HEAD
        answer = await exchange(served, normal + b"Connection: close\r\n\r\n")
        assert status_of(answer) == 200
    assert [r.url for r in handler.requests] == [f"http://127.0.0.1/callback?code={SECRET}"]
    assert_quiet_about_secrets(caplog)
    refusals = [r for r in caplog.records if REFUSAL.fullmatch(r.getMessage())]
    assert len(refusals) == 1, [r.getMessage() for r in caplog.records]
    [refusal] = refusals
    assert refusal.name == LOGGER
    assert refusal.levelno == logging.INFO
    match = REFUSAL.fullmatch(refusal.getMessage())
    assert match is not None
    assert issubclass(getattr(http_exceptions, match[1]), refused_as)
    # Nothing from aiohttp itself: neither its error nor its access log (which has the query).
    assert not [
        r for r in caplog.records if r.name.startswith("aiohttp") and r.levelno > logging.DEBUG
    ]


async def test_undecodable_body_is_400_not_500(caplog: pytest.LogCaptureFixture) -> None:
    # The head is fine and the handler starts; aiohttp's parser then fails to decode the body.
    caplog.set_level(logging.DEBUG)
    handler = Recorder()
    body = f"code={SECRET}".encode()
    async with serve(handler) as served:
        answer = await exchange(
            served,
            b"POST /token HTTP/1.1\r\n" + HEAD + b"Content-Encoding: gzip\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body,
        )
        head, _, payload = answer.partition(b"\r\n\r\n")
        assert status_of(answer) == 400
        assert b"\r\nConnection: close\r\n" in head + b"\r\n"  # this connection's parser is done
        assert json.loads(payload) == {
            "error": "invalid_request",
            "error_description": "malformed request body",
        }
    assert handler.requests == []
    assert_quiet_about_secrets(caplog)
    shown = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert shown == ["refused a malformed HTTP request from 127.0.0.1: ContentEncodingError"]


def _record(
    caplog: pytest.LogCaptureFixture,
    log: _ServerLog,
    msg: str,
    *args: object,
    exc_info: BaseException | bool = True,
) -> logging.LogRecord:
    """The one record ``log.exception(...)`` makes, as aiohttp's RequestHandler calls it."""
    caplog.clear()
    log.exception(msg, *args, exc_info=exc_info)
    [record] = caplog.records
    return record


def test_server_log_keeps_real_failures_as_errors_with_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    log = _ServerLog()
    failure = RuntimeError("broken")
    record = _record(caplog, log, "Unhandled exception", exc_info=failure)
    assert (record.name, record.levelno, record.getMessage()) == (
        "aiohttp.server",
        logging.ERROR,
        "Unhandled exception",
    )
    assert record.exc_info is not None and record.exc_info[1] is failure
    try:
        raise failure
    except RuntimeError:
        record = _record(caplog, log, "Error handling request from %s", "127.0.0.1")
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None


def test_server_log_names_only_an_ip_address_as_the_peer(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    log = _ServerLog()
    refused = http_exceptions.LineTooLong(f"/callback?code={SECRET}", "8190")
    record = _record(caplog, log, "Error handling request from %s", "::1", exc_info=refused)
    assert (record.name, record.levelno, record.exc_info) == (LOGGER, logging.INFO, None)
    assert record.getMessage() == "refused a malformed HTTP request from ::1: LineTooLong"
    # Were aiohttp ever to pass something else (here a request target), it is not logged.
    target = f"/callback?code={SECRET}"
    for args in [(target,), ("127.0.0.1", target), ()]:
        record = _record(caplog, log, "Error handling request %s", *args, exc_info=refused)
        assert record.getMessage() == "refused a malformed HTTP request: LineTooLong"
    # A body error aiohttp meets again after the handler answered (and logged) it: DEBUG.
    try:
        try:
            raise http_exceptions.ContentEncodingError(SECRET)
        except http_exceptions.ContentEncodingError as cause:
            raise web.RequestPayloadError(SECRET) from cause
    except web.RequestPayloadError as echo:
        record = _record(caplog, log, "Unhandled exception", exc_info=echo)
    assert (record.levelno, record.exc_info) == (logging.DEBUG, None)
    assert record.getMessage() == "refused a malformed HTTP request: ContentEncodingError"
