"""``oid4vci receive OFFER``: a wallet on the command line.

Plain http is accepted only for loopback hosts (127.0.0.1, localhost, ::1), so local test
issuers work out of the box; every other URL must be https.
"""

from __future__ import annotations

import argparse
import json
import logging
import secrets
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from oid4vci.errors import Oid4vciError
from oid4vci.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from oid4vci.wallet import ReceivedCredential

__all__ = ["ReceiveOutcome", "receive", "run_receive"]

log = logging.getLogger("oid4vci.receive")

_CALLBACK_TIMEOUT = 300.0


class ReceiveOutcome:
    """What ``receive`` got: the result's JSON form plus the received credentials."""

    def __init__(self) -> None:
        self.ok = False
        self.flow: str | None = None
        self.spec_version: str | None = None
        self.credentials: list[ReceivedCredential] = []
        self.errors: list[dict[str, str]] = []

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` line: ``{"ok", "flow", "spec_version", "credentials", "errors"}``."""
        return {
            "ok": self.ok,
            "flow": self.flow,
            "spec_version": self.spec_version,
            "credentials": [
                {
                    "format": c.format,
                    "vct": c.vct,
                    "types": None if c.types is None else list(c.types),
                    "claims": c.claims,
                    "verified": c.verified,
                    "holder_jkt": c.holder_jkt,
                }
                for c in self.credentials
            ],
            "errors": self.errors,
        }


async def _browser_callback(authorization_url: str, port_holder: dict[str, Any]) -> str:
    """Open the browser and wait for the loopback redirect (RFC 8252)."""
    from oid4vci.transports.aiohttp import serve

    received: dict[str, str] = {}
    done = anyio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.url.split("?", 1)[0].endswith("/callback"):
            received["url"] = request.url
            done.set()
            return HttpResponse(
                status=200,
                headers={"Content-Type": "text/html; charset=utf-8"},
                body=b"<p>Done. You can close this window.</p>",
            )
        return HttpResponse(status=404)

    async with serve(handler, host="127.0.0.1", port=port_holder["port"]) as served:
        port_holder["served"] = served
        webbrowser.open(authorization_url)
        with anyio.fail_after(_CALLBACK_TIMEOUT):
            await done.wait()
    return received["url"]


async def receive(
    offer_text: str,
    *,
    tx_code: str | None = None,
    count: int = 1,
    login: str | None = None,
    client_id: str = "oid4vci-cli",
    on_step: Any = None,
) -> ReceiveOutcome:
    """Run the whole wallet side for one offer; never raises for protocol failures."""
    from oid4vci.transports.aiohttp import AiohttpTransport
    from oid4vci.wallet import Oid4vciClient, WalletPolicy

    from .login import scripted_login

    def step(text: str) -> None:
        if on_step is not None:
            on_step(text)

    outcome = ReceiveOutcome()
    try:
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            client = Oid4vciClient(transport, policy=WalletPolicy(allow_insecure_loopback=True))
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
                if login:
                    redirect_uri = "http://127.0.0.1:8976/callback"
                    url, pending = await client.authorize(
                        offer, redirect_uri=redirect_uri, client_id=client_id
                    )
                    step("authorization code flow: logging in with the issuer's form")
                    user, _, password = login.partition(":")
                    callback = await scripted_login(url, redirect_uri, user, password)
                else:
                    port = _free_port()
                    redirect_uri = f"http://127.0.0.1:{port}/callback"
                    url, pending = await client.authorize(
                        offer, redirect_uri=redirect_uri, client_id=client_id
                    )
                    step(f"authorization code flow: opening the browser at {url.split('?')[0]}")
                    callback = await _browser_callback(url, {"port": port})
                step("authorization granted; redeeming the code")
                result = await client.claim(pending, callback, count=count)
            outcome.spec_version = result.spec_version.value
            outcome.credentials = list(result.credentials)
            outcome.ok = len(result.credentials) >= count and all(
                c.verified for c in result.credentials
            )
            if not outcome.ok:
                outcome.errors.append(
                    {"type": "Incomplete", "message": "not every credential was received"}
                )
    except Oid4vciError as exc:
        outcome.errors.append({"type": type(exc).__name__, "message": str(exc)})
    return outcome


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _write_out(directory: str, outcome: ReceiveOutcome) -> None:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for index, credential in enumerate(outcome.credentials, start=1):
        stem = f"credential-{index}-{secrets.token_hex(4)}"
        (out / f"{stem}.sd-jwt").write_text(str(credential.credential))
        (out / f"{stem}.json").write_text(json.dumps(credential.claims, indent=2))


def print_summary(outcome: ReceiveOutcome) -> None:
    """A readable summary of ``outcome`` on stdout."""
    status = "OK" if outcome.ok else "FAILED"
    print(
        f"{status}: {len(outcome.credentials)} credential(s), flow {outcome.flow}, "
        f"issuer speaks {outcome.spec_version}"
    )
    for index, credential in enumerate(outcome.credentials, start=1):
        mark = "verified" if credential.verified else "NOT VERIFIED"
        kind = credential.vct or " ".join(credential.types or ()) or credential.format
        print(f"  #{index} {kind}  [{mark}]  holder key {credential.holder_jkt}")
        for name, value in credential.claims.items():
            print(f"      {name:16} {json.dumps(value, ensure_ascii=False)}")
    for error in outcome.errors:
        print(f"  error: {error['type']}: {error['message']}")


async def run_receive(args: argparse.Namespace) -> int:
    """The ``receive`` command."""
    from oid4vci.wallet.preflight import MAX_CREDENTIALS_PER_CONFIGURATION

    if not 1 <= args.batch <= MAX_CREDENTIALS_PER_CONFIGURATION:
        print(f"--batch must be between 1 and {MAX_CREDENTIALS_PER_CONFIGURATION}")
        return 2
    outcome = await receive(
        args.offer,
        tx_code=args.tx_code,
        count=args.batch,
        login=args.login,
        client_id=args.client_id,
        on_step=None if args.json else (lambda text: print(f"- {text}", flush=True)),
    )
    if args.out and outcome.credentials:
        _write_out(args.out, outcome)
    if args.json:
        print(json.dumps(outcome.to_json(), ensure_ascii=False), flush=True)
    else:
        print_summary(outcome)
    return 0 if outcome.ok else 1
