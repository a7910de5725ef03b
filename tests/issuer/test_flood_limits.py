"""Flood limits: token buckets, client addresses behind proxies, quotas, refusal metrics."""

from __future__ import annotations

import logging
import time
from typing import Any

import attrs
import pytest

from oid4vci.errors import QuotaExceededError, UsageError
from oid4vci.http import HttpRequest
from oid4vci.issuer import Issuer, Tenancy, build_demo_issuer
from oid4vci.issuer.client_address import (
    client_key,
    forwarded_for_hops,
    trusted_networks,
)
from oid4vci.issuer.flood_limits import FloodLimits, RateLimit, claim_room
from oid4vci.issuer.refusals import REFUSALS_METRIC, Counters, Refusals
from oid4vci.issuer.store import MemoryStore, Store, take_token
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import Oid4vciClient
from tests.conftest import FakeClock
from tests.issuer.test_par import make_config, par_form, push

ISSUER = "https://issuer.example"


# -- the token bucket ------------------------------------------------------------------------


async def test_bucket_burst_then_refill(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    waits = [await store.take_token("rate:x", 2.0, 5) for _ in range(6)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(0.5)  # one token at 2/s
    clock.advance(0.25)
    assert await store.take_token("rate:x", 2.0, 5) == pytest.approx(0.25)
    clock.advance(0.25)
    assert await store.take_token("rate:x", 2.0, 5) == 0.0
    assert await store.take_token("rate:x", 2.0, 5) == pytest.approx(0.5)
    # Buckets of other keys are their own.
    assert await store.take_token("rate:y", 2.0, 5) == 0.0
    # A bucket refills to its burst, never beyond; its entry is gone once full again.
    clock.advance(3600)
    assert len(store) == 0
    assert [await store.take_token("rate:x", 2.0, 5) for _ in range(6)].count(0.0) == 5


async def test_bucket_arguments_are_checked(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    for rate, burst in ((0.0, 1), (float("inf"), 1), (1.0, 0), (1.0, True)):
        with pytest.raises(UsageError):
            await take_token(store, "rate:x", rate, burst)
    await store.put("rate:z", "junk", 10)
    with pytest.raises(UsageError):
        await store.take_token("rate:z", 1.0, 1)


async def test_a_bucket_reads_as_tokens_and_time(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    assert await store.take_token("rate:x", 2.0, 5) == 0.0
    assert await store.get("rate:x") == [4.0, clock()]
    with pytest.raises(UsageError):
        await store.increment("rate:x", 10)
    # A bucket written by hand as [tokens, time] is used; anything else is refused.
    await store.put("rate:hand", [0.5, clock()], 10)
    assert await store.take_token("rate:hand", 2.0, 5) == pytest.approx(0.25)
    await store.put("rate:junk", ["a", "b"], 10)
    with pytest.raises(UsageError):
        await store.take_token("rate:junk", 2.0, 5)
    assert await store.take("rate:x") == [4.0, clock()]
    assert await store.get("rate:x") is None


class IncrementOnlyStore:
    """A third-party Store with only the six protocol methods (no take_token)."""

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner

    async def put(self, key: str, value: Any, ttl: float) -> None:
        await self.inner.put(key, value, ttl)

    async def get(self, key: str) -> Any | None:
        return await self.inner.get(key)

    async def take(self, key: str) -> Any | None:
        return await self.inner.take(key)

    async def add_if_absent(self, key: str, value: Any, ttl: float) -> bool:
        return await self.inner.add_if_absent(key, value, ttl)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key)

    async def increment(self, key: str, ttl: float) -> int:
        return await self.inner.increment(key, ttl)


async def test_a_store_without_take_token_gets_a_fixed_window(clock: FakeClock) -> None:
    store: Store = IncrementOnlyStore(MemoryStore(clock=clock))
    waits = [await take_token(store, "rate:x", 2.0, 4) for _ in range(5)]
    assert waits == [0.0, 0.0, 0.0, 0.0, 2.0]  # 4 per 4/2 = 2 s window
    clock.advance(2.0)
    assert await take_token(store, "rate:x", 2.0, 4) == 0.0


# -- client addresses ------------------------------------------------------------------------


def _request(peer: str | None, **headers: str) -> HttpRequest:
    names = {"xff": "X-Forwarded-For", "fwd": "Forwarded"}
    items = [(names[k], v) for k, v in headers.items()]
    return HttpRequest(method="POST", url=ISSUER + "/nonce", headers=items, client_address=peer)


PROXIES = trusted_networks(["10.0.0.0/8", "::1"])


def test_a_header_from_an_untrusted_peer_is_ignored() -> None:
    spoofed = _request("198.51.100.7", xff="203.0.113.9")
    assert client_key(spoofed, PROXIES) == "198.51.100.7"
    assert client_key(spoofed) == "198.51.100.7"  # no proxies: never read


def test_the_rightmost_untrusted_hop_is_the_client() -> None:
    # The client wrote "1.1.1.1" itself; its proxy appended the real address.
    request = _request("10.0.0.2", xff="1.1.1.1, 203.0.113.9, 10.0.0.1")
    assert client_key(request, PROXIES) == "203.0.113.9"
    only_proxies = _request("10.0.0.2", xff="10.0.0.3, 10.0.0.1")
    assert client_key(only_proxies, PROXIES) == "10.0.0.3"
    no_header = _request("10.0.0.2")
    assert client_key(no_header, PROXIES) == "10.0.0.2"
    # A hop the proxy could not name keys the request by that proxy.
    unknown = _request("10.0.0.2", xff="1.1.1.1, unknown, 10.0.0.1")
    assert client_key(unknown, PROXIES) == "10.0.0.1"


def test_forwarded_header_rfc_7239() -> None:
    line = 'for=1.1.1.1, for="[2001:db8:cafe::17]:4711";proto=https;by=10.0.0.1, for=10.0.0.5'
    assert forwarded_for_hops([line]) == ["1.1.1.1", "[2001:db8:cafe::17]:4711", "10.0.0.5"]
    assert forwarded_for_hops(['for="a,b";by=x, proto=http']) == ["a,b", ""]
    request = _request("::1", fwd=line)
    assert client_key(request, PROXIES, header="forwarded") == "2001:db8:cafe::/64"
    # A proxy configured for Forwarded: an X-Forwarded-For the client sent is not read.
    both = _request("10.0.0.9", fwd="for=203.0.113.1", xff="198.51.100.1")
    assert client_key(both, PROXIES, header="forwarded") == "203.0.113.1"
    assert client_key(both, PROXIES) == "198.51.100.1"


def test_an_open_quote_cannot_swallow_the_proxy_hop() -> None:
    """RFC 7239 §4: a value is a token or a *closed* quoted-string. A client's ``for=X;x="``
    on a line its proxy appends to used to swallow the proxy's ``, for=<real>`` and pass X off
    as the last hop; the line is now unparseable and the request keyed by the proxy."""
    assert forwarded_for_hops(['for=198.51.100.7;x=", for=203.0.113.5']) == [""]
    smuggled = _request("10.0.0.2", fwd='for=198.51.100.7;x=", for=203.0.113.5')
    assert client_key(smuggled, PROXIES, header="forwarded") == "10.0.0.2"
    # a separate line of the proxy's own is still read: the client's broken line is not
    two_lines = HttpRequest(
        method="POST",
        url=ISSUER + "/nonce",
        headers=[("Forwarded", 'for=198.51.100.7;x="'), ("Forwarded", "for=203.0.113.5")],
        client_address="10.0.0.2",
    )
    assert client_key(two_lines, PROXIES, header="forwarded") == "203.0.113.5"


def test_addresses_are_normalised() -> None:
    assert client_key(_request("2001:db8::1")) == "2001:db8::/64"
    assert client_key(_request("2001:db8::2")) == "2001:db8::/64"
    assert client_key(_request("::ffff:192.0.2.1")) == "192.0.2.1"
    assert client_key(_request(None)) is None
    assert client_key(_request("not-an-address")) is None
    with pytest.raises(UsageError):
        trusted_networks(["10.0.0.0/33"])


# -- rate limits at the issuer ---------------------------------------------------------------


def _limited_issuer(clock: FakeClock, **limits: Any) -> Any:
    flood = FloodLimits(rate_limit=RateLimit(rate=1.0, burst=3), **limits)
    return build_demo_issuer(
        ISSUER, store=MemoryStore(clock=clock), clock=clock, flood_limits=flood
    )


async def test_over_the_limit_is_429_with_retry_after(clock: FakeClock) -> None:
    demo = _limited_issuer(clock)
    nonce = HttpRequest(method="POST", url=ISSUER + "/nonce", client_address="192.0.2.1")
    statuses = [(await demo.issuer.handle(nonce)).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = await demo.issuer.handle(nonce)
    assert refused.status == 429
    assert refused.headers.get("Retry-After") == "1"
    assert refused.headers.get("Cache-Control") == "no-store"
    assert refused.json_body()["error"] == "temporarily_unavailable"
    # Another client is not affected; nor are requests without an address (in-process).
    other = HttpRequest(method="POST", url=ISSUER + "/nonce", client_address="192.0.2.2")
    assert (await demo.issuer.handle(other)).status == 200
    anonymous = HttpRequest(method="POST", url=ISSUER + "/nonce")
    assert all([(await demo.issuer.handle(anonymous)).status == 200 for _ in range(10)])
    # Metadata is not rate limited.
    meta = HttpRequest(
        method="GET",
        url=ISSUER + "/.well-known/openid-credential-issuer",
        client_address="192.0.2.1",
    )
    assert (await demo.issuer.handle(meta)).status == 200
    clock.advance(1.0)
    assert (await demo.issuer.handle(nonce)).status == 200
    counters = demo.config.refusals.metrics
    assert isinstance(counters, Counters)
    assert counters.value(REFUSALS_METRIC, reason="rate_limited", endpoint="nonce") == 1


async def test_retry_after_is_the_wait_in_whole_seconds(clock: FakeClock) -> None:
    flood = FloodLimits(rate_limit=RateLimit(rate=0.1, burst=1))
    demo = build_demo_issuer(
        ISSUER, store=MemoryStore(clock=clock), clock=clock, flood_limits=flood
    )
    template = demo.offer_links["pre_auth"]
    assert "templates" in template
    url = ISSUER + "/offers/templates/pre_auth"
    fetch = HttpRequest(method="GET", url=url, client_address="192.0.2.1")
    assert (await demo.issuer.handle(fetch)).status == 200
    clock.advance(2.5)
    refused = await demo.issuer.handle(fetch)
    assert refused.status == 429
    assert refused.headers.get("Retry-After") == "8"  # 7.5 s to the next token, rounded up
    page = HttpRequest(method="GET", url=ISSUER + "/authorize", client_address="192.0.2.1")
    assert (await demo.issuer.handle(page)).status != 429  # its own bucket
    refused_page = await demo.issuer.handle(page)
    assert refused_page.status == 429
    assert refused_page.media_type == "text/html"
    assert refused_page.headers.get("Retry-After") == "10"


async def test_a_trusted_proxy_gives_each_client_its_bucket(clock: FakeClock) -> None:
    demo = _limited_issuer(clock, trusted_proxies=["127.0.0.1"])

    def nonce(client: str, peer: str = "127.0.0.1") -> HttpRequest:
        return HttpRequest(
            method="POST",
            url=ISSUER + "/nonce",
            headers={"X-Forwarded-For": client},
            client_address=peer,
        )

    flood = [(await demo.issuer.handle(nonce("198.51.100.1"))).status for _ in range(10)]
    assert flood.count(429) == 7
    assert (await demo.issuer.handle(nonce("198.51.100.2"))).status == 200
    # From an untrusted peer the header is the peer's own claim: keyed by the peer.
    spoofs = [
        (await demo.issuer.handle(nonce(f"203.0.113.{i}", peer="192.0.2.9"))).status
        for i in range(5)
    ]
    assert spoofs == [200, 200, 200, 429, 429]


# -- quotas ----------------------------------------------------------------------------------


async def test_a_par_flood_stays_in_its_quota_and_wallets_in_a_flow_go_on() -> None:
    clock = FakeClock(time.time())  # the wallet signs its proofs with the real time
    store = MemoryStore(max_entries=60, clock=clock)
    config = make_config(clock, flood_limits=FloodLimits(quotas={"par": 10}))
    config = attrs.evolve(config, store=store)
    demo = build_demo_issuer(ISSUER, store=store, clock=clock)
    # A wallet already holds a pre-authorized code.
    offer = await demo.issuer.create_pre_authorized_offer(
        configuration_ids=[demo.configuration_id], subject="alice"
    )
    statuses = [(await push(config, par_form())).status for _ in range(100)]
    assert statuses.count(201) == 10 and statuses.count(503) == 90
    assert store.stats().held <= 10 + 1 + 2  # the PARs, the quota counter, the wallet's code
    # The wallet's token and credential still find room.
    wallet = Oid4vciClient(InMemoryTransport(routes={ISSUER: demo.issuer.handle}))
    result = await wallet.accept_offer(offer.offer_uri)
    assert len(result.credentials) == 1
    counters = config.refusals.metrics
    assert isinstance(counters, Counters)
    assert counters.value(REFUSALS_METRIC, reason="quota", endpoint="par") == 90
    # The window ends with the PARs' TTL: the purpose has room again.
    clock.advance(config.par_ttl)
    assert (await push(config, par_form())).status == 201


async def test_claim_room_counts_per_purpose(clock: FakeClock) -> None:
    config = make_config(clock, flood_limits=FloodLimits(quotas={"par": 2, "offer_template": 1}))
    await claim_room("par", config)
    await claim_room("par", config)
    with pytest.raises(QuotaExceededError) as caught:
        await claim_room("par", config)
    assert caught.value.purpose == "par"
    await claim_room("offer_template", config)
    await claim_room("authorization_request", config)  # no quota: free
    with pytest.raises(UsageError):
        FloodLimits(quotas={"nonce": 5})
    with pytest.raises(UsageError):
        RateLimit(endpoints=["credential"])


async def test_a_template_flood_is_refused_past_its_quota(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    demo = build_demo_issuer(
        ISSUER,
        store=store,
        clock=clock,
        flood_limits=FloodLimits(quotas={"offer_template": 5}),
    )
    fetch = HttpRequest(method="GET", url=ISSUER + "/offers/templates/pre_auth")
    statuses = [(await demo.issuer.handle(fetch)).status for _ in range(20)]
    assert statuses.count(200) == 5 and statuses.count(503) == 15
    refused = await demo.issuer.handle(fetch)
    assert refused.headers.get("Retry-After") is not None


async def test_a_full_store_is_counted_as_store_full(clock: FakeClock) -> None:
    config = make_config(clock, flood_limits=FloodLimits(quotas={}))
    config = attrs.evolve(config, store=MemoryStore(max_entries=3, clock=clock))
    statuses = [(await push(config, par_form())).status for _ in range(5)]
    assert statuses == [201, 201, 201, 503, 503]
    counters = config.refusals.metrics
    assert isinstance(counters, Counters)
    assert counters.value(REFUSALS_METRIC, reason="store_full", endpoint="par") == 2


# -- refusal metrics and the once-a-minute warning -------------------------------------------


def test_counters_render_prometheus_text() -> None:
    counters = Counters()
    counters.increment(REFUSALS_METRIC, {"reason": "rate_limited", "endpoint": "nonce"})
    counters.increment(REFUSALS_METRIC, {"reason": "rate_limited", "endpoint": "nonce"})
    counters.increment(REFUSALS_METRIC, {"reason": "quota", "endpoint": 'p"ar'})
    assert counters.render() == (
        "# TYPE oid4vci_refusals_total counter\n"
        'oid4vci_refusals_total{endpoint="nonce",reason="rate_limited"} 2\n'
        'oid4vci_refusals_total{endpoint="p\\"ar",reason="quota"} 1\n'
    )
    assert counters.total(REFUSALS_METRIC) == 3
    assert counters.total(REFUSALS_METRIC, reason="quota") == 1
    assert Counters().render() == ""


def test_one_warning_per_minute_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(0.0)
    refusals = Refusals(clock=clock)
    caplog.set_level(logging.WARNING, logger="oid4vci.issuer")
    for _ in range(1000):
        refusals.record("rate_limited", "nonce")
        clock.advance(0.01)  # 10 s of refusals
    refusals.record("quota", "par")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert "rate_limited (1 since" in warnings[0] and "quota (1 since" in warnings[1]
    clock.advance(50.1)  # 60 s after the first
    refusals.record("rate_limited", "par")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 3
    assert "rate_limited (1000 since the last warning, latest at par endpoint)" in warnings[2]
    assert isinstance(refusals.metrics, Counters)
    assert refusals.metrics.total(REFUSALS_METRIC) == 1002


def test_a_broken_metrics_hook_does_not_break_refusals(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def increment(self, name: str, labels: Any) -> None:
            raise RuntimeError("exporter down: secret-ish detail")

    refusals = Refusals(metrics=Broken(), clock=FakeClock(0.0))
    refusals.record("store_full", "token")
    assert "RuntimeError" in caplog.text and "secret-ish" not in caplog.text
    with pytest.raises(UsageError):
        Refusals(warning_interval=0)


# -- tenants share one deployment ------------------------------------------------------------


async def test_tenants_share_the_quotas_and_a_client_has_one_bucket(clock: FakeClock) -> None:
    """Quota and rate-limit counters live in the deployment's whole store, not a tenant's view
    of it: a flood spread over tenant sub-domains used to get a fresh quota (and each client a
    fresh burst) at every one, past the bound the quotas promise for the shared store."""
    demo = build_demo_issuer(
        ISSUER,
        store=MemoryStore(clock=clock),
        clock=clock,
        flood_limits=FloodLimits(
            quotas={"offer_template": 3}, rate_limit=RateLimit(rate=0.001, burst=100)
        ),
    )

    async def known(tenant: str) -> bool:
        return True

    issuer = Issuer(
        demo.issuer.config,
        offer_templates=demo.issuer.offer_templates.values(),
        tenancy=Tenancy(base_url=ISSUER, resolver=known),
    )

    def fetch(tenant: str, client: str) -> dict[str, Any]:
        host = f"{tenant}.issuer.example"
        return {
            "method": "GET",
            "url": f"https://{host}/offers/templates/pre_auth",
            "headers": {"Host": host},
            "client_address": client,
        }

    statuses = [(await issuer.handle(fetch(f"t{i}", f"198.51.100.{i}"))).status for i in range(6)]
    assert statuses == [200, 200, 200, 503, 503, 503]
    # one client, one bucket across tenants
    limited = build_demo_issuer(
        ISSUER,
        store=MemoryStore(clock=clock),
        clock=clock,
        flood_limits=FloodLimits(quotas={}, rate_limit=RateLimit(rate=0.001, burst=2)),
    )
    tenanted = Issuer(
        limited.issuer.config,
        offer_templates=limited.issuer.offer_templates.values(),
        tenancy=Tenancy(base_url=ISSUER, resolver=known),
    )
    answers = [(await tenanted.handle(fetch(f"t{i}", "192.0.2.1"))).status for i in range(3)]
    assert answers == [200, 200, 429]
