"""The Credential Endpoint (OID4VCI §8): parse → authenticate → verify proofs → issue.

:func:`parse_credential_request` reads a request of any version into one
:class:`NormalizedCredentialRequest`: the version whose shape it has (refined by the token's
version hint where the shape is ambiguous), the credential configuration it selects
(``credential_identifier`` through the token's identifiers, ``credential_configuration_id``, or
Draft 13/14 ``format`` + ``vct`` / ``format`` ``jwt_vc_json`` + ``credential_definition.type``)
and its key proofs.

:func:`handle_credential_request` runs the endpoint:

1. access token (+ DPoP) via :func:`~oid4vci.issuer.access_token.authenticate_resource_request`;
2. :func:`parse_credential_request` (JSON only; every selector and proof shape checked);
3. every key proof verified (:func:`~oid4vci.issuer.proof.verify_proof_jwts`), and only then
   the ``c_nonce`` consumed — once per request;
4. the configuration's :class:`~oid4vci.issuer.config.ClaimsSource` asked for the subject's
   claims; it may raise :class:`~oid4vci.issuer.config.DeferIssuance` (→ a deferred
   transaction, see :mod:`oid4vci.issuer.deferred`) or ``credential_request_denied``;
5. one credential per proof key (see :func:`mint_credentials`): an SD-JWT VC (``cnf.jwk`` = the
   key; ``typ`` ``dc+sd-jwt``, ``vc+sd-jwt`` for Draft 13/14 requests) or a ``jwt_vc_json``
   credential (``sub`` = the key's ``did:jwk``, ``cnf.jwk`` = the key); header ``kid`` = the
   key id published at ``/.well-known/jwt-vc-issuer`` either way;
6. a ``notification_id`` registered, and the response written in the request's own version
   shape (see :func:`credential_response_body`).

Error codes follow the request's version: an unknown configuration is
``unknown_credential_configuration`` (1.0) or ``unsupported_credential_type`` (drafts); an
unknown identifier ``unknown_credential_identifier`` (1.0) or ``invalid_credential_request``;
a Draft 13/14 ``format`` no configuration has ``unsupported_credential_format``, and one whose
``vct`` / ``credential_definition.type`` matches none ``unsupported_credential_type``;
a stale ``c_nonce`` ``invalid_nonce`` (Draft 15, 1.0) or ``invalid_proof`` with a fresh
``c_nonce`` (Draft 13/14, whose ``invalid_proof`` errors always carry one).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from oid4vci.errors import (
    CredentialRequestError,
    ErrorCode,
    ValidationError,
    WireFormatError,
)
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer._request_body import read_json_body, require_post
from oid4vci.issuer.access_token import (
    TokenContext,
    authenticate_resource_request,
    consume_c_nonce,
)
from oid4vci.issuer.config import CredentialConfigurationSpec, DeferIssuance, IssuerConfig
from oid4vci.issuer.metadata import credential_key_id
from oid4vci.issuer.nonce import new_c_nonce
from oid4vci.issuer.notification import register_notification
from oid4vci.issuer.proof import VerifiedProof, verify_proof_jwts
from oid4vci.issuer.responses import json_response
from oid4vci.jwtvc import issue_jwt_vc_json
from oid4vci.models.credential import (
    CredentialRequest,
    CredentialResponse,
    IssuedCredential,
    credential_response_to_json,
    parse_credential_request_json,
)
from oid4vci.sdjwt import issue_batch, strip_sd_marks
from oid4vci.versions import SpecVersion

__all__ = [
    "DEFERRED_PREFIX",
    "DEFERRED_TTL",
    "ISSUABLE_FORMATS",
    "JWT_VC_JSON_FORMAT",
    "SD_JWT_FORMATS",
    "NormalizedCredentialRequest",
    "credential_response_body",
    "handle_credential_request",
    "mint_credentials",
    "parse_credential_request",
]

#: The credential formats this issuer mints (SD-JWT VC; ``vc+sd-jwt`` is the Draft 13/14 name).
SD_JWT_FORMATS = frozenset({"dc+sd-jwt", "vc+sd-jwt"})
#: The W3C VCDM 1.1 JWT format (same identifier in every version).
JWT_VC_JSON_FORMAT = "jwt_vc_json"
#: Every credential format this issuer mints.
ISSUABLE_FORMATS = SD_JWT_FORMATS | {JWT_VC_JSON_FORMAT}
#: Store key prefix of deferred transactions (``deferred:<transaction_id>``).
DEFERRED_PREFIX = "deferred:"
#: How long a deferred transaction is kept (seconds).
DEFERRED_TTL = 24 * 3600

_DRAFT_13_14 = (SpecVersion.DRAFT_13, SpecVersion.DRAFT_14)


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


def _error(code: str, description: str, *, status: int | None = None) -> CredentialRequestError:
    return CredentialRequestError(code, description, status=status)


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
    """Read and resolve a credential request; raises :class:`CredentialRequestError`.

    ``context`` (the access token's) resolves ``credential_identifier`` values and limits the
    configurations that may be requested; without it identifiers are taken as configuration
    ids and nothing is checked against a grant.
    """
    req = HttpRequest.coerce(request)
    _require_post(req, config)
    data = read_json_body(
        req, error_cls=CredentialRequestError, error_code=ErrorCode.INVALID_CREDENTIAL_REQUEST
    )
    try:
        wire, detected = parse_credential_request_json(data)
    except WireFormatError as exc:
        raise _error(ErrorCode.INVALID_CREDENTIAL_REQUEST, str(exc)) from None
    version = _refine_version(detected, wire, context)
    if wire.credential_response_encryption is not None:
        raise _error(
            ErrorCode.INVALID_ENCRYPTION_PARAMETERS, "response encryption is not supported"
        )
    cid = _select_configuration(config, wire, version, context)
    spec = config.credential_configurations[cid]
    if context is not None and cid not in context.configuration_ids:
        code = (
            ErrorCode.INVALID_CREDENTIAL_REQUEST
            if version is SpecVersion.DRAFT_13
            else ErrorCode.CREDENTIAL_REQUEST_DENIED
        )
        raise _error(code, "the access token does not cover this credential configuration")
    if spec.format not in ISSUABLE_FORMATS:
        raise _error(ErrorCode.UNSUPPORTED_CREDENTIAL_FORMAT, "credential format is not supported")
    if wire.proofs is None:
        raise _error(ErrorCode.INVALID_PROOF, "key proof(s) missing")
    if wire.proofs.proof_type != "jwt":
        raise _error(ErrorCode.INVALID_PROOF, "only the jwt proof type is supported")
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


async def mint_credentials(
    config: IssuerConfig,
    spec: CredentialConfigurationSpec,
    claims: Mapping[str, Any],
    holder_jwks: Sequence[Mapping[str, Any]],
    version: SpecVersion,
) -> list[str]:
    """One credential of ``claims`` per holder key, for a request of ``version``.

    SD-JWT VC (``spec.vct``; ``typ`` of the version) with :func:`~oid4vci.sdjwt.sd` marks as
    selective disclosures; or ``jwt_vc_json`` (``spec.credential_definition_types``), whose
    ``credentialSubject`` is ``claims`` with the ``sd()`` marks removed: that format has no
    selective disclosure, every claim is visible in the credential. Claims that cannot be
    issued (e.g. a reserved name such as ``iss``, or an ``id`` in a ``jwt_vc_json`` subject)
    are a server-side fault and raise :class:`RuntimeError`.
    """
    now = int(config.clock())
    try:
        if spec.format == JWT_VC_JSON_FORMAT:
            return await _mint_jwt_vc_json(config, spec, claims, holder_jwks, now)
        assert spec.vct is not None  # CredentialConfigurationSpec requires it for SD-JWT VC
        return await issue_batch(
            config.credential_signer,
            holder_jwks=holder_jwks,
            vct=spec.vct,
            claims=claims,
            issuer=config.credential_issuer,
            typ=version.sd_jwt_typ,
            iat=now,
            exp=now + spec.lifetime,
            kid=credential_key_id(config),
            clock=config.clock,
        )
    except ValidationError as exc:
        raise RuntimeError(f"claims for {spec.id!r} cannot be issued: {exc}") from None


async def _mint_jwt_vc_json(
    config: IssuerConfig,
    spec: CredentialConfigurationSpec,
    claims: Mapping[str, Any],
    holder_jwks: Sequence[Mapping[str, Any]],
    now: int,
) -> list[str]:
    if isinstance(holder_jwks, Mapping) or not holder_jwks:
        raise ValidationError("'holder_jwks' must be a non-empty sequence of public JWKs")
    subject = strip_sd_marks(claims)
    kid = credential_key_id(config)
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
            clock=config.clock,
        )
        for jwk in holder_jwks
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


async def _verify_proofs(
    config: IssuerConfig, normalized: NormalizedCredentialRequest, context: TokenContext
) -> tuple[VerifiedProof, ...]:
    async def consume(value: str) -> bool:
        return await consume_c_nonce(config.store, value)

    batch_size = 1 if normalized.single_proof else config.batch_size
    try:
        return await verify_proof_jwts(
            normalized.proofs,
            audience=config.credential_issuer,
            algorithms=normalized.configuration.proof_signing_alg_values_supported,
            client_id=context.client_id,
            anonymous=context.anonymous,
            consume_nonce=consume,
            nonce_required=True,
            batch_size=batch_size,
            clock=config.clock,
            trust_anchors=config.x5c_trust_anchors or None,
        )
    except CredentialRequestError as err:
        if normalized.version in _DRAFT_13_14:
            # Draft 13/14 have no invalid_nonce; invalid_proof carries a fresh c_nonce.
            raise CredentialRequestError(
                ErrorCode.INVALID_PROOF,
                err.error_description,
                c_nonce=await new_c_nonce(config),
                c_nonce_expires_in=config.c_nonce_ttl,
            ) from None
        raise


async def _store_deferred(
    config: IssuerConfig,
    context: TokenContext,
    normalized: NormalizedCredentialRequest,
    proofs: Sequence[VerifiedProof],
    interval: int,
) -> str:
    transaction_id = secrets.token_urlsafe(24)
    record = {
        "grant_id": context.grant_id,
        "subject": context.subject,
        "configuration_id": normalized.configuration_id,
        "holder_jwks": [p.jwk for p in proofs],
        "version": normalized.version.value,
        "single_proof": normalized.single_proof,
        "interval": interval,
        "credentials": None,
        "denied": False,
    }
    await config.store.put(DEFERRED_PREFIX + transaction_id, record, DEFERRED_TTL)
    return transaction_id


async def handle_credential_request(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> HttpResponse:
    """The Credential Endpoint (see the module docstring).

    Raises :class:`~oid4vci.errors.ProtocolError` (turn it into the response with
    :func:`~oid4vci.issuer.responses.create_error_response`, as :class:`~oid4vci.issuer.Issuer`
    does).
    """
    req = HttpRequest.coerce(request)
    _require_post(req, config)  # before the DPoP proof's jti is recorded
    context = await authenticate_resource_request(
        req, config, expected_htu=config.endpoint("credential")
    )
    normalized = parse_credential_request(req, config, context=context)
    proofs = await _verify_proofs(config, normalized, context)
    version = normalized.version
    spec = normalized.configuration
    draft_nonce = version in _DRAFT_13_14
    try:
        claims = await config.claims_source(context.subject, normalized.configuration_id)
    except DeferIssuance as deferred:
        transaction_id = await _store_deferred(
            config, context, normalized, proofs, deferred.interval
        )
        body = credential_response_body(
            version,
            transaction_id=transaction_id,
            interval=deferred.interval,
            c_nonce=await new_c_nonce(config) if draft_nonce else None,
            c_nonce_expires_in=config.c_nonce_ttl if draft_nonce else None,
        )
        return json_response(202, body)
    credentials = await mint_credentials(config, spec, claims, [p.jwk for p in proofs], version)
    notification_id = await register_notification(
        config,
        context=context,
        configuration_id=normalized.configuration_id,
        credential_count=len(credentials),
    )
    body = credential_response_body(
        version,
        credentials=credentials,
        single_proof=normalized.single_proof,
        notification_id=notification_id,
        c_nonce=await new_c_nonce(config) if draft_nonce else None,
        c_nonce_expires_in=config.c_nonce_ttl if draft_nonce else None,
    )
    return json_response(200, body)
