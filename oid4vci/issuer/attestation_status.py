"""The ``status`` of wallet attestations and key attestations, issuer / AS side.

A wallet attestation (OID4VCI 1.0 Appendix E) and a key attestation (OID4VCI 1.0 Appendix D.1)
may carry ``status``, a Token Status List reference (draft-ietf-oauth-status-list-20 §6.1;
HAIP 1.0 §9.4 pins draft-ietf-oauth-status-list-14 and OID4VCI 1.0 §14.7 pins -12, whose wire
formats are the same; section numbers here are -20's, as in :mod:`oid4vci.status`), so that the
wallet provider can revoke them (draft-ietf-oauth-attestation-based-client-auth-07 §9 leaves
it to the server's policy; HAIP 1.0 too). :func:`verify_attestation_status` is the check, run
after the attestation itself verified (draft-ietf-oauth-status-list-20 §8.3: a token already
invalid is never looked up); policy is :attr:`AttestationSettings.status
<oid4vci.issuer.config.AttestationSettings.status>`:

* ``"off"``: ``status`` is ignored;
* ``"check"`` (default): checked when present;
* ``"require"``: checked, and an attestation without ``status.status_list`` is refused.

Under ``"check"`` and ``"require"`` alike, a status that is not VALID (INVALID = revoked,
SUSPENDED, any other value) refuses the attestation, and so does a status that cannot be
checked: a ``status`` naming no ``status_list``, no :attr:`status_transport
<oid4vci.issuer.config.AttestationSettings.status_transport>`, a list that cannot be fetched or
verified, an index past its end. A demanding deployment cannot tell "the provider's list
server is down" from "someone blocks it so a revoked attestation passes"; failing closed is
the only answer that does not reward the attack.

The Status List Token is fetched and verified with :mod:`oid4vci.status` through the
configured transport (``GET`` with ``Accept: application/statuslist+jwt``, redirects followed
as for the wallet, draft-ietf-oauth-status-list-20 §8.1; ``typ``, signature, ``sub`` = the URI, ``iat``, ``exp``
and the ``lst`` size cap, draft-ietf-oauth-status-list-20 §8.3); its signer is the wallet
provider: HAIP 1.0 §6.1 rules on Status List Tokens apply (key in ``x5c``; the chain validates
to the *same* roots as the attestation — ``client_trust_anchors`` for wallet attestations,
``key_anchors`` for key attestations; no trust anchor inside ``x5c``; the signer certificate
not self-signed). Verified tokens are kept in :attr:`status_cache
<oid4vci.issuer.config.AttestationSettings.status_cache>` for their ``ttl`` (clamped) and
never past ``exp`` (draft-ietf-oauth-status-list-20 §9), so a list is fetched once per ``ttl``,
not once per request; requests that need a list while it is being fetched wait for that one
fetch (and share its failure). Refusals raise :class:`~oid4vci.attestation.AttestationError` (reasons
``status not valid``, ``status unverifiable``, ``no status``); the endpoints turn them into
``invalid_client`` (400, PAR and token endpoints) or ``invalid_proof`` (credential endpoint).
"""

from __future__ import annotations

import base64
import binascii
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import anyio
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from oid4vci.attestation import AttestationError, AttestationReason
from oid4vci.errors import TransportError
from oid4vci.issuer.config import AttestationSettings
from oid4vci.status import (
    INVALID,
    VALID,
    StatusCheck,
    StatusListReason,
    StatusListToken,
    StatusListTokenCache,
    StatusListVerificationError,
    StatusReference,
    fetch_status_list,
    parse_status_reference,
    read_status_list_response,
    status_list_token_header,
    status_name,
    status_of,
)
from oid4vci.x509 import CertificateError, verify_issuer_x5c

__all__ = ["AttestationKind", "verify_attestation_status"]

AttestationKind = Literal["wallet", "key"]
"""Which attestation a status belongs to: ``"wallet"`` (OID4VCI 1.0 Appendix E) or ``"key"``
(OID4VCI 1.0 Appendix D)."""

_WHAT: dict[str, str] = {"wallet": "wallet attestation", "key": "key attestation"}


class _Flight:
    """One fetch under way: ``done`` is set when it ends, ``token`` is its result."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.token: StatusListToken | None = None


#: The fetches under way, per cache and list (see :func:`_token`).
_IN_FLIGHT: weakref.WeakKeyDictionary[StatusListTokenCache, dict[str, _Flight]] = (
    weakref.WeakKeyDictionary()
)


def _unverifiable(what: str, message: str) -> AttestationError:
    return AttestationError(AttestationReason.STATUS_UNVERIFIABLE, f"the {what} {message}")


async def verify_attestation_status(
    claims: Mapping[str, Any],
    settings: AttestationSettings,
    *,
    kind: AttestationKind,
    trust_anchors: Sequence[x509.Certificate],
    clock: Callable[[], float],
) -> StatusCheck | None:
    """Check the ``status`` of a verified attestation's ``claims`` under ``settings``.

    ``trust_anchors`` are the roots the attestation itself was verified with (the Status List
    Token must chain to them); ``clock`` is the issuer's. Returns the :class:`StatusCheck`
    of a VALID entry, ``None`` when nothing was checked (``status`` absent under ``"check"``,
    or policy ``"off"``). Raises :class:`~oid4vci.attestation.AttestationError` (see the
    module docstring).
    """
    if settings.status == "off":
        return None
    what = _WHAT[kind]
    reference = _reference(claims, settings, what)
    if reference is None:
        return None
    token = await _token(reference, settings, kind, trust_anchors, clock)
    try:
        value = status_of(token, reference.idx)
    except StatusListVerificationError as exc:
        raise _unverifiable(what, f"status: {exc}") from None
    if value != VALID:
        name = status_name(value)
        said = "revoked" if value == INVALID else name if isinstance(name, str) else None
        raise AttestationError(
            AttestationReason.STATUS,
            f"the {what} is {said}" if said else f"the {what} has status {value}, not valid",
        )
    return StatusCheck(status="valid", value=value, uri=reference.uri, idx=reference.idx)


def _reference(
    claims: Mapping[str, Any], settings: AttestationSettings, what: str
) -> StatusReference | None:
    """``status.status_list`` (draft-ietf-oauth-status-list-20 §8.3 step 1), or ``None`` when
    ``"check"`` finds no ``status``; refuses a ``status`` that names no ``status_list``."""
    try:
        reference = parse_status_reference(
            claims, allow_insecure_loopback=settings.status_allow_insecure_loopback
        )
    except StatusListVerificationError as exc:
        raise _unverifiable(what, f"status claim: {exc}") from None
    if reference is not None:
        return reference
    if "status" in claims:  # another status mechanism only: nothing this issuer can check
        raise _unverifiable(what, "status names no status_list")
    if settings.status == "require":
        raise AttestationError(
            AttestationReason.NO_STATUS, f"the {what} must carry a status (Token Status List)"
        )
    return None


async def _token(
    reference: StatusReference,
    settings: AttestationSettings,
    kind: AttestationKind,
    trust_anchors: Sequence[x509.Certificate],
    clock: Callable[[], float],
) -> StatusListToken:
    """The verified Status List Token at ``reference.uri``: from the cache, else fetched."""
    what = _WHAT[kind]
    # Wallet and key attestations may trust different roots: a token verified for one kind is
    # reused for the other only when the roots are the same.
    scope = "wallet" if tuple(trust_anchors) == settings.client_trust_anchors else kind
    cache_key = f"{scope} {reference.uri}"
    cached = settings.status_cache.get(cache_key)
    if cached is not None:
        return cached
    # Single flight: requests arriving while this list is being fetched wait for that fetch
    # instead of starting their own; when it fails, they fail with it (fail closed, and a list
    # server that is down is not hammered by every waiting request).
    fetching = _IN_FLIGHT.setdefault(settings.status_cache, {})
    running = fetching.get(cache_key)
    if running is not None:
        await running.done.wait()
        if running.token is None:
            raise _unverifiable(what, "status list could not be fetched")
        return running.token
    flight = fetching[cache_key] = _Flight()
    try:
        flight.token = await _fetch(reference, settings, what, trust_anchors, clock)
    finally:
        del fetching[cache_key]
        flight.done.set()
    settings.status_cache.put(cache_key, flight.token)
    return flight.token


async def _fetch(
    reference: StatusReference,
    settings: AttestationSettings,
    what: str,
    trust_anchors: Sequence[x509.Certificate],
    clock: Callable[[], float],
) -> StatusListToken:
    """Fetch and verify the Status List Token of ``reference``."""
    transport = settings.status_transport
    if transport is None:
        raise _unverifiable(what, "status cannot be checked: no status_transport is configured")
    try:
        # GET with Accept: application/statuslist+jwt, following at most
        # MAX_STATUS_LIST_REDIRECTS redirects (draft-ietf-oauth-status-list-20 §8.1), as the
        # wallet's check_status does.
        response = await fetch_status_list(
            transport,
            reference.uri,
            allow_insecure_loopback=settings.status_allow_insecure_loopback,
        )
    except TransportError as exc:
        raise _unverifiable(what, f"status list is unreachable ({type(exc).__name__})") from None
    except StatusListVerificationError as exc:
        raise _unverifiable(what, f"status list: {exc}") from None
    try:
        header = status_list_token_header(response)
        keys = [_signer_key(header, trust_anchors, clock)]
        token = read_status_list_response(
            response,
            uri=reference.uri,
            keys=keys,
            algorithms=settings.algorithms,
            clock=clock,
            leeway=settings.clock_skew,
        )
    except StatusListVerificationError as exc:
        raise _unverifiable(what, f"status list: {exc}") from None
    return token


def _signer_key(
    header: Mapping[str, Any], trust_anchors: Sequence[x509.Certificate], clock: Callable[[], float]
) -> dict[str, Any]:
    """The Status List Token signer's key: the leaf of its ``x5c`` chain, validated to
    ``trust_anchors`` (HAIP 1.0 §6.1: ``x5c`` present, no trust anchor in it, signer not
    self-signed). Raises :class:`~oid4vci.status.StatusListVerificationError`."""
    x5c = header.get("x5c")
    if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c):
        raise StatusListVerificationError(
            StatusListReason.UNKNOWN_KEY, "HAIP 1.0 §6.1 needs the Status List Token signer in x5c"
        )
    if not trust_anchors:
        raise StatusListVerificationError(
            StatusListReason.UNKNOWN_KEY, "no trust anchors are configured"
        )
    anchors = {a.public_bytes(serialization.Encoding.DER) for a in trust_anchors}
    for entry in x5c:
        try:
            der = base64.b64decode(entry, validate=True)
        except (binascii.Error, ValueError):
            raise StatusListVerificationError(
                StatusListReason.MALFORMED, "an x5c entry is not base64"
            ) from None
        if der in anchors:
            raise StatusListVerificationError(
                StatusListReason.UNKNOWN_KEY, "the x5c contains a trust anchor (HAIP 1.0 §6.1)"
            )
    try:
        return verify_issuer_x5c(x5c, trust_anchors=trust_anchors, clock=clock)
    except CertificateError as exc:
        raise StatusListVerificationError(
            StatusListReason.UNKNOWN_KEY, f"the Status List Token x5c chain: {exc.reason}"
        ) from None
