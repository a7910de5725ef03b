"""HTTP-level cases with the aiohttp transport against real servers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import pytest

from oid4vci.errors import MetadataError, RedirectRefused
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.models import parse_credential_offer_json
from oid4vci.transports.aiohttp import AiohttpTransport, serve
from oid4vci.wallet import Oid4vciClient, WalletPolicy, discover
from tests.wallet.fakes import FakeIssuer

POLICY = WalletPolicy(allow_insecure_loopback=True)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


Answer = Callable[[str], HttpResponse | dict[str, Any] | None]


@asynccontextmanager
async def site(answer: Answer) -> AsyncIterator[tuple[str, list[str]]]:
    """A real server on 127.0.0.1 answering by path (None: 404); yields its issuer URL (with the
    path ``/tenant``) and the list of paths requested."""
    seen: list[str] = []

    async def handle(request: HttpRequest) -> HttpResponse:
        path = urlsplit(request.url).path
        seen.append(path)
        found = answer(path)
        if found is None:
            return HttpResponse.json(404, {"error": "not_found"})
        return found if isinstance(found, HttpResponse) else HttpResponse.json(200, found)

    async with serve(handle) as served:
        yield served.base_url + "/tenant", seen


def issuer_doc(issuer: str) -> dict[str, Any]:
    return FakeIssuer(issuer=issuer).issuer_metadata()


def as_doc(issuer: str) -> dict[str, Any]:
    return FakeIssuer(issuer=issuer).as_metadata()


INSERTED = "/.well-known/openid-credential-issuer/tenant"
APPENDED = "/tenant/.well-known/openid-credential-issuer"
AS_OAUTH = "/.well-known/oauth-authorization-server/tenant"
AS_OIDC = "/tenant/.well-known/openid-configuration"


async def test_inserted_then_appended_then_openid_configuration() -> None:
    docs: dict[str, Callable[[str], dict[str, Any]]] = {APPENDED: issuer_doc, AS_OIDC: as_doc}
    issuer = ""

    async with site(lambda path: docs[path](issuer) if path in docs else None) as (url, seen):
        issuer = url
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            found = await discover(transport, issuer, policy=POLICY)
    assert found.issuer_metadata.credential_issuer == issuer
    assert found.as_metadata.issuer == issuer
    assert seen == [INSERTED, APPENDED, AS_OAUTH, AS_OIDC]


async def test_inserted_form_wins() -> None:
    issuer = ""
    docs: dict[str, Callable[[str], dict[str, Any]]] = {
        INSERTED: issuer_doc,
        APPENDED: issuer_doc,
        AS_OAUTH: as_doc,
    }
    async with site(lambda path: docs[path](issuer) if path in docs else None) as (url, seen):
        issuer = url
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            await discover(transport, issuer, policy=POLICY)
    assert APPENDED not in seen


async def test_mismatched_credential_issuer_over_http() -> None:
    other = issuer_doc("https://issuer.example/other")
    async with (
        site(lambda path: other) as (url, _),
        AiohttpTransport(allow_insecure_loopback=True) as transport,
    ):
        with pytest.raises(MetadataError):
            await discover(transport, url, policy=POLICY)


async def test_mismatched_as_issuer_over_http() -> None:
    issuer = ""

    def answer(path: str) -> dict[str, Any] | None:
        if path == INSERTED:
            return issuer_doc(issuer)
        return as_doc("https://issuer.example") if path == AS_OAUTH else None

    async with site(answer) as (url, _):
        issuer = url
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            with pytest.raises(MetadataError):
                await discover(transport, issuer, policy=POLICY)


async def test_redirect_refused_over_http() -> None:
    redirect = HttpResponse(status=302, headers={"Location": "https://evil.example/"})
    async with (
        site(lambda path: redirect) as (url, seen),
        AiohttpTransport(allow_insecure_loopback=True) as transport,
    ):
        with pytest.raises(RedirectRefused):
            await discover(transport, url, policy=POLICY)
    assert seen == [INSERTED]  # refused, not followed


async def test_offer_by_reference_over_http() -> None:
    offer = {
        "credential_issuer": "https://issuer.example/tenant",
        "credential_configuration_ids": ["IdentityCredential"],
    }
    async with site(lambda path: offer if path == "/offer/1" else None) as (url, _):
        base = url.removesuffix("/tenant")
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            client = Oid4vciClient(transport)
            parsed = await client.parse_offer(
                "openid-credential-offer://?credential_offer_uri=" + base + "/offer/1"
            )
    assert parsed.credential_issuer == "https://issuer.example/tenant"


async def test_whole_flow_against_fake_on_loopback() -> None:
    fake = FakeIssuer()
    async with serve(fake.handle) as app:
        fake.issuer = app.base_url
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            client = Oid4vciClient(transport, policy=WalletPolicy(allow_insecure_loopback=True))
            result = await client.accept_offer(parse_credential_offer_json(fake.offer()), count=2)
    assert len(result.credentials) == 2 and all(c.verified for c in result.credentials)
