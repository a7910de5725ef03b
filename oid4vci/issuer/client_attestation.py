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
* with :attr:`AttestationSettings.dpop_combined
  <oid4vci.issuer.config.AttestationSettings.dpop_combined>`, the attestation header without
  a PoP header but with a ``DPoP`` proof is DPoP-combined mode
  (draft-ietf-oauth-attestation-based-client-auth-10 §5.2): the proof's ``jwk`` must be the
  attestation's ``cnf.jwk`` (:func:`oid4vci.attestation.verify_client_attestation_dpop`);
  the endpoint then verifies that proof as its DPoP proof (signature, ``htu``, ``jti``
  replay) and :func:`verify_dpop_combined` that it is the one that was matched;
* with :attr:`AttestationSettings.require_challenge
  <oid4vci.issuer.config.AttestationSettings.require_challenge>` the PoP must carry a live
  challenge of this server (from :func:`handle_challenge` or an earlier error), else
  ``use_attestation_challenge`` (400) with a fresh one in ``OAuth-Client-Attestation-Challenge``
  (draft-ietf-oauth-attestation-based-client-auth-07 §8);
* with :attr:`AttestationSettings.max_attestation_age
  <oid4vci.issuer.config.AttestationSettings.max_attestation_age>` an attestation issued
  longer ago (by its ``iat``; one without ``iat`` counts as too old) is refused with
  ``use_fresh_attestation`` (400, introduced by draft-ietf-oauth-attestation-based-client-auth-07),
  distinct from ``invalid_client``: the attestation is valid, just older than this server's policy;
* with a ``status`` in the attestation (OID4VCI 1.0 Appendix E), its Token Status List entry
  must be VALID, per :attr:`AttestationSettings.status
  <oid4vci.issuer.config.AttestationSettings.status>`
  (:func:`oid4vci.issuer.attestation_status.verify_attestation_status`): revoked, suspended or
  uncheckable → ``invalid_client``;
* last, the PoP ``jti`` goes into the replay cache (``attest_pop_jti:``, ``add_if_absent``, kept
  ``pop_max_age`` + 2 × ``clock_skew``: a replay inside the window is refused, one after it is
  refused as stale).

Refusals are ``invalid_client`` with status 400 (RFC 6749 §5.2; a 401 must carry a
``WWW-Authenticate`` challenge, RFC 9110 §15.5.2, and the attestation headers are no HTTP
authentication scheme). The description names the reason, never the JWTs. A request that
authenticates the client another way (``Authorization`` header, ``client_secret``,
``client_assertion``) is refused by :func:`refuse_other_client_authentication` when it is
parsed: a server that ignored those credentials would fail open.
Headers are ignored when no :class:`~oid4vci.issuer.config.AttestationSettings` is configured
(the issuer then takes public clients only and does not advertise the method).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Mapping

from oid4vci.attestation import (
    CLIENT_ATTESTATION_CHALLENGE_HEADER,
    CLIENT_ATTESTATION_HEADER,
    CLIENT_ATTESTATION_POP_HEADER,
    USE_ATTESTATION_CHALLENGE,
    USE_FRESH_ATTESTATION,
    AttestationError,
    VerifiedClientAttestation,
    verify_client_attestation,
    verify_client_attestation_dpop,
)
from oid4vci.dpop import DpopProof
from oid4vci.errors import AuthorizationError, ErrorCode, ProtocolError
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer import store_keys
from oid4vci.issuer.attestation_status import verify_attestation_status
from oid4vci.issuer.config import IssuerConfig
from oid4vci.issuer.responses import create_error_response, json_response, with_allow
from oid4vci.issuer.stateless_nonce import NoncePurpose, is_live_nonce, seal_nonce

__all__ = [
    "INVALID_CLIENT_STATUS",
    "OTHER_CLIENT_CREDENTIALS",
    "attestation_binding",
    "create_attestation_challenge",
    "handle_challenge",
    "is_bound_instance",
    "refuse_other_client_authentication",
    "use_attestation_challenge_response",
    "verify_client_authentication",
    "verify_dpop_combined",
]

#: HTTP status of an ``invalid_client`` answer: 400, RFC 6749 §5.2's default. 401 would need a
#: ``WWW-Authenticate`` challenge (RFC 9110 §15.5.2), and attestation-based client
#: authentication has no HTTP authentication scheme to name in one.
INVALID_CLIENT_STATUS = 400


#: Form parameters of client authentication methods this server does not support:
#: ``client_secret_post`` (RFC 6749 §2.3.1), ``private_key_jwt`` / ``client_secret_jwt``
#: (RFC 7521 §4.2, RFC 7523 §2.2).
OTHER_CLIENT_CREDENTIALS = ("client_secret", "client_assertion", "client_assertion_type")
_AUTH_SCHEME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}")


def refuse_other_client_authentication(
    request: HttpRequest, params: Mapping[str, str], *, error_cls: type[ProtocolError]
) -> None:
    """Refuse a PAR or token request that authenticates the client by a method this server
    does not support (``client_secret_basic`` / ``_post``, ``private_key_jwt``, any
    ``Authorization`` header): ``invalid_client`` (RFC 6749 §5.2). Credentials the server
    ignored would let a request pass as if they had been checked (and, RFC 6749 §2.3, a
    client uses one method per request). Through the ``Authorization`` header it is 401 with
    a ``WWW-Authenticate`` challenge of the scheme the client used (RFC 6749 §5.2 MUST);
    otherwise 400."""
    authorization = request.headers.get_all("Authorization")
    if authorization:
        scheme = authorization[0].split(" ", 1)[0]
        raise error_cls(
            ErrorCode.INVALID_CLIENT,
            "client authentication by the Authorization header is not supported",
            status=401,
            www_authenticate_scheme=scheme if _AUTH_SCHEME.fullmatch(scheme) else "Basic",
        )
    for name in OTHER_CLIENT_CREDENTIALS:
        if name in params:
            raise error_cls(
                ErrorCode.INVALID_CLIENT,
                f"client authentication by {name} is not supported",
                status=INVALID_CLIENT_STATUS,
            )


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
    (``invalid_client``, 400).
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
    dpops = request.headers.get_all("DPoP")
    if settings.dpop_combined and len(attestations) == 1 and not pops and len(dpops) == 1:
        try:
            verified = verify_client_attestation_dpop(
                attestations[0],
                dpops[0],
                trust_anchors=settings.client_trust_anchors,
                client_id=client_id,
                algorithms=settings.algorithms,
                clock_skew=settings.clock_skew,
                clock=config.clock,
            )
        except AttestationError as exc:
            raise refuse(f"client attestation refused ({exc})") from None
        _check_age(verified, config, error_cls)
        await _verify_status(verified, config, refuse)
        return verified  # the DPoP proof's jti is kept by the DPoP replay cache
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
    _check_age(verified, config, error_cls)
    if settings.require_challenge and not _live_challenge(verified.challenge, config):
        err = error_cls(USE_ATTESTATION_CHALLENGE, "the PoP must carry a current server challenge")
        err.attestation_challenge = create_attestation_challenge(config)  # type: ignore[attr-defined]
        raise err
    await _verify_status(verified, config, refuse)
    key = store_keys.attestation_pop_jti_key(verified.client_id, verified.jti)
    if not await config.store.add_if_absent(key, True, store_keys.ATTESTATION_POP_JTI.ttl(config)):
        raise refuse("client attestation PoP replayed (jti already used)")
    return verified


def _check_age(
    verified: VerifiedClientAttestation, config: IssuerConfig, error_cls: type[ProtocolError]
) -> None:
    settings = config.attestation
    max_age = settings.max_attestation_age if settings is not None else None
    if max_age is not None and (
        verified.issued_at is None or verified.issued_at < config.clock() - max_age
    ):
        raise error_cls(USE_FRESH_ATTESTATION, "the client attestation is too old; get a fresh one")


async def _verify_status(
    verified: VerifiedClientAttestation,
    config: IssuerConfig,
    refuse: Callable[[str], ProtocolError],
) -> None:
    settings = config.attestation
    assert settings is not None
    try:
        await verify_attestation_status(
            verified.claims,
            settings,
            kind="wallet",
            trust_anchors=settings.client_trust_anchors,
            clock=config.clock,
        )
    except AttestationError as exc:
        raise refuse(f"client attestation refused ({exc})") from None


def verify_dpop_combined(
    attested: VerifiedClientAttestation | None,
    proof: DpopProof | None,
    error_cls: type[ProtocolError],
) -> None:
    """In DPoP-combined mode, the request's verified DPoP ``proof`` must be signed by the
    attestation's instance key (draft-ietf-oauth-attestation-based-client-auth-10 §5.2);
    ``invalid_client`` (400) otherwise. Nothing to check in the other modes."""
    if attested is None or not attested.dpop_combined:
        return
    if proof is None or not hmac.compare_digest(proof.jkt.encode(), attested.instance_jkt.encode()):
        raise error_cls(
            ErrorCode.INVALID_CLIENT,
            "the DPoP proof is not signed by the attestation's instance key",
            status=INVALID_CLIENT_STATUS,
        )


def attestation_binding(attested: VerifiedClientAttestation | None) -> str | None:
    """What an attested grant's authorization code and refresh tokens are bound to: the RFC 7638
    thumbprint of the attestation's instance key (``cnf.jwk``); ``None`` when not attested
    (draft-ietf-oauth-attestation-based-client-auth-07 §6.2 for refresh tokens; -10 also
    recommends it for codes pushed at PAR)."""
    return None if attested is None else attested.instance_jkt


def is_bound_instance(attested: VerifiedClientAttestation | None, bound_jkt: str | None) -> bool:
    """Whether a request authenticated by ``attested`` may use something bound to
    ``bound_jkt`` (see :func:`attestation_binding`): always when unbound, else only with an
    attestation of that very instance key (compared in constant time)."""
    if bound_jkt is None:
        return True
    return attested is not None and hmac.compare_digest(
        attested.instance_jkt.encode(), bound_jkt.encode()
    )


def create_attestation_challenge(config: IssuerConfig) -> str:
    """A fresh attestation challenge (draft-ietf-oauth-attestation-based-client-auth-07 §8),
    valid ``attestation.challenge_ttl`` seconds; stateless (sealed with the nonce keys)."""
    settings = config.attestation
    ttl = settings.challenge_ttl if settings is not None else 300
    return seal_nonce(
        config.nonce_keys,
        NoncePurpose.ATTESTATION_CHALLENGE,
        audience=config.authorization_server,
        expires_at=config.clock() + ttl,
    )


def _live_challenge(value: str | None, config: IssuerConfig) -> bool:
    return value is not None and is_live_nonce(
        value,
        config.nonce_keys,
        NoncePurpose.ATTESTATION_CHALLENGE,
        audience=config.authorization_server,
        now=config.clock(),
    )


def use_attestation_challenge_response(err: ProtocolError, response: HttpResponse) -> HttpResponse:
    """``response`` with the ``OAuth-Client-Attestation-Challenge`` header a
    ``use_attestation_challenge`` error must carry (draft-ietf-oauth-attestation-based-client-auth-07
    §8); other responses unchanged."""
    challenge = getattr(err, "attestation_challenge", None)
    if not isinstance(challenge, str):
        return response
    return HttpResponse(
        status=response.status,
        headers=response.headers.with_header(CLIENT_ATTESTATION_CHALLENGE_HEADER, challenge),
        body=response.body,
    )


async def handle_challenge(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> HttpResponse:
    """The challenge endpoint (draft-ietf-oauth-attestation-based-client-auth-07 §8.1):
    ``POST`` → 200 ``{"attestation_challenge": ...}``, ``Cache-Control: no-store``; 404 unless
    challenges are required; 405 for another method. Writes nothing. Never raises."""
    req = HttpRequest.coerce(request)
    settings = config.attestation
    if settings is None or not settings.require_challenge:
        err = AuthorizationError(
            ErrorCode.INVALID_REQUEST, "no challenge endpoint here", status=404
        )
        return create_error_response(err)
    if req.method != "POST":
        err = AuthorizationError(
            ErrorCode.INVALID_REQUEST, "method not allowed; use POST", status=405
        )
        return with_allow(create_error_response(err), ("POST",))
    return json_response(200, {"attestation_challenge": create_attestation_challenge(config)})
