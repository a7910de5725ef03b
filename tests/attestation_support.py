"""Wallet provider PKIs, attestation providers and an issuer that asks for attestations."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs

from oid4vci.attestation import ClientAttestation, LocalAttestationProvider
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import Issuer, build_demo_issuer
from oid4vci.issuer.config import AttestationSettings
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.versions import SpecVersion
from tests.conftest import FakeClock
from tests.x509_support import Pki, make_pki

ISSUER = "https://issuer.example"
CLIENT_ID = "https://wallet.example/app"
REDIRECT_URI = "https://wallet.example.org/cb"
HIGH = {"key_storage": ["iso_18045_high"], "user_authentication": ["iso_18045_moderate"]}


def provider_pki() -> Pki:
    """A wallet provider's PKI (root → intermediate → attester leaf)."""
    return make_pki(dns_names=("wallet-provider.example",), root_name="Wallet Provider Root")


def make_provider(pki: Pki, clock: FakeClock, **overrides: Any) -> LocalAttestationProvider:
    """A provider minting from the PKI's leaf, claiming high key storage."""
    values: dict[str, Any] = {
        "signer": pki.signer,
        "chain": [pki.leaf, pki.intermediate],
        "client_id": CLIENT_ID,
        "provider_id": "https://wallet-provider.example",
        "wallet_name": "Test Wallet",
        "key_storage": ["iso_18045_high"],
        "user_authentication": ["iso_18045_moderate"],
        "clock": clock,
    }
    values.update(overrides)
    return LocalAttestationProvider(**values)


@attrs.frozen(kw_only=True)
class AttestedIssuer:
    """The demo issuer with attestation settings, and its offer links."""

    issuer: Issuer
    links: Mapping[str, str]
    configuration_id: str
    login: str

    async def handle(self, request: HttpRequest) -> HttpResponse:
        return await self.issuer.handle(request)


def attested_issuer(
    clock: FakeClock,
    pki: Pki,
    *,
    issuer_url: str = ISSUER,
    require_client: bool = True,
    client_anchors: bool = True,
    key_required: Mapping[str, Any] | None = HIGH,
    proof_types: Sequence[str] = ("jwt",),
    key_pki: Pki | None = None,
    challenge: bool = False,
    published_version: SpecVersion = SpecVersion.V1,
) -> AttestedIssuer:
    """The demo issuer requiring wallet attestation (``require_client``) and key attestations
    (``key_required``) with ``pki``'s root as trust anchor."""
    demo = build_demo_issuer(issuer_url, clock=clock)
    spec = demo.config.credential_configurations[demo.configuration_id]
    spec = attrs.evolve(spec, key_attestations_required=key_required, proof_types=proof_types)
    settings = AttestationSettings(
        client_trust_anchors=[pki.root] if client_anchors else [],
        key_trust_anchors=[(key_pki or pki).root],
        require_client_attestation=require_client and client_anchors,
        require_challenge=challenge,
    )
    others = [s for s in demo.config.credential_configurations.values() if s.id != spec.id]
    config = attrs.evolve(
        demo.config,
        credential_configurations=[spec, *others],
        attestation=settings,
        published_version=published_version,
    )
    issuer = Issuer(config, offer_templates=list(demo.issuer.offer_templates.values()))
    links = {name: issuer.offer_template_link(name) for name in demo.offer_links}
    return AttestedIssuer(
        issuer=issuer, links=links, configuration_id=demo.configuration_id, login=demo.login
    )


async def browser_login(issuer: AttestedIssuer, authorization_url: str) -> str:
    """Open the authorization URL, post the demo login form: the callback URL."""
    page = await issuer.handle(HttpRequest(method="GET", url=authorization_url))
    assert page.status == 200, page.body
    handle = re.search(r"name='handle' value='([^']+)'", page.body.decode())
    action = re.search(r"form method='post' action='([^']+)'", page.body.decode())
    assert handle is not None and action is not None
    user, password = issuer.login.split(":")
    answer = await issuer.handle(
        HttpRequest.form(
            "POST",
            action.group(1),
            {"handle": handle.group(1), "username": user, "password": password},
        )
    )
    assert answer.status == 303
    location = answer.headers.get("Location")
    assert location is not None and location.startswith(REDIRECT_URI)
    return location


class Recorder:
    """An in-memory transport that keeps every request it carried."""

    def __init__(self, routes: Mapping[str, Any]) -> None:
        self.inner = InMemoryTransport(routes=dict(routes))
        self.requests: list[HttpRequest] = []

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        return await self.inner.send(request)

    def paths(self) -> list[str]:
        return [urlsplit(r.url).path for r in self.requests]

    def to(self, path: str) -> list[HttpRequest]:
        return [r for r in self.requests if urlsplit(r.url).path == path]


@attrs.frozen(kw_only=True)
class DroppingProvider:
    """A provider that leaves the last key out of every key attestation (a hostile wallet);
    ``stale``: one that ignores ``fresh`` (its backend hands out the cached attestation)."""

    inner: LocalAttestationProvider
    stale: bool = False

    @property
    def client_id(self) -> str:
        return self.inner.client_id

    async def client_attestation(
        self, *, authorization_server: str, fresh: bool = False
    ) -> ClientAttestation:
        return await self.inner.client_attestation(
            authorization_server=authorization_server, fresh=fresh and not self.stale
        )

    async def key_attestation(
        self, *, keys: Sequence[Mapping[str, Any]], nonce: str | None, credential_issuer: str
    ) -> str:
        kept = list(keys)[:-1] or list(keys)
        return await self.inner.key_attestation(
            keys=kept, nonce=nonce, credential_issuer=credential_issuer
        )


def realtime_pki() -> Pki:
    """A wallet provider PKI valid around the real current time (for subprocess wallets)."""
    import time

    from cryptography.hazmat.primitives.asymmetric import ec

    from oid4vci.jose import LocalSigner
    from tests.x509_support import DAY, START, make_certificate

    offset = (time.time() - START) / DAY
    start, end = offset - 1, offset + 30
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = make_certificate(
        key=root_key, subject="Realtime Root", ca=True, valid_from_days=start, valid_until_days=end
    )
    mid_key = ec.generate_private_key(ec.SECP256R1())
    mid = make_certificate(
        key=mid_key,
        subject="Realtime CA",
        issuer=root,
        issuer_key=root_key,
        ca=True,
        valid_from_days=start,
        valid_until_days=end,
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = make_certificate(
        key=leaf_key,
        subject="attester.example",
        issuer=mid,
        issuer_key=mid_key,
        dns_names=["attester.example"],
        valid_from_days=start,
        valid_until_days=end,
    )
    signer = LocalSigner("ES256", leaf_key)
    return Pki(
        root=root,
        root_key=root_key,
        intermediate=mid,
        intermediate_key=mid_key,
        leaf=leaf,
        signer=signer,
    )
