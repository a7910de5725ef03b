"""A :class:`~oid4vci.issuer.store.Store` on Redis, one server or a Redis Cluster (``coredis``).

Several issuer processes (or hosts) that share one :class:`RedisStore` share every single-use
guarantee: a pre-authorized or authorization code, a PAR ``request_uri``, a DPoP ``jti`` or a
``c_nonce`` is accepted once across all of them. Each operation is one atomic Redis command or
one Lua script (Redis ≥ 6.2):

==================  =========================================================================
operation           Redis
==================  =========================================================================
``put``             ``SET key json PX ttl``
``get``             ``GET key``
``take``            ``GETDEL key`` (single use: of concurrent takers exactly one gets the value)
``add_if_absent``   ``SET key json NX PX ttl``
``delete``          ``DEL key``
``increment``       one Lua script: ``INCR``, then ``PEXPIRE`` when the key has no expiry
                    (a fixed window; no key is ever left without a TTL)
``take_token``      one Lua script: a token bucket (``"<tokens> <ms>"`` under the key, refilled
                    by the server's ``TIME``, so every worker shares one clock), written back
                    with ``SET PX`` until it would be full again; a refusal writes nothing
==================  =========================================================================

Values are JSON text (the same encoding as :class:`~oid4vci.issuer.store.MemoryStore`). Every
key is ``prefix + key`` and every key has a TTL. A tenant's keys carry its issuer identifier
(:meth:`~oid4vci.issuer.config.IssuerConfig.for_issuer` scopes the store), so tenants never
collide.

**Redis Cluster.** Every operation touches exactly one key, so any key can live in any slot and
keys spread over all masters. A key containing a hash tag (``{...}``) is placed by that tag, so a
caller whose own scripts must touch several keys together gives them one tag; the prefix may not
contain braces, so it never overrides such a tag (nor forces every key into one slot).

**Failures.** Every operation is bounded by ``timeout`` seconds (connecting included). When
Redis cannot be reached, refuses (``LOADING``, ``CLUSTERDOWN``, ``READONLY`` ...) or does not
answer in time, the operation raises :class:`~oid4vci.errors.StoreUnavailableError`; the
issuer answers it with 503 ``temporarily_unavailable`` and ``Retry-After``, like a full
:class:`~oid4vci.issuer.store.MemoryStore`. Commands are never retried by this class: a
``GETDEL`` whose answer was lost may have consumed its code, and retrying it would wrongly
report the code as already used, so the caller's client retries the whole request instead.
Redis answering ``OOM`` (``maxmemory`` reached under the ``noeviction`` policy) raises
:class:`~oid4vci.errors.StoreFullError`. Run Redis with ``maxmemory-policy noeviction`` (its
default): an evicting policy could silently drop a used-code or DPoP ``jti`` record and let a
replay through.

Usage (``coredis`` clients live inside ``async with``)::

    async with RedisStore.from_url("redis://127.0.0.1:6379/0") as store:
        issuer = Issuer(IssuerConfig(..., store=store))
        ...

URLs: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS), and for a cluster
``redis+cluster://[[user]:password@]host:port[,host:port...]`` or ``rediss+cluster://`` (any
reachable nodes; the rest are discovered). Passwords never appear in reprs, logs or messages.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote

import anyio
import attrs

from oid4vci.errors import (
    ArgumentTypeError,
    MissingDependencyError,
    StoreFullError,
    StoreUnavailableError,
    UsageError,
)
from oid4vci.issuer.store import bucket_arguments

try:
    import coredis
    import coredis.exceptions
    from coredis.retry import ConstantRetryPolicy, NoRetryPolicy
except ImportError:  # pragma: no cover - exercised in a subprocess without coredis
    raise MissingDependencyError("RedisStore needs coredis: pip install 'oid4vci[redis]'") from None

__all__ = ["DEFAULT_PREFIX", "DEFAULT_TIMEOUT", "RedisStore", "RedisUrl", "parse_redis_url"]

#: The key prefix when none is given.
DEFAULT_PREFIX = "oid4vci:"
#: Seconds an operation may take, connecting included, before it fails.
DEFAULT_TIMEOUT = 2.0

_SCHEMES = {
    "redis": (False, False),
    "rediss": (False, True),
    "redis+cluster": (True, False),
    "rediss+cluster": (True, True),
}
_URL_FORM = (
    "expected redis://HOST[:PORT][/DB], rediss://..., or redis+cluster://HOST:PORT[,HOST:PORT...]"
)

# INCR, and an expiry whenever the key has none: a new counter (1) starts its window; a live
# counter keeps its expiry (fixed window). One script, so no key is ever left without a TTL.
_INCREMENT_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return n
"""

# A token bucket on the server's clock: refill, take one token or answer the wait (ms, > 0).
# ARGV: rate in tokens per millisecond, burst. One key, so it runs on a cluster too.
_TOKEN_BUCKET_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tokens = burst
local state = redis.call('GET', KEYS[1])
if state then
  local sep = string.find(state, ' ', 1, true)
  if sep then
    local last = tonumber(string.sub(state, sep + 1))
    tokens = tonumber(string.sub(state, 1, sep - 1))
    if tokens and last then
      tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
    else
      tokens = burst
    end
  end
end
if tokens < 1 then
  return math.max(1, math.ceil((1 - tokens) / rate))
end
tokens = tokens - 1
local ttl = math.max(1, math.ceil((burst - tokens) / rate))
redis.call('SET', KEYS[1], string.format('%.6f %d', tokens, now), 'PX', ttl)
return 0
"""

_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


@attrs.frozen(kw_only=True)
class RedisUrl:
    """A parsed Redis URL (see :func:`parse_redis_url`); ``str()`` is the form without secrets."""

    cluster: bool
    tls: bool
    nodes: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = attrs.field(default=None, repr=False)
    password: str | None = attrs.field(default=None, repr=False)

    def __str__(self) -> str:
        scheme = ("rediss" if self.tls else "redis") + ("+cluster" if self.cluster else "")
        hosts = ",".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in self.nodes)
        auth = "***@" if self.password is not None else ""
        return f"{scheme}://{auth}{hosts}" + ("" if self.cluster else f"/{self.db}")


def parse_redis_url(url: str) -> RedisUrl:
    """Parse ``redis://``, ``rediss://``, ``redis+cluster://`` or ``rediss+cluster://``.

    Raises :class:`~oid4vci.errors.UsageError` (never echoing the URL, which may hold a
    password) when ``url`` is not one of those forms.
    """
    if not isinstance(url, str) or "://" not in url:
        raise UsageError(f"not a Redis URL: {_URL_FORM}")
    scheme, _, rest = url.partition("://")
    kind = _SCHEMES.get(scheme.lower())
    if kind is None:
        raise UsageError(f"unsupported Redis URL scheme: {_URL_FORM}")
    cluster, tls = kind
    if "?" in rest or "#" in rest:
        raise UsageError(f"a Redis URL takes no query or fragment: {_URL_FORM}")
    netloc, _, path = rest.partition("/")
    username: str | None = None
    password: str | None = None
    if "@" in netloc:
        userinfo, _, netloc = netloc.rpartition("@")
        user, sep, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if sep else None
        if not sep and user:  # redis://secret@host is a password-only form
            username, password = None, unquote(user)
    nodes = tuple(_parse_node(item) for item in netloc.split(","))
    if not cluster and len(nodes) != 1:
        raise UsageError(f"a single-server Redis URL names one host: {_URL_FORM}")
    db = 0
    if path:
        if not path.isdigit() or len(path) > 5:
            raise UsageError(f"the Redis database must be a number: {_URL_FORM}")
        db = int(path)
        if cluster and db != 0:
            raise UsageError("Redis Cluster has only database 0")
    return RedisUrl(
        cluster=cluster, tls=tls, nodes=nodes, db=db, username=username, password=password
    )


def _parse_node(item: str) -> tuple[str, int]:
    host, port_text = item, ""
    if item.startswith("["):  # [IPv6]:port
        end = item.find("]")
        if end < 0:
            raise UsageError(f"malformed Redis host: {_URL_FORM}")
        host, rest = item[1:end], item[end + 1 :]
        if rest and not rest.startswith(":"):
            raise UsageError(f"malformed Redis host: {_URL_FORM}")
        port_text = rest[1:]
    elif ":" in item:
        host, _, port_text = item.rpartition(":")
    if not host or any(c in host for c in " /\\@{}"):
        raise UsageError(f"malformed Redis host: {_URL_FORM}")
    if port_text == "":
        return host, 6379
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UsageError(f"the Redis port must be a number from 1 to 65535: {_URL_FORM}")
    return host, int(port_text)


def _ttl_ms(ttl: float) -> int:
    ttl = float(ttl)
    if not math.isfinite(ttl) or ttl <= 0:
        raise UsageError("ttl must be a positive, finite number of seconds")
    return max(1, math.ceil(ttl * 1000))


def _encode(value: Any) -> str:
    try:
        return _ENCODER.encode(value)
    except (TypeError, ValueError) as exc:
        raise ArgumentTypeError("store values must be JSON-able") from exc


def _decode(raw: str | bytes | None) -> Any | None:
    return None if raw is None else json.loads(raw)


class RedisStore:
    """A :class:`~oid4vci.issuer.store.Store` on Redis (single server or cluster).

    Build it with :meth:`from_url` (or around your own ``coredis.Redis`` /
    ``coredis.RedisCluster`` client) and use it inside ``async with store:``; the connection
    pool lives for the block. Safe for any number of concurrent tasks and processes.

    :param client: a coredis client; this store enters and leaves it with its own block.
    :param prefix: put before every key (no ``{`` or ``}``); one Redis can hold several
        deployments under different prefixes.
    :param timeout: seconds any operation may take, connecting included; past it the
        operation raises :class:`~oid4vci.errors.StoreUnavailableError`.
    :param description: how the store names its server in reprs and messages (never a
        password); :meth:`from_url` passes the URL without credentials.
    """

    def __init__(
        self,
        client: coredis.Redis[Any] | coredis.RedisCluster[Any],
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        description: str = "redis",
    ) -> None:
        if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
            raise UsageError("the key prefix must be a string without '{' or '}'")
        if not math.isfinite(timeout) or timeout <= 0:
            raise UsageError("timeout must be a positive number of seconds")
        self._client = client
        self._prefix = prefix
        self._timeout = float(timeout)
        self._description = description
        self._entered = 0

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = 64,
    ) -> RedisStore:
        """A store for ``url`` (``redis://``, ``rediss://``, ``redis+cluster://``, ...).

        Nothing connects until the store is entered. A malformed URL raises
        :class:`~oid4vci.errors.UsageError`.
        """
        parsed = parse_redis_url(url)
        if not math.isfinite(timeout) or timeout <= 0:
            raise UsageError("timeout must be a positive number of seconds")
        if max_connections < 1:
            raise UsageError("max_connections must be at least 1")
        common: dict[str, Any] = {
            "username": parsed.username,
            "password": parsed.password,
            "stream_timeout": timeout,
            "connect_timeout": timeout,
            "pool_timeout": timeout,
            "ssl": parsed.tls,
            "max_connections": max_connections,
            "decode_responses": True,
        }
        client: coredis.Redis[Any] | coredis.RedisCluster[Any]
        if parsed.cluster:
            client = coredis.RedisCluster(
                startup_nodes=[coredis.connection.TCPLocation(h, p) for h, p in parsed.nodes],
                # CLUSTERDOWN means the command was not run: retrying it once is safe. Nothing
                # else is retried (see the module docstring).
                retry_policy=ConstantRetryPolicy(
                    (coredis.exceptions.ClusterDownError,), retries=1, delay=0.05
                ),
                **common,
            )
        else:
            host, port = parsed.nodes[0]
            client = coredis.Redis(host, port, parsed.db, retry_policy=NoRetryPolicy(), **common)
        return cls(client, prefix=prefix, timeout=timeout, description=str(parsed))

    def __repr__(self) -> str:
        return f"RedisStore({self._description!r}, prefix={self._prefix!r})"

    @property
    def prefix(self) -> str:
        """The prefix of every key this store writes."""
        return self._prefix

    @property
    def timeout(self) -> float:
        """Seconds an operation may take before :class:`StoreUnavailableError`."""
        return self._timeout

    @property
    def client(self) -> coredis.Redis[Any] | coredis.RedisCluster[Any]:
        """The coredis client (for administration; keep to keys under :attr:`prefix`)."""
        return self._client

    async def __aenter__(self) -> Self:
        """Open the connection pool.

        A single server is connected to on the first operation; a cluster client reads the
        cluster's layout here (:class:`StoreUnavailableError` when no node answers).
        """
        # No deadline of ours here: the client's task group must not nest in a cancel scope
        # that ends before it; the client's own connect timeout bounds this.
        with self._errors("connect", deadline=False):
            await self._client.__aenter__()
        self._entered += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the connection pool; an exception of the block propagates as itself."""
        self._entered -= 1
        try:
            await self._client.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            # The client's task group wraps the block's exception; hand it back unwrapped.
            if exc is not None and len(group.exceptions) == 1 and group.exceptions[0] is exc:
                return
            raise

    @contextmanager
    def _errors(self, operation: str, *, deadline: bool = True) -> Iterator[None]:
        """Bound ``operation`` by the timeout and map Redis failures to store errors."""
        message = f"{self._description}: {operation} failed"
        try:
            with anyio.fail_after(self._timeout) if deadline else nullcontext():
                yield
        except TimeoutError:
            raise StoreUnavailableError(
                f"{message}: no answer within {self._timeout:g} s; retry later"
            ) from None
        except coredis.exceptions.ResponseError as exc:
            text = str(exc)
            if text.startswith("OOM"):
                raise StoreFullError(f"{message}: Redis is out of memory; retry later") from None
            if "not an integer" in text:
                raise ArgumentTypeError(
                    "increment on a key that does not hold an integer"
                ) from None
            raise StoreUnavailableError(
                f"{message}: Redis refused ({text.split(' ', 1)[0]}); retry later"
            ) from None
        except (coredis.exceptions.RedisError, OSError) as exc:
            # Messages of connection errors name only host and port; keep just the type.
            raise StoreUnavailableError(
                f"{message}: Redis unreachable ({type(exc).__name__}); retry later"
            ) from None

    def _key(self, key: str) -> str:
        if not self._entered:
            raise UsageError("use the RedisStore inside `async with store:`")
        return self._prefix + key

    async def ping(self) -> None:
        """Check that Redis answers (:class:`StoreUnavailableError` when it does not)."""
        self._key("")
        with self._errors("ping"):
            await self._client.ping()

    # -- the Store protocol --

    async def put(self, key: str, value: Any, ttl: float) -> None:
        """``SET key json PX ttl``: set ``key`` to ``value`` for ``ttl`` seconds."""
        text, ms, full = _encode(value), _ttl_ms(ttl), self._key(key)
        with self._errors("put"):
            await self._client.set(full, text, px=ms)

    async def get(self, key: str) -> Any | None:
        """``GET key``: the live value of ``key``, or ``None``."""
        full = self._key(key)
        with self._errors("get"):
            raw = await self._client.get(full)
        return _decode(raw)

    async def take(self, key: str) -> Any | None:
        """``GETDEL key``: return and delete the live value in one step, or ``None``."""
        full = self._key(key)
        with self._errors("take"):
            raw = await self._client.getdel(full)
        return _decode(raw)

    async def add_if_absent(self, key: str, value: Any, ttl: float) -> bool:
        """``SET key json NX PX ttl``: ``True`` when this call set ``key``."""
        text, ms, full = _encode(value), _ttl_ms(ttl), self._key(key)
        with self._errors("add_if_absent"):
            done = await self._client.set(full, text, condition=coredis.PureToken.NX, px=ms)
        return bool(done)

    async def delete(self, key: str) -> None:
        """``DEL key`` (no error when absent)."""
        full = self._key(key)
        with self._errors("delete"):
            await self._client.delete([full])

    async def increment(self, key: str, ttl: float) -> int:
        """One Lua script: ``INCR``, and ``PEXPIRE ttl`` when the counter has no expiry yet."""
        ms, full = _ttl_ms(ttl), self._key(key)
        with self._errors("increment"):
            value = await self._client.eval(_INCREMENT_SCRIPT, keys=[full], args=[ms])
        if not isinstance(value, int):  # pragma: no cover - the script returns an integer
            raise StoreUnavailableError(f"{self._description}: increment gave no integer")
        return value

    async def take_token(self, key: str, rate: float, burst: int) -> float:
        """One Lua script: a token-bucket step on the server's clock (see the module table).

        ``0.0`` when a token was taken, otherwise the seconds until one is available.
        """
        rate, burst = bucket_arguments(rate, burst)
        full = self._key(key)
        with self._errors("take_token"):
            wait_ms = await self._client.eval(
                _TOKEN_BUCKET_SCRIPT, keys=[full], args=[repr(rate / 1000.0), burst]
            )
        if not isinstance(wait_ms, int):  # pragma: no cover - the script returns an integer
            raise StoreUnavailableError(f"{self._description}: take_token gave no integer")
        return wait_ms / 1000.0
