"""An ``oid4vci serve`` worker whose ``Issuer.handle`` is timed: the benchmark's split.

``python benchmarks/_timed_worker.py FD`` runs :mod:`oid4vci.cli.workers` unchanged, except that
every ``Issuer.handle`` call adds its :func:`time.process_time` to a total (as
:class:`benchmarks.wallet_flows.TimedHandler` does in process). On SIGUSR1 the worker writes
``{"seq", "handle_cpu_seconds", "requests", "cpu_seconds"}`` to the file named by
``OID4VCI_BENCH_TIMES``, so :mod:`benchmarks.http_server` can tell the issuer's share of the
server's CPU time from the rest (aiohttp, the adapter, the event loop, system calls).
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
import time
from typing import Any

from oid4vci.http import HttpResponse
from oid4vci.issuer import service

_totals = {"seq": 0, "handle_cpu_seconds": 0.0, "requests": 0}
_handle = service.Issuer.handle


async def _timed_handle(self: service.Issuer, request: Any) -> HttpResponse:
    start = time.process_time()
    try:
        response: HttpResponse = await _handle(self, request)
        return response
    finally:
        _totals["handle_cpu_seconds"] += time.process_time() - start
        _totals["requests"] += 1


def _write(_signum: int, _frame: object) -> None:
    _totals["seq"] += 1
    data = {**_totals, "cpu_seconds": time.process_time()}
    path = os.environ["OID4VCI_BENCH_TIMES"]
    with open(path + ".tmp", "w") as out:
        json.dump(data, out)
    os.replace(path + ".tmp", path)


if __name__ == "__main__":
    service.Issuer.handle = _timed_handle  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, _write)
    sys.argv = ["oid4vci.cli.workers", *sys.argv[1:]]
    runpy.run_module("oid4vci.cli.workers", run_name="__main__")
