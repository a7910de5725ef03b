"""Demo certificates for X.509 credential signing: a root CA and a credential-signer certificate.

HAIP 1.0 §6.1.1 has SD-JWT VCs (and HAIP 1.0 §6.1 Status List Tokens) carry the signer's certificate in
``x5c``, chained to a trust anchor the verifier knows, without the anchor and never self-signed.
This module makes such a pair for an existing signer key (e.g. the demo issuer's), in memory:

* **root** (the trust anchor wallets configure): self-signed; ``basicConstraints`` critical,
  ``cA`` true, ``pathLenConstraint`` 0; ``keyUsage`` critical ``keyCertSign`` + ``cRLSign``;
  ``subjectKeyIdentifier``.
* **credential signer** (sent as ``x5c``, alone): issued by the root for the signer's public key;
  ``basicConstraints`` ``cA`` false; ``keyUsage`` critical ``digitalSignature``;
  ``authorityKeyIdentifier`` = the root's ``subjectKeyIdentifier``; ``subjectAltName`` naming
  the credential issuer (a URI, and its host as dNSName or IP address) — SD-JWT VC
  (draft-ietf-oauth-sd-jwt-vc-13 §3.5) needs none, verifiers following older drafts look for it.

These are **demo** certificates: nothing is written anywhere; the root key comes back to the
caller, who decides what to keep. :func:`demo_trust_anchors_pem` joins the roots a demo issuer
signs under into one PEM text (the ``trust_anchors_pem`` member of ``oid4vci serve --json``).
"""

from __future__ import annotations

import datetime
import ipaddress
import time
from collections.abc import Callable, Iterable
from typing import Any, Final
from urllib.parse import urlsplit

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ._certificate_builders import ca_certificate_builder, key_usage, not_before
from .errors import ValidationError
from .jose import Signer, b64url_decode

__all__ = [
    "IssuerSigningCertificates",
    "create_issuer_signing_certificates",
    "demo_trust_anchors_pem",
]

_CURVES: Final[dict[str, ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1(),
    "P-384": ec.SECP384R1(),
    "P-521": ec.SECP521R1(),
}


@attrs.frozen(kw_only=True, repr=False)
class IssuerSigningCertificates:
    """A root CA, the credential-signer certificate it issued, and the root's private key.

    ``chain`` is what goes into ``IssuerConfig.credential_signer_chain`` (the signer's
    certificate alone: the root is the verifier's anchor). ``repr`` never shows key material.
    """

    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    signer_certificate: x509.Certificate

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """The ``x5c`` chain, leaf first, without the root."""
        return (self.signer_certificate,)

    @property
    def root_pem(self) -> str:
        """The root certificate as PEM text."""
        return self.root.public_bytes(serialization.Encoding.PEM).decode("ascii")

    def __repr__(self) -> str:
        return (
            f"IssuerSigningCertificates(root={self.root.subject.rfc4514_string()!r}, "
            f"signer={self.signer_certificate.subject.rfc4514_string()!r})"
        )


def _ec_public_key(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    curve = _CURVES.get(jwk.get("crv", "")) if jwk.get("kty") == "EC" else None
    if curve is None:
        raise ValidationError("the signer must hold an EC key (P-256, P-384 or P-521)")
    x = int.from_bytes(b64url_decode(jwk["x"]), "big")
    y = int.from_bytes(b64url_decode(jwk["y"]), "big")
    return ec.EllipticCurvePublicNumbers(x, y, curve).public_key()


def _alt_names(issuer_uri: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(issuer_uri)]
    host = urlsplit(issuer_uri).hostname
    if host:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def create_issuer_signing_certificates(
    signer: Signer,
    *,
    issuer_uri: str,
    issuer_name: str = "oid4vci demo",
    root_validity_days: int = 3 * 365,
    signer_validity_days: int = 365,
    clock: Callable[[], float] = time.time,
) -> IssuerSigningCertificates:
    """A fresh demo root CA (ECDSA P-256) and a certificate it issued for ``signer``'s EC key.

    ``issuer_uri`` (the credential issuer identifier) is named in the signer certificate's
    ``subjectAltName``; both are valid from just before ``clock()``, the root for
    ``root_validity_days``, the signer for ``signer_validity_days`` (not more than the root's).
    Raises :class:`~oid4vci.errors.ValidationError` for unusable arguments.
    """
    if not 0 < signer_validity_days <= root_validity_days:
        raise ValidationError("the signer certificate must be valid within the root's validity")
    public_key = _ec_public_key(signer.public_jwk)
    root_key = ec.generate_private_key(ec.SECP256R1())
    start = not_before(clock)
    root_subject = _name(f"{issuer_name} root CA")
    root_ski = x509.SubjectKeyIdentifier.from_public_key(root_key.public_key())
    root = ca_certificate_builder(
        root_subject, root_key.public_key(), start, root_validity_days
    ).sign(root_key, hashes.SHA256())
    signer_certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{issuer_name} credential signer"))
        .issuer_name(root_subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=signer_validity_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage(digital_signature=True), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(root_ski),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.SubjectAlternativeName(_alt_names(issuer_uri)), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    return IssuerSigningCertificates(
        root=root, root_key=root_key, signer_certificate=signer_certificate
    )


def demo_trust_anchors_pem(roots: Iterable[x509.Certificate]) -> str:
    """The roots a demo issuer signs under, joined as one PEM text (duplicates dropped)."""
    seen: dict[bytes, None] = {}
    for root in roots:
        seen.setdefault(root.public_bytes(serialization.Encoding.PEM), None)
    return "".join(pem.decode("ascii") for pem in seen)
