"""The Credential Endpoint (OID4VCI 1.0 §8): parse → verify → create the response.

Stages, composed by :func:`handle_credential`:

1. the access token (+ DPoP) via :func:`~oid4vci.issuer.access_token.verify_access_token`
   (OID4VCI 1.0 §8.2, RFC 9449 §7), after the method check so a refused request records no
   DPoP ``jti``;
2. :func:`~oid4vci.issuer.encryption.decrypt_request` decrypts an ``application/jwt`` (JWE) body
   and refuses a plain one when requests must be encrypted (OID4VCI 1.0 §10);
   :func:`parse_credential_request` reads a request of any version into one
   :class:`NormalizedCredentialRequest` (JSON only; every selector and proof shape checked):
   the version whose shape it has (refined by the token's version hint where the shape is
   ambiguous; a 1.0 request ignores members it does not recognise, OID4VCI 1.0 §8.2), the
   credential configuration it selects (``credential_identifier`` through the token's
   identifiers, ``credential_configuration_id``, or Draft 13/14 ``format`` + ``vct`` /
   ``format`` ``jwt_vc_json`` + ``credential_definition.type``) and its key proofs;
   then :func:`~oid4vci.issuer.encryption.response_encryption` checks the request's
   ``credential_response_encryption`` (``invalid_encryption_parameters``);
3. :func:`verify_credential_request` verifies every key proof
   (:func:`~oid4vci.issuer.proof.verify_proof_jwts`, OID4VCI 1.0 §8.2 and Appendix F; with key
   attestations, OID4VCI 1.0 Appendix D, when configured or required, and the ``attestation`` proof type
   through :func:`~oid4vci.issuer.proof.verify_attestation_proof`) and only then uses up the
   ``c_nonce`` — once per request;
4. :func:`create_credential_response` asks the configuration's
   :class:`~oid4vci.issuer.config.ClaimsSource` for the subject's claims; it may raise
   :class:`~oid4vci.issuer.config.DeferIssuance` (→ a deferred transaction, 202, see
   :mod:`oid4vci.issuer.deferred`) or ``credential_request_denied``; then one credential per
   proof key (:func:`create_credentials`): an SD-JWT VC (``cnf.jwk`` = the key; ``typ``
   ``dc+sd-jwt``, ``vc+sd-jwt`` for Draft 13/14 requests) or a ``jwt_vc_json`` credential
   (``sub`` = the key's ``did:jwk``, ``cnf.jwk`` = the key); header ``kid`` = the key id
   published at ``/.well-known/jwt-vc-issuer`` either way; a ``notification_id``; the
   response in the request's own version shape (:func:`credential_response_body`, OID4VCI 1.0
   §8.3), encrypted to the wallet's key when it asked (200 and 202;
   :func:`~oid4vci.issuer.encryption.encrypt_response`).

Error codes follow the request's version (OID4VCI 1.0 §8.3.1.2, Draft 13/14 §7.3.1.2, Draft 15
§8.3.1.2): an unknown configuration is ``unknown_credential_configuration`` (1.0) or
``unsupported_credential_type`` (drafts); an unknown identifier ``unknown_credential_identifier``
(1.0) or ``invalid_credential_request``;
a Draft 13/14 ``format`` no configuration has ``unsupported_credential_format``, and one whose
``vct`` / ``credential_definition.type`` matches none ``unsupported_credential_type``;
a stale ``c_nonce`` ``invalid_nonce`` (Draft 15, 1.0) or ``invalid_proof`` with a fresh
``c_nonce`` (Draft 13/14, whose ``invalid_proof`` errors always carry one).
"""

from __future__ import annotations

import datetime
import functools
import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from oid4vci._wire import record_to_json, store_record
from oid4vci.attestation import KEY_ATTESTATION_TYP, KEY_ATTESTATION_TYP_DRAFT_15
from oid4vci.errors import (
    CredentialRequestError,
    ErrorCode,
    ProtocolError,
    StoreError,
    UsageError,
    ValidationError,
    WireFormatError,
)
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer import store_keys
from oid4vci.issuer._request_body import parse_json_body, require_post
from oid4vci.issuer.access_token import TokenContext, verify_access_token
from oid4vci.issuer.attestation_status import verify_attestation_status
from oid4vci.issuer.config import CredentialConfigurationSpec, DeferIssuance, IssuerConfig
from oid4vci.issuer.encryption import decrypt_request, encrypt_response, response_encryption
from oid4vci.issuer.flood_limits import refused
from oid4vci.issuer.metadata import credential_key_id
from oid4vci.issuer.nonce import create_c_nonce, seal_c_nonce, take_c_nonce
from oid4vci.issuer.notification import create_notification_id
from oid4vci.issuer.proof import (
    KeyAttestationOptions,
    ProofOptions,
    VerifiedProof,
    verify_attestation_proof,
    verify_proof_jwts,
)
from oid4vci.issuer.responses import (
    create_error_response,
    credentials_response,
    json_response,
    with_allow,
)
from oid4vci.issuer.status_list import allocate_status_entries
from oid4vci.jwtvc import issue_jwt_vc_json
from oid4vci.models.credential import (
    CredentialRequest,
    CredentialResponse,
    IssuedCredential,
    credential_response_to_json,
    parse_credential_request_json,
)
from oid4vci.sdjwt import SdJwtOptions, issue_batch, strip_sd_marks
from oid4vci.versions import SpecVersion, detect_credential_request_version

__all__ = [
    "ISSUABLE_FORMATS",
    "JWT_VC_JSON_FORMAT",
    "MSO_MDOC_FORMAT",
    "SD_JWT_FORMATS",
    "DeferredRecord",
    "NormalizedCredentialRequest",
    "UnissuableClaimsError",
    "VerifiedCredentialRequest",
    "create_credential_response",
    "create_credentials",
    "create_issued_response",
    "credential_response_body",
    "denied_error_code",
    "handle_credential",
    "parse_credential_request",
    "verify_credential_request",
]

#: The credential formats this issuer creates (SD-JWT VC; ``vc+sd-jwt`` is the Draft 13/14 name).
SD_JWT_FORMATS = frozenset({"dc+sd-jwt", "vc+sd-jwt"})
#: The W3C VCDM 1.1 JWT format (same identifier in every version).
JWT_VC_JSON_FORMAT = "jwt_vc_json"
#: The ISO mdoc format (OID4VCI 1.0 Appendix A.2; same identifier in every version).
MSO_MDOC_FORMAT = "mso_mdoc"
#: Every credential format this issuer creates.
ISSUABLE_FORMATS = SD_JWT_FORMATS | {JWT_VC_JSON_FORMAT, MSO_MDOC_FORMAT}
logger = logging.getLogger("oid4vci.issuer")


class UnissuableClaimsError(UsageError):
    """The claims source returned claims that cannot be put into a credential of the
    configuration (the issuer application's fault, answered as 500 ``server_error``).

    The message names the configuration and the rule, never a claim value.
    """


@attrs.frozen(kw_only=True)
class NormalizedCredentialRequest:
    """A credential request of any version, resolved against the issuer's configurations.

    ``proofs`` holds the raw proof values (JWT strings for the ``jwt`` proof type);
    ``single_proof`` is True when the wire used the singular ``proof`` member.
    """

    version: SpecVersion
    configuration_id: str
    configuration: CredentialConfigurationSpec
    credential_identifier: str | None
    proof_type: str | None
    proofs: tuple[Any, ...]
    single_proof: bool
    wire: CredentialRequest


@attrs.frozen(kw_only=True)
class VerifiedCredentialRequest:
    """A verified credential request: the parsed request, the token and the proven keys."""

    parsed: NormalizedCredentialRequest
    context: TokenContext
    proofs: tuple[VerifiedProof, ...]


@store_record
@attrs.frozen(kw_only=True)
class DeferredRecord:
    """A deferred transaction as stored under ``deferred:<transaction_id>`` (OID4VCI 1.0 §9).

    ``credentials`` is filled in by :func:`~oid4vci.issuer.deferred.complete_deferred`;
    ``denied`` by :func:`~oid4vci.issuer.deferred.deny_deferred`.
    """

    grant_id: str
    subject: str
    configuration_id: str
    holder_jwks: tuple[dict[str, Any], ...]
    version: SpecVersion
    single_proof: bool
    interval: int
    credentials: tuple[str, ...] | None = None
    denied: bool = False


def _error(code: str, description: str, *, status: int | None = None) -> CredentialRequestError:
    return CredentialRequestError(code, description, status=status)


def _proof_error(
    description: str, version: SpecVersion, config: IssuerConfig
) -> CredentialRequestError:
    """``invalid_proof``; for Draft 13/14 with the fresh ``c_nonce`` it MUST carry (Draft 13
    §7.3.2, Draft 14 §7.3.2): a wallet sends no proof to get its first nonce."""
    if not version.c_nonce_in_responses:
        return _error(ErrorCode.INVALID_PROOF, description)
    return CredentialRequestError(
        ErrorCode.INVALID_PROOF,
        description,
        c_nonce=seal_c_nonce(config),
        c_nonce_expires_in=config.c_nonce_ttl,
    )


def denied_error_code(version: SpecVersion) -> str:
    """The code of "the issuer will not issue this": ``credential_request_denied`` (Draft 14
    on); Draft 13 has no such code and gets ``invalid_credential_request``."""
    if version is SpecVersion.DRAFT_13:
        return ErrorCode.INVALID_CREDENTIAL_REQUEST
    return ErrorCode.CREDENTIAL_REQUEST_DENIED


def _require_post(req: HttpRequest, config: IssuerConfig) -> None:
    require_post(
        req,
        config,
        error_cls=CredentialRequestError,
        error_code=ErrorCode.INVALID_CREDENTIAL_REQUEST,
    )


def _refine_version(
    detected: SpecVersion, wire: CredentialRequest, context: TokenContext | None
) -> SpecVersion:
    """Use the token's version hint where the request's shape fits several versions."""
    hint = context.version if context is not None else None
    if wire.format is not None or hint is None or hint is detected:
        return detected
    if detected is SpecVersion.V1 and hint in (SpecVersion.DRAFT_14, SpecVersion.DRAFT_15):
        # credential_identifier / credential_configuration_id with `proofs` (or no proof).
        return hint
    if (
        detected is SpecVersion.DRAFT_13
        and wire.credential_identifier is not None
        and hint in (SpecVersion.DRAFT_14, SpecVersion.DRAFT_15)
    ):
        # credential_identifier with a singular `proof`.
        return hint
    return detected


def _unknown_configuration(version: SpecVersion) -> CredentialRequestError:
    if version is SpecVersion.V1:
        return _error(
            ErrorCode.UNKNOWN_CREDENTIAL_CONFIGURATION, "unknown credential configuration"
        )
    return _error(ErrorCode.UNSUPPORTED_CREDENTIAL_TYPE, "credential type is not supported")


def _requested_types(wire: CredentialRequest) -> list[str]:
    """``credential_definition.type`` of a Draft 13/14 ``jwt_vc_json`` request."""
    definition = wire.credential_definition
    types = definition.get("type") if definition is not None else None
    if not isinstance(types, list) or not types or not all(isinstance(t, str) and t for t in types):
        raise _error(
            ErrorCode.INVALID_CREDENTIAL_REQUEST,
            "credential_definition.type (an array of strings) is required with this format",
        )
    return types


def _by_format(config: IssuerConfig, wire: CredentialRequest, context: TokenContext | None) -> str:
    fmt = wire.format or ""
    specs = config.credential_configurations
    if fmt == JWT_VC_JSON_FORMAT:
        if not any(spec.format == JWT_VC_JSON_FORMAT for spec in specs.values()):
            raise _error(
                ErrorCode.UNSUPPORTED_CREDENTIAL_FORMAT, "credential format is not supported"
            )
        wanted = set(_requested_types(wire))
        matches = [
            cid
            for cid, spec in specs.items()
            if spec.format == JWT_VC_JSON_FORMAT and set(spec.credential_definition_types) == wanted
        ]
    elif fmt == MSO_MDOC_FORMAT:
        # Draft 13/14 Appendix A.2.4 (ISO mDL, Credential Request): ``doctype`` is REQUIRED
        # when ``format`` is present.
        if wire.doctype is None:
            raise _error(
                ErrorCode.INVALID_CREDENTIAL_REQUEST, "doctype is required with this format"
            )
        if not any(spec.format == MSO_MDOC_FORMAT for spec in specs.values()):
            raise _error(
                ErrorCode.UNSUPPORTED_CREDENTIAL_FORMAT, "credential format is not supported"
            )
        matches = [
            cid
            for cid, spec in specs.items()
            if spec.format == MSO_MDOC_FORMAT and spec.doctype == wire.doctype
        ]
    elif fmt in SD_JWT_FORMATS:
        if wire.vct is None:
            raise _error(ErrorCode.INVALID_CREDENTIAL_REQUEST, "vct is required with this format")
        matches = [
            cid
            for cid, spec in specs.items()
            if spec.vct == wire.vct and spec.format in SD_JWT_FORMATS
        ]
    else:
        raise _error(ErrorCode.UNSUPPORTED_CREDENTIAL_FORMAT, "credential format is not supported")
    if not matches:
        raise _error(ErrorCode.UNSUPPORTED_CREDENTIAL_TYPE, "credential type is not supported")
    if context is not None:
        for cid in matches:
            if cid in context.configuration_ids:
                return cid
    return matches[0]


def _select_configuration(
    config: IssuerConfig,
    wire: CredentialRequest,
    version: SpecVersion,
    context: TokenContext | None,
) -> str:
    identifier = wire.credential_identifier
    if identifier is not None:
        if context is not None:
            cid = context.configuration_for_identifier(identifier)
        else:
            cid = identifier if identifier in config.credential_configurations else None
        if cid is None or cid not in config.credential_configurations:
            if version is SpecVersion.V1:
                raise _error(
                    ErrorCode.UNKNOWN_CREDENTIAL_IDENTIFIER, "unknown credential_identifier"
                )
            raise _error(ErrorCode.INVALID_CREDENTIAL_REQUEST, "unknown credential_identifier")
        return cid
    if wire.credential_configuration_id is not None:
        if wire.credential_configuration_id not in config.credential_configurations:
            raise _unknown_configuration(version)
        return wire.credential_configuration_id
    return _by_format(config, wire, context)


def parse_credential_request(
    request: HttpRequest | RequestDict,
    config: IssuerConfig,
    *,
    context: TokenContext | None = None,
) -> NormalizedCredentialRequest:
    """Parse and resolve a credential request (OID4VCI 1.0 §8.2); raises
    :class:`CredentialRequestError`.

    ``context`` (the access token's) resolves ``credential_identifier`` values and limits the
    configurations that may be requested; without it identifiers are taken as configuration
    ids and nothing is checked against a grant. ``credential_response_encryption`` is refused
    (``invalid_encryption_parameters``) without ``config.encryption``, else kept in ``wire`` for
    :func:`~oid4vci.issuer.encryption.response_encryption`; an encrypted
    body is first opened by :func:`~oid4vci.issuer.encryption.decrypt_request`.
    """
    req = HttpRequest.coerce(request)
    _require_post(req, config)
    data = parse_json_body(
        req, error_cls=CredentialRequestError, error_code=ErrorCode.INVALID_CREDENTIAL_REQUEST
    )
    try:
        wire, detected = parse_credential_request_json(data)
    except WireFormatError as exc:
        if exc.path.startswith("proof"):
            # proof and proofs together, a malformed proof: invalid_proof (Draft 14 §7.3.1.2,
            # Draft 15 §8.3.1.2, OID4VCI 1.0 §8.3.1.2)
            raise _proof_error(str(exc), detect_credential_request_version(data), config) from None
        raise _error(ErrorCode.INVALID_CREDENTIAL_REQUEST, str(exc)) from None
    version = _refine_version(detected, wire, context)
    if wire.credential_response_encryption is not None and config.encryption is None:
        raise _error(
            ErrorCode.INVALID_ENCRYPTION_PARAMETERS, "response encryption is not supported"
        )
    cid = _select_configuration(config, wire, version, context)
    spec = config.credential_configurations[cid]
    if context is not None and cid not in context.configuration_ids:
        raise _error(
            denied_error_code(version),
            "the access token does not cover this credential configuration",
        )
    if spec.format not in ISSUABLE_FORMATS:
        raise _error(ErrorCode.UNSUPPORTED_CREDENTIAL_FORMAT, "credential format is not supported")
    if wire.proofs is None:
        raise _proof_error("key proof(s) missing", version, config)
    if wire.proofs.proof_type not in spec.proof_types:
        raise _proof_error("this proof type is not supported here", version, config)
    return NormalizedCredentialRequest(
        version=version,
        configuration_id=cid,
        configuration=spec,
        credential_identifier=wire.credential_identifier,
        proof_type=wire.proofs.proof_type,
        proofs=wire.proofs.values,
        single_proof=wire.single_proof,
        wire=wire,
    )


async def create_credentials(
    spec: CredentialConfigurationSpec,
    config: IssuerConfig,
    *,
    claims: Mapping[str, Any],
    holder_jwks: Sequence[Mapping[str, Any]],
    version: SpecVersion,
    subject: str = "",
) -> list[str]:
    """One credential of ``claims`` per holder key, for a request of ``version``.

    With ``config.status``, every credential gets its own Token Status List entry
    (``status: {"status_list": {"idx", "uri"}}``, draft-ietf-oauth-status-list-20 §6.1),
    allocated and recorded for ``subject`` by
    :func:`~oid4vci.issuer.status_list.allocate_status_entries`. SD-JWT VCs get
    ``config.decoy_digests`` decoy digests in every ``_sd`` array (a fresh random count per
    array).

    SD-JWT VC (``spec.vct``; ``typ`` of the version) with :func:`~oid4vci.sdjwt.sd` marks as
    selective disclosures; or ``jwt_vc_json`` (``spec.credential_definition_types``), whose
    ``credentialSubject`` is ``claims`` with the ``sd()`` marks removed: that format has no
    selective disclosure, every claim is visible in the credential. ``mso_mdoc``
    (``spec.doctype``): ``claims`` maps namespaces to their elements, one mdoc per holder key
    (its own MSO, ``deviceKey`` = the key as a COSE_Key, OID4VCI 1.0 Appendix A.2), signed by
    ``config.document_signer``; ``sd()`` marks are dropped (every element is an
    ``IssuerSignedItem`` the holder discloses one by one at presentation). Claims that cannot
    be issued (e.g. a reserved name such as ``iss``, an ``id`` in a ``jwt_vc_json`` subject,
    an mdoc element value CBOR cannot carry, or an ``issuing_country`` other than the
    document signer's country) are a server-side fault and raise
    :class:`UnissuableClaimsError`.
    """
    now = int(config.clock())
    try:
        if (type(holder_jwks) is not list and isinstance(holder_jwks, Mapping)) or not holder_jwks:
            raise ValidationError("'holder_jwks' must be a non-empty sequence of public JWKs")
        statuses = await _status_claims(config, spec, subject, len(holder_jwks))
        if spec.is_mdoc:
            return await _create_mdocs(config, spec, claims, holder_jwks, now, statuses)
        if spec.format == JWT_VC_JSON_FORMAT:
            return await _create_jwt_vc_json(config, spec, claims, holder_jwks, now, statuses)
        assert spec.vct is not None  # CredentialConfigurationSpec requires it for SD-JWT VC
        options = _sd_jwt_options(config, spec, version, now)
        return await issue_batch(
            config.credential_signer,
            holder_jwks=holder_jwks,
            vct=spec.vct,
            claims=claims,
            issuer=config.credential_issuer,
            options=options,
            statuses=None if config.status is None else statuses,
        )
    except (ValidationError, UsageError) as exc:
        if isinstance(exc, UnissuableClaimsError):
            raise
        raise UnissuableClaimsError(f"claims for {spec.id!r} cannot be issued: {exc}") from None


def _sd_jwt_options(
    config: IssuerConfig, spec: CredentialConfigurationSpec, version: SpecVersion, now: int
) -> SdJwtOptions:
    """The SD-JWT VC options of ``spec`` for a request of ``version`` at ``now`` (kept for the
    current second: every request of that second gets the same value)."""
    # The kid is read every time: a signer may rotate its key.
    kid = None if config.credential_x5c else credential_key_id(config)
    memo = _memo(config)
    key = ("sd-jwt", spec.id, version.sd_jwt_typ)
    known = memo.get(key)
    if known is not None and known[0] is spec and known[1] == now and known[2].kid == kid:
        cached: SdJwtOptions = known[2]
        return cached
    low, high = config.decoy_digests
    options = SdJwtOptions(
        typ=version.sd_jwt_typ,
        iat=now,
        exp=now + spec.lifetime,
        kid=kid,
        x5c=config.credential_x5c,
        clock=config.clock,
        decoys=low,
        max_decoys=high,
    )
    memo[key] = (spec, now, options)
    return options


#: The mDL namespace whose ``issuing_country`` must be the document signer's ``countryName``
#: (ISO/IEC 18013-5:2021 Annex B; verifiers check it).
_MDL_NAMESPACE = "org.iso.18013.5.1"


async def _create_mdocs(
    config: IssuerConfig,
    spec: CredentialConfigurationSpec,
    claims: Mapping[str, Any],
    holder_jwks: Sequence[Mapping[str, Any]],
    now: int,
    statuses: Sequence[Mapping[str, Any] | None],
) -> list[str]:
    """One ``IssuerSigned`` per holder key, base64url (OID4VCI 1.0 Appendix A.2.4)."""
    from oid4vci import mdoc

    document_signer = config.document_signer
    assert document_signer is not None and spec.doctype is not None  # checked by IssuerConfig
    namespaces = strip_sd_marks(claims)
    if not isinstance(namespaces, Mapping) or not all(
        isinstance(v, Mapping) for v in namespaces.values()
    ):
        raise UnissuableClaimsError(f"claims for {spec.id!r} must map namespaces to their elements")
    mdl = namespaces.get(_MDL_NAMESPACE)
    country = mdl.get("issuing_country") if isinstance(mdl, Mapping) else None
    if country is not None and country != document_signer.country:
        raise UnissuableClaimsError(
            f"claims for {spec.id!r}: issuing_country is not the document signer's countryName"
        )
    start = datetime.datetime.fromtimestamp(now, tz=datetime.UTC)
    minted: list[str] = []
    for jwk, status in zip(holder_jwks, statuses, strict=True):
        issuer_signed = await mdoc.issue_mdoc(
            document_signer.signer,
            doctype=spec.doctype,
            namespaces=namespaces,
            device_key=jwk,
            certificate_chain=document_signer.certificate_chain,
            valid_from=start,
            valid_until=start + datetime.timedelta(seconds=spec.lifetime),
            signed=start,
            status=status,
            clock=config.clock,
        )
        minted.append(mdoc.encode_issuer_signed(issuer_signed))
    return minted


async def _status_claims(
    config: IssuerConfig, spec: CredentialConfigurationSpec, subject: str, count: int
) -> list[dict[str, Any] | None]:
    """One ``status`` claim per credential (``None`` each when status lists are off)."""
    if config.status is None:
        return [None] * count
    references = await allocate_status_entries(
        config, subject=subject, configuration_id=spec.id, count=count, lifetime=spec.lifetime
    )
    return [{"status_list": {"idx": ref.idx, "uri": ref.uri}} for ref in references]


async def _create_jwt_vc_json(
    config: IssuerConfig,
    spec: CredentialConfigurationSpec,
    claims: Mapping[str, Any],
    holder_jwks: Sequence[Mapping[str, Any]],
    now: int,
    statuses: Sequence[Mapping[str, Any] | None],
) -> list[str]:
    subject = strip_sd_marks(claims)
    x5c = config.credential_x5c
    kid = None if x5c else credential_key_id(config)
    return [
        await issue_jwt_vc_json(
            config.credential_signer,
            issuer=config.credential_issuer,
            types=spec.credential_definition_types,
            credential_subject=subject,
            holder_jwk=jwk,
            iat=now,
            nbf=now,
            exp=now + spec.lifetime,
            kid=kid,
            x5c=x5c,
            clock=config.clock,
            status=status,
        )
        for jwk, status in zip(holder_jwks, statuses, strict=True)
    ]


def credential_response_body(
    version: SpecVersion,
    *,
    credentials: Sequence[str] | None = None,
    single_proof: bool = True,
    notification_id: str | None = None,
    transaction_id: str | None = None,
    interval: int | None = None,
    c_nonce: str | None = None,
    c_nonce_expires_in: int | None = None,
) -> dict[str, Any]:
    """A credential (or deferred credential) response body in the shape of ``version``.

    Draft 13: ``credential``; Draft 14: ``credential`` for one credential, ``credentials`` of
    strings for several (then without ``notification_id``, which Draft 14 allows only beside
    ``credential``); Draft 15/1.0: ``credentials`` of ``{"credential": …}`` objects.
    ``c_nonce`` only for Draft 13/14, ``interval`` only for 1.0. ``single_proof`` is kept for
    callers and no longer changes the shape.
    """
    if (
        credentials is not None
        and transaction_id is None
        and interval is None
        and version is not SpecVersion.DRAFT_13
        and version is not SpecVersion.DRAFT_14
    ):
        # Draft 15 / 1.0 with credentials (every non-deferred answer): the body
        # credential_response_to_json writes for it (OID4VCI 1.0 §8.3), built directly, without
        # the intermediate CredentialResponse (no c_nonce in these versions).
        body: dict[str, Any] = {"credentials": [{"credential": c} for c in credentials]}
        if notification_id is not None:
            body["notification_id"] = notification_id
        return body
    response = CredentialResponse(
        credentials=(
            None
            if credentials is None
            else tuple(IssuedCredential(credential=c) for c in credentials)
        ),
        transaction_id=transaction_id,
        interval=interval,
        notification_id=notification_id,
        c_nonce=c_nonce,
        c_nonce_expires_in=c_nonce_expires_in,
    )
    # Draft 14 allows ``credential`` or ``credentials``; one credential goes as ``credential``
    # whatever the proof container, because only then may ``notification_id`` accompany it.
    return credential_response_to_json(response, version)


_MEMO_MAX = 64
# Values derived from an issuer configuration alone, by configuration (held, so its id is not
# reused while cached): the key proof policy and the SD-JWT VC options of a credential
# configuration are pure functions of frozen values and cost more to build than to look up.
# Emptied when full.
_memos: dict[int, tuple[IssuerConfig, dict[tuple[Any, ...], Any]]] = {}


def _memo(config: IssuerConfig) -> dict[tuple[Any, ...], Any]:
    held = _memos.get(id(config))
    if held is None or held[0] is not config:
        if len(_memos) >= _MEMO_MAX:
            _memos.clear()
        held = _memos[id(config)] = (config, {})
    return held[1]


def _options_for(parsed: NormalizedCredentialRequest, config: IssuerConfig) -> ProofOptions:
    """The key proof policy of ``parsed`` under ``config`` (OID4VCI 1.0 Appendix F)."""
    spec = parsed.configuration
    draft_15 = parsed.version is SpecVersion.DRAFT_15
    memo = _memo(config)
    key = ("proof", parsed.configuration_id, parsed.single_proof, draft_15)
    known = memo.get(key)
    if known is not None and known[0] is spec:
        cached: ProofOptions = known[1]
        return cached
    settings = config.attestation
    options = ProofOptions(
        audience=config.credential_issuer,
        algorithms=spec.proof_signing_alg_values_supported,
        nonce_required=True,
        batch_size=1 if parsed.single_proof else config.batch_size,
        clock=config.clock,
        trust_anchors=config.x5c_trust_anchors or None,
        key_attestation=(
            KeyAttestationOptions(
                trust_anchors=settings.key_anchors,
                required=spec.key_attestations_required,
                clock_skew=settings.clock_skew,
                # Draft 15 Appendix D.1 named the type keyattestation+jwt (Draft 16 renamed it).
                typs=(
                    (KEY_ATTESTATION_TYP, KEY_ATTESTATION_TYP_DRAFT_15)
                    if draft_15
                    else (KEY_ATTESTATION_TYP,)
                ),
                verify_status=functools.partial(
                    verify_attestation_status,
                    settings=settings,
                    kind="key",
                    trust_anchors=settings.key_anchors,
                    clock=config.clock,
                ),
            )
            if settings is not None and settings.key_anchors
            else None
        ),
    )
    memo[key] = (spec, options)
    return options


async def verify_credential_request(
    parsed: NormalizedCredentialRequest, config: IssuerConfig, context: TokenContext
) -> VerifiedCredentialRequest:
    """Verify the key proofs, then use up their ``c_nonce`` (OID4VCI 1.0 §8.2, Appendix F).

    Raises :class:`CredentialRequestError` (``invalid_proof``, ``invalid_nonce``; Draft 13/14:
    ``invalid_proof`` with a fresh ``c_nonce``).
    """
    take = functools.partial(take_c_nonce, config=config)  # no coroutine frame of its own
    options = _options_for(parsed, config)
    try:
        if parsed.proof_type == "attestation":
            proofs = await verify_attestation_proof(parsed.proofs, options, consume_nonce=take)
        else:
            proofs = await verify_proof_jwts(
                parsed.proofs,
                options,
                client_id=context.client_id,
                anonymous=context.anonymous,
                consume_nonce=take,
            )
    except CredentialRequestError as err:
        if parsed.version.c_nonce_in_responses:
            # Draft 13/14 have no invalid_nonce; invalid_proof carries a fresh c_nonce.
            raise CredentialRequestError(
                ErrorCode.INVALID_PROOF,
                err.error_description,
                c_nonce=await create_c_nonce(config),
                c_nonce_expires_in=config.c_nonce_ttl,
            ) from None
        raise
    return VerifiedCredentialRequest(parsed=parsed, context=context, proofs=proofs)


async def _store_deferred(
    verified: VerifiedCredentialRequest, config: IssuerConfig, interval: int
) -> str:
    transaction_id = secrets.token_urlsafe(24)
    parsed = verified.parsed
    record = DeferredRecord(
        grant_id=verified.context.grant_id,
        subject=verified.context.subject,
        configuration_id=parsed.configuration_id,
        holder_jwks=tuple(p.jwk for p in verified.proofs),
        version=parsed.version,
        single_proof=parsed.single_proof,
        interval=interval,
    )
    await config.store.put(
        store_keys.deferred_key(transaction_id),
        record_to_json(record),
        store_keys.DEFERRED.ttl(config),
    )
    return transaction_id


async def create_credential_response(
    verified: VerifiedCredentialRequest, config: IssuerConfig
) -> HttpResponse:
    """Create the credentials (or a deferred transaction) and the response (OID4VCI 1.0 §8.3).

    200 with the credentials and a ``notification_id``; 202 with a ``transaction_id`` when the
    claims source defers. Raises :class:`CredentialRequestError` when the claims source
    refuses (``credential_request_denied``).
    """
    parsed = verified.parsed
    context = verified.context
    version = parsed.version
    draft_nonce = version.c_nonce_in_responses
    try:
        claims = await config.claims_source(context.subject, parsed.configuration_id)
    except CredentialRequestError as refused:
        if refused.error == ErrorCode.CREDENTIAL_REQUEST_DENIED and version is SpecVersion.DRAFT_13:
            raise _error(denied_error_code(version), refused.error_description or "") from None
        raise
    except DeferIssuance as deferred:
        transaction_id = await _store_deferred(verified, config, deferred.interval)
        body = credential_response_body(
            version,
            transaction_id=transaction_id,
            interval=deferred.interval,
            c_nonce=await create_c_nonce(config) if draft_nonce else None,
            c_nonce_expires_in=config.c_nonce_ttl if draft_nonce else None,
        )
        return json_response(202, body)
    credentials = await create_credentials(
        parsed.configuration,
        config,
        claims=claims,
        holder_jwks=[p.jwk for p in verified.proofs],
        version=version,
        subject=context.subject,
    )
    return await create_issued_response(
        context,
        config,
        version=version,
        configuration_id=parsed.configuration_id,
        credentials=credentials,
        single_proof=parsed.single_proof,
    )


async def create_issued_response(
    context: TokenContext,
    config: IssuerConfig,
    *,
    version: SpecVersion,
    configuration_id: str,
    credentials: Sequence[Any],
    single_proof: bool,
) -> HttpResponse:
    """200 with issued ``credentials`` (OID4VCI 1.0 §8.3 and §9.2, the same body): their
    ``notification_id`` and, for Draft 13/14, a fresh ``c_nonce`` (Draft 13 §7.3). The
    answer of the credential endpoint and of the deferred credential endpoint."""
    notification_id = await create_notification_id(
        context, config, configuration_id=configuration_id, credential_count=len(credentials)
    )
    draft_nonce = version.c_nonce_in_responses
    body = credential_response_body(
        version,
        credentials=credentials,
        single_proof=single_proof,
        notification_id=notification_id,
        c_nonce=await create_c_nonce(config) if draft_nonce else None,
        c_nonce_expires_in=config.c_nonce_ttl if draft_nonce else None,
    )
    return credentials_response(200, body)


async def handle_credential(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> HttpResponse:
    """The Credential Endpoint (see the module docstring).

    Answers errors, never raises them: OID4VCI 1.0 §8.3.1 JSON, or 401 with a
    ``WWW-Authenticate`` challenge for token problems (RFC 6750 §3, RFC 9449 §7.1); a full
    store is 503 with ``Retry-After``.
    """
    try:
        req = HttpRequest.coerce(request)
        _require_post(req, config)  # before the DPoP proof's jti is recorded
        context = await verify_access_token(req, config, htu=config.endpoint("credential"))
        opened = decrypt_request(req, config)
        parsed = parse_credential_request(opened.request, config, context=context)
        encryption = response_encryption(
            parsed.wire.credential_response_encryption,
            config,
            version=parsed.version,
            encrypted_request=opened.encrypted,
        )
        verified = await verify_credential_request(parsed, config, context)
        return encrypt_response(await create_credential_response(verified, config), encryption)
    except ProtocolError as err:
        return with_allow(create_error_response(err), ("POST",))
    except StoreError as exc:
        return refused(exc, config, "credential")
    except UnissuableClaimsError as exc:
        # The claims source's fault, not the wallet's (RFC 6749 §5.2 has no better code):
        # 500 ``server_error``; the log names the configuration and rule, never claim values.
        logger.error("credential endpoint: %s", exc)
        return json_response(500, {"error": ErrorCode.SERVER_ERROR})
