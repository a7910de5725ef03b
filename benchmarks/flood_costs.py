"""What one unauthenticated request costs the issuer: CPU per request and store bytes per entry.

For each endpoint anybody may call (the nonce endpoint, a reusable offer template, PAR, the
authorization endpoint) and for a refusal by the rate limit (429), this measures:

* **CPU** per request: ``time.process_time()`` around ``Issuer.handle`` of the demo issuer on a
  :class:`~oid4vci.issuer.store.MemoryStore` (no HTTP server, no client; best of ``--rounds``);
* **MemoryStore bytes** per entry the request leaves behind: ``tracemalloc`` before and after
  the requests, divided by the entries added (``MemoryStore.stats().held``);
* **Redis bytes** per entry: ``MEMORY USAGE`` of a key each request wrote to a
  :class:`~oid4vci.stores.redis.RedisStore` (a private ``redis-server`` on a free loopback
  port; skipped with ``--no-redis`` or without ``redis-server``).

Run: ``.venv/bin/python benchmarks/flood_costs.py [-n 2000] [--rounds 3] [--json]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import anyio

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oid4vci.http import HttpRequest
from oid4vci.issuer import build_demo_issuer
from oid4vci.issuer.flood_limits import FloodLimits, RateLimit
from oid4vci.issuer.store import MemoryStore, Store
from oid4vci.pkce import code_challenge, generate_code_verifier

ISSUER = "https://issuer.example"
PAR_FORM = {
    "response_type": "code",
    "client_id": "flood",
    "redirect_uri": "https://flood.example/cb",
    "code_challenge": code_challenge(generate_code_verifier()),
    "code_challenge_method": "S256",
    "scope": "identity_credential",
}

#: name -> (request for the i-th call, key prefix of the entry it writes or None)
KINDS: dict[str, tuple[Callable[[int], HttpRequest], str | None]] = {
    "nonce": (lambda i: HttpRequest(method="POST", url=ISSUER + "/nonce"), None),
    "offer template": (
        lambda i: HttpRequest(method="GET", url=ISSUER + "/offers/templates/pre_auth"),
        "pre_auth:",
    ),
    "par": (lambda i: HttpRequest.form("POST", ISSUER + "/par", PAR_FORM), "par:"),
    "authorize": (
        lambda i: HttpRequest(method="GET", url=f"{ISSUER}/authorize?{urlencode(PAR_FORM)}"),
        "authz_pending:",
    ),
    "429 (rate limited)": (
        lambda i: HttpRequest(method="POST", url=ISSUER + "/nonce", client_address="192.0.2.1"),
        None,
    ),
}


def _issuer(store: Store, kind: str) -> Any:
    limits = FloodLimits(quotas={})
    if kind.startswith("429"):
        limits = FloodLimits(rate_limit=RateLimit(rate=0.001, burst=1), quotas={})
    return build_demo_issuer(ISSUER, store=store, flood_limits=limits).issuer


async def _cpu_us(kind: str, n: int) -> tuple[float, int]:
    """CPU µs per request, and the status of the last answer."""
    build, _ = KINDS[kind]
    issuer = _issuer(MemoryStore(max_entries=10 * n + 100), kind)
    requests = [build(i) for i in range(n)]
    await issuer.handle(requests[0])
    started = time.process_time()
    status = 0
    for request in requests:
        status = (await issuer.handle(request)).status
    return (time.process_time() - started) / n * 1e6, status


async def _memory_bytes(kind: str, n: int) -> float:
    """Bytes of Python memory per entry the requests left in a MemoryStore."""
    build, prefix = KINDS[kind]
    if prefix is None:
        return 0.0
    store = MemoryStore(max_entries=10 * n + 100)
    issuer = _issuer(store, kind)
    requests = [build(i) for i in range(n)]
    await issuer.handle(requests[0])
    gc.collect()
    held = store.stats().held
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for request in requests:
        await issuer.handle(request)
    gc.collect()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    added = store.stats().held - held
    return grown / added if added else 0.0


async def _redis_bytes() -> dict[str, int]:
    """``MEMORY USAGE`` of one entry of each kind in a private Redis."""
    from oid4vci.stores.redis import RedisStore
    from tests.redis_servers import redis_server

    out: dict[str, int] = {}
    with redis_server() as server:
        async with RedisStore.from_url(server.url, prefix="b:") as store:
            for kind, (build, prefix) in KINDS.items():
                if prefix is None:
                    continue
                issuer = _issuer(store, kind)
                await issuer.handle(build(0))
                keys = [key async for key in store.client.scan_iter(match=f"b:{prefix}*")]
                usage = await store.client.memory_usage(keys[0])
                out[kind] = int(usage or 0)
            rate_issuer = _issuer(store, "429")
            await rate_issuer.handle(KINDS["429 (rate limited)"][0](0))
            keys = [key async for key in store.client.scan_iter(match="b:rate:*")]
            out["rate bucket"] = int(await store.client.memory_usage(keys[0]) or 0)
    return out


async def main(n: int, rounds: int, redis: bool) -> dict[str, Any]:
    """Every figure, as a JSON-able dict."""
    figures: dict[str, Any] = {}
    for kind in KINDS:
        best = min([await _cpu_us(kind, n) for _ in range(rounds)])
        figures[kind] = {
            "cpu_us": round(best[0], 1),
            "status": best[1],
            "memory_store_bytes": round(await _memory_bytes(kind, n)),
        }
    if redis:
        for kind, size in (await _redis_bytes()).items():
            figures.setdefault(kind, {})["redis_bytes"] = size
    return figures


def cli(argv: list[str] | None = None) -> int:
    """Parse the options, measure, print a table or JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-n", type=int, default=2000, help="requests per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-redis", action="store_true", help="skip the Redis figures")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    figures = anyio.run(main, args.n, args.rounds, not args.no_redis)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{'request':20} {'status':>6} {'CPU µs':>8} {'MemoryStore B':>14} {'Redis B':>8}")
    for kind, row in figures.items():
        print(
            f"{kind:20} {row.get('status', ''):>6} {row.get('cpu_us', ''):>8} "
            f"{row.get('memory_store_bytes', ''):>14} {row.get('redis_bytes', ''):>8}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(cli())
