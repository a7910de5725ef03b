"""The ``oid4vci`` command: ``serve`` (a demo issuer), ``receive`` (a wallet), ``demo`` (both).

Logs go to stderr. With ``--json`` the commands print exactly one JSON line on stdout whose
shape is a stable contract (members are only ever added).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import anyio

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``oid4vci`` command."""
    parser = argparse.ArgumentParser(
        prog="oid4vci", description="OpenID for Verifiable Credential Issuance: issuer and wallet"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the demo issuer on loopback")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument(
        "--spec",
        default="1.0",
        choices=["1.0", "draft-15", "draft-14", "draft-13"],
        help="metadata version to publish (requests of every version are accepted)",
    )
    serve.add_argument("--allow-bearer", action="store_true", help="also accept Bearer tokens")
    serve.add_argument("--json", action="store_true", help="print one JSON line when ready")
    serve.add_argument("--workers", metavar="N", help="issuer processes sharing the port (1-64)")
    serve.add_argument(
        "--store", metavar="URL", help="redis://HOST:PORT[/DB] or redis+cluster://HOST:PORT,..."
    )

    receive = sub.add_parser("receive", help="receive credentials from an offer")
    receive.add_argument("offer", help="offer link, QR payload, or offer JSON")
    receive.add_argument("--tx-code", help="transaction code, when the offer asks for one")
    receive.add_argument("--batch", type=int, default=1, metavar="N", help="credentials to get")
    receive.add_argument("--login", metavar="USER:PASS", help="fill the issuer's login form")
    receive.add_argument("--json", action="store_true", help="print one JSON line")
    receive.add_argument("--out", metavar="DIR", help="write the credentials to DIR")
    receive.add_argument("--client-id", default="oid4vci-cli", help="OAuth client_id to use")

    demo = sub.add_parser("demo", help="issuer and wallet on loopback, both flows")
    demo.add_argument("--spec", default="1.0", choices=["1.0", "draft-15", "draft-14", "draft-13"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(
        stream=sys.stderr, level=level, format="%(levelname)s %(name)s: %(message)s"
    )
    if args.command == "serve" and (args.workers is not None or args.store is not None):
        from .workers import run_serve_workers

        return run_serve_workers(args)
    if args.command == "serve":
        from .serve import run_serve

        return anyio.run(run_serve, args)
    if args.command == "receive":
        from .receive import run_receive

        return anyio.run(run_receive, args)
    from .demo import run_demo

    return anyio.run(run_demo, args)
