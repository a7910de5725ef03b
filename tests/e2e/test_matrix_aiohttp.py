"""The matrix over real HTTP: ``oid4vci serve`` in its own process, our wallet over aiohttp.

A representative subset (pre-authorized + tx_code, authorization code with the scripted login,
a batch of 10, reusable offer links) for 1.0 and Draft 13. The issuer's signing key lives in
the other process, so credentials are verified independently with the key it publishes at
``/.well-known/jwt-vc-issuer``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from oid4vci.cli.login import scripted_login
from oid4vci.errors import TokenError
from oid4vci.http import HttpRequest
from oid4vci.mdoc import verify_mdoc
from oid4vci.transports.aiohttp import AiohttpTransport
from oid4vci.wallet import FlowState, IssuanceResult, Oid4vciClient, WalletPolicy
from oid4vci.x509 import load_trust_anchors
from tests.e2e.conftest import (
    CONFIGURATION_ID,
    LOGIN,
    ServedIssuer,
    check_credentials,
    served_issuer,
)

LOOPBACK_REDIRECT = "http://127.0.0.1:8976/callback"
SPECS = ["1.0", "draft-13"]


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp runs on asyncio only."""
    return "asyncio"


@pytest.fixture(scope="module", params=SPECS, ids=["v1", "d13"])
def served(request: pytest.FixtureRequest) -> Iterator[ServedIssuer]:
    """One issuer process per published version, stopped (cleanly) after the module."""
    with served_issuer(str(request.param)) as server:
        yield server
        assert server.stop() == 0, server.stderr_text()[-2000:]


def _client(transport: AiohttpTransport) -> Oid4vciClient:
    return Oid4vciClient(
        transport,
        client_id="e2e-wallet",
        policy=WalletPolicy(allow_insecure_loopback=True),
    )


async def _issuer_keys(transport: AiohttpTransport, issuer: str) -> list[dict[str, Any]]:
    response = await transport.send(
        HttpRequest(method="GET", url=issuer + "/.well-known/jwt-vc-issuer")
    )
    assert response.status == 200
    body = response.json_body()
    assert body["issuer"] == issuer
    keys: list[dict[str, Any]] = body["jwks"]["keys"]
    assert keys and all("d" not in key for key in keys)
    return keys


async def _check(
    result: IssuanceResult,
    transport: AiohttpTransport,
    served: ServedIssuer,
    *,
    count: int,
    flow: str,
) -> None:
    version = served.version
    assert result.spec_version is version
    assert result.flow == flow
    assert result.state is FlowState.DONE
    assert result.credential_issuer == served.issuer
    check_credentials(
        result.credentials,
        issuer_keys=await _issuer_keys(transport, served.issuer),
        version=version,
        count=count,
        clock=time.time,
        issuer=served.issuer,
    )


def test_ready_line(served: ServedIssuer) -> None:
    ready = served.ready
    assert set(ready) >= {"issuer", "offers", "tx_code", "login"}
    parts = urlsplit(served.issuer)
    assert (parts.scheme, parts.hostname) == ("http", "127.0.0.1") and parts.port
    assert set(served.offers) == {"pre_auth", "pre_auth_tx_code", "auth_code", "pre_auth_mdoc"}
    for link in served.offers.values():
        assert link.startswith("openid-credential-offer://?credential_offer_uri=")
    assert ready["tx_code"].isdigit() and ready["login"] == ":".join(LOGIN)
    assert served.process.poll() is None


async def test_pre_auth_tx_code(served: ServedIssuer) -> None:
    async with AiohttpTransport(allow_insecure_loopback=True) as transport:
        client = _client(transport)
        offer = await client.parse_offer(served.offers["pre_auth_tx_code"])
        assert offer.credential_issuer == served.issuer
        assert offer.pre_authorized_code is not None
        assert offer.pre_authorized_code.tx_code is not None
        result = await client.accept_offer(offer, tx_code=served.ready["tx_code"])
        await _check(result, transport, served, count=1, flow="pre-authorized_code")
        await client.notify(result, "credential_accepted")


async def test_auth_code_with_scripted_login(served: ServedIssuer) -> None:
    async with AiohttpTransport(allow_insecure_loopback=True) as transport:
        client = _client(transport)
        offer = await client.parse_offer(served.offers["auth_code"])
        assert offer.authorization_code is not None and offer.pre_authorized_code is None
        url, pending = await client.authorize(offer, redirect_uri=LOOPBACK_REDIRECT)
        assert url.startswith(served.issuer + "/")
        callback = await scripted_login(url, LOOPBACK_REDIRECT, *LOGIN)
        assert callback.startswith(LOOPBACK_REDIRECT + "?")
        result = await client.claim(pending, callback, count=2)
        await _check(result, transport, served, count=2, flow="authorization_code")


async def test_batch_of_10(served: ServedIssuer) -> None:
    async with AiohttpTransport(allow_insecure_loopback=True) as transport:
        client = _client(transport)
        offer = await client.parse_offer(served.offers["pre_auth"])
        result = await client.accept_offer(offer, count=10)
        await _check(result, transport, served, count=10, flow="pre-authorized_code")


async def test_mdl_over_http(served: ServedIssuer) -> None:
    """The mDL offer over real HTTP: the wallet trusts the IACA root of the ready line, and
    every mdoc verifies again here from its raw bytes."""
    iaca = load_trust_anchors([served.ready["trust_anchors_pem"]])
    async with AiohttpTransport(allow_insecure_loopback=True) as transport:
        policy = WalletPolicy(allow_insecure_loopback=True, trust_anchors=iaca)
        client = Oid4vciClient(transport, client_id="e2e-wallet", policy=policy)
        result = await client.accept_offer(served.offers["pre_auth_mdoc"], count=3)
    assert result.state is FlowState.DONE and len(result.credentials) == 3
    device_keys = set()
    for credential in result.credentials:
        assert credential.verified and credential.format == "mso_mdoc"
        assert credential.holder_key is not None
        checked = verify_mdoc(
            credential.credential,
            trust_anchors=iaca,
            expected_doctype="org.iso.18013.5.1.mDL",
            holder_keys=[credential.holder_key.public_jwk],
        )
        assert checked.claims["org.iso.18013.5.1"]["family_name"] == "Liddell"
        device_keys.add(checked.device_key["x"])
    assert len(device_keys) == 3


async def test_offer_links_are_reusable(served: ServedIssuer) -> None:
    """The printed link is a template: every use mints a fresh, independent grant."""
    link = served.offers["pre_auth"]
    async with AiohttpTransport(allow_insecure_loopback=True) as transport:
        client = _client(transport)
        first = await client.parse_offer(link)
        second = await client.parse_offer(link)
        assert first.pre_authorized_code is not None and second.pre_authorized_code is not None
        codes = {first.pre_authorized_code.pre_authorized_code}
        codes.add(second.pre_authorized_code.pre_authorized_code)
        assert len(codes) == 2
        results = [await client.accept_offer(offer) for offer in (second, first)]
        for result in results:
            await _check(result, transport, served, count=1, flow="pre-authorized_code")
            assert result.credentials[0].configuration_id == CONFIGURATION_ID
        jkts = {r.credentials[0].holder_jkt for r in results}
        assert len(jkts) == 2
        # each grant is single use: the first offer's code cannot be redeemed again
        with pytest.raises(TokenError) as info:
            await client.accept_offer(first)
        assert info.value.error == "invalid_grant"


def test_serve_exits_cleanly_on_sigterm() -> None:
    with served_issuer("draft-15") as server:
        port = urlsplit(server.issuer).port
        assert port is not None
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        started = time.monotonic()
        assert server.stop(timeout=5) == 0
        assert time.monotonic() - started < 5
        assert "Traceback" not in server.stderr_text()
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
