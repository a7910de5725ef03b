"""IETF Token Status List (TSL): the pure core — list encoding, Status List Token, references.

Sections cited are draft-ietf-oauth-status-list-20's; the wire formats used here are the same in
-12 (pinned by OpenID4VCI 1.0) and -14 (pinned by HAIP 1.0). Nothing here does I/O:
fetching a Status List Token and deciding what a status means for a credential belong to the
wallet and issuer layers.

The list (:class:`StatusList`, draft-ietf-oauth-status-list-20 §4.1, §4.2)
    ``bits`` (1, 2, 4 or 8) per entry, a fixed number of entries, kept in a ``bytearray``. Entry
    ``i`` lives in byte ``i // (8 // bits)`` at bit offset ``(i % (8 // bits)) * bits``: least
    significant bits first within a byte, bytes in ascending order. :meth:`StatusList.encode`
    gives the JSON ``lst`` (DEFLATE in the zlib container, RFC 1950/1951, highest level; then
    base64url without padding); :meth:`StatusList.decode` reads one from an untrusted source with
    a size cap that holds *during* decompression, so a zip bomb never inflates past it.
    A :class:`StatusList` is **mutable** (like ``bytearray``, and unhashable): an issuer flips
    entries in place and re-encodes; :meth:`StatusList.copy` gives an independent copy.

Status values (draft-ietf-oauth-status-list-20 §7)
    :data:`VALID`, :data:`INVALID`, :data:`SUSPENDED`; :func:`status_name` names a value
    (application-specific and unregistered values stay numbers).

The Status List Token as a JWT (draft-ietf-oauth-status-list-20 §5.1)
    :func:`create_status_list_token` signs ``{sub, iat[, exp][, ttl], status_list}`` with
    ``typ`` ``statuslist+jwt``; :func:`verify_status_list_token` checks it
    (draft-ietf-oauth-status-list-20 §8.3 steps 3–5) and returns a frozen
    :class:`StatusListToken`.

The Referenced Token side (draft-ietf-oauth-status-list-20 §6, §8.3 steps 1, 6, 7)
    :func:`parse_status_reference` reads ``status.status_list.{idx, uri}`` from a credential's
    claims (:func:`read_credential_status_reference` from a compact credential);
    :func:`status_of` reads the entry of a verified token.

Fetching (draft-ietf-oauth-status-list-20 §8.1, §8.3, §9)
    :func:`build_status_list_request` and :func:`read_status_list_response` are the sans-IO
    halves of one ``GET``; a 3xx answer is followed (the draft's SHOULD), at most
    :data:`MAX_STATUS_LIST_REDIRECTS` times, to where :func:`status_list_redirect_target`
    says (https only, no downgrade); :class:`StatusListTokenCache` keeps verified tokens for their
    ``ttl`` (clamped) and never past ``exp``. The fetch itself (the one step with I/O, through
    a :class:`~oid4vci.http.Transport`) is :func:`oid4vci.wallet.status_lists.check_status`,
    which discovers the issuer's keys the way the wallet does (:mod:`oid4vci.wallet.verify`).

Refusals carry a :class:`StatusListReason` code and come as one of two sibling exceptions:
:class:`StatusListError` (a :class:`~oid4vci.errors.UsageError`) for arguments the caller chose
(a width of 3 bits, an index past the list's end when building one), and
:class:`StatusListVerificationError` (a :class:`~oid4vci.errors.CredentialVerificationError`,
*not* a subclass of the first) for material that came from elsewhere (an ``lst``, a token, a
credential's claims). Catch the second for what a peer sent.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final, Literal, TypeGuard
from urllib.parse import urldefrag, urljoin, urlsplit

import attrs

from ._issuer_signed import verify_issuer_signature
from .errors import (
    ArgumentTypeError,
    CredentialVerificationError,
    InsecureUrlError,
    JoseError,
    RedirectRefused,
    UsageError,
)
from .http import REDIRECT_STATUSES, HttpRequest, HttpResponse, Transport
from .jose import Signer, b64url_decode, b64url_encode, create_jws, decode_jws
from .tracing import send
from .urls import is_loopback_url, require_secure_url

__all__ = [
    "ALLOWED_BITS",
    "DEFAULT_ALGORITHMS",
    "DEFAULT_MAX_ENTRIES",
    "INVALID",
    "MAX_STATUS_LIST_REDIRECTS",
    "STATUS_LIST_JWT_MEDIA_TYPE",
    "STATUS_LIST_JWT_TYP",
    "SUSPENDED",
    "VALID",
    "StatusCheck",
    "StatusList",
    "StatusListError",
    "StatusListReason",
    "StatusListToken",
    "StatusListTokenCache",
    "StatusListVerificationError",
    "StatusReference",
    "build_status_list_request",
    "create_status_list_token",
    "fetch_status_list",
    "is_mdoc_credential",
    "parse_status_reference",
    "read_credential_status_reference",
    "read_status_list_response",
    "status_list_redirect_target",
    "status_list_token_header",
    "status_name",
    "status_of",
    "verify_status_list_token",
]

#: The Referenced Token is valid (draft-ietf-oauth-status-list-20 §7).
VALID: Final = 0x00
#: The Referenced Token is revoked or permanently invalid (draft-ietf-oauth-status-list-20 §7).
INVALID: Final = 0x01
#: The Referenced Token is temporarily invalid (draft-ietf-oauth-status-list-20 §7);
#: needs ``bits`` ≥ 2.
SUSPENDED: Final = 0x02

#: The JOSE ``typ`` of a Status List Token (draft-ietf-oauth-status-list-20 §5.1).
STATUS_LIST_JWT_TYP: Final = "statuslist+jwt"
#: Its media type, for ``Accept`` / ``Content-Type`` (draft-ietf-oauth-status-list-20 §8.1).
STATUS_LIST_JWT_MEDIA_TYPE: Final = "application/statuslist+jwt"
#: The widths an entry may have (draft-ietf-oauth-status-list-20 §4.1).
ALLOWED_BITS: Final = frozenset({1, 2, 4, 8})
#: Default cap on the entries :meth:`StatusList.decode` accepts: 2^23 entries, i.e. 1 MiB of
#: decompressed data at 1 bit and 8 MiB at 8 bits (the draft's largest examples have 2^20).
DEFAULT_MAX_ENTRIES: Final = 1 << 23
#: Default signature allow-list for :func:`verify_status_list_token`.
DEFAULT_ALGORITHMS: Final = ("ES256", "ES384", "ES512", "EdDSA")

#: Redirects one Status List fetch follows before it counts as ``unavailable``
#: (draft-ietf-oauth-status-list-20 §8.1: clients SHOULD follow, with loop protection).
MAX_STATUS_LIST_REDIRECTS: Final = 3

_TYPS: Final = frozenset({STATUS_LIST_JWT_TYP, STATUS_LIST_JWT_MEDIA_TYPE})
_NAMES: Final[dict[int, Literal["valid", "invalid", "suspended"]]] = {
    VALID: "valid",
    INVALID: "invalid",
    SUSPENDED: "suspended",
}
_ZLIB_WBITS: Final = 15  # the zlib container (RFC 1950) with a 32 KiB window; no gzip, no raw
_INFLATE_CHUNK: Final = 1 << 16
_MAX_TOKEN_BYTES: Final = 1 << 20  # the compact JWS cap of oid4vci.jose


class StatusListReason:
    """Short codes carried by :attr:`StatusListError.reason`.

    Codes shared with SD-JWT VC verification have the same strings as
    :class:`~oid4vci.sdjwt.SdJwtReason`.
    """

    MALFORMED: Final = "malformed"
    TOO_LARGE: Final = "too large"
    BITS: Final = "bits"
    SIZE: Final = "size"
    INDEX_OUT_OF_RANGE: Final = "index out of range"
    VALUE_OUT_OF_RANGE: Final = "value out of range"
    ALG: Final = "alg not allowed"
    UNKNOWN_KEY: Final = "unknown key"
    SIGNATURE: Final = "signature"
    TYP: Final = "typ"
    CLAIM_TYPE: Final = "claim type"
    SUB_MISMATCH: Final = "sub mismatch"
    EXPIRED: Final = "expired"
    NOT_YET_VALID: Final = "not yet valid"
    ISSUED_IN_FUTURE: Final = "issued in future"
    INSECURE_URI: Final = "insecure uri"
    #: The Status List Token could not be fetched (an error status, no answer).
    UNAVAILABLE: Final = "unavailable"
    CONTENT_TYPE: Final = "content type"
    #: The credential names no Status List (:func:`oid4vci.wallet.status_lists.check_status`).
    NO_REFERENCE: Final = "no status reference"


class StatusListError(UsageError):
    """A Token Status List operation was refused for arguments the caller chose (a width of 3
    bits, a value too wide for the list, an index past its end); ``reason`` is a
    :class:`StatusListReason` code."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


class StatusListVerificationError(CredentialVerificationError):
    """Material from elsewhere (an ``lst``, a Status List Token, a credential's ``status``
    claim) failed parsing or verification; ``reason`` is a :class:`StatusListReason` code."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


_StatusError = type[StatusListError] | type[StatusListVerificationError]


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_bits(bits: Any, error: _StatusError) -> int:
    if not _int(bits) or bits not in ALLOWED_BITS:
        raise error(StatusListReason.BITS, "'bits' must be 1, 2, 4 or 8")
    return int(bits)


# --------------------------------------------------------------------------------------------
# status values


def status_name(value: int) -> Literal["valid", "invalid", "suspended"] | int:
    """Name a status value: ``"valid"``, ``"invalid"`` or ``"suspended"``, else the number.

    draft-ietf-oauth-status-list-20 §7 registers 0, 1 and 2; ``0x03`` and ``0x0C``–``0x0F`` are
    application-specific (-12: ``0x0B``–``0x0F``), the rest is reserved for the OAuth Status
    Types registry. What such a value means is the relying party's policy. Raises
    :class:`StatusListError` unless ``0 <= value <= 255``.
    """
    if not _int(value) or not 0 <= value <= 0xFF:
        raise StatusListError(StatusListReason.VALUE_OUT_OF_RANGE, "a status is an integer 0..255")
    return _NAMES.get(value, value)


# --------------------------------------------------------------------------------------------
# the list


class StatusList:
    """A Status List: ``size`` entries of ``bits`` bits each, all ``VALID`` at first.

    Layout of draft-ietf-oauth-status-list-20 §4.1 (see the module docstring). Mutable on
    purpose (issuers flip entries of lists with 2^17 … 2^20 entries): :meth:`set` changes one
    entry in place in O(1). Equality compares ``bits`` and the bytes; instances are unhashable.
    ``size * bits`` must be a multiple of 8, so that :meth:`encode` then :meth:`decode` gives the
    same list back (the wire form has no entry count: draft-ietf-oauth-status-list-20 §4.1
    fills whole bytes).
    """

    __slots__ = ("_bits", "_data", "_per_byte", "_size")
    __hash__ = None  # type: ignore[assignment]  # mutable

    def __init__(self, bits: int, size: int) -> None:
        """An all-``VALID`` list. Raises :class:`StatusListError` (reason ``bits`` or ``size``)."""
        self._bits = _check_bits(bits, StatusListError)
        self._per_byte = 8 // self._bits
        if not _int(size) or size <= 0 or size % self._per_byte:
            raise StatusListError(
                StatusListReason.SIZE,
                f"'size' must be a positive multiple of {self._per_byte} "
                f"for {self._bits}-bit entries",
            )
        self._size = int(size)
        self._data = bytearray(size // self._per_byte)

    @classmethod
    def from_bytes(cls, data: bytes | bytearray, bits: int) -> StatusList:
        """The list whose uncompressed byte array is ``data``.

        ``data`` is copied; its layout is draft-ietf-oauth-status-list-20 §4.1.

        ``size`` is ``len(data) * 8 // bits``. Raises :class:`StatusListError`.
        """
        if not isinstance(data, bytes | bytearray):
            raise StatusListError(StatusListReason.MALFORMED, "the byte array must be bytes")
        return cls._wrap(bytearray(data), _check_bits(bits, StatusListError), StatusListError)

    @classmethod
    def _wrap(cls, data: bytearray, bits: int, error: _StatusError) -> StatusList:
        if not data:
            raise error(StatusListReason.SIZE, "a Status List has at least one byte")
        new = cls.__new__(cls)
        new._bits = bits
        new._per_byte = 8 // bits
        new._size = len(data) * new._per_byte
        new._data = data
        return new

    @classmethod
    def decode(cls, lst: str, bits: int, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> StatusList:
        """Read the JSON ``lst`` of a list with ``bits``-bit entries, safely.

        The JSON Status List is draft-ietf-oauth-status-list-20 §4.2.
        ``lst`` must be base64url without padding of a complete zlib stream (RFC 1950, DEFLATE
        inside) and nothing after it. At most ``max_entries`` entries are accepted, i.e.
        ``max_entries * bits // 8`` bytes: decompression stops as soon as the output would pass
        that cap, so hostile input never allocates much more than it. Raises
        :class:`StatusListVerificationError` with reason ``bits``, ``malformed``, ``size`` or
        ``too large``.
        """
        error = StatusListVerificationError
        width = _check_bits(bits, error)
        if not _int(max_entries) or max_entries <= 0:
            raise StatusListError(StatusListReason.SIZE, "'max_entries' must be a positive int")
        cap = max_entries * width // 8
        if not isinstance(lst, str):
            raise error(StatusListReason.MALFORMED, "'lst' must be a string")
        # No DEFLATE encoder needs twice the raw size (stored blocks add 5 bytes per 64 KiB):
        # refuse longer input before decoding it at all.
        if len(lst) > (2 * cap + 1024) * 4 // 3 + 4:
            raise error(StatusListReason.TOO_LARGE, "'lst' is longer than the size cap allows")
        try:
            compressed = b64url_decode(lst)
        except JoseError:
            raise error(StatusListReason.MALFORMED, "'lst' is not base64url") from None
        return cls._wrap(_inflate(compressed, cap), width, error)

    @property
    def bits(self) -> int:
        """Bits per entry: 1, 2, 4 or 8."""
        return self._bits

    @property
    def size(self) -> int:
        """Number of entries (indices ``0 .. size - 1``)."""
        return self._size

    def __len__(self) -> int:
        return self._size

    def _locate(self, idx: int) -> tuple[int, int]:
        if not _int(idx) or not 0 <= idx < self._size:
            raise StatusListError(
                StatusListReason.INDEX_OUT_OF_RANGE, f"index is not in 0..{self._size - 1}"
            )
        byte, slot = divmod(idx, self._per_byte)
        return byte, slot * self._bits

    def get(self, idx: int) -> int:
        """The status at ``idx``. Raises :class:`StatusListError` (``index out of range``)."""
        byte, shift = self._locate(idx)
        return (self._data[byte] >> shift) & ((1 << self._bits) - 1)

    def set(self, idx: int, value: int) -> None:
        """Set the status at ``idx`` in place.

        Raises :class:`StatusListError`: ``index out of range``, or ``value out of range`` unless
        ``0 <= value < 2 ** bits``.
        """
        byte, shift = self._locate(idx)
        if not _int(value) or not 0 <= value < (1 << self._bits):
            raise StatusListError(
                StatusListReason.VALUE_OUT_OF_RANGE,
                f"a {self._bits}-bit status is in 0..{(1 << self._bits) - 1}",
            )
        mask = ((1 << self._bits) - 1) << shift
        self._data[byte] = (self._data[byte] & ~mask) | (value << shift)

    def to_bytes(self) -> bytes:
        """The uncompressed byte array (draft-ietf-oauth-status-list-20 §4.1)."""
        return bytes(self._data)

    def encode(self) -> str:
        """The JSON ``lst`` (draft-ietf-oauth-status-list-20 §4.2).

        zlib at level 9 (RFC 1950 header ``78 DA``), then base64url without padding. Other zlib
        builds may compress differently; any verifier inflates.
        """
        return b64url_encode(zlib.compress(self._data, 9))

    def copy(self) -> StatusList:
        """An independent copy."""
        return self._wrap(bytearray(self._data), self._bits, StatusListError)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StatusList):
            return NotImplemented
        return self._bits == other._bits and self._data == other._data

    def __repr__(self) -> str:
        return f"StatusList(bits={self._bits}, size={self._size})"


def _inflate(compressed: bytes, cap: int) -> bytearray:
    """Inflate one complete zlib stream into at most ``cap`` bytes (else ``too large``)."""
    error = StatusListVerificationError
    inflater = zlib.decompressobj(_ZLIB_WBITS)
    out = bytearray()
    pending = compressed
    try:
        while not inflater.eof:
            # Never more than ``cap + 1`` bytes in total: one byte past the cap proves too much.
            room = min(_INFLATE_CHUNK, cap + 1 - len(out))
            chunk = inflater.decompress(pending, room)
            out += chunk
            if len(out) > cap:
                raise error(StatusListReason.TOO_LARGE, f"'lst' inflates to more than {cap} bytes")
            pending = inflater.unconsumed_tail
            if not pending and len(chunk) < room:
                break  # all input consumed and zlib had no more to give: truncated stream
    except zlib.error:
        raise error(StatusListReason.MALFORMED, "'lst' is not a valid zlib stream") from None
    if not inflater.eof:
        raise error(StatusListReason.MALFORMED, "'lst' is a truncated zlib stream")
    if inflater.unused_data:
        raise error(StatusListReason.MALFORMED, "'lst' has data after the zlib stream")
    return out


# --------------------------------------------------------------------------------------------
# the Status List Token (JWT)


def _positive_int(name: str, value: Any) -> int:
    if not _int(value) or value <= 0:
        raise UsageError(f"{name!r} must be a positive integer")
    return int(value)


async def create_status_list_token(
    signer: Signer,
    status_list: StatusList,
    *,
    uri: str,
    issued_at: int | None = None,
    expires_in: int | None = None,
    ttl: int | None = None,
    kid: str | None = None,
    x5c: Sequence[str] | None = None,
    aggregation_uri: str | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """Sign ``status_list`` as a Status List Token JWT and return the compact JWS.

    The JWT form is draft-ietf-oauth-status-list-20 §5.1.

    Header: ``typ`` ``statuslist+jwt``, ``alg`` (the signer's), ``kid`` and ``x5c`` when given (HAIP
    1.0 §6.1 requires ``x5c``). Claims: ``sub`` = ``uri`` (the URL the token is served at, which
    Referenced Tokens carry), ``iat`` (``issued_at``, default the clock), ``exp`` = ``iat +
    expires_in`` and ``ttl`` (seconds a consumer may cache it) when given — both RECOMMENDED since
    -14 — and ``status_list`` ``{bits, lst[, aggregation_uri]}`` (draft-ietf-oauth-status-list-20
    §4.2, §9).
    Raises :class:`~oid4vci.errors.ValidationError` for unusable arguments.
    """
    if not isinstance(status_list, StatusList):
        raise UsageError("'status_list' must be a StatusList")
    if not isinstance(uri, str) or not uri:
        raise UsageError("'uri' must be a non-empty string")
    iat = int(clock()) if issued_at is None else _positive_int("issued_at", issued_at)
    claims: dict[str, Any] = {"sub": uri, "iat": iat}
    if expires_in is not None:
        claims["exp"] = iat + _positive_int("expires_in", expires_in)
    if ttl is not None:
        claims["ttl"] = _positive_int("ttl", ttl)
    body: dict[str, Any] = {"bits": status_list.bits, "lst": status_list.encode()}
    if aggregation_uri is not None:
        if not isinstance(aggregation_uri, str) or not aggregation_uri:
            raise UsageError("'aggregation_uri' must be a non-empty string")
        body["aggregation_uri"] = aggregation_uri
    claims["status_list"] = body
    header: dict[str, Any] = {"typ": STATUS_LIST_JWT_TYP}
    if kid is not None:
        if not isinstance(kid, str) or not kid:
            raise UsageError("'kid' must be a non-empty string")
        header["kid"] = kid
    if x5c is not None:
        if isinstance(x5c, str) or not x5c or not all(isinstance(c, str) and c for c in x5c):
            raise UsageError("'x5c' must be a non-empty sequence of base64 certificates")
        header["x5c"] = list(x5c)
    return await create_jws(signer, claims, header)


@attrs.frozen(kw_only=True)
class StatusListToken:
    """A verified Status List Token.

    ``sub``, ``iat``, ``exp`` and ``ttl`` are its claims (``exp`` and ``ttl`` ``None`` when
    absent), ``status_list`` the decoded list and ``aggregation_uri`` that member of it.
    ``header`` and ``claims`` are the JOSE header and the whole payload (for ``iss``, ``kid``,
    ``x5c``…). The value is frozen, but ``status_list`` is a mutable :class:`StatusList` of its
    own: do not change it (take :meth:`StatusList.copy` to edit).
    """

    status_list: StatusList
    sub: str
    iat: float
    exp: float | None
    ttl: float | None
    aggregation_uri: str | None
    header: dict[str, Any] = attrs.field(repr=False)
    claims: dict[str, Any] = attrs.field(repr=False)


# verify_issuer_signature speaks of "the credential": keep its reasons, use our own words.
_SIGNATURE_MESSAGES: Final = {
    StatusListReason.ALG: "the Status List Token uses an algorithm that is not allowed",
    StatusListReason.UNKNOWN_KEY: "no key matches the Status List Token's 'kid'",
    StatusListReason.SIGNATURE: "the Status List Token's signature does not verify",
}


def _signature_fail(reason: str, message: str) -> StatusListVerificationError:
    return StatusListVerificationError(reason, _SIGNATURE_MESSAGES.get(reason, message))


def _fail(reason: str, message: str) -> StatusListVerificationError:
    return StatusListVerificationError(reason, message)


def _number(value: Any) -> TypeGuard[float]:
    """A JSON number: an int (not a bool; any size) or a finite float."""
    return _int(value) or (isinstance(value, float) and math.isfinite(value))


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    if not _number(value):
        raise _fail(StatusListReason.CLAIM_TYPE, f"{name!r} must be a NumericDate")
    return value  # as sent: an int stays an int


def _status_list_member(claims: Mapping[str, Any]) -> tuple[int, str, str | None]:
    body = claims.get("status_list")
    if not isinstance(body, dict):
        raise _fail(StatusListReason.MALFORMED, "the token has no 'status_list' object")
    bits, lst = body.get("bits"), body.get("lst")
    if "bits" not in body or "lst" not in body:
        raise _fail(StatusListReason.MALFORMED, "'status_list' needs 'bits' and 'lst'")
    if not isinstance(lst, str):
        raise _fail(StatusListReason.MALFORMED, "'status_list.lst' must be a string")
    aggregation_uri = body.get("aggregation_uri")
    if aggregation_uri is not None and (
        not isinstance(aggregation_uri, str) or not aggregation_uri
    ):
        raise _fail(StatusListReason.MALFORMED, "'status_list.aggregation_uri' must be a string")
    return _check_bits(bits, StatusListVerificationError), lst, aggregation_uri


def verify_status_list_token(
    token: str,
    *,
    uri: str,
    keys: Sequence[Mapping[str, Any]],
    algorithms: Collection[str] = DEFAULT_ALGORITHMS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    clock: Callable[[], float] = time.time,
    leeway: float = 60,
) -> StatusListToken:
    """Verify a Status List Token JWT fetched from ``uri``.

    draft-ietf-oauth-status-list-20 §5.1 and §8.3 steps 3–5.

    Checks, each failure raising :class:`StatusListVerificationError` with its reason: a compact
    JWS (``malformed``); the signature under ``algorithms`` (asymmetric only: ``none`` and HMAC
    are refused whatever the list says; ``alg not allowed``) with one of ``keys``, public JWKs
    picked by the header ``kid`` when it has one (``unknown key``, ``signature``); ``typ``
    ``statuslist+jwt`` (or its ``application/`` form, RFC 7515 §4.1.9; ``typ``); ``sub`` equal
    to ``uri`` exactly (``sub mismatch``); ``iat`` present (``malformed``) and not in the future
    (``issued in future``), ``exp`` not passed (``expired``), ``nbf`` reached (``not yet
    valid``), each with ``leeway`` seconds; ``ttl`` a positive number (``claim type``); the
    ``status_list`` object (``malformed``, ``bits``) and its ``lst`` within ``max_entries``
    (:meth:`StatusList.decode`). Trusting the key (e.g. its ``x5c`` chain) is the caller's
    part: only ``keys`` are used.
    """
    if not isinstance(uri, str) or not uri:
        raise UsageError("'uri' must be a non-empty string")
    if not isinstance(token, str):
        raise _fail(StatusListReason.MALFORMED, "a Status List Token must be a string")
    try:
        jws = decode_jws(token)
    except JoseError as exc:
        raise _fail(StatusListReason.MALFORMED, f"not a compact JWS: {exc}") from None
    verify_issuer_signature(jws, keys, algorithms, _signature_fail)
    header, claims = jws.header, jws.payload
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _TYPS:
        raise _fail(StatusListReason.TYP, "the JOSE header 'typ' must be 'statuslist+jwt'")
    sub = claims.get("sub")
    if not isinstance(sub, str):
        raise _fail(StatusListReason.MALFORMED, "the token has no 'sub' string")
    if sub != uri:
        raise _fail(StatusListReason.SUB_MISMATCH, "'sub' is not the URI the token came from")
    iat = _numeric_date(claims, "iat")
    if iat is None:
        raise _fail(StatusListReason.MALFORMED, "the token has no 'iat'")
    exp = _numeric_date(claims, "exp")
    nbf = _numeric_date(claims, "nbf")
    now = clock()
    if exp is not None and now - leeway >= exp:
        raise _fail(StatusListReason.EXPIRED, "the Status List Token has expired")
    if nbf is not None and now + leeway < nbf:
        raise _fail(StatusListReason.NOT_YET_VALID, "the Status List Token is not valid yet")
    if now + leeway < iat:
        raise _fail(StatusListReason.ISSUED_IN_FUTURE, "'iat' is in the future")
    ttl = claims.get("ttl")
    if ttl is not None and (not _number(ttl) or ttl <= 0):
        raise _fail(StatusListReason.CLAIM_TYPE, "'ttl' must be a positive number")
    bits, lst, aggregation_uri = _status_list_member(claims)
    status_list = StatusList.decode(lst, bits, max_entries=max_entries)
    return StatusListToken(
        status_list=status_list,
        sub=sub,
        iat=iat,
        exp=exp,
        ttl=ttl,
        aggregation_uri=aggregation_uri,
        header=header,
        claims=claims,
    )


# --------------------------------------------------------------------------------------------
# the Referenced Token side


@attrs.frozen(kw_only=True)
class StatusReference:
    """A credential's pointer into a Status List: entry ``idx`` of the list at ``uri``.

    The ``status.status_list`` claim of draft-ietf-oauth-status-list-20 §6.
    """

    idx: int
    uri: str


def parse_status_reference(
    claims: Mapping[str, Any], *, allow_insecure_loopback: bool = False
) -> StatusReference | None:
    """Read ``status.status_list`` from a credential's claims.

    draft-ietf-oauth-status-list-20 §6 and §8.3 step 1.

    ``None`` when there is no ``status`` claim, or when it names only other status mechanisms
    (policies such as "``status`` MUST contain ``status_list``", HAIP 1.0 §6.1, are the caller's).
    Else ``idx`` must be a non-negative integer (not a boolean, not a float) and ``uri`` an https
    URL (http to a loopback host only with ``allow_insecure_loopback``; no user info, no fragment).
    Raises :class:`StatusListVerificationError` with reason ``malformed`` or ``insecure uri``.
    """
    if not isinstance(claims, Mapping):
        raise _fail(StatusListReason.MALFORMED, "the claims must be a JSON object")
    if "status" not in claims:
        return None
    status = claims["status"]
    if not isinstance(status, Mapping) or not status:
        raise _fail(StatusListReason.MALFORMED, "'status' must be a non-empty object")
    if "status_list" not in status:
        return None
    reference = status["status_list"]
    if not isinstance(reference, Mapping):
        raise _fail(StatusListReason.MALFORMED, "'status.status_list' must be an object")
    idx, uri = reference.get("idx"), reference.get("uri")
    if not _int(idx) or idx < 0:
        raise _fail(StatusListReason.MALFORMED, "'status.status_list.idx' must be an integer ≥ 0")
    if not isinstance(uri, str) or not uri:
        raise _fail(StatusListReason.MALFORMED, "'status.status_list.uri' must be a string")
    try:
        require_secure_url(
            uri, allow_insecure_loopback=allow_insecure_loopback, what="the status list URI"
        )
    except InsecureUrlError as exc:
        raise _fail(StatusListReason.INSECURE_URI, str(exc)) from None
    return StatusReference(idx=int(idx), uri=uri)


def status_of(token: StatusListToken, idx: int) -> int:
    """The status of entry ``idx`` of a verified token.

    draft-ietf-oauth-status-list-20 §8.3 steps 6–7.

    An ``idx`` past the list's end means the Referenced Token MUST be rejected (-16+; SHOULD
    before): :class:`StatusListVerificationError` with reason ``index out of range``. Interpret
    the number with :func:`status_name`.
    """
    if not isinstance(token, StatusListToken):
        raise ArgumentTypeError("status_of needs a verified StatusListToken")
    try:
        return token.status_list.get(idx)
    except StatusListError as exc:
        raise _fail(exc.reason, "the index is not in the Status List") from None


def is_mdoc_credential(credential: str) -> bool:
    """An ``mso_mdoc`` credential is one base64url string; a JWT or SD-JWT has dots."""
    return "." not in credential.split("~", 1)[0]


def read_credential_status_reference(
    credential: str, *, allow_insecure_loopback: bool = False
) -> StatusReference | None:
    """The ``status.status_list`` of a compact JWT, SD-JWT or ``mso_mdoc`` credential,
    unverified.

    Of a JWT the issuer-signed payload is read (for an SD-JWT, the part before the first
    ``~``): in an SD-JWT VC ``status`` is never selectively disclosable
    (draft-ietf-oauth-sd-jwt-vc-11 §3.2.2.2). Of an mdoc (the base64url ``IssuerSigned`` of
    OID4VCI 1.0 Appendix A.2.4) the MSO's ``status`` (draft-ietf-oauth-status-list-14 §6.3.2;
    needs the ``mdoc`` extra). Verify the credential itself first
    (draft-ietf-oauth-status-list-20 §8.3). Raises :class:`StatusListVerificationError` (see
    :func:`parse_status_reference`).
    """
    if not isinstance(credential, str) or not credential:
        raise _fail(StatusListReason.MALFORMED, "a credential must be a non-empty string")
    if is_mdoc_credential(credential):
        from .mdoc import MdocVerificationError, read_mdoc_status

        try:
            status = read_mdoc_status(credential.strip())
        except MdocVerificationError:
            raise _fail(
                StatusListReason.MALFORMED, "the credential is not a JWT, SD-JWT or mdoc"
            ) from None
        if status is None:
            return None
        return parse_status_reference(
            {"status": status}, allow_insecure_loopback=allow_insecure_loopback
        )
    try:
        jws = decode_jws(credential.split("~", 1)[0].strip())
    except JoseError:
        raise _fail(StatusListReason.MALFORMED, "the credential is not a JWT or SD-JWT") from None
    return parse_status_reference(jws.payload, allow_insecure_loopback=allow_insecure_loopback)


# --------------------------------------------------------------------------------------------
# fetching (sans-IO halves) and caching


def build_status_list_request(uri: str) -> HttpRequest:
    """``GET uri`` asking for a JWT Status List Token (draft-ietf-oauth-status-list-20 §8.1)."""
    return HttpRequest(method="GET", url=uri, headers={"Accept": STATUS_LIST_JWT_MEDIA_TYPE})


def status_list_redirect_target(
    current: str, location: str | None, *, allow_insecure_loopback: bool = False
) -> str:
    """Where a 3xx answer to a Status List request at ``current`` leads: its ``Location``
    resolved against ``current`` (draft-ietf-oauth-status-list-20 §8.1, RFC 9110 §10.2.2).

    The target must be https; http only to a loopback host, with ``allow_insecure_loopback``,
    and only from an http loopback URL (never a downgrade from https). Raises
    :class:`StatusListVerificationError`: ``unavailable`` without a ``Location``, ``insecure
    uri`` for a target it may not follow.
    """
    if not isinstance(location, str) or not location.strip():
        raise _fail(StatusListReason.UNAVAILABLE, "a status list redirect without Location")
    target = urldefrag(urljoin(current, location.strip())).url
    from_http = urlsplit(current).scheme == "http" and is_loopback_url(current)
    try:
        return require_secure_url(
            target,
            allow_insecure_loopback=allow_insecure_loopback and from_http,
            what="the status list redirect",
        )
    except InsecureUrlError as exc:
        raise _fail(StatusListReason.INSECURE_URI, str(exc)) from None


def status_list_token_header(response: HttpResponse) -> dict[str, Any]:
    """The JOSE header of the token in ``response`` (unverified), to pick its keys with.

    Raises :class:`StatusListVerificationError`: ``unavailable`` unless the answer is 2xx,
    ``content type`` unless it is ``application/statuslist+jwt``
    (draft-ietf-oauth-status-list-20 §8.1), ``malformed`` unless the body is a compact JWS.
    """
    if not 200 <= response.status < 300:
        raise _fail(StatusListReason.UNAVAILABLE, f"the status list URI answered {response.status}")
    if response.media_type != STATUS_LIST_JWT_MEDIA_TYPE:
        raise _fail(
            StatusListReason.CONTENT_TYPE,
            f"the Status List is served as {STATUS_LIST_JWT_MEDIA_TYPE!r}",
        )
    try:
        return decode_jws(_body_text(response)).header
    except JoseError:
        raise _fail(
            StatusListReason.MALFORMED, "the Status List Token is not a compact JWS"
        ) from None


def _body_text(response: HttpResponse) -> str:
    if len(response.body) > _MAX_TOKEN_BYTES:
        raise _fail(
            StatusListReason.TOO_LARGE, f"the Status List Token is over {_MAX_TOKEN_BYTES} bytes"
        )
    try:
        return response.body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise _fail(StatusListReason.MALFORMED, "the Status List Token is not ASCII") from None


def read_status_list_response(
    response: HttpResponse,
    *,
    uri: str,
    keys: Sequence[Mapping[str, Any]],
    algorithms: Collection[str] = DEFAULT_ALGORITHMS,
    max_entries: int = DEFAULT_MAX_ENTRIES,
    clock: Callable[[], float] = time.time,
    leeway: float = 60,
) -> StatusListToken:
    """The verified Status List Token of the answer to :func:`build_status_list_request`.

    The answer must be 2xx with ``application/statuslist+jwt`` (draft-ietf-oauth-status-list-20
    §8.1); the token is checked per draft-ietf-oauth-status-list-20 §8.3 by
    :func:`verify_status_list_token` (same arguments). Raises
    :class:`StatusListVerificationError`.
    """
    status_list_token_header(response)
    return verify_status_list_token(
        _body_text(response),
        uri=uri,
        keys=keys,
        algorithms=algorithms,
        max_entries=max_entries,
        clock=clock,
        leeway=leeway,
    )


class StatusListTokenCache:
    """Verified Status List Tokens per URI, each kept ``ttl`` seconds after it was fetched.

    draft-ietf-oauth-status-list-20 §9 (caching) and §8.3 (sanity bounds): the token's ``ttl``
    is clamped to ``min_ttl`` .. ``max_ttl`` (``default_ttl`` when it has none), and an entry
    is never used at or after the token's ``exp``. Keep one per wallet or verifier and pass it
    to :func:`oid4vci.wallet.status_lists.check_status` and to the wallet's flows.
    """

    def __init__(
        self,
        *,
        min_ttl: float = 10,
        max_ttl: float = 86400,
        default_ttl: float = 300,
        max_entries: int = 256,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """An empty cache; ``max_entries`` bounds how many lists it holds (oldest dropped)."""
        if not 0 <= min_ttl <= default_ttl <= max_ttl or not _int(max_entries) or max_entries <= 0:
            raise UsageError("need 0 <= min_ttl <= default_ttl <= max_ttl and max_entries > 0")
        self._min, self._max, self._default = float(min_ttl), float(max_ttl), float(default_ttl)
        self._limit = int(max_entries)
        self._clock = clock
        self._entries: dict[str, tuple[float, StatusListToken]] = {}

    def __repr__(self) -> str:
        return f"StatusListTokenCache(lists={len(self._entries)})"

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, uri: str) -> StatusListToken | None:
        """The cached token of ``uri``, or ``None`` when absent or stale."""
        entry = self._entries.get(uri)
        if entry is None:
            return None
        until, token = entry
        if self._clock() >= until:
            del self._entries[uri]
            return None
        return token

    def put(self, uri: str, token: StatusListToken) -> None:
        """Keep ``token`` (fetched from ``uri`` just now)."""
        now = self._clock()
        ttl = self._default if token.ttl is None else min(max(token.ttl, self._min), self._max)
        until = now + ttl if token.exp is None else min(now + ttl, token.exp)
        if until <= now:
            return
        self._entries.pop(uri, None)
        while len(self._entries) >= self._limit:
            del self._entries[next(iter(self._entries))]
        self._entries[uri] = (until, token)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()


# --------------------------------------------------------------------------------------------
# one credential's status, with I/O through a Transport


@attrs.frozen(kw_only=True)
class StatusCheck:
    """The outcome of :func:`oid4vci.wallet.status_lists.check_status`: ``status`` as :func:`status_name` gives it
    (``"valid"``, ``"invalid"``, ``"suspended"`` or the number), ``value`` the number, and
    the credential's reference (``uri``, ``idx``)."""

    status: Literal["valid", "invalid", "suspended"] | int
    value: int
    uri: str
    idx: int


async def fetch_status_list(
    transport: Transport, uri: str, *, allow_insecure_loopback: bool
) -> HttpResponse:
    """``GET uri``, following at most :data:`MAX_STATUS_LIST_REDIRECTS` redirects
    (draft-ietf-oauth-status-list-20 §8.1), whether the transport refuses them
    (:class:`~oid4vci.errors.RedirectRefused`) or returns them."""
    url = uri
    for _ in range(MAX_STATUS_LIST_REDIRECTS + 1):
        try:
            response = await send(transport, build_status_list_request(url))
        except RedirectRefused as exc:
            status, location = exc.status, exc.location
        else:
            if response.status not in REDIRECT_STATUSES:
                return response
            status, location = response.status, response.headers.get("Location")
        if status is None:
            raise _fail(StatusListReason.UNAVAILABLE, "the status list URI answered a redirect")
        url = status_list_redirect_target(
            url, location, allow_insecure_loopback=allow_insecure_loopback
        )
    raise _fail(
        StatusListReason.UNAVAILABLE,
        f"the status list URI redirected more than {MAX_STATUS_LIST_REDIRECTS} times",
    )
