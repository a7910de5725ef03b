"""The wallet on trio over HttpxTransport and real sockets, against ``oid4vci serve``.

The issuer runs in its own process (``python -m oid4vci serve --json``); the wallet runs on
trio in the test process. Both grants: pre-authorized with a tx_code, and the authorization
code flow with the login form played over HTTP like a browser would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from urllib.parse import urljoin

import pytest
import sniffio

from oid4vci.cli.login import find_login_form
from oid4vci.http import HttpRequest
from oid4vci.transports.httpx import HttpxTransport
from oid4vci.wallet import FlowState, IssuanceResult, Oid4vciClient, WalletPolicy
from tests.e2e.conftest import (
    CLIENT_ID,
    REDIRECT_URI,
    ServedIssuer,
    check_credentials,
    served_issuer,
)


@pytest.fixture
def anyio_backend() -> str:
    return "trio"


@pytest.fixture(scope="module", params=["1.0", "draft-13"], ids=["v1", "d13"])
def served(request: pytest.FixtureRequest) -> Iterator[ServedIssuer]:
    """The demo issuer in its own process for the whole module."""
    with served_issuer(str(request.param)) as server:
        yield server
        assert server.stop() == 0, server.stderr_text()[-2000:]


def wallet(transport: HttpxTransport) -> Oid4vciClient:
    return Oid4vciClient(
        transport, client_id=CLIENT_ID, policy=WalletPolicy(allow_insecure_loopback=True)
    )


async def issuer_keys(transport: HttpxTransport, served: ServedIssuer) -> list[dict[str, object]]:
    """The issuer's signing keys, read from its JWT VC Issuer metadata."""
    response = await transport.send(
        HttpRequest(method="GET", url=f"{served.issuer}/.well-known/jwt-vc-issuer")
    )
    assert response.status == 200
    keys: list[dict[str, object]] = response.json_body()["jwks"]["keys"]
    return keys


async def check(
    result: IssuanceResult,
    transport: HttpxTransport,
    served: ServedIssuer,
    *,
    flow: str,
    count: int,
) -> None:
    assert result.state is FlowState.DONE
    assert result.flow == flow
    assert result.spec_version is served.version
    assert result.credential_issuer == served.issuer
    check_credentials(
        result.credentials,
        issuer_keys=await issuer_keys(transport, served),
        version=served.version,
        count=count,
        clock=time.time,
        issuer=served.issuer,
    )


async def log_in(authorization_url: str, login: str) -> str:
    """Play the browser over HTTP: open the page, post the login form, return the redirect."""
    username, _, password = login.partition(":")
    async with HttpxTransport(allow_insecure_loopback=True, raise_on_redirect=False) as browser:
        page = await browser.send(HttpRequest(method="GET", url=authorization_url))
        assert page.status == 200, page.body[:300]
        form = find_login_form(page.body.decode())
        assert form is not None and form.method == "post"
        fields = {**form.fields, "username": username, "password": password}
        action = urljoin(authorization_url, form.action) if form.action else authorization_url
        answer = await browser.send(HttpRequest.form("POST", action, fields))
    assert answer.status in (302, 303), answer.body[:300]
    location = answer.headers.get("Location")
    assert location is not None and location.startswith(REDIRECT_URI + "?")
    return location


async def test_pre_authorized_with_tx_code(served: ServedIssuer) -> None:
    assert sniffio.current_async_library() == "trio"
    async with HttpxTransport(allow_insecure_loopback=True) as transport:
        client = wallet(transport)
        offer = await client.parse_offer(served.offers["pre_auth_tx_code"])
        result = await client.accept_offer(offer, tx_code=served.ready["tx_code"], count=2)
        await check(result, transport, served, flow="pre-authorized_code", count=2)


async def test_authorization_code(served: ServedIssuer) -> None:
    assert sniffio.current_async_library() == "trio"
    async with HttpxTransport(allow_insecure_loopback=True) as transport:
        client = wallet(transport)
        offer = await client.parse_offer(served.offers["auth_code"])
        url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
        callback = await log_in(url, served.ready["login"])
        result = await client.claim(pending, callback)
        await check(result, transport, served, flow="authorization_code", count=1)
