"""MemoryStore housekeeping (issue 15, item 4): memory follows the live entries.

Every write purges a few expired entries (earliest expiry first), so a flood of short-lived
entries is cleared by later writes without the store ever filling up; ``len`` counts live
entries and ``stats()`` reports what is held without purging.
"""

from __future__ import annotations

import itertools

import pytest

from oid4vci.errors import StoreFullError
from oid4vci.issuer.store import PURGE_PER_WRITE, MemoryStore, MemoryStoreStats
from tests.conftest import FakeClock

FLOOD = 50_000


async def test_a_trickle_of_writes_clears_an_expired_flood(clock: FakeClock) -> None:
    store = MemoryStore(max_entries=FLOOD + 1_000, clock=clock)
    for n in range(FLOOD):
        await store.put(f"flood:{n}", True, 1)
    assert store.stats() == MemoryStoreStats(held=FLOOD, max_entries=FLOOD + 1_000, purged=0)
    clock.advance(2)  # every flood entry has expired; nothing has touched them yet
    writes = 0
    held = [store.stats().held]
    while store.stats().held > writes:
        # a trickle: one write a second, each living an hour
        await store.put(f"live:{writes}", {"n": writes}, 3600)
        writes += 1
        clock.advance(1)
        held.append(store.stats().held)
    # Never near full: the flood went at PURGE_PER_WRITE a write, the store shrinking steadily.
    assert max(held) == FLOOD
    assert writes <= FLOOD // (PURGE_PER_WRITE - 1) + 1
    assert all(b < a for a, b in itertools.pairwise(held))
    assert store.stats() == MemoryStoreStats(held=writes, max_entries=FLOOD + 1_000, purged=FLOOD)
    assert len(store) == writes
    assert await store.get("live:0") == {"n": 0}
    assert await store.get("flood:0") is None


async def test_len_counts_live_entries_only(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    await store.put("short", 1, 1)
    await store.put("long", 1, 10)
    await store.add_if_absent("once", True, 5)
    assert await store.increment("counter", 3) == 1
    assert len(store) == 4
    clock.advance(3)
    assert store.stats().held == 4  # nothing written since: still held
    assert len(store) == 2  # "long" and "once"
    assert store.stats().held == 2 and store.stats().purged == 2


@pytest.mark.parametrize("write", ["put", "add_if_absent", "increment"])
async def test_every_kind_of_write_purges(clock: FakeClock, write: str) -> None:
    store = MemoryStore(clock=clock)
    for n in range(3 * PURGE_PER_WRITE):
        await store.put(f"old:{n}", True, 1)
    clock.advance(1)
    if write == "put":
        await store.put("new", True, 60)
    elif write == "add_if_absent":
        assert await store.add_if_absent("new", True, 60)
    else:
        await store.increment("new", 60)
    assert store.stats().held == 2 * PURGE_PER_WRITE + 1
    assert store.stats().purged == PURGE_PER_WRITE


async def test_taken_and_overwritten_entries_leave_no_garbage(clock: FakeClock) -> None:
    store = MemoryStore(max_entries=10, clock=clock)
    for n in range(10_000):
        await store.put("same", n, 60)  # overwrites: stale heap items
        await store.put(f"k{n}", n, 60)
        assert await store.take(f"k{n}") == n
    assert len(store._expiries) <= 2 * len(store._data) + 64
    assert len(store) == 1


async def test_full_of_live_entries_still_refuses(clock: FakeClock) -> None:
    store = MemoryStore(max_entries=PURGE_PER_WRITE, clock=clock)
    for n in range(PURGE_PER_WRITE):
        await store.put(f"k{n}", n, 60)
    with pytest.raises(StoreFullError):
        await store.put("one-more", True, 60)
    assert len(store) == PURGE_PER_WRITE
    clock.advance(60)
    await store.put("one-more", True, 60)
    assert len(store) == 1
