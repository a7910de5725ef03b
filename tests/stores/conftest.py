"""Fixtures of the store tests: private Redis servers and one ``store`` per kind.

``redis_single`` and ``redis_three_masters`` are started once per session (see
:mod:`tests.redis_servers`); every test gets its own key prefix on them, so tests never see
each other's keys. Tests that stop or freeze Redis take ``private_redis`` /
``private_cluster`` instead, which are theirs alone.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from oid4vci.issuer.store import MemoryStore, Store
from oid4vci.stores.redis import RedisStore
from tests.redis_servers import (
    RedisCluster,
    RedisServer,
    RedisUnavailable,
    redis_cluster,
    redis_server,
    require_redis,
)

#: The store kinds of the contract suite.
STORE_KINDS = ["memory", "redis", "redis-cluster"]

#: The operation timeout of stores on the shared servers. These tests check what Redis
#: answers, not how fast: on a loaded two-core machine (``-n 2``, three cluster masters, the
#: CLI tests' processes) 200 concurrent operations queueing for the pool's 64 connections can
#: take longer than the 2 s default. Tests of the timeout itself use ``private_redis`` and
#: their own short timeout.
LOADED_TIMEOUT = 15.0


@pytest.fixture(scope="session")
def redis_single() -> Iterator[RedisServer]:
    """A private Redis server shared by the session's tests (distinct prefixes per test)."""
    try:
        with redis_server() as server:
            yield server
    except RedisUnavailable as exc:
        require_redis(str(exc))


@pytest.fixture(scope="session")
def redis_three_masters() -> Iterator[RedisCluster]:
    """A private three-master Redis Cluster shared by the session's tests."""
    try:
        with redis_cluster() as cluster:
            yield cluster
    except RedisUnavailable as exc:
        require_redis(str(exc))


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A Redis server of this test alone (it may stop, freeze or restart it)."""
    try:
        with redis_server() as server:
            yield server
    except RedisUnavailable as exc:
        require_redis(str(exc))


@pytest.fixture
def private_cluster() -> Iterator[RedisCluster]:
    """A three-master cluster of this test alone."""
    try:
        with redis_cluster() as cluster:
            yield cluster
    except RedisUnavailable as exc:
        require_redis(str(exc))


def unique_prefix() -> str:
    """A key prefix no other test uses."""
    return f"test-{secrets.token_hex(6)}:"


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """One store of each kind: MemoryStore, RedisStore (one server), RedisStore (cluster)."""
    kind = str(request.param)
    if kind == "memory":
        yield MemoryStore()
        return
    server: RedisServer | RedisCluster = request.getfixturevalue(
        "redis_single" if kind == "redis" else "redis_three_masters"
    )
    async with RedisStore.from_url(
        server.url, prefix=unique_prefix(), timeout=LOADED_TIMEOUT
    ) as redis_store:
        yield redis_store
