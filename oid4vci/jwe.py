"""Compact JWE for encrypted credential requests and responses (OID4VCI 1.0 §10), both roles.

Pure functions over joserfc with this project's limits:

* :func:`encrypt_json` encrypts a JSON object to one public JWK (``alg`` / ``enc`` / optional
  ``zip``; ``kid`` in the protected header when the key has one, OID4VCI 1.0 §10);
* :func:`decrypt_jwe` decrypts with one of several private JWKs (picked by the header ``kid``,
  so rotated keys keep working) and accepts only the algorithms the caller allows — never
  ``dir``, key wrapping with a shared secret (``A*KW``, ``A*GCMKW``), ``PBES2-*``, ``RSA1_5``
  or an unencrypted ``none``-like header (:data:`KEY_AGREEMENT_ALGORITHMS` is the most any
  caller may allow). ``zip: DEF`` (RFC 7516 §4.1.3, raw DEFLATE, RFC 1951) is inflated here
  with a cap on the output, so a compression bomb costs at most ``max_plaintext`` bytes;
* :func:`generate_encryption_key` makes an ephemeral EC key (``P-256`` by default) for one
  response; :func:`read_jwe_header` reads the protected header without decrypting.

The plaintext is the UTF-8 JSON object itself (no nested JWS, no ``cty``), the reading of
OID4VCI 1.0 §10 "encoded as a JWT" that implementations share. Every failure is a
:class:`~oid4vci.errors.EncryptionError` whose message never holds key material.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs
from joserfc import jwe as _jwe
from joserfc.errors import JoseError as _JoserfcError
from joserfc.jwa import JWEZipModel
from joserfc.jwk import ECKey, JWKRegistry

from .errors import EncryptionError, JoseError, UsageError
from .jose import b64url_decode, public_jwk

__all__ = [
    "CONTENT_ENCRYPTION_ALGORITHMS",
    "DEFAULT_MAX_PLAINTEXT",
    "JWT_CONTENT_TYPE",
    "KEY_AGREEMENT_ALGORITHMS",
    "ZIP_ALGORITHMS",
    "DecryptedJwe",
    "decrypt_jwe",
    "encrypt_json",
    "generate_encryption_key",
    "is_private_jwk",
    "read_jwe_header",
]

#: HTTP media type of an encrypted request or response (OID4VCI 1.0 §10).
JWT_CONTENT_TYPE = "application/jwt"
#: JWE ``alg`` values ever accepted: asymmetric key agreement / transport only (RFC 7518 §4).
KEY_AGREEMENT_ALGORITHMS = frozenset(
    {"ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A192KW", "ECDH-ES+A256KW", "RSA-OAEP-256"}
)
#: JWE ``enc`` values ever accepted (RFC 7518 §5).
CONTENT_ENCRYPTION_ALGORITHMS = frozenset(
    {"A128GCM", "A192GCM", "A256GCM", "A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512"}
)
#: JWE ``zip`` values ever accepted (RFC 7516 §4.1.3).
ZIP_ALGORITHMS = frozenset({"DEF"})
#: Largest plaintext (after inflating) :func:`decrypt_json` returns unless told otherwise.
DEFAULT_MAX_PLAINTEXT = 1024 * 1024

_EC_CURVES = {"P-256", "P-384", "P-521"}
_MAX_COMPACT = 16 * 1024 * 1024


@attrs.frozen(kw_only=True)
class DecryptedJwe:
    """A decrypted JWE: its protected header and the plaintext (inflated) it carried."""

    header: dict[str, Any]
    plaintext: bytes = attrs.field(repr=False)

    def json_object(self) -> dict[str, Any]:
        """The plaintext as a JSON object; :class:`EncryptionError` when it is not one."""
        try:
            payload = json.loads(self.plaintext)
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise EncryptionError("the JWE plaintext is not JSON") from None
        if not isinstance(payload, dict):
            raise EncryptionError("the JWE plaintext is not a JSON object")
        return payload


class _CappedDeflate(JWEZipModel):
    """``DEF`` with the inflated size capped (RFC 1951 raw DEFLATE; zlib-wrapped accepted)."""

    name = "DEF"
    description = "DEFLATE, output capped"

    def __init__(self, cap: int) -> None:
        self.cap = cap

    def compress(self, s: bytes) -> bytes:
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return compressor.compress(s) + compressor.flush()

    def decompress(self, s: bytes) -> bytes:
        wbits = zlib.MAX_WBITS if s[:2] == b"\x78\x9c" else -zlib.MAX_WBITS
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(s, self.cap + 1)
        if len(out) > self.cap or inflater.unconsumed_tail:
            raise EncryptionError("the JWE plaintext inflates past the size limit")
        return out


class _Registry(_jwe.JWERegistry):
    """joserfc's registry with an explicit allow-list, our size limits and the capped ``DEF``."""

    def __init__(self, allowed: Collection[str], cap: int) -> None:
        super().__init__(algorithms=list(allowed))
        self.max_ciphertext_length = cap + 1024
        self._zip = _CappedDeflate(cap)

    def get_zip(self, name: str) -> JWEZipModel:
        if name != "DEF" or self.allowed is None or name not in self.allowed:
            raise EncryptionError("JWE zip is not allowed")
        return self._zip


def is_private_jwk(jwk: Mapping[str, Any]) -> bool:
    """True when ``jwk`` carries private members (``d``, RSA primes, ``k``)."""
    return any(member in jwk for member in ("d", "p", "q", "dp", "dq", "qi", "oth", "k"))


def generate_encryption_key(
    crv: str = "P-256", *, alg: str = "ECDH-ES", kid: str | None = None
) -> dict[str, Any]:
    """A fresh private EC JWK for key agreement (``use: enc``, ``alg``), e.g. for one response."""
    if crv not in _EC_CURVES:
        raise UsageError(f"unsupported curve {crv!r}")
    if alg not in KEY_AGREEMENT_ALGORITHMS or not alg.startswith("ECDH-ES"):
        raise UsageError(f"{alg!r} is not an ECDH-ES algorithm")
    jwk: dict[str, Any] = ECKey.generate_key(crv, private=True).as_dict(private=True)
    jwk.update({"use": "enc", "alg": alg})
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def read_jwe_header(token: str) -> dict[str, Any]:
    """The protected header of a compact JWE, not decrypted; :class:`EncryptionError` if it is
    not a five-part compact JWE with a JSON object header."""
    if not isinstance(token, str) or len(token) > _MAX_COMPACT:
        raise EncryptionError("not a compact JWE")
    parts = token.split(".")
    if len(parts) != 5:
        raise EncryptionError("not a compact JWE (five parts expected)")
    try:
        header = json.loads(b64url_decode(parts[0]))
    except (ValueError, UnicodeDecodeError, RecursionError, UsageError):
        raise EncryptionError("the JWE header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise EncryptionError("the JWE header is not a JSON object")
    for name in ("alg", "enc"):
        if not isinstance(header.get(name), str):
            raise EncryptionError(f"the JWE header has no {name}")
    return header


def encrypt_json(
    payload: Mapping[str, Any],
    jwk: Mapping[str, Any],
    *,
    alg: str,
    enc: str,
    zip: str | None = None,
) -> str:
    """Encrypt ``payload`` (a JSON object) to the public ``jwk``; a compact JWE.

    The header is ``{"alg", "enc", "kid"?, "zip"?}`` (``kid`` when ``jwk`` has one). Raises
    :class:`EncryptionError` for an algorithm outside the allowed sets or an unusable key.
    """
    if alg not in KEY_AGREEMENT_ALGORITHMS:
        raise EncryptionError("JWE alg is not allowed")
    if enc not in CONTENT_ENCRYPTION_ALGORITHMS:
        raise EncryptionError("JWE enc is not allowed")
    if zip is not None and zip not in ZIP_ALGORITHMS:
        raise EncryptionError("JWE zip is not allowed")
    header: dict[str, Any] = {"alg": alg, "enc": enc}
    kid = jwk.get("kid")
    if isinstance(kid, str) and kid:
        header["kid"] = kid
    if zip is not None:
        header["zip"] = zip
    allowed = [alg, enc] + ([zip] if zip else [])
    plaintext = json.dumps(dict(payload), separators=(",", ":"), ensure_ascii=False).encode()
    try:
        key = JWKRegistry.import_key(public_jwk(jwk))
        registry = _Registry(allowed, max(len(plaintext), DEFAULT_MAX_PLAINTEXT))
        registry.max_ciphertext_length = len(plaintext) + 1024
        return _jwe.encrypt_compact(header, plaintext, key, registry=registry)
    except (_JoserfcError, JoseError, ValueError, TypeError, KeyError):
        raise EncryptionError("the JWE could not be made with this key") from None


def _pick_key(header: Mapping[str, Any], keys: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    kid = header.get("kid")
    if kid is not None:
        for key in keys:
            if key.get("kid") == kid:
                return key
        raise EncryptionError("the JWE kid names no decryption key")
    if len(keys) == 1:
        return keys[0]
    raise EncryptionError("the JWE has no kid and several keys could decrypt it")


def decrypt_jwe(
    token: str,
    keys: Sequence[Mapping[str, Any]],
    *,
    algorithms: Collection[str],
    encryptions: Collection[str],
    zips: Collection[str] = (),
    max_plaintext: int = DEFAULT_MAX_PLAINTEXT,
) -> DecryptedJwe:
    """Decrypt a compact JWE (:meth:`DecryptedJwe.json_object` reads a JSON plaintext).

    ``keys`` are private JWKs; the header ``kid`` picks one (without ``kid`` only a single key
    is tried). A key with its own ``alg`` only decrypts that ``alg``. Header ``alg`` must be in
    ``algorithms`` (∩ :data:`KEY_AGREEMENT_ALGORITHMS`), ``enc`` in ``encryptions``, ``zip``
    (if any) in ``zips``; the plaintext (inflated) is at most ``max_plaintext`` bytes. Raises
    :class:`EncryptionError` (nothing in it names key material).
    """
    header = read_jwe_header(token)
    alg, enc, zip_ = header["alg"], header["enc"], header.get("zip")
    if alg not in KEY_AGREEMENT_ALGORITHMS or alg not in algorithms:
        raise EncryptionError("JWE alg is not allowed")
    if enc not in CONTENT_ENCRYPTION_ALGORITHMS or enc not in encryptions:
        raise EncryptionError("JWE enc is not allowed")
    if zip_ is not None and (
        not isinstance(zip_, str) or zip_ not in ZIP_ALGORITHMS or zip_ not in zips
    ):
        raise EncryptionError("JWE zip is not allowed")
    if not keys:
        raise EncryptionError("no decryption key")
    jwk = _pick_key(header, keys)
    if jwk.get("alg") is not None and jwk.get("alg") != alg:
        raise EncryptionError("the JWE alg does not match the key's alg")
    allowed = [alg, enc] + ([zip_] if zip_ else [])
    registry = _Registry(allowed, max_plaintext)
    try:
        key = JWKRegistry.import_key(dict(jwk))
        obj = _jwe.decrypt_compact(token, key, registry=registry)
        plaintext = obj.plaintext
    except EncryptionError:
        raise
    except (_JoserfcError, ValueError, TypeError, KeyError, zlib.error):
        raise EncryptionError("the JWE could not be decrypted") from None
    if plaintext is None or len(plaintext) > max_plaintext:
        raise EncryptionError("the JWE plaintext is too large")
    return DecryptedJwe(header=header, plaintext=plaintext)
