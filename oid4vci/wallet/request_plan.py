"""The credential requests a flow will send, planned once the token is in (OID4VCI 1.0 §8).

Per configuration asked for and per ``credential_identifier`` the token response gave for it
(one Credential Dataset each, OID4VCI 1.0 §6.2), ``count`` credentials, each bound to its own
holder key: one request per chunk of the issuer's ``batch_size`` keys (batch issuance,
``batch_credential_issuance``, OID4VCI 1.0 §12.2.4; one key per request without it and from a
Draft 13 issuer). A configuration that takes no proofs gets one request per credential, without
keys. The flow fills in each request's holder keys and nonce just before it sends it.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from oid4vci.errors import WireFormatError
from oid4vci.jose import Signer
from oid4vci.models import CredentialIssuerMetadata, TokenResponse
from oid4vci.versions import SpecVersion

from .policy import WalletPolicy
from .preflight import (
    MAX_CREDENTIAL_DATASETS,
    MAX_CREDENTIALS_PER_CONFIGURATION,
    check_proof_types,
)

__all__ = ["CredentialRequestPlan", "plan_credential_requests"]


@attrs.frozen(kw_only=True)
class CredentialRequestPlan:
    """One credential request: ``size`` holder keys (0: the configuration takes no proofs);
    the flow replaces it (``attrs.evolve``) as it gets the keys and the nonce."""

    configuration_id: str
    credential_identifier: str | None
    size: int
    keys: tuple[Signer, ...] = ()
    nonce: str | None = None


def plan_credential_requests(
    meta: CredentialIssuerMetadata,
    version: SpecVersion,
    token: TokenResponse,
    *,
    configuration_ids: Sequence[str],
    count: int,
    policy: WalletPolicy,
) -> list[CredentialRequestPlan]:
    """One request per chunk of ``count`` holder keys, per configuration and per
    ``credential_identifier`` of the token response (one Credential Dataset each); chunks
    of the issuer's ``batch_size`` (one key per request without batch issuance)."""
    plan: list[CredentialRequestPlan] = []
    for cid in configuration_ids:
        config = meta.configuration(cid)
        sizes: list[int] = [0] * count
        if check_proof_types(config, policy):
            batch = meta.batch_credential_issuance
            size = 1
            if batch is not None and version is not SpecVersion.DRAFT_13:
                size = max(1, batch.batch_size)
            sizes = [min(size, count - i) for i in range(0, count, size)]
        identifiers: Sequence[str | None] = _datasets(token, cid, count) or (None,)
        for identifier in identifiers:
            plan.extend(
                CredentialRequestPlan(
                    configuration_id=cid, credential_identifier=identifier, size=n
                )
                for n in sizes
            )
    return plan


def _datasets(token: TokenResponse, configuration_id: str, count: int) -> tuple[str, ...]:
    """The token response's ``credential_identifiers`` for ``configuration_id``, each naming
    one Credential Dataset (OID4VCI 1.0 §6.2: "each uniquely identifying"): a repeated one, or
    more than the wallet's limits allow (each costs ``count`` requests and holder keys), is a
    :class:`WireFormatError` before any request is sent."""
    identifiers = token.credential_identifiers(configuration_id)
    if len(set(identifiers)) != len(identifiers):
        raise WireFormatError(
            "the token response repeats a credential_identifier", path="authorization_details"
        )
    if (
        len(identifiers) > MAX_CREDENTIAL_DATASETS
        or len(identifiers) * count > MAX_CREDENTIALS_PER_CONFIGURATION
    ):
        raise WireFormatError(
            f"the token response names {len(identifiers)} credential datasets for one "
            f"configuration; the wallet requests at most {MAX_CREDENTIAL_DATASETS} datasets "
            f"and {MAX_CREDENTIALS_PER_CONFIGURATION} credentials per configuration",
            path="authorization_details",
        )
    return identifiers
