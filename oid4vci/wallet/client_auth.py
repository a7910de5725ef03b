"""How the wallet authenticates at the authorization server: the wallet attestation headers
of its PAR, token and refresh requests (OAuth 2.0 Attestation-Based Client Authentication,
draft-ietf-oauth-attestation-based-client-auth-07 §6.1; OID4VCI 1.0 Appendix E).

:func:`client_attestation_headers` asks the policy's
:class:`~oid4vci.attestation.AttestationProvider` for the Client Attestation and signs a fresh
PoP with its instance key; in DPoP-combined mode (``attest_jwt_client_auth_dpop``,
draft-ietf-oauth-attestation-based-client-auth-10 §5.2) only the attestation is sent, the
request's DPoP proof being its PoP. Which method a grant uses is
:func:`~oid4vci.wallet.preflight.client_auth_method`; when a fresh attestation or a challenge
is called for (``use_fresh_attestation``, ``use_attestation_challenge``) is the flow's table
(:mod:`oid4vci.wallet.states`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from oid4vci.attestation import (
    ATTEST_JWT_CLIENT_AUTH_DPOP,
    CLIENT_ATTESTATION_HEADER,
    CLIENT_ATTESTATION_POP_HEADER,
    AttestationProvider,
    create_client_attestation_pop,
)
from oid4vci.errors import UsageError

__all__ = ["client_attestation_headers"]


async def client_attestation_headers(
    provider: AttestationProvider,
    authorization_server: str,
    method: str,
    *,
    fresh: bool,
    challenge: str | None,
    clock: Callable[[], float],
) -> dict[str, str]:
    """The ``OAuth-Client-Attestation`` (and, but in DPoP-combined mode,
    ``OAuth-Client-Attestation-PoP``) headers for ``authorization_server`` (its issuer
    identifier, the PoP's ``aud``) by ``method``; ``fresh`` asks the provider for a newly
    issued attestation, ``challenge`` goes into the PoP.

    :class:`UsageError` when ``fresh`` and the provider's ``client_attestation`` takes no
    ``fresh`` argument.
    """
    if fresh:
        if not _takes_fresh(provider.client_attestation):
            raise UsageError(
                "the server asked for a fresh wallet attestation (use_fresh_attestation) "
                "and the attestation provider's client_attestation takes no `fresh` "
                "argument; add `fresh: bool = False` to it (AttestationProvider)"
            )
        attestation = await provider.client_attestation(
            authorization_server=authorization_server, fresh=True
        )
    else:
        attestation = await provider.client_attestation(authorization_server=authorization_server)
    if method == ATTEST_JWT_CLIENT_AUTH_DPOP:
        return {CLIENT_ATTESTATION_HEADER: attestation.attestation}
    pop = await create_client_attestation_pop(
        attestation.instance_key,
        audience=authorization_server,
        client_id=attestation.client_id,
        challenge=challenge,
        clock=clock,
    )
    return {
        CLIENT_ATTESTATION_HEADER: attestation.attestation,
        CLIENT_ATTESTATION_POP_HEADER: pop,
    }


def _takes_fresh(method: Callable[..., object]) -> bool:
    """Whether a provider's ``client_attestation`` accepts ``fresh`` (an older provider may
    not); ``True`` when its signature cannot be read (then the call itself decides)."""
    try:
        parameters = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.name == "fresh" or p.kind is p.VAR_KEYWORD for p in parameters)
