"""The wallet refreshes an expired access token (RFC 6749 §6, RFC 9449 §5) to finish a batch
and a deferred poll: the real wallet against the real issuer on a fake clock, in memory and
over aiohttp on 127.0.0.1 (with a wallet attestation, which the refresh must carry)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs
import pytest

from oid4vci.attestation import CLIENT_ATTESTATION_HEADER, CLIENT_ATTESTATION_POP_HEADER
from oid4vci.errors import CredentialRequestError, TokenError
from oid4vci.issuer import Issuer
from oid4vci.issuer.config import ClaimsSource, RefreshTokenSettings
from oid4vci.issuer.demo import DemoClaimsSource
from oid4vci.jose import LocalSigner
from oid4vci.transports.aiohttp import AiohttpTransport, serve
from oid4vci.versions import SpecVersion
from oid4vci.wallet import (
    Event,
    FlowState,
    IssuanceFlow,
    Oid4vciClient,
    WalletPolicy,
    pre_authorized_grant,
    refresh_access_token,
    request_token,
)
from tests.attestation_support import (
    AttestedIssuer,
    Recorder,
    attested_issuer,
    make_provider,
    provider_pki,
)
from tests.conftest import FakeClock
from tests.e2e.conftest import (
    DeferringClaims,
    E2eIssuer,
    FakeSleep,
    build_e2e_issuer,
    make_client,
)

ROTATE = RefreshTokenSettings(ttl=3600, family_lifetime=7200, rotate=True)


class ExpiringClaims:
    """The demo claims, moving the clock past the access token's life after the first call."""

    def __init__(self, clock: FakeClock, ttl: int) -> None:
        self.clock = clock
        self.ttl = ttl
        self.calls = 0
        self._inner = DemoClaimsSource()

    async def __call__(self, subject: str, configuration_id: str) -> Mapping[str, Any]:
        self.calls += 1
        if self.calls == 1:
            self.clock.advance(self.ttl + 1)
        return await self._inner(subject, configuration_id)


def refreshing_issuer(
    version: SpecVersion,
    clock: FakeClock,
    claims: ClaimsSource,
    refresh: RefreshTokenSettings | None = ROTATE,
) -> E2eIssuer:
    """The e2e issuer with refresh tokens and one credential per request (no batches)."""
    e2e = build_e2e_issuer(version, clock, claims_source=claims)
    config = attrs.evolve(e2e.issuer.config, refresh_tokens=refresh, batch_size=1)
    e2e.issuer = Issuer(config, offer_templates=e2e.issuer.offer_templates.values())
    return e2e


def statuses(e2e: E2eIssuer, path: str) -> list[int]:
    return [e.status for e in e2e.calls(path)]


@pytest.mark.parametrize("version", [SpecVersion.V1, SpecVersion.DRAFT_13], ids=["v1", "d13"])
async def test_batch_finishes_after_the_access_token_expired(
    clock: FakeClock, version: SpecVersion
) -> None:
    e2e = refreshing_issuer(version, clock, ExpiringClaims(clock, 600))
    client = make_client(e2e, clock)
    result = await client.accept_offer(e2e.offer_links["pre_auth"], count=2)
    assert result.state is FlowState.DONE
    assert len(result.credentials) == 2 and all(c.verified for c in result.credentials)
    # the second request met an expired token: refreshed once, then sent again
    assert statuses(e2e, "/credential") == [200, 401, 200]
    assert statuses(e2e, "/token") == [200, 200]
    # the notification after it uses the refreshed token
    await client.notify(result, "credential_accepted")
    assert statuses(e2e, "/notification") == [204, 204]  # one per credential


async def test_the_flow_table_shows_the_refresh(clock: FakeClock) -> None:
    e2e = refreshing_issuer(SpecVersion.V1, clock, ExpiringClaims(clock, 600))
    transport = e2e.transport()
    flow = IssuanceFlow.from_offer(
        e2e.offer_links["pre_auth"], policy=WalletPolicy(), count=2, clock=clock
    )
    from oid4vci.wallet import run_flow

    await run_flow(flow, transport)
    rows = flow.history
    assert (FlowState.REQUESTING_CREDENTIAL, Event.ACCESS_TOKEN_EXPIRED) in rows
    assert (FlowState.REFRESHING_TOKEN, Event.TOKEN_REFRESHED) in rows


async def test_without_a_refresh_token_the_expired_token_fails_the_flow(
    clock: FakeClock,
) -> None:
    e2e = refreshing_issuer(SpecVersion.V1, clock, ExpiringClaims(clock, 600), refresh=None)
    client = make_client(e2e, clock)
    with pytest.raises(CredentialRequestError) as info:
        await client.accept_offer(e2e.offer_links["pre_auth"], count=2)
    assert info.value.error == "invalid_token"
    assert statuses(e2e, "/token") == [200]


async def test_a_refused_refresh_fails_the_flow_once(clock: FakeClock) -> None:
    """The refresh token ran out too: the flow fails with the token endpoint's error."""
    e2e = refreshing_issuer(
        SpecVersion.V1,
        clock,
        ExpiringClaims(clock, 3600),
        refresh=RefreshTokenSettings(ttl=600, family_lifetime=600, rotate=True),
    )
    client = make_client(e2e, clock)
    with pytest.raises(TokenError) as info:
        await client.accept_offer(e2e.offer_links["pre_auth"], count=2)
    assert info.value.error == "invalid_grant"
    assert statuses(e2e, "/token") == [200, 400]


@pytest.mark.parametrize("version", [SpecVersion.V1, SpecVersion.DRAFT_14], ids=["v1", "d14"])
async def test_deferred_poll_after_the_access_token_expired(
    clock: FakeClock, version: SpecVersion
) -> None:
    source = DeferringClaims(interval=700)  # longer than the access token's 600 s

    async def on_sleep(n: int) -> None:
        source.ready = True

    e2e = refreshing_issuer(version, clock, source)
    sleep = FakeSleep(clock, on_sleep)
    client = make_client(
        e2e, clock, sleep=sleep, policy=WalletPolicy(deferred_default_interval=700)
    )
    started = await client.accept_offer(e2e.offer_links["pre_auth"])
    assert started.state is FlowState.DEFERRED
    # the saved form keeps the refresh token as a secret, like the access token
    session = started.deferred[0].session
    assert session.refresh_token is not None
    assert session.refresh_token not in repr(session)
    credentials = await client.poll_deferred(started, max_wait=800)
    assert len(credentials) == 1 and credentials[0].verified
    assert statuses(e2e, "/deferred") == [401, 200]
    assert statuses(e2e, "/token") == [200, 200]


async def test_saved_flow_keeps_the_refresh_token(clock: FakeClock) -> None:
    source = DeferringClaims(interval=700)
    e2e = refreshing_issuer(SpecVersion.V1, clock, source)
    transport = e2e.transport()
    flow = IssuanceFlow.from_offer(
        e2e.offer_links["pre_auth"],
        policy=WalletPolicy(deferred_max_wait=0),
        clock=clock,
    )
    from oid4vci.wallet import run_flow

    await run_flow(flow, transport)
    assert flow.state is FlowState.DEFERRED
    saved = flow.to_json()
    refresh = json.loads(saved)["session"]["refresh_token"]
    assert isinstance(refresh, str) and refresh not in repr(flow)
    resumed = IssuanceFlow.from_json(saved, policy=WalletPolicy(), clock=clock)
    source.ready = True
    clock.advance(701)
    resumed.resume_polling(max_wait=10)
    result = await run_flow(resumed, transport)
    assert len(result.credentials) == 1
    assert statuses(e2e, "/deferred") == [401, 200]


async def test_low_level_refresh(clock: FakeClock) -> None:
    e2e = refreshing_issuer(SpecVersion.V1, clock, DemoClaimsSource())
    created = await e2e.issuer.create_pre_authorized_offer(
        configuration_ids=["identity_credential"], subject="alice"
    )
    assert created.pre_authorized_code is not None
    key = LocalSigner.generate()
    transport = e2e.transport()
    token_endpoint = e2e.issuer.config.endpoint("token")
    first = await request_token(
        transport,
        token_endpoint,
        pre_authorized_grant(created.pre_authorized_code),
        dpop_key=key,
        clock=clock,
    )
    assert first.refresh_token is not None
    second = await refresh_access_token(
        transport, token_endpoint, first.refresh_token, dpop_key=key, clock=clock
    )
    assert second.is_dpop and second.refresh_token not in (None, first.refresh_token)
    assert second.access_token != first.access_token
    with pytest.raises(TokenError) as info:  # rotated: the old one is used up
        await refresh_access_token(
            transport, token_endpoint, first.refresh_token, dpop_key=key, clock=clock
        )
    assert info.value.error == "invalid_grant"
    assert second.refresh_token is not None and second.refresh_token not in repr(second)


# --- over aiohttp, with a wallet attestation ------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_attested_batch_over_aiohttp(clock: FakeClock) -> None:
    pki = provider_pki()
    holder: dict[str, Issuer] = {}
    tokens: list[Any] = []

    async def handle(request: Any) -> Any:
        if request.url.endswith("/token"):
            tokens.append(request)
        return await holder["issuer"].handle(request)

    async with (
        serve(handle) as served,
        AiohttpTransport(allow_insecure_loopback=True) as transport,
    ):
        base: AttestedIssuer = attested_issuer(
            clock, pki, issuer_url=served.base_url, key_required=None
        )
        config = attrs.evolve(
            base.issuer.config,
            refresh_tokens=ROTATE,
            batch_size=1,
            claims_source=ExpiringClaims(clock, base.issuer.config.access_token_ttl),
        )
        issuer = holder["issuer"] = Issuer(
            config, offer_templates=base.issuer.offer_templates.values()
        )
        link = issuer.offer_template_link("pre_auth")
        client = Oid4vciClient(
            transport,
            clock=clock,
            policy=WalletPolicy(
                attestation_provider=make_provider(pki, clock), allow_insecure_loopback=True
            ),
        )
        result = await client.accept_offer(link, count=2)
        assert len(result.credentials) == 2 and all(c.verified for c in result.credentials)
        assert [r.form_body().get("grant_type") for r in tokens] == [
            "urn:ietf:params:oauth:grant-type:pre-authorized_code",
            "refresh_token",
        ]
        assert all(r.headers.get(CLIENT_ATTESTATION_HEADER) for r in tokens)


async def test_attested_deferred_poll_refreshes_with_the_attestation(clock: FakeClock) -> None:
    """``poll_deferred`` and a resumed saved flow never read the AS metadata; their refresh of
    an expired token still carries the wallet attestation the grant was made with (an AS
    requiring attestation refused it before: ``invalid_client``)."""
    pki = provider_pki()
    source = DeferringClaims(interval=700)  # longer than the access token's 600 s
    base = attested_issuer(clock, pki, key_required=None)
    config = attrs.evolve(
        base.issuer.config, refresh_tokens=ROTATE, batch_size=1, claims_source=source
    )
    issuer = Issuer(config, offer_templates=base.issuer.offer_templates.values())
    recorder = Recorder({base.issuer.config.credential_issuer: issuer.handle})

    async def on_sleep(n: int) -> None:
        source.ready = True

    policy = WalletPolicy(attestation_provider=make_provider(pki, clock))
    client = Oid4vciClient(recorder, clock=clock, sleep=FakeSleep(clock, on_sleep), policy=policy)
    started = await client.accept_offer(issuer.offer_template_link("pre_auth"))
    session = started.deferred[0].session
    assert session.authorization_server == config.credential_issuer
    saved = IssuanceFlow.for_deferred(started.deferred, policy=policy, clock=clock).to_json()
    restored = IssuanceFlow.from_json(saved, policy=policy, clock=clock).to_json()
    for text in (saved, restored):
        assert json.loads(text)["session"]["authorization_server"] == config.credential_issuer
    credentials = await client.poll_deferred(started, max_wait=800)
    assert len(credentials) == 1 and credentials[0].verified
    refreshes = [
        r for r in recorder.to("/token") if r.form_body().get("grant_type") == "refresh_token"
    ]
    assert len(refreshes) == 1
    assert refreshes[0].headers.get(CLIENT_ATTESTATION_HEADER)
    assert refreshes[0].headers.get(CLIENT_ATTESTATION_POP_HEADER)
