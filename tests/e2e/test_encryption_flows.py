"""Encrypted issuance end to end (OID4VCI 1.0 §10; Draft 13-15 response encryption): our
wallet and our issuer, in memory for every version and over aiohttp on 127.0.0.1.

The wire is recorded at the issuer: the media type of every credential / deferred request and
answer shows what was encrypted; the wallet's result shows the credentials were decrypted and
verified.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import attrs
import pytest

from oid4vci.errors import MetadataError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer.encryption import EncryptionSettings
from oid4vci.jwe import generate_encryption_key
from oid4vci.transports.aiohttp import AiohttpTransport, serve
from oid4vci.versions import SpecVersion
from oid4vci.wallet import FlowState, IssuanceFlow, Oid4vciClient, WalletPolicy
from oid4vci.wallet.driver import run_flow
from tests.conftest import FakeClock
from tests.e2e.conftest import (
    CLIENT_ID,
    VERSION_IDS,
    DeferringClaims,
    E2eIssuer,
    FakeSleep,
    build_e2e_issuer,
    check_result,
    make_client,
)

VERSIONS = list(SpecVersion)
IDS = [VERSION_IDS[v] for v in VERSIONS]
ENCRYPTION = EncryptionSettings(request_keys=(generate_encryption_key(kid="enc-1"),))


@attrs.frozen
class Seen:
    path: str
    request_type: str
    status: int
    response_type: str


def record(e2e: E2eIssuer) -> list[Seen]:
    """Wrap the issuer's handler to log the media types at the protected endpoints."""
    seen: list[Seen] = []
    inner = e2e.handle

    async def handle(request: HttpRequest) -> HttpResponse:
        response = await inner(request)
        path = urlsplit(request.url).path
        if path in ("/credential", "/deferred"):
            seen.append(Seen(path, request.media_type, response.status, response.media_type))
        return response

    e2e.handle = handle  # type: ignore[method-assign]
    return seen


def expected_request_type(version: SpecVersion) -> str:
    # Only 1.0 has credential_request_encryption; the drafts send the member in plain JSON.
    return "application/jwt" if version is SpecVersion.V1 else "application/json"


@pytest.mark.parametrize("version", VERSIONS, ids=IDS)
async def test_pre_authorized_issuance_is_encrypted(version: SpecVersion, clock: FakeClock) -> None:
    e2e = build_e2e_issuer(version, clock, encryption=ENCRYPTION)
    seen = record(e2e)
    client = make_client(e2e, clock)
    offer = await client.parse_offer(e2e.offer_links["pre_auth"])
    result = await client.accept_offer(offer, count=2)
    check_result(result, e2e=e2e, version=version, count=2, clock=clock, flow="pre-authorized_code")
    assert seen and all(s.status == 200 for s in seen)
    assert {s.request_type for s in seen} == {expected_request_type(version)}
    assert {s.response_type for s in seen} == {"application/jwt"}


@pytest.mark.parametrize("version", VERSIONS, ids=IDS)
async def test_policy_off_sends_plain_requests(version: SpecVersion, clock: FakeClock) -> None:
    e2e = build_e2e_issuer(version, clock, encryption=ENCRYPTION)
    seen = record(e2e)
    client = make_client(e2e, clock, policy=WalletPolicy(encryption="off"))
    result = await client.accept_offer(await client.parse_offer(e2e.offer_links["pre_auth"]))
    check_result(result, e2e=e2e, version=version, count=1, clock=clock, flow="pre-authorized_code")
    assert [(s.request_type, s.response_type) for s in seen] == [
        ("application/json", "application/json")
    ]


@pytest.mark.parametrize("version", VERSIONS, ids=IDS)
async def test_deferred_issuance_with_encryption(version: SpecVersion, clock: FakeClock) -> None:
    claims = DeferringClaims(interval=3)

    async def on_sleep(count: int) -> None:
        claims.ready = count >= 2

    e2e = build_e2e_issuer(version, clock, encryption=ENCRYPTION, claims_source=claims)
    seen = record(e2e)
    client = make_client(e2e, clock, sleep=FakeSleep(clock, on_sleep))
    started = await client.accept_offer(await client.parse_offer(e2e.offer_links["pre_auth"]))
    assert started.state is FlowState.DEFERRED
    credentials = await client.poll_deferred(started)
    assert len(credentials) == 1 and credentials[0].verified
    first, *polls = seen
    assert (first.path, first.status, first.response_type) == (
        "/credential",
        202,
        "application/jwt",
    )
    assert polls and polls[-1].status == 200
    for poll in polls:
        assert poll.path == "/deferred"
        if poll.status == 400:  # Draft 13-15 "not ready yet": an issuance_pending error
            assert poll.response_type == "application/json"
            continue
        if version is SpecVersion.V1:
            # 1.0 §9: deferred requests and their answers (202 and 200) are encrypted too.
            assert (poll.request_type, poll.response_type) == ("application/jwt",) * 2
        else:
            # Draft 13-15 deferred endpoints speak JSON only.
            assert (poll.request_type, poll.response_type) == ("application/json",) * 2


@pytest.mark.parametrize("version", VERSIONS, ids=IDS)
async def test_issuer_requiring_encryption_and_policy_off(
    version: SpecVersion, clock: FakeClock
) -> None:
    required = attrs.evolve(ENCRYPTION, response_required=True)
    e2e = build_e2e_issuer(version, clock, encryption=required)
    client = make_client(e2e, clock, policy=WalletPolicy(encryption="off"))
    offer = await client.parse_offer(e2e.offer_links["pre_auth"])
    with pytest.raises(MetadataError, match="requires response encryption"):
        await client.accept_offer(offer)
    assert not e2e.calls("/token")  # refused before a token is asked for


async def test_policy_require_and_an_issuer_without_encryption(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    client = make_client(e2e, clock, policy=WalletPolicy(encryption="require"))
    offer = await client.parse_offer(e2e.offer_links["pre_auth"])
    with pytest.raises(MetadataError, match="does not offer response encryption"):
        await client.accept_offer(offer)


async def test_required_request_and_response_encryption(clock: FakeClock) -> None:
    required = attrs.evolve(ENCRYPTION, request_required=True, response_required=True)
    e2e = build_e2e_issuer(SpecVersion.V1, clock, encryption=required)
    seen = record(e2e)
    client = make_client(e2e, clock, policy=WalletPolicy(encryption="require"))
    result = await client.accept_offer(await client.parse_offer(e2e.offer_links["pre_auth"]))
    check_result(
        result, e2e=e2e, version=SpecVersion.V1, count=1, clock=clock, flow="pre-authorized_code"
    )
    assert [(s.request_type, s.response_type) for s in seen] == [("application/jwt",) * 2]


# --- over aiohttp on 127.0.0.1 ------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=IDS)
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_encrypted_issuance_over_aiohttp(version: SpecVersion, anyio_backend: str) -> None:
    del anyio_backend
    holder: list[E2eIssuer] = []

    async def handle(request: HttpRequest) -> HttpResponse:
        return await holder[0].handle(request)

    async with serve(handle) as served:
        # The issuer's clock stands at the real time: the wallet checks credentials with its own.
        e2e = build_e2e_issuer(
            version, FakeClock(time.time()), encryption=ENCRYPTION, issuer_url=served.base_url
        )
        holder.append(e2e)
        seen = record(e2e)
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            client = Oid4vciClient(
                transport, client_id=CLIENT_ID, policy=WalletPolicy(allow_insecure_loopback=True)
            )
            offer = await client.parse_offer(e2e.offer_links["pre_auth"])
            result = await client.accept_offer(offer)
    assert result.credentials and result.credentials[0].verified
    assert result.spec_version is version
    assert [(s.request_type, s.response_type) for s in seen] == [
        (expected_request_type(version), "application/jwt")
    ]


async def test_saved_deferred_flow_resumes_with_encryption(clock: FakeClock) -> None:
    claims = DeferringClaims(interval=3)
    e2e = build_e2e_issuer(
        SpecVersion.V1,
        clock,
        encryption=attrs.evolve(ENCRYPTION, request_required=True, response_required=True),
        claims_source=claims,
    )
    seen = record(e2e)
    client = make_client(e2e, clock)
    offer = await client.parse_offer(e2e.offer_links["pre_auth"])
    policy = WalletPolicy(deferred_max_wait=0)
    flow = IssuanceFlow.from_offer(offer, policy=policy, clock=clock, client_id=CLIENT_ID)
    transport = e2e.transport()
    assert (await run_flow(flow, transport)).state is FlowState.DEFERRED
    saved = flow.to_json()
    claims.ready = True
    resumed = IssuanceFlow.from_json(saved, policy=WalletPolicy(), clock=clock)
    resumed.resume_polling(max_wait=10)
    result = await run_flow(resumed, transport, sleep=FakeSleep(clock))
    assert result.state is FlowState.DONE and result.credentials[0].verified
    assert [(s.path, s.request_type, s.response_type) for s in seen] == [
        ("/credential", "application/jwt", "application/jwt"),
        ("/deferred", "application/jwt", "application/jwt"),
    ]
    with pytest.raises(MetadataError, match="requires response encryption"):
        IssuanceFlow.from_json(saved, policy=WalletPolicy(encryption="off"), clock=clock)


@pytest.mark.parametrize("version", VERSIONS, ids=IDS)
async def test_response_encryption_only(version: SpecVersion, clock: FakeClock) -> None:
    """An issuer without request keys: the 1.0 wallet falls back to a plain request carrying
    ``credential_response_encryption`` (the Draft 15 behaviour, see OID4VCI 1.0 §10)."""
    e2e = build_e2e_issuer(version, clock, encryption=EncryptionSettings())
    seen = record(e2e)
    client = make_client(e2e, clock)
    result = await client.accept_offer(await client.parse_offer(e2e.offer_links["pre_auth"]))
    check_result(result, e2e=e2e, version=version, count=1, clock=clock, flow="pre-authorized_code")
    assert [(s.request_type, s.response_type) for s in seen] == [
        ("application/json", "application/jwt")
    ]
