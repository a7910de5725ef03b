"""What a finished (or deferred) issuance hands back to the wallet.

* :class:`ReceivedCredential` — one verified credential with its decoded claims and holder key.
* :class:`DeferredTransaction` — a credential the issuer will deliver later (poll it with
  :meth:`~oid4vci.wallet.Oid4vciClient.poll_deferred` or an
  :meth:`~oid4vci.wallet.IssuanceFlow.for_deferred` flow).
* :class:`IssuanceResult` — everything one flow produced.
* :class:`IssuerSession` — the access token and DPoP key for the issuer's protected endpoints
  (deferred, notification). It holds secrets: its ``repr`` hides them and it is never
  serialized by this library.

Reprs never show raw credentials, claim values, tokens, transaction ids or keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from oid4vci.jose import Signer, jwk_thumbprint
from oid4vci.status import StatusReference
from oid4vci.versions import SpecVersion

from .encryption import EncryptionPlan
from .states import FlowState

__all__ = [
    "DeferredTransaction",
    "FlowKind",
    "IssuanceResult",
    "IssuerSession",
    "NonceMemory",
    "ReceivedCredential",
]

FlowKind = Literal["pre-authorized_code", "authorization_code"]


class NonceMemory:
    """The newest ``DPoP-Nonce`` seen per server origin (mutable, shared by one flow)."""

    def __init__(self, initial: Mapping[str, str] | None = None) -> None:
        self._nonces: dict[str, str] = dict(initial or {})

    def get(self, origin: str) -> str | None:
        """The latest nonce of ``origin``."""
        return self._nonces.get(origin)

    def set(self, origin: str, nonce: str) -> None:
        """Remember ``nonce`` as the latest of ``origin``."""
        self._nonces[origin] = nonce

    def to_dict(self) -> dict[str, str]:
        """A copy of the memory (secrets: persist only with care)."""
        return dict(self._nonces)

    def __repr__(self) -> str:
        return f"NonceMemory(origins={sorted(self._nonces)!r})"


@attrs.frozen(kw_only=True, repr=False, eq=False)
class IssuerSession:
    """Access to the issuer's protected endpoints after a token was obtained.

    Secret: ``access_token``, ``refresh_token`` and ``dpop_key``. ``repr`` shows only the
    issuer and token type. ``refresh_token`` (with the ``token_endpoint`` it is redeemed at)
    lets the flow replace an expired access token (RFC 6749 §6).
    """

    credential_issuer: str
    spec_version: SpecVersion
    access_token: str
    token_type: str
    dpop_key: Signer | None
    credential_endpoint: str
    nonce_endpoint: str | None = None
    deferred_credential_endpoint: str | None = None
    notification_endpoint: str | None = None
    client_id: str | None = None
    dpop_nonces: NonceMemory = attrs.field(factory=NonceMemory)
    grant: FlowKind | None = None
    #: What is encrypted at the credential and deferred endpoints (OID4VCI 1.0 §10); ``None``:
    #: nothing (a session resumed from a saved flow polls in the clear).
    encryption: EncryptionPlan | None = None
    refresh_token: str | None = None
    token_endpoint: str | None = None
    #: How the grant authenticated at the token endpoint (``attest_jwt_client_auth``: with a
    #: wallet attestation, which a refresh must carry again) and the authorization server's
    #: issuer identifier (the attestation PoP's ``aud``); kept so that a flow without the AS
    #: metadata (deferred polling, notifications, a resumed flow) refreshes the same way.
    token_endpoint_auth_method: str | None = None
    authorization_server: str | None = None

    @property
    def uses_dpop(self) -> bool:
        """True when the token is DPoP-bound (``token_type`` ``DPoP``, any case)."""
        return self.token_type.lower() == "dpop" and self.dpop_key is not None

    def __repr__(self) -> str:
        return (
            f"IssuerSession(credential_issuer={self.credential_issuer!r}, "
            f"token_type={self.token_type!r})"
        )


@attrs.frozen(kw_only=True, repr=False, eq=False)
class ReceivedCredential:
    """One credential received from an issuer.

    ``credential`` is the raw credential (SD-JWT VC: the compact string ending with ``~``;
    ``jwt_vc_json``: the JWT; ``mso_mdoc``: the base64url ``IssuerSigned`` as received);
    ``format`` the configuration's format; ``vct`` the SD-JWT VC type (``None`` otherwise),
    ``types`` the ``jwt_vc_json`` ``vc.type``, ``doctype`` the mdoc's ``docType`` (``None``
    for other formats); ``claims`` the decoded claims (SD-JWT VC: disclosures applied;
    ``jwt_vc_json``: ``credentialSubject`` without ``id``; ``mso_mdoc``: ``{namespace:
    {element: value}}``, full-date as :class:`datetime.date`, tdate as
    :class:`datetime.datetime`, bytes as :class:`bytes`; a flow restored from JSON holds
    them as :func:`oid4vci.mdoc.mdoc_claims_to_json` writes them); ``holder_key`` the key it is bound
    to (keep it: presentations are signed with it); ``verified`` is True when the issuer
    signature and every check in :mod:`oid4vci.wallet.verify` passed.

    ``status_reference`` is the credential's Token Status List entry (``None`` without one)
    and ``status`` what the list says about it (draft-ietf-oauth-status-list-20 §7):
    ``"valid"``, ``"invalid"`` (revoked), ``"suspended"``, another value as its number, or
    ``None`` when there is no reference, when ``WalletPolicy.status`` is ``"off"``, or when
    the list could not be fetched under ``"check"`` (then ``status_reference`` is set).
    """

    credential: Any
    format: str
    vct: str | None
    claims: dict[str, Any]
    holder_key: Signer | None
    verified: bool
    notification_id: str | None
    configuration_id: str
    issuer: str
    session: IssuerSession | None = None
    types: tuple[str, ...] | None = None
    status: Literal["valid", "invalid", "suspended"] | int | None = None
    status_reference: StatusReference | None = None
    doctype: str | None = None
    #: SD-JWT VC and ``jwt_vc_json``: True when the issuer key came from an ``x5c`` chain
    #: validated to one of ``WalletPolicy.trusted_x5c_roots`` (draft-ietf-oauth-sd-jwt-vc-13
    #: §3.5; HAIP 1.0 §6.1.1); False when it came from JWT VC Issuer Metadata. Always False
    #: for an mdoc, whose ``x5chain`` is always validated, to the IACA roots
    #: (``WalletPolicy.trust_anchors``), or the mdoc refused.
    x5c_verified: bool = False

    @property
    def holder_jkt(self) -> str | None:
        """RFC 7638 thumbprint of the holder key the credential is bound to (``cnf.jwk``)."""
        return None if self.holder_key is None else jwk_thumbprint(self.holder_key.public_jwk)

    def __repr__(self) -> str:
        return (
            f"ReceivedCredential(configuration_id={self.configuration_id!r}, "
            f"format={self.format!r}, vct={self.vct!r}, verified={self.verified}, "
            f"x5c_verified={self.x5c_verified}, "
            f"status={self.status!r})"
        )


@attrs.frozen(kw_only=True, repr=False, eq=False)
class DeferredTransaction:
    """A credential request the issuer answered with a ``transaction_id`` (deferred issuance).

    ``holder_keys`` are the keys the eventual credentials are bound to; ``interval`` the
    polling interval the issuer asked for (seconds); ``due_at`` the time (of the flow's clock)
    before which it is not polled (OID4VCI 1.0 §9.2: the wallet waits ``interval`` after each
    answer); ``expected_vct`` / ``expected_types`` / ``expected_doctype`` what the credentials
    are checked against (SD-JWT VC / ``jwt_vc_json`` / ``mso_mdoc``).
    """

    transaction_id: str
    configuration_id: str
    holder_keys: tuple[Signer, ...]
    interval: float
    session: IssuerSession
    expected_vct: str | None = None
    format: str = ""
    expected_types: tuple[str, ...] | None = None
    due_at: float = 0.0
    expected_doctype: str | None = None

    def __repr__(self) -> str:
        return (
            f"DeferredTransaction(configuration_id={self.configuration_id!r}, "
            f"interval={self.interval})"
        )


@attrs.frozen(kw_only=True, repr=False, eq=False)
class IssuanceResult:
    """Everything one issuance flow produced."""

    credentials: tuple[ReceivedCredential, ...]
    deferred: tuple[DeferredTransaction, ...]
    spec_version: SpecVersion
    flow: FlowKind
    state: FlowState
    credential_issuer: str
    session: IssuerSession | None = None

    @property
    def notification_ids(self) -> tuple[str, ...]:
        """The distinct ``notification_id`` values of the received credentials."""
        seen: dict[str, None] = {}
        for cred in self.credentials:
            if cred.notification_id is not None:
                seen[cred.notification_id] = None
        return tuple(seen)

    def __repr__(self) -> str:
        return (
            f"IssuanceResult(credential_issuer={self.credential_issuer!r}, "
            f"flow={self.flow!r}, spec_version={self.spec_version.value!r}, "
            f"credentials={len(self.credentials)}, deferred={len(self.deferred)}, "
            f"state={self.state.value!r})"
        )
