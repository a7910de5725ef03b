"""HAIP 1.0 end to end: x5c-signed credentials (``IssuerConfig.credential_signer_chain``) and the
profile on both sides (``IssuerConfig(profile="haip")``, ``WalletPolicy.haip()``), the real
wallet against the real issuer, in memory and over aiohttp on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from oid4vci.errors import (
    CredentialRequestError,
    CredentialVerificationError,
    MetadataError,
    UsageError,
)
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import Issuer, build_demo_issuer
from oid4vci.issuer.config import AttestationSettings, StatusListSettings
from oid4vci.issuer.demo import DemoIssuer
from oid4vci.issuer_certificates import (
    create_issuer_signing_certificates,
    demo_trust_anchors_pem,
)
from oid4vci.jose import LocalSigner, decode_jws
from oid4vci.transports.aiohttp import AiohttpTransport, serve
from oid4vci.wallet import IssuanceFlow, Oid4vciClient, WalletPolicy, WalletReason
from oid4vci.x509 import load_trust_anchors
from tests.attestation_support import (
    REDIRECT_URI,
    AttestedIssuer,
    Recorder,
    browser_login,
    make_provider,
    provider_pki,
)
from tests.conftest import FakeClock
from tests.x509_support import Pki, make_certificate

ISSUER = "https://issuer.example"


def haip_demo(clock: FakeClock, pki: Pki, issuer_url: str = ISSUER) -> DemoIssuer:
    return build_demo_issuer(
        issuer_url,
        clock=clock,
        profile="haip",
        attestation=AttestationSettings(client_trust_anchors=[pki.root]),
    )


def as_attested(demo: DemoIssuer) -> AttestedIssuer:
    return AttestedIssuer(
        issuer=demo.issuer,
        links=demo.offer_links,
        configuration_id=demo.configuration_id,
        login=demo.login,
    )


def haip_wallet(
    routes: dict[str, Any], demo: DemoIssuer, pki: Pki, clock: FakeClock, **policy: Any
) -> tuple[Recorder, Oid4vciClient]:
    recorder = Recorder(routes)
    wallet_policy = WalletPolicy.haip(
        trusted_x5c_roots=policy.pop("roots", demo.trust_anchors),
        attestation_provider=make_provider(pki, clock),
        **policy,
    )
    return recorder, Oid4vciClient(recorder, client_id=None, clock=clock, policy=wallet_policy)


# --- configuration -------------------------------------------------------------------------


def test_signer_chain_must_certify_the_signer_key(clock: FakeClock) -> None:
    demo = build_demo_issuer(ISSUER, clock=clock)
    signer = demo.config.credential_signer
    certificates = create_issuer_signing_certificates(signer, issuer_uri=ISSUER, clock=clock)
    config = attrs.evolve(demo.config, credential_signer_chain=certificates.chain)
    assert config.credential_x5c is not None and len(config.credential_x5c) == 1
    other = create_issuer_signing_certificates(
        LocalSigner.generate(), issuer_uri=ISSUER, clock=clock
    )
    with pytest.raises(UsageError, match="does not certify credential_signer's key"):
        attrs.evolve(demo.config, credential_signer_chain=other.chain)
    with pytest.raises(UsageError, match="must not hold a self-signed certificate"):
        attrs.evolve(demo.config, credential_signer_chain=[*certificates.chain, certificates.root])
    key = ec.generate_private_key(ec.SECP256R1())
    lone = make_certificate(key=key, subject="self-signed signer")
    with pytest.raises(UsageError, match="self-signed"):
        attrs.evolve(
            demo.config, credential_signer=LocalSigner("ES256", key), credential_signer_chain=[lone]
        )


def test_profile_names_what_is_missing(clock: FakeClock) -> None:
    pki = provider_pki()
    demo = haip_demo(clock, pki)
    config = demo.config
    assert config.require_par and not config.pre_authorized_anonymous_access
    assert config.attestation is not None and config.attestation.require_client_attestation
    assert config.dpop_algorithms == ("ES256",)
    spec = config.credential_configurations[demo.configuration_id]
    assert spec.proof_signing_alg_values_supported == ("ES256",)
    plain = build_demo_issuer(ISSUER, clock=clock).config
    cases: list[tuple[dict[str, Any], str]] = [
        ({"credential_signer_chain": ()}, "needs credential_signer_chain"),
        ({"attestation": None}, "needs attestation=AttestationSettings"),
        ({"allow_bearer": True}, "forbids allow_bearer"),
        ({"status": StatusListSettings(signer=LocalSigner.generate())}, "status.signer"),
        ({"dpop_algorithms": ("ES384",)}, "ES256 in dpop_algorithms"),
    ]
    for change, message in cases:
        with pytest.raises(UsageError, match=message):
            attrs.evolve(config, **change)
    with pytest.raises(UsageError, match="needs credential_signer_chain"):
        attrs.evolve(plain, profile="haip")
    es384 = LocalSigner.generate("ES384")
    chain = create_issuer_signing_certificates(es384, issuer_uri=ISSUER, clock=clock).chain
    with pytest.raises(UsageError, match="needs an ES256 credential_signer"):
        attrs.evolve(config, credential_signer=es384, credential_signer_chain=chain)


def test_wallet_profile_names_what_is_missing(clock: FakeClock) -> None:
    pki = provider_pki()
    provider = make_provider(pki, clock)
    policy = WalletPolicy.haip(trusted_x5c_roots=[pki.root], attestation_provider=provider)
    assert (policy.dpop, policy.par, policy.profile) == ("required", "always", "haip")
    assert not policy.use_authorization_details
    with pytest.raises(UsageError, match="needs trusted_x5c_roots"):
        WalletPolicy.haip(trusted_x5c_roots=[], attestation_provider=provider)
    with pytest.raises(UsageError, match="dpop='required'"):
        WalletPolicy.haip(trusted_x5c_roots=[pki.root], attestation_provider=provider, dpop="auto")
    with pytest.raises(UsageError, match="needs an attestation_provider"):
        WalletPolicy(profile="haip", dpop="required", par="always", trusted_x5c_roots=[pki.root])


# --- end to end, in memory -----------------------------------------------------------------


async def test_pre_authorized_x5c_credentials(clock: FakeClock) -> None:
    pki = provider_pki()
    demo = haip_demo(clock, pki)
    recorder, client = haip_wallet({ISSUER: demo.handle}, demo, pki, clock)
    result = await client.accept_offer(demo.offer_links["pre_auth"], count=2)
    assert len(result.credentials) == 2
    for credential in result.credentials:
        assert credential.verified and credential.x5c_verified
        assert credential.status == "valid"  # the Status List Token verified through x5c too
        header = decode_jws(credential.credential.split("~")[0]).header
        assert "kid" not in header and len(header["x5c"]) == 1
    # the issuer keys came from x5c: JWT VC Issuer Metadata was never fetched
    assert "/.well-known/jwt-vc-issuer" not in recorder.paths()
    (status_list,) = [r for r in recorder.requests if "/status-lists/" in r.url]
    token = (await demo.handle(status_list)).body.decode()
    assert "x5c" in decode_jws(token).header and "kid" not in decode_jws(token).header


async def test_code_flow_x5c_credentials(clock: FakeClock) -> None:
    pki = provider_pki()
    demo = haip_demo(clock, pki)
    recorder, client = haip_wallet({ISSUER: demo.handle}, demo, pki, clock)
    url, pending = await client.authorize(demo.offer_links["auth_code"], redirect_uri=REDIRECT_URI)
    callback = await browser_login(as_attested(demo), url)
    restored = IssuanceFlow.from_json(pending.to_json(), policy=client.policy, clock=clock)
    result = await client.claim(restored, callback)
    assert [c.x5c_verified for c in result.credentials] == [True]
    assert recorder.to("/par") and recorder.to("/token")
    # a finished flow saved and restored keeps the flag
    saved = IssuanceFlow.from_json(restored.to_json(), policy=client.policy, clock=clock)
    assert [c.x5c_verified for c in saved.result.credentials] == [True]


async def test_chain_to_an_untrusted_root_is_refused(clock: FakeClock) -> None:
    pki = provider_pki()
    demo = haip_demo(clock, pki)
    foreign = create_issuer_signing_certificates(
        LocalSigner.generate(), issuer_uri=ISSUER, clock=clock
    )
    _, client = haip_wallet({ISSUER: demo.handle}, demo, pki, clock, roots=[foreign.root])
    with pytest.raises(CredentialVerificationError) as caught:
        await client.accept_offer(demo.offer_links["pre_auth"])
    assert getattr(caught.value, "reason", None) == WalletReason.X5C_UNTRUSTED
    assert "(untrusted)" in str(caught.value)


async def test_haip_wallet_refuses_credentials_without_x5c(clock: FakeClock) -> None:
    pki = provider_pki()
    demo = haip_demo(clock, pki)
    config = attrs.evolve(demo.config, credential_signer_chain=(), profile=None)
    issuer = Issuer(config, offer_templates=list(demo.issuer.offer_templates.values()))
    _, client = haip_wallet({ISSUER: issuer.handle}, demo, pki, clock)
    with pytest.raises(CredentialVerificationError) as caught:
        await client.accept_offer(issuer.offer_template_link("pre_auth"))
    assert getattr(caught.value, "reason", None) == WalletReason.X5C_UNTRUSTED
    assert "HAIP 1.0 §6.1.1" in str(caught.value)


# --- the HAIP issuer refuses ---------------------------------------------------------------


async def test_issuer_refuses_an_authorization_request_without_par(clock: FakeClock) -> None:
    pki = provider_pki()
    demo = haip_demo(clock, pki)
    # authorization parameters in the front channel instead of by PAR reference
    response = await demo.handle(
        HttpRequest(
            method="GET",
            url=f"{ISSUER}/authorize?response_type=code&client_id=x&redirect_uri="
            f"{REDIRECT_URI}&code_challenge=abc&code_challenge_method=S256&scope=identity",
        )
    )
    assert response.status == 400
    page = response.body.decode()
    assert "<code>invalid_request</code>" in page
    assert "pushed authorization request (PAR) required" in page
    as_metadata = json.loads(
        (
            await demo.handle(
                HttpRequest(method="GET", url=f"{ISSUER}/.well-known/oauth-authorization-server")
            )
        ).body
    )
    assert as_metadata["require_pushed_authorization_requests"] is True


async def test_issuer_refuses_an_unattested_client(clock: FakeClock) -> None:
    pki = provider_pki()
    demo = haip_demo(clock, pki)
    recorder = Recorder({ISSUER: demo.handle})
    client = Oid4vciClient(recorder, client_id=None, clock=clock, policy=WalletPolicy())
    # a plain wallet reads the metadata and refuses before spending the code ...
    with pytest.raises(MetadataError, match="no attestation provider"):
        await client.accept_offer(demo.offer_links["pre_auth"])
    assert recorder.to("/token") == []
    # ... and a token request that is sent anyway is refused by the issuer
    response = await demo.handle(
        HttpRequest.form(
            "POST",
            f"{ISSUER}/token",
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code",
                "pre-authorized_code": "anything",
                "client_id": "someone",
            },
        )
    )
    assert response.status == 400
    assert json.loads(response.body)["error"] == "invalid_client"


async def test_issuer_refuses_a_bearer_token(clock: FakeClock) -> None:
    pki = provider_pki()
    demo = haip_demo(clock, pki)
    response = await demo.handle(
        HttpRequest(
            method="POST",
            url=f"{ISSUER}/credential",
            headers={"Authorization": "Bearer some-token", "Content-Type": "application/json"},
            body=b'{"credential_configuration_id": "identity_credential"}',
        )
    )
    assert response.status == 401
    challenge = response.headers.get("WWW-Authenticate") or ""
    assert challenge.startswith("DPoP") and "Bearer" not in challenge
    assert demo.config.allow_bearer is False


async def test_issuer_refuses_non_es256_proofs(clock: FakeClock) -> None:
    pki = provider_pki()
    demo = haip_demo(clock, pki)

    async def es384_keys(*, configuration_id: str, algorithms: Any) -> LocalSigner:
        del configuration_id, algorithms
        return LocalSigner.generate("ES384")

    _, client = haip_wallet({ISSUER: demo.handle}, demo, pki, clock, holder_key_provider=es384_keys)
    with pytest.raises(CredentialRequestError) as caught:
        await client.accept_offer(demo.offer_links["pre_auth"])
    assert caught.value.error == "invalid_proof"


# --- the HAIP wallet refuses before spending a code ----------------------------------------


def _drop(member: str, value: Any = None) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        if value is None:
            doc.pop(member, None)
        else:
            doc[member] = value

    return change


AS_CHANGES = {
    "no DPoP": ("dpop_signing_alg_values_supported", None, "ES256 DPoP"),
    "no ES256 DPoP": ("dpop_signing_alg_values_supported", ["ES384"], "ES256 DPoP"),
    "no attestation": ("token_endpoint_auth_methods_supported", ["none"], "wallet attestation"),
    "no PAR": ("pushed_authorization_request_endpoint", None, "no PAR endpoint"),
    "no S256": ("code_challenge_methods_supported", ["plain"], "PKCE S256"),
}


class Tampering:
    """The HAIP issuer with one AS metadata member changed (what a non-HAIP issuer says)."""

    def __init__(self, demo: DemoIssuer, change: Callable[[dict[str, Any]], None]) -> None:
        self.demo, self.change = demo, change

    async def handle(self, request: HttpRequest) -> HttpResponse:
        response = await self.demo.handle(request)
        if request.url.endswith("/.well-known/oauth-authorization-server"):
            doc = json.loads(response.body)
            self.change(doc)
            return HttpResponse.json(200, doc)
        return response


@pytest.mark.parametrize("case", sorted(AS_CHANGES))
async def test_haip_wallet_refuses_before_spending_a_code(clock: FakeClock, case: str) -> None:
    member, value, message = AS_CHANGES[case]
    pki = provider_pki()
    demo = haip_demo(clock, pki)
    front = Tampering(demo, _drop(member, value))
    recorder, client = haip_wallet({ISSUER: front.handle}, demo, pki, clock)
    code_flow = case in ("no PAR", "no S256")
    with pytest.raises(MetadataError, match=message):
        if code_flow:
            await client.authorize(demo.offer_links["auth_code"], redirect_uri=REDIRECT_URI)
        else:
            await client.accept_offer(demo.offer_links["pre_auth"])
    assert recorder.to("/token") == [] and recorder.to("/par") == []
    assert recorder.to("/credential") == []


async def test_haip_wallet_refuses_a_configuration_without_scope(clock: FakeClock) -> None:
    pki = provider_pki()
    demo = haip_demo(clock, pki)

    async def handle(request: HttpRequest) -> HttpResponse:
        response = await demo.handle(request)
        if request.url.endswith("/.well-known/openid-credential-issuer"):
            doc = json.loads(response.body)
            for entry in doc["credential_configurations_supported"].values():
                entry.pop("scope", None)
            return HttpResponse.json(200, doc)
        return response

    recorder, client = haip_wallet({ISSUER: handle}, demo, pki, clock)
    with pytest.raises(MetadataError, match="has no scope"):
        await client.accept_offer(demo.offer_links["pre_auth"])
    assert recorder.to("/token") == []


# --- over aiohttp --------------------------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_over_aiohttp(clock: FakeClock) -> None:
    pki = provider_pki()
    holder: dict[str, DemoIssuer] = {}

    async def handle(request: Any) -> Any:
        return await holder["demo"].handle(request)

    async with (
        serve(handle) as served,
        AiohttpTransport(allow_insecure_loopback=True) as transport,
    ):
        demo = holder["demo"] = haip_demo(clock, pki, issuer_url=served.base_url)
        pem = demo_trust_anchors_pem(demo.trust_anchors)
        assert load_trust_anchors([pem]) == demo.trust_anchors
        policy = WalletPolicy.haip(
            trusted_x5c_roots=[pem],
            attestation_provider=make_provider(pki, clock),
            allow_insecure_loopback=True,
        )
        client = Oid4vciClient(transport, clock=clock, policy=policy)
        result = await client.accept_offer(demo.offer_links["pre_auth"], count=2)
        assert [c.x5c_verified for c in result.credentials] == [True, True]
        assert all(c.status == "valid" for c in result.credentials)
