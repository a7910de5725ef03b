"""AiohttpTransport against a real aiohttp server on 127.0.0.1, plus aioresponses for failures."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import parse_qs, urlsplit

import aiohttp
import anyio
import pytest
from aiohttp import web
from aioresponses import aioresponses

from oid4vci.errors import (
    ConnectError,
    InsecureUrlError,
    RedirectRefused,
    ResponseTooLarge,
    TransportError,
    TransportTimeout,
)
from oid4vci.http import HttpRequest, HttpResponse, Transport
from oid4vci.transports.aiohttp import (
    DEFAULT_MAX_RESPONSE_SIZE,
    AiohttpTransport,
    _read_capped,
    serve,
)

SECRET = "SECRET-CODE-123"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def echo(request: HttpRequest) -> HttpResponse:
    """Answer with everything the server saw."""
    return HttpResponse.json(
        200,
        {
            "method": request.method,
            "url": request.url,
            "headers": [list(pair) for pair in request.headers.multi_items()],
            "body": request.body.decode(),
        },
        headers=[("X-Out", "one"), ("X-Out", "two"), ("Cache-Control", "no-store")],
    )


def loopback(
    *,
    total_timeout: float = 5,
    max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    raise_on_redirect: bool = True,
) -> AiohttpTransport:
    """A transport allowed to speak http to 127.0.0.1 (where the test servers run)."""
    return AiohttpTransport(
        allow_insecure_loopback=True,
        total_timeout=total_timeout,
        max_response_size=max_response_size,
        raise_on_redirect=raise_on_redirect,
    )


@asynccontextmanager
async def raw_app(
    route: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[str]:
    """Serve a plain aiohttp handler on a free port; yield the base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", route)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def raw_tcp(reply: bytes) -> AsyncIterator[str]:
    """A TCP server that reads the request head, writes ``reply`` verbatim, and closes."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def test_satisfies_transport_protocol() -> None:
    async with AiohttpTransport() as transport:
        assert isinstance(transport, Transport)


async def test_get_json_round_trip() -> None:
    async with serve(echo) as served, loopback() as transport:
        response = await transport.send(
            HttpRequest(method="GET", url=f"{served.base_url}/.well-known/x?a=1&b=%20")
        )
    assert response.status == 200
    assert response.media_type == "application/json"
    data = response.json_body()
    assert data["method"] == "GET"
    assert data["url"] == f"{served.base_url}/.well-known/x?a=1&b=%20"
    assert data["body"] == ""
    sent = {name.lower() for name, _ in data["headers"]}
    assert "content-type" not in sent


async def test_post_json_and_form() -> None:
    async with serve(echo) as served, loopback() as transport:
        as_json = await transport.send(
            HttpRequest.json("POST", f"{served.base_url}/credential", {"a": [1, 2]})
        )
        as_form = await transport.send(
            HttpRequest.form("POST", f"{served.base_url}/token", {"grant_type": "x y", "k": "é"})
        )
    body = as_json.json_body()
    assert json.loads(body["body"]) == {"a": [1, 2]}
    assert ["Content-Type", "application/json"] in body["headers"]
    form = as_form.json_body()
    assert HttpRequest(method="POST", url="https://x/", body=form["body"]).form_body() == {
        "grant_type": "x y",
        "k": "é",
    }
    assert ["Content-Type", "application/x-www-form-urlencoded"] in form["headers"]


async def test_headers_round_trip_with_repeats() -> None:
    request = HttpRequest(
        method="POST",
        url="",  # replaced below
        headers=[
            ("Authorization", "DPoP token-value"),
            ("DPoP", "a.b.c"),
            ("X-Multi", "first"),
            ("X-Multi", "second"),
        ],
        body=b"raw",
    )
    async with serve(echo) as served, loopback() as transport:
        response = await transport.send(
            HttpRequest(
                method=request.method,
                url=f"{served.base_url}/h",
                headers=request.headers,
                body=request.body,
            )
        )
    seen = [tuple(pair) for pair in response.json_body()["headers"]]
    assert ("Authorization", "DPoP token-value") in seen
    assert ("DPoP", "a.b.c") in seen
    assert [v for k, v in seen if k == "X-Multi"] == ["first", "second"]
    # no Content-Type invented for a body sent without one
    assert not [k for k, _ in seen if k.lower() == "content-type"]
    assert response.headers.get_all("x-out") == ["one", "two"]
    assert response.headers.get("cache-control") == "no-store"
    assert response.json_body()["body"] == "raw"


async def test_url_sent_exactly_as_given() -> None:
    path = "/a%2Fb/%7Euser?x=%2F&y=%41"
    async with serve(echo) as served, loopback() as transport:
        response = await transport.send(HttpRequest(method="GET", url=served.base_url + path))
        unencoded = await transport.send(
            HttpRequest(method="GET", url=served.base_url + "/caf\u00e9?q=a b")
        )
    assert response.json_body()["url"] == served.base_url + path
    # a URL that is not wire-ready is percent-encoded (the server sees valid HTTP)
    sent = urlsplit(unencoded.json_body()["url"])
    assert sent.path == "/caf%C3%A9"
    assert parse_qs(sent.query) == {"q": ["a b"]}


async def test_error_statuses_are_returned_as_responses() -> None:
    async def bad(request: HttpRequest) -> HttpResponse:
        return HttpResponse.json(400, {"error": "invalid_request"})

    async with serve(bad) as served, loopback() as transport:
        response = await transport.send(HttpRequest(method="GET", url=served.base_url + "/"))
    assert response.status == 400
    assert response.json_body() == {"error": "invalid_request"}


async def test_total_timeout() -> None:
    async def slow(request: HttpRequest) -> HttpResponse:
        await anyio.sleep(0.2)
        return HttpResponse(status=200)

    async with serve(slow) as served, loopback(total_timeout=0.05) as transport:
        with pytest.raises(TransportTimeout) as info:
            await transport.send(
                HttpRequest(method="GET", url=f"{served.base_url}/s?code={SECRET}")
            )
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None


async def test_total_timeout_covers_a_stalled_body() -> None:
    async def stalls(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"partial")
        await asyncio.sleep(0.2)
        await response.write(b"rest")
        return response

    async with raw_app(stalls) as base, loopback(total_timeout=0.05) as transport:
        with pytest.raises(TransportTimeout):
            await transport.send(HttpRequest(method="GET", url=base + "/"))


async def test_response_size_cap_with_content_length() -> None:
    async def big(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=200, body=b"x" * 2000)

    async with serve(big) as served:
        async with loopback(max_response_size=1999) as transport:
            with pytest.raises(ResponseTooLarge):
                await transport.send(HttpRequest(method="GET", url=served.base_url + "/"))
        async with loopback(max_response_size=2000) as transport:
            response = await transport.send(HttpRequest(method="GET", url=served.base_url + "/"))
            assert len(response.body) == 2000


async def test_response_size_cap_while_streaming() -> None:
    """A chunked answer without Content-Length is cut off while streaming."""

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(1000):
                await response.write(b"y" * 65536)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async with raw_app(endless) as base, loopback(max_response_size=100_000) as transport:
        with pytest.raises(ResponseTooLarge):
            await transport.send(HttpRequest(method="GET", url=base + "/"))


async def test_read_capped_never_reads_past_cap_plus_one() -> None:
    class Endless:
        def __init__(self) -> None:
            self.asked = 0

        async def read(self, n: int = -1, /) -> bytes:
            assert n > 0
            self.asked += n
            return b"z" * n

    stream = Endless()
    assert await _read_capped(stream, 200_000) is None
    assert stream.asked == 200_001

    class Finite:
        def __init__(self, data: bytes) -> None:
            self.data = data

        async def read(self, n: int = -1, /) -> bytes:
            chunk, self.data = self.data[:n], self.data[n:]
            return chunk

    assert await _read_capped(Finite(b"a" * 10), 10) == b"a" * 10
    assert await _read_capped(Finite(b"a" * 11), 10) is None
    assert await _read_capped(Finite(b""), 0) == b""


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_not_followed(status: int) -> None:
    followed: list[str] = []

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/target"):
            followed.append(request.url)
            return HttpResponse(status=200, body=b"followed")
        return HttpResponse(
            status=status, headers={"Location": f"/target?code={SECRET}"}, body=b"moved"
        )

    async with serve(handler) as served:
        async with loopback() as transport:
            with pytest.raises(RedirectRefused) as info:
                await transport.send(HttpRequest(method="POST", url=served.base_url + "/token"))
            assert SECRET not in str(info.value)
            assert str(status) in str(info.value)
        async with loopback(raise_on_redirect=False) as transport:
            response = await transport.send(HttpRequest(method="GET", url=served.base_url + "/a"))
    assert response.status == status
    assert response.headers.get("Location") == f"/target?code={SECRET}"
    assert followed == []


@pytest.mark.parametrize(
    "url",
    ["http://example.com/", "http://10.0.0.1/x", "ftp://example.com/", "http://localhost.evil/"],
)
async def test_insecure_url_refused_before_any_network_io(url: str) -> None:
    with aioresponses() as mocked:
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            with pytest.raises(InsecureUrlError):
                await transport.send(HttpRequest(method="GET", url=url))
        assert mocked.requests == {}


async def test_http_loopback_only_with_the_option() -> None:
    async with serve(echo) as served:
        async with AiohttpTransport() as strict:
            with pytest.raises(InsecureUrlError):
                await strict.send(HttpRequest(method="GET", url=served.base_url + "/"))
        async with AiohttpTransport(allow_insecure_loopback=True) as lenient:
            response = await lenient.send(HttpRequest(method="GET", url=served.base_url + "/"))
            assert response.status == 200
            localhost = served.base_url.replace("127.0.0.1", "localhost")
            response = await lenient.send(HttpRequest(method="GET", url=localhost + "/"))
            assert response.status == 200


async def test_connection_refused_is_connect_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # nothing listens on the port any more
    async with loopback() as transport:
        with pytest.raises(ConnectError) as info:
            await transport.send(
                HttpRequest(method="GET", url=f"http://127.0.0.1:{port}/x?code={SECRET}")
            )
    assert SECRET not in str(info.value)
    assert f"http://127.0.0.1:{port}/x" in str(info.value)


async def test_truncated_body_is_transport_error() -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\nabc"
    async with raw_tcp(reply) as base, loopback() as transport:
        with pytest.raises(TransportError) as info:
            await transport.send(HttpRequest(method="GET", url=base + "/"))
    assert not isinstance(info.value, ConnectError | ResponseTooLarge)


async def test_garbage_response_is_transport_error() -> None:
    async with raw_tcp(b"this is not http\r\n\r\n") as base, loopback() as transport:
        with pytest.raises(TransportError):
            await transport.send(HttpRequest(method="GET", url=base + "/"))


async def test_lying_content_length_is_too_large_without_reading() -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\nabc"
    async with raw_tcp(reply) as base, loopback(max_response_size=1000) as transport:
        with pytest.raises(ResponseTooLarge):
            await transport.send(HttpRequest(method="GET", url=base + "/"))


URL = f"https://issuer.example/token?code={SECRET}"


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (aiohttp.ClientConnectionError(f"refused {URL}"), ConnectError),
        (aiohttp.ClientOSError(f"reset {URL}"), ConnectError),
        (aiohttp.ServerDisconnectedError(f"gone {URL}"), TransportError),
        (aiohttp.ClientPayloadError(f"truncated {URL}"), TransportError),
        (aiohttp.ServerTimeoutError(f"slow {URL}"), TransportTimeout),
        (aiohttp.ConnectionTimeoutError(f"slow {URL}"), TransportTimeout),
        (TimeoutError(), TransportTimeout),
        (aiohttp.ClientError(f"odd {URL}"), TransportError),
        (aiohttp.InvalidURL(URL), TransportError),
    ],
)
async def test_aiohttp_exceptions_are_mapped(
    raised: Exception, expected: type[TransportError]
) -> None:
    with aioresponses() as mocked:
        mocked.post(URL, exception=raised)
        async with AiohttpTransport() as transport:
            with pytest.raises(TransportError) as info:
                await transport.send(HttpRequest(method="POST", url=URL))
    assert type(info.value) is expected
    assert not isinstance(info.value, aiohttp.ClientError)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert SECRET not in str(info.value)
    assert "https://issuer.example/token" in str(info.value)


async def test_uses_a_given_session_and_leaves_it_open() -> None:
    async with serve(echo) as served, aiohttp.ClientSession() as session:
        transport = AiohttpTransport(session=session, allow_insecure_loopback=True)
        async with transport:
            response = await transport.send(HttpRequest(method="GET", url=served.base_url))
            assert response.status == 200
        assert not session.closed
        with pytest.raises(TransportError, match="closed"):
            await transport.send(HttpRequest(method="GET", url=served.base_url))


async def test_given_session_settings_do_not_change_behaviour() -> None:
    async def bad(request: HttpRequest) -> HttpResponse:
        return HttpResponse.json(401, {"error": "invalid_token"})

    async with (
        serve(bad) as served,
        aiohttp.ClientSession(raise_for_status=True) as session,
        AiohttpTransport(session=session, allow_insecure_loopback=True) as transport,
    ):
        response = await transport.send(HttpRequest(method="GET", url=served.base_url))
    assert response.status == 401


async def test_owned_session_reused_then_closed() -> None:
    async with serve(echo) as served:
        transport = loopback()
        await transport.send(HttpRequest(method="GET", url=served.base_url))
        session = transport._session
        assert session is not None
        await transport.send(HttpRequest(method="GET", url=served.base_url))
        assert transport._session is session
        await transport.aclose()
        assert session.closed
        await transport.aclose()


async def test_no_cookies_kept() -> None:
    async def cookie(request: HttpRequest) -> HttpResponse:
        return HttpResponse.json(
            200,
            {"cookie": request.headers.get("cookie")},
            headers={"Set-Cookie": "sid=abc; Path=/"},
        )

    async with serve(cookie) as served, loopback() as transport:
        await transport.send(HttpRequest(method="GET", url=served.base_url + "/"))
        second = await transport.send(HttpRequest(method="GET", url=served.base_url + "/"))
    assert second.json_body() == {"cookie": None}


def test_invalid_options() -> None:
    with pytest.raises(ValueError):
        AiohttpTransport(total_timeout=0)
    with pytest.raises(ValueError):
        AiohttpTransport(connect_timeout=-1)
    with pytest.raises(ValueError):
        AiohttpTransport(max_response_size=-1)
