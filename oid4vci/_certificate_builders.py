"""What the demo certificate makers share (:mod:`oid4vci.issuer_certificates` for x5c-signed
credentials, :mod:`oid4vci.mdoc_certificates` for the ISO/IEC 18013-5:2021 Annex B IACA pair):
the start time, the RFC 5280 §4.2.1.3 key usages and the root (CA) certificate's builder."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any, Final

from cryptography import x509

__all__ = ["ca_certificate_builder", "key_usage", "not_before"]

#: Certificates start a little before "now" so a verifier whose clock lags slightly accepts them.
BACKDATE: Final = 60


def not_before(clock: Callable[[], float]) -> datetime.datetime:
    """The ``notBefore`` of a certificate made now (:data:`BACKDATE` seconds back)."""
    return datetime.datetime.fromtimestamp(int(clock()) - BACKDATE, tz=datetime.UTC)


def key_usage(*, digital_signature: bool = False, ca: bool = False) -> x509.KeyUsage:
    """``digitalSignature`` for a signer, ``keyCertSign`` + ``cRLSign`` for a CA
    (RFC 5280 §4.2.1.3)."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def ca_certificate_builder(
    subject: x509.Name, public_key: Any, start: datetime.datetime, days: int
) -> x509.CertificateBuilder:
    """A self-issued root: ``subject`` as issuer too, CA with path length 0, CA key usages and
    its subject key identifier; the caller adds its profile's extensions and signs."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )
