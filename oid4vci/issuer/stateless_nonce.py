"""Stateless server nonces: ``c_nonce`` values and ``DPoP-Nonce`` values that need no store.

A nonce carries its own purpose, expiry and integrity, so minting one writes nothing to the
:class:`~oid4vci.issuer.store.Store` and checking one reads nothing from it. Only redemption
touches the store: a ``c_nonce`` accepted in a key proof is recorded (``add_if_absent``) until
it expires, so it is single use (:func:`oid4vci.issuer.nonce.take_c_nonce`); server DPoP nonces
are reusable while they live (RFC 9449 §8 leaves that to the server; the DPoP ``jti`` replay
cache still refuses a replayed proof).

**Format.** ``base64url(kid ‖ version ‖ purpose ‖ expiry ‖ random ‖ tag)``, 41 bytes, 55
characters:

==========  =====  ================================================================
field       bytes  meaning
==========  =====  ================================================================
kid         3      id of the :class:`NonceKeys` key that made it (SHA-256 of the key)
version     1      format version, ``1``
purpose     1      :class:`NoncePurpose` (``c_nonce`` or ``DPoP-Nonce``)
expiry      4      Unix time in whole seconds, big endian (valid while ``now < expiry``)
random      16     128 random bits (the nonce's identity, and what makes it unpredictable)
tag         16     HMAC-SHA256 (RFC 2104) truncated to 128 bits
==========  =====  ================================================================

The tag covers a domain label, the credential issuer identifier (so a tenant's nonce is not
valid at another tenant) and every byte before the tag (so purpose and expiry cannot be
changed). HMAC-SHA256 rather than AES-GCM: nothing in the nonce is confidential, and an
unauthenticated endpoint may mint billions of nonces under one key, where AES-GCM's random
96-bit IVs would approach their collision bound (about 2**32 messages per key) and a repeated
IV would expose the authentication key; HMAC has no such limit and needs no IV. A 128-bit tag
is well above RFC 2104 §5's floor (half the hash length, at least 80 bits).

**Keys.** :class:`NonceKeys` holds the current key (which mints) and older keys that are still
accepted during a rotation. Every nonce names its key by ``kid``. An issuer that does not
configure keys uses one random key generated once per process (:func:`default_nonce_keys`):
enough for one process, but several workers (processes or hosts) of one deployment must be
given the same :class:`NonceKeys` explicitly, or a nonce minted by one is refused by another.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import hmac
import secrets
import struct
import threading

import attrs

from oid4vci.errors import ArgumentTypeError, UsageError, ValidationError

__all__ = [
    "MAX_NONCE_KEYS",
    "MIN_KEY_BYTES",
    "NonceError",
    "NonceKeys",
    "NoncePurpose",
    "NonceReason",
    "OpenedNonce",
    "default_nonce_keys",
    "is_live_nonce",
    "open_nonce",
    "seal_nonce",
]

#: The shortest nonce key accepted (bytes): the output length of SHA-256, RFC 2104 §3.
MIN_KEY_BYTES = 32
#: The most keys (current + previous) one :class:`NonceKeys` may hold.
MAX_NONCE_KEYS = 8

_VERSION = 1
_KID_BYTES = 3
_RANDOM_BYTES = 16
_TAG_BYTES = 16
_HEAD = struct.Struct(">BBI")  # version, purpose, expiry
_BODY_BYTES = _KID_BYTES + _HEAD.size + _RANDOM_BYTES
_TOTAL_BYTES = _BODY_BYTES + _TAG_BYTES
#: Length of every nonce this module makes (unpadded base64url of 41 bytes).
NONCE_LENGTH = (4 * _TOTAL_BYTES + 2) // 3
_DOMAIN = b"oid4vci stateless nonce v1\x00"
_KID_DOMAIN = b"oid4vci nonce key id\x00"


class NoncePurpose(enum.IntEnum):
    """What a nonce may be used for; a nonce of one purpose is refused as the other."""

    C_NONCE = 1
    """An OID4VCI ``c_nonce`` (OID4VCI 1.0 §7; Draft 13/14 token and credential responses)."""
    DPOP_NONCE = 2
    """A server ``DPoP-Nonce`` (RFC 9449 §8 and §9)."""
    ATTESTATION_CHALLENGE = 3
    """A wallet attestation challenge (draft-ietf-oauth-attestation-based-client-auth-07 §8)."""


class NonceReason(enum.StrEnum):
    """Why :func:`open_nonce` refused a value."""

    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_TAG = "bad_tag"
    WRONG_PURPOSE = "wrong_purpose"
    EXPIRED = "expired"


class NonceError(ValidationError):
    """A nonce that is malformed, forged, tampered with, of another purpose or expired.

    ``reason`` is a :class:`NonceReason`; the message never contains the nonce.
    """

    def __init__(self, reason: NonceReason) -> None:
        self.reason = reason
        super().__init__(f"nonce refused: {reason.value}")


_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _b64url(data: bytes) -> str:
    # binascii plus a translation table: what base64.urlsafe_b64encode does, without its
    # per-call Python wrappers (every nonce is encoded once and checked once more on opening).
    return binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode()


def _b64url_decode_nonce(text: str) -> bytes:
    """Decode an ASCII nonce of :data:`NONCE_LENGTH` characters (``binascii.Error`` when it is
    not base64). Strict mode refuses characters outside the alphabet; :func:`open_nonce` then
    also requires the value to be the canonical encoding of what it decoded to."""
    raw = text.encode("ascii").translate(_FROM_URLSAFE)
    return binascii.a2b_base64(raw + b"=" * (-len(raw) % 4), strict_mode=True)


def _b64url_decode(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


def _secret(value: bytes | str) -> bytes:
    """A key as bytes; text is read as base64url (padding optional)."""
    if isinstance(value, str):
        try:
            value = _b64url_decode(value)
        except (binascii.Error, ValueError):
            raise UsageError("a nonce key given as text must be base64url") from None
    if not isinstance(value, bytes):
        raise ArgumentTypeError("a nonce key must be bytes or base64url text")
    if len(value) < MIN_KEY_BYTES:
        raise UsageError(f"a nonce key must have at least {MIN_KEY_BYTES} bytes")
    return bytes(value)


def _secrets(
    values: bytes | str | tuple[bytes | str, ...] | list[bytes | str],
) -> tuple[bytes, ...]:
    if isinstance(values, bytes | str):
        values = (values,)
    return tuple(_secret(v) for v in values)


def key_id(secret: bytes) -> bytes:
    """The 3-byte id of ``secret`` written into every nonce it makes (not secret)."""
    return hashlib.sha256(_KID_DOMAIN + secret).digest()[:_KID_BYTES]


@attrs.frozen(kw_only=True, repr=False)
class NonceKeys:
    """The keys of an issuer's stateless nonces: ``current`` mints, ``previous`` still verify.

    Keys are at least 32 random bytes (``bytes``, or base64url text). Rotate by making a new
    value with :meth:`rotated` (the old current key becomes the first previous one) and, once
    every nonce it made has expired (``max(c_nonce_ttl, dpop_nonce_ttl)``), dropping it with
    :meth:`without_previous`. Every worker of a deployment needs the same value. ``repr``
    shows only key ids.
    """

    current: bytes = attrs.field(converter=_secret)
    previous: tuple[bytes, ...] = attrs.field(default=(), converter=_secrets)

    def __attrs_post_init__(self) -> None:
        every = (self.current, *self.previous)
        if len(every) > MAX_NONCE_KEYS:
            raise UsageError(f"at most {MAX_NONCE_KEYS} nonce keys")
        if len(set(every)) != len(every):
            raise UsageError("nonce keys must be distinct")

    def __repr__(self) -> str:
        kids = ", ".join(_b64url(key_id(k)) for k in self.previous)
        return f"NonceKeys(current={_b64url(key_id(self.current))}, previous=({kids}))"

    @classmethod
    def generate(cls) -> NonceKeys:
        """A new value with one random 256-bit key."""
        return cls(current=secrets.token_bytes(32))

    def rotated(self, new: bytes | str | None = None, *, keep: int = 1) -> NonceKeys:
        """``new`` (random when ``None``) becomes current; the ``keep`` newest old keys stay."""
        if keep < 0:
            raise UsageError("keep must be zero or more")
        fresh = secrets.token_bytes(32) if new is None else _secret(new)
        return NonceKeys(current=fresh, previous=(self.current, *self.previous)[:keep])

    def without_previous(self) -> NonceKeys:
        """Only the current key: nonces made with older keys are refused from now on."""
        return NonceKeys(current=self.current)

    def to_text(self) -> list[str]:
        """Every key as base64url, current first (to hand to another worker; it is secret)."""
        return [_b64url(k) for k in (self.current, *self.previous)]

    @classmethod
    def from_text(cls, keys: list[str] | tuple[str, ...]) -> NonceKeys:
        """The inverse of :meth:`to_text`."""
        if not keys:
            raise UsageError("at least one nonce key is needed")
        return cls(current=keys[0], previous=tuple(keys[1:]))

    def _candidates(self, kid: bytes) -> tuple[hmac.HMAC, ...]:
        # Key ids are not secret (they are written into every nonce): a dict lookup.
        return self._macs_by_id.get(kid, ())

    def _mac(self, key: bytes) -> hmac.HMAC:
        # HMAC-SHA256 of each key after the domain label, computed once: a tag is a copy of it
        # plus the rest of the message (the same HMAC as one over the whole message).
        return self._macs[key]

    @functools.cached_property
    def _macs(self) -> dict[bytes, hmac.HMAC]:
        return {k: hmac.new(k, _DOMAIN, hashlib.sha256) for k in (self.current, *self.previous)}

    @functools.cached_property
    def _macs_by_id(self) -> dict[bytes, tuple[hmac.HMAC, ...]]:
        # The keys' HMACs by key id, in key order (two keys may share a 3-byte id).
        out: dict[bytes, tuple[hmac.HMAC, ...]] = {}
        for key, kid in self._key_ids:
            out[kid] = (*out.get(kid, ()), self._mac(key))
        return out

    @functools.cached_property
    def _key_ids(self) -> tuple[tuple[bytes, bytes], ...]:
        # (key, key id) of every key, computed once: opening a nonce looks its key up by id.
        return tuple((k, key_id(k)) for k in (self.current, *self.previous))


_default: NonceKeys | None = None
_default_lock = threading.Lock()


def default_nonce_keys() -> NonceKeys:
    """This process's random :class:`NonceKeys`, generated on first use and then reused.

    Every :class:`~oid4vci.issuer.config.IssuerConfig` without ``nonce_keys`` uses it, so the
    configurations of one process (tenants, configurations rebuilt per request) agree. Other
    processes have other keys: share one explicit value between workers.
    """
    global _default
    with _default_lock:
        if _default is None:
            _default = NonceKeys.generate()
        return _default


@attrs.frozen(kw_only=True)
class OpenedNonce:
    """A verified nonce: its purpose, expiry (Unix seconds) and id (for the redemption record).

    ``nonce_id`` (the base64url of its random bytes) is hidden from ``repr``.
    """

    purpose: NoncePurpose
    expires_at: int
    nonce_id: str = attrs.field(repr=False)


def _tag(mac: hmac.HMAC, audience: str, body: bytes) -> bytes:
    """The tag of ``body`` at ``audience``; ``mac`` is a key's HMAC-SHA256 that has already
    taken in the domain label (:meth:`NonceKeys._mac`), copied so it is never changed."""
    own = mac.copy()
    own.update(audience.encode("utf-8") + b"\x00" + body)
    return own.digest()[:_TAG_BYTES]


def seal_nonce(
    keys: NonceKeys,
    purpose: NoncePurpose,
    *,
    audience: str,
    expires_at: float,
    random: bytes | None = None,
) -> str:
    """A new nonce for ``purpose`` at ``audience`` (the credential issuer) valid until then.

    ``random`` (16 bytes) is for tests; by default it is drawn from :mod:`secrets`.
    """
    rand = secrets.token_bytes(_RANDOM_BYTES) if random is None else random
    if len(rand) != _RANDOM_BYTES:
        raise UsageError(f"random must be {_RANDOM_BYTES} bytes")
    expiry = max(0, min(int(expires_at), 0xFFFFFFFF))
    body = key_id(keys.current) + _HEAD.pack(_VERSION, int(purpose), expiry) + rand
    return _b64url(body + _tag(keys._mac(keys.current), audience, body))


def open_nonce(
    value: object,
    keys: NonceKeys,
    purpose: NoncePurpose,
    *,
    audience: str,
    now: float,
) -> OpenedNonce:
    """Verify a nonce made by :func:`seal_nonce`; raises :class:`NonceError` with the reason.

    Checks, in order: shape, key id (one of ``keys``), tag (constant-time), purpose, expiry.
    """
    if not isinstance(value, str) or len(value) != NONCE_LENGTH or not value.isascii():
        raise NonceError(NonceReason.MALFORMED)
    try:
        raw = _b64url_decode_nonce(value)
    except (binascii.Error, ValueError):
        raise NonceError(NonceReason.MALFORMED) from None
    if len(raw) != _TOTAL_BYTES or _b64url(raw) != value:
        raise NonceError(NonceReason.MALFORMED)
    body, tag = raw[:_BODY_BYTES], raw[_BODY_BYTES:]
    candidates = keys._candidates(body[:_KID_BYTES])
    if not candidates:
        raise NonceError(NonceReason.UNKNOWN_KEY)
    for mac in candidates:
        if hmac.compare_digest(_tag(mac, audience, body), tag):
            break
    else:
        raise NonceError(NonceReason.BAD_TAG)
    version, kind, expiry = _HEAD.unpack_from(body, _KID_BYTES)
    if version != _VERSION:
        raise NonceError(NonceReason.MALFORMED)
    if kind != int(purpose):
        raise NonceError(NonceReason.WRONG_PURPOSE)
    if expiry <= now:
        raise NonceError(NonceReason.EXPIRED)
    random = body[_KID_BYTES + _HEAD.size :]
    return OpenedNonce(purpose=purpose, expires_at=expiry, nonce_id=_b64url(random))


def is_live_nonce(
    value: object, keys: NonceKeys, purpose: NoncePurpose, *, audience: str, now: float
) -> bool:
    """Whether :func:`open_nonce` accepts ``value`` (for reusable nonces: ``DPoP-Nonce``,
    attestation challenges; no store access)."""
    try:
        open_nonce(value, keys, purpose, audience=audience, now=now)
    except NonceError:
        return False
    return True
