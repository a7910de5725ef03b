"""The Notification Endpoint (OID4VCI §11, Draft 13+): the wallet reports what became of credentials.

Every credential (or deferred credential) response carries a ``notification_id``;
:func:`register_notification` stores it under ``notification:<id>`` together with the grant it
belongs to. :func:`handle_notification` takes ``POST`` JSON
``{"notification_id", "event", "event_description"?}`` with an access token of the same grant
and answers ``204``. The request is idempotent: repeating an event changes nothing and calls the
``on_notification`` hook only when the event differs from the last one recorded.

Errors: 400 ``invalid_notification_id`` (unknown, expired or another grant's id), 400
``invalid_notification_request`` (not JSON, missing members, unknown event, bad description);
token problems 401 with a ``WWW-Authenticate`` challenge.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping

import attrs

from oid4vci.errors import CredentialRequestError, ErrorCode, WireFormatError
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer._request_body import read_json_body, require_post
from oid4vci.issuer.access_token import TokenContext, authenticate_resource_request
from oid4vci.issuer.config import IssuerConfig
from oid4vci.models.notification import NotificationRequest, parse_notification_request

__all__ = [
    "Notification",
    "NotificationHook",
    "handle_notification",
    "parse_notification",
    "register_notification",
]

_PREFIX = "notification:"


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


async def register_notification(
    config: IssuerConfig,
    *,
    context: TokenContext,
    configuration_id: str,
    credential_count: int,
) -> str:
    """Create the ``notification_id`` of one credential response (valid for the token's life)."""
    notification_id = secrets.token_urlsafe(16)
    record = {
        "grant_id": context.grant_id,
        "subject": context.subject,
        "configuration_id": configuration_id,
        "count": credential_count,
        "event": None,
    }
    await config.store.put(_PREFIX + notification_id, record, max(config.access_token_ttl, 3600))
    return notification_id


def _error(code: str, description: str, *, status: int | None = None) -> CredentialRequestError:
    return CredentialRequestError(code, description, status=status)


def parse_notification(request: HttpRequest | RequestDict) -> NotificationRequest:
    """Read the body; :class:`CredentialRequestError` ``invalid_notification_request``."""
    req = HttpRequest.coerce(request)
    data = read_json_body(
        req,
        error_cls=CredentialRequestError,
        error_code=ErrorCode.INVALID_NOTIFICATION_REQUEST,
        media_status=None,
    )
    try:
        return parse_notification_request(data)
    except WireFormatError as exc:
        raise _error(ErrorCode.INVALID_NOTIFICATION_REQUEST, str(exc)) from None


async def handle_notification(
    request: HttpRequest | RequestDict,
    config: IssuerConfig,
    *,
    on_notification: NotificationHook | None = None,
) -> HttpResponse:
    """Answer a Notification Endpoint request (204). Raises :class:`CredentialRequestError`."""
    req = HttpRequest.coerce(request)
    require_post(req, config, error_cls=CredentialRequestError)
    context = await authenticate_resource_request(
        req, config, expected_htu=config.endpoint("notification")
    )
    parsed = parse_notification(req)
    key = _PREFIX + parsed.notification_id
    record = await config.store.get(key)
    if not isinstance(record, Mapping) or record.get("grant_id") != context.grant_id:
        raise _error(ErrorCode.INVALID_NOTIFICATION_ID, "unknown notification_id")
    previous = record.get("event")
    if previous != parsed.event:
        await config.store.put(
            key, {**record, "event": parsed.event}, max(config.access_token_ttl, 3600)
        )
        if on_notification is not None:
            await on_notification(
                Notification(
                    notification_id=parsed.notification_id,
                    event=parsed.event,
                    event_description=parsed.event_description,
                    subject=str(record.get("subject")),
                    configuration_id=str(record.get("configuration_id")),
                    credential_count=int(record.get("count") or 0),
                )
            )
    return HttpResponse(status=204, headers={"Cache-Control": "no-store"})
