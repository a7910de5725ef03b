"""The ``oid4vci`` command: ``serve`` (a demo issuer), ``receive`` (a wallet), ``demo`` (both),
``status`` (a saved credential's Token Status List entry).

Logs go to stderr. With ``--json`` the commands print exactly one JSON line on stdout whose
shape is a stable contract (members are only ever added). Nothing ends in a traceback: every
failure is one line on stderr and a documented exit code (see :mod:`oid4vci.cli.exits`).

The command needs the ``cli`` extra (``pip install 'oid4vci[cli]'``); without it, it prints
one line saying so and exits 2.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys
from collections.abc import Sequence

import anyio

from .exits import EXIT_CODES_HELP, OneLineArgumentParser, run_guarded, terminating_on_sigterm
from .options import (
    HOST_HELP,
    LOGIN_HELP,
    HelpFormatter,
    add_attester_options,
    add_flood_options,
    add_haip_serve_options,
    add_help_epilog,
    add_issuer_feature_options,
    add_public_url_option,
    add_receive_trust_options,
    add_receive_wait_options,
    batch_value,
    login_value,
    port_value,
    version_text,
)

__all__ = ["build_parser", "main"]

_CLI_MODULES = ("aiohttp",)
"""The modules the command needs beyond the core: what the ``cli`` extra installs."""


def _missing_cli_extra() -> str | None:
    """The one-line message when a module of the ``cli`` extra is missing, else ``None``."""
    missing = [name for name in _CLI_MODULES if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (
        f"oid4vci: the command line needs the 'cli' extra ({', '.join(missing)} is missing): "
        "pip install 'oid4vci[cli]'"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``oid4vci`` command."""
    parser = OneLineArgumentParser(
        prog="oid4vci",
        description="OpenID for Verifiable Credential Issuance: issuer and wallet",
        epilog=EXIT_CODES_HELP,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=version_text())
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the demo issuer on loopback")
    add_help_epilog(serve)
    serve.add_argument("--host", default="127.0.0.1", help=HOST_HELP)
    serve.add_argument("--port", type=port_value, default=0, help="0 picks a free port")
    add_public_url_option(serve)
    add_flood_options(serve)
    serve.add_argument(
        "--spec",
        default="1.0",
        choices=["1.0", "draft-15", "draft-14", "draft-13"],
        help="metadata version to publish (requests of every version are accepted)",
    )
    serve.add_argument("--allow-bearer", action="store_true", help="also accept Bearer tokens")
    serve.add_argument("--json", action="store_true", help="print one JSON line when ready")
    serve.add_argument(
        "--workers", metavar="N", help="issuer processes sharing the port (1-64; default: one)"
    )
    serve.add_argument(
        "--store",
        metavar="URL",
        help="redis://HOST:PORT[/DB] or redis+cluster://HOST:PORT,... "
        "(default: in memory, one process)",
    )
    add_haip_serve_options(serve)
    add_issuer_feature_options(serve)

    receive = sub.add_parser("receive", help="receive credentials from an offer")
    add_help_epilog(receive)
    receive.add_argument("offer", help="offer link, QR payload, or offer JSON")
    receive.add_argument("--tx-code", help="transaction code, when the offer asks for one")
    receive.add_argument(
        "--batch", type=batch_value, default=1, metavar="N", help="credentials to get"
    )
    receive.add_argument("--login", type=login_value, metavar="USER:PASS", help=LOGIN_HELP)
    receive.add_argument("--json", action="store_true", help="print one JSON line")
    receive.add_argument("--out", metavar="DIR", help="write the credentials to DIR")
    receive.add_argument("--client-id", default="oid4vci-cli", help="OAuth client_id to use")
    add_receive_wait_options(receive)
    add_attester_options(receive)
    add_receive_trust_options(receive)

    status = sub.add_parser("status", help="check a saved credential's status (revoked?)")
    add_help_epilog(status)
    status.add_argument(
        "credential",
        metavar="CREDENTIAL",
        help="a file written by receive --out, or the credential",
    )
    status.add_argument("--json", action="store_true", help="print one JSON line")
    status.add_argument(
        "--issuer",
        metavar="URL",
        help="the credential issuer an mdoc came from (an mdoc names none; needed for mdocs)",
    )
    status.add_argument(
        "--trust-anchor",
        action="append",
        default=[],
        metavar="ROOT.pem",
        dest="trust_anchors",
        help="a root certificate (PEM or DER file) an x5c-signed status list may chain to, "
        "e.g. from `oid4vci serve --json`'s trust_anchors_pem; repeatable. With one, a list "
        "with an x5c header must chain to it; without, the issuer's metadata keys sign it",
    )

    demo = sub.add_parser("demo", help="issuer and wallet on loopback, both flows")
    add_help_epilog(demo)
    demo.add_argument(
        "--spec",
        default="1.0",
        choices=["1.0", "draft-15", "draft-14", "draft-13"],
        help="the OID4VCI version the demo issuer publishes and the wallet speaks",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; returns the process exit code (0 ok, 1 failure, 2 usage, also when
    the ``cli`` extra is missing)."""
    if sys.stdout is None:  # started with stdout closed (`>&-`): nothing it says would show
        if sys.stderr is not None:
            print(
                "oid4vci: error: standard output is closed; run it with stdout open "
                "(a terminal, a file or a pipe)",
                file=sys.stderr,
            )
        return 2
    missing = _missing_cli_extra()
    if missing is not None:
        print(missing, file=sys.stderr)
        return 2
    args = build_parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(
        stream=sys.stderr, level=level, format="%(levelname)s %(name)s: %(message)s"
    )
    with terminating_on_sigterm():
        return run_guarded(f"oid4vci {args.command}", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if args.command == "serve" and (args.workers is not None or args.store is not None):
        from .workers import run_serve_workers

        return run_serve_workers(args)
    if args.command == "serve":
        from .event_loop import server_backend_options
        from .serve import run_serve

        return anyio.run(run_serve, args, backend_options=server_backend_options())
    if args.command == "receive":
        from .receive import receive_command

        return receive_command(args)
    if args.command == "status":
        from .status import status_command

        return status_command(args)
    from .demo import run_demo

    return anyio.run(run_demo, args)
