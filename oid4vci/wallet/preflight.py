"""Checks the wallet makes before it spends anything single use (a pre-authorized code, an
authorization code), and the small rules the flow applies to what it was given.

All pure: nothing here sends, sleeps or reads a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from oid4vci.attestation import ATTEST_JWT_CLIENT_AUTH, ATTEST_JWT_CLIENT_AUTH_DPOP
from oid4vci.errors import ArgumentTypeError, MetadataError, OfferError, UsageError
from oid4vci.jose import LocalSigner, Signer
from oid4vci.models import (
    AuthorizationServerMetadata,
    CredentialConfiguration,
    CredentialIssuerMetadata,
    CredentialOffer,
)
from oid4vci.urls import require_secure_url

from .policy import WalletPolicy, choose_local_alg

__all__ = [
    "MAX_CREDENTIALS_PER_CONFIGURATION",
    "MAX_CREDENTIAL_DATASETS",
    "MAX_OFFERED_CONFIGURATIONS",
    "MAX_TX_CODE_LENGTH",
    "authorization_details_or_scope",
    "check_configuration_ids",
    "check_count",
    "check_haip",
    "check_max_wait",
    "check_offer_limits",
    "check_proof_types",
    "check_tx_code",
    "choose_configuration_ids",
    "choose_dpop_key",
    "choose_par",
    "choose_proof_type",
    "client_auth_method",
    "definition_types",
    "polling_interval",
    "preflight",
    "request_definition",
    "secure_endpoint",
    "uses_client_attestation",
]

#: An offer listing more credential configurations than this is refused (one flow requests
#: every offered configuration: an absurd offer must not turn into thousands of requests).
MAX_OFFERED_CONFIGURATIONS = 100
#: ``count`` above this is refused: each credential costs a fresh holder key and a proof.
MAX_CREDENTIALS_PER_CONFIGURATION = 1000
#: ``credential_identifiers`` (Credential Datasets, OID4VCI 1.0 §6.2) of one configuration in a
#: token response above this are refused: each costs ``count`` credential requests and keys.
MAX_CREDENTIAL_DATASETS = 100
#: A ``tx_code.length`` above this is refused (no user can type it; a UI must not try).
MAX_TX_CODE_LENGTH = 256
#: The longest polling interval taken from an issuer (a year): longer ones exceed every wait
#: budget anyway, and an absurd integer must not overflow a float.
_LONGEST_INTERVAL = 365 * 24 * 3600


def check_count(count: int) -> None:
    """``count`` (credentials per configuration) must be an int in 1 … the maximum."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise UsageError("count must be a positive integer")
    if count > MAX_CREDENTIALS_PER_CONFIGURATION:
        raise UsageError(f"count must be at most {MAX_CREDENTIALS_PER_CONFIGURATION}")


def check_max_wait(value: float) -> float:
    """A maximum wait (seconds of deferred polling) as a float; it must be a non-negative
    number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise UsageError("a maximum wait must be a non-negative number of seconds")
    return float(value)


def check_configuration_ids(ids: Sequence[str]) -> tuple[str, ...]:
    """The caller's ``configuration_ids`` argument as a tuple; it must be a sequence of
    strings (not one string)."""
    if isinstance(ids, str) or not all(isinstance(i, str) for i in ids):
        raise ArgumentTypeError("configuration_ids must be a sequence of strings")
    return tuple(ids)


def check_offer_limits(offer: CredentialOffer) -> None:
    """Refuse an offer with absurdly many configurations or an untypable ``tx_code``."""
    if len(offer.credential_configuration_ids) > MAX_OFFERED_CONFIGURATIONS:
        raise OfferError(
            f"the offer lists more than {MAX_OFFERED_CONFIGURATIONS} credential configurations"
        )
    grant = offer.pre_authorized_code
    spec = grant.tx_code if grant is not None else None
    if spec is not None and spec.length is not None and spec.length > MAX_TX_CODE_LENGTH:
        raise OfferError(f"the offer's tx_code length exceeds {MAX_TX_CODE_LENGTH}")


def check_tx_code(offer: CredentialOffer, tx_code: str | None) -> None:
    """Check the caller's Transaction Code against the offer's ``tx_code`` object
    (OID4VCI 1.0 §4.1.1).

    Required iff the offer has ``tx_code`` (even ``{}``); ``numeric`` (the default) means
    digits only; ``length`` must match. :class:`UsageError` otherwise (the code is never put
    in the message).
    """
    if tx_code is not None and not isinstance(tx_code, str):
        raise ArgumentTypeError("tx_code must be a string")
    grant = offer.pre_authorized_code
    spec = grant.tx_code if grant is not None else None
    if spec is None:
        if tx_code is not None:
            raise UsageError("the offer does not ask for a transaction code")
        return
    if tx_code is None or tx_code == "":
        raise UsageError("the offer requires a transaction code (tx_code)")
    if (spec.input_mode or "numeric") == "numeric" and not (
        tx_code.isascii() and tx_code.isdigit()
    ):
        raise UsageError("the transaction code must be numeric")
    if spec.length is not None and len(tx_code) != spec.length:
        raise UsageError(f"the transaction code must have {spec.length} characters")


def choose_configuration_ids(
    offer: CredentialOffer, configuration_ids: Sequence[str] | None
) -> tuple[str, ...]:
    """The configurations to request: all offered ones, or the caller's non-empty subset."""
    offered = tuple(offer.credential_configuration_ids)
    if not offered:
        raise OfferError("the offer lists no credential configurations")
    check_offer_limits(offer)
    if configuration_ids is None:
        return offered
    if isinstance(configuration_ids, str):
        raise ArgumentTypeError("configuration_ids must be a sequence of identifiers, not a string")
    chosen = tuple(dict.fromkeys(configuration_ids))
    if not chosen or any(cid not in offered for cid in chosen):
        raise UsageError("configuration_ids must be a non-empty subset of the offer's")
    return chosen


def polling_interval(issuer_interval: int | None, fallback: float) -> float:
    """The issuer's ``interval`` (seconds) when it is positive, else ``fallback``."""
    if issuer_interval is None or issuer_interval <= 0:
        return fallback
    return float(min(issuer_interval, _LONGEST_INTERVAL))


def secure_endpoint(url: str | None, what: str, policy: WalletPolicy) -> str:
    """``url`` after the https check; :class:`MetadataError` when the metadata lacks it."""
    if not url:
        raise MetadataError(f"the metadata has no {what}")
    return require_secure_url(
        url, allow_insecure_loopback=policy.allow_insecure_loopback, what=what
    )


def choose_dpop_key(
    policy: WalletPolicy, as_metadata: AuthorizationServerMetadata
) -> Signer | None:
    """A fresh DPoP key when the AS supports an alg we prefer (and policy allows DPoP)."""
    if policy.dpop == "off":
        return None
    algs = as_metadata.dpop_signing_alg_values_supported or ()
    alg = choose_local_alg(policy.dpop_algorithms, algs)
    if alg is None:
        if policy.dpop == "required":
            raise MetadataError(
                "the authorization server does not support DPoP (policy requires it)"
            )
        return None
    return LocalSigner.generate(alg)


def check_proof_types(config: CredentialConfiguration, policy: WalletPolicy | None = None) -> bool:
    """Whether ``config`` needs key proofs; :class:`MetadataError` when it needs proofs this
    wallet cannot make: neither ``jwt`` nor (with an attestation provider) ``attestation``, or
    key attestations (``key_attestations_required``, OID4VCI 1.0 §12.2.4) without a provider."""
    needs_proof = bool(config.proof_types_supported) or bool(
        config.cryptographic_binding_methods_supported
    )
    if needs_proof:
        choose_proof_type(config, policy)
    return needs_proof


def choose_proof_type(
    config: CredentialConfiguration, policy: WalletPolicy | None
) -> tuple[str, bool]:
    """``(proof type, with key attestation)`` for ``config``: ``jwt`` when accepted (with a
    ``key_attestation`` header when the issuer requires key attestations), else the
    ``attestation`` proof type (OID4VCI 1.0 Appendix F.1, F.3). :class:`MetadataError` when
    neither can be made."""
    types = config.proof_types_supported
    provider = policy.attestation_provider if policy is not None else None
    if not types or "jwt" in types:
        entry = types.get("jwt")
        required = entry is not None and entry.key_attestations_required is not None
        if required and provider is None:
            raise MetadataError(
                "the issuer requires key attestations (key_attestations_required) and the "
                "wallet has no attestation provider"
            )
        return "jwt", required
    if "attestation" in types:
        if provider is None:
            raise MetadataError(
                "the configuration accepts only 'attestation' proofs and the wallet has no "
                "attestation provider"
            )
        return "attestation", True
    raise MetadataError("the configuration accepts no 'jwt' key proofs")


def client_auth_method(policy: WalletPolicy, as_meta: AuthorizationServerMetadata) -> str | None:
    """How to authenticate at this AS with the wallet attestation, when the policy has a
    provider: ``attest_jwt_client_auth`` (two headers, draft-ietf-oauth-attestation-based-client-auth-07
    §13.4) whenever offered, else ``attest_jwt_client_auth_dpop`` (DPoP-combined mode,
    draft-ietf-oauth-attestation-based-client-auth-10 §5.2: the DPoP key is the instance key)
    when that is offered and the policy allows DPoP; ``None``: no attestation.
    :class:`MetadataError` when the AS accepts no public clients (no ``none``) but an
    attestation the wallet cannot send."""
    methods = as_meta.token_endpoint_auth_methods_supported or ()
    offered = [m for m in (ATTEST_JWT_CLIENT_AUTH, ATTEST_JWT_CLIENT_AUTH_DPOP) if m in methods]
    if not offered:
        return None
    if policy.attestation_provider is not None and (
        offered[0] == ATTEST_JWT_CLIENT_AUTH or policy.dpop != "off"
    ):
        return offered[0]
    if "none" not in methods:
        raise MetadataError(
            f"the authorization server requires wallet attestation ({offered[0]}) and the "
            "wallet has no attestation provider"
            + (" or does not use DPoP" if policy.attestation_provider is not None else "")
        )
    return None


def uses_client_attestation(policy: WalletPolicy, as_meta: AuthorizationServerMetadata) -> bool:
    """Whether to authenticate with the wallet attestation at this AS
    (:func:`client_auth_method` is not ``None``)."""
    return client_auth_method(policy, as_meta) is not None


def definition_types(config: CredentialConfiguration) -> tuple[str, ...] | None:
    """``credential_definition.type`` of ``config`` when it is an array of strings, else None."""
    definition = config.credential_definition
    types = definition.get("type") if isinstance(definition, dict) else None
    if isinstance(types, list) and types and all(isinstance(t, str) for t in types):
        return tuple(types)
    return None


def request_definition(config: CredentialConfiguration) -> dict[str, Any] | None:
    """The ``credential_definition`` of a Draft 13/14 request: the metadata's, without the
    ``credentialSubject`` claim descriptions (metadata for display, not a claims request)."""
    definition = config.credential_definition
    if not isinstance(definition, dict):
        return definition
    return {k: v for k, v in definition.items() if k != "credentialSubject"}


def preflight(
    metadata: CredentialIssuerMetadata, configuration_ids: Sequence[str], policy: WalletPolicy
) -> None:
    """Refuse unusable configurations and issuer endpoints before anything single use (a
    code) is spent."""
    for cid in configuration_ids:
        config = metadata.configuration(cid)
        check_proof_types(config, policy)
        if config.format == "mso_mdoc" and not (isinstance(config.doctype, str) and config.doctype):
            # OID4VCI 1.0 Appendix A.2.2: doctype is REQUIRED; without it nothing can be checked.
            raise MetadataError(f"the mso_mdoc configuration {cid!r} has no doctype")
    secure_endpoint(metadata.credential_endpoint, "credential_endpoint", policy)
    for what, url in (
        ("nonce_endpoint", metadata.nonce_endpoint),
        ("deferred_credential_endpoint", metadata.deferred_credential_endpoint),
        ("notification_endpoint", metadata.notification_endpoint),
    ):
        if url is not None:
            secure_endpoint(url, what, policy)


def check_haip(
    metadata: CredentialIssuerMetadata,
    as_meta: AuthorizationServerMetadata,
    configuration_ids: Sequence[str],
    *,
    code_flow: bool,
) -> None:
    """Refuse an issuer that does not meet OpenID4VC HAIP 1.0 (a wallet with
    ``WalletPolicy(profile="haip")``), before any code is spent. :class:`MetadataError`
    naming the first requirement missing:

    * DPoP with ES256 (HAIP 1.0 §4, HAIP 1.0 §7): ``dpop_signing_alg_values_supported``;
    * wallet attestation as client authentication (HAIP 1.0 §4.4.1): ``attest_jwt_client_auth`` in
      ``token_endpoint_auth_methods_supported``;
    * for the authorization code flow, PAR (FAPI 2.0 via HAIP 1.0 §4) and PKCE ``S256`` listed in
      ``code_challenge_methods_supported``;
    * every requested configuration has a ``scope`` (HAIP 1.0 §4.1); one that needs key binding has a
      ``nonce_endpoint`` (HAIP 1.0 §4.1) and accepts ES256 ``jwt`` proofs when it lists algorithms (HAIP 1.0 §7).

    That credentials carry ``x5c`` (HAIP 1.0 §6.1.1) cannot be seen in metadata: it is checked on each
    credential received.
    """
    dpop_algs = as_meta.dpop_signing_alg_values_supported or ()
    if "ES256" not in dpop_algs:
        raise MetadataError("HAIP 1.0 §4: the authorization server does not offer ES256 DPoP")
    if ATTEST_JWT_CLIENT_AUTH not in (as_meta.token_endpoint_auth_methods_supported or ()):
        raise MetadataError(
            "HAIP 1.0 §4.4.1: the authorization server does not offer wallet attestation "
            "(attest_jwt_client_auth)"
        )
    if code_flow:
        if not as_meta.pushed_authorization_request_endpoint:
            raise MetadataError("HAIP 1.0 §4: the authorization server has no PAR endpoint")
        if "S256" not in (as_meta.code_challenge_methods_supported or ()):
            raise MetadataError("HAIP 1.0 §4: the authorization server does not list PKCE S256")
    for cid in configuration_ids:
        config = metadata.configuration(cid)
        if not config.scope:
            raise MetadataError(f"HAIP 1.0 §4.1: configuration {cid!r} has no scope")
        if not (config.proof_types_supported or config.cryptographic_binding_methods_supported):
            continue
        if not metadata.nonce_endpoint:
            raise MetadataError("HAIP 1.0 §4.1: key binding without a nonce_endpoint")
        jwt_entry = config.proof_types_supported.get("jwt")
        algs = jwt_entry.proof_signing_alg_values_supported if jwt_entry is not None else None
        if algs and "ES256" not in algs:
            raise MetadataError(f"HAIP 1.0 §7: configuration {cid!r} refuses ES256 proofs")


def choose_par(policy: WalletPolicy, as_meta: AuthorizationServerMetadata) -> bool:
    """Whether to push the authorization request (``policy.par`` against the AS)."""
    par_endpoint = as_meta.pushed_authorization_request_endpoint
    if policy.par == "always" and not par_endpoint:
        raise MetadataError("the authorization server has no PAR endpoint (policy requires PAR)")
    if policy.par == "never" and as_meta.require_pushed_authorization_requests:
        raise MetadataError("the authorization server requires PAR (policy forbids it)")
    return bool(par_endpoint) and policy.par != "never"


def authorization_details_or_scope(
    policy: WalletPolicy,
    as_meta: AuthorizationServerMetadata,
    meta: CredentialIssuerMetadata,
    chosen: Sequence[str],
) -> tuple[list[dict[str, Any]] | None, str | None]:
    """``(authorization_details, None)`` or ``(None, scope)`` for the chosen configurations
    (OID4VCI 1.0 §5.1.1 and §5.1.2): ``authorization_details`` when the policy prefers it and
    the AS accepts ``openid_credential``, or when some configuration has no ``scope``."""
    types = as_meta.authorization_details_types_supported
    details_ok = types is None or "openid_credential" in types
    scopes = [meta.configuration(c).scope for c in chosen]
    if not (policy.use_authorization_details and details_ok) and all(scopes):
        return None, " ".join(dict.fromkeys(s for s in scopes if s))
    if not details_ok:
        raise MetadataError(
            "neither authorization_details nor scope can request these configurations"
        )
    details: list[dict[str, Any]] = []
    for c in chosen:
        entry: dict[str, Any] = {"type": "openid_credential", "credential_configuration_id": c}
        if meta.authorization_servers:
            entry["locations"] = [meta.credential_issuer]
        details.append(entry)
    return details, None
