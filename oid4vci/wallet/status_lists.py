"""Which keys may sign a credential's Status List Token, for the wallet and :func:`check_status`.

draft-ietf-oauth-status-list-20 §11.3 lets the Status List Token reuse the Referenced Token
issuer's key or its resolution; the wallet takes the same two routes as for the credential
(:mod:`oid4vci.wallet.verify`, draft-ietf-oauth-sd-jwt-vc-11 §3.5): the leaf of an ``x5c``
header chain when ``policy.trusted_x5c_roots`` is set (validated up to a root, naming the host
of the credential's ``iss``; any failure is final), else the issuer's JWT VC Issuer Metadata
keys. The fetching itself is a flow state (``FETCHING_STATUS_LISTS`` in
:mod:`oid4vci.wallet.states`) or :func:`oid4vci.status.check_status`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from oid4vci.sdjwt import SdJwtVerificationError

from .policy import WalletPolicy
from .verify import IssuerKeySource, WalletReason, _x5c_issuer_key

__all__ = ["status_list_keys", "x5c_status_list_keys"]


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
