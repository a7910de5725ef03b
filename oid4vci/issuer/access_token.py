"""Access tokens: creating them, and verifying them at the protected endpoints.

Built-in tokens are opaque random strings (256 bits). The store keeps the token's
:class:`TokenContext` under ``at:<sha256 hex of the token>`` (never the token itself as a key)
for ``access_token_ttl`` seconds (see :mod:`oid4vci.issuer.store_keys`). A grant (one
authorization code or pre-authorized code redemption) is revoked by writing
``grant_revoked:<grant_id>``; tokens of a revoked grant are refused.

With an :class:`~oid4vci.issuer.config.ExternalAuthorizationServer`, access tokens are that
server's RFC 9068 JWTs (``typ`` ``at+jwt``), checked against its JWKS, ``iss``, ``aud``,
``exp`` and bound through ``cnf.jkt``.

:func:`verify_access_token` is the verify stage the credential, deferred and notification
endpoints share (RFC 6750 §2.1, RFC 9449 §7). Failures raise
:class:`~oid4vci.issuer.responses.ResourceServerError`, which
:func:`~oid4vci.issuer.responses.create_error_response` turns into a 401 with a
``WWW-Authenticate`` challenge.

Also here, because several endpoints need them: server ``DPoP-Nonce`` values (RFC 9449 §8 and
§9; stateless, see :mod:`oid4vci.issuer.stateless_nonce`: minting or checking one touches no
store, and one may be reused until it expires), the ``jti`` replay cache adapter and
:func:`verify_dpop_proof` (the issuer's DPoP policy applied to
:func:`oid4vci.dpop.verify_dpop_jwt`).
"""

from __future__ import annotations

import functools
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs

from oid4vci._wire import record_from_json, record_to_json, store_record
from oid4vci.dpop import DpopProof, verify_dpop_jwt
from oid4vci.errors import DpopError, ErrorCode, JoseError, UsageError
from oid4vci.http import HttpRequest, RequestDict
from oid4vci.issuer import store_keys
from oid4vci.issuer.config import IssuerConfig
from oid4vci.issuer.responses import ResourceServerError
from oid4vci.issuer.stateless_nonce import NoncePurpose, is_live_nonce, seal_nonce
from oid4vci.issuer.store import Store
from oid4vci.jose import decode_jws, verify_jws
from oid4vci.versions import SpecVersion

__all__ = [
    "TokenContext",
    "create_access_token",
    "create_dpop_nonce",
    "dpop_key_matches",
    "grant_is_revoked",
    "is_live_dpop_nonce",
    "revoke_grant",
    "take_single_use",
    "verify_access_token",
    "verify_dpop_proof",
]

_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_MAX_TOKEN_LENGTH = 8192


@store_record
@attrs.frozen(kw_only=True, repr=False)
class TokenContext:
    """What an access token allows, as the protected endpoints see it.

    ``credential_identifiers`` maps each credential identifier handed out in the token
    response to its configuration id. ``client_id`` is ``None`` for anonymous pre-authorized
    access (key proofs must then omit ``iss``). ``jkt`` is the DPoP key thumbprint the token is
    bound to (``None`` for Bearer tokens). ``version`` is a hint of the spec version the client
    spoke at the token endpoint, when known.
    """

    grant_id: str
    subject: str
    client_id: str | None = None
    jkt: str | None = None
    token_type: str = "DPoP"
    configuration_ids: tuple[str, ...] = ()
    credential_identifiers: Mapping[str, str] = attrs.field(factory=dict)
    expires_at: float = 0.0
    anonymous: bool = False
    scope: str | None = None
    issuer_state: str | None = None
    version: SpecVersion | None = None
    external: bool = False

    @property
    def dpop_bound(self) -> bool:
        """True when the token may only be used with a DPoP proof of key ``jkt``."""
        return self.jkt is not None

    def configuration_for_identifier(self, identifier: str) -> str | None:
        """The configuration id behind a ``credential_identifier``, or ``None``."""
        return self.credential_identifiers.get(identifier)

    def __repr__(self) -> str:
        return (
            f"TokenContext(token_type={self.token_type!r}, anonymous={self.anonymous}, "
            f"configuration_ids={self.configuration_ids!r})"
        )


async def create_access_token(context: TokenContext, config: IssuerConfig) -> tuple[str, int]:
    """Create an opaque access token for ``context``; returns ``(token, expires_in)``.

    ``context.expires_at`` is replaced by now + ``config.access_token_ttl`` (RFC 6749 §5.1).
    """
    ttl = config.access_token_ttl
    token = secrets.token_urlsafe(32)
    key_ttl = store_keys.ACCESS_TOKEN.ttl(config)
    stored = attrs.evolve(context, expires_at=config.clock() + ttl)
    await config.store.put(store_keys.access_token_key(token), record_to_json(stored), key_ttl)
    return token, ttl


# A grant's revocation key is read on every request with one of its access tokens: the digest
# is a pure function of the grant id, so the last ones are kept.
_grant_revoked_key = functools.lru_cache(maxsize=1024)(store_keys.grant_revoked_key)


async def revoke_grant(grant_id: str, config: IssuerConfig) -> None:
    """Refuse every access token issued for ``grant_id`` from now on."""
    key, ttl = _grant_revoked_key(grant_id), store_keys.GRANT_REVOKED.ttl(config)
    await config.store.put(key, True, ttl)


async def grant_is_revoked(grant_id: str, config: IssuerConfig) -> bool:
    """True when :func:`revoke_grant` was called for ``grant_id`` (within the token lifetime)."""
    return await config.store.get(_grant_revoked_key(grant_id)) is not None


async def take_single_use(
    key: str, config: IssuerConfig, *, used_key: str, grant_id: str | None, used_ttl: float
) -> Any:
    """Take the single-use record under ``key`` (an authorization code, a rotating refresh
    token); ``None`` when it is gone.

    ``used_key`` is first marked with ``grant_id`` (when known), so that of two parallel uses
    the loser always finds the mark; a use that finds the record gone revokes the grant named
    by the mark (a replayed code, RFC 6749 §4.1.2; a reused refresh token, RFC 9700 §4.14.2).
    """
    store = config.store
    if grant_id is not None:
        await store.put(used_key, grant_id, used_ttl)
    taken = await store.take(key)
    if taken is None:
        used = await store.get(used_key)
        if isinstance(used, str):
            await revoke_grant(used, config)
    return taken


# -- DPoP nonces (RFC 9449 §8) -------------------------------------------------------------


async def create_dpop_nonce(config: IssuerConfig) -> str:
    """A fresh server ``DPoP-Nonce``, valid ``config.dpop_nonce_ttl`` seconds (reusable).

    Stateless: sealed with ``config.nonce_keys``; nothing is written to the store.
    """
    return seal_nonce(
        config.nonce_keys,
        NoncePurpose.DPOP_NONCE,
        audience=config.credential_issuer,
        expires_at=config.clock() + config.dpop_nonce_ttl,
    )


async def is_live_dpop_nonce(nonce: str, config: IssuerConfig) -> bool:
    """True when ``nonce`` is a live server ``DPoP-Nonce`` of this issuer (no store access).

    RFC 9449 §8 lets the server decide how long a nonce is good for: it may be reused until it
    expires; replayed proofs are caught by the ``jti`` cache, not by the nonce.
    """
    return is_live_nonce(
        nonce,
        config.nonce_keys,
        NoncePurpose.DPOP_NONCE,
        audience=config.credential_issuer,
        now=config.clock(),
    )


# -- DPoP ----------------------------------------------------------------------------------


class _JtiStore:
    """Adapts a :class:`Store` to :class:`oid4vci.dpop.JtiStore` (keys ``dpop-jti:…``)."""

    def __init__(self, store: Store, before: Callable[[], Awaitable[None]] | None = None) -> None:
        self._store = store
        self._before = before

    async def add_if_absent(self, key: str, ttl: float) -> bool:
        """Record ``key`` for ``ttl`` seconds; False when it was already there (a replay).

        ``before`` (when given) runs first and may refuse the request, so nothing is written.
        """
        if not key.startswith(store_keys.dpop_jti_prefix()):
            raise UsageError("not a DPoP jti key")
        if self._before is not None:
            await self._before()
        return await self._store.add_if_absent(key, True, ttl)


async def verify_dpop_proof(
    request: HttpRequest | RequestDict,
    config: IssuerConfig,
    *,
    htu: str | None = None,
    access_token: str | None = None,
    expected_jkt: str | None = None,
    before_jti: Callable[[], Awaitable[None]] | None = None,
) -> DpopProof:
    """Verify the request's DPoP proof with the issuer's policy.

    ``htu`` is the public URL of the endpoint (defaults to the request URL); algorithms,
    server nonces (``require_dpop_nonce``), freshness and the ``jti`` replay cache come from
    ``config``. Raises :class:`~oid4vci.errors.DpopError` (status 400). ``before_jti`` runs
    once the proof is otherwise valid, just before its ``jti`` is recorded; it may raise to
    refuse the request with nothing written (the token endpoint checks the code there).
    """

    async def check(nonce: str) -> bool:
        return await is_live_dpop_nonce(nonce, config)

    async def new() -> str:
        return await create_dpop_nonce(config)

    return await verify_dpop_jwt(
        request,
        htu=htu,
        algorithms=config.dpop_algorithms,
        access_token=access_token,
        expected_jkt=expected_jkt,
        nonce_required=config.require_dpop_nonce,
        check_nonce=check,
        new_nonce=new,
        jti_store=_JtiStore(config.store, before_jti),
        max_age=config.dpop_max_age,
        clock=config.clock,
    )


def dpop_key_matches(proof: DpopProof | None, jkt: str | None) -> bool:
    """Whether a request with ``proof`` may use something bound to the DPoP key ``jkt``
    (a code's ``dpop_jkt``, RFC 9449 §10; a refresh token, RFC 9449 §5): always when unbound,
    else only with a proof of that key (compared in constant time)."""
    if jkt is None:
        return True
    return proof is not None and hmac.compare_digest(proof.jkt.encode(), jkt.encode())


# -- resource requests ---------------------------------------------------------------------


_CONTEXTS_MAX = 1024
# The TokenContext parsed from each stored token record, with the record it came from. The
# store is still read on every request (a deleted, rotated or expired token is gone there, and
# the grant's revocation and the expiry are checked after this): only the parsing of a record
# equal to the one parsed before is skipped. Emptied when full.
_contexts: dict[str, tuple[object, TokenContext]] = {}


def _token_context(key: str, raw: object) -> TokenContext | None:
    """The :class:`TokenContext` of the stored record ``raw`` (``None`` when malformed)."""
    cached = _contexts.get(key)
    if cached is not None and type(raw) is dict and cached[0] == raw:
        return cached[1]
    context = record_from_json(raw, TokenContext)
    if context is not None:
        if len(_contexts) >= _CONTEXTS_MAX:
            _contexts.clear()
        _contexts[key] = (raw, context)
    return context


def _accepted_schemes(config: IssuerConfig) -> tuple[str, ...]:
    return ("Bearer", "DPoP") if config.allow_bearer else ("DPoP",)


def _fail(
    config: IssuerConfig,
    error: str,
    description: str | None,
    *,
    scheme: str = "DPoP",
    dpop_nonce: str | None = None,
) -> ResourceServerError:
    return ResourceServerError(
        error,
        description,
        schemes=(scheme,),
        dpop_algorithms=config.dpop_algorithms,
        dpop_nonce=dpop_nonce,
    )


async def verify_access_token(
    request: HttpRequest | RequestDict,
    config: IssuerConfig,
    *,
    htu: str | None = None,
) -> TokenContext:
    """Verify the access token of a request to a protected endpoint; returns its context.

    Accepts ``Authorization: DPoP <token>`` with a ``DPoP`` proof (``ath``, bound key, method,
    ``htu`` = ``htu`` or the request URL, ``jti`` replay, server nonce when
    required) and, only when ``config.allow_bearer`` and the token is not DPoP-bound,
    ``Authorization: Bearer <token>``. Raises :class:`ResourceServerError` (401 with a
    ``WWW-Authenticate`` challenge; an empty ``error`` when no credentials were sent).
    """
    req = HttpRequest.coerce(request)
    values = req.headers.get_all("Authorization")
    if not values:
        raise ResourceServerError(
            "",
            None,
            schemes=_accepted_schemes(config),
            dpop_algorithms=config.dpop_algorithms,
        )
    if len(values) > 1:
        raise _fail(config, ErrorCode.INVALID_REQUEST, "more than one Authorization header")
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    lowered = scheme.lower()
    if lowered not in ("dpop", "bearer") or (lowered == "bearer" and not config.allow_bearer):
        if lowered == "bearer":
            raise _fail(config, ErrorCode.INVALID_TOKEN, "a DPoP-bound access token is required")
        raise ResourceServerError(
            "",
            None,
            schemes=_accepted_schemes(config),
            dpop_algorithms=config.dpop_algorithms,
        )
    used = "DPoP" if lowered == "dpop" else "Bearer"
    if not token or len(token) > _MAX_TOKEN_LENGTH or not _TOKEN68.fullmatch(token):
        raise _fail(config, ErrorCode.INVALID_TOKEN, "malformed access token", scheme=used)

    if config.external_authorization_server is not None:
        context = _external_context(config, token, used)
    else:
        key = store_keys.access_token_key(token)
        stored = _token_context(key, await config.store.get(key))
        if stored is None:
            raise _fail(
                config, ErrorCode.INVALID_TOKEN, "unknown or expired access token", scheme=used
            )
        context = stored
        if context.expires_at <= config.clock():
            raise _fail(config, ErrorCode.INVALID_TOKEN, "access token expired", scheme=used)
        if await grant_is_revoked(context.grant_id, config):
            raise _fail(config, ErrorCode.INVALID_TOKEN, "access token revoked", scheme=used)

    if context.jkt is None:
        if used == "DPoP":
            raise _fail(config, ErrorCode.INVALID_TOKEN, "access token is not DPoP-bound")
        if not config.allow_bearer:
            raise _fail(config, ErrorCode.INVALID_TOKEN, "a DPoP-bound access token is required")
        return context
    if used == "Bearer":
        # RFC 9449 §7.2: a DPoP-bound token must not be accepted as a bearer token.
        raise _fail(config, ErrorCode.INVALID_TOKEN, "access token is DPoP-bound; use DPoP")
    try:
        await verify_dpop_proof(req, config, htu=htu, access_token=token, expected_jkt=context.jkt)
    except DpopError as err:
        raise _fail(config, err.error, err.error_description, dpop_nonce=err.dpop_nonce) from None
    return context


def _external_context(config: IssuerConfig, token: str, scheme: str) -> TokenContext:
    """Check an RFC 9068 JWT access token of the external authorization server."""
    external = config.external_authorization_server
    assert external is not None

    def bad(description: str) -> ResourceServerError:
        return _fail(config, ErrorCode.INVALID_TOKEN, description, scheme=scheme)

    try:
        decoded = decode_jws(token)
    except JoseError:
        raise bad("access token is not a JWT") from None
    typ = decoded.header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in ("at+jwt", "application/at+jwt"):
        raise bad("access token typ is not at+jwt")
    kid = decoded.header.get("kid")
    keys = [k for k in external.jwks if kid is None or k.get("kid") in (None, kid)]
    verified = False
    for jwk in keys:
        try:
            verify_jws(decoded, jwk, algorithms=external.algorithms)
        except JoseError:
            continue
        verified = True
        break
    if not verified:
        raise bad("access token signature is invalid")
    claims = decoded.payload
    now = config.clock()
    if claims.get("iss") != external.issuer:
        raise bad("access token issuer is not trusted")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    accepted = set(external.audiences or (config.credential_issuer,))
    if not accepted.intersection(a for a in audiences if isinstance(a, str)):
        raise bad("access token audience is not this credential issuer")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise bad("access token has no exp")
    if exp + external.leeway <= now:
        raise bad("access token expired")
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and not isinstance(nbf, bool) and nbf - external.leeway > now:
        raise bad("access token is not yet valid")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise bad("access token has no sub")
    cnf = claims.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
    if jkt is not None and not isinstance(jkt, str):
        raise bad("access token cnf.jkt is malformed")
    identifiers: dict[str, str] = {}
    configuration_ids: list[str] = []
    details = claims.get("authorization_details")
    if isinstance(details, list):
        for item in details:
            if not isinstance(item, Mapping) or item.get("type") != "openid_credential":
                continue
            cid = item.get("credential_configuration_id")
            if not isinstance(cid, str) or cid not in config.credential_configurations:
                continue
            if cid not in configuration_ids:
                configuration_ids.append(cid)
            ids = item.get("credential_identifiers")
            for ident in ids if isinstance(ids, list) else [cid]:
                if isinstance(ident, str):
                    identifiers[ident] = cid
    scope = claims.get("scope")
    if isinstance(scope, str):
        scopes = set(scope.split())
        for cid, spec in config.credential_configurations.items():
            if spec.scope and spec.scope in scopes and cid not in configuration_ids:
                configuration_ids.append(cid)
                identifiers.setdefault(cid, cid)
    jti = claims.get("jti")
    grant_id = jti if isinstance(jti, str) and jti else store_keys.secret_digest(token)
    client_id = claims.get("client_id")
    return TokenContext(
        grant_id=grant_id,
        subject=sub,
        client_id=client_id if isinstance(client_id, str) else None,
        jkt=jkt,
        token_type="DPoP" if jkt else "Bearer",
        configuration_ids=tuple(configuration_ids),
        credential_identifiers=identifiers,
        expires_at=float(exp),
        anonymous=not isinstance(client_id, str),
        scope=scope if isinstance(scope, str) else None,
        external=True,
    )
