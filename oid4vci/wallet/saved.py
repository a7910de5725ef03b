"""The saved form of an :class:`~oid4vci.wallet.flow.IssuanceFlow` (``to_json`` /
``from_json``): frozen records read and written by the one cattrs converter of
:mod:`oid4vci._wire`. A flow becomes these records, and back, in
:mod:`oid4vci.wallet.flow_saving`.

**Secret**: a saved flow holds the PKCE verifier, the ``state`` value, the DPoP and holder
private keys, the access and refresh tokens and the received credentials.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from oid4vci._wire import wire_model

__all__ = ["FLOW_FORMAT", "SavedCredential", "SavedDeferred", "SavedFlow", "SavedSession"]

#: The ``format`` marker of a saved flow.
FLOW_FORMAT: Final = "oid4vci-issuance-flow/1"


@wire_model()
@attrs.frozen(kw_only=True)
class SavedSession:
    """An :class:`IssuerSession` in a saved flow (secret: the access and refresh tokens, the
    DPoP key)."""

    credential_issuer: str
    spec_version: str
    access_token: str
    token_type: str
    dpop_key: dict[str, Any] | None = None
    credential_endpoint: str
    nonce_endpoint: str | None = None
    deferred_credential_endpoint: str | None = None
    notification_endpoint: str | None = None
    client_id: str | None = None
    grant: str | None = None
    refresh_token: str | None = None
    token_endpoint: str | None = None
    token_endpoint_auth_method: str | None = None
    authorization_server: str | None = None


@wire_model()
@attrs.frozen(kw_only=True)
class SavedCredential:
    """A :class:`ReceivedCredential` in a saved flow (secret: the holder key)."""

    credential: Any
    format: str
    vct: str | None = None
    claims: dict[str, Any]
    holder_key: dict[str, Any] | None = None
    verified: bool
    notification_id: str | None = None
    configuration_id: str
    types: tuple[str, ...] | None = None
    status_uri: str | None = None
    status_idx: int | None = None
    status_value: int | None = None
    doctype: str | None = None
    x5c_verified: bool = False


@wire_model()
@attrs.frozen(kw_only=True)
class SavedDeferred:
    """A :class:`DeferredTransaction` in a saved flow (secret: the holder keys)."""

    transaction_id: str
    configuration_id: str
    holder_keys: tuple[dict[str, Any], ...]
    interval: float
    due_at: float
    format: str
    expected_vct: str | None = None
    expected_types: tuple[str, ...] | None = None
    expected_doctype: str | None = None


@wire_model(always=("format",))
@attrs.frozen(kw_only=True)
class SavedFlow:
    """Everything :meth:`IssuanceFlow.to_json` writes (see the module docstring: secret)."""

    format: str = FLOW_FORMAT
    state: str
    history: tuple[str, ...] = ()
    grant: str | None = None
    credential_issuer: str
    offer: dict[str, Any] | None = None
    configuration_ids: tuple[str, ...] = ()
    count: int = 1
    client_id: str | None = None
    redirect_uri: str | None = None
    issuer_metadata: dict[str, Any] | None = None
    spec_version: str | None = None
    authorization_server: str | None = None
    authorization_server_metadata: dict[str, Any] | None = None
    code_verifier: str | None = None
    oauth_state: str | None = None
    authorization_url: str | None = None
    dpop_key: dict[str, Any] | None = None
    dpop_nonces: dict[str, str] = attrs.field(factory=dict)
    c_nonce: str | None = None
    session: SavedSession | None = None
    received: tuple[SavedCredential, ...] = ()
    deferred: tuple[SavedDeferred, ...] = ()
    deferred_max_wait: float = 0.0
    waited: float = 0.0
    wait_handed: bool = False
    issuer_keys: dict[str, list[dict[str, Any]]] = attrs.field(factory=dict)
