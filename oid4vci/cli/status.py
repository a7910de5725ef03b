"""``oid4vci status CREDENTIAL``: the Token Status List entry of a saved credential.

``CREDENTIAL`` is a file written by ``oid4vci receive --out`` (or any file holding a compact
SD-JWT VC or JWT credential, or an ``mso_mdoc`` as base64url ``IssuerSigned``), or the
credential itself. An mdoc names no issuer: ``--issuer URL`` (the Credential Issuer it came
from) says whose keys sign its list. The list named by its ``status`` claim (an mdoc: its MSO's
``status``, draft-ietf-oauth-status-list-14 §6.3.2) is fetched (https; plain http only to loopback hosts), its signature checked with the issuer's
keys (its JWT VC Issuer Metadata, or an ``x5c`` chain to a ``--trust-anchor`` root: given
one, a list with an ``x5c`` header must chain to it), its ``sub`` compared with the
reference, and the entry read (draft-ietf-oauth-status-list-20 §8.3) by
:func:`oid4vci.wallet.status_lists.check_status`. The credential itself is not re-verified.

Prints the status (``--json``: one line ``{"status", "uri", "idx", "errors"}``; ``status`` is
``"valid"``, ``"invalid"``, ``"suspended"`` or another value as its number, ``errors`` empty;
on a failure the same line with ``null`` values and the error) and exits 0 when the
credential is valid, 3 when the list says it is not (:data:`EXIT_NOT_VALID`), 1 when the status
cannot be had (no reference, the list unreachable or refused), 2 when ``CREDENTIAL`` is
neither a readable file nor a credential.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import anyio

from oid4vci.errors import ConnectError, TransportError
from oid4vci.status import (
    StatusCheck,
    StatusListReason,
    StatusListVerificationError,
    read_credential_status_reference,
)
from oid4vci.wallet.status_lists import check_status

from .exits import EXIT_FAILURE, EXIT_NOT_VALID, EXIT_OK, EXIT_USAGE, CliError, Terminated
from .options import read_certificate_files

__all__ = ["read_credential_argument", "run_status", "status_command"]

_MAX_FILE = 1 << 20
#: A compact JWT / SD-JWT: base64url parts, dots and tildes (never a path: no slash).
_CREDENTIAL = re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*(~[A-Za-z0-9_\-.]*)*")
#: An mdoc: one base64url ``IssuerSigned`` (far longer than any file name).
_MDOC = re.compile(r"[A-Za-z0-9_\-]{200,}={0,2}")


def read_credential_argument(text: str) -> str:
    """The credential in the file ``text`` names, or ``text`` itself when it is one.

    Raises :class:`CliError` (exit 2) when it is neither.
    """
    if _CREDENTIAL.fullmatch(text.strip()) and text.count(".") >= 2:
        return text.strip()
    if _MDOC.fullmatch(text.strip()):
        return text.strip()
    path = Path(text)
    shown = text if len(text) <= 120 else "the argument"  # never echo a whole credential
    try:
        if path.is_file():
            if path.stat().st_size > _MAX_FILE:
                raise CliError(
                    f"{shown} is larger than a credential can be; give the credential file "
                    "written by 'oid4vci receive --out'",
                    EXIT_USAGE,
                )
            return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise CliError(f"cannot read {shown} ({reason}); give a credential file", 2) from None
    raise CliError(
        "the argument is neither a file nor a credential; give the file written by "
        "'oid4vci receive --out' or the credential string",
        EXIT_USAGE,
    )


def _failure(exc: Exception) -> CliError:
    kind = type(exc).__name__
    if isinstance(exc, StatusListVerificationError):
        if exc.reason == StatusListReason.NO_REFERENCE:
            text, code = f"{exc}; this credential cannot be revoked or suspended", EXIT_FAILURE
        elif exc.reason == StatusListReason.MALFORMED and "credential" in str(exc):
            text, code = f"{exc}; give an SD-JWT VC, JWT or mdoc credential", EXIT_USAGE
        elif exc.reason == StatusListReason.UNAVAILABLE:
            text, code = f"{exc}; is the issuer running? try again later", EXIT_FAILURE
        else:
            text, code = f"the status list was refused ({exc}); ask the issuer", EXIT_FAILURE
    elif isinstance(exc, ConnectError):
        text, code = f"{exc}; is the issuer running? check the status list URI", EXIT_FAILURE
    elif isinstance(exc, TransportError):
        text, code = f"{exc}; check the network and try again", EXIT_FAILURE
    else:
        text, code = f"{exc}; the issuer's keys or the status list cannot be used", EXIT_FAILURE
    return CliError(text, code, kind=kind)


def status_command(args: argparse.Namespace) -> int:
    """Run ``status``; with ``--json`` its line is printed on every outcome: on a failure
    ``{"status": null, "uri": null, "idx": null, "errors": [{"type", "message", "hint"}]}``
    (the error is then raised on for the one line on stderr and the exit code)."""
    try:
        return anyio.run(run_status, args)
    except (CliError, KeyboardInterrupt) as exc:
        if args.json:
            if isinstance(exc, CliError):
                error = {"type": exc.kind, "message": exc.message, "hint": ""}
            else:
                kind = "Terminated" if isinstance(exc, Terminated) else "Interrupted"
                error = {"type": kind, "message": kind.lower(), "hint": ""}
            line = {"status": None, "uri": None, "idx": None, "errors": [error]}
            print(json.dumps(line), flush=True)
        raise


async def run_status(args: argparse.Namespace) -> int:
    """The ``status`` command."""
    from oid4vci.errors import CredentialVerificationError
    from oid4vci.transports.aiohttp import AiohttpTransport
    from oid4vci.wallet import WalletPolicy

    credential = read_credential_argument(args.credential)
    anchors = read_certificate_files(getattr(args, "trust_anchors", None), "--trust-anchor")
    issuer: str | None = getattr(args, "issuer", None)
    if issuer is None and "." not in credential.split("~", 1)[0]:  # not a JWT: an mdoc?
        try:
            reference = read_credential_status_reference(credential, allow_insecure_loopback=True)
        except CredentialVerificationError as exc:
            raise _failure(exc) from None
        if reference is not None:
            raise CliError(
                "an mdoc names no issuer; give --issuer URL (the credential issuer it came from)",
                EXIT_USAGE,
            )
    policy = WalletPolicy(allow_insecure_loopback=True, trusted_x5c_roots=anchors)
    try:
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            check: StatusCheck = await check_status(
                credential, transport, policy=policy, issuer=issuer
            )
    except (CredentialVerificationError, TransportError) as exc:
        raise _failure(exc) from None
    if args.json:
        line: dict[str, object] = {
            "status": check.status,
            "uri": check.uri,
            "idx": check.idx,
            "errors": [],
        }
        print(json.dumps(line), flush=True)
    else:
        print(f"{check.status}  (entry {check.idx} of {check.uri})", flush=True)
    if check.status != "valid":
        print(f"oid4vci status: the credential is not valid ({check.status})", file=sys.stderr)
        return EXIT_NOT_VALID
    return EXIT_OK
