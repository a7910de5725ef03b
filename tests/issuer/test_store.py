"""MemoryStore: TTLs, single use under concurrency, add_if_absent, counters, bounds."""

from __future__ import annotations

from typing import Any

import anyio
import anyio.lowlevel
import pytest

from oid4vci.errors import StoreFullError
from oid4vci.issuer.store import MemoryStore, Store, scoped_store
from tests.conftest import FakeClock


def test_memory_store_satisfies_protocol(clock: FakeClock) -> None:
    assert isinstance(MemoryStore(clock=clock), Store)


async def test_put_get_and_ttl_expiry(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    await store.put("k", {"a": [1, 2]}, ttl=10)
    assert await store.get("k") == {"a": [1, 2]}
    clock.advance(9.9)
    assert await store.get("k") == {"a": [1, 2]}
    clock.advance(0.2)
    assert await store.get("k") is None


async def test_values_are_copies(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    value: dict[str, Any] = {"list": [1]}
    await store.put("k", value, ttl=10)
    value["list"].append(2)
    got = await store.get("k")
    assert got == {"list": [1]}
    got["list"].append(3)
    assert await store.get("k") == {"list": [1]}


async def test_non_json_values_refused(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    with pytest.raises(TypeError):
        await store.put("k", object(), ttl=10)
    with pytest.raises(ValueError):
        await store.put("k", 1, ttl=0)


async def test_take_is_single_use(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    await store.put("code", "v", ttl=10)
    assert await store.take("code") == "v"
    assert await store.take("code") is None
    assert await store.get("code") is None


async def test_take_expired_returns_none(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    await store.put("code", "v", ttl=1)
    clock.advance(1)
    assert await store.take("code") is None


async def test_take_once_under_concurrency(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    await store.put("code", {"x": 1}, ttl=10)
    winners: list[Any] = []

    async def taker() -> None:
        await anyio.lowlevel.checkpoint()
        value = await store.take("code")
        if value is not None:
            winners.append(value)

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(taker)
    assert winners == [{"x": 1}]


async def test_add_if_absent(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    assert await store.add_if_absent("jti", True, ttl=5)
    assert not await store.add_if_absent("jti", True, ttl=5)
    clock.advance(5)
    assert await store.add_if_absent("jti", True, ttl=5)


async def test_add_if_absent_concurrent_single_winner(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    results: list[bool] = []

    async def adder() -> None:
        await anyio.lowlevel.checkpoint()
        results.append(await store.add_if_absent("k", 1, ttl=5))

    async with anyio.create_task_group() as tg:
        for _ in range(20):
            tg.start_soon(adder)
    assert results.count(True) == 1


async def test_delete(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    await store.put("k", 1, ttl=5)
    await store.delete("k")
    await store.delete("missing")
    assert await store.get("k") is None


async def test_increment_fixed_window(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    assert await store.increment("n", ttl=10) == 1
    clock.advance(6)
    assert await store.increment("n", ttl=10) == 2
    clock.advance(5)  # the first increment's window ended
    assert await store.increment("n", ttl=10) == 1
    await store.put("s", "text", ttl=10)
    with pytest.raises(TypeError):
        await store.increment("s", ttl=10)


async def test_bounded_refuses_rather_than_evicting(clock: FakeClock) -> None:
    store = MemoryStore(max_entries=3, clock=clock)
    await store.put("a", 1, ttl=10)
    await store.put("b", 2, ttl=10)
    await store.put("c", 3, ttl=100)
    with pytest.raises(StoreFullError):
        await store.put("d", 4, ttl=10)
    with pytest.raises(StoreFullError):
        await store.add_if_absent("d", 4, ttl=10)
    with pytest.raises(StoreFullError):
        await store.increment("d", ttl=10)
    # live entries are untouched, and overwriting an existing key is still fine
    assert [await store.get(k) for k in "abc"] == [1, 2, 3]
    await store.put("a", 10, ttl=10)
    clock.advance(11)  # a and b expire; c is still live
    await store.put("d", 4, ttl=10)
    await store.put("e", 5, ttl=10)
    assert await store.get("c") == 3
    assert await store.get("d") == 4
    with pytest.raises(StoreFullError):
        await store.put("f", 6, ttl=10)
    assert len(store) == 3


async def test_purge_with_many_overwrites(clock: FakeClock) -> None:
    store = MemoryStore(max_entries=2, clock=clock)
    for i in range(200):
        await store.put("k", i, ttl=1 + i)
    assert await store.get("k") == 199
    assert store.purge_expired() == 0
    clock.advance(1000)
    assert store.purge_expired() == 1
    assert len(store) == 0


async def test_scoped_store_isolates_prefixes(clock: FakeClock) -> None:
    root = MemoryStore(clock=clock)
    a = scoped_store(root, "https://a.example|")
    b = scoped_store(scoped_store(root, "x|"), "https://b.example|")
    await a.put("code", "A", ttl=5)
    assert await b.get("code") is None
    assert await root.get("https://a.example|code") == "A"
    assert await b.add_if_absent("code", "B", ttl=5)
    assert await root.get("https://b.example|code") == "B"
    assert await a.take("code") == "A"
    assert await a.increment("n", ttl=5) == 1
    await a.delete("n")
    assert await a.get("n") is None
