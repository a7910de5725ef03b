"""Keys and compact JWS over joserfc and ``cryptography``.

* :class:`Signer` is the small protocol every signing key satisfies, so keys may live in an HSM
  or a phone's secure element. :class:`LocalSigner` is the in-process implementation
  (ES256 default, ES384, ES512, EdDSA).
* :func:`create_jws` builds a compact JWS through any Signer.
* :func:`verify_jws` checks a compact JWS against an explicit algorithm allow-list; ``none`` and
  MAC algorithms are never accepted. :func:`decode_jws` splits without verifying.
* :func:`jwk_thumbprint` is RFC 7638 (SHA-256); :func:`public_jwk` refuses private members.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import json
from collections import OrderedDict
from collections.abc import Collection, Mapping
from typing import Any, Final, Protocol, runtime_checkable

import attrs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from joserfc.errors import JoseError as _JoserfcError
from joserfc.jwk import ECKey, JWKRegistry, OKPKey
from joserfc.util import urlsafe_b64decode as joserfc_b64decode

from ._json import dumps_compact, loads_bytes
from .errors import JoseError, UsageError

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "DecodedJws",
    "LocalSigner",
    "Signer",
    "b64url_decode",
    "b64url_encode",
    "create_jws",
    "decode_jws",
    "generate_signer",
    "jwk_thumbprint",
    "jwk_thumbprint_uri",
    "public_jwk",
    "signer_public_jwk",
    "verify_jws",
]

#: Asymmetric JWS algorithms this module can verify. ``none`` and ``HS*`` are never in it.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"ES256", "ES384", "ES512", "EdDSA", "Ed25519", "RS256", "RS384", "RS512", "PS256", "PS384",
     "PS512"}
)  # fmt: skip

_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}
_EC_ALGS: dict[str, tuple[str, int, hashes.HashAlgorithm]] = {
    "ES256": ("P-256", 32, hashes.SHA256()),
    "ES384": ("P-384", 48, hashes.SHA384()),
    "ES512": ("P-521", 66, hashes.SHA512()),
}
# ECDSA signature algorithm objects are immutable: build them once per JWS algorithm.
_ECDSA: dict[str, ec.ECDSA] = {alg: ec.ECDSA(digest) for alg, (_, _, digest) in _EC_ALGS.items()}
_RSA_HASHES: dict[str, hashes.HashAlgorithm] = {
    "256": hashes.SHA256(),
    "384": hashes.SHA384(),
    "512": hashes.SHA512(),
}


# base64 <-> base64url alphabets (what base64.urlsafe_b64encode/decode do, without their
# per-call Python overhead: these run for every JWS segment, disclosure and digest).
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
# Encoders built once (json.dumps with options builds a new JSONEncoder on every call).
_CANONICAL_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False)
# The C string escaper behind JSONEncoder(ensure_ascii=True) (RFC 7638 thumbprint members).
_json_string = json.encoder.encode_basestring_ascii


def b64url_encode(data: bytes) -> str:
    """base64url without padding."""
    return (
        binascii.b2a_base64(data, newline=False).translate(_TO_URLSAFE).rstrip(b"=").decode("ascii")
    )


def b64url_decode(text: str) -> bytes:
    """Strict base64url decoding (no padding, alphabet checked); :class:`JoseError` otherwise."""
    # The alphabet [A-Za-z0-9_-]: ASCII, none of base64's own "+", "/" and "=", and nothing
    # else either (strict_mode refuses every character outside the translated alphabet).
    if not isinstance(text, str) or not text.isascii() or "+" in text or "/" in text or "=" in text:
        raise JoseError("invalid base64url")
    raw = text.encode("ascii")
    try:
        return binascii.a2b_base64(
            raw.translate(_FROM_URLSAFE) + b"=" * (-len(raw) % 4), strict_mode=True
        )
    except (binascii.Error, ValueError) as exc:
        raise JoseError("invalid base64url") from exc


def _canonical_json(obj: Any) -> bytes:
    """The sorted compact JSON of a JWK (the import cache's key); :class:`JoseError` when it
    has none: a lone surrogate in a string, members nested beyond the recursion limit."""
    try:
        return _CANONICAL_ENCODER.encode(obj).encode()
    except (UnicodeEncodeError, RecursionError, ValueError, TypeError) as exc:
        raise JoseError("JWK does not describe a valid key") from exc


def public_jwk(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``jwk`` as a plain dict after checking it is a usable *public* key.

    Raises :class:`JoseError` for private members (``d``, ``p``, ``k``, …), symmetric keys and
    keys that do not parse.
    """
    _public_key_of(jwk)
    return dict(jwk)


def _public_key_of(jwk: Mapping[str, Any]) -> Any:
    """The checks of :func:`public_jwk`, returning the imported public key (cached)."""
    # type(...) is dict first: isinstance against the Mapping ABC runs a Python-level
    # __instancecheck__ frame on CPython 3.11, and a parsed JWK is always a dict.
    if type(jwk) is not dict and not isinstance(jwk, Mapping):
        raise JoseError("JWK must be a JSON object")
    if _PRIVATE_MEMBERS & set(jwk):
        raise JoseError("JWK contains private key material where a public key is expected")
    if jwk.get("kty") not in ("EC", "OKP", "RSA"):
        raise JoseError("JWK must be an asymmetric public key (EC, OKP or RSA)")
    if _is_plain_ec_public(jwk):
        # The common shape, cached by its coordinates: no JSON round trip, no canonical JSON.
        return _import_ec_public(jwk["crv"], jwk["x"], jwk["y"])
    if all(type(k) is str and type(v) is str for k, v in jwk.items()):
        # Only string members (kid, alg, use, ...): their sorted pairs are the cache key, so a
        # known key costs no canonical JSON; a new one takes the full import below.
        return _import_string_members(tuple(sorted(jwk.items())))
    return _import_public(_canonical_json(dict(jwk)))


@functools.lru_cache(maxsize=4096)
def _import_string_members(items: tuple[tuple[str, str], ...]) -> Any:
    return _import_public(_canonical_json(dict(items)))


#: JOSE headers that passed a verifier's header checks, by their base64url segment, with what
#: the verifier derived from them (:mod:`oid4vci.dpop`: a wallet's DPoP proofs all carry the
#: same header). Emptied when full and by :func:`clear_key_cache`.
checked_headers: dict[str, Any] = {}


def clear_key_cache() -> None:
    """Forget every imported public key (the caches behind :func:`verify_jws`), every cached
    thumbprint (:func:`jwk_thumbprint`) and every checked header (:data:`checked_headers`)."""
    _ec_keys.clear()
    checked_headers.clear()
    _ec_thumbprints.clear()
    _import_string_members.cache_clear()
    _import_public.cache_clear()


_THUMBPRINTS_MAX: Final = 4096
# RFC 7638 thumbprints of EC keys by (crv, x, y), the only members that go into them: a DPoP
# key comes back with every request of a wallet. Emptied when full (and by clear_key_cache).
_ec_thumbprints: dict[tuple[str, str, str], str] = {}


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK SHA-256 thumbprint, base64url."""
    if type(jwk) is dict and jwk.get("kty") == "EC":
        crv, x, y = jwk.get("crv"), jwk.get("x"), jwk.get("y")
        if type(crv) is str and type(x) is str and type(y) is str:
            cache_key = (crv, x, y)
            thumbprint = _ec_thumbprints.get(cache_key)
            if thumbprint is None:
                # RFC 7638 §3.2: crv, kty, x, y in this order (what _thumbprint writes).
                data = f'{{"crv":{_json_string(crv)},"kty":"EC","x":{_json_string(x)},"y":{_json_string(y)}}}'
                thumbprint = b64url_encode(hashlib.sha256(data.encode("ascii")).digest())
                if len(_ec_thumbprints) >= _THUMBPRINTS_MAX:
                    _ec_thumbprints.clear()
                _ec_thumbprints[cache_key] = thumbprint
            return thumbprint
    return _thumbprint(jwk)


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    kty = jwk.get("kty") if type(jwk) is dict or isinstance(jwk, Mapping) else None
    members = _THUMBPRINT_MEMBERS.get(kty) if isinstance(kty, str) else None
    if members is None:
        raise JoseError("JWK has an unsupported or missing 'kty'")
    try:
        subset = {name: jwk[name] for name in members}
    except KeyError as exc:
        raise JoseError("JWK lacks a required member") from exc
    if not all(isinstance(v, str) for v in subset.values()):
        raise JoseError("JWK members must be strings")
    # The required members in lexicographic order (the tuples are sorted), no whitespace,
    # ASCII-escaped: what a sorting compact JSON encoder writes (RFC 7638 §3.3), built directly.
    data = "{" + ",".join(f'"{n}":{_json_string(subset[n])}' for n in members) + "}"
    return b64url_encode(hashlib.sha256(data.encode("ascii")).digest())


def jwk_thumbprint_uri(jwk: Mapping[str, Any]) -> str:
    """RFC 9278 thumbprint URI (``urn:ietf:params:oauth:jwk-thumbprint:sha-256:…``)."""
    return "urn:ietf:params:oauth:jwk-thumbprint:sha-256:" + jwk_thumbprint(jwk)


_FAST_EC_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
}
_EC_PUBLIC_MEMBERS = frozenset({"kty", "crv", "x", "y"})
_COORDINATE_BYTES = {"P-256": 32, "P-384": 48, "P-521": 66}


def _is_plain_ec_public(data: Any) -> bool:
    """True for exactly ``{"kty": "EC", "crv": <known curve>, "x": str, "y": str}``."""
    return (
        (type(data) is dict or isinstance(data, Mapping))
        and data.keys() == _EC_PUBLIC_MEMBERS
        and data["kty"] == "EC"
        and isinstance(data["crv"], str)
        and data["crv"] in _FAST_EC_CURVES
        and isinstance(data["x"], str)
        and isinstance(data["y"], str)
    )


def _is_plain_ec_public_with_kid(data: dict[str, Any]) -> bool:
    """A plain public EC JWK plus a string ``kid`` (an issuer's published key): joserfc
    checks nothing more about ``kid`` than that it is a string (RFC 7517 §4.5)."""
    if type(data.get("kid")) is not str:
        return False
    rest = dict(data)
    del rest["kid"]
    return _is_plain_ec_public(rest)


def _coordinate(text: str) -> int:
    """joserfc's ``base64_to_int`` (same strict decoding), without its hex round trip."""
    data = joserfc_b64decode(text.encode("utf-8"))
    if not data:
        raise UsageError("empty coordinate")  # int("", 16) fails there too
    return int.from_bytes(data, "big")


_EC_KEYS_MAX: Final = 4096
# Public EC key objects by (crv, x, y), oldest first; past the bound the oldest goes (a key
# that comes back later is imported again).
_ec_keys: OrderedDict[tuple[str, str, str], ec.EllipticCurvePublicKey] = OrderedDict()


def _import_ec_public(crv: str, x: str, y: str) -> Any:
    """A plain public EC JWK's key object, reused while cached.

    What joserfc's ECKey import does for this exact shape (its parameter checks all pass for
    it), minus building a key object: same decoding, same point-on-curve check.
    """
    cache_key = (crv, x, y)
    key = _ec_keys.get(cache_key)
    if key is not None:
        return key
    key = _import_full_size_point(crv, x, y)
    if key is not None:
        _remember_ec_key(cache_key, key)
        return key
    try:
        numbers = ec.EllipticCurvePublicNumbers(
            _coordinate(x), _coordinate(y), _FAST_EC_CURVES[crv]()
        )
        key = numbers.public_key()
    except (_JoserfcError, ValueError, TypeError, KeyError) as exc:
        raise JoseError("JWK does not describe a valid key") from exc
    _remember_ec_key(cache_key, key)
    return key


def _import_full_size_point(crv: str, x: str, y: str) -> Any:
    """The key of coordinates that are strict base64url of exactly the curve's size (RFC 7518
    §6.2.1.2: what every wallet sends), as an uncompressed SEC 1 point; ``None`` for any other
    shape, which then goes the way joserfc reads it (lenient base64url, any length).

    For these coordinates both ways read the same integers, and both refuse a coordinate not
    below the field prime and a point off the curve, so they accept the same keys: this one
    only skips the integer round trip.
    """
    size = _COORDINATE_BYTES[crv]
    try:
        x_bytes, y_bytes = b64url_decode(x), b64url_decode(y)
    except JoseError:
        return None
    if len(x_bytes) != size or len(y_bytes) != size:
        return None
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(
            _FAST_EC_CURVES[crv](), b"\x04" + x_bytes + y_bytes
        )
    except ValueError as exc:
        raise JoseError("JWK does not describe a valid key") from exc


def _remember_ec_key(cache_key: tuple[str, str, str], key: ec.EllipticCurvePublicKey) -> None:
    _ec_keys[cache_key] = key
    try:
        while len(_ec_keys) > _EC_KEYS_MAX:
            _ec_keys.popitem(last=False)
    except KeyError:  # emptied by another thread meanwhile
        pass


@functools.lru_cache(maxsize=4096)
def _import_public(canonical: bytes) -> Any:
    try:
        data = json.loads(canonical)
        if _is_plain_ec_public(data) or _is_plain_ec_public_with_kid(data):
            return _import_ec_public(data["crv"], data["x"], data["y"])
        key = JWKRegistry.import_key(data)
    except (_JoserfcError, ValueError, TypeError, KeyError, RecursionError) as exc:
        raise JoseError("JWK does not describe a valid key") from exc
    return key.public_key


@runtime_checkable
class Signer(Protocol):
    """A signing key: its JWS ``alg``, its public JWK and an async ``sign``.

    ``sign`` returns the JWS signature bytes for ``signing_input`` (for ECDSA the fixed-size
    ``r || s`` form of RFC 7518 §3.4).
    """

    @property
    def alg(self) -> str:
        """The JWS algorithm, e.g. ``ES256``."""
        ...

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public key as a JWK (no private members)."""
        ...

    async def sign(self, signing_input: bytes) -> bytes:
        """Sign ``signing_input`` and return the raw JWS signature."""
        ...


_CURVE_FOR_ALG = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


@attrs.frozen(repr=False, eq=False)
class LocalSigner:
    """An in-process key implementing :class:`Signer`. ``repr`` never shows key material."""

    alg: str
    _private_key: Any = attrs.field(alias="private_key")
    kid: str | None = None
    _public: dict[str, Any] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.alg not in _CURVE_FOR_ALG and self.alg not in ("EdDSA", "Ed25519"):
            raise JoseError("unsupported signing algorithm")
        jwk: dict[str, Any]
        if (
            self.alg in _CURVE_FOR_ALG
            and isinstance(self._private_key, ec.EllipticCurvePrivateKey)
            and self._private_key.curve.name == _CURVE_NAMES[_CURVE_FOR_ALG[self.alg]]
        ):
            # What joserfc's ECKey.as_dict(private=False) writes (same members, same order):
            # the coordinates as fixed-size big-endian integers, base64url (RFC 7518 §6.2.1).
            numbers = self._private_key.public_key().public_numbers()
            size = (self._private_key.curve.key_size + 7) // 8
            jwk = {
                "crv": _CURVE_FOR_ALG[self.alg],
                "x": b64url_encode(numbers.x.to_bytes(size, "big")),
                "y": b64url_encode(numbers.y.to_bytes(size, "big")),
                "kty": "EC",
            }
            # The public key of a private key is a valid point: when this key comes back
            # (a proof, a credential's cnf.jwk) it needs no import and no point check.
            _remember_ec_key((jwk["crv"], jwk["x"], jwk["y"]), self._private_key.public_key())
        else:
            key: ECKey | OKPKey = (
                ECKey.import_key(self._private_key)
                if self.alg in _CURVE_FOR_ALG
                else OKPKey.import_key(self._private_key)
            )
            jwk = key.as_dict(private=False)
        if self.kid is not None:
            jwk["kid"] = self.kid
        object.__setattr__(self, "_public", jwk)

    @classmethod
    def generate(cls, alg: str = "ES256", *, kid: str | None = None) -> LocalSigner:
        """A fresh key for ``alg`` (``ES256`` default, ``ES384``, ``ES512``, ``EdDSA``)."""
        if alg in _CURVE_FOR_ALG:
            curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
            return cls(alg, ec.generate_private_key(curve[_CURVE_FOR_ALG[alg]]), kid)
        if alg in ("EdDSA", "Ed25519"):
            return cls(alg, ed25519.Ed25519PrivateKey.generate(), kid)
        raise JoseError("unsupported signing algorithm")

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any], *, alg: str | None = None) -> LocalSigner:
        """Load a private JWK. ``alg`` defaults to the JWK's ``alg`` or the curve's natural one."""
        try:
            key = JWKRegistry.import_key(dict(jwk))
        except (_JoserfcError, ValueError, TypeError, KeyError) as exc:
            raise JoseError("private JWK does not describe a valid key") from exc
        if not key.is_private:
            raise JoseError("a private JWK is needed to sign")
        crv = jwk.get("crv")
        chosen = alg or jwk.get("alg") or {
            "P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "Ed25519": "EdDSA"
        }.get(str(crv))  # fmt: skip
        if not isinstance(chosen, str):
            raise JoseError("cannot tell the algorithm for this key")
        natural = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}.get(chosen, "Ed25519")
        if crv != natural:
            raise JoseError("the JWK's curve does not match its algorithm")
        kid = jwk.get("kid")
        return cls(chosen, key.private_key, kid if isinstance(kid, str) else None)

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public JWK (a fresh copy)."""
        return dict(self._public)

    def private_jwk(self) -> dict[str, Any]:
        """Export the private JWK. Only call this to persist the key on purpose."""
        if self.alg in _CURVE_FOR_ALG:
            out = ECKey.import_key(self._private_key).as_dict(private=True)
        else:
            out = OKPKey.import_key(self._private_key).as_dict(private=True)
        out["alg"] = self.alg
        if self.kid is not None:
            out["kid"] = self.kid
        return dict(out)

    async def sign(self, signing_input: bytes) -> bytes:
        """Sign with the private key (ECDSA signatures in ``r || s`` form)."""
        return self.sign_sync(signing_input)

    def sign_sync(self, signing_input: bytes) -> bytes:
        """The synchronous form of :meth:`sign`."""
        if self.alg in _EC_ALGS:
            _, size, _ = _EC_ALGS[self.alg]
            der = self._private_key.sign(signing_input, _ECDSA[self.alg])
            r, s = decode_dss_signature(der)
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        signature: bytes = self._private_key.sign(signing_input)
        return signature

    def __repr__(self) -> str:
        return f"LocalSigner(alg={self.alg!r}, kid={self.kid!r})"


def signer_public_jwk(signer: Signer) -> dict[str, Any]:
    """``signer``'s public JWK, checked by :func:`public_jwk`; a :class:`LocalSigner`'s JWK
    was derived from its own private key when it was built, so it is not imported again."""
    if type(signer) is LocalSigner:
        return signer.public_jwk
    return public_jwk(signer.public_jwk)


def generate_signer(alg: str = "ES256", *, kid: str | None = None) -> LocalSigner:
    """A fresh :class:`LocalSigner` (ES256 by default)."""
    return LocalSigner.generate(alg, kid=kid)


def _json_segment(obj: Mapping[str, Any]) -> str:
    return b64url_encode(dumps_compact(obj).encode())


async def create_jws(
    signer: Signer, payload: Mapping[str, Any], header: Mapping[str, Any] | None = None
) -> str:
    """A compact JWS of ``payload`` signed by ``signer``; ``alg`` comes from the signer."""
    protected = {**(header or {}), "alg": signer.alg}
    signing_input = f"{_json_segment(protected)}.{_json_segment(payload)}".encode("ascii")
    signature = await signer.sign(signing_input)
    return f"{signing_input.decode('ascii')}.{b64url_encode(signature)}"


@attrs.frozen(kw_only=True, repr=False)
class DecodedJws:
    """A compact JWS split into its parts (header, payload, signing input, signature)."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes

    def __repr__(self) -> str:
        return f"DecodedJws(alg={self.header.get('alg')!r}, typ={self.header.get('typ')!r})"


_MAX_JWS_LENGTH = 1 << 20


def decode_jws(token: str) -> DecodedJws:
    """Split a compact JWS whose header and payload are JSON objects. Does **not** verify."""
    if not isinstance(token, str) or len(token) > _MAX_JWS_LENGTH:
        raise JoseError("JWS must be a compact string")
    parts = token.split(".")
    if len(parts) != 3:
        raise JoseError("JWS must have three dot-separated parts")
    header_b64, payload_b64, signature_b64 = parts
    try:
        header = loads_bytes(b64url_decode(header_b64))
        payload = loads_bytes(b64url_decode(payload_b64))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise JoseError("JWS header or payload is not JSON") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise JoseError("JWS header and payload must be JSON objects")
    if not isinstance(header.get("alg"), str):
        raise JoseError("JWS header lacks 'alg'")
    if "crit" in header:
        raise JoseError("JWS uses critical extensions this library does not understand")
    return DecodedJws(
        header=header,
        payload=payload,
        signing_input=f"{header_b64}.{payload_b64}".encode("ascii"),
        signature=b64url_decode(signature_b64),
    )


def verify_jws(
    token: str | DecodedJws,
    jwk: Mapping[str, Any],
    *,
    algorithms: Collection[str],
) -> DecodedJws:
    """Verify a compact JWS with a public ``jwk`` and return its decoded parts.

    ``algorithms`` is the allow-list; ``none`` and MAC algorithms are refused whatever it says.
    The key must match the algorithm (e.g. ES256 needs a P-256 key). Raises :class:`JoseError`.
    """
    decoded = token if isinstance(token, DecodedJws) else decode_jws(token)
    alg = decoded.header["alg"]
    if alg not in algorithms or alg not in ASYMMETRIC_ALGORITHMS:
        raise JoseError("JWS algorithm is not allowed")
    key = _public_key_of(jwk)
    if not _verify_signature(alg, key, decoded.signing_input, decoded.signature):
        raise JoseError("JWS signature is invalid")
    return decoded


_CURVE_NAMES = {"P-256": "secp256r1", "P-384": "secp384r1", "P-521": "secp521r1"}
# The class of cryptography's (OpenSSL-backed) EC public keys.
_OPENSSL_EC_PUBLIC: type[ec.EllipticCurvePublicKey] = type(
    ec.derive_private_key(1, ec.SECP256R1()).public_key()
)


def _verify_signature(alg: str, key: Any, data: bytes, signature: bytes) -> bool:
    try:
        if alg in _EC_ALGS:
            curve, size, _ = _EC_ALGS[alg]
            # type() first: isinstance against the ABC runs a Python-level __instancecheck__
            # frame on CPython 3.11, and a key imported here is always of the one OpenSSL type.
            if type(key) is not _OPENSSL_EC_PUBLIC and not isinstance(
                key, ec.EllipticCurvePublicKey
            ):
                return False
            if _CURVE_NAMES[curve] != key.curve.name:
                return False
            if len(signature) != 2 * size:
                return False
            r = int.from_bytes(signature[:size], "big")
            s = int.from_bytes(signature[size:], "big")
            key.verify(encode_dss_signature(r, s), data, _ECDSA[alg])
            return True
        if alg in ("EdDSA", "Ed25519"):
            if not isinstance(key, ed25519.Ed25519PublicKey):
                return False
            key.verify(signature, data)
            return True
        if alg[:2] in ("RS", "PS"):
            if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
                return False
            digest = _RSA_HASHES[alg[2:]]
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15()
                if alg.startswith("RS")
                else padding.PSS(mgf=padding.MGF1(digest), salt_length=digest.digest_size)
            )
            key.verify(signature, data, pad, digest)
            return True
    except (InvalidSignature, ValueError):
        return False
    return False
