"""The Notification Endpoint (OID4VCI 1.0 §11, Draft 13+): the wallet reports what became of
credentials.

Every credential (or deferred credential) response carries a ``notification_id``;
:func:`create_notification_id` stores it under ``notification:<id>`` (a
:class:`NotificationRecord`) together with the grant it belongs to.

Stages, composed by :func:`handle_notification` (``POST`` JSON ``{"notification_id", "event",
"event_description"?}`` with an access token of the same grant): the access token
(:func:`~oid4vci.issuer.access_token.verify_access_token`) → :func:`parse_notification_request`
(OID4VCI 1.0 §11.1) → :func:`verify_notification_request` (the id belongs to the token's grant) →
:func:`create_notification_response` (204, OID4VCI 1.0 §11.2). The request is idempotent: repeating
an event changes nothing and calls the ``on_notification`` hook only when the event differs from the
last one recorded.

Errors (OID4VCI 1.0 §11.3): 400 ``invalid_notification_id`` (unknown, expired or another grant's
id), 400 ``invalid_notification_request`` (not JSON, missing members, unknown event, bad
description); token problems 401 with a ``WWW-Authenticate`` challenge.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable

import attrs

from oid4vci._wire import record_from_json, record_to_json, store_record
from oid4vci.errors import (
    CredentialRequestError,
    ErrorCode,
    ProtocolError,
    StoreError,
    WireFormatError,
)
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer import store_keys
from oid4vci.issuer._request_body import parse_json_body, require_post
from oid4vci.issuer.access_token import TokenContext, verify_access_token
from oid4vci.issuer.config import IssuerConfig
from oid4vci.issuer.flood_limits import refused
from oid4vci.issuer.responses import (
    create_error_response,
    with_allow,
)
from oid4vci.jose import b64url_encode
from oid4vci.models.notification import NotificationRequest, parse_notification_request_json

__all__ = [
    "Notification",
    "NotificationHook",
    "NotificationRecord",
    "create_notification_id",
    "create_notification_response",
    "handle_notification",
    "parse_notification_request",
    "verify_notification_request",
]


@attrs.frozen(kw_only=True)
class Notification:
    """A wallet's report about the credentials of one response, as given to the hook."""

    notification_id: str
    event: str
    event_description: str | None
    subject: str
    configuration_id: str
    credential_count: int


NotificationHook = Callable[[Notification], Awaitable[None]]
"""``async def on_notification(notification) -> None``."""


@store_record
@attrs.frozen(kw_only=True)
class NotificationRecord:
    """What the store keeps under ``notification:<id>``: the grant, the last event and how
    many times the event changed (``changes``: the number the next change claims)."""

    grant_id: str
    subject: str
    configuration_id: str
    count: int
    event: str | None = None
    changes: int = 0


async def create_notification_id(
    context: TokenContext,
    config: IssuerConfig,
    *,
    configuration_id: str,
    credential_count: int,
) -> str:
    """Create the ``notification_id`` of one credential response (valid for the token's life)."""
    # secrets.token_urlsafe(16), without its per-call wrappers: 16 CSPRNG bytes, base64url.
    notification_id = b64url_encode(secrets.token_bytes(16))
    record = NotificationRecord(
        grant_id=context.grant_id,
        subject=context.subject,
        configuration_id=configuration_id,
        count=credential_count,
    )
    await config.store.put(
        store_keys.notification_key(notification_id),
        record_to_json(record),
        store_keys.NOTIFICATION.ttl(config),
    )
    return notification_id


def _error(code: str, description: str, *, status: int | None = None) -> CredentialRequestError:
    return CredentialRequestError(code, description, status=status)


def parse_notification_request(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> NotificationRequest:
    """Parse a Notification Request (OID4VCI 1.0 §11.1): POST, JSON body.

    Raises :class:`CredentialRequestError` (``invalid_notification_request``; 405, 413).
    """
    req = HttpRequest.coerce(request)
    require_post(req, config, error_cls=CredentialRequestError)
    data = parse_json_body(
        req,
        error_cls=CredentialRequestError,
        error_code=ErrorCode.INVALID_NOTIFICATION_REQUEST,
        media_status=None,
    )
    try:
        return parse_notification_request_json(data)
    except WireFormatError as exc:
        raise _error(ErrorCode.INVALID_NOTIFICATION_REQUEST, str(exc)) from None


async def verify_notification_request(
    parsed: NotificationRequest, config: IssuerConfig, context: TokenContext
) -> NotificationRecord:
    """Check the ``notification_id`` belongs to the token's grant (OID4VCI 1.0 §11.3)."""
    raw = await config.store.get(store_keys.notification_key(parsed.notification_id))
    record = record_from_json(raw, NotificationRecord)
    if record is None or record.grant_id != context.grant_id:
        raise _error(ErrorCode.INVALID_NOTIFICATION_ID, "unknown notification_id")
    return record


async def create_notification_response(
    parsed: NotificationRequest,
    config: IssuerConfig,
    record: NotificationRecord,
    *,
    on_notification: NotificationHook | None = None,
) -> HttpResponse:
    """Record the event (calling the hook when it is new) and answer 204 (OID4VCI 1.0 §11.2).

    A change of event is claimed first (``notification_change:<id>#<n>``, ``add_if_absent``):
    of two identical notifications sent at once, one records it and calls the hook, the other
    finds it claimed and changes nothing."""
    if record.event != parsed.event and await config.store.add_if_absent(
        store_keys.notification_change_key(parsed.notification_id, record.changes),
        True,
        store_keys.NOTIFICATION_CHANGE.ttl(config),
    ):
        await config.store.put(
            store_keys.notification_key(parsed.notification_id),
            record_to_json(attrs.evolve(record, event=parsed.event, changes=record.changes + 1)),
            store_keys.NOTIFICATION.ttl(config),
        )
        if on_notification is not None:
            await on_notification(
                Notification(
                    notification_id=parsed.notification_id,
                    event=parsed.event,
                    event_description=parsed.event_description,
                    subject=record.subject,
                    configuration_id=record.configuration_id,
                    credential_count=record.count,
                )
            )
    return HttpResponse(status=204, headers={"Cache-Control": "no-store"})


async def handle_notification(
    request: HttpRequest | RequestDict,
    config: IssuerConfig,
    *,
    on_notification: NotificationHook | None = None,
) -> HttpResponse:
    """The Notification Endpoint (see the module docstring). Answers errors, never raises."""
    try:
        req = HttpRequest.coerce(request)
        require_post(req, config, error_cls=CredentialRequestError)
        context = await verify_access_token(req, config, htu=config.endpoint("notification"))
        parsed = parse_notification_request(req, config)
        record = await verify_notification_request(parsed, config, context)
        return await create_notification_response(
            parsed, config, record, on_notification=on_notification
        )
    except ProtocolError as err:
        return with_allow(create_error_response(err), ("POST",))
    except StoreError as exc:
        return refused(exc, config, "notification")
