"""Credentials an issuer sent and the flow has not verified yet, and their verification.

A credential response (OID4VCI 1.0 §8.3) or deferred credential response (§9.2), as read by
:mod:`oid4vci.wallet.steps`, becomes :class:`UnverifiedCredentials`
(:func:`unverified_credentials`): its credentials with their ``notification_id`` and what they
are checked against (the request's configuration and holder keys). :func:`verify_received`
verifies each with :func:`~oid4vci.wallet.verify.verify_credential` into a
:class:`~oid4vci.wallet.results.ReceivedCredential`.

Sans-IO: the issuer keys are those the flow has fetched so far (:class:`LoadedIssuerKeys`); a
miss raises :class:`IssuerKeysNeeded`, the flow fetches them (``FETCHING_ISSUER_KEYS`` in
:mod:`oid4vci.wallet.states`) and verifies the credentials again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from oid4vci.jose import Signer
from oid4vci.models import CredentialResponse

from .policy import WalletPolicy
from .results import IssuerSession, ReceivedCredential
from .verify import verify_credential

__all__ = [
    "IssuerKeysNeeded",
    "LoadedIssuerKeys",
    "UnverifiedCredentials",
    "unverified_credentials",
    "verify_received",
]


class IssuerKeysNeeded(Exception):
    """Raised inside verification when an issuer's keys are not loaded yet (the flow catches
    it: it never escapes the flow)."""

    def __init__(self, iss: str) -> None:
        super().__init__("issuer keys needed")
        self.iss = iss


class LoadedIssuerKeys:
    """The flow's issuer keys: what was fetched so far; a miss is a fetch step, not I/O."""

    def __init__(self, keys: dict[str, list[dict[str, Any]]]) -> None:
        self.keys = keys

    async def keys_for(self, iss: str) -> list[dict[str, Any]]:
        """The keys of ``iss``; :class:`IssuerKeysNeeded` when they were not fetched yet."""
        found = self.keys.get(iss)
        if found is None:
            raise IssuerKeysNeeded(iss)
        return found


@attrs.frozen(kw_only=True)
class UnverifiedCredentials:
    """Credentials received and not verified yet, with what they are checked against."""

    credentials: tuple[Any, ...]
    notification_id: str | None
    configuration_id: str
    keys: tuple[Signer, ...]
    format: str
    expected_vct: str | None
    expected_types: tuple[str, ...] | None
    session: IssuerSession
    notification_ids: tuple[str | None, ...] = ()
    expected_doctype: str | None = None


def unverified_credentials(
    response: CredentialResponse,
    *,
    configuration_id: str,
    keys: tuple[Signer, ...],
    format: str,
    expected_vct: str | None,
    expected_types: tuple[str, ...] | None,
    session: IssuerSession,
    expected_doctype: str | None = None,
) -> UnverifiedCredentials:
    """The credentials of ``response`` with their ``notification_id`` (the response's, or
    one inside a Draft 15 / 1.0 credential object)."""
    credentials = response.credentials or ()
    ids: list[str | None] = []
    for issued in credentials:
        nid = response.notification_id
        extra_id = issued.extra.get("notification_id")
        if nid is None and isinstance(extra_id, str):
            nid = extra_id
        ids.append(nid)
    return UnverifiedCredentials(
        credentials=tuple(c.credential for c in credentials),
        notification_id=response.notification_id,
        configuration_id=configuration_id,
        keys=keys,
        format=format,
        expected_vct=expected_vct,
        expected_types=expected_types,
        expected_doctype=expected_doctype,
        session=session,
        notification_ids=tuple(ids),
    )


async def verify_received(
    unverified: UnverifiedCredentials,
    *,
    issuer_keys: dict[str, list[dict[str, Any]]],
    policy: WalletPolicy,
    clock: Callable[[], float],
) -> tuple[list[ReceivedCredential], list[dict[str, Any] | None]]:
    """The credentials of ``unverified``, verified (each holder key bound at most once), and
    the MSO ``status`` of each (``None`` but for mdocs), in order.

    Raises :class:`IssuerKeysNeeded` when ``issuer_keys`` lacks the issuer's keys, else the
    :class:`~oid4vci.errors.CredentialVerificationError` of the first credential refused.
    """
    session = unverified.session
    used: set[str] = set()
    out: list[ReceivedCredential] = []
    mdoc_statuses: list[dict[str, Any] | None] = []
    for credential, notification_id in zip(
        unverified.credentials, unverified.notification_ids, strict=True
    ):
        outcome = await verify_credential(
            credential,
            format=unverified.format,
            credential_issuer=session.credential_issuer,
            expected_vct=unverified.expected_vct,
            holder_keys=unverified.keys,
            used_keys=used,
            resolver=LoadedIssuerKeys(issuer_keys),
            policy=policy,
            clock=clock,
            expected_types=unverified.expected_types,
            expected_doctype=unverified.expected_doctype,
        )
        out.append(
            ReceivedCredential(
                credential=credential,
                format=unverified.format,
                vct=outcome.vct,
                claims=outcome.claims,
                holder_key=outcome.holder_key,
                verified=outcome.verified,
                notification_id=notification_id,
                configuration_id=unverified.configuration_id,
                issuer=session.credential_issuer,
                session=session,
                types=outcome.types,
                doctype=outcome.doctype,
                x5c_verified=outcome.x5c_verified,
            )
        )
        mdoc_statuses.append(outcome.mdoc_status)
    return out, mdoc_statuses
