"""Notification endpoint request (Draft 13+)."""

from __future__ import annotations

import re
from typing import Any, Literal

import attrs

from oid4vci._wire import field_check, structure, unstructure, wire_model

__all__ = [
    "NOTIFICATION_EVENTS",
    "NotificationEvent",
    "NotificationRequest",
    "notification_request_to_json",
    "parse_notification_request_json",
]

NotificationEvent = Literal["credential_accepted", "credential_failure", "credential_deleted"]
#: The ``event`` values OID4VCI 1.0 §11.1 defines.
NOTIFICATION_EVENTS: tuple[str, ...] = (
    "credential_accepted",
    "credential_failure",
    "credential_deleted",
)

# %x20-21 / %x23-5B / %x5D-7E: printable ASCII without '"' and '\'.
_DESCRIPTION = re.compile(r"[\x20-\x21\x23-\x5b\x5d-\x7e]*")


@wire_model()
@attrs.frozen(kw_only=True)
class NotificationRequest:
    """``{"notification_id", "event", "event_description"?}``."""

    notification_id: str
    event: NotificationEvent
    event_description: str | None = attrs.field(
        default=None,
        validator=field_check(
            lambda v: _DESCRIPTION.fullmatch(v) is not None,
            "must be printable ASCII without '\"' and '\\\\'",
        ),
    )
    extra: dict[str, Any] = attrs.field(factory=dict)


def parse_notification_request_json(data: Any) -> NotificationRequest:
    """Read a notification request body; raises :class:`~oid4vci.errors.WireFormatError`."""
    return structure(data, NotificationRequest)


def notification_request_to_json(req: NotificationRequest) -> dict[str, Any]:
    """The notification request as a JSON-ready dict."""
    out: dict[str, Any] = unstructure(req)
    return out
