"""``oid4vci serve``: the demo issuer over aiohttp on loopback."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.versions import SpecVersion

__all__ = ["DemoServer", "run_serve", "running_demo_issuer"]

log = logging.getLogger("oid4vci.serve")


class DemoServer:
    """A running demo issuer: its URL, offer links, tx_code and login."""

    def __init__(self, issuer_url: str, demo: Any) -> None:
        self.issuer_url = issuer_url
        self.demo = demo

    def ready_line(self) -> dict[str, Any]:
        """The ``--json`` line: ``{"issuer", "offers", "tx_code", "login"}``."""
        return {
            "issuer": self.issuer_url,
            "offers": dict(self.demo.offer_links),
            "tx_code": self.demo.tx_code,
            "login": self.demo.login,
        }


@asynccontextmanager
async def running_demo_issuer(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    spec: SpecVersion = SpecVersion.V1,
    allow_bearer: bool = False,
) -> AsyncIterator[DemoServer]:
    """Serve the demo issuer on ``host:port`` (0 = a free port) for the ``async with`` body."""
    from oid4vci.issuer.demo import build_demo_issuer
    from oid4vci.transports.aiohttp import serve

    holder: dict[str, Any] = {}

    async def handler(request: HttpRequest) -> HttpResponse:
        response: HttpResponse = await holder["issuer"].handle(request)
        return response

    async with serve(handler, host=host, port=port) as served:
        issuer_url = str(served.base_url).rstrip("/")
        demo = build_demo_issuer(issuer_url, published_version=spec, allow_bearer=allow_bearer)
        holder["issuer"] = demo.issuer
        yield DemoServer(issuer_url, demo)


async def run_serve(args: argparse.Namespace) -> int:
    """Run until SIGINT or SIGTERM."""
    spec = SpecVersion(args.spec)
    # The signal receiver is installed before the ready line, so a SIGTERM sent right after
    # reading it still stops the server cleanly.
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with running_demo_issuer(
            args.host, args.port, spec=spec, allow_bearer=args.allow_bearer
        ) as server:
            line = server.ready_line()
            if args.json:
                print(json.dumps(line), flush=True)
            else:
                print(f"issuer     {line['issuer']}  (publishing {spec.value} metadata)")
                for name, uri in line["offers"].items():
                    print(f"offer      {name:17} {uri}")
                print(f"tx_code    {line['tx_code']}")
                print(f"login      {line['login']}")
                print("Ctrl-C stops the server.", flush=True)
            async for signum in signals:
                log.info("stopping on signal %s", signum)
                break
    print("stopped", file=sys.stderr)
    return 0
