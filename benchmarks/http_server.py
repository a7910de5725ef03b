"""HTTP overhead: the issuer's CPU per wallet flow over aiohttp on loopback ÷ in process.

In process: :mod:`benchmarks.wallet_flows` (N = 1) measures the CPU time spent inside the demo
issuer's ``Issuer.handle`` per complete pre-authorized flow. Over HTTP: the same demo issuer
runs as one ``oid4vci serve`` worker (:mod:`oid4vci.cli.workers`: the aiohttp low-level server
adapter, a MemoryStore, uvloop when installed) in its own process; ``C`` concurrent wallets,
each with its own :class:`~oid4vci.transports.aiohttp.AiohttpTransport` (keep-alive reused
across its flows) and a fresh :class:`~oid4vci.wallet.Oid4vciClient` per flow, run complete
flows (8 requests each: the offer, two metadata documents, token, nonce, credential, JWT VC
Issuer metadata, status list) against it. The server's CPU time (user + system) comes from
``/proc/<pid>/stat`` (Linux; clock ticks, so rounds are long enough for a few hundred ticks).

The worker runs with ``serve``'s per-client rate limiter on (a token bucket per client address
and endpoint, kept in the store) at a rate the benchmark never reaches, so its cost is counted
as a production server pays it; the in-process issuer has no client address and so no
bucket. Each round measures in process and then every wallet count, so both sides of a ratio
see the same load on the machine; the figures are the medians of the rounds.

Targets (issue 16): server CPU per flow ≤ 2× in process with one wallet, ≤ 1.3× with 16 and
64 concurrent wallets. Run: ``.venv/bin/python benchmarks/http_server.py [--json]``;
``OID4VCI_EVENT_LOOP=asyncio`` in the environment measures the standard library's loop.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.wallet_flows import measure_wallet
from oid4vci.cli.event_loop import server_event_loop
from oid4vci.cli.workers import WorkerProcess, WorkerSpec, start_workers, stop_workers
from oid4vci.issuer.stateless_nonce import NonceKeys
from oid4vci.jose import LocalSigner
from oid4vci.transports.aiohttp import AiohttpTransport
from oid4vci.wallet import Oid4vciClient

__all__ = ["main"]

TARGETS = {1: 2.0, 16: 1.3, 64: 1.3}
#: ``serve``'s rate limiter, on, at a rate no round reaches: its cost counts, it never refuses.
UNREACHED_RATE_LIMIT = [1e9, 10**9]


def _cpu_seconds(worker: WorkerProcess) -> float:
    fields = Path(f"/proc/{worker.pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start() -> tuple[str, WorkerProcess]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.set_inheritable(True)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    spec = WorkerSpec(
        issuer_url=url,
        signing_jwk=LocalSigner.generate("ES256", kid="bench-key").private_jwk(),
        nonce_keys=NonceKeys.generate().to_text(),
        rate_limit=UNREACHED_RATE_LIMIT,
    )
    try:
        (worker,) = start_workers([spec], listener)
    finally:
        listener.close()
    return url, worker


async def _wallet(link: str, flows: int) -> None:
    async with AiohttpTransport(allow_insecure_loopback=True) as transport:
        for _ in range(flows):
            client = Oid4vciClient(transport)
            result = await client.accept_offer(await client.parse_offer(link))
            if len(result.credentials) != 1 or not result.credentials[0].verified:
                raise RuntimeError("flow failed")


async def _over_http(worker: WorkerProcess, link: str, wallets: int, flows: int) -> float:
    """Server CPU seconds per flow for ``flows`` flows spread over ``wallets`` wallets."""
    per_wallet = max(1, flows // wallets)
    await _wallet(link, 2)  # warm-up
    start = _cpu_seconds(worker)
    async with anyio.create_task_group() as group:
        for _ in range(wallets):
            group.start_soon(_wallet, link, per_wallet)
    return (_cpu_seconds(worker) - start) / (per_wallet * wallets)


def main(argv: Sequence[str] | None = None) -> int:
    """Print server CPU per flow over HTTP ÷ in process, with met / NOT met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--flows", type=int, default=256, help="flows per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    url, worker = _start()
    inside: list[float] = []
    over_http: dict[int, list[float]] = {wallets: [] for wallets in TARGETS}
    try:
        link = worker.ready["line"]["offers"]["pre_auth"]
        for _ in range(args.rounds):
            in_process = measure_wallet(1, 100, rounds=1)
            inside.append(in_process.issuer_cpu_seconds / in_process.flows)
            for wallets, seconds in over_http.items():
                seconds.append(anyio.run(_over_http, worker, link, wallets, args.flows))
    finally:
        stop_workers([worker])
    rows = []
    for wallets, seconds in over_http.items():
        ratio = statistics.median(s / i for s, i in zip(seconds, inside, strict=True))
        rows.append(
            {
                "wallets": wallets,
                "server_ms_per_flow": round(1000 * statistics.median(seconds), 3),
                "in_process_ms_per_flow": round(1000 * statistics.median(inside), 3),
                "ratio": round(ratio, 2),
                "ratios": [round(s / i, 2) for s, i in zip(seconds, inside, strict=True)],
                "target": TARGETS[wallets],
                "met": ratio <= TARGETS[wallets],
            }
        )
    loop = server_event_loop()
    if args.json:
        print(json.dumps({"url": url, "event_loop": loop, "rows": rows}, indent=2))
        return 0
    print(
        "Issuer CPU per complete pre-authorized flow (N=1): over aiohttp ÷ in process"
        f" (server event loop: {loop}; medians of {args.rounds} rounds)"
    )
    print(f"{'wallets':>8} {'server ms/flow':>15} {'in-process ms':>14} {'ratio':>6}  target")
    for r in rows:
        print(
            f"{r['wallets']:>8} {r['server_ms_per_flow']:>15.2f} {r['in_process_ms_per_flow']:>14.2f}"
            f" {r['ratio']:>6.2f}  <= {r['target']:.1f} {'met' if r['met'] else 'NOT met'}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
