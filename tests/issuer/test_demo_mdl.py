"""The demo issuer's mDL: its IACA root and Document Signer certificate against the ISO/IEC
18013-5:2021 Annex B profile items verifiers check (as /work/shared/spec/mdoc.md §7 lists
them), and the data they must agree with (``issuing_country`` = the DS ``countryName``)."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from oid4vci.issuer.demo import (
    DEMO_MDL_CONFIGURATION_ID,
    DEMO_MDL_COUNTRY,
    DemoClaimsSource,
    build_demo_issuer,
)
from tests.conftest import FakeClock

MDL_DS = x509.ObjectIdentifier("1.0.18013.5.1.2")  # ISO/IEC 18013-5:2021 Annex B mdlDS


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
