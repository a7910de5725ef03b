"""Whole flows on a real Redis: no code, token, nonce, handle or tx_code reaches Redis in clear.

Every command Redis receives is captured with ``MONITOR`` (keys and values, as a ``KEYS`` listing,
the slow log or a replica would see them). The flows' secrets are collected on the wire between
wallet and issuer (an offer by reference included: its record is sealed under its id); none
may appear in a command, except ``issuer_state``, which a few records hold as a value (it names
the offer the login completes; it is no credential) but never a key.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import build_demo_issuer
from oid4vci.issuer.offers import OfferOptions
from oid4vci.stores.redis import RedisStore
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import Oid4vciClient
from tests.redis_servers import RedisServer
from tests.stores.conftest import unique_prefix

ISSUER = "https://issuer.example"
REDIRECT_URI = "https://wallet.example.org/cb"
#: Members of JSON bodies (both ways) and form fields that carry a secret.
SECRET_MEMBERS = {
    "pre-authorized_code",
    "code",
    "tx_code",
    "access_token",
    "refresh_token",
    "c_nonce",
    "request_uri",
    "notification_id",
    "transaction_id",
    "handle",
}


@pytest.fixture
def anyio_backend() -> str:
    """asyncio: the contract suite covers trio."""
    return "asyncio"


class SecretRecorder:
    """Wraps the issuer's handler; remembers every secret that crosses the wire."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.secrets: set[str] = set()
        self.issuer_states: set[str] = set()

    def _walk(self, value: Any) -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                if name in SECRET_MEMBERS and isinstance(item, str):
                    self.secrets.add(item)
                elif name == "issuer_state" and isinstance(item, str):
                    self.issuer_states.add(item)
                self._walk(item)
        elif isinstance(value, list):
            for item in value:
                self._walk(item)

    def _body(self, body: bytes, content_type: str | None) -> None:
        text = body.decode("utf-8", "replace")
        if content_type and "json" in content_type:
            self._walk(json.loads(text))
        elif content_type and "form" in content_type:
            self._walk({k: v[0] for k, v in parse_qs(text).items()})
        else:  # the login page: its form's hidden handle
            self.secrets.update(re.findall(r"name='handle' value='([^']+)'", text))

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        self._body(request.body or b"", request.headers.get("Content-Type"))
        query = {k: v[0] for k, v in parse_qs(urlsplit(request.url).query).items()}
        self._walk(query)
        response: HttpResponse = await self.handler(request)
        self._body(response.body, response.headers.get("Content-Type"))
        for name in ("DPoP-Nonce", "Location"):
            value = response.headers.get(name)
            if value and name == "DPoP-Nonce":
                self.secrets.add(value)
            elif value:
                self._walk({k: v[0] for k, v in parse_qs(urlsplit(value).query).items()})
        return response


def _monitor(server: RedisServer, path: Path) -> subprocess.Popen[bytes]:
    """``redis-cli MONITOR`` into ``path``, returned once it sees commands."""
    process = subprocess.Popen(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(server.port), "monitor"],
        stdout=path.open("wb"),
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while b"monitor-ready" not in path.read_bytes():
        assert time.monotonic() < deadline, "redis-cli monitor did not start"
        server.cli("echo", "monitor-ready")
        time.sleep(0.05)
    return process


async def test_no_secret_in_any_redis_command(private_redis: RedisServer, tmp_path: Path) -> None:
    log = tmp_path / "monitor.txt"
    monitor = _monitor(private_redis, log)
    try:
        async with RedisStore.from_url(private_redis.url, prefix=unique_prefix()) as store:
            demo = build_demo_issuer(ISSUER, store=store)
            recorder = SecretRecorder(demo.handle)
            transport = InMemoryTransport(routes={ISSUER: recorder})
            wallet = Oid4vciClient(transport, client_id="redis-secrets")
            # Pre-authorized code with a Transaction Code, then a notification.
            result = await wallet.accept_offer(
                demo.offer_links["pre_auth_tx_code"], tx_code=demo.tx_code
            )
            assert len(result.credentials) == 1
            await wallet.notify(result, "credential_accepted")
            # An offer by reference: stored sealed until the wallet fetches it.
            created = await demo.issuer.create_pre_authorized_offer(
                configuration_ids=[demo.configuration_id],
                subject="alice",
                options=OfferOptions(by_reference=True),
            )
            assert created.offer_id and created.pre_authorized_code
            recorder.secrets |= {created.offer_id, created.pre_authorized_code}
            result = await wallet.accept_offer(created.offer_uri)
            assert len(result.credentials) == 1
            # Authorization code with PAR, issuer_state and a login form.
            url, pending = await wallet.authorize(
                demo.offer_links["auth_code"], redirect_uri=REDIRECT_URI
            )
            page = await recorder(HttpRequest(method="GET", url=url))
            handle = re.search(r"name='handle' value='([^']+)'", page.body.decode())
            action = re.search(r"form method='post' action='([^']+)'", page.body.decode())
            assert handle is not None and action is not None
            user, password = demo.login.split(":")
            form = {"handle": handle.group(1), "username": user, "password": password}
            answer = await recorder(HttpRequest.form("POST", action.group(1), form))
            callback = answer.headers.get("Location")
            assert answer.status == 303 and callback is not None
            result = await wallet.claim(pending, callback)
            assert len(result.credentials) == 1
        private_redis.cli("echo", "monitor-done")
        deadline = time.monotonic() + 10
        while b"monitor-done" not in log.read_bytes():
            assert time.monotonic() < deadline
            await anyio.sleep(0.05)
    finally:
        monitor.terminate()
        monitor.wait(timeout=10)
    # Each line: "<time> [<db> <client>] <command>"; only the commands can leak.
    lines = log.read_text("utf-8", "replace").splitlines()
    commands = "\n".join(line.partition("] ")[2] for line in lines)
    assert '"GETDEL"' in commands and '"SET"' in commands  # the flows did run on this Redis
    secrets = recorder.secrets
    # Every kind was seen: codes, tokens, nonces, PAR, login handle, notification id.
    assert demo.tx_code in secrets and len(secrets) >= 10, secrets
    assert recorder.issuer_states
    # A short tx_code could occur inside a digest by chance: match it as a whole word only.
    leaked = sorted(
        s for s in secrets if re.search(rf"(?<![\w-]){re.escape(s)}(?![\w-])", commands)
    )
    assert not leaked, f"{len(leaked)} secrets reached Redis in clear"
    # issuer_state may be a value, never (part of) a key.
    assert not [s for s in recorder.issuer_states if f":{s}" in commands]
