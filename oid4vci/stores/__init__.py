"""Implementations of the issuer's :class:`~oid4vci.issuer.store.Store`: stores are plug-ins.

* :class:`~oid4vci.issuer.store.MemoryStore` (re-exported here): bounded, in one process.
* :class:`oid4vci.stores.redis.RedisStore`: Redis, a single server or a Redis Cluster, shared by
  any number of issuer processes (extra ``oid4vci[redis]``, which installs ``coredis``).

This package imports nothing heavy: ``coredis`` is loaded only by ``import oid4vci.stores.redis``.
"""

from __future__ import annotations

from oid4vci.issuer.store import MemoryStore as MemoryStore
from oid4vci.issuer.store import Store as Store

__all__ = ["MemoryStore", "Store"]
