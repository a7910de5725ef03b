"""X.509 certificate chains carried in the JOSE ``x5c`` header (RFC 7515 §4.1.6).

Both roles use this module: the issuer for holder keys in ``jwt`` key proofs (OID4VCI 1.0
Appendix F.1), the wallet for issuer keys of SD-JWT VCs (SD-JWT VC
(draft-ietf-oauth-sd-jwt-vc-11) §3.5: the issuer is identified by the end-entity certificate).

* :func:`leaf_public_jwk` decodes ``x5c`` and returns the leaf certificate's public key as a
  public JWK. It does **not** establish trust: use it only to *bind* a key.
* :func:`verify_x5c_chain` validates the chain up to caller-given trust anchors with
  :mod:`cryptography.x509.verification` (RFC 5280 path building and the CA/B Forum web PKI
  profile: ``basicConstraints``, ``keyUsage``, ``authorityKeyIdentifier``, validity periods,
  signature algorithms) and then returns the leaf's public JWK. There is no default trust: an
  empty set of anchors is refused.
* :func:`verify_certificate_chain` does the same for certificate objects from PKIs outside the
  web PKI whose leaves name a purpose of their own (``extendedKeyUsage``) and no host, e.g. the
  ISO/IEC 18013-5:2021 document signer of an mdoc's ``x5chain``.
* :func:`verify_issuer_x5c` validates the ``x5c`` of an issuer-signed JWT (SD-JWT VC, Status
  List Token, ``jwt_vc_json``) under the rules of SD-JWT VC (draft-ietf-oauth-sd-jwt-vc-13 §3.5)
  and HAIP 1.0 §6.1.1: no host name is matched (the issuer is the leaf's subject), the leaf
  must not be self-signed.
* :func:`load_trust_anchors` turns DER bytes, PEM text or :class:`cryptography.x509.Certificate`
  objects into certificates (done once, e.g. when a policy is built).

``x5c`` entries are standard base64 (**not** base64url) DER certificates, leaf first. At most
:data:`MAX_CERTIFICATES` entries of at most :data:`MAX_CERTIFICATE_SIZE` DER bytes each are
accepted. Leaf keys must be EC P-256/P-384/P-521, Ed25519 or RSA of at least 2048 bits.

Failures raise :class:`CertificateError` (a :class:`~oid4vci.errors.JoseError`) whose
``reason`` is one of the :class:`CertificateReason` codes.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    Policy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from .errors import ArgumentTypeError, JoseError, UsageError
from .jose import b64url_encode

__all__ = [
    "MAX_CERTIFICATES",
    "MAX_CERTIFICATE_SIZE",
    "MIN_RSA_BITS",
    "CertificateError",
    "CertificateReason",
    "TrustAnchor",
    "certificate_b64",
    "is_self_signed",
    "leaf_public_jwk",
    "load_der_certificate",
    "load_trust_anchors",
    "verify_certificate_chain",
    "verify_issuer_x5c",
    "verify_x5c_chain",
    "x5c_entry_is_self_signed",
]

#: The most certificates an ``x5c`` array may hold (leaf included).
MAX_CERTIFICATES: Final = 10
#: The largest DER certificate accepted, in bytes.
MAX_CERTIFICATE_SIZE: Final = 16 * 1024
#: The smallest RSA modulus accepted for a leaf key, in bits.
MIN_RSA_BITS: Final = 2048
# base64 of MAX_CERTIFICATE_SIZE bytes, checked before decoding anything.
_MAX_B64_LENGTH: Final = 4 * ((MAX_CERTIFICATE_SIZE + 2) // 3)

TrustAnchor = bytes | str | x509.Certificate
"""A trust anchor: DER bytes, PEM (text or bytes), base64 DER text, or a certificate object."""

_CURVES: Final = {
    "secp256r1": ("P-256", 32),
    "secp384r1": ("P-384", 48),
    "secp521r1": ("P-521", 66),
}


class CertificateReason:
    """Short codes carried by :attr:`CertificateError.reason`."""

    MALFORMED: Final = "malformed"
    TOO_LARGE: Final = "too large"
    UNSUPPORTED_KEY: Final = "unsupported key"
    NO_TRUST_ANCHORS: Final = "no trust anchors"
    EXPIRED: Final = "expired"
    NOT_YET_VALID: Final = "not yet valid"
    NAME_MISMATCH: Final = "name mismatch"
    UNTRUSTED: Final = "untrusted"
    SELF_SIGNED: Final = "self-signed"


class CertificateError(JoseError):
    """An ``x5c`` chain is malformed, too large, not valid now or not trusted.

    ``reason`` is a :class:`CertificateReason` code; the message never includes certificate
    contents.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


def _decode_chain(x5c: object) -> list[x509.Certificate]:
    """Decode ``x5c`` (a non-empty sequence of base64 DER strings) into certificates."""
    if isinstance(x5c, str | bytes) or not isinstance(x5c, Sequence) or not x5c:
        raise CertificateError(CertificateReason.MALFORMED, "x5c must be a non-empty array")
    if len(x5c) > MAX_CERTIFICATES:
        raise CertificateError(
            CertificateReason.TOO_LARGE, f"x5c holds more than {MAX_CERTIFICATES} certificates"
        )
    chain: list[x509.Certificate] = []
    for entry in x5c:
        if not isinstance(entry, str):
            raise CertificateError(CertificateReason.MALFORMED, "x5c entries must be strings")
        if len(entry) > _MAX_B64_LENGTH:
            raise CertificateError(
                CertificateReason.TOO_LARGE,
                f"an x5c certificate is larger than {MAX_CERTIFICATE_SIZE} bytes",
            )
        try:
            der = base64.b64decode(entry.encode("ascii"), validate=True)
            chain.append(x509.load_der_x509_certificate(der))
        except (UnicodeEncodeError, binascii.Error, ValueError, x509.InvalidVersion):
            raise CertificateError(
                CertificateReason.MALFORMED,
                "x5c holds an entry that is not a base64 DER certificate",
            ) from None
    return chain


def _public_jwk_of(certificate: x509.Certificate) -> dict[str, Any]:
    """The certificate's public key as a public JWK (supported key types only)."""
    try:
        key = certificate.public_key()
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CertificateError(
            CertificateReason.UNSUPPORTED_KEY, "the certificate key cannot be read"
        ) from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _CURVES:
            raise CertificateError(
                CertificateReason.UNSUPPORTED_KEY, "the certificate key uses an unsupported curve"
            )
        crv, size = _CURVES[key.curve.name]
        numbers = key.public_numbers()
        return {
            "kty": "EC",
            "crv": crv,
            "x": b64url_encode(numbers.x.to_bytes(size, "big")),
            "y": b64url_encode(numbers.y.to_bytes(size, "big")),
        }
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CertificateError(
                CertificateReason.UNSUPPORTED_KEY,
                f"the certificate RSA key is shorter than {MIN_RSA_BITS} bits",
            )
        rsa_numbers = key.public_numbers()
        n = rsa_numbers.n.to_bytes((rsa_numbers.n.bit_length() + 7) // 8, "big")
        e = rsa_numbers.e.to_bytes((rsa_numbers.e.bit_length() + 7) // 8, "big")
        return {"kty": "RSA", "n": b64url_encode(n), "e": b64url_encode(e)}
    raise CertificateError(
        CertificateReason.UNSUPPORTED_KEY, "the certificate key type is not supported"
    )


def leaf_public_jwk(x5c: Sequence[str]) -> dict[str, Any]:
    """The public JWK of the leaf (first) certificate of ``x5c``, **without** any trust check.

    Every entry is decoded (standard base64 DER, size limits applied) so a malformed chain is
    refused even here. Raises :class:`CertificateError`.
    """
    return _public_jwk_of(_decode_chain(x5c)[0])


def _load_anchor(anchor: TrustAnchor) -> list[x509.Certificate]:
    if isinstance(anchor, x509.Certificate):
        return [anchor]
    data = anchor.encode("ascii", "replace") if isinstance(anchor, str) else anchor
    if not isinstance(data, bytes):
        raise ArgumentTypeError(
            "a trust anchor must be DER bytes, PEM, base64 DER or a Certificate"
        )
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificates(data)
        if isinstance(anchor, str):
            data = base64.b64decode(data, validate=True)
        return [x509.load_der_x509_certificate(data)]
    except (binascii.Error, ValueError, x509.InvalidVersion):
        raise CertificateError(
            CertificateReason.MALFORMED, "a trust anchor is not a DER or PEM certificate"
        ) from None


def load_trust_anchors(anchors: Iterable[TrustAnchor]) -> tuple[x509.Certificate, ...]:
    """Certificates from DER bytes, PEM (text or bytes; several certificates allowed),
    base64 DER text or :class:`~cryptography.x509.Certificate` objects.

    Raises :class:`CertificateError` (``malformed``) for an anchor that does not parse.
    """
    if isinstance(anchors, str | bytes | x509.Certificate):
        raise ArgumentTypeError("trust anchors must be a sequence, not a single anchor")
    return tuple(cert for anchor in anchors for cert in _load_anchor(anchor))


def _validity_problem(certificate: x509.Certificate, now: datetime.datetime) -> str | None:
    """``expired`` / ``not yet valid`` when ``now`` is outside the certificate's period."""
    if now < certificate.not_valid_before_utc:
        return CertificateReason.NOT_YET_VALID
    if now > certificate.not_valid_after_utc:
        return CertificateReason.EXPIRED
    return None


def _dns_name(name: str) -> x509.DNSName:
    if not isinstance(name, str) or not name or not name.isascii():
        raise CertificateError(
            CertificateReason.NAME_MISMATCH, "the expected name must be an ASCII host name"
        )
    return x509.DNSName(name)


def verify_x5c_chain(
    x5c: Sequence[str],
    *,
    trust_anchors: Sequence[TrustAnchor],
    clock: Callable[[], float] = time.time,
    expected_dns_name: str | None = None,
) -> dict[str, Any]:
    """Validate ``x5c`` up to one of ``trust_anchors`` and return the leaf's public JWK.

    ``x5c[0]`` is the leaf; the other entries are untrusted intermediates (order does not
    matter). A path must lead from the leaf to one of ``trust_anchors`` (roots are never taken
    from ``x5c``) and hold at :func:`clock`'s time.

    Which profile applies (:mod:`cryptography.x509.verification`, web PKI defaults):

    * with ``expected_dns_name`` a *server* verifier: the leaf must carry a ``subjectAltName``
      ``dNSName`` matching that name (wildcards per RFC 6125), and if it has an
      ``extendedKeyUsage`` it must include ``serverAuth``. Use it when the key owner is named
      by a host (an https issuer identifier).
    * without it a *client* verifier: the leaf still needs a ``subjectAltName`` (any name) and,
      if it has an ``extendedKeyUsage``, ``clientAuth``; no name is matched, so the result
      only says "some holder of a certificate under these anchors".

    Raises :class:`CertificateError`: ``no trust anchors`` when ``trust_anchors`` is empty (an
    ``x5c`` is never trusted by default), ``malformed`` / ``too large`` / ``unsupported key``
    for the input, ``expired`` / ``not yet valid`` for a validity period that does not hold,
    ``name mismatch`` for the wrong host, ``untrusted`` for any other path validation failure.
    """
    anchors = _anchors(trust_anchors)
    chain = _decode_chain(x5c)
    return _verify_path(list(chain), anchors, clock, server_name=expected_dns_name)


def _anchors(trust_anchors: Sequence[TrustAnchor]) -> tuple[x509.Certificate, ...]:
    if not trust_anchors:
        raise CertificateError(
            CertificateReason.NO_TRUST_ANCHORS, "a chain is never trusted without anchors"
        )
    return load_trust_anchors(trust_anchors)


def _leaf_time(leaf: x509.Certificate, clock: Callable[[], float]) -> datetime.datetime:
    """``clock()`` as an aware datetime, after checking the leaf's validity period at it."""
    now = datetime.datetime.fromtimestamp(clock(), tz=datetime.UTC)
    problem = _validity_problem(leaf, now)
    if problem is not None:
        raise CertificateError(problem, "the leaf certificate is outside its validity period")
    return now


def _check_not_ca(_: Policy, __: x509.Certificate, ext: x509.BasicConstraints | None) -> None:
    """End-entity check of every policy here: a leaf must not be a CA (RFC 5280 §4.2.1.9)."""
    if ext is not None and ext.ca:
        raise UsageError("the end-entity certificate is a CA")


def _purpose_policy(extended_key_usage: x509.ObjectIdentifier) -> ExtensionPolicy:
    """End-entity extension policy: ``extendedKeyUsage`` holding ``extended_key_usage``,
    ``keyUsage`` with ``digitalSignature``, not a CA; no ``subjectAltName`` needed. Unknown
    critical extensions are still refused by the verifier."""

    def check_eku(_: Policy, __: x509.Certificate, ext: x509.ExtendedKeyUsage) -> None:
        if extended_key_usage not in ext:
            raise UsageError("the extendedKeyUsage does not allow this use")

    def check_key_usage(_: Policy, __: x509.Certificate, ext: x509.KeyUsage) -> None:
        if not ext.digital_signature:
            raise UsageError("the keyUsage lacks digitalSignature")

    return (
        ExtensionPolicy.permit_all()
        .require_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, check_eku)
        .require_present(x509.KeyUsage, Criticality.AGNOSTIC, check_key_usage)
        .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, _check_not_ca)
    )


def verify_certificate_chain(
    chain: Sequence[x509.Certificate],
    *,
    trust_anchors: Sequence[TrustAnchor],
    extended_key_usage: x509.ObjectIdentifier,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Validate ``chain`` (certificates, leaf first) up to ``trust_anchors`` for a leaf whose
    ``extendedKeyUsage`` includes ``extended_key_usage``; return the leaf's public JWK.

    For PKIs outside the web PKI, e.g. ISO/IEC 18013-5:2021 Annex B, where the document signer
    carries the mdlDS purpose ``1.0.18013.5.1.2`` (often critical) and no ``subjectAltName``.
    RFC 5280 path validation at :func:`clock`'s time with the web PKI profile for the CA
    certificates (``basicConstraints``, ``keyUsage``, path length); the leaf needs an
    ``extendedKeyUsage`` with the given purpose (critical or not), a ``keyUsage`` with
    ``digitalSignature`` and must not be a CA; unknown critical extensions are refused. Roots
    are never taken from ``chain``; at most :data:`MAX_CERTIFICATES` certificates.

    Raises :class:`CertificateError` with the reasons of :func:`verify_x5c_chain` (never
    ``name mismatch``).
    """
    if isinstance(chain, x509.Certificate) or not chain:
        raise CertificateError(CertificateReason.MALFORMED, "the chain must not be empty")
    if len(chain) > MAX_CERTIFICATES:
        raise CertificateError(
            CertificateReason.TOO_LARGE,
            f"the chain holds more than {MAX_CERTIFICATES} certificates",
        )
    return _verify_path(
        list(chain), _anchors(trust_anchors), clock, ee_policy=_purpose_policy(extended_key_usage)
    )


def _verify_path(
    chain: list[x509.Certificate],
    anchors: Sequence[x509.Certificate],
    clock: Callable[[], float],
    *,
    ee_policy: ExtensionPolicy | None = None,
    server_name: str | None = None,
) -> dict[str, Any]:
    """RFC 5280 path validation of ``chain`` (leaf first) to ``anchors`` at the leaf time of
    ``clock``, web PKI profile for the CAs; the leaf's JWK. The leaf's profile: ``ee_policy``
    when given, else the web PKI server profile naming ``server_name`` when given, else the
    web PKI client profile."""
    jwk = _public_jwk_of(chain[0])
    now = _leaf_time(chain[0], clock)
    leaf, intermediates = chain[0], chain[1:]
    builder = PolicyBuilder().store(Store(list(anchors))).time(now)
    if ee_policy is not None:
        builder = builder.extension_policies(
            ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy
        )
    verifier = (
        builder.build_client_verifier()
        if server_name is None
        else builder.build_server_verifier(_dns_name(server_name))
    )
    try:
        verifier.verify(leaf, intermediates)
    except VerificationError as exc:
        raise _classify(exc, intermediates, now, named=server_name is not None) from None
    except (ValueError, TypeError):  # a field the loader left unparsed (a subject's bad UTF-8)
        raise CertificateError(
            CertificateReason.MALFORMED, "a certificate of the chain cannot be parsed"
        ) from None
    return jwk


def _signer_policy() -> ExtensionPolicy:
    """End-entity extension policy for a JWT signer: ``keyUsage`` (when present) with
    ``digitalSignature``, not a CA; no ``subjectAltName`` or ``extendedKeyUsage`` needed."""

    def check_key_usage(_: Policy, __: x509.Certificate, ext: x509.KeyUsage | None) -> None:
        if ext is not None and not ext.digital_signature:
            raise UsageError("the keyUsage lacks digitalSignature")

    return (
        ExtensionPolicy.permit_all()
        .may_be_present(x509.KeyUsage, Criticality.AGNOSTIC, check_key_usage)
        .may_be_present(x509.BasicConstraints, Criticality.AGNOSTIC, _check_not_ca)
    )


def certificate_b64(certificate: x509.Certificate) -> str:
    """The ``x5c`` form of ``certificate``: standard base64 of its DER (RFC 7515 §4.1.6)."""
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode("ascii")


def is_self_signed(certificate: x509.Certificate) -> bool:
    """True when ``certificate`` names itself as its issuer (a root, never a signer); False
    when a name cannot be parsed (the path validation then refuses it as malformed)."""
    try:
        return certificate.issuer == certificate.subject
    except ValueError:  # cryptography parses names lazily: bad UTF-8 in a UTF8String
        return False


def load_der_certificate(der: bytes) -> x509.Certificate:
    """The certificate ``der`` encodes; :class:`CertificateError` (``malformed``) when it is
    not one, including a version other than v1–v3 (RFC 5280 §4.1.2.1), which
    ``cryptography`` reports with an exception of its own."""
    try:
        return x509.load_der_x509_certificate(der)
    except (ValueError, x509.InvalidVersion):
        raise CertificateError(CertificateReason.MALFORMED, "not a DER certificate") from None


def x5c_entry_is_self_signed(entry: object) -> bool:
    """Whether an ``x5c`` entry (base64 DER) is a self-signed certificate; False when it is
    not a certificate at all (the chain check then refuses it as malformed)."""
    if not isinstance(entry, str) or len(entry) > _MAX_B64_LENGTH:
        return False
    try:
        return is_self_signed(load_der_certificate(base64.b64decode(entry, validate=True)))
    except (binascii.Error, ValueError, CertificateError):
        return False


def verify_issuer_x5c(
    x5c: Sequence[str],
    *,
    trust_anchors: Sequence[TrustAnchor],
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Validate the ``x5c`` of an issuer-signed JWT and return the leaf's public JWK.

    SD-JWT VC (draft-ietf-oauth-sd-jwt-vc-13 §3.5, "X.509 Certificates"): the key is the
    end-entity certificate's and the chain must validate; the issuer *is* that certificate's
    subject, so no ``subjectAltName`` is required or matched against ``iss`` (the draft -03
    HAIP rule "``iss`` host = dNSName SAN" was dropped by HAIP 1.0). HAIP 1.0 §6.1, §6.1.1:
    the signing certificate must not be self-signed (refused: ``self-signed``, even when it is
    configured as an anchor); roots are never taken from ``x5c``. RFC 5280 path validation at
    :func:`clock`'s time with the web PKI profile for the CA certificates; the leaf may carry
    any ``extendedKeyUsage``, its ``keyUsage`` (when present) must allow
    ``digitalSignature`` and it must not be a CA.

    Raises :class:`CertificateError` with the reasons of :func:`verify_x5c_chain` (never
    ``name mismatch``) or ``self-signed``.
    """
    anchors = _anchors(trust_anchors)
    chain = _decode_chain(x5c)
    if is_self_signed(chain[0]):
        raise CertificateError(
            CertificateReason.SELF_SIGNED, "the x5c signing certificate is self-signed"
        )
    return _verify_path(list(chain), anchors, clock, ee_policy=_signer_policy())


def _classify(
    exc: VerificationError,
    intermediates: Sequence[x509.Certificate],
    now: datetime.datetime,
    *,
    named: bool,
) -> CertificateError:
    """A :class:`CertificateError` with the most precise reason for a failed path validation.

    The verifier's own message is not passed on: it quotes certificate contents chosen by
    whoever sent the chain. Classifying by its wording is best effort; anything unrecognised
    is ``untrusted``.
    """
    for certificate in intermediates:
        problem = _validity_problem(certificate, now)
        if problem is not None:
            return CertificateError(problem, "an x5c CA certificate is outside its validity period")
    if named and "subjectAltName" in str(exc):
        return CertificateError(
            CertificateReason.NAME_MISMATCH, "the leaf certificate does not name the expected host"
        )
    return CertificateError(
        CertificateReason.UNTRUSTED, "the x5c chain does not validate up to a trust anchor"
    )
