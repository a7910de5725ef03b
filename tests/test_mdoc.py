"""ISO mdoc (:mod:`oid4vci.mdoc`, :mod:`oid4vci.mdoc_certificates`): issue, verify, refuse.

Documents are issued here with demo IACA / document signer certificates; refusals that need
a document no honest issuer would make (a duplicated item, a private device key, an MSO signed
outside the certificate's validity) are built by re-signing a decoded document with the
document signer key (:func:`resign`).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import attrs
import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oid4vci import mdoc
from oid4vci.errors import (
    CredentialVerificationError,
    JoseError,
    Oid4vciError,
    UsageError,
    ValidationError,
)
from oid4vci.jose import LocalSigner, b64url_encode, jwk_thumbprint
from oid4vci.mdoc import (
    MDL_DS_EKU,
    MdocReason,
    MdocVerificationError,
    MissingDependencyError,
    VerifiedMdoc,
    cose_key_from_jwk,
    decode_issuer_signed,
    encode_issuer_signed,
    issue_mdoc,
    jwk_from_cose_key,
    verify_mdoc,
)
from oid4vci.mdoc_certificates import MdocIssuerCertificates, create_iaca_and_document_signer
from oid4vci.x509 import verify_certificate_chain
from tests.conftest import FakeClock
from tests.x509_support import make_pki

MDL = "org.iso.18013.5.1.mDL"
NS = "org.iso.18013.5.1"
AAMVA = "org.iso.18013.5.1.aamva"
DAY = datetime.timedelta(days=1)
_DER = serialization.Encoding.DER
START = FakeClock().now
NOW = datetime.datetime.fromtimestamp(START, tz=datetime.UTC)
CLAIMS: dict[str, dict[str, Any]] = {
    NS: {
        "family_name": "Doe",
        "given_name": "Jane",
        "birth_date": datetime.date(1990, 1, 2),
        "issue_date": datetime.date(2025, 6, 1),
        "expiry_date": datetime.date(2030, 6, 1),
        "issuing_country": "UT",
        "issuing_authority": "Utopia DMV",
        "document_number": "123456789",
        "portrait": b"\xff\xd8\xff\xe0 not really a jpeg",
        "driving_privileges": [
            {
                "vehicle_category_code": "B",
                "issue_date": datetime.date(2010, 3, 4),
                "codes": [{"code": "01"}],
            }
        ],
        "un_distinguishing_sign": "UTO",
        "age_over_18": True,
        "sex": 2,
        "portrait_capture_date": NOW - 10 * DAY,
    },
    AAMVA: {"organ_donor": 1},
}


@pytest.fixture(scope="module")
def certs() -> MdocIssuerCertificates:
    """One IACA / document signer pair for the module (key generation is the slow part)."""
    return create_iaca_and_document_signer(clock=FakeClock())


@pytest.fixture(scope="module")
def holder() -> LocalSigner:
    return LocalSigner.generate()


def issue(
    certs: MdocIssuerCertificates, holder: LocalSigner | None = None, **options: Any
) -> bytes:
    """An mdoc issued synchronously (module fixtures cannot be async)."""
    options.setdefault("doctype", MDL)
    options.setdefault("namespaces", CLAIMS)
    options.setdefault("device_key", (holder or LocalSigner.generate()).public_jwk)
    options.setdefault("certificate_chain", certs.certificate_chain)
    options.setdefault("valid_from", NOW)
    options.setdefault("valid_until", NOW + 30 * DAY)
    options.setdefault("clock", FakeClock())
    signer = options.pop("signer", certs.signer)

    async def run() -> bytes:
        return await issue_mdoc(signer, **options)

    return anyio.run(run)


@pytest.fixture(scope="module")
def document(certs: MdocIssuerCertificates, holder: LocalSigner) -> bytes:
    return issue(certs, holder)


def verify(data: bytes | str, certs: MdocIssuerCertificates, **options: Any) -> VerifiedMdoc:
    options.setdefault("trust_anchors", [certs.iaca])
    options.setdefault("clock", FakeClock())
    return verify_mdoc(data, **options)


def refused(reason: str, data: Any, certs: MdocIssuerCertificates, **options: Any) -> None:
    with pytest.raises(MdocVerificationError) as info:
        verify(data, certs, **options)
    assert info.value.reason == reason, str(info.value)


def decoded(data: bytes) -> dict[str, Any]:
    value: dict[str, Any] = cbor2.loads(data)
    return value


def mso_of(document: Mapping[str, Any]) -> dict[str, Any]:
    payload = cbor2.loads(document["issuerAuth"][2])
    value: dict[str, Any] = cbor2.loads(payload.value)
    return value


def sign_raw(signer: LocalSigner, data: bytes) -> bytes:
    return anyio.run(signer.sign, data)


def resign(
    document: dict[str, Any],
    signer: LocalSigner,
    *,
    mso: Mapping[str, Any] | None = None,
    protected: Mapping[int, Any] | None = None,
    unprotected: Mapping[int, Any] | None = None,
) -> bytes:
    """``document`` with a freshly signed issuerAuth (optionally a new MSO or headers)."""
    old_protected, old_unprotected, payload, _ = document["issuerAuth"]
    if mso is not None:
        payload = cbor2.dumps(cbor2.CBORTag(24, cbor2.dumps(dict(mso))))
    protected_raw = cbor2.dumps(dict(protected)) if protected is not None else old_protected
    to_sign = cbor2.dumps(["Signature1", protected_raw, b"", payload])
    issuer_auth = [
        protected_raw,
        dict(unprotected) if unprotected is not None else old_unprotected,
        payload,
        sign_raw(signer, to_sign),
    ]
    return bytes(cbor2.dumps({**document, "issuerAuth": issuer_auth}))


def item_of(wrapped: cbor2.CBORTag) -> dict[str, Any]:
    value: dict[str, Any] = cbor2.loads(wrapped.value)
    return value


# --------------------------------------------------------------------------------------------
# round trips


def test_round_trip_es256(
    certs: MdocIssuerCertificates, holder: LocalSigner, document: bytes
) -> None:
    verified = verify(document, certs, expected_doctype=MDL, holder_keys=[holder.public_jwk])
    assert verified.doctype == MDL
    assert verified.claims == CLAIMS
    # dates come back as dates, the datetime as an aware datetime (whole seconds)
    assert type(verified.claims[NS]["birth_date"]) is datetime.date
    assert verified.claims[NS]["portrait_capture_date"] == NOW - 10 * DAY
    assert jwk_thumbprint(verified.device_key) == jwk_thumbprint(holder.public_jwk)
    assert verified.validity.signed == NOW
    assert verified.validity.valid_from == NOW
    assert verified.validity.valid_until == NOW + 30 * DAY
    assert verified.validity.expected_update is None
    assert verified.certificate_chain == (certs.document_signer,)
    assert verified.digest_algorithm == "SHA-256"
    assert verified.status is None
    assert verified.issuer_signed == document
    assert "Doe" not in repr(verified)


def test_value_types_round_trip(certs: MdocIssuerCertificates) -> None:
    values = {
        "largest": 2**64 - 1,
        "smallest": -(2**64),
        "float": 1.5,
        "none": None,
        "map": {1: "int key", "text": [b"bytes", False]},
        "tuple": (1, 2),
        "nested": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]],
    }
    verified = verify(issue(certs, namespaces={"org.example": values}), certs)
    assert verified.claims == {"org.example": {**values, "tuple": [1, 2]}}


def test_trust_anchor_forms(certs: MdocIssuerCertificates, document: bytes) -> None:
    pem = certs.iaca.public_bytes(serialization.Encoding.PEM)
    for anchor in (pem, pem.decode(), certs.iaca.public_bytes(_DER)):
        assert verify(document, certs, trust_anchors=[anchor]).doctype == MDL


def test_credential_string(certs: MdocIssuerCertificates, document: bytes) -> None:
    """OID4VCI 1.0 Appendix A.2.4: base64url without padding; padding accepted on input."""
    text = encode_issuer_signed(document)
    assert "=" not in text and "+" not in text and "/" not in text
    assert decode_issuer_signed(text) == document
    assert verify(text, certs).claims == CLAIMS
    padded = text + "=" * (-len(text) % 4)
    assert verify(padded, certs).claims == CLAIMS
    for bad in ("not base64!", "a" * 5, "AAAA===", "AA=A"):
        with pytest.raises(MdocVerificationError) as info:
            decode_issuer_signed(bad)
        assert info.value.reason == MdocReason.MALFORMED


@pytest.mark.parametrize("alg", ["EdDSA", "ES384", "ES512"])
def test_round_trip_other_algorithms(alg: str) -> None:
    certs = create_iaca_and_document_signer(alg=alg, clock=FakeClock())
    holder = LocalSigner.generate(alg)
    data = issue(certs, holder, digest_algorithm="SHA-512" if alg == "ES512" else "SHA-256")
    verified = verify(data, certs, holder_keys=[holder.public_jwk])
    assert verified.claims == CLAIMS
    assert verified.device_key == {k: v for k, v in holder.public_jwk.items() if k != "kid"}
    protected = cbor2.loads(decoded(data)["issuerAuth"][0])
    assert protected == {1: {"EdDSA": -8, "ES384": -35, "ES512": -36}[alg]}


def test_structure(certs: MdocIssuerCertificates, holder: LocalSigner, document: bytes) -> None:
    """The encoding ISO/IEC 18013-5:2021 §8.3.2.1.2.2 and §9.1.2.4 describe, checked with
    cbor2 and cryptography directly (not through the module)."""
    top = decoded(document)
    assert set(top) == {"nameSpaces", "issuerAuth"}
    protected, unprotected, payload, signature = top["issuerAuth"]
    assert cbor2.loads(protected) == {1: -7}
    assert unprotected == {33: certs.document_signer.public_bytes(_DER)}
    ids: list[int] = []
    for namespace, items in top["nameSpaces"].items():
        assert all(isinstance(w, cbor2.CBORTag) and w.tag == 24 for w in items)
        for wrapped in items:
            item = item_of(wrapped)
            assert set(item) == {"digestID", "random", "elementIdentifier", "elementValue"}
            assert len(item["random"]) >= 16
            assert item["elementValue"] == CLAIMS[namespace][item["elementIdentifier"]]
            ids.append(item["digestID"])
    assert sorted(ids) == list(range(len(ids)))  # a permutation, unique in the document
    mso = mso_of(top)
    assert mso["version"] == "1.0"
    assert mso["digestAlgorithm"] == "SHA-256"
    assert mso["docType"] == MDL
    assert set(mso["valueDigests"]) == {NS, AAMVA}
    wrapped = top["nameSpaces"][NS][0]
    digest = hashlib.sha256(cbor2.dumps(wrapped)).digest()
    assert mso["valueDigests"][NS][item_of(wrapped)["digestID"]] == digest
    key = mso["deviceKeyInfo"]["deviceKey"]
    assert key[1] == 2 and key[-1] == 1 and len(key[-2]) == len(key[-3]) == 32
    assert mso["validityInfo"]["validUntil"] == NOW + 30 * DAY
    # dates as tags: full-date 1004, tdate 0 (UTC, 'Z', no fraction)
    assert b"\xd9\x03\xecj1990-01-02" in document
    assert b"\xc0t" + NOW.strftime("%Y-%m-%dT%H:%M:%SZ").encode() in document
    # the signature: r || s over Sig_structure (RFC 9052 §4.4), verified with cryptography
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    public_key = certs.document_signer.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)
    public_key.verify(der, to_sign, ec.ECDSA(hashes.SHA256()))


def test_digest_ids_are_not_in_element_order(certs: MdocIssuerCertificates) -> None:
    orders = set()
    for _ in range(3):
        items = decoded(issue(certs))["nameSpaces"][NS]
        orders.add(tuple(item_of(w)["digestID"] for w in items))
    assert orders != {tuple(range(len(CLAIMS[NS])))}
    assert len(orders) > 1


def test_chain_with_several_certificates_and_status(certs: MdocIssuerCertificates) -> None:
    """``x5chain`` as an array when there are several certificates; ``status`` passes through."""
    status = {"status_list": {"idx": 412, "uri": "https://example.com/statuslists/1"}}
    chain = (certs.document_signer, certs.iaca)
    data = issue(certs, certificate_chain=chain, status=status)
    assert decoded(data)["issuerAuth"][1][33] == [c.public_bytes(_DER) for c in chain]
    verified = verify(data, certs)
    assert verified.status == status
    assert verified.certificate_chain == chain


def test_annex_d_item_digest() -> None:
    """spec/mdoc.md §10 (ISO/IEC 18013-5:2021 Annex D, item 0): the digest covers the whole
    tag-24 encoding, not the inner item."""
    item = bytes.fromhex(
        "d8185863a4686469676573744944006672616e646f6d58208798645b20ea200e19ffabac92624bee6a"
        "ec63aceedecfb1b80077d22bfc20e971656c656d656e744964656e7469666965726b66616d696c795f"
        "6e616d656c656c656d656e7456616c756563446f65"
    )
    value, embedded = mdoc._decode(item, mdoc.MAX_DEPTH, "item")
    assert isinstance(value, cbor2.CBORTag)
    assert embedded[value.value] == item
    assert cbor2.loads(value.value)["elementValue"] == "Doe"
    assert hashlib.sha256(embedded[value.value]).hexdigest() == (
        "75167333b47b6c2bfb86eccc1f438cf57af055371ac55e1e359e20f254adcebf"
    )


def test_digest_over_bytes_as_received(certs: MdocIssuerCertificates) -> None:
    """An item whose tag-24 byte string uses a longer length header than needed: its digest
    is taken over those bytes; a re-encoding would give a different one (spec/mdoc.md §10.2)."""
    top = decoded(issue(certs))
    wrapped = top["nameSpaces"][NS][0]
    content = wrapped.value
    assert len(content) < 256
    odd = b"\xd8\x18\x59" + len(content).to_bytes(2, "big") + content  # 2-byte length
    mso = mso_of(top)
    mso["valueDigests"][NS][item_of(wrapped)["digestID"]] = hashlib.sha256(odd).digest()
    placeholder = cbor2.CBORTag(24, b"\x00" * len(content))
    top["nameSpaces"][NS][0] = placeholder
    data = resign(top, certs.signer, mso=mso)
    data = data.replace(cbor2.dumps(placeholder), odd)
    assert verify(data, certs).claims[NS] == CLAIMS[NS]


def test_indefinite_length_items(certs: MdocIssuerCertificates) -> None:
    """Indefinite-length maps and byte strings (RFC 8949 §3.2) are read like definite ones; a
    chunked tag-24 item is hashed as received."""
    top = decoded(issue(certs))
    wrapped = top["nameSpaces"][NS][0]
    content = wrapped.value
    chunked = b"\xd8\x18\x5f" + cbor2.dumps(content[:10]) + cbor2.dumps(content[10:]) + b"\xff"
    mso = mso_of(top)
    mso["valueDigests"][NS][item_of(wrapped)["digestID"]] = hashlib.sha256(chunked).digest()
    placeholder = cbor2.CBORTag(24, b"\x00" * len(content))
    top["nameSpaces"][NS][0] = placeholder
    data = resign(top, certs.signer, mso=mso).replace(cbor2.dumps(placeholder), chunked)
    assert data[0] == 0xA2  # a map of two: make it indefinite-length
    indefinite = b"\xbf" + data[1:] + b"\xff"
    assert verify(indefinite, certs).claims == CLAIMS
    # the same item twice, encoded two ways, is refused rather than guessed
    twice = decoded(data)
    twice["nameSpaces"][AAMVA].append(cbor2.CBORTag(24, content))
    definite = cbor2.dumps(cbor2.CBORTag(24, content))
    refused(MdocReason.MALFORMED, cbor2.dumps(twice).replace(definite, chunked, 1), certs)


# --------------------------------------------------------------------------------------------
# refusals


def test_tampered_element_value(certs: MdocIssuerCertificates, document: bytes) -> None:
    top = decoded(document)
    wrapped = top["nameSpaces"][NS][0]
    item = item_of(wrapped)
    item["elementValue"] = "Mallory"
    top["nameSpaces"][NS][0] = cbor2.CBORTag(24, cbor2.dumps(item))
    refused(MdocReason.DIGEST_MISMATCH, cbor2.dumps(top), certs)
    # an item moved to a namespace whose digests do not cover it
    top = decoded(document)
    top["nameSpaces"][AAMVA].append(top["nameSpaces"][NS].pop())
    refused(MdocReason.DIGEST_MISMATCH, cbor2.dumps(top), certs)
    # a namespace the MSO does not know
    top = decoded(document)
    top["nameSpaces"]["org.example"] = top["nameSpaces"].pop(AAMVA)
    refused(MdocReason.DIGEST_MISMATCH, cbor2.dumps(top), certs)


def test_tampered_mso(certs: MdocIssuerCertificates, document: bytes) -> None:
    top = decoded(document)
    mso = mso_of(top)
    mso["validityInfo"]["validUntil"] = NOW + 3650 * DAY
    top["issuerAuth"][2] = cbor2.dumps(cbor2.CBORTag(24, cbor2.dumps(mso)))
    refused(MdocReason.SIGNATURE, cbor2.dumps(top), certs)
    top = decoded(document)
    top["issuerAuth"][3] = bytes(64)
    refused(MdocReason.SIGNATURE, cbor2.dumps(top), certs)


def test_wrong_signature_key(certs: MdocIssuerCertificates, document: bytes) -> None:
    refused(MdocReason.SIGNATURE, resign(decoded(document), LocalSigner.generate()), certs)
    # the issuer side refuses a signer that does not hold the certificate's key
    with pytest.raises(UsageError):
        issue(certs, signer=LocalSigner.generate())


def test_untrusted_chains(certs: MdocIssuerCertificates, document: bytes) -> None:
    other = create_iaca_and_document_signer(clock=FakeClock())
    refused(MdocReason.UNTRUSTED, document, certs, trust_anchors=[other.iaca])
    refused(MdocReason.UNTRUSTED, document, certs, trust_anchors=[])
    # a document signer certificate expired or not yet valid at verification time
    late = FakeClock(START + 400 * 86_400)
    refused(MdocReason.UNTRUSTED, document, certs, clock=late)
    # a certificate without the mdlDS purpose (a web PKI leaf under a trusted root)
    pki = make_pki(eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    data = issue(certs, signer=pki.signer, certificate_chain=[pki.leaf, pki.intermediate])
    refused(MdocReason.UNTRUSTED, data, certs, trust_anchors=[pki.root])


def test_x5chain_problems(certs: MdocIssuerCertificates, document: bytes) -> None:
    top = decoded(document)
    unprotected: dict[int, Any]
    for unprotected in ({}, {33: []}, {33: "text"}, {33: b"not DER"}, {33: [b"\x30\x00"]}):
        top["issuerAuth"][1] = unprotected
        refused(MdocReason.CERTIFICATE, cbor2.dumps(top), certs)
    top["issuerAuth"][1] = {33: [certs.document_signer.public_bytes(_DER)] * 11}
    refused(MdocReason.CERTIFICATE, cbor2.dumps(top), certs)
    # x5chain in the protected header is fine (RFC 9360 allows both)
    ds = certs.document_signer.public_bytes(_DER)
    data = resign(decoded(document), certs.signer, protected={1: -7, 33: ds}, unprotected={})
    assert verify(data, certs).claims == CLAIMS


def test_validity_window(certs: MdocIssuerCertificates, document: bytes) -> None:
    refused(MdocReason.EXPIRED, document, certs, clock=FakeClock(START + 31 * 86_400))
    # within the leeway
    assert verify(document, certs, clock=FakeClock(START + 30 * 86_400 + 30))
    refused(
        MdocReason.EXPIRED, document, certs, clock=FakeClock(START + 30 * 86_400 + 30), leeway=0
    )
    later = issue(certs, valid_from=NOW + 10 * DAY, valid_until=NOW + 40 * DAY)
    refused(MdocReason.NOT_YET_VALID, later, certs)
    assert verify(later, certs, clock=FakeClock(START + 10 * 86_400))


def test_signed_outside_certificate_validity(certs: MdocIssuerCertificates) -> None:
    data = issue(certs, signed=NOW - 400 * DAY)
    refused(MdocReason.SIGNED_OUTSIDE_CERTIFICATE, data, certs)


def test_wrong_doctype(certs: MdocIssuerCertificates, document: bytes) -> None:
    refused(MdocReason.DOCTYPE_MISMATCH, document, certs, expected_doctype="eu.europa.ec.pid")


def test_duplicate_digest_id(certs: MdocIssuerCertificates, document: bytes) -> None:
    top = decoded(document)
    top["nameSpaces"][NS].append(top["nameSpaces"][NS][0])
    refused(MdocReason.DUPLICATE_DIGEST_ID, cbor2.dumps(top), certs)


def test_device_key_binding(
    certs: MdocIssuerCertificates, holder: LocalSigner, document: bytes
) -> None:
    other = LocalSigner.generate()
    refused(MdocReason.HOLDER_KEY_MISMATCH, document, certs, holder_keys=[other.public_jwk])
    refused(MdocReason.HOLDER_KEY_MISMATCH, document, certs, holder_keys=[])
    refused(MdocReason.HOLDER_KEY_MISMATCH, document, certs, holder_keys=[{"kty": "junk"}])
    keys = [other.public_jwk, holder.public_jwk]
    assert verify(document, certs, holder_keys=keys)
    with pytest.raises(TypeError):
        verify(document, certs, holder_keys=holder.public_jwk)


@pytest.mark.parametrize(
    "device_key",
    [
        {1: 2, -1: 1, -2: b"\x01" * 32, -3: b"\x02" * 32},  # not on the curve
        {1: 2, -1: 1, -2: b"\x01" * 31, -3: b"\x02" * 32},
        {1: 2, -1: 9, -2: b"\x01" * 32, -3: b"\x02" * 32},
        {1: 3, -1: 1},
        "not a map",
    ],
)
def test_bad_device_key(certs: MdocIssuerCertificates, document: bytes, device_key: Any) -> None:
    top = decoded(document)
    mso = mso_of(top)
    mso["deviceKeyInfo"]["deviceKey"] = device_key
    refused(MdocReason.DEVICE_KEY, resign(top, certs.signer, mso=mso), certs)


def test_private_device_key_refused(certs: MdocIssuerCertificates, document: bytes) -> None:
    top = decoded(document)
    mso = mso_of(top)
    mso["deviceKeyInfo"]["deviceKey"][-4] = b"\x01" * 32
    refused(MdocReason.DEVICE_KEY, resign(top, certs.signer, mso=mso), certs)


def test_alg_not_allowed(certs: MdocIssuerCertificates, document: bytes) -> None:
    refused(MdocReason.ALG, document, certs, algorithms=["ES384"])
    for alg in (-257, -9, "ES256", None, True):
        data = resign(decoded(document), certs.signer, protected={1: alg})
        refused(MdocReason.ALG, data, certs)
    # alg must be protected, and only once; no critical parameters
    top = decoded(document)
    refused(MdocReason.MALFORMED, resign(top, certs.signer, protected={}), certs)
    top["issuerAuth"][1] = {**top["issuerAuth"][1], 1: -7}
    refused(MdocReason.MALFORMED, cbor2.dumps(top), certs)
    data = resign(decoded(document), certs.signer, protected={1: -7, 2: [99]})
    refused(MdocReason.MALFORMED, data, certs)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda m: m.update(version="2.0"), MdocReason.VERSION),
        (lambda m: m.update(version=1), MdocReason.MALFORMED),
        (lambda m: m.update(digestAlgorithm="sha-256"), MdocReason.DIGEST_ALG),
        (lambda m: m.pop("docType"), MdocReason.MALFORMED),
        (lambda m: m.pop("validityInfo"), MdocReason.MALFORMED),
        (lambda m: m["validityInfo"].update(validFrom="2025-01-01"), MdocReason.MALFORMED),
        (lambda m: m["validityInfo"].update(validUntil=NOW - DAY), MdocReason.MALFORMED),
        (lambda m: m["valueDigests"][NS].update({0: b"short"}), MdocReason.MALFORMED),
        (lambda m: m["valueDigests"].update({NS: [1, 2]}), MdocReason.MALFORMED),
        (lambda m: m.update(status="revoked"), MdocReason.MALFORMED),
        (lambda m: m.pop("deviceKeyInfo"), MdocReason.MALFORMED),
    ],
)
def test_malformed_mso(
    certs: MdocIssuerCertificates,
    document: bytes,
    change: Callable[[dict[str, Any]], Any],
    reason: str,
) -> None:
    top = decoded(document)
    mso = mso_of(top)
    change(mso)
    refused(reason, resign(top, certs.signer, mso=mso), certs)


def test_malformed_items(certs: MdocIssuerCertificates, document: bytes) -> None:
    def with_item(change: Callable[[dict[str, Any]], Any]) -> bytes:
        top = decoded(document)
        item = item_of(top["nameSpaces"][NS][0])
        change(item)
        top["nameSpaces"][NS][0] = cbor2.CBORTag(24, cbor2.dumps(item))
        return bytes(cbor2.dumps(top))

    refused(MdocReason.MALFORMED, with_item(lambda i: i.update(random=b"short")), certs)
    refused(MdocReason.MALFORMED, with_item(lambda i: i.update(digestID=-1)), certs)
    refused(MdocReason.MALFORMED, with_item(lambda i: i.pop("elementValue")), certs)
    refused(MdocReason.MALFORMED, with_item(lambda i: i.update(elementIdentifier=7)), certs)
    top = decoded(document)
    top["nameSpaces"][NS][0] = item_of(top["nameSpaces"][NS][0])  # not wrapped in tag 24
    refused(MdocReason.MALFORMED, cbor2.dumps(top), certs)
    namespaces: Any
    for namespaces in ([], {NS: []}, {NS: "x"}):
        top["nameSpaces"] = namespaces
        refused(MdocReason.MALFORMED, cbor2.dumps(top), certs)
    # no nameSpaces at all: valid, no claims
    del top["nameSpaces"]
    assert verify(cbor2.dumps(top), certs).claims == {}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xa1",
        b"\x01\x02",  # trailing bytes
        b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff",  # a huge byte string length
        b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff",  # a huge array
        b"\xbb\xff\xff\xff\xff\xff\xff\xff\xff",  # a huge map
        b"\x1c",  # reserved additional information
        b"\xff",  # a stray break
        b"\x5f\x61a\xff",  # an indefinite byte string with a text chunk
        b"\x9f\x01",  # an unterminated indefinite array
        b"\xf7",  # undefined
        b"\xf8\x20",  # a simple value
        b"\xa2\x01\x01\x01\x02",  # duplicate map key
        b"\xa2\x01\x01\x18\x01\x02",  # duplicate map key, longer encoding
        b"\xa1\x81\x01\x02",  # an array as a map key
        b"\xc0\x01",  # tdate around an integer
        b"\xc0\x6a2025-01-01",  # tdate without time
        b"\xd9\x03\xec\x6a2025-02-30",  # no such full-date
        b"\x63\xff\xfe\xfd",  # text that is not UTF-8
        b"\x80",
        b"\xa1\x6aissuerAuth\x80",
    ],
)
def test_malformed_cbor(certs: MdocIssuerCertificates, data: bytes) -> None:
    refused(MdocReason.MALFORMED, data, certs)


def test_truncated(certs: MdocIssuerCertificates, document: bytes) -> None:
    for end in (1, 10, len(document) // 2, len(document) - 1):
        refused(MdocReason.MALFORMED, document[:end], certs)


def test_deeply_nested(certs: MdocIssuerCertificates) -> None:
    refused(MdocReason.TOO_DEEP, b"\x81" * 100_000 + b"\x01", certs)
    refused(MdocReason.TOO_DEEP, b"\x9f" * 100_000, certs)
    refused(MdocReason.TOO_DEEP, b"\xa1\x01" * 50 + b"\x01", certs)
    refused(MdocReason.TOO_DEEP, b"\x81" * 5 + b"\x01", certs, max_depth=3)


def test_deeply_nested_element_value(certs: MdocIssuerCertificates, document: bytes) -> None:
    top = decoded(document)
    item = item_of(top["nameSpaces"][NS][0])
    value: Any = 1
    for _ in range(40):
        value = [value]
    item["elementValue"] = value
    top["nameSpaces"][NS][0] = cbor2.CBORTag(24, cbor2.dumps(item))
    refused(MdocReason.TOO_DEEP, cbor2.dumps(top), certs)


def test_oversized(certs: MdocIssuerCertificates, document: bytes) -> None:
    refused(MdocReason.TOO_LARGE, document, certs, max_size=len(document) - 1)
    refused(MdocReason.TOO_LARGE, encode_issuer_signed(document), certs, max_size=100)
    refused(MdocReason.TOO_LARGE, b"\x40" + bytes(mdoc.MAX_MDOC_SIZE), certs)
    assert verify(document, certs, max_size=len(document))


@pytest.mark.parametrize("tag", [1, 2, 18, 25, 28, 29, 35, 100, 55799])
def test_unknown_tags(certs: MdocIssuerCertificates, document: bytes, tag: int) -> None:
    top = decoded(document)
    refused(MdocReason.UNKNOWN_TAG, cbor2.dumps(cbor2.CBORTag(tag, top)), certs)
    item = item_of(top["nameSpaces"][NS][0])
    item["elementValue"] = cbor2.CBORTag(tag, "x")
    top["nameSpaces"][NS][0] = cbor2.CBORTag(24, cbor2.dumps(item))
    refused(MdocReason.UNKNOWN_TAG, cbor2.dumps(top), certs)


def test_not_bytes(certs: MdocIssuerCertificates) -> None:
    for value in (None, 1, ["a"], {"a": 1}):
        refused(MdocReason.MALFORMED, value, certs)


def test_error_type() -> None:
    error = MdocVerificationError(MdocReason.SIGNATURE, "the signature does not verify")
    assert isinstance(error, CredentialVerificationError)
    assert str(error) == "signature: the signature does not verify"


# --------------------------------------------------------------------------------------------
# hostile input: only typed errors, whatever the bytes


# ``OID4VCI_FUZZ=long`` (as for the other fuzz tests) runs many more examples.
_FUZZ = settings(
    max_examples=2000 if os.environ.get("OID4VCI_FUZZ") == "long" else 150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _survives(data: Any, certs: MdocIssuerCertificates) -> None:
    with contextlib.suppress(MdocVerificationError):
        verify(data, certs)


@_FUZZ
@given(data=st.binary(max_size=2048))
def test_fuzz_random_bytes(certs: MdocIssuerCertificates, data: bytes) -> None:
    _survives(data, certs)


@_FUZZ
@given(text=st.text(max_size=512))
def test_fuzz_random_text(certs: MdocIssuerCertificates, text: str) -> None:
    _survives(text, certs)


@_FUZZ
@given(
    edits=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255), st.sampled_from("rid")),
        min_size=1,
        max_size=8,
    )
)
def test_fuzz_mutated_document(
    certs: MdocIssuerCertificates, document: bytes, edits: list[tuple[float, int, str]]
) -> None:
    data = bytearray(document)
    for where, byte, kind in edits:
        index = int(where * len(data))
        if kind == "r":
            data[index] = byte
        elif kind == "i":
            data.insert(index, byte)
        elif len(data) > 1:
            del data[index]
    _survives(bytes(data), certs)


_cbor_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64 - 1)
    | st.floats()
    | st.binary(max_size=40)
    | st.text(max_size=20)
    | st.sampled_from(["issuerAuth", "nameSpaces", "digestID", "random", "elementValue"])
)
_cbor_values = st.recursive(
    _cbor_leaves,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text(max_size=10) | st.integers(-50, 50), children, max_size=5)
        | st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 24, 1004, 18, 55799]), children)
    ),
    max_leaves=30,
)


@_FUZZ
@given(value=_cbor_values)
def test_fuzz_cbor_structures(certs: MdocIssuerCertificates, value: Any) -> None:
    _survives(cbor2.dumps(value), certs)
    _survives(cbor2.dumps({"issuerAuth": value, "nameSpaces": value}), certs)
    _survives(cbor2.dumps({"issuerAuth": [b"\xa1\x01\x26", {33: value}, value, value]}), certs)


@_FUZZ
@given(value=_cbor_values)
def test_fuzz_signed_mso(certs: MdocIssuerCertificates, document: bytes, value: Any) -> None:
    """Whatever a (trusted) signer puts in the MSO, verification ends in a typed error or a
    result: never another exception."""
    top = decoded(document)
    mso = mso_of(top)
    for name in ("valueDigests", "deviceKeyInfo", "validityInfo", "version", "status"):
        _survives(resign(top, certs.signer, mso={**mso, name: value}), certs)
    _survives(
        resign(top, certs.signer, mso=value if isinstance(value, dict) else {"x": value}), certs
    )


# --------------------------------------------------------------------------------------------
# COSE_Key <-> JWK


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512", "EdDSA"])
def test_cose_key_round_trip(alg: str) -> None:
    jwk = LocalSigner.generate(alg).public_jwk
    cose = cose_key_from_jwk(jwk)
    assert cose[1] == (1 if alg == "EdDSA" else 2)
    assert jwk_from_cose_key(cose) == jwk


@pytest.mark.parametrize("crv", [[1], {1: 1}, "P-256", 1.0, True, None])
def test_cose_key_with_a_curve_that_is_no_label(crv: Any) -> None:
    # a CBOR array or map as crv (-1) was looked up in a dict: TypeError (unhashable)
    cose = cose_key_from_jwk(LocalSigner.generate("ES256").public_jwk)
    cose[-1] = crv
    with pytest.raises(MdocVerificationError) as info:
        jwk_from_cose_key(cose)
    assert info.value.reason == MdocReason.DEVICE_KEY


def test_cose_key_from_bad_jwk() -> None:
    signer = LocalSigner.generate()
    with pytest.raises(JoseError):
        cose_key_from_jwk(signer.private_jwk())
    with pytest.raises(ValidationError):
        cose_key_from_jwk({"kty": "OKP", "crv": "X25519", "x": b64url_encode(bytes(32))})
    with pytest.raises(JoseError):
        cose_key_from_jwk({"kty": "oct", "k": "AAAA"})


# --------------------------------------------------------------------------------------------
# issuance input checks


@pytest.mark.parametrize(
    "options",
    [
        {"doctype": ""},
        {"namespaces": {}},
        {"namespaces": {NS: {}}},
        {"namespaces": {"": {"a": 1}}},
        {"namespaces": {NS: {"": 1}}},
        {"namespaces": {NS: {"a": object()}}},
        {"namespaces": {NS: {"a": {1.5: "x"}}}},
        {"namespaces": {NS: {"a": 2**64}}},  # would need a bignum tag
        {"namespaces": {NS: {"a": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}}},
        {"namespaces": {NS: {"a": datetime.datetime(2025, 1, 1)}}},  # naive
        {"valid_from": datetime.datetime(2025, 1, 1)},
        {"valid_until": NOW},
        {  # the same second once written as tdate
            "valid_from": NOW + datetime.timedelta(seconds=0.2),
            "valid_until": NOW + datetime.timedelta(seconds=0.7),
        },
        {"digest_algorithm": "sha-256"},
        {"certificate_chain": []},
        {"status": "revoked"},
    ],
)
def test_issue_refuses(certs: MdocIssuerCertificates, options: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        issue(certs, **options)


def test_issue_refuses_private_device_key(certs: MdocIssuerCertificates) -> None:
    with pytest.raises(JoseError):
        issue(certs, device_key=LocalSigner.generate().private_jwk())


def test_issue_refuses_unsupported_signer(certs: MdocIssuerCertificates) -> None:
    @attrs.frozen
    class RsaSigner:
        alg: str = "RS256"
        public_jwk: dict[str, Any] = attrs.field(factory=dict)

        async def sign(self, signing_input: bytes) -> bytes:
            return b""

    with pytest.raises(UsageError):
        issue(certs, signer=RsaSigner())

    @attrs.frozen
    class DerSigner:
        """Returns DER instead of r || s (a signer that does not follow the protocol)."""

        inner: LocalSigner

        @property
        def alg(self) -> str:
            return self.inner.alg

        @property
        def public_jwk(self) -> dict[str, Any]:
            return self.inner.public_jwk

        async def sign(self, signing_input: bytes) -> bytes:
            raw = await self.inner.sign(signing_input)
            r, s = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            return encode_dss_signature(r, s)

    with pytest.raises(UsageError):
        issue(certs, signer=DerSigner(certs.signer))


# --------------------------------------------------------------------------------------------
# the cbor2 extra


def test_missing_cbor2_is_one_clear_error(monkeypatch: pytest.MonkeyPatch, document: bytes) -> None:
    monkeypatch.setattr(mdoc, "cbor2", None)
    with pytest.raises(MissingDependencyError) as info:
        verify_mdoc(document, trust_anchors=[])
    assert isinstance(info.value, ImportError) and isinstance(info.value, Oid4vciError)
    assert "oid4vci[mdoc]" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(MissingDependencyError):
        anyio.run(lambda: issue_mdoc(LocalSigner.generate(), doctype=MDL, namespaces={},
                                     device_key={}, certificate_chain=[], valid_from=NOW,
                                     valid_until=NOW))  # fmt: skip


def test_import_without_cbor2() -> None:
    code = (
        "import sys; sys.modules['cbor2'] = None\n"
        "import oid4vci, oid4vci.mdoc, oid4vci.mdoc_certificates\n"
        "try:\n"
        "    oid4vci.mdoc.verify_mdoc(b'', trust_anchors=[])\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'oid4vci[mdoc]'" in result.stdout


# --------------------------------------------------------------------------------------------
# IACA and document signer certificates (ISO/IEC 18013-5:2021 Annex B, spec/mdoc.md §7)


def test_certificate_profiles(certs: MdocIssuerCertificates) -> None:
    iaca, ds = certs.iaca, certs.document_signer
    for certificate in (iaca, ds):
        assert certificate.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == "UT"
        alt = certificate.extensions.get_extension_for_class(x509.IssuerAlternativeName)
        assert not alt.critical
    constraints = iaca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = iaca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    assert ds.issuer == iaca.subject
    ds_usage = ds.extensions.get_extension_for_class(x509.KeyUsage)
    assert ds_usage.critical and ds_usage.value.digital_signature
    assert not ds_usage.value.key_cert_sign
    eku = ds.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [MDL_DS_EKU]
    aki = ds.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = iaca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    assert ds.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert iaca.not_valid_before_utc <= ds.not_valid_before_utc
    assert ds.not_valid_after_utc <= iaca.not_valid_after_utc
    assert certs.signer.public_jwk == verify_certificate_chain(
        certs.certificate_chain,
        trust_anchors=[iaca],
        extended_key_usage=MDL_DS_EKU,
        clock=FakeClock(),
    )
    assert "PRIVATE" not in repr(certs) and "UT" in repr(certs)


def test_certificate_options() -> None:
    certs = create_iaca_and_document_signer(
        country="US", state="US-CA", crl_uri="https://issuer.example/crl", clock=FakeClock()
    )
    for certificate in (certs.iaca, certs.document_signer):
        state = certificate.subject.get_attributes_for_oid(NameOID.STATE_OR_PROVINCE_NAME)
        assert state[0].value == "US-CA"
        assert certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints)
    bad_options: list[dict[str, Any]] = [{"country": "usa"}, {"country": "us"}, {"alg": "RS256"}]
    for bad in bad_options:
        with pytest.raises(ValidationError):
            create_iaca_and_document_signer(**bad)
    with pytest.raises(ValidationError):
        create_iaca_and_document_signer(iaca_validity_days=10, document_signer_validity_days=20)
