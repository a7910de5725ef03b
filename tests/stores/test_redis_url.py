"""Redis URLs (parsed without echoing secrets) and the missing ``coredis`` extra."""

from __future__ import annotations

import subprocess
import sys

import pytest

from oid4vci.errors import MissingDependencyError, UsageError
from oid4vci.stores.redis import RedisStore, RedisUrl, parse_redis_url


def test_single_server_urls() -> None:
    assert parse_redis_url("redis://127.0.0.1") == RedisUrl(
        cluster=False, tls=False, nodes=(("127.0.0.1", 6379),)
    )
    parsed = parse_redis_url("rediss://user:p%40ss@cache.example:6380/3")
    assert (parsed.tls, parsed.nodes, parsed.db) == (True, (("cache.example", 6380),), 3)
    assert (parsed.username, parsed.password) == ("user", "p@ss")
    assert parse_redis_url("redis://:pw@[::1]:7000/0").nodes == (("::1", 7000),)
    assert parse_redis_url("redis://pw@h").password == "pw"


def test_cluster_urls() -> None:
    parsed = parse_redis_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001")
    assert parsed.cluster and parsed.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert str(parsed) == "redis+cluster://10.0.0.1:7000,10.0.0.2:7001"
    assert parse_redis_url("rediss+cluster://h:1/0").tls


@pytest.mark.parametrize(
    "url",
    [
        "",
        "127.0.0.1:6379",
        "http://127.0.0.1",
        "redis://",
        "redis://h:port",
        "redis://h:0",
        "redis://h:70000",
        "redis://h/x",
        "redis://h/1?x=1",
        "redis://a:1,b:2",
        "redis+cluster://a:1/2",
        "redis://[::1",
        "redis://{h}",
    ],
)
def test_malformed_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError):
        parse_redis_url(url)


def test_no_secret_in_messages_or_reprs() -> None:
    secret = "hunter2-very-secret"
    parsed = parse_redis_url(f"redis://admin:{secret}@h:1/0")
    assert secret not in repr(parsed) and secret not in str(parsed)
    assert secret not in repr(RedisStore.from_url(f"redis://admin:{secret}@h:1/0"))
    with pytest.raises(UsageError) as caught:
        parse_redis_url(f"redis://admin:{secret}@h:notaport/0")
    assert secret not in str(caught.value)


def test_bad_options_are_usage_errors() -> None:
    for kwargs in ({"timeout": 0}, {"timeout": float("nan")}, {"max_connections": 0}):
        with pytest.raises(UsageError):
            RedisStore.from_url("redis://h", **kwargs)


def test_missing_coredis_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['coredis'] = None\n"
        "from oid4vci.errors import MissingDependencyError\n"
        "try:\n"
        "    import oid4vci.stores.redis\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
        "import oid4vci.stores\n"  # the package itself never needs coredis
        "print(oid4vci.stores.MemoryStore.__name__)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    lines = done.stdout.splitlines()
    assert lines == ["RedisStore needs coredis: pip install 'oid4vci[redis]'", "MemoryStore"]
    assert issubclass(MissingDependencyError, ImportError)
