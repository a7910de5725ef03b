"""Credential Issuer metadata (OID4VCI 1.0 §12.2) and OAuth AS metadata (RFC 8414) models.

One normalized model for every version; :func:`parse_issuer_metadata` reads any version's shape
and :func:`issuer_metadata_to_json` writes the shape of the version asked for:

- Draft 13/14: ``display`` and ``claims`` (object map) at the configuration root, format
  ``vc+sd-jwt``; for ``jwt_vc_json``/``ldp_vc``/``jwt_vc_json-ld`` claims live in
  ``credential_definition.credentialSubject``. Draft 13 has ``batch_credential_endpoint`` and no
  ``batch_credential_issuance``; neither draft has ``nonce_endpoint``.
- Draft 15: ``claims`` as an array of ``{"path": [...]}`` at the configuration root, format
  ``dc+sd-jwt``.
- 1.0: ``display`` and ``claims`` (path array) inside ``credential_metadata``.

``mso_mdoc`` configurations (OID4VCI 1.0 Appendix A.2 and the drafts' equivalent) keep ``doctype`` everywhere; their
claims are ``{namespace: {element: {...}}}`` maps in Draft 13/14 and ``[namespace, element]``
paths from Draft 15 on (the same conversion as other formats); their
``credential_signing_alg_values_supported`` are COSE algorithm identifiers (integers, e.g.
``-7``) in 1.0 and algorithm names (``ES256``) in the drafts, converted both ways on output.

Issuer metadata is lenient about configurations: a malformed entry of
``credential_configurations_supported`` does not fail the parse; it is kept raw in
``invalid_configurations`` and :meth:`CredentialIssuerMetadata.configuration` raises when it
is asked for.
"""

from __future__ import annotations

import copy
from typing import Any

import attrs

from oid4vci._wire import (
    check_dict,
    field_check,
    join_path,
    structure,
    unstructure,
    wire_model,
)
from oid4vci.errors import MetadataError, WireFormatError
from oid4vci.versions import SpecVersion, detect_metadata_version

__all__ = [
    "AuthorizationServerMetadata",
    "BatchCredentialIssuance",
    "CredentialConfiguration",
    "CredentialIssuerMetadata",
    "MetadataFormatError",
    "ProofTypeMetadata",
    "as_metadata_to_json",
    "claims_map_to_paths",
    "claims_paths_to_map",
    "credential_configuration_to_json",
    "issuer_metadata_to_json",
    "parse_as_metadata",
    "parse_credential_configuration",
    "parse_issuer_metadata",
]

_W3C_FORMATS = frozenset({"jwt_vc_json", "jwt_vc_json-ld", "ldp_vc"})
_SD_JWT_FORMATS = frozenset({"vc+sd-jwt", "dc+sd-jwt"})
_CLAIM_ATTRS = frozenset({"mandatory", "value_type", "display"})


class MetadataFormatError(MetadataError, WireFormatError):
    """Metadata that does not have the wire shape (a :class:`MetadataError` and a
    :class:`WireFormatError`, ``path`` in wire spelling)."""


@wire_model()
@attrs.frozen(kw_only=True)
class ProofTypeMetadata:
    """An entry of ``proof_types_supported``."""

    proof_signing_alg_values_supported: tuple[str, ...]
    key_attestations_required: dict[str, Any] | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


@wire_model()
@attrs.frozen(kw_only=True)
class CredentialConfiguration:
    """One entry of ``credential_configurations_supported`` (normalized).

    ``display`` and ``claims`` are read from the root (drafts) or from ``credential_metadata``
    (1.0); ``claims`` is kept raw in whichever shape it came (object map or path array).
    """

    format: str
    scope: str | None = None
    vct: str | None = None
    doctype: str | None = None
    credential_definition: dict[str, Any] | None = None
    cryptographic_binding_methods_supported: tuple[str, ...] | None = None
    credential_signing_alg_values_supported: tuple[str | int, ...] | None = None
    proof_types_supported: dict[str, ProofTypeMetadata] = attrs.field(factory=dict)
    display: tuple[dict[str, Any], ...] | None = None
    claims: Any | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def is_sd_jwt_vc(self) -> bool:
        """True for ``dc+sd-jwt`` and the older ``vc+sd-jwt``."""
        return self.format in _SD_JWT_FORMATS

    def proof_algorithms(self, proof_type: str = "jwt") -> tuple[str, ...]:
        """``proof_signing_alg_values_supported`` of ``proof_type`` (empty when absent)."""
        entry = self.proof_types_supported.get(proof_type)
        return entry.proof_signing_alg_values_supported if entry is not None else ()


@wire_model()
@attrs.frozen(kw_only=True)
class BatchCredentialIssuance:
    """``batch_credential_issuance`` (Draft 14+): the most keys/proofs in one request."""

    batch_size: int = attrs.field(validator=field_check(lambda v: v > 0, "must be positive"))
    extra: dict[str, Any] = attrs.field(factory=dict)


@wire_model(local=("credential_configurations_supported", "invalid_configurations"))
@attrs.frozen(kw_only=True)
class CredentialIssuerMetadata:
    """Credential Issuer metadata (normalized across versions).

    ``invalid_configurations`` keeps the raw JSON of configuration entries that could not be
    read; they are written back unchanged and refused by :meth:`configuration`.
    """

    credential_issuer: str
    credential_endpoint: str
    authorization_servers: tuple[str, ...] | None = None
    nonce_endpoint: str | None = None
    deferred_credential_endpoint: str | None = None
    notification_endpoint: str | None = None
    batch_credential_endpoint: str | None = None
    batch_credential_issuance: BatchCredentialIssuance | None = None
    credential_response_encryption: dict[str, Any] | None = None
    display: tuple[dict[str, Any], ...] | None = None
    credential_configurations_supported: dict[str, CredentialConfiguration] = attrs.field(
        factory=dict
    )
    invalid_configurations: dict[str, Any] = attrs.field(factory=dict, repr=False)
    extra: dict[str, Any] = attrs.field(factory=dict)

    def configuration(self, configuration_id: str) -> CredentialConfiguration:
        """The configuration ``configuration_id``.

        Raises :class:`MetadataFormatError` (path names the bad member) when that entry is
        malformed, :class:`~oid4vci.errors.MetadataError` when there is no such entry.
        """
        found = self.credential_configurations_supported.get(configuration_id)
        if found is not None:
            return found
        if configuration_id in self.invalid_configurations:
            raw = self.invalid_configurations[configuration_id]
            # Re-reading raises the precise error (the entry was kept because it failed).
            parse_credential_configuration(
                raw, path=f"credential_configurations_supported.{configuration_id}"
            )
            raise MetadataFormatError(  # pragma: no cover - defensive
                "malformed credential configuration",
                path=f"credential_configurations_supported.{configuration_id}",
            )
        raise MetadataError(f"the issuer does not offer configuration {configuration_id!r}")

    @property
    def authorization_server_ids(self) -> tuple[str, ...]:
        """``authorization_servers``, or the issuer identifier itself when absent."""
        return self.authorization_servers or (self.credential_issuer,)


def _metadata_error(exc: WireFormatError) -> MetadataFormatError:
    if isinstance(exc, MetadataFormatError):
        return exc
    message = str(exc)
    if exc.path and message.startswith(exc.path + ": "):
        message = message[len(exc.path) + 2 :]
    return MetadataFormatError(message, path=exc.path)


def parse_credential_configuration(data: Any, *, path: str = "") -> CredentialConfiguration:
    """Read one credential configuration (any version's shape); :class:`MetadataFormatError`."""
    try:
        check_dict(data, path)
        cm = data.get("credential_metadata")
        if cm is None:
            return structure(data, CredentialConfiguration, path_prefix=path)
        cm_path = join_path(path, "credential_metadata")
        check_dict(cm, cm_path)
        flat = {k: v for k, v in data.items() if k != "credential_metadata"}
        rest = {k: v for k, v in cm.items() if k not in ("display", "claims")}
        for key in ("display", "claims"):
            if key in cm:
                flat[key] = cm[key]
        if rest:
            flat["credential_metadata"] = rest
        try:
            return structure(flat, CredentialConfiguration, path_prefix=path)
        except WireFormatError as exc:
            for key in ("display", "claims"):
                moved = join_path(path, key)
                if key in cm and (exc.path == moved or exc.path.startswith(moved + ".")):
                    message = str(exc)[len(exc.path) + 2 :]
                    new = join_path(cm_path, key) + exc.path[len(moved) :]
                    raise MetadataFormatError(message, path=new) from None
            raise
    except WireFormatError as exc:
        raise _metadata_error(exc) from None


def parse_issuer_metadata(data: Any) -> tuple[CredentialIssuerMetadata, SpecVersion]:
    """Read Credential Issuer metadata and detect the version it is written in.

    Strict for ``credential_issuer``, ``credential_endpoint`` and
    ``credential_configurations_supported`` (must be an object); lenient for each configuration.
    Raises :class:`MetadataFormatError`.
    """
    try:
        check_dict(data)
        key = "credential_configurations_supported"
        if key not in data:
            raise WireFormatError("required member is missing", path=key)
        configs = check_dict(data[key], key)
        top = {k: v for k, v in data.items() if k != key}
        base = structure(top, CredentialIssuerMetadata)
    except WireFormatError as exc:
        raise _metadata_error(exc) from None
    valid: dict[str, CredentialConfiguration] = {}
    invalid: dict[str, Any] = {}
    for cid, raw in configs.items():
        try:
            valid[cid] = parse_credential_configuration(raw, path=f"{key}.{cid}")
        except WireFormatError:
            invalid[cid] = raw
    meta = attrs.evolve(
        base, credential_configurations_supported=valid, invalid_configurations=invalid
    )
    return meta, detect_metadata_version(data)


# --- claims shapes -----------------------------------------------------------------------------


def claims_paths_to_map(claims: Any) -> dict[str, Any]:
    """Convert D15+ claims descriptions (``[{"path": [...], ...}]``) to the D13/14 object map.

    Only paths made of strings are representable; entries with ``null``/index components are
    dropped. ``mandatory`` and ``display`` (and ``value_type``) become the leaf's members.
    """
    out: dict[str, Any] = {}
    if not isinstance(claims, list | tuple):
        return out
    for entry in claims:
        if not isinstance(entry, dict):
            continue
        path = entry.get("path")
        if not isinstance(path, list | tuple) or not path:
            continue
        if not all(isinstance(p, str) for p in path):
            continue
        node = out
        for part in path:
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
        for attr in ("mandatory", "value_type", "display"):
            if attr in entry:
                node[attr] = copy.deepcopy(entry[attr])
    return out


def claims_map_to_paths(claims: Any, prefix: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Convert the D13/14 claims object map to D15+ claims descriptions (path arrays).

    A node is emitted when it carries ``mandatory``/``display``/``value_type`` or has no
    children; its children are walked in order.
    """
    out: list[dict[str, Any]] = []
    if not isinstance(claims, dict):
        return out
    for name, node in claims.items():
        path = (*prefix, name)
        if not isinstance(node, dict):
            out.append({"path": list(path)})
            continue
        attrs_ = {k: copy.deepcopy(v) for k, v in node.items() if k in _CLAIM_ATTRS}
        children = {k: v for k, v in node.items() if k not in _CLAIM_ATTRS}
        if attrs_ or not children:
            entry: dict[str, Any] = {"path": list(path)}
            if "mandatory" in attrs_:
                entry["mandatory"] = attrs_["mandatory"]
            if "display" in attrs_:
                entry["display"] = attrs_["display"]
            out.append(entry)
        out.extend(claims_map_to_paths(children, path))
    return out


#: JOSE algorithm names and COSE algorithm identifiers (RFC 9053 §2.1, §2.2) for mdoc metadata.
_COSE_BY_NAME: dict[str, int] = {"ES256": -7, "ES384": -35, "ES512": -36, "EdDSA": -8}
_NAME_BY_COSE: dict[int, str] = {v: k for k, v in _COSE_BY_NAME.items()}


def _mdoc_signing_algs(values: Any, version: SpecVersion) -> Any:
    """``credential_signing_alg_values_supported`` of an ``mso_mdoc`` configuration in the
    shape of ``version``: COSE integers in 1.0 (OID4VCI 1.0 Appendix A.2.2, example ``[-7, -9]``), names
    in the drafts (Draft 13–15 Appendix A.2.2: "SHOULD be one of those defined in
    ISO/IEC 18013-5"). Values without a counterpart are written as they are."""
    if not isinstance(values, list):
        return values
    if version is SpecVersion.V1:
        return [_COSE_BY_NAME.get(v, v) if isinstance(v, str) else v for v in values]
    return [
        _NAME_BY_COSE.get(v, v) if isinstance(v, int) and not isinstance(v, bool) else v
        for v in values
    ]


def _format_for(fmt: str, version: SpecVersion) -> str:
    if fmt in _SD_JWT_FORMATS:
        return version.sd_jwt_format
    return fmt


def credential_configuration_to_json(
    config: CredentialConfiguration, version: SpecVersion
) -> dict[str, Any]:
    """One configuration in the shape of ``version`` (see the module docstring)."""
    out: dict[str, Any] = unstructure(config)
    out["format"] = _format_for(config.format, version)
    if config.format == "mso_mdoc" and "credential_signing_alg_values_supported" in out:
        out["credential_signing_alg_values_supported"] = _mdoc_signing_algs(
            out["credential_signing_alg_values_supported"], version
        )
    display = out.pop("display", None)
    claims = out.pop("claims", None)
    cm_rest = out.pop("credential_metadata", None)
    definition = out.get("credential_definition")
    if version in (SpecVersion.DRAFT_13, SpecVersion.DRAFT_14):
        # The ``attestation`` proof type and key_attestations_required arrived in Draft 15
        # (§8.2.1.3, §11.2.3); a Draft 14 proof type entry has
        # proof_signing_alg_values_supported only (Draft 14 §10.2.3).
        proof_types = out.get("proof_types_supported")
        if isinstance(proof_types, dict):
            kept = {
                name: {k: v for k, v in entry.items() if k != "key_attestations_required"}
                if isinstance(entry, dict)
                else entry
                for name, entry in proof_types.items()
                if name != "attestation"
            }
            if kept:
                out["proof_types_supported"] = kept
            else:
                del out["proof_types_supported"]
        if display is not None:
            out["display"] = display
        if isinstance(claims, list):
            as_map = claims_paths_to_map(claims)
            subject = as_map.get("credentialSubject")
            if (
                config.format in _W3C_FORMATS
                and list(as_map) == ["credentialSubject"]
                and isinstance(subject, dict)
            ):
                new_def = dict(definition) if isinstance(definition, dict) else {}
                new_def["credentialSubject"] = subject
                out["credential_definition"] = new_def
            elif as_map:
                out["claims"] = as_map
        elif claims is not None:
            out["claims"] = claims
        return out
    # Draft 15 and 1.0: claims as path arrays.
    if isinstance(claims, dict):
        claims = claims_map_to_paths(claims)
    if (
        claims is None
        and isinstance(definition, dict)
        and isinstance(definition.get("credentialSubject"), dict)
    ):
        claims = claims_map_to_paths(definition["credentialSubject"], ("credentialSubject",))
        out["credential_definition"] = {
            k: v for k, v in definition.items() if k != "credentialSubject"
        }
    if version is SpecVersion.DRAFT_15:
        if display is not None:
            out["display"] = display
        if claims is not None:
            out["claims"] = claims
        return out
    cm = dict(cm_rest) if isinstance(cm_rest, dict) else {}
    if display is not None:
        cm["display"] = display
    if claims is not None:
        cm["claims"] = claims
    if cm:
        out["credential_metadata"] = cm
    return out


_DROP_BY_VERSION: dict[SpecVersion, frozenset[str]] = {
    SpecVersion.DRAFT_13: frozenset(
        {"nonce_endpoint", "batch_credential_issuance", "credential_request_encryption"}
    ),
    SpecVersion.DRAFT_14: frozenset(
        {
            "nonce_endpoint",
            "batch_credential_endpoint",
            "credential_identifiers_supported",
            "credential_request_encryption",
        }
    ),
    SpecVersion.DRAFT_15: frozenset(
        {
            "batch_credential_endpoint",
            "credential_identifiers_supported",
            "credential_request_encryption",
        }
    ),
    SpecVersion.V1: frozenset(
        {"batch_credential_endpoint", "credential_identifiers_supported", "signed_metadata"}
    ),
}


def issuer_metadata_to_json(meta: CredentialIssuerMetadata, version: SpecVersion) -> dict[str, Any]:
    """The metadata in the shape of ``version`` (members the version lacks are left out)."""
    out: dict[str, Any] = unstructure(meta)
    for key in _DROP_BY_VERSION[version]:
        out.pop(key, None)
    configs: dict[str, Any] = {
        cid: credential_configuration_to_json(cfg, version)
        for cid, cfg in meta.credential_configurations_supported.items()
    }
    for cid, raw in meta.invalid_configurations.items():
        configs.setdefault(cid, raw)
    out["credential_configurations_supported"] = configs
    return out


# --- OAuth authorization server metadata (RFC 8414) --------------------------------------------


@wire_model(
    pre_authorized_grant_anonymous_access_supported=(
        "pre-authorized_grant_anonymous_access_supported"
    )
)
@attrs.frozen(kw_only=True)
class AuthorizationServerMetadata:
    """RFC 8414 metadata with the RFC 9126, 9449, 9396 and OID4VCI members used here."""

    issuer: str
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    pushed_authorization_request_endpoint: str | None = None
    require_pushed_authorization_requests: bool = False
    dpop_signing_alg_values_supported: tuple[str, ...] | None = None
    code_challenge_methods_supported: tuple[str, ...] | None = None
    grant_types_supported: tuple[str, ...] | None = None
    response_types_supported: tuple[str, ...] | None = None
    token_endpoint_auth_methods_supported: tuple[str, ...] | None = None
    authorization_details_types_supported: tuple[str, ...] | None = None
    scopes_supported: tuple[str, ...] | None = None
    pre_authorized_grant_anonymous_access_supported: bool = False
    authorization_response_iss_parameter_supported: bool = False
    jwks_uri: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def effective_grant_types(self) -> tuple[str, ...]:
        """``grant_types_supported`` with the RFC 8414 default applied."""
        if self.grant_types_supported is None:
            return ("authorization_code", "implicit")
        return self.grant_types_supported


def parse_as_metadata(data: Any) -> AuthorizationServerMetadata:
    """Read authorization server metadata; raises :class:`MetadataFormatError`."""
    try:
        return structure(data, AuthorizationServerMetadata)
    except WireFormatError as exc:
        raise _metadata_error(exc) from None


def as_metadata_to_json(meta: AuthorizationServerMetadata) -> dict[str, Any]:
    """AS metadata as a JSON-ready dict (members at their default, e.g. ``false``, omitted)."""
    out: dict[str, Any] = unstructure(meta)
    return out
