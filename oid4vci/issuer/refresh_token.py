"""Refresh tokens of the built-in authorization server (RFC 6749 §6, RFC 9449 §5, RFC 9700 §4.14).

Turned on by :attr:`IssuerConfig.refresh_tokens <oid4vci.issuer.config.IssuerConfig.refresh_tokens>`
(:class:`~oid4vci.issuer.config.RefreshTokenSettings`). The token endpoint
(:mod:`oid4vci.issuer.token`) calls:

* :func:`create_refresh_token` in its create stage: an opaque random token (256 bits); the
  store keeps a :class:`RefreshTokenRecord` under ``refresh:<sha256 hex of the token>`` (never
  the token itself), for ``ttl`` seconds but never past the end of its *family* (the grant:
  ``family_lifetime`` after the grant's first token);
* :func:`verify_refresh_token` in its verify stage for ``grant_type=refresh_token``: the token
  must be known, unexpired and of a grant that is not revoked (``invalid_grant``); presented
  with a DPoP proof of the key its tokens are bound to (RFC 9449 §5, ``invalid_dpop_proof``);
  and, when the grant was made with a wallet attestation, with a valid attestation of the same
  client and instance key (draft-ietf-oauth-attestation-based-client-auth-07 §6.2,
  ``invalid_client``). Bindings are checked before anything is used up, so a caller without
  the keys cannot burn a wallet's token.

With ``rotate`` every use takes the record (single use) and issues a new token of the same
family; the used one leaves ``refresh_used:<hex>`` (the grant id). A used token presented
again revokes the grant (``grant_revoked:``: every access and refresh token of the family,
RFC 9700 §4.14.2). As for authorization codes, the used mark is written *before* the record
is taken, so of two parallel uses exactly one wins and the other finds the mark and revokes
the family.
"""

from __future__ import annotations

import hmac
import secrets

import attrs

from oid4vci._wire import record_from_json, record_to_json, store_record
from oid4vci.attestation import VerifiedClientAttestation
from oid4vci.dpop import DpopProof
from oid4vci.errors import DpopError, ErrorCode, TokenError
from oid4vci.issuer import store_keys
from oid4vci.issuer.access_token import (
    TokenContext,
    dpop_key_matches,
    grant_is_revoked,
    revoke_grant,
    take_single_use,
)
from oid4vci.issuer.client_attestation import (
    INVALID_CLIENT_STATUS,
    attestation_binding,
    is_bound_instance,
)
from oid4vci.issuer.config import IssuerConfig

__all__ = [
    "REFRESH_TOKEN_GRANT",
    "RefreshTokenRecord",
    "attestation_binding",
    "create_refresh_token",
    "refresh_token_is_known",
    "verify_refresh_token",
]

#: ``grant_type`` of a refresh request (RFC 6749 §6).
REFRESH_TOKEN_GRANT = "refresh_token"


@store_record
@attrs.frozen(kw_only=True, repr=False)
class RefreshTokenRecord:
    """What a refresh token may renew: the access token ``context`` of its grant (``jkt`` is
    the DPoP key the family is bound to), when the family ends, and the wallet attestation
    binding (``attested_jkt``: the RFC 7638 thumbprint of the attestation's instance key,
    ``None`` when the grant was not attested). ``authorization_details`` says whether token
    responses of the grant carry ``authorization_details``."""

    context: TokenContext
    family_expires_at: float
    expires_at: float
    attested_jkt: str | None = None
    authorization_details: bool = False

    def __repr__(self) -> str:
        return f"RefreshTokenRecord(attested={self.attested_jkt is not None})"


def _invalid_grant(description: str) -> TokenError:
    return TokenError(ErrorCode.INVALID_GRANT, description)


async def create_refresh_token(
    record: RefreshTokenRecord, config: IssuerConfig
) -> tuple[str, RefreshTokenRecord]:
    """Store a new refresh token for ``record``'s family; returns it and the stored record.

    Its life is ``refresh_tokens.ttl`` seconds, cut at ``record.family_expires_at``.
    """
    settings = config.refresh_tokens
    assert settings is not None
    now = config.clock()
    expires_at = min(now + settings.ttl, record.family_expires_at)
    stored = attrs.evolve(record, expires_at=expires_at)
    token = secrets.token_urlsafe(32)
    ttl = max(expires_at - now, 1.0)
    await config.store.put(store_keys.refresh_token_key(token), record_to_json(stored), ttl)
    return token, stored


async def refresh_token_is_known(token: str, config: IssuerConfig) -> bool:
    """True when ``token`` is a live refresh token or a used one (whose reuse must still
    revoke its grant): the token endpoint checks this before a DPoP ``jti`` is written."""
    store = config.store
    return (
        await store.get(store_keys.refresh_token_key(token)) is not None
        or await store.get(store_keys.refresh_used_key(token)) is not None
    )


async def _revoke_family(grant_id: object, config: IssuerConfig) -> None:
    if isinstance(grant_id, str):
        await revoke_grant(grant_id, config)


def _check_bindings(
    record: RefreshTokenRecord,
    config: IssuerConfig,
    *,
    client_id: str | None,
    proof: DpopProof | None,
    attested: VerifiedClientAttestation | None,
) -> None:
    context = record.context
    if record.attested_jkt is not None:
        if attested is None:
            raise TokenError(
                ErrorCode.INVALID_CLIENT,
                "this refresh token needs a wallet attestation",
                status=INVALID_CLIENT_STATUS,
            )
        if attested.client_id != context.client_id or not is_bound_instance(
            attested, record.attested_jkt
        ):
            raise TokenError(
                ErrorCode.INVALID_CLIENT,
                "the wallet attestation is not the one the refresh token is bound to",
                status=INVALID_CLIENT_STATUS,
            )
    if (
        client_id is not None
        and context.client_id is not None
        and not hmac.compare_digest(client_id.encode(), context.client_id.encode())
    ):
        raise _invalid_grant("refresh token was issued to another client")
    if not dpop_key_matches(proof, context.jkt):
        # RFC 9449 §5: a public client's refresh token is bound to its DPoP key.
        raise DpopError(
            ErrorCode.INVALID_DPOP_PROOF, "the refresh token is bound to another DPoP key"
        )


async def verify_refresh_token(
    token: str,
    config: IssuerConfig,
    *,
    client_id: str | None,
    proof: DpopProof | None,
    attested: VerifiedClientAttestation | None,
    scope: str | None = None,
) -> RefreshTokenRecord:
    """Check (and, with rotation, use up) a refresh token; returns its record.

    Raises :class:`TokenError` (``invalid_grant``: unknown, expired, used or revoked;
    ``invalid_client``: the attestation binding; ``invalid_scope``: a ``scope`` other than
    the grant's, RFC 6749 §6 — narrowing is not offered) or :class:`DpopError` (the DPoP
    binding). Nothing is used up by a refused request, but a used token presented again revokes its whole grant.
    """
    settings = config.refresh_tokens
    if settings is None:
        raise TokenError(ErrorCode.UNSUPPORTED_GRANT_TYPE, "grant type is not supported")
    store = config.store
    key = store_keys.refresh_token_key(token)
    used_key = store_keys.refresh_used_key(token)
    record = record_from_json(await store.get(key), RefreshTokenRecord)
    if record is None:
        if settings.rotate:
            await _revoke_family(await store.get(used_key), config)
        raise _invalid_grant("refresh token is invalid, expired or used")
    now = config.clock()
    if record.expires_at <= now or record.family_expires_at <= now:
        raise _invalid_grant("refresh token expired")
    if await grant_is_revoked(record.context.grant_id, config):
        raise _invalid_grant("refresh token revoked")
    _check_bindings(record, config, client_id=client_id, proof=proof, attested=attested)
    if scope is not None and scope != record.context.scope:
        raise TokenError(ErrorCode.INVALID_SCOPE, "scope differs from the original grant")
    if not settings.rotate:
        return record
    used_ttl = max(record.family_expires_at - now, 1.0)
    # Marked before it is taken: a racing second use always finds the mark (see above).
    taken = await take_single_use(
        key, config, used_key=used_key, grant_id=record.context.grant_id, used_ttl=used_ttl
    )
    if taken is None:
        raise _invalid_grant("refresh token is invalid, expired or used")
    return record
