"""The wallet's issuance flow as one transition table: what may follow what, and how often.

:class:`~oid4vci.wallet.flow.IssuanceFlow` changes its :class:`FlowState` only through
:func:`next_state` over :data:`TRANSITIONS`; no step or retry is decided anywhere else. Read
these rules before changing a row:

* A flow starts in ``START``. The first event says what it was made from: an offer by value,
  an offer by reference (``credential_offer_uri``), deferred transactions to poll, or
  notifications to send for credentials already received.
* Every state that sends a request (``RESOLVING_OFFER``, ``DISCOVERING_*``, ``PUSHING_*``,
  ``REQUESTING_*``, ``FETCHING_ISSUER_KEYS``, ``FETCHING_STATUS_LISTS``,
  ``FETCHING_STATUS_LIST_KEYS``, ``NOTIFYING``) hands out exactly one
  :class:`~oid4vci.wallet.actions.SendRequest` and waits for its response; the response's
  meaning is the event.
* ``REQUESTING_ATTESTATION_CHALLENGE`` fetches a challenge from the AS's
  ``challenge_endpoint`` once, before the first request that carries a wallet attestation, and
  goes back to ``METADATA_DISCOVERED``.
* ``METADATA_DISCOVERED`` and ``ISSUING`` send nothing: they are where the flow decides
  what comes next (which grant; the next credential request, a poll, or done).
* ``AWAITING_AUTHORIZATION`` (the browser hop) and ``DEFERRED`` (polling budget spent) wait
  for the outside; a flow there can be saved with ``to_json`` and resumed later, as can one in
  ``WAITING_FOR_DEFERRED`` (it hands out :class:`~oid4vci.wallet.actions.Wait`).
* ``DONE`` has the result. Its only exit is a notification (OID4VCI 1.0 §11), after which it
  is ``DONE`` again. ``FAILED`` is terminal: nothing leaves it. ``FAIL`` is accepted in every
  other state; any error raised by the flow fires it.
* A rule with a ``limit`` is a retry. It may fire at most ``limit`` times per *attempt*; an
  attempt starts whenever the flow enters a state of :data:`ATTEMPT_STARTS` (one credential
  request with its nonce, one deferred poll, one notification) by a rule that is not a retry
  (no ``limit``) and does not say ``same_attempt`` (a refreshed token going back to the
  notification it was refreshed for). Past the limit the flow fails
  with the error that the server sent. Deferred polling has no count limit: its bound is time
  (``WalletPolicy.deferred_max_wait``, or the ``max_wait`` of a resumed poll), enforced in
  ``WAITING_FOR_DEFERRED`` by ``POLLING_BUDGET_SPENT``.

The retries, each a row below:

* ``use_dpop_nonce`` (RFC 9449 §8 at the authorization server, RFC 9449 §9 at the issuer): the
  answer carries a new ``DPoP-Nonce``; the same request is signed again with it, once.
* ``use_attestation_challenge`` (draft-ietf-oauth-attestation-based-client-auth-07 §8) at the
  PAR or token endpoint: the answer carries a new ``OAuth-Client-Attestation-Challenge``; the
  same request is sent again with a fresh wallet attestation PoP holding it, once.
* ``use_fresh_attestation`` (introduced by draft-ietf-oauth-attestation-based-client-auth-07)
  at the PAR or token endpoint (also when refreshing): the wallet attestation is older than
  the server accepts; the attestation provider is asked for a fresh one (same instance key)
  and the same request is sent again with it, once. A second one is a
  :class:`~oid4vci.errors.StaleAttestationError`.
* ``invalid_nonce`` (OID4VCI 1.0 §8.3.1.2) with a Nonce Endpoint: a fresh ``c_nonce`` is
  fetched and the proofs are made again, once per credential request.
* ``invalid_nonce`` or ``invalid_proof`` carrying a fresh ``c_nonce`` (Draft 13 §7.3.2,
  Draft 14 §7.3.2): the proofs are made again with it, once per credential request.
* A metadata location that does not answer with a JSON object (OID4VCI 1.0 §12.2.2 inserted
  form, then the drafts' appended form; RFC 8414 §3, then OpenID Connect discovery): the next
  location is tried; there are at most two.
* The JWT VC Issuer Metadata names ``jwks_uri`` instead of ``jwks`` (SD-JWT VC
  (draft-ietf-oauth-sd-jwt-vc-11) §5.2): one more fetch.
* ``issuance_pending`` / ``202`` at the Deferred Credential Endpoint: wait the issuer's
  ``interval``, then poll again.
* ``invalid_token`` (RFC 6750 §3.1: the access token expired or was revoked) at the
  Credential, Deferred Credential or Notification Endpoint while a refresh token is held: the
  access token is refreshed (RFC 6749 §6, ``REFRESHING_TOKEN`` /
  ``REFRESHING_TOKEN_FOR_DEFERRED`` / ``REFRESHING_TOKEN_FOR_NOTIFICATION``, with the DPoP key
  and the wallet attestation of the grant, RFC 9449 §5), then the same request is sent again;
  once per credential request, poll or notification.

Token Status Lists (draft-ietf-oauth-status-list-20 §8): once a response's credentials are
verified, ``FETCHING_STATUS_LISTS`` fetches each distinct status list URI they name once (not
at all when ``WalletPolicy.status`` is ``off``, or when a cached token is fresh), one request
per row ``STATUS_LIST_RECEIVED`` / ``STATUS_LIST_UNAVAILABLE`` (the latter only under
``check``); then ``STATUS_CHECKED`` hands the credentials on. Its self-rows are bounded by the
number of URIs, not by a limit. A Status List Token signed by a ``kid`` of an issuer whose keys
the flow has not loaded (an mdoc is verified through its own ``x5chain``) goes through
``FETCHING_STATUS_LIST_KEYS`` (``STATUS_LIST_KEYS_NEEDED``: the JWT VC Issuer Metadata, one
``jwks_uri`` hop), then the list is fetched again; keys that cannot be had count as
``STATUS_LIST_UNAVAILABLE`` under ``check``. A 3xx answer to a list fetch (returned, or refused
by the transport as :class:`~oid4vci.errors.RedirectRefused`) is followed
(draft-ietf-oauth-status-list-20 §8.1: clients SHOULD): ``STATUS_LIST_REDIRECTED`` fetches the
``Location`` next (https only, never from https to http), a retry with a limit of
:data:`~oid4vci.status.MAX_STATUS_LIST_REDIRECTS` (3) per attempt, i.e. per credential response;
one more, or a target it may not follow, makes the list unavailable (``check``) or fails the
flow (``require``).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs

from oid4vci.errors import StateError

__all__ = [
    "ATTEMPT_STARTS",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "WAITING_STATES",
    "Event",
    "FlowState",
    "Rule",
    "next_state",
]


class FlowState(enum.Enum):
    """Where an issuance flow stands (one value per step of the protocol)."""

    START = "start"
    RESOLVING_OFFER = "resolving_offer"
    DISCOVERING_ISSUER = "discovering_issuer"
    DISCOVERING_AUTHORIZATION_SERVER = "discovering_authorization_server"
    METADATA_DISCOVERED = "metadata_discovered"
    REQUESTING_ATTESTATION_CHALLENGE = "requesting_attestation_challenge"
    PUSHING_AUTHORIZATION_REQUEST = "pushing_authorization_request"
    AWAITING_AUTHORIZATION = "awaiting_authorization"
    REQUESTING_TOKEN = "requesting_token"
    ISSUING = "issuing"
    REQUESTING_NONCE = "requesting_nonce"
    REQUESTING_CREDENTIAL = "requesting_credential"
    FETCHING_ISSUER_KEYS = "fetching_issuer_keys"
    FETCHING_STATUS_LISTS = "fetching_status_lists"
    FETCHING_STATUS_LIST_KEYS = "fetching_status_list_keys"
    VERIFYING_CREDENTIALS = "verifying_credentials"
    WAITING_FOR_DEFERRED = "waiting_for_deferred"
    REQUESTING_DEFERRED_CREDENTIAL = "requesting_deferred_credential"
    REFRESHING_TOKEN = "refreshing_token"
    REFRESHING_TOKEN_FOR_DEFERRED = "refreshing_token_for_deferred"
    REFRESHING_TOKEN_FOR_NOTIFICATION = "refreshing_token_for_notification"
    DEFERRED = "deferred"
    NOTIFYING = "notifying"
    DONE = "done"
    FAILED = "failed"


class Event(enum.Enum):
    """What happened to a flow (an answer, a decision's outcome, or the caller's input)."""

    # how the flow was made
    OFFER_BY_VALUE = "offer_by_value"
    OFFER_BY_REFERENCE = "offer_by_reference"
    DEFERRED_TRANSACTIONS_GIVEN = "deferred_transactions_given"
    NOTIFICATION_REQUESTED = "notification_requested"
    # offer and discovery
    OFFER_RECEIVED = "offer_received"
    METADATA_NOT_FOUND = "metadata_not_found"
    ISSUER_METADATA_RECEIVED = "issuer_metadata_received"
    AS_METADATA_RECEIVED = "as_metadata_received"
    # the grant
    ATTESTATION_CHALLENGE_NEEDED = "attestation_challenge_needed"
    ATTESTATION_CHALLENGE_RECEIVED = "attestation_challenge_received"
    PRE_AUTHORIZED_CODE_GRANT = "pre_authorized_code_grant"
    AUTHORIZATION_REQUEST_PUSHABLE = "authorization_request_pushable"
    AUTHORIZATION_URL_READY = "authorization_url_ready"
    AUTHORIZATION_REQUEST_PUSHED = "authorization_request_pushed"
    CALLBACK_RECEIVED = "callback_received"
    TOKEN_RECEIVED = "token_received"
    # retries
    USE_DPOP_NONCE = "use_dpop_nonce"
    USE_ATTESTATION_CHALLENGE = "use_attestation_challenge"
    USE_FRESH_ATTESTATION = "use_fresh_attestation"
    NONCE_REJECTED = "nonce_rejected"
    FRESH_C_NONCE_RECEIVED = "fresh_c_nonce_received"
    ACCESS_TOKEN_EXPIRED = "access_token_expired"
    TOKEN_REFRESHED = "token_refreshed"
    # credential requests
    NONCE_NEEDED = "nonce_needed"
    NONCE_RECEIVED = "nonce_received"
    CREDENTIAL_REQUEST_READY = "credential_request_ready"
    CREDENTIALS_RECEIVED = "credentials_received"
    DEFERRAL_RECEIVED = "deferral_received"
    ISSUER_KEYS_NEEDED = "issuer_keys_needed"
    JWKS_URI_FOUND = "jwks_uri_found"
    ISSUER_KEYS_RECEIVED = "issuer_keys_received"
    CREDENTIALS_VERIFIED = "credentials_verified"
    # Token Status Lists
    STATUS_LISTS_NEEDED = "status_lists_needed"
    STATUS_LIST_RECEIVED = "status_list_received"
    STATUS_LIST_UNAVAILABLE = "status_list_unavailable"
    STATUS_LIST_REDIRECTED = "status_list_redirected"
    STATUS_LIST_KEYS_NEEDED = "status_list_keys_needed"
    STATUS_CHECKED = "status_checked"
    # deferred issuance
    DEFERRED_PENDING = "deferred_pending"
    WAITED = "waited"
    ISSUANCE_PENDING = "issuance_pending"
    POLLING_BUDGET_SPENT = "polling_budget_spent"
    POLLING_RESUMED = "polling_resumed"
    # the end
    ALL_ISSUED = "all_issued"
    NOTIFICATION_SENT = "notification_sent"
    FAIL = "fail"


@attrs.frozen
class Rule:
    """One row's outcome: the ``target`` state and, for a retry, its ``limit`` per attempt.

    ``same_attempt``: entering an :data:`ATTEMPT_STARTS` state by this row goes on with the
    attempt (its retry counts are kept) instead of starting a new one.
    """

    target: FlowState
    limit: int | None = None
    same_attempt: bool = False

    @property
    def starts_attempt(self) -> bool:
        """Whether taking this row starts a new attempt (see the module docstring)."""
        return self.target in ATTEMPT_STARTS and self.limit is None and not self.same_attempt


_S = FlowState
_E = Event

TERMINAL_STATES: Final = frozenset({_S.FAILED})
"""States nothing leaves."""

WAITING_STATES: Final = frozenset(
    {_S.AWAITING_AUTHORIZATION, _S.WAITING_FOR_DEFERRED, _S.DEFERRED, _S.DONE}
)
"""States where the flow waits for the outside and can be saved with ``to_json``."""

ATTEMPT_STARTS: Final = frozenset({_S.ISSUING, _S.WAITING_FOR_DEFERRED, _S.NOTIFYING})
"""Entering one of these starts a new attempt: the retry counts start again from zero."""

_TABLE: dict[tuple[FlowState, Event], Rule] = {
    # --- how a flow starts ---------------------------------------------------------------
    (_S.START, _E.OFFER_BY_VALUE): Rule(_S.DISCOVERING_ISSUER),
    (_S.START, _E.OFFER_BY_REFERENCE): Rule(_S.RESOLVING_OFFER),
    (_S.START, _E.DEFERRED_TRANSACTIONS_GIVEN): Rule(_S.WAITING_FOR_DEFERRED),
    (_S.START, _E.NOTIFICATION_REQUESTED): Rule(_S.NOTIFYING),
    # --- the offer (OID4VCI 1.0 §4.1.3: credential_offer_uri) -----------------------------
    (_S.RESOLVING_OFFER, _E.OFFER_RECEIVED): Rule(_S.DISCOVERING_ISSUER),
    # --- discovery (OID4VCI 1.0 §12.2.2; RFC 8414 §3) ------------------------------------
    (_S.DISCOVERING_ISSUER, _E.METADATA_NOT_FOUND): Rule(_S.DISCOVERING_ISSUER, limit=1),
    (_S.DISCOVERING_ISSUER, _E.ISSUER_METADATA_RECEIVED): Rule(_S.DISCOVERING_AUTHORIZATION_SERVER),
    (_S.DISCOVERING_AUTHORIZATION_SERVER, _E.METADATA_NOT_FOUND): Rule(
        _S.DISCOVERING_AUTHORIZATION_SERVER, limit=1
    ),
    (_S.DISCOVERING_AUTHORIZATION_SERVER, _E.AS_METADATA_RECEIVED): Rule(_S.METADATA_DISCOVERED),
    # --- wallet attestation challenge (draft-ietf-oauth-attestation-based-client-auth-07 §8.1)
    (_S.METADATA_DISCOVERED, _E.ATTESTATION_CHALLENGE_NEEDED): Rule(
        _S.REQUESTING_ATTESTATION_CHALLENGE
    ),
    (_S.REQUESTING_ATTESTATION_CHALLENGE, _E.ATTESTATION_CHALLENGE_RECEIVED): Rule(
        _S.METADATA_DISCOVERED
    ),
    # --- the grant (OID4VCI 1.0 §5, §6; RFC 9126 PAR; RFC 7636 PKCE) ----------------------
    (_S.METADATA_DISCOVERED, _E.PRE_AUTHORIZED_CODE_GRANT): Rule(_S.REQUESTING_TOKEN),
    (_S.METADATA_DISCOVERED, _E.AUTHORIZATION_REQUEST_PUSHABLE): Rule(
        _S.PUSHING_AUTHORIZATION_REQUEST
    ),
    (_S.METADATA_DISCOVERED, _E.AUTHORIZATION_URL_READY): Rule(_S.AWAITING_AUTHORIZATION),
    (_S.PUSHING_AUTHORIZATION_REQUEST, _E.USE_DPOP_NONCE): Rule(
        _S.PUSHING_AUTHORIZATION_REQUEST, limit=1
    ),
    (_S.PUSHING_AUTHORIZATION_REQUEST, _E.USE_ATTESTATION_CHALLENGE): Rule(
        _S.PUSHING_AUTHORIZATION_REQUEST, limit=1
    ),
    (_S.PUSHING_AUTHORIZATION_REQUEST, _E.USE_FRESH_ATTESTATION): Rule(
        _S.PUSHING_AUTHORIZATION_REQUEST, limit=1
    ),
    (_S.PUSHING_AUTHORIZATION_REQUEST, _E.AUTHORIZATION_REQUEST_PUSHED): Rule(
        _S.AWAITING_AUTHORIZATION
    ),
    (_S.AWAITING_AUTHORIZATION, _E.CALLBACK_RECEIVED): Rule(_S.REQUESTING_TOKEN),
    # --- the token request (OID4VCI 1.0 §6; RFC 9449 §5) ---------------------------------
    (_S.REQUESTING_TOKEN, _E.USE_DPOP_NONCE): Rule(_S.REQUESTING_TOKEN, limit=1),
    (_S.REQUESTING_TOKEN, _E.USE_ATTESTATION_CHALLENGE): Rule(_S.REQUESTING_TOKEN, limit=1),
    (_S.REQUESTING_TOKEN, _E.USE_FRESH_ATTESTATION): Rule(_S.REQUESTING_TOKEN, limit=1),
    (_S.REQUESTING_TOKEN, _E.TOKEN_RECEIVED): Rule(_S.ISSUING),
    # --- credential requests, one per chunk of holder keys (OID4VCI 1.0 §7, §8) ----------
    (_S.ISSUING, _E.NONCE_NEEDED): Rule(_S.REQUESTING_NONCE),
    (_S.ISSUING, _E.CREDENTIAL_REQUEST_READY): Rule(_S.REQUESTING_CREDENTIAL),
    (_S.ISSUING, _E.DEFERRED_PENDING): Rule(_S.WAITING_FOR_DEFERRED),
    (_S.ISSUING, _E.ALL_ISSUED): Rule(_S.DONE),
    (_S.REQUESTING_NONCE, _E.USE_DPOP_NONCE): Rule(_S.REQUESTING_NONCE, limit=1),
    (_S.REQUESTING_NONCE, _E.NONCE_RECEIVED): Rule(_S.REQUESTING_CREDENTIAL),
    (_S.REQUESTING_CREDENTIAL, _E.USE_DPOP_NONCE): Rule(_S.REQUESTING_CREDENTIAL, limit=1),
    (_S.REQUESTING_CREDENTIAL, _E.NONCE_REJECTED): Rule(_S.REQUESTING_NONCE, limit=1),
    (_S.REQUESTING_CREDENTIAL, _E.FRESH_C_NONCE_RECEIVED): Rule(_S.REQUESTING_CREDENTIAL, limit=1),
    (_S.REQUESTING_CREDENTIAL, _E.CREDENTIALS_RECEIVED): Rule(_S.VERIFYING_CREDENTIALS),
    (_S.REQUESTING_CREDENTIAL, _E.DEFERRAL_RECEIVED): Rule(_S.ISSUING),
    # --- verification; issuer keys from JWT VC Issuer Metadata (draft-ietf-oauth-sd-jwt-vc-11 §5)
    (_S.VERIFYING_CREDENTIALS, _E.ISSUER_KEYS_NEEDED): Rule(_S.FETCHING_ISSUER_KEYS),
    (_S.FETCHING_ISSUER_KEYS, _E.JWKS_URI_FOUND): Rule(_S.FETCHING_ISSUER_KEYS, limit=1),
    (_S.FETCHING_ISSUER_KEYS, _E.ISSUER_KEYS_RECEIVED): Rule(_S.VERIFYING_CREDENTIALS),
    (_S.VERIFYING_CREDENTIALS, _E.CREDENTIALS_VERIFIED): Rule(_S.ISSUING),
    # --- Token Status Lists (draft-ietf-oauth-status-list-20 §8.1, §8.3) -----------------
    (_S.VERIFYING_CREDENTIALS, _E.STATUS_LISTS_NEEDED): Rule(_S.FETCHING_STATUS_LISTS),
    (_S.FETCHING_STATUS_LISTS, _E.STATUS_LIST_RECEIVED): Rule(_S.FETCHING_STATUS_LISTS),
    (_S.FETCHING_STATUS_LISTS, _E.STATUS_LIST_UNAVAILABLE): Rule(_S.FETCHING_STATUS_LISTS),
    # a 3xx answer: its target is fetched next, at most MAX_STATUS_LIST_REDIRECTS times
    (_S.FETCHING_STATUS_LISTS, _E.STATUS_LIST_REDIRECTED): Rule(_S.FETCHING_STATUS_LISTS, limit=3),
    # once per issuer: the flow keeps the keys it loaded
    (_S.FETCHING_STATUS_LISTS, _E.STATUS_LIST_KEYS_NEEDED): Rule(_S.FETCHING_STATUS_LIST_KEYS),
    (_S.FETCHING_STATUS_LIST_KEYS, _E.JWKS_URI_FOUND): Rule(_S.FETCHING_STATUS_LIST_KEYS, limit=1),
    (_S.FETCHING_STATUS_LIST_KEYS, _E.ISSUER_KEYS_RECEIVED): Rule(_S.FETCHING_STATUS_LISTS),
    (_S.FETCHING_STATUS_LIST_KEYS, _E.STATUS_LIST_UNAVAILABLE): Rule(_S.FETCHING_STATUS_LISTS),
    (_S.FETCHING_STATUS_LISTS, _E.STATUS_CHECKED): Rule(_S.ISSUING),
    # --- deferred issuance (OID4VCI 1.0 §9) ----------------------------------------------
    (_S.WAITING_FOR_DEFERRED, _E.WAITED): Rule(_S.REQUESTING_DEFERRED_CREDENTIAL),
    (_S.WAITING_FOR_DEFERRED, _E.POLLING_BUDGET_SPENT): Rule(_S.DEFERRED),
    (_S.REQUESTING_DEFERRED_CREDENTIAL, _E.USE_DPOP_NONCE): Rule(
        _S.REQUESTING_DEFERRED_CREDENTIAL, limit=1
    ),
    (_S.REQUESTING_DEFERRED_CREDENTIAL, _E.ISSUANCE_PENDING): Rule(_S.WAITING_FOR_DEFERRED),
    (_S.REQUESTING_DEFERRED_CREDENTIAL, _E.CREDENTIALS_RECEIVED): Rule(_S.VERIFYING_CREDENTIALS),
    (_S.DEFERRED, _E.POLLING_RESUMED): Rule(_S.WAITING_FOR_DEFERRED),
    # --- refreshing an expired access token (RFC 6749 §6; RFC 9449 §5) -------------------
    (_S.REQUESTING_CREDENTIAL, _E.ACCESS_TOKEN_EXPIRED): Rule(_S.REFRESHING_TOKEN, limit=1),
    (_S.REFRESHING_TOKEN, _E.USE_DPOP_NONCE): Rule(_S.REFRESHING_TOKEN, limit=1),
    (_S.REFRESHING_TOKEN, _E.USE_ATTESTATION_CHALLENGE): Rule(_S.REFRESHING_TOKEN, limit=1),
    (_S.REFRESHING_TOKEN, _E.USE_FRESH_ATTESTATION): Rule(_S.REFRESHING_TOKEN, limit=1),
    (_S.REFRESHING_TOKEN, _E.TOKEN_REFRESHED): Rule(_S.REQUESTING_CREDENTIAL),
    (_S.REQUESTING_DEFERRED_CREDENTIAL, _E.ACCESS_TOKEN_EXPIRED): Rule(
        _S.REFRESHING_TOKEN_FOR_DEFERRED, limit=1
    ),
    (_S.REFRESHING_TOKEN_FOR_DEFERRED, _E.USE_DPOP_NONCE): Rule(
        _S.REFRESHING_TOKEN_FOR_DEFERRED, limit=1
    ),
    (_S.REFRESHING_TOKEN_FOR_DEFERRED, _E.USE_ATTESTATION_CHALLENGE): Rule(
        _S.REFRESHING_TOKEN_FOR_DEFERRED, limit=1
    ),
    (_S.REFRESHING_TOKEN_FOR_DEFERRED, _E.USE_FRESH_ATTESTATION): Rule(
        _S.REFRESHING_TOKEN_FOR_DEFERRED, limit=1
    ),
    (_S.REFRESHING_TOKEN_FOR_DEFERRED, _E.TOKEN_REFRESHED): Rule(_S.REQUESTING_DEFERRED_CREDENTIAL),
    # --- notification (OID4VCI 1.0 §11) --------------------------------------------------
    (_S.DONE, _E.NOTIFICATION_REQUESTED): Rule(_S.NOTIFYING),
    (_S.NOTIFYING, _E.USE_DPOP_NONCE): Rule(_S.NOTIFYING, limit=1),
    (_S.NOTIFYING, _E.NOTIFICATION_SENT): Rule(_S.DONE),
    (_S.NOTIFYING, _E.ACCESS_TOKEN_EXPIRED): Rule(_S.REFRESHING_TOKEN_FOR_NOTIFICATION, limit=1),
    (_S.REFRESHING_TOKEN_FOR_NOTIFICATION, _E.USE_DPOP_NONCE): Rule(
        _S.REFRESHING_TOKEN_FOR_NOTIFICATION, limit=1
    ),
    (_S.REFRESHING_TOKEN_FOR_NOTIFICATION, _E.USE_ATTESTATION_CHALLENGE): Rule(
        _S.REFRESHING_TOKEN_FOR_NOTIFICATION, limit=1
    ),
    (_S.REFRESHING_TOKEN_FOR_NOTIFICATION, _E.USE_FRESH_ATTESTATION): Rule(
        _S.REFRESHING_TOKEN_FOR_NOTIFICATION, limit=1
    ),
    (_S.REFRESHING_TOKEN_FOR_NOTIFICATION, _E.TOKEN_REFRESHED): Rule(
        _S.NOTIFYING, same_attempt=True
    ),
}
for _state in FlowState:
    if _state not in TERMINAL_STATES:
        _TABLE[(_state, _E.FAIL)] = Rule(_S.FAILED)

TRANSITIONS: Final[Mapping[tuple[FlowState, Event], Rule]] = MappingProxyType(_TABLE)
"""``(state, event) -> Rule``; a pair that is not a key is not allowed."""


def next_state(state: FlowState, event: Event) -> Rule:
    """The :class:`Rule` for ``event`` in ``state``; :class:`StateError` when not in the table."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise StateError(f"{event.value} is not allowed in state {state.value}") from None
