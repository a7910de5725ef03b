"""The ASGI adapter: the protocol rules called directly, then real servers (uvicorn, Starlette).

The direct calls drive the application through its ASGI interface with hand-built scopes
(what a server would send), which is how URL building, the body limit and lifespan are pinned
down exactly. The server tests run the demo issuer under uvicorn, bare and mounted in
Starlette (at the root and under a prefix), with the library's wallet and the ``oid4vci``
command completing flows against it over real HTTP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, MutableMapping, Sequence
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import build_demo_issuer
from oid4vci.issuer.demo import DemoIssuer
from oid4vci.transports.asgi import DEFAULT_MAX_BODY_SIZE, Scope, asgi_app
from oid4vci.transports.httpx import HttpxTransport
from oid4vci.versions import SpecVersion
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from tests.e2e.conftest import CLIENT_ID, REDIRECT_URI, check_credentials, json_line, run_cli
from tests.e2e.test_wallet_httpx_trio import log_in
from tests.transports.servers import bound_socket, uvicorn_in_thread

SECRET = "SECRET-CODE-789"


# --- the ASGI protocol, called directly ------------------------------------------------------


class Recorder:
    """A handler that records requests and answers with a fixed response (or raises)."""

    def __init__(self, response: HttpResponse | None = None, error: Exception | None = None):
        self.requests: list[HttpRequest] = []
        self.response = response or HttpResponse.json(200, {"ok": True})
        self.error = error

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        if self.error is not None:
            raise self.error
        return self.response


class Exchange:
    """What the application sent back for one scope."""

    def __init__(self) -> None:
        self.messages: list[MutableMapping[str, Any]] = []
        self.received = 0

    @property
    def status(self) -> int:
        start = self.messages[0]
        assert start["type"] == "http.response.start"
        return int(start["status"])

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(bytes(k), bytes(v)) for k, v in self.messages[0]["headers"]]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.messages[1:])


def http_scope(
    path: str = "/",
    *,
    method: str = "GET",
    headers: Sequence[tuple[bytes, bytes]] = ((b"host", b"issuer.example"),),
    **extra: Any,
) -> Scope:
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": list(headers),
        "server": ("10.0.0.5", 8443),
    }
    scope.update(extra)
    return scope


async def call(
    app: Any, scope: Scope, body: Sequence[bytes] = (b"",), *, disconnect: bool = False
) -> Exchange:
    exchange = Exchange()
    messages: list[MutableMapping[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(body) - 1}
        for i, chunk in enumerate(body)
    ]
    if disconnect:
        messages = [*messages[:-1], {"type": "http.disconnect"}]

    async def receive() -> MutableMapping[str, Any]:
        exchange.received += 1
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        exchange.messages.append(message)

    await app(scope, receive, send)
    return exchange


@pytest.mark.parametrize(
    ("scope_changes", "url"),
    [
        ({}, "https://issuer.example/credential"),
        ({"query_string": b"a=1&b=%20"}, "https://issuer.example/credential?a=1&b=%20"),
        ({"scheme": "http"}, "http://issuer.example/credential"),
        # Starlette's Mount and current uvicorn: path and raw_path include root_path
        (
            {"root_path": "/t", "path": "/t/credential", "raw_path": b"/t/credential"},
            "https://issuer.example/t/credential",
        ),
        # older servers: path below root_path
        ({"root_path": "/t"}, "https://issuer.example/t/credential"),
        ({"root_path": "/t", "raw_path": None}, "https://issuer.example/t/credential"),
        ({"root_path": "/t/"}, "https://issuer.example/t/credential"),
    ],
)
async def test_url_from_scope(scope_changes: dict[str, Any], url: str) -> None:
    handler = Recorder()
    scope = http_scope("/credential")
    scope.update(scope_changes)
    exchange = await call(asgi_app(handler), scope)
    assert exchange.status == 200
    assert handler.requests[0].url == url


async def test_client_address_from_scope() -> None:
    handler = Recorder()
    await call(asgi_app(handler), http_scope("/nonce", client=("192.0.2.7", 50123)))
    await call(asgi_app(handler), http_scope("/nonce"))  # the server gave no client
    assert [r.client_address for r in handler.requests] == ["192.0.2.7", None]


async def test_url_keeps_the_raw_path() -> None:
    handler = Recorder()
    scope = http_scope("/a/b/~user", raw_path=b"/a%2Fb/%7Euser", query_string=b"x=%2F")
    await call(asgi_app(handler), scope)
    assert handler.requests[0].url == "https://issuer.example/a%2Fb/%7Euser?x=%2F"
    # without raw_path the decoded path is escaped again
    await call(asgi_app(handler), http_scope("/caf\u00e9 x", raw_path=None))
    assert handler.requests[1].url == "https://issuer.example/caf%C3%A9%20x"


async def test_url_host_header_and_server_address() -> None:
    handler = Recorder()
    app = asgi_app(handler)
    await call(app, http_scope("/x", headers=[(b"host", b"tenant1.issuer.example:8443")]))
    await call(app, http_scope("/x", headers=[]))
    await call(app, http_scope("/x", headers=[], server=("::1", 443)))
    await call(app, http_scope("/x", headers=[], server=("127.0.0.1", 80), scheme="http"))
    assert [r.url for r in handler.requests] == [
        "https://tenant1.issuer.example:8443/x",
        "https://10.0.0.5:8443/x",
        "https://[::1]/x",
        "http://127.0.0.1/x",
    ]


@pytest.mark.parametrize("host", [b"evil.example/path?", b"a b", b"evil.example@x", b"-bad-", b""])
async def test_malformed_host_is_400(host: bytes) -> None:
    handler = Recorder()
    exchange = await call(asgi_app(handler), http_scope(headers=[(b"host", host)]))
    assert exchange.status == 400
    assert HttpResponse(status=400, body=exchange.body).json_body()["error"] == "invalid_request"
    assert handler.requests == []


async def test_no_host_at_all_is_400() -> None:
    handler = Recorder()
    exchange = await call(asgi_app(handler), http_scope(headers=[], server=None))
    assert exchange.status == 400
    assert handler.requests == []


@pytest.mark.parametrize(
    ("public_url", "url"),
    [
        ("https://issuer.example.com", "https://issuer.example.com/t/credential?q=1"),
        ("https://issuer.example.com/", "https://issuer.example.com/t/credential?q=1"),
        ("https://example.com:8443/base/", "https://example.com:8443/base/t/credential?q=1"),
    ],
)
async def test_public_url_replaces_scheme_and_host(public_url: str, url: str) -> None:
    handler = Recorder()
    scope = http_scope(
        "/t/credential",
        scheme="http",
        headers=[(b"host", b"10.1.2.3:8000")],
        root_path="/t",
        query_string=b"q=1",
    )
    await call(asgi_app(handler, public_url=public_url), scope)
    assert handler.requests[0].url == url


@pytest.mark.parametrize(
    "public_url",
    [
        "issuer.example.com",
        "ftp://issuer.example.com",
        "https://x/?a=1",
        "https://u@x/",
        "https://x:99999",
    ],
)
def test_bad_public_url_refused(public_url: str) -> None:
    with pytest.raises(ValueError, match="public_url"):
        asgi_app(Recorder(), public_url=public_url)


def test_negative_body_limit_refused() -> None:
    with pytest.raises(ValueError):
        asgi_app(Recorder(), max_body_size=-1)


async def test_request_conversion_keeps_repeats() -> None:
    handler = Recorder()
    scope = http_scope(
        "/credential",
        method="POST",
        headers=[
            (b"host", b"issuer.example"),
            (b"content-type", b"application/json"),
            (b"authorization", f"DPoP {SECRET}".encode()),
            (b"x-multi", b"1"),
            (b"x-multi", b"2"),
        ],
    )
    await call(asgi_app(handler), scope, [b'{"a":', b"1}"])
    [seen] = handler.requests
    assert seen.method == "POST"
    assert seen.body == b'{"a":1}'
    assert seen.json_body() == {"a": 1}
    assert seen.headers.get("Authorization") == f"DPoP {SECRET}"
    assert seen.headers.get_all("X-Multi") == ["1", "2"]
    assert seen.media_type == "application/json"


async def test_response_conversion_keeps_repeats_and_sets_framing() -> None:
    handler = Recorder(
        HttpResponse(
            status=201,
            headers=[
                ("Content-Type", "application/jwt"),
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"),
                ("Content-Length", "99999"),  # wrong framing from a handler is replaced
                ("Transfer-Encoding", "chunked"),
            ],
            body=b"eyJ.x.y",
        )
    )
    exchange = await call(asgi_app(handler), http_scope())
    assert exchange.status == 201
    assert exchange.headers == [
        (b"content-type", b"application/jwt"),
        (b"set-cookie", b"a=1"),
        (b"set-cookie", b"b=2"),
        (b"content-length", b"7"),
    ]
    assert exchange.body == b"eyJ.x.y"


async def test_declared_body_over_the_limit_is_413_without_reading() -> None:
    handler = Recorder()
    scope = http_scope(method="POST", headers=[(b"host", b"x"), (b"content-length", b"101")])
    exchange = await call(asgi_app(handler, max_body_size=100), scope, [b"x" * 101])
    assert exchange.status == 413
    assert exchange.received == 0
    assert handler.requests == []
    assert HttpResponse(status=413, body=exchange.body).json_body() == {
        "error": "invalid_request",
        "error_description": "request body too large",
    }


async def test_streamed_body_over_the_limit_is_413() -> None:
    handler = Recorder()
    app = asgi_app(handler, max_body_size=100)
    exchange = await call(app, http_scope(method="POST"), [b"x" * 60, b"x" * 41, b"never read"])
    assert exchange.status == 413
    assert exchange.received == 2
    assert handler.requests == []
    exactly = await call(app, http_scope(method="POST"), [b"x" * 60, b"x" * 40])
    assert exactly.status == 200
    assert handler.requests[0].body == b"x" * 100


def test_default_body_limit() -> None:
    assert DEFAULT_MAX_BODY_SIZE == 1024 * 1024


async def test_disconnect_while_reading_the_body() -> None:
    handler = Recorder()
    exchange = await call(
        asgi_app(handler), http_scope(method="POST"), [b"part", b"rest"], disconnect=True
    )
    assert exchange.messages == []
    assert handler.requests == []


@pytest.mark.parametrize(
    "handler",
    [
        Recorder(error=KeyError(SECRET)),
        Recorder(response="not a response"),  # type: ignore[arg-type]
        Recorder(HttpResponse(status=200, headers={"X-Bad": "caf\u00e9\u2603"})),
    ],
)
async def test_handler_failure_is_a_bare_500(
    handler: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    scope = http_scope("/credential", query_string=f"code={SECRET}".encode())
    with caplog.at_level(logging.ERROR, logger="oid4vci.transports.asgi"):
        exchange = await call(asgi_app(handler), scope)
    assert exchange.status == 500
    assert HttpResponse(status=500, body=exchange.body).json_body() == {"error": "server_error"}
    assert "/credential" in caplog.text
    assert SECRET not in caplog.text


async def test_lifespan() -> None:
    app = asgi_app(Recorder())
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return incoming.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


async def test_websocket_refused() -> None:
    handler = Recorder()
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await asgi_app(handler)({"type": "websocket", "path": "/"}, receive, send)
    assert [m["type"] for m in sent] == ["websocket.close"]
    assert handler.requests == []


# --- real servers ----------------------------------------------------------------------------


def demo_at(base_url: str, version: SpecVersion = SpecVersion.V1) -> DemoIssuer:
    return build_demo_issuer(base_url, published_version=version)


@pytest.fixture(scope="module")
def under_uvicorn() -> Iterator[DemoIssuer]:
    """The demo issuer as a bare ASGI app under uvicorn (lifespan on), 2 KiB body limit.

    (A credential request with two key proofs carrying 55-character stateless ``c_nonce``
    values is about 1,040 bytes.)
    """
    sock = bound_socket()
    demo = demo_at(f"http://127.0.0.1:{sock.getsockname()[1]}")
    with uvicorn_in_thread(asgi_app(demo.issuer.handle, max_body_size=2048), sock):
        yield demo


async def pre_authorized_flow(demo: DemoIssuer) -> None:
    """The wallet over HttpxTransport completes a pre-authorized flow with a tx_code."""
    async with HttpxTransport(allow_insecure_loopback=True) as transport:
        client = Oid4vciClient(transport, policy=WalletPolicy(allow_insecure_loopback=True))
        result = await client.accept_offer(
            await client.parse_offer(demo.offer_links["pre_auth_tx_code"]),
            tx_code=demo.tx_code,
            count=2,
        )
    assert result.flow == "pre-authorized_code"
    check_credentials(
        result.credentials,
        issuer_keys=[dict(demo.config.credential_signer.public_jwk)],
        version=demo.config.published_version,
        count=2,
        clock=time.time,
        issuer=demo.credential_issuer,
    )


async def test_wallet_against_uvicorn(under_uvicorn: DemoIssuer) -> None:
    await pre_authorized_flow(under_uvicorn)


async def test_body_limit_under_uvicorn(under_uvicorn: DemoIssuer) -> None:
    async with HttpxTransport(allow_insecure_loopback=True) as transport:
        response = await transport.send(
            HttpRequest.form(
                "POST", f"{under_uvicorn.credential_issuer}/token", {"pad": "x" * 4000}
            )
        )
        metadata = await transport.send(
            HttpRequest(
                method="GET",
                url=f"{under_uvicorn.credential_issuer}/.well-known/openid-credential-issuer",
            )
        )
    assert response.status == 413
    assert response.json_body()["error"] == "invalid_request"
    assert metadata.status == 200
    assert metadata.json_body()["credential_issuer"] == under_uvicorn.credential_issuer


async def health(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


@pytest.fixture(scope="module")
def in_starlette_at_root() -> Iterator[DemoIssuer]:
    """The issuer mounted at ``/`` in a Starlette app that has a route of its own."""
    sock = bound_socket()
    demo = demo_at(f"http://127.0.0.1:{sock.getsockname()[1]}")
    app = Starlette(routes=[Route("/health", health), Mount("/", app=asgi_app(demo.issuer.handle))])
    with uvicorn_in_thread(app, sock):
        yield demo


@pytest.fixture(scope="module")
def in_starlette_under_prefix() -> Iterator[DemoIssuer]:
    """An issuer whose identifier has a path, mounted under that prefix in Starlette.

    1.0 metadata lives at ``/.well-known/openid-credential-issuer/tenant`` (the well-known
    segment goes before the path), so ``/.well-known`` is mounted too.
    """
    sock = bound_socket()
    demo = demo_at(f"http://127.0.0.1:{sock.getsockname()[1]}/tenant")
    issuer_app = asgi_app(demo.issuer.handle)
    app = Starlette(
        routes=[
            Route("/health", health),
            Mount("/tenant", app=issuer_app),
            Mount("/.well-known", app=issuer_app),
        ]
    )
    with uvicorn_in_thread(app, sock):
        yield demo


async def test_wallet_against_starlette_mount_at_root(in_starlette_at_root: DemoIssuer) -> None:
    await pre_authorized_flow(in_starlette_at_root)
    async with HttpxTransport(allow_insecure_loopback=True) as transport:
        own = await transport.send(
            HttpRequest(method="GET", url=f"{in_starlette_at_root.credential_issuer}/health")
        )
    assert own.body == b"ok"


async def test_wallet_against_starlette_mount_under_prefix(
    in_starlette_under_prefix: DemoIssuer,
) -> None:
    assert in_starlette_under_prefix.credential_issuer.endswith("/tenant")
    await pre_authorized_flow(in_starlette_under_prefix)


async def test_code_flow_against_starlette_mount_under_prefix(
    in_starlette_under_prefix: DemoIssuer,
) -> None:
    """The login page, its form post and the redirect back all pass through the mount."""
    demo = in_starlette_under_prefix
    async with HttpxTransport(allow_insecure_loopback=True) as transport:
        client = Oid4vciClient(
            transport, client_id=CLIENT_ID, policy=WalletPolicy(allow_insecure_loopback=True)
        )
        offer = await client.parse_offer(demo.offer_links["auth_code"])
        url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
        assert url.startswith(demo.credential_issuer + "/authorize?")
        result = await client.claim(pending, await log_in(url, demo.login))
    assert result.flow == "authorization_code"
    assert [c.verified for c in result.credentials] == [True]
    assert result.credentials[0].claims["given_name"] == "Alice"


def test_cli_receive_against_starlette_mount(in_starlette_under_prefix: DemoIssuer) -> None:
    demo = in_starlette_under_prefix
    done = run_cli(
        "receive", demo.offer_links["pre_auth_tx_code"], "--tx-code", demo.tx_code, "--json"
    )
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    data = json_line(done.stdout)
    assert done.returncode == 0, data
    assert data["ok"] is True and data["flow"] == "pre_auth"
    assert [c["verified"] for c in data["credentials"]] == [True]
    assert data["credentials"][0]["claims"]["iss"] == demo.credential_issuer


@pytest.mark.parametrize("method", ["get", "pOsT", "GET POST", "", "G\u00c9T"])
async def test_a_method_that_is_no_upper_case_token_is_refused(method: str) -> None:
    """RFC 9110 §9.1: methods are case-sensitive. ``get`` used to reach the issuer as GET
    (and ``pOsT /nonce`` minted a nonce); the aiohttp adapter refuses it, so does this one."""
    handler = Recorder()
    exchange = await call(asgi_app(handler), http_scope("/nonce", method=method))
    assert exchange.status == 400
    assert handler.requests == []
