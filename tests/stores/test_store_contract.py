"""The Store contract, one suite for every store: MemoryStore, RedisStore, RedisStore on a cluster.

Real time and real servers: TTLs of a few hundred milliseconds, 200 concurrent tasks, and (for
Redis) servers stopped and frozen in the middle of a test.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from oid4vci.errors import StoreError, StoreUnavailableError
from oid4vci.issuer.store import Store, scoped_store
from oid4vci.stores.redis import RedisStore
from tests.redis_servers import RedisCluster, RedisServer
from tests.stores.conftest import unique_prefix

TTL = 0.3  # seconds: short real TTLs
AFTER_TTL = 0.6  # comfortably past TTL (Redis expires lazily on access, and actively)
CONCURRENCY = 200

JSON_VALUES: list[Any] = [
    {"a": [1, 2, {"b": None}], "c": "ü€𝄞", "d": True, "e": 1.5, "f": -(2**62)},
    ["x", 1, False],
    'plain text with "quotes" and \\ and \n',
    0,
    2**70,
    -3.25,
    True,
    False,
    {},
    [],
    "",
]


async def test_every_store_satisfies_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)


@pytest.mark.parametrize("value", JSON_VALUES, ids=range(len(JSON_VALUES)))
async def test_json_round_trip(store: Store, value: Any) -> None:
    await store.put("k", value, ttl=10)
    got = await store.get("k")
    assert got == value and type(got) is type(value)
    assert await store.take("k") == value
    assert await store.add_if_absent("k", value, ttl=10) is True
    assert await store.get("k") == value


async def test_values_are_copies(store: Store) -> None:
    value: dict[str, Any] = {"list": [1]}
    await store.put("k", value, ttl=10)
    value["list"].append(2)
    got = await store.get("k")
    assert got == {"list": [1]}
    got["list"].append(3)
    assert await store.get("k") == {"list": [1]}


async def test_bad_values_and_ttls_are_refused(store: Store) -> None:
    with pytest.raises(TypeError):
        await store.put("k", object(), ttl=10)
    with pytest.raises(TypeError):
        await store.add_if_absent("k", {1, 2}, ttl=10)
    with pytest.raises(TypeError):  # NaN is not JSON
        await store.put("k", float("nan"), ttl=10)
    for ttl in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ValueError):
            await store.put("k", 1, ttl=ttl)
        with pytest.raises(ValueError):
            await store.increment("n", ttl=ttl)
    assert await store.get("k") is None


async def test_missing_keys(store: Store) -> None:
    assert await store.get("nothing") is None
    assert await store.take("nothing") is None
    await store.delete("nothing")


async def test_put_overwrites_and_delete_removes(store: Store) -> None:
    await store.put("k", 1, ttl=10)
    await store.put("k", 2, ttl=10)
    assert await store.get("k") == 2
    await store.delete("k")
    assert await store.get("k") is None
    assert await store.add_if_absent("k", 3, ttl=10) is True


async def test_ttl_expiry(store: Store) -> None:
    await store.put("put", "v", ttl=TTL)
    await store.put("take", "v", ttl=TTL)
    assert await store.add_if_absent("added", "v", ttl=TTL) is True
    assert await store.get("put") == "v"
    await anyio.sleep(AFTER_TTL)
    assert await store.get("put") is None
    assert await store.take("take") is None
    assert await store.add_if_absent("added", "again", ttl=10) is True
    assert await store.get("added") == "again"


async def test_put_renews_the_ttl(store: Store) -> None:
    await store.put("k", 1, ttl=TTL)
    await store.put("k", 2, ttl=10)
    await anyio.sleep(AFTER_TTL)
    assert await store.get("k") == 2


async def test_take_is_single_use(store: Store) -> None:
    await store.put("code", {"grant": 1}, ttl=10)
    assert await store.take("code") == {"grant": 1}
    assert await store.take("code") is None
    assert await store.get("code") is None


async def test_take_once_under_200_concurrent_takers(store: Store) -> None:
    async def taker(key: str, start: anyio.Event, winners: list[Any]) -> None:
        await start.wait()
        value = await store.take(key)
        if value is not None:
            winners.append(value)

    for round_ in range(3):
        await store.put(f"code{round_}", {"round": round_}, ttl=10)
        winners: list[Any] = []
        start = anyio.Event()
        async with anyio.create_task_group() as tg:
            for _ in range(CONCURRENCY):
                tg.start_soon(taker, f"code{round_}", start, winners)
            await anyio.sleep(0.01)
            start.set()
        assert winners == [{"round": round_}]


async def test_add_if_absent_race(store: Store) -> None:
    results: dict[int, bool] = {}
    start = anyio.Event()

    async def adder(i: int) -> None:
        await start.wait()
        results[i] = await store.add_if_absent("jti", {"by": i}, ttl=10)

    async with anyio.create_task_group() as tg:
        for i in range(CONCURRENCY):
            tg.start_soon(adder, i)
        await anyio.sleep(0.01)
        start.set()
    winners = [i for i, won in results.items() if won]
    assert len(results) == CONCURRENCY and len(winners) == 1
    assert await store.get("jti") == {"by": winners[0]}


async def test_add_if_absent_does_not_overwrite(store: Store) -> None:
    await store.put("k", "first", ttl=10)
    assert await store.add_if_absent("k", "second", ttl=10) is False
    assert await store.get("k") == "first"


async def test_counter_fixed_window(store: Store) -> None:
    window = 0.6
    assert await store.increment("n", ttl=window) == 1
    assert await store.increment("n", ttl=window) == 2
    await anyio.sleep(0.3)
    # Incrementing a live counter keeps its expiry: the window is fixed, not sliding.
    assert await store.increment("n", ttl=window) == 3
    await anyio.sleep(0.4)
    assert await store.increment("n", ttl=window) == 1
    assert await store.get("n") == 1


async def test_counter_under_concurrency(store: Store) -> None:
    seen: list[int] = []

    async def bump() -> None:
        seen.append(await store.increment("hits", ttl=10))

    async with anyio.create_task_group() as tg:
        for _ in range(CONCURRENCY):
            tg.start_soon(bump)
    assert sorted(seen) == list(range(1, CONCURRENCY + 1))
    assert await store.get("hits") == CONCURRENCY


async def test_increment_on_a_non_integer(store: Store) -> None:
    for value in ("text", 1.5, True, {"a": 1}):
        await store.put("k", value, ttl=10)
        with pytest.raises(TypeError):
            await store.increment("k", ttl=10)


async def test_scoped_views_do_not_collide(store: Store) -> None:
    one = scoped_store(store, "https://one.example|")
    two = scoped_store(store, "https://two.example|")
    await one.put("code", 1, ttl=10)
    assert await two.get("code") is None
    assert await two.add_if_absent("code", 2, ttl=10) is True
    assert await one.take("code") == 1
    assert await two.take("code") == 2


# --- Redis only: what is in Redis ----------------------------------------------------------


def _servers(server: RedisServer | RedisCluster) -> list[RedisServer]:
    return server.servers if isinstance(server, RedisCluster) else [server]


# Per node: how many keys match ARGV[1], and how many of them have no TTL or one over ARGV[2] ms.
_TTL_AUDIT = (
    "local keys = redis.call('KEYS', ARGV[1]) local bad = 0 "
    "for _, k in ipairs(keys) do local t = redis.call('PTTL', k) "
    "if t <= 0 or t > tonumber(ARGV[2]) then bad = bad + 1 end end "
    "return {#keys, bad}"
)


@pytest.mark.parametrize("kind", ["redis", "redis-cluster"])
async def test_every_key_has_the_prefix_and_a_ttl(
    kind: str, request: pytest.FixtureRequest
) -> None:
    server: RedisServer | RedisCluster = request.getfixturevalue(
        "redis_single" if kind == "redis" else "redis_three_masters"
    )
    prefix = f"contract-ttl-{kind}-{request.node.callspec.id}:"
    async with RedisStore.from_url(server.url, prefix=prefix) as store:
        for i in range(30):
            await store.put(f"put:{i}", i, ttl=30)
            await store.add_if_absent(f"add:{i}", i, ttl=30)
            await store.increment(f"count:{i}", ttl=30)
            await store.increment(f"count:{i}", ttl=30)
    per_node: list[int] = []
    for node in _servers(server):
        count, without_ttl = node.cli("eval", _TTL_AUDIT, "0", prefix + "*", "30000").split()
        per_node.append(int(count))
        assert int(without_ttl) == 0, f"{without_ttl} keys without a proper TTL"
    assert sum(per_node) == 90
    if kind == "redis-cluster":
        assert all(count > 0 for count in per_node), f"keys not spread over masters: {per_node}"


async def test_prefix_with_braces_is_refused(redis_single: RedisServer) -> None:
    from oid4vci.errors import UsageError

    with pytest.raises(UsageError):
        RedisStore.from_url(redis_single.url, prefix="{all}:")


async def test_use_outside_async_with_is_a_usage_error(redis_single: RedisServer) -> None:
    from oid4vci.errors import UsageError

    store = RedisStore.from_url(redis_single.url)
    with pytest.raises(UsageError):
        await store.get("k")


# --- the failure mapping -------------------------------------------------------------------

FAIL_TIMEOUT = 0.5


async def _assert_unavailable(store: RedisStore, *, every_operation: bool = True) -> None:
    operations: list[Callable[[], Awaitable[object]]] = [
        lambda: store.put("k", 1, ttl=10),
        lambda: store.get("k"),
        lambda: store.take("k"),
        lambda: store.add_if_absent("k2", 1, ttl=10),
        lambda: store.delete("k"),
        lambda: store.increment("n", ttl=10),
    ]
    for operation in operations if every_operation else operations[1:3]:
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError) as caught:
            await operation()
        assert time.monotonic() - started < FAIL_TIMEOUT + 0.5
        assert isinstance(caught.value, StoreError)


async def test_stopped_server_raises_unavailable_then_recovers(private_redis: RedisServer) -> None:
    async with RedisStore.from_url(private_redis.url, timeout=FAIL_TIMEOUT) as store:
        await store.put("code", "v", ttl=10)
        private_redis.stop()
        await _assert_unavailable(store)
        private_redis.start()
        # Nothing persisted (persistence off): the server came back empty, and works.
        await store.put("code", "w", ttl=10)
        assert await store.take("code") == "w"


async def test_frozen_server_times_out(private_redis: RedisServer) -> None:
    async with RedisStore.from_url(private_redis.url, timeout=FAIL_TIMEOUT) as store:
        await store.put("code", "v", ttl=30)
        private_redis.pause()
        try:
            await _assert_unavailable(store, every_operation=False)
        finally:
            private_redis.resume()
        with anyio.fail_after(5):
            while True:  # the first answers after SIGCONT may still be the stale ones
                try:
                    assert await store.get("code") in ("v", None)
                    break
                except StoreUnavailableError:
                    await anyio.sleep(0.05)


async def test_unreachable_from_the_start(private_redis: RedisServer) -> None:
    private_redis.stop()
    async with RedisStore.from_url(private_redis.url, timeout=FAIL_TIMEOUT) as store:
        await _assert_unavailable(store)
        with pytest.raises(StoreUnavailableError):
            await store.ping()


async def test_stopped_cluster_raises_unavailable(private_cluster: RedisCluster) -> None:
    async with RedisStore.from_url(private_cluster.url, timeout=FAIL_TIMEOUT) as store:
        for i in range(20):
            await store.put(f"k{i}", i, ttl=10)
        private_cluster.stop()
        await _assert_unavailable(store)


async def test_messages_and_reprs_hold_no_password(private_redis: RedisServer) -> None:
    secret = "s3cr3t-pa55word"
    url = f"redis://:{secret}@127.0.0.1:{private_redis.port}/0"
    private_redis.stop()
    store = RedisStore.from_url(url, timeout=FAIL_TIMEOUT)
    assert secret not in repr(store)
    async with store:
        with pytest.raises(StoreUnavailableError) as caught:
            await store.get("k")
    assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


async def test_an_error_in_the_block_propagates_as_itself(redis_single: RedisServer) -> None:
    with pytest.raises(KeyError):
        async with RedisStore.from_url(redis_single.url, prefix=unique_prefix()):
            raise KeyError("mine")
