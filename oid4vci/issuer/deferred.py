"""The Deferred Credential Endpoint (OID4VCI 1.0 §9): issuance that completes later.

When the :class:`~oid4vci.issuer.config.ClaimsSource` raises
:class:`~oid4vci.issuer.config.DeferIssuance`, the credential endpoint stores a transaction
(``deferred:<transaction_id>``, a :class:`~oid4vci.issuer.credential.DeferredRecord`: the
grant, subject, configuration, the verified holder keys and the request's version) and answers
``202`` with the ``transaction_id``.

How a deferred issuance completes — both ways work:

* **the claims source is asked again at every poll**: when it returns claims, the credentials
  are created and delivered; when it raises :class:`DeferIssuance` again, the wallet is told
  to keep waiting; when it raises ``credential_request_denied`` the transaction ends;
* **the application pushes the result** with :func:`complete_deferred` (creates the
  credentials now, delivered at the next poll) or :func:`deny_deferred`.

Stages, composed by :func:`handle_deferred_credential` (``POST {"transaction_id"}`` with an
access token of the same grant): :func:`parse_deferred_credential_request` (OID4VCI 1.0 §9.1) →
:func:`verify_deferred_credential_request` (the transaction belongs to the token's grant) →
:func:`create_deferred_credential_response` (OID4VCI 1.0 §9.2). Still pending: 1.0 → ``202
{"transaction_id", "interval"}``; Draft 13–15 → 400 ``issuance_pending`` with ``interval``
(Draft 13 §9.3, Draft 14 §8.3, Draft 15 §9.3).
An ``application/jwt`` request is decrypted first and a ``credential_response_encryption`` in
it (OID4VCI 1.0 §9.1, possibly a new key) encrypts the 200/202 answer
(:mod:`oid4vci.issuer.encryption`).
Ready → ``200`` with the credentials in the original request's version shape (and a
``notification_id``); the transaction is then gone. Unknown, used or another grant's
``transaction_id`` → 400 ``invalid_transaction_id`` (OID4VCI 1.0 §9.3).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import attrs

from oid4vci._wire import record_from_json, record_to_json
from oid4vci.errors import (
    CredentialRequestError,
    ErrorCode,
    ProtocolError,
    StoreError,
    UnknownTransactionError,
    UsageError,
    WireFormatError,
)
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer import store_keys
from oid4vci.issuer._request_body import parse_json_body, require_post
from oid4vci.issuer.access_token import TokenContext, verify_access_token
from oid4vci.issuer.config import CredentialConfigurationSpec, DeferIssuance, IssuerConfig
from oid4vci.issuer.credential import (
    DeferredRecord,
    create_credentials,
    create_issued_response,
    denied_error_code,
)
from oid4vci.issuer.encryption import decrypt_request, encrypt_response, response_encryption
from oid4vci.issuer.flood_limits import refused
from oid4vci.issuer.responses import (
    create_error_response,
    json_response,
    with_allow,
)
from oid4vci.models.deferred import (
    DeferredCredentialRequest,
    parse_deferred_credential_request_json,
)
from oid4vci.versions import SpecVersion

__all__ = [
    "VerifiedDeferredRequest",
    "complete_deferred",
    "create_deferred_credential_response",
    "deny_deferred",
    "handle_deferred_credential",
    "parse_deferred_credential_request",
    "verify_deferred_credential_request",
]


@attrs.frozen(kw_only=True)
class VerifiedDeferredRequest:
    """A verified deferred credential request: its transaction and the access token."""

    transaction_id: str = attrs.field(repr=False)
    record: DeferredRecord = attrs.field(repr=False)
    context: TokenContext


def _error(code: str, description: str, *, status: int | None = None) -> CredentialRequestError:
    return CredentialRequestError(code, description, status=status)


async def _record(transaction_id: str, config: IssuerConfig) -> DeferredRecord:
    raw = await config.store.get(store_keys.deferred_key(transaction_id))
    record = record_from_json(raw, DeferredRecord)
    if record is None:
        raise UnknownTransactionError(
            "unknown deferred transaction: it expired, was delivered or never existed"
        )
    return record


async def _save(transaction_id: str, record: DeferredRecord, config: IssuerConfig) -> None:
    await config.store.put(
        store_keys.deferred_key(transaction_id),
        record_to_json(record),
        store_keys.DEFERRED.ttl(config),
    )


async def _create_credentials(
    record: DeferredRecord,
    spec: CredentialConfigurationSpec,
    config: IssuerConfig,
    claims: Mapping[str, Any],
) -> list[str]:
    """The transaction's credentials: one per holder key its request proved, in its version."""
    return await create_credentials(
        spec,
        config,
        claims=claims,
        holder_jwks=record.holder_jwks,
        version=record.version,
        subject=record.subject,
    )


@contextlib.asynccontextmanager
async def _holding(transaction_id: str, config: IssuerConfig, *, wait: bool) -> AsyncIterator[bool]:
    """Hold the transaction (``deferred_lock:``, ``add_if_absent``) while one poll or one
    completion works on it, so two never mint for it at once and a completion never writes
    back a transaction a poll has just delivered. Yields whether it is held: a poll that
    finds it busy (``wait`` false) answers "still pending"; a completion waits for it (at
    most :data:`~oid4vci.issuer.store_keys.DEFERRED_LOCK_TTL`, after which a dead holder's
    lock has expired)."""
    key = store_keys.deferred_lock_key(transaction_id)
    ttl = store_keys.DEFERRED_LOCK.ttl(config)
    held = await config.store.add_if_absent(key, True, ttl)
    if wait:
        with anyio.move_on_after(ttl + 1):
            while not held:
                await anyio.sleep(_LOCK_POLL)
                held = await config.store.add_if_absent(key, True, ttl)
        if not held:
            raise UsageError("the deferred transaction is busy; try again")
    try:
        yield held
    finally:
        if held:
            with anyio.CancelScope(shield=True):
                await config.store.delete(key)


#: How often :func:`complete_deferred` / :func:`deny_deferred` look again at a held transaction.
_LOCK_POLL = 0.05


async def complete_deferred(
    transaction_id: str, config: IssuerConfig, claims: Mapping[str, Any]
) -> None:
    """Create the credentials of a pending transaction now; the wallet gets them at its next poll.

    ``claims`` is what the claims source would have returned (values wrapped with
    :func:`oid4vci.sdjwt.sd` are selectively disclosable). Raises
    :class:`~oid4vci.errors.UnknownTransactionError` (also a ``KeyError``) for an unknown
    transaction (one delivered meanwhile, too) and :class:`~oid4vci.errors.UsageError` when
    its configuration no longer exists or it was completed or denied before. Waits while a
    poll is delivering it.
    """
    async with _holding(transaction_id, config, wait=True):
        record = await _record(transaction_id, config)
        if record.credentials is not None or record.denied:
            # A second completion (a duplicate event) would mint a second set, and its status
            # list entries, for a transaction that delivers one.
            raise UsageError("the deferred transaction is already completed or denied")
        spec = config.configuration(record.configuration_id)
        if spec is None:
            raise UsageError("the transaction's credential configuration no longer exists")
        credentials = await _create_credentials(record, spec, config, claims)
        await _save(transaction_id, attrs.evolve(record, credentials=tuple(credentials)), config)


async def deny_deferred(transaction_id: str, config: IssuerConfig) -> None:
    """Give up on a pending transaction: the next poll gets ``credential_request_denied``."""
    async with _holding(transaction_id, config, wait=True):
        record = await _record(transaction_id, config)
        await _save(transaction_id, attrs.evolve(record, denied=True), config)


def parse_deferred_credential_request(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> DeferredCredentialRequest:
    """Parse a deferred credential request (OID4VCI 1.0 §9.1): POST, JSON, ``transaction_id``.

    Raises :class:`CredentialRequestError` (``invalid_credential_request``; 405, 413, 415).
    """
    req = HttpRequest.coerce(request)
    require_post(
        req,
        config,
        error_cls=CredentialRequestError,
        error_code=ErrorCode.INVALID_CREDENTIAL_REQUEST,
    )
    data = parse_json_body(
        req, error_cls=CredentialRequestError, error_code=ErrorCode.INVALID_CREDENTIAL_REQUEST
    )
    try:
        return parse_deferred_credential_request_json(data)
    except WireFormatError as exc:
        raise _error(ErrorCode.INVALID_CREDENTIAL_REQUEST, str(exc)) from None


async def verify_deferred_credential_request(
    parsed: DeferredCredentialRequest, config: IssuerConfig, context: TokenContext
) -> VerifiedDeferredRequest:
    """Find the transaction and check it belongs to the token's grant (OID4VCI 1.0 §9.3).

    A denied transaction (or one whose configuration is gone) is deleted and refused with
    ``credential_request_denied`` (``invalid_credential_request`` for Draft 13, which has no
    such code). Raises :class:`CredentialRequestError`.
    """
    key = store_keys.deferred_key(parsed.transaction_id)
    record = record_from_json(await config.store.get(key), DeferredRecord)
    if record is None or record.grant_id != context.grant_id:
        raise _error(ErrorCode.INVALID_TRANSACTION_ID, "unknown or used transaction_id")
    if record.denied or config.configuration(record.configuration_id) is None:
        await config.store.delete(key)
        raise _error(denied_error_code(record.version), "the issuer will not issue it")
    return VerifiedDeferredRequest(
        transaction_id=parsed.transaction_id, record=record, context=context
    )


def _pending(version: SpecVersion, transaction_id: str, interval: int) -> HttpResponse:
    if version is SpecVersion.V1:
        return json_response(202, {"transaction_id": transaction_id, "interval": interval})
    raise CredentialRequestError(
        ErrorCode.ISSUANCE_PENDING, "the credential is not ready yet", interval=interval
    )


async def create_deferred_credential_response(
    verified: VerifiedDeferredRequest, config: IssuerConfig
) -> HttpResponse:
    """The credentials when ready (200, OID4VCI 1.0 §9.2), else "still pending".

    Still pending: 202 (1.0) or :class:`CredentialRequestError` ``issuance_pending`` (drafts).
    """
    context = verified.context
    transaction_id = verified.transaction_id
    async with _holding(transaction_id, config, wait=False) as held:
        if not held:  # another poll (or a completion) is at work on it right now
            return _pending(verified.record.version, transaction_id, verified.record.interval)
        # Read again while held: what was verified may have been delivered or completed since.
        key = store_keys.deferred_key(transaction_id)
        record = record_from_json(await config.store.get(key), DeferredRecord)
        if record is None or record.grant_id != context.grant_id:
            raise _error(ErrorCode.INVALID_TRANSACTION_ID, "unknown or used transaction_id")
        spec = config.configuration(record.configuration_id)
        if record.denied or spec is None:
            await config.store.delete(key)
            raise _error(denied_error_code(record.version), "the issuer will not issue it")
        version = record.version
        credentials: list[str]
        if record.credentials is not None:
            credentials = list(record.credentials)
        else:
            try:
                claims = await config.claims_source(context.subject, spec.id)
            except DeferIssuance as deferred:
                return _pending(version, transaction_id, deferred.interval)
            except CredentialRequestError as refused:
                await config.store.delete(key)
                if refused.error == ErrorCode.CREDENTIAL_REQUEST_DENIED:
                    raise _error(
                        denied_error_code(version), refused.error_description or ""
                    ) from None
                raise
            credentials = await _create_credentials(record, spec, config, claims)
        if await config.store.take(key) is None:  # the hold outlived its lock's TTL
            raise _error(ErrorCode.INVALID_TRANSACTION_ID, "unknown or used transaction_id")
    return await create_issued_response(
        context,
        config,
        version=version,
        configuration_id=record.configuration_id,
        credentials=credentials,
        single_proof=record.single_proof,
    )


async def handle_deferred_credential(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> HttpResponse:
    """The Deferred Credential Endpoint (see the module docstring).

    Answers errors, never raises them (OID4VCI 1.0 §9.3 JSON; 401 with ``WWW-Authenticate``
    for token problems; 503 with ``Retry-After`` for a full store).
    """
    try:
        req = HttpRequest.coerce(request)
        require_post(
            req,
            config,
            error_cls=CredentialRequestError,
            error_code=ErrorCode.INVALID_CREDENTIAL_REQUEST,
        )
        context = await verify_access_token(req, config, htu=config.endpoint("deferred_credential"))
        opened = decrypt_request(req, config)
        parsed = parse_deferred_credential_request(opened.request, config)
        verified = await verify_deferred_credential_request(parsed, config, context)
        version = verified.record.version
        encryption = response_encryption(
            parsed.credential_response_encryption,
            config,
            version=version,
            encrypted_request=opened.encrypted,
            # Draft 13-15 deferred answers are JSON only (Draft 13 §9.2, Draft 14 §8.2, Draft 15 §9.2).
            required=version is SpecVersion.V1,
        )
        return encrypt_response(
            await create_deferred_credential_response(verified, config), encryption
        )
    except ProtocolError as err:
        return with_allow(create_error_response(err), ("POST",))
    except StoreError as exc:
        return refused(exc, config, "deferred")
