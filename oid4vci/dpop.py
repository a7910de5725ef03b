"""DPoP (RFC 9449), both roles, as pure functions (no I/O).

* A client calls :func:`build_dpop_jwt` for every request (fresh ``jti`` and ``iat`` each time),
  passing the access token when it sends one (``ath``) and the latest ``DPoP-Nonce`` of that
  server.
* A server calls :func:`verify_dpop_jwt` with the request. It checks, in this order: exactly one
  ``DPoP`` header holding one compact JWS; ``typ``; ``alg`` against the allow-list (never
  ``none`` or a MAC); a public-only ``jwk``; the signature; the required claims and their
  types; ``htm`` and ``htu`` against the request; ``iat`` freshness; ``ath`` when an access token
  is given; the key thumbprint against ``expected_jkt``; the server nonce; and **last** the
  ``jti`` replay cache, so a proof that fails any other check never burns its ``jti``.

Every failure raises :class:`~oid4vci.errors.DpopError` with ``invalid_dpop_proof`` (or
``use_dpop_nonce`` carrying a fresh ``dpop_nonce``) and status 400; a resource server remaps it
to 401 with a ``WWW-Authenticate: DPoP`` challenge. Messages name the reason and never contain
tokens or nonces.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, NoReturn, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import attrs

from ._json import loads_bytes
from .errors import ArgumentTypeError, DpopError, ErrorCode, JoseError
from .http import HttpRequest
from .jose import (
    ASYMMETRIC_ALGORITHMS,
    Signer,
    _public_key_of,
    _verify_signature,
    b64url_decode,
    b64url_encode,
    checked_headers,
    create_jws,
    decode_jws,
    jwk_thumbprint,
    public_jwk,
    signer_public_jwk,
    verify_jws,
)
from .urls import normalize_htu

__all__ = [
    "DEFAULT_DPOP_ALGORITHMS",
    "DPOP_TYP",
    "SUPPORTED_DPOP_ALGORITHMS",
    "DpopProof",
    "JtiStore",
    "access_token_hash",
    "build_dpop_jwt",
    "verify_dpop_jwt",
]

#: The ``typ`` header value of a DPoP proof JWT.
DPOP_TYP = "dpop+jwt"
#: The algorithms :func:`verify_dpop_jwt` accepts unless told otherwise: the ones the issuer
#: accepts and publishes (``dpop_signing_alg_values_supported``) by default
#: (:attr:`IssuerConfig.dpop_algorithms <oid4vci.issuer.config.IssuerConfig.dpop_algorithms>`).
DEFAULT_DPOP_ALGORITHMS: tuple[str, ...] = ("ES256", "ES384", "EdDSA")
#: Every algorithm :func:`verify_dpop_jwt` can check, when a caller allows it.
SUPPORTED_DPOP_ALGORITHMS: tuple[str, ...] = ("ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256")

_MAX_PROOF_LENGTH = 16 * 1024
_MAX_JTI_LENGTH = 256
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def access_token_hash(token: str) -> str:
    """The ``ath`` claim for ``token``: base64url(SHA-256(ASCII(token))), no padding."""
    return b64url_encode(hashlib.sha256(token.encode("utf-8")).digest())


def _htu_for(url: str) -> str:
    """``url`` without query and fragment (the client-side ``htu``)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", "", ""))


async def build_dpop_jwt(
    signer: Signer,
    htm: str,
    htu: str,
    *,
    access_token: str | None = None,
    nonce: str | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """A fresh DPoP proof JWT for one request.

    ``htm`` is the request method, ``htu`` the request URL (query and fragment are dropped).
    ``access_token`` adds ``ath``; ``nonce`` is the server's latest ``DPoP-Nonce``. The header
    carries ``typ: dpop+jwt``, the signer's ``alg`` and its public ``jwk``.
    """
    header = {"typ": DPOP_TYP, "alg": signer.alg, "jwk": signer_public_jwk(signer)}
    claims: dict[str, Any] = {
        "jti": secrets.token_urlsafe(16),
        "htm": htm.upper(),
        "htu": _htu_for(htu),
        "iat": int(clock()),
    }
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    if nonce is not None:
        claims["nonce"] = nonce
    return await create_jws(signer, claims, header)


@attrs.frozen(kw_only=True, repr=False)
class DpopProof:
    """A verified DPoP proof: the public ``jwk``, its RFC 7638 thumbprint ``jkt``, the
    ``claims`` and the JOSE ``header``. ``repr`` shows only the thumbprint, ``htm`` and ``htu``.
    """

    jwk: dict[str, Any]
    jkt: str
    claims: dict[str, Any]
    header: dict[str, Any]

    def __repr__(self) -> str:
        return (
            f"DpopProof(jkt={self.jkt!r}, htm={self.claims.get('htm')!r}, "
            f"htu={self.claims.get('htu')!r})"
        )


@runtime_checkable
class JtiStore(Protocol):
    """The replay cache :func:`verify_dpop_jwt` uses (an issuer ``Store`` satisfies it)."""

    async def add_if_absent(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds; True when it was not already present."""
        ...


def _invalid(reason: str) -> NoReturn:
    raise DpopError(ErrorCode.INVALID_DPOP_PROOF, reason)


def _is_number(value: object) -> bool:
    """A JSON number that ``float()`` turns into a finite value (so no OverflowError later)."""
    if type(value) is int:  # the usual iat (never a bool: its type is bool)
        return value.bit_length() <= 1023
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int subclass too large for a float
        return False


_CACHEABLE_URL_LENGTH = 2048


@functools.lru_cache(maxsize=512)
def _normalized_cached(url: str) -> str | None:
    try:
        return normalize_htu(url)
    except ValueError:
        return None


def _normalized(url: str) -> str | None:
    # normalize_htu is a pure function of the string and the same few endpoint URLs come back
    # on every request, so results are cached (only for URLs of a sane length).
    if len(url) <= _CACHEABLE_URL_LENGTH:
        return _normalized_cached(url)
    try:
        return normalize_htu(url)
    except ValueError:
        return None


def _read_proof(request: HttpRequest) -> str:
    values = request.headers.get_all("DPoP")
    if not values:
        _invalid("missing DPoP header")
    if len(values) > 1:
        _invalid("more than one DPoP header")
    value = values[0].strip()
    if "," in value:
        _invalid("more than one DPoP proof in the DPoP header")
    if not value:
        _invalid("empty DPoP header")
    if len(value) > _MAX_PROOF_LENGTH:
        _invalid("DPoP proof is too large")
    return value


_CHECKED_HEADERS_MAX = 1024


def _verified_parts(
    token: str, algorithms: Collection[str]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]:
    """The proof's header and claims, its public JWK and the JWK's thumbprint, once the header
    (``typ``, ``alg`` asymmetric and allowed, a public ``jwk``) and the signature are checked.

    A wallet sends the same header with every proof, so a header that passed is kept
    (:data:`oid4vci.jose.checked_headers`) with its JWK, thumbprint and key object: those
    checks are pure functions of the header's bytes, and a later proof with the same header
    bytes skips only their repetition. The payload, the signature and the allow-list are
    checked every time.
    """
    head, _, rest = token.partition(".")
    known = checked_headers.get(head)
    if known is not None:
        header, jwk, jkt, key = known
        payload_b64, _, signature_b64 = rest.partition(".")
        try:
            payload = loads_bytes(b64url_decode(payload_b64))
            signature = b64url_decode(signature_b64)
        except (JoseError, UnicodeDecodeError, ValueError, RecursionError):
            _invalid("DPoP proof is not a well-formed JWS")
        if not isinstance(payload, dict):
            _invalid("DPoP proof is not a well-formed JWS")
        alg = header["alg"]
        if alg not in algorithms:
            _invalid("DPoP proof algorithm is not allowed")
        if not _verify_signature(alg, key, f"{head}.{payload_b64}".encode("ascii"), signature):
            _invalid("DPoP proof signature is invalid")
        # Copies: the kept header and JWK are never handed out.
        return dict(header, jwk=dict(jwk)), payload, dict(jwk), jkt
    try:
        decoded = decode_jws(token)
    except JoseError:
        _invalid("DPoP proof is not a well-formed JWS")
    header = decoded.header
    if not _typ_ok(header.get("typ")):
        _invalid("DPoP proof typ is not dpop+jwt")
    alg = header["alg"]
    if alg not in algorithms or alg not in ASYMMETRIC_ALGORITHMS:
        _invalid("DPoP proof algorithm is not allowed")
    jwk = header.get("jwk")
    if type(jwk) is not dict and not isinstance(jwk, Mapping):
        _invalid("DPoP proof header has no jwk")
    if _PRIVATE_MEMBERS & set(jwk):
        _invalid("DPoP proof jwk contains private key material")
    try:
        jwk = public_jwk(jwk)
        jkt = jwk_thumbprint(jwk)
    except JoseError:
        _invalid("DPoP proof jwk is not a valid public key")
    try:
        verify_jws(decoded, jwk, algorithms=algorithms)
    except JoseError:
        _invalid("DPoP proof signature is invalid")
    if len(checked_headers) >= _CHECKED_HEADERS_MAX:
        checked_headers.clear()
    checked_headers[head] = (dict(header, jwk=dict(jwk)), dict(jwk), jkt, _public_key_of(jwk))
    return header, decoded.payload, jwk, jkt


def _typ_ok(typ: object) -> bool:
    # RFC 7515 §4.1.9: media type names compare case-insensitively; "application/" may be omitted.
    if not isinstance(typ, str):
        return False
    lowered = typ.lower()
    return lowered in (DPOP_TYP, "application/" + DPOP_TYP)


async def verify_dpop_jwt(
    request: HttpRequest | Mapping[str, Any],
    *,
    algorithms: Collection[str] = DEFAULT_DPOP_ALGORITHMS,
    access_token: str | None = None,
    expected_jkt: str | None = None,
    nonce_required: bool = False,
    check_nonce: Callable[[str], Awaitable[bool]] | None = None,
    new_nonce: Callable[[], Awaitable[str]] | None = None,
    jti_store: JtiStore | None = None,
    max_age: float = 300,
    max_future: float = 60,
    clock: Callable[[], float] = time.time,
    htu: str | None = None,
) -> DpopProof:
    """Check the DPoP proof of ``request`` (an :class:`HttpRequest` or a request dict).

    ``algorithms`` is the allow-list (``none`` and MAC algorithms are refused whatever it
    says). ``access_token`` (at a resource) requires a matching ``ath``; ``expected_jkt`` is the
    thumbprint of the key the token is bound to (``cnf.jkt``) or of a PAR/authorization
    ``dpop_jkt``. With ``nonce_required`` the proof's ``nonce`` must satisfy ``check_nonce``,
    otherwise ``use_dpop_nonce`` is raised with ``dpop_nonce=await new_nonce()``. ``jti_store``
    rejects a second use of the same ``jti`` for the same key and ``htu`` within
    ``max_age + max_future`` seconds. ``iat`` may be at most ``max_age`` seconds old and
    ``max_future`` seconds ahead of ``clock()``. ``htu`` is the URL the proof's ``htu`` must
    name (RFC 9449 §4.3: the endpoint's public URL); it defaults to the request's URL.

    Returns the :class:`DpopProof`; raises :class:`DpopError` (status 400).
    """
    if nonce_required and (check_nonce is None or new_nonce is None):
        raise ArgumentTypeError("nonce_required needs check_nonce and new_nonce")
    req = HttpRequest.coerce(request)
    token = _read_proof(req)

    if token.count(".") != 2:
        _invalid("DPoP proof is not a compact JWS with three parts")
    header, claims, jwk, jkt = _verified_parts(token, algorithms)

    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti:
        _invalid("DPoP proof lacks a string jti")
    if len(jti) > _MAX_JTI_LENGTH:
        _invalid("DPoP proof jti is too long")
    htm = claims.get("htm")
    if not isinstance(htm, str):
        _invalid("DPoP proof lacks a string htm")
    proof_url = claims.get("htu")
    if not isinstance(proof_url, str):
        _invalid("DPoP proof lacks a string htu")
    iat: Any = claims.get("iat")
    if not _is_number(iat):
        _invalid("DPoP proof lacks a numeric iat")

    if htm != req.method:
        _invalid("DPoP proof htm does not match the request method")
    proof_htu = _normalized(proof_url)
    request_htu = _normalized(req.url if htu is None else htu)
    if proof_htu is None:
        _invalid("DPoP proof htu is not a valid URL")
    if request_htu is None or proof_htu != request_htu:
        _invalid("DPoP proof htu does not match the request URL")

    now = clock()
    issued = float(iat)
    if now - issued > max_age:
        _invalid("DPoP proof is too old (iat)")
    if issued - now > max_future:
        _invalid("DPoP proof iat is in the future")

    if access_token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str):
            _invalid("DPoP proof lacks ath for the access token")
        expected_ath = access_token_hash(access_token)
        # ath.isascii() first: a lone surrogate (legal JSON) cannot be encoded at all
        if not ath.isascii() or not hmac.compare_digest(
            ath.encode("ascii"), expected_ath.encode("ascii")
        ):
            _invalid("DPoP proof ath does not match the access token")

    if expected_jkt is not None and (
        not expected_jkt.isascii()
        or not hmac.compare_digest(jkt.encode("ascii"), expected_jkt.encode("ascii"))
    ):
        _invalid("DPoP proof key does not match the bound key")

    if nonce_required:
        assert check_nonce is not None and new_nonce is not None
        nonce = claims.get("nonce")
        if not isinstance(nonce, str) or not nonce:
            raise DpopError(
                ErrorCode.USE_DPOP_NONCE,
                "DPoP proof lacks a server nonce",
                dpop_nonce=await new_nonce(),
            )
        if not await check_nonce(nonce):
            raise DpopError(
                ErrorCode.USE_DPOP_NONCE,
                "DPoP proof nonce is invalid or expired",
                dpop_nonce=await new_nonce(),
            )

    if jti_store is not None:
        key = f"dpop-jti:{jkt}:{proof_htu}:{jti}"
        if not await jti_store.add_if_absent(key, ttl=max_age + max_future):
            _invalid("DPoP proof was replayed (jti already used)")

    # This call's own dicts (never the kept header), so they need no copies.
    return DpopProof(jwk=jwk, jkt=jkt, claims=claims, header=header)
