"""Saving and resuming an :class:`~oid4vci.wallet.flow.IssuanceFlow`: the JSON text
:meth:`~oid4vci.wallet.flow.IssuanceFlow.to_json` writes and the flow
:meth:`~oid4vci.wallet.flow.IssuanceFlow.from_json` makes of it.

The text is a :class:`~oid4vci.wallet.saved.SavedFlow` (the records and the ``format`` marker
are in :mod:`oid4vci.wallet.saved`). **It is secret**: PKCE verifier, ``state``, tokens, DPoP
and holder private keys, credentials. In-process keys (:class:`~oid4vci.jose.LocalSigner`) are
saved as private JWKs; other keys as ``{"key_reference": ..., "public_jwk": ...}``, named and
found again by the policy's :class:`~oid4vci.wallet.policy.KeyReferences` (the key it returns
must have the saved public key). Nothing read back is trusted: the metadata is read again, the history must be a
chain of rows of the transition table ending in the saved state, and each waiting state must
have what it needs to go on; anything else is a :class:`~oid4vci.errors.UsageError` (saved
metadata whose encryption the policy cannot agree with, a
:class:`~oid4vci.errors.MetadataError`).

The flow hands this module a :class:`FlowSnapshot` (its
``_snapshot``) and gets one back to restore itself from (its ``_restore``): this module never
sees :class:`~oid4vci.wallet.flow.IssuanceFlow` itself, and no module but ``flow`` touches the
flow's private attributes. The flow's ``to_json`` / ``from_json`` are the public API and
delegate here. An attribute the flow must keep across a save is added to :class:`FlowSnapshot`,
to the flow's ``_snapshot`` / ``_restore`` and to :class:`~oid4vci.wallet.saved.SavedFlow`.
"""

from __future__ import annotations

import hmac
import itertools
import json
from typing import Any

import attrs

from oid4vci._wire import structure, unstructure
from oid4vci.errors import JoseError, UsageError, WireFormatError
from oid4vci.jose import LocalSigner, Signer, jwk_thumbprint, public_jwk
from oid4vci.mdoc import mdoc_claims_to_json
from oid4vci.models import (
    AuthorizationServerMetadata,
    CredentialIssuerMetadata,
    CredentialOffer,
    credential_offer_to_json,
    parse_credential_offer_json,
)
from oid4vci.status import StatusReference, status_name
from oid4vci.versions import SpecVersion

from .discovery import read_as_metadata, read_issuer_metadata
from .encryption import EncryptionPlan, plan_encryption
from .policy import KeyReferences, WalletPolicy
from .preflight import check_count, check_max_wait
from .results import DeferredTransaction, FlowKind, IssuerSession, NonceMemory, ReceivedCredential
from .saved import FLOW_FORMAT, SavedCredential, SavedDeferred, SavedFlow, SavedSession
from .states import WAITING_STATES, Event, FlowState, next_state
from .verify import read_jwks

__all__ = ["FlowSnapshot", "dump_flow", "load_flow"]


@attrs.frozen(kw_only=True)
class FlowSnapshot:
    """What an :class:`~oid4vci.wallet.flow.IssuanceFlow` keeps across a save, as live
    objects: the flow's ``_snapshot`` makes one for :func:`dump_flow`, :func:`load_flow` makes
    one (checked) for the flow's ``_restore``. ``issuer_meta``, ``as_meta`` and ``encryption``
    are not saved: :func:`load_flow` derives them from the saved documents and the policy."""

    state: FlowState
    history: tuple[tuple[FlowState, Event], ...]
    grant: FlowKind | None
    credential_issuer: str
    offer: CredentialOffer | None
    configuration_ids: tuple[str, ...]
    count: int
    client_id: str | None
    redirect_uri: str | None
    issuer_doc: dict[str, Any] | None
    issuer_meta: CredentialIssuerMetadata | None
    version: SpecVersion | None
    as_id: str | None
    as_doc: dict[str, Any] | None
    as_meta: AuthorizationServerMetadata | None
    encryption: EncryptionPlan | None
    code_verifier: str | None
    oauth_state: str | None
    authorization_url: str | None
    dpop_key: Signer | None
    nonces: NonceMemory
    c_nonce: str | None
    session: IssuerSession | None
    received: tuple[ReceivedCredential, ...]
    deferred: tuple[DeferredTransaction, ...]
    max_wait: float
    waited: float
    wait_handed: bool
    issuer_keys: dict[str, list[dict[str, Any]]]


def dump_flow(snapshot: FlowSnapshot, key_references: KeyReferences | None) -> str:
    """The JSON text of a flow's ``snapshot`` (its caller, ``to_json``, checks that the
    state may be saved); :class:`UsageError` when the flow holds a key that is neither a
    ``LocalSigner`` nor named by ``key_references``, or several issuer sessions."""
    return json.dumps(unstructure(_save(snapshot, key_references)), separators=(",", ":"))


def load_flow(text: str | bytes, *, policy: WalletPolicy) -> FlowSnapshot:
    """The snapshot of a flow saved by :func:`dump_flow` as ``text``, checked to be one
    the flow can go on from; :class:`UsageError` when ``text`` is not one (or is not one this
    version can resume), :class:`~oid4vci.errors.MetadataError` when its metadata and
    ``policy`` disagree on encryption."""
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise UsageError("not a saved issuance flow (not JSON)") from None
    if not isinstance(data, dict) or data.get("format") != FLOW_FORMAT:
        raise UsageError("not a saved issuance flow")
    try:
        saved = structure(data, SavedFlow)
        issuer = (
            None
            if saved.issuer_metadata is None
            else read_issuer_metadata(saved.issuer_metadata, saved.credential_issuer)
        )
    except (WireFormatError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"the saved issuance flow is malformed ({_short(exc)})") from None
    # Derived from the saved metadata and the (new) policy: a MetadataError here means they
    # disagree (OID4VCI 1.0 §10). Ephemeral keys are never saved.
    encryption = None if issuer is None else plan_encryption(*issuer, policy.encryption)
    try:
        return _load(saved, policy.key_references, encryption=encryption)
    except _KeyNotResumable as exc:
        raise UsageError(str(exc)) from None
    except (WireFormatError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"the saved issuance flow is malformed ({_short(exc)})") from None


def _short(exc: Exception) -> str:
    return type(exc).__name__ if not isinstance(exc, WireFormatError) else str(exc)


#: The member that marks a saved key given by reference (a private JWK never has it).
_KEY_REFERENCE = "key_reference"


def _private(key: Signer | None, refs: KeyReferences | None) -> dict[str, Any] | None:
    """How ``key`` is saved: a :class:`LocalSigner` as its private JWK, any other key as
    ``{"key_reference": ..., "public_jwk": ...}`` named by ``refs``."""
    if key is None:
        return None
    if isinstance(key, LocalSigner):
        return key.private_jwk()
    reference = refs.reference_of(key) if refs is not None else None
    if reference is None:
        raise UsageError(
            "the flow holds a key that is not a LocalSigner; to save it, give the policy "
            "key_references that name it"
        )
    if not isinstance(reference, str) or not reference:
        raise UsageError("key_references.reference_of must return a non-empty string or None")
    return {_KEY_REFERENCE: reference, "public_jwk": dict(key.public_jwk)}


def _signer(data: dict[str, Any] | None, refs: KeyReferences | None) -> Signer | None:
    """The key ``data`` saves (see :func:`_private`): a referenced key must come back from
    ``refs`` with the saved public key (:class:`UsageError` otherwise)."""
    if data is None:
        return None
    if _KEY_REFERENCE not in data:
        return LocalSigner.from_jwk(data)
    if set(data) != {_KEY_REFERENCE, "public_jwk"} or not isinstance(data[_KEY_REFERENCE], str):
        raise WireFormatError("not a key reference", path=_KEY_REFERENCE)
    reference, saved_public = data[_KEY_REFERENCE], data["public_jwk"]
    if refs is None:
        raise _KeyNotResumable(
            "the saved flow names a key by reference; pass a policy with key_references"
        )
    try:
        key = refs.key_for(reference)
    except Exception as exc:  # the application's store: any failure means "no such key"
        raise _KeyNotResumable(
            f"key_references has no key for a reference in the saved flow ({type(exc).__name__})"
        ) from None
    try:
        same = (
            isinstance(key.alg, str)
            and callable(key.sign)
            and hmac.compare_digest(
                jwk_thumbprint(public_jwk(key.public_jwk)),
                jwk_thumbprint(public_jwk(saved_public)),
            )
        )
    except (JoseError, AttributeError, TypeError, ValueError):
        same = False
    if not same:
        raise _KeyNotResumable(
            "key_references returned another key (or no Signer) for the saved flow's key"
        )
    return key


class _KeyNotResumable(Exception):
    """A referenced key cannot be had again: :func:`load_flow` raises it as a
    :class:`UsageError` with its message (not as "malformed")."""


def _no_key() -> Signer:
    raise WireFormatError("a holder key is missing", path="holder_keys")


def _save(snapshot: FlowSnapshot, refs: KeyReferences | None) -> SavedFlow:
    """The records of ``snapshot``."""
    session = snapshot.session
    sessions = {id(c.session) for c in snapshot.received if c.session is not None}
    sessions |= {id(tx.session) for tx in snapshot.deferred}
    if session is not None:
        sessions.discard(id(session))
    if sessions:
        raise UsageError("a flow holding several issuer sessions cannot be saved")
    return SavedFlow(
        state=snapshot.state.value,
        history=tuple(f"{state.value} {event.value}" for state, event in snapshot.history),
        grant=snapshot.grant,
        credential_issuer=snapshot.credential_issuer,
        offer=credential_offer_to_json(snapshot.offer) if snapshot.offer is not None else None,
        configuration_ids=snapshot.configuration_ids,
        count=snapshot.count,
        client_id=snapshot.client_id,
        redirect_uri=snapshot.redirect_uri,
        issuer_metadata=snapshot.issuer_doc,
        spec_version=snapshot.version.value if snapshot.version is not None else None,
        authorization_server=snapshot.as_id,
        authorization_server_metadata=snapshot.as_doc,
        code_verifier=snapshot.code_verifier,
        oauth_state=snapshot.oauth_state,
        authorization_url=snapshot.authorization_url,
        dpop_key=_private(snapshot.dpop_key, refs),
        dpop_nonces=snapshot.nonces.to_dict(),
        c_nonce=snapshot.c_nonce,
        session=(
            SavedSession(
                credential_issuer=session.credential_issuer,
                spec_version=session.spec_version.value,
                access_token=session.access_token,
                token_type=session.token_type,
                dpop_key=_private(session.dpop_key, refs),
                credential_endpoint=session.credential_endpoint,
                nonce_endpoint=session.nonce_endpoint,
                deferred_credential_endpoint=session.deferred_credential_endpoint,
                notification_endpoint=session.notification_endpoint,
                client_id=session.client_id,
                grant=session.grant,
                refresh_token=session.refresh_token,
                token_endpoint=session.token_endpoint,
                token_endpoint_auth_method=session.token_endpoint_auth_method,
                authorization_server=session.authorization_server,
            )
            if session is not None
            else None
        ),
        received=tuple(
            SavedCredential(
                credential=c.credential,
                format=c.format,
                vct=c.vct,
                claims=mdoc_claims_to_json(c.claims) if c.doctype is not None else c.claims,
                holder_key=_private(c.holder_key, refs),
                verified=c.verified,
                notification_id=c.notification_id,
                configuration_id=c.configuration_id,
                types=c.types,
                status_uri=c.status_reference.uri if c.status_reference else None,
                status_idx=c.status_reference.idx if c.status_reference else None,
                status_value=_status_value(c.status),
                doctype=c.doctype,
                x5c_verified=c.x5c_verified,
            )
            for c in snapshot.received
        ),
        deferred=tuple(
            SavedDeferred(
                transaction_id=tx.transaction_id,
                configuration_id=tx.configuration_id,
                holder_keys=tuple(_private(k, refs) or {} for k in tx.holder_keys),
                interval=tx.interval,
                due_at=tx.due_at,
                format=tx.format,
                expected_vct=tx.expected_vct,
                expected_types=tx.expected_types,
                expected_doctype=tx.expected_doctype,
            )
            for tx in snapshot.deferred
        ),
        deferred_max_wait=snapshot.max_wait,
        waited=snapshot.waited,
        wait_handed=snapshot.wait_handed,
        issuer_keys=snapshot.issuer_keys,
    )


def _status_value(status: str | int | None) -> int | None:
    if status is None or isinstance(status, int):
        return status
    return {"valid": 0, "invalid": 1, "suspended": 2}[status]


def _grant(value: str | None) -> FlowKind | None:
    if value is None:
        return None
    if value == "pre-authorized_code":
        return "pre-authorized_code"
    if value == "authorization_code":
        return "authorization_code"
    raise UsageError("grant")


def _load(
    saved: SavedFlow, refs: KeyReferences | None, *, encryption: EncryptionPlan | None
) -> FlowSnapshot:
    """The snapshot ``saved`` records, checked: the history must be a chain of rows of the
    transition table ending in the saved state, which must be a waiting state with what it
    needs to go on."""
    state = FlowState(saved.state)
    if state not in WAITING_STATES:
        raise UsageError("state")
    grant = _grant(saved.grant)
    offer = None if saved.offer is None else parse_credential_offer_json(saved.offer)
    check_count(saved.count)
    issuer_meta: CredentialIssuerMetadata | None = None
    version: SpecVersion | None = None
    if saved.issuer_metadata is not None:
        issuer_meta, version = read_issuer_metadata(saved.issuer_metadata, saved.credential_issuer)
    elif saved.spec_version is not None:
        version = SpecVersion(saved.spec_version)
    as_meta: AuthorizationServerMetadata | None = None
    if saved.authorization_server_metadata is not None:
        if saved.authorization_server is None:
            raise UsageError("authorization_server")
        as_meta = read_as_metadata(saved.authorization_server_metadata, saved.authorization_server)
    dpop_key = _signer(saved.dpop_key, refs)
    nonces = NonceMemory(saved.dpop_nonces)
    session: IssuerSession | None = None
    if saved.session is not None:
        s = saved.session
        session = IssuerSession(
            credential_issuer=s.credential_issuer,
            spec_version=SpecVersion(s.spec_version),
            access_token=s.access_token,
            token_type=s.token_type,
            dpop_key=_signer(s.dpop_key, refs),
            credential_endpoint=s.credential_endpoint,
            nonce_endpoint=s.nonce_endpoint,
            deferred_credential_endpoint=s.deferred_credential_endpoint,
            notification_endpoint=s.notification_endpoint,
            client_id=s.client_id,
            dpop_nonces=nonces,
            grant=_grant(s.grant),
            encryption=encryption,
            refresh_token=s.refresh_token,
            token_endpoint=s.token_endpoint,
            token_endpoint_auth_method=s.token_endpoint_auth_method,
            authorization_server=s.authorization_server,
        )
    received = tuple(
        ReceivedCredential(
            credential=c.credential,
            format=c.format,
            vct=c.vct,
            claims=c.claims,
            holder_key=_signer(c.holder_key, refs),
            verified=c.verified,
            notification_id=c.notification_id,
            configuration_id=c.configuration_id,
            issuer=saved.credential_issuer,
            session=session,
            types=c.types,
            x5c_verified=c.x5c_verified,
            status=None if c.status_value is None else status_name(c.status_value),
            status_reference=(
                StatusReference(idx=c.status_idx, uri=c.status_uri)
                if c.status_uri is not None and c.status_idx is not None
                else None
            ),
            doctype=c.doctype,
        )
        for c in saved.received
    )
    if saved.deferred and session is None:
        raise UsageError("session")
    deferred = tuple(
        DeferredTransaction(
            transaction_id=d.transaction_id,
            configuration_id=d.configuration_id,
            holder_keys=tuple(_signer(k, refs) or _no_key() for k in d.holder_keys),
            interval=d.interval,
            session=session,  # type: ignore[arg-type]  # checked above
            expected_vct=d.expected_vct,
            format=d.format,
            expected_types=d.expected_types,
            expected_doctype=d.expected_doctype,
            due_at=d.due_at,
        )
        for d in saved.deferred
    )
    # What each waiting state needs in order to go on.
    if state is FlowState.AWAITING_AUTHORIZATION:
        needed: tuple[object, ...] = (
            as_meta,
            issuer_meta,
            saved.code_verifier,
            saved.oauth_state,
            saved.authorization_url,
            saved.client_id,
            saved.redirect_uri,
        )
        if grant != "authorization_code":
            raise UsageError("grant")
    elif state in (FlowState.WAITING_FOR_DEFERRED, FlowState.DEFERRED):
        needed = (session, deferred or None)
    else:
        needed = ()
    if any(value is None for value in needed):
        raise UsageError("incomplete")
    history = tuple(_row(text) for text in saved.history)
    if (history and next_state(*history[-1]).target is not state) or any(
        next_state(*a).target is not b[0] for a, b in itertools.pairwise(history)
    ):
        raise UsageError("history")
    return FlowSnapshot(
        state=state,
        history=history,
        grant=grant,
        credential_issuer=saved.credential_issuer,
        offer=offer,
        configuration_ids=saved.configuration_ids,
        count=saved.count,
        client_id=saved.client_id,
        redirect_uri=saved.redirect_uri,
        issuer_doc=saved.issuer_metadata,
        issuer_meta=issuer_meta,
        version=version,
        as_id=saved.authorization_server,
        as_doc=saved.authorization_server_metadata,
        as_meta=as_meta,
        encryption=encryption,
        code_verifier=saved.code_verifier,
        oauth_state=saved.oauth_state,
        authorization_url=saved.authorization_url,
        dpop_key=dpop_key,
        nonces=nonces,
        c_nonce=saved.c_nonce,
        session=session,
        received=received,
        deferred=deferred,
        max_wait=check_max_wait(saved.deferred_max_wait),
        waited=saved.waited,
        wait_handed=saved.wait_handed,
        issuer_keys={k: read_jwks(v) for k, v in saved.issuer_keys.items()},
    )


def _row(text: str) -> tuple[FlowState, Event]:
    state, _, event = text.partition(" ")
    return FlowState(state), Event(event)
