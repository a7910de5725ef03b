"""HTTP-level cases with the aiohttp transport: aioresponses mocks and a real 127.0.0.1 server."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aioresponses import aioresponses

from oid4vci.errors import MetadataError, RedirectRefused
from oid4vci.models import parse_credential_offer_json
from oid4vci.transports.aiohttp import AiohttpTransport, serve
from oid4vci.wallet import Oid4vciClient, WalletPolicy, discover
from tests.wallet.fakes import FakeIssuer

ISSUER = "https://issuer.example/tenant"
INSERTED = "https://issuer.example/.well-known/openid-credential-issuer/tenant"
APPENDED = "https://issuer.example/tenant/.well-known/openid-credential-issuer"
AS_OAUTH = "https://issuer.example/.well-known/oauth-authorization-server/tenant"
AS_OIDC = "https://issuer.example/tenant/.well-known/openid-configuration"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def issuer_doc(issuer: str = ISSUER) -> dict[str, Any]:
    return FakeIssuer(issuer=issuer).issuer_metadata()


def as_doc(issuer: str = ISSUER) -> dict[str, Any]:
    return FakeIssuer(issuer=issuer).as_metadata()


async def test_inserted_then_appended_then_openid_configuration() -> None:
    async with AiohttpTransport() as transport:
        with aioresponses() as mock:
            mock.get(INSERTED, status=404)
            mock.get(APPENDED, payload=issuer_doc())
            mock.get(AS_OAUTH, status=404)
            mock.get(AS_OIDC, payload=as_doc())
            found = await discover(transport, ISSUER, policy=WalletPolicy())
            called = [str(url) for (_, url) in mock.requests]
    assert found.issuer_metadata.credential_issuer == ISSUER
    assert found.as_metadata.issuer == ISSUER
    assert called == [INSERTED, APPENDED, AS_OAUTH, AS_OIDC]


async def test_inserted_form_wins() -> None:
    async with AiohttpTransport() as transport:
        with aioresponses() as mock:
            mock.get(INSERTED, payload=issuer_doc())
            mock.get(AS_OAUTH, payload=as_doc())
            await discover(transport, ISSUER, policy=WalletPolicy())
            called = [str(url) for (_, url) in mock.requests]
    assert APPENDED not in called


async def test_mismatched_credential_issuer_over_http() -> None:
    async with AiohttpTransport() as transport:
        with aioresponses() as mock:
            mock.get(INSERTED, payload=issuer_doc("https://issuer.example/other"))
            with pytest.raises(MetadataError):
                await discover(transport, ISSUER, policy=WalletPolicy())


async def test_mismatched_as_issuer_over_http() -> None:
    async with AiohttpTransport() as transport:
        with aioresponses() as mock:
            mock.get(INSERTED, payload=issuer_doc())
            mock.get(AS_OAUTH, payload=as_doc("https://issuer.example"))
            with pytest.raises(MetadataError):
                await discover(transport, ISSUER, policy=WalletPolicy())


async def test_redirect_refused_over_http() -> None:
    async with AiohttpTransport() as transport:
        with aioresponses() as mock:
            mock.get(INSERTED, status=302, headers={"Location": "https://evil.example/"})
            with pytest.raises(RedirectRefused):
                await discover(transport, ISSUER, policy=WalletPolicy())


async def test_offer_by_reference_over_http() -> None:
    offer = {"credential_issuer": ISSUER, "credential_configuration_ids": ["IdentityCredential"]}
    async with AiohttpTransport() as transport:
        client = Oid4vciClient(transport)
        with aioresponses() as mock:
            mock.get(re.compile(r"https://issuer\.example/offer.*"), payload=offer)
            parsed = await client.parse_offer(
                "openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fissuer.example%2Foffer%2F1"
            )
    assert parsed.credential_issuer == ISSUER


async def test_whole_flow_against_fake_on_loopback() -> None:
    fake = FakeIssuer()
    async with serve(fake.handle) as app:
        fake.issuer = app.base_url
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            client = Oid4vciClient(transport, policy=WalletPolicy(allow_insecure_loopback=True))
            result = await client.accept_offer(parse_credential_offer_json(fake.offer()), count=2)
    assert len(result.credentials) == 2 and all(c.verified for c in result.credentials)
