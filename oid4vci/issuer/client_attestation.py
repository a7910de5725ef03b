"""Client authentication by wallet attestation at the PAR and token endpoints.

OAuth 2.0 Attestation-Based Client Authentication
(draft-ietf-oauth-attestation-based-client-auth-07 §6, §9, §12.1; OID4VCI 1.0 Appendix E;
HAIP 1.0 §4.4.1). :func:`verify_client_authentication` is one stage both endpoints run after
parsing and before anything single use is touched (a PAR request is stored, a code spent):

* no ``OAuth-Client-Attestation`` / ``OAuth-Client-Attestation-PoP`` headers: fine for a public
  client, unless :attr:`AttestationSettings.require_client_attestation
  <oid4vci.issuer.config.AttestationSettings.require_client_attestation>` → ``invalid_client``;
* otherwise exactly one of each, verified by :func:`oid4vci.attestation.verify_client_attestation`
  against the configured wallet provider roots, with the PoP ``aud`` = the authorization
  server's issuer identifier and the request's ``client_id`` (when it has one) = the
  attestation's ``sub``;
* last, the PoP ``jti`` goes into the replay cache (``attest_pop_jti:``, ``add_if_absent``, kept
  ``pop_max_age`` + 2 × ``clock_skew``: a replay inside the window is refused, one after it is
  refused as stale).

Refusals are ``invalid_client`` with status 401 (RFC 6749 §5.2 allows 401 for it; no
``WWW-Authenticate`` challenge, which RFC 6749 asks for only when the client authenticated
through the ``Authorization`` header). The description names the reason, never the JWTs.
Headers are ignored when no :class:`~oid4vci.issuer.config.AttestationSettings` is configured
(the issuer then takes public clients only and does not advertise the method).
"""

from __future__ import annotations

from oid4vci.attestation import (
    CLIENT_ATTESTATION_HEADER,
    CLIENT_ATTESTATION_POP_HEADER,
    AttestationError,
    VerifiedClientAttestation,
    verify_client_attestation,
)
from oid4vci.errors import ErrorCode, ProtocolError
from oid4vci.http import HttpRequest
from oid4vci.issuer import store_keys
from oid4vci.issuer.config import IssuerConfig

__all__ = ["INVALID_CLIENT_STATUS", "verify_client_authentication"]

#: HTTP status of an ``invalid_client`` answer (RFC 6749 §5.2).
INVALID_CLIENT_STATUS = 401


async def verify_client_authentication(
    request: HttpRequest,
    config: IssuerConfig,
    *,
    client_id: str | None,
    error_cls: type[ProtocolError],
) -> VerifiedClientAttestation | None:
    """Verify the wallet attestation headers of a PAR or token ``request``.

    ``client_id`` is the request's own ``client_id`` parameter (``None`` when absent); the
    result's ``client_id`` is the authenticated one. Returns ``None`` for a request without
    attestation headers that the configuration allows. Raises ``error_cls``
    (``invalid_client``, 401).
    """

    def refuse(description: str) -> ProtocolError:
        return error_cls(ErrorCode.INVALID_CLIENT, description, status=INVALID_CLIENT_STATUS)

    settings = config.attestation
    attestations = request.headers.get_all(CLIENT_ATTESTATION_HEADER)
    pops = request.headers.get_all(CLIENT_ATTESTATION_POP_HEADER)
    if settings is None or not settings.client_trust_anchors:
        return None
    if not attestations and not pops:
        if settings.require_client_attestation:
            raise refuse("client authentication by wallet attestation is required")
        return None
    if len(attestations) != 1 or len(pops) != 1:
        raise refuse(
            f"exactly one {CLIENT_ATTESTATION_HEADER} and one {CLIENT_ATTESTATION_POP_HEADER} "
            "header are required"
        )
    try:
        verified = verify_client_attestation(
            attestations[0],
            pops[0],
            trust_anchors=settings.client_trust_anchors,
            audience=config.authorization_server,
            client_id=client_id,
            algorithms=settings.algorithms,
            pop_max_age=settings.pop_max_age,
            clock_skew=settings.clock_skew,
            clock=config.clock,
        )
    except AttestationError as exc:
        raise refuse(f"client attestation refused ({exc})") from None
    key = store_keys.attestation_pop_jti_key(verified.client_id, verified.jti)
    if not await config.store.add_if_absent(key, True, store_keys.ATTESTATION_POP_JTI.ttl(config)):
        raise refuse("client attestation PoP replayed (jti already used)")
    return verified
