"""The command line both benchmark scripts share: a table, ``--json``, or a cProfile."""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
from collections.abc import Callable, Sequence
from typing import Any


def run_cli(
    argv: Sequence[str] | None,
    *,
    description: str | None,
    unit: str,
    profile_once: Callable[[int, float, cProfile.Profile], object],
    run: Callable[[list[int], float, int], Sequence[Any]],
    table: Callable[[Sequence[Any]], str],
    sort_keys: Sequence[str] = ("tottime",),
    default_ns: Sequence[int] = (1, 10),
) -> int:
    """Parse ``-n``, ``--scale``, ``--rounds``, ``--json``, ``--profile``, ``--top`` and run.

    ``profile_once(n, scale, profiler)`` runs one measured round under ``profiler``;
    ``run(ns, scale, rounds)`` returns results with ``to_json()``; ``table`` formats them.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("-n", type=int, action="append", help=f"credentials per {unit}")
    parser.add_argument("--scale", type=float, default=1.0, help=f"multiply the {unit} counts")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured region")
    parser.add_argument("--top", type=int, default=40, help="rows of the profile to print")
    args = parser.parse_args(argv)
    ns = args.n or list(default_ns)
    if args.profile:
        for n in ns:
            profiler = cProfile.Profile()
            profile_once(n, args.scale, profiler)
            stream = io.StringIO()
            stats = pstats.Stats(profiler, stream=stream)
            for key in sort_keys:
                stats.sort_stats(key).print_stats(args.top)
            print(f"==== N={n} ====")
            print(stream.getvalue())
        return 0
    results = run(ns, args.scale, args.rounds)
    if args.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        print(table(results))
    return 0
