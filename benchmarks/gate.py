"""A noise-free performance gate: instruction counts (callgrind) as ratios to the floor.

``make bench-check`` runs this with ``check``; ``update`` rewrites the baseline
(``benchmarks/gate_baseline.json``) — commit that on purpose, with the reason in the message.

**Method.** One Python process runs under ``valgrind --tool=callgrind``. It imports everything,
prepares every input (keys, tokens, nonces, proofs, offers) and warms every workload up once;
then it runs the measured phases one after the other, with automatic garbage collection off
inside a phase and a full collection between phases. Before and after each phase it calls
``srand48`` from libc through :mod:`ctypes` (nothing else in the process calls it), and
callgrind is started with ``--dump-before=srand48_r``: each call ends one profile part and
starts the next. So every phase gets its own instruction count, with nothing of start-up,
imports, preparation or warm-up in it. ``PYTHONHASHSEED`` is fixed.

The measured phases, each ours and its floor (:mod:`benchmarks.floor`,
:mod:`benchmarks.wallet_floor`) doing the same cryptographic work in the same run:

* ``issuer_n1`` / ``issuer_n10``: ``POST /credential`` answered by
  :meth:`~oid4vci.issuer.Issuer.handle` (called directly, as a server adapter does; not through
  the in-memory transport, whose yield to the event loop is not the issuer's work) with 1 / 10
  key proofs and as many SD-JWT VCs
  (10 disclosures, 3 decoys, ES256), against :class:`benchmarks.floor.FloorPipeline`;
* ``wallet_flow``: one complete pre-authorized flow of a fresh
  :class:`~oid4vci.wallet.Oid4vciClient` against that issuer in memory (offer by reference,
  both metadata documents, token with DPoP, nonce, one credential, JWT VC Issuer Metadata,
  verification), against the floor of its signatures and verifications (issuer pipeline, the
  token request's DPoP proof, the wallet's request building and credential verification);
* ``wallet_build_n1`` / ``wallet_verify_n1`` and ``wallet_build_n10`` /
  ``wallet_verify_n10``: the wallet's two parts of :mod:`benchmarks.wallet_parts` at N = 1
  and N = 10 (building one credential request with N fresh holder keys; verifying N SD-JWT
  VCs of 10 disclosures, the issuer key imported anew), against
  :class:`benchmarks.wallet_floor.WalletFloor`.

The figure gated is ``ours ÷ floor`` in instructions: both sides go through the same OpenSSL
code, so the ratio holds from one machine to the next far better than times do. ``check``
fails when a ratio grew by more than ``--tolerance`` (3 %) over the baseline, and prints the
functions (callgrind's self cost per iteration) that grew most.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

__all__ = ["main"]

BASELINE = Path(__file__).with_name("gate_baseline.json")
MARKER = "srand48_r"  # called by libc's srand48, which nothing else in the process calls
TOLERANCE = 0.03
TOP_FUNCTIONS = 30
#: (ratio name, our phase, floor phase)
RATIOS: tuple[tuple[str, str, str], ...] = (
    ("issuer_n1", "ours_issuer_n1", "floor_issuer_n1"),
    ("issuer_n10", "ours_issuer_n10", "floor_issuer_n10"),
    ("wallet_flow", "ours_wallet_flow", "floor_wallet_flow"),
    ("wallet_build_n1", "ours_wallet_build_n1", "floor_wallet_build_n1"),
    ("wallet_verify_n1", "ours_wallet_verify_n1", "floor_wallet_verify_n1"),
    ("wallet_build_n10", "ours_wallet_build_n10", "floor_wallet_build_n10"),
    ("wallet_verify_n10", "ours_wallet_verify_n10", "floor_wallet_verify_n10"),
)
#: iterations of each phase (requests, flows, requests built or responses verified)
ITERATIONS = {
    "issuer_n1": 3,
    "issuer_n10": 1,
    "wallet_flow": 1,
    "wallet_build_n1": 3,
    "wallet_verify_n1": 3,
    "wallet_build_n10": 1,
    "wallet_verify_n10": 1,
}


# --------------------------------------------------------------------------------------------
# inside valgrind


_AddPhase = Callable[[str, Callable[[], Awaitable[object]], Callable[[], object]], None]


async def _add_wallet_parts(add: _AddPhase, n: int) -> None:
    """The phases of :mod:`benchmarks.wallet_parts` for ``n``: building one request of ``n``
    fresh holder keys, verifying ``n`` SD-JWT VCs; each then its floor."""
    from benchmarks.wallet_parts import WalletParts
    from oid4vci import jose

    parts = WalletParts(n)
    await parts.mint()
    for part in ("build", "verify"):
        ours_part = getattr(parts, f"ours_{part}")
        floor_part = getattr(parts, f"floor_{part}")
        await ours_part()  # warm-up
        await floor_part()
        k = ITERATIONS[f"wallet_{part}_n{n}"]

        async def ours_k(step: Any = ours_part, k: int = k) -> None:
            for _ in range(k):
                await step()

        async def floor_k(step: Any = floor_part, k: int = k) -> None:
            for _ in range(k):
                await step()

        async def fresh_credentials() -> None:
            # as wallet_parts does before a round: the issuer key is imported anew, the
            # holder keys are ones the wallet has just generated
            jose.clear_key_cache()
            await parts.mint()

        add(f"ours_wallet_{part}_n{n}", ours_k, fresh_credentials)
        add(f"floor_wallet_{part}_n{n}", floor_k, lambda: None)


async def _inner_main(phases_out: Path) -> None:
    import anyio  # noqa: F401  (imported before the first phase, as everything else)

    from benchmarks.floor import FloorPipeline
    from benchmarks.issuer_credential_endpoint import (
        CONFIGURATION_ID,
        ISSUER_URL,
        _prepare,
        make_issuer,
    )
    from benchmarks.wallet_floor import WalletFloor
    from oid4vci import jose
    from oid4vci.transports.memory import InMemoryTransport
    from oid4vci.wallet import Oid4vciClient

    libc = ctypes.CDLL(None)
    libc.srand48.argtypes = [ctypes.c_long]
    phases: list[tuple[str, Callable[[], object], Callable[[], Awaitable[object]]]] = []

    def add(
        name: str,
        step: Callable[[], Awaitable[object]],
        setup: Callable[[], object] = lambda: None,
    ) -> None:
        """A phase: ``setup`` runs before the phase starts (unmeasured; awaited when it
        returns an awaitable), then ``step``."""
        phases.append((name, setup, step))

    for n, key in ((1, "issuer_n1"), (10, "issuer_n10")):
        iterations = ITERATIONS[key]
        issuer = make_issuer(batch_size=max(10, n))
        prepared = await _prepare(issuer, n, iterations + 1)
        requests = list(prepared.requests)
        pipeline = FloorPipeline(n)
        send = prepared.issuer.handle

        async def warm(send: Any = send, requests: list[Any] = requests) -> None:
            response = await send(requests.pop())
            if response.status != 200:
                raise RuntimeError(f"credential request failed: {response.status}")

        await warm()
        pipeline.run()

        async def ours(
            send: Any = send, requests: list[Any] = requests, k: int = iterations
        ) -> None:
            for _ in range(k):
                response = await send(requests.pop())
                if response.status != 200:
                    raise RuntimeError(f"credential request failed: {response.status}")

        async def floor(pipeline: FloorPipeline = pipeline, k: int = iterations) -> None:
            for _ in range(k):
                pipeline.run()

        add(f"ours_{key}", ours, jose.clear_key_cache)  # an issuer never saw these keys
        add(f"floor_{key}", floor)

    # one wallet flow against the same kind of issuer, in memory
    flows = ITERATIONS["wallet_flow"]
    issuer = make_issuer()
    transport = InMemoryTransport(routes={ISSUER_URL: issuer.handle})
    links = [
        (
            await issuer.create_pre_authorized_offer(
                configuration_ids=[CONFIGURATION_ID], subject="alice"
            )
        ).offer_uri
        for _ in range(flows + 1)
    ]
    wallet_floor = WalletFloor(
        1, issuer_public=issuer.config.credential_signer._private_key.public_key()
    )  # type: ignore[attr-defined]
    issuer_floor = FloorPipeline(1)
    token_floor = FloorPipeline(0)  # verifies one DPoP proof, mints nothing
    minted = issuer_floor.run()
    holder_jwk = issuer_floor.proofs[0][2]

    async def flow(link: str) -> None:
        client = Oid4vciClient(transport)
        result = await client.accept_offer(await client.parse_offer(link), count=1)
        if len(result.credentials) != 1 or not result.credentials[0].verified:
            raise RuntimeError("the wallet flow did not end with a verified credential")

    def floor_flow() -> None:
        token_floor.run()
        wallet_floor.build_request(
            audience=ISSUER_URL, nonce="n", url=ISSUER_URL + "/credential", token="t"
        )
        credentials = issuer_floor.run()
        wallet_floor.issuer_public = issuer_floor.issuer_key.public_key()
        wallet_floor.verify(credentials, [holder_jwk])

    await flow(links.pop())
    floor_flow()
    del minted

    async def ours_flow(k: int = flows) -> None:
        for _ in range(k):
            await flow(links.pop())

    async def floor_flow_k(k: int = flows) -> None:
        for _ in range(k):
            floor_flow()

    add("ours_wallet_flow", ours_flow, jose.clear_key_cache)
    add("floor_wallet_flow", floor_flow_k)

    # the wallet's two parts at N = 1 and 10 (benchmarks.wallet_parts), each against its floor
    for n in (1, 10):
        await _add_wallet_parts(add, n)

    phases_out.write_text(json.dumps([name for name, _, _ in phases]))  # noqa: ASYNC240 (once, unmeasured)
    gc.collect()
    gc.disable()
    for _, setup, step in phases:
        prepared = setup()
        if inspect.isawaitable(prepared):
            await prepared
        gc.collect()
        libc.srand48(1)  # part boundary: the phase starts
        await step()
        libc.srand48(2)  # part boundary: the phase ends; what follows is not measured
        gc.collect()
    gc.enable()


def _inner(phases_out: Path) -> int:
    import anyio

    anyio.run(_inner_main, phases_out)
    return 0


# --------------------------------------------------------------------------------------------
# outside: run valgrind, read the parts


_TOTALS = re.compile(r"^totals:\s+(\d+)", re.M)


def _part_total(path: Path) -> int:
    found = _TOTALS.search(path.read_text(errors="replace"))
    if found is None:
        raise RuntimeError(f"no totals in {path}")
    return int(found.group(1))


_NAMED = re.compile(r"^c?fn=\((\d+)\)(?: (.*))?$")


def _functions(path: Path, per: int) -> dict[str, int]:
    """Self instruction counts of the top functions of one profile part, per iteration.

    Read from the callgrind file directly: a cost line belongs to the current ``fn=``, except
    the line after ``calls=``, which is the inclusive cost of that call.
    """
    names: dict[str, str] = {}
    costs: dict[str, int] = {}
    current = "?"
    after_call = False
    for line in path.read_text(errors="replace").splitlines():
        if not line:
            continue
        head = line[0]
        if head.isdigit() or head in "+-*":
            if after_call:
                after_call = False
                continue
            fields = line.split()
            if len(fields) >= 2:
                costs[current] = costs.get(current, 0) + int(fields[1])
            continue
        if line.startswith("calls="):
            after_call = True
            continue
        match = _NAMED.match(line)
        if match is not None:
            ident, name = match.groups()
            if name is not None:
                names[ident] = name
            if line.startswith("fn="):
                current = names.get(ident, ident)
    top = sorted(costs.items(), key=lambda item: item[1], reverse=True)[:TOP_FUNCTIONS]
    return {name: cost // per for name, cost in top}


def callgrind_parts(valgrind: str, script: Path, args: Sequence[str], tmp: Path) -> list[Path]:
    """Run ``script args`` (a Python file that marks its phases with ``srand48``) under
    callgrind, ``PYTHONHASHSEED=0``; its profile parts in order, in ``tmp``: part 1 is start-up
    to the first phase, then phase, gap, phase, gap, ..."""
    command = [
        valgrind,
        "--tool=callgrind",
        f"--dump-before={MARKER}",
        f"--callgrind-out-file={tmp / 'callgrind.out'}",
        sys.executable,
        str(script),
        *args,
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise RuntimeError(f"valgrind exited with {done.returncode}")
    return sorted(tmp.glob("callgrind.out.*"), key=lambda p: int(p.name.rsplit(".", 1)[1]))


def measure(valgrind: str = "valgrind") -> dict[str, Any]:
    """Run the phases under callgrind once; instruction counts, ratios and top functions."""
    with tempfile.TemporaryDirectory(prefix="oid4vci-gate-") as tmp:
        phases_file = Path(tmp) / "phases.json"
        script = Path(__file__).resolve()
        parts = callgrind_parts(valgrind, script, ["--inner", str(phases_file)], Path(tmp))
        names: list[str] = json.loads(phases_file.read_text())
        expected = 2 * len(names)
        if len(parts) != expected:
            raise RuntimeError(f"expected {expected} profile parts, got {len(parts)}")
        phases: dict[str, Any] = {}
        for index, name in enumerate(names):
            part = parts[1 + 2 * index]
            per = ITERATIONS[name.split("_", 1)[1]]
            phases[name] = {
                "instructions_per_iteration": _part_total(part) // per,
                "top_functions": _functions(part, per),
            }
    ratios = {
        ratio: round(
            phases[ours]["instructions_per_iteration"]
            / phases[floor]["instructions_per_iteration"],
            4,
        )
        for ratio, ours, floor in RATIOS
    }
    return {"ratios": ratios, "phases": phases, "python": sys.version.split()[0]}


def _grown_functions(now: dict[str, int], then: dict[str, int], limit: int = 12) -> list[str]:
    growth = sorted(
        ((now.get(f, 0) - then.get(f, 0), f) for f in set(now) | set(then)),
        reverse=True,
    )
    lines = []
    for delta, function in growth[:limit]:
        if delta <= 0:
            break
        lines.append(
            f"      +{delta:>12,} Ir/iteration  {function}"
            f"  ({then.get(function, 0):,} -> {now.get(function, 0):,})"
        )
    return lines


def check(result: dict[str, Any], baseline: dict[str, Any], tolerance: float) -> int:
    """Print the comparison; 1 when a ratio grew by more than ``tolerance``."""
    failed = False
    if baseline.get("python") != result.get("python"):
        print(
            f"note: the baseline was measured on Python {baseline.get('python')}, this run is "
            f"{result.get('python')}; interpreter changes move the ratios (update on purpose)"
        )
    print(f"{'ratio':<17} {'baseline':>9} {'now':>9} {'change':>8}  (ours ÷ floor, instructions)")
    for ratio, ours, _ in RATIOS:
        now = result["ratios"][ratio]
        then = baseline["ratios"].get(ratio)
        if then is None:
            failed = True
            print(f"{ratio:<17} {'-':>9} {now:>9.4f} {'':>8}  NOT IN THE BASELINE")
            continue
        change = now / then - 1
        grew = change > tolerance
        failed |= grew
        verdict = "GREW" if grew else "ok"
        print(f"{ratio:<17} {then:>9.4f} {now:>9.4f} {change:>+7.1%}  {verdict}")
        if grew:
            print("    functions that grew most (self cost):")
            lines = _grown_functions(
                result["phases"][ours]["top_functions"],
                baseline["phases"][ours]["top_functions"],
            )
            print("\n".join(lines) if lines else "      (none of the top functions grew)")
    if failed:
        print(f"bench-check: a ratio grew by more than {tolerance:.0%} over {BASELINE.name}")
        print("Make it faster again, or update the baseline on purpose: `make bench-baseline`")
        print("and commit benchmarks/gate_baseline.json with the reason in the message.")
        return 1
    print(f"bench-check: every ratio within {tolerance:.0%} of the baseline")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``check`` (default), ``update`` or ``show``; ``--inner`` is the measured process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", nargs="?", default="check", choices=("check", "update", "show"))
    parser.add_argument("--inner", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", type=Path, default=BASELINE)
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    args = parser.parse_args(argv)
    if args.inner is not None:
        return _inner(args.inner)
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        print("bench-check: valgrind is not installed (scripts/install-valgrind.sh installs it)")
        return 2
    result = measure(valgrind)
    if args.command == "show":
        print(json.dumps(result, indent=2))
        return 0
    if args.command == "update":
        args.baseline.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.baseline}: {result['ratios']}")
        return 0
    if not args.baseline.exists():
        print(f"bench-check: no baseline at {args.baseline}; run `make bench-baseline` first")
        return 2
    return check(result, json.loads(args.baseline.read_text()), args.tolerance)


if __name__ == "__main__":
    raise SystemExit(main())
