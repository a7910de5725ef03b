"""Verifying credentials the wallet receives, before they are handed to the caller.

An SD-JWT VC (``dc+sd-jwt``, or ``vc+sd-jwt`` from Draft 13/14 issuers) is accepted only when:

* its ``iss`` is the Credential Issuer the wallet talked to (string-identical);
* the issuer key comes from one mechanism allowed by policy (SD-JWT VC
  (draft-ietf-oauth-sd-jwt-vc-11) §3.5):

  - an ``x5c`` header, when ``policy.trusted_x5c_roots`` is not empty: the chain must validate
    up to one of those roots (:func:`oid4vci.x509.verify_x5c_chain`, RFC 5280 path validation
    at the wallet's clock), ``iss`` must be an https URL, and the leaf certificate must carry
    a ``subjectAltName`` **dNSName** matching the host of ``iss`` (checked by the server
    verifier of :mod:`cryptography.x509.verification`; a leaf with an ``extendedKeyUsage``
    must also allow ``serverAuth``). A URI SAN equal to ``iss`` alone is not accepted. The
    signature must then verify with the leaf's key; JWT VC Issuer Metadata is not consulted,
    and any failure is final (no fallback to metadata);
  - otherwise the issuer's JWT VC Issuer Metadata (``/.well-known/jwt-vc-issuer`` inserted
    between host and path of ``iss``, whose ``issuer`` must equal ``iss``, with exactly one of
    ``jwks`` / ``jwks_uri``), selected by the header ``kid`` when there is one. An ``x5c``
    header is then ignored.

  An ``x5c`` credential without ``iss`` is refused either way (reason ``x5c untrusted``):
  the wallet always binds a credential to the Credential Issuer it talked to;
* the signature verifies under an algorithm of ``policy.credential_algorithms``;
* ``typ`` is ``dc+sd-jwt`` or ``vc+sd-jwt``; every disclosure is referenced exactly once and no
  digest repeats (RFC 9901 §7.1, via :func:`oid4vci.sdjwt.verify_sd_jwt_vc`);
* ``cnf.jwk`` is the holder key of one of the proofs the wallet sent for it (each key bound
  to at most one credential);
* ``vct`` equals the requested configuration's ``vct``;
* ``iat`` / ``nbf`` / ``exp`` hold with ``policy.clock_skew`` of leeway.

A ``jwt_vc_json`` credential (W3C VCDM 1.1 as a JWT) is accepted under the same issuer rules
(``iss`` is the Credential Issuer; issuer key from an ``x5c`` chain under the same policy, else
from JWT VC Issuer Metadata) when :func:`oid4vci.jwtvc.verify_jwt_vc_json` passes: signature
under ``policy.credential_algorithms``, ``typ`` ``JWT`` (when present), the ``vc`` shape,
``vc.type`` containing every type of the configuration's ``credential_definition.type``, the
time claims, and holder binding — ``cnf.jwk``, or the ``did:jwk`` of ``sub`` /
``credentialSubject.id`` — to a key of one of the proofs sent (each key bound at most once).

An ``mso_mdoc`` credential (the base64url ``IssuerSigned`` of ISO/IEC 18013-5, OID4VCI 1.0
Appendix A.2.4) is accepted when :func:`oid4vci.mdoc.verify_mdoc` passes with
``policy.trust_anchors`` as the IACA roots (the ``x5chain`` validated to one, mdlDS extended
key usage, signature under ``policy.credential_algorithms``, every item's digest, the MSO
validity with ``policy.clock_skew``), its ``docType`` is the configuration's ``doctype``, and
its MSO ``deviceKey`` is the holder key of one of the proofs sent (each key bound at most
once). Its ``claims`` are ``{namespace: {element: value}}`` (full-date as
:class:`datetime.date`, tdate as :class:`datetime.datetime`). Failures raise
:class:`~oid4vci.mdoc.MdocVerificationError` with a :class:`~oid4vci.mdoc.MdocReason`; a
wallet without cbor2 (the ``mdoc`` extra) raises
:class:`~oid4vci.errors.MissingDependencyError`.

Each failure raises a :class:`~oid4vci.errors.CredentialVerificationError` with a short
``reason`` code: :class:`~oid4vci.sdjwt.SdJwtVerificationError` with the
:class:`~oid4vci.sdjwt.SdJwtReason` values or the ones in :class:`WalletReason`, and
:class:`~oid4vci.jwtvc.JwtVcVerificationError` with the :class:`~oid4vci.jwtvc.JwtVcReason`
values for failures found by the ``jwt_vc_json`` checks.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import attrs

from oid4vci.errors import CredentialVerificationError, InsecureUrlError, JoseError, MetadataError
from oid4vci.http import Transport
from oid4vci.jose import DecodedJws, LocalSigner, Signer, decode_jws, jwk_thumbprint
from oid4vci.jwtvc import JwtVcReason, JwtVcVerificationError, verify_jwt_vc_json
from oid4vci.mdoc import MdocReason, MdocVerificationError, verify_mdoc
from oid4vci.sdjwt import SdJwtReason, SdJwtVerificationError, parse_sd_jwt, verify_sd_jwt_vc
from oid4vci.urls import insert_well_known
from oid4vci.x509 import CertificateError, verify_x5c_chain

from .discovery import fetch_json_document
from .policy import WalletPolicy

__all__ = [
    "JWT_VC_JSON_FORMAT",
    "MSO_MDOC_FORMAT",
    "SD_JWT_FORMATS",
    "VERIFIABLE_FORMATS",
    "IssuerKeyResolver",
    "IssuerKeySource",
    "VerifiedCredential",
    "WalletReason",
    "jwt_vc_issuer_metadata_url",
    "read_jwks",
    "read_jwt_vc_issuer_metadata",
    "verify_credential",
]

SD_JWT_FORMATS: Final = frozenset({"dc+sd-jwt", "vc+sd-jwt"})
#: The W3C VCDM 1.1 JWT format.
JWT_VC_JSON_FORMAT: Final = "jwt_vc_json"
#: The ISO mdoc format (OID4VCI 1.0 Appendix A.2).
MSO_MDOC_FORMAT: Final = "mso_mdoc"
#: Every format :func:`verify_credential` can verify.
VERIFIABLE_FORMATS: Final = SD_JWT_FORMATS | {JWT_VC_JSON_FORMAT, MSO_MDOC_FORMAT}


class WalletReason:
    """Reason codes added by the wallet (see also :class:`oid4vci.sdjwt.SdJwtReason`)."""

    ISSUER_KEY_UNAVAILABLE: Final = "issuer key unavailable"
    X5C_UNTRUSTED: Final = "x5c untrusted"
    #: Deprecated alias of :attr:`X5C_UNTRUSTED` (the reason's old name).
    X5C_NOT_SUPPORTED: Final = X5C_UNTRUSTED
    UNSUPPORTED_FORMAT: Final = "unsupported format"
    FORMAT_MISMATCH: Final = "format mismatch"


def _fail(reason: str, message: str) -> SdJwtVerificationError:
    return SdJwtVerificationError(reason, message)


class IssuerKeySource(Protocol):
    """Where :func:`verify_credential` gets an issuer's public keys from."""

    async def keys_for(self, iss: str) -> list[dict[str, Any]]:
        """The public JWKs of issuer ``iss`` (raises ``issuer key unavailable``)."""
        ...


def jwt_vc_issuer_metadata_url(iss: str) -> str:
    """Where the JWT VC Issuer Metadata of ``iss`` is: the well-known suffix inserted
    (draft-ietf-oauth-sd-jwt-vc-11 §5.1)."""
    return insert_well_known(iss, "jwt-vc-issuer")


def read_jwt_vc_issuer_metadata(doc: Mapping[str, Any], iss: str) -> list[dict[str, Any]] | str:
    """The issuer's keys (``jwks``) or the ``jwks_uri`` to fetch them from; the document's
    ``issuer`` must be ``iss`` and exactly one of ``jwks`` / ``jwks_uri`` must be present."""
    if doc.get("issuer") != iss:
        raise _fail(SdJwtReason.ISSUER_MISMATCH, "JWT VC issuer metadata 'issuer' is not 'iss'")
    has_jwks, has_uri = "jwks" in doc, "jwks_uri" in doc
    if has_jwks == has_uri:
        raise _fail(
            WalletReason.ISSUER_KEY_UNAVAILABLE,
            "JWT VC issuer metadata needs exactly one of jwks and jwks_uri",
        )
    if has_uri:
        uri = doc["jwks_uri"]
        if not isinstance(uri, str):
            raise _fail(WalletReason.ISSUER_KEY_UNAVAILABLE, "jwks_uri is not a string")
        return uri
    return read_jwks(doc["jwks"])


def read_jwks(jwks: Any) -> list[dict[str, Any]]:
    """The keys of a JWK set (or a bare list of JWKs); ``issuer key unavailable`` otherwise."""
    keys = jwks.get("keys") if isinstance(jwks, dict) else jwks
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys) or not keys:
        raise _fail(WalletReason.ISSUER_KEY_UNAVAILABLE, "the issuer JWK set is malformed")
    return keys


class IssuerKeyResolver:
    """An :class:`IssuerKeySource` that fetches JWT VC Issuer Metadata over a transport (for
    verifying credentials outside a flow), caching the keys per ``iss``."""

    def __init__(self, transport: Transport, *, policy: WalletPolicy) -> None:
        self._transport = transport
        self._policy = policy
        self._cache: dict[str, list[dict[str, Any]]] = {}

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            return await fetch_json_document(self._transport, url, policy=self._policy, what=what)
        except (InsecureUrlError, MetadataError) as exc:
            raise _fail(WalletReason.ISSUER_KEY_UNAVAILABLE, str(exc)) from None

    async def keys_for(self, iss: str) -> list[dict[str, Any]]:
        """The public JWKs of issuer ``iss`` (raises ``issuer key unavailable``)."""
        cached = self._cache.get(iss)
        if cached is not None:
            return cached
        doc = await self._get_json(jwt_vc_issuer_metadata_url(iss), "JWT VC issuer metadata")
        found = read_jwt_vc_issuer_metadata(doc, iss)
        if isinstance(found, str):
            found = read_jwks(await self._get_json(found, "jwks_uri"))
        self._cache[iss] = found
        return found


@attrs.frozen(kw_only=True)
class VerifiedCredential:
    """The outcome of :func:`verify_credential`: decoded claims and the holder key used.

    ``vct`` is set for SD-JWT VCs, ``types`` (``vc.type``) for ``jwt_vc_json``, ``doctype``
    for ``mso_mdoc``; ``claims`` is the SD-JWT VC's processed payload, the ``jwt_vc_json``
    ``credentialSubject`` without ``id``, or the mdoc's ``{namespace: {element: value}}``;
    ``mdoc_status`` the MSO's ``status`` map (draft-ietf-oauth-status-list-14 §6.3.2), unread.
    """

    vct: str | None
    claims: dict[str, Any] = attrs.field(repr=False)
    holder_key: Signer | None = attrs.field(repr=False)
    verified: bool
    types: tuple[str, ...] | None = None
    doctype: str | None = None
    mdoc_status: dict[str, Any] | None = attrs.field(default=None, repr=False)


def _x5c_issuer_key(
    x5c: Any, iss: str, policy: WalletPolicy, clock: Callable[[], float]
) -> dict[str, Any]:
    """The leaf key of a header ``x5c`` chain that validates to a trusted root and names
    the host of ``iss`` in a ``dNSName`` SAN (raises ``x5c untrusted``)."""
    try:
        parts = urlsplit(iss)
    except ValueError:
        raise _fail(WalletReason.X5C_UNTRUSTED, "'iss' is not a URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise _fail(WalletReason.X5C_UNTRUSTED, "an x5c issuer key needs an https 'iss'")
    try:
        return verify_x5c_chain(
            x5c,
            trust_anchors=policy.trusted_x5c_roots,
            clock=clock,
            expected_dns_name=parts.hostname,
        )
    except CertificateError as exc:
        raise _fail(
            WalletReason.X5C_UNTRUSTED, f"the x5c chain is not accepted ({exc.reason})"
        ) from None


def _thumb(jwk: Mapping[str, Any]) -> str | None:
    try:
        return jwk_thumbprint(jwk)
    except JoseError:
        return None


async def _issuer_keys(
    header: Mapping[str, Any],
    payload: Mapping[str, Any],
    *,
    credential_issuer: str,
    resolver: IssuerKeySource,
    policy: WalletPolicy,
    clock: Callable[[], float],
    fail: Callable[[str, str], CredentialVerificationError] = _fail,
) -> tuple[str, list[dict[str, Any]]]:
    """``iss`` (checked to be the Credential Issuer) and the issuer keys allowed for it."""
    iss = payload.get("iss")
    if iss is None:
        if "x5c" in header:
            raise fail(WalletReason.X5C_UNTRUSTED, "an x5c credential must name its issuer")
        raise fail(WalletReason.ISSUER_KEY_UNAVAILABLE, "the credential has no 'iss'")
    if iss != credential_issuer:
        raise fail(SdJwtReason.ISSUER_MISMATCH, "'iss' is not the Credential Issuer")
    if "x5c" in header and policy.trusted_x5c_roots:
        return iss, [_x5c_issuer_key(header["x5c"], iss, policy, clock)]
    return iss, await resolver.keys_for(iss)


# Thumbprints of the wallet's own LocalSigners (immutable keys), so binding N credentials to N
# keys costs N thumbprints, not N²; entries go with their signers.
_SIGNER_THUMBS: Final[weakref.WeakKeyDictionary[LocalSigner, str | None]] = (
    weakref.WeakKeyDictionary()
)


def _signer_thumb(key: Signer) -> str | None:
    if type(key) is not LocalSigner:  # another Signer may change its key: ask every time
        return _thumb(key.public_jwk)
    thumb = _SIGNER_THUMBS.get(key)
    if thumb is None:
        thumb = _SIGNER_THUMBS[key] = _thumb(key.public_jwk)
    return thumb


def _bind_holder(
    holder_jwk: Any, holder_keys: Sequence[Signer], used_keys: set[str]
) -> Signer | None:
    """An unused key of ``holder_keys`` that is ``holder_jwk`` (recorded as used).

    Credentials come back in the order of their proofs, so the search starts at the key after
    the ones already bound: binding N credentials costs N comparisons, not N².
    """
    thumb = _thumb(holder_jwk) if isinstance(holder_jwk, dict) else None
    if thumb is None or thumb in used_keys:
        return None
    start = len(used_keys) if len(used_keys) < len(holder_keys) else 0
    for index in range(len(holder_keys)):
        key = holder_keys[(start + index) % len(holder_keys)]
        if _signer_thumb(key) == thumb:
            used_keys.add(thumb)
            return key
    return None


async def verify_credential(
    credential: Any,
    *,
    format: str,
    credential_issuer: str,
    expected_vct: str | None,
    holder_keys: Sequence[Signer],
    used_keys: set[str],
    resolver: IssuerKeySource,
    policy: WalletPolicy,
    clock: Callable[[], float] = time.time,
    expected_types: Sequence[str] | None = None,
    expected_doctype: str | None = None,
) -> VerifiedCredential:
    """Verify one received credential (see the module rules).

    ``holder_keys`` are the keys whose proofs were sent for it; ``used_keys`` holds the
    thumbprints already bound to earlier credentials of the same response and is updated.
    ``expected_vct`` applies to SD-JWT VCs, ``expected_types`` (the configuration's
    ``credential_definition.type``) to ``jwt_vc_json``, ``expected_doctype`` to ``mso_mdoc``.
    """
    if format not in VERIFIABLE_FORMATS:
        if policy.accept_unverifiable_formats:
            return VerifiedCredential(vct=None, claims={}, holder_key=None, verified=False)
        raise _fail(WalletReason.UNSUPPORTED_FORMAT, "this format cannot be verified")
    if format == MSO_MDOC_FORMAT:
        return _verify_mdoc(
            credential,
            expected_doctype=expected_doctype,
            holder_keys=holder_keys,
            used_keys=used_keys,
            policy=policy,
            clock=clock,
        )
    if format == JWT_VC_JSON_FORMAT:
        return await _verify_jwt_vc_json(
            credential,
            credential_issuer=credential_issuer,
            expected_types=expected_types,
            holder_keys=holder_keys,
            used_keys=used_keys,
            resolver=resolver,
            policy=policy,
            clock=clock,
        )
    if not isinstance(credential, str):
        raise _fail(SdJwtReason.MALFORMED, "an SD-JWT VC must be a string")
    try:
        parsed = parse_sd_jwt(credential)
    except RecursionError:
        raise _fail(SdJwtReason.MALFORMED, "the SD-JWT is nested too deeply") from None
    _, keys = await _issuer_keys(
        parsed.jws.header,
        parsed.jws.payload,
        credential_issuer=credential_issuer,
        resolver=resolver,
        policy=policy,
        clock=clock,
    )
    try:
        verified = verify_sd_jwt_vc(
            credential,
            issuer_keys=keys,
            algorithms=policy.credential_algorithms,
            expected_typ=tuple(sorted(SD_JWT_FORMATS)),
            expected_vct=expected_vct,
            expected_issuer=credential_issuer,
            clock=clock,
            leeway=policy.clock_skew,
            parsed=parsed,  # parsed (disclosures decoded, digests computed) once
        )
    except RecursionError:
        raise _fail(SdJwtReason.MALFORMED, "the SD-JWT is nested too deeply") from None
    holder: Signer | None = None
    if holder_keys:
        holder = _bind_holder(verified.holder_jwk, holder_keys, used_keys)
        if holder is None:
            raise _fail(SdJwtReason.CNF_MISMATCH, "'cnf.jwk' is not a holder key of this request")
    return VerifiedCredential(
        vct=verified.vct, claims=verified.claims, holder_key=holder, verified=True
    )


def _verify_mdoc(
    credential: Any,
    *,
    expected_doctype: str | None,
    holder_keys: Sequence[Signer],
    used_keys: set[str],
    policy: WalletPolicy,
    clock: Callable[[], float],
) -> VerifiedCredential:
    """An ``mso_mdoc`` credential: :func:`oid4vci.mdoc.verify_mdoc`, then holder binding."""
    if not isinstance(credential, str):
        raise MdocVerificationError(
            MdocReason.MALFORMED, "an mso_mdoc credential must be a base64url string"
        )
    if expected_doctype is None:
        raise MdocVerificationError(
            MdocReason.DOCTYPE_MISMATCH, "the configuration names no doctype to check against"
        )
    verified = verify_mdoc(
        credential,
        trust_anchors=policy.trust_anchors,
        expected_doctype=expected_doctype,
        clock=clock,
        leeway=policy.clock_skew,
        algorithms=policy.credential_algorithms,
    )
    holder: Signer | None = None
    if holder_keys:
        holder = _bind_holder(verified.device_key, holder_keys, used_keys)
        if holder is None:
            raise MdocVerificationError(
                MdocReason.HOLDER_KEY_MISMATCH, "the deviceKey is not a holder key of this request"
            )
    return VerifiedCredential(
        vct=None,
        claims=verified.claims,
        holder_key=holder,
        verified=True,
        doctype=verified.doctype,
        mdoc_status=verified.status,
    )


async def _verify_jwt_vc_json(
    credential: Any,
    *,
    credential_issuer: str,
    expected_types: Sequence[str] | None,
    holder_keys: Sequence[Signer],
    used_keys: set[str],
    resolver: IssuerKeySource,
    policy: WalletPolicy,
    clock: Callable[[], float],
) -> VerifiedCredential:
    if not isinstance(credential, str):
        raise JwtVcVerificationError(
            JwtVcReason.MALFORMED, "a jwt_vc_json credential must be a string"
        )
    try:
        jws: DecodedJws = decode_jws(credential)
    except JoseError as exc:
        raise JwtVcVerificationError(JwtVcReason.MALFORMED, f"not a compact JWS: {exc}") from None
    _, keys = await _issuer_keys(
        jws.header,
        jws.payload,
        credential_issuer=credential_issuer,
        resolver=resolver,
        policy=policy,
        clock=clock,
        fail=JwtVcVerificationError,
    )
    verified = verify_jwt_vc_json(
        credential,
        issuer_keys=keys,
        algorithms=policy.credential_algorithms,
        expected_issuer=credential_issuer,
        expected_types=expected_types,
        clock=clock,
        leeway=policy.clock_skew,
    )
    holder: Signer | None = None
    if holder_keys:
        holder = _bind_holder(verified.holder_jwk, holder_keys, used_keys)
        if holder is None:
            if "cnf" in verified.payload:
                raise JwtVcVerificationError(
                    JwtVcReason.CNF_MISMATCH, "'cnf.jwk' is not a holder key of this request"
                )
            raise JwtVcVerificationError(
                JwtVcReason.HOLDER_MISMATCH,
                "the credential is not bound to a holder key of this request",
            )
    return VerifiedCredential(
        vct=None, claims=verified.claims, holder_key=holder, verified=True, types=verified.types
    )
