"""The token endpoint (RFC 6749 §3.2, OID4VCI §6): pre-authorized and authorization code grants.

Store layout (other modules write the codes this endpoint redeems):

* ``pre_auth:<code>`` → :class:`PreAuthorizedGrant` JSON, written by the offer side through
  :func:`store_pre_authorized_code`; taken once on success.
* ``pre_auth_attempts:<code>`` → counter of redemption attempts with a ``tx_code``; after
  ``tx_code_max_attempts`` wrong ones the code is deleted (burned).
* ``code:<code>`` → :class:`AuthorizationCodeGrant` JSON, written by the authorization endpoint;
  taken once. ``code_used:<code>`` → the grant id it produced, so a replayed code revokes the
  tokens issued for it (RFC 6749 §4.1.2).

The flow of :func:`handle_token`: :func:`parse_token_request` (method, content type, size, form)
→ DPoP proof (:func:`~oid4vci.issuer.access_token.verify_dpop_proof`) → grant checks
(:func:`redeem_pre_authorized_code` / :func:`redeem_authorization_code`) →
:func:`create_token_response`.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from oid4vci.dpop import DpopProof
from oid4vci.errors import ErrorCode, ProtocolError, StoreError, TokenError, WireFormatError
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer._request_body import read_form_post
from oid4vci.issuer.access_token import (
    TokenContext,
    issue_access_token,
    revoke_grant,
    verify_dpop_proof,
)
from oid4vci.issuer.config import IssuerConfig, _str_tuple
from oid4vci.issuer.nonce import new_c_nonce
from oid4vci.issuer.responses import (
    create_error_response,
    json_response,
    temporarily_unavailable,
)
from oid4vci.issuer.store import Store
from oid4vci.models.authorization import parse_authorization_details
from oid4vci.models.offer import PRE_AUTHORIZED_CODE_GRANT
from oid4vci.pkce import verify_code_challenge
from oid4vci.versions import SpecVersion

__all__ = [
    "AUTHORIZATION_CODE_GRANT",
    "PRE_AUTHORIZED_CODE_GRANT",
    "AuthorizationCodeGrant",
    "PreAuthorizedGrant",
    "TokenRequest",
    "create_token_response",
    "handle_token",
    "parse_token_request",
    "redeem_authorization_code",
    "redeem_pre_authorized_code",
    "store_authorization_code",
    "store_pre_authorized_code",
]

#: ``grant_type`` of the pre-authorized code flow (OID4VCI).
#: ``grant_type`` of the authorization code flow (RFC 6749).
AUTHORIZATION_CODE_GRANT = "authorization_code"


@attrs.frozen(kw_only=True, repr=False)
class PreAuthorizedGrant:
    """What a pre-authorized code (from a credential offer) grants.

    ``tx_code`` is the expected transaction code, or ``None`` when the offer had no ``tx_code``
    object. ``data`` is free application data carried into nothing but the store.
    """

    subject: str
    configuration_ids: tuple[str, ...] = attrs.field(converter=_str_tuple)
    tx_code: str | None = None
    offer_id: str | None = None
    data: Mapping[str, Any] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "subject": self.subject,
            "configuration_ids": list(self.configuration_ids),
            "tx_code": self.tx_code,
            "offer_id": self.offer_id,
            "data": dict(self.data),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PreAuthorizedGrant:
        """The inverse of :meth:`to_json`."""
        return cls(
            subject=str(data["subject"]),
            configuration_ids=tuple(data.get("configuration_ids") or ()),
            tx_code=data.get("tx_code"),
            offer_id=data.get("offer_id"),
            data=dict(data.get("data") or {}),
        )

    def __repr__(self) -> str:
        return (
            f"PreAuthorizedGrant(configuration_ids={self.configuration_ids!r}, "
            f"tx_code={'set' if self.tx_code is not None else None})"
        )


async def store_pre_authorized_code(
    store: Store, code: str, grant: PreAuthorizedGrant, ttl: float
) -> None:
    """Record ``code`` as redeemable for ``grant`` during ``ttl`` seconds (``pre_auth:<code>``).

    Raises ``ValueError`` when the code already exists (codes must be fresh random values).
    """
    if not await store.add_if_absent(f"pre_auth:{code}", grant.to_json(), ttl):
        raise ValueError("pre-authorized code already exists")


@attrs.frozen(kw_only=True, repr=False)
class AuthorizationCodeGrant:
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

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "subject": self.subject,
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "code_challenge": self.code_challenge,
            "code_challenge_method": self.code_challenge_method,
            "configuration_ids": list(self.configuration_ids),
            "authorization_details_used": self.authorization_details_used,
            "scope": self.scope,
            "dpop_jkt": self.dpop_jkt,
            "issuer_state": self.issuer_state,
            "grant_id": self.grant_id,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuthorizationCodeGrant:
        """The inverse of :meth:`to_json`."""
        return cls(
            subject=str(data["subject"]),
            client_id=str(data["client_id"]),
            redirect_uri=str(data["redirect_uri"]),
            code_challenge=str(data["code_challenge"]),
            code_challenge_method=str(data.get("code_challenge_method") or "S256"),
            configuration_ids=tuple(data.get("configuration_ids") or ()),
            authorization_details_used=bool(data.get("authorization_details_used")),
            scope=data.get("scope"),
            dpop_jkt=data.get("dpop_jkt"),
            issuer_state=data.get("issuer_state"),
            grant_id=str(data["grant_id"]),
        )

    def __repr__(self) -> str:
        return f"AuthorizationCodeGrant(client_id={self.client_id!r})"


async def store_authorization_code(
    store: Store, code: str, grant: AuthorizationCodeGrant, ttl: float
) -> None:
    """Record an authorization code (``code:<code>``) for ``ttl`` seconds."""
    if not await store.add_if_absent(f"code:{code}", grant.to_json(), ttl):
        raise ValueError("authorization code already exists")


@attrs.frozen(kw_only=True, repr=False)
class TokenRequest:
    """A parsed token request: the grant type and the form parameters."""

    grant_type: str
    params: Mapping[str, str]
    request: HttpRequest

    def __repr__(self) -> str:
        return f"TokenRequest(grant_type={self.grant_type!r})"


def _error(error: str, description: str, *, status: int | None = None) -> TokenError:
    return TokenError(error, description, status=status)


def parse_token_request(request: HttpRequest | RequestDict, config: IssuerConfig) -> TokenRequest:
    """Read a token request (POST, form-encoded); raises :class:`TokenError`."""
    req = HttpRequest.coerce(request)
    params = read_form_post(req, config, error_cls=TokenError)
    grant_type = params.get("grant_type")
    if not grant_type:
        raise _error(ErrorCode.INVALID_REQUEST, "grant_type is required")
    if grant_type not in (PRE_AUTHORIZED_CODE_GRANT, AUTHORIZATION_CODE_GRANT):
        raise _error(ErrorCode.UNSUPPORTED_GRANT_TYPE, "grant type is not supported")
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


async def _dpop(config: IssuerConfig, req: HttpRequest) -> DpopProof | None:
    if not req.headers.get_all("DPoP"):
        if not config.allow_bearer:
            raise _error(ErrorCode.INVALID_REQUEST, "DPoP proof required")
        return None
    return await verify_dpop_proof(config, req, htu=config.endpoint("token"))


async def redeem_pre_authorized_code(
    config: IssuerConfig, params: Mapping[str, str]
) -> PreAuthorizedGrant:
    """Check and consume a pre-authorized code (single use, ``tx_code`` attempts limited)."""
    code = params.get("pre-authorized_code")
    if not code:
        raise _error(ErrorCode.INVALID_REQUEST, "pre-authorized_code is required")
    if not params.get("client_id") and not config.pre_authorized_anonymous_access:
        raise _error(ErrorCode.INVALID_CLIENT, "client_id is required (no anonymous access)")
    key = f"pre_auth:{code}"
    data = await config.store.get(key)
    if not isinstance(data, Mapping):
        raise _error(ErrorCode.INVALID_GRANT, "pre-authorized code is invalid or expired")
    grant = PreAuthorizedGrant.from_json(data)
    sent = params.get("tx_code")
    if grant.tx_code is None:
        if sent is not None:
            raise _error(ErrorCode.INVALID_REQUEST, "tx_code was not expected")
    else:
        if sent is None:
            raise _error(ErrorCode.INVALID_REQUEST, "tx_code is required")
        # Count every attempt first so parallel guesses cannot exceed the limit.
        attempts = await config.store.increment(
            f"pre_auth_attempts:{code}", config.pre_authorized_code_ttl
        )
        correct = hmac.compare_digest(sent.encode("utf-8"), grant.tx_code.encode("utf-8"))
        if not correct:
            if attempts >= config.tx_code_max_attempts:
                await config.store.delete(key)
            raise _error(ErrorCode.INVALID_GRANT, "tx_code is wrong")
        if attempts > config.tx_code_max_attempts:
            raise _error(ErrorCode.INVALID_GRANT, "too many tx_code attempts")
    # Refuse bad authorization_details before the code is used up (a rejected request must
    # leave the code redeemable).
    _narrow(config, params, grant.configuration_ids)
    taken = await config.store.take(key)
    if not isinstance(taken, Mapping):
        raise _error(ErrorCode.INVALID_GRANT, "pre-authorized code is invalid or expired")
    await config.store.delete(f"pre_auth_attempts:{code}")
    return PreAuthorizedGrant.from_json(taken)


async def redeem_authorization_code(
    config: IssuerConfig, params: Mapping[str, str], proof: DpopProof | None
) -> AuthorizationCodeGrant:
    """Check and consume an authorization code (PKCE, client, redirect URI, ``dpop_jkt``).

    Malformed requests (a missing parameter, ``authorization_details`` asking for more than
    was granted) are refused before the code is used up; a code that fails its bindings
    (client, redirect URI, PKCE, DPoP key) is used up. A code presented a second time revokes
    the tokens issued for it.
    """
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
    key = f"code:{code}"
    peeked = await config.store.get(key)
    if isinstance(peeked, Mapping):
        # As for pre-authorized codes: a request refused for its authorization_details leaves
        # the code redeemable.
        _narrow(config, params, AuthorizationCodeGrant.from_json(peeked).configuration_ids)
    data = await config.store.take(key)
    if not isinstance(data, Mapping):
        used = await config.store.get(f"code_used:{code}")
        if isinstance(used, str):
            await revoke_grant(config, used)
        raise _error(ErrorCode.INVALID_GRANT, "authorization code is invalid, expired or used")
    grant = AuthorizationCodeGrant.from_json(data)
    await config.store.put(
        f"code_used:{code}",
        grant.grant_id,
        max(config.access_token_ttl, config.authorization_code_ttl),
    )
    if not hmac.compare_digest(client_id.encode(), grant.client_id.encode()):
        raise _error(ErrorCode.INVALID_GRANT, "code was issued to another client")
    if redirect_uri != grant.redirect_uri:
        raise _error(ErrorCode.INVALID_GRANT, "redirect_uri does not match")
    if not verify_code_challenge(verifier, grant.code_challenge, grant.code_challenge_method):
        raise _error(ErrorCode.INVALID_GRANT, "PKCE verification failed")
    if grant.dpop_jkt is not None and (
        proof is None or not hmac.compare_digest(proof.jkt.encode(), grant.dpop_jkt.encode())
    ):
        raise _error(ErrorCode.INVALID_GRANT, "DPoP key does not match dpop_jkt")
    return grant


async def create_token_response(
    config: IssuerConfig,
    context: TokenContext,
    *,
    authorization_details: bool,
    headers: object = None,
) -> HttpResponse:
    """Issue the access token for ``context`` and build the 200 response.

    ``authorization_details`` says whether to return ``authorization_details`` with
    ``credential_identifiers``. A ``c_nonce`` is added for Draft 13/14 deployments.
    """
    token, expires_in = await issue_access_token(config, context)
    body: dict[str, Any] = {
        "access_token": token,
        "token_type": context.token_type,
        "expires_in": expires_in,
    }
    if authorization_details:
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
    if config.published_version.c_nonce_in_responses:
        body["c_nonce"] = await new_c_nonce(config)
        body["c_nonce_expires_in"] = config.c_nonce_ttl
    return json_response(200, body, headers=headers)


def error_response(err: ProtocolError) -> HttpResponse:
    """:func:`create_error_response`, plus ``Allow: POST`` on a 405 (token and PAR endpoints)."""
    response = create_error_response(err)
    if response.status == 405:
        response = attrs.evolve(response, headers=response.headers.with_header("Allow", "POST"))
    return response


def _include_details(config: IssuerConfig, used: bool) -> bool:
    return used or config.published_version in (SpecVersion.DRAFT_15, SpecVersion.V1)


async def handle_token(request: HttpRequest | RequestDict, config: IssuerConfig) -> HttpResponse:
    """The token endpoint: parse → DPoP → redeem the grant → token response.

    Errors are answered as JSON (RFC 6749 §5.2); a full store as 503 with ``Retry-After``.
    """
    try:
        if config.external_authorization_server is not None:
            raise _error(ErrorCode.INVALID_REQUEST, "no token endpoint here", status=404)
        parsed = parse_token_request(request, config)
        proof = await _dpop(config, parsed.request)
        params = parsed.params
        jkt = proof.jkt if proof is not None else None
        token_type = "DPoP" if proof is not None else "Bearer"
        client_id = params.get("client_id") or None
        if parsed.grant_type == PRE_AUTHORIZED_CODE_GRANT:
            for name in ("code", "code_verifier"):
                if name in params:
                    raise _error(ErrorCode.INVALID_REQUEST, f"{name} is not allowed here")
            pre = await redeem_pre_authorized_code(config, params)
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
        else:
            if "tx_code" in params or "pre-authorized_code" in params:
                raise _error(ErrorCode.INVALID_REQUEST, "pre-authorized parameters not allowed")
            code_grant = await redeem_authorization_code(config, params, proof)
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
        return await create_token_response(config, context, authorization_details=include)
    except ProtocolError as err:
        return error_response(err)
    except StoreError:
        return temporarily_unavailable()
