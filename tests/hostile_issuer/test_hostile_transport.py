"""A hostile issuer over REAL HTTP on 127.0.0.1: redirects, huge bodies, slow answers.

The issuer is :class:`~tests.hostile_issuer.conftest.HostileIssuer` served by aiohttp; a few
paths are answered by raw aiohttp handlers instead (streamed bodies, dripping bytes, lying
``Content-Length``), which the framework-neutral handler cannot express. The wallet uses
:class:`AiohttpTransport` with a small total timeout and a small response size cap.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

import anyio
import pytest
from aiohttp import web

from oid4vci.errors import (
    InsecureUrlError,
    Oid4vciError,
    RedirectRefused,
    ResponseTooLarge,
    TransportTimeout,
)
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.models import CredentialOffer, build_credential_offer_uri, parse_credential_offer_json
from oid4vci.transports.aiohttp import AiohttpTransport, handler_for_aiohttp
from oid4vci.urls import insert_well_known
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from tests.hostile_issuer.conftest import HostileIssuer, json_response

# Generous for answers that should pass (a loaded CI machine), short where a timeout is the test.
TIMEOUT = 2.0
SHORT_TIMEOUT = 0.4
MAX_SIZE = 32 * 1024
RawHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Server:
    """A running hostile issuer: the fake, its base URL and the raw routes it overrides."""

    def __init__(self) -> None:
        self.fake = HostileIssuer()
        self.raw: dict[str, RawHandler] = {}
        self.release = anyio.Event()
        self.hits: dict[str, int] = {}
        self.base_url = ""

    def path(self, which: str) -> str:
        """The URL path of a well-known document or endpoint of this issuer."""
        if which.startswith("/"):
            return which
        return insert_well_known(self.base_url, which)[len(self.base_url) :]

    def offer(self, **kw: Any) -> CredentialOffer:
        return parse_credential_offer_json(self.fake.offer(**kw))

    def client(self, transport: AiohttpTransport) -> Oid4vciClient:
        return Oid4vciClient(transport, policy=WalletPolicy(allow_insecure_loopback=True))

    async def slow(self, request: HttpRequest) -> HttpResponse | None:
        """An ``override`` that never answers in time (until the test ends)."""
        with anyio.move_on_after(10):
            await self.release.wait()
        return json_response(200, {})


@asynccontextmanager
async def hostile_server() -> AsyncIterator[Server]:
    server = Server()
    fallback = handler_for_aiohttp(lambda r: server.fake.handle(r))

    async def dispatch(request: web.Request) -> web.StreamResponse:
        server.hits[request.path] = server.hits.get(request.path, 0) + 1
        raw = server.raw.get(request.path)
        if raw is not None:
            return await raw(request)
        return await fallback(request)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = int(runner.addresses[0][1])
        server.base_url = f"http://127.0.0.1:{port}"
        server.fake.issuer = server.base_url
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with hostile_server() as running:
        yield running


def transport(**kw: Any) -> AiohttpTransport:
    args: dict[str, Any] = {
        "total_timeout": TIMEOUT,
        "max_response_size": MAX_SIZE,
        "allow_insecure_loopback": True,
    }
    args.update(kw)
    return AiohttpTransport(**args)


async def run_flow(server: Server, **transport_kw: Any) -> Any:
    async with transport(**transport_kw) as tr:
        with anyio.fail_after(10):
            return await server.client(tr).accept_offer(server.offer())


# --- sanity: the same server and transport settings work when the issuer behaves ------------


async def test_well_behaved_issuer_passes(server: Server) -> None:
    result = await run_flow(server)
    assert len(result.credentials) == 1 and result.credentials[0].verified


# --- redirects ------------------------------------------------------------------------------


def redirect(status: int, target: str) -> RawHandler:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": target})

    return answer


STEPS = {
    "metadata": "openid-credential-issuer",
    "as_metadata": "oauth-authorization-server",
    "token": "/token",
    "nonce": "/nonce",
    "credential": "/credential",
    "jwt_vc_issuer": "jwt-vc-issuer",
}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("step", ["metadata", "as_metadata", "token", "credential"])
async def test_redirect_on_api_call_is_refused(server: Server, step: str, status: int) -> None:
    server.raw[server.path(STEPS[step])] = redirect(status, f"{server.base_url}/elsewhere")
    with pytest.raises(RedirectRefused):
        await run_flow(server)
    assert server.hits.get("/elsewhere", 0) == 0


@pytest.mark.parametrize("step", ["nonce", "jwt_vc_issuer"])
async def test_redirect_on_nonce_and_key_lookup(server: Server, step: str) -> None:
    server.raw[server.path(STEPS[step])] = redirect(302, f"{server.base_url}/elsewhere")
    with pytest.raises(RedirectRefused):
        await run_flow(server)
    assert server.hits.get("/elsewhere", 0) == 0


@pytest.mark.parametrize("step", ["metadata", "token", "credential"])
async def test_wallet_refuses_redirect_even_when_transport_passes_it(
    server: Server, step: str
) -> None:
    """Defense in depth: a transport configured to hand 3xx back still gets no redirect
    followed; the wallet's own check refuses it."""
    server.raw[server.path(STEPS[step])] = redirect(302, f"{server.base_url}/elsewhere")
    with pytest.raises(RedirectRefused):
        await run_flow(server, raise_on_redirect=False)
    assert server.hits.get("/elsewhere", 0) == 0


async def test_redirect_on_offer_by_reference(server: Server) -> None:
    server.raw["/offer"] = redirect(302, f"{server.base_url}/elsewhere")
    link = build_credential_offer_uri(None, offer_uri=f"{server.base_url}/offer")
    async with transport() as tr:
        with pytest.raises(RedirectRefused):
            await server.client(tr).parse_offer(link)
    assert server.hits.get("/elsewhere", 0) == 0


# --- huge responses -------------------------------------------------------------------------


def huge_declared(size: int) -> RawHandler:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b" " * size, content_type="application/json")

    return answer


def huge_streamed(size: int) -> RawHandler:
    """Chunked transfer encoding: no Content-Length to refuse up front."""

    async def answer(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        chunk = b"[" * 4096
        sent = 0
        try:
            while sent < size:
                await resp.write(chunk)
                sent += len(chunk)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            pass
        return resp

    return answer


def lying_length() -> RawHandler:
    """Declares a small body, sends a big one (the connection is cut by the client)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "application/json", "Content-Length": "10"}
        )
        await resp.prepare(request)
        with suppress(ConnectionError, RuntimeError):
            await resp.write(b"{" * (MAX_SIZE * 4))
        return resp

    return answer


@pytest.mark.parametrize("make", [huge_declared, huge_streamed], ids=["declared", "streamed"])
@pytest.mark.parametrize("step", ["metadata", "as_metadata", "token", "nonce", "credential"])
async def test_huge_response_is_cut_off(
    server: Server, step: str, make: Callable[[int], RawHandler]
) -> None:
    server.raw[server.path(STEPS[step])] = make(MAX_SIZE * 64)
    with pytest.raises(ResponseTooLarge):
        await run_flow(server)


async def test_huge_offer_by_reference(server: Server) -> None:
    server.raw["/offer"] = huge_streamed(MAX_SIZE * 64)
    link = build_credential_offer_uri(None, offer_uri=f"{server.base_url}/offer")
    async with transport() as tr:
        with pytest.raises(ResponseTooLarge):
            await server.client(tr).parse_offer(link)


async def test_huge_issuer_key_document(server: Server) -> None:
    server.raw[server.path("jwt-vc-issuer")] = huge_declared(MAX_SIZE + 1)
    with pytest.raises(ResponseTooLarge):
        await run_flow(server)


async def test_body_longer_than_declared_is_an_error(server: Server) -> None:
    """A body longer than its Content-Length is not silently accepted."""
    server.raw[server.path("openid-credential-issuer")] = lying_length()
    with pytest.raises(Oid4vciError):
        await run_flow(server)


# --- slow responses -------------------------------------------------------------------------


def drip(total_bytes: int, pause: float) -> RawHandler:
    """Headers at once, then one byte every ``pause`` seconds."""

    async def answer(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(
            headers={"Content-Type": "application/json", "Content-Length": str(total_bytes)}
        )
        await resp.prepare(request)
        try:
            for _ in range(total_bytes):
                await resp.write(b" ")
                await anyio.sleep(pause)
        except (ConnectionError, RuntimeError):
            pass
        return resp

    return answer


@pytest.mark.parametrize(
    "step", ["metadata", "as_metadata", "token", "nonce", "credential", "jwt_vc_issuer"]
)
async def test_slow_answer_times_out(server: Server, step: str) -> None:
    path = server.path(STEPS[step])

    async def slow_there(request: HttpRequest) -> HttpResponse | None:
        if request.url.split("?")[0].endswith(path):
            return await server.slow(request)
        return None

    server.fake.override = slow_there
    started = anyio.current_time()
    with pytest.raises(TransportTimeout):
        await run_flow(server, total_timeout=SHORT_TIMEOUT)
    assert anyio.current_time() - started < 5


@pytest.mark.parametrize("step", ["metadata", "token", "credential"])
async def test_dripping_body_times_out(server: Server, step: str) -> None:
    """Each byte arrives quickly enough to keep a read timeout happy; the total one fires."""
    server.raw[server.path(STEPS[step])] = drip(200, 0.05)
    started = anyio.current_time()
    with pytest.raises(TransportTimeout):
        await run_flow(server, total_timeout=SHORT_TIMEOUT)
    assert anyio.current_time() - started < 5


async def test_slow_offer_by_reference(server: Server) -> None:
    server.raw["/offer"] = drip(100, 0.05)
    link = build_credential_offer_uri(None, offer_uri=f"{server.base_url}/offer")
    async with transport(total_timeout=SHORT_TIMEOUT) as tr:
        with pytest.raises(TransportTimeout):
            await server.client(tr).parse_offer(link)


@pytest.mark.parametrize("answer", ["drip", "huge", "redirect"])
async def test_transport_errors_do_not_echo_the_query(server: Server, answer: str) -> None:
    """An offer URI may carry a code in its query: transport errors never repeat it."""
    server.raw["/offer"] = {
        "drip": drip(100, 0.05),
        "huge": huge_streamed(MAX_SIZE * 4),
        "redirect": redirect(302, f"{server.base_url}/elsewhere?code=query-secret-2"),
    }[answer]
    link = build_credential_offer_uri(
        None, offer_uri=f"{server.base_url}/offer?code=query-secret-1"
    )
    async with transport() as tr:
        with pytest.raises(Oid4vciError) as info:
            await server.client(tr).parse_offer(link)
    for text in (str(info.value), repr(info.value), repr(info.value.args)):
        assert "query-secret" not in text
    assert info.value.__cause__ is None  # aiohttp's own exception (with the URL) is not chained


# --- http endpoints to non-loopback hosts, over the real transport --------------------------


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("issuer", "credential_endpoint"),
        ("issuer", "nonce_endpoint"),
        ("as", "token_endpoint"),
    ],
)
async def test_http_endpoint_on_other_host_never_contacted(
    server: Server, where: str, key: str
) -> None:
    target = "http://issuer.example/" + key
    overrides = server.fake.metadata_overrides if where == "issuer" else server.fake.as_overrides
    overrides[key] = target
    with pytest.raises(InsecureUrlError):
        await run_flow(server)
    # nothing at all was spent at the real issuer: the pre-authorized code is still unused
    assert server.fake.count("/token") == 0
    assert server.fake.pre_auth_used is False


async def test_http_offer_uri_on_other_host_never_fetched() -> None:
    link = build_credential_offer_uri(None, offer_uri="http://issuer.example/offer")
    async with transport() as tr:
        client = Oid4vciClient(tr, policy=WalletPolicy(allow_insecure_loopback=True))
        with pytest.raises(InsecureUrlError):
            await client.parse_offer(link)


async def test_loopback_needs_explicit_opt_in(server: Server) -> None:
    """Even 127.0.0.1 is refused unless allowed, and the refusal names the switch."""
    async with transport(allow_insecure_loopback=False) as tr:
        client = Oid4vciClient(tr)  # default policy: https only
        with pytest.raises(InsecureUrlError, match="allow_insecure_loopback=True"):
            await client.accept_offer(server.offer())
        # the policy's flag alone does not open the transport
        with pytest.raises(InsecureUrlError, match="allow_insecure_loopback"):
            await server.client(tr).accept_offer(server.offer())
    assert server.hits == {}


async def test_the_transports_loopback_switch_is_enough(server: Server) -> None:
    """One switch: a transport that allows loopback http makes the client allow it too."""
    async with transport() as tr:
        client = Oid4vciClient(tr)  # no policy given
        assert client.policy.allow_insecure_loopback
        result = await client.accept_offer(server.offer())
    assert len(result.credentials) == 1
