"""``oid4vci demo`` (what ``make demo`` runs): issuer and wallet on loopback, both flows.

With cbor2 installed (the ``cli`` extra brings it) the demo also receives the mobile driving
licence (``mso_mdoc``), trusting the demo IACA root; without it that flow is skipped with a
note, and the others run as before.
"""

from __future__ import annotations

import argparse
import logging
import time

from oid4vci.versions import SpecVersion

from .options import DEFAULT_SERVE_RATE_LIMIT, flood_limits_from, rate_limit_value
from .receive import ReceiveOutcome, claims_json, display_value, receive
from .serve import running_demo_issuer

__all__ = ["run_demo"]

_WIDTH = 72


def _rule(title: str) -> None:
    print()
    print(f"== {title} ".ljust(_WIDTH, "="))


_REGISTERED = ("iss", "iat", "nbf", "exp", "vct", "cnf", "status")


def _when(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))


def _show(outcome: ReceiveOutcome, started: float) -> None:
    elapsed = (time.perf_counter() - started) * 1000
    for index, credential in enumerate(outcome.credentials, start=1):
        claims = claims_json(credential)
        mark = "verified" if credential.verified else "NOT VERIFIED"
        if credential.doctype is not None:
            print(f"   credential #{index}  {credential.doctype} (ISO mdoc)")
            print(
                f"      {'verification':18} {mark} (IACA chain, issuerAuth signature, "
                "item digests, deviceKey, doctype, validity)"
            )
            print(f"      {'holder key (jkt)':18} {credential.holder_jkt}  (= the MSO deviceKey)")
            for namespace, elements in claims.items():
                print(f"      {'namespace':18} {namespace}")
                for name, value in elements.items():
                    print(f"        {name:22} {display_value(value)}")
            continue
        print(f"   credential #{index}  {credential.vct}")
        print(f"      {'verification':18} {mark} (issuer signature, digests, cnf, vct, validity)")
        print(
            f"      {'holder key (jkt)':18} {credential.holder_jkt}  (= cnf.jwk of the credential)"
        )
        if index == 1 or len(outcome.credentials) <= 3:
            print(f"      {'issued by':18} {claims.get('iss', '-')}")
            print(f"      {'valid':18} {_when(claims.get('iat'))} .. {_when(claims.get('exp'))}")
            for name, value in claims.items():
                if name not in _REGISTERED:
                    print(f"      {name:18} {display_value(value)}")
    for error in outcome.errors:
        print(f"   ERROR {error['type']}: {error['message']}")
    verdict = "ok" if outcome.ok else "FAILED"
    speaks = f" (issuer speaks {outcome.spec_version})" if outcome.spec_version else ""
    print(f"   -> {verdict}: {len(outcome.credentials)} credential(s) in {elapsed:.0f} ms{speaks}")


class _StepPrinter(logging.Handler):
    """Prints the wallet's HTTP steps (method, path, status) as they happen."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"     {record.getMessage()}", flush=True)


async def run_demo(args: argparse.Namespace) -> int:
    """Start the demo issuer, run three wallet flows against it, print what came back."""
    spec = SpecVersion(args.spec)
    results: list[bool] = []
    wallet_log = logging.getLogger("oid4vci.wallet")
    printer = _StepPrinter()
    wallet_log.addHandler(printer)
    wallet_log.setLevel(logging.INFO)
    wallet_log.propagate = False
    try:
        return await _run(spec, results)
    finally:
        wallet_log.removeHandler(printer)
        wallet_log.propagate = True


async def _run(spec: SpecVersion, results: list[bool]) -> int:
    limits = flood_limits_from(rate_limit_value(DEFAULT_SERVE_RATE_LIMIT), [], "x-forwarded-for")
    async with running_demo_issuer(spec=spec, flood_limits=limits) as server:
        line = server.ready_line()
        _rule("issuer")
        print(f"   {'issuer':18} {line['issuer']} (publishing {spec.value} metadata)")
        for name, uri in line["offers"].items():
            print(f"   {'offer ' + name:18} {uri}")
        print(f"   {'tx_code':18} {line['tx_code']}")
        print(f"   {'login':18} {line['login']}")

        def step(text: str) -> None:
            print(f"   - {text}", flush=True)

        offers = line["offers"]
        flows: list[tuple[str, str, str | None, str | None, int]] = [
            # title, offer link, tx_code, login, count
            ("pre-authorized code flow with tx_code", offers["pre_auth_tx_code"],
             line["tx_code"], None, 1),
            ("authorization code flow (PKCE, PAR, DPoP, scripted login)", offers["auth_code"],
             None, line["login"], 1),
            ("batch of 10 (pre-authorized, one key per credential)", offers["pre_auth"],
             None, None, 10),
        ]  # fmt: skip
        if "pre_auth_mdoc" in offers:
            flows.append(
                ("mobile driving licence (ISO mdoc, trusting the demo IACA)",
                 offers["pre_auth_mdoc"], None, None, 1)
            )  # fmt: skip
        iaca = server.demo.iaca
        for title, offer, tx_code, login, count in flows:
            _rule(title)
            started = time.perf_counter()
            outcome = await receive(
                offer,
                tx_code=tx_code,
                login=login,
                count=count,
                on_step=step,
                trust_anchors=[iaca] if iaca is not None else [],
            )
            _show(outcome, started)
            results.append(outcome.ok)
        if "pre_auth_mdoc" not in offers:
            _rule("mobile driving licence (ISO mdoc)")
            print("   skipped: cbor2 is not installed (pip install 'oid4vci[mdoc]')")
    _rule("summary")
    print(f"   {sum(results)} of {len(results)} flows succeeded; issuer stopped.")
    return 0 if all(results) else 1
