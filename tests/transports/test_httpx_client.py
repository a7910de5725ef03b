"""HttpxTransport against real servers on 127.0.0.1, on asyncio and on trio.

The servers (aiohttp, raw TCP) run on their own asyncio loop in a background thread
(:mod:`tests.transports.servers`), so the transport under test runs on either backend.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sniffio
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from oid4vci.errors import (
    ConnectError,
    InsecureUrlError,
    RedirectRefused,
    ResponseTooLarge,
    TransportError,
    TransportTimeout,
    UsageError,
)
from oid4vci.http import AsyncTransport, HttpRequest, HttpResponse, Transport
from oid4vci.transports.aiohttp import handler_for_aiohttp
from oid4vci.transports.httpx import DEFAULT_MAX_RESPONSE_SIZE, HttpxTransport, _read_capped
from tests.transports.servers import (
    BackgroundLoop,
    aiohttp_app_in_thread,
    background_loop,
    bound_socket,
    raw_tcp_in_thread,
)

SECRET = "SECRET-CODE-123"
SLOW = 2.0  # seconds a slow route takes; far above every timeout the tests set


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


class Routes:
    """The test server's routes; records requests that followed a redirect."""

    def __init__(self) -> None:
        self.followed: list[str] = []

    async def slow(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(SLOW)
        return web.Response(text="late")

    async def stall(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"partial")
        await asyncio.sleep(SLOW)
        await response.write(b"rest")
        return response

    async def trickle(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        for _ in range(int(SLOW / 0.05)):
            await response.write(b".")
            await asyncio.sleep(0.05)
        return response

    async def big(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"x" * int(request.match_info["size"]))

    async def endless(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(1000):
                await response.write(b"y" * 65536)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def gzipped(self, request: web.Request) -> web.StreamResponse:
        body = gzip.compress(b"0" * int(request.match_info["size"]))
        if "truncate" in request.query:
            body = body[: len(body) // 2]
        return web.Response(body=body, headers={"Content-Encoding": "gzip"})

    async def encoded(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"\x00\x01", headers={"Content-Encoding": "br"})

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            status=int(request.match_info["status"]),
            headers={"Location": f"/target?code={SECRET}"},
            text="moved",
        )

    async def target(self, request: web.Request) -> web.StreamResponse:
        self.followed.append(str(request.url))
        return web.Response(text="followed")

    async def cookie(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"cookie": request.headers.get("Cookie")}, headers={"Set-Cookie": "sid=abc; Path=/"}
        )

    async def status(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": "invalid_request"}, status=400)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/stall", self.stall)
        app.router.add_get("/trickle", self.trickle)
        app.router.add_get("/big/{size}", self.big)
        app.router.add_get("/endless", self.endless)
        app.router.add_get("/gzip/{size}", self.gzipped)
        app.router.add_get("/brotli", self.encoded)
        app.router.add_route("*", "/redirect/{status}", self.redirect)
        app.router.add_get("/target", self.target)
        app.router.add_get("/cookie", self.cookie)
        app.router.add_get("/status", self.status)
        app.router.add_route("*", "/{tail:.*}", handler_for_aiohttp(echo))
        return app


@pytest.fixture(scope="module")
def loop() -> Iterator[BackgroundLoop]:
    with background_loop() as running:
        yield running


@pytest.fixture(scope="module")
def routes() -> Routes:
    return Routes()


@pytest.fixture(scope="module")
def base(loop: BackgroundLoop, routes: Routes) -> Iterator[str]:
    """The base URL of the test server (http on 127.0.0.1)."""
    with aiohttp_app_in_thread(loop, routes.app()) as url:
        yield url


def loopback(
    *,
    total_timeout: float = 5,
    max_response_size: int = DEFAULT_MAX_RESPONSE_SIZE,
    raise_on_redirect: bool = True,
) -> HttpxTransport:
    """A transport allowed to speak http to 127.0.0.1 (where the test servers run)."""
    return HttpxTransport(
        allow_insecure_loopback=True,
        total_timeout=total_timeout,
        max_response_size=max_response_size,
        raise_on_redirect=raise_on_redirect,
    )


@pytest.fixture
async def transport() -> AsyncIterator[HttpxTransport]:
    async with loopback() as t:
        yield t


def get(url: str) -> HttpRequest:
    return HttpRequest(method="GET", url=url)


async def test_satisfies_transport_protocol() -> None:
    async with HttpxTransport() as t:
        assert isinstance(t, Transport)
        assert isinstance(t, AsyncTransport)


async def test_runs_on_the_current_backend(
    base: str, transport: HttpxTransport, anyio_backend: str
) -> None:
    assert sniffio.current_async_library() == anyio_backend
    response = await transport.send(get(f"{base}/hello"))
    assert response.status == 200


async def test_get_json_round_trip(base: str, transport: HttpxTransport) -> None:
    response = await transport.send(get(f"{base}/.well-known/x?a=1&b=%20"))
    assert response.status == 200
    assert response.media_type == "application/json"
    data = response.json_body()
    assert data["method"] == "GET"
    assert data["url"] == f"{base}/.well-known/x?a=1&b=%20"
    assert data["body"] == ""
    sent = {name.lower() for name, _ in data["headers"]}
    assert "content-type" not in sent


async def test_post_json_and_form(base: str, transport: HttpxTransport) -> None:
    as_json = await transport.send(HttpRequest.json("POST", f"{base}/credential", {"a": [1, 2]}))
    as_form = await transport.send(
        HttpRequest.form("POST", f"{base}/token", {"grant_type": "x y", "k": "é"})
    )
    body = as_json.json_body()
    assert body["method"] == "POST"
    assert HttpRequest(method="POST", url="https://x/", body=body["body"]).json_body() == {
        "a": [1, 2]
    }
    assert ["Content-Type", "application/json"] in body["headers"]
    form = as_form.json_body()
    assert HttpRequest(method="POST", url="https://x/", body=form["body"]).form_body() == {
        "grant_type": "x y",
        "k": "é",
    }
    assert ["Content-Type", "application/x-www-form-urlencoded"] in form["headers"]


async def test_headers_round_trip_with_repeats(base: str, transport: HttpxTransport) -> None:
    response = await transport.send(
        HttpRequest(
            method="POST",
            url=f"{base}/h",
            headers=[
                ("Authorization", "DPoP token-value"),
                ("DPoP", "a.b.c"),
                ("X-Multi", "first"),
                ("X-Multi", "second"),
            ],
            body=b"raw",
        )
    )
    seen = [tuple(pair) for pair in response.json_body()["headers"]]
    assert ("Authorization", "DPoP token-value") in seen
    assert ("DPoP", "a.b.c") in seen
    assert [v for k, v in seen if k == "X-Multi"] == ["first", "second"]
    # no Content-Type invented for a body sent without one; no compression asked for
    assert not [k for k, _ in seen if k.lower() == "content-type"]
    assert [v for k, v in seen if k.lower() == "accept-encoding"] == ["identity"]
    assert response.headers.get_all("x-out") == ["one", "two"]
    assert ("X-Out", "one") in response.headers.multi_items()  # names keep their case
    assert response.headers.get("cache-control") == "no-store"
    assert response.json_body()["body"] == "raw"


async def test_url_sent_exactly_as_given(base: str, transport: HttpxTransport) -> None:
    path = "/a%2Fb/%7Euser?x=%2F&y=%41"
    response = await transport.send(get(base + path))
    assert response.json_body()["url"] == base + path


async def test_error_statuses_are_returned_as_responses(
    base: str, transport: HttpxTransport
) -> None:
    response = await transport.send(get(f"{base}/status"))
    assert response.status == 400
    assert response.json_body() == {"error": "invalid_request"}


async def test_total_timeout(base: str) -> None:
    async with loopback(total_timeout=0.2) as t:
        with pytest.raises(TransportTimeout) as info:
            await t.send(get(f"{base}/slow?code={SECRET}"))
    assert SECRET not in str(info.value)
    assert f"{base}/slow" in str(info.value)
    assert info.value.__cause__ is None


async def test_total_timeout_covers_a_stalled_body(base: str) -> None:
    async with loopback(total_timeout=0.3) as t:
        with pytest.raises(TransportTimeout):
            await t.send(get(f"{base}/stall"))


async def test_total_timeout_covers_a_trickling_body(base: str) -> None:
    """No single read is slow, but the whole exchange is."""
    async with loopback(total_timeout=0.5) as t:
        with pytest.raises(TransportTimeout):
            await t.send(get(f"{base}/trickle"))


async def test_response_size_cap_with_content_length(base: str) -> None:
    async with loopback(max_response_size=1999) as t:
        with pytest.raises(ResponseTooLarge):
            await t.send(get(f"{base}/big/2000"))
    async with loopback(max_response_size=2000) as t:
        response = await t.send(get(f"{base}/big/2000"))
    assert response.body == b"x" * 2000


async def test_lying_content_length_is_too_large_without_reading(loop: BackgroundLoop) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\nabc"
    with raw_tcp_in_thread(loop, reply) as url:
        async with loopback(max_response_size=1000) as t:
            with pytest.raises(ResponseTooLarge):
                await t.send(get(url + "/"))


async def test_response_size_cap_while_streaming(base: str) -> None:
    """A chunked answer without Content-Length is cut off while streaming."""
    async with loopback(max_response_size=100_000) as t:
        with pytest.raises(ResponseTooLarge):
            await t.send(get(f"{base}/endless"))


async def test_compressed_answers_are_decoded_and_capped_decoded(base: str) -> None:
    async with loopback(max_response_size=10_000) as t:
        small = await t.send(get(f"{base}/gzip/10000"))
        assert small.body == b"0" * 10_000
        # ~50 KB on the wire, 50 MB decoded: refused at the cap
        with pytest.raises(ResponseTooLarge):
            await t.send(get(f"{base}/gzip/50000000"))
        with pytest.raises(TransportError) as truncated:
            await t.send(get(f"{base}/gzip/10000?truncate=1"))
        assert not isinstance(truncated.value, ResponseTooLarge)
        with pytest.raises(TransportError, match="malformed"):
            await t.send(get(f"{base}/brotli"))


async def test_decompression_stops_at_the_cap() -> None:
    """A 50 MB gzip bomb in one network chunk never becomes more than cap + 1 bytes."""
    bomb = gzip.compress(b"0" * 50_000_000)
    response = httpx.Response(
        200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(bomb)
    )
    tracemalloc.start()
    try:
        assert await _read_capped(response, 1000) is None
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000
    exact = httpx.Response(
        200, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(gzip.compress(b"ab"))
    )
    assert await _read_capped(exact, 2) == b"ab"
    empty = httpx.Response(204, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b""))
    assert await _read_capped(empty, 0) == b""


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_not_followed(base: str, routes: Routes, status: int) -> None:
    routes.followed.clear()
    async with loopback() as t:
        with pytest.raises(RedirectRefused) as info:
            await t.send(HttpRequest(method="POST", url=f"{base}/redirect/{status}"))
    assert SECRET not in str(info.value)
    assert str(status) in str(info.value)
    async with loopback(raise_on_redirect=False) as t:
        response = await t.send(get(f"{base}/redirect/{status}"))
    assert response.status == status
    assert response.headers.get("Location") == f"/target?code={SECRET}"
    assert response.body == b""
    assert routes.followed == []


def recording_client(seen: list[str]) -> httpx.AsyncClient:
    """A real httpx client whose request hook records every request it is about to send."""

    async def record(request: httpx.Request) -> None:
        seen.append(str(request.url))

    return httpx.AsyncClient(event_hooks={"request": [record]})


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/",
        "http://10.0.0.1/x",
        "ftp://example.com/",
        "http://localhost.evil/",
        "https://user:pw@example.com/",
    ],
)
async def test_insecure_url_refused_before_any_network_io(url: str) -> None:
    seen: list[str] = []
    async with (
        recording_client(seen) as client,
        HttpxTransport(client=client, allow_insecure_loopback=True) as t,
    ):
        with pytest.raises(InsecureUrlError):
            await t.send(get(url))
    assert seen == []


async def test_http_loopback_only_with_the_option(base: str) -> None:
    async with HttpxTransport() as strict:
        with pytest.raises(InsecureUrlError):
            await strict.send(get(base + "/"))
    async with HttpxTransport(allow_insecure_loopback=True) as lenient:
        assert (await lenient.send(get(base + "/"))).status == 200
        localhost = base.replace("127.0.0.1", "localhost")
        assert (await lenient.send(get(localhost + "/"))).status == 200


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_needs_no_option_and_uses_the_given_clients_tls(
    loop: BackgroundLoop, tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler_for_aiohttp(echo))
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_tls)
        await site.start()
        return int(runner.addresses[0][1])

    port = loop.run(start())
    url = f"https://127.0.0.1:{port}/x?code={SECRET}"
    try:
        async with (
            httpx.AsyncClient(verify=ssl.create_default_context(cafile=cert)) as client,
            HttpxTransport(client=client) as trusting,
        ):
            response = await trusting.send(get(url))
            assert response.json_body()["url"] == url
        # the transport's own client trusts only the public CAs
        async with HttpxTransport() as default:
            with pytest.raises(ConnectError) as info:
                await default.send(get(url))
        assert SECRET not in str(info.value)
    finally:
        loop.run(runner.cleanup())


async def test_connection_refused_is_connect_error(transport: HttpxTransport) -> None:
    with bound_socket() as sock:
        port = sock.getsockname()[1]
    # nothing listens on the port any more
    with pytest.raises(ConnectError) as info:
        await transport.send(get(f"http://127.0.0.1:{port}/x?code={SECRET}"))
    assert SECRET not in str(info.value)
    assert f"http://127.0.0.1:{port}/x" in str(info.value)
    assert info.value.__cause__ is None


async def test_truncated_body_is_transport_error(loop: BackgroundLoop) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\nabc"
    with raw_tcp_in_thread(loop, reply) as url:
        async with loopback() as t:
            with pytest.raises(TransportError) as info:
                await t.send(get(url + "/"))
    assert type(info.value) is TransportError


async def test_garbage_response_is_transport_error(loop: BackgroundLoop) -> None:
    with raw_tcp_in_thread(loop, b"this is not http\r\n\r\n") as url:
        async with loopback() as t:
            with pytest.raises(TransportError) as info:
                await t.send(get(url + "/"))
    assert type(info.value) is TransportError


URL = f"https://issuer.example/token?code={SECRET}"


class Failing(httpx.AsyncBaseTransport):
    """An httpx transport that fails every request with ``exc`` (conditions a loopback
    server cannot produce on demand: pool exhaustion, proxy failures, write errors)."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise self.exc


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (httpx.ConnectError(f"refused {URL}"), ConnectError),
        (httpx.ProxyError(f"proxy {URL}"), ConnectError),
        (httpx.ConnectTimeout(f"slow {URL}"), TransportTimeout),
        (httpx.ReadTimeout(f"slow {URL}"), TransportTimeout),
        (httpx.PoolTimeout(f"busy {URL}"), TransportTimeout),
        (httpx.WriteError(f"reset {URL}"), TransportError),
        (httpx.ReadError(f"reset {URL}"), TransportError),
        (httpx.RemoteProtocolError(f"odd {URL}"), TransportError),
        (httpx.LocalProtocolError(f"odd {URL}"), TransportError),
        (httpx.DecodingError(f"odd {URL}"), TransportError),
        (httpx.UnsupportedProtocol(f"odd {URL}"), TransportError),
    ],
)
async def test_httpx_exceptions_are_mapped(
    raised: Exception, expected: type[TransportError]
) -> None:
    async with (
        httpx.AsyncClient(transport=Failing(raised)) as client,
        HttpxTransport(client=client) as t,
    ):
        with pytest.raises(TransportError) as info:
            await t.send(HttpRequest(method="POST", url=URL))
    assert type(info.value) is expected
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert SECRET not in str(info.value)
    assert "https://issuer.example/token" in str(info.value)


async def test_unsendable_requests(base: str, transport: HttpxTransport) -> None:
    with pytest.raises(UsageError, match="ASCII") as info:
        await transport.send(
            HttpRequest(method="GET", url=f"{base}/?code={SECRET}", headers={"X-A": "caf\u00e9"})
        )
    assert SECRET not in str(info.value)
    with pytest.raises(TransportError):  # h11 refuses the name before anything is sent
        await transport.send(HttpRequest(method="GET", url=base, headers={"X A": "v"}))


@pytest.mark.parametrize(
    "url", ["https://exa\x00mple.com/", "https://xn--/", f"https://x/\x7f?code={SECRET}"]
)
async def test_invalid_url_is_transport_error(url: str, transport: HttpxTransport) -> None:
    with pytest.raises(TransportError, match="invalid request URL") as info:
        await transport.send(get(url))
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None


async def test_uses_a_given_client_and_leaves_it_open(base: str) -> None:
    seen: list[str] = []
    async with recording_client(seen) as client:
        t = HttpxTransport(client=client, allow_insecure_loopback=True)
        async with t:
            assert (await t.send(get(base + "/"))).status == 200
        assert seen == [base + "/"]
        assert not client.is_closed
        with pytest.raises(TransportError, match="closed"):
            await t.send(get(base + "/"))


async def test_given_client_settings_do_not_change_requests(base: str) -> None:
    """Requests go out exactly as given, with the transport's timeouts."""
    async with (
        httpx.AsyncClient(
            headers={"X-Client": "1"},
            cookies={"sid": "abc"},
            auth=("user", "password"),
            timeout=0.000001,
            base_url="http://example.com/elsewhere/",
        ) as client,
        HttpxTransport(client=client, allow_insecure_loopback=True) as t,
    ):
        response = await t.send(get(base + "/plain"))
    sent = {name.lower() for name, _ in response.json_body()["headers"]}
    assert response.json_body()["url"] == base + "/plain"
    assert not sent & {"x-client", "cookie", "authorization"}


async def test_owned_client_reused_then_closed(base: str) -> None:
    t = loopback()
    await t.send(get(base + "/"))
    client = t._client
    assert client is not None
    await t.send(get(base + "/"))
    assert t._client is client
    await t.aclose()
    assert client.is_closed
    await t.aclose()
    with pytest.raises(TransportError, match="closed"):
        await t.send(get(base + "/"))


async def test_no_cookies_kept(base: str, transport: HttpxTransport) -> None:
    first = await transport.send(get(f"{base}/cookie"))
    assert first.headers.get("Set-Cookie") == "sid=abc; Path=/"
    second = await transport.send(get(f"{base}/cookie"))
    assert second.json_body() == {"cookie": None}
    assert transport._client is not None and not transport._client.cookies


async def test_invalid_options() -> None:
    with pytest.raises(ValueError):
        HttpxTransport(total_timeout=0)
    with pytest.raises(ValueError):
        HttpxTransport(connect_timeout=-1)
    with pytest.raises(ValueError):
        HttpxTransport(max_response_size=-1)
    async with httpx.AsyncClient() as client:
        with pytest.raises(ValueError):
            HttpxTransport(client=client, limits=httpx.Limits(max_connections=1))


def test_repr_has_no_secrets() -> None:
    text = repr(HttpxTransport(allow_insecure_loopback=True, total_timeout=3))
    assert text.startswith("HttpxTransport(") and "total_timeout=3" in text
