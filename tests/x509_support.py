"""Test PKIs for ``x5c``: a root CA, an intermediate CA and a leaf, built with ``cryptography``."""

from __future__ import annotations

import base64
import datetime
from collections.abc import Sequence
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID

from oid4vci.jose import LocalSigner
from tests.conftest import FakeClock

HOST = "issuer.example"
DAY = 86_400.0
START = FakeClock().now  # the instant every test clock starts at

PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _at(offset_days: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(START + offset_days * DAY, tz=datetime.UTC)


def make_certificate(
    *,
    key: PrivateKey,
    subject: str,
    issuer: x509.Certificate | None = None,
    issuer_key: PrivateKey | None = None,
    ca: bool = False,
    dns_names: Sequence[str] = (),
    uris: Sequence[str] = (),
    eku: Sequence[x509.ObjectIdentifier] = (),
    valid_from_days: float = -30,
    valid_until_days: float = 365,
    digital_signature: bool | None = None,
) -> x509.Certificate:
    """One certificate shaped for the web PKI profile (self-signed when no ``issuer``);
    ``keyUsage`` has ``digitalSignature`` unless ``ca`` (or as ``digital_signature`` says)."""
    signing_key = issuer_key if issuer_key is not None else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer is not None else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_at(valid_from_days))
        .not_valid_after(_at(valid_until_days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca if digital_signature is None else digital_signature,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(signing_key.public_key()),
            critical=False,
        )
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if eku:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    algorithm = None if isinstance(signing_key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(signing_key, algorithm)


def b64(certificate: x509.Certificate) -> str:
    """The ``x5c`` form of a certificate: standard base64 of its DER."""
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


@attrs.frozen(kw_only=True)
class Pki:
    """root → intermediate → leaf; ``signer`` holds the leaf key."""

    root: x509.Certificate
    root_key: ec.EllipticCurvePrivateKey
    intermediate: x509.Certificate
    intermediate_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate
    signer: LocalSigner

    @property
    def x5c(self) -> list[str]:
        """Leaf then intermediate (the root is not sent)."""
        return [b64(self.leaf), b64(self.intermediate)]

    def leaf_for(self, key: PrivateKey, **options: Any) -> x509.Certificate:
        """Another leaf issued by the intermediate."""
        options.setdefault("dns_names", [HOST])
        return make_certificate(
            key=key,
            subject="another leaf",
            issuer=self.intermediate,
            issuer_key=self.intermediate_key,
            **options,
        )


def make_pki(
    *, dns_names: Sequence[str] = (HOST,), root_name: str = "Test Root CA", **leaf: Any
) -> Pki:
    """A fresh three-certificate PKI; ``leaf`` options go to the leaf certificate."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = make_certificate(key=root_key, subject=root_name, ca=True)
    intermediate_key = ec.generate_private_key(ec.SECP256R1())
    intermediate = make_certificate(
        key=intermediate_key, subject="Test Issuing CA", issuer=root, issuer_key=root_key, ca=True
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_cert = make_certificate(
        key=leaf_key,
        subject=dns_names[0] if dns_names else "leaf",
        issuer=intermediate,
        issuer_key=intermediate_key,
        dns_names=dns_names,
        **leaf,
    )
    return Pki(
        root=root,
        root_key=root_key,
        intermediate=intermediate,
        intermediate_key=intermediate_key,
        leaf=leaf_cert,
        signer=LocalSigner("ES256", leaf_key),
    )
