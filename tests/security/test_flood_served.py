"""A flood against ``oid4vci serve`` on loopback while 50 legitimate wallets run whole flows.

Flood clients (behind the trusted proxy 127.0.0.1, each with its own ``X-Forwarded-For``
address) send 50,000 nonce requests, 20,000 offer-template fetches and 5,000 PAR requests;
at the same time 25 wallets run the pre-authorized code flow and 25 the authorization code
flow (PAR, login, token, credential), each from its own address. Every wallet must succeed,
the server's peak memory (``VmHWM``) must stay within :data:`MEMORY_BOUND_BYTES`, and the
flood gets answers (stateless nonces, offers, PAR URIs within its rate limit) or 429 with
``Retry-After``, never a 5xx.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode, urljoin

import aiohttp
import anyio
import pytest

from oid4vci.cli.login import find_login_form
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.pkce import code_challenge, generate_code_verifier
from oid4vci.transports.aiohttp import AiohttpTransport
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from tests.e2e.conftest import REPO_ROOT, _read_line, subprocess_env

pytestmark = pytest.mark.slow

NONCES = 50_000
TEMPLATE_FETCHES = 20_000
PARS = 5_000
WALLETS = 50
#: Flood addresses: each gets its own token buckets (10 at once, then 2 a second).
FLOOD_ADDRESSES = [f"198.51.100.{i}" for i in range(1, 21)]
RATE_LIMIT = "2/10"
#: Requests in flight from the flood at any time.
FLOOD_CONCURRENCY = 48
#: The server's peak resident memory may not exceed this (Python, aiohttp, the demo issuer
#: and a MemoryStore whose quotas bound what the flood can add).
MEMORY_BOUND_BYTES = 128 * 1024 * 1024
#: The whole run (flood and wallets) must finish within this.
RUN_SECONDS = 600
REDIRECT = "https://wallet.example/cb"


@pytest.fixture
def anyio_backend() -> str:
    """The flood client runs on asyncio (aiohttp)."""
    return "asyncio"


@contextmanager
def served(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """``python -m oid4vci serve --json ARGS``; killed when the block ends."""
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "oid4vci", "serve", "--json", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=subprocess_env(),
            cwd=REPO_ROOT,
        )
        try:
            assert process.stdout is not None
            line = _read_line(process.stdout, 60)
            if not line:
                stderr.seek(0)
                raise AssertionError(f"serve exited before it was ready: {stderr.read()[-2000:]}")
            yield process, json.loads(line)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()


def peak_rss(pid: int) -> int:
    """``VmHWM`` (peak resident set) of ``pid`` in bytes, from ``/proc/<pid>/status``."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


class ForwardedFor:
    """A wallet transport behind the trusted proxy: every request names the wallet's address."""

    def __init__(self, inner: AiohttpTransport, address: str) -> None:
        self.inner = inner
        self.address = address

    async def send(self, request: HttpRequest) -> HttpResponse:
        headers = request.headers.with_header("X-Forwarded-For", self.address)
        return await self.inner.send(
            HttpRequest(method=request.method, url=request.url, headers=headers, body=request.body)
        )


async def login(authorization_url: str, address: str, user: str, password: str) -> str:
    """The browser's part: the login form, posted; the callback URL the issuer redirects to."""
    headers = {"X-Forwarded-For": address}
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True), headers=headers
    ) as session:
        async with session.get(authorization_url, allow_redirects=False) as page:
            assert page.status == 200, page.status
            form = find_login_form(await page.text())
        assert form is not None
        fields = {**form.fields, "username": user, "password": password}
        action = urljoin(authorization_url, form.action) if form.action else authorization_url
        async with session.post(action, data=fields, allow_redirects=False) as answer:
            assert answer.status in (302, 303), answer.status
            location = answer.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    return location


async def run_wallet(
    index: int, ready: dict[str, Any], http: AiohttpTransport, failures: list[str]
) -> None:
    """One wallet's whole flow from its own address; records a failure instead of raising."""
    address = f"203.0.113.{index + 1}"
    transport = ForwardedFor(http, address)
    client = Oid4vciClient(
        transport, policy=WalletPolicy(allow_insecure_loopback=True), client_id=f"wallet-{index}"
    )
    try:
        if index % 2 == 0:
            result = await client.accept_offer(ready["offers"]["pre_auth"])
        else:
            url, flow = await client.authorize(ready["offers"]["auth_code"], redirect_uri=REDIRECT)
            user, _, password = ready["login"].partition(":")
            callback = await login(url, address, user, password)
            result = await client.claim(flow, callback)
        if not (result.credentials and all(c.verified for c in result.credentials)):
            failures.append(f"wallet {index}: no verified credential")
    except Exception as exc:
        failures.append(f"wallet {index}: {type(exc).__name__}: {exc}")


def flood_requests(issuer: str) -> Iterator[tuple[str, str, dict[str, str], bytes]]:
    """The flood, interleaved: (method, url, headers, body) of every request."""
    form = urlencode(
        {
            "response_type": "code",
            "client_id": "flood",
            "redirect_uri": "https://flood.example/cb",
            "code_challenge": code_challenge(generate_code_verifier()),
            "code_challenge_method": "S256",
            "scope": "identity_credential",
        }
    ).encode()
    par_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    kinds: list[tuple[str, str, dict[str, str], bytes]] = (
        [("POST", issuer + "/nonce", {}, b"")] * (NONCES // 1000)
        + [("GET", issuer + "/offers/templates/pre_auth", {}, b"")] * (TEMPLATE_FETCHES // 1000)
        + [("POST", issuer + "/par", par_headers, form)] * (PARS // 1000)
    )
    n = 0
    for _ in range(1000):
        for method, url, headers, body in kinds:
            address = FLOOD_ADDRESSES[n % len(FLOOD_ADDRESSES)]
            n += 1
            yield method, url, {**headers, "X-Forwarded-For": address}, body


async def run_flood(issuer: str, statuses: Counter[tuple[str, int]]) -> None:
    """Send every flood request, ``FLOOD_CONCURRENCY`` at a time; count (path, status)."""
    requests = flood_requests(issuer)
    connector = aiohttp.TCPConnector(limit=FLOOD_CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for method, url, headers, body in requests:
                async with session.request(method, url, headers=headers, data=body) as resp:
                    await resp.read()
                    path = url.rsplit("/", 1)[-1]
                    statuses[(path, resp.status)] += 1
                    if resp.status == 429:
                        assert resp.headers.get("Retry-After", "").isdigit()

        async with anyio.create_task_group() as group:
            for _ in range(FLOOD_CONCURRENCY):
                group.start_soon(worker)


async def test_flood_while_wallets_run_whole_flows() -> None:
    args = ("--rate-limit", RATE_LIMIT, "--trusted-proxy", "127.0.0.1")
    with served(*args) as (process, ready):
        statuses: Counter[tuple[str, int]] = Counter()
        failures: list[str] = []
        started = time.monotonic()
        with anyio.fail_after(RUN_SECONDS):
            async with (
                AiohttpTransport(allow_insecure_loopback=True) as http,
                anyio.create_task_group() as group,
            ):
                group.start_soon(run_flood, ready["issuer"], statuses)
                for index in range(WALLETS):
                    group.start_soon(run_wallet, index, ready, http, failures)
        elapsed = time.monotonic() - started
        peak = peak_rss(process.pid)
        assert process.poll() is None, "the server died"
    assert failures == []
    assert sum(statuses.values()) == NONCES + TEMPLATE_FETCHES + PARS
    by_status = Counter(status for (_, status) in statuses.elements())
    assert set(by_status) <= {200, 201, 429}, statuses
    # Within the rate limit the flood got answers, beyond it 429s.
    assert statuses[("nonce", 429)] > 0 and statuses[("pre_auth", 429)] > 0
    assert statuses[("par", 429)] > 0
    assert peak <= MEMORY_BOUND_BYTES, f"peak RSS {peak / 2**20:.0f} MiB"
    print(  # the numbers, for the README (pytest -s)
        f"\nflood: {dict(statuses)} in {elapsed:.1f} s; server peak RSS {peak / 2**20:.0f} MiB"
    )
