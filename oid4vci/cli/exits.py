"""How the ``oid4vci`` command ends: exit codes, one-line errors, and what to do about them.

Nothing a user does on the command line ends in a traceback. Every failure prints one line,
``oid4vci <command>: error: <what went wrong>; <what to do>``, on stderr and exits with:

====  =====================================================================================
code  meaning
====  =====================================================================================
0     success
1     failure: the issuer refused or failed, the network, a timeout, a port already taken,
      the output could not be written (a closed pipe, a full disk)
2     usage: the command line cannot be used as given (a bad option value, a ``--login``
      without a colon, an ``--out`` that cannot be written, a non-loopback ``--host``
      without ``--public-url``, a missing ``--tx-code``)
3     ``oid4vci status`` only: the credential's status list says it is not valid (revoked,
      suspended or another status; the output says which)
130   interrupted (Ctrl-C) while waiting
143   terminated (SIGTERM) while waiting (``serve`` stops on it as on Ctrl-C: 0)
====  =====================================================================================

Messages never contain secrets: a ``--login`` password or a ``--tx-code`` is never echoed, and
the library's own messages carry no tokens, codes or keys (an issuer's error text is scrubbed of
what the wallet sent it). Text from the other party is shown with its control characters
escaped and cut at :data:`MAX_MESSAGE_LENGTH` characters.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
)
from oid4vci.mdoc import MdocReason, MdocVerificationError

__all__ = [
    "EXIT_CODES_HELP",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_VALID",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "MAX_MESSAGE_LENGTH",
    "CliError",
    "Failure",
    "OneLineArgumentParser",
    "Terminated",
    "describe_error",
    "run_guarded",
    "terminating_on_sigterm",
]

log = logging.getLogger("oid4vci.cli")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOT_VALID = 3
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, what a shell reports for a process the signal ended

#: The epilog of ``oid4vci --help`` (and of every sub-command's help).
EXIT_CODES_HELP = (
    "exit codes:\n"
    "  0    success\n"
    "  1    failure (the issuer refused or failed, network, timeout, port taken,\n"
    "       output not written)\n"
    "  2    usage (bad option value, --login without a colon, unwritable --out,\n"
    "       non-loopback --host without --public-url, missing --tx-code)\n"
    "  3    oid4vci status: the credential is not valid (revoked, suspended, ...)\n"
    "  130  interrupted (Ctrl-C)\n"
    "  143  terminated (SIGTERM)\n"
    "Errors are one line on stderr: what went wrong; what to do."
)

#: Printed in place of the installation hint when a dependency of the command is missing.
CLI_EXTRA_HINT = "install the command's extra: pip install 'oid4vci[cli]'"


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program stands, as Ctrl-C raises :class:`KeyboardInterrupt`
    (so an event loop unwinds the same way); :func:`run_guarded` ends it with exit 143."""


@contextmanager
def terminating_on_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (a command that serves replaces
    this with its own handling while it serves); the previous handler is back afterwards.
    Only the main thread can set handlers: elsewhere (``main`` called from a thread) the
    block runs with the process's own handling."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(_signum: int, _frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class CliError(Exception):
    """A failure the command reports in one line (``message``) and ends with ``exit_code``;
    ``kind`` names it in a ``--json`` line (the error class it came from, or ``UsageError``)."""

    def __init__(
        self, message: str, exit_code: int = EXIT_FAILURE, *, kind: str = "UsageError"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.kind = kind


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
        return _one_line(text)


#: The longest message shown (an issuer's error_description is the issuer's to choose).
MAX_MESSAGE_LENGTH = 600

# Everything a terminal could act on (C0 and C1 controls, DEL) but the whitespace folded away.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def _one_line(text: str, limit: int | None = None) -> str:
    """``text`` as one line: whitespace folded, control characters shown as ``\\xNN`` (remote
    text cannot clear the screen or ring the bell), cut at ``limit`` characters."""
    line = " ".join(_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text)).split())
    if limit is not None and len(line) > limit:
        line = line[: limit - 1] + "…"
    return line


def describe_error(exc: BaseException, command: str = "oid4vci receive") -> Failure:
    """The one-line description of a library error met by ``command``, with a hint."""
    kind = type(exc).__name__
    message = _one_line(str(exc), MAX_MESSAGE_LENGTH) or kind  # may quote the issuer
    if isinstance(exc, MissingDependencyError):
        return Failure(kind, message, "", EXIT_FAILURE)
    if isinstance(exc, UsageError):
        if "does not ask for a transaction code" in message:
            hint = "leave out --tx-code"
        elif "tx_code" in message or "transaction code" in message:
            hint = "pass the transaction code the issuer gave you with --tx-code"
        else:
            hint = f"check the options ({command} --help)"
        return Failure(kind, message, hint, EXIT_USAGE)
    if isinstance(exc, InsecureUrlError):
        hint = "the wallet uses https only (plain http only for 127.0.0.1, localhost, ::1)"
        return Failure(kind, message, hint, EXIT_FAILURE)
    if isinstance(exc, OfferError):
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
    except Terminated:
        _say(prog, "terminated")
        return EXIT_TERMINATED
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
        failure = describe_error(exc, prog)
        _say(prog, failure.line())
        return failure.exit_code
    except BrokenPipeError:
        _quiet_stdout()
        _say(prog, f"the output was closed before it was all written; {_output_hint(prog)}")
        return EXIT_FAILURE
    except OSError as exc:
        if exc.errno not in _OUTPUT_ERRNOS:
            return _unexpected(prog, exc)
        reason = (exc.strerror or type(exc).__name__).lower()
        _say(prog, f"cannot write the output ({reason}); {_output_hint(prog)}")
        return EXIT_FAILURE
    except Exception as exc:
        return _unexpected(prog, exc)


def _unexpected(prog: str, exc: Exception) -> int:
    log.debug("unexpected error", exc_info=exc)
    _say(
        prog,
        f"unexpected {type(exc).__name__}; this is a bug in oid4vci: "
        "run again with -vv to see the traceback, and report it",
    )
    return EXIT_FAILURE


#: Errors of writing the output (a full disk, a pipe or terminal gone); any other
#: :class:`OSError` that reaches :func:`run_guarded` is not the output's.
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EPIPE, errno.EIO, errno.EDQUOT, errno.EFBIG})


def _output_hint(prog: str) -> str:
    if prog.endswith(" receive"):
        return "give --out DIR to keep received credentials whatever happens to the output"
    return "write the output where it fits (a file, or a pipe that reads it all)"


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush of a closed pipe is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _say(prog: str, message: str) -> None:
    print(f"{prog}: error: {_one_line(message)}", file=sys.stderr, flush=True)
