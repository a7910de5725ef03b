"""The token endpoint (RFC 6749 §3.2 and §5, OID4VCI 1.0 §6): pre-authorized, code and refresh
token grants.

Stages, composed by :func:`handle_token`:

* :func:`parse_token_request` — POST, form-encoded, size, ``grant_type`` (RFC 6749 §4.1.3,
  OID4VCI 1.0 §6.1);
* :func:`verify_token_request` — the client's wallet attestation
  (:func:`~oid4vci.issuer.client_attestation.verify_client_authentication`,
  draft-ietf-oauth-attestation-based-client-auth-07 §6.2), the DPoP proof (RFC 9449 §5) and the grant:
  :func:`verify_pre_authorized_code` (single use, ``tx_code`` attempts limited) or
  :func:`verify_authorization_code` (PKCE RFC 7636 §4.6, client, redirect URI, ``dpop_jkt``)
  or, when :attr:`IssuerConfig.refresh_tokens
  <oid4vci.issuer.config.IssuerConfig.refresh_tokens>` is set,
  :func:`~oid4vci.issuer.refresh_token.verify_refresh_token` (RFC 6749 §6; bound to the DPoP
  key, RFC 9449 §5, and the wallet attestation);
* :func:`create_token_response` — the access token (and a refresh token when configured)
  and the 200 body (RFC 6749 §5.1, OID4VCI 1.0 §6.2); errors are answered as RFC 6749 §5.2
  JSON.

Store keys (see :mod:`oid4vci.issuer.store_keys`; each ``<code>`` is the code's digest, never
the code): ``pre_auth:<code>`` (a
:class:`PreAuthorizedCodeRecord`, written by the offer side through
:func:`store_pre_authorized_code`, taken once), ``pre_auth_attempts:<code>`` (the ``tx_code``
attempt counter; after ``tx_code_max_attempts`` wrong ones the code is deleted),
``code:<code>`` (an :class:`AuthorizationCodeRecord`, written by the authorization endpoint,
taken once) and ``code_used:<code>`` (the grant id it produced, so a replayed code revokes the
tokens issued for it, RFC 6749 §4.1.2).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from oid4vci._wire import record_from_json, record_to_json, store_record
from oid4vci.attestation import VerifiedClientAttestation
from oid4vci.dpop import DpopProof
from oid4vci.errors import (
    ErrorCode,
    ProtocolError,
    StoreError,
    TokenError,
    UsageError,
    WireFormatError,
)
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer import store_keys
from oid4vci.issuer._request_body import parse_form_post
from oid4vci.issuer.access_token import (
    TokenContext,
    create_access_token,
    dpop_key_matches,
    take_single_use,
    verify_dpop_proof,
)
from oid4vci.issuer.client_attestation import (
    attestation_binding,
    is_bound_instance,
    refuse_other_client_authentication,
    use_attestation_challenge_response,
    verify_client_authentication,
    verify_dpop_combined,
)
from oid4vci.issuer.config import IssuerConfig, _str_tuple
from oid4vci.issuer.flood_limits import refused
from oid4vci.issuer.nonce import create_c_nonce
from oid4vci.issuer.refresh_token import (
    REFRESH_TOKEN_GRANT,
    RefreshTokenRecord,
    create_refresh_token,
    refresh_token_is_known,
    verify_refresh_token,
)
from oid4vci.issuer.responses import (
    create_error_response,
    json_response,
    with_allow,
)
from oid4vci.issuer.store import Store
from oid4vci.models import PRE_AUTHORIZED_CODE_GRANT
from oid4vci.models.authorization import parse_authorization_details
from oid4vci.pkce import verify_code_challenge
from oid4vci.versions import SpecVersion

__all__ = [
    "AUTHORIZATION_CODE_GRANT",
    "AuthorizationCodeRecord",
    "PreAuthorizedCodeRecord",
    "TokenRequest",
    "VerifiedTokenRequest",
    "create_token_response",
    "handle_token",
    "parse_token_request",
    "store_authorization_code",
    "store_pre_authorized_code",
    "verify_authorization_code",
    "verify_pre_authorized_code",
    "verify_token_request",
]

#: ``grant_type`` of the authorization code flow (RFC 6749 §4.1.3).
AUTHORIZATION_CODE_GRANT = "authorization_code"


@store_record
@attrs.frozen(kw_only=True, repr=False)
class PreAuthorizedCodeRecord:
    """What a pre-authorized code (from a credential offer) grants.

    ``tx_code`` is the expected transaction code, or ``None`` when the offer had no ``tx_code``
    object; :func:`store_pre_authorized_code` stores only its digest (``tx_code_digest``,
    :func:`~oid4vci.issuer.store_keys.secret_digest`), never the code. ``offer_id`` is the
    digest of the offer's id (the key of its ``offer:`` record). ``data`` is free application
    data carried into nothing but the store.
    """

    subject: str
    configuration_ids: tuple[str, ...] = attrs.field(converter=_str_tuple)
    tx_code: str | None = None
    offer_id: str | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict)
    tx_code_digest: str | None = None

    @property
    def expected_tx_code_digest(self) -> str | None:
        """The digest a sent ``tx_code`` must match, ``None`` when none is expected."""
        if self.tx_code_digest is not None:
            return self.tx_code_digest
        return None if self.tx_code is None else store_keys.secret_digest(self.tx_code)

    def __repr__(self) -> str:
        expected = self.expected_tx_code_digest is not None
        return (
            f"PreAuthorizedCodeRecord(configuration_ids={self.configuration_ids!r}, "
            f"tx_code={'set' if expected else None})"
        )


async def store_pre_authorized_code(
    store: Store, code: str, grant: PreAuthorizedCodeRecord, ttl: float
) -> None:
    """Record ``code`` as redeemable for ``grant`` during ``ttl`` seconds (``pre_auth:<code>``,
    keyed by the code's digest; the ``tx_code`` is stored as its digest).

    ``ttl`` is ``config.pre_authorized_code_ttl`` for the offers this library creates.

    Raises ``ValueError`` when the code already exists (codes must be fresh random values).
    """
    key = store_keys.pre_authorized_code_key(code)
    if grant.tx_code is not None:
        grant = attrs.evolve(grant, tx_code=None, tx_code_digest=grant.expected_tx_code_digest)
    if not await store.add_if_absent(key, record_to_json(grant), ttl):
        raise UsageError("pre-authorized code already exists")


@store_record
@attrs.frozen(kw_only=True, repr=False)
class AuthorizationCodeRecord:
    """What an authorization code (from the authorization endpoint) grants."""

    subject: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    code_challenge_method: str = "S256"
    configuration_ids: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    authorization_details_used: bool = False
    scope: str | None = None
    dpop_jkt: str | None = None
    issuer_state: str | None = None
    grant_id: str = attrs.field(factory=lambda: secrets.token_urlsafe(16))
    #: Thumbprint of the wallet attestation instance key of the PAR request (``None``: not
    #: attested); only a token request attested with that key may redeem the code.
    attested_jkt: str | None = None

    def __repr__(self) -> str:
        return f"AuthorizationCodeRecord(client_id={self.client_id!r})"


async def store_authorization_code(
    store: Store, code: str, grant: AuthorizationCodeRecord, ttl: float
) -> None:
    """Record an authorization code (``code:<code>``) for ``ttl`` seconds."""
    key = store_keys.authorization_code_key(code)
    if not await store.add_if_absent(key, record_to_json(grant), ttl):
        raise UsageError("authorization code already exists")


@attrs.frozen(kw_only=True, repr=False)
class TokenRequest:
    """A parsed token request (RFC 6749 §4.1.3 / OID4VCI 1.0 §6.1): grant type and form."""

    grant_type: str
    params: Mapping[str, str]
    request: HttpRequest

    def __repr__(self) -> str:
        return f"TokenRequest(grant_type={self.grant_type!r})"


@attrs.frozen(kw_only=True, repr=False)
class VerifiedTokenRequest:
    """A verified token request: what the access token will allow.

    ``authorization_details`` says whether the response carries ``authorization_details``
    with ``credential_identifiers`` (OID4VCI 1.0 §6.2). ``refresh`` is the refresh token
    family the response gets a (new) refresh token of, ``None`` for none (refresh tokens off,
    an unbound token without rotation, or a refresh without rotation: the client keeps its
    token, RFC 6749 §6).
    """

    context: TokenContext
    authorization_details: bool
    refresh: RefreshTokenRecord | None = None

    def __repr__(self) -> str:
        return f"VerifiedTokenRequest(context={self.context!r})"


def _error(error: str, description: str, *, status: int | None = None) -> TokenError:
    return TokenError(error, description, status=status)


def parse_token_request(request: HttpRequest | RequestDict, config: IssuerConfig) -> TokenRequest:
    """Parse a token request (POST, form-encoded); raises :class:`TokenError`.

    404 when an external authorization server is configured (no token endpoint here).
    """
    if config.external_authorization_server is not None:
        raise _error(ErrorCode.INVALID_REQUEST, "no token endpoint here", status=404)
    req = HttpRequest.coerce(request)
    params = parse_form_post(req, config, error_cls=TokenError)
    refuse_other_client_authentication(req, params, error_cls=TokenError)
    grant_type = params.get("grant_type")
    if not grant_type:
        raise _error(ErrorCode.INVALID_REQUEST, "grant_type is required")
    refresh = config.refresh_tokens is not None and grant_type == REFRESH_TOKEN_GRANT
    if grant_type not in (PRE_AUTHORIZED_CODE_GRANT, AUTHORIZATION_CODE_GRANT) and not refresh:
        raise _error(ErrorCode.UNSUPPORTED_GRANT_TYPE, "grant type is not supported")
    if refresh:
        for name in ("code", "code_verifier", "tx_code", "pre-authorized_code"):
            if name in params:
                raise _error(ErrorCode.INVALID_REQUEST, f"{name} is not allowed here")
        if not params.get("refresh_token"):
            raise _error(ErrorCode.INVALID_REQUEST, "refresh_token is required")
    elif grant_type == PRE_AUTHORIZED_CODE_GRANT:
        for name in ("code", "code_verifier"):
            if name in params:
                raise _error(ErrorCode.INVALID_REQUEST, f"{name} is not allowed here")
    elif "tx_code" in params or "pre-authorized_code" in params:
        raise _error(ErrorCode.INVALID_REQUEST, "pre-authorized parameters not allowed")
    return TokenRequest(grant_type=grant_type, params=params, request=req)


def _narrow(
    config: IssuerConfig, params: Mapping[str, str], granted: Sequence[str]
) -> tuple[tuple[str, ...], bool]:
    """Apply ``authorization_details`` sent in the token request (they may only narrow)."""
    text = params.get("authorization_details")
    if text is None:
        return tuple(granted), False
    try:
        details = parse_authorization_details(text)
    except WireFormatError as exc:
        raise _error(ErrorCode.INVALID_AUTHORIZATION_DETAILS, str(exc)) from None
    chosen: list[str] = []
    for detail in details:
        if detail.type != "openid_credential":
            raise _error(
                ErrorCode.INVALID_AUTHORIZATION_DETAILS, "unsupported authorization details type"
            )
        if detail.locations is not None and config.credential_issuer not in detail.locations:
            raise _error(
                ErrorCode.INVALID_AUTHORIZATION_DETAILS, "locations do not name this issuer"
            )
        cid = detail.credential_configuration_id
        if cid is None or cid not in granted:
            raise _error(
                ErrorCode.INVALID_AUTHORIZATION_DETAILS,
                "authorization details ask for a configuration that was not granted",
            )
        if cid not in chosen:
            chosen.append(cid)
    if not chosen:
        raise _error(ErrorCode.INVALID_AUTHORIZATION_DETAILS, "empty authorization details")
    return tuple(chosen), True


async def _dpop(parsed: TokenRequest, config: IssuerConfig) -> DpopProof | None:
    req = parsed.request
    if not req.headers.get_all("DPoP"):
        if not config.allow_bearer:
            raise _error(ErrorCode.INVALID_REQUEST, "DPoP proof required")
        return None

    async def code_is_known() -> None:
        await _require_known_code(parsed, config)

    return await verify_dpop_proof(
        req, config, htu=config.endpoint("token"), before_jti=code_is_known
    )


async def _require_known_code(parsed: TokenRequest, config: IssuerConfig) -> None:
    """Refuse a request whose code the store does not know, before its DPoP ``jti`` is written.

    Verifying the DPoP proof records its ``jti`` (RFC 9449 §11.1); checking just before that
    the code is live (or, for an authorization code, used: a replay must still revoke its grant,
    RFC 6749 §4.1.2) means a caller holding no code makes the token endpoint write nothing.
    The full checks follow in :func:`verify_pre_authorized_code` and
    :func:`verify_authorization_code`.
    """
    params = parsed.params
    if parsed.grant_type == REFRESH_TOKEN_GRANT:
        if not await refresh_token_is_known(params.get("refresh_token", ""), config):
            raise _error(ErrorCode.INVALID_GRANT, "refresh token is invalid, expired or used")
        return
    if parsed.grant_type == PRE_AUTHORIZED_CODE_GRANT:
        code = params.get("pre-authorized_code")
        if not code:
            raise _error(ErrorCode.INVALID_REQUEST, "pre-authorized_code is required")
        if await config.store.get(store_keys.pre_authorized_code_key(code)) is None:
            raise _error(ErrorCode.INVALID_GRANT, "pre-authorized code is invalid or expired")
        return
    code = params.get("code")
    if not code:
        raise _error(ErrorCode.INVALID_REQUEST, "code is required")
    if (
        await config.store.get(store_keys.authorization_code_key(code)) is None
        and await config.store.get(store_keys.authorization_code_used_key(code)) is None
    ):
        raise _error(ErrorCode.INVALID_GRANT, "authorization code is invalid, expired or used")


async def verify_pre_authorized_code(
    parsed: TokenRequest, config: IssuerConfig
) -> PreAuthorizedCodeRecord:
    """Check and use up a pre-authorized code (OID4VCI 1.0 §6.1, §13.6: single use,
    ``tx_code`` compared in constant time, attempts limited). Raises :class:`TokenError`."""
    params = parsed.params
    code = params.get("pre-authorized_code")
    if not code:
        raise _error(ErrorCode.INVALID_REQUEST, "pre-authorized_code is required")
    if not params.get("client_id") and not config.pre_authorized_anonymous_access:
        raise _error(ErrorCode.INVALID_CLIENT, "client_id is required (no anonymous access)")
    key = store_keys.pre_authorized_code_key(code)
    attempts_key = store_keys.pre_authorized_attempts_key(code)
    grant = record_from_json(await config.store.get(key), PreAuthorizedCodeRecord)
    if grant is None:
        raise _error(ErrorCode.INVALID_GRANT, "pre-authorized code is invalid or expired")
    sent = params.get("tx_code")
    expected = grant.expected_tx_code_digest
    if expected is None:
        if sent is not None:
            raise _error(ErrorCode.INVALID_REQUEST, "tx_code was not expected")
    else:
        if sent is None:
            raise _error(ErrorCode.INVALID_REQUEST, "tx_code is required")
        # Count every attempt first so parallel guesses cannot exceed the limit.
        attempts = await config.store.increment(
            attempts_key, store_keys.PRE_AUTHORIZED_ATTEMPTS.ttl(config)
        )
        correct = hmac.compare_digest(
            store_keys.secret_digest(sent).encode("ascii"), expected.encode("utf-8")
        )
        if not correct:
            if attempts >= config.tx_code_max_attempts:
                await config.store.delete(key)
            raise _error(ErrorCode.INVALID_GRANT, "tx_code is wrong")
        if attempts > config.tx_code_max_attempts:
            raise _error(ErrorCode.INVALID_GRANT, "too many tx_code attempts")
    # Refuse bad authorization_details before the code is used up (a rejected request must
    # leave the code redeemable).
    _narrow(config, params, grant.configuration_ids)
    taken = record_from_json(await config.store.take(key), PreAuthorizedCodeRecord)
    if taken is None:
        raise _error(ErrorCode.INVALID_GRANT, "pre-authorized code is invalid or expired")
    await config.store.delete(attempts_key)
    return taken


async def verify_authorization_code(
    parsed: TokenRequest,
    config: IssuerConfig,
    proof: DpopProof | None,
    attested: VerifiedClientAttestation | None = None,
) -> AuthorizationCodeRecord:
    """Check and use up an authorization code (RFC 6749 §4.1.3: client and redirect URI;
    RFC 7636 §4.6: PKCE; RFC 9449 §10: ``dpop_jkt``). Raises :class:`TokenError`.

    Malformed requests (a missing parameter, ``authorization_details`` asking for more than
    was granted) and, for a code pushed at PAR with a wallet attestation, a request not
    attested with the same instance key (``attested``; ``invalid_grant``,
    draft-ietf-oauth-attestation-based-client-auth-10 recommends this binding) are
    refused before the code is used up; a code that fails its bindings
    (client, redirect URI, PKCE, DPoP key) is used up. A code presented a second time revokes
    the tokens issued for it.
    """
    params = parsed.params
    code = params.get("code")
    if not code:
        raise _error(ErrorCode.INVALID_REQUEST, "code is required")
    client_id = params.get("client_id")
    if not client_id:
        raise _error(ErrorCode.INVALID_REQUEST, "client_id is required")
    verifier = params.get("code_verifier")
    if not verifier:
        raise _error(ErrorCode.INVALID_REQUEST, "code_verifier is required")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise _error(ErrorCode.INVALID_REQUEST, "redirect_uri is required")
    key = store_keys.authorization_code_key(code)
    used_key = store_keys.authorization_code_used_key(code)
    peeked = record_from_json(await config.store.get(key), AuthorizationCodeRecord)
    used_ttl = store_keys.AUTHORIZATION_CODE_USED.ttl(config)
    if peeked is not None:
        # As for pre-authorized codes: a request refused for its authorization_details leaves
        # the code redeemable.
        _narrow(config, params, peeked.configuration_ids)
        if not is_bound_instance(attested, peeked.attested_jkt):
            raise _error(
                ErrorCode.INVALID_GRANT,
                "the code is bound to the wallet attestation instance key it was pushed with",
            )
    # The grant id is marked before the code is taken, so a replay racing the winner always
    # finds it and revokes the grant (RFC 6749 §4.1.2); every racer writes the same.
    taken = await take_single_use(
        key,
        config,
        used_key=used_key,
        grant_id=peeked.grant_id if peeked is not None else None,
        used_ttl=used_ttl,
    )
    grant = record_from_json(taken, AuthorizationCodeRecord)
    if grant is None:
        raise _error(ErrorCode.INVALID_GRANT, "authorization code is invalid, expired or used")
    await config.store.put(used_key, grant.grant_id, used_ttl)
    if not is_bound_instance(attested, grant.attested_jkt):  # a racer's: peeked saw none
        raise _error(ErrorCode.INVALID_GRANT, "the code is bound to another instance key")
    if not hmac.compare_digest(client_id.encode(), grant.client_id.encode()):
        raise _error(ErrorCode.INVALID_GRANT, "code was issued to another client")
    if redirect_uri != grant.redirect_uri:
        raise _error(ErrorCode.INVALID_GRANT, "redirect_uri does not match")
    if not verify_code_challenge(verifier, grant.code_challenge, grant.code_challenge_method):
        raise _error(ErrorCode.INVALID_GRANT, "PKCE verification failed")
    if not dpop_key_matches(proof, grant.dpop_jkt):
        raise _error(ErrorCode.INVALID_GRANT, "DPoP key does not match dpop_jkt")
    return grant


def _include_details(config: IssuerConfig, used: bool) -> bool:
    return used or config.published_version in (SpecVersion.DRAFT_15, SpecVersion.V1)


def _new_family(
    config: IssuerConfig,
    context: TokenContext,
    include: bool,
    attested: VerifiedClientAttestation | None,
) -> RefreshTokenRecord | None:
    """The refresh token family of a new grant, when refresh tokens are on and allowed: a
    Bearer token gets one only with rotation (RFC 9700 §4.14.2)."""
    settings = config.refresh_tokens
    if settings is None or (context.jkt is None and not settings.rotate):
        return None
    family_end = config.clock() + settings.family_lifetime
    return RefreshTokenRecord(
        context=context,
        family_expires_at=family_end,
        expires_at=family_end,
        attested_jkt=attestation_binding(attested),
        authorization_details=include,
    )


async def _verify_refresh(
    parsed: TokenRequest,
    config: IssuerConfig,
    proof: DpopProof | None,
    attested: VerifiedClientAttestation | None,
) -> VerifiedTokenRequest:
    """A refresh request (RFC 6749 §6): the grant's context again, a new access token."""
    params = parsed.params
    if "authorization_details" in params:
        raise _error(ErrorCode.INVALID_REQUEST, "authorization_details is not allowed here")
    record = await verify_refresh_token(
        params["refresh_token"],
        config,
        client_id=params.get("client_id") or None,
        proof=proof,
        attested=attested,
        scope=params.get("scope"),
    )
    context = record.context
    settings = config.refresh_tokens
    assert settings is not None
    return VerifiedTokenRequest(
        context=context,
        authorization_details=record.authorization_details,
        refresh=record if settings.rotate else None,
    )


async def verify_token_request(parsed: TokenRequest, config: IssuerConfig) -> VerifiedTokenRequest:
    """Verify the client's wallet attestation (when sent or required), the DPoP proof and the
    grant; returns what the token will allow.

    Raises :class:`TokenError` (RFC 6749 §5.2) or :class:`~oid4vci.errors.DpopError`.
    """
    attested = await verify_client_authentication(
        parsed.request,
        config,
        client_id=parsed.params.get("client_id") or None,
        error_cls=TokenError,
    )
    if attested is not None:
        # The authenticated client is the attestation's sub (equal to any client_id sent).
        parsed = attrs.evolve(parsed, params={**parsed.params, "client_id": attested.client_id})
    proof = await _dpop(parsed, config)
    verify_dpop_combined(attested, proof, TokenError)
    if parsed.grant_type == REFRESH_TOKEN_GRANT:
        return await _verify_refresh(parsed, config, proof, attested)
    params = parsed.params
    jkt = proof.jkt if proof is not None else None
    token_type = "DPoP" if proof is not None else "Bearer"
    client_id = params.get("client_id") or None
    if parsed.grant_type == PRE_AUTHORIZED_CODE_GRANT:
        pre = await verify_pre_authorized_code(parsed, config)
        ids, used = _narrow(config, params, pre.configuration_ids)
        context = TokenContext(
            grant_id=secrets.token_urlsafe(16),
            subject=pre.subject,
            client_id=client_id,
            jkt=jkt,
            token_type=token_type,
            configuration_ids=ids,
            credential_identifiers={cid: cid for cid in ids},
            anonymous=client_id is None,
            version=config.published_version,
        )
        include = _include_details(config, used)
        return VerifiedTokenRequest(
            context=context,
            authorization_details=include,
            refresh=_new_family(config, context, include, attested),
        )
    code_grant = await verify_authorization_code(parsed, config, proof, attested)
    ids, used = _narrow(config, params, code_grant.configuration_ids)
    context = TokenContext(
        grant_id=code_grant.grant_id,
        subject=code_grant.subject,
        client_id=code_grant.client_id,
        jkt=jkt,
        token_type=token_type,
        configuration_ids=ids,
        credential_identifiers={cid: cid for cid in ids},
        scope=code_grant.scope,
        issuer_state=code_grant.issuer_state,
        version=config.published_version,
    )
    include = _include_details(config, used or code_grant.authorization_details_used)
    return VerifiedTokenRequest(
        context=context,
        authorization_details=include,
        refresh=_new_family(config, context, include, attested),
    )


async def create_token_response(
    verified: VerifiedTokenRequest, config: IssuerConfig
) -> HttpResponse:
    """Create the access token and the 200 response (RFC 6749 §5.1, OID4VCI 1.0 §6.2).

    ``authorization_details`` with ``credential_identifiers`` when ``verified`` says so; a
    ``c_nonce`` for Draft 13/14 deployments.
    """
    context = verified.context
    token, expires_in = await create_access_token(context, config)
    body: dict[str, Any] = {
        "access_token": token,
        "token_type": context.token_type,
        "expires_in": expires_in,
    }
    if verified.authorization_details:
        by_config: dict[str, list[str]] = {cid: [] for cid in context.configuration_ids}
        for ident, cid in context.credential_identifiers.items():
            by_config.setdefault(cid, []).append(ident)
        body["authorization_details"] = [
            {
                "type": "openid_credential",
                "credential_configuration_id": cid,
                "credential_identifiers": idents,
            }
            for cid, idents in by_config.items()
        ]
    if context.scope:
        body["scope"] = context.scope
    if verified.refresh is not None and config.refresh_tokens is not None:
        body["refresh_token"], _ = await create_refresh_token(verified.refresh, config)
    if config.published_version.c_nonce_in_responses:
        body["c_nonce"] = await create_c_nonce(config)
        body["c_nonce_expires_in"] = config.c_nonce_ttl
    return json_response(200, body)


def error_response(err: ProtocolError) -> HttpResponse:
    """:func:`create_error_response`, plus ``Allow: POST`` on a 405 and the
    ``OAuth-Client-Attestation-Challenge`` of ``use_attestation_challenge`` (token and PAR
    endpoints)."""
    response = with_allow(create_error_response(err), ("POST",))
    return use_attestation_challenge_response(err, response)


async def handle_token(request: HttpRequest | RequestDict, config: IssuerConfig) -> HttpResponse:
    """The token endpoint: parse → verify (client, DPoP, grant) → create the token response.

    Answers errors, never raises them: RFC 6749 §5.2 JSON, a full store as 503 with
    ``Retry-After``.
    """
    try:
        parsed = parse_token_request(request, config)
        verified = await verify_token_request(parsed, config)
        return await create_token_response(verified, config)
    except ProtocolError as err:
        return error_response(err)
    except StoreError as exc:
        return refused(exc, config, "token")
