"""The issuer's store key schema: every key prefix, who owns it, how long it lives, single use.

Every issuer module builds its :class:`~oid4vci.issuer.store.Store` keys through the functions
here, and :data:`KEY_SCHEMA` lists each prefix once (a test checks that nothing else is
written). A tenant's keys are additionally prefixed with ``<credential issuer>|`` by
:func:`~oid4vci.issuer.store.scoped_store` (see :meth:`IssuerConfig.for_issuer
<oid4vci.issuer.config.IssuerConfig.for_issuer>`).

=========================  ======================  ===============================================  ==========
prefix                     owner (writes it)       TTL                                              single use
=========================  ======================  ===============================================  ==========
``pre_auth:``              offers → token          ``pre_authorized_code_ttl``                      yes
``pre_auth_attempts:``     token                   ``pre_authorized_code_ttl``                      no
``issuer_state:``          offers → authorization  max(``pre_authorized_code_ttl``,                 yes
                                                   ``pending_authorization_ttl``)
``offer:``                 offers                  ``pre_authorized_code_ttl``                      unless reusable
``par:``                   par → authorization     ``par_ttl``                                      yes
``authz_pending:``         authorization           ``pending_authorization_ttl``                    yes
``code:``                  authorization → token   ``authorization_code_ttl``                       yes
``code_used:``             token                   max(``access_token_ttl``,                        no
                                                   ``authorization_code_ttl``)
``at:``                    access_token            ``access_token_ttl``                             no
``grant_revoked:``         access_token            max(``access_token_ttl``,                        no
                                                   ``refresh_tokens.family_lifetime``)
``refresh:``               refresh_token → token   ``refresh_tokens.ttl`` (≤ the family's end)      with rotate
``refresh_used:``          refresh_token           ``refresh_tokens.family_lifetime``               no
``dpop-jti:``              access_token (DPoP)     ``dpop_max_age`` + 60 s                          yes
``c_nonce_used:``          nonce (redemption)      the nonce's remaining life (≤ ``c_nonce_ttl``)   yes
``attest_pop_jti:``        client_attestation      ``attestation.pop_max_age`` + 2 × ``clock_skew`` yes
``deferred:``              credential → deferred   :data:`DEFERRED_TTL` (24 h)                      yes
``deferred_lock:``         deferred                :data:`DEFERRED_LOCK_TTL` (60 s)                 yes
``notification:``          notification            max(``access_token_ttl``, 1 h)                   no
``notification_change:``   notification            max(``access_token_ttl``, 1 h)                   yes
``status_current:``        status_list             until the current list's end                     no
``status_list:``           status_list             ``status.list_lifetime`` (until the list's end)  no
``status_next:``           status_list             until the full list's end                        no
``status_fill:``           status_list             until the list's end                             no
``status_idx:``            status_list             until the list's end                             no
``status_version:``        status_list             until the list's end                             no
``status_change:``         status_list             until the list's end                             no
``status_subject_n:``      status_list             2 × ``status.list_lifetime``                     no
``status_subject:``        status_list             until the list's end                             no
``rate:``                  flood_limits            until the client's token bucket is full again    no
``quota:``                 flood_limits            the purpose's window (its entries' TTL)          no
=========================  ======================  ===============================================  ==========

``rate:`` and ``quota:`` are the flood limits (:mod:`oid4vci.issuer.flood_limits`): a token
bucket per client address and endpoint, and one fixed-window counter per quota purpose. They
are the deployment's, never prefixed with a tenant (the tenants share one store and its bound).

The ``status_*`` keys are the Token Status Lists (:mod:`oid4vci.issuer.status_list`): every key
of one list expires when the list does (``status.list_lifetime`` after its creation), so an
index is never handed out twice while its list lives; ``status_idx:`` entries are claimed with
``add_if_absent`` (one winner per index across processes).

"Single use" keys are read with :meth:`Store.take <oid4vci.issuer.store.Store.take>` (or
written with ``add_if_absent``, for the DPoP ``jti`` replay cache), so two parallel requests
can never both use one.

**Secrets are never keys.** Every key made of a value a client presents (codes, tokens,
``issuer_state``, offer ids, ``request_uri``, login handles, ``transaction_id``,
``notification_id``, redeemed ``c_nonce`` ids) carries its :func:`secret_digest` (SHA-256,
hex) instead (the ``hashed`` rows, :attr:`StoreKey.hashed`), so ``KEYS``, ``MONITOR`` or a
slow log of a Redis store shows nothing a client could replay. A stored ``tx_code`` is its
digest too, a pending login is stored without its handle, and an offer published by reference
(``offer:``, whose JSON holds the pre-authorized code) is sealed under a key derived from its
id (:class:`~oid4vci.issuer.offers.SealedOfferRecord`).

Refresh tokens (:mod:`oid4vci.issuer.refresh_token`) are keyed like access tokens, by their
SHA-256 (``refresh:<hex>``); with rotation, a used one leaves ``refresh_used:<hex>`` (its
grant id), so presenting it again revokes the grant (``grant_revoked:``, kept as long as a
refresh token of the grant may live).

``c_nonce`` and server ``DPoP-Nonce`` values are stateless
(:mod:`oid4vci.issuer.stateless_nonce`): minting them writes nothing. A ``c_nonce`` is written
only when redeemed by a request that passed its access token, DPoP and key proof checks
(``c_nonce_used:<id>``, ``add_if_absent``, ``<id>`` the nonce's random part); DPoP nonces are
never written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from oid4vci.issuer.config import IssuerConfig

__all__ = [
    "DEFERRED_LOCK",
    "DEFERRED_LOCK_TTL",
    "DEFERRED_TTL",
    "KEY_SCHEMA",
    "NOTIFICATION_MIN_TTL",
    "STATUS_KEYS",
    "StoreKey",
    "access_token_key",
    "attestation_pop_jti_key",
    "authorization_code_key",
    "authorization_code_used_key",
    "c_nonce_used_key",
    "deferred_key",
    "deferred_lock_key",
    "dpop_jti_prefix",
    "grant_revoked_key",
    "issuer_state_key",
    "notification_change_key",
    "notification_key",
    "offer_key",
    "par_key",
    "pending_login_key",
    "pre_authorized_attempts_key",
    "pre_authorized_code_key",
    "quota_key",
    "rate_key",
    "refresh_token_key",
    "refresh_used_key",
    "secret_digest",
    "status_change_key",
    "status_current_key",
    "status_entry_key",
    "status_fill_key",
    "status_list_key",
    "status_next_key",
    "status_subject_count_key",
    "status_subject_key",
    "status_version_key",
]

#: How long a deferred transaction is kept (seconds).
DEFERRED_TTL = 24 * 3600
#: The longest one poll or one :func:`~oid4vci.issuer.deferred.complete_deferred` holds a
#: transaction (``deferred_lock:``, released when done): a holder that dies frees it after this.
DEFERRED_LOCK_TTL = 60
#: The shortest life of a ``notification_id`` (seconds).
NOTIFICATION_MIN_TTL = 3600


@attrs.frozen(kw_only=True)
class StoreKey:
    """One row of the schema: a key prefix, its owner, its TTL and whether it is single use.

    ``owner`` names the module (under :mod:`oid4vci.issuer`) that writes the key, with the one
    that reads it after an arrow; ``ttl`` computes the entry's lifetime from the configuration.
    """

    prefix: str
    owner: str
    holds: str
    single_use: bool
    ttl: Callable[[IssuerConfig], float] = attrs.field(eq=False, repr=False)
    #: The key carries :func:`secret_digest` of the value, never the value (a secret).
    hashed: bool = False

    def key(self, value: str) -> str:
        """The key of ``value`` under this prefix (its digest when the row is ``hashed``)."""
        return self.prefix + (secret_digest(value) if self.hashed else value)


def secret_digest(secret: str) -> str:
    """The SHA-256 (hex) of ``secret``: how a code, token or nonce appears in the store.

    Store keys (and the stored ``tx_code``) carry this digest, never the secret itself, so a
    key listing (``KEYS``, ``SCAN``, ``MONITOR``, the slow log) shows no usable secret.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


PRE_AUTHORIZED_CODE = StoreKey(
    prefix="pre_auth:",
    owner="offers -> token",
    holds="PreAuthorizedCodeRecord",
    single_use=True,
    ttl=lambda c: c.pre_authorized_code_ttl,
    hashed=True,
)
PRE_AUTHORIZED_ATTEMPTS = StoreKey(
    prefix="pre_auth_attempts:",
    owner="token",
    holds="counter of tx_code attempts",
    single_use=False,
    ttl=lambda c: c.pre_authorized_code_ttl,
    hashed=True,
)
ISSUER_STATE = StoreKey(
    prefix="issuer_state:",
    owner="offers -> authorization",
    holds="IssuerStateRecord",
    single_use=True,
    ttl=lambda c: max(c.pre_authorized_code_ttl, c.pending_authorization_ttl),
    hashed=True,
)
OFFER = StoreKey(
    prefix="offer:",
    owner="offers",
    holds="SealedOfferRecord: the OfferRecord encrypted under its id (taken unless reusable)",
    single_use=True,
    ttl=lambda c: c.pre_authorized_code_ttl,
    hashed=True,
)
PAR = StoreKey(
    prefix="par:",
    owner="par -> authorization",
    holds="ParRecord",
    single_use=True,
    ttl=lambda c: c.par_ttl,
    hashed=True,
)
PENDING_LOGIN = StoreKey(
    prefix="authz_pending:",
    owner="authorization",
    holds="PendingLogin",
    single_use=True,
    ttl=lambda c: c.pending_authorization_ttl,
    hashed=True,
)
AUTHORIZATION_CODE = StoreKey(
    prefix="code:",
    owner="authorization -> token",
    holds="AuthorizationCodeRecord",
    single_use=True,
    ttl=lambda c: c.authorization_code_ttl,
    hashed=True,
)
AUTHORIZATION_CODE_USED = StoreKey(
    prefix="code_used:",
    owner="token",
    holds="grant id of a redeemed code (a replay revokes its tokens)",
    single_use=False,
    ttl=lambda c: max(c.access_token_ttl, c.authorization_code_ttl),
    hashed=True,
)
ACCESS_TOKEN = StoreKey(
    prefix="at:",
    owner="access_token",
    holds="TokenContext, keyed by the token's SHA-256",
    single_use=False,
    ttl=lambda c: c.access_token_ttl,
    hashed=True,
)


def _grant_life(config: IssuerConfig) -> float:
    """How long a grant's tokens may live: access tokens, and refresh tokens when on."""
    refresh = config.refresh_tokens
    return max(config.access_token_ttl, refresh.family_lifetime if refresh is not None else 0)


def _refresh_settings(config: IssuerConfig) -> tuple[float, float]:
    from oid4vci.issuer.config import RefreshTokenSettings

    settings = config.refresh_tokens or RefreshTokenSettings()
    return float(settings.ttl), float(settings.family_lifetime)


GRANT_REVOKED = StoreKey(
    prefix="grant_revoked:",
    owner="access_token",
    holds="true",
    single_use=False,
    ttl=_grant_life,
)
REFRESH_TOKEN = StoreKey(
    prefix="refresh:",
    owner="refresh_token -> token",
    holds="RefreshTokenRecord, keyed by the token's SHA-256 (taken when rotated)",
    single_use=True,
    ttl=lambda c: _refresh_settings(c)[0],
    hashed=True,
)
REFRESH_USED = StoreKey(
    prefix="refresh_used:",
    owner="refresh_token",
    holds="grant id of a rotated refresh token (a reuse revokes the grant)",
    single_use=False,
    ttl=lambda c: _refresh_settings(c)[1],
    hashed=True,
)
DPOP_JTI = StoreKey(
    prefix="dpop-jti:",
    owner="access_token (key built by oid4vci.dpop)",
    holds="true (the jti replay cache, add_if_absent)",
    single_use=True,
    ttl=lambda c: c.dpop_max_age + 60,
)
C_NONCE = StoreKey(
    prefix="c_nonce_used:",
    owner="nonce (take_c_nonce, at redemption)",
    holds="true (a redeemed stateless c_nonce, until it expires; add_if_absent)",
    single_use=True,
    ttl=lambda c: c.c_nonce_ttl,
    hashed=True,
)


def _pop_window(config: IssuerConfig) -> float:
    from oid4vci.issuer.config import AttestationSettings

    settings = config.attestation or AttestationSettings()
    return settings.pop_max_age + 2 * settings.clock_skew


ATTESTATION_POP_JTI = StoreKey(
    prefix="attest_pop_jti:",
    owner="client_attestation (PAR and token endpoints)",
    holds="true (the Client Attestation PoP jti replay cache, add_if_absent)",
    single_use=True,
    ttl=_pop_window,
)
DEFERRED = StoreKey(
    prefix="deferred:",
    owner="credential -> deferred",
    holds="DeferredRecord",
    single_use=True,
    ttl=lambda c: DEFERRED_TTL,
    hashed=True,
)
DEFERRED_LOCK = StoreKey(
    prefix="deferred_lock:",
    owner="deferred",
    holds="true (one poll or completion at work on the transaction, add_if_absent)",
    single_use=True,
    ttl=lambda c: DEFERRED_LOCK_TTL,
    hashed=True,
)
NOTIFICATION = StoreKey(
    prefix="notification:",
    owner="notification",
    holds="NotificationRecord",
    single_use=False,
    ttl=lambda c: max(c.access_token_ttl, NOTIFICATION_MIN_TTL),
    hashed=True,
)
NOTIFICATION_CHANGE = StoreKey(
    prefix="notification_change:",
    owner="notification",
    holds="true (the n-th change of a notification's event was recorded, add_if_absent)",
    single_use=True,
    ttl=lambda c: max(c.access_token_ttl, NOTIFICATION_MIN_TTL),
    hashed=True,
)

RATE = StoreKey(
    prefix="rate:",
    owner="flood_limits",
    holds="token bucket of one client address at one endpoint ([tokens, time])",
    single_use=False,
    ttl=lambda c: (
        c.flood_limits.rate_limit.burst / c.flood_limits.rate_limit.rate
        if c.flood_limits.rate_limit is not None
        else 1.0
    ),
)
QUOTA = StoreKey(
    prefix="quota:",
    owner="flood_limits",
    holds="counter of one quota purpose's entries in the current window",
    single_use=False,
    ttl=lambda c: max(c.pre_authorized_code_ttl, c.par_ttl, c.pending_authorization_ttl),
)


def _list_lifetime(config: IssuerConfig) -> float:
    from oid4vci.issuer.config import StatusListSettings

    return float((config.status or StatusListSettings()).list_lifetime)


def _status_key(prefix: str, holds: str, factor: float = 1.0) -> StoreKey:
    return StoreKey(
        prefix=prefix,
        owner="status_list",
        holds=holds,
        single_use=False,
        ttl=lambda c: factor * _list_lifetime(c),
    )


STATUS_CURRENT = _status_key("status_current:", "id of the list new credentials go to")
STATUS_LIST = _status_key("status_list:", "StatusListRecord (bits, size, created, ends)")
STATUS_NEXT = _status_key("status_next:", "id of the list after a full one (add_if_absent)")
STATUS_FILL = _status_key("status_fill:", "counter of indices handed out from a list")
STATUS_ENTRY = _status_key("status_idx:", "StatusEntryRecord of one index (add_if_absent)")
STATUS_VERSION = _status_key("status_version:", "counter of status changes of a list")
STATUS_CHANGE = _status_key("status_change:", "the index changed by change number n")
STATUS_SUBJECT_COUNT = _status_key(
    "status_subject_n:", "counter of a subject's credentials in one period", 2.0
)
STATUS_SUBJECT = _status_key("status_subject:", "StatusSubjectRecord (list id, idx, config)")
#: The Token Status List rows.
STATUS_KEYS = (
    STATUS_CURRENT,
    STATUS_LIST,
    STATUS_NEXT,
    STATUS_FILL,
    STATUS_ENTRY,
    STATUS_VERSION,
    STATUS_CHANGE,
    STATUS_SUBJECT_COUNT,
    STATUS_SUBJECT,
)

#: Every key prefix the issuer writes, by prefix.
KEY_SCHEMA: Mapping[str, StoreKey] = {
    entry.prefix: entry
    for entry in (
        PRE_AUTHORIZED_CODE,
        PRE_AUTHORIZED_ATTEMPTS,
        ISSUER_STATE,
        OFFER,
        PAR,
        PENDING_LOGIN,
        AUTHORIZATION_CODE,
        AUTHORIZATION_CODE_USED,
        ACCESS_TOKEN,
        GRANT_REVOKED,
        REFRESH_TOKEN,
        REFRESH_USED,
        DPOP_JTI,
        C_NONCE,
        ATTESTATION_POP_JTI,
        DEFERRED,
        DEFERRED_LOCK,
        NOTIFICATION,
        NOTIFICATION_CHANGE,
        *STATUS_KEYS,
        RATE,
        QUOTA,
    )
}


def pre_authorized_code_key(code: str) -> str:
    """``pre_auth:<sha256 of the code>``."""
    return PRE_AUTHORIZED_CODE.key(code)


def pre_authorized_attempts_key(code: str) -> str:
    """``pre_auth_attempts:<sha256 of the code>``."""
    return PRE_AUTHORIZED_ATTEMPTS.key(code)


def issuer_state_key(issuer_state: str) -> str:
    """``issuer_state:<sha256 of the value>``."""
    return ISSUER_STATE.key(issuer_state)


def offer_key(offer_id: str) -> str:
    """``offer:<sha256 of the id>``."""
    return OFFER.key(offer_id)


def par_key(request_uri: str) -> str:
    """``par:<sha256 of the request_uri>``."""
    return PAR.key(request_uri)


def pending_login_key(handle: str) -> str:
    """``authz_pending:<sha256 of the handle>``."""
    return PENDING_LOGIN.key(handle)


def authorization_code_key(code: str) -> str:
    """``code:<sha256 of the code>``."""
    return AUTHORIZATION_CODE.key(code)


def authorization_code_used_key(code: str) -> str:
    """``code_used:<sha256 of the code>``."""
    return AUTHORIZATION_CODE_USED.key(code)


def access_token_key(token: str) -> str:
    """``at:<sha256 hex of the token>`` (the token itself is never a key)."""
    return ACCESS_TOKEN.key(token)


def grant_revoked_key(grant_id: str) -> str:
    """``grant_revoked:<grant id>``."""
    return GRANT_REVOKED.key(grant_id)


def refresh_token_key(token: str) -> str:
    """``refresh:<sha256 hex of the token>`` (the token itself is never stored)."""
    return REFRESH_TOKEN.key(token)


def refresh_used_key(token: str) -> str:
    """``refresh_used:<sha256 hex of the token>``."""
    return REFRESH_USED.key(token)


def dpop_jti_prefix() -> str:
    """``dpop-jti:``, the prefix :func:`oid4vci.dpop.verify_dpop_jwt` gives its replay keys."""
    return DPOP_JTI.prefix


def c_nonce_used_key(nonce_id: str) -> str:
    """``c_nonce_used:<sha256 of id>``: a redeemed ``c_nonce`` (``id``: its random part)."""
    return C_NONCE.key(nonce_id)


def attestation_pop_jti_key(client_id: str, jti: str) -> str:
    """``attest_pop_jti:<sha256 of client_id and jti>`` (client-chosen values, hashed)."""
    return ATTESTATION_POP_JTI.key(secret_digest(f"{client_id}\x00{jti}"))


def deferred_key(transaction_id: str) -> str:
    """``deferred:<sha256 of the transaction_id>``."""
    return DEFERRED.key(transaction_id)


def deferred_lock_key(transaction_id: str) -> str:
    """``deferred_lock:<sha256 of the transaction_id>``."""
    return DEFERRED_LOCK.key(transaction_id)


def notification_key(notification_id: str) -> str:
    """``notification:<sha256 of the id>``."""
    return NOTIFICATION.key(notification_id)


def notification_change_key(notification_id: str, change: int) -> str:
    """``notification_change:<sha256 of the id and the change's number>``."""
    return NOTIFICATION_CHANGE.key(f"{notification_id}#{change}")


def rate_key(endpoint: str, address: str) -> str:
    """``rate:<endpoint>:<client address>`` (IPv6 clients by their ``/64``)."""
    return RATE.key(f"{endpoint}:{address}")


def quota_key(purpose: str) -> str:
    """``quota:<purpose>``."""
    return QUOTA.key(purpose)


def status_current_key() -> str:
    """``status_current:lists``."""
    return STATUS_CURRENT.key("lists")


def status_list_key(list_id: str) -> str:
    """``status_list:<list id>``."""
    return STATUS_LIST.key(list_id)


def status_next_key(list_id: str) -> str:
    """``status_next:<list id>``."""
    return STATUS_NEXT.key(list_id)


def status_fill_key(list_id: str) -> str:
    """``status_fill:<list id>``."""
    return STATUS_FILL.key(list_id)


def status_entry_key(list_id: str, idx: int) -> str:
    """``status_idx:<list id>:<idx>``."""
    return STATUS_ENTRY.key(f"{list_id}:{idx}")


def status_version_key(list_id: str) -> str:
    """``status_version:<list id>``."""
    return STATUS_VERSION.key(list_id)


def status_change_key(list_id: str, number: int) -> str:
    """``status_change:<list id>:<n>``."""
    return STATUS_CHANGE.key(f"{list_id}:{number}")


def status_subject_count_key(subject: str, period: int) -> str:
    """``status_subject_n:<sha256 of the subject>:<period>``."""
    return STATUS_SUBJECT_COUNT.key(f"{secret_digest(subject)}:{period}")


def status_subject_key(subject: str, period: int, number: int) -> str:
    """``status_subject:<sha256 of the subject>:<period>:<n>``."""
    return STATUS_SUBJECT.key(f"{secret_digest(subject)}:{period}:{number}")
