"""Private Redis servers for the tests: one server, or a three-master cluster, on loopback.

Each server is Debian's ``redis-server`` on a free 127.0.0.1 port with persistence off
(``--save '' --appendonly no``) in its own temporary directory, stopped when the test (or the
session) is done; no system Redis is used. ``.ci/run`` installs ``redis-server`` and
``redis-tools`` (``scripts/install-redis.sh``). When they are missing or a server does not
start, :func:`require_redis` fails the test under ``CI`` and skips it elsewhere, with the reason.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

__all__ = [
    "RedisCluster",
    "RedisServer",
    "redis_cluster",
    "redis_server",
    "require_redis",
]

START_TIMEOUT = 10.0


class RedisUnavailable(Exception):
    """Redis could not be started here (missing binaries, no port, a server that died)."""


def require_redis(reason: str) -> None:
    """Fail under ``CI`` (Redis must run there), skip elsewhere; always with ``reason``."""
    message = f"Redis is needed: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(*, with_bus: bool = False) -> int:
    """A free loopback port; with ``with_bus``, ``port + 10000`` (the cluster bus) is free too."""
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20000, 55000)
        if _port_free(port) and (not with_bus or _port_free(port + 10000)):
            return port
    raise RedisUnavailable("no free loopback port")


def _ping(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One private ``redis-server`` process on 127.0.0.1 (restartable on the same port)."""

    def __init__(self, directory: Path, port: int, *extra: str) -> None:
        self.directory = directory
        self.port = port
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisUnavailable("redis-server is not installed (scripts/install-redis.sh)")
        log = (self.directory / f"redis-{self.port}.log").open("ab")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
                *self.extra,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RedisUnavailable(f"redis-server exited: {self.log_tail()}")
            if _ping(self.port):
                return
            time.sleep(0.02)
        self.stop()
        raise RedisUnavailable(f"redis-server did not answer within {START_TIMEOUT} s")

    def log_tail(self) -> str:
        """The end of the server's log."""
        path = self.directory / f"redis-{self.port}.log"
        return path.read_text(errors="replace")[-500:] if path.exists() else ""

    def stop(self) -> None:
        """Stop the server (SIGKILL: like a crash; nothing is persisted anyway)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def cli(self, *args: str) -> str:
        """``redis-cli -p PORT ARGS`` (needs redis-tools)."""
        done = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout.strip()


class RedisCluster:
    """Three private masters (no replicas) joined into a Redis Cluster."""

    def __init__(self, servers: list[RedisServer]) -> None:
        self.servers = servers

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3``."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{s.port}" for s in self.servers)

    def start(self) -> None:
        """Start the three nodes, create the cluster, wait until every node says ``ok``."""
        if shutil.which("redis-cli") is None:
            raise RedisUnavailable("redis-cli is not installed (scripts/install-redis.sh)")
        for server in self.servers:
            server.start()
        nodes = [f"127.0.0.1:{s.port}" for s in self.servers]
        done = subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *nodes,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            self.stop()
            raise RedisUnavailable(f"redis-cli --cluster create failed: {done.stdout[-300:]}")
        deadline = time.monotonic() + START_TIMEOUT * 2
        while time.monotonic() < deadline:
            if all("cluster_state:ok" in s.cli("cluster", "info") for s in self.servers):
                return
            time.sleep(0.1)
        self.stop()
        raise RedisUnavailable("the cluster did not reach cluster_state:ok")

    def stop(self) -> None:
        """Stop every node."""
        for server in self.servers:
            server.stop()

    def dbsize(self) -> int:
        """Keys on all masters together."""
        return sum(int(s.cli("dbsize")) for s in self.servers)


@contextmanager
def redis_server(*extra: str) -> Iterator[RedisServer]:
    """A started private server, stopped (and its directory removed) afterwards."""
    with tempfile.TemporaryDirectory(prefix="oid4vci-redis-") as tmp:
        server = RedisServer(Path(tmp), free_port(), *extra)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def redis_cluster() -> Iterator[RedisCluster]:
    """A started private three-master cluster, stopped afterwards."""
    with tempfile.TemporaryDirectory(prefix="oid4vci-redis-cluster-") as tmp:
        servers: list[RedisServer] = []
        for _ in range(3):
            port = free_port(with_bus=True)
            while any(port in (s.port, s.port + 10000) for s in servers):
                port = free_port(with_bus=True)
            node_dir = Path(tmp) / str(port)
            node_dir.mkdir()
            servers.append(
                RedisServer(
                    node_dir,
                    port,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(node_dir / "nodes.conf"),
                    "--cluster-node-timeout",
                    "2000",
                )
            )
        cluster = RedisCluster(servers)
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()
