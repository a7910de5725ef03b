"""Flood limits kept in the store: one token bucket and one quota across workers sharing Redis."""

from __future__ import annotations

import time

import anyio
import pytest

from oid4vci.http import HttpRequest
from oid4vci.issuer import build_demo_issuer
from oid4vci.issuer.flood_limits import FloodLimits, RateLimit
from oid4vci.issuer.store import RateLimitStore, Store, take_token
from oid4vci.stores.redis import RedisStore
from tests.redis_servers import RedisCluster, RedisServer
from tests.stores.conftest import LOADED_TIMEOUT, unique_prefix

ISSUER = "https://issuer.example"


@pytest.fixture
def anyio_backend() -> str:
    """asyncio only (the contract suite covers trio)."""
    return "asyncio"


async def test_token_bucket_in_every_store(store: Store) -> None:
    assert isinstance(store, RateLimitStore)
    waits = [await take_token(store, "rate:x", 1.0, 3) for _ in range(4)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.3 < waits[3] <= 1.0  # one token a second (less what the takes took)
    await anyio.sleep(waits[3] + 0.05)
    assert await take_token(store, "rate:x", 1.0, 3) == 0.0


async def test_concurrent_takers_get_exactly_the_burst(store: Store) -> None:
    results: list[float] = []

    async def one() -> None:
        results.append(await take_token(store, "rate:many", 0.001, 25))

    async with anyio.create_task_group() as group:
        for _ in range(200):
            group.start_soon(one)
    assert results.count(0.0) == 25
    assert all(wait > 900 for wait in results if wait)  # ~1000 s to the next token


@pytest.mark.parametrize("kind", ["redis", "redis-cluster"])
async def test_a_bucket_key_has_a_ttl(kind: str, request: pytest.FixtureRequest) -> None:
    server: RedisServer | RedisCluster = request.getfixturevalue(
        "redis_single" if kind == "redis" else "redis_three_masters"
    )
    prefix = unique_prefix()
    async with RedisStore.from_url(server.url, prefix=prefix, timeout=LOADED_TIMEOUT) as store:
        await store.take_token("rate:ttl", 2.0, 10)
        ttl_ms = await store.client.pttl(prefix + "rate:ttl")
        assert 0 < ttl_ms <= 500  # one token missing: full again in 0.5 s
        await store.put("rate:junk", "not a bucket", 10)
        assert await store.take_token("rate:junk", 2.0, 10) == 0.0  # junk: a full bucket


async def test_two_workers_share_one_bucket_and_one_quota(redis_single: RedisServer) -> None:
    prefix = unique_prefix()
    limits = FloodLimits(
        rate_limit=RateLimit(rate=0.05, burst=6),
        trusted_proxies=["127.0.0.1"],
        quotas={"offer_template": 4},
    )
    async with (
        RedisStore.from_url(redis_single.url, prefix=prefix, timeout=LOADED_TIMEOUT) as store_a,
        RedisStore.from_url(redis_single.url, prefix=prefix, timeout=LOADED_TIMEOUT) as store_b,
    ):
        first = build_demo_issuer(ISSUER, store=store_a, flood_limits=limits)
        second = build_demo_issuer(
            ISSUER,
            store=store_b,
            flood_limits=limits,
            signer=first.config.credential_signer,
            nonce_keys=first.config.nonce_keys,
        )
        workers = [first.issuer, second.issuer]

        def nonce(client: str) -> HttpRequest:
            return HttpRequest(
                method="POST",
                url=ISSUER + "/nonce",
                headers={"X-Forwarded-For": client},
                client_address="127.0.0.1",
            )

        answers = [await workers[i % 2].handle(nonce("198.51.100.1")) for i in range(10)]
        assert [a.status for a in answers] == [200] * 6 + [429] * 4
        retry_after = {a.headers.get("Retry-After") for a in answers if a.status == 429}
        assert retry_after <= {"19", "20"}  # 0.05 token/s: 20 s to the next one
        assert (await second.issuer.handle(nonce("198.51.100.2"))).status == 200

        fetch = HttpRequest(method="GET", url=ISSUER + "/offers/templates/pre_auth")
        started = time.monotonic()
        statuses = [(await workers[i % 2].handle(fetch)).status for i in range(10)]
        assert statuses == [200] * 4 + [503] * 6, time.monotonic() - started
