"""How the ``oid4vci`` command ends: exit codes, one-line errors, and what to do about them.

Nothing a user does on the command line ends in a traceback. Every failure prints one line,
``oid4vci <command>: error: <what went wrong>; <what to do>``, on stderr and exits with:

====  =====================================================================================
code  meaning
====  =====================================================================================
0     success
1     failure: the issuer refused or failed, the network, a timeout, a port already taken
2     usage: the command line cannot be used as given (a bad option value, a ``--login``
      without a colon, an ``--out`` that cannot be written, a non-loopback ``--host``
      without ``--public-url``, a missing ``--tx-code``)
3     ``oid4vci status`` only: the credential's status list says it is not valid (revoked,
      suspended or another status; the output says which)
130   interrupted (Ctrl-C) while waiting
====  =====================================================================================

Messages never contain secrets: a ``--login`` password or a ``--tx-code`` is never echoed, and
the library's own messages carry no tokens, codes or keys.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import NoReturn

from oid4vci.errors import (
    AuthorizationError,
    CallbackError,
    ConnectError,
    CredentialVerificationError,
    InsecureUrlError,
    MetadataError,
    MissingDependencyError,
    OfferError,
    Oid4vciError,
    ProtocolError,
    TokenError,
    TransportError,
    TransportTimeout,
    UsageError,
    ValidationError,
    WireFormatError,
)
from oid4vci.mdoc import MdocReason, MdocVerificationError

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_VALID",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "Failure",
    "OneLineArgumentParser",
    "describe_error",
    "run_guarded",
]

log = logging.getLogger("oid4vci.cli")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_VALID = 3
EXIT_INTERRUPTED = 130

#: The epilog of ``oid4vci --help`` (and of every sub-command's help).
EXIT_CODES_HELP = (
    "exit codes:\n"
    "  0    success\n"
    "  1    failure (the issuer refused or failed, network, timeout, port taken)\n"
    "  2    usage (bad option value, --login without a colon, unwritable --out,\n"
    "       non-loopback --host without --public-url, missing --tx-code)\n"
    "  3    oid4vci status: the credential is not valid (revoked, suspended, ...)\n"
    "  130  interrupted (Ctrl-C)\n"
    "Errors are one line on stderr: what went wrong; what to do."
)

#: Printed in place of the installation hint when a dependency of the command is missing.
CLI_EXTRA_HINT = "install the command's extra: pip install 'oid4vci[cli]'"


class CliError(Exception):
    """A failure the command reports in one line (``message``) and ends with ``exit_code``."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class Failure:
    """What went wrong (``message``), what to do (``hint``), and the exit code."""

    def __init__(self, kind: str, message: str, hint: str, exit_code: int) -> None:
        self.kind = kind
        self.message = message
        self.hint = hint
        self.exit_code = exit_code

    def line(self) -> str:
        """``<message>; <hint>`` on one line."""
        text = f"{self.message}; {self.hint}" if self.hint else self.message
        return " ".join(text.split())


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def describe_error(exc: BaseException) -> Failure:
    """The one-line description of a library error met while receiving, with a hint."""
    kind = type(exc).__name__
    message = _one_line(str(exc)) or kind
    if isinstance(exc, MissingDependencyError):
        return Failure(kind, message, "", EXIT_FAILURE)
    if isinstance(exc, UsageError):
        if "tx_code" in message or "transaction code" in message:
            hint = "pass the transaction code the issuer gave you with --tx-code"
        else:
            hint = "check the options (oid4vci receive --help)"
        return Failure(kind, message, hint, EXIT_USAGE)
    if isinstance(exc, InsecureUrlError):
        hint = "the wallet uses https only (plain http only for 127.0.0.1, localhost, ::1)"
        return Failure(kind, message, hint, EXIT_FAILURE)
    if isinstance(exc, OfferError | WireFormatError) and not isinstance(exc, MetadataError):
        hint = "copy the whole offer link, in quotes (it contains ? and &)"
        return Failure(kind, f"the offer cannot be used: {message}", hint, EXIT_FAILURE)
    if isinstance(exc, ConnectError):
        hint = "is the issuer running? check the host and port in the offer"
        return Failure(kind, message, hint, EXIT_FAILURE)
    if isinstance(exc, TransportTimeout):
        return Failure(kind, message, "the issuer did not answer in time; try again", 1)
    if isinstance(exc, TransportError):
        return Failure(kind, message, "check the network and the issuer's URL", EXIT_FAILURE)
    if isinstance(exc, TokenError):
        if getattr(exc, "error", None) == "invalid_grant":
            hint = (
                "the code was refused: check --tx-code, or get a fresh offer "
                "(codes are single use and expire)"
            )
        else:
            hint = "the issuer's token endpoint refused the request (-v shows the exchange)"
        return Failure(kind, message, hint, EXIT_FAILURE)
    if isinstance(exc, AuthorizationError):
        if "login" in message:
            hint = "check the user name and password given with --login USER:PASS"
        else:
            hint = "the authorization server refused; start again with a fresh offer"
        return Failure(kind, message, hint, EXIT_FAILURE)
    if isinstance(exc, CallbackError):
        hint = "the browser came back with a response that is not for this flow; start again"
        return Failure(kind, message, hint, EXIT_FAILURE)
    if isinstance(exc, MetadataError):
        hint = "the issuer's metadata cannot be used by this wallet"
        return Failure(kind, message, hint, EXIT_FAILURE)
    if isinstance(exc, CredentialVerificationError):
        hint = "the credential was refused and not saved; ask the issuer"
        if isinstance(exc, MdocVerificationError) and exc.reason == MdocReason.UNTRUSTED:
            hint = (
                "the mdoc does not chain to a trusted IACA root; give the issuer's root with "
                "--trust-anchor ROOT.pem (oid4vci serve --json prints it as trust_anchors_pem)"
            )
        return Failure(kind, message, hint, EXIT_FAILURE)
    if isinstance(exc, ProtocolError):
        return Failure(kind, message, "the issuer refused the request (-v shows the exchange)", 1)
    if isinstance(exc, ValidationError):
        return Failure(kind, message, "the issuer answered something unusable", EXIT_FAILURE)
    return Failure(kind, message, "run again with -vv to see more", EXIT_FAILURE)


class OneLineArgumentParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose usage errors are one line and exit 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message> (see <prog> --help)`` on stderr and exit 2."""
        self.exit(
            EXIT_USAGE, f"{self.prog}: error: {_one_line(message)} (see {self.prog} --help)\n"
        )


def run_guarded(prog: str, run: Callable[[], int]) -> int:
    """Run ``run`` and turn every way it can fail into one line on stderr and an exit code.

    With ``-vv`` (DEBUG logging) an unexpected error's traceback is logged as well.
    """
    try:
        return run()
    except CliError as exc:
        _say(prog, exc.message)
        return exc.exit_code
    except KeyboardInterrupt:
        _say(prog, "interrupted")
        return EXIT_INTERRUPTED
    except MissingDependencyError as exc:
        _say(prog, str(exc))
        return EXIT_FAILURE
    except ImportError as exc:
        _say(prog, f"a dependency is missing ({exc.name or exc}); {CLI_EXTRA_HINT}")
        return EXIT_FAILURE
    except Oid4vciError as exc:
        failure = describe_error(exc)
        _say(prog, failure.line())
        return failure.exit_code
    except Exception as exc:
        log.debug("unexpected error", exc_info=True)
        _say(
            prog,
            f"unexpected {type(exc).__name__}; this is a bug in oid4vci: "
            "run again with -vv to see the traceback, and report it",
        )
        return EXIT_FAILURE


def _say(prog: str, message: str) -> None:
    print(f"{prog}: error: {_one_line(message)}", file=sys.stderr, flush=True)
