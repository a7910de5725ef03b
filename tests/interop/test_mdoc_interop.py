"""ISO mdoc interop with an independent implementation, ``@animo-id/mdoc`` (npm, pinned in
``package.json``), driven by ``mdoc.mjs`` (crypto and X.509 callbacks on Node's webcrypto):

* mdocs minted here (:func:`oid4vci.mdoc.issue_mdoc`, and by the demo issuer over OID4VCI)
  pass its issuer-signature, certificate-chain, validity and data-integrity checks
  (``Verifier.verifyIssuerSignature`` + ``verifyData``, which also compares
  ``issuing_country`` with the certificate), and it reads the same elements back;
* mdocs it mints (``Document.sign``) verify here with :func:`oid4vci.mdoc.verify_mdoc`;
* it refuses ours when tampered with or under another root (so its checks do run).

Without node or the package these tests skip, except under ``CI``, where they fail.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from oid4vci.issuer.demo import DEMO_MDL_CONFIGURATION_ID, build_demo_issuer
from oid4vci.jose import LocalSigner, b64url_decode, b64url_encode, jwk_thumbprint
from oid4vci.mdoc import (
    MdocReason,
    MdocVerificationError,
    encode_issuer_signed,
    issue_mdoc,
    verify_mdoc,
)
from oid4vci.mdoc_certificates import MdocIssuerCertificates, create_iaca_and_document_signer
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from tests.interop._node import run_node_json, skip_reason

pytestmark = pytest.mark.interop

MDL = "org.iso.18013.5.1"
DOCTYPE = "org.iso.18013.5.1.mDL"


@pytest.fixture(autouse=True)
def _peer() -> None:
    reason = skip_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the mdoc interop peer is missing under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def certs() -> MdocIssuerCertificates:
    return create_iaca_and_document_signer(country="UT")


def _pem(certificate: Any) -> str:
    return str(certificate.public_bytes(serialization.Encoding.PEM).decode())


def _their_verify(credential: str, anchor_pem: str) -> dict[str, Any]:
    return run_node_json(
        "mdoc.mjs",
        {"op": "verify", "credential": credential, "trusted": [anchor_pem], "doctype": DOCTYPE},
    )


async def _ours(certs: MdocIssuerCertificates, holder: LocalSigner) -> str:
    now = datetime.datetime.now(datetime.UTC)
    data = await issue_mdoc(
        certs.signer,
        doctype=DOCTYPE,
        namespaces={
            MDL: {
                "family_name": "Liddell",
                "birth_date": datetime.date(2000, 5, 4),
                "issuing_country": "UT",
                "portrait": b"\xff\xd8\xff",
                "driving_privileges": [{"vehicle_category_code": "B"}],
            }
        },
        device_key=holder.public_jwk,
        certificate_chain=certs.certificate_chain,
        valid_from=now,
        valid_until=now + datetime.timedelta(days=30),
    )
    return encode_issuer_signed(data)


async def test_they_verify_ours(certs: MdocIssuerCertificates) -> None:
    holder = LocalSigner.generate()
    out = _their_verify(await _ours(certs, holder), _pem(certs.iaca))
    assert out["ok"] is True, out
    assert out["doctype"] == DOCTYPE and out["digestAlgorithm"] == "SHA-256"
    assert out["claims"] == {
        MDL: {
            "family_name": "Liddell",
            "birth_date": "2000-05-04",  # full-date (tag 1004) read as a date by them
            "issuing_country": "UT",
            "portrait": b64url_encode(b"\xff\xd8\xff"),
            "driving_privileges": [{"vehicle_category_code": "B"}],
        }
    }
    assert out["deviceKeyX"] == holder.public_jwk["x"]


async def test_they_refuse_ours_tampered_or_untrusted(certs: MdocIssuerCertificates) -> None:
    credential = await _ours(certs, LocalSigner.generate())
    other = create_iaca_and_document_signer(country="UT").iaca
    untrusted = _their_verify(credential, _pem(other))
    assert untrusted["ok"] is False and any("certificate" in f for f in untrusted["failed"])
    data = bytearray(b64url_decode(credential))
    at = data.index(b"Liddell")
    data[at] = ord("M")  # an element value changed after signing
    tampered = _their_verify(b64url_encode(bytes(data)), _pem(certs.iaca))
    assert tampered["ok"] is False and any("digest" in f for f in tampered["failed"])


async def test_they_verify_what_our_issuer_hands_our_wallet() -> None:
    demo = build_demo_issuer("https://issuer.example")
    assert demo.iaca is not None
    transport = InMemoryTransport(routes={"https://issuer.example": demo.handle})
    client = Oid4vciClient(transport, policy=WalletPolicy(trust_anchors=[demo.iaca]))
    result = await client.accept_offer(demo.offer_links["pre_auth_mdoc"], count=2)
    for credential in result.credentials:
        out = _their_verify(credential.credential, demo.trust_anchors_pem)
        assert out["ok"] is True, out
        assert out["doctype"] == DEMO_MDL_CONFIGURATION_ID
        assert out["claims"][MDL]["given_name"] == "Alice"
        assert credential.holder_key is not None
        assert out["deviceKeyX"] == credential.holder_key.public_jwk["x"]


async def test_we_verify_theirs(certs: MdocIssuerCertificates) -> None:
    holder = LocalSigner.generate()
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    out = run_node_json(
        "mdoc.mjs",
        {
            "op": "issue",
            "doctype": DOCTYPE,
            "namespaces": {
                MDL: {"family_name": "Jones", "birth_date": "2007-03-25", "issuing_country": "UT"}
            },
            "dates": [[MDL, "birth_date"]],
            "signerJwk": certs.signer.private_jwk(),
            "certificatePem": _pem(certs.document_signer),
            "deviceJwk": holder.public_jwk,
            "validFrom": now.isoformat(),
            "validUntil": (now + datetime.timedelta(days=30)).isoformat(),
        },
    )
    assert "credential" in out, out
    verified = verify_mdoc(
        out["credential"],
        trust_anchors=[certs.iaca],
        expected_doctype=DOCTYPE,
        holder_keys=[holder.public_jwk],
    )
    assert verified.claims == {
        MDL: {
            "family_name": "Jones",
            "birth_date": datetime.date(2007, 3, 25),
            "issuing_country": "UT",
        }
    }
    assert jwk_thumbprint(verified.device_key) == jwk_thumbprint(holder.public_jwk)
    assert verified.certificate_chain[0] == certs.document_signer
    with pytest.raises(MdocVerificationError) as info:
        verify_mdoc(
            out["credential"],
            trust_anchors=[create_iaca_and_document_signer(country="UT").iaca],
        )
    assert info.value.reason == MdocReason.UNTRUSTED
