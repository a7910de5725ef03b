"""Run every benchmark and print one readable report (``--json`` for machines).

``make bench`` runs this. CPU time is measured with :func:`time.process_time`, so other load
on the machine inflates the figures less than wall-clock time would (but shared caches and
hyper-threads still matter: compare runs made on a quiet machine).

* issuer: credentials per CPU-second of the credential endpoint, against the floor
  (:mod:`benchmarks.floor`), N = 1 and 10 credentials per request;
* wallet parts: building the credential request and verifying the response, each against its
  floor (:mod:`benchmarks.wallet_parts`);
* wallet: complete pre-authorized flows per CPU-second against the in-memory demo issuer,
  N = 1 and 10 credentials per flow, with the issuer's share shown separately;
* mdoc: minting and verifying 10 ISO mdocs, against the same work on ``cryptography`` +
  ``cbor2`` (:mod:`benchmarks.mdoc_mint_verify`).

Every target of issue 16 that is measured in process is printed with met / NOT met, in CPU
time and, when valgrind is installed, the issuer's and the wallet parts' (N = 1) also in
instructions (the gate's measurement, :mod:`benchmarks.gate`; ``--no-instructions`` skips it).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import gate
from benchmarks.issuer_credential_endpoint import format_issuer_table, run_issuer_benchmark
from benchmarks.mdoc_mint_verify import format_mdoc_table, run_mdoc_benchmark
from benchmarks.wallet_flows import format_wallet_table, run_wallet_benchmark
from benchmarks.wallet_parts import format_wallet_parts_table, run_wallet_parts_benchmark

#: Issue 16's targets, as ours ÷ floor in CPU time (1.0 = as fast as the floor).
ISSUER_TARGETS = {1: 0.80, 10: 0.85}
WALLET_PART_TARGETS = {"request building": 0.80, "response verification": 0.75}


def _verdict(value: float, target: float) -> str:
    return "met" if value >= target else "NOT met"


def environment() -> dict[str, Any]:
    """Where the figures come from."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cryptography": version("cryptography"),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "load_average": [round(x, 2) for x in os.getloadavg()]
        if hasattr(os, "getloadavg")
        else None,
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; returns 0 (figures are reported, not asserted)."""
    parser = argparse.ArgumentParser(description="oid4vci benchmarks")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument(
        "--only", choices=("issuer", "wallet", "mdoc"), help="run only one of the benchmarks"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply the work per round (default 1.0)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the best one counts")
    parser.add_argument(
        "--no-instructions",
        action="store_true",
        help="skip the targets in instructions (callgrind, about 30 s)",
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    report: dict[str, Any] = {"environment": environment()}
    issuer = wallet = parts = mdoc = None
    if args.only in (None, "issuer"):
        issuer = run_issuer_benchmark((1, 10), scale=args.scale, rounds=args.rounds)
        report["issuer"] = [r.to_json() for r in issuer]
    if args.only in (None, "wallet"):
        parts = run_wallet_parts_benchmark((1, 10), scale=args.scale, rounds=args.rounds)
        report["wallet_parts"] = [r.to_json() for r in parts]
        wallet = run_wallet_benchmark((1, 10), scale=args.scale, rounds=args.rounds)
        report["wallet"] = [r.to_json() for r in wallet]
    if args.only in (None, "mdoc"):
        mdoc = run_mdoc_benchmark((10,), scale=args.scale, rounds=args.rounds)
        report["mdoc"] = [r.to_json() for r in mdoc]
    targets: list[dict[str, Any]] = []
    for r in issuer or ():
        if r.n in ISSUER_TARGETS:
            targets.append(
                {"figure": f"issuer credential endpoint N={r.n}", "value": r.ratio,
                 "target": ISSUER_TARGETS[r.n]}
            )  # fmt: skip
    for p in parts or ():
        targets.append(
            {"figure": f"wallet {p.part} N={p.n}", "value": p.ratio,
             "target": WALLET_PART_TARGETS[p.part]}
        )  # fmt: skip
    for t in targets:
        t["value"] = round(t["value"], 3)
        t["met"] = t["value"] >= t["target"]
    report["targets"] = targets
    valgrind = shutil.which("valgrind")
    counted: list[dict[str, Any]] | None = None
    instructions_failed: str | None = None
    ratios: dict[str, float] = {}
    if args.only in (None, "issuer") and not args.no_instructions and valgrind is not None:
        try:
            ratios = gate.measure(valgrind)["ratios"]
        except (RuntimeError, OSError) as exc:
            instructions_failed = str(exc)
    if ratios:
        counted = [
            {"figure": f"issuer credential endpoint N={n}",
             "value": round(1 / ratios[f"issuer_n{n}"], 3), "target": target}
            for n, target in ISSUER_TARGETS.items()
        ] + [
            {"figure": f"wallet {part} N={n}",
             "value": round(1 / ratios[f"wallet_{key}_n{n}"], 3),
             "target": WALLET_PART_TARGETS[part]}
            for n in (1, 10)
            for part, key in (("request building", "build"), ("response verification", "verify"))
        ]  # fmt: skip
        for t in counted:
            t["met"] = t["value"] >= t["target"]
        report["instruction_targets"] = counted
    report["wall_seconds"] = round(time.monotonic() - started, 1)

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    env = report["environment"]
    print(
        f"oid4vci benchmarks — {env['date']} — Python {env['python']}, cryptography "
        f"{env['cryptography']}, {env['cpus']} CPUs, load {env['load_average']}"
    )
    print(f"(best of {args.rounds} rounds; CPU time via time.process_time)\n")
    if issuer is not None:
        print(format_issuer_table(issuer))
        print()
    if parts is not None:
        print(format_wallet_parts_table(parts))
        print()
    if wallet is not None:
        print(format_wallet_table(wallet))
        print()
    if mdoc is not None:
        print(format_mdoc_table(mdoc))
        print()
    if targets:
        print("Targets (ours ÷ floor in CPU time, this run; issue 16)")
        for t in targets:
            verdict = _verdict(t["value"], t["target"])
            print(f"  {t['figure']:<42} {t['value']:>5.2f} >= {t['target']:.2f}  {verdict}")
        print(
            "  HTTP overhead targets (server CPU per flow over aiohttp ÷ in process, met / NOT"
            " met):\n    .venv/bin/python benchmarks/http_server.py   (CPU time, about 2 minutes)\n"
            "    .venv/bin/python benchmarks/http_instructions.py   (instructions, valgrind,"
            " about 7 minutes)\n"
            "  Scale targets: .venv/bin/python benchmarks/scale.py"
        )
        print()
    if counted is not None:
        print("Targets in instructions (floor ÷ ours under callgrind, as make bench-check counts)")
        for t in counted:
            verdict = _verdict(t["value"], t["target"])
            print(f"  {t['figure']:<42} {t['value']:>5.3f} >= {t['target']:.2f}  {verdict}")
        print()
    elif instructions_failed is not None:
        print(f"no figures in instructions: callgrind failed ({instructions_failed})")
        print()
    elif args.only in (None, "issuer") and not args.no_instructions:
        print("valgrind is not installed: no figures in instructions (scripts/install-valgrind.sh)")
        print()
    print(f"total wall time {report['wall_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
