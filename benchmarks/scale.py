"""Scale: per-credential cost from N = 1 to N = 100, memory per live store entry, and the
bounded store's 503.

* **per credential**: CPU µs per credential of the issuer's credential endpoint
  (:mod:`benchmarks.issuer_credential_endpoint`) and of the wallet's response verification
  (:mod:`benchmarks.wallet_parts`) for N = 1, 10 and 100 credentials per request. Flat means
  no per-credential cost grows with N (N = 1 carries the request's fixed cost alone); the
  target compares N = 100 with N = 10 (≤ 1.10×). CPU time moves by ±20 % on a shared machine,
  so with valgrind installed the same ratio is also counted in instructions (callgrind, one
  process, each phase between two ``srand48`` markers as in :mod:`benchmarks.gate`: one
  request of N key proofs answered by ``Issuer.handle``, one verification of N fresh
  credentials, each after the parsed-key cache was cleared); ``--no-instructions`` skips it.
* **memory per entry**: :mod:`tracemalloc` bytes per live :class:`~oid4vci.issuer.store.
  MemoryStore` entry for 20 000 pre-authorized offers and 20 000 DPoP ``jti`` replay entries
  (target ≤ 600 B each).
* **bound**: a ``MemoryStore(max_entries=…)`` filled with live offers; a token request for one
  of those offers' codes must then answer 503 with ``Retry-After`` (its DPoP ``jti`` finds no
  room). A code the store does not know is refused 400 ``invalid_grant`` before anything is
  written, so the probe must use a real one.

Run: ``.venv/bin/python benchmarks/scale.py`` (about a minute; ``--json`` for machines).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import shutil
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.gate import _part_total, callgrind_parts
from benchmarks.issuer_credential_endpoint import CONFIGURATION_ID, _prepare, compare, make_issuer
from benchmarks.wallet_parts import WalletParts, compare_parts
from oid4vci import jose
from oid4vci.dpop import build_dpop_jwt
from oid4vci.errors import StoreFullError
from oid4vci.http import HttpRequest
from oid4vci.issuer.config import CredentialConfigurationSpec, IssuerConfig
from oid4vci.issuer.service import Issuer
from oid4vci.issuer.store import MemoryStore
from oid4vci.jose import LocalSigner
from oid4vci.transports.memory import InMemoryTransport

__all__ = ["main"]

FLAT_TARGET = 1.10
BYTES_TARGET = 600
ENTRIES = 20_000
PRE_AUTH_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
#: N of the instruction-count phases (the flatness target compares them)
COUNTED_NS = (10, 100)


def per_credential(rounds: int) -> list[dict[str, Any]]:
    """µs of CPU per credential, issuer endpoint and wallet verification, N = 1, 10, 100."""
    out = []
    for n, requests in ((1, 300), (10, 30), (100, 3)):
        issuer = compare(n, requests, rounds=rounds)
        (_, verification) = compare_parts(n, max(3, 300 // n), rounds=rounds)
        out.append(
            {
                "n": n,
                "issuer_us_per_credential": round(
                    1e6 * issuer.ours.cpu_seconds / (n * requests), 1
                ),
                "verify_us_per_credential": round(
                    1e6 * verification.ours_seconds / (n * verification.repeats), 1
                ),
            }
        )
    return out


async def _answer(issuer: Issuer, request: HttpRequest) -> None:
    if (await issuer.handle(request)).status != 200:
        raise RuntimeError("credential request failed")


async def _counted_main() -> None:
    """Inside callgrind: per N of :data:`COUNTED_NS`, one issuer request, then one wallet
    verification, each a phase between two ``srand48`` markers, each after a warm-up."""
    libc = ctypes.CDLL(None)
    libc.srand48.argtypes = [ctypes.c_long]
    work = []
    for n in COUNTED_NS:
        issuer = make_issuer(batch_size=n)
        prepared = await _prepare(issuer, n, 2)
        parts = WalletParts(n)
        await parts.mint()
        work.append((issuer, prepared.requests, parts))
    gc.collect()
    gc.disable()
    for issuer, (warm, measured), parts in work:
        await _answer(issuer, warm)
        jose.clear_key_cache()  # an issuer never saw these holder keys
        gc.collect()
        libc.srand48(1)  # part boundary: the phase starts
        await _answer(issuer, measured)
        libc.srand48(2)  # part boundary: the phase ends
        await parts.ours_verify()
        jose.clear_key_cache()  # the issuer key is imported anew, as in wallet_parts
        await parts.mint()
        gc.collect()
        libc.srand48(1)
        await parts.ours_verify()
        libc.srand48(2)
    gc.enable()


def per_credential_instructions(valgrind: str) -> list[dict[str, Any]]:
    """Instructions per credential (callgrind) of the issuer endpoint and the wallet's
    verification, for each N of :data:`COUNTED_NS`."""
    with tempfile.TemporaryDirectory(prefix="oid4vci-scale-") as tmp:
        parts = callgrind_parts(valgrind, Path(__file__).resolve(), ["--inner"], Path(tmp))
        phases = 2 * len(COUNTED_NS)
        if len(parts) < 2 * phases:
            raise RuntimeError(f"expected {2 * phases} profile parts, got {len(parts)}")
        totals = [_part_total(parts[1 + 2 * index]) for index in range(phases)]
    return [
        {
            "n": n,
            "issuer_instructions_per_credential": totals[2 * index] // n,
            "verify_instructions_per_credential": totals[2 * index + 1] // n,
        }
        for index, n in enumerate(COUNTED_NS)
    ]


async def _bytes_per_entry(kind: str) -> float:
    store = MemoryStore(max_entries=10 * ENTRIES)
    issuer = make_issuer()
    config = issuer.config
    config = IssuerConfig(
        credential_issuer=config.credential_issuer,
        credential_signer=config.credential_signer,
        credential_configurations=list(config.credential_configurations.values()),
        claims_source=config.claims_source,
        store=store,
    )
    issuer = Issuer(config)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    if kind == "offer":
        for _ in range(ENTRIES):
            await issuer.create_pre_authorized_offer(
                configuration_ids=[CONFIGURATION_ID], subject="alice"
            )
    else:  # a DPoP jti as the token and resource endpoints record it (replay cache)
        for i in range(ENTRIES):
            await store.add_if_absent(f"dpop-jti:{i:032x}", 1, 300)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    held = store.stats().held
    return (after - before) / held


async def _bound_answers_503() -> dict[str, Any]:
    store = MemoryStore(max_entries=50)
    config = IssuerConfig(
        credential_issuer="https://issuer.bound.example",
        credential_signer=LocalSigner.generate(),
        credential_configurations=[
            CredentialConfigurationSpec(id="c", vct="https://issuer.bound.example/c")
        ],
        claims_source=make_issuer().config.claims_source,
        store=store,
    )
    issuer = Issuer(config)
    codes = []
    try:
        while True:
            created = await issuer.create_pre_authorized_offer(configuration_ids=["c"], subject="a")
            codes.append(created.pre_authorized_code)
    except StoreFullError:
        pass
    transport = InMemoryTransport(routes={config.credential_issuer: issuer.handle})
    token_url = config.endpoint("token")
    dpop = LocalSigner.generate()
    response = await transport.send(
        HttpRequest.form(
            "POST",
            token_url,
            {"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": codes[0]},
            headers={"DPoP": await build_dpop_jwt(dpop, "POST", token_url)},
        )
    )
    return {
        "entries_at_bound": store.stats().held,
        "status_past_bound": response.status,
        "retry_after": response.headers.get("Retry-After"),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the scale figures with met / NOT met."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--no-instructions", action="store_true", help="skip the instruction counts (valgrind)"
    )
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:  # the process callgrind measures
        anyio.run(_counted_main)
        return 0
    started = time.monotonic()
    report: dict[str, Any] = {
        "per_credential": per_credential(args.rounds),
        "bytes_per_entry": {
            "offer": round(anyio.run(_bytes_per_entry, "offer")),
            "dpop_jti": round(anyio.run(_bytes_per_entry, "jti")),
        },
        "bound": anyio.run(_bound_answers_503),
    }
    rows = {r["n"]: r for r in report["per_credential"]}
    targets = [  # CPU time: ±20 % from run to run here; the counted figures follow below
        (f"issuer µs/credential N=100 ÷ N=10 <= {FLAT_TARGET}",
         rows[100]["issuer_us_per_credential"] / rows[10]["issuer_us_per_credential"],
         FLAT_TARGET),
        (f"wallet verify µs/credential N=100 ÷ N=10 <= {FLAT_TARGET}",
         rows[100]["verify_us_per_credential"] / rows[10]["verify_us_per_credential"],
         FLAT_TARGET),
        (f"bytes per live offer <= {BYTES_TARGET}", report["bytes_per_entry"]["offer"],
         BYTES_TARGET),
        (f"bytes per live DPoP jti entry <= {BYTES_TARGET}", report["bytes_per_entry"]["dpop_jti"],
         BYTES_TARGET),
    ]  # fmt: skip
    report["targets"] = [
        {"figure": name, "value": round(value, 3), "met": value <= target}
        for name, value, target in targets
    ]
    report["targets"].append(
        {
            "figure": "bounded store answers 503 past its bound",
            "value": report["bound"]["status_past_bound"],
            "met": report["bound"]["status_past_bound"] == 503,
        }
    )
    valgrind = shutil.which("valgrind")
    counted_failed: str | None = None
    if valgrind is not None and not args.no_instructions:
        try:
            counted = per_credential_instructions(valgrind)
        except (RuntimeError, OSError) as exc:
            counted_failed = str(exc).splitlines()[0]
        else:
            report["per_credential_instructions"] = counted
            first, last = counted[0], counted[-1]
            for side, label in (("issuer", "issuer"), ("verify", "wallet verify")):
                key = f"{side}_instructions_per_credential"
                value = last[key] / first[key]
                report["targets"].append(
                    {
                        "figure": f"{label} instructions/credential N={last['n']} ÷ "
                        f"N={first['n']} <= {FLAT_TARGET}",
                        "value": round(value, 3),
                        "met": value <= FLAT_TARGET,
                    }
                )
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print("Per-credential CPU cost (µs), best of", args.rounds, "rounds")
    print(f"{'N':>5} {'issuer endpoint':>16} {'wallet verification':>20}")
    for r in report["per_credential"]:
        print(
            f"{r['n']:>5} {r['issuer_us_per_credential']:>16.1f}"
            f" {r['verify_us_per_credential']:>20.1f}"
        )
    if "per_credential_instructions" in report:
        print("\nPer-credential cost in instructions (callgrind, one request / verification)")
        print(f"{'N':>5} {'issuer endpoint':>16} {'wallet verification':>20}")
        for r in report["per_credential_instructions"]:
            print(
                f"{r['n']:>5} {r['issuer_instructions_per_credential']:>16,}"
                f" {r['verify_instructions_per_credential']:>20,}"
            )
    elif counted_failed is not None:
        print(f"\nno instruction counts: callgrind failed ({counted_failed})")
    elif not args.no_instructions:
        print("\nvalgrind is not installed: no instruction counts (scripts/install-valgrind.sh)")
    print(
        f"\nMemory per live MemoryStore entry (tracemalloc, {ENTRIES} entries): "
        f"offer {report['bytes_per_entry']['offer']} B, "
        f"DPoP jti {report['bytes_per_entry']['dpop_jti']} B"
    )
    bound = report["bound"]
    print(
        f"Bound: {bound['entries_at_bound']} live entries, then the token endpoint answers "
        f"{bound['status_past_bound']} (Retry-After {bound['retry_after']})"
    )
    print("\nTargets")
    for t in report["targets"]:
        print(f"  {t['figure']:<60} {t['value']!s:>8}  {'met' if t['met'] else 'NOT met'}")
    print(f"\ntotal wall time {report['wall_seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
