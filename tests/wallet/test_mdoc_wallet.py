"""The wallet and ISO mdocs: trust anchors from ``WalletPolicy``, refusals as typed errors,
the flow saved to JSON with mdoc claims, and no cbor2.

The issuer is the demo issuer (its mDL configuration under a demo IACA root) over the
in-memory transport; refusals are also checked on :func:`verify_credential` with mdocs minted
here, so each reason is produced by exactly one defect.
"""

from __future__ import annotations

import datetime
import json

import pytest
from cryptography import x509

from oid4vci import mdoc
from oid4vci.errors import CredentialVerificationError, MetadataError, MissingDependencyError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer.demo import DEMO_MDL_CONFIGURATION_ID, build_demo_issuer
from oid4vci.jose import LocalSigner
from oid4vci.mdoc import MdocReason, MdocVerificationError, encode_issuer_signed, issue_mdoc
from oid4vci.mdoc_certificates import MdocIssuerCertificates, create_iaca_and_document_signer
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import IssuanceFlow, Oid4vciClient, WalletPolicy, run_flow
from oid4vci.wallet.verify import VerifiedCredential, verify_credential
from tests.conftest import FakeClock

ISSUER = "https://issuer.example"
MDL = "org.iso.18013.5.1"


class _NoKeys:
    async def keys_for(self, iss: str) -> list[dict[str, object]]:
        raise AssertionError("an mdoc needs no JWT VC issuer metadata")


@pytest.fixture
def certificates(clock: FakeClock) -> MdocIssuerCertificates:
    return create_iaca_and_document_signer(country="UT", clock=clock)


async def _mint(
    certificates: MdocIssuerCertificates, holder: LocalSigner, clock: FakeClock, doctype: str
) -> str:
    now = datetime.datetime.fromtimestamp(clock(), tz=datetime.UTC)
    data = await issue_mdoc(
        certificates.signer,
        doctype=doctype,
        namespaces={MDL: {"family_name": "Liddell", "birth_date": datetime.date(2000, 5, 4)}},
        device_key=holder.public_jwk,
        certificate_chain=certificates.certificate_chain,
        valid_from=now,
        valid_until=now + datetime.timedelta(days=30),
        clock=clock,
    )
    return encode_issuer_signed(data)


async def _verify(
    credential: str,
    *,
    anchors: list[x509.Certificate],
    holder: LocalSigner,
    clock: FakeClock,
    doctype: str = "org.iso.18013.5.1.mDL",
) -> VerifiedCredential:
    return await verify_credential(
        credential,
        format="mso_mdoc",
        credential_issuer=ISSUER,
        expected_vct=None,
        expected_doctype=doctype,
        holder_keys=[holder],
        used_keys=set(),
        resolver=_NoKeys(),
        policy=WalletPolicy(trust_anchors=anchors),
        clock=clock,
    )


async def test_verify_credential_accepts_a_good_mdoc(
    certificates: MdocIssuerCertificates, clock: FakeClock
) -> None:
    holder = LocalSigner.generate()
    credential = await _mint(certificates, holder, clock, "org.iso.18013.5.1.mDL")
    verified = await _verify(credential, anchors=[certificates.iaca], holder=holder, clock=clock)
    assert verified.verified is True and verified.holder_key is holder
    assert verified.doctype == "org.iso.18013.5.1.mDL" and verified.vct is None
    assert verified.claims == {
        MDL: {"family_name": "Liddell", "birth_date": datetime.date(2000, 5, 4)}
    }


@pytest.mark.parametrize("defect", ["untrusted", "no anchors", "doctype", "device key", "bytes"])
async def test_verify_credential_refusals_are_typed(
    certificates: MdocIssuerCertificates, clock: FakeClock, defect: str
) -> None:
    holder = LocalSigner.generate()
    credential = await _mint(certificates, holder, clock, "org.iso.18013.5.1.mDL")
    anchors: list[x509.Certificate] = [certificates.iaca]
    doctype = "org.iso.18013.5.1.mDL"
    expected = {
        "untrusted": MdocReason.UNTRUSTED,
        "no anchors": MdocReason.UNTRUSTED,
        "doctype": MdocReason.DOCTYPE_MISMATCH,
        "device key": MdocReason.HOLDER_KEY_MISMATCH,
        "bytes": MdocReason.MALFORMED,
    }[defect]
    subject: object = credential
    if defect == "untrusted":
        anchors = [create_iaca_and_document_signer(country="UT", clock=clock).iaca]
    elif defect == "no anchors":
        anchors = []
    elif defect == "doctype":
        doctype = "org.iso.23220.photoid.1"
    elif defect == "device key":
        holder = LocalSigner.generate()
    else:
        subject = b"not a string"
    with pytest.raises(MdocVerificationError) as info:
        await _verify(subject, anchors=anchors, holder=holder, clock=clock, doctype=doctype)  # type: ignore[arg-type]
    assert info.value.reason == expected


async def test_without_cbor2_the_wallet_raises_missing_dependency(
    certificates: MdocIssuerCertificates, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    holder = LocalSigner.generate()
    credential = await _mint(certificates, holder, clock, "org.iso.18013.5.1.mDL")
    monkeypatch.setattr(mdoc, "cbor2", None)
    with pytest.raises(MissingDependencyError, match=r"oid4vci\[mdoc\]"):
        await _verify(credential, anchors=[certificates.iaca], holder=holder, clock=clock)


# -- through the flow -------------------------------------------------------------------------


async def test_untrusted_issuer_chain_fails_the_flow(clock: FakeClock) -> None:
    demo = build_demo_issuer(ISSUER, clock=clock)
    other = create_iaca_and_document_signer(country="UT", clock=clock).iaca
    transport = InMemoryTransport(routes={ISSUER: demo.handle})
    client = Oid4vciClient(transport, clock=clock, policy=WalletPolicy(trust_anchors=[other]))
    with pytest.raises(MdocVerificationError) as info:
        await client.accept_offer(demo.offer_links["pre_auth_mdoc"])
    assert info.value.reason == MdocReason.UNTRUSTED


async def test_saved_flow_holds_mdoc_claims_as_json(clock: FakeClock) -> None:
    demo = build_demo_issuer(ISSUER, clock=clock)
    assert demo.iaca is not None
    transport = InMemoryTransport(routes={ISSUER: demo.handle})
    flow = IssuanceFlow.from_offer(
        demo.offer_links["pre_auth_mdoc"],
        policy=WalletPolicy(trust_anchors=[demo.iaca]),
        count=2,
        clock=clock,
    )
    result = await run_flow(flow, transport)
    assert [c.doctype for c in result.credentials] == [DEMO_MDL_CONFIGURATION_ID] * 2
    assert result.credentials[0].claims[MDL]["birth_date"] == datetime.date(2000, 5, 4)
    saved = json.loads(flow.to_json())
    (first, _) = saved["received"]
    assert first["doctype"] == DEMO_MDL_CONFIGURATION_ID and first["format"] == "mso_mdoc"
    assert first["claims"][MDL]["birth_date"] == "2000-05-04"
    restored = IssuanceFlow.from_json(flow.to_json(), clock=clock)
    again = restored.result.credentials[0]
    assert again.doctype == DEMO_MDL_CONFIGURATION_ID
    assert again.credential == result.credentials[0].credential


async def test_an_mdoc_configuration_without_doctype_is_refused_before_the_code_is_spent(
    clock: FakeClock,
) -> None:
    demo = build_demo_issuer(ISSUER, clock=clock)
    assert demo.iaca is not None
    seen: list[str] = []

    async def handle(request: HttpRequest) -> HttpResponse:
        seen.append(request.url)
        response = await demo.handle(request)
        if "/.well-known/openid-credential-issuer" in request.url:
            body = response.json_body()
            del body["credential_configurations_supported"][DEMO_MDL_CONFIGURATION_ID]["doctype"]
            return HttpResponse.json(200, body)
        return response

    transport = InMemoryTransport(routes={ISSUER: handle})
    client = Oid4vciClient(transport, clock=clock, policy=WalletPolicy(trust_anchors=[demo.iaca]))
    with pytest.raises(MetadataError, match="doctype"):
        await client.accept_offer(demo.offer_links["pre_auth_mdoc"])
    assert not [url for url in seen if url.endswith("/token")]


async def test_a_credential_that_is_not_base64url_is_malformed(
    certificates: MdocIssuerCertificates, clock: FakeClock
) -> None:
    with pytest.raises(MdocVerificationError) as info:
        await _verify(
            "%%%not base64url%%%",
            anchors=[certificates.iaca],
            holder=LocalSigner.generate(),
            clock=clock,
        )
    assert info.value.reason == MdocReason.MALFORMED


async def test_one_mdoc_twice_in_a_batch_is_refused(clock: FakeClock) -> None:
    """An issuer answering a batch of two with the same mdoc twice: the second copy is bound
    to a key already used, so the flow fails (each holder key binds one credential)."""
    demo = build_demo_issuer(ISSUER, clock=clock)
    assert demo.iaca is not None

    async def handle(request: HttpRequest) -> HttpResponse:
        response = await demo.handle(request)
        if request.url.endswith("/credential") and response.status == 200:
            body = response.json_body()
            body["credentials"][1] = body["credentials"][0]
            return HttpResponse.json(200, body)
        return response

    transport = InMemoryTransport(routes={ISSUER: handle})
    client = Oid4vciClient(transport, clock=clock, policy=WalletPolicy(trust_anchors=[demo.iaca]))
    with pytest.raises(MdocVerificationError) as info:
        await client.accept_offer(demo.offer_links["pre_auth_mdoc"], count=2)
    assert info.value.reason == MdocReason.HOLDER_KEY_MISMATCH


async def test_mdoc_status_reference_comes_from_the_mso(clock: FakeClock) -> None:
    """The MSO's ``status`` (draft-ietf-oauth-status-list-14 §6.3.2) is the credential's
    reference. The list is signed with the issuer's JWT key, which an mdoc flow had no reason
    to load: ``FETCHING_STATUS_LIST_KEYS`` loads it from the JWT VC Issuer Metadata, then the
    list is fetched again and read, so a revoked mDL is reported."""
    demo = build_demo_issuer(ISSUER, clock=clock)
    assert demo.iaca is not None
    paths: list[str] = []

    async def handle(request: HttpRequest) -> HttpResponse:
        paths.append(request.url.removeprefix(ISSUER))
        return await demo.handle(request)

    transport = InMemoryTransport(routes={ISSUER: handle})
    policy = WalletPolicy(trust_anchors=[demo.iaca])
    result = await Oid4vciClient(transport, clock=clock, policy=policy).accept_offer(
        demo.offer_links["pre_auth_mdoc"]
    )
    (mdl,) = result.credentials
    assert mdl.status_reference is not None
    assert mdl.status_reference.uri.startswith(ISSUER + "/status-lists/")
    assert mdl.status == "valid"
    lists = [p for p in paths if p.startswith("/status-lists/")]
    assert len(lists) == 2 and "/.well-known/jwt-vc-issuer" in paths  # keys, then again
    # the issuer revokes every credential of the subject while the wallet checks: reported
    revoke = True

    async def revoking(request: HttpRequest) -> HttpResponse:
        nonlocal revoke
        if revoke and "/status-lists/" in request.url:
            revoke = False
            await demo.issuer.set_credential_status("alice", "invalid")
        return await demo.handle(request)

    transport = InMemoryTransport(routes={ISSUER: revoking})
    strict = WalletPolicy(trust_anchors=[demo.iaca], status="require")
    result = await Oid4vciClient(transport, clock=clock, policy=strict).accept_offer(
        demo.offer_links["pre_auth_mdoc"]
    )
    assert not revoke and result.credentials[0].status == "invalid"


async def test_mdoc_status_without_issuer_keys(clock: FakeClock) -> None:
    """An issuer whose JWT VC Issuer Metadata cannot be had: under ``"check"`` the mDL's
    status stays unknown (``None``), under ``"require"`` the flow fails."""
    demo = build_demo_issuer(ISSUER, clock=clock)
    assert demo.iaca is not None

    async def handle(request: HttpRequest) -> HttpResponse:
        if "/.well-known/jwt-vc-issuer" in request.url:
            return HttpResponse.json(404, {"error": "not_found"})
        return await demo.handle(request)

    transport = InMemoryTransport(routes={ISSUER: handle})
    client = Oid4vciClient(transport, clock=clock, policy=WalletPolicy(trust_anchors=[demo.iaca]))
    result = await client.accept_offer(demo.offer_links["pre_auth_mdoc"])
    (mdl,) = result.credentials
    assert mdl.status_reference is not None and mdl.status is None
    strict = WalletPolicy(trust_anchors=[demo.iaca], status="require")
    with pytest.raises(CredentialVerificationError):
        await Oid4vciClient(transport, clock=clock, policy=strict).accept_offer(
            demo.offer_links["pre_auth_mdoc"]
        )
