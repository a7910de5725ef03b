"""The callback listener of ``oid4vci receive`` waits for the answer to *its* authorization
request: a stray or forged redirect to ``/callback`` (another ``state``, another RFC 9207
``iss``) gets 400 and the wait goes on, where it used to end the login."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
import anyio
import pytest

from oid4vci.cli.receive import wait_for_callback
from oid4vci.models import parse_credential_offer_json
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from tests.conftest import FakeClock
from tests.wallet.fakes import CLIENT_ID, REDIRECT_URI, FakeIssuer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the listener is an aiohttp server


async def test_a_forged_callback_does_not_end_the_wait() -> None:
    urls: list[str] = []
    listening = anyio.Event()

    async def authorize(redirect_uri: str) -> str:
        urls.append(redirect_uri)
        listening.set()
        return "https://as.example/authorize"

    async def browser() -> list[int]:
        await listening.wait()
        statuses = []
        async with aiohttp.ClientSession() as session:
            for state in ("forged", "good"):
                async with session.get(f"{urls[0]}?code=c&state={state}") as response:
                    statuses.append(response.status)
        return statuses

    seen: list[list[int]] = []
    async with anyio.create_task_group() as group:

        async def run_browser() -> None:
            seen.append(await browser())

        group.start_soon(run_browser)
        callback = await wait_for_callback(
            authorize, wait_seconds=10, accept=lambda url: "state=good" in url
        )
    assert seen == [[400, 200]]
    assert dict(parse_qsl(urlsplit(callback).query))["state"] == "good"


async def test_is_own_callback(clock: FakeClock) -> None:
    fake = FakeIssuer()
    fake.clock = clock
    client = Oid4vciClient(
        fake.transport(), policy=WalletPolicy(), client_id=CLIENT_ID, clock=clock
    )
    offer = parse_credential_offer_json(fake.offer(pre_authorized=False))
    url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
    callback = fake.approve(url)
    params = dict(parse_qsl(urlsplit(callback).query))
    assert pending.is_own_callback(callback)
    forged = {**params, "state": "forged"}
    assert not pending.is_own_callback(f"{REDIRECT_URI}?{urlencode(forged)}")
    other_iss = {**params, "iss": "https://evil.example"}
    assert not pending.is_own_callback(f"{REDIRECT_URI}?{urlencode(other_iss)}")
    error = {"error": "access_denied", "state": params["state"], "iss": params.get("iss", "")}
    assert pending.is_own_callback(f"{REDIRECT_URI}?{urlencode(error)}")
    assert not pending.is_own_callback("not a url \x00")
    result = await client.claim(pending, callback)  # checking took nothing
    assert result.credentials
