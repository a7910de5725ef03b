"""Helpers of the end-to-end matrix (in-memory issuer harness, checks, subprocess control)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

import anyio.lowlevel
import attrs
from cryptography import x509

from oid4vci.cli.login import find_login_form
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import DeferIssuance, Issuer, build_demo_issuer
from oid4vci.issuer.config import ClaimsSource
from oid4vci.issuer.demo import DemoClaimsSource
from oid4vci.issuer.encryption import EncryptionSettings
from oid4vci.issuer.notification import Notification
from oid4vci.issuer.offers import OfferTemplate
from oid4vci.jose import jwk_thumbprint
from oid4vci.sdjwt import verify_sd_jwt_vc
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.versions import SpecVersion
from oid4vci.wallet import (
    FlowState,
    IssuanceResult,
    Oid4vciClient,
    ReceivedCredential,
    WalletPolicy,
)
from tests.conftest import FakeClock

ISSUER = "https://issuer.example"
REDIRECT_URI = "https://wallet.example.org/cb"
CLIENT_ID = "e2e-wallet"
CONFIGURATION_ID = "identity_credential"
LOGIN = ("alice", "wonderland")

#: Short pytest ids of the published versions.
VERSION_IDS: dict[SpecVersion, str] = {
    SpecVersion.V1: "v1",
    SpecVersion.DRAFT_15: "d15",
    SpecVersion.DRAFT_14: "d14",
    SpecVersion.DRAFT_13: "d13",
}

#: What the demo claims source issues for ``alice`` (after disclosures are applied).
ALICE_CLAIMS: dict[str, Any] = {
    "given_name": "Alice",
    "family_name": "Liddell",
    "birthdate": "2000-05-04",
    "address": {
        "street_address": "1 Rabbit Hole",
        "locality": "Oxford",
        "postal_code": "OX1 1AA",
        "country": "GB",
    },
    "nationalities": ["GB", "IE"],
    "is_over_18": True,
}

REPO_ROOT = Path(__file__).resolve().parents[2]


# --- the in-memory issuer harness ----------------------------------------------------------


@attrs.frozen(kw_only=True)
class Exchange:
    """One request the issuer answered: method, path and status (no secrets)."""

    method: str
    path: str
    status: int


class E2eIssuer:
    """The demo issuer rebuilt with test knobs; records the wire and the notifications."""

    def __init__(
        self,
        issuer: Issuer,
        offer_links: Mapping[str, str],
        tx_code: str,
        iaca: x509.Certificate | None = None,
    ) -> None:
        self.issuer = issuer
        self.offer_links = dict(offer_links)
        self.tx_code = tx_code
        self.iaca = iaca
        self.wire: list[Exchange] = []
        self.notifications: list[Notification] = []

    async def record_notification(self, notification: Notification) -> None:
        """The issuer's ``on_notification`` hook."""
        self.notifications.append(notification)

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """The issuer's handler, logging method, path and status."""
        response = await self.issuer.handle(request)
        path = urlsplit(request.url).path
        self.wire.append(Exchange(method=request.method, path=path, status=response.status))
        return response

    def transport(self) -> InMemoryTransport:
        """A transport routing ``ISSUER`` to this issuer (3xx returned, not raised)."""
        return InMemoryTransport(routes={ISSUER: self.handle}, raise_on_redirect=False)

    @property
    def issuer_keys(self) -> list[dict[str, Any]]:
        """The public key credentials are signed with."""
        return [dict(self.issuer.config.credential_signer.public_jwk)]

    def calls(self, path: str) -> list[Exchange]:
        """The exchanges with ``path``."""
        return [e for e in self.wire if e.path == path]


def build_e2e_issuer(
    version: SpecVersion,
    clock: FakeClock,
    *,
    require_par: bool = False,
    require_dpop_nonce: bool = False,
    allow_bearer: bool = False,
    claims_source: ClaimsSource | None = None,
    encryption: EncryptionSettings | None = None,
    issuer_url: str = ISSUER,
    extra_templates: Sequence[OfferTemplate] = (),
) -> E2eIssuer:
    """The demo issuer at ``issuer_url`` publishing ``version``, with the given knobs (and
    ``extra_templates`` beside the demo's offer templates)."""
    demo = build_demo_issuer(
        issuer_url, published_version=version, clock=clock, allow_bearer=allow_bearer
    )
    config = attrs.evolve(
        demo.config,
        require_par=require_par,
        require_dpop_nonce=require_dpop_nonce,
        claims_source=claims_source if claims_source is not None else demo.config.claims_source,
        encryption=encryption,
    )
    holder: list[E2eIssuer] = []

    async def hook(notification: Notification) -> None:
        await holder[0].record_notification(notification)

    templates = [*demo.issuer.offer_templates.values(), *extra_templates]
    issuer = Issuer(config, offer_templates=templates, on_notification=hook)
    links = {
        **demo.offer_links,
        **{t.name: issuer.offer_template_link(t.name) for t in extra_templates},
    }
    e2e = E2eIssuer(issuer, links, demo.tx_code, demo.iaca)
    holder.append(e2e)
    return e2e


def make_client(
    e2e: E2eIssuer,
    clock: FakeClock,
    *,
    policy: WalletPolicy | None = None,
    sleep: Callable[[float], Awaitable[None]] | None = None,
) -> Oid4vciClient:
    """Our wallet talking to ``e2e`` in memory, on the shared fake clock."""
    if sleep is None:
        return Oid4vciClient(e2e.transport(), client_id=CLIENT_ID, clock=clock, policy=policy)
    return Oid4vciClient(
        e2e.transport(), client_id=CLIENT_ID, clock=clock, policy=policy, sleep=sleep
    )


async def browser_login(
    e2e: E2eIssuer, authorization_url: str, *, redirect_uri: str = REDIRECT_URI
) -> str:
    """Play the browser: open the URL, fill the login form, return the redirect's Location."""
    page = await e2e.handle(HttpRequest(method="GET", url=authorization_url))
    assert page.status == 200, page.body[:300]
    form = find_login_form(page.body.decode())
    assert form is not None, "no login form on the authorization page"
    assert form.method == "post"
    fields = dict(form.fields)
    fields["username"], fields["password"] = LOGIN
    action = urljoin(authorization_url, form.action) if form.action else authorization_url
    answer = await e2e.handle(HttpRequest.form("POST", action, fields))
    assert answer.status in (302, 303), answer.body[:300]
    location = answer.headers.get("Location")
    assert location is not None and location.startswith(redirect_uri + "?")
    return location


class DeferringClaims:
    """A claims source that defers (``DeferIssuance(interval)``) until ``ready`` is set."""

    def __init__(self, *, interval: int) -> None:
        self.interval = interval
        self.ready = False
        self.calls = 0
        self._inner = DemoClaimsSource()

    async def __call__(self, subject: str, configuration_id: str) -> Mapping[str, Any]:
        """Defer, or the demo claims once ready."""
        self.calls += 1
        if not self.ready:
            raise DeferIssuance(self.interval)
        return await self._inner(subject, configuration_id)


class FakeSleep:
    """An injected ``sleep``: records the waits, moves the fake clock, runs a callback."""

    def __init__(
        self, clock: FakeClock, on_sleep: Callable[[int], Awaitable[None]] | None = None
    ) -> None:
        self.clock = clock
        self.on_sleep = on_sleep
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        """Pretend to wait ``seconds``."""
        self.slept.append(seconds)
        self.clock.advance(seconds)
        if self.on_sleep is not None:
            await self.on_sleep(len(self.slept))
        await anyio.lowlevel.checkpoint()


# --- checks --------------------------------------------------------------------------------


def check_credentials(
    credentials: Sequence[ReceivedCredential],
    *,
    issuer_keys: Sequence[Mapping[str, Any]],
    version: SpecVersion,
    count: int,
    clock: Callable[[], float],
    claims: Mapping[str, Any] = ALICE_CLAIMS,
    issuer: str = ISSUER,
) -> None:
    """Verified (by the wallet and independently), right format, distinct ``cnf`` keys, claims."""
    vct = issuer + "/identity_credential"
    assert len(credentials) == count
    thumbprints: set[str] = set()
    for cred in credentials:
        assert cred.verified is True
        assert cred.configuration_id == CONFIGURATION_ID
        assert cred.format == version.sd_jwt_format
        assert cred.vct == vct
        assert cred.issuer == issuer
        assert cred.holder_key is not None and cred.holder_jkt is not None
        checked = verify_sd_jwt_vc(
            cred.credential,
            issuer_keys=issuer_keys,
            algorithms=["ES256"],
            expected_typ=[version.sd_jwt_typ],
            expected_vct=vct,
            expected_issuer=issuer,
            expected_cnf_jwk=cred.holder_key.public_jwk,
            clock=clock,
        )
        assert checked.holder_jwk is not None
        assert jwk_thumbprint(checked.holder_jwk) == cred.holder_jkt
        assert jwk_thumbprint(cred.claims["cnf"]["jwk"]) == cred.holder_jkt
        assert {k: checked.claims.get(k) for k in claims} == dict(claims)
        assert {k: cred.claims.get(k) for k in claims} == dict(claims)
        thumbprints.add(cred.holder_jkt)
    assert len(thumbprints) == count, "every credential must be bound to its own holder key"


def check_result(
    result: IssuanceResult,
    *,
    e2e: E2eIssuer,
    version: SpecVersion,
    count: int,
    clock: FakeClock,
    flow: str,
    claims: Mapping[str, Any] = ALICE_CLAIMS,
    clean_wire: bool = True,
) -> None:
    """A finished issuance: version detected, state, credentials, and a sane wire."""
    assert result.spec_version is version
    assert result.flow == flow
    assert result.state is FlowState.DONE
    assert result.credential_issuer == ISSUER
    assert result.deferred == ()
    check_credentials(
        result.credentials,
        issuer_keys=e2e.issuer_keys,
        version=version,
        count=count,
        clock=clock,
        claims=claims,
    )
    check_wire(e2e, version, clean=clean_wire)


def check_wire(e2e: E2eIssuer, version: SpecVersion, *, clean: bool = True) -> None:
    """Nonce endpoint used iff the version has one; no 5xx; no 4xx when ``clean``."""
    assert all(e.status < 500 for e in e2e.wire), e2e.wire
    if clean:
        assert all(e.status < 400 for e in e2e.wire), e2e.wire
    nonce_calls = e2e.calls("/nonce")
    if version.has_nonce_endpoint:
        assert nonce_calls, "Draft 15 / 1.0 wallets must fetch c_nonce at the Nonce Endpoint"
    else:
        assert nonce_calls == [], "Draft 13 / 14 issuers publish no Nonce Endpoint"
    assert e2e.calls("/credential"), "no credential request reached the issuer"


# --- subprocesses --------------------------------------------------------------------------

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
CLI_TIMEOUT = 60.0


def subprocess_env() -> dict[str, str]:
    """The environment of every child: ours plus unbuffered output."""
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


def _read_line(stream: IO[str], timeout: float) -> str:
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line within {timeout} s") from None


class ServedIssuer:
    """``python -m oid4vci serve --json`` running in its own process."""

    def __init__(
        self, process: subprocess.Popen[str], ready: dict[str, Any], stderr: IO[str], spec: str
    ) -> None:
        self.process = process
        self.ready = ready
        self.spec = spec
        self._stderr = stderr

    @property
    def version(self) -> SpecVersion:
        """The version the server publishes (its ``--spec``)."""
        return SpecVersion(self.spec)

    @property
    def issuer(self) -> str:
        """The issuer URL from the ready line."""
        return str(self.ready["issuer"])

    @property
    def offers(self) -> dict[str, str]:
        """The reusable offer links from the ready line."""
        return dict(self.ready["offers"])

    def stderr_text(self) -> str:
        """What the server logged so far."""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then wait at most ``timeout`` seconds; the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


@contextmanager
def served_issuer(spec: str) -> Iterator[ServedIssuer]:
    """Start the demo issuer publishing ``spec``; always killed when the block ends."""
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "oid4vci", "serve", "--json", "--port", "0", "--spec", spec],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=subprocess_env(),
            cwd=REPO_ROOT,
        )
        try:
            assert process.stdout is not None
            line = _read_line(process.stdout, READY_TIMEOUT)
            if not line:
                stderr.seek(0)
                raise AssertionError(f"serve exited before it was ready: {stderr.read()[-2000:]}")
            ready = json.loads(line)
            assert isinstance(ready, dict)
            yield ServedIssuer(process, ready, stderr, spec)
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=STOP_TIMEOUT)
            if process.stdout is not None:
                process.stdout.close()


def run_cli(*args: str, timeout: float = CLI_TIMEOUT) -> subprocess.CompletedProcess[str]:
    """``python -m oid4vci ARGS`` to completion (killed on timeout)."""
    return subprocess.run(
        [sys.executable, "-m", "oid4vci", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=subprocess_env(),
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def json_line(stdout: str) -> dict[str, Any]:
    """The one JSON line a ``--json`` command prints."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    assert len(lines) == 1, stdout[-2000:]
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data
