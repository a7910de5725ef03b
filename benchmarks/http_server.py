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

``--server uvicorn`` serves the same worker through the ASGI adapter
(:func:`oid4vci.transports.asgi.asgi_app`) on uvicorn with its httptools parser, on the same
event loop, and its floor is uvicorn answering a fixed body (needs ``uvicorn[standard]``).

Targets (issue 16): server CPU per flow ≤ 2× in process with one wallet, ≤ 1.3× with 16 and
64 concurrent wallets. Run: ``.venv/bin/python benchmarks/http_server.py [--json]``;
``OID4VCI_EVENT_LOOP=asyncio`` in the environment measures the standard library's loop.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._uvicorn_server import MISSING
from benchmarks.wallet_flows import measure_wallet
from oid4vci.cli.event_loop import server_backend_options, server_event_loop
from oid4vci.cli.workers import WorkerProcess, WorkerSpec, stop_workers
from oid4vci.http import HttpRequest
from oid4vci.issuer.stateless_nonce import NonceKeys
from oid4vci.jose import LocalSigner
from oid4vci.transports.aiohttp import AiohttpTransport
from oid4vci.wallet import Oid4vciClient

__all__ = ["main"]

TARGETS = {1: 2.0, 16: 1.3, 64: 1.3}
#: ``serve``'s rate limiter, on, at a rate no round reaches: its cost counts, it never refuses.
UNREACHED_RATE_LIMIT = [1e9, 10**9]
#: ``--server``: aiohttp's low-level server (what ``oid4vci serve`` runs) or uvicorn + httptools
#: serving the ASGI adapter (:mod:`benchmarks._uvicorn_server`).
SERVERS = ("aiohttp", "uvicorn")
UVICORN_MODULES = ("uvicorn", "httptools")
TIMED_WORKER = Path(__file__).resolve().parent / "_timed_worker.py"
TIMES_FILE = Path(tempfile.gettempdir()) / f"oid4vci-bench-times-{os.getpid()}.json"


def _cpu_seconds(worker: subprocess.Popen[str]) -> float:
    fields = Path(f"/proc/{worker.pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start(server: str = "aiohttp") -> tuple[str, WorkerProcess]:
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
        process = subprocess.Popen(
            [sys.executable, str(TIMED_WORKER), str(listener.fileno())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            pass_fds=(listener.fileno(),),
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "OID4VCI_BENCH_TIMES": str(TIMES_FILE),
                "OID4VCI_BENCH_SERVER": server,
            },
        )
    finally:
        listener.close()
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(spec.to_json() + "\n")
    process.stdin.flush()
    ready = json.loads(process.stdout.readline() or "{}")
    worker = WorkerProcess(process, ready)
    if "ready" not in ready:
        stop_workers([worker])
        raise RuntimeError("the worker did not start")
    return url, worker


def _times(worker: WorkerProcess) -> dict[str, float]:
    """The worker's totals (``_timed_worker``): its CPU seconds and those inside the issuer."""
    seq = json.loads(TIMES_FILE.read_text())["seq"] if TIMES_FILE.exists() else 0
    os.kill(worker.pid, signal.SIGUSR1)
    for _ in range(500):
        if TIMES_FILE.exists():
            data: dict[str, float] = json.loads(TIMES_FILE.read_text())
            if data["seq"] > seq:
                return data
        time.sleep(0.01)
    raise RuntimeError("the worker did not report its times")


async def _wallet(link: str, flows: int) -> None:
    async with AiohttpTransport(allow_insecure_loopback=True) as transport:
        for _ in range(flows):
            client = Oid4vciClient(transport)
            result = await client.accept_offer(await client.parse_offer(link))
            if len(result.credentials) != 1 or not result.credentials[0].verified:
                raise RuntimeError("flow failed")


async def _over_http(
    worker: WorkerProcess, link: str, wallets: int, flows: int
) -> tuple[float, float]:
    """Server CPU seconds per flow for ``flows`` flows spread over ``wallets`` wallets, and the
    part of them spent inside ``Issuer.handle``."""
    per_wallet = max(1, flows // wallets)
    await _wallet(link, 2)  # warm-up
    before = _times(worker)
    async with anyio.create_task_group() as group:
        for _ in range(wallets):
            group.start_soon(_wallet, link, per_wallet)
    after = _times(worker)
    flows = per_wallet * wallets
    return (
        (after["cpu_seconds"] - before["cpu_seconds"]) / flows,
        (after["handle_cpu_seconds"] - before["handle_cpu_seconds"]) / flows,
    )


# --- the aiohttp floor: the same server stack answering a fixed response ---------------------

#: What the floor answers every request with: a JSON body about the size of a flow's average.
FLOOR_BODY = b'{"floor":"' + b"x" * 900 + b'"}'
#: Per floor "flow": the flow's 8 requests, 3 of them POSTs with bodies the size of a flow's.
FLOOR_POST_BODY = b'{"proof":"' + b"y" * 600 + b'"}'
FLOOR_METHODS = ("GET", "GET", "GET", "POST", "POST", "POST", "GET", "GET")
FLOOR_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(FLOOR_BODY)).encode()),
]


async def _uvicorn_floor_server(fd: int) -> None:
    from benchmarks._uvicorn_server import serving_uvicorn

    async def app(scope: Any, receive: Any, send: Any) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": FLOOR_HEADERS})
        await send({"type": "http.response.body", "body": FLOOR_BODY})

    async with serving_uvicorn(app, socket.socket(fileno=fd)):
        print("ready", flush=True)
        await anyio.wait_readable(sys.stdin.fileno())  # until the benchmark closes our stdin


async def _floor_server(fd: int, server: str = "aiohttp") -> None:
    if server == "uvicorn":
        await _uvicorn_floor_server(fd)
        return
    from aiohttp import web

    async def handler(request: web.BaseRequest) -> web.Response:
        await request.read()
        return web.Response(body=FLOOR_BODY, content_type="application/json")

    runner = web.ServerRunner(web.Server(handler), access_log=None)
    await runner.setup()
    await web.SockSite(runner, socket.socket(fileno=fd)).start()
    print("ready", flush=True)
    await anyio.wait_readable(sys.stdin.fileno())  # until the benchmark closes our stdin
    await runner.cleanup()


def _start_floor(server: str = "aiohttp") -> tuple[str, subprocess.Popen[str]]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.set_inheritable(True)
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                *("--server", server, "--floor-server", str(listener.fileno())),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            pass_fds=(listener.fileno(),),
        )
    finally:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        listener.close()
    assert process.stdout is not None
    if process.stdout.readline().strip() != "ready":
        raise RuntimeError("the floor server did not start")
    return url, process


async def _floor_wallet(url: str, flows: int) -> None:
    async with AiohttpTransport(allow_insecure_loopback=True) as transport:
        for _ in range(flows):
            for method in FLOOR_METHODS:
                body = FLOOR_POST_BODY if method == "POST" else b""
                headers = {"Content-Type": "application/json"} if body else None
                request = HttpRequest(method=method, url=f"{url}/x", headers=headers, body=body)
                if (await transport.send(request)).status != 200:
                    raise RuntimeError("floor request failed")


async def _floor(process: subprocess.Popen[str], url: str, wallets: int, flows: int) -> float:
    """The floor server's CPU seconds per 8 requests, as :func:`_over_http` measures."""
    per_wallet = max(1, flows // wallets)
    await _floor_wallet(url, 2)
    start = _cpu_seconds(process)
    async with anyio.create_task_group() as group:
        for _ in range(wallets):
            group.start_soon(_floor_wallet, url, per_wallet)
    return (_cpu_seconds(process) - start) / (per_wallet * wallets)


def main(argv: Sequence[str] | None = None) -> int:
    """Print server CPU per flow over HTTP ÷ in process, with met / NOT met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--flows", type=int, default=256, help="flows per measurement")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default="aiohttp",
        help="the worker's HTTP server (uvicorn: the ASGI adapter on uvicorn + httptools)",
    )
    parser.add_argument("--floor-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.server == "uvicorn" and not all(map(importlib.util.find_spec, UVICORN_MODULES)):
        print(f"http_server.py: {MISSING}", file=sys.stderr)
        return 2
    if args.floor_server is not None:
        options = server_backend_options()
        anyio.run(_floor_server, args.floor_server, args.server, backend_options=options)
        return 0
    url, worker = _start(args.server)
    floor_url, floor_process = _start_floor(args.server)
    inside: list[float] = []
    over_http: dict[int, list[float]] = {wallets: [] for wallets in TARGETS}
    served_issuer: dict[int, list[float]] = {wallets: [] for wallets in TARGETS}
    floor: dict[int, list[float]] = {wallets: [] for wallets in TARGETS}
    try:
        link = worker.ready["line"]["offers"]["pre_auth"]
        for _ in range(args.rounds):
            in_process = measure_wallet(1, 100, rounds=1)
            inside.append(in_process.issuer_cpu_seconds / in_process.flows)
            for wallets, seconds in over_http.items():
                total, issuer = anyio.run(_over_http, worker, link, wallets, args.flows)
                seconds.append(total)
                served_issuer[wallets].append(issuer)
                floor[wallets].append(
                    anyio.run(_floor, floor_process, floor_url, wallets, args.flows)
                )
    finally:
        stop_workers([worker])
        TIMES_FILE.unlink(missing_ok=True)
        assert floor_process.stdin is not None
        floor_process.stdin.close()
        floor_process.wait(timeout=10)
    rows: list[dict[str, Any]] = []
    for wallets, seconds in over_http.items():
        ratio = statistics.median(s / i for s, i in zip(seconds, inside, strict=True))
        floor_ratio = statistics.median(
            (i + f) / i for f, i in zip(floor[wallets], inside, strict=True)
        )
        rows.append(
            {
                "wallets": wallets,
                "server_ms_per_flow": round(1000 * statistics.median(seconds), 3),
                "in_process_ms_per_flow": round(1000 * statistics.median(inside), 3),
                "ratio": round(ratio, 2),
                "ratios": [round(s / i, 2) for s, i in zip(seconds, inside, strict=True)],
                "target": TARGETS[wallets],
                "met": ratio <= TARGETS[wallets],
                "served_issuer_ms_per_flow": round(
                    1000 * statistics.median(served_issuer[wallets]), 3
                ),
                "aiohttp_floor_ms_per_flow": round(1000 * statistics.median(floor[wallets]), 3),
                "floor_ratio": round(floor_ratio, 2),
            }
        )
    loop = server_event_loop()
    if args.json:
        document = {"url": url, "server": args.server, "event_loop": loop, "rows": rows}
        print(json.dumps(document, indent=2))
        return 0
    print(
        f"Issuer CPU per complete pre-authorized flow (N=1): over {args.server} ÷ in process"
        f" (server event loop: {loop}; medians of {args.rounds} rounds)"
    )
    print(
        f"{'wallets':>8} {'server ms/flow':>15} {'in-process ms':>14} {'ratio':>6}  target"
        f"{'':13} {'floor ms':>17} {'best ratio':>10}"
    )
    for r in rows:
        verdict = "met" if r["met"] else "NOT met"
        print(
            f"{r['wallets']:>8} {r['server_ms_per_flow']:>15.2f} {r['in_process_ms_per_flow']:>14.2f}"
            f" {r['ratio']:>6.2f}  <= {r['target']:.1f} {verdict:<7}"
            f" {r['aiohttp_floor_ms_per_flow']:>17.2f} {r['floor_ratio']:>10.2f}"
        )
    print(
        f"\n{'wallets':>8} {'served: issuer ms':>18} {'rest ms':>8}  (server ms/flow split by"
        " timing Issuer.handle in the worker)"
    )
    for r in rows:
        rest = r["server_ms_per_flow"] - r["served_issuer_ms_per_flow"]
        print(f"{r['wallets']:>8} {r['served_issuer_ms_per_flow']:>18.2f} {rest:>8.2f}")
    stack = "uvicorn + httptools" if args.server == "uvicorn" else "aiohttp low-level server"
    print(
        f"{args.server} floor: the same server stack ({stack}, same event loop) answering 8"
        " requests\nwith a fixed body; best ratio = (in process + floor) ÷ in process,"
        " what a zero-cost adapter would reach."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
