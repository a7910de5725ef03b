"""An ``oid4vci serve`` worker whose ``Issuer.handle`` is timed: the benchmark's split.

``python benchmarks/_timed_worker.py FD`` runs :mod:`oid4vci.cli.workers` unchanged (with
``OID4VCI_BENCH_SERVER=uvicorn``: on uvicorn instead of aiohttp), except that
every ``Issuer.handle`` call adds its :func:`time.process_time` to a total (as
:class:`benchmarks.wallet_flows.TimedHandler` does in process). On SIGUSR1 the worker writes
``{"seq", "handle_cpu_seconds", "requests", "cpu_seconds"}`` to the file named by
``OID4VCI_BENCH_TIMES``, so :mod:`benchmarks.http_server` can tell the issuer's share of the
server's CPU time from the rest (aiohttp, the adapter, the event loop, system calls).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any

from oid4vci.cli import workers
from oid4vci.http import HttpResponse
from oid4vci.issuer import service

#: ``uvicorn`` serves through the ASGI adapter on uvicorn (:mod:`benchmarks._uvicorn_server`).
SERVER_ENV = "OID4VCI_BENCH_SERVER"
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
    if os.environ.get(SERVER_ENV) == "uvicorn":
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from benchmarks._uvicorn_server import uvicorn_serving

        workers._serving = uvicorn_serving
    sys.exit(workers._worker_main(sys.argv[1:]))
