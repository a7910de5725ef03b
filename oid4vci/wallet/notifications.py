"""The notifications the wallet sends an issuer (OID4VCI 1.0 §11): what became of the
credentials it received (``credential_accepted``, ``credential_failure``,
``credential_deleted``), one notification per distinct ``notification_id``, each sent with the
issuer session its credentials came with.

:func:`notifications_for` checks the event and says what to send; the request is built by
:func:`~oid4vci.wallet.steps.build_notification_request` in the flow's ``NOTIFYING`` state.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from oid4vci.errors import ArgumentTypeError, StateError, UsageError
from oid4vci.models.notification import NOTIFICATION_EVENTS

from .results import IssuerSession, ReceivedCredential

__all__ = ["PendingNotification", "notifications_for"]


@attrs.frozen(kw_only=True)
class PendingNotification:
    """One notification to send (replaced with another ``session`` when its access token is
    refreshed)."""

    notification_id: str
    event: str
    description: str | None
    session: IssuerSession


def notifications_for(
    credentials: Sequence[ReceivedCredential], event: str, description: str | None
) -> list[PendingNotification]:
    """The notifications of ``event`` for ``credentials``: one per distinct
    ``notification_id``, in order. :class:`UsageError` for an unknown event,
    :class:`StateError` when there is nothing to notify or a credential carries no session."""
    if event not in NOTIFICATION_EVENTS:
        raise UsageError("unknown notification event")
    if description is not None and not isinstance(description, str):
        raise ArgumentTypeError("description must be a string")
    seen: set[str] = set()
    queued: list[PendingNotification] = []
    for cred in credentials:
        nid = cred.notification_id
        if nid is None or nid in seen:
            continue
        if cred.session is None:
            raise StateError("the credential carries no issuer session")
        seen.add(nid)
        queued.append(
            PendingNotification(
                notification_id=nid, event=event, description=description, session=cred.session
            )
        )
    if not queued:
        raise StateError("nothing to notify: no notification_id was issued")
    return queued
