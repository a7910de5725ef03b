"""Wallet attestations and key attestations: creating and verifying the JWTs (pure, both roles).

Wallet attestation = OAuth 2.0 Attestation-Based Client Authentication
(draft-ietf-oauth-attestation-based-client-auth-07, pinned by OID4VCI 1.0 Appendix E and HAIP
1.0 §4.4.1):

* the **Client Attestation** JWT (``typ`` ``oauth-client-attestation+jwt``) is signed by the
  wallet provider (the "Client Attester"), whose certificate chain (without the trust anchor)
  is in the ``x5c`` header; ``sub`` is the OAuth ``client_id`` (the same for every instance of
  one wallet solution), ``cnf.jwk`` the client instance's public key, ``exp`` its end;
  :func:`create_client_attestation`;
* the **Client Attestation PoP** JWT (``typ`` ``oauth-client-attestation-pop+jwt``) is signed
  by the instance key, fresh for every request: ``aud`` = the authorization server's issuer
  identifier, ``jti``, ``iat``, optionally ``challenge``; :func:`create_client_attestation_pop`;
* both travel in the ``OAuth-Client-Attestation`` / ``OAuth-Client-Attestation-PoP`` request
  headers of the PAR and token requests; :func:`verify_client_attestation` checks the pair
  (draft-ietf-oauth-attestation-based-client-auth-07 §9, with the -10 relaxations: ``iss`` may
  be absent in both). The PoP ``jti``
  replay check needs state and is the caller's (the issuer's token and PAR stages).

Key attestation = OID4VCI 1.0 Appendix D (``typ`` ``key-attestation+jwt``): a wallet provider
or key store vouches that ``attested_keys`` live in one key storage component with the stated
``key_storage`` / ``user_authentication`` attack resistance (OID4VCI 1.0 Appendix D.2 values
such as ``iso_18045_high``). It travels in the ``key_attestation`` JOSE header of ``jwt``
proofs (OID4VCI 1.0 Appendix F.1) or as the ``attestation`` proof type (OID4VCI 1.0
Appendix F.3);
:func:`create_key_attestation`, :func:`verify_key_attestation`,
:func:`check_key_attestation_levels` (the metadata's ``key_attestations_required``,
OID4VCI 1.0 §12.2.4).

Signers are identified by ``x5c`` only (HAIP 1.0 §4.4.1, §4.5.1): the chain must validate to a
caller-given trust anchor (:func:`oid4vci.x509.verify_x5c_chain`, client profile); a key
attestation's signer certificate must not be self-signed (HAIP 1.0 §4.5.1).

The wallet's hook is :class:`AttestationProvider` (in real deployments backed by the wallet
provider's service); :class:`LocalAttestationProvider` mints both kinds from a private key and
a certificate chain (tests, demos, a wallet provider's own backend).

Every refusal raises :class:`AttestationError` (a :class:`~oid4vci.errors.JoseError`) with an
:class:`AttestationReason` code; messages never quote the JWTs.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Final, Protocol, runtime_checkable

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ._json import finite_number
from .errors import ArgumentTypeError, JoseError, UsageError
from .jose import (
    ASYMMETRIC_ALGORITHMS,
    DecodedJws,
    LocalSigner,
    Signer,
    create_jws,
    decode_jws,
    jwk_thumbprint,
    public_jwk,
    verify_jws,
)
from .status import StatusReference
from .x509 import (
    CertificateError,
    TrustAnchor,
    load_trust_anchors,
    verify_x5c_chain,
    x5c_entry_is_self_signed,
)

__all__ = [
    "ATTEST_JWT_CLIENT_AUTH",
    "ATTEST_JWT_CLIENT_AUTH_DPOP",
    "CLIENT_ATTESTATION_CHALLENGE_HEADER",
    "CLIENT_ATTESTATION_HEADER",
    "CLIENT_ATTESTATION_POP_HEADER",
    "CLIENT_ATTESTATION_POP_TYP",
    "CLIENT_ATTESTATION_TYP",
    "DEFAULT_ATTESTATION_ALGORITHMS",
    "KEY_ATTESTATION_TYP",
    "KEY_ATTESTATION_TYP_DRAFT_15",
    "MAX_ATTESTED_KEYS",
    "USE_ATTESTATION_CHALLENGE",
    "USE_FRESH_ATTESTATION",
    "AttestationError",
    "AttestationProvider",
    "AttestationReason",
    "ClientAttestation",
    "LocalAttestationProvider",
    "VerifiedClientAttestation",
    "VerifiedKeyAttestation",
    "check_key_attestation_levels",
    "create_client_attestation",
    "create_client_attestation_pop",
    "create_key_attestation",
    "encode_x5c",
    "status_claim",
    "verify_client_attestation",
    "verify_client_attestation_dpop",
    "verify_key_attestation",
]

#: ``typ`` of the Client Attestation JWT (draft-ietf-oauth-attestation-based-client-auth-07 §5.1).
CLIENT_ATTESTATION_TYP: Final = "oauth-client-attestation+jwt"
#: ``typ`` of the Client Attestation PoP JWT (draft-ietf-oauth-attestation-based-client-auth-07 §5.2).
CLIENT_ATTESTATION_POP_TYP: Final = "oauth-client-attestation-pop+jwt"
#: ``typ`` of a key attestation (OID4VCI 1.0 Appendix D.1).
KEY_ATTESTATION_TYP: Final = "key-attestation+jwt"
#: The key attestation ``typ`` of OID4VCI Draft 15 Appendix D.1, renamed in Draft 16; accepted
#: only from Draft 15 peers (``verify_key_attestation(typs=...)``).
KEY_ATTESTATION_TYP_DRAFT_15: Final = "keyattestation+jwt"
#: Request header carrying the Client Attestation (draft-ietf-oauth-attestation-based-client-auth-07 §6.1).
CLIENT_ATTESTATION_HEADER: Final = "OAuth-Client-Attestation"
#: Request header carrying the PoP (draft-ietf-oauth-attestation-based-client-auth-07 §6.1).
CLIENT_ATTESTATION_POP_HEADER: Final = "OAuth-Client-Attestation-PoP"
#: Response header with a fresh challenge (draft-ietf-oauth-attestation-based-client-auth-07 §8).
CLIENT_ATTESTATION_CHALLENGE_HEADER: Final = "OAuth-Client-Attestation-Challenge"
#: Error asking for a PoP with the server's challenge (draft-ietf-oauth-attestation-based-client-auth-07 §8).
USE_ATTESTATION_CHALLENGE: Final = "use_attestation_challenge"
#: Error asking for a newer Client Attestation: the one sent is older than the server accepts
#: (introduced by draft-ietf-oauth-attestation-based-client-auth-07).
USE_FRESH_ATTESTATION: Final = "use_fresh_attestation"
#: ``token_endpoint_auth_method`` value (draft-ietf-oauth-attestation-based-client-auth-07 §13.4).
ATTEST_JWT_CLIENT_AUTH: Final = "attest_jwt_client_auth"
#: ``token_endpoint_auth_method`` of DPoP-combined mode: the DPoP proof, signed by the instance
#: key, is the attestation PoP (draft-ietf-oauth-attestation-based-client-auth-10 §5.2; -09+).
ATTEST_JWT_CLIENT_AUTH_DPOP: Final = "attest_jwt_client_auth_dpop"
#: Signature algorithms accepted unless configured otherwise (HAIP 1.0 §7 requires ES256).
DEFAULT_ATTESTATION_ALGORITHMS: tuple[str, ...] = ("ES256", "ES384", "EdDSA")
#: The most keys one key attestation may list.
MAX_ATTESTED_KEYS: Final = 100
_MAX_JTI_LENGTH = 256
_MAX_MINTED = 64  # authorization servers a LocalAttestationProvider keeps attestations for
_LEVEL_CLAIMS = ("key_storage", "user_authentication")


class AttestationReason:
    """Short codes carried by :attr:`AttestationError.reason`."""

    MALFORMED: Final = "malformed"
    WRONG_TYP: Final = "wrong typ"
    ALGORITHM: Final = "algorithm not allowed"
    NO_X5C: Final = "no x5c"
    UNTRUSTED: Final = "untrusted"
    SELF_SIGNED: Final = "self-signed signer"
    SIGNATURE: Final = "bad signature"
    MISSING_CLAIM: Final = "missing claim"
    EXPIRED: Final = "expired"
    NOT_YET_VALID: Final = "not yet valid"
    STALE: Final = "stale"
    PRIVATE_KEY: Final = "private key"
    CLIENT_MISMATCH: Final = "client mismatch"
    AUDIENCE: Final = "wrong audience"
    CHALLENGE: Final = "challenge mismatch"
    NONCE: Final = "nonce mismatch"
    LEVEL: Final = "level not met"
    TOO_MANY_KEYS: Final = "too many keys"
    #: The attestation's Token Status List entry is not VALID (revoked, suspended, other).
    STATUS: Final = "status not valid"
    #: The attestation's ``status`` could not be checked (list unreachable, untrusted, ...).
    STATUS_UNVERIFIABLE: Final = "status unverifiable"
    #: The policy requires a ``status`` reference and the attestation has none.
    NO_STATUS: Final = "no status"


class AttestationError(JoseError):
    """A wallet attestation, its PoP or a key attestation was refused.

    ``reason`` is an :class:`AttestationReason` code; the message never includes the JWT.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


def _fail(reason: str, message: str) -> AttestationError:
    return AttestationError(reason, message)


# --- helpers ---------------------------------------------------------------------------------


def encode_x5c(chain: Iterable[TrustAnchor]) -> tuple[str, ...]:
    """An ``x5c`` value (standard base64 DER, leaf first, RFC 7515 §4.1.6) from certificates
    given as PEM (text or bytes, several allowed), DER bytes, base64 DER or certificate objects."""
    certificates = load_trust_anchors(chain)
    if not certificates:
        raise UsageError("a certificate chain needs at least the signer's certificate")
    return tuple(
        base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")
        for cert in certificates
    )


def _x5c_tuple(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ArgumentTypeError("x5c must be a sequence of base64 certificates, not a string")
    items = tuple(value)
    if not items or not all(isinstance(item, str) and item for item in items):
        raise ArgumentTypeError("x5c must be a non-empty sequence of base64 certificates")
    return items


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    number = finite_number(value)
    if number is None:  # NaN would pass every comparison
        raise _fail(AttestationReason.MALFORMED, f"{name} must be a finite number")
    return number


def _decode(token: object, what: str) -> DecodedJws:
    if not isinstance(token, str) or not token:
        raise _fail(AttestationReason.MALFORMED, f"the {what} must be a compact JWS")
    try:
        return decode_jws(token)
    except JoseError:
        raise _fail(AttestationReason.MALFORMED, f"the {what} is not a compact JWS") from None


def _check_header(
    decoded: DecodedJws, typ: str | Collection[str], algorithms: Collection[str], what: str
) -> None:
    typs = (typ,) if isinstance(typ, str) else tuple(typ)
    if decoded.header.get("typ") not in typs:
        raise _fail(AttestationReason.WRONG_TYP, f"the {what} typ must be {' or '.join(typs)}")
    alg = decoded.header.get("alg")
    if alg not in algorithms or alg not in ASYMMETRIC_ALGORITHMS:
        raise _fail(AttestationReason.ALGORITHM, f"the {what} alg is not allowed")


def _signer_key(
    decoded: DecodedJws,
    trust_anchors: Sequence[x509.Certificate],
    clock: Callable[[], float],
    what: str,
    *,
    refuse_self_signed: bool,
) -> dict[str, Any]:
    x5c = decoded.header.get("x5c")
    if x5c is None:
        raise _fail(AttestationReason.NO_X5C, f"the {what} signer must be given as x5c")
    if not trust_anchors:
        raise _fail(AttestationReason.UNTRUSTED, f"no trust anchors are configured for {what}s")
    if isinstance(x5c, str) or not isinstance(x5c, list) or not x5c:
        raise _fail(AttestationReason.MALFORMED, f"the {what} x5c must be a non-empty array")
    if refuse_self_signed and x5c_entry_is_self_signed(x5c[0]):
        # HAIP 1.0 §4.5.1: refused even when that very certificate is a configured anchor.
        raise _fail(AttestationReason.SELF_SIGNED, f"the {what} signer certificate is self-signed")
    try:
        jwk = verify_x5c_chain(x5c, trust_anchors=trust_anchors, clock=clock)
    except CertificateError as exc:
        raise _fail(AttestationReason.UNTRUSTED, f"the {what} x5c chain: {exc.reason}") from None
    return jwk


def _verify_signature(
    decoded: DecodedJws, jwk: Mapping[str, Any], algorithms: Collection[str], what: str
) -> None:
    try:
        verify_jws(decoded, jwk, algorithms=algorithms)
    except JoseError:
        raise _fail(AttestationReason.SIGNATURE, f"the {what} signature does not verify") from None


def _public_key(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(AttestationReason.MALFORMED, f"{what} must be a JWK object")
    try:
        return public_jwk(value)
    except JoseError:
        raise _fail(AttestationReason.PRIVATE_KEY, f"{what} is not a public key") from None


def _check_times(
    claims: Mapping[str, Any], now: float, skew: float, what: str, *, require_exp: bool
) -> float | None:
    exp = _number(claims, "exp")
    if exp is None and require_exp:
        raise _fail(AttestationReason.MISSING_CLAIM, f"the {what} lacks exp")
    if exp is not None and now > exp + skew:
        raise _fail(AttestationReason.EXPIRED, f"the {what} has expired")
    for name in ("iat", "nbf"):
        value = _number(claims, name)
        if value is not None and value > now + skew:
            raise _fail(AttestationReason.NOT_YET_VALID, f"the {what} {name} is in the future")
    return exp


def status_claim(reference: StatusReference) -> dict[str, Any]:
    """The ``status`` claim pointing at a Token Status List entry
    (draft-ietf-oauth-status-list-20 §6.1), as wallet attestations (OID4VCI 1.0 Appendix E)
    and key attestations (OID4VCI 1.0 Appendix D.1) may carry it."""
    if not isinstance(reference, StatusReference):
        raise ArgumentTypeError("status must be a StatusReference")
    return {"status_list": {"idx": reference.idx, "uri": reference.uri}}


# --- wallet attestation (Attestation-Based Client Authentication) ---------------------------


async def create_client_attestation(
    signer: Signer,
    *,
    x5c: Sequence[str],
    client_id: str,
    instance_jwk: Mapping[str, Any],
    lifetime: float = 3600,
    issuer: str | None = None,
    claims: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """A Client Attestation JWT signed by the wallet provider's ``signer``
    (draft-ietf-oauth-attestation-based-client-auth-07 §5.1, OID4VCI 1.0 Appendix E).

    ``x5c`` is the signer's chain without the trust anchor (see :func:`encode_x5c`);
    ``client_id`` becomes ``sub``; ``instance_jwk`` (public) becomes ``cnf.jwk``; ``issuer``
    (the wallet provider's identifier) becomes ``iss`` (required by -07, ignored by -10).
    ``claims`` adds members such as ``wallet_name`` / ``wallet_link`` (OID4VCI 1.0 Appendix E).
    """
    if not isinstance(client_id, str) or not client_id:
        raise UsageError("client_id must be a non-empty string")
    now = int(clock())
    payload: dict[str, Any] = dict(claims or {})
    payload.update(
        {
            "sub": client_id,
            "iat": now,
            "exp": now + int(lifetime),
            "cnf": {"jwk": public_jwk(instance_jwk)},
        }
    )
    if issuer is not None:
        payload["iss"] = issuer
    header = {"typ": CLIENT_ATTESTATION_TYP, "x5c": list(_x5c_tuple(x5c))}
    return await create_jws(signer, payload, header)


async def create_client_attestation_pop(
    instance_key: Signer,
    *,
    audience: str,
    client_id: str | None = None,
    challenge: str | None = None,
    jti: str | None = None,
    lifetime: float = 60,
    clock: Callable[[], float] = time.time,
) -> str:
    """A Client Attestation PoP JWT signed by the client instance key (one per request;
    draft-ietf-oauth-attestation-based-client-auth-07 §5.2).

    ``audience`` is the authorization server's issuer identifier (not an endpoint URL);
    ``client_id`` becomes ``iss`` (required by -07, removed in -08); ``challenge`` is a
    server-provided challenge, when there is one. ``exp`` is ``iat`` + ``lifetime``: -06
    dropped it from the PoP, but servers built on -05 (e.g. oid4vc-ts 0.4.6) still require
    it, and a -07 server ignores it (draft-ietf-oauth-attestation-based-client-auth-07 §5.2
    allows other claims).
    """
    if not lifetime > 0:
        raise UsageError("lifetime must be positive")
    now = int(clock())
    payload: dict[str, Any] = {
        "aud": audience,
        "jti": jti or secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + max(1, int(lifetime)),
    }
    if client_id is not None:
        payload["iss"] = client_id
    if challenge is not None:
        payload["challenge"] = challenge
    return await create_jws(instance_key, payload, {"typ": CLIENT_ATTESTATION_POP_TYP})


@attrs.frozen(kw_only=True)
class VerifiedClientAttestation:
    """A verified attestation + PoP pair: the authenticated ``client_id`` (the attestation's
    ``sub``), the instance key, the PoP's ``jti`` / ``iat`` (for the replay cache), the
    attestation's ``iat`` (``issued_at``, ``None`` when it has none) and its claims
    (``wallet_name``, ``status``, ...)."""

    client_id: str
    instance_jwk: dict[str, Any] = attrs.field(repr=False)
    jti: str = attrs.field(repr=False)
    pop_iat: float
    expires_at: float
    claims: dict[str, Any] = attrs.field(repr=False)
    challenge: str | None = attrs.field(default=None, repr=False)
    issued_at: float | None = None
    #: True when the PoP was the request's DPoP proof (DPoP-combined mode); ``jti`` and
    #: ``pop_iat`` are then the DPoP proof's, which the caller must verify (RFC 9449 §4.3).
    dpop_combined: bool = False

    @property
    def instance_jkt(self) -> str:
        """The RFC 7638 thumbprint of the instance key (``cnf.jwk``): what codes and refresh
        tokens of an attested grant are bound to."""
        return jwk_thumbprint(self.instance_jwk)


def _verify_attestation_jwt(
    attestation: str,
    trust_anchors: Sequence[x509.Certificate],
    client_id: str | None,
    algorithms: Collection[str],
    clock_skew: float,
    clock: Callable[[], float],
) -> tuple[dict[str, Any], str, float, dict[str, Any]]:
    """The attestation half of :func:`verify_client_attestation`: its claims, ``sub``, ``exp``
    and the public instance key."""
    decoded = _decode(attestation, "client attestation")
    _check_header(decoded, CLIENT_ATTESTATION_TYP, algorithms, "client attestation")
    signer_jwk = _signer_key(
        decoded, trust_anchors, clock, "client attestation", refuse_self_signed=False
    )
    _verify_signature(decoded, signer_jwk, algorithms, "client attestation")
    claims = decoded.payload
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise _fail(AttestationReason.MISSING_CLAIM, "the client attestation lacks sub")
    exp = _check_times(claims, clock(), clock_skew, "client attestation", require_exp=True)
    assert exp is not None
    cnf = claims.get("cnf")
    if not isinstance(cnf, Mapping) or "jwk" not in cnf:
        raise _fail(AttestationReason.MISSING_CLAIM, "the client attestation lacks cnf.jwk")
    instance_jwk = _public_key(cnf["jwk"], "cnf.jwk")
    if client_id is not None and client_id != sub:
        raise _fail(AttestationReason.CLIENT_MISMATCH, "client_id is not the attestation's sub")
    return dict(claims), sub, exp, instance_jwk


def verify_client_attestation_dpop(
    attestation: str,
    dpop_proof: str,
    *,
    trust_anchors: Sequence[x509.Certificate],
    client_id: str | None = None,
    algorithms: Collection[str] = DEFAULT_ATTESTATION_ALGORITHMS,
    clock_skew: float = 60,
    clock: Callable[[], float] = time.time,
) -> VerifiedClientAttestation:
    """Verify a Client Attestation whose PoP is the request's DPoP proof (DPoP-combined mode,
    draft-ietf-oauth-attestation-based-client-auth-10 §5.2): the attestation as in
    :func:`verify_client_attestation`, and the DPoP proof's header ``jwk`` must be the
    attestation's ``cnf.jwk`` (by RFC 7638 thumbprint).

    The DPoP proof itself (signature by that ``jwk``, ``htm``, ``htu``, ``iat``, ``jti``
    replay; RFC 9449 §4.3) is **not** verified here: the caller verifies it as the request's
    DPoP proof. Raises :class:`AttestationError`.
    """
    claims, sub, exp, instance_jwk = _verify_attestation_jwt(
        attestation, trust_anchors, client_id, algorithms, clock_skew, clock
    )
    decoded = _decode(dpop_proof, "DPoP proof")
    try:
        same = jwk_thumbprint(decoded.header.get("jwk") or {}) == jwk_thumbprint(instance_jwk)
    except JoseError:
        same = False
    if not same:
        raise _fail(AttestationReason.SIGNATURE, "the DPoP proof key is not the attestation's cnf")
    jti = decoded.payload.get("jti")
    iat = _number(decoded.payload, "iat")
    return VerifiedClientAttestation(
        client_id=sub,
        instance_jwk=instance_jwk,
        jti=jti if isinstance(jti, str) else "",
        pop_iat=iat if iat is not None else 0.0,
        expires_at=exp,
        claims=claims,
        issued_at=_number(claims, "iat"),
        dpop_combined=True,
    )


def verify_client_attestation(
    attestation: str,
    pop: str,
    *,
    trust_anchors: Sequence[x509.Certificate],
    audience: str,
    client_id: str | None = None,
    challenge: str | None = None,
    algorithms: Collection[str] = DEFAULT_ATTESTATION_ALGORITHMS,
    pop_max_age: float = 300,
    clock_skew: float = 60,
    clock: Callable[[], float] = time.time,
) -> VerifiedClientAttestation:
    """Verify a Client Attestation and its PoP (draft-ietf-oauth-attestation-based-client-auth-07
    §9; the attestation first, then the PoP).

    Attestation: ``typ``, ``alg`` in ``algorithms``, ``x5c`` chain to ``trust_anchors``,
    signature, ``sub``, ``exp`` (with ``clock_skew``), ``iat``/``nbf`` not in the future,
    ``cnf.jwk`` a public key, ``sub`` = ``client_id`` when the request named one.
    PoP: ``typ``, ``alg``, signature by ``cnf.jwk``, ``aud`` = ``audience`` (the AS issuer
    identifier), ``jti``, ``iat`` within ``pop_max_age`` (and not ahead by more than
    ``clock_skew``), ``iss`` = ``sub`` when present, ``challenge`` when one is expected.
    The ``jti`` replay check is the caller's. Raises :class:`AttestationError`.
    """
    now = clock()
    claims, sub, exp, instance_jwk = _verify_attestation_jwt(
        attestation, trust_anchors, client_id, algorithms, clock_skew, clock
    )
    decoded_pop = _decode(pop, "client attestation PoP")
    _check_header(decoded_pop, CLIENT_ATTESTATION_POP_TYP, algorithms, "client attestation PoP")
    _verify_signature(decoded_pop, instance_jwk, algorithms, "client attestation PoP")
    pop_claims = decoded_pop.payload
    aud = pop_claims.get("aud")
    if not (aud == audience or (isinstance(aud, list) and aud == [audience])):
        raise _fail(AttestationReason.AUDIENCE, "the PoP aud is not this authorization server")
    jti = pop_claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > _MAX_JTI_LENGTH:
        raise _fail(AttestationReason.MISSING_CLAIM, "the PoP lacks a jti")
    iat = _number(pop_claims, "iat")
    if iat is None:
        raise _fail(AttestationReason.MISSING_CLAIM, "the PoP lacks iat")
    if iat > now + clock_skew:
        raise _fail(AttestationReason.NOT_YET_VALID, "the PoP iat is in the future")
    if iat < now - pop_max_age:
        raise _fail(AttestationReason.STALE, "the PoP is too old")
    _check_times(pop_claims, now, clock_skew, "client attestation PoP", require_exp=False)
    pop_iss = pop_claims.get("iss")
    if pop_iss is not None and pop_iss != sub:
        raise _fail(AttestationReason.CLIENT_MISMATCH, "the PoP iss is not the attestation's sub")
    if challenge is not None and pop_claims.get("challenge") != challenge:
        raise _fail(AttestationReason.CHALLENGE, "the PoP lacks the expected challenge")
    sent_challenge = pop_claims.get("challenge")
    return VerifiedClientAttestation(
        challenge=sent_challenge if isinstance(sent_challenge, str) else None,
        client_id=sub,
        instance_jwk=instance_jwk,
        jti=jti,
        pop_iat=iat,
        expires_at=exp,
        claims=dict(claims),
        issued_at=_number(claims, "iat"),
    )


# --- key attestation (OID4VCI 1.0 Appendix D) -------------------------------------------------


def _levels(value: Iterable[str], name: str) -> tuple[str, ...]:
    if isinstance(value, str):
        raise ArgumentTypeError(f"{name} must be a sequence of strings, not a string")
    return tuple(value)


async def create_key_attestation(
    signer: Signer,
    *,
    x5c: Sequence[str],
    attested_keys: Sequence[Mapping[str, Any]],
    nonce: str | None = None,
    key_storage: Sequence[str] = (),
    user_authentication: Sequence[str] = (),
    certification: str | None = None,
    lifetime: float = 3600,
    issuer: str | None = None,
    status: StatusReference | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """A key attestation JWT (OID4VCI 1.0 Appendix D.1) signed by the attester's ``signer``.

    ``attested_keys`` are public JWKs of one key storage component; ``nonce`` is the issuer's
    ``c_nonce`` (required when the issuer has a Nonce Endpoint); ``key_storage`` /
    ``user_authentication`` are OID4VCI 1.0 Appendix D.2 values (e.g. ``iso_18045_high``),
    left out when empty; ``exp`` is always set (OID4VCI 1.0 Appendix F.1 requires it inside a
    ``jwt`` proof); ``status`` becomes the ``status`` claim (see :func:`status_claim`).
    """
    if isinstance(attested_keys, Mapping) or not attested_keys:
        raise UsageError("attested_keys must be a non-empty sequence of public JWKs")
    if len(attested_keys) > MAX_ATTESTED_KEYS:
        raise UsageError(f"a key attestation lists at most {MAX_ATTESTED_KEYS} keys")
    now = int(clock())
    payload: dict[str, Any] = {
        "iat": now,
        "exp": now + int(lifetime),
        "attested_keys": [public_jwk(key) for key in attested_keys],
    }
    for name, levels in (
        ("key_storage", _levels(key_storage, "key_storage")),
        ("user_authentication", _levels(user_authentication, "user_authentication")),
    ):
        if levels:
            payload[name] = list(levels)
    if nonce is not None:
        payload["nonce"] = nonce
    if certification is not None:
        payload["certification"] = certification
    if issuer is not None:
        payload["iss"] = issuer
    if status is not None:
        payload["status"] = status_claim(status)
    header = {"typ": KEY_ATTESTATION_TYP, "x5c": list(_x5c_tuple(x5c))}
    return await create_jws(signer, payload, header)


@attrs.frozen(kw_only=True)
class VerifiedKeyAttestation:
    """A verified key attestation: its public ``attested_keys`` with their RFC 7638
    thumbprints, the claimed levels, the ``nonce`` and ``exp`` it carried, and all claims."""

    attested_keys: tuple[dict[str, Any], ...] = attrs.field(repr=False)
    thumbprints: tuple[str, ...]
    key_storage: tuple[str, ...] = ()
    user_authentication: tuple[str, ...] = ()
    nonce: str | None = attrs.field(default=None, repr=False)
    expires_at: float | None = None
    claims: dict[str, Any] = attrs.field(factory=dict, repr=False)

    def attests(self, jwk: Mapping[str, Any]) -> bool:
        """Whether the public key ``jwk`` is one of :attr:`attested_keys` (by thumbprint)."""
        try:
            return jwk_thumbprint(jwk) in self.thumbprints
        except JoseError:
            return False


def _level_claim(claims: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = claims.get(name)
    if value is None:
        return ()
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise _fail(AttestationReason.MALFORMED, f"{name} must be a non-empty array of strings")
    return tuple(value)


def verify_key_attestation(
    token: str,
    *,
    trust_anchors: Sequence[x509.Certificate],
    algorithms: Collection[str] = DEFAULT_ATTESTATION_ALGORITHMS,
    require_exp: bool = False,
    nonce: str | None = None,
    required: Mapping[str, Any] | None = None,
    clock_skew: float = 60,
    clock: Callable[[], float] = time.time,
    typs: Collection[str] = (KEY_ATTESTATION_TYP,),
) -> VerifiedKeyAttestation:
    """Verify a key attestation (OID4VCI 1.0 Appendix D.1, F.4; HAIP 1.0 §4.5.1).

    ``typ`` one of ``typs`` (``key-attestation+jwt``; add :data:`KEY_ATTESTATION_TYP_DRAFT_15`
    for Draft 15 peers); ``alg`` in ``algorithms``; ``x5c`` chain to
    ``trust_anchors`` with a signer certificate that is not self-signed; signature; ``iat``
    present and not in the future; ``exp`` (required with ``require_exp``, i.e. inside a
    ``jwt`` proof) not passed; ``attested_keys`` a non-empty array of public JWKs (at most
    :data:`MAX_ATTESTED_KEYS`); ``nonce`` equal to the given one (a ``c_nonce``) when given;
    the levels of ``required`` (``key_attestations_required``, see
    :func:`check_key_attestation_levels`). Raises :class:`AttestationError`.
    """
    now = clock()
    decoded = _decode(token, "key attestation")
    _check_header(decoded, typs, algorithms, "key attestation")
    signer_jwk = _signer_key(
        decoded, trust_anchors, clock, "key attestation", refuse_self_signed=True
    )
    _verify_signature(decoded, signer_jwk, algorithms, "key attestation")
    claims = decoded.payload
    if _number(claims, "iat") is None:
        raise _fail(AttestationReason.MISSING_CLAIM, "the key attestation lacks iat")
    exp = _check_times(claims, now, clock_skew, "key attestation", require_exp=require_exp)
    raw_keys = claims.get("attested_keys")
    if not isinstance(raw_keys, list) or not raw_keys:
        raise _fail(AttestationReason.MISSING_CLAIM, "the key attestation lacks attested_keys")
    if len(raw_keys) > MAX_ATTESTED_KEYS:
        raise _fail(AttestationReason.TOO_MANY_KEYS, "the key attestation lists too many keys")
    keys = tuple(_public_key(key, "an attested key") for key in raw_keys)
    try:
        thumbprints = tuple(jwk_thumbprint(key) for key in keys)
    except JoseError:
        raise _fail(AttestationReason.MALFORMED, "an attested key is not a usable JWK") from None
    claimed_nonce = claims.get("nonce")
    if claimed_nonce is not None and not isinstance(claimed_nonce, str):
        raise _fail(AttestationReason.MALFORMED, "the key attestation nonce must be a string")
    if nonce is not None and claimed_nonce != nonce:
        raise _fail(AttestationReason.NONCE, "the key attestation does not carry the c_nonce")
    verified = VerifiedKeyAttestation(
        attested_keys=keys,
        thumbprints=thumbprints,
        key_storage=_level_claim(claims, "key_storage"),
        user_authentication=_level_claim(claims, "user_authentication"),
        nonce=claimed_nonce,
        expires_at=exp,
        claims=dict(claims),
    )
    if required is not None:
        check_key_attestation_levels(verified, required)
    return verified


def check_key_attestation_levels(
    attestation: VerifiedKeyAttestation, required: Mapping[str, Any]
) -> None:
    """Check ``key_attestations_required`` (OID4VCI 1.0 §12.2.4): for ``key_storage`` and
    ``user_authentication``, when listed, the attestation's claim must contain at least one of
    the listed values (case-sensitive); a missing claim satisfies no constraint. ``{}`` asks
    for nothing beyond an attestation. Raises :class:`AttestationError` (``level not met``)."""
    for name in _LEVEL_CLAIMS:
        accepted = required.get(name)
        if accepted is None:
            continue
        have = getattr(attestation, name)
        if not isinstance(accepted, list | tuple) or not set(have) & set(accepted):
            raise _fail(AttestationReason.LEVEL, f"the key attestation does not meet {name}")


# --- the wallet's hook ---------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class ClientAttestation:
    """What the wallet authenticates with at one authorization server: the ``client_id``
    (the attestation's ``sub``), the Client Attestation JWT and the instance key that signs
    the PoPs (its public key is the attestation's ``cnf.jwk``)."""

    client_id: str
    attestation: str = attrs.field(repr=False)
    instance_key: Signer = attrs.field(repr=False)


@runtime_checkable
class AttestationProvider(Protocol):
    """The wallet's source of attestations (in real life the wallet provider's service, which
    checks the device before attesting; HAIP 1.0 §4.4.1, §4.5.1).

    ``client_id`` is the wallet solution's OAuth client identifier (the same for all its
    instances, OID4VCI 1.0 §15.4.4).
    """

    @property
    def client_id(self) -> str:
        """The OAuth ``client_id`` the attestations name as ``sub``."""
        ...

    async def client_attestation(
        self, *, authorization_server: str, fresh: bool = False
    ) -> ClientAttestation:
        """A Client Attestation for ``authorization_server`` (a different instance key per
        server: HAIP 1.0 §4.4.1 forbids reusing one across issuers).

        ``fresh=True`` when that server answered ``use_fresh_attestation``: a newly issued
        attestation (new ``iat``), not a cached one, for the **same** instance key, since the
        server binds codes and refresh tokens to it.
        """
        ...

    async def key_attestation(
        self, *, keys: Sequence[Mapping[str, Any]], nonce: str | None, credential_issuer: str
    ) -> str:
        """A key attestation JWT listing the public ``keys`` with ``nonce`` (the issuer's
        ``c_nonce``, when it gave one)."""
        ...


@attrs.frozen(kw_only=True)
class _Minted:
    attestation: ClientAttestation
    expires_at: float


def _chain(value: Iterable[TrustAnchor]) -> tuple[str, ...]:
    return encode_x5c(value)


def _level_tuple(value: Iterable[str]) -> tuple[str, ...]:
    """Converter for the claimed levels: typed for callers (``converter=tuple`` left mypy
    unable to type the argument) and a lone string refused instead of split into letters."""
    return _levels(value, "key_storage and user_authentication")


@attrs.frozen(kw_only=True, repr=False)
class LocalAttestationProvider:
    """An :class:`AttestationProvider` that mints attestations itself from ``signer`` (the
    attester's private key) and ``chain`` (its certificate chain, leaf first, without the
    trust anchor; PEM, DER or certificate objects).

    For tests, demos and a wallet provider's own backend. One instance key per
    authorization server (for as long as it is cached); its attestation is minted again when
    it nears ``lifetime`` or a fresh one is asked for; key attestations
    claim ``key_storage`` / ``user_authentication`` as given (empty: not claimed).
    ``client_status`` / ``key_status`` put a Token Status List reference into the ``status``
    claim of every wallet / key attestation minted (OID4VCI 1.0 Appendix E, D.1), so that the
    provider can revoke them.
    """

    signer: Signer
    chain: tuple[str, ...] = attrs.field(converter=_chain)
    client_id: str
    provider_id: str | None = None
    wallet_name: str | None = None
    key_storage: tuple[str, ...] = attrs.field(default=(), converter=_level_tuple)
    user_authentication: tuple[str, ...] = attrs.field(default=(), converter=_level_tuple)
    lifetime: float = 3600.0
    client_status: StatusReference | None = None
    key_status: StatusReference | None = None
    clock: Callable[[], float] = time.time
    _minted: dict[str, _Minted] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.client_id, str) or not self.client_id:
            raise UsageError("client_id must be a non-empty string")
        if self.lifetime <= 60:
            raise UsageError("lifetime must be longer than 60 seconds")

    @classmethod
    def from_files(
        cls, key_jwk: Mapping[str, Any], chain_pem: bytes | str, *, client_id: str
    ) -> LocalAttestationProvider:
        """A provider from a private JWK and a PEM chain (what ``--attester-key`` /
        ``--attester-chain`` read)."""
        return cls(signer=LocalSigner.from_jwk(key_jwk), chain=[chain_pem], client_id=client_id)

    async def client_attestation(
        self, *, authorization_server: str, fresh: bool = False
    ) -> ClientAttestation:
        """A Client Attestation for ``authorization_server``, cached per server until it nears
        its end or ``fresh`` is asked for; a new one keeps the server's instance key (codes
        and refresh tokens are bound to it)."""
        now = self.clock()
        minted = self._minted.get(authorization_server)
        if minted is not None and minted.expires_at - 60 > now and not fresh:
            return minted.attestation
        instance = (
            minted.attestation.instance_key if minted is not None else LocalSigner.generate("ES256")
        )
        claims: dict[str, Any] = {"wallet_name": self.wallet_name} if self.wallet_name else {}
        if self.client_status is not None:
            claims["status"] = status_claim(self.client_status)
        jwt = await create_client_attestation(
            self.signer,
            x5c=self.chain,
            client_id=self.client_id,
            instance_jwk=instance.public_jwk,
            lifetime=self.lifetime,
            issuer=self.provider_id,
            claims=claims,
            clock=self.clock,
        )
        attestation = ClientAttestation(
            client_id=self.client_id, attestation=jwt, instance_key=instance
        )
        if minted is None and len(self._minted) >= _MAX_MINTED:  # bounded: drop the oldest
            del self._minted[next(iter(self._minted))]
        self._minted[authorization_server] = _Minted(
            attestation=attestation, expires_at=now + self.lifetime
        )
        return attestation

    async def key_attestation(
        self, *, keys: Sequence[Mapping[str, Any]], nonce: str | None, credential_issuer: str
    ) -> str:
        """A key attestation of ``keys`` with ``nonce``."""
        del credential_issuer
        return await create_key_attestation(
            self.signer,
            x5c=self.chain,
            attested_keys=keys,
            nonce=nonce,
            key_storage=self.key_storage,
            user_authentication=self.user_authentication,
            lifetime=self.lifetime,
            issuer=self.provider_id,
            status=self.key_status,
            clock=self.clock,
        )

    def __repr__(self) -> str:
        return f"LocalAttestationProvider(client_id={self.client_id!r})"
