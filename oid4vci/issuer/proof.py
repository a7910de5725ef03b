"""Key proofs (the ``jwt`` and ``attestation`` proof types of OID4VCI 1.0 Appendix F.1, F.3),
issuer side.

Key attestations (OID4VCI 1.0 Appendix D): with :attr:`ProofOptions.key_attestation` set, a
``jwt`` proof's ``key_attestation`` header is verified (and required when the configuration has
``key_attestations_required``) and the proof key must be one of its ``attested_keys``;
:func:`verify_attestation_proof` checks the ``attestation`` proof type, whose attested keys are
all bound.

:func:`verify_proof_jwt` checks one ``openid4vci-proof+jwt``; :func:`verify_proof_jwts` checks the
proofs of one credential request together: every proof is verified first (no state touched), then
the batch rules (same ``nonce`` in every proof, distinct keys, at most ``batch_size`` proofs), and
only then the ``c_nonce`` is consumed — once per request, not once per proof.

The verification policy (audience, algorithm allow-list, batch size, clock, freshness window,
``x5c`` trust anchors) is one frozen :class:`ProofOptions` value; what varies per request (the
token's ``client_id``, anonymous access, the ``c_nonce`` check) are keywords.

Errors are :class:`~oid4vci.errors.CredentialRequestError` with ``invalid_proof``; a ``c_nonce``
that is unknown, stale or already used raises ``invalid_nonce``. Draft 13/14 have no
``invalid_nonce``: the caller (the credential endpoint) maps it to ``invalid_proof`` with a fresh
``c_nonce`` for requests in those versions.

The proof key is taken from exactly one of the JOSE headers ``jwk`` (a public JWK), ``kid`` (only
``did:jwk:`` DID URLs are resolved, with or without the ``#0`` fragment) or ``x5c`` (the leaf
certificate's public key, read by :mod:`oid4vci.x509`). An ``x5c`` chain is validated when trust
anchors are given: the credential endpoint passes
:attr:`IssuerConfig.x5c_trust_anchors <oid4vci.issuer.config.IssuerConfig.x5c_trust_anchors>`;
with none configured the leaf key is only bound, like a ``jwk`` header (see
:func:`jwk_from_x5c`).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any

import attrs
from cryptography import x509

from oid4vci.attestation import (
    KEY_ATTESTATION_TYP,
    AttestationError,
    VerifiedKeyAttestation,
    verify_key_attestation,
)
from oid4vci.errors import CredentialRequestError, ErrorCode, JoseError
from oid4vci.jose import (
    ASYMMETRIC_ALGORITHMS,
    _public_key_of,
    _verify_signature,
    b64url_decode,
    decode_jws,
    jwk_thumbprint,
    verify_jws,
)
from oid4vci.jose import public_jwk as _public_jwk
from oid4vci.models import PROOF_TYP
from oid4vci.x509 import CertificateError, CertificateReason, leaf_public_jwk, verify_x5c_chain

__all__ = [
    "KeyAttestationOptions",
    "ProofOptions",
    "VerifiedProof",
    "jwk_from_did_jwk",
    "jwk_from_x5c",
    "verify_attestation_proof",
    "verify_proof_jwt",
    "verify_proof_jwts",
]

ConsumeNonce = Callable[[str], Awaitable[bool]]
"""Consumes a ``c_nonce``: True when it was valid (and is now used up)."""

VerifyStatus = Callable[[Mapping[str, Any]], Awaitable[object]]
"""Checks the ``status`` of a verified key attestation's claims; raises
:class:`~oid4vci.attestation.AttestationError` to refuse it."""

_KEY_HEADERS = ("jwk", "kid", "x5c")


def _algorithms(value: Collection[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _anchors(
    value: Sequence[x509.Certificate] | None,
) -> tuple[x509.Certificate, ...] | None:
    return None if value is None else tuple(value)


def _certificates(value: Sequence[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class KeyAttestationOptions:
    """How key attestations (OID4VCI 1.0 Appendix D) are checked in proofs.

    ``trust_anchors`` validate the attestation's ``x5c``; ``required`` is the configuration's
    ``key_attestations_required`` (``None``: a ``jwt`` proof may come without one, and a
    ``key_attestation`` header that is sent is still verified); ``clock_skew`` is the leeway
    for ``exp`` / ``iat``; ``typs`` the accepted ``typ`` values (Draft 15 requests also take
    ``keyattestation+jwt``). The attestation's ``alg`` must be one of the proof algorithms
    (OID4VCI 1.0 Appendix F.1, F.3). ``verify_status`` checks a verified attestation's
    ``status`` (OID4VCI 1.0 Appendix D.1; the credential endpoint passes
    :func:`oid4vci.issuer.attestation_status.verify_attestation_status`): it gets the claims and
    raises :class:`~oid4vci.attestation.AttestationError` to refuse (``invalid_proof``).
    """

    trust_anchors: tuple[x509.Certificate, ...] = attrs.field(converter=_certificates)
    required: Mapping[str, Any] | None = None
    clock_skew: float = 60.0
    typs: tuple[str, ...] = (KEY_ATTESTATION_TYP,)
    verify_status: VerifyStatus | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class ProofOptions:
    """How key proofs are verified (OID4VCI 1.0 Appendix F.1 / F.4; Draft 15 §8.2.1.1, §8.2.2).

    ``audience`` is the Credential Issuer identifier; ``algorithms`` the allow-list (asymmetric
    algorithms only, whatever it says); ``nonce_required`` demands a ``nonce`` claim;
    ``batch_size`` is the most proofs one request may carry; ``max_age`` / ``max_future`` bound
    ``iat``; ``trust_anchors`` validate an ``x5c`` chain (see :func:`jwk_from_x5c`);
    ``key_attestation`` says how key attestations are checked (``None``: not accepted, a
    ``key_attestation`` header is ignored and the proof key bound as usual).
    """

    audience: str
    algorithms: tuple[str, ...] = attrs.field(converter=_algorithms)
    nonce_required: bool = False
    batch_size: int = 1
    clock: Callable[[], float] = time.time
    max_age: float = 300
    max_future: float = 60
    trust_anchors: tuple[x509.Certificate, ...] | None = attrs.field(
        default=None, converter=_anchors
    )
    key_attestation: KeyAttestationOptions | None = None


@attrs.frozen(kw_only=True)
class VerifiedProof:
    """A verified key proof: the holder's public ``jwk``, its RFC 7638 thumbprint, claims, header.

    ``repr`` shows only the thumbprint: the claims carry the ``c_nonce``.
    """

    jwk: dict[str, Any]
    jkt: str
    claims: dict[str, Any] = attrs.field(repr=False)
    header: dict[str, Any] = attrs.field(repr=False)
    key_attestation: VerifiedKeyAttestation | None = attrs.field(default=None, repr=False)

    @property
    def nonce(self) -> str | None:
        """The proof's ``nonce`` claim (a ``c_nonce``), when present."""
        value = self.claims.get("nonce")
        return value if isinstance(value, str) else None


def _invalid(description: str) -> CredentialRequestError:
    return CredentialRequestError(ErrorCode.INVALID_PROOF, description)


def jwk_from_did_jwk(kid: str) -> dict[str, Any]:
    """The public JWK embedded in a ``did:jwk:<b64url JSON>`` DID URL (``#0`` fragment allowed)."""
    if not kid.startswith("did:jwk:"):
        raise JoseError("not a did:jwk DID")
    ident, _, fragment = kid[len("did:jwk:") :].partition("#")
    if fragment not in ("", "0"):
        raise JoseError("did:jwk verification method must be #0")
    try:
        jwk = json.loads(b64url_decode(ident))
    except (UnicodeDecodeError, ValueError) as exc:
        raise JoseError("did:jwk does not embed a JSON JWK") from exc
    if not isinstance(jwk, dict):
        raise JoseError("did:jwk does not embed a JSON JWK")
    return _public_jwk(jwk)


def jwk_from_x5c(
    x5c: object,
    *,
    trust_anchors: Sequence[x509.Certificate] | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The public JWK of the leaf certificate of ``x5c`` (via :mod:`oid4vci.x509`).

    With ``trust_anchors`` the chain is validated up to one of them by
    :func:`oid4vci.x509.verify_x5c_chain` (RFC 5280 path validation, client profile: the leaf
    needs a ``subjectAltName``; no name is matched). Without them (the default, and what an
    issuer with no anchors configured does) the chain is **not** checked: the leaf key is only
    *bound* to the credential, exactly like a bare ``jwk`` header, and is not trusted as
    anything more (:func:`oid4vci.x509.leaf_public_jwk`). Raises
    :class:`~oid4vci.x509.CertificateError` (a :class:`JoseError`).
    """
    if isinstance(x5c, str) or not isinstance(x5c, list):
        raise CertificateError(
            CertificateReason.MALFORMED, "x5c must be a non-empty array of base64 certificates"
        )
    if trust_anchors:
        return verify_x5c_chain(x5c, trust_anchors=trust_anchors, clock=clock)
    return leaf_public_jwk(x5c)


def _proof_key(
    header: Mapping[str, Any],
    trust_anchors: Sequence[x509.Certificate] | None,
    clock: Callable[[], float],
) -> dict[str, Any]:
    present = [name for name in _KEY_HEADERS if name in header]
    if len(present) != 1:
        raise _invalid("proof header must carry exactly one of jwk, kid, x5c")
    return _header_key(header, present[0], trust_anchors, clock)


def _header_key(
    header: Mapping[str, Any],
    name: str,
    trust_anchors: Sequence[x509.Certificate] | None,
    clock: Callable[[], float],
) -> dict[str, Any]:
    try:
        if name == "jwk":
            jwk = header["jwk"]
            if type(jwk) is not dict and not isinstance(jwk, Mapping):
                raise JoseError("jwk header must be an object")
            return _public_jwk(jwk)
        if name == "kid":
            kid = header["kid"]
            if not isinstance(kid, str) or not kid.startswith("did:jwk:"):
                raise _invalid("proof kid cannot be resolved (only did:jwk is supported)")
            return jwk_from_did_jwk(kid)
        return jwk_from_x5c(header["x5c"], trust_anchors=trust_anchors, clock=clock)
    except JoseError as exc:
        raise _invalid(f"proof key: {exc}") from exc


def _check_claims(
    claims: Mapping[str, Any],
    *,
    audience: str,
    client_id: str | None,
    anonymous: bool,
    nonce_required: bool,
    now: float,
    max_age: float,
    max_future: float,
) -> None:
    aud = claims.get("aud")
    if isinstance(aud, str):
        aud_ok = aud == audience
    elif isinstance(aud, list):
        aud_ok = audience in aud
    else:
        aud_ok = False
    if not aud_ok:
        raise _invalid("proof aud is not this credential issuer")
    iat = claims.get("iat")
    if (
        isinstance(iat, bool)
        or not isinstance(iat, int | float)
        or (isinstance(iat, float) and not math.isfinite(iat))
    ):
        raise _invalid("proof lacks a numeric iat")
    if iat < now - max_age:
        raise _invalid("proof iat is too old")
    if iat > now + max_future:
        raise _invalid("proof iat is in the future")
    iss = claims.get("iss")
    if anonymous:
        if iss is not None:
            raise _invalid("proof must not carry iss after an anonymous pre-authorized grant")
    elif iss is not None and iss != client_id:
        raise _invalid("proof iss is not the client_id")
    nonce = claims.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise _invalid("proof nonce must be a string")
    if nonce_required and nonce is None:
        raise _invalid("proof lacks the c_nonce")


async def _verify_one(
    jwt: object,
    options: ProofOptions,
    *,
    client_id: str | None,
    anonymous: bool,
) -> VerifiedProof:
    if not isinstance(jwt, str):
        raise _invalid("jwt proof must be a string")
    try:
        decoded = decode_jws(jwt)
    except JoseError as exc:
        raise _invalid(f"proof is not a JWS: {exc}") from exc
    header = decoded.header
    if header.get("typ") != PROOF_TYP:
        raise _invalid(f"proof typ must be {PROOF_TYP}")
    alg = header.get("alg")
    if alg not in options.algorithms or alg not in ASYMMETRIC_ALGORITHMS:
        raise _invalid("proof alg is not allowed")
    attestation = _key_attestation_of(header, decoded.payload, options)
    if attestation is None:
        # (no attestation: no status to check)
        jwk = _proof_key(header, options.trust_anchors, options.clock)
        try:
            # What verify_jws(decoded, jwk, algorithms=options.algorithms) checks: alg is in
            # that allow-list and asymmetric (above), then the signature with jwk's key object
            # (imported, and cached, by _proof_key).
            if not _verify_signature(
                alg, _public_key_of(jwk), decoded.signing_input, decoded.signature
            ):
                raise JoseError("JWS signature is invalid")
            jkt = jwk_thumbprint(jwk)
        except JoseError as exc:
            raise _invalid(f"proof does not verify: {exc}") from exc
    else:
        await _verify_key_status(attestation, options)
        jwk, jkt = _attested_proof_key(decoded, header, attestation, options)
    _check_claims(
        decoded.payload,
        audience=options.audience,
        client_id=client_id,
        anonymous=anonymous,
        nonce_required=options.nonce_required,
        now=options.clock(),
        max_age=options.max_age,
        max_future=options.max_future,
    )
    return VerifiedProof(  # decoded is this call's own: its dicts need no copies
        jwk=jwk,
        jkt=jkt,
        claims=decoded.payload,
        header=header,
        key_attestation=attestation,
    )


def _key_attestation_of(
    header: Mapping[str, Any], claims: Mapping[str, Any], options: ProofOptions
) -> VerifiedKeyAttestation | None:
    """The verified ``key_attestation`` header of a ``jwt`` proof (OID4VCI 1.0 Appendix F.1):
    ``exp`` required, its ``nonce`` the proof's ``c_nonce``, the required levels met."""
    settings = options.key_attestation
    token = header.get("key_attestation")
    if settings is None:
        return None
    if token is None:
        if settings.required is not None:
            raise _invalid("a key attestation is required (key_attestation header)")
        return None
    nonce = claims.get("nonce")
    try:
        return verify_key_attestation(
            token,
            trust_anchors=settings.trust_anchors,
            algorithms=options.algorithms,
            require_exp=True,
            nonce=nonce if isinstance(nonce, str) else None,
            required=settings.required,
            clock_skew=settings.clock_skew,
            clock=options.clock,
            typs=settings.typs,
        )
    except AttestationError as exc:
        raise _invalid(f"key attestation refused ({exc})") from None


async def _verify_key_status(
    attestation: VerifiedKeyAttestation | None, options: ProofOptions
) -> None:
    """The key attestation's ``status`` (OID4VCI 1.0 Appendix D.1), checked after the
    attestation itself verified (draft-ietf-oauth-status-list-20 §8.3)."""
    settings = options.key_attestation
    if attestation is None or settings is None or settings.verify_status is None:
        return
    try:
        await settings.verify_status(attestation.claims)
    except AttestationError as exc:
        raise _invalid(f"key attestation refused ({exc})") from None


def _attested_proof_key(
    decoded: Any,
    header: Mapping[str, Any],
    attestation: VerifiedKeyAttestation,
    options: ProofOptions,
) -> tuple[dict[str, Any], str]:
    """The proof key, which must be one of the attested keys: the header's key when there is
    one (``jwk`` / ``kid`` / ``x5c``), else the attested key whose signature verifies."""
    present = [name for name in _KEY_HEADERS if name in header]
    kid = header.get("kid")
    if present == ["kid"] and not (isinstance(kid, str) and kid.startswith("did:jwk:")):
        present = []  # an unexplained kid next to key_attestation (1.0 F.1 example: "0")
    if len(present) > 1:
        raise _invalid("proof header must carry at most one of jwk, kid, x5c")
    candidates: Sequence[dict[str, Any]] = attestation.attested_keys
    if present:
        key = _header_key(header, present[0], options.trust_anchors, options.clock)
        if not attestation.attests(key):
            raise _invalid("the proof key is not one of the attested keys")
        candidates = [key]
    for key in candidates:
        try:
            verify_jws(decoded, key, algorithms=options.algorithms)
        except JoseError:
            continue
        return key, jwk_thumbprint(key)
    if present:
        raise _invalid("proof does not verify with its key")
    raise _invalid("the proof is not signed by an attested key")


async def verify_attestation_proof(
    values: Sequence[object],
    options: ProofOptions,
    *,
    consume_nonce: ConsumeNonce | None = None,
) -> tuple[VerifiedProof, ...]:
    """Verify an ``attestation`` proof (OID4VCI 1.0 Appendix F.3) and consume its ``nonce``.

    Exactly one key attestation; checked like a ``key_attestation`` header (``x5c`` chain,
    signer not self-signed, ``alg`` among the proof algorithms, levels of
    ``key_attestations_required``), its ``nonce`` required when ``options.nonce_required``;
    at most ``options.batch_size`` attested keys. One :class:`VerifiedProof` per attested key
    (the keys are not proven by signatures: the attester vouches for them). Raises
    :class:`CredentialRequestError` (``invalid_proof`` or ``invalid_nonce``).
    """
    settings = options.key_attestation
    if settings is None:
        raise _invalid("the attestation proof type is not accepted here")
    if isinstance(values, str) or len(values) != 1:
        raise _invalid("the attestation proof type takes exactly one key attestation")
    token = values[0]
    if not isinstance(token, str):
        raise _invalid("a key attestation must be a string")
    try:
        attestation = verify_key_attestation(
            token,
            trust_anchors=settings.trust_anchors,
            algorithms=options.algorithms,
            required=settings.required if settings.required is not None else {},
            clock_skew=settings.clock_skew,
            clock=options.clock,
            typs=settings.typs,
        )
    except AttestationError as exc:
        raise _invalid(f"key attestation refused ({exc})") from None
    if options.nonce_required and attestation.nonce is None:
        raise _invalid("the key attestation lacks the c_nonce")
    await _verify_key_status(attestation, options)
    if len(attestation.attested_keys) > options.batch_size:
        raise _invalid(f"more attested keys than the batch size ({options.batch_size})")
    if len(set(attestation.thumbprints)) != len(attestation.thumbprints):
        raise _invalid("the same key is attested twice")
    await _consume(attestation.nonce, consume_nonce)
    header = decode_jws(token).header
    return tuple(
        VerifiedProof(
            jwk=key,
            jkt=jkt,
            claims=dict(attestation.claims),
            header=dict(header),
            key_attestation=attestation,
        )
        for key, jkt in zip(attestation.attested_keys, attestation.thumbprints, strict=True)
    )


async def _consume(nonce: str | None, consume_nonce: ConsumeNonce | None) -> None:
    if nonce is None or consume_nonce is None:
        return
    if not await consume_nonce(nonce):
        raise CredentialRequestError(
            ErrorCode.INVALID_NONCE, "the proof's c_nonce is unknown, expired or already used"
        )


async def verify_proof_jwt(
    jwt: str,
    options: ProofOptions,
    *,
    client_id: str | None = None,
    anonymous: bool = False,
    consume_nonce: ConsumeNonce | None = None,
) -> VerifiedProof:
    """Verify one ``jwt`` key proof and consume its ``nonce`` through ``consume_nonce``.

    ``options`` is the verification policy (``batch_size`` is ignored: this is one proof);
    ``client_id`` the token's client (``iss`` is optional, OID4VCI 1.0 Appendix F.1, but must equal
    it when present); ``anonymous`` for tokens from anonymous pre-authorized requests (``iss`` must
    be absent). Raises :class:`CredentialRequestError` (``invalid_proof`` or ``invalid_nonce``).
    """
    proofs = await verify_proof_jwts(
        [jwt],
        attrs.evolve(options, batch_size=1),
        client_id=client_id,
        anonymous=anonymous,
        consume_nonce=consume_nonce,
    )
    return proofs[0]


async def verify_proof_jwts(
    jwts: Sequence[object],
    options: ProofOptions,
    *,
    client_id: str | None = None,
    anonymous: bool = False,
    consume_nonce: ConsumeNonce | None = None,
) -> tuple[VerifiedProof, ...]:
    """Verify the ``jwt`` proofs of one credential request.

    Checks each proof (see :func:`verify_proof_jwt`), then that there are between 1 and
    ``options.batch_size`` of them, that they all carry the same ``nonce`` and that no key
    appears twice; only then is the nonce consumed (once).
    """
    if not jwts:
        raise _invalid("no key proof was given")
    if len(jwts) > options.batch_size:
        raise _invalid(f"more key proofs than the batch size ({options.batch_size})")
    verified = [
        await _verify_one(jwt, options, client_id=client_id, anonymous=anonymous) for jwt in jwts
    ]
    nonces = {proof.claims.get("nonce") for proof in verified}
    if len(nonces) != 1:
        raise _invalid("every key proof of a request must carry the same c_nonce")
    if len({proof.jkt for proof in verified}) != len(verified):
        raise _invalid("the same key appears in more than one proof")
    await _consume(verified[0].nonce, consume_nonce)
    return tuple(verified)
