"""Credential Issuer metadata and JWT VC Issuer metadata, and where they are served.

* :func:`create_issuer_metadata` builds the ``/.well-known/openid-credential-issuer`` document
  in the shape of one spec version (the configuration's ``published_version`` by default),
  through :func:`oid4vci.models.issuer_metadata_to_json`.
* :func:`create_jwt_vc_issuer_metadata` builds ``/.well-known/jwt-vc-issuer``
  (draft-ietf-oauth-sd-jwt-vc-11 §5): the issuer identifier and the public JWKS whose ``kid``
  the issued credentials carry (:func:`credential_key_id`).
* :func:`handle_issuer_metadata` / :func:`handle_jwt_vc_issuer_metadata` answer a GET of each
  (OID4VCI 1.0 §12.2.2; draft-ietf-oauth-sd-jwt-vc-11 §5.1). There is nothing to parse or
  verify: a metadata request carries no parameters.
* :func:`well_known_paths` lists the request paths each document answers at. For an issuer
  identifier with a path both the 1.0 inserted location
  (``/.well-known/openid-credential-issuer/<path>``) and the Draft 13–15 appended one
  (``/<path>/.well-known/openid-credential-issuer``) are served, so wallets of every version
  find it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from oid4vci.errors import CredentialRequestError, ErrorCode
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer._documents import cached_document, cached_document_async, cached_value
from oid4vci.issuer.config import CredentialConfigurationSpec, IssuerConfig
from oid4vci.issuer.encryption import encryption_metadata
from oid4vci.issuer.languages import (
    accept_language_ranges,
    available_locales,
    localize_display,
    negotiate_languages,
)
from oid4vci.issuer.responses import create_error_response, json_response, with_allow
from oid4vci.jose import jwk_thumbprint
from oid4vci.models.metadata import (
    BatchCredentialIssuance,
    CredentialConfiguration,
    CredentialIssuerMetadata,
    ProofTypeMetadata,
    issuer_metadata_to_json,
)
from oid4vci.signed_metadata import SIGNED_METADATA_MEDIA_TYPE, create_signed_metadata
from oid4vci.urls import append_well_known, insert_well_known
from oid4vci.versions import SpecVersion

__all__ = [
    "CREDENTIAL_ISSUER_WELL_KNOWN",
    "JWT_VC_ISSUER_WELL_KNOWN",
    "OAUTH_AS_WELL_KNOWN",
    "create_issuer_metadata",
    "create_jwt_vc_issuer_metadata",
    "credential_configuration_metadata",
    "credential_key_id",
    "handle_issuer_metadata",
    "handle_jwt_vc_issuer_metadata",
    "public_credential_jwk",
    "well_known_paths",
]

#: Well-known name of the Credential Issuer metadata (OID4VCI).
CREDENTIAL_ISSUER_WELL_KNOWN = "openid-credential-issuer"
#: Well-known name of the JWT VC Issuer metadata (SD-JWT VC).
JWT_VC_ISSUER_WELL_KNOWN = "jwt-vc-issuer"
#: Well-known name of the OAuth authorization server metadata (RFC 8414).
OAUTH_AS_WELL_KNOWN = "oauth-authorization-server"


def credential_key_id(config: IssuerConfig) -> str:
    """The ``kid`` of the credential signing key: the signer's own ``kid`` or its thumbprint."""
    jwk = config.credential_signer.public_jwk
    kid = jwk.get("kid")
    return kid if isinstance(kid, str) and kid else jwk_thumbprint(jwk)


def public_credential_jwk(config: IssuerConfig) -> dict[str, Any]:
    """The public JWK of the credential signing key with ``kid``, ``alg`` and ``use``."""
    jwk = dict(config.credential_signer.public_jwk)
    jwk["kid"] = credential_key_id(config)
    jwk.setdefault("alg", config.credential_signer.alg)
    jwk.setdefault("use", "sig")
    return jwk


def _subject_claims(claims: Any) -> list[dict[str, Any]]:
    """``jwt_vc_json`` claim descriptions with paths rooted at ``credentialSubject``."""
    out: list[dict[str, Any]] = []
    for claim in claims:
        entry = dict(claim)
        path = entry.get("path")
        if isinstance(path, list | tuple) and (not path or path[0] != "credentialSubject"):
            entry["path"] = ["credentialSubject", *path]
        out.append(entry)
    return out


def credential_configuration_metadata(
    spec: CredentialConfigurationSpec, config: IssuerConfig
) -> CredentialConfiguration:
    """The metadata model of one configuration (key binding by ``jwk`` with the configuration's
    proof types, each with its ``key_attestations_required`` when set, OID4VCI 1.0 §12.2.4).

    ``jwt_vc_json`` configurations carry ``credential_definition`` ``{"type": [...]}`` and
    claim paths rooted at ``credentialSubject`` (the Draft 13/14 writer turns those into
    ``credential_definition.credentialSubject``). ``mso_mdoc`` configurations carry
    ``doctype``, binding method ``cose_key`` and ``[namespace, element]`` claim paths; the
    signing algorithm is written per version by
    :func:`~oid4vci.models.metadata.credential_configuration_to_json` (a COSE integer in
    1.0, a name in the drafts).
    """
    claims = [dict(c) for c in spec.claims]
    definition: dict[str, Any] | None = None
    if not spec.is_sd_jwt_vc and not spec.is_mdoc:
        definition = {"type": list(spec.credential_definition_types)}
        claims = _subject_claims(claims)
    return CredentialConfiguration(
        format=spec.format,
        scope=spec.scope,
        vct=spec.vct,
        doctype=spec.doctype,
        credential_definition=definition,
        # OID4VCI 1.0 Appendix A.2.2: an mdoc is bound to a COSE_Key (its MSO deviceKey).
        cryptographic_binding_methods_supported=("cose_key",) if spec.is_mdoc else ("jwk",),
        credential_signing_alg_values_supported=(config.credential_signing_alg(spec.id),),
        proof_types_supported={
            proof_type: ProofTypeMetadata(
                proof_signing_alg_values_supported=tuple(spec.proof_signing_alg_values_supported),
                key_attestations_required=(
                    None
                    if spec.key_attestations_required is None
                    else dict(spec.key_attestations_required)
                ),
            )
            for proof_type in spec.proof_types
        },
        display=tuple(dict(d) for d in spec.display) or None,
        claims=claims or None,
    )


def create_issuer_metadata(
    config: IssuerConfig,
    *,
    version: SpecVersion | None = None,
    languages: Sequence[str] = (),
) -> dict[str, Any]:
    """The Credential Issuer metadata document in the shape of ``version``.

    ``version`` defaults to ``config.published_version``. ``nonce_endpoint`` is written for
    Draft 15 and 1.0, ``credential_identifiers_supported`` for Draft 13, ``batch_credential_issuance`` from Draft 14 on when ``batch_size`` ≥ 2,
    ``authorization_servers`` only with an external authorization server, the encryption
    members with ``config.encryption`` (:func:`~oid4vci.issuer.encryption.encryption_metadata`).
    ``languages`` (negotiated locales, :func:`~oid4vci.issuer.languages.negotiate_languages`)
    narrows every ``display`` array to them (OID4VCI 1.0 §12.2.2); the document is a pure
    function of ``(config, version, languages)``.
    """
    version = version or config.published_version
    external = config.external_authorization_server
    encryption = encryption_metadata(config, version)
    if version is SpecVersion.DRAFT_13:
        # Draft 13 §11.2.3: absent means false, and the token endpoint does return
        # credential_identifiers with authorization_details (Draft 13 §6.2).
        encryption["credential_identifiers_supported"] = True
    batch = (
        BatchCredentialIssuance(batch_size=config.batch_size)
        if config.batch_size >= 2 and version is not SpecVersion.DRAFT_13
        else None
    )
    meta = CredentialIssuerMetadata(
        credential_issuer=config.credential_issuer,
        credential_endpoint=config.endpoint("credential"),
        authorization_servers=(external.issuer,) if external is not None else None,
        nonce_endpoint=config.endpoint("nonce") if version.has_nonce_endpoint else None,
        deferred_credential_endpoint=config.endpoint("deferred_credential"),
        notification_endpoint=config.endpoint("notification"),
        batch_credential_issuance=batch,
        credential_response_encryption=encryption.pop("credential_response_encryption", None),
        extra=encryption,
        display=tuple(dict(d) for d in config.display) or None,
        credential_configurations_supported={
            cid: credential_configuration_metadata(spec, config)
            for cid, spec in config.credential_configurations.items()
        },
    )
    document = issuer_metadata_to_json(meta, version)
    return localize_display(document, languages) if languages else document


def create_jwt_vc_issuer_metadata(config: IssuerConfig) -> dict[str, Any]:
    """``{"issuer": <credential issuer>, "jwks": {"keys": [<public JWK with kid>]}}``.

    With a separate Status List Token signer (``status.signer``) its key is listed too, so
    the ``kid`` of the tokens resolves here (draft-ietf-oauth-status-list-20 §11.3).
    """
    keys = [public_credential_jwk(config)]
    status_signer = config.status.signer if config.status is not None else None
    if status_signer is not None:
        jwk = dict(status_signer.public_jwk)
        kid = jwk.get("kid")
        jwk["kid"] = kid if isinstance(kid, str) and kid else jwk_thumbprint(jwk)
        jwk.setdefault("alg", status_signer.alg)
        jwk.setdefault("use", "sig")
        if jwk["kid"] != keys[0]["kid"]:
            keys.append(jwk)
    return {"issuer": config.credential_issuer, "jwks": {"keys": keys}}


def _path(url: str) -> str:
    return urlsplit(url).path


def well_known_paths(config: IssuerConfig, suffix: str) -> tuple[str, ...]:
    """The request paths at which the ``/.well-known/<suffix>`` document of this issuer is served.

    Always the RFC 8414 inserted form; for an identifier with a path also the appended form.
    """
    identifier = config.credential_issuer
    inserted = _path(insert_well_known(identifier, suffix))
    appended = _path(append_well_known(identifier, suffix))
    return (inserted,) if inserted == appended else (inserted, appended)


def _method_not_allowed(request: HttpRequest | RequestDict) -> HttpResponse | None:
    """405 with ``Allow: GET, HEAD`` unless ``request`` is a GET or HEAD, else ``None``."""
    if HttpRequest.coerce(request).method in ("GET", "HEAD"):
        return None
    err = CredentialRequestError(ErrorCode.INVALID_REQUEST, "method not allowed", status=405)
    return with_allow(create_error_response(err), ("GET", "HEAD"))


async def handle_issuer_metadata(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> HttpResponse:
    """Answer a GET of the Credential Issuer metadata (JSON, the published version).

    ``Accept-Language`` narrows the ``display`` data to the languages asked for that the issuer
    has (OID4VCI 1.0 §12.2.2, :mod:`oid4vci.issuer.languages`), named in ``Content-Language``;
    the answer always has ``Vary: Accept-Language``. With
    :attr:`IssuerConfig.signed_metadata <oid4vci.issuer.config.IssuerConfig.signed_metadata>`
    a 1.0 issuer answers ``Accept: application/jwt`` with the signed JWT (OID4VCI 1.0
    §12.2.2-§12.2.3) and a Draft 13–15 issuer adds ``signed_metadata`` to the JSON (Draft 13
    §11.2.3); both are signed once per language list and half ``lifetime``. Answers errors
    (405 for another method), never raises them.
    """
    refused = _method_not_allowed(request)
    if refused is not None:
        return refused
    ranges = accept_language_ranges(HttpRequest.coerce(request).headers.get("Accept-Language"))
    languages: tuple[str, ...] = ()
    if ranges:
        locales = cached_value(
            config, "issuer locales", lambda: available_locales(create_issuer_metadata(config))
        )
        languages = tuple(negotiate_languages(ranges, locales))
    # One cached answer per negotiated language list: only the issuer's own locales, so bounded.
    kind = "issuer " + ",".join(languages)
    signing = config.signed_metadata
    if signing is None:
        return cached_document(config, kind, lambda: _issuer_metadata(config, languages))
    as_jwt = config.published_version is SpecVersion.V1
    if as_jwt and not _accepts_jwt(HttpRequest.coerce(request).headers.get("Accept")):
        return cached_document(
            config, "json " + kind, lambda: _issuer_metadata(config, languages, vary=_VARY_BOTH)
        )
    # Signed again after half its lifetime, and when the signer's key changes.
    period = int(config.clock() // max(signing.lifetime // 2, 1))
    validator = (_jwk_items(signing.metadata_signer.public_jwk), period)

    async def build() -> HttpResponse:
        return await _signed_issuer_metadata(config, languages, as_jwt=as_jwt)

    return await cached_document_async(config, "signed " + kind, build, validator)


def _accepts_jwt(accept: str | None) -> bool:
    """Whether ``Accept`` prefers ``application/jwt`` to ``application/json``: the JWT has a
    non-zero weight at least as high as JSON's (RFC 9110 §12.5.1; OID4VCI 1.0 §12.2.2: the
    signed form only when the wallet asks for it). ``*/*`` and ``application/*`` weigh for
    JSON, not for the JWT: a wallet that names neither gets the plain document."""
    weights: dict[str, float] = {}
    for item in (accept or "").split(","):
        media, *params = (part.strip() for part in item.split(";"))
        q = [p.partition("=")[2].strip() for p in params if p.lower().startswith("q=")]
        try:
            weight = float(q[0]) if q else 1.0
        except ValueError:
            weight = 0.0
        media = media.lower()
        weights[media] = max(weights.get(media, 0.0), weight if 0.0 <= weight <= 1.0 else 0.0)
    jwt = weights.get(SIGNED_METADATA_MEDIA_TYPE, 0.0)
    # The most specific range that matches JSON gives its weight (RFC 9110 §12.5.1).
    json = weights.get("application/json", weights.get("application/*", weights.get("*/*", 0.0)))
    return jwt > 0 and jwt >= json


async def _signed_issuer_metadata(
    config: IssuerConfig, languages: Sequence[str], *, as_jwt: bool
) -> HttpResponse:
    signing = config.signed_metadata
    assert signing is not None
    document = create_issuer_metadata(config)
    headers = {"Vary": _VARY_BOTH}
    if languages:
        headers["Content-Language"] = ", ".join(languages)
        document = localize_display(document, languages)
    token = await create_signed_metadata(
        document,
        signer=signing.metadata_signer,
        chain=signing.metadata_signer_chain,
        credential_issuer=config.credential_issuer,
        lifetime=signing.lifetime,
        typed=as_jwt,
        clock=config.clock,
    )
    if as_jwt:
        return HttpResponse(
            status=200,
            headers={
                **headers,
                "Content-Type": SIGNED_METADATA_MEDIA_TYPE,
                "Cache-Control": "no-store",
            },
            body=token.encode("ascii"),
        )
    return json_response(200, {**document, "signed_metadata": token}, headers=headers)


_VARY_BOTH = "Accept, Accept-Language"


def _issuer_metadata(
    config: IssuerConfig, languages: Sequence[str], *, vary: str = "Accept-Language"
) -> HttpResponse:
    document = create_issuer_metadata(config)
    headers = {"Vary": vary}
    if languages:
        headers["Content-Language"] = ", ".join(languages)
        document = localize_display(document, languages)
    return json_response(200, document, headers=headers)


async def handle_jwt_vc_issuer_metadata(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> HttpResponse:
    """Answer a GET of the JWT VC Issuer metadata (405 for another method; never raises)."""
    # The signers' public keys guard the cached document: a Signer may rotate its key.
    status_signer = config.status.signer if config.status is not None else None
    validator = (
        _jwk_items(config.credential_signer.public_jwk),
        (_jwk_items(status_signer.public_jwk) if status_signer is not None else None),
    )
    return _method_not_allowed(request) or cached_document(
        config,
        "jwt-vc-issuer",
        lambda: json_response(200, create_jwt_vc_issuer_metadata(config)),
        validator,
    )


def _jwk_items(jwk: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), repr(v)) for k, v in jwk.items()))
