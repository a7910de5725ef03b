"""HAIP gaps on the wallet side, the real wallet against the real issuer on a fake clock: a
deferred poll or a notification of an attested grant refreshes its access token with the
wallet attestation (the flow has no AS metadata there), ``use_fresh_attestation`` is answered
once with a fresh attestation of the same instance key, and the notification endpoint's
``invalid_token`` is answered with one refresh. In memory and over aiohttp on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import pytest

from oid4vci.attestation import (
    CLIENT_ATTESTATION_HEADER,
    ClientAttestation,
    LocalAttestationProvider,
)
from oid4vci.errors import (
    CredentialRequestError,
    DpopError,
    StaleAttestationError,
    UsageError,
)
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import Issuer
from oid4vci.issuer.config import ClaimsSource, RefreshTokenSettings
from oid4vci.issuer.demo import DemoClaimsSource
from oid4vci.jose import decode_jws, jwk_thumbprint
from oid4vci.transports.aiohttp import AiohttpTransport, serve
from oid4vci.wallet import (
    Event,
    FlowState,
    IssuanceFlow,
    Oid4vciClient,
    WalletPolicy,
    run_flow,
)
from tests.attestation_support import (
    ISSUER,
    REDIRECT_URI,
    AttestedIssuer,
    DroppingProvider,
    Recorder,
    attested_issuer,
    browser_login,
    make_provider,
    provider_pki,
)
from tests.conftest import FakeClock
from tests.e2e.conftest import DeferringClaims, FakeSleep
from tests.x509_support import Pki

ROTATE = RefreshTokenSettings(ttl=3600, family_lifetime=7200, rotate=True)
TTL = 600  # the issuer's access token lifetime
LATER = TTL + 100  # a deferral interval past it


def refreshing(
    clock: FakeClock,
    pki: Pki,
    claims: ClaimsSource | None = None,
    *,
    issuer_url: str = ISSUER,
    max_age: float | None = None,
) -> AttestedIssuer:
    """The attested demo issuer with rotating refresh tokens, one credential per request and
    (``max_age``) a maximum attestation age."""
    base = attested_issuer(clock, pki, issuer_url=issuer_url, key_required=None)
    config = base.issuer.config
    assert config.attestation is not None and config.access_token_ttl == TTL
    config = attrs.evolve(
        config,
        refresh_tokens=ROTATE,
        batch_size=1,
        claims_source=claims or DemoClaimsSource(),
        attestation=attrs.evolve(config.attestation, max_attestation_age=max_age),
    )
    issuer = Issuer(config, offer_templates=base.issuer.offer_templates.values())
    links = {name: issuer.offer_template_link(name) for name in base.links}
    return attrs.evolve(base, issuer=issuer, links=links)


class Answers(Recorder):
    """A recorder that also keeps each answer's status."""

    def __init__(self, handler: Any) -> None:
        super().__init__({ISSUER: handler})
        self.status: dict[int, int] = {}

    async def send(self, request: HttpRequest) -> HttpResponse:
        response = await super().send(request)
        self.status[id(request)] = response.status
        return response

    def statuses(self, path: str) -> list[int]:
        return [self.status[id(r)] for r in self.to(path)]

    def grants(self) -> list[str]:
        return [r.form_body().get("grant_type", "") for r in self.to("/token")]


def deferring(clock: FakeClock) -> tuple[DeferringClaims, FakeSleep]:
    source = DeferringClaims(interval=LATER)

    async def ready(n: int) -> None:
        source.ready = True

    return source, FakeSleep(clock, ready)


def deferring_client(
    transport: Any, pki: Pki, clock: FakeClock, sleep: FakeSleep, **policy: Any
) -> Oid4vciClient:
    """An attested wallet that stops at the first deferral and polls at ``LATER``."""
    return Oid4vciClient(
        transport,
        clock=clock,
        sleep=sleep,
        policy=WalletPolicy(
            attestation_provider=make_provider(pki, clock),
            deferred_default_interval=LATER,
            deferred_max_wait=0,
            **policy,
        ),
    )


# --- 1. a deferred poll of an attested grant refreshes with the attestation -----------------


async def test_deferred_poll_of_an_attested_grant_refreshes_with_the_attestation(
    clock: FakeClock,
) -> None:
    pki = provider_pki()
    source, sleep = deferring(clock)
    issuer = refreshing(clock, pki, source)
    recorder = Answers(issuer.handle)
    client = deferring_client(recorder, pki, clock, sleep)
    started = await client.accept_offer(issuer.links["pre_auth"])
    assert started.state is FlowState.DEFERRED
    session = started.deferred[0].session
    assert session.token_endpoint_auth_method == "attest_jwt_client_auth"
    assert session.authorization_server == ISSUER
    # for_deferred: no AS metadata in this flow; the session says how to refresh
    credentials = await client.poll_deferred(started, max_wait=LATER + 10)
    assert len(credentials) == 1 and credentials[0].verified
    assert recorder.statuses("/deferred") == [401, 200]
    assert recorder.statuses("/token") == [200, 200]
    refresh = recorder.to("/token")[1]
    assert refresh.form_body()["grant_type"] == "refresh_token"
    assert refresh.headers.get(CLIENT_ATTESTATION_HEADER)


async def test_a_saved_deferred_flow_refreshes_with_the_attestation(clock: FakeClock) -> None:
    pki = provider_pki()
    source, _ = deferring(clock)
    issuer = refreshing(clock, pki, source)
    recorder = Answers(issuer.handle)
    policy = WalletPolicy(attestation_provider=make_provider(pki, clock), deferred_max_wait=0)
    flow = IssuanceFlow.from_offer(issuer.links["pre_auth"], policy=policy, clock=clock)
    await run_flow(flow, recorder)
    assert flow.state is FlowState.DEFERRED
    resumed = IssuanceFlow.from_json(flow.to_json(), policy=policy, clock=clock)
    source.ready = True
    clock.advance(LATER + 1)
    resumed.resume_polling(max_wait=10)
    result = await run_flow(resumed, recorder)
    assert len(result.credentials) == 1
    assert recorder.statuses("/deferred") == [401, 200]
    assert recorder.grants()[-1] == "refresh_token"
    assert recorder.to("/token")[-1].headers.get(CLIENT_ATTESTATION_HEADER)


async def test_refreshing_an_attested_grant_without_a_provider_is_a_usage_error(
    clock: FakeClock,
) -> None:
    """Polling with a policy that lost the provider: refused before a request is sent."""
    pki = provider_pki()
    source, sleep = deferring(clock)
    issuer = refreshing(clock, pki, source)
    recorder = Answers(issuer.handle)
    client = Oid4vciClient(
        recorder,
        clock=clock,
        sleep=sleep,
        policy=WalletPolicy(attestation_provider=make_provider(pki, clock), deferred_max_wait=0),
    )
    started = await client.accept_offer(issuer.links["pre_auth"])
    bare = Oid4vciClient(recorder, clock=clock, sleep=sleep, policy=WalletPolicy())
    clock.advance(LATER + 1)
    with pytest.raises(UsageError, match="no attestation provider"):
        await bare.poll_deferred(started, max_wait=10)
    assert recorder.statuses("/token") == [200]


# --- 2. use_fresh_attestation ------------------------------------------------------------


async def test_use_fresh_attestation_is_answered_with_a_fresh_attestation(
    clock: FakeClock,
) -> None:
    pki = provider_pki()
    issuer = refreshing(clock, pki, max_age=300)
    provider = make_provider(pki, clock)
    old = await provider.client_attestation(authorization_server=ISSUER)
    clock.advance(301)  # the cached attestation is now too old for this issuer
    recorder = Answers(issuer.handle)
    flow = IssuanceFlow.from_offer(
        issuer.links["pre_auth"], policy=WalletPolicy(attestation_provider=provider), clock=clock
    )
    result = await run_flow(flow, recorder)
    assert len(result.credentials) == 1
    assert recorder.statuses("/token") == [400, 200]
    assert (FlowState.REQUESTING_TOKEN, Event.USE_FRESH_ATTESTATION) in flow.history
    sent = [r.headers[CLIENT_ATTESTATION_HEADER] for r in recorder.to("/token")]
    assert sent[0] == old.attestation and sent[1] != old.attestation
    # the same instance key: codes and refresh tokens stay bound to it
    keys = {jwk_thumbprint(decode_jws(a).payload["cnf"]["jwk"]) for a in sent}
    assert len(keys) == 1


async def test_a_second_use_fresh_attestation_fails_typed(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = refreshing(clock, pki, max_age=300)
    provider = make_provider(pki, clock)
    await provider.client_attestation(authorization_server=ISSUER)
    clock.advance(301)
    recorder = Answers(issuer.handle)
    flow = IssuanceFlow.from_offer(
        issuer.links["pre_auth"],
        # a backend that ignores "fresh" and keeps handing out the old attestation
        policy=WalletPolicy(attestation_provider=DroppingProvider(inner=provider, stale=True)),
        clock=clock,
    )
    with pytest.raises(StaleAttestationError) as caught:
        await run_flow(flow, recorder)
    assert caught.value.error == "use_fresh_attestation" and caught.value.status == 400
    assert caught.value.request_line == f"POST {ISSUER}/token"
    assert flow.state is FlowState.FAILED
    assert recorder.statuses("/token") == [400, 400]
    # nothing was used up: the offer's code still works for a wallet with fresh attestations
    again = IssuanceFlow.from_offer(
        issuer.links["pre_auth"], policy=WalletPolicy(attestation_provider=provider), clock=clock
    )
    assert len((await run_flow(again, recorder)).credentials) == 1


class _ProviderWithoutFresh:
    """A provider written before ``fresh`` joined the protocol."""

    def __init__(self, inner: LocalAttestationProvider) -> None:
        self.inner = inner
        self.client_id = inner.client_id

    async def client_attestation(self, *, authorization_server: str) -> ClientAttestation:
        return await self.inner.client_attestation(authorization_server=authorization_server)

    async def key_attestation(
        self, *, keys: Sequence[Mapping[str, Any]], nonce: str | None, credential_issuer: str
    ) -> str:
        return await self.inner.key_attestation(
            keys=keys, nonce=nonce, credential_issuer=credential_issuer
        )


async def test_a_provider_without_fresh_fails_typed_at_use_fresh_attestation(
    clock: FakeClock,
) -> None:
    pki = provider_pki()
    issuer = refreshing(clock, pki, max_age=300)
    provider = make_provider(pki, clock)
    await provider.client_attestation(authorization_server=ISSUER)
    clock.advance(301)  # the cached attestation is now too old for this issuer
    recorder = Answers(issuer.handle)
    flow = IssuanceFlow.from_offer(
        issuer.links["pre_auth"],
        policy=WalletPolicy(attestation_provider=_ProviderWithoutFresh(provider)),  # type: ignore[arg-type]
        clock=clock,
    )
    with pytest.raises(UsageError, match="takes no `fresh` argument"):
        await run_flow(flow, recorder)
    assert recorder.statuses("/token") == [400]
    # nothing was used up: the offer's code still works for a provider that can refresh
    again = IssuanceFlow.from_offer(
        issuer.links["pre_auth"], policy=WalletPolicy(attestation_provider=provider), clock=clock
    )
    assert len((await run_flow(again, recorder)).credentials) == 1


async def test_use_fresh_attestation_at_par(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = refreshing(clock, pki, max_age=300)
    provider = make_provider(pki, clock)
    await provider.client_attestation(authorization_server=ISSUER)
    clock.advance(301)
    recorder = Answers(issuer.handle)
    client = Oid4vciClient(
        recorder, clock=clock, policy=WalletPolicy(attestation_provider=provider, par="always")
    )
    url, pending = await client.authorize(issuer.links["auth_code"], redirect_uri=REDIRECT_URI)
    assert recorder.statuses("/par") == [400, 201]
    assert (FlowState.PUSHING_AUTHORIZATION_REQUEST, Event.USE_FRESH_ATTESTATION) in (
        pending.history
    )
    # the code is bound to the instance key of the (fresh) PAR attestation: the token
    # request, with the cached fresh attestation, redeems it
    result = await client.claim(pending, await browser_login(issuer, url))
    assert len(result.credentials) == 1
    assert recorder.statuses("/token") == [200]


async def test_deferred_refresh_with_a_too_old_attestation(clock: FakeClock) -> None:
    """The deferred poll's refresh meets use_fresh_attestation (the attestation aged with
    the deferral): a fresh one of the same key, the refresh token still bound to it."""
    pki = provider_pki()
    source, sleep = deferring(clock)
    issuer = refreshing(clock, pki, source, max_age=TTL + 50)
    recorder = Answers(issuer.handle)
    client = deferring_client(recorder, pki, clock, sleep)
    started = await client.accept_offer(issuer.links["pre_auth"])
    credentials = await client.poll_deferred(started, max_wait=LATER + 10)
    assert len(credentials) == 1
    assert recorder.statuses("/token") == [200, 400, 200]
    assert recorder.grants() == [
        "urn:ietf:params:oauth:grant-type:pre-authorized_code",
        "refresh_token",
        "refresh_token",
    ]


# --- 4. refresh at the notification endpoint ---------------------------------------------


async def test_notification_after_the_access_token_expired(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = refreshing(clock, pki)
    recorder = Answers(issuer.handle)
    client = Oid4vciClient(
        recorder, clock=clock, policy=WalletPolicy(attestation_provider=make_provider(pki, clock))
    )
    result = await client.accept_offer(issuer.links["pre_auth"])
    clock.advance(TTL + 1)
    await client.notify(result, "credential_accepted")
    assert recorder.statuses("/notification") == [401, 204]
    assert recorder.grants()[-1] == "refresh_token"
    assert recorder.to("/token")[-1].headers.get(CLIENT_ATTESTATION_HEADER)


# --- over aiohttp on 127.0.0.1 -----------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_over_aiohttp(clock: FakeClock) -> None:
    """Deferred poll, use_fresh_attestation at the refresh, then an expired-token notification."""
    pki = provider_pki()
    source, sleep = deferring(clock)
    holder: dict[str, AttestedIssuer] = {}
    grants: list[tuple[str, int]] = []

    async def handle(request: HttpRequest) -> HttpResponse:
        response = await holder["issuer"].handle(request)
        if request.url.endswith("/token"):
            grants.append((request.form_body().get("grant_type", ""), response.status))
        return response

    async with (
        serve(handle) as served,
        AiohttpTransport(allow_insecure_loopback=True) as transport,
    ):
        issuer = holder["issuer"] = refreshing(
            clock, pki, source, issuer_url=served.base_url, max_age=TTL + 50
        )
        client = deferring_client(transport, pki, clock, sleep, allow_insecure_loopback=True)
        started = await client.accept_offer(issuer.links["pre_auth"])
        credentials = await client.poll_deferred(started, max_wait=LATER + 10)
        assert len(credentials) == 1 and credentials[0].verified
        clock.advance(TTL + 1)
        await client.notify(credentials[0], "credential_accepted")
    # the deferred refresh met use_fresh_attestation; the notification's refresh did not
    # (its attestation was minted at the first refresh, younger than max_age)
    assert [g for g, _ in grants[1:]] == ["refresh_token"] * 3
    assert [s for _, s in grants] == [200, 400, 200, 200]


@pytest.mark.parametrize(
    ("error", "raised", "refreshes"),
    [("invalid_token", CredentialRequestError, 1), ("use_dpop_nonce", DpopError, 0)],
)
async def test_notification_retries_are_bounded(
    clock: FakeClock, error: str, raised: type[Exception], refreshes: int
) -> None:
    """A notification endpoint that keeps answering ``error``: one refresh (the refreshed
    token goes back to the same attempt) or one new-nonce retry, then the error."""
    pki = provider_pki()
    issuer = refreshing(clock, pki)
    seen: list[int] = []

    async def handle(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/notification"):
            seen.append(1)
            assert len(seen) < 5, "the notification is retried without bound"
            return HttpResponse(
                status=401,
                headers=[
                    ("WWW-Authenticate", f'DPoP error="{error}"'),
                    ("DPoP-Nonce", f"nonce-{len(seen)}"),
                ],
                body=b"",
            )
        return await issuer.handle(request)

    recorder = Answers(handle)
    client = Oid4vciClient(
        recorder, clock=clock, policy=WalletPolicy(attestation_provider=make_provider(pki, clock))
    )
    result = await client.accept_offer(issuer.links["pre_auth"])
    with pytest.raises(raised) as caught:
        await client.notify(result, "credential_accepted")
    assert getattr(caught.value, "error", None) == error
    assert len(seen) == 2
    assert recorder.grants().count("refresh_token") == refreshes


def test_which_rows_start_an_attempt() -> None:
    from oid4vci.wallet.states import ATTEMPT_STARTS, TRANSITIONS

    for rule in TRANSITIONS.values():
        if rule.limit is not None or rule.same_attempt:
            assert not rule.starts_attempt
        elif rule.target in ATTEMPT_STARTS:
            assert rule.starts_attempt
    assert TRANSITIONS[(FlowState.DONE, Event.NOTIFICATION_REQUESTED)].starts_attempt
    assert not TRANSITIONS[
        (FlowState.REFRESHING_TOKEN_FOR_NOTIFICATION, Event.TOKEN_REFRESHED)
    ].starts_attempt
