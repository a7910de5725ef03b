"""IETF Token Status List (TSL): the pure core — list encoding and status values.

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

Every refusal raises :class:`StatusListError` (a :class:`~oid4vci.errors.ValidationError`) with a
:class:`StatusListReason` code. Refusals of material that came from elsewhere (an ``lst``)
raise its subclass :class:`StatusListVerificationError`, which is also a
:class:`~oid4vci.errors.CredentialVerificationError`.
"""

from __future__ import annotations

import zlib
from typing import Any, Final, Literal, TypeGuard

from .errors import CredentialVerificationError, JoseError, ValidationError
from .jose import b64url_decode, b64url_encode

__all__ = [
    "ALLOWED_BITS",
    "DEFAULT_MAX_ENTRIES",
    "INVALID",
    "SUSPENDED",
    "VALID",
    "StatusList",
    "StatusListError",
    "StatusListReason",
    "StatusListVerificationError",
    "status_name",
]

#: The Referenced Token is valid (draft-ietf-oauth-status-list-20 §7).
VALID: Final = 0x00
#: The Referenced Token is revoked or permanently invalid (draft-ietf-oauth-status-list-20 §7).
INVALID: Final = 0x01
#: The Referenced Token is temporarily invalid (draft-ietf-oauth-status-list-20 §7);
#: needs ``bits`` ≥ 2.
SUSPENDED: Final = 0x02

#: The widths an entry may have (draft-ietf-oauth-status-list-20 §4.1).
ALLOWED_BITS: Final = frozenset({1, 2, 4, 8})
#: Default cap on the entries :meth:`StatusList.decode` accepts: 2^23 entries, i.e. 1 MiB of
#: decompressed data at 1 bit and 8 MiB at 8 bits (the draft's largest examples have 2^20).
DEFAULT_MAX_ENTRIES: Final = 1 << 23

_NAMES: Final[dict[int, Literal["valid", "invalid", "suspended"]]] = {
    VALID: "valid",
    INVALID: "invalid",
    SUSPENDED: "suspended",
}
_ZLIB_WBITS: Final = 15  # the zlib container (RFC 1950) with a 32 KiB window; no gzip, no raw
_INFLATE_CHUNK: Final = 1 << 16


class StatusListReason:
    """Short codes carried by :attr:`StatusListError.reason`."""

    MALFORMED: Final = "malformed"
    TOO_LARGE: Final = "too large"
    BITS: Final = "bits"
    SIZE: Final = "size"
    INDEX_OUT_OF_RANGE: Final = "index out of range"
    VALUE_OUT_OF_RANGE: Final = "value out of range"


class StatusListError(ValidationError):
    """A Token Status List operation was refused; ``reason`` is a :class:`StatusListReason` code.

    Raised as such for arguments the caller chose (a width of 3 bits, a value too wide for the
    list, an index past its end).
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


class StatusListVerificationError(StatusListError, CredentialVerificationError):
    """Material from elsewhere (an ``lst``) failed parsing; ``reason`` is a
    :class:`StatusListReason` code."""


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_bits(bits: Any, error: type[StatusListError]) -> int:
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
    same list back (the wire form has no entry count: §4.1 fills whole bytes).
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
    def _wrap(cls, data: bytearray, bits: int, error: type[StatusListError]) -> StatusList:
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
