"""Scale-out benchmark: credentials per second for 1 and 2 worker processes on Redis.

Three servers of the demo issuer, each an ``oid4vci serve`` worker set
(:mod:`oid4vci.cli.workers`) on one port:

* ``memory-1``: one worker with a :class:`~oid4vci.issuer.store.MemoryStore`;
* ``redis-1``: one worker with a :class:`~oid4vci.stores.redis.RedisStore`;
* ``redis-2``: two workers sharing the port and the RedisStore (what ``--workers 2`` runs).

One measured request is ``POST /credential`` over HTTP (aiohttp, keep-alive, 32 in flight) with
a DPoP proof, a DPoP-bound access token and ``N`` key proofs; it returns ``N`` SD-JWT VCs. As
in :mod:`benchmarks.issuer_credential_endpoint`, everything a client can prepare is prepared
before the clock starts (the token, one ``c_nonce`` per request from the server's nonce
endpoint, holder keys, key proofs, DPoP proofs), so the client process spends the timed region
sending. Throughput is **wall-clock** credentials per second (CPU time of one process cannot
show several processes working), best of ``--rounds`` rounds; the servers take turns round by
round so the ratios ``redis-1 / memory-1`` and ``redis-2 / redis-1`` compare like with like.

The load generator shares the machine's cores with the workers and Redis: on 2 cores, two
workers cannot double the throughput. Quote the ratios with the machine they were measured on.

Needs ``redis-server`` (``scripts/install-redis.sh``); a private one is started on a free
loopback port. Run: ``.venv/bin/python benchmarks/redis_workers.py [-n 1 -n 10] [--json]``.
"""

from __future__ import annotations

import cProfile
import json
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._cli import run_cli
from oid4vci.cli.workers import WorkerProcess, WorkerSpec, start_workers, stop_workers
from oid4vci.dpop import build_dpop_jwt
from oid4vci.http import HttpRequest
from oid4vci.issuer.stateless_nonce import NonceKeys
from oid4vci.jose import LocalSigner
from oid4vci.transports.aiohttp import AiohttpTransport
from oid4vci.wallet.steps import (
    build_credential_request,
    build_key_proof,
    build_nonce_request,
    build_token_request,
    pre_authorized_grant,
)
from tests.redis_servers import RedisServer, redis_server

__all__ = ["ScaleResult", "run_scale_benchmark"]

SERVERS = ("memory-1", "redis-1", "redis-2")
IN_FLIGHT = 32
PRE_AUTH_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"


@attrs.frozen(kw_only=True)
class Measurement:
    """``requests`` requests of ``n`` credentials in ``seconds`` of wall-clock time."""

    server: str
    n: int
    requests: int
    seconds: float
    worker_cpu_seconds: float

    @property
    def credentials_per_second(self) -> float:
        """Throughput."""
        return self.n * self.requests / self.seconds

    @property
    def worker_cpu_ms_per_credential(self) -> float:
        """CPU milliseconds the worker processes spent per credential (less load-sensitive)."""
        return 1000 * self.worker_cpu_seconds / (self.n * self.requests)


@attrs.frozen(kw_only=True)
class ScaleResult:
    """The best round of each server for one ``n``, and the ratios."""

    n: int
    best: dict[str, Measurement]

    def rate(self, server: str) -> float:
        """Credentials per second of ``server``."""
        return self.best[server].credentials_per_second

    def cpu_ms(self, server: str) -> float:
        """Worker CPU milliseconds per credential of ``server`` (its best round)."""
        return self.best[server].worker_cpu_ms_per_credential

    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {
            "n": self.n,
            "credentials_per_s": {s: round(self.rate(s), 1) for s in SERVERS},
            "worker_cpu_ms_per_credential": {s: round(self.cpu_ms(s), 3) for s in SERVERS},
            "redis_1_over_memory_1": round(self.rate("redis-1") / self.rate("memory-1"), 3),
            "redis_2_over_redis_1": round(self.rate("redis-2") / self.rate("redis-1"), 3),
            "requests_per_round": self.best["redis-1"].requests,
        }


@attrs.define
class _Server:
    name: str
    url: str
    processes: list[WorkerProcess]


def _start(name: str, redis: RedisServer) -> _Server:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.set_inheritable(True)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    key = LocalSigner.generate("ES256", kid="bench-key").private_jwk()
    store = None if name.startswith("memory") else redis.url
    count = int(name.rsplit("-", 1)[1])
    nonce_keys = NonceKeys.generate().to_text()  # shared: a nonce from one worker works at all
    specs = [
        WorkerSpec(issuer_url=url, store_url=store, signing_jwk=key, index=i, nonce_keys=nonce_keys)
        for i in range(count)
    ]
    try:
        return _Server(name, url, start_workers(specs, listener))
    finally:
        listener.close()


async def _prepare(
    http: AiohttpTransport, server: _Server, n: int, requests: int
) -> list[HttpRequest]:
    """``requests`` ready credential requests of ``n`` proofs each (token and nonces fetched)."""
    offer = await http.send(
        HttpRequest(method="GET", url=server.url + "/offers/templates/pre_auth")
    )
    code = json.loads(offer.body)["grants"][PRE_AUTH_GRANT]["pre-authorized_code"]
    dpop_key = LocalSigner.generate("ES256")
    token_url, nonce_url, credential_url = (
        server.url + p for p in ("/token", "/nonce", "/credential")
    )
    proof = await build_dpop_jwt(dpop_key, "POST", token_url)
    answer = await http.send(
        build_token_request(token_url, pre_authorized_grant(code), dpop_proof=proof)
    )
    access_token = json.loads(answer.body)["access_token"]
    prepared: list[HttpRequest] = []
    for _ in range(requests):
        nonce = json.loads((await http.send(build_nonce_request(nonce_url))).body)["c_nonce"]
        proofs = [
            await build_key_proof(LocalSigner.generate("ES256"), audience=server.url, nonce=nonce)
            for _ in range(n)
        ]
        body = {"credential_configuration_id": "identity_credential", "proofs": {"jwt": proofs}}
        dpop = await build_dpop_jwt(dpop_key, "POST", credential_url, access_token=access_token)
        prepared.append(
            build_credential_request(
                credential_url, body, access_token=access_token, token_type="DPoP", dpop_proof=dpop
            )
        )
    return prepared


async def _send_all(http: AiohttpTransport, prepared: list[HttpRequest]) -> float:
    queue = list(reversed(prepared))
    failures: list[int] = []

    async def sender() -> None:
        while queue:
            response = await http.send(queue.pop())
            if response.status != 200:
                failures.append(response.status)

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(IN_FLIGHT):
            tg.start_soon(sender)
    elapsed = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"credential requests failed: {sorted(set(failures))}")
    return elapsed


def _cpu_seconds(processes: Sequence[WorkerProcess]) -> float:
    """User + system CPU seconds of the workers so far (Linux ``/proc``; 0 elsewhere)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for worker in processes:
        try:
            fields = Path(f"/proc/{worker.pid}/stat").read_text().rsplit(") ", 1)[1].split()
        except OSError:
            return 0.0
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def default_requests(n: int, scale: float = 1.0) -> int:
    """Requests per round: about 600 credentials at N = 1, 1,500 at N = 10."""
    return max(20, int((600 if n == 1 else 150) * scale))


async def _measure(ns: list[int], scale: float, rounds: int) -> list[ScaleResult]:
    results: list[ScaleResult] = []
    with redis_server() as redis:
        servers = [_start(name, redis) for name in SERVERS]
        http = AiohttpTransport(allow_insecure_loopback=True, total_timeout=300)
        try:
            for n in ns:
                best: dict[str, Measurement] = {}
                for _ in range(rounds):
                    for server in servers:
                        count = default_requests(n, scale)
                        prepared = await _prepare(http, server, n, count)
                        cpu_before = _cpu_seconds(server.processes)
                        seconds = await _send_all(http, prepared)
                        m = Measurement(
                            server=server.name,
                            n=n,
                            requests=count,
                            seconds=seconds,
                            worker_cpu_seconds=_cpu_seconds(server.processes) - cpu_before,
                        )
                        current = best.get(server.name)
                        if (
                            current is None
                            or m.credentials_per_second > current.credentials_per_second
                        ):
                            best[server.name] = m
                results.append(ScaleResult(n=n, best=best))
        finally:
            await http.aclose()
            for server in servers:
                stop_workers(server.processes)
    return results


def run_scale_benchmark(ns: list[int], scale: float = 1.0, rounds: int = 3) -> list[ScaleResult]:
    """Measure every server for each ``n``; best of ``rounds`` rounds."""
    return anyio.run(_measure, ns, scale, rounds)


def format_scale_table(results: Sequence[ScaleResult]) -> str:
    """A readable table."""
    lines = [
        "POST /credential over HTTP: credentials per second (wall clock, best round)",
        f"{'N':>3} {'memory, 1 worker':>17} {'redis, 1 worker':>16} {'redis, 2 workers':>17}"
        f" {'redis/memory':>13} {'2 w / 1 w':>10}",
    ]
    for r in results:
        lines.append(
            f"{r.n:>3} {r.rate('memory-1'):>17.0f} {r.rate('redis-1'):>16.0f}"
            f" {r.rate('redis-2'):>17.0f} {r.rate('redis-1') / r.rate('memory-1'):>13.2f}"
            f" {r.rate('redis-2') / r.rate('redis-1'):>10.2f}"
        )
    lines.append("worker CPU milliseconds per credential (same rounds)")
    for r in results:
        lines.append(
            f"{r.n:>3} {r.cpu_ms('memory-1'):>17.2f} {r.cpu_ms('redis-1'):>16.2f}"
            f" {r.cpu_ms('redis-2'):>17.2f} {r.cpu_ms('redis-1') / r.cpu_ms('memory-1'):>13.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``-n`` (credentials per request, default 1 and 10), ``--rounds``, ``--json``."""

    def profile_once(n: int, scale: float, profiler: cProfile.Profile) -> object:
        profiler.enable()
        try:
            return run_scale_benchmark([n], scale, rounds=1)
        finally:
            profiler.disable()

    return run_cli(
        argv,
        description="credentials per second: 1 and 2 worker processes on Redis, and memory",
        unit="request",
        profile_once=profile_once,
        run=lambda ns, scale, rounds: run_scale_benchmark(ns, scale, min(rounds, 3)),
        table=format_scale_table,
    )


if __name__ == "__main__":
    sys.exit(main())
