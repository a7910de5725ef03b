"""Wallet benchmark: complete pre-authorized flows per CPU-second against the demo issuer.

One flow is what a wallet does with a fresh ``openid-credential-offer://`` link of the demo
issuer (:func:`oid4vci.issuer.demo.build_demo_issuer`, 11 disclosures per credential):
a new :class:`~oid4vci.wallet.Oid4vciClient` (so no cached metadata) fetches the offer by
reference, discovers the issuer and authorization server metadata, redeems the pre-authorized
code with a DPoP proof, asks the nonce endpoint for a ``c_nonce``, generates ``N`` holder keys,
signs ``N`` key proofs, sends one credential request and verifies the ``N`` SD-JWT VCs (issuer
key from the JWT VC Issuer metadata). Everything runs in one process through
:class:`~oid4vci.transports.memory.InMemoryTransport`.

The issuer's share is measured by wrapping ``Issuer.handle`` with a
:func:`time.process_time` accumulator (the in-memory handler never yields to other tasks, so
the time inside it is the issuer's); the wallet's own cost is the rest.

Run alone: ``.venv/bin/python benchmarks/wallet_flows.py [--profile]``.
"""

from __future__ import annotations

import cProfile
import gc
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
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer.demo import DemoIssuer, build_demo_issuer
from oid4vci.transports.memory import Handler, InMemoryTransport
from oid4vci.wallet import Oid4vciClient

__all__ = ["TimedHandler", "WalletResult", "measure_wallet", "run_wallet_benchmark"]

ISSUER_URL = "https://issuer.demo.example"


class TimedHandler:
    """Wraps a request handler and adds up the CPU time spent inside it."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.cpu_seconds = 0.0
        self.calls = 0

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        """Answer ``request`` with the wrapped handler, timing it."""
        start = time.process_time()
        try:
            return await self.handler(request)
        finally:
            self.cpu_seconds += time.process_time() - start
            self.calls += 1

    def reset(self) -> None:
        """Start a new measurement."""
        self.cpu_seconds = 0.0
        self.calls = 0


@attrs.frozen(kw_only=True)
class WalletResult:
    """``flows`` complete flows of ``n`` credentials: total and issuer CPU seconds."""

    n: int
    flows: int
    cpu_seconds: float
    issuer_cpu_seconds: float
    requests_per_flow: float

    @property
    def wallet_cpu_seconds(self) -> float:
        """CPU time outside the issuer's handler (the wallet, transport and event loop)."""
        return self.cpu_seconds - self.issuer_cpu_seconds

    @property
    def flows_per_cpu_second(self) -> float:
        """Complete flows per CPU-second, issuer included."""
        return self.flows / self.cpu_seconds

    @property
    def wallet_flows_per_cpu_second(self) -> float:
        """Complete flows per CPU-second of the wallet's own work."""
        return self.flows / self.wallet_cpu_seconds

    @property
    def issuer_share(self) -> float:
        """Fraction of the CPU time spent inside the issuer."""
        return self.issuer_cpu_seconds / self.cpu_seconds

    @property
    def ms_per_flow(self) -> float:
        """CPU milliseconds per flow (issuer included)."""
        return 1000 * self.cpu_seconds / self.flows

    @property
    def wallet_ms_per_flow(self) -> float:
        """CPU milliseconds per flow spent outside the issuer."""
        return 1000 * self.wallet_cpu_seconds / self.flows

    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {
            "n": self.n,
            "flows_per_cpu_s": round(self.flows_per_cpu_second, 2),
            "credentials_per_cpu_s": round(self.flows_per_cpu_second * self.n, 1),
            "wallet_only_flows_per_cpu_s": round(self.wallet_flows_per_cpu_second, 2),
            "issuer_share": round(self.issuer_share, 3),
            "ms_per_flow": round(self.ms_per_flow, 3),
            "wallet_ms_per_flow": round(self.wallet_ms_per_flow, 3),
            "issuer_ms_per_flow": round(1000 * self.issuer_cpu_seconds / self.flows, 3),
            "requests_per_flow": self.requests_per_flow,
            "flows_per_round": self.flows,
        }


async def _flow(transport: InMemoryTransport, demo: DemoIssuer, n: int) -> None:
    client = Oid4vciClient(transport)
    offer = await client.parse_offer(demo.offer_links["pre_auth"])
    result = await client.accept_offer(offer, count=n)
    if len(result.credentials) != n or not all(c.verified for c in result.credentials):
        raise RuntimeError(f"flow returned {len(result.credentials)} verified credentials")


async def _round(
    transport: InMemoryTransport,
    timed: TimedHandler,
    demo: DemoIssuer,
    n: int,
    flows: int,
    profiler: cProfile.Profile | None,
) -> WalletResult:
    gc.collect()
    timed.reset()
    if profiler is not None:
        profiler.enable()
    start = time.process_time()
    for _ in range(flows):
        await _flow(transport, demo, n)
    elapsed = time.process_time() - start
    if profiler is not None:
        profiler.disable()
    return WalletResult(
        n=n,
        flows=flows,
        cpu_seconds=elapsed,
        issuer_cpu_seconds=timed.cpu_seconds,
        requests_per_flow=timed.calls / flows,
    )


def measure_wallet(
    n: int, flows: int, *, rounds: int = 3, profiler: cProfile.Profile | None = None
) -> WalletResult:
    """Best of ``rounds`` rounds of ``flows`` pre-authorized flows of ``n`` credentials."""
    demo = build_demo_issuer(ISSUER_URL)
    timed = TimedHandler(demo.handle)
    transport = InMemoryTransport(routes={ISSUER_URL: timed})

    async def main() -> WalletResult:
        await _flow(transport, demo, n)  # warm-up
        results = [await _round(transport, timed, demo, n, flows, profiler) for _ in range(rounds)]
        return min(results, key=lambda r: r.cpu_seconds)

    return anyio.run(main)


def default_flows(n: int, scale: float = 1.0) -> int:
    """Flows per round: 100 at N=1, 25 at N=10 (at least 5)."""
    return max(5, int(scale * (100 if n == 1 else 250 / n)))


def run_wallet_benchmark(
    ns: Sequence[int] = (1, 10), *, scale: float = 1.0, rounds: int = 5
) -> list[WalletResult]:
    """The wallet benchmark for every ``n`` in ``ns``."""
    return [measure_wallet(n, default_flows(n, scale), rounds=rounds) for n in ns]


def format_wallet_table(results: Sequence[WalletResult]) -> str:
    """A plain-text table of :func:`run_wallet_benchmark` results."""
    lines = [
        "Wallet pre-authorized flows against the in-memory demo issuer (fresh client per flow)",
        f"{'N':>4} {'flows/CPU-s':>12} {'cred/CPU-s':>11} {'ms/flow':>9} {'wallet ms':>10}"
        f" {'issuer ms':>10} {'issuer %':>9} {'wallet-only flows/CPU-s':>24}",
    ]
    for r in results:
        lines.append(
            f"{r.n:>4} {r.flows_per_cpu_second:>12.1f} {r.flows_per_cpu_second * r.n:>11.0f}"
            f" {r.ms_per_flow:>9.2f} {r.wallet_ms_per_flow:>10.2f}"
            f" {1000 * r.issuer_cpu_seconds / r.flows:>10.2f} {100 * r.issuer_share:>8.0f}%"
            f" {r.wallet_flows_per_cpu_second:>24.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the table (or JSON), or a cProfile of the measured region."""
    return run_cli(
        argv,
        description=__doc__.splitlines()[0] if __doc__ else None,
        unit="flow",
        profile_once=lambda n, scale, profiler: measure_wallet(
            n, default_flows(n, scale), rounds=1, profiler=profiler
        ),
        run=lambda ns, scale, rounds: run_wallet_benchmark(ns, scale=scale, rounds=rounds),
        table=format_wallet_table,
        sort_keys=("tottime",),
    )


if __name__ == "__main__":
    raise SystemExit(main())
