"""The wallet verifies SD-JWT VCs whose issuer key comes as an ``x5c`` chain.

With ``WalletPolicy.trusted_x5c_roots`` set, the chain must validate to one of those roots, its
signing certificate must not be self-signed (HAIP 1.0 §6.1.1) and the signature must verify
with the leaf key; no name in the certificate is matched against ``iss`` (SD-JWT VC
draft-ietf-oauth-sd-jwt-vc-13 §3.5: the issuer is the leaf's subject). No JWT VC Issuer Metadata
is fetched. Without roots, the metadata path is used as before.
"""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from oid4vci.errors import CredentialVerificationError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.jose import LocalSigner
from oid4vci.sdjwt import SdJwtReason, issue_sd_jwt_vc, sd
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import WalletPolicy, WalletReason
from oid4vci.wallet.verify import IssuerKeyResolver, VerifiedCredential, verify_credential
from oid4vci.x509 import CertificateError, CertificateReason
from tests.conftest import FakeClock
from tests.x509_support import DAY, HOST, Pki, b64, make_certificate, make_pki

ISSUER = f"https://{HOST}"
VCT = "https://credentials.example.com/identity_credential"


@pytest.fixture(scope="module")
def pki() -> Pki:
    """root → intermediate → leaf (SAN dNSName ``issuer.example``)."""
    return make_pki()


class Metadata:
    """The issuer's HTTP side: counts requests, answers JWT VC issuer metadata with ``keys``."""

    def __init__(self, keys: list[dict[str, Any]] | None = None) -> None:
        self.keys = keys
        self.requests: list[str] = []

    async def handle(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request.url)
        if self.keys is None:
            return HttpResponse.json(404, {})
        return HttpResponse.json(200, {"issuer": ISSUER, "jwks": {"keys": self.keys}})


async def issue(
    signer: LocalSigner,
    holder: LocalSigner,
    clock: FakeClock,
    *,
    x5c: list[str] | None,
    issuer: str | None = ISSUER,
    kid: str | None = None,
) -> str:
    return await issue_sd_jwt_vc(
        signer,
        vct=VCT,
        claims={"given_name": sd("Erika"), "family_name": "Mustermann"},
        holder_jwk=holder.public_jwk,
        issuer=issuer,
        x5c=x5c,
        kid=kid,
        exp=int(clock()) + 3600,
        clock=clock,
    )


async def verify(
    credential: str,
    holder: LocalSigner,
    policy: WalletPolicy,
    clock: FakeClock,
    *,
    metadata: Metadata | None = None,
    credential_issuer: str = ISSUER,
) -> VerifiedCredential:
    metadata = metadata if metadata is not None else Metadata()
    transport = InMemoryTransport(handler=metadata.handle)
    return await verify_credential(
        credential,
        format="dc+sd-jwt",
        credential_issuer=credential_issuer,
        expected_vct=VCT,
        holder_keys=[holder],
        used_keys=set(),
        resolver=IssuerKeyResolver(transport, policy=policy),
        policy=policy,
        clock=clock,
    )


async def expect_reason(
    reason: str,
    credential: str,
    holder: LocalSigner,
    policy: WalletPolicy,
    clock: FakeClock,
    **kwargs: Any,
) -> None:
    with pytest.raises(CredentialVerificationError) as info:
        await verify(credential, holder, policy, clock, **kwargs)
    assert getattr(info.value, "reason", None) == reason


async def test_trusted_chain_verifies_without_metadata(pki: Pki, clock: FakeClock) -> None:
    holder = LocalSigner.generate()
    credential = await issue(pki.signer, holder, clock, x5c=pki.x5c)
    metadata = Metadata()
    result = await verify(
        credential, holder, WalletPolicy(trusted_x5c_roots=[pki.root]), clock, metadata=metadata
    )
    assert result.verified and result.x5c_verified
    assert result.vct == VCT
    assert result.claims["given_name"] == "Erika"
    assert result.holder_key is holder
    assert metadata.requests == []  # the chain decided; JWT VC issuer metadata not consulted


async def test_root_given_as_pem_or_der(pki: Pki, clock: FakeClock) -> None:
    holder = LocalSigner.generate()
    credential = await issue(pki.signer, holder, clock, x5c=pki.x5c)
    pem = pki.root.public_bytes(serialization.Encoding.PEM)
    der = pki.root.public_bytes(serialization.Encoding.DER)
    for root in (pem.decode(), pem, der):
        policy = WalletPolicy(trusted_x5c_roots=[root])
        assert policy.trusted_x5c_roots == (pki.root,)
        assert (await verify(credential, holder, policy, clock)).verified


def test_policy_refuses_a_malformed_root() -> None:
    with pytest.raises(CertificateError) as info:
        WalletPolicy(trusted_x5c_roots=[b"not a certificate"])
    assert info.value.reason == CertificateReason.MALFORMED
    assert WalletPolicy().trusted_x5c_roots == ()


async def test_other_root_refused(pki: Pki, clock: FakeClock) -> None:
    holder = LocalSigner.generate()
    credential = await issue(pki.signer, holder, clock, x5c=pki.x5c)
    other = make_pki(root_name="Other Root")
    policy = WalletPolicy(trusted_x5c_roots=[other.root])
    # even though the issuer's metadata would vouch for the key: no fallback
    metadata = Metadata(keys=[pki.signer.public_jwk])
    await expect_reason(
        WalletReason.X5C_UNTRUSTED, credential, holder, policy, clock, metadata=metadata
    )
    assert metadata.requests == []
    with pytest.raises(CredentialVerificationError) as info:
        await verify(credential, holder, policy, clock)
    assert "untrusted" in str(info.value)


async def test_signature_by_another_key_refused(pki: Pki, clock: FakeClock) -> None:
    holder = LocalSigner.generate()
    forger = LocalSigner.generate()
    credential = await issue(forger, holder, clock, x5c=pki.x5c)
    policy = WalletPolicy(trusted_x5c_roots=[pki.root])
    await expect_reason(SdJwtReason.SIGNATURE, credential, holder, policy, clock)


async def test_no_san_matching_against_iss(pki: Pki, clock: FakeClock) -> None:
    """A leaf naming another host, or no host at all, is accepted: the draft rule is gone."""
    holder = LocalSigner.generate()
    for names in (("other.example",), ()):
        elsewhere = make_pki(dns_names=names)
        credential = await issue(elsewhere.signer, holder, clock, x5c=elsewhere.x5c)
        policy = WalletPolicy(trusted_x5c_roots=[elsewhere.root])
        result = await verify(credential, holder, policy, clock)
        assert result.verified and result.x5c_verified


async def test_self_signed_signer_refused_even_when_trusted(clock: FakeClock) -> None:
    holder = LocalSigner.generate()
    key = ec.generate_private_key(ec.SECP256R1())
    lone = make_certificate(key=key, subject="self-signed signer")
    credential = await issue(LocalSigner("ES256", key), holder, clock, x5c=[b64(lone)])
    policy = WalletPolicy(trusted_x5c_roots=[lone])
    with pytest.raises(CredentialVerificationError) as info:
        await verify(credential, holder, policy, clock)
    assert getattr(info.value, "reason", None) == WalletReason.X5C_UNTRUSTED
    assert CertificateReason.SELF_SIGNED in str(info.value)


async def test_leaf_only_and_expired_chain_refused(pki: Pki, clock: FakeClock) -> None:
    holder = LocalSigner.generate()
    policy = WalletPolicy(trusted_x5c_roots=[pki.root])
    leaf_only = await issue(pki.signer, holder, clock, x5c=[b64(pki.leaf)])
    await expect_reason(WalletReason.X5C_UNTRUSTED, leaf_only, holder, policy, clock)
    credential = await issue(pki.signer, holder, clock, x5c=pki.x5c)
    clock.advance(366 * DAY)  # the wallet's clock: the leaf has expired
    await expect_reason(WalletReason.X5C_UNTRUSTED, credential, holder, policy, clock)


async def test_x5c_accepts_a_loopback_iss(pki: Pki, clock: FakeClock) -> None:
    """``iss`` need not be an https host named by the certificate, only the Credential Issuer."""
    holder = LocalSigner.generate()
    local = "http://127.0.0.1:8080"
    credential = await issue(pki.signer, holder, clock, x5c=pki.x5c, issuer=local)
    policy = WalletPolicy(trusted_x5c_roots=[pki.root], allow_insecure_loopback=True)
    result = await verify(credential, holder, policy, clock, credential_issuer=local)
    assert result.x5c_verified
    await expect_reason(
        SdJwtReason.ISSUER_MISMATCH, credential, holder, policy, clock, credential_issuer=ISSUER
    )


async def test_x5c_without_iss_refused(pki: Pki, clock: FakeClock) -> None:
    holder = LocalSigner.generate()
    credential = await issue(pki.signer, holder, clock, x5c=pki.x5c, issuer=None)
    for policy in (WalletPolicy(), WalletPolicy(trusted_x5c_roots=[pki.root])):
        await expect_reason(WalletReason.X5C_UNTRUSTED, credential, holder, policy, clock)
    assert WalletReason.X5C_UNTRUSTED == "x5c untrusted"


async def test_without_roots_metadata_keys_are_used(pki: Pki, clock: FakeClock) -> None:
    """No trusted roots: today's behaviour, the ``x5c`` header is ignored."""
    holder = LocalSigner.generate()
    credential = await issue(pki.signer, holder, clock, x5c=pki.x5c)
    metadata = Metadata(keys=[pki.signer.public_jwk])
    result = await verify(credential, holder, WalletPolicy(), clock, metadata=metadata)
    assert result.verified and not result.x5c_verified
    assert len(metadata.requests) == 1
    # metadata that does not hold the key: the chain does not rescue it
    stranger = Metadata(keys=[LocalSigner.generate().public_jwk])
    await expect_reason(
        SdJwtReason.SIGNATURE, credential, holder, WalletPolicy(), clock, metadata=stranger
    )
    await expect_reason(
        WalletReason.ISSUER_KEY_UNAVAILABLE, credential, holder, WalletPolicy(), clock
    )


async def test_kid_credentials_still_use_metadata_with_roots(pki: Pki, clock: FakeClock) -> None:
    holder = LocalSigner.generate()
    issuer_key = LocalSigner.generate(kid="issuer-key")
    credential = await issue(issuer_key, holder, clock, x5c=None, kid="issuer-key")
    metadata = Metadata(keys=[issuer_key.public_jwk])
    policy = WalletPolicy(trusted_x5c_roots=[pki.root])
    assert (await verify(credential, holder, policy, clock, metadata=metadata)).verified
    assert len(metadata.requests) == 1


async def test_eku_server_auth_leaf_accepted(pki: Pki, clock: FakeClock) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = pki.leaf_for(key, eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    signer = LocalSigner("ES256", key)
    holder = LocalSigner.generate()
    credential = await issue(signer, holder, clock, x5c=[b64(leaf), b64(pki.intermediate)])
    policy = WalletPolicy(trusted_x5c_roots=[pki.root])
    assert (await verify(credential, holder, policy, clock)).verified
