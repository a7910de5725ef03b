"""The issuer's state store: one small async protocol and a bounded in-memory implementation.

Single-use codes, PAR request URIs, DPoP ``jti`` values, nonces and access tokens all need a
few atomic operations: put with a TTL, take-once, add-if-absent and a counter. :class:`Store`
names exactly those, shaped so that a Redis implementation can do each one atomically
(``SET PX``, ``GETDEL``, ``SET NX PX``, ``INCR`` + ``PEXPIRE NX``).

:class:`MemoryStore` keeps everything in a dict. Each method completes without awaiting
between its check and its write, so it is atomic under asyncio and trio alike. It is bounded:
when full it first purges expired entries and, if every entry is still live, refuses with
:class:`~oid4vci.errors.StoreFullError` instead of silently evicting state that a flow relies on.
It also purges as it goes: every write first drops up to :data:`PURGE_PER_WRITE` expired entries
(the earliest expiries first, from a heap), so memory follows the live entries instead of
drifting up to the bound. ``len(store)`` is the number of live entries and
:meth:`MemoryStore.stats` a cheap snapshot (held entries, bound, entries purged so far) for a
metrics exporter to read.

Values must be JSON-able; they are stored as JSON text, so callers get deep copies and never
share mutable state with the store.

Rate limits: a store may also offer ``take_token`` (:class:`RateLimitStore`), one atomic
token-bucket step; :class:`MemoryStore` and :class:`~oid4vci.stores.redis.RedisStore` do. For
any other :class:`Store`, :func:`take_token` falls back to a fixed-window counter built on
``increment`` (at most ``burst`` requests per ``burst / rate`` seconds), so a custom store needs
nothing new to work with the issuer's rate limits.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import attrs

from oid4vci._json import dumps_compact, loads_text
from oid4vci.errors import ArgumentTypeError, StoreFullError, UsageError

__all__ = [
    "PURGE_PER_WRITE",
    "MemoryStore",
    "MemoryStoreStats",
    "RateLimitStore",
    "Store",
    "bucket_arguments",
    "deployment_store",
    "scoped_store",
    "take_token",
]

#: Expired entries a :class:`MemoryStore` write may purge before it writes (amortised
#: housekeeping: more than one per write, so a backlog of expired entries shrinks).
PURGE_PER_WRITE = 16


@runtime_checkable
class Store(Protocol):
    """Async key/value store with TTLs and atomic single-use operations.

    Keys are strings; values are JSON-able (dict, list, str, int, float, bool, None — although a
    stored ``None`` is indistinguishable from a missing key, so do not store it). ``ttl`` is in
    seconds and must be positive.
    """

    async def put(self, key: str, value: Any, ttl: float) -> None:
        """Set ``key`` to ``value`` for ``ttl`` seconds (overwrites)."""
        ...

    async def get(self, key: str) -> Any | None:
        """The live value of ``key``, or ``None``."""
        ...

    async def take(self, key: str) -> Any | None:
        """Atomically return and delete the live value of ``key`` (single use), or ``None``."""
        ...

    async def add_if_absent(self, key: str, value: Any, ttl: float) -> bool:
        """Set ``key`` only when it has no live value; ``True`` when this call set it."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key`` (no error when absent)."""
        ...

    async def increment(self, key: str, ttl: float) -> int:
        """Atomically add one to the counter at ``key`` and return the new value.

        A missing or expired counter starts at 1 and lives ``ttl`` seconds; incrementing a live
        counter keeps its original expiry (a fixed window).
        """
        ...


@runtime_checkable
class RateLimitStore(Protocol):
    """A :class:`Store` that can take a token from a token bucket in one atomic step."""

    async def take_token(self, key: str, rate: float, burst: int) -> float:
        """Take one token from the bucket at ``key``: ``0.0`` when taken, otherwise the seconds
        until a token is available (nothing is taken then).

        The bucket holds at most ``burst`` tokens and refills at ``rate`` tokens per second; a
        missing bucket is full. The entry lives until the bucket would be full again.
        """
        ...


def bucket_arguments(rate: float, burst: int) -> tuple[float, int]:
    """``(rate, burst)`` checked: a positive finite rate, an integer burst of at least 1."""
    rate = float(rate)
    if not math.isfinite(rate) or rate <= 0:
        raise UsageError("rate must be a positive, finite number of tokens per second")
    if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
        raise UsageError("burst must be an integer of at least 1")
    return rate, burst


async def take_token(store: Store, key: str, rate: float, burst: int) -> float:
    """Take one token from the bucket at ``key`` in ``store`` (see :class:`RateLimitStore`).

    A store without ``take_token`` gets a fixed window instead: ``increment`` with a TTL of
    ``burst / rate`` seconds, refused past ``burst`` (the wait is then the window's length).
    """
    rate, burst = bucket_arguments(rate, burst)
    # getattr, not isinstance(store, RateLimitStore): a runtime protocol check costs ~15 µs.
    bucket = getattr(store, "take_token", None)
    if bucket is not None:
        wait: float = await bucket(key, rate, burst)
        return wait
    window = burst / rate
    if await store.increment(key, window) <= burst:
        return 0.0
    return window


def _check_ttl(ttl: float) -> float:
    ttl = float(ttl)
    if not math.isfinite(ttl) or ttl <= 0:
        raise UsageError("ttl must be a positive, finite number of seconds")
    return ttl


def _encode(value: Any) -> str:
    if value is True:  # the marker of every add_if_absent (jti, c_nonce): no encoder call
        return "true"
    try:
        return dumps_compact(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ArgumentTypeError("store values must be JSON-able") from exc


@attrs.frozen(kw_only=True)
class MemoryStoreStats:
    """A snapshot of a :class:`MemoryStore`, taken without purging (cheap enough to poll).

    ``held`` counts the entries in memory, live or expired but not yet purged;
    ``max_entries`` is the bound; ``purged`` counts the expired entries dropped since the
    store was made (a counter: export it as ``..._total``).
    """

    held: int
    max_entries: int
    purged: int


class MemoryStore:
    """A bounded in-process :class:`Store`.

    ``max_entries`` caps the number of entries (live or not yet purged). ``clock`` returns the
    current time in seconds. Safe for concurrent tasks of one event loop (asyncio or trio); not
    shared between threads or processes.

    Every write first purges up to :data:`PURGE_PER_WRITE` expired entries, so a flood of
    short-lived entries is cleared by later writes long before the store is full;
    ``len(store)`` is the number of live entries (it purges every expired one first) and
    :meth:`stats` reports what is held without purging.
    """

    def __init__(self, *, max_entries: int = 100_000, clock: Callable[[], float] = time.time):
        if max_entries < 1:
            raise UsageError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        # key -> (json text, expires_at); a token bucket's value is its (tokens, time) tuple
        self._data: dict[str, tuple[str | tuple[float, float], float]] = {}
        # (expires_at, key) candidates for purging; stale items are skipped.
        self._expiries: list[tuple[float, str]] = []
        self._purged = 0

    def __repr__(self) -> str:
        return f"MemoryStore(entries={len(self._data)}, max_entries={self._max_entries})"

    def __len__(self) -> int:
        """The live entries (expired ones are purged first)."""
        self.purge_expired()
        return len(self._data)

    def stats(self) -> MemoryStoreStats:
        """Entries held (without purging), the bound and the expired entries purged so far."""
        return MemoryStoreStats(
            held=len(self._data), max_entries=self._max_entries, purged=self._purged
        )

    # -- internals (all synchronous: no awaits between check and write) --

    def _live(self, key: str, now: float) -> tuple[str | tuple[float, float], float] | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        if entry[1] <= now:
            del self._data[key]
            self._purged += 1
            return None
        return entry

    def _purge(self, now: float, budget: float) -> int:
        """Pop at most ``budget`` due heap items, dropping their entries; returns the drops."""
        dropped = 0
        expiries = self._expiries
        while budget > 0 and expiries and expiries[0][0] <= now:
            budget -= 1
            expires_at, key = heapq.heappop(expiries)
            entry = self._data.get(key)
            if entry is not None and entry[1] == expires_at:
                del self._data[key]
                dropped += 1
        self._purged += dropped
        return dropped

    def _purge_some(self, now: float) -> None:
        """The housekeeping of every write: up to :data:`PURGE_PER_WRITE` due entries."""
        expiries = self._expiries
        if expiries and expiries[0][0] <= now:  # nothing due: no call
            self._purge(now, PURGE_PER_WRITE)

    def purge_expired(self) -> int:
        """Drop every expired entry now; returns how many were dropped."""
        dropped = self._purge(self._clock(), math.inf)
        self._compact_if_sparse()
        return dropped

    def _set(self, key: str, text: str | tuple[float, float], expires_at: float) -> None:
        if key not in self._data and len(self._data) >= self._max_entries:
            self.purge_expired()
            if len(self._data) >= self._max_entries:
                raise StoreFullError("the store is full of live entries; retry later")
        self._data[key] = (text, expires_at)
        heapq.heappush(self._expiries, (expires_at, key))
        self._compact_if_sparse()

    def _compact_if_sparse(self) -> None:
        # Taken, deleted and overwritten entries leave stale heap items behind; compact them
        # (amortised: the heap has grown past twice the entries since the last compaction).
        if len(self._expiries) > 2 * len(self._data) + 64:
            self._expiries = [(exp, key) for key, (_, exp) in self._data.items()]
            heapq.heapify(self._expiries)

    # -- the Store protocol --

    async def put(self, key: str, value: Any, ttl: float) -> None:
        """Set ``key`` to a copy of ``value`` for ``ttl`` seconds."""
        text = _encode(value)
        now = self._clock()
        self._purge_some(now)
        self._live(key, now)
        self._set(key, text, now + _check_ttl(ttl))

    async def get(self, key: str) -> Any | None:
        """A copy of the live value of ``key``, or ``None``."""
        if key not in self._data:  # a miss needs no clock
            return None
        entry = self._live(key, self._clock())
        return None if entry is None else _stored_value(entry[0])

    async def take(self, key: str) -> Any | None:
        """Return and delete the live value of ``key`` in one step, or ``None``."""
        entry = self._live(key, self._clock())
        if entry is None:
            return None
        del self._data[key]
        return _stored_value(entry[0])

    async def add_if_absent(self, key: str, value: Any, ttl: float) -> bool:
        """Set ``key`` only when it has no live value; ``True`` when set by this call."""
        text = _encode(value)
        ttl = _check_ttl(ttl)
        now = self._clock()
        self._purge_some(now)
        if self._live(key, now) is not None:
            return False
        self._set(key, text, now + ttl)
        return True

    async def delete(self, key: str) -> None:
        """Remove ``key``."""
        self._data.pop(key, None)

    async def increment(self, key: str, ttl: float) -> int:
        """Add one to the counter at ``key`` (created at 1 with ``ttl``); returns the new value."""
        ttl = _check_ttl(ttl)
        now = self._clock()
        self._purge(now, PURGE_PER_WRITE)
        entry = self._live(key, now)
        if entry is None:
            self._set(key, "1", now + ttl)
            return 1
        current = _stored_value(entry[0])
        if not isinstance(current, int) or isinstance(current, bool):
            raise ArgumentTypeError("increment on a key that does not hold an integer")
        self._data[key] = (str(current + 1), entry[1])
        return current + 1

    async def take_token(self, key: str, rate: float, burst: int) -> float:
        """One token-bucket step at ``key`` (see :class:`RateLimitStore`), atomic in this loop.

        The bucket is a ``(tokens, time)`` pair under ``key`` (kept as floats, never encoded:
        ``get`` reads it as ``[tokens, time]``), living until it would be full.
        """
        rate, burst = bucket_arguments(rate, burst)
        now = self._clock()
        self._purge_some(now)
        entry = self._live(key, now)
        tokens = float(burst)
        if entry is not None:
            state = entry[0]
            if isinstance(state, str):  # put() there by hand: a bucket only as [tokens, time]
                state = _bucket_of(state)
            tokens = min(float(burst), state[0] + max(0.0, now - state[1]) * rate)
        if tokens < 1.0:
            return (1.0 - tokens) / rate
        tokens -= 1.0
        self._set(key, (tokens, now), now + max((burst - tokens) / rate, 0.001))
        return 0.0


def _stored_value(stored: str | tuple[float, float]) -> Any:
    """A fresh copy of what a :class:`MemoryStore` entry holds (a bucket as ``[tokens, time]``)."""
    if type(stored) is tuple:
        return list(stored)
    return loads_text(stored)  # type: ignore[arg-type]


def _bucket_of(text: str) -> tuple[float, float]:
    """A token bucket written with ``put`` as ``[tokens, time]`` JSON; a usage error otherwise."""
    state = _stored_value(text)
    if not (isinstance(state, list) and len(state) == 2):
        raise ArgumentTypeError("take_token on a key that does not hold a bucket")
    try:
        return float(state[0]), float(state[1])
    except (TypeError, ValueError):
        raise ArgumentTypeError("take_token on a key that does not hold a bucket") from None


class _ScopedStore:
    """A view of another store whose keys all carry a prefix (one tenant's namespace)."""

    def __init__(self, inner: Store, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"ScopedStore(prefix={self.prefix!r}, inner={self.inner!r})"

    async def put(self, key: str, value: Any, ttl: float) -> None:
        await self.inner.put(self.prefix + key, value, ttl)

    async def get(self, key: str) -> Any | None:
        return await self.inner.get(self.prefix + key)

    async def take(self, key: str) -> Any | None:
        return await self.inner.take(self.prefix + key)

    async def add_if_absent(self, key: str, value: Any, ttl: float) -> bool:
        return await self.inner.add_if_absent(self.prefix + key, value, ttl)

    async def delete(self, key: str) -> None:
        await self.inner.delete(self.prefix + key)

    async def increment(self, key: str, ttl: float) -> int:
        return await self.inner.increment(self.prefix + key, ttl)

    async def take_token(self, key: str, rate: float, burst: int) -> float:
        return await take_token(self.inner, self.prefix + key, rate, burst)


def deployment_store(store: Store) -> Store:
    """The whole store behind ``store``: the store itself, or the one a tenant's
    :func:`scoped_store` view is a view of (for what all tenants of a deployment share)."""
    return store.inner if isinstance(store, _ScopedStore) else store


def scoped_store(store: Store, prefix: str) -> Store:
    """A :class:`Store` view of ``store`` where every key is prefixed with ``prefix``.

    Scoping an already scoped view replaces its prefix (scopes do not nest), so a tenant's
    namespace stays ``prefix + key`` in the underlying store.
    """
    return _ScopedStore(deployment_store(store), prefix)
