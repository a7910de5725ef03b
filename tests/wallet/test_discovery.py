"""Issuer / AS metadata discovery: locations, fallbacks, identity checks, cache, lenience."""

from __future__ import annotations

from typing import Any

import pytest

from oid4vci.errors import InsecureUrlError, MetadataError
from oid4vci.models import parse_credential_offer_json
from oid4vci.wallet import MetadataCache, Oid4vciClient, WalletPolicy, discover
from oid4vci.wallet.discovery import as_metadata_urls, issuer_metadata_urls
from tests.conftest import FakeClock
from tests.wallet.fakes import D13, V1, FakeIssuer, json_response

TENANT = "https://issuer.example/tenant"


def test_issuer_metadata_urls_inserted_then_appended() -> None:
    assert issuer_metadata_urls(TENANT) == [
        "https://issuer.example/.well-known/openid-credential-issuer/tenant",
        "https://issuer.example/tenant/.well-known/openid-credential-issuer",
    ]
    assert issuer_metadata_urls("https://issuer.example") == [
        "https://issuer.example/.well-known/openid-credential-issuer"
    ]


def test_as_metadata_urls() -> None:
    assert as_metadata_urls(TENANT) == [
        "https://issuer.example/.well-known/oauth-authorization-server/tenant",
        "https://issuer.example/tenant/.well-known/openid-configuration",
    ]
    assert as_metadata_urls(TENANT, openid_configuration=False) == [
        "https://issuer.example/.well-known/oauth-authorization-server/tenant"
    ]


async def test_inserted_form_found_first() -> None:
    fake = FakeIssuer(version=V1, issuer=TENANT)
    found = await discover(fake.transport(), TENANT, policy=WalletPolicy())
    assert found.spec_version is V1
    assert fake.requests[0].url.endswith("/.well-known/openid-credential-issuer/tenant")
    assert fake.count("openid-credential-issuer/tenant") == 1
    assert fake.count("/tenant/.well-known/openid-credential-issuer") == 0


async def test_falls_back_to_appended_form() -> None:
    fake = FakeIssuer(version=D13, issuer=TENANT)
    found = await discover(fake.transport(), TENANT, policy=WalletPolicy())
    assert found.spec_version is D13
    urls = [r.url for r in fake.requests]
    assert urls[0].endswith("/.well-known/openid-credential-issuer/tenant")
    assert urls[1].endswith("/tenant/.well-known/openid-credential-issuer")


async def test_falls_back_on_non_json_200() -> None:
    from oid4vci.http import HttpResponse

    fake = FakeIssuer(version=D13, issuer=TENANT)
    fake.inject["/.well-known/openid-credential-issuer/tenant"] = [
        HttpResponse(status=200, headers={"Content-Type": "text/html"}, body=b"<html/>")
    ]
    found = await discover(fake.transport(), TENANT, policy=WalletPolicy())
    assert found.issuer_metadata.credential_issuer == TENANT


async def test_no_metadata_anywhere() -> None:
    fake = FakeIssuer(version=D13, issuer=TENANT, metadata_at="nowhere")
    with pytest.raises(MetadataError):
        await discover(fake.transport(), TENANT, policy=WalletPolicy())


@pytest.mark.parametrize(
    "value", ["https://issuer.example/tenant/", "https://ISSUER.example/tenant", "https://evil"]
)
async def test_mismatched_credential_issuer_rejected(value: str) -> None:
    fake = FakeIssuer(version=V1, issuer=TENANT, metadata_overrides={"credential_issuer": value})
    with pytest.raises(MetadataError):
        await discover(fake.transport(), TENANT, policy=WalletPolicy())
    # a mismatching document stops discovery; no "next best" location is tried
    assert fake.count("/tenant/.well-known/openid-credential-issuer") == 0


async def test_as_openid_configuration_fallback() -> None:
    fake = FakeIssuer(as_metadata_at="openid")
    found = await discover(fake.transport(), fake.issuer, policy=WalletPolicy())
    assert found.as_metadata.token_endpoint == fake.url("/token")
    paths = [r.url for r in fake.requests]
    assert paths[1].endswith("/.well-known/oauth-authorization-server")
    assert paths[2].endswith("/.well-known/openid-configuration")


async def test_as_openid_configuration_fallback_disabled() -> None:
    fake = FakeIssuer(as_metadata_at="openid")
    with pytest.raises(MetadataError):
        await discover(
            fake.transport(), fake.issuer, policy=WalletPolicy(openid_configuration_fallback=False)
        )
    assert fake.count("openid-configuration") == 0


async def test_mismatched_as_issuer_rejected() -> None:
    fake = FakeIssuer(as_overrides={"issuer": "https://other.example"})
    with pytest.raises(MetadataError):
        await discover(fake.transport(), fake.issuer, policy=WalletPolicy())


async def test_separate_authorization_servers() -> None:
    as1 = FakeIssuer(issuer="https://as1.example")
    as2 = FakeIssuer(issuer="https://as2.example")
    fake = FakeIssuer(
        metadata_overrides={"authorization_servers": ["https://as1.example", "https://as2.example"]}
    )
    transport = fake.transport()
    transport.mount("https://as1.example", as1.handle)
    transport.mount("https://as2.example", as2.handle)
    first = await discover(transport, fake.issuer, policy=WalletPolicy())
    assert first.authorization_server == "https://as1.example"
    chosen = await discover(
        transport,
        fake.issuer,
        policy=WalletPolicy(),
        grant_authorization_server="https://as2.example",
    )
    assert chosen.authorization_server == "https://as2.example"
    assert chosen.as_metadata.issuer == "https://as2.example"
    with pytest.raises(MetadataError):
        await discover(
            transport,
            fake.issuer,
            policy=WalletPolicy(),
            grant_authorization_server="https://as3.example",
        )


async def test_grant_authorization_server_needs_listing() -> None:
    fake = FakeIssuer()
    with pytest.raises(MetadataError):
        await discover(
            fake.transport(),
            fake.issuer,
            policy=WalletPolicy(),
            grant_authorization_server=fake.issuer,
        )


async def test_cache_ttl_with_clock(clock: FakeClock) -> None:
    fake = FakeIssuer()
    cache = MetadataCache(60, clock=clock)
    transport = fake.transport()
    await discover(transport, fake.issuer, policy=WalletPolicy(), cache=cache)
    await discover(transport, fake.issuer, policy=WalletPolicy(), cache=cache)
    assert len(fake.requests) == 2
    clock.advance(61)
    await discover(transport, fake.issuer, policy=WalletPolicy(), cache=cache)
    assert len(fake.requests) == 4


async def test_http_issuer_refused_unless_loopback_allowed() -> None:
    fake = FakeIssuer(issuer="http://issuer.example")
    with pytest.raises(InsecureUrlError):
        await discover(fake.transport(), fake.issuer, policy=WalletPolicy())
    with pytest.raises(InsecureUrlError):
        await discover(
            fake.transport(), fake.issuer, policy=WalletPolicy(allow_insecure_loopback=True)
        )
    assert fake.requests == []
    local = FakeIssuer(issuer="http://127.0.0.1:8080")
    found = await discover(
        local.transport(), local.issuer, policy=WalletPolicy(allow_insecure_loopback=True)
    )
    assert found.credential_issuer == "http://127.0.0.1:8080"


async def test_http_credential_endpoint_refused(clock: FakeClock) -> None:
    fake = FakeIssuer(
        metadata_overrides={"credential_endpoint": "http://issuer.example/credential"}
    )
    fake.clock = clock
    client = Oid4vciClient(fake.transport(), clock=clock)
    with pytest.raises(InsecureUrlError):
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert fake.count("/credential") == 0


async def test_http_token_endpoint_refused(clock: FakeClock) -> None:
    fake = FakeIssuer(as_overrides={"token_endpoint": "http://issuer.example/token"})
    client = Oid4vciClient(fake.transport(), clock=clock)
    with pytest.raises(InsecureUrlError):
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert fake.count("/token") == 0


def _with_bad_config(fake: FakeIssuer) -> dict[str, Any]:
    meta = fake.issuer_metadata()
    meta["credential_configurations_supported"]["Broken"] = {"format": 42}
    return meta


async def test_unused_malformed_configuration_does_not_stop(clock: FakeClock) -> None:
    fake = FakeIssuer()
    fake.clock = clock
    fake.inject["/.well-known/openid-credential-issuer"] = [
        json_response(200, _with_bad_config(fake))
    ]
    client = Oid4vciClient(fake.transport(), clock=clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert len(result.credentials) == 1


async def test_used_malformed_configuration_stops(clock: FakeClock) -> None:
    fake = FakeIssuer()
    fake.clock = clock
    fake.inject["/.well-known/openid-credential-issuer"] = [
        json_response(200, _with_bad_config(fake))
    ]
    client = Oid4vciClient(fake.transport(), clock=clock)
    offer = fake.offer()
    offer["credential_configuration_ids"] = ["IdentityCredential", "Broken"]
    with pytest.raises(MetadataError):
        await client.accept_offer(parse_credential_offer_json(offer))
    assert fake.count("/token") == 0


async def test_unknown_configuration_stops(clock: FakeClock) -> None:
    fake = FakeIssuer()
    client = Oid4vciClient(fake.transport(), clock=clock)
    offer = fake.offer()
    offer["credential_configuration_ids"] = ["Nope"]
    with pytest.raises(MetadataError):
        await client.accept_offer(parse_credential_offer_json(offer))
