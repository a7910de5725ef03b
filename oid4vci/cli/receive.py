"""``oid4vci receive OFFER``: a wallet on the command line.

Plain http is accepted only for loopback hosts (127.0.0.1, localhost, ::1), so local test
issuers work out of the box; every other URL must be https.

A code-flow offer without ``--login`` prints the full authorization URL, listens on a loopback
redirect URI (RFC 8252 §7.3: ``http://127.0.0.1:<port>/callback``) and says how long it waits
(``--timeout``); a browser is opened only when stdin is a terminal and not ``--no-browser``.
``--out`` is checked (created, write-tested) before any code is spent. Every failure is one
line on stderr with what to do, and the exit code of :mod:`oid4vci.cli.exits`.

ISO mdocs (``mso_mdoc``) are verified against the ``--trust-anchor`` roots (IACA certificates,
PEM or DER files); their claims are ``{namespace: {element: value}}``, with dates as ISO
strings and bytes as base64url in the output (:func:`oid4vci.mdoc.mdoc_claims_to_json`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import sys
import tempfile
import time
import webbrowser
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio

from oid4vci.errors import Oid4vciError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.mdoc import mdoc_claims_to_json

from .exits import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    CliError,
    Failure,
    Terminated,
    describe_error,
)
from .options import DEFAULT_CALLBACK_TIMEOUT, read_certificate_files

if TYPE_CHECKING:
    from cryptography import x509

    from oid4vci.attestation import AttestationProvider
    from oid4vci.wallet import IssuanceFlow, ReceivedCredential

__all__ = [
    "REGISTERED_CLAIMS",
    "SHOWN_STRING_LENGTH",
    "CallbackTimeout",
    "ReceiveOutcome",
    "claims_json",
    "display_value",
    "load_attester",
    "prepare_out",
    "print_summary",
    "receive",
    "receive_command",
    "run_receive",
]

log = logging.getLogger("oid4vci.receive")

#: The largest ``--attester-key`` / ``--attester-chain`` file read (a JWK or a PEM chain is a
#: few kB; a device such as /dev/zero is refused, not read forever).
_MAX_KEY_FILE = 1024 * 1024

#: JWT / SD-JWT VC registered claims the human summary hides unless ``--all-claims``.
REGISTERED_CLAIMS = ("iss", "iat", "exp", "nbf", "cnf", "vct", "status", "_sd_alg")

#: The ``--json`` flow names and the grant names of the spec the human summary shows.
_FLOW_TERMS = {"pre_auth": "pre-authorized_code", "auth_code": "authorization_code"}

#: Told (authorization URL, redirect URI, seconds it will wait) before waiting for the browser.
AuthorizeNotice = Callable[[str, str, float], None]


class CallbackTimeout(Exception):
    """No authorization response reached the loopback redirect URI in time."""

    def __init__(self, redirect_uri: str, seconds: float) -> None:
        super().__init__(f"no authorization response reached {redirect_uri} within {seconds:g} s")
        self.redirect_uri = redirect_uri
        self.seconds = seconds


class ReceiveOutcome:
    """What ``receive`` got: the result's JSON form plus the received credentials."""

    def __init__(self) -> None:
        self.ok = False
        self.flow: str | None = None
        self.spec_version: str | None = None
        self.credentials: list[ReceivedCredential] = []
        self.errors: list[dict[str, str]] = []
        self.failure: Failure | None = None

    def fail(self, failure: Failure) -> None:
        """Record ``failure`` (the first one recorded decides the exit code)."""
        self.ok = False
        if self.failure is None:
            self.failure = failure
        self.errors.append({"type": failure.kind, "message": failure.message, "hint": failure.hint})

    @property
    def exit_code(self) -> int:
        """0 when ok, else the first failure's code (1 failure, 2 usage)."""
        if self.ok:
            return EXIT_OK
        return self.failure.exit_code if self.failure is not None else EXIT_FAILURE

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` line: ``{"ok", "flow", "spec_version", "credentials", "errors"}``.

        Each credential is ``{"format", "vct", "types", "claims", "verified", "holder_jkt",
        "credential", "status", "doctype", "x5c_verified"}``: ``credential`` is the credential
        exactly as issued (a string; an mdoc: the base64url ``IssuerSigned``), ``status`` its
        Token Status List entry (``"valid"``, ``"invalid"``, ``"suspended"``, another value as
        its number, ``None`` without a reference or when the list could not be fetched),
        ``doctype`` the mdoc's (``None`` for other formats), ``x5c_verified`` true when the
        issuer key came from an ``x5c`` chain validated to a ``--trust-anchor``; an mdoc's
        ``claims`` are ``{namespace: {element: value}}`` in JSON types (dates as ISO strings).
        Each error is ``{"type", "message", "hint"}`` (``hint``: what to do about it).
        """
        return {
            "ok": self.ok,
            "flow": self.flow,
            "spec_version": self.spec_version,
            "credentials": [
                {
                    "format": c.format,
                    "vct": c.vct,
                    "types": None if c.types is None else list(c.types),
                    "claims": claims_json(c),
                    "verified": c.verified,
                    "holder_jkt": c.holder_jkt,
                    "credential": c.credential
                    if isinstance(c.credential, str)
                    else json.dumps(c.credential),
                    "status": c.status,
                    "doctype": c.doctype,
                    "x5c_verified": c.x5c_verified,
                }
                for c in self.credentials
            ],
            "errors": self.errors,
        }


def claims_json(credential: ReceivedCredential) -> dict[str, Any]:
    """The credential's claims in JSON types (an mdoc's dates as ISO strings, bytes as
    base64url; other formats' claims are JSON already)."""
    if credential.doctype is None:
        return credential.claims
    converted: dict[str, Any] = mdoc_claims_to_json(credential.claims)
    return converted


#: Strings longer than this are shortened on the summary lines (a portrait, a long URI); the
#: ``--json`` line and the ``--out`` files hold them whole.
SHOWN_STRING_LENGTH = 64


def display_value(value: Any) -> str:
    """``value`` as JSON for a summary line, each string longer than
    :data:`SHOWN_STRING_LENGTH` cut to its start and its length."""
    return json.dumps(_shortened(value), ensure_ascii=False)


def _shortened(value: Any) -> Any:
    if isinstance(value, str) and len(value) > SHOWN_STRING_LENGTH:
        return f"{value[:24]}… ({len(value)} characters)"
    if isinstance(value, dict):
        return {key: _shortened(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shortened(item) for item in value]
    return value


async def _open_browser(url: str) -> None:
    """Try the system browser in a worker thread (a console browser would block)."""
    try:
        await anyio.to_thread.run_sync(webbrowser.open, url, abandon_on_cancel=True)
    except Exception:  # no browser is not a failure: the URL was printed
        log.debug("could not open a browser", exc_info=True)


_PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'",
}


async def _callback_page(
    request: HttpRequest,
    received: list[str],
    done: anyio.Event,
    accept: Callable[[str], bool] | None = None,
) -> HttpResponse:
    if request.method != "GET" or urlsplit(request.url).path != "/callback":
        return HttpResponse(status=404)
    if accept is not None and not received and not accept(request.url):
        # Not the answer to this wallet's request (state or RFC 9207 iss): a stray or forged
        # redirect must not end the wait for the real one.
        return HttpResponse(
            status=400,
            headers=_PAGE_HEADERS,
            body=b"<!doctype html><title>oid4vci</title><p>This is not the answer to the "
            b"wallet's authorization request; the wallet is still waiting.</p>",
        )
    if not received:
        received.append(request.url)
        done.set()
    return HttpResponse(
        status=200,
        headers=_PAGE_HEADERS,
        body=b"<!doctype html><title>oid4vci</title>"
        b"<p>Done: the wallet has the authorization. You can close this window.</p>",
    )


async def wait_for_callback(
    authorize: Callable[[str], Awaitable[str]],
    *,
    wait_seconds: float,
    on_authorize: AuthorizeNotice | None = None,
    open_browser: bool = False,
    accept: Callable[[str], bool] | None = None,
) -> str:
    """Listen on ``http://127.0.0.1:<free port>/callback`` (RFC 8252 §7.3) for the redirect.

    ``authorize(redirect_uri)`` returns the authorization URL; ``on_authorize`` is told the
    URL, the redirect URI and ``wait_seconds`` before the wait. ``accept(callback_url)``
    (the flow's :meth:`~oid4vci.wallet.IssuanceFlow.is_own_callback`) tells the answer to this
    request from a stray or forged one, which gets 400 while the wait goes on. Returns the
    callback URL; raises :class:`CallbackTimeout` when none arrives within ``wait_seconds``.
    """
    from oid4vci.transports.aiohttp import serve

    received: list[str] = []
    done = anyio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        return await _callback_page(request, received, done, accept)

    async with serve(handler, host="127.0.0.1", port=0) as served:
        redirect_uri = f"{served.base_url}/callback"
        url = await authorize(redirect_uri)
        if on_authorize is not None:
            on_authorize(url, redirect_uri, wait_seconds)
        async with anyio.create_task_group() as tg:
            if open_browser:
                tg.start_soon(_open_browser, url)
            with anyio.move_on_after(wait_seconds):
                await done.wait()
            tg.cancel_scope.cancel()
    if not received:
        raise CallbackTimeout(redirect_uri, wait_seconds)
    return received[0]


async def receive(
    offer_text: str,
    *,
    tx_code: str | None = None,
    count: int = 1,
    login: str | None = None,
    client_id: str = "oid4vci-cli",
    on_step: Any = None,
    wait_seconds: float = DEFAULT_CALLBACK_TIMEOUT,
    on_authorize: AuthorizeNotice | None = None,
    open_browser: bool = False,
    attestation_provider: AttestationProvider | None = None,
    trust_anchors: Sequence[x509.Certificate] = (),
    profile: str | None = None,
) -> ReceiveOutcome:
    """Run the whole wallet side for one offer; never raises for protocol failures.

    ``trust_anchors`` are the roots mdocs must chain to (the wallet's
    :attr:`~oid4vci.wallet.WalletPolicy.trust_anchors`).

    A code-flow offer uses ``login`` (``USER:PASS``: the scripted login of test issuers) or,
    without it, waits up to ``wait_seconds`` on a loopback redirect URI for the browser
    (``on_authorize`` is told the authorization URL first; ``open_browser`` tries to open it).
    ``attestation_provider`` supplies wallet and key attestations (``--attester-key``);
    ``trust_anchors`` (certificates, ``--trust-anchor``) validate x5c-signed credentials;
    ``profile="haip"`` uses :meth:`~oid4vci.wallet.WalletPolicy.haip` (both are then needed).
    """
    from oid4vci.transports.aiohttp import AiohttpTransport
    from oid4vci.wallet import Oid4vciClient, WalletPolicy

    from .login import scripted_login

    def step(text: str) -> None:
        if on_step is not None:
            on_step(text)

    outcome = ReceiveOutcome()
    try:
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            # One --trust-anchor list: IACA roots for mdocs, x5c roots for JWT credentials.
            if profile == "haip":
                assert attestation_provider is not None  # checked by run_receive
                policy = WalletPolicy.haip(
                    trusted_x5c_roots=trust_anchors,
                    attestation_provider=attestation_provider,
                    allow_insecure_loopback=True,
                    trust_anchors=trust_anchors,
                )
            else:
                policy = WalletPolicy(
                    allow_insecure_loopback=True,
                    attestation_provider=attestation_provider,
                    trusted_x5c_roots=trust_anchors,
                    trust_anchors=trust_anchors,
                )
            client = Oid4vciClient(transport, policy=policy)
            offer = await client.parse_offer(offer_text)
            step(
                f"offer from {offer.credential_issuer}: {', '.join(offer.credential_configuration_ids)}"
            )
            if offer.pre_authorized_code is not None:
                outcome.flow = "pre_auth"
                step("pre-authorized code flow" + (" with tx_code" if tx_code else ""))
                result = await client.accept_offer(offer, tx_code=tx_code, count=count)
            else:
                outcome.flow = "auth_code"
                pending: list[IssuanceFlow] = []

                async def authorize(redirect_uri: str) -> str:
                    url, flow = await client.authorize(
                        offer, redirect_uri=redirect_uri, client_id=client_id
                    )
                    pending.append(flow)
                    return url

                if login:
                    redirect_uri = "http://127.0.0.1:8976/callback"
                    url = await authorize(redirect_uri)
                    step("authorization code flow: logging in with the issuer's form")
                    user, _, password = login.partition(":")
                    callback = await scripted_login(url, redirect_uri, user, password)
                else:
                    step("authorization code flow: log in at the issuer in a browser")
                    callback = await wait_for_callback(
                        authorize,
                        wait_seconds=wait_seconds,
                        on_authorize=on_authorize,
                        open_browser=open_browser,
                        accept=lambda url: bool(pending) and pending[0].is_own_callback(url),
                    )
                step("authorization granted; redeeming the code")
                result = await client.claim(pending[0], callback, count=count)
            outcome.spec_version = result.spec_version.value
            outcome.credentials = list(result.credentials)
            outcome.ok = len(result.credentials) >= count and all(
                c.verified for c in result.credentials
            )
            if not outcome.ok:
                outcome.fail(
                    Failure(
                        "Incomplete",
                        "not every credential was received and verified",
                        "run again with -v to see the exchange",
                        EXIT_FAILURE,
                    )
                )
    except CallbackTimeout as exc:
        hint = "open the URL above and log in sooner, or give more time with --timeout SECONDS"
        outcome.fail(Failure("CallbackTimeout", str(exc), hint, EXIT_FAILURE))
    except Oid4vciError as exc:
        outcome.fail(describe_error(exc))
    return outcome


def load_attester(
    key_path: str | None, chain_path: str | None, client_id: str
) -> AttestationProvider | None:
    """A :class:`~oid4vci.attestation.LocalAttestationProvider` from ``--attester-key`` (a
    private JWK) and ``--attester-chain`` (PEM), or ``None`` without them; checked before
    anything is sent. Raises :class:`CliError` (exit 2) saying what is wrong."""
    from oid4vci.attestation import LocalAttestationProvider

    if key_path is None and chain_path is None:
        return None
    if key_path is None or chain_path is None:
        raise CliError(
            "--attester-key and --attester-chain go together; give both or neither", EXIT_USAGE
        )
    try:
        with open(key_path, "rb") as file:
            key_text = file.read(_MAX_KEY_FILE + 1)
        with open(chain_path, "rb") as file:
            chain = file.read(_MAX_KEY_FILE + 1)
        if max(len(key_text), len(chain)) > _MAX_KEY_FILE:
            raise CliError(
                "an attester file is larger than a key or a certificate chain can be (over "
                "1 MiB); check --attester-key and --attester-chain",
                EXIT_USAGE,
            )
        key = json.loads(key_text)
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise CliError(
            f"cannot read the attester files ({reason}); check --attester-key and --attester-chain",
            EXIT_USAGE,
        ) from None
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise CliError(
            f"--attester-key {key_path} is not a JSON JWK; give the attester's private JWK",
            EXIT_USAGE,
        ) from None
    try:
        if not isinstance(key, dict) or "d" not in key:
            raise CliError(
                f"--attester-key {key_path} is not a private JWK (no 'd'); give the private key",
                EXIT_USAGE,
            )
        return LocalAttestationProvider.from_files(key, chain, client_id=client_id)
    except Oid4vciError:
        raise CliError(
            "the attester key or chain cannot be used (a private EC/OKP JWK and PEM "
            "certificates, leaf first, are needed)",
            EXIT_USAGE,
        ) from None


def prepare_out(directory: str) -> Path:
    """Create ``directory`` and check a file can be written in it, before any code is spent.

    Raises :class:`CliError` (exit 2) saying why it cannot be used.
    """
    if not directory.strip():
        raise CliError(
            "--out needs a directory name; give one, or leave --out out (nothing was received)",
            EXIT_USAGE,
        )
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".oid4vci-write-test-"):
            pass
    except OSError as exc:
        if isinstance(exc, FileExistsError):
            reason = "it exists and is not a directory"
        else:
            reason = (exc.strerror or type(exc).__name__).lower()
        raise CliError(
            f"--out {directory} cannot be written ({reason}); choose a directory you can "
            "write to (nothing was received)",
            EXIT_USAGE,
        ) from None
    return path


#: File suffix of a written credential by format (an mdoc: its base64url ``IssuerSigned``).
_SUFFIXES = {"jwt_vc_json": ".jwt", "mso_mdoc": ".mdoc.b64u"}


def _write_secret(path: Path, text: str) -> None:
    """Write a new file readable by its owner only: created with mode 0600, never chmod-ed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as stream:
        stream.write(text)


def _write_out(directory: Path, outcome: ReceiveOutcome) -> list[Path]:
    """Per credential: the credential, its claims, and the holder's private key (``.key.jwk``,
    mode 0600) so the credential can be presented later."""
    from oid4vci.jose import LocalSigner

    written: list[Path] = []
    for index, credential in enumerate(outcome.credentials, start=1):
        stem = f"credential-{index}-{secrets.token_hex(4)}"
        suffix = _SUFFIXES.get(credential.format, ".sd-jwt")
        token = directory / f"{stem}{suffix}"
        token.write_text(str(credential.credential))
        claims = directory / f"{stem}.json"
        claims.write_text(json.dumps(claims_json(credential), indent=2))
        written += [token, claims]
        if isinstance(credential.holder_key, LocalSigner):
            key = directory / f"{stem}.key.jwk"
            _write_secret(key, json.dumps(credential.holder_key.private_jwk()))
            written.append(key)
    return written


def _when(seconds: object) -> str:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def print_summary(outcome: ReceiveOutcome, *, all_claims: bool = False) -> None:
    """A readable summary of ``outcome`` on stdout, in the spec's terms.

    ``flow: authorization_code`` / ``pre-authorized_code`` and ``issuer speaks: 1.0``; a line
    with nothing to say is left out (never "None"). The JWT registered claims
    (:data:`REGISTERED_CLAIMS`) are hidden unless ``all_claims``; issuer and validity are shown
    readably instead.
    """
    status = "OK" if outcome.ok else "FAILED"
    print(f"{status}: {len(outcome.credentials)} credential(s) received")
    if outcome.flow is not None:
        print(f"  flow: {_FLOW_TERMS.get(outcome.flow, outcome.flow)}")
    if outcome.spec_version is not None:
        print(f"  issuer speaks: {outcome.spec_version}")
    hidden: set[str] = set()
    for index, credential in enumerate(outcome.credentials, start=1):
        claims = claims_json(credential)
        mark = "verified" if credential.verified else "NOT VERIFIED"
        if credential.x5c_verified:
            mark += " (x5c)"
        kind = (
            credential.vct
            or credential.doctype
            or " ".join(credential.types or ())
            or credential.format
        )
        print(f"  #{index} {kind}  [{mark}]")
        if claims.get("iss") is not None:
            print(f"      {'issued by':16} {claims['iss']}")
        if claims.get("iat") is not None or claims.get("exp") is not None:
            print(f"      {'valid':16} {_when(claims.get('iat'))} .. {_when(claims.get('exp'))}")
        print(f"      {'holder key':16} {credential.holder_jkt}")
        if credential.status_reference is not None:
            shown = "unknown (the list could not be fetched)"
            value = shown if credential.status is None else credential.status
            print(f"      {'revocation':16} {value} (Token Status List)")
        for name, value in claims.items():
            if name in REGISTERED_CLAIMS and not all_claims:
                hidden.add(name)
                continue
            print(f"      {name:16} {display_value(value)}")
    if hidden:
        names = ", ".join(name for name in REGISTERED_CLAIMS if name in hidden)
        print(f"  ({names} not shown; --all-claims shows them)")


def _say(text: str, *, human: bool) -> None:
    """Progress for people: stdout, or stderr with ``--json`` (stdout carries only the line)."""
    print(text, file=sys.stdout if human else sys.stderr, flush=True)


def receive_command(args: argparse.Namespace) -> int:
    """Run ``receive``; with ``--json`` its line is printed also when the command is refused
    before the flow (a bad ``--out`` or ``--trust-anchor``) or stopped (Ctrl-C, SIGTERM):
    scripts always get one ``{"ok": false, ..., "errors": [...]}`` line. The error is then
    raised on for the one line on stderr and the exit code."""
    try:
        return anyio.run(run_receive, args)
    except (CliError, KeyboardInterrupt) as exc:
        if args.json:
            outcome = ReceiveOutcome()
            outcome.fail(_stopped(exc))
            print(json.dumps(outcome.to_json(), ensure_ascii=False), flush=True)
        raise


def _stopped(exc: CliError | KeyboardInterrupt) -> Failure:
    if isinstance(exc, CliError):
        return Failure("UsageError", exc.message, "see oid4vci receive --help", exc.exit_code)
    if isinstance(exc, Terminated):
        return Failure("Terminated", "terminated", "", EXIT_TERMINATED)
    return Failure("Interrupted", "interrupted", "", EXIT_INTERRUPTED)


async def run_receive(args: argparse.Namespace) -> int:
    """The ``receive`` command."""
    human = not args.json
    out = prepare_out(args.out) if args.out is not None else None
    attester = load_attester(
        getattr(args, "attester_key", None), getattr(args, "attester_chain", None), args.client_id
    )
    anchors = list(read_certificate_files(getattr(args, "trust_anchors", None), "--trust-anchor"))
    profile: str | None = getattr(args, "profile", None)
    if profile == "haip" and (attester is None or not anchors):
        raise CliError(
            "--profile haip needs --attester-key, --attester-chain and --trust-anchor ROOT.pem",
            EXIT_USAGE,
        )

    def on_authorize(url: str, redirect_uri: str, seconds: float) -> None:
        _say("Open this URL in a browser and log in:", human=human)
        _say(url, human=human)
        _say(
            f"Waiting up to {seconds:g} s for the browser to come back to {redirect_uri} "
            "(Ctrl-C stops).",
            human=human,
        )

    outcome = await receive(
        args.offer,
        tx_code=args.tx_code,
        count=args.batch,
        login=args.login,
        client_id=args.client_id,
        on_step=(lambda text: print(f"- {text}", flush=True)) if human else None,
        wait_seconds=args.timeout,
        on_authorize=on_authorize,
        open_browser=not args.no_browser and sys.stdin.isatty(),
        attestation_provider=attester,
        trust_anchors=anchors,
        profile=profile,
    )
    written: list[Path] = []
    if out is not None and outcome.credentials:
        try:
            written = _write_out(out, outcome)
        except OSError as exc:
            reason = (exc.strerror or type(exc).__name__).lower()
            hint = "the credentials are only in this output: fix --out and keep them"
            outcome.fail(
                Failure("OutError", f"cannot write to --out {args.out} ({reason})", hint, 1)
            )
    if args.json:
        print(json.dumps(outcome.to_json(), ensure_ascii=False), flush=True)
    elif outcome.credentials:
        print_summary(outcome, all_claims=args.all_claims)
        if written:
            print(f"  written to {out}: {len(written)} file(s)")
    if outcome.failure is not None:
        print(f"oid4vci receive: error: {outcome.failure.line()}", file=sys.stderr, flush=True)
    return outcome.exit_code
