"""Whole flows against the real issuer (``oid4vci.issuer.demo``), in memory and over aiohttp."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from oid4vci.http import HttpRequest
from oid4vci.issuer.demo import DemoIssuer, build_demo_issuer
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.versions import SpecVersion
from oid4vci.wallet import FlowState, IssuanceFlow, Oid4vciClient, WalletPolicy
from tests.conftest import FakeClock

ISSUER = "https://issuer.example"
REDIRECT_URI = "https://wallet.example.org/cb"


def setup(clock: FakeClock, **kw: Any) -> tuple[DemoIssuer, InMemoryTransport, Oid4vciClient]:
    demo = build_demo_issuer(ISSUER, clock=clock, **kw)
    transport = InMemoryTransport(routes={ISSUER: demo.handle})
    return demo, transport, Oid4vciClient(transport, client_id="wallet-app", clock=clock)


async def browser_login(demo: DemoIssuer, authorization_url: str) -> str:
    """Open the authorization URL, post the login form, follow the 303: the callback URL."""
    page = await demo.handle(HttpRequest(method="GET", url=authorization_url))
    assert page.status == 200
    match = re.search(r"name='handle' value='([^']+)'", page.body.decode())
    assert match is not None
    action = re.search(r"form method='post' action='([^']+)'", page.body.decode())
    assert action is not None
    user, password = demo.login.split(":")
    answer = await demo.handle(
        HttpRequest.form(
            "POST",
            action.group(1),
            {"handle": match.group(1), "username": user, "password": password},
        )
    )
    assert answer.status == 303
    location = answer.headers.get("Location")
    assert location is not None and location.startswith(REDIRECT_URI)
    return location


async def test_pre_authorized(clock: FakeClock) -> None:
    demo, _, client = setup(clock)
    offer = await client.parse_offer(demo.offer_links["pre_auth"])
    result = await client.accept_offer(offer)
    assert result.state is FlowState.DONE
    assert result.spec_version is SpecVersion.V1
    (cred,) = result.credentials
    assert cred.verified and cred.claims["given_name"] == "Alice"
    assert cred.configuration_id == demo.configuration_id
    await client.notify(result, "credential_accepted")


async def test_pre_authorized_with_tx_code(clock: FakeClock) -> None:
    demo, _, client = setup(clock)
    offer = await client.parse_offer(demo.offer_links["pre_auth_tx_code"])
    result = await client.accept_offer(offer, tx_code=demo.tx_code)
    assert len(result.credentials) == 1


@pytest.mark.parametrize("count", [3, 10])
async def test_batches(count: int, clock: FakeClock) -> None:
    demo, _, client = setup(clock)
    offer = await client.parse_offer(demo.offer_links["pre_auth"])
    result = await client.accept_offer(offer, count=count)
    assert len(result.credentials) == count
    keys = {c.holder_key.public_jwk["x"] for c in result.credentials if c.holder_key}
    assert len(keys) == count


@pytest.mark.parametrize("par", ["always", "never"])
async def test_authorization_code(par: str, clock: FakeClock) -> None:
    demo, transport, client = setup(clock)
    client = Oid4vciClient(
        transport,
        client_id="wallet-app",
        clock=clock,
        policy=WalletPolicy(par=par),  # type: ignore[arg-type]
    )
    offer = await client.parse_offer(demo.offer_links["auth_code"])
    url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
    q = urlsplit(url).query
    assert ("request_uri=" in q) is (par == "always")
    callback = await browser_login(demo, url)
    # the browser hop may end in another process
    restored = IssuanceFlow.from_json(pending.to_json(), clock=clock)
    fresh = Oid4vciClient(transport, client_id="wallet-app", clock=clock)
    result = await fresh.claim(restored, callback, count=2)
    assert result.flow == "authorization_code"
    assert len(result.credentials) == 2 and all(c.verified for c in result.credentials)


async def test_authorization_code_with_scope(clock: FakeClock) -> None:
    demo, transport, _ = setup(clock)
    client = Oid4vciClient(
        transport,
        client_id="wallet-app",
        clock=clock,
        policy=WalletPolicy(use_authorization_details=False),
    )
    offer = await client.parse_offer(demo.offer_links["auth_code"])
    url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
    result = await client.claim(pending, await browser_login(demo, url))
    assert len(result.credentials) == 1


@pytest.mark.parametrize(
    "version", [SpecVersion.DRAFT_13, SpecVersion.DRAFT_14, SpecVersion.DRAFT_15]
)
async def test_draft_versions(version: SpecVersion, clock: FakeClock) -> None:
    demo, _, client = setup(clock, published_version=version)
    offer = await client.parse_offer(demo.offer_links["pre_auth"])
    result = await client.accept_offer(offer, count=2)
    assert len(result.credentials) == 2


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_over_aiohttp_on_loopback(anyio_backend: str) -> None:
    from oid4vci.transports.aiohttp import AiohttpTransport, serve

    holder: dict[str, DemoIssuer] = {}

    async def handler(request: HttpRequest) -> Any:
        return await holder["demo"].handle(request)

    async with serve(handler) as app:
        holder["demo"] = build_demo_issuer(app.base_url)
        policy = WalletPolicy(allow_insecure_loopback=True)
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            client = Oid4vciClient(transport, policy=policy, client_id="wallet-app")
            offer = await client.parse_offer(holder["demo"].offer_links["pre_auth_tx_code"])
            result = await client.accept_offer(offer, tx_code=holder["demo"].tx_code, count=3)
    assert len(result.credentials) == 3 and all(c.verified for c in result.credentials)
