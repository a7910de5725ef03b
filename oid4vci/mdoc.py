"""ISO mdoc (``mso_mdoc``): issue and verify the ``IssuerSigned`` structure (pure, no I/O).

What OID4VCI moves for the ``mso_mdoc`` format (OID4VCI 1.0 Appendix A.2) is the CBOR
``IssuerSigned`` structure of ISO/IEC 18013-5:2021 §8.3.2.1.2.2::

    IssuerSigned = {"nameSpaces": {ns: [+ #6.24(bstr .cbor IssuerSignedItem)]},
                    "issuerAuth": COSE_Sign1}
    IssuerSignedItem = {"digestID": uint, "random": bstr, "elementIdentifier": tstr,
                        "elementValue": any}

``issuerAuth`` is an untagged COSE_Sign1 (RFC 9052 §4.2) whose protected header holds ``alg``
and whose unprotected header holds ``x5chain`` (label 33, RFC 9360: the document signer
certificate first); its payload is ``#6.24(bstr .cbor MobileSecurityObject)`` (ISO/IEC
18013-5:2021 §9.1.2.4), which lists a digest of every ``IssuerSignedItemBytes``.

* :func:`issue_mdoc` builds and signs it through any :class:`~oid4vci.jose.Signer` and returns
  the CBOR bytes. :func:`encode_issuer_signed` gives the OID4VCI ``credential`` string (base64url
  without padding, OID4VCI 1.0 Appendix A.2.4); :func:`decode_issuer_signed` reverses it.
* :func:`verify_mdoc` takes the bytes **or** that string and checks everything an issuer's
  signature covers: CBOR well-formedness within limits, the COSE structure and algorithm
  allow-list, the document signer chain up to caller-given IACA trust anchors (ISO/IEC
  18013-5:2021 Annex B; via :func:`oid4vci.x509.verify_certificate_chain`), the signature,
  every item's digest (over the tag-24 bytes **as received**, never re-encoded), ``docType``,
  the validity window and, when asked, the device key. Every failure raises
  :class:`MdocVerificationError` whose ``reason`` is one of the :class:`MdocReason` codes.

Dates: a :class:`datetime.date` element value is written as ``full-date`` (tag 1004, RFC 8943),
a :class:`datetime.datetime` as ``tdate`` (tag 0, UTC, no fractional seconds), as ISO/IEC
18013-5:2021 §7.2.1 requires; they decode back to the same Python types.

Hostile input: before cbor2 sees any bytes, a scan checks well-formedness (RFC 8949 §3),
nesting depth, map keys (integers or strings, no duplicates), simple values and tags: only
tags 0 (tdate), 24 (embedded CBOR) and 1004 (full-date) are accepted. Indefinite-length items
are accepted within the same limits.

CBOR needs the ``mdoc`` extra (``pip install 'oid4vci[mdoc]'``, which brings ``cbor2``);
without it this module imports, and its functions raise :class:`MissingDependencyError`.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .errors import (
    ArgumentTypeError,
    CredentialVerificationError,
    JoseError,
    MissingDependencyError,
    UsageError,
    ValidationError,
)
from .jose import Signer, b64url_decode, b64url_encode, jwk_thumbprint, public_jwk
from .jose import _verify_signature as _verify_raw_signature
from .x509 import (
    MAX_CERTIFICATE_SIZE,
    MAX_CERTIFICATES,
    CertificateError,
    TrustAnchor,
    load_der_certificate,
    verify_certificate_chain,
)
from .x509 import _public_jwk_of as _leaf_jwk

try:
    import cbor2
except ImportError:  # the ``mdoc`` extra is not installed: functions raise on first use
    cbor2 = None  # type: ignore[assignment]

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DIGEST_ALGORITHMS",
    "MAX_DEPTH",
    "MAX_MDOC_SIZE",
    "MDL_DS_EKU",
    "MdocReason",
    "MdocValidity",
    "MdocVerificationError",
    "MissingDependencyError",
    "VerifiedMdoc",
    "cose_key_from_jwk",
    "decode_issuer_signed",
    "encode_issuer_signed",
    "issue_mdoc",
    "jwk_from_cose_key",
    "mdoc_available",
    "mdoc_claims_to_json",
    "read_mdoc_status",
    "verify_mdoc",
]

#: ``extendedKeyUsage`` of an mDL document signer certificate (ISO/IEC 18013-5:2021 Annex B).
MDL_DS_EKU: Final = x509.ObjectIdentifier("1.0.18013.5.1.2")
#: ``digestAlgorithm`` values (ISO/IEC 18013-5:2021 §9.1.2.5) and their hash functions.
DIGEST_ALGORITHMS: Final[Mapping[str, Callable[[bytes], Any]]] = {
    "SHA-256": hashlib.sha256,
    "SHA-384": hashlib.sha384,
    "SHA-512": hashlib.sha512,
}
#: Default ``issuerAuth`` algorithm allow-list for verification (JOSE names).
DEFAULT_ALGORITHMS: Final = ("ES256", "ES384", "ES512", "EdDSA")
#: The largest ``IssuerSigned`` accepted by :func:`verify_mdoc` by default, in bytes.
MAX_MDOC_SIZE: Final = 1 << 20
#: The deepest nesting of CBOR containers and tags accepted in one encoded document.
MAX_DEPTH: Final = 32

# COSE algorithm identifiers (RFC 9053 §2.1, §2.2) for the Signer's JOSE algorithm.
_COSE_ALGS: Final = {"ES256": -7, "ES384": -35, "ES512": -36, "EdDSA": -8, "Ed25519": -8}
_JOSE_ALGS: Final = {-7: "ES256", -35: "ES384", -36: "ES512", -8: "EdDSA"}
_ECDSA_SIZES: Final = {"ES256": 32, "ES384": 48, "ES512": 66}
# COSE header labels (RFC 9052 §3.1, RFC 9360 §2).
_ALG: Final = 1
_CRIT: Final = 2
_X5CHAIN: Final = 33
# COSE_Key (RFC 9052 §7, RFC 9053 §7): kty OKP 1 / EC2 2; crv; x, y, d.
_KTY, _CRV, _X, _Y, _D = 1, -1, -2, -3, -4
_KTY_OKP, _KTY_EC2 = 1, 2
_EC2_CURVES: Final = {"P-256": (1, 32), "P-384": (2, 48), "P-521": (3, 66)}
_OKP_CURVES: Final = {"Ed25519": (6, 32)}
_TDATE, _ENCODED_CBOR, _FULL_DATE = 0, 24, 1004
_ALLOWED_TAGS: Final = frozenset({_TDATE, _ENCODED_CBOR, _FULL_DATE})
_RANDOM_BYTES: Final = 32  # ISO/IEC 18013-5:2021 §9.1.2.5: at least 16
_MIN_RANDOM_BYTES: Final = 16
_ISSUED_VERSION: Final = "1.0"


def mdoc_available() -> bool:
    """True when cbor2 (the ``mdoc`` extra) is installed, so mdocs can be issued and verified."""
    return cbor2 is not None


def _require_cbor2() -> None:
    if cbor2 is None:
        raise MissingDependencyError("ISO mdoc support needs cbor2: pip install 'oid4vci[mdoc]'")


class MdocReason:
    """Short codes carried by :attr:`MdocVerificationError.reason`."""

    MALFORMED: Final = "malformed"
    TOO_LARGE: Final = "too large"
    TOO_DEEP: Final = "nested too deeply"
    UNKNOWN_TAG: Final = "unknown tag"
    ALG: Final = "alg not allowed"
    CERTIFICATE: Final = "certificate"
    UNTRUSTED: Final = "untrusted"
    SIGNATURE: Final = "signature"
    VERSION: Final = "unsupported version"
    DIGEST_ALG: Final = "unsupported digestAlgorithm"
    DIGEST_MISMATCH: Final = "digest mismatch"
    DUPLICATE_DIGEST_ID: Final = "duplicate digestID"
    DOCTYPE_MISMATCH: Final = "doctype mismatch"
    EXPIRED: Final = "expired"
    NOT_YET_VALID: Final = "not yet valid"
    SIGNED_OUTSIDE_CERTIFICATE: Final = "signed outside certificate validity"
    DEVICE_KEY: Final = "device key invalid"
    HOLDER_KEY_MISMATCH: Final = "device key mismatch"


class MdocVerificationError(CredentialVerificationError):
    """An mdoc failed parsing or verification; ``reason`` is an :class:`MdocReason` code.

    Messages never quote element values or certificate contents.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


def _fail(reason: str, message: str) -> MdocVerificationError:
    return MdocVerificationError(reason, message)


# --------------------------------------------------------------------------------------------
# the OID4VCI credential string


def encode_issuer_signed(issuer_signed: bytes) -> str:
    """The OID4VCI ``credential`` value: base64url without padding of the ``IssuerSigned``
    CBOR (OID4VCI 1.0 Appendix A.2.4)."""
    if not isinstance(issuer_signed, bytes | bytearray | memoryview):
        raise ArgumentTypeError("issuer_signed must be bytes")
    return b64url_encode(bytes(issuer_signed))


def decode_issuer_signed(credential: str, *, max_size: int = MAX_MDOC_SIZE) -> bytes:
    """The ``IssuerSigned`` CBOR bytes of an OID4VCI ``credential`` string.

    base64url; trailing ``=`` padding is tolerated (Draft 13/14 do not say whether it is
    used). Nothing is decoded as CBOR here. Raises :class:`MdocVerificationError`
    (``malformed``, or ``too large`` beyond ``max_size`` decoded bytes).
    """
    if not isinstance(credential, str):
        raise _fail(MdocReason.MALFORMED, "an mso_mdoc credential must be a base64url string")
    if len(credential) > 4 * (max_size // 3 + 1):
        raise _fail(MdocReason.TOO_LARGE, f"the credential is larger than {max_size} bytes")
    body = credential.rstrip("=")
    try:
        if len(credential) - len(body) > 2:
            raise JoseError("more padding than base64 has")
        return b64url_decode(body)
    except JoseError:
        raise _fail(MdocReason.MALFORMED, "the credential is not base64url") from None


# --------------------------------------------------------------------------------------------
# CBOR in, with limits


@attrs.define
class _Scanner:
    """Checks one encoded CBOR item (RFC 8949 §3) before cbor2 decodes it.

    Refuses reserved or misplaced headers, truncation, trailing bytes, nesting deeper than
    ``max_depth``, tags outside the allow-list (and tag content of the wrong type), simple
    values other than false/true/null, map keys that are not integers or definite strings,
    and duplicate map keys. Records the exact encoding of every tag-24 item by its content
    (``embedded``) so digests are taken over the bytes as received.
    """

    data: bytes
    max_depth: int
    embedded: dict[bytes, bytes] = attrs.field(factory=dict)

    def run(self) -> None:
        end = self.item(0, 0)
        if end != len(self.data):
            raise _fail(MdocReason.MALFORMED, "bytes follow the CBOR item")

    def head(self, pos: int) -> tuple[int, int, int | None, int]:
        """``(major type, additional info, argument or None if indefinite, next offset)``."""
        if pos >= len(self.data):
            raise _fail(MdocReason.MALFORMED, "the CBOR data is truncated")
        initial = self.data[pos]
        major, info = initial >> 5, initial & 0x1F
        pos += 1
        if info < 24:
            return major, info, info, pos
        if info <= 27:
            size = 1 << (info - 24)
            if pos + size > len(self.data):
                raise _fail(MdocReason.MALFORMED, "the CBOR data is truncated")
            return major, info, int.from_bytes(self.data[pos : pos + size], "big"), pos + size
        if info == 31 and major in (2, 3, 4, 5, 7):
            return major, info, None, pos
        raise _fail(MdocReason.MALFORMED, "a CBOR header uses a reserved value")

    def skip(self, pos: int, length: int) -> int:
        if length > len(self.data) - pos:
            raise _fail(MdocReason.MALFORMED, "the CBOR data is truncated")
        return pos + length

    def at_break(self, pos: int) -> bool:
        if pos >= len(self.data):
            raise _fail(MdocReason.MALFORMED, "the CBOR data is truncated")
        return self.data[pos] == 0xFF

    def string(self, major: int, length: int | None, pos: int) -> tuple[bytes, int]:
        """The content and end of a string whose head ended at ``pos``."""
        if length is not None:
            end = self.skip(pos, length)
            return self.data[pos:end], end
        chunks: list[bytes] = []
        while not self.at_break(pos):
            chunk_major, _, chunk_length, pos = self.head(pos)
            if chunk_major != major or chunk_length is None:
                raise _fail(MdocReason.MALFORMED, "an indefinite-length string has a bad chunk")
            end = self.skip(pos, chunk_length)
            chunks.append(self.data[pos:end])
            pos = end
        return b"".join(chunks), pos + 1

    def item(self, pos: int, depth: int) -> int:
        if depth > self.max_depth:
            raise _fail(MdocReason.TOO_DEEP, f"CBOR nesting deeper than {self.max_depth}")
        start = pos
        major, info, argument, pos = self.head(pos)
        if major in (0, 1):
            return pos
        if major in (2, 3):
            return self.string(major, argument, pos)[1]
        if major == 4:
            if argument is None:
                while not self.at_break(pos):
                    pos = self.item(pos, depth + 1)
                return pos + 1
            if argument > len(self.data) - pos:
                raise _fail(MdocReason.MALFORMED, "the CBOR data is truncated")
            for _ in range(argument):
                pos = self.item(pos, depth + 1)
            return pos
        if major == 5:
            return self.map(argument, pos, depth)
        if major == 6:
            return self.tag(argument, start, pos)
        if info in (20, 21, 22, 25, 26, 27):  # false, true, null, floats
            return pos
        raise _fail(MdocReason.MALFORMED, "a CBOR simple value or break is not allowed here")

    def map(self, count: int | None, pos: int, depth: int) -> int:
        if count is not None and count > (len(self.data) - pos) // 2:
            raise _fail(MdocReason.MALFORMED, "the CBOR data is truncated")
        keys: set[tuple[int, int | bytes]] = set()
        index = 0
        while (index < count) if count is not None else not self.at_break(pos):
            major, _, argument, after = self.head(pos)
            if major in (0, 1) and argument is not None:
                key: tuple[int, int | bytes] = (major, argument)
                pos = after
            elif major in (2, 3) and argument is not None:
                content, pos = self.string(major, argument, after)
                key = (major, content)
            else:
                raise _fail(MdocReason.MALFORMED, "a CBOR map key is not an integer or string")
            if key in keys:
                raise _fail(MdocReason.MALFORMED, "a CBOR map has a duplicate key")
            keys.add(key)
            pos = self.item(pos, depth + 1)
            index += 1
        return pos if count is not None else pos + 1

    def tag(self, number: int | None, start: int, pos: int) -> int:
        if number not in _ALLOWED_TAGS:
            raise _fail(MdocReason.UNKNOWN_TAG, f"CBOR tag {number} is not allowed here")
        major, _, argument, after = self.head(pos)
        if major != (2 if number == _ENCODED_CBOR else 3):
            raise _fail(MdocReason.MALFORMED, f"CBOR tag {number} encloses the wrong type")
        content, end = self.string(major, argument, after)
        if number == _ENCODED_CBOR:
            raw = self.data[start:end]
            if self.embedded.setdefault(content, raw) != raw:
                raise _fail(MdocReason.MALFORMED, "an embedded CBOR item is encoded two ways")
        return end


_CBOR_ERRORS: Final = (
    ValueError,
    TypeError,
    LookupError,
    ArithmeticError,
    RecursionError,
)


def _decode(data: bytes, max_depth: int, what: str) -> tuple[Any, dict[bytes, bytes]]:
    """Scan, then decode, one CBOR item; returns it and the raw tag-24 encodings in it."""
    scanner = _Scanner(data, max_depth)
    scanner.run()
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORError, *_CBOR_ERRORS):
        raise _fail(MdocReason.MALFORMED, f"{what} is not valid CBOR") from None
    return value, scanner.embedded


def _embedded(value: Any, max_depth: int, what: str) -> Any:
    """The item inside ``#6.24(bstr .cbor item)``."""
    if not isinstance(value, cbor2.CBORTag) or value.tag != _ENCODED_CBOR:
        raise _fail(MdocReason.MALFORMED, f"{what} must be tag 24 (encoded CBOR)")
    return _decode(value.value, max_depth, what)[0]


# --------------------------------------------------------------------------------------------
# COSE_Key <-> JWK


def cose_key_from_jwk(jwk: Mapping[str, Any]) -> dict[int, Any]:
    """The COSE_Key (RFC 9052 §7, RFC 9053 §7) of a public JWK: EC P-256/P-384/P-521 as EC2
    (kty 2, crv 1/2/3, x, y) or Ed25519 as OKP (kty 1, crv 6, x).

    Raises :class:`~oid4vci.errors.JoseError` for private or unusable keys and
    :class:`~oid4vci.errors.ValidationError` for other key types.
    """
    key = public_jwk(jwk)
    kty, crv = key.get("kty"), key.get("crv")
    if kty == "EC" and crv in _EC2_CURVES:
        label, size = _EC2_CURVES[crv]
        x, y = b64url_decode(key["x"]), b64url_decode(key["y"])
        if len(x) != size or len(y) != size:
            raise ValidationError("EC coordinates must have the curve's full length")
        return {_KTY: _KTY_EC2, _CRV: label, _X: x, _Y: y}
    if kty == "OKP" and crv in _OKP_CURVES:
        label, size = _OKP_CURVES[crv]
        x = b64url_decode(key["x"])
        if len(x) != size:
            raise ValidationError("the OKP key has the wrong length")
        return {_KTY: _KTY_OKP, _CRV: label, _X: x}
    raise ValidationError("device keys must be EC P-256/P-384/P-521 or Ed25519")


def jwk_from_cose_key(cose_key: Mapping[Any, Any]) -> dict[str, Any]:
    """The public JWK of a COSE_Key (the inverse of :func:`cose_key_from_jwk`).

    Raises :class:`MdocVerificationError` (``device key invalid``) for private, malformed or
    unsupported keys, including points not on the curve.
    """
    if not isinstance(cose_key, Mapping):
        raise _fail(MdocReason.DEVICE_KEY, "the device key must be a COSE_Key map")
    if _D in cose_key:
        raise _fail(MdocReason.DEVICE_KEY, "the device key holds private key material")
    kty, crv, x = cose_key.get(_KTY), cose_key.get(_CRV), cose_key.get(_X)
    if kty == _KTY_EC2:
        curves = {label: (name, size) for name, (label, size) in _EC2_CURVES.items()}
        y = cose_key.get(_Y)
    elif kty == _KTY_OKP:
        curves = {label: (name, size) for name, (label, size) in _OKP_CURVES.items()}
        y = None
    else:
        raise _fail(MdocReason.DEVICE_KEY, "the device key type is not supported")
    if type(crv) is not int or crv not in curves:  # a CBOR array or map is unhashable
        raise _fail(MdocReason.DEVICE_KEY, "the device key curve is not supported")
    name, size = curves[crv]
    if not isinstance(x, bytes) or len(x) != size:
        raise _fail(MdocReason.DEVICE_KEY, "the device key 'x' is not a coordinate")
    jwk = {"kty": "EC" if kty == _KTY_EC2 else "OKP", "crv": name, "x": b64url_encode(x)}
    if kty == _KTY_EC2:
        if not isinstance(y, bytes) or len(y) != size:
            raise _fail(MdocReason.DEVICE_KEY, "the device key 'y' is not a coordinate")
        jwk["y"] = b64url_encode(y)
    try:
        return public_jwk(jwk)
    except JoseError:
        raise _fail(MdocReason.DEVICE_KEY, "the device key is not a valid public key") from None


# --------------------------------------------------------------------------------------------
# issuance


def _whole_seconds(value: datetime.datetime) -> datetime.datetime:
    """``value`` in UTC without fractional seconds (what a tdate written here holds)."""
    if not isinstance(value, datetime.datetime) or value.utcoffset() is None:
        raise UsageError("datetimes must be timezone-aware")
    return value.astimezone(datetime.UTC).replace(microsecond=0)


def _tdate(value: datetime.datetime) -> Any:
    """``tdate`` (tag 0): UTC, ``Z``, no fractional seconds (ISO/IEC 18013-5:2021 §9.1.2.4)."""
    return cbor2.CBORTag(_TDATE, _whole_seconds(value).strftime("%Y-%m-%dT%H:%M:%SZ"))


def _element_value(value: Any, depth: int = 0) -> Any:
    """An element value as cbor2 input: dates tagged as ISO/IEC 18013-5:2021 §7.2.1 requires."""
    if depth > MAX_DEPTH // 2:
        raise UsageError("an element value is nested too deeply")
    if isinstance(value, int) and not -(2**64) <= value < 2**64:
        raise UsageError("integers must fit CBOR's 64-bit integer types (no bignums)")
    if value is None or isinstance(value, str | bytes | bool | int | float):
        return value
    if isinstance(value, datetime.datetime):
        return _tdate(value)
    if isinstance(value, datetime.date):
        return cbor2.CBORTag(_FULL_DATE, value.isoformat())
    if isinstance(value, Mapping):
        if not all(isinstance(k, str | int) and not isinstance(k, bool) for k in value):
            raise UsageError("element value map keys must be strings or integers")
        return {k: _element_value(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_element_value(v, depth + 1) for v in value]
    raise UsageError(f"element values of type {type(value).__name__} cannot be encoded")


def _check_names(namespaces: Mapping[str, Mapping[str, Any]]) -> int:
    """The number of elements, after checking the shape of ``namespaces``."""
    if not isinstance(namespaces, Mapping) or not namespaces:
        raise UsageError("'namespaces' must map at least one namespace to its elements")
    count = 0
    for namespace, elements in namespaces.items():
        if not isinstance(namespace, str) or not namespace:
            raise UsageError("namespace names must be non-empty strings")
        if not isinstance(elements, Mapping) or not elements:
            raise UsageError(f"namespace {namespace!r} must map element identifiers")
        if not all(isinstance(name, str) and name for name in elements):
            raise UsageError("element identifiers must be non-empty strings")
        count += len(elements)
    return count


def _der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


async def issue_mdoc(
    signer: Signer,
    *,
    doctype: str,
    namespaces: Mapping[str, Mapping[str, Any]],
    device_key: Mapping[str, Any],
    certificate_chain: Sequence[x509.Certificate],
    valid_from: datetime.datetime,
    valid_until: datetime.datetime,
    signed: datetime.datetime | None = None,
    status: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
    digest_algorithm: str = "SHA-256",
) -> bytes:
    """Issue an mdoc and return the CBOR of its ``IssuerSigned`` structure.

    ``namespaces`` maps each namespace (e.g. ``org.iso.18013.5.1``) to its elements (identifier
    → value; :class:`~datetime.date` values become full-date, aware :class:`~datetime.datetime`
    values tdate in whole seconds; mappings, lists, strings, bytes, integers, floats, booleans
    and ``None`` as they are). Every element gets a 32-byte random salt and a digestID from a
    random permutation, so IDs reveal no element order (ISO/IEC 18013-5:2021 §9.1.2.5).
    ``device_key`` is the holder's public JWK, written as the MSO's COSE_Key ``deviceKey``.
    ``certificate_chain`` is the ``x5chain``: the document signer certificate (whose key
    ``signer`` holds) first, without the IACA. ``signed`` defaults to ``clock()``;
    ``valid_until`` must be later than ``valid_from``. ``status`` (e.g. ``{"status_list":
    {"idx": 3, "uri": "https://…"}}``, draft-ietf-oauth-status-list-14 §6.3.2) is put into the
    MSO as it is. The COSE ``alg`` follows ``signer.alg`` (ES256 -7, ES384 -35, ES512 -36, EdDSA
    -8). Pass the result to :func:`encode_issuer_signed` for an OID4VCI response.

    Raises :class:`~oid4vci.errors.ValidationError` for unusable input (and
    :class:`MissingDependencyError` without cbor2).
    """
    _require_cbor2()
    if not isinstance(doctype, str) or not doctype:
        raise UsageError("'doctype' must be a non-empty string")
    if digest_algorithm not in DIGEST_ALGORITHMS:
        raise UsageError("'digest_algorithm' must be SHA-256, SHA-384 or SHA-512")
    alg = _COSE_ALGS.get(signer.alg)
    if alg is None:
        raise UsageError("the signer's algorithm has no COSE equivalent supported here")
    count = _check_names(namespaces)
    cose_key = cose_key_from_jwk(device_key)
    if (
        isinstance(certificate_chain, x509.Certificate)
        or not certificate_chain
        or len(certificate_chain) > MAX_CERTIFICATES
        or not all(isinstance(c, x509.Certificate) for c in certificate_chain)
    ):
        raise UsageError(f"'certificate_chain' must hold 1 to {MAX_CERTIFICATES} certificates")
    try:
        same_key = jwk_thumbprint(_leaf_jwk(certificate_chain[0])) == jwk_thumbprint(
            signer.public_jwk
        )
    except (CertificateError, JoseError):
        same_key = False
    if not same_key:
        raise UsageError("the signer's key is not the document signer certificate's key")
    signed_at = (
        signed
        if signed is not None
        else datetime.datetime.fromtimestamp(int(clock()), tz=datetime.UTC)
    )
    validity: dict[str, Any] = {
        "signed": _tdate(signed_at),
        "validFrom": _tdate(valid_from),
        "validUntil": _tdate(valid_until),
    }
    if _whole_seconds(valid_until) <= _whole_seconds(valid_from):
        raise UsageError("'valid_until' must be later than 'valid_from' (whole seconds)")
    if status is not None and not isinstance(status, Mapping):
        raise UsageError("'status' must be a mapping")

    hasher = DIGEST_ALGORITHMS[digest_algorithm]
    digest_ids = iter(secrets.SystemRandom().sample(range(count), count))
    items: dict[str, list[Any]] = {}
    digests: dict[str, dict[int, bytes]] = {}
    for namespace, elements in namespaces.items():
        items[namespace], digests[namespace] = [], {}
        for identifier, value in elements.items():
            digest_id = next(digest_ids)
            item = cbor2.dumps(
                {
                    "digestID": digest_id,
                    "random": secrets.token_bytes(_RANDOM_BYTES),
                    "elementIdentifier": identifier,
                    "elementValue": _element_value(value),
                }
            )
            wrapped = cbor2.CBORTag(_ENCODED_CBOR, item)
            items[namespace].append(wrapped)
            digests[namespace][digest_id] = hasher(cbor2.dumps(wrapped)).digest()
    mso: dict[str, Any] = {
        "version": _ISSUED_VERSION,
        "digestAlgorithm": digest_algorithm,
        "valueDigests": digests,
        "deviceKeyInfo": {"deviceKey": cose_key},
        "docType": doctype,
        "validityInfo": validity,
    }
    if status is not None:
        mso["status"] = _element_value(status)
    payload = cbor2.dumps(cbor2.CBORTag(_ENCODED_CBOR, cbor2.dumps(mso)))
    protected = cbor2.dumps({_ALG: alg})
    signature = await signer.sign(_sig_structure(protected, payload))
    size = _ECDSA_SIZES.get(signer.alg)
    if size is not None and len(signature) != 2 * size:
        raise UsageError("the signer must return an ECDSA signature in r || s form")
    ders = [_der(c) for c in certificate_chain]
    unprotected = {_X5CHAIN: ders[0] if len(ders) == 1 else ders}
    issuer_auth = [protected, unprotected, payload, signature]
    return bytes(cbor2.dumps({"nameSpaces": items, "issuerAuth": issuer_auth}))


def _sig_structure(protected: bytes, payload: bytes) -> bytes:
    """RFC 9052 §4.4 ``Sig_structure`` for COSE_Sign1 with empty external_aad."""
    return bytes(cbor2.dumps(["Signature1", protected, b"", payload]))


# --------------------------------------------------------------------------------------------
# verification


@attrs.frozen(kw_only=True)
class MdocValidity:
    """The MSO's ``validityInfo`` (ISO/IEC 18013-5:2021 §9.1.2.4), as aware datetimes."""

    signed: datetime.datetime
    valid_from: datetime.datetime
    valid_until: datetime.datetime
    expected_update: datetime.datetime | None = None


@attrs.frozen(kw_only=True, repr=False)
class VerifiedMdoc:
    """A verified mdoc.

    ``claims`` maps namespace → element identifier → element value (full-date values as
    :class:`~datetime.date`, tdate values as aware :class:`~datetime.datetime`); it holds the
    items the ``IssuerSigned`` carried, which may be fewer than the MSO's digests cover.
    ``device_key`` is the MSO's ``deviceKey`` as a public JWK; ``certificate_chain`` the
    ``x5chain`` as received (document signer first); ``status`` the MSO's ``status`` map if
    it has one (Token Status List); ``issuer_signed`` the verified CBOR bytes. ``repr`` shows
    no element values.
    """

    doctype: str
    claims: dict[str, dict[str, Any]]
    device_key: dict[str, Any]
    validity: MdocValidity
    certificate_chain: tuple[x509.Certificate, ...]
    digest_algorithm: str
    status: dict[str, Any] | None
    issuer_signed: bytes

    def __repr__(self) -> str:
        return f"VerifiedMdoc(doctype={self.doctype!r}, namespaces={sorted(self.claims)!r})"


def _is_uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _member(mapping: Any, name: str, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(mapping, dict):
        raise _fail(MdocReason.MALFORMED, f"{what} must be a map")
    value = mapping.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _fail(MdocReason.MALFORMED, f"{what} lacks a valid {name!r}")
    return value


@attrs.frozen
class _IssuerAuth:
    alg: str
    chain: tuple[x509.Certificate, ...]
    protected: bytes
    payload: bytes
    signature: bytes


def _headers(protected_raw: Any, unprotected: Any, max_depth: int) -> dict[Any, Any]:
    """Protected and unprotected headers merged (RFC 9052 §3: no label in both)."""
    if not isinstance(protected_raw, bytes) or not isinstance(unprotected, dict):
        raise _fail(MdocReason.MALFORMED, "the COSE_Sign1 headers are malformed")
    protected = (
        _decode(protected_raw, max_depth, "the protected header")[0] if protected_raw else {}
    )
    if not isinstance(protected, dict):
        raise _fail(MdocReason.MALFORMED, "the protected header must be a map")
    if _CRIT in protected or _CRIT in unprotected:
        raise _fail(MdocReason.MALFORMED, "critical COSE header parameters are not understood")
    if _ALG not in protected:
        raise _fail(MdocReason.MALFORMED, "'alg' must be a protected header parameter")
    if protected.keys() & unprotected.keys():
        raise _fail(MdocReason.MALFORMED, "a COSE header parameter is both protected and not")
    return {**unprotected, **protected}


def _x5chain(value: Any) -> tuple[x509.Certificate, ...]:
    ders = [value] if isinstance(value, bytes) else value
    if not isinstance(ders, list) or not ders:
        raise _fail(MdocReason.CERTIFICATE, "issuerAuth has no x5chain (label 33)")
    if len(ders) > MAX_CERTIFICATES:
        raise _fail(MdocReason.CERTIFICATE, f"x5chain holds more than {MAX_CERTIFICATES} entries")
    chain = []
    for der in ders:
        if not isinstance(der, bytes) or len(der) > MAX_CERTIFICATE_SIZE:
            raise _fail(MdocReason.CERTIFICATE, "an x5chain entry is not a DER certificate")
        try:
            chain.append(load_der_certificate(der))
        except CertificateError:
            raise _fail(
                MdocReason.CERTIFICATE, "an x5chain entry is not a DER certificate"
            ) from None
    return tuple(chain)


def _issuer_auth(value: Any, algorithms: Collection[str], max_depth: int) -> _IssuerAuth:
    """COSE_Sign1 (RFC 9052 §4.2), untagged as ISO/IEC 18013-5:2021 §9.1.2.4 uses it."""
    if not isinstance(value, list) or len(value) != 4:
        raise _fail(MdocReason.MALFORMED, "issuerAuth must be a COSE_Sign1 array of 4")
    protected, unprotected, payload, signature = value
    headers = _headers(protected, unprotected, max_depth)
    alg = _JOSE_ALGS.get(headers[_ALG]) if isinstance(headers[_ALG], int) else None
    if alg is None or alg not in algorithms:
        raise _fail(MdocReason.ALG, "issuerAuth uses an algorithm that is not allowed")
    if not isinstance(payload, bytes) or not isinstance(signature, bytes):
        raise _fail(MdocReason.MALFORMED, "issuerAuth needs an embedded payload and a signature")
    return _IssuerAuth(alg, _x5chain(headers.get(_X5CHAIN)), protected, payload, signature)


def _datetime(value: Any, what: str) -> datetime.datetime:
    if not isinstance(value, datetime.datetime) or value.utcoffset() is None:
        raise _fail(MdocReason.MALFORMED, f"validityInfo {what!r} must be a tdate")
    return value


def _validity(mso: dict[str, Any]) -> MdocValidity:
    info = _member(mso, "validityInfo", dict, "the MSO")
    expected = info.get("expectedUpdate")
    validity = MdocValidity(
        signed=_datetime(info.get("signed"), "signed"),
        valid_from=_datetime(info.get("validFrom"), "validFrom"),
        valid_until=_datetime(info.get("validUntil"), "validUntil"),
        expected_update=None if expected is None else _datetime(expected, "expectedUpdate"),
    )
    if validity.valid_until <= validity.valid_from:
        raise _fail(MdocReason.MALFORMED, "validUntil is not later than validFrom")
    return validity


def _value_digests(mso: dict[str, Any], size: int) -> dict[str, dict[int, bytes]]:
    value_digests = _member(mso, "valueDigests", dict, "the MSO")
    for namespace, digests in value_digests.items():
        if not isinstance(namespace, str) or not isinstance(digests, dict):
            raise _fail(MdocReason.MALFORMED, "valueDigests must map namespaces to digests")
        for digest_id, digest in digests.items():
            if not _is_uint(digest_id) or not isinstance(digest, bytes) or len(digest) != size:
                raise _fail(MdocReason.MALFORMED, "valueDigests holds a malformed digest")
    result: dict[str, dict[int, bytes]] = value_digests
    return result


def _claims(
    namespaces: Any,
    embedded: Mapping[bytes, bytes],
    value_digests: Mapping[str, Mapping[int, bytes]],
    hasher: Callable[[bytes], Any],
    max_depth: int,
) -> dict[str, dict[str, Any]]:
    """Every item checked against the MSO's digests (ISO/IEC 18013-5:2021 §9.3.1)."""
    if namespaces is None:
        return {}
    if not isinstance(namespaces, dict):
        raise _fail(MdocReason.MALFORMED, "nameSpaces must be a map")
    claims: dict[str, dict[str, Any]] = {}
    for namespace, items in namespaces.items():
        if not isinstance(namespace, str) or not isinstance(items, list) or not items:
            raise _fail(MdocReason.MALFORMED, "nameSpaces must map namespaces to item arrays")
        expected = value_digests.get(namespace)
        if expected is None:
            raise _fail(MdocReason.DIGEST_MISMATCH, "a namespace has no digests in the MSO")
        elements: dict[str, Any] = {}
        seen: set[int] = set()
        for wrapped in items:
            item = _embedded(wrapped, max_depth, "an IssuerSignedItem")
            digest_id: int = _member(item, "digestID", int, "an IssuerSignedItem")
            if digest_id < 0:
                raise _fail(MdocReason.MALFORMED, "an IssuerSignedItem has a negative digestID")
            random = _member(item, "random", bytes, "an IssuerSignedItem")
            identifier = _member(item, "elementIdentifier", str, "an IssuerSignedItem")
            if "elementValue" not in item or len(random) < _MIN_RANDOM_BYTES:
                raise _fail(MdocReason.MALFORMED, "an IssuerSignedItem is incomplete")
            if digest_id in seen:
                raise _fail(MdocReason.DUPLICATE_DIGEST_ID, "a digestID appears twice")
            seen.add(digest_id)
            received = embedded[wrapped.value]  # the tag-24 item exactly as it arrived
            digest = expected.get(digest_id)
            if digest is None or not secrets.compare_digest(hasher(received).digest(), digest):
                raise _fail(MdocReason.DIGEST_MISMATCH, "an item does not match its MSO digest")
            if identifier in elements:
                raise _fail(MdocReason.MALFORMED, "an element identifier appears twice")
            elements[identifier] = item["elementValue"]
        claims[namespace] = elements
    return claims


def _read_issuer_signed(
    issuer_signed: bytes | str, max_size: int, max_depth: int
) -> tuple[bytes, dict[Any, Any], dict[bytes, bytes]]:
    """The bytes, the decoded ``IssuerSigned`` map (with ``issuerAuth``) and its embedded
    tag-24 items, within the size and depth limits."""
    _require_cbor2()
    if isinstance(issuer_signed, str):
        data = decode_issuer_signed(issuer_signed, max_size=max_size)
    elif isinstance(issuer_signed, bytes | bytearray | memoryview):
        data = bytes(issuer_signed)
    else:
        raise _fail(MdocReason.MALFORMED, "an mdoc must be CBOR bytes or a base64url string")
    if len(data) > max_size:
        raise _fail(MdocReason.TOO_LARGE, f"the mdoc is larger than {max_size} bytes")
    document, embedded = _decode(data, max_depth, "IssuerSigned")
    if not isinstance(document, dict) or "issuerAuth" not in document:
        raise _fail(MdocReason.MALFORMED, "IssuerSigned must be a map with 'issuerAuth'")
    return data, document, embedded


def _mso(auth: _IssuerAuth, max_depth: int) -> Any:
    return _embedded(
        _decode(auth.payload, max_depth, "the issuerAuth payload")[0], max_depth, "the MSO"
    )


def _mso_status(mso: Any) -> dict[str, Any] | None:
    if not isinstance(mso, dict):
        raise _fail(MdocReason.MALFORMED, "the MSO must be a map")
    status = mso.get("status")
    if status is not None and not isinstance(status, dict):
        raise _fail(MdocReason.MALFORMED, "the MSO 'status' must be a map")
    return status


def read_mdoc_status(
    issuer_signed: bytes | str, *, max_size: int = MAX_MDOC_SIZE, max_depth: int = MAX_DEPTH
) -> dict[str, Any] | None:
    """The MSO's ``status`` map of an mdoc (e.g. ``{"status_list": {"idx", "uri"}}``,
    draft-ietf-oauth-status-list-14 §6.3.2), or ``None``, read WITHOUT verifying anything:
    verify the mdoc first (:func:`verify_mdoc`), as a status check presumes.

    Raises :class:`MdocVerificationError` (``malformed``, ``too large``) and
    :class:`MissingDependencyError` without cbor2.
    """
    _, document, _ = _read_issuer_signed(issuer_signed, max_size, max_depth)
    auth = _issuer_auth(document["issuerAuth"], DEFAULT_ALGORITHMS, max_depth)
    return _mso_status(_mso(auth, max_depth))


def verify_mdoc(
    issuer_signed: bytes | str,
    *,
    trust_anchors: Sequence[TrustAnchor],
    expected_doctype: str | None = None,
    holder_keys: Sequence[Mapping[str, Any]] | None = None,
    clock: Callable[[], float] = time.time,
    leeway: float = 60,
    algorithms: Collection[str] = DEFAULT_ALGORITHMS,
    max_size: int = MAX_MDOC_SIZE,
    max_depth: int = MAX_DEPTH,
) -> VerifiedMdoc:
    """Verify an ``IssuerSigned`` mdoc (CBOR bytes, or the OID4VCI base64url string).

    Checks, in order (after ISO/IEC 18013-5:2021 §9.3.1, inspection of issuer data):

    * size (``max_size`` bytes) and CBOR well-formedness (``max_depth``, allowed tags);
    * the COSE_Sign1 structure, with ``alg`` protected and in ``algorithms`` (JOSE names:
      ES256 is COSE -7, ES384 -35, ES512 -36, EdDSA -8);
    * the ``x5chain`` validated up to ``trust_anchors`` (IACA certificates, in any form
      :func:`oid4vci.x509.load_trust_anchors` reads) at ``clock()``, for the mdlDS purpose
      (:data:`MDL_DS_EKU`); then the signature with the document signer's key;
    * the MSO: ``version`` 1.x, ``digestAlgorithm``, ``docType`` equal to
      ``expected_doctype`` when given, ``validityInfo`` with ``signed`` inside the document
      signer's validity and ``validFrom`` ≤ now ≤ ``validUntil`` within ``leeway`` seconds;
    * every item's digest, over its tag-24 encoding as received, against ``valueDigests``,
      with no digestID twice in a namespace;
    * the ``deviceKey`` a valid public key and, when ``holder_keys`` (public JWKs) is given,
      the same key as one of them (RFC 7638 thumbprints).

    Raises :class:`MdocVerificationError` (and :class:`MissingDependencyError` without cbor2).
    """
    data, document, embedded = _read_issuer_signed(issuer_signed, max_size, max_depth)
    auth = _issuer_auth(document["issuerAuth"], algorithms, max_depth)
    try:
        verify_certificate_chain(
            auth.chain, trust_anchors=trust_anchors, extended_key_usage=MDL_DS_EKU, clock=clock
        )
    except CertificateError as exc:
        raise _fail(
            MdocReason.UNTRUSTED, f"the x5chain does not validate to a trust anchor ({exc.reason})"
        ) from None
    signed_data = _sig_structure(auth.protected, auth.payload)
    if not _verify_raw_signature(auth.alg, auth.chain[0].public_key(), signed_data, auth.signature):
        raise _fail(MdocReason.SIGNATURE, "the issuerAuth signature does not verify")

    mso = _mso(auth, max_depth)
    version = _member(mso, "version", str, "the MSO")
    if version.partition(".")[0] != "1":
        raise _fail(MdocReason.VERSION, "the MSO version is not 1.x")
    digest_algorithm = _member(mso, "digestAlgorithm", str, "the MSO")
    if digest_algorithm not in DIGEST_ALGORITHMS:
        raise _fail(MdocReason.DIGEST_ALG, "the MSO digestAlgorithm is not supported")
    hasher = DIGEST_ALGORITHMS[digest_algorithm]
    doctype = _member(mso, "docType", str, "the MSO")
    if expected_doctype is not None and doctype != expected_doctype:
        raise _fail(MdocReason.DOCTYPE_MISMATCH, "the docType is not the expected one")
    validity = _validity(mso)
    leaf = auth.chain[0]
    if not leaf.not_valid_before_utc <= validity.signed <= leaf.not_valid_after_utc:
        raise _fail(
            MdocReason.SIGNED_OUTSIDE_CERTIFICATE,
            "the MSO was signed outside the document signer's validity",
        )
    now = datetime.datetime.fromtimestamp(clock(), tz=datetime.UTC)
    margin = datetime.timedelta(seconds=leeway)
    if now + margin < validity.valid_from:
        raise _fail(MdocReason.NOT_YET_VALID, "the mdoc is not valid yet (validFrom)")
    if now - margin > validity.valid_until:
        raise _fail(MdocReason.EXPIRED, "the mdoc has expired (validUntil)")
    value_digests = _value_digests(mso, hasher(b"").digest_size)
    claims = _claims(document.get("nameSpaces"), embedded, value_digests, hasher, max_depth)
    key_info = _member(mso, "deviceKeyInfo", dict, "the MSO")
    device_key = jwk_from_cose_key(key_info.get("deviceKey"))
    if holder_keys is not None:
        if isinstance(holder_keys, Mapping):
            raise ArgumentTypeError("holder_keys must be a sequence of JWKs, not a single JWK")
        thumbprint = jwk_thumbprint(device_key)
        if not any(_thumbprint(key) == thumbprint for key in holder_keys):
            raise _fail(MdocReason.HOLDER_KEY_MISMATCH, "the deviceKey is not a holder key")
    status = _mso_status(mso)
    return VerifiedMdoc(
        doctype=doctype,
        claims=claims,
        device_key=device_key,
        validity=validity,
        certificate_chain=auth.chain,
        digest_algorithm=digest_algorithm,
        status=status,
        issuer_signed=data,
    )


def mdoc_claims_to_json(value: Any) -> Any:
    """``claims`` (or any element value) of a :class:`VerifiedMdoc` with only JSON types:
    ``date`` → ``"YYYY-MM-DD"``, ``datetime`` → RFC 3339 in UTC with ``Z``, ``bytes`` →
    base64url without padding; maps (integer keys as strings), lists and scalars as they are.
    """
    if isinstance(value, datetime.datetime):
        return _whole_seconds(value).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return b64url_encode(bytes(value))
    if isinstance(value, Mapping):
        return {str(k): mdoc_claims_to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mdoc_claims_to_json(v) for v in value]
    return value


def _thumbprint(jwk: Mapping[str, Any]) -> str | None:
    try:
        return jwk_thumbprint(jwk)
    except JoseError:
        return None
