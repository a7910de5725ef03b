"""``jwt_vc_json``: W3C Verifiable Credentials (VCDM 1.1) secured as a JWT — issue and verify.

The format of OID4VCI 1.0 Appendix A.1.1 (``jwt_vc_json``), encoded as in VCDM 1.1 §6.3.1:

Issuing (:func:`issue_jwt_vc_json`)
    JOSE header ``typ`` ``JWT``, ``alg`` (the signer's) and ``kid``. Payload: ``iss`` (the
    issuer), ``iat`` and ``nbf`` (issuance time), ``exp``, ``jti`` (a fresh ``urn:uuid:``),
    ``sub`` and ``vc`` = ``{"@context": ["https://www.w3.org/2018/credentials/v1"], "type":
    [...], "credentialSubject": {"id": <sub>, ...claims}}``. With a holder key, ``sub`` and
    ``credentialSubject.id`` are the holder's ``did:jwk`` (:func:`did_jwk`), and ``cnf.jwk``
    (RFC 7800) carries the same public key: a verifier then checks holder binding from the
    credential alone, without resolving any DID method. There is no selective disclosure:
    every claim is visible to whoever sees the credential (the issuer side unwraps
    :func:`oid4vci.sdjwt.sd` marks before calling this; here they are refused).

Verifying (:func:`verify_jwt_vc_json`)
    Signature under an algorithm allow-list (issuer key picked by header ``kid``), ``typ``
    (``JWT`` when present, VCDM 1.1), the ``vc`` shape (base context first, ``type`` with
    ``VerifiableCredential``, one ``credentialSubject`` object), ``iss`` (and ``vc.issuer``
    when present), the expected types, ``exp`` / ``nbf`` / ``iat`` with leeway, and holder
    binding: ``cnf.jwk``, or a ``did:jwk`` in ``sub`` / ``credentialSubject.id`` (resolved
    locally; other DID methods give no holder key). When several carry a key they must agree.
    Every failure raises :class:`JwtVcVerificationError` (a
    :class:`~oid4vci.errors.CredentialVerificationError`) whose ``reason`` is a
    :class:`JwtVcReason` code; codes shared with SD-JWT VC have the same strings as
    :class:`~oid4vci.sdjwt.SdJwtReason`.
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

import attrs

from ._issuer_signed import check_validity, verify_issuer_signature
from .errors import CredentialVerificationError, JoseError, ValidationError
from .jose import (
    Signer,
    b64url_decode,
    b64url_encode,
    create_jws,
    decode_jws,
    jwk_thumbprint,
    public_jwk,
)
from .sdjwt import SdJwtReason, SelectivelyDisclosable

__all__ = [
    "DEFAULT_ALGORITHMS",
    "JWT_VC_JSON_FORMAT",
    "VC_BASE_CONTEXT",
    "VERIFIABLE_CREDENTIAL_TYPE",
    "JwtVcReason",
    "JwtVcVerificationError",
    "VerifiedJwtVc",
    "did_jwk",
    "issue_jwt_vc_json",
    "resolve_did_jwk",
    "verify_jwt_vc_json",
]

#: The OID4VCI format identifier.
JWT_VC_JSON_FORMAT: Final = "jwt_vc_json"
#: The VCDM 1.1 base context; it must come first in ``@context``.
VC_BASE_CONTEXT: Final = "https://www.w3.org/2018/credentials/v1"
#: The type every verifiable credential carries.
VERIFIABLE_CREDENTIAL_TYPE: Final = "VerifiableCredential"
#: Default issuer-signature allow-list for verification.
DEFAULT_ALGORITHMS: Final = ("ES256", "ES384", "ES512", "EdDSA")
_DID_JWK_PREFIX: Final = "did:jwk:"
_JSON_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class JwtVcReason:
    """Short codes carried by :attr:`JwtVcVerificationError.reason`."""

    MALFORMED: Final = SdJwtReason.MALFORMED
    ALG: Final = SdJwtReason.ALG
    UNKNOWN_KEY: Final = SdJwtReason.UNKNOWN_KEY
    SIGNATURE: Final = SdJwtReason.SIGNATURE
    TYP: Final = SdJwtReason.TYP
    CLAIM_TYPE: Final = SdJwtReason.CLAIM_TYPE
    ISSUER_MISMATCH: Final = SdJwtReason.ISSUER_MISMATCH
    TYPE_MISMATCH: Final = "type mismatch"
    CNF_INVALID: Final = SdJwtReason.CNF_INVALID
    CNF_MISMATCH: Final = SdJwtReason.CNF_MISMATCH
    HOLDER_MISMATCH: Final = "holder mismatch"
    EXPIRED: Final = SdJwtReason.EXPIRED
    NOT_YET_VALID: Final = SdJwtReason.NOT_YET_VALID
    ISSUED_IN_FUTURE: Final = SdJwtReason.ISSUED_IN_FUTURE


class JwtVcVerificationError(CredentialVerificationError):
    """A ``jwt_vc_json`` credential failed verification; ``reason`` is a :class:`JwtVcReason`."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {message}")


def _fail(reason: str, message: str) -> JwtVcVerificationError:
    return JwtVcVerificationError(reason, message)


# --------------------------------------------------------------------------------------------
# did:jwk


def did_jwk(jwk: Mapping[str, Any]) -> str:
    """The ``did:jwk`` of a public key: ``did:jwk:`` + base64url(compact JSON of the JWK).

    Raises :class:`~oid4vci.errors.JoseError` for a private or unusable key.
    """
    key = public_jwk(jwk)
    return _DID_JWK_PREFIX + b64url_encode(_JSON_ENCODER.encode(key).encode("utf-8"))


def resolve_did_jwk(did: str) -> dict[str, Any]:
    """The public JWK a ``did:jwk`` (optionally with a ``#0`` style fragment) stands for.

    Raises :class:`~oid4vci.errors.JoseError` when ``did`` is not a ``did:jwk`` with a usable
    public key.
    """
    if not isinstance(did, str) or not did.startswith(_DID_JWK_PREFIX):
        raise JoseError("not a did:jwk")
    encoded = did[len(_DID_JWK_PREFIX) :].split("#", 1)[0]
    try:
        key = json.loads(b64url_decode(encoded))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise JoseError("the did:jwk does not encode a JSON JWK") from exc
    if not isinstance(key, dict):
        raise JoseError("the did:jwk does not encode a JSON JWK")
    return public_jwk(key)


# --------------------------------------------------------------------------------------------
# issuance


def _json_value(value: Any, depth: int = 0) -> Any:
    """A plain JSON copy of ``value``; :class:`ValidationError` for anything else."""
    if depth > 64:
        raise ValidationError("claims are nested too deeply")
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError("claim values must be finite numbers")
        return value
    if isinstance(value, SelectivelyDisclosable):
        raise ValidationError("jwt_vc_json has no selective disclosure: remove the sd() marks")
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for name, member in value.items():
            if not isinstance(name, str):
                raise ValidationError("claim names must be strings")
            out[name] = _json_value(member, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [_json_value(item, depth + 1) for item in value]
    raise ValidationError(f"claim value of type {type(value).__name__} is not JSON")


def _int_claim(name: str, value: int | None) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValidationError(f"{name!r} must be an integer NumericDate")
    return value


def _check_types(types: Sequence[str]) -> list[str]:
    if isinstance(types, str) or not isinstance(types, Sequence):
        raise ValidationError("'types' must be a sequence of strings")
    out = list(types)
    if not out or not all(isinstance(t, str) and t for t in out):
        raise ValidationError("'types' must be non-empty strings")
    if VERIFIABLE_CREDENTIAL_TYPE not in out:
        raise ValidationError("'types' must include 'VerifiableCredential'")
    if len(set(out)) != len(out):
        raise ValidationError("'types' must not repeat a type")
    return out


async def issue_jwt_vc_json(
    signer: Signer,
    *,
    issuer: str,
    types: Sequence[str],
    credential_subject: Mapping[str, Any],
    holder_jwk: Mapping[str, Any] | None,
    iat: int | None = None,
    nbf: int | None = None,
    exp: int | None = None,
    kid: str | None = None,
    clock: Callable[[], float] = time.time,
    status: Mapping[str, Any] | None = None,
    x5c: Sequence[str] | None = None,
) -> str:
    """Issue a ``jwt_vc_json`` credential (see the module docstring) and return the JWT.

    ``types`` must include ``VerifiableCredential``. ``credential_subject`` holds the claims
    (plain JSON values; :func:`~oid4vci.sdjwt.sd` marks are refused: this format discloses
    everything). With ``holder_jwk`` (a public key) ``sub`` and ``credentialSubject.id`` are its
    ``did:jwk`` and ``cnf.jwk`` the key, so ``credential_subject`` may not have an ``id``;
    without one, a string ``id`` there becomes ``sub``. ``iat`` defaults to the clock, ``nbf``
    to ``iat``. ``status`` becomes the top-level ``status`` claim, e.g. ``{"status_list": {"idx":
    N, "uri": URI}}`` (draft-ietf-oauth-status-list-20 §6.1). ``x5c`` (base64 DER
    certificates, leaf first; RFC 7515 §4.1.6) goes into the header, with or instead of
    ``kid``. Raises
    :class:`~oid4vci.errors.ValidationError` for unusable input.
    """
    if not isinstance(issuer, str) or not issuer:
        raise ValidationError("'issuer' must be a non-empty string")
    type_list = _check_types(types)
    if not isinstance(credential_subject, Mapping):
        raise ValidationError("'credential_subject' must be a mapping")
    subject: dict[str, Any] = _json_value(credential_subject)
    sub: str | None = None
    cnf: dict[str, Any] | None = None
    if holder_jwk is not None:
        if "id" in subject:
            raise ValidationError("'credential_subject' has an 'id' although a holder key is set")
        key = public_jwk(holder_jwk)
        sub = did_jwk(key)
        cnf = {"jwk": key}
        subject = {"id": sub, **subject}
    elif "id" in subject:
        if not isinstance(subject["id"], str) or not subject["id"]:
            raise ValidationError("'credentialSubject.id' must be a non-empty string")
        sub = subject["id"]
    issued_at = _int_claim("iat", iat) if iat is not None else int(clock())
    not_before = _int_claim("nbf", nbf) if nbf is not None else issued_at
    payload: dict[str, Any] = {"iss": issuer, "iat": issued_at, "nbf": not_before}
    if _int_claim("exp", exp) is not None:
        payload["exp"] = exp
    payload["jti"] = uuid.uuid4().urn
    if sub is not None:
        payload["sub"] = sub
    if cnf is not None:
        payload["cnf"] = cnf
    if status is not None:
        if not isinstance(status, Mapping):
            raise ValidationError("'status' must be a JSON object")
        payload["status"] = _json_value(status)
    payload["vc"] = {
        "@context": [VC_BASE_CONTEXT],
        "type": type_list,
        "credentialSubject": subject,
    }
    header: dict[str, Any] = {"typ": "JWT"}
    if kid is not None:
        if not isinstance(kid, str) or not kid:
            raise ValidationError("'kid' must be a non-empty string")
        header["kid"] = kid
    if x5c is not None:
        if isinstance(x5c, str) or not x5c or not all(isinstance(c, str) for c in x5c):
            raise ValidationError("'x5c' must be a non-empty list of base64 certificates")
        header["x5c"] = list(x5c)
    return await create_jws(signer, payload, header)


# --------------------------------------------------------------------------------------------
# verification


@attrs.frozen(kw_only=True)
class VerifiedJwtVc:
    """A verified ``jwt_vc_json`` credential.

    ``claims`` is ``vc.credentialSubject`` without its ``id``; ``types`` is ``vc.type``;
    ``holder_jwk`` the key the credential is bound to (``cnf.jwk`` or the ``did:jwk`` of
    ``sub`` / ``credentialSubject.id``), or ``None`` when it names none this module can
    resolve. The payload, claims and raw JWT are kept out of ``repr``.
    """

    header: dict[str, Any]
    payload: dict[str, Any] = attrs.field(repr=False)
    claims: dict[str, Any] = attrs.field(repr=False)
    types: tuple[str, ...]
    holder_jwk: dict[str, Any] | None = attrs.field(repr=False)
    raw: str = attrs.field(repr=False)

    @property
    def issuer(self) -> str:
        """The ``iss`` claim."""
        return str(self.payload["iss"])


def _vc_parts(payload: Mapping[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """``vc.type`` and ``vc.credentialSubject`` after the VCDM 1.1 shape checks."""
    vc = payload.get("vc")
    if not isinstance(vc, dict):
        raise _fail(JwtVcReason.MALFORMED, "the payload has no 'vc' object")
    context = vc.get("@context")
    if not isinstance(context, list) or not context or context[0] != VC_BASE_CONTEXT:
        raise _fail(JwtVcReason.MALFORMED, "'vc.@context' must start with the VCDM 1.1 context")
    raw_types = vc.get("type")
    type_list = [raw_types] if isinstance(raw_types, str) else raw_types
    if not isinstance(type_list, list) or not all(isinstance(t, str) for t in type_list):
        raise _fail(JwtVcReason.MALFORMED, "'vc.type' must be a string or an array of strings")
    if VERIFIABLE_CREDENTIAL_TYPE not in type_list:
        raise _fail(JwtVcReason.MALFORMED, "'vc.type' lacks 'VerifiableCredential'")
    subject = vc.get("credentialSubject")
    if not isinstance(subject, dict):
        raise _fail(JwtVcReason.MALFORMED, "'vc.credentialSubject' must be one JSON object")
    return tuple(type_list), subject


def _check_issuer(payload: Mapping[str, Any], expected: str | None) -> None:
    iss = payload.get("iss")
    if not isinstance(iss, str) or not iss:
        raise _fail(JwtVcReason.MALFORMED, "the credential has no 'iss' string")
    if expected is not None and iss != expected:
        raise _fail(JwtVcReason.ISSUER_MISMATCH, "'iss' is not the expected issuer")
    vc_issuer = payload["vc"].get("issuer")
    if isinstance(vc_issuer, dict):
        vc_issuer = vc_issuer.get("id")
    if vc_issuer is not None and vc_issuer != iss:
        raise _fail(JwtVcReason.ISSUER_MISMATCH, "'vc.issuer' differs from 'iss'")


def _same_key(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    try:
        return jwk_thumbprint(a) == jwk_thumbprint(b)
    except JoseError:
        return False


def _subject_key(payload: Mapping[str, Any], subject: Mapping[str, Any]) -> dict[str, Any] | None:
    """The key of a ``did:jwk`` in ``sub`` / ``credentialSubject.id`` (which must agree)."""
    sub = payload.get("sub")
    subject_id = subject.get("id")
    if sub is not None and not isinstance(sub, str):
        raise _fail(JwtVcReason.CLAIM_TYPE, "'sub' must be a string")
    if subject_id is not None and not isinstance(subject_id, str):
        raise _fail(JwtVcReason.CLAIM_TYPE, "'credentialSubject.id' must be a string")
    if sub is not None and subject_id is not None and sub != subject_id:
        raise _fail(JwtVcReason.HOLDER_MISMATCH, "'sub' and 'credentialSubject.id' differ")
    did = sub if sub is not None else subject_id
    if did is None or not did.startswith(_DID_JWK_PREFIX):
        return None
    try:
        return resolve_did_jwk(did)
    except JoseError:
        raise _fail(JwtVcReason.CNF_INVALID, "the subject's did:jwk is not a usable key") from None


def _holder(
    payload: Mapping[str, Any], subject: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, bool]:
    """The holder key and whether it came from ``cnf.jwk``."""
    cnf_key: dict[str, Any] | None = None
    if "cnf" in payload:
        cnf = payload["cnf"]
        if not isinstance(cnf, dict):
            raise _fail(JwtVcReason.CNF_INVALID, "'cnf' must be a JSON object")
        if "jwk" in cnf:
            try:
                cnf_key = public_jwk(cnf["jwk"])
            except JoseError:
                raise _fail(
                    JwtVcReason.CNF_INVALID, "'cnf.jwk' is not a usable public key"
                ) from None
    did_key = _subject_key(payload, subject)
    if cnf_key is not None and did_key is not None and not _same_key(cnf_key, did_key):
        raise _fail(JwtVcReason.HOLDER_MISMATCH, "'cnf.jwk' and the subject's did:jwk differ")
    if cnf_key is not None:
        return cnf_key, True
    return did_key, False


def verify_jwt_vc_json(
    token: str,
    *,
    issuer_keys: Sequence[Mapping[str, Any]],
    algorithms: Collection[str] = DEFAULT_ALGORITHMS,
    expected_issuer: str | None = None,
    expected_types: Collection[str] | None = None,
    expected_holder_jwk: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
    leeway: float = 60,
) -> VerifiedJwtVc:
    """Verify a ``jwt_vc_json`` credential (see the module docstring).

    ``issuer_keys`` are public JWKs (picked by header ``kid`` when present, else each tried).
    ``expected_issuer`` must equal ``iss``; every type of ``expected_types`` must be in
    ``vc.type`` (a credential may carry more); ``expected_holder_jwk`` must be the holder key
    (same RFC 7638 thumbprint; reason ``cnf mismatch`` when bound by ``cnf.jwk``, ``holder
    mismatch`` when by ``did:jwk`` or not bound to a resolvable key). Raises
    :class:`JwtVcVerificationError`.
    """
    if not isinstance(token, str):
        raise _fail(JwtVcReason.MALFORMED, "a jwt_vc_json credential must be a string")
    try:
        jws = decode_jws(token)
    except JoseError as exc:
        raise _fail(JwtVcReason.MALFORMED, f"not a compact JWS: {exc}") from None
    verify_issuer_signature(jws, issuer_keys, algorithms, _fail)
    header, payload = jws.header, jws.payload
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
        raise _fail(JwtVcReason.TYP, "the JOSE header 'typ' must be 'JWT'")
    types, subject = _vc_parts(payload)
    _check_issuer(payload, expected_issuer)
    if expected_types is not None:
        wanted = (expected_types,) if isinstance(expected_types, str) else tuple(expected_types)
        if not set(wanted) <= set(types):
            raise _fail(JwtVcReason.TYPE_MISMATCH, "'vc.type' lacks an expected type")
    check_validity(payload, clock(), leeway, _fail)
    holder, by_cnf = _holder(payload, subject)
    if expected_holder_jwk is not None and (
        holder is None or not _same_key(holder, expected_holder_jwk)
    ):
        if by_cnf:
            raise _fail(JwtVcReason.CNF_MISMATCH, "'cnf.jwk' is not the expected holder key")
        raise _fail(
            JwtVcReason.HOLDER_MISMATCH, "the credential is not bound to the expected holder"
        )
    claims = {k: v for k, v in subject.items() if k != "id"}
    return VerifiedJwtVc(
        header=header,
        payload=payload,
        claims=claims,
        types=types,
        holder_jwk=holder,
        raw=token,
    )
