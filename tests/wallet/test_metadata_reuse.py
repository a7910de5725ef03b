"""A client reuses issuer and AS metadata across flows (per client, within its TTL and the
responses' ``max-age``), and the issuer serves each metadata document from one serialisation.
Requests are counted on the in-memory transport."""

from __future__ import annotations

from collections import Counter
from urllib.parse import urlsplit

import attrs

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer.demo import build_demo_issuer
from oid4vci.issuer.metadata import handle_jwt_vc_issuer_metadata
from oid4vci.jose import LocalSigner
from oid4vci.transports.memory import Handler, InMemoryTransport
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from oid4vci.wallet.discovery import MetadataCache, cache_max_age
from tests.conftest import FakeClock

ISSUER = "https://issuer.example"


class Counting:
    """Counts the requests per path that reach ``handler``."""

    def __init__(self, handler: Handler, *, max_age: str | None = None) -> None:
        self.handler = handler
        self.max_age = max_age
        self.paths: Counter[str] = Counter()

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        self.paths[urlsplit(request.url).path] += 1
        response = await self.handler(request)
        if self.max_age is not None and "/.well-known/" in request.url:
            headers = response.headers.with_header("Cache-Control", self.max_age)
            response = attrs.evolve(response, headers=headers)
        return response

    def flow_requests(self) -> int:
        return sum(n for path, n in self.paths.items() if not path.startswith("/status-lists/"))

    def metadata_requests(self) -> int:
        return sum(n for path, n in self.paths.items() if "/.well-known/openid-" in path) + sum(
            n for path, n in self.paths.items() if "oauth-authorization-server" in path
        )


async def _two_flows(
    clock: FakeClock, counting: Counting, client: Oid4vciClient, link: str
) -> list[int]:
    """Requests per flow, status lists left out (the client's status cache keeps those)."""
    totals = []
    for _ in range(2):
        before = counting.flow_requests()
        offer = await client.parse_offer(link)
        result = await client.accept_offer(offer)
        assert len(result.credentials) == 1 and result.credentials[0].verified
        totals.append(counting.flow_requests() - before)
        clock.advance(1)
    return totals


async def test_a_second_flow_with_the_same_client_makes_fewer_requests(clock: FakeClock) -> None:
    demo = build_demo_issuer(ISSUER, clock=clock)
    counting = Counting(demo.handle)
    client = Oid4vciClient(InMemoryTransport(routes={ISSUER: counting}), clock=clock)
    first, second = await _two_flows(clock, counting, client, demo.offer_links["pre_auth"])
    assert second == first - 2  # issuer and AS metadata come from the client's cache
    assert counting.metadata_requests() == 2
    # a new client has its own cache: it fetches both documents again
    other = Oid4vciClient(InMemoryTransport(routes={ISSUER: counting}), clock=clock)
    offer = await other.parse_offer(demo.offer_links["pre_auth"])
    await other.accept_offer(offer)
    assert counting.metadata_requests() == 4


async def test_the_cache_keeps_to_the_policy_ttl_and_max_age(clock: FakeClock) -> None:
    demo = build_demo_issuer(ISSUER, clock=clock)
    counting = Counting(demo.handle, max_age="public, max-age=0")
    client = Oid4vciClient(InMemoryTransport(routes={ISSUER: counting}), clock=clock)
    first, second = await _two_flows(clock, counting, client, demo.offer_links["pre_auth"])
    assert second == first  # max-age=0: nothing kept
    counting = Counting(demo.handle)
    ttl0 = Oid4vciClient(
        InMemoryTransport(routes={ISSUER: counting}),
        clock=clock,
        policy=WalletPolicy(metadata_cache_ttl=0),
    )
    first, second = await _two_flows(clock, counting, ttl0, demo.offer_links["pre_auth"])
    assert second == first


def test_max_age_shortens_the_ttl(clock: FakeClock) -> None:
    cache = MetadataCache(300, clock=clock)
    cache.put("a", {"x": 1}, max_age=10)
    cache.put("b", {"x": 2}, max_age=1000)
    clock.advance(11)
    assert cache.get("a") is None
    assert cache.get("b") == {"x": 2}
    clock.advance(300)
    assert cache.get("b") is None
    assert cache_max_age({"Cache-Control": "no-cache, max-age=60"}) == 60
    assert cache_max_age({"Cache-Control": "max-age=bad"}) == 0
    # delta-seconds is ASCII digits only (RFC 9111 §1.2.2): "²" and "٣" pass str.isdigit()
    for digits in ("\u00b2", "\u2460", "\u0663", "1\u00b2"):
        assert cache_max_age({"Cache-Control": f"max-age={digits}"}) == 0
    assert cache_max_age({"Cache-Control": "no-store"}) is None
    assert cache_max_age({}) is None


async def test_metadata_documents_are_serialised_once_per_configuration(clock: FakeClock) -> None:
    demo = build_demo_issuer(ISSUER, clock=clock)
    paths = [
        "/.well-known/openid-credential-issuer",
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwt-vc-issuer",
    ]
    for path in paths:
        first = await demo.handle(HttpRequest(method="GET", url=ISSUER + path))
        again = await demo.handle(HttpRequest(method="GET", url=ISSUER + path))
        assert first.status == 200 and again is first  # the same immutable response
    # a new configuration is a new document
    config = demo.issuer.config
    moved = attrs.evolve(config, credential_signer=LocalSigner.generate(kid="k2"))
    before = await handle_jwt_vc_issuer_metadata(
        HttpRequest(method="GET", url=ISSUER + paths[2]), config
    )
    after = await handle_jwt_vc_issuer_metadata(
        HttpRequest(method="GET", url=ISSUER + paths[2]), moved
    )
    assert before.json_body() != after.json_body()
    assert after.json_body()["jwks"]["keys"][0]["x"] == moved.credential_signer.public_jwk["x"]
