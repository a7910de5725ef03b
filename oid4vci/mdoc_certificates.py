"""Demo certificates for ISO mdoc issuance: an IACA root and a Document Signer (DS).

The certificate profiles of ISO/IEC 18013-5:2021 Annex B (tables B.1 and B.3) as the open
implementations Multipaz and isomdl apply them (the ISO text itself was not available):

* **IACA** (self-signed trust anchor): subject with one ``countryName``; ``basicConstraints``
  critical, ``cA`` true, ``pathLenConstraint`` 0; ``keyUsage`` critical ``keyCertSign`` +
  ``cRLSign``; ``subjectKeyIdentifier``; ``issuerAltName`` (a URI), non-critical.
* **Document Signer** (signs ``issuerAuth``, sent in ``x5chain``): issued by the IACA; subject
  ``countryName`` equal to the IACA's; ``keyUsage`` critical ``digitalSignature`` only;
  ``extendedKeyUsage`` critical ``1.0.18013.5.1.2`` (mdlDS); ``authorityKeyIdentifier`` = the
  IACA's ``subjectKeyIdentifier``; own ``subjectKeyIdentifier``; ``issuerAltName``; validity
  inside the IACA's.

``cRLDistributionPoints`` is added to both when a ``crl_uri`` is given (a real issuer publishes
one; a demo usually has none). These are **demo** certificates, generated in memory: nothing is
written anywhere, and the IACA key comes back to the caller, who decides what to keep.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Final

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID

from ._certificate_builders import ca_certificate_builder, key_usage, not_before
from .errors import ValidationError
from .jose import LocalSigner
from .mdoc import MDL_DS_EKU

__all__ = [
    "MdocIssuerCertificates",
    "create_iaca_and_document_signer",
]

_Hash = hashes.SHA256 | hashes.SHA384 | hashes.SHA512
_CURVES: Final[dict[str, tuple[ec.EllipticCurve, _Hash]]] = {
    "ES256": (ec.SECP256R1(), hashes.SHA256()),
    "ES384": (ec.SECP384R1(), hashes.SHA384()),
    "ES512": (ec.SECP521R1(), hashes.SHA512()),
}

_PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@attrs.frozen(kw_only=True, repr=False)
class MdocIssuerCertificates:
    """An IACA root, a Document Signer certificate it issued, and both private keys.

    ``signer`` holds the DS key (pass it to :func:`oid4vci.mdoc.issue_mdoc` with
    :attr:`certificate_chain`); ``iaca`` is the trust anchor verifiers configure. ``repr``
    never shows key material.
    """

    iaca: x509.Certificate
    iaca_key: _PrivateKey
    document_signer: x509.Certificate
    signer: LocalSigner

    @property
    def certificate_chain(self) -> tuple[x509.Certificate, ...]:
        """The ``x5chain`` to send: the DS certificate alone (the IACA is the verifier's anchor)."""
        return (self.document_signer,)

    def __repr__(self) -> str:
        return (
            f"MdocIssuerCertificates(iaca={self.iaca.subject.rfc4514_string()!r}, "
            f"document_signer={self.document_signer.subject.rfc4514_string()!r})"
        )


def _generate_key(alg: str) -> _PrivateKey:
    """A fresh private key for ``alg``."""
    if alg in _CURVES:
        return ec.generate_private_key(_CURVES[alg][0])
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValidationError("'alg' must be ES256, ES384, ES512 or EdDSA")


def _hash_for(alg: str) -> _Hash | None:
    return _CURVES[alg][1] if alg in _CURVES else None  # Ed25519 signs without a separate hash


def _name(country: str, common_name: str, state: str | None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COUNTRY_NAME, country)]
    if state is not None:
        attributes.append(x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, state))
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attributes)


def _common(
    builder: x509.CertificateBuilder, issuer_uri: str, crl_uri: str | None
) -> x509.CertificateBuilder:
    builder = builder.add_extension(
        x509.IssuerAlternativeName([x509.UniformResourceIdentifier(issuer_uri)]), critical=False
    )
    if crl_uri is not None:
        point = x509.DistributionPoint(
            full_name=[x509.UniformResourceIdentifier(crl_uri)],
            relative_name=None,
            reasons=None,
            crl_issuer=None,
        )
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return builder


def create_iaca_and_document_signer(
    *,
    country: str = "UT",
    state: str | None = None,
    issuer_name: str = "oid4vci demo",
    issuer_uri: str = "https://issuer.example",
    crl_uri: str | None = None,
    alg: str = "ES256",
    iaca_validity_days: int = 3 * 365,
    document_signer_validity_days: int = 365,
    clock: Callable[[], float] = time.time,
) -> MdocIssuerCertificates:
    """A fresh demo IACA root and a Document Signer certificate it issued (the profiles of
    ISO/IEC 18013-5:2021 Annex B).

    ``country`` is the ISO 3166-1 alpha-2 ``countryName`` of both subjects (``UT``, "Utopia", is
    the code ISO examples use); ``state``, when given, becomes ``stateOrProvinceName`` of both.
    ``alg`` is the document signer's algorithm (``ES256`` default, ``ES384``, ``ES512``,
    ``EdDSA``) and, for ECDSA, the IACA's too; with ``EdDSA`` the IACA stays ECDSA P-256,
    because certificate signatures are checked with the web PKI's algorithm list (ECDSA, RSA),
    which has no Ed25519 (:func:`oid4vci.x509.verify_certificate_chain`). The
    IACA is valid from just before ``clock()`` for ``iaca_validity_days``, the DS for
    ``document_signer_validity_days`` (which must not exceed the IACA's). Raises
    :class:`~oid4vci.errors.ValidationError` for unusable arguments.
    """
    if not (isinstance(country, str) and len(country) == 2 and country.isascii()):
        raise ValidationError("'country' must be an ISO 3166-1 alpha-2 code")
    if country != country.upper() or not country.isalpha():
        raise ValidationError("'country' must be two upper-case letters")
    if not 0 < document_signer_validity_days <= iaca_validity_days:
        raise ValidationError("the document signer must be valid within the IACA's validity")
    ds_key = _generate_key(alg)
    iaca_alg = alg if alg in _CURVES else "ES256"
    iaca_key = _generate_key(iaca_alg)
    start = not_before(clock)
    iaca_subject = _name(country, f"{issuer_name} IACA", state)
    iaca_ski = x509.SubjectKeyIdentifier.from_public_key(iaca_key.public_key())
    iaca_builder = ca_certificate_builder(
        iaca_subject, iaca_key.public_key(), start, iaca_validity_days
    )
    iaca = _common(iaca_builder, issuer_uri, crl_uri).sign(iaca_key, _hash_for(iaca_alg))
    ds_builder = (
        x509.CertificateBuilder()
        .subject_name(_name(country, f"{issuer_name} Document Signer", state))
        .issuer_name(iaca_subject)
        .public_key(ds_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=document_signer_validity_days))
        .add_extension(key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([MDL_DS_EKU]), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(iaca_ski),
            critical=False,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ds_key.public_key()), critical=False
        )
    )
    document_signer = _common(ds_builder, issuer_uri, crl_uri).sign(iaca_key, _hash_for(iaca_alg))
    return MdocIssuerCertificates(
        iaca=iaca,
        iaca_key=iaca_key,
        document_signer=document_signer,
        signer=LocalSigner(alg, ds_key),
    )
