"""The aiohttp server adapter: URL and header conversion, body limit, handler failures."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
import yarl
from aiohttp import web

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.transports.aiohttp import (
    DEFAULT_MAX_BODY_SIZE,
    ServedApp,
    handler_for_aiohttp,
    make_aiohttp_app,
    make_aiohttp_server,
    serve,
)

SECRET = "SECRET-TOKEN-456"
TOO_LARGE = {"error": "invalid_request", "error_description": "request body too large"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


class Recorder:
    """A handler that records requests and answers with a fixed response."""

    def __init__(self, response: HttpResponse | None = None) -> None:
        self.requests: list[HttpRequest] = []
        self.response = response or HttpResponse.json(200, {"ok": True})

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        return self.response


async def test_request_conversion(session: aiohttp.ClientSession) -> None:
    handler = Recorder()
    async with serve(handler) as served:
        url = f"{served.base_url}/tenant/credential?x=%2Fa&y=1"
        async with session.post(
            yarl.URL(url, encoded=True),
            data=b'{"a":1}',
            headers=[
                ("Content-Type", "application/json"),
                ("Authorization", f"DPoP {SECRET}"),
                ("X-Multi", "1"),
                ("X-Multi", "2"),
            ],
        ) as resp:
            assert resp.status == 200
    [seen] = handler.requests
    assert seen.method == "POST"
    assert seen.url == url
    assert seen.body == b'{"a":1}'
    assert seen.json_body() == {"a": 1}
    assert seen.headers.get("authorization") == f"DPoP {SECRET}"
    assert seen.headers.get_all("x-multi") == ["1", "2"]
    assert seen.media_type == "application/json"
    assert seen.client_address == "127.0.0.1"  # the TCP peer, for the issuer's rate limits


async def test_url_uses_host_header(session: aiohttp.ClientSession) -> None:
    handler = Recorder()
    async with (
        serve(handler) as served,
        session.get(
            f"{served.base_url}/.well-known/openid-credential-issuer",
            headers={"Host": "tenant1.issuer.example:8443"},
        ) as resp,
    ):
        assert resp.status == 200
    assert handler.requests[0].url == (
        "http://tenant1.issuer.example:8443/.well-known/openid-credential-issuer"
    )


@pytest.mark.parametrize("host", ["evil.example/path?", "a b", "evil.example@x", "-bad-"])
async def test_malformed_host_header_is_400(session: aiohttp.ClientSession, host: str) -> None:
    handler = Recorder()
    async with (
        serve(handler) as served,
        session.get(served.base_url + "/", headers={"Host": host}) as resp,
    ):
        assert resp.status == 400
        assert (await resp.json())["error"] == "invalid_request"
    assert handler.requests == []


async def test_response_conversion(session: aiohttp.ClientSession) -> None:
    handler = Recorder(
        HttpResponse(
            status=201,
            headers=[
                ("Content-Type", "application/jwt"),
                ("DPoP-Nonce", "n-1"),
                ("X-Out", "a"),
                ("X-Out", "b"),
                ("Content-Length", "99999"),  # wrong framing from a handler is replaced
            ],
            body=b"eyJ.x.y",
        )
    )
    async with serve(handler) as served, session.get(served.base_url) as resp:
        assert resp.status == 201
        assert resp.headers["Content-Type"] == "application/jwt"
        assert resp.headers["DPoP-Nonce"] == "n-1"
        assert resp.headers.getall("X-Out") == ["a", "b"]
        assert resp.headers["Content-Length"] == "7"
        assert await resp.read() == b"eyJ.x.y"


async def test_empty_response_and_redirect_pass_through(session: aiohttp.ClientSession) -> None:
    handler = Recorder(
        HttpResponse(status=302, headers={"Location": "https://wallet.example/cb?code=c"})
    )
    async with (
        serve(handler) as served,
        session.get(served.base_url + "/authorize", allow_redirects=False) as resp,
    ):
        assert resp.status == 302
        assert resp.headers["Location"] == "https://wallet.example/cb?code=c"
        assert await resp.read() == b""


async def test_body_limit_by_content_length_before_handler(
    session: aiohttp.ClientSession,
) -> None:
    handler = Recorder()
    async with serve(handler, max_body_size=100) as served:
        async with session.post(served.base_url + "/credential", data=b"x" * 101) as resp:
            assert resp.status == 413
            assert resp.headers["Content-Type"] == "application/json"
            assert resp.headers["Cache-Control"] == "no-store"
            assert await resp.json() == TOO_LARGE
        assert handler.requests == []
        async with session.post(served.base_url + "/credential", data=b"x" * 100) as resp:
            assert resp.status == 200
    assert [r.body for r in handler.requests] == [b"x" * 100]


async def test_body_limit_for_chunked_upload_before_handler(
    session: aiohttp.ClientSession,
) -> None:
    async def chunks(count: int) -> AsyncIterator[bytes]:
        for _ in range(count):
            yield b"y" * 40

    handler = Recorder()
    async with serve(handler, max_body_size=100) as served:
        async with session.post(served.base_url + "/", data=chunks(3)) as resp:
            assert resp.status == 413
            assert await resp.json() == TOO_LARGE
        assert handler.requests == []
        async with session.post(served.base_url + "/", data=chunks(2)) as resp:
            assert resp.status == 200
    assert [r.body for r in handler.requests] == [b"y" * 80]


async def test_handler_exception_is_bare_500(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(request: HttpRequest) -> HttpResponse:
        raise RuntimeError(f"bug involving {SECRET}")

    caplog.set_level(logging.ERROR, logger="oid4vci.transports.aiohttp")
    async with (
        serve(broken) as served,
        session.post(
            f"{served.base_url}/token?code={SECRET}",
            data=f"code={SECRET}",
            headers={"Authorization": f"Bearer {SECRET}"},
        ) as resp,
    ):
        assert resp.status == 500
        body = await resp.read()
    assert json.loads(body) == {"error": "server_error"}
    assert SECRET.encode() not in body
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    text = errors[0].getMessage()
    assert "RuntimeError" in text
    assert "/token" in text
    assert SECRET not in text
    assert errors[0].exc_info is None


async def test_handler_returning_wrong_type_is_500(session: aiohttp.ClientSession) -> None:
    async def wrong(request: HttpRequest) -> HttpResponse:
        return {"status": 200}  # type: ignore[return-value]

    async with serve(wrong) as served, session.get(served.base_url) as resp:
        assert resp.status == 500
        assert await resp.json() == {"error": "server_error"}


async def test_handler_for_aiohttp_mounts_into_an_existing_app(
    session: aiohttp.ClientSession,
) -> None:
    handler = Recorder()

    async def health(request: web.Request) -> web.StreamResponse:
        return web.Response(text="fine")

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_route("*", "/oid4vci/{tail:.*}", handler_for_aiohttp(handler, max_body_size=10))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with session.get(base + "/health") as resp:
            assert await resp.text() == "fine"
        async with session.post(base + "/oid4vci/token", data=b"small") as resp:
            assert resp.status == 200
        async with session.post(base + "/oid4vci/token", data=b"far too large") as resp:
            assert resp.status == 413
    finally:
        await runner.cleanup()
    assert [r.url for r in handler.requests] == [base + "/oid4vci/token"]


def test_make_aiohttp_app_is_an_application() -> None:
    app = make_aiohttp_app(Recorder(), max_body_size=5)
    assert isinstance(app, web.Application)
    assert app._client_max_size == 5
    assert DEFAULT_MAX_BODY_SIZE == 1024 * 1024


def test_negative_body_limit_refused() -> None:
    with pytest.raises(ValueError):
        handler_for_aiohttp(Recorder(), max_body_size=-1)


async def test_serve_binds_a_free_port_and_cleans_up(session: aiohttp.ClientSession) -> None:
    async with serve(Recorder()) as served:
        assert isinstance(served, ServedApp)
        assert served.host == "127.0.0.1"
        assert served.port > 0
        assert served.base_url == f"http://127.0.0.1:{served.port}"
        async with session.get(served.base_url) as resp:
            assert resp.status == 200
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", served.port)) != 0


def test_served_app_ipv6_base_url() -> None:
    assert ServedApp(host="::1", port=8080).base_url == "http://[::1]:8080"


async def _raw_exchange(
    served: ServedApp, head: bytes, body: bytes, *, wait_for_continue: bool
) -> tuple[bytes, bytes]:
    """Send ``head``; read the interim response (when waited for), then send ``body``; the
    interim bytes and the final response."""
    reader, writer = await asyncio.open_connection(served.host, served.port)
    try:
        writer.write(head)
        await writer.drain()
        interim = b""
        if wait_for_continue:
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.write(body)
        await writer.drain()
        final = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        return interim, final
    finally:
        writer.close()


async def test_expect_100_continue_gets_interim_answer_before_the_body() -> None:
    handler = Recorder()
    async with serve(handler) as served:
        head = (
            b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 7\r\n"
            b"Content-Type: application/json\r\nExpect: 100-continue\r\n\r\n"
        )
        interim, final = await _raw_exchange(served, head, b'{"a":1}', wait_for_continue=True)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert final.startswith(b"HTTP/1.1 200 ")
    [seen] = handler.requests
    assert seen.body == b'{"a":1}'


async def test_expect_100_continue_over_the_limit_is_413_without_interim_answer() -> None:
    handler = Recorder()
    async with serve(handler, max_body_size=4, shutdown_timeout=0.5) as served:
        head = (
            b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 7\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        _, final = await _raw_exchange(served, head, b"", wait_for_continue=False)
    assert final.startswith(b"HTTP/1.1 413 ")
    assert handler.requests == []


async def test_unknown_expectation_is_417() -> None:
    handler = Recorder()
    async with serve(handler) as served:
        head = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: teapot\r\n\r\n"
        _, final = await _raw_exchange(served, head, b"", wait_for_continue=False)
    assert final.startswith(b"HTTP/1.1 417 ")
    assert handler.requests == []


async def test_make_aiohttp_server_is_a_low_level_server() -> None:
    assert isinstance(make_aiohttp_server(Recorder()), web.Server)
    with pytest.raises(ValueError):
        make_aiohttp_server(Recorder(), max_body_size=-1)


async def test_body_shorter_than_its_content_length_never_reaches_the_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The client declares 100 bytes, sends 7 (valid JSON on their own) and closes its side:
    # the handler is not called, nothing is logged with a traceback, and whatever the client
    # still gets is a 400 (aiohttp drops a half-closed connection, so usually nothing).
    handler = Recorder()
    async with serve(handler, shutdown_timeout=0.5) as served:
        reader, writer = await asyncio.open_connection(served.host, served.port)
        try:
            writer.write(
                b"POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n"
                b"Content-Type: application/json\r\n\r\n"
                b'{"a":1}'
            )
            await writer.drain()
            writer.write_eof()
            final = await asyncio.wait_for(reader.read(), 5)
        finally:
            writer.close()
    assert final == b"" or final.startswith(b"HTTP/1.1 400 "), final[:60]
    assert handler.requests == []
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
