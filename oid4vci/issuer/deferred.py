"""The Deferred Credential Endpoint (OID4VCI §9): issuance that completes later.

When the :class:`~oid4vci.issuer.config.ClaimsSource` raises
:class:`~oid4vci.issuer.config.DeferIssuance`, the credential endpoint stores a transaction
(``deferred:<transaction_id>``: the grant, subject, configuration, the verified holder keys and
the request's version) and answers ``202`` with the ``transaction_id``.

How a deferred issuance completes — both ways work:

* **the claims source is asked again at every poll**: when it returns claims, the credentials
  are minted and delivered; when it raises :class:`DeferIssuance` again, the wallet is told to
  keep waiting; when it raises ``credential_request_denied`` the transaction ends;
* **the application pushes the result** with :func:`complete_deferred` (mints the credentials
  now, delivered at the next poll) or :func:`deny_deferred`.

:func:`handle_deferred_credential` takes ``POST {"transaction_id"}`` with an access token of the
same grant. Still pending: 1.0 → ``202 {"transaction_id", "interval"}``; Draft 13–15 → 400
``issuance_pending`` with ``interval``. Ready → ``200`` with the credentials in the original
request's version shape (and a ``notification_id``); the transaction is then gone. Unknown,
used or another grant's ``transaction_id`` → 400 ``invalid_transaction_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oid4vci.errors import CredentialRequestError, ErrorCode, WireFormatError
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer._request_body import read_json_body, require_post
from oid4vci.issuer.access_token import (
    TokenContext,
    authenticate_resource_request,
)
from oid4vci.issuer.config import DeferIssuance, IssuerConfig
from oid4vci.issuer.credential import (
    DEFERRED_PREFIX,
    DEFERRED_TTL,
    credential_response_body,
    mint_credentials,
)
from oid4vci.issuer.nonce import new_c_nonce
from oid4vci.issuer.notification import register_notification
from oid4vci.issuer.responses import json_response
from oid4vci.models.deferred import parse_deferred_credential_request
from oid4vci.versions import SpecVersion

__all__ = ["complete_deferred", "deny_deferred", "handle_deferred_credential"]


def _error(code: str, description: str, *, status: int | None = None) -> CredentialRequestError:
    return CredentialRequestError(code, description, status=status)


async def _record(config: IssuerConfig, transaction_id: str) -> dict[str, Any]:
    record = await config.store.get(DEFERRED_PREFIX + transaction_id)
    if not isinstance(record, Mapping):
        raise KeyError("unknown deferred transaction")
    return dict(record)


async def complete_deferred(
    config: IssuerConfig, transaction_id: str, claims: Mapping[str, Any]
) -> None:
    """Mint the credentials of a pending transaction now; the wallet gets them at its next poll.

    ``claims`` is what the claims source would have returned (values wrapped with
    :func:`oid4vci.sdjwt.sd` are selectively disclosable). Raises :class:`KeyError` for an
    unknown transaction and :class:`ValueError` when its configuration no longer exists.
    """
    record = await _record(config, transaction_id)
    spec = config.configuration(str(record["configuration_id"]))
    if spec is None:
        raise ValueError("the transaction's credential configuration no longer exists")
    credentials = await mint_credentials(
        config, spec, claims, record["holder_jwks"], SpecVersion(record["version"])
    )
    record["credentials"] = credentials
    await config.store.put(DEFERRED_PREFIX + transaction_id, record, DEFERRED_TTL)


async def deny_deferred(config: IssuerConfig, transaction_id: str) -> None:
    """Give up on a pending transaction: the next poll gets ``credential_request_denied``."""
    record = await _record(config, transaction_id)
    record["denied"] = True
    await config.store.put(DEFERRED_PREFIX + transaction_id, record, DEFERRED_TTL)


def _read_transaction_id(req: HttpRequest) -> str:
    data = read_json_body(
        req, error_cls=CredentialRequestError, error_code=ErrorCode.INVALID_CREDENTIAL_REQUEST
    )
    try:
        return parse_deferred_credential_request(data).transaction_id
    except WireFormatError as exc:
        raise _error(ErrorCode.INVALID_CREDENTIAL_REQUEST, str(exc)) from None


def _pending(version: SpecVersion, transaction_id: str, interval: int) -> HttpResponse:
    if version is SpecVersion.V1:
        return json_response(202, {"transaction_id": transaction_id, "interval": interval})
    raise CredentialRequestError(
        ErrorCode.ISSUANCE_PENDING, "the credential is not ready yet", interval=interval
    )


async def _deliver(
    config: IssuerConfig,
    context: TokenContext,
    record: Mapping[str, Any],
    credentials: list[str],
    version: SpecVersion,
) -> HttpResponse:
    notification_id = await register_notification(
        config,
        context=context,
        configuration_id=str(record["configuration_id"]),
        credential_count=len(credentials),
    )
    draft_nonce = version.c_nonce_in_responses
    body = credential_response_body(
        version,
        credentials=credentials,
        single_proof=bool(record.get("single_proof")),
        notification_id=notification_id,
        c_nonce=await new_c_nonce(config) if draft_nonce else None,
        c_nonce_expires_in=config.c_nonce_ttl if draft_nonce else None,
    )
    return json_response(200, body)


async def handle_deferred_credential(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> HttpResponse:
    """The Deferred Credential Endpoint (see the module docstring). Raises ``ProtocolError``."""
    req = HttpRequest.coerce(request)
    require_post(
        req,
        config,
        error_cls=CredentialRequestError,
        error_code=ErrorCode.INVALID_CREDENTIAL_REQUEST,
    )
    context = await authenticate_resource_request(
        req, config, expected_htu=config.endpoint("deferred_credential")
    )
    transaction_id = _read_transaction_id(req)
    key = DEFERRED_PREFIX + transaction_id
    record = await config.store.get(key)
    if not isinstance(record, Mapping) or record.get("grant_id") != context.grant_id:
        raise _error(ErrorCode.INVALID_TRANSACTION_ID, "unknown or used transaction_id")
    version = SpecVersion(record["version"])
    spec = config.configuration(str(record["configuration_id"]))
    if record.get("denied") or spec is None:
        await config.store.delete(key)
        raise _error(ErrorCode.CREDENTIAL_REQUEST_DENIED, "the issuer will not issue it")
    credentials = record.get("credentials")
    if not isinstance(credentials, list):
        try:
            claims = await config.claims_source(context.subject, spec.id)
        except DeferIssuance as deferred:
            return _pending(version, transaction_id, deferred.interval)
        except CredentialRequestError:
            await config.store.delete(key)
            raise
        credentials = await mint_credentials(config, spec, claims, record["holder_jwks"], version)
    if await config.store.take(key) is None:
        # Another poll delivered it first.
        raise _error(ErrorCode.INVALID_TRANSACTION_ID, "unknown or used transaction_id")
    return await _deliver(config, context, record, [str(c) for c in credentials], version)
