"""One credential issuance as a sans-IO state machine: :class:`IssuanceFlow`.

The flow does no network I/O. It says what to do next and is told what happened::

    flow = IssuanceFlow.from_offer(link, policy=policy, tx_code="493536")
    while True:
        action = await flow.next_action()
        if isinstance(action, SendRequest):
            flow.receive_response(await my_http_client(action.request))
        elif isinstance(action, Authorize):
            flow.receive_callback(await open_browser(action.url))
        elif isinstance(action, Wait):
            await sleep(action.seconds)
        else:                                  # Done
            result = action.result
            break

:func:`~oid4vci.wallet.driver.run_flow` is that loop over a
:class:`~oid4vci.http.Transport`. ``next_action`` is async only because signers may be
(a holder key in an HSM or a remote KMS signs key proofs and DPoP proofs).

Which step follows which, and every retry with its bound, is decided by the transition table
of :mod:`oid4vci.wallet.states`; this module builds each step's request (with the sans-IO
builders of :mod:`oid4vci.wallet.steps`) and reads each answer into the event the table is
asked about. Failures raise the typed errors of :mod:`oid4vci.errors` from ``next_action`` /
``receive_*`` and leave the flow in ``FAILED``; calling a method the state does not allow
raises :class:`~oid4vci.errors.StateError` and changes nothing.

What the steps work with comes from modules with one job each: the checks before a code is
spent (:mod:`~oid4vci.wallet.preflight`), the metadata (:mod:`~oid4vci.wallet.discovery`), the
wallet attestation headers (:mod:`~oid4vci.wallet.client_auth`), the credential requests to
send (:mod:`~oid4vci.wallet.request_plan`), the credentials received and their verification
(:mod:`~oid4vci.wallet.received`, :mod:`~oid4vci.wallet.verify`), their Status Lists
(:mod:`~oid4vci.wallet.status_lists`), the notifications (:mod:`~oid4vci.wallet.notifications`)
and saving (:mod:`~oid4vci.wallet.flow_saving`).

**Saving a flow.** In a state of :data:`~oid4vci.wallet.states.WAITING_STATES` (the browser
hop, deferred polling, done) :meth:`IssuanceFlow.to_json` writes everything the flow needs to
go on, and :meth:`IssuanceFlow.from_json` resumes it, in another process if need be. **The
JSON is secret**: it holds the PKCE ``code_verifier``, the ``state`` value, the DPoP private
key (exported on purpose: the authorization code and the access token are bound to it), the
access and refresh tokens, the holder private keys, the received credentials and the DPoP nonces. Store
it like a password (encrypted at rest, deleted after use). In-process keys
(:class:`~oid4vci.jose.LocalSigner`) are saved as private JWKs; any other key (a secure
element's, a KMS key) by the reference the policy's
:class:`~oid4vci.wallet.policy.KeyReferences` gives, without it the flow refuses. The
conversion is :mod:`oid4vci.wallet.flow_saving` (it sees a
:class:`~oid4vci.wallet.flow_saving.FlowSnapshot` of the flow, never the flow itself), the saved
records :mod:`oid4vci.wallet.saved`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, Final, Literal

import attrs

from oid4vci.attestation import (
    ATTEST_JWT_CLIENT_AUTH,
    ATTEST_JWT_CLIENT_AUTH_DPOP,
    CLIENT_ATTESTATION_CHALLENGE_HEADER,
    CLIENT_ATTESTATION_HEADER,
    CLIENT_ATTESTATION_POP_HEADER,
)
from oid4vci.dpop import build_dpop_jwt
from oid4vci.errors import (
    ArgumentTypeError,
    AuthorizationError,
    CallbackError,
    ConnectError,
    CredentialRequestError,
    CredentialVerificationError,
    ErrorCode,
    InsecureUrlError,
    MetadataError,
    OfferError,
    RedirectRefused,
    StaleAttestationError,
    StateError,
    TransportTimeout,
    UsageError,
    ValidationError,
)
from oid4vci.http import REDIRECT_STATUSES, HttpRequest, HttpResponse
from oid4vci.jose import Signer, jwk_thumbprint
from oid4vci.models import (
    AuthorizationServerMetadata,
    CredentialIssuerMetadata,
    CredentialOffer,
    CredentialRequest,
    ProofSet,
    credential_request_to_json,
    parse_credential_offer_json,
    parse_credential_offer_uri,
)
from oid4vci.pkce import code_challenge, generate_code_verifier, generate_state
from oid4vci.sdjwt import SdJwtVerificationError
from oid4vci.status import (
    MAX_STATUS_LIST_REDIRECTS,
    StatusListReason,
    StatusListTokenCache,
    StatusListVerificationError,
    build_status_list_request,
    read_status_list_response,
    status_list_redirect_target,
    status_list_token_header,
)
from oid4vci.tracing import attach_request
from oid4vci.urls import origin_of, require_secure_url
from oid4vci.versions import SpecVersion

from .actions import Action, Authorize, Done, SendRequest, Wait
from .client_auth import client_attestation_headers
from .discovery import (
    MetadataCache,
    as_metadata_urls,
    cache_max_age,
    issuer_cache_key,
    issuer_metadata_urls,
    read_as_metadata,
    read_issuer_metadata,
    read_issuer_metadata_response,
    read_metadata_response,
    select_authorization_server,
)
from .encryption import (
    EncryptionPlan,
    ResponseKey,
    new_response_key,
    open_response,
    plan_encryption,
    response_encryption_member,
    seal_request,
)
from .flow_saving import FlowSnapshot, dump_flow, load_flow
from .notifications import PendingNotification, notifications_for
from .policy import WalletPolicy
from .preflight import (
    authorization_details_or_scope,
    check_configuration_ids,
    check_count,
    check_haip,
    check_max_wait,
    check_offer_limits,
    check_tx_code,
    choose_configuration_ids,
    choose_dpop_key,
    choose_par,
    choose_proof_type,
    client_auth_method,
    definition_types,
    polling_interval,
    preflight,
    request_definition,
    secure_endpoint,
)
from .received import (
    IssuerKeysNeeded,
    UnverifiedCredentials,
    unverified_credentials,
    verify_received,
)
from .request_plan import CredentialRequestPlan, plan_credential_requests
from .results import (
    DeferredTransaction,
    FlowKind,
    IssuanceResult,
    IssuerSession,
    NonceMemory,
    ReceivedCredential,
)
from .saved import FLOW_FORMAT
from .states import (
    TRANSITIONS,
    WAITING_STATES,
    Event,
    FlowState,
    next_state,
)
from .status_lists import status_entries, status_references, with_status, x5c_status_list_keys
from .steps import (
    DeferredPending,
    authorization_code_grant,
    authorization_request_params,
    build_attestation_challenge_request,
    build_authorization_url,
    build_credential_request,
    build_deferred_credential_request,
    build_key_proof,
    build_metadata_request,
    build_nonce_request,
    build_notification_request,
    build_offer_request,
    build_par_request,
    build_token_request,
    check_redirect,
    is_use_attestation_challenge,
    is_use_dpop_nonce,
    is_use_fresh_attestation,
    pre_authorized_grant,
    read_attestation_challenge_response,
    read_authorization_callback,
    read_credential_response,
    read_deferred_credential_response,
    read_error_response,
    read_nonce_response,
    read_notification_response,
    read_offer_response,
    read_par_response,
    read_token_response,
    refresh_token_grant,
)
from .verify import (
    WalletReason,
    jwt_vc_issuer_metadata_url,
    read_jwks,
    read_jwt_vc_issuer_metadata,
)

__all__ = ["FLOW_FORMAT", "IssuanceFlow"]


_S = FlowState
_E = Event
#: States whose answers may come encrypted (OID4VCI 1.0 §10).
_ENCRYPTING_STATES = frozenset({_S.REQUESTING_CREDENTIAL, _S.REQUESTING_DEFERRED_CREDENTIAL})


@attrs.define(kw_only=True)
class _InFlight:
    """The request handed out and not answered yet."""

    request: HttpRequest
    dpop_nonce: str | None
    dpop: bool
    #: The ephemeral key the answer is to be encrypted to (OID4VCI 1.0 §10); never saved.
    response_key: ResponseKey | None = attrs.field(default=None, repr=False)
    attestation_challenge: str | None = None


@attrs.define(kw_only=True)
class _KeyFetch:
    """Where the issuer keys of ``iss`` are being fetched from."""

    iss: str
    url: str
    jwks_uri: bool = False


@attrs.define(kw_only=True)
class _StatusFetch:
    """Verified credentials waiting for their Status Lists (draft-ietf-oauth-status-list-20
    §8.3): the URIs still to fetch, in order, with the issuer whose keys sign each, and what
    each list said (``None``: could not be fetched, under ``WalletPolicy.status`` ``check``)."""

    credentials: list[ReceivedCredential]
    pending: list[tuple[str, str]]
    values: dict[str, dict[int, int] | None] = attrs.Factory(dict)
    #: Issuers whose keys were fetched for a Status List Token (once each).
    keys_tried: set[str] = attrs.Factory(set)
    #: Where the first pending URI is fetched from after redirects (None: the URI itself).
    location: str | None = None


Grant = Literal["pre-authorized_code", "authorization_code"]


class IssuanceFlow:
    """One issuance, from offer to credentials, as a sans-IO state machine.

    Make one with :meth:`from_offer` (or :meth:`for_deferred`, :meth:`for_notification`,
    :meth:`from_json`); drive it with :meth:`next_action`, :meth:`receive_response` and
    :meth:`receive_callback` (see the module docstring). ``state`` is a
    :class:`~oid4vci.wallet.states.FlowState`; ``history`` lists the rows of the transition
    table the flow took, in order.
    """

    def __init__(
        self,
        *,
        policy: WalletPolicy,
        clock: Callable[[], float],
        grant: FlowKind | None,
        metadata_cache: MetadataCache | None = None,
        status_cache: StatusListTokenCache | None = None,
    ) -> None:
        """Use the ``from_*`` / ``for_*`` constructors."""
        if not isinstance(policy, WalletPolicy):
            raise ArgumentTypeError("policy must be a WalletPolicy")
        self.policy = policy
        self.clock = clock
        self._state = _S.START
        self._history: list[tuple[FlowState, Event]] = []
        self._attempts: dict[tuple[FlowState, Event], int] = {}
        self._in_flight: _InFlight | None = None
        self._grant: FlowKind | None = grant
        self._cache = metadata_cache
        if status_cache is not None and not isinstance(status_cache, StatusListTokenCache):
            raise ArgumentTypeError("status_cache must be a StatusListTokenCache")
        self._status_cache = status_cache
        self._status_fetch: _StatusFetch | None = None
        # offer and request choices
        self._offer: CredentialOffer | None = None
        self._offer_uri: str | None = None
        self._tx_code: str | None = None
        self._count = 1
        self._wanted_ids: tuple[str, ...] | None = None
        self._configuration_ids: tuple[str, ...] = ()
        self._client_id: str | None = None
        self._redirect_uri: str | None = None
        # discovery
        self._credential_issuer = ""
        self._locations: list[str] = []
        self._location = 0
        self._issuer_doc: dict[str, Any] | None = None
        self._issuer_meta: CredentialIssuerMetadata | None = None
        self._version: SpecVersion | None = None
        self._as_id: str | None = None
        self._as_doc: dict[str, Any] | None = None
        self._as_meta: AuthorizationServerMetadata | None = None
        self._encryption: EncryptionPlan | None = None
        # authorization
        self._dpop_key: Signer | None = None
        self._attestation_challenge: str | None = None
        #: Set by ``use_fresh_attestation``: the next attestation is asked for ``fresh``.
        self._fresh_attestation = False
        self._code_verifier: str | None = None
        self._oauth_state: str | None = None
        self._par_params: dict[str, str] | None = None
        self._authorization_url: str | None = None
        self._code: str | None = None
        # issuance
        self._nonces = NonceMemory()
        self._c_nonce: str | None = None
        self._session: IssuerSession | None = None
        self._plan: list[CredentialRequestPlan] = []
        self._unverified: UnverifiedCredentials | None = None
        self._issuer_keys: dict[str, list[dict[str, Any]]] = {}
        self._key_fetch: _KeyFetch | None = None
        self._received: list[ReceivedCredential] = []
        self._deferred: list[DeferredTransaction] = []
        self._budget = policy.deferred_max_wait
        self._waited = 0.0
        self._wait_handed = False
        self._notifications: list[PendingNotification] = []

    # --- constructors ----------------------------------------------------------------------

    @classmethod
    def from_offer(
        cls,
        offer: str | CredentialOffer,
        *,
        policy: WalletPolicy | None = None,
        tx_code: str | None = None,
        count: int = 1,
        configuration_ids: Sequence[str] | None = None,
        redirect_uri: str | None = None,
        client_id: str | None = None,
        grant: Grant | None = None,
        deferred_max_wait: float | None = None,
        metadata_cache: MetadataCache | None = None,
        status_cache: StatusListTokenCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> IssuanceFlow:
        """A flow for ``offer``: its text (QR payload, link, JSON; by value or by reference)
        or a parsed :class:`CredentialOffer`.

        ``grant`` picks the grant: by default the pre-authorized code when the offer has one,
        else the authorization code flow (which needs ``redirect_uri`` and ``client_id``).
        ``count`` credentials (each bound to its own holder key) are requested per
        configuration (``configuration_ids``: all offered ones by default). Deferred
        credentials are polled for at most ``deferred_max_wait`` seconds (default: the
        policy's); then the flow stops in ``DEFERRED`` with them in its result.
        """
        flow = cls(
            policy=policy if policy is not None else WalletPolicy(),
            clock=clock,
            grant=grant,
            metadata_cache=metadata_cache,
            status_cache=status_cache,
        )
        if grant not in (None, "pre-authorized_code", "authorization_code"):
            raise UsageError("grant must be 'pre-authorized_code' or 'authorization_code'")
        check_count(count)
        if tx_code is not None and not isinstance(tx_code, str):
            raise ArgumentTypeError("tx_code must be a string")
        for name, value in (("redirect_uri", redirect_uri), ("client_id", client_id)):
            if value is not None and (not isinstance(value, str) or not value):
                raise UsageError(f"{name} must be a non-empty string")
        if grant == "authorization_code" and (redirect_uri is None or client_id is None):
            raise UsageError("the authorization code flow needs redirect_uri and client_id")
        if deferred_max_wait is not None:
            flow._budget = check_max_wait(deferred_max_wait)
        flow._tx_code = tx_code
        flow._count = count
        flow._wanted_ids = (
            None if configuration_ids is None else check_configuration_ids(configuration_ids)
        )
        flow._redirect_uri = redirect_uri
        flow._client_id = client_id
        if isinstance(offer, CredentialOffer):
            found: CredentialOffer | str = offer
        elif isinstance(offer, str):
            found = parse_credential_offer_uri(offer)
        else:
            raise ArgumentTypeError("offer must be the offer text or a CredentialOffer")
        if isinstance(found, CredentialOffer):
            flow._take_offer(found)
            flow._fire(_E.OFFER_BY_VALUE)
        else:
            flow._offer_uri = found
            flow._fire(_E.OFFER_BY_REFERENCE)
        return flow

    @classmethod
    def for_deferred(
        cls,
        transactions: Sequence[DeferredTransaction],
        *,
        policy: WalletPolicy | None = None,
        max_wait: float | None = None,
        status_cache: StatusListTokenCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> IssuanceFlow:
        """A flow that polls deferred ``transactions`` (from an earlier result) until their
        credentials come, for at most ``max_wait`` seconds (default: the policy's
        ``deferred_max_wait``)."""
        txs = tuple(transactions)
        if not txs or not all(isinstance(tx, DeferredTransaction) for tx in txs):
            raise UsageError("for_deferred needs one or more DeferredTransaction values")
        session = txs[0].session
        flow = cls(
            policy=policy if policy is not None else WalletPolicy(),
            clock=clock,
            grant=None,
            status_cache=status_cache,
        )
        flow._grant = session.grant
        flow._session = session
        flow._nonces = session.dpop_nonces
        flow._credential_issuer = session.credential_issuer
        flow._version = session.spec_version
        if max_wait is not None:
            flow._budget = check_max_wait(max_wait)
        flow._deferred = list(txs)
        flow._fire(_E.DEFERRED_TRANSACTIONS_GIVEN)
        return flow

    @classmethod
    def for_notification(
        cls,
        credentials: Sequence[ReceivedCredential],
        event: str,
        description: str | None = None,
        *,
        policy: WalletPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> IssuanceFlow:
        """A flow that tells the issuer what became of ``credentials`` (OID4VCI 1.0 §11):
        one notification request per distinct ``notification_id``."""
        creds = tuple(credentials)
        if not all(isinstance(c, ReceivedCredential) for c in creds):
            raise ArgumentTypeError("for_notification needs ReceivedCredential values")
        flow = cls(policy=policy if policy is not None else WalletPolicy(), clock=clock, grant=None)
        flow._received = list(creds)
        flow._notifications = notifications_for(creds, event, description)
        first = flow._notifications[0].session
        flow._session = first
        flow._nonces = first.dpop_nonces
        flow._credential_issuer = first.credential_issuer
        flow._version = first.spec_version
        flow._grant = first.grant
        flow._fire(_E.NOTIFICATION_REQUESTED)
        return flow

    # --- what the caller sees ----------------------------------------------------------------

    @property
    def state(self) -> FlowState:
        """Where the flow stands."""
        return self._state

    @property
    def spec_version(self) -> SpecVersion | None:
        """The issuer's OID4VCI version, once its metadata was read."""
        return self._version

    @property
    def history(self) -> tuple[tuple[FlowState, Event], ...]:
        """The table rows taken so far: ``(state, event)`` pairs, oldest first."""
        return tuple(self._history)

    @property
    def result(self) -> IssuanceResult:
        """What the flow has produced so far (final in ``DONE``)."""
        session = self._session
        return IssuanceResult(
            credentials=tuple(self._received),
            deferred=tuple(self._deferred),
            spec_version=self._version if self._version is not None else SpecVersion.V1,
            flow=self._grant if self._grant is not None else "pre-authorized_code",
            state=self._state,
            credential_issuer=self._credential_issuer,
            session=session,
        )

    def __repr__(self) -> str:
        return (
            f"IssuanceFlow(state={self._state.value!r}, "
            f"credential_issuer={self._credential_issuer!r})"
        )

    # --- driving ---------------------------------------------------------------------------------

    async def next_action(self) -> Action:
        """The next thing to do: :class:`SendRequest`, :class:`Authorize`, :class:`Wait` or
        :class:`Done`. Raises the typed error of a failure (the flow is then ``FAILED``)."""
        self._require_alive()
        if self._in_flight is not None:
            raise StateError("a request is in flight: give its response to receive_response()")
        with self._failing():
            while True:
                action = await _STEPS[self._state](self)
                if action is not None:
                    return action

    def receive_response(self, response: HttpResponse) -> None:
        """The answer to the last :class:`SendRequest` (any status)."""
        self._require_alive()
        if not isinstance(response, HttpResponse):
            raise ArgumentTypeError("receive_response needs an HttpResponse")
        in_flight = self._in_flight
        if in_flight is None:
            raise StateError("no request is awaiting a response")
        self._in_flight = None
        with self._failing():
            origin = origin_of(in_flight.request.url)
            nonce = response.headers.get("DPoP-Nonce")
            if nonce:
                self._nonces.set(origin, nonce)
            challenge = response.headers.get(CLIENT_ATTESTATION_CHALLENGE_HEADER)
            if challenge and in_flight.request.headers.get(CLIENT_ATTESTATION_POP_HEADER):
                self._attestation_challenge = challenge
            if self._state is not _S.FETCHING_STATUS_LISTS:  # a Status List follows it
                check_redirect(response)
            # use_attestation_challenge with a challenge we did not use: once more with it
            # (draft-ietf-oauth-attestation-based-client-auth-07 §8).
            if (
                challenge
                and challenge != in_flight.attestation_challenge
                and in_flight.request.headers.get(CLIENT_ATTESTATION_POP_HEADER)
                and is_use_attestation_challenge(response)
                and self._may(_E.USE_ATTESTATION_CHALLENGE)
            ):
                self._fire(_E.USE_ATTESTATION_CHALLENGE)
                return
            # use_fresh_attestation: a fresh attestation from the provider, the same request
            # once more; a second one is final (draft-ietf-oauth-attestation-based-client-auth-07).
            if in_flight.request.headers.get(
                CLIENT_ATTESTATION_HEADER
            ) and is_use_fresh_attestation(response):
                if not self._may(_E.USE_FRESH_ATTESTATION):
                    with attach_request(in_flight.request):
                        raise read_error_response(response, StaleAttestationError)
                self._fresh_attestation = True
                self._fire(_E.USE_FRESH_ATTESTATION)
                return
            # use_dpop_nonce with a nonce we did not use: the same request once more.
            if (
                in_flight.dpop
                and is_use_dpop_nonce(response)
                and self._nonces.get(origin) != in_flight.dpop_nonce
                and self._may(_E.USE_DPOP_NONCE)
            ):
                self._fire(_E.USE_DPOP_NONCE)
                return
            with attach_request(in_flight.request):
                if self._state in _ENCRYPTING_STATES:
                    response = open_response(response, in_flight.response_key)
                _RECEIVERS[self._state](self, response)

    def is_own_callback(self, callback_url: str) -> bool:
        """Whether ``callback_url`` answers this flow's authorization request (its ``state``
        and RFC 9207 ``iss`` match; a code or an error) without taking it: a callback listener
        can leave a forged or stray redirect unanswered and keep waiting for the real one."""
        if self._state is not _S.AWAITING_AUTHORIZATION or not isinstance(callback_url, str):
            return False
        assert self._oauth_state is not None and self._as_id is not None
        try:
            read_authorization_callback(
                callback_url,
                expected_state=self._oauth_state,
                expected_issuer=self._as_id,
                iss_supported=self._iss_parameter_supported(),
            )
        except CallbackError:
            return False
        except AuthorizationError:  # the authorization server's own error answer: ours
            return True
        return True

    def receive_callback(self, callback_url: str) -> None:
        """The redirect to the wallet's ``redirect_uri`` after :class:`Authorize`: checks
        ``state`` and RFC 9207 ``iss`` and takes the authorization code."""
        self._require_alive()
        if self._state is not _S.AWAITING_AUTHORIZATION:
            raise StateError(f"no authorization is awaited in state {self._state.value}")
        if not isinstance(callback_url, str):
            raise ArgumentTypeError("callback_url must be a string")
        with self._failing():
            assert self._oauth_state is not None and self._as_id is not None
            self._code = read_authorization_callback(
                callback_url,
                expected_state=self._oauth_state,
                expected_issuer=self._as_id,
                iss_supported=self._iss_parameter_supported(),
            )
            self._fire(_E.CALLBACK_RECEIVED)

    def send_failed(self, error: BaseException | None = None) -> None:
        """The last :class:`SendRequest` could not be sent or answered (a transport error or
        a cancellation): whether the server acted on it is unknown, so the flow fails.

        Two exceptions: a Status List fetch that got no answer (``error`` a
        :class:`~oid4vci.errors.ConnectError` or :class:`~oid4vci.errors.TransportTimeout`)
        under ``WalletPolicy.status`` ``check`` leaves that list's credentials with status
        ``None`` and the flow goes on (check ``flow.state``); a Status List fetch answered by a
        redirect the transport refused (:class:`~oid4vci.errors.RedirectRefused`) follows it
        (draft-ietf-oauth-status-list-20 §8.1), as when the redirect is returned."""
        self._in_flight = None
        if (
            self._state is _S.FETCHING_STATUS_LISTS
            and isinstance(error, RedirectRefused)
            and error.status is not None
        ):
            with self._failing():
                self._status_list_redirected(error.location)
            return
        if (
            self._state in (_S.FETCHING_STATUS_LISTS, _S.FETCHING_STATUS_LIST_KEYS)
            and self.policy.status == "check"
            and isinstance(error, ConnectError | TransportTimeout)
        ):
            with self._failing():
                self._key_fetch = None
                self._status_list_unavailable()
            return
        if self._state is not _S.FAILED:
            self._fire(_E.FAIL)

    def set_count(self, count: int) -> None:
        """Change how many credentials per configuration are requested (until the token
        request is sent)."""
        if self._state not in (
            _S.RESOLVING_OFFER,
            _S.DISCOVERING_ISSUER,
            _S.DISCOVERING_AUTHORIZATION_SERVER,
            _S.METADATA_DISCOVERED,
            _S.REQUESTING_ATTESTATION_CHALLENGE,
            _S.PUSHING_AUTHORIZATION_REQUEST,
            _S.AWAITING_AUTHORIZATION,
        ):
            raise StateError(f"count cannot change in state {self._state.value}")
        check_count(count)
        self._count = count

    def resume_polling(self, max_wait: float | None = None) -> None:
        """Poll the deferred credentials again (in ``DEFERRED``), for at most ``max_wait``
        seconds (default: the policy's ``deferred_max_wait``)."""
        self._require_alive()
        if self._state is not _S.DEFERRED:
            raise StateError(f"nothing to poll in state {self._state.value}")
        self._budget = check_max_wait(
            self.policy.deferred_max_wait if max_wait is None else max_wait
        )
        self._waited = 0.0
        self._fire(_E.POLLING_RESUMED)

    def notify(self, event: str, description: str | None = None) -> None:
        """Queue the notification ``event`` (``credential_accepted``, ``credential_failure``,
        ``credential_deleted``) for every ``notification_id`` received (in ``DONE``)."""
        self._require_alive()
        if self._state is not _S.DONE:
            raise StateError(
                f"notifications are sent when the flow is done, not {self._state.value}"
            )
        self._notifications = notifications_for(tuple(self._received), event, description)
        self._fire(_E.NOTIFICATION_REQUESTED)

    # --- the table --------------------------------------------------------------------------------

    def _fire(self, event: Event) -> None:
        rule = next_state(self._state, event)
        if rule.limit is not None:
            key = (self._state, event)
            used = self._attempts.get(key, 0)
            if used >= rule.limit:
                raise StateError(f"{event.value} may happen {rule.limit} time(s) per attempt")
            self._attempts[key] = used + 1
        self._history.append((self._state, event))
        self._state = rule.target
        if rule.starts_attempt:
            self._attempts.clear()

    def _may(self, event: Event) -> bool:
        """Whether the table has ``event`` in this state and its limit is not reached."""
        rule = TRANSITIONS.get((self._state, event))
        if rule is None:
            return False
        return rule.limit is None or self._attempts.get((self._state, event), 0) < rule.limit

    def _require_alive(self) -> None:
        if self._state is _S.FAILED:
            raise StateError("the flow has failed; start a new one")

    @contextlib.contextmanager
    def _failing(self) -> Iterator[None]:
        """Any error while the flow works moves it to ``FAILED`` (then propagates)."""
        try:
            yield
        except Exception:
            self._in_flight = None
            if self._state is not _S.FAILED:
                self._history.append((self._state, _E.FAIL))
                self._state = next_state(self._state, _E.FAIL).target
            raise

    # --- helpers ------------------------------------------------------------------------------

    def _take_offer(self, offer: CredentialOffer) -> None:
        """Check ``offer`` against what the caller asked for and choose the grant."""
        check_offer_limits(offer)
        self._offer = offer
        self._credential_issuer = offer.credential_issuer
        if self._grant is None:
            self._grant = (
                "pre-authorized_code"
                if offer.pre_authorized_code is not None
                else "authorization_code"
            )
        if self._grant == "pre-authorized_code":
            if offer.pre_authorized_code is None:
                raise OfferError("the offer has no pre-authorized code grant")
            check_tx_code(offer, self._tx_code)
        else:
            if self._tx_code is not None:
                raise UsageError("a tx_code goes with the pre-authorized code grant only")
            if self._redirect_uri is None or self._client_id is None:
                raise UsageError("the authorization code flow needs redirect_uri and client_id")
        self._configuration_ids = choose_configuration_ids(offer, self._wanted_ids)
        self._locations = issuer_metadata_urls(offer.credential_issuer)
        self._location = 0

    def _iss_parameter_supported(self) -> bool:
        doc = self._as_doc or {}
        return doc.get("authorization_response_iss_parameter_supported") is True

    def _secure(self, url: str, what: str) -> str:
        return require_secure_url(
            url, allow_insecure_loopback=self.policy.allow_insecure_loopback, what=what
        )

    async def _send(
        self,
        url: str,
        make: Callable[[str | None], HttpRequest],
        *,
        dpop_key: Signer | None,
        access_token: str | None = None,
    ) -> SendRequest:
        """Hand out ``make(dpop_proof)`` (a POST to ``url``), with a DPoP proof when
        ``dpop_key`` is given (the newest ``DPoP-Nonce`` of the origin in it)."""
        nonce = self._nonces.get(origin_of(url)) if dpop_key is not None else None
        proof = None
        if dpop_key is not None:
            proof = await build_dpop_jwt(
                dpop_key, "POST", url, access_token=access_token, nonce=nonce, clock=self.clock
            )
        request = make(proof)
        self._in_flight = _InFlight(
            request=request,
            dpop_nonce=nonce,
            dpop=proof is not None,
            attestation_challenge=(
                self._attestation_challenge
                if request.headers.get(CLIENT_ATTESTATION_POP_HEADER)
                else None
            ),
        )
        return SendRequest(request=request)

    async def _send_protected(
        self, session: IssuerSession, url: str, make: Callable[[str | None], HttpRequest]
    ) -> SendRequest:
        """:meth:`_send` to an endpoint protected by the session's access token (the proof
        then carries ``ath``, RFC 9449 §4.2)."""
        return await self._send(
            url, make, dpop_key=self._resource_key(session), access_token=session.access_token
        )

    def _get(self, url: str, *, languages: Sequence[str] = (), signed: bool = False) -> SendRequest:
        request = build_metadata_request(url, languages=languages, signed=signed)
        self._in_flight = _InFlight(request=request, dpop_nonce=None, dpop=False)
        return SendRequest(request=request)

    def _issuer(self) -> CredentialIssuerMetadata:
        assert self._issuer_meta is not None
        return self._issuer_meta

    def _as(self) -> AuthorizationServerMetadata:
        assert self._as_meta is not None
        return self._as_meta

    def _current_session(self) -> IssuerSession:
        assert self._session is not None
        return self._session

    @staticmethod
    def _resource_key(session: IssuerSession) -> Signer | None:
        """The DPoP key for the issuer's endpoints: the session's when its token is DPoP."""
        return session.dpop_key if session.uses_dpop else None

    # --- RESOLVING_OFFER ------------------------------------------------------------------------

    async def _step_resolving_offer(self) -> Action | None:
        assert self._offer_uri is not None
        url = self._secure(self._offer_uri, "credential_offer_uri")
        request = build_offer_request(url)
        self._in_flight = _InFlight(request=request, dpop_nonce=None, dpop=False)
        return SendRequest(request=request)

    def _receive_offer(self, response: HttpResponse) -> None:
        self._take_offer(parse_credential_offer_json(read_offer_response(response)))
        self._fire(_E.OFFER_RECEIVED)

    # --- DISCOVERING_ISSUER / DISCOVERING_AUTHORIZATION_SERVER ----------------------------------

    async def _step_discovering_issuer(self) -> Action | None:
        self._secure(self._credential_issuer, "credential_issuer")
        key = issuer_cache_key(
            self._credential_issuer, self.policy.languages, self.policy.signed_metadata
        )
        cached = self._cache.get(key) if self._cache else None
        if cached is not None:
            self._take_issuer_metadata(cached)
            return None
        url = self._secure(self._locations[self._location], "issuer metadata URL")
        return self._get(
            url,
            languages=self.policy.languages,
            signed=self.policy.signed_metadata != "ignore",
        )

    def _receive_issuer_metadata(self, response: HttpResponse) -> None:
        # Signed metadata (OID4VCI 1.0 §12.2.3, Draft 13 §11.2.3) is verified here, per policy.
        doc = read_issuer_metadata_response(
            response, self._credential_issuer, self.policy, clock=self.clock
        )
        if doc is None:
            self._next_location("Credential Issuer metadata")
            return
        self._take_issuer_metadata(doc)
        if self._cache is not None:
            self._cache.put(
                issuer_cache_key(
                    self._credential_issuer, self.policy.languages, self.policy.signed_metadata
                ),
                doc,
                max_age=cache_max_age(response.headers),
            )

    def _take_issuer_metadata(self, doc: dict[str, Any]) -> None:
        meta, version = read_issuer_metadata(doc, self._credential_issuer)
        grant = None
        if self._offer is not None:
            grant = (
                self._offer.pre_authorized_code
                if self._grant == "pre-authorized_code"
                else self._offer.authorization_code
            )
        self._encryption = plan_encryption(meta, version, self.policy.encryption)
        self._issuer_doc, self._issuer_meta, self._version = doc, meta, version
        self._as_id = select_authorization_server(
            meta, grant.authorization_server if grant is not None else None
        )
        self._locations = as_metadata_urls(
            self._as_id, openid_configuration=self.policy.openid_configuration_fallback
        )
        self._location = 0
        self._fire(_E.ISSUER_METADATA_RECEIVED)

    def _next_location(self, what: str) -> None:
        if self._location + 1 < len(self._locations) and self._may(_E.METADATA_NOT_FOUND):
            self._location += 1
            self._fire(_E.METADATA_NOT_FOUND)
            return
        raise MetadataError(f"no {what} found")

    async def _step_discovering_as(self) -> Action | None:
        assert self._as_id is not None
        self._secure(self._as_id, "authorization server")
        cached = self._cache.get(f"as {self._as_id}") if self._cache else None
        if cached is not None:
            self._take_as_metadata(cached)
            return None
        url = self._secure(self._locations[self._location], "authorization server metadata URL")
        return self._get(url)

    def _receive_as_metadata(self, response: HttpResponse) -> None:
        doc = read_metadata_response(response)
        if doc is None:
            self._next_location("authorization server metadata")
            return
        self._take_as_metadata(doc)
        if self._cache is not None and self._as_id is not None:
            self._cache.put(f"as {self._as_id}", doc, max_age=cache_max_age(response.headers))

    def _take_as_metadata(self, doc: dict[str, Any]) -> None:
        assert self._as_id is not None
        self._as_meta = read_as_metadata(doc, self._as_id)
        self._as_doc = doc
        self._fire(_E.AS_METADATA_RECEIVED)

    # --- METADATA_DISCOVERED: which grant -------------------------------------------------------

    async def _step_metadata_discovered(self) -> Action | None:
        meta, as_meta = self._issuer(), self._as()
        preflight(meta, self._configuration_ids, self.policy)
        if self.policy.profile == "haip":
            check_haip(
                meta,
                as_meta,
                self._configuration_ids,
                code_flow=self._grant != "pre-authorized_code",
            )
        secure_endpoint(as_meta.token_endpoint, "token_endpoint", self.policy)
        self._dpop_key = choose_dpop_key(self.policy, as_meta)
        method = client_auth_method(self.policy, as_meta)
        if method is not None:
            # The authenticated client is the attestation's sub (HAIP 1.0 §4.4.1).
            provider = self.policy.attestation_provider
            assert provider is not None
            if method == ATTEST_JWT_CLIENT_AUTH_DPOP:
                # DPoP-combined mode (draft-ietf-oauth-attestation-based-client-auth-10 §5.2):
                # the DPoP proofs are signed by the attestation's instance key.
                instance = await provider.client_attestation(authorization_server=as_meta.issuer)
                if instance.instance_key.alg not in (
                    as_meta.dpop_signing_alg_values_supported or ()
                ):
                    raise MetadataError(
                        "the authorization server takes only attest_jwt_client_auth_dpop and "
                        "not the DPoP algorithm of the attestation's instance key"
                    )
                self._dpop_key = instance.instance_key
            if self._client_id is None:
                self._client_id = provider.client_id
            elif self._client_id != provider.client_id:
                raise UsageError("client_id differs from the attestation provider's client_id")
            if self._attestation_challenge is None and self._challenge_endpoint() is not None:
                self._fire(_E.ATTESTATION_CHALLENGE_NEEDED)
                return None
        if self._grant == "pre-authorized_code":
            self._fire(_E.PRE_AUTHORIZED_CODE_GRANT)
            return None
        assert self._client_id is not None and self._redirect_uri is not None
        authorization_endpoint = secure_endpoint(
            as_meta.authorization_endpoint, "authorization_endpoint", self.policy
        )
        methods = as_meta.code_challenge_methods_supported
        if methods is not None and "S256" not in methods:
            raise MetadataError("the authorization server does not support PKCE S256")
        details, scope = authorization_details_or_scope(
            self.policy, as_meta, meta, self._configuration_ids
        )
        use_par = choose_par(self.policy, as_meta)
        self._code_verifier = generate_code_verifier()
        self._oauth_state = generate_state()
        auth_grant = self._offer.authorization_code if self._offer is not None else None
        params = authorization_request_params(
            client_id=self._client_id,
            redirect_uri=self._redirect_uri,
            code_challenge=code_challenge(self._code_verifier),
            state=self._oauth_state,
            authorization_details=details,
            scope=scope,
            issuer_state=auth_grant.issuer_state if auth_grant else None,
            dpop_jkt=jwk_thumbprint(self._dpop_key.public_jwk) if self._dpop_key else None,
            resource=meta.credential_issuer if (scope and meta.authorization_servers) else None,
        )
        if use_par:
            self._par_params = params
            self._fire(_E.AUTHORIZATION_REQUEST_PUSHABLE)
        else:
            self._authorization_url = build_authorization_url(authorization_endpoint, params)
            self._fire(_E.AUTHORIZATION_URL_READY)
        return None

    # --- REQUESTING_ATTESTATION_CHALLENGE (draft-ietf-oauth-attestation-based-client-auth-07 §8.1)

    def _challenge_endpoint(self) -> str | None:
        value = (self._as_doc or {}).get("challenge_endpoint")
        return value if isinstance(value, str) and value else None

    async def _step_requesting_attestation_challenge(self) -> Action | None:
        endpoint = secure_endpoint(self._challenge_endpoint(), "challenge_endpoint", self.policy)
        return await self._send(
            endpoint, lambda _: build_attestation_challenge_request(endpoint), dpop_key=None
        )

    def _receive_attestation_challenge(self, response: HttpResponse) -> None:
        self._attestation_challenge = read_attestation_challenge_response(response)
        self._fire(_E.ATTESTATION_CHALLENGE_RECEIVED)

    # --- PUSHING_AUTHORIZATION_REQUEST (RFC 9126) ------------------------------------------------

    async def _step_pushing(self) -> Action | None:
        endpoint = secure_endpoint(
            self._as().pushed_authorization_request_endpoint,
            "pushed_authorization_request_endpoint",
            self.policy,
        )
        params = self._par_params
        assert params is not None
        client_auth = await self._client_auth(self._as().issuer, self._auth_method())
        return await self._send(
            endpoint,
            lambda proof: build_par_request(
                endpoint, params, dpop_proof=proof, client_auth=client_auth
            ),
            dpop_key=self._dpop_key,
        )

    def _auth_method(self) -> str | None:
        """How the grant authenticates: ``attest_jwt_client_auth``,
        ``attest_jwt_client_auth_dpop`` or ``None`` (no attestation)."""
        return client_auth_method(self.policy, self._as())

    async def _client_auth(self, authorization_server: str, method: str | None) -> dict[str, str]:
        """The wallet attestation and a fresh PoP for ``authorization_server`` (its issuer
        identifier) by ``method`` (``None``: the request is not attested), for PAR, token and
        refresh requests (draft-ietf-oauth-attestation-based-client-auth-07 §6.1, OID4VCI 1.0
        Appendix E); a fresh attestation after ``use_fresh_attestation``. In DPoP-combined
        mode only the attestation: the request's DPoP proof is its PoP."""
        if method is None:
            return {}
        provider = self.policy.attestation_provider
        if provider is None:  # a refresh of an attested grant under another policy
            raise UsageError(
                "the grant was made with a wallet attestation; the policy has no attestation "
                "provider to refresh it with"
            )
        fresh, self._fresh_attestation = self._fresh_attestation, False
        return await client_attestation_headers(
            provider,
            authorization_server,
            method,
            fresh=fresh,
            challenge=self._attestation_challenge,
            clock=self.clock,
        )

    def _receive_par(self, response: HttpResponse) -> None:
        pushed = read_par_response(response)
        assert self._client_id is not None
        endpoint = secure_endpoint(
            self._as().authorization_endpoint, "authorization_endpoint", self.policy
        )
        self._authorization_url = build_authorization_url(
            endpoint, {"client_id": self._client_id, "request_uri": pushed.request_uri}
        )
        self._par_params = None
        self._fire(_E.AUTHORIZATION_REQUEST_PUSHED)

    # --- AWAITING_AUTHORIZATION ----------------------------------------------------------------

    async def _step_awaiting_authorization(self) -> Action | None:
        assert self._authorization_url is not None
        return Authorize(url=self._authorization_url)

    # --- REQUESTING_TOKEN -------------------------------------------------------------------------

    async def _step_requesting_token(self) -> Action | None:
        endpoint = secure_endpoint(self._as().token_endpoint, "token_endpoint", self.policy)
        if self._grant == "pre-authorized_code":
            assert self._offer is not None and self._offer.pre_authorized_code is not None
            params = pre_authorized_grant(
                self._offer.pre_authorized_code.pre_authorized_code,
                tx_code=self._tx_code,
                client_id=self._client_id,
            )
        else:
            assert self._code is not None and self._code_verifier is not None
            assert self._redirect_uri is not None and self._client_id is not None
            params = authorization_code_grant(
                self._code,
                code_verifier=self._code_verifier,
                redirect_uri=self._redirect_uri,
                client_id=self._client_id,
            )
        client_auth = await self._client_auth(self._as().issuer, self._auth_method())
        return await self._send(
            endpoint,
            lambda proof: build_token_request(
                endpoint, params, dpop_proof=proof, client_auth=client_auth
            ),
            dpop_key=self._dpop_key,
        )

    def _receive_token(self, response: HttpResponse) -> None:
        token = read_token_response(response, dpop_proof_sent=self._dpop_key is not None)
        token_endpoint = secure_endpoint(self._as().token_endpoint, "token_endpoint", self.policy)
        meta = self._issuer()
        assert self._version is not None
        self._code = None
        self._tx_code = None
        if token.c_nonce is not None:
            self._c_nonce = token.c_nonce
        self._session = IssuerSession(
            credential_issuer=meta.credential_issuer,
            spec_version=self._version,
            access_token=token.access_token,
            token_type="DPoP" if token.is_dpop else "Bearer",
            dpop_key=self._dpop_key if token.is_dpop else None,
            credential_endpoint=secure_endpoint(
                meta.credential_endpoint, "credential_endpoint", self.policy
            ),
            nonce_endpoint=meta.nonce_endpoint,
            deferred_credential_endpoint=meta.deferred_credential_endpoint,
            notification_endpoint=meta.notification_endpoint,
            client_id=self._client_id,
            dpop_nonces=self._nonces,
            grant=self._grant,
            encryption=self._encryption,
            refresh_token=token.refresh_token,
            token_endpoint=token_endpoint if token.refresh_token else None,
            # What a refresh must carry, also when resumed without the AS metadata.
            token_endpoint_auth_method=self._auth_method(),
            authorization_server=self._as().issuer,
        )
        self._plan = plan_credential_requests(
            meta,
            self._version,
            token,
            configuration_ids=self._configuration_ids,
            count=self._count,
            policy=self.policy,
        )
        self._fire(_E.TOKEN_RECEIVED)

    # --- ISSUING: the next credential request, a poll, or done -----------------------------------

    async def _step_issuing(self) -> Action | None:
        if self._plan:
            request = self._plan[0]
            session = self._current_session()
            if request.size and not request.keys:
                config = self._issuer().configuration(request.configuration_id)
                proof_type, _ = choose_proof_type(config, self.policy)
                algorithms = config.proof_algorithms(proof_type)
                keys: list[Signer] = []
                for _ in range(request.size):
                    key = await self.policy.holder_key_provider(
                        configuration_id=request.configuration_id, algorithms=algorithms
                    )
                    if not isinstance(getattr(key, "public_jwk", None), dict):
                        raise UsageError("the holder key provider must return a Signer")
                    keys.append(key)
                request = self._plan[0] = attrs.evolve(request, keys=tuple(keys))
            if request.size and session.nonce_endpoint:
                self._fire(_E.NONCE_NEEDED)
            else:
                self._set_nonce(self._c_nonce if request.size else None)
                self._fire(_E.CREDENTIAL_REQUEST_READY)
        elif self._deferred:
            self._fire(_E.DEFERRED_PENDING)
        else:
            self._fire(_E.ALL_ISSUED)
        return None

    # --- REQUESTING_NONCE (OID4VCI 1.0 §7) -----------------------------------------------------

    async def _step_requesting_nonce(self) -> Action | None:
        session = self._current_session()
        endpoint = secure_endpoint(session.nonce_endpoint, "nonce_endpoint", self.policy)
        return await self._send(
            endpoint,
            lambda proof: build_nonce_request(endpoint, dpop_proof=proof),
            dpop_key=self._resource_key(session),
        )

    def _receive_nonce(self, response: HttpResponse) -> None:
        self._set_nonce(read_nonce_response(response))
        self._fire(_E.NONCE_RECEIVED)

    def _set_nonce(self, nonce: str | None) -> None:
        """The next credential request's ``c_nonce``."""
        self._plan[0] = attrs.evolve(self._plan[0], nonce=nonce)

    # --- REQUESTING_CREDENTIAL (OID4VCI 1.0 §8) -------------------------------------------------

    async def _step_requesting_credential(self) -> Action | None:
        request = self._plan[0]
        session = self._current_session()
        config = self._issuer().configuration(request.configuration_id)
        proof_type, attested = choose_proof_type(config, self.policy)
        key_attestation: str | None = None
        if request.keys and attested:
            # OID4VCI 1.0 Appendix D: one attestation of all keys of the request (HAIP 1.0
            # §4.5.1), carrying the c_nonce.
            provider = self.policy.attestation_provider
            assert provider is not None
            key_attestation = await provider.key_attestation(
                keys=[key.public_jwk for key in request.keys],
                nonce=request.nonce,
                credential_issuer=session.credential_issuer,
            )
        if proof_type == "attestation" and key_attestation is not None:
            proofs: tuple[str, ...] = (key_attestation,)
        else:
            proof_type = "jwt"
            proofs = tuple(
                [
                    await build_key_proof(
                        key,
                        audience=session.credential_issuer,
                        nonce=request.nonce,
                        client_id=self._client_id,
                        key_attestation=key_attestation,
                        clock=self.clock,
                    )
                    for key in request.keys
                ]
            )
        wire = CredentialRequest(
            credential_identifier=request.credential_identifier,
            credential_configuration_id=(
                None if request.credential_identifier else request.configuration_id
            ),
            format=config.format,
            vct=config.vct,
            doctype=config.doctype,
            credential_definition=request_definition(config),
            proofs=ProofSet(proof_type=proof_type, values=proofs) if proofs else None,
            single_proof=len(proofs) == 1,
        )
        body = credential_request_to_json(wire, session.spec_version)
        encryption = session.encryption or EncryptionPlan()
        response_key = new_response_key(encryption)
        if response_key is not None:
            body["credential_response_encryption"] = response_encryption_member(
                response_key, session.spec_version
            )
        endpoint = session.credential_endpoint
        action = await self._send_protected(
            session,
            endpoint,
            lambda proof: seal_request(
                build_credential_request(
                    endpoint,
                    body,
                    access_token=session.access_token,
                    token_type=session.token_type,
                    dpop_proof=proof,
                ),
                encryption,
            ),
        )
        assert self._in_flight is not None
        self._in_flight.response_key = response_key
        return action

    def _receive_credential(self, response: HttpResponse) -> None:
        request = self._plan[0]
        session = self._current_session()
        try:
            parsed = read_credential_response(response)
        except CredentialRequestError as err:
            if self._may_refresh(err, session):
                return
            if request.size and self._may_reprove(err, session):
                return
            raise
        if parsed.c_nonce is not None:
            self._c_nonce = parsed.c_nonce
        self._plan.pop(0)
        config = self._issuer().configuration(request.configuration_id)
        if parsed.credentials:
            self._unverified = unverified_credentials(
                parsed,
                configuration_id=request.configuration_id,
                keys=tuple(request.keys),
                format=config.format,
                expected_vct=config.vct,
                expected_types=definition_types(config),
                expected_doctype=config.doctype,
                session=session,
            )
            self._fire(_E.CREDENTIALS_RECEIVED)
            return
        assert parsed.transaction_id is not None
        interval = polling_interval(parsed.interval, self.policy.deferred_default_interval)
        self._deferred.append(
            DeferredTransaction(
                transaction_id=parsed.transaction_id,
                configuration_id=request.configuration_id,
                holder_keys=tuple(request.keys),
                interval=interval,
                session=session,
                expected_vct=config.vct,
                format=config.format,
                expected_types=definition_types(config),
                expected_doctype=config.doctype,
                due_at=self.clock() + interval,
            )
        )
        self._fire(_E.DEFERRAL_RECEIVED)

    def _may_reprove(self, err: CredentialRequestError, session: IssuerSession) -> bool:
        """Fire the re-proof retry ``err`` allows, if any (see the rules in states.py)."""
        if err.error == ErrorCode.INVALID_NONCE and session.nonce_endpoint:
            if self._may(_E.NONCE_REJECTED):
                self._set_nonce(None)
                self._fire(_E.NONCE_REJECTED)
                return True
            return False
        fresh = err.c_nonce
        if (
            err.error in (ErrorCode.INVALID_NONCE, ErrorCode.INVALID_PROOF)
            and fresh
            and self._may(_E.FRESH_C_NONCE_RECEIVED)
        ):
            self._c_nonce = fresh
            self._set_nonce(fresh)
            self._fire(_E.FRESH_C_NONCE_RECEIVED)
            return True
        return False

    # --- REFRESHING_TOKEN(_FOR_DEFERRED) (RFC 6749 §6) ------------------------------------------

    def _may_refresh(self, err: CredentialRequestError, session: IssuerSession) -> bool:
        """Fire ``access_token_expired`` when ``err`` is ``invalid_token`` (RFC 6750 §3.1) and
        ``session`` holds a refresh token (see the rules in states.py)."""
        if (
            err.error != ErrorCode.INVALID_TOKEN
            or session.refresh_token is None
            or session.token_endpoint is None
            or not self._may(_E.ACCESS_TOKEN_EXPIRED)
        ):
            return False
        self._fire(_E.ACCESS_TOKEN_EXPIRED)
        return True

    def _refreshing_session(self) -> IssuerSession:
        if self._state is _S.REFRESHING_TOKEN_FOR_DEFERRED:
            return self._deferred[0].session
        if self._state is _S.REFRESHING_TOKEN_FOR_NOTIFICATION:
            return self._notifications[0].session
        return self._current_session()

    async def _step_refreshing_token(self) -> Action | None:
        session = self._refreshing_session()
        assert session.refresh_token is not None and session.token_endpoint is not None
        endpoint = secure_endpoint(session.token_endpoint, "token_endpoint", self.policy)
        params = refresh_token_grant(session.refresh_token, client_id=session.client_id)
        # The grant's refresh tokens are bound to its attestation: a refresh carries one
        # (draft-ietf-oauth-attestation-based-client-auth-07 §6.2), as the session recorded.
        method = session.token_endpoint_auth_method
        if (
            method not in (ATTEST_JWT_CLIENT_AUTH, ATTEST_JWT_CLIENT_AUTH_DPOP)
            or session.authorization_server is None
        ):
            method = None
        client_auth = await self._client_auth(session.authorization_server or "", method)
        return await self._send(
            endpoint,
            lambda proof: build_token_request(
                endpoint, params, dpop_proof=proof, client_auth=client_auth
            ),
            dpop_key=self._resource_key(session),
        )

    def _receive_refreshed_token(self, response: HttpResponse) -> None:
        session = self._refreshing_session()
        token = read_token_response(response, dpop_proof_sent=session.uses_dpop)
        refreshed = attrs.evolve(
            session,
            access_token=token.access_token,
            token_type="DPoP" if token.is_dpop else "Bearer",
            # RFC 6749 §6: without a new refresh token the client keeps the old one.
            refresh_token=token.refresh_token or session.refresh_token,
        )
        self._replace_session(session, refreshed)
        self._fire(_E.TOKEN_REFRESHED)

    def _replace_session(self, old: IssuerSession, new: IssuerSession) -> None:
        """Put ``new`` wherever the flow holds ``old`` (one session object per flow)."""
        if self._session is old:
            self._session = new
        self._deferred = [
            attrs.evolve(tx, session=new) if tx.session is old else tx for tx in self._deferred
        ]
        self._received = [
            attrs.evolve(c, session=new) if c.session is old else c for c in self._received
        ]
        self._notifications = [
            attrs.evolve(note, session=new) if note.session is old else note
            for note in self._notifications
        ]
        if self._unverified is not None and self._unverified.session is old:
            self._unverified = attrs.evolve(self._unverified, session=new)

    # --- VERIFYING_CREDENTIALS / FETCHING_ISSUER_KEYS ---------------------------------------------

    async def _step_verifying(self) -> Action | None:
        unverified = self._unverified
        assert unverified is not None
        session = unverified.session
        try:
            out, mdoc_statuses = await verify_received(
                unverified, issuer_keys=self._issuer_keys, policy=self.policy, clock=self.clock
            )
        except IssuerKeysNeeded as need:
            self._key_fetch = _KeyFetch(iss=need.iss, url=jwt_vc_issuer_metadata_url(need.iss))
            if not self._may(_E.ISSUER_KEYS_NEEDED):
                raise _key_error("the issuer keys could not be loaded") from None
            self._fire(_E.ISSUER_KEYS_NEEDED)
            return None
        self._unverified = None
        referenced = status_references(out, mdoc_statuses, policy=self.policy)
        if referenced is None:
            self._received.extend(out)
            self._fire(_E.CREDENTIALS_VERIFIED)
            return None
        credentials, uris = referenced
        iss = session.credential_issuer
        self._status_fetch = _StatusFetch(
            credentials=credentials, pending=[(uri, iss) for uri in uris]
        )
        self._fire(_E.STATUS_LISTS_NEEDED)
        return None

    # --- FETCHING_STATUS_LISTS (draft-ietf-oauth-status-list-20 §8) --------------------------------

    async def _step_fetching_status_lists(self) -> Action | None:
        fetch = self._status_fetch
        assert fetch is not None
        while fetch.pending:
            uri, _ = fetch.pending[0]
            cached = self._status_cache.get(uri) if self._status_cache is not None else None
            if cached is None:
                url = fetch.location or self._secure(uri, "the status list URI")
                return self._get_status_list(url)
            fetch.values[uri] = status_entries(cached.status_list, fetch.credentials, uri)
            fetch.pending.pop(0)
        for cred in fetch.credentials:
            self._received.append(with_status(cred, fetch.values))
        self._status_fetch = None
        self._fire(_E.STATUS_CHECKED)
        return None

    def _get_status_list(self, url: str) -> SendRequest:
        request = build_status_list_request(url)
        self._in_flight = _InFlight(request=request, dpop_nonce=None, dpop=False)
        return SendRequest(request=request)

    def _receive_status_list(self, response: HttpResponse) -> None:
        fetch = self._status_fetch
        assert fetch is not None
        uri, iss = fetch.pending[0]
        if response.status in REDIRECT_STATUSES:
            self._status_list_redirected(response.headers.get("Location"))
            return
        try:
            header = status_list_token_header(response)
        except StatusListVerificationError as exc:
            if exc.reason == StatusListReason.UNAVAILABLE and self.policy.status == "check":
                self._status_list_unavailable()
                return
            raise
        found = x5c_status_list_keys(header, iss, policy=self.policy, clock=self.clock)
        if found is None:
            found = self._issuer_keys.get(iss)
        if found is None and iss not in fetch.keys_tried:
            # Signed by a kid of an issuer whose keys this flow has not loaded (its credentials
            # were mdocs, verified through their x5chain, or x5c-verified): load them, then
            # fetch the list again (draft-ietf-oauth-status-list-20 §8.3 step 4).
            fetch.keys_tried.add(iss)
            self._key_fetch = _KeyFetch(iss=iss, url=jwt_vc_issuer_metadata_url(iss))
            self._fire(_E.STATUS_LIST_KEYS_NEEDED)
            return
        if found is None:
            mdocs_only = all(
                c.format == "mso_mdoc"
                for c in fetch.credentials
                if c.status_reference is not None and c.status_reference.uri == uri
            )
            if mdocs_only and self.policy.status == "check":
                # mdocs are verified through their x5chain, so the issuer's JWT keys were never
                # fetched: under "check" the status stays unknown (None), as for a list that
                # cannot be fetched; "require" fails below.
                self._status_list_unavailable()
                return
            # Credentials verified through x5c and a list signed without it (not fetched).
            raise _key_error("the Status List Token has no x5c and the issuer's keys are unknown")
        token = read_status_list_response(
            response,
            uri=uri,
            keys=found,
            algorithms=self.policy.credential_algorithms,
            clock=self.clock,
            leeway=self.policy.clock_skew,
        )
        if self._status_cache is not None:
            self._status_cache.put(uri, token)
        fetch.values[uri] = status_entries(token.status_list, fetch.credentials, uri)
        fetch.pending.pop(0)
        fetch.location = None
        self._fire(_E.STATUS_LIST_RECEIVED)

    def _status_list_redirected(self, location: str | None) -> None:
        """A 3xx answer to a Status List fetch: fetch its target next (https only, no
        downgrade; draft-ietf-oauth-status-list-20 §8.1), at most
        :data:`~oid4vci.status.MAX_STATUS_LIST_REDIRECTS` times per attempt (the row's
        limit). A redirect that may not be followed makes the list unavailable."""
        fetch = self._status_fetch
        assert fetch is not None
        current = fetch.location or fetch.pending[0][0]
        try:
            if not self._may(_E.STATUS_LIST_REDIRECTED):
                raise StatusListVerificationError(
                    StatusListReason.UNAVAILABLE,
                    f"the status list URI redirected more than {MAX_STATUS_LIST_REDIRECTS} times",
                )
            target = status_list_redirect_target(
                current, location, allow_insecure_loopback=self.policy.allow_insecure_loopback
            )
        except StatusListVerificationError:
            if self.policy.status != "check":
                raise
            self._status_list_unavailable()
            return
        fetch.location = target
        self._fire(_E.STATUS_LIST_REDIRECTED)

    def _status_list_unavailable(self) -> None:
        fetch = self._status_fetch
        assert fetch is not None
        uri, _ = fetch.pending.pop(0)
        fetch.location = None
        fetch.values[uri] = None
        self._fire(_E.STATUS_LIST_UNAVAILABLE)

    # --- FETCHING_STATUS_LIST_KEYS: the issuer keys a Status List Token needs -----------------

    async def _step_fetching_status_list_keys(self) -> Action | None:
        try:
            return await self._step_fetching_issuer_keys()
        except CredentialVerificationError as exc:
            self._status_list_keys_unavailable(exc)
            return None

    def _receive_status_list_keys(self, response: HttpResponse) -> None:
        try:
            self._receive_issuer_keys(response)
        except ValidationError as exc:
            self._status_list_keys_unavailable(exc)

    def _status_list_keys_unavailable(self, error: Exception) -> None:
        """Keys that cannot be had leave the list's credentials at status ``None`` under
        ``check``; under ``require`` the flow fails with ``error``."""
        if self.policy.status != "check":
            raise error
        self._key_fetch = None
        self._status_list_unavailable()

    async def _step_fetching_issuer_keys(self) -> Action | None:
        fetch = self._key_fetch
        assert fetch is not None
        try:
            url = self._secure(
                fetch.url, "jwks_uri" if fetch.jwks_uri else "JWT VC issuer metadata"
            )
        except InsecureUrlError as exc:
            raise _key_error(str(exc)) from None
        return self._get(url)

    def _receive_issuer_keys(self, response: HttpResponse) -> None:
        fetch = self._key_fetch
        assert fetch is not None
        what = "jwks_uri" if fetch.jwks_uri else "JWT VC issuer metadata"
        doc = read_metadata_response(response)
        if doc is None:
            raise _key_error(f"{what} answered {response.status} without a JSON object")
        found = read_jwks(doc) if fetch.jwks_uri else read_jwt_vc_issuer_metadata(doc, fetch.iss)
        if isinstance(found, str):
            if not self._may(_E.JWKS_URI_FOUND):
                raise _key_error("jwks_uri points to another jwks_uri")
            fetch.url, fetch.jwks_uri = found, True
            self._fire(_E.JWKS_URI_FOUND)
            return
        self._issuer_keys[fetch.iss] = found
        self._key_fetch = None
        self._fire(_E.ISSUER_KEYS_RECEIVED)

    # --- WAITING_FOR_DEFERRED / REQUESTING_DEFERRED_CREDENTIAL / DEFERRED (OID4VCI 1.0 §9) ------

    async def _step_waiting_for_deferred(self) -> Action | None:
        if self._wait_handed:
            self._wait_handed = False
            self._fire(_E.WAITED)
            return None
        delay = self._deferred[0].due_at - self.clock()
        if delay <= 0:
            self._fire(_E.WAITED)
            return None
        if self._waited + delay > self._budget:
            self._fire(_E.POLLING_BUDGET_SPENT)
            return None
        self._waited += delay
        self._wait_handed = True
        return Wait(seconds=delay)

    async def _step_requesting_deferred(self) -> Action | None:
        transaction = self._deferred[0]
        session = transaction.session
        endpoint = secure_endpoint(
            session.deferred_credential_endpoint, "deferred_credential_endpoint", self.policy
        )
        # Deferred requests are encrypted from 1.0 on only (Draft 13-15: JSON both ways).
        encryption = (
            session.encryption if session.spec_version is SpecVersion.V1 else None
        ) or EncryptionPlan()
        response_key = new_response_key(encryption)
        member = (
            None
            if response_key is None
            else response_encryption_member(response_key, SpecVersion.V1)
        )
        action = await self._send_protected(
            session,
            endpoint,
            lambda proof: seal_request(
                build_deferred_credential_request(
                    endpoint,
                    transaction.transaction_id,
                    access_token=session.access_token,
                    token_type=session.token_type,
                    dpop_proof=proof,
                    credential_response_encryption=member,
                ),
                encryption,
            ),
        )
        assert self._in_flight is not None
        self._in_flight.response_key = response_key
        return action

    def _receive_deferred(self, response: HttpResponse) -> None:
        transaction = self._deferred[0]
        try:
            outcome = read_deferred_credential_response(response)
        except CredentialRequestError as err:
            if self._may_refresh(err, transaction.session):
                return
            raise
        if isinstance(outcome, DeferredPending):
            interval = polling_interval(outcome.interval, transaction.interval)
            self._deferred[0] = attrs.evolve(
                transaction, interval=interval, due_at=self.clock() + interval
            )
            self._fire(_E.ISSUANCE_PENDING)
            return
        if outcome.c_nonce is not None:
            self._c_nonce = outcome.c_nonce
        self._deferred.pop(0)
        self._unverified = unverified_credentials(
            outcome,
            configuration_id=transaction.configuration_id,
            keys=transaction.holder_keys,
            format=transaction.format,
            expected_vct=transaction.expected_vct,
            expected_types=transaction.expected_types,
            expected_doctype=transaction.expected_doctype,
            session=transaction.session,
        )
        self._fire(_E.CREDENTIALS_RECEIVED)

    async def _step_deferred(self) -> Action | None:
        return Done(result=self.result)

    # --- DONE / NOTIFYING (OID4VCI 1.0 §11) -------------------------------------------------------

    async def _step_done(self) -> Action | None:
        if self._notifications:
            self._fire(_E.NOTIFICATION_REQUESTED)
            return None
        return Done(result=self.result)

    async def _step_notifying(self) -> Action | None:
        note = self._notifications[0]
        session = note.session
        endpoint = secure_endpoint(
            session.notification_endpoint, "notification_endpoint", self.policy
        )
        return await self._send_protected(
            session,
            endpoint,
            lambda proof: build_notification_request(
                endpoint,
                note.notification_id,
                note.event,
                event_description=note.description,
                access_token=session.access_token,
                token_type=session.token_type,
                dpop_proof=proof,
            ),
        )

    def _receive_notification(self, response: HttpResponse) -> None:
        try:
            read_notification_response(response)
        except CredentialRequestError as err:
            if self._may_refresh(err, self._notifications[0].session):
                return
            raise
        self._notifications.pop(0)
        self._fire(_E.NOTIFICATION_SENT)

    # --- saving and resuming -----------------------------------------------------------------------

    def to_json(self) -> str:
        """The flow as JSON, to :meth:`from_json` later (only in a waiting state; **the text
        is secret**, see the module docstring)."""
        self._require_alive()
        if self._state not in WAITING_STATES or self._in_flight is not None:
            raise StateError(f"a flow in state {self._state.value} cannot be saved")
        return dump_flow(self._snapshot(), self.policy.key_references)

    @classmethod
    def from_json(
        cls,
        text: str | bytes,
        *,
        policy: WalletPolicy | None = None,
        metadata_cache: MetadataCache | None = None,
        status_cache: StatusListTokenCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> IssuanceFlow:
        """Resume a flow saved with :meth:`to_json`; :class:`UsageError` when ``text`` is not
        one (or is not one this version can resume)."""
        policy = policy if policy is not None else WalletPolicy()
        snapshot = load_flow(text, policy=policy)
        # IssuanceFlow, not cls: from_json makes an IssuanceFlow also when called on a subclass.
        flow = IssuanceFlow(
            policy=policy,
            clock=clock,
            grant=snapshot.grant,
            metadata_cache=metadata_cache,
            status_cache=status_cache,
        )
        flow._restore(snapshot)
        return flow

    def _snapshot(self) -> FlowSnapshot:
        """What this flow keeps across a save (:mod:`~oid4vci.wallet.flow_saving`)."""
        return FlowSnapshot(
            state=self._state,
            history=tuple(self._history),
            grant=self._grant,
            credential_issuer=self._credential_issuer,
            offer=self._offer,
            configuration_ids=self._configuration_ids,
            count=self._count,
            client_id=self._client_id,
            redirect_uri=self._redirect_uri,
            issuer_doc=self._issuer_doc,
            issuer_meta=self._issuer_meta,
            version=self._version,
            as_id=self._as_id,
            as_doc=self._as_doc,
            as_meta=self._as_meta,
            encryption=self._encryption,
            code_verifier=self._code_verifier,
            oauth_state=self._oauth_state,
            authorization_url=self._authorization_url,
            dpop_key=self._dpop_key,
            nonces=self._nonces,
            c_nonce=self._c_nonce,
            session=self._session,
            received=tuple(self._received),
            deferred=tuple(self._deferred),
            max_wait=self._budget,
            waited=self._waited,
            wait_handed=self._wait_handed,
            issuer_keys=self._issuer_keys,
        )

    def _restore(self, snapshot: FlowSnapshot) -> None:
        """Take over what :meth:`_snapshot` gave (a new flow resumed by :meth:`from_json`)."""
        self._state = snapshot.state
        self._history = list(snapshot.history)
        self._credential_issuer = snapshot.credential_issuer
        self._offer = snapshot.offer
        self._configuration_ids = snapshot.configuration_ids
        self._count = snapshot.count
        self._client_id = snapshot.client_id
        self._redirect_uri = snapshot.redirect_uri
        self._issuer_doc = snapshot.issuer_doc
        self._issuer_meta = snapshot.issuer_meta
        self._version = snapshot.version
        self._as_id = snapshot.as_id
        self._as_doc = snapshot.as_doc
        self._as_meta = snapshot.as_meta
        self._encryption = snapshot.encryption
        self._code_verifier = snapshot.code_verifier
        self._oauth_state = snapshot.oauth_state
        self._authorization_url = snapshot.authorization_url
        self._dpop_key = snapshot.dpop_key
        self._nonces = snapshot.nonces
        self._c_nonce = snapshot.c_nonce
        self._session = snapshot.session
        self._received = list(snapshot.received)
        self._deferred = list(snapshot.deferred)
        self._budget = snapshot.max_wait
        self._waited = snapshot.waited
        self._wait_handed = snapshot.wait_handed
        self._issuer_keys = snapshot.issuer_keys


def _key_error(message: str) -> SdJwtVerificationError:
    return SdJwtVerificationError(WalletReason.ISSUER_KEY_UNAVAILABLE, message)


_STEPS: Final[dict[FlowState, Callable[[IssuanceFlow], Awaitable[Action | None]]]] = {
    _S.RESOLVING_OFFER: IssuanceFlow._step_resolving_offer,
    _S.DISCOVERING_ISSUER: IssuanceFlow._step_discovering_issuer,
    _S.DISCOVERING_AUTHORIZATION_SERVER: IssuanceFlow._step_discovering_as,
    _S.METADATA_DISCOVERED: IssuanceFlow._step_metadata_discovered,
    _S.REQUESTING_ATTESTATION_CHALLENGE: IssuanceFlow._step_requesting_attestation_challenge,
    _S.PUSHING_AUTHORIZATION_REQUEST: IssuanceFlow._step_pushing,
    _S.AWAITING_AUTHORIZATION: IssuanceFlow._step_awaiting_authorization,
    _S.REQUESTING_TOKEN: IssuanceFlow._step_requesting_token,
    _S.ISSUING: IssuanceFlow._step_issuing,
    _S.REQUESTING_NONCE: IssuanceFlow._step_requesting_nonce,
    _S.REQUESTING_CREDENTIAL: IssuanceFlow._step_requesting_credential,
    _S.VERIFYING_CREDENTIALS: IssuanceFlow._step_verifying,
    _S.FETCHING_ISSUER_KEYS: IssuanceFlow._step_fetching_issuer_keys,
    _S.FETCHING_STATUS_LISTS: IssuanceFlow._step_fetching_status_lists,
    _S.FETCHING_STATUS_LIST_KEYS: IssuanceFlow._step_fetching_status_list_keys,
    _S.WAITING_FOR_DEFERRED: IssuanceFlow._step_waiting_for_deferred,
    _S.REQUESTING_DEFERRED_CREDENTIAL: IssuanceFlow._step_requesting_deferred,
    _S.REFRESHING_TOKEN: IssuanceFlow._step_refreshing_token,
    _S.REFRESHING_TOKEN_FOR_DEFERRED: IssuanceFlow._step_refreshing_token,
    _S.REFRESHING_TOKEN_FOR_NOTIFICATION: IssuanceFlow._step_refreshing_token,
    _S.DEFERRED: IssuanceFlow._step_deferred,
    _S.DONE: IssuanceFlow._step_done,
    _S.NOTIFYING: IssuanceFlow._step_notifying,
}
"""What ``next_action`` does in each state (``START`` and ``FAILED`` have no step)."""

_RECEIVERS: Final[dict[FlowState, Callable[[IssuanceFlow, HttpResponse], None]]] = {
    _S.RESOLVING_OFFER: IssuanceFlow._receive_offer,
    _S.DISCOVERING_ISSUER: IssuanceFlow._receive_issuer_metadata,
    _S.DISCOVERING_AUTHORIZATION_SERVER: IssuanceFlow._receive_as_metadata,
    _S.REQUESTING_ATTESTATION_CHALLENGE: IssuanceFlow._receive_attestation_challenge,
    _S.PUSHING_AUTHORIZATION_REQUEST: IssuanceFlow._receive_par,
    _S.REQUESTING_TOKEN: IssuanceFlow._receive_token,
    _S.REQUESTING_NONCE: IssuanceFlow._receive_nonce,
    _S.REQUESTING_CREDENTIAL: IssuanceFlow._receive_credential,
    _S.FETCHING_ISSUER_KEYS: IssuanceFlow._receive_issuer_keys,
    _S.FETCHING_STATUS_LISTS: IssuanceFlow._receive_status_list,
    _S.FETCHING_STATUS_LIST_KEYS: IssuanceFlow._receive_status_list_keys,
    _S.REQUESTING_DEFERRED_CREDENTIAL: IssuanceFlow._receive_deferred,
    _S.REFRESHING_TOKEN: IssuanceFlow._receive_refreshed_token,
    _S.REFRESHING_TOKEN_FOR_DEFERRED: IssuanceFlow._receive_refreshed_token,
    _S.REFRESHING_TOKEN_FOR_NOTIFICATION: IssuanceFlow._receive_refreshed_token,
    _S.NOTIFYING: IssuanceFlow._receive_notification,
}
"""How ``receive_response`` reads an answer in each state that sends a request."""
