"""SD-JWT (RFC 9901) and SD-JWT VC: issue, parse, verify.

Issuing
    Claims are plain nested dicts and lists in which a value wrapped with :func:`sd` is
    selectively disclosable: an object member becomes a 3-element disclosure whose digest goes
    into the ``_sd`` array of its object; an array element becomes a 2-element disclosure and is
    replaced by ``{"...": digest}``. Wrapped values may themselves contain wrapped values
    (recursive disclosures). :func:`issue_sd_jwt_vc` signs the result as an SD-JWT VC and
    returns ``<issuer-jwt>~<d1>~...~<dn>~``; :func:`issue_batch` mints one per holder key.

Verifying
    :func:`parse_sd_jwt` splits the compact form; :func:`verify_sd_jwt` runs RFC 9901 §7.1
    (signature with an algorithm allow-list, ``typ``, ``_sd_alg``, digest matching, every
    disclosure referenced exactly once, no digest twice, time claims);
    :func:`verify_sd_jwt_vc` adds the SD-JWT VC rules (``vct``, issuer, holder key).
    Every failure raises :class:`SdJwtVerificationError` (a
    :class:`~oid4vci.errors.CredentialVerificationError`) whose ``reason`` is one of the
    :class:`SdJwtReason` codes.

Disclosures are serialized as compact JSON (``separators=(",", ":")``, UTF-8, non-ASCII kept);
verifiers hash the received string verbatim, so any serialization the issuer chose verifies.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

import attrs

from ._issuer_signed import check_validity, verify_issuer_signature
from ._json import finite_number, text_parser
from .errors import CredentialVerificationError, JoseError, UsageError, ValidationError
from .jose import (
    DecodedJws,
    Signer,
    b64url_decode,
    b64url_encode,
    create_jws,
    decode_jws,
    jwk_thumbprint,
    public_jwk,
    verify_jws,
)

__all__ = [
    "DEFAULT_ALGORITHMS",
    "RESERVED_CLAIMS",
    "SUPPORTED_HASH_ALGORITHMS",
    "Disclosure",
    "ParsedSdJwt",
    "SdJwtOptions",
    "SdJwtReason",
    "SdJwtVerificationError",
    "SelectivelyDisclosable",
    "VerifiedSdJwt",
    "VerifiedSdJwtVc",
    "disclosure_digest",
    "issue_batch",
    "issue_sd_jwt_vc",
    "make_disclosure",
    "parse_sd_jwt",
    "sd",
    "strip_sd_marks",
    "verify_sd_jwt",
    "verify_sd_jwt_vc",
]

#: Claims that are never selectively disclosable at the top level (``_sd`` and ``...`` are
#: refused as claim names at any level).
RESERVED_CLAIMS: Final = frozenset(
    {"_sd", "...", "_sd_alg", "iss", "iat", "exp", "nbf", "cnf", "vct", "status", "vct#integrity"}
)
#: Claims a verifier refuses when they arrive through a disclosure (``iat`` may be disclosable).
_NEVER_DISCLOSED: Final = RESERVED_CLAIMS - {"iat"}
#: Claims set by :func:`issue_sd_jwt_vc` keywords; they may not appear in ``claims``.
_KEYWORD_CLAIMS: Final = frozenset({"_sd", "...", "_sd_alg", "iss", "iat", "exp", "nbf", "cnf"})
_KEYWORD_CLAIMS_VC: Final = _KEYWORD_CLAIMS | {"vct", "status"}

#: ``_sd_alg`` values (IANA Named Information Hash Algorithm names) understood here.
SUPPORTED_HASH_ALGORITHMS: Final = frozenset({"sha-256", "sha-384", "sha-512"})
_HASHES: Final[dict[str, Callable[[bytes], Any]]] = {
    "sha-256": hashlib.sha256,
    "sha-384": hashlib.sha384,
    "sha-512": hashlib.sha512,
}
#: Default issuer-signature allow-list for verification.
DEFAULT_ALGORITHMS: Final = ("ES256", "ES384", "ES512", "EdDSA")
_SD_JWT_VC_TYPS: Final = ("dc+sd-jwt", "vc+sd-jwt")
_MAX_SD_JWT_LENGTH: Final = 1 << 22
_SALT_BYTES: Final = 16  # 128 bits


class SdJwtReason:
    """Short codes carried by :attr:`SdJwtVerificationError.reason`."""

    MALFORMED: Final = "malformed"
    ALG: Final = "alg not allowed"
    UNKNOWN_KEY: Final = "unknown key"
    SIGNATURE: Final = "signature"
    TYP: Final = "typ"
    SD_ALG: Final = "unsupported _sd_alg"
    DISCLOSURE_NOT_REFERENCED: Final = "disclosure not referenced"
    DUPLICATE_DISCLOSURE: Final = "duplicate disclosure"
    DUPLICATE_DIGEST: Final = "duplicate digest"
    DISCLOSURE_SHAPE: Final = "disclosure shape"
    RESERVED_NAME: Final = "reserved name"
    RESERVED_CLAIM: Final = "reserved claim disclosed"
    CLAIM_COLLISION: Final = "claim collision"
    CLAIM_TYPE: Final = "claim type"
    VCT_MISSING: Final = "vct missing"
    VCT_MISMATCH: Final = "vct mismatch"
    ISSUER_MISMATCH: Final = "issuer mismatch"
    CNF_INVALID: Final = "cnf invalid"
    CNF_MISMATCH: Final = "cnf mismatch"
    EXPIRED: Final = "expired"
    NOT_YET_VALID: Final = "not yet valid"
    ISSUED_IN_FUTURE: Final = "issued in future"
    KEY_BINDING: Final = "key binding not allowed"
    KEY_BINDING_INVALID: Final = "key binding invalid"


class SdJwtVerificationError(CredentialVerificationError):
    """An SD-JWT failed parsing or verification; ``reason`` is an :class:`SdJwtReason` code."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


def _fail(reason: str, message: str) -> SdJwtVerificationError:
    return SdJwtVerificationError(reason, message)


# --------------------------------------------------------------------------------------------
# markers and disclosures


@attrs.frozen
class SelectivelyDisclosable:
    """Marks ``value`` as a selectively disclosable object member or array element."""

    value: Any


def sd(value: Any) -> SelectivelyDisclosable:
    """Mark ``value`` selectively disclosable (object member or array element)."""
    if isinstance(value, SelectivelyDisclosable):
        raise ValidationError("sd() must not wrap a value that is already selectively disclosable")
    return SelectivelyDisclosable(value)


def strip_sd_marks(value: Any) -> Any:
    """``value`` with every :func:`sd` mark removed (the marked values kept in place).

    For formats without selective disclosure (e.g. ``jwt_vc_json``), which disclose every claim.
    Mappings become dicts and tuples lists; other values are returned as they are.
    """
    if isinstance(value, SelectivelyDisclosable):
        return strip_sd_marks(value.value)
    if isinstance(value, Mapping):
        return {name: strip_sd_marks(member) for name, member in value.items()}
    if isinstance(value, list | tuple):
        return [strip_sd_marks(item) for item in value]
    return value


def _hash(hash_alg: str) -> Callable[[bytes], Any]:
    try:
        return _HASHES[hash_alg]
    except (KeyError, TypeError):
        raise ValidationError("unsupported SD-JWT hash algorithm") from None


def disclosure_digest(disclosure: str, hash_alg: str = "sha-256") -> str:
    """base64url(HASH(ASCII bytes of the disclosure string)) — RFC 9901 §4.2.3."""
    hasher = _hash(hash_alg)
    try:
        data = disclosure.encode("ascii")
    except (UnicodeEncodeError, AttributeError):
        raise ValidationError("a disclosure must be an ASCII (base64url) string") from None
    return b64url_encode(hasher(data).digest())


# Built once: json.dumps with options constructs a new JSONEncoder on every call.
_DISCLOSURE_ENCODER: Final = json.JSONEncoder(
    separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


# The C string escaper _DISCLOSURE_ENCODER uses (ensure_ascii=False).
_json_string: Final = json.encoder.encode_basestring


def _dump(value: Any) -> bytes:
    try:
        return _DISCLOSURE_ENCODER.encode(value).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise ValidationError("claim value is not JSON-serializable") from exc


def make_disclosure(
    salt: str, name: str | None, value: Any, hash_alg: str = "sha-256"
) -> tuple[str, str]:
    """Build one disclosure and its digest.

    ``name`` ``None`` gives an array-element disclosure ``[salt, value]``, otherwise an object
    member ``[salt, name, value]``. Returns ``(disclosure, digest)``.
    """
    if not isinstance(salt, str):
        raise ValidationError("disclosure salt must be a string")
    if name is None:
        array: list[Any] = [salt, value]
    else:
        if not isinstance(name, str):
            raise ValidationError("disclosure claim name must be a string")
        if name in ("_sd", "..."):
            raise ValidationError("'_sd' and '...' cannot be disclosed claim names")
        array = [salt, name, value]
    disclosure = b64url_encode(_dump(array))
    return disclosure, disclosure_digest(disclosure, hash_alg)


# Salts for one credential come from one CSPRNG read (os.urandom, as secrets.token_bytes) of
# this many salts; a credential that needs more reads again.
_SALTS_PER_READ: Final = 32


class _Randomness:
    """``_SALT_BYTES`` random byte strings, :data:`_SALTS_PER_READ` per ``os.urandom`` read."""

    __slots__ = ("_buffer", "_offset")

    def __init__(self) -> None:
        self._buffer = b""
        self._offset = 0

    def take(self) -> bytes:
        """The next ``_SALT_BYTES`` unused random bytes (never handed out twice)."""
        offset = self._offset
        if offset + _SALT_BYTES > len(self._buffer):
            self._buffer = secrets.token_bytes(_SALT_BYTES * _SALTS_PER_READ)
            offset = 0
        self._offset = offset + _SALT_BYTES
        return self._buffer[offset : offset + _SALT_BYTES]


# --------------------------------------------------------------------------------------------
# issuance


_PLAIN_TYPES: Final = (str, int, bool)


_LEAF_TYPES: Final = (str, int, bool, type(None))


@attrs.define
class _Encoder:
    hash_alg: str
    decoys: int
    max_decoys: int | None = None
    disclosures: list[str] = attrs.field(factory=list)
    # The JSON of ``name, value]`` for leaf values, shared by the credentials of one batch:
    # only the salt differs between them (a salt is base64url, so it needs no JSON escaping).
    tails: dict[tuple[str | None, type, Any], str] = attrs.field(factory=dict)
    randomness: _Randomness = attrs.field(factory=_Randomness)

    def decoy_count(self) -> int:
        """``decoys``, or a CSPRNG draw in ``decoys..max_decoys`` (one per ``_sd`` array)."""
        if self.max_decoys is None:
            return self.decoys
        return self.decoys + secrets.randbelow(self.max_decoys - self.decoys + 1)

    def disclose(self, name: str | None, value: Any) -> str:
        # make_disclosure() without its argument checks: ``object`` has already refused
        # non-string and reserved names, and the salt is ours. The bytes are exactly those of
        # ``_dump([salt, name, value])``: the ``name, value]`` part is encoded once per batch.
        if type(value) in _LEAF_TYPES:
            key = (name, type(value), value)
            tail = self.tails.get(key)
            if tail is None:
                tail = self.tails[key] = self._tail(name, value)
        else:
            tail = self._tail(name, value)
        salt = b64url_encode(self.randomness.take())
        try:
            disclosure = b64url_encode(f'["{salt}",{tail}'.encode())
        except UnicodeEncodeError as exc:  # a lone surrogate, as _dump refuses it
            raise ValidationError("claim value is not JSON-serializable") from exc
        self.disclosures.append(disclosure)
        return b64url_encode(_hash(self.hash_alg)(disclosure.encode("ascii")).digest())

    @staticmethod
    def _tail(name: str | None, value: Any) -> str:
        """The JSON of ``[name, value]`` (or ``[value]``) without its opening bracket."""
        kind = type(value)
        if kind is str:  # what the encoder writes for these leaves, without its overhead
            encoded = _json_string(value)
        elif kind is int:
            encoded = int.__repr__(value)
        elif kind is bool:
            encoded = "true" if value else "false"
        elif value is None:
            encoded = "null"
        else:
            array = [value] if name is None else [name, value]
            return _dump(array).decode("utf-8")[1:]
        return encoded + "]" if name is None else f"{_json_string(name)},{encoded}]"

    def decoy_digest(self) -> str:
        """A digest of fresh random bytes (RFC 9901 §4.2.5)."""
        return b64url_encode(_hash(self.hash_alg)(self.randomness.take()).digest())

    def value(self, value: Any) -> Any:
        if value is None or type(value) in _PLAIN_TYPES:
            return value  # fast path for the common leaf values (exact str, int, bool)
        if isinstance(value, SelectivelyDisclosable):
            raise ValidationError("sd() may only mark object members and array elements")
        if isinstance(value, Mapping):
            return self.object(value, top_level=False)
        if isinstance(value, list | tuple):
            return self.array(value)
        if value is None or isinstance(value, str | bool | int):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValidationError("claim values must be finite numbers")
            return value
        raise ValidationError(f"claim value of type {type(value).__name__} is not JSON")

    def object(self, obj: Mapping[Any, Any], *, top_level: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        digests: list[str] = []
        for name, member in obj.items():
            if not isinstance(name, str):
                raise ValidationError("claim names must be strings")
            if name in ("_sd", "..."):
                raise ValidationError(f"{name!r} is reserved and cannot be a claim name")
            if isinstance(member, SelectivelyDisclosable):
                if top_level and name in RESERVED_CLAIMS:
                    raise ValidationError(f"claim {name!r} cannot be selectively disclosable")
                digests.append(self.disclose(name, self.value(member.value)))
            else:
                out[name] = self.value(member)
        if top_level or digests:
            digests.extend(self.decoy_digest() for _ in range(self.decoy_count()))
        if digests:
            out["_sd"] = sorted(digests)
        return out

    def array(self, items: Sequence[Any]) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if isinstance(item, SelectivelyDisclosable):
                out.append({"...": self.disclose(None, self.value(item.value))})
            else:
                out.append(self.value(item))
        return out


def _int_claim(name: str, value: int | None) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValidationError(f"{name!r} must be an integer NumericDate")
    return value


@attrs.frozen(kw_only=True)
class SdJwtOptions:
    """How an SD-JWT VC is issued, apart from its claims and holder key (one value, like
    httpx's ``Timeout``).

    ``typ`` is the JOSE header ``typ`` (``dc+sd-jwt``; ``vc+sd-jwt`` for Draft 13/14);
    ``iat`` defaults to now by ``clock``; ``exp`` / ``nbf`` / ``status`` are written when
    given; the header carries ``kid`` or ``x5c``; ``decoys`` decoy digests are added to every
    ``_sd`` array; ``hash_alg`` is the ``_sd_alg``. With ``max_decoys`` each ``_sd`` array gets
    its own random number of decoys in ``decoys..max_decoys`` (drawn with :mod:`secrets`), so
    credentials of one shape do not all have the same digest counts.
    """

    typ: str = "dc+sd-jwt"
    iat: int | None = None
    exp: int | None = None
    nbf: int | None = None
    status: Mapping[str, Any] | None = None
    kid: str | None = None
    x5c: Sequence[str] | None = None
    decoys: int = 0
    hash_alg: str = "sha-256"
    clock: Callable[[], float] = time.time
    max_decoys: int | None = None


async def issue_sd_jwt_vc(
    signer: Signer,
    *,
    vct: str,
    claims: Mapping[str, Any],
    holder_jwk: Mapping[str, Any] | None,
    issuer: str | None,
    typ: str = "dc+sd-jwt",
    iat: int | None = None,
    exp: int | None = None,
    nbf: int | None = None,
    status: Mapping[str, Any] | None = None,
    kid: str | None = None,
    x5c: Sequence[str] | None = None,
    decoys: int = 0,
    hash_alg: str = "sha-256",
    clock: Callable[[], float] = time.time,
    max_decoys: int | None = None,
) -> str:
    """Issue an SD-JWT VC and return its compact form ``<jwt>~<d1>~...~<dn>~``.

    ``claims`` may mark members/elements with :func:`sd`; ``vct``, ``iss``, ``iat`` (default
    now), ``exp``, ``nbf``, ``status`` and ``cnf.jwk`` (``holder_jwk``, which must be public)
    are set from the keywords and may not appear in ``claims``. ``decoys`` decoy digests are
    added to the top-level ``_sd`` array and to every nested ``_sd`` array (with ``max_decoys``,
    a random number in ``decoys..max_decoys`` for each array). The JOSE header has
    ``typ`` (``dc+sd-jwt``; ``vc+sd-jwt`` for Draft 13/14) and ``kid`` or ``x5c``.
    The keywords after ``issuer`` are those of :class:`SdJwtOptions` (what :func:`issue_batch`
    takes as one value). Raises :class:`~oid4vci.errors.ValidationError` for unusable input.
    """
    options = SdJwtOptions(
        typ=typ,
        iat=iat,
        exp=exp,
        nbf=nbf,
        status=status,
        kid=kid,
        x5c=x5c,
        decoys=decoys,
        hash_alg=hash_alg,
        clock=clock,
        max_decoys=max_decoys,
    )
    return await _issue(
        signer, vct=vct, claims=claims, holder_jwk=holder_jwk, issuer=issuer, options=options
    )


async def _issue(
    signer: Signer,
    *,
    vct: str,
    claims: Mapping[str, Any],
    holder_jwk: Mapping[str, Any] | None,
    issuer: str | None,
    options: SdJwtOptions,
    tails: dict[tuple[str | None, type, Any], str] | None = None,
) -> str:
    typ, iat, exp, nbf, status = (
        options.typ,
        options.iat,
        options.exp,
        options.nbf,
        options.status,
    )
    kid, x5c, decoys, hash_alg = options.kid, options.x5c, options.decoys, options.hash_alg
    clock = options.clock
    if not isinstance(vct, str) or not vct:
        raise ValidationError("'vct' must be a non-empty string")
    if not isinstance(typ, str) or not typ:
        raise ValidationError("'typ' must be a non-empty string")
    if kid is not None and x5c is not None:
        raise ValidationError("use either 'kid' or 'x5c' in the header, not both")
    if not isinstance(decoys, int) or isinstance(decoys, bool) or not 0 <= decoys <= 1000:
        raise ValidationError("'decoys' must be an integer between 0 and 1000")
    max_decoys = options.max_decoys
    if max_decoys is not None and (
        not isinstance(max_decoys, int)
        or isinstance(max_decoys, bool)
        or not decoys <= max_decoys <= 1000
    ):
        raise ValidationError("'max_decoys' must be an integer between 'decoys' and 1000")
    _hash(hash_alg)
    if type(claims) is not dict and not isinstance(claims, Mapping):
        raise ValidationError("'claims' must be a mapping")
    clashing = sorted(n for n in claims if n in _KEYWORD_CLAIMS_VC)
    if clashing:
        for name in clashing:
            if isinstance(claims[name], SelectivelyDisclosable) or name in ("_sd", "..."):
                raise ValidationError(f"claim {name!r} cannot be selectively disclosable")
        raise ValidationError(f"claims {clashing} are set by keyword arguments, not 'claims'")
    encoder = _Encoder(hash_alg=hash_alg, decoys=decoys, max_decoys=max_decoys)
    if tails is not None:
        encoder.tails = tails
    payload = encoder.object(claims, top_level=True)
    if issuer is not None:
        if not isinstance(issuer, str) or not issuer:
            raise ValidationError("'issuer' must be a non-empty string")
        payload["iss"] = issuer
    payload["iat"] = _int_claim("iat", iat) if iat is not None else int(clock())
    if _int_claim("exp", exp) is not None:
        payload["exp"] = exp
    if _int_claim("nbf", nbf) is not None:
        payload["nbf"] = nbf
    payload["vct"] = vct
    if status is not None:
        if not isinstance(status, Mapping):
            raise ValidationError("'status' must be a JSON object")
        payload["status"] = encoder.value(status)
    if holder_jwk is not None:
        payload["cnf"] = {"jwk": public_jwk(holder_jwk)}
    payload["_sd_alg"] = hash_alg
    header: dict[str, Any] = {"typ": typ}
    if kid is not None:
        header["kid"] = kid
    if x5c is not None:
        if isinstance(x5c, str) or not x5c or not all(isinstance(c, str) for c in x5c):
            raise ValidationError("'x5c' must be a non-empty list of base64 certificates")
        header["x5c"] = list(x5c)
    jwt = await create_jws(signer, payload, header)
    return "~".join([jwt, *encoder.disclosures, ""])


async def issue_batch(
    signer: Signer,
    *,
    holder_jwks: Sequence[Mapping[str, Any]],
    vct: str,
    claims: Mapping[str, Any],
    issuer: str | None,
    options: SdJwtOptions | None = None,
    statuses: Sequence[Mapping[str, Any] | None] | None = None,
) -> list[str]:
    """One SD-JWT VC per holder key (same claims, fresh salts and decoys for each).

    ``options`` (:class:`SdJwtOptions`) applies to every credential of the batch;
    ``statuses``, when given, holds one ``status`` claim per holder key (``None`` for none)
    in place of ``options.status``. The JSON of each selectively disclosable leaf claim is
    built once for the whole batch; only the salts differ.
    """
    if (type(holder_jwks) is not list and isinstance(holder_jwks, Mapping)) or not holder_jwks:
        raise ValidationError("'holder_jwks' must be a non-empty sequence of JWKs")
    shared = options if options is not None else SdJwtOptions()
    if statuses is None:
        per_credential = [shared] * len(holder_jwks)
    else:
        if isinstance(statuses, Mapping) or len(statuses) != len(holder_jwks):
            raise ValidationError("'statuses' must hold one entry per holder key")
        per_credential = [attrs.evolve(shared, status=status) for status in statuses]
    tails: dict[tuple[str | None, type, Any], str] = {}
    return [
        await _issue(
            signer,
            vct=vct,
            claims=claims,
            holder_jwk=jwk,
            issuer=issuer,
            options=each,
            tails=tails,
        )
        for jwk, each in zip(holder_jwks, per_credential, strict=True)
    ]


# --------------------------------------------------------------------------------------------
# parsing


@attrs.frozen(kw_only=True)
class Disclosure:
    """One received disclosure: the verbatim string, its decoded parts and its digest."""

    raw: str
    salt: str
    name: str | None
    value: Any
    digest: str


@attrs.frozen(kw_only=True)
class ParsedSdJwt:
    """An SD-JWT split into the issuer-signed JWT, its disclosures and an optional KB-JWT.

    ``hash_alg`` is the payload's ``_sd_alg`` (default ``sha-256``), used for the digests.
    """

    issuer_jwt: str
    jws: DecodedJws
    disclosures: tuple[Disclosure, ...]
    key_binding_jwt: str | None
    hash_alg: str


def _refuse_constant(name: str) -> Any:
    raise UsageError(f"non-standard JSON constant {name}")


# Built once (json.loads with options constructs a new JSONDecoder on every call), called
# through its scanner.
_parse_disclosure_json: Final = text_parser(json.JSONDecoder(parse_constant=_refuse_constant))


def _malformed_disclosure(index: int, problem: str) -> SdJwtVerificationError:
    # The message is built only on failure: ten disclosures per credential pass this way.
    return _fail(SdJwtReason.MALFORMED, f"disclosure #{index + 1} {problem}")


def _parse_disclosure(raw: str, hash_alg: str, index: int) -> Disclosure:
    if not raw:
        raise _malformed_disclosure(index, "is empty")
    try:
        array = _parse_disclosure_json(b64url_decode(raw).decode("utf-8"))
    except JoseError:
        raise _malformed_disclosure(index, "is not base64url") from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _malformed_disclosure(index, "is not a UTF-8 JSON array") from None
    if type(array) is not list or len(array) not in (2, 3):
        raise _malformed_disclosure(index, "must be a JSON array of 2 or 3 elements")
    if type(array[0]) is not str:
        raise _malformed_disclosure(index, "has a non-string salt")
    name: str | None = None
    if len(array) == 3:
        if type(array[1]) is not str:
            raise _malformed_disclosure(index, "has a non-string claim name")
        name = array[1]
    # disclosure_digest(raw, hash_alg) without its checks: raw decoded as base64url above, so
    # it is ASCII, and parse_sd_jwt checked hash_alg.
    return Disclosure(
        raw=raw,
        salt=array[0],
        name=name,
        value=array[-1],
        digest=b64url_encode(_HASHES[hash_alg](raw.encode("ascii")).digest()),
    )


def parse_sd_jwt(text: str) -> ParsedSdJwt:
    """Split ``<jwt>~<d1>~...~<dn>~[<kb-jwt>]`` without verifying anything cryptographic.

    Raises :class:`SdJwtVerificationError` (reason ``malformed``, or ``unsupported _sd_alg``).
    """
    if not isinstance(text, str):
        raise _fail(SdJwtReason.MALFORMED, "an SD-JWT must be a string")
    if len(text) > _MAX_SD_JWT_LENGTH:
        raise _fail(SdJwtReason.MALFORMED, "SD-JWT is too large")
    parts = text.split("~")
    if len(parts) < 2:
        raise _fail(SdJwtReason.MALFORMED, "an SD-JWT must contain '~' after the issuer JWT")
    try:
        jws = decode_jws(parts[0])
    except JoseError as exc:
        raise _fail(SdJwtReason.MALFORMED, f"issuer-signed JWT: {exc}") from None
    hash_alg = jws.payload.get("_sd_alg", "sha-256")
    if not isinstance(hash_alg, str) or hash_alg not in SUPPORTED_HASH_ALGORITHMS:
        raise _fail(SdJwtReason.SD_ALG, "the '_sd_alg' hash algorithm is not supported")
    disclosures = tuple(_parse_disclosure(raw, hash_alg, i) for i, raw in enumerate(parts[1:-1]))
    kb_jwt = parts[-1] or None
    if kb_jwt is not None:
        try:
            decode_jws(kb_jwt)
        except JoseError as exc:
            raise _fail(
                SdJwtReason.MALFORMED, f"the part after the last '~' is not a KB-JWT: {exc}"
            ) from None
    return ParsedSdJwt(
        issuer_jwt=parts[0],
        jws=jws,
        disclosures=disclosures,
        key_binding_jwt=kb_jwt,
        hash_alg=hash_alg,
    )


# --------------------------------------------------------------------------------------------
# verification


@attrs.frozen(kw_only=True)
class VerifiedSdJwt:
    """A verified SD-JWT.

    ``payload`` is the signed payload as received; ``claims`` the processed payload
    (disclosures applied, ``_sd``/``_sd_alg`` and unmatched array placeholders removed).
    ``key_binding`` is the KB-JWT payload when one was present and allowed (and verified).
    """

    header: dict[str, Any]
    payload: dict[str, Any]
    claims: dict[str, Any]
    disclosures: tuple[Disclosure, ...]
    holder_jwk: dict[str, Any] | None
    key_binding: dict[str, Any] | None
    raw: str


@attrs.frozen(kw_only=True)
class VerifiedSdJwtVc:
    """A verified SD-JWT VC (see :class:`VerifiedSdJwt`) with its ``vct``."""

    header: dict[str, Any]
    payload: dict[str, Any]
    claims: dict[str, Any]
    disclosures: tuple[Disclosure, ...]
    holder_jwk: dict[str, Any] | None
    key_binding: dict[str, Any] | None
    vct: str
    raw: str


@attrs.define
class _Processor:
    """RFC 9901 §7.1 step 3-5: match digests to disclosures and rebuild the claims."""

    by_digest: dict[str, Disclosure]
    seen: set[str] = attrs.field(factory=set)
    used: set[str] = attrs.field(factory=set)

    def _lookup(self, digest: Any) -> Disclosure | None:
        if not isinstance(digest, str):
            raise _fail(SdJwtReason.MALFORMED, "digests must be strings")
        if digest in self.seen:
            raise _fail(SdJwtReason.DUPLICATE_DIGEST, "a digest appears more than once")
        self.seen.add(digest)
        found = self.by_digest.get(digest)
        if found is not None:
            self.used.add(digest)
        return found

    def value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return self.object(value, top_level=False)
        if isinstance(value, list):
            return self.array(value)
        return value

    def object(self, obj: dict[str, Any], *, top_level: bool) -> dict[str, Any]:
        digests = obj.get("_sd", [])
        if not isinstance(digests, list):
            raise _fail(SdJwtReason.MALFORMED, "'_sd' must be an array of digests")
        out: dict[str, Any] = {}
        for name, member in obj.items():
            if name == "_sd" or (top_level and name == "_sd_alg"):
                continue
            out[name] = self.value(member)
        for digest in digests:
            disclosure = self._lookup(digest)
            if disclosure is None:
                continue  # a decoy, or a disclosure the holder withheld
            disclosed = disclosure.name
            if disclosed is None:
                raise _fail(
                    SdJwtReason.DISCLOSURE_SHAPE,
                    "an array-element disclosure is referenced from an '_sd' array",
                )
            if disclosed in ("_sd", "..."):
                raise _fail(SdJwtReason.RESERVED_NAME, f"a disclosure uses the name {disclosed!r}")
            if top_level and disclosed in _NEVER_DISCLOSED:
                raise _fail(
                    SdJwtReason.RESERVED_CLAIM,
                    f"claim {disclosed!r} must not be selectively disclosed",
                )
            if disclosed in obj or disclosed in out:
                raise _fail(
                    SdJwtReason.CLAIM_COLLISION, f"disclosed claim {disclosed!r} already exists"
                )
            out[disclosed] = self.value(disclosure.value)
        return out

    def array(self, items: list[Any]) -> list[Any]:
        out: list[Any] = []
        for item in items:
            if isinstance(item, dict) and len(item) == 1 and "..." in item:
                disclosure = self._lookup(item["..."])
                if disclosure is None:
                    continue  # unmatched placeholder: removed
                if disclosure.name is not None:
                    raise _fail(
                        SdJwtReason.DISCLOSURE_SHAPE,
                        "an object-member disclosure is referenced from an array",
                    )
                out.append(self.value(disclosure.value))
            else:
                out.append(self.value(item))
        return out


def _holder_jwk(claims: Mapping[str, Any]) -> dict[str, Any] | None:
    if "cnf" not in claims:
        return None
    cnf = claims["cnf"]
    if not isinstance(cnf, dict):
        raise _fail(SdJwtReason.CNF_INVALID, "'cnf' must be a JSON object")
    if "jwk" not in cnf:
        return None
    try:
        return public_jwk(cnf["jwk"])
    except JoseError:
        raise _fail(SdJwtReason.CNF_INVALID, "'cnf.jwk' is not a usable public key") from None


def _same_text(sent: str, expected: str) -> bool:
    """Constant-time equality of two strings, either of which may hold a lone surrogate
    (legal in JSON text, not encodable as UTF-8): such a string never matches."""
    try:
        return secrets.compare_digest(sent.encode(), expected.encode())
    except UnicodeEncodeError:
        return False


def _verify_key_binding(
    parsed: ParsedSdJwt,
    holder_jwk: Mapping[str, Any] | None,
    *,
    algorithms: Collection[str],
    nonce: str | None,
    audience: str | None,
    max_age: float,
    now: float,
    leeway: float,
) -> dict[str, Any]:
    kb = parsed.key_binding_jwt
    assert kb is not None
    if holder_jwk is None:
        raise _fail(SdJwtReason.KEY_BINDING_INVALID, "a KB-JWT needs 'cnf.jwk' in the SD-JWT")
    try:
        decoded = verify_jws(kb, holder_jwk, algorithms=algorithms)
    except JoseError:
        raise _fail(SdJwtReason.KEY_BINDING_INVALID, "the KB-JWT does not verify") from None
    if decoded.header.get("typ") != "kb+jwt":
        raise _fail(SdJwtReason.KEY_BINDING_INVALID, "the KB-JWT 'typ' must be 'kb+jwt'")
    payload = decoded.payload
    presented = "~".join([parsed.issuer_jwt, *(d.raw for d in parsed.disclosures), ""])
    expected_hash = b64url_encode(_HASHES[parsed.hash_alg](presented.encode("ascii")).digest())
    if payload.get("sd_hash") != expected_hash:
        raise _fail(SdJwtReason.KEY_BINDING_INVALID, "the KB-JWT 'sd_hash' does not match")
    if not isinstance(payload.get("nonce"), str) or not isinstance(payload.get("aud"), str):
        raise _fail(SdJwtReason.KEY_BINDING_INVALID, "the KB-JWT lacks 'nonce' or 'aud'")
    iat = finite_number(payload.get("iat"))
    if iat is None or iat > now + leeway:
        raise _fail(SdJwtReason.KEY_BINDING_INVALID, "the KB-JWT 'iat' is missing or in future")
    if iat < now - max_age - leeway:  # RFC 9901 §7.3 step 5: "within an acceptable window"
        raise _fail(SdJwtReason.KEY_BINDING_INVALID, "the KB-JWT 'iat' is too old")
    if nonce is not None and not _same_text(payload["nonce"], nonce):
        raise _fail(SdJwtReason.KEY_BINDING_INVALID, "the KB-JWT 'nonce' does not match")
    if audience is not None and payload["aud"] != audience:
        raise _fail(SdJwtReason.KEY_BINDING_INVALID, "the KB-JWT 'aud' does not match")
    return payload


def verify_sd_jwt(
    text: str,
    *,
    issuer_keys: Sequence[Mapping[str, Any]],
    algorithms: Collection[str] = DEFAULT_ALGORITHMS,
    expected_typ: Collection[str] | None = None,
    allow_key_binding: bool = False,
    kb_nonce: str | None = None,
    kb_audience: str | None = None,
    kb_max_age: float = 300,
    clock: Callable[[], float] = time.time,
    leeway: float = 60,
    parsed: ParsedSdJwt | None = None,
) -> VerifiedSdJwt:
    """Verify a generic SD-JWT (RFC 9901 §7.1) and return its processed claims.

    ``issuer_keys`` are public JWKs (picked by header ``kid`` when present, else each tried).
    ``expected_typ`` ``None`` skips the ``typ`` check. A trailing KB-JWT is refused unless
    ``allow_key_binding`` (then its signature with ``cnf.jwk``, ``typ``, ``sd_hash`` and, when
    given, ``kb_nonce``/``kb_audience`` are checked; its ``iat`` must be at most ``kb_max_age``
    seconds old, RFC 9901 §7.3 step 5). ``parsed`` is :func:`parse_sd_jwt` of
    ``text`` when the caller already has it (the disclosures are then not decoded and hashed
    a second time). Raises :class:`SdJwtVerificationError`.
    """
    if parsed is None:
        parsed = parse_sd_jwt(text)
    if parsed.key_binding_jwt is not None and not allow_key_binding:
        raise _fail(SdJwtReason.KEY_BINDING, "a KB-JWT is present but not expected here")
    verify_issuer_signature(parsed.jws, issuer_keys, algorithms, _fail)
    header = parsed.jws.header
    if expected_typ is not None:
        allowed = (expected_typ,) if isinstance(expected_typ, str) else tuple(expected_typ)
        if header.get("typ") not in allowed:
            raise _fail(SdJwtReason.TYP, "the JOSE header 'typ' is not the expected one")
    by_digest: dict[str, Disclosure] = {}
    for disclosure in parsed.disclosures:
        if disclosure.digest in by_digest:
            raise _fail(SdJwtReason.DUPLICATE_DISCLOSURE, "a disclosure is present twice")
        by_digest[disclosure.digest] = disclosure
    processor = _Processor(by_digest=by_digest)
    try:
        claims = processor.object(parsed.jws.payload, top_level=True)
    except RecursionError:
        raise _fail(SdJwtReason.MALFORMED, "the claims are nested too deeply") from None
    if len(processor.used) != len(by_digest):
        raise _fail(
            SdJwtReason.DISCLOSURE_NOT_REFERENCED, "a disclosure is not referenced by any digest"
        )
    now = clock()
    check_validity(claims, now, leeway, _fail)
    holder = _holder_jwk(claims)
    key_binding = None
    if parsed.key_binding_jwt is not None:
        key_binding = _verify_key_binding(
            parsed,
            holder,
            algorithms=algorithms,
            nonce=kb_nonce,
            audience=kb_audience,
            max_age=kb_max_age,
            now=now,
            leeway=leeway,
        )
    return VerifiedSdJwt(
        header=header,
        payload=parsed.jws.payload,
        claims=claims,
        disclosures=parsed.disclosures,
        holder_jwk=holder,
        key_binding=key_binding,
        raw=text,
    )


def verify_sd_jwt_vc(
    text: str,
    *,
    issuer_keys: Sequence[Mapping[str, Any]],
    algorithms: Collection[str] = DEFAULT_ALGORITHMS,
    expected_typ: Collection[str] = _SD_JWT_VC_TYPS,
    expected_vct: str | None = None,
    expected_issuer: str | None = None,
    expected_cnf_jwk: Mapping[str, Any] | None = None,
    allow_key_binding: bool = False,
    kb_nonce: str | None = None,
    kb_audience: str | None = None,
    kb_max_age: float = 300,
    clock: Callable[[], float] = time.time,
    leeway: float = 60,
    parsed: ParsedSdJwt | None = None,
) -> VerifiedSdJwtVc:
    """Verify an SD-JWT VC: :func:`verify_sd_jwt` plus ``vct``, ``iss`` and holder key checks.

    ``vct`` must be a string (equal to ``expected_vct`` when given), ``iss`` equal to
    ``expected_issuer`` when given, ``cnf.jwk`` the same key (by RFC 7638 thumbprint) as
    ``expected_cnf_jwk`` when given. A KB-JWT is refused unless ``allow_key_binding`` — an
    issuer must never send one. ``parsed``: as for :func:`verify_sd_jwt`.
    Raises :class:`SdJwtVerificationError`.
    """
    verified = verify_sd_jwt(
        text,
        issuer_keys=issuer_keys,
        algorithms=algorithms,
        expected_typ=expected_typ,
        allow_key_binding=allow_key_binding,
        kb_nonce=kb_nonce,
        kb_audience=kb_audience,
        kb_max_age=kb_max_age,
        clock=clock,
        leeway=leeway,
        parsed=parsed,
    )
    claims = verified.claims
    vct = claims.get("vct")
    if not isinstance(vct, str) or not vct:
        raise _fail(SdJwtReason.VCT_MISSING, "the credential has no 'vct' string")
    if expected_vct is not None and vct != expected_vct:
        raise _fail(SdJwtReason.VCT_MISMATCH, "'vct' is not the expected credential type")
    if expected_issuer is not None and claims.get("iss") != expected_issuer:
        raise _fail(SdJwtReason.ISSUER_MISMATCH, "'iss' is not the expected issuer")
    if "status" in claims and not isinstance(claims["status"], dict):
        raise _fail(SdJwtReason.CLAIM_TYPE, "'status' must be a JSON object")
    if expected_cnf_jwk is not None:
        holder = verified.holder_jwk
        try:
            same = holder is not None and jwk_thumbprint(holder) == jwk_thumbprint(expected_cnf_jwk)
        except JoseError:
            same = False
        if not same:
            raise _fail(SdJwtReason.CNF_MISMATCH, "'cnf.jwk' is not the expected holder key")
    return VerifiedSdJwtVc(
        header=verified.header,
        payload=verified.payload,
        claims=claims,
        disclosures=verified.disclosures,
        holder_jwk=verified.holder_jwk,
        key_binding=verified.key_binding,
        vct=vct,
        raw=text,
    )
