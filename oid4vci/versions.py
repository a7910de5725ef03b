"""OID4VCI versions (Draft 13, 14, 15 and 1.0) and the rules to tell which one a peer speaks."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

__all__ = ["SpecVersion", "detect_credential_request_version", "detect_metadata_version"]


class SpecVersion(enum.Enum):
    """The OID4VCI versions this library reads and writes."""

    DRAFT_13 = "draft-13"
    DRAFT_14 = "draft-14"
    DRAFT_15 = "draft-15"
    V1 = "1.0"

    @property
    def is_draft(self) -> bool:
        """True for every draft (13, 14, 15)."""
        return self is not SpecVersion.V1

    @property
    def sd_jwt_format(self) -> str:
        """The SD-JWT VC format identifier (``vc+sd-jwt`` before Draft 15)."""
        return "vc+sd-jwt" if self in (SpecVersion.DRAFT_13, SpecVersion.DRAFT_14) else "dc+sd-jwt"

    @property
    def sd_jwt_typ(self) -> str:
        """The SD-JWT VC ``typ`` header value for this version."""
        return self.sd_jwt_format

    @property
    def has_nonce_endpoint(self) -> bool:
        """Draft 15 and 1.0 hand out ``c_nonce`` at a Nonce Endpoint."""
        return self in (SpecVersion.DRAFT_15, SpecVersion.V1)

    @property
    def c_nonce_in_responses(self) -> bool:
        """Draft 13 and 14 carry ``c_nonce`` in token, credential and error responses."""
        return self in (SpecVersion.DRAFT_13, SpecVersion.DRAFT_14)

    @property
    def inserts_well_known(self) -> bool:
        """1.0 inserts ``/.well-known/…`` after the host; the drafts append it."""
        return self is SpecVersion.V1

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SpecVersion):
            return NotImplemented
        order = list(SpecVersion)
        return order.index(self) < order.index(other)


def _configurations(metadata: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    configs = metadata.get("credential_configurations_supported")
    if not isinstance(configs, Mapping):
        return []
    return [c for c in configs.values() if isinstance(c, Mapping)]


def detect_metadata_version(metadata: Mapping[str, Any]) -> SpecVersion:
    """Guess the version an issuer speaks from its Credential Issuer Metadata.

    The strongest signals are checked first (1.0 members, then Draft 15, 14, 13); without any
    signal the answer is :attr:`SpecVersion.V1`.
    """
    configs = _configurations(metadata)
    if "credential_request_encryption" in metadata or any(
        "credential_metadata" in c for c in configs
    ):
        return SpecVersion.V1
    if any(
        "di_vp" in c.get("proof_types_supported", {})
        for c in configs
        if isinstance(c.get("proof_types_supported"), Mapping)
    ):
        return SpecVersion.V1
    if "batch_credential_endpoint" in metadata or "credential_identifiers_supported" in metadata:
        return SpecVersion.DRAFT_13
    formats = {c.get("format") for c in configs if isinstance(c.get("format"), str)}
    if "vc+sd-jwt" in formats:
        return (
            SpecVersion.DRAFT_14
            if "batch_credential_issuance" in metadata
            else SpecVersion.DRAFT_13
        )
    claims_maps = any(isinstance(c.get("claims"), Mapping) for c in configs)
    claims_arrays = any(isinstance(c.get("claims"), list) for c in configs)
    if claims_maps:
        return (
            SpecVersion.DRAFT_14
            if "batch_credential_issuance" in metadata
            else SpecVersion.DRAFT_13
        )
    if "signed_metadata" in metadata or claims_arrays:
        return SpecVersion.DRAFT_15
    if "nonce_endpoint" in metadata:
        # Draft 15 and 1.0 both have it; without a Draft 15 signal prefer the final version.
        return SpecVersion.V1
    if any("order" in c for c in configs):
        return (
            SpecVersion.DRAFT_14
            if "batch_credential_issuance" in metadata
            else SpecVersion.DRAFT_13
        )
    return _draft_shaped_version(metadata, configs)


def _draft_shaped_version(
    metadata: Mapping[str, Any], configs: list[Mapping[str, Any]]
) -> SpecVersion:
    """No explicit signal: configurations still shaped like a draft's make it a draft.

    ``display`` or ``claims`` at the configuration root, or
    ``credential_definition.credentialSubject``, are draft shapes (1.0 moved them into
    ``credential_metadata``): Draft 15 with a ``nonce_endpoint``, Draft 14 with
    ``batch_credential_issuance``, else Draft 13 (whose requests Draft 14 issuers accept).
    """
    draft_shaped = any(
        "display" in c
        or "claims" in c
        or (
            isinstance(c.get("credential_definition"), Mapping)
            and "credentialSubject" in c["credential_definition"]
        )
        for c in configs
    )
    if not draft_shaped:
        return SpecVersion.V1
    if "nonce_endpoint" in metadata:
        return SpecVersion.DRAFT_15
    if "batch_credential_issuance" in metadata:
        return SpecVersion.DRAFT_14
    return SpecVersion.DRAFT_13


def detect_credential_request_version(request: Mapping[str, Any]) -> SpecVersion:
    """Tell which version's shape a credential request body has.

    A 1.0 selector (``credential_configuration_id`` or ``credential_identifier``) with
    ``proofs`` → 1.0, whatever else the body carries: a 1.0 request ignores members it does not
    recognise (OID4VCI 1.0 §8.2), ``format`` and ``proof`` included. Otherwise ``format`` →
    Draft 13/14 (14 when ``proofs`` is used); ``proof`` (singular) with a
    ``credential_configuration_id`` → Draft 15; otherwise 1.0.
    """
    if "proofs" in request and (
        "credential_configuration_id" in request or "credential_identifier" in request
    ):
        return SpecVersion.V1
    if "format" in request:
        return SpecVersion.DRAFT_14 if "proofs" in request else SpecVersion.DRAFT_13
    if "proof" in request:
        if "credential_configuration_id" in request:
            return SpecVersion.DRAFT_15
        return SpecVersion.DRAFT_13
    return SpecVersion.V1
