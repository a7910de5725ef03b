"""The demo issuer's mDL: its IACA root and Document Signer certificate against the ISO/IEC
18013-5:2021 Annex B profile items verifiers check (as /work/shared/spec/mdoc.md §7 lists
them), and the data they must agree with (``issuing_country`` = the DS ``countryName``)."""

from __future__ import annotations

import datetime

import cbor2
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from oid4vci.cli.receive import SHOWN_STRING_LENGTH, display_value
from oid4vci.issuer.demo import (
    DEMO_MDL_CONFIGURATION_ID,
    DEMO_MDL_COUNTRY,
    DemoClaimsSource,
    build_demo_issuer,
)
from oid4vci.jose import b64url_decode, b64url_encode
from oid4vci.mdoc import mdoc_claims_to_json
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from tests.conftest import FakeClock

MDL_DS = x509.ObjectIdentifier("1.0.18013.5.1.2")  # ISO/IEC 18013-5:2021 Annex B mdlDS
MDL = "org.iso.18013.5.1"
#: ISO/IEC 18013-5:2021 §7.2.1, the mandatory mDL data elements
MDL_MANDATORY_ELEMENTS = {
    "family_name",
    "given_name",
    "birth_date",
    "issue_date",
    "expiry_date",
    "issuing_country",
    "issuing_authority",
    "document_number",
    "portrait",
    "driving_privileges",
    "un_distinguishing_sign",
}


def _countries(name: x509.Name) -> list[str]:
    return [str(a.value) for a in name.get_attributes_for_oid(NameOID.COUNTRY_NAME)]


async def test_demo_certificates_follow_annex_b(clock: FakeClock) -> None:
    demo = build_demo_issuer("https://issuer.example", clock=clock)
    iaca = demo.iaca
    signer = demo.config.document_signer
    assert iaca is not None and signer is not None
    (ds,) = signer.certificate_chain  # the IACA is the verifier's anchor, not in x5chain
    now = datetime.datetime.fromtimestamp(clock(), tz=datetime.UTC)

    # IACA: self-signed CA, pathLen 0, keyCertSign + cRLSign (critical), SKI, one country
    assert iaca.subject == iaca.issuer
    basic = iaca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = iaca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    iaca_ski = iaca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert iaca.extensions.get_extension_for_oid(ExtensionOID.ISSUER_ALTERNATIVE_NAME)
    assert _countries(iaca.subject) == [DEMO_MDL_COUNTRY]

    # DS: issued by the IACA, digitalSignature only (critical), EKU exactly mdlDS (critical)
    assert ds.issuer == iaca.subject
    ds.verify_directly_issued_by(iaca)
    usage = ds.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not (usage.value.key_cert_sign or usage.value.crl_sign or usage.value.key_agreement)
    eku = ds.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [MDL_DS]
    assert ExtendedKeyUsageOID.SERVER_AUTH not in list(eku.value)
    aki = ds.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == iaca_ski.digest
    assert ds.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert ds.extensions.get_extension_for_oid(ExtensionOID.ISSUER_ALTERNATIVE_NAME)
    with_basic = [e for e in ds.extensions if isinstance(e.value, x509.BasicConstraints)]
    assert not with_basic or not with_basic[0].value.ca
    assert _countries(ds.subject) == [DEMO_MDL_COUNTRY]

    # validity: both valid now, the DS inside the IACA's
    for certificate in (iaca, ds):
        assert certificate.not_valid_before_utc <= now < certificate.not_valid_after_utc
    assert iaca.not_valid_before_utc <= ds.not_valid_before_utc
    assert ds.not_valid_after_utc <= iaca.not_valid_after_utc

    # the data agrees with the certificate (verifiers compare them)
    claims = await DemoClaimsSource(clock)("alice", DEMO_MDL_CONFIGURATION_ID)
    assert claims["org.iso.18013.5.1"]["issuing_country"] == signer.country == DEMO_MDL_COUNTRY
    assert demo.trust_anchors_pem.startswith("-----BEGIN CERTIFICATE-----")
    assert x509.load_pem_x509_certificate(demo.trust_anchors_pem.encode()) == iaca


async def test_the_demo_mdl_carries_every_mandatory_element(clock: FakeClock) -> None:
    # ISO/IEC 18013-5:2021 §7.2.1 makes eleven elements of org.iso.18013.5.1 mandatory; the
    # received IssuerSigned is read here with cbor2 to check the CBOR types verifiers expect.
    demo = build_demo_issuer("https://issuer.example", clock=clock)
    transport = InMemoryTransport(routes={"https://issuer.example": demo.issuer.handle})
    assert demo.iaca is not None
    policy = WalletPolicy(trust_anchors=[demo.iaca])
    result = await Oid4vciClient(transport, clock=clock, policy=policy).accept_offer(
        demo.offer_links["pre_auth_mdoc"]
    )
    (credential,) = result.credentials
    assert credential.verified and credential.doctype == DEMO_MDL_CONFIGURATION_ID
    issuer_signed = cbor2.loads(b64url_decode(str(credential.credential)))
    items = {}
    raw = {}
    for wrapped in issuer_signed["nameSpaces"][MDL]:
        assert isinstance(wrapped, cbor2.CBORTag) and wrapped.tag == 24
        item = cbor2.loads(wrapped.value)
        items[item["elementIdentifier"]] = item["elementValue"]
        raw[item["elementIdentifier"]] = wrapped.value
    assert set(items) == MDL_MANDATORY_ELEMENTS

    def full_date(value: object) -> bool:
        # cbor2 reads tag 1004 (RFC 8943 full-date) as a date and tag 0 as a datetime
        return type(value) is datetime.date

    tag_1004 = b"\xd9\x03\xec"  # the tag's head: major type 6, two-byte argument 1004
    for name in ("birth_date", "issue_date", "expiry_date"):
        assert full_date(items[name]) and tag_1004 in raw[name]
    assert raw["driving_privileges"].count(tag_1004) == 2
    for name in ("family_name", "given_name", "issuing_country", "issuing_authority"):
        assert isinstance(items[name], str) and items[name]
    assert isinstance(items["document_number"], str)
    assert isinstance(items["un_distinguishing_sign"], str) and items["un_distinguishing_sign"]
    portrait = items["portrait"]
    assert isinstance(portrait, bytes) and portrait[:3] == b"\xff\xd8\xff"  # JPEG SOI
    assert portrait.endswith(b"\xff\xd9")  # JPEG EOI
    (privilege,) = items["driving_privileges"]
    assert isinstance(privilege["vehicle_category_code"], str)
    assert full_date(privilege["issue_date"]) and full_date(privilege["expiry_date"])
    # what the wallet hands over in JSON types: bytes as base64url, dates as ISO strings
    claims = credential.claims[MDL]
    assert claims["portrait"] == portrait
    assert mdoc_claims_to_json(claims)["portrait"] == b64url_encode(portrait)


def test_summary_lines_shorten_long_strings() -> None:
    long = "x" * (SHOWN_STRING_LENGTH + 1)
    shown = display_value({"portrait": long, "list": [long], "short": "ok"})
    assert long not in shown and f"({len(long)} characters)" in shown and '"ok"' in shown
    exact = "y" * SHOWN_STRING_LENGTH
    assert display_value(exact) == f'"{exact}"'
