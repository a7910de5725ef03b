"""The wallet's side of Token Status Lists (draft-ietf-oauth-status-list-20): which lists
received credentials refer to and what the lists say of them, which keys may sign a Status
List Token, and :func:`check_status` for a credential held for a while.

The fetching itself is a flow state (``FETCHING_STATUS_LISTS`` in :mod:`oid4vci.wallet.states`:
:func:`status_references` says what to fetch, :func:`status_entries` reads each list,
:func:`with_status` gives each credential its status) or :func:`check_status`.

draft-ietf-oauth-status-list-20 §11.3 lets the Status List Token reuse the Referenced Token
issuer's key or its resolution; the wallet takes the same two routes as for the credential
(:mod:`oid4vci.wallet.verify`, draft-ietf-oauth-sd-jwt-vc-11 §3.5): the leaf of an ``x5c``
header chain when ``policy.trusted_x5c_roots`` is set (validated up to a root, naming the host
of the credential's ``iss``; any failure is final), else the issuer's JWT VC Issuer Metadata
keys.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from oid4vci.errors import ArgumentTypeError, UsageError
from oid4vci.http import Transport
from oid4vci.jose import decode_jws
from oid4vci.sdjwt import SdJwtVerificationError
from oid4vci.status import (
    StatusCheck,
    StatusList,
    StatusListReason,
    StatusListTokenCache,
    StatusListVerificationError,
    StatusReference,
    fetch_status_list,
    is_mdoc_credential,
    parse_status_reference,
    read_credential_status_reference,
    read_status_list_response,
    status_list_token_header,
    status_name,
    status_of,
)

from .policy import WalletPolicy
from .results import ReceivedCredential
from .verify import IssuerKeyResolver, IssuerKeySource, WalletReason, _x5c_issuer_key

__all__ = [
    "check_status",
    "status_entries",
    "status_list_keys",
    "status_references",
    "with_status",
    "x5c_status_list_keys",
]


def x5c_status_list_keys(
    header: Mapping[str, Any], iss: str, *, policy: WalletPolicy, clock: Callable[[], float]
) -> list[dict[str, Any]] | None:
    """The leaf key of the header's ``x5c`` chain when the policy trusts ``x5c`` (raises ``x5c
    untrusted`` for a chain it refuses), else ``None``: use the issuer's metadata keys."""
    if "x5c" in header and policy.trusted_x5c_roots:
        return [_x5c_issuer_key(header["x5c"], iss, policy, clock)]
    if policy.profile == "haip":  # HAIP 1.0 §6.1: the Status List Token signer is in x5c
        raise SdJwtVerificationError(
            WalletReason.X5C_UNTRUSTED, "HAIP 1.0 §6.1 needs an x5c Status List Token signer"
        )
    return None


async def status_list_keys(
    header: Mapping[str, Any],
    iss: str,
    *,
    resolver: IssuerKeySource,
    policy: WalletPolicy,
    clock: Callable[[], float] = time.time,
) -> list[dict[str, Any]]:
    """The keys allowed to have signed a Status List Token with JOSE ``header`` for the
    credentials of issuer ``iss`` (raises a
    :class:`~oid4vci.errors.CredentialVerificationError`: ``x5c untrusted``, ``issuer key
    unavailable``)."""
    found = x5c_status_list_keys(header, iss, policy=policy, clock=clock)
    return found if found is not None else await resolver.keys_for(iss)


async def check_status(
    credential: str,
    transport: Transport,
    *,
    policy: WalletPolicy | None = None,
    cache: StatusListTokenCache | None = None,
    clock: Callable[[], float] = time.time,
    issuer: str | None = None,
) -> StatusCheck:
    """Fetch, verify and read the status of ``credential`` (a compact SD-JWT / JWT, or an
    ``mso_mdoc``: its base64url ``IssuerSigned``, the MSO's ``status``).

    For verifiers and wallets that hold credentials for a long time
    (draft-ietf-oauth-status-list-20 §8.3). It does not verify the credential itself (do that
    first). The Status List Token is fetched through ``transport`` (https, or http to a
    loopback host when ``policy.allow_insecure_loopback``), or taken from ``cache``; its key
    is the credential issuer's: the leaf of an ``x5c`` header chain that validates to
    ``policy.trusted_x5c_roots`` and names the host of the credential's ``iss``, else the
    keys of the JWT VC Issuer Metadata of ``iss`` (draft-ietf-oauth-sd-jwt-vc-11 §5), as the
    wallet does. Signature algorithms and clock leeway are the policy's. A 3xx answer is
    followed (:func:`~oid4vci.status.status_list_redirect_target`, at most :data:`~oid4vci.status.MAX_STATUS_LIST_REDIRECTS`).

    ``issuer`` is the Credential Issuer the credential came from
    (:attr:`ReceivedCredential.issuer <oid4vci.wallet.ReceivedCredential.issuer>`): an mdoc
    names none, so its list's keys are that issuer's (as in the wallet's flow) unless the
    token's ``x5c`` is trusted; for a JWT it must equal ``iss`` (and stands in for a missing
    one). An mdoc without either raises :class:`~oid4vci.errors.UsageError`.

    Raises :class:`~oid4vci.status.StatusListVerificationError` (reason ``no status reference`` when the
    credential has none, ``unavailable`` when the list cannot be fetched, else the reason of
    the check that failed), a :class:`~oid4vci.errors.CredentialVerificationError` when the
    issuer's keys cannot be had, or the transport's
    :class:`~oid4vci.errors.TransportError`.
    """
    policy = policy if policy is not None else WalletPolicy()
    if not isinstance(policy, WalletPolicy):
        raise ArgumentTypeError("policy must be a WalletPolicy")
    reference = read_credential_status_reference(
        credential, allow_insecure_loopback=policy.allow_insecure_loopback
    )
    if reference is None:
        raise StatusListVerificationError(
            StatusListReason.NO_REFERENCE, "the credential names no Status List"
        )
    if issuer is not None and (not isinstance(issuer, str) or not issuer):
        raise ArgumentTypeError("issuer must be a non-empty string")
    iss: str | None = issuer
    if not is_mdoc_credential(credential):
        claimed = decode_jws(credential.split("~", 1)[0].strip()).payload.get("iss")
        if claimed is not None and (issuer is not None and claimed != issuer):
            raise StatusListVerificationError(
                StatusListReason.MALFORMED, "the credential's 'iss' is not the issuer"
            )
        iss = claimed if claimed is not None else issuer
        if not isinstance(iss, str) or not iss:
            raise StatusListVerificationError(
                StatusListReason.MALFORMED, "the credential has no 'iss' to find keys with"
            )
    token = cache.get(reference.uri) if cache is not None else None
    if token is None:
        response = await fetch_status_list(
            transport, reference.uri, allow_insecure_loopback=policy.allow_insecure_loopback
        )
        header = status_list_token_header(response)
        if iss is None and not ("x5c" in header and policy.trusted_x5c_roots):
            raise UsageError(
                "an mdoc names no issuer: give check_status issuer= (the Credential Issuer "
                "it came from) to find its Status List Token's keys"
            )
        keys = await status_list_keys(
            header,
            iss or "",
            resolver=IssuerKeyResolver(transport, policy=policy),
            policy=policy,
            clock=clock,
        )
        token = read_status_list_response(
            response,
            uri=reference.uri,
            keys=keys,
            algorithms=policy.credential_algorithms,
            clock=clock,
            leeway=policy.clock_skew,
        )
        if cache is not None:
            cache.put(reference.uri, token)
    value = status_of(token, reference.idx)
    return StatusCheck(status=status_name(value), value=value, uri=reference.uri, idx=reference.idx)


# --- in the flow: from verified credentials to their status ----------------------------------


def status_references(
    credentials: Sequence[ReceivedCredential],
    mdoc_statuses: Sequence[dict[str, Any] | None],
    *,
    policy: WalletPolicy,
) -> tuple[list[ReceivedCredential], list[str]] | None:
    """Each credential with its status reference, and the URIs of the lists to fetch (each
    once, in order); ``None``: nothing to fetch (or ``policy.status`` is ``off``).

    An mdoc's reference is its MSO's ``status`` (``mdoc_statuses``, in the order of
    ``credentials``; draft-ietf-oauth-status-list-14 §6.3.2), the others' their JWT's. Only
    verified credentials are looked at.
    """
    if policy.status == "off":
        return None
    with_refs: list[ReceivedCredential] = []
    pending: dict[str, None] = {}
    statuses = list(mdoc_statuses) or [None] * len(credentials)
    for cred, mdoc_status in zip(credentials, statuses, strict=True):
        loopback = policy.allow_insecure_loopback
        if cred.format == "mso_mdoc":
            reference = (
                parse_status_reference({"status": mdoc_status}, allow_insecure_loopback=loopback)
                if cred.verified and mdoc_status is not None
                else None
            )
        else:
            reference = (
                read_credential_status_reference(cred.credential, allow_insecure_loopback=loopback)
                if cred.verified and isinstance(cred.credential, str)
                else None
            )
        if reference is not None:
            cred = attrs.evolve(cred, status_reference=reference)
            pending[reference.uri] = None
        with_refs.append(cred)
    if not pending:
        return None
    return with_refs, list(pending)


def status_entries(
    status_list: StatusList, credentials: Sequence[ReceivedCredential], uri: str
) -> dict[int, int]:
    """The entries of ``status_list`` the credentials referring to ``uri`` point at (an index
    past its end refuses the credential: draft-ietf-oauth-status-list-20 §8.3 step 7)."""
    out: dict[int, int] = {}
    for cred in credentials:
        reference = cred.status_reference
        if reference is not None and reference.uri == uri:
            try:
                out[reference.idx] = status_list.get(reference.idx)
            except UsageError:
                raise StatusListVerificationError(
                    StatusListReason.INDEX_OUT_OF_RANGE, "the index is not in the Status List"
                ) from None
    return out


def with_status(
    cred: ReceivedCredential, values: Mapping[str, dict[int, int] | None]
) -> ReceivedCredential:
    """``cred`` with the ``status`` its list said (``values``: the entries read per list URI,
    ``None`` for a list that could not be fetched); unchanged without a reference or a value."""
    reference: StatusReference | None = cred.status_reference
    if reference is None:
        return cred
    found = values.get(reference.uri)
    if found is None:
        return cred
    return attrs.evolve(cred, status=status_name(found[reference.idx]))
