"""HTTP overhead in instructions: the issuer's work per flow over aiohttp ÷ in process.

:mod:`benchmarks.http_server` measures the same ratio in CPU time, which on a shared or virtual
machine moves by tens of percent from run to run (process wake-ups, caches, the host). This
benchmark counts instructions with ``valgrind --tool=callgrind`` instead, as the gate
(:mod:`benchmarks.gate`) does, so two runs agree to well under a percent.

**In process.** One Python process under callgrind runs complete pre-authorized flows of a fresh
:class:`~oid4vci.wallet.Oid4vciClient` against the demo issuer through
:class:`~oid4vci.transports.memory.InMemoryTransport` (as :mod:`benchmarks.wallet_flows`
does), after warming up. Every ``Issuer.handle`` call is bracketed by two calls of libc's
``srand48`` (through :mod:`ctypes`) and callgrind runs with ``--dump-before=srand48_r``, so
each call is its own profile part; their sum divided by the flows is the issuer's in-process
instructions per flow.

**Over HTTP.** One ``oid4vci serve`` worker (:mod:`oid4vci.cli.workers`, unchanged: aiohttp's
low-level server, uvloop when installed, a MemoryStore, its per-client rate limiter on at a rate
never reached) runs under callgrind; the wallets run natively in this process, each with its
own :class:`~oid4vci.transports.aiohttp.AiohttpTransport` (keep-alive across its flows). After a
warm-up, ``SIGUSR2`` makes the worker call ``srand48``, the wallets run their flows, and a
second ``SIGUSR2`` ends the part: everything the server process executed for those flows
(aiohttp, the adapter, the event loop, the issuer) divided by the flows. The aiohttp floor (the
same server stack answering 8 fixed responses per "flow", :func:`benchmarks.http_server._floor_server`)
is measured the same way; ``best`` = (in process + floor) ÷ in process is what an adapter of
zero cost would reach.

Targets (issue 16): ≤ 2× with one wallet, ≤ 1.3× with 16 and 64 concurrent wallets.
Run: ``.venv/bin/python benchmarks/http_instructions.py [--flows 256] [--json]`` (about seven
minutes on 2 cores; needs valgrind).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import signal
import socket
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

from benchmarks.gate import _TOTALS, MARKER, _part_total
from benchmarks.http_server import TARGETS, UNREACHED_RATE_LIMIT, _floor_wallet, _wallet
from oid4vci.http import HttpRequest, HttpResponse

__all__ = ["main"]

IN_PROCESS_FLOWS = 8
#: Empty marker pairs measured first: what a pair itself adds to a part (the ctypes call's
#: return and the next call's way in), subtracted from every ``Issuer.handle`` part.
CALIBRATION_PAIRS = 32
WARM_UP_FLOWS = 3


def _callgrind(valgrind: str, out: Path) -> list[str]:
    return [
        valgrind,
        "--tool=callgrind",
        f"--dump-before={MARKER}",
        "--dump-line=no",
        f"--callgrind-out-file={out}",
    ]


def _mark() -> None:
    """A profile part boundary (callgrind ``--dump-before=srand48_r``)."""
    ctypes.CDLL(None).srand48(ctypes.c_long(1))


def _part(out: Path, index: int) -> Path:
    return out.with_name(f"{out.name}.{index}")


# --- in process (runs under callgrind) -------------------------------------------------------


async def _in_process_main(flows: int) -> None:
    from benchmarks.wallet_flows import ISSUER_URL
    from oid4vci.issuer.demo import build_demo_issuer
    from oid4vci.transports.memory import InMemoryTransport
    from oid4vci.wallet import Oid4vciClient

    demo = build_demo_issuer(ISSUER_URL)
    marking = False
    libc = ctypes.CDLL(None)
    libc.srand48.argtypes = [ctypes.c_long]

    async def marked(request: HttpRequest) -> HttpResponse:
        if not marking:
            return await demo.handle(request)
        libc.srand48(1)  # part boundary: the issuer starts
        try:
            return await demo.handle(request)
        finally:
            libc.srand48(2)  # part boundary: the issuer is done

    transport = InMemoryTransport(routes={ISSUER_URL: marked})

    async def flow() -> None:
        client = Oid4vciClient(transport)
        result = await client.accept_offer(await client.parse_offer(demo.offer_links["pre_auth"]))
        if len(result.credentials) != 1 or not result.credentials[0].verified:
            raise RuntimeError("the in-process flow did not end with a verified credential")

    for _ in range(WARM_UP_FLOWS):
        await flow()
    for _ in range(CALIBRATION_PAIRS):
        libc.srand48(1)
        libc.srand48(2)
    marking = True
    for _ in range(flows):
        await flow()


def _measure_in_process(valgrind: str, tmp: Path, flows: int) -> tuple[int, int]:
    """The issuer's instructions per in-process flow, and its requests per flow."""
    out = tmp / "in-process.out"
    command = [*_callgrind(valgrind, out), sys.executable, __file__, "--in-process", str(flows)]
    done = subprocess.run(
        command, env=dict(os.environ, PYTHONHASHSEED="0"), capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise RuntimeError(f"valgrind exited with {done.returncode}")
    parts = sorted(out.parent.glob(out.name + ".*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))
    # One part ends at each marker: start-up and warm-up, then inside, between, inside, ...
    # (what follows the last marker is written at exit without a number). The first
    # CALIBRATION_PAIRS inside parts are empty pairs; the rest are Issuer.handle calls.
    inside = [_part_total(p) for p in parts[1::2]]
    empty, handled = inside[:CALIBRATION_PAIRS], inside[CALIBRATION_PAIRS:]
    if len(parts) % 2 != 0 or not handled or len(handled) % flows != 0:
        raise RuntimeError(f"unexpected profile parts: {len(parts)} for {flows} flows")
    overhead = min(empty)
    return (sum(handled) - overhead * len(handled)) // flows, len(handled) // flows


# --- over HTTP (the servers run under callgrind) --------------------------------------------


def _on_marker_signal(_signum: int, _frame: object) -> None:
    _mark()


def _serve_main(kind: str, fd: int) -> int:
    """A server process: ``worker`` (``oid4vci serve``'s worker) or ``floor``."""
    signal.signal(signal.SIGUSR2, _on_marker_signal)
    if kind == "floor":
        from benchmarks.http_server import _floor_server
        from oid4vci.cli.event_loop import server_backend_options

        anyio.run(_floor_server, fd, backend_options=server_backend_options())
        return 0
    from oid4vci.cli import workers

    return workers._worker_main([str(fd)])


class _Server:
    """A server process under callgrind, and the profile parts it has written."""

    def __init__(self, valgrind: str, tmp: Path, kind: str) -> None:
        self.out = tmp / f"{kind}.out"
        self.log = tmp / f"{kind}.log"  # valgrind's and the server's stderr
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(1024)
        listener.set_inheritable(True)
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        command = [*_callgrind(valgrind, self.out), sys.executable, __file__]
        command += ["--serve", kind, str(listener.fileno())]
        try:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.log.open("w"),
                text=True,
                pass_fds=(listener.fileno(),),
                env=dict(os.environ, PYTHONHASHSEED="0", PYTHONUNBUFFERED="1"),
            )
        finally:
            listener.close()
        assert self.process.stdin is not None and self.process.stdout is not None
        self.ready: dict[str, Any] = {}
        if kind == "worker":
            from oid4vci.cli.workers import WorkerSpec
            from oid4vci.issuer.stateless_nonce import NonceKeys
            from oid4vci.jose import LocalSigner

            spec = WorkerSpec(
                issuer_url=self.url,
                signing_jwk=LocalSigner.generate("ES256", kid="bench-key").private_jwk(),
                nonce_keys=NonceKeys.generate().to_text(),
                rate_limit=UNREACHED_RATE_LIMIT,
            )
            self.process.stdin.write(spec.to_json() + "\n")
            self.process.stdin.flush()
            self.ready = json.loads(self.process.stdout.readline() or "{}")
            if "ready" not in self.ready:
                self.stop()
                raise RuntimeError("the worker did not start under valgrind")
        elif self.process.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError("the floor server did not start under valgrind")
        self.parts = 0

    def mark(self) -> Path:
        """End the current profile part; returns its file once callgrind has written it."""
        self.parts += 1
        path = _part(self.out, self.parts)
        os.kill(self.process.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if path.exists() and _TOTALS.search(path.read_text(errors="replace")):
                return path
            time.sleep(0.05)
        raise RuntimeError(f"the server wrote no profile part {self.parts}")

    def stop(self) -> None:
        """Close the server's stdin (it stops) and wait for it."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


async def _wallets(url: str, link: str | None, wallets: int, per_wallet: int) -> None:
    async with anyio.create_task_group() as group:
        for _ in range(wallets):
            if link is None:
                group.start_soon(_floor_wallet, url, per_wallet)
            else:
                group.start_soon(_wallet, link, per_wallet)


def _measure_served(server: _Server, link: str | None, flows: int) -> dict[int, int]:
    """Server instructions per flow for every wallet count of :data:`TARGETS`."""
    anyio.run(_wallets, server.url, link, 1, WARM_UP_FLOWS)
    result: dict[int, int] = {}
    for wallets in TARGETS:
        per_wallet = max(1, flows // wallets)
        server.mark()  # the gap since the last part ends
        anyio.run(_wallets, server.url, link, wallets, per_wallet)
        result[wallets] = _part_total(server.mark()) // (per_wallet * wallets)
    return result


def measure(valgrind: str, flows: int) -> dict[str, Any]:
    """In-process, served and floor instructions per flow; ratios against the targets."""
    with tempfile.TemporaryDirectory(prefix="oid4vci-http-instructions-") as name:
        tmp = Path(name)
        inside, requests = _measure_in_process(valgrind, tmp, IN_PROCESS_FLOWS)
        worker = _Server(valgrind, tmp, "worker")
        try:
            served = _measure_served(worker, worker.ready["line"]["offers"]["pre_auth"], flows)
        finally:
            worker.stop()
        floor_server = _Server(valgrind, tmp, "floor")
        try:
            floor = _measure_served(floor_server, None, flows)
        finally:
            floor_server.stop()
    rows = []
    for wallets, target in TARGETS.items():
        ratio = served[wallets] / inside
        rows.append(
            {
                "wallets": wallets,
                "server_instructions_per_flow": served[wallets],
                "in_process_instructions_per_flow": inside,
                "ratio": round(ratio, 3),
                "target": target,
                "met": ratio <= target,
                "aiohttp_floor_instructions_per_flow": floor[wallets],
                "floor_ratio": round((inside + floor[wallets]) / inside, 3),
            }
        )
    return {"requests_per_flow": requests, "flows": flows, "rows": rows}


def format_table(result: dict[str, Any]) -> str:
    """The plain-text table of :func:`measure`."""
    lines = [
        "Issuer instructions per complete pre-authorized flow (N=1): over aiohttp ÷ in process"
        f" (callgrind; {result['flows']} flows per wallet count,"
        f" {result['requests_per_flow']} issuer requests per flow)",
        f"{'wallets':>8} {'server M/flow':>14} {'in-process M':>13} {'ratio':>6}  target"
        f"{'':13} {'floor M/flow':>13} {'best ratio':>10}",
    ]
    for r in result["rows"]:
        verdict = "met" if r["met"] else "NOT met"
        lines.append(
            f"{r['wallets']:>8} {r['server_instructions_per_flow'] / 1e6:>14.2f}"
            f" {r['in_process_instructions_per_flow'] / 1e6:>13.2f} {r['ratio']:>6.2f}"
            f"  <= {r['target']:.1f} {verdict:<7}"
            f" {r['aiohttp_floor_instructions_per_flow'] / 1e6:>13.2f} {r['floor_ratio']:>10.2f}"
        )
    lines.append(
        "floor: aiohttp's low-level server on the same event loop answering 8 fixed responses per"
        " flow;\nbest ratio = (in process + floor) ÷ in process, what a zero-cost adapter would"
        " reach."
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the instruction ratios with met / NOT met (or ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--flows", type=int, default=256, help="flows per wallet count (as http_server.py)"
    )
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--in-process", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "FD"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.in_process is not None:
        anyio.run(_in_process_main, args.in_process)
        return 0
    if args.serve is not None:
        return _serve_main(args.serve[0], int(args.serve[1]))
    if args.flows < 1:
        print("http_instructions.py: --flows must be at least 1")
        return 2
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("http_instructions.py: valgrind is not installed (scripts/install-valgrind.sh)")
        return 2
    result = measure(valgrind, args.flows)
    print(json.dumps(result, indent=2) if args.json else format_table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
