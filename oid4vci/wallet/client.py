"""The high-level wallet: :class:`Oid4vciClient`.

::

    async with InMemoryTransport(...) as transport:          # or AiohttpTransport()
        client = Oid4vciClient(transport)
        offer = await client.parse_offer(link)
        result = await client.accept_offer(offer, tx_code="1234")        # pre-authorized
        # or, code flow:
        url, pending = await client.authorize(offer, redirect_uri=..., client_id=...)
        ...  # browser; maybe pending.to_json() → another process → from_json()
        result = await client.claim(pending, callback_url)

Every flow walks the state table of :mod:`oid4vci.wallet.states`; every request goes through
:class:`~oid4vci.wallet.driver.Driver` (DPoP, nonces, retries); every credential is verified
(:mod:`oid4vci.wallet.verify`) before it is returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from oid4vci.errors import (
    MetadataError,
    OfferError,
    StateError,
    ValidationError,
    WireFormatError,
)
from oid4vci.http import Transport
from oid4vci.jose import LocalSigner, Signer, jwk_thumbprint
from oid4vci.models import (
    AuthorizationServerMetadata,
    CredentialIssuerMetadata,
    CredentialOffer,
    TokenResponse,
    parse_credential_offer_json,
    parse_credential_offer_uri,
)
from oid4vci.pkce import code_challenge, generate_code_verifier, generate_state
from oid4vci.urls import require_secure_url
from oid4vci.versions import SpecVersion

from .discovery import Discovery, MetadataCache, discover, read_issuer_metadata
from .driver import (
    CredentialTarget,
    Driver,
    Sleep,
    check_proof_types,
    choose_dpop_key,
    secure_endpoint,
)
from .pending import PendingAuthorization
from .policy import WalletPolicy
from .results import (
    DeferredTransaction,
    FlowKind,
    IssuanceResult,
    IssuerSession,
    NonceMemory,
    ReceivedCredential,
)
from .states import Event, Flow, FlowState
from .steps import (
    authorization_code_grant,
    authorization_request_params,
    build_authorization_url,
    build_offer_request,
    pre_authorized_grant,
    read_authorization_callback,
    read_json_object,
)

__all__ = [
    "MAX_CREDENTIALS_PER_CONFIGURATION",
    "MAX_OFFERED_CONFIGURATIONS",
    "MAX_TX_CODE_LENGTH",
    "NOTIFICATION_EVENTS",
    "Oid4vciClient",
    "check_tx_code",
]

NOTIFICATION_EVENTS = frozenset({"credential_accepted", "credential_failure", "credential_deleted"})

#: An offer listing more credential configurations than this is refused (one flow requests
#: every offered configuration: an absurd offer must not turn into thousands of requests).
MAX_OFFERED_CONFIGURATIONS = 100
#: ``count`` above this is refused: each credential costs a fresh holder key and a proof.
MAX_CREDENTIALS_PER_CONFIGURATION = 1000
#: A ``tx_code.length`` above this is refused (no user can type it; a UI must not try).
MAX_TX_CODE_LENGTH = 256


def _check_count(count: int) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError("count must be a positive integer")
    if count > MAX_CREDENTIALS_PER_CONFIGURATION:
        raise ValueError(f"count must be at most {MAX_CREDENTIALS_PER_CONFIGURATION}")


def _check_offer_limits(offer: CredentialOffer) -> None:
    if len(offer.credential_configuration_ids) > MAX_OFFERED_CONFIGURATIONS:
        raise OfferError(
            f"the offer lists more than {MAX_OFFERED_CONFIGURATIONS} credential configurations"
        )
    grant = offer.pre_authorized_code
    spec = grant.tx_code if grant is not None else None
    if spec is not None and spec.length is not None and spec.length > MAX_TX_CODE_LENGTH:
        raise OfferError(f"the offer's tx_code length exceeds {MAX_TX_CODE_LENGTH}")


def check_tx_code(offer: CredentialOffer, tx_code: str | None) -> None:
    """Check the caller's Transaction Code against the offer's ``tx_code`` object.

    Required iff the offer has ``tx_code`` (even ``{}``); ``numeric`` (the default) means
    digits only; ``length`` must match. :class:`OfferError` otherwise (the code is never
    put in the message).
    """
    grant = offer.pre_authorized_code
    spec = grant.tx_code if grant is not None else None
    if spec is None:
        if tx_code is not None:
            raise OfferError("the offer does not ask for a transaction code")
        return
    if tx_code is None or tx_code == "":
        raise OfferError("the offer requires a transaction code (tx_code)")
    if (spec.input_mode or "numeric") == "numeric" and not (
        tx_code.isascii() and tx_code.isdigit()
    ):
        raise OfferError("the transaction code must be numeric")
    if spec.length is not None and len(tx_code) != spec.length:
        raise OfferError(f"the transaction code must have {spec.length} characters")


class Oid4vciClient:
    """An OpenID4VCI wallet over any :class:`~oid4vci.http.Transport`.

    :param transport: how requests are sent (in-memory, aiohttp, ...).
    :param policy: the :class:`WalletPolicy` (secure defaults).
    :param client_id: the wallet's OAuth ``client_id`` (needed for the code flow; for the
        pre-authorized flow it is sent when given, else the request is anonymous).
    :param clock: the time source (seconds); tests inject a fake one.
    :param sleep: how deferred polling waits (``anyio.sleep``); tests inject a fake one.
    """

    def __init__(
        self,
        transport: Transport,
        *,
        policy: WalletPolicy | None = None,
        client_id: str | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.transport = transport
        self.policy = policy if policy is not None else WalletPolicy()
        self.client_id = client_id
        self.clock = clock
        self.sleep = sleep
        self._cache = MetadataCache(self.policy.metadata_cache_ttl, clock=clock)

    def __repr__(self) -> str:
        return f"Oid4vciClient(client_id={self.client_id!r})"

    # --- offers ----------------------------------------------------------------------------------

    async def parse_offer(self, text: str) -> CredentialOffer:
        """Read an offer: ``openid-credential-offer://``, ``haip://``, any other scheme, an
        https link, or raw JSON; by value or by reference (fetched through the transport; https
        unless loopback is allowed; the answer must be a JSON object)."""
        found = parse_credential_offer_uri(text)
        if isinstance(found, CredentialOffer):
            _check_offer_limits(found)
            return found
        require_secure_url(
            found,
            allow_insecure_loopback=self.policy.allow_insecure_loopback,
            what="credential_offer_uri",
        )
        response = await self.transport.send(build_offer_request(found))
        try:
            body = read_json_object(response)
        except WireFormatError:
            raise OfferError("the credential offer fetched by reference is not JSON") from None
        offer = parse_credential_offer_json(body)
        _check_offer_limits(offer)
        return offer

    async def discover(
        self, credential_issuer: str, *, authorization_server: str | None = None
    ) -> Discovery:
        """Issuer and authorization server metadata (cached per the policy's TTL)."""
        return await discover(
            self.transport,
            credential_issuer,
            policy=self.policy,
            grant_authorization_server=authorization_server,
            cache=self._cache,
        )

    # --- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _configuration_ids(
        offer: CredentialOffer, configuration_ids: Sequence[str] | None
    ) -> tuple[str, ...]:
        offered = tuple(offer.credential_configuration_ids)
        if not offered:
            raise OfferError("the offer lists no credential configurations")
        _check_offer_limits(offer)
        if configuration_ids is None:
            return offered
        chosen = tuple(dict.fromkeys(configuration_ids))
        if not chosen or any(cid not in offered for cid in chosen):
            raise OfferError("configuration_ids must be a non-empty subset of the offer's")
        return chosen

    def _preflight(
        self, metadata: CredentialIssuerMetadata, configuration_ids: Sequence[str]
    ) -> None:
        """Refuse unusable configurations and issuer endpoints before anything single-use (a
        code) is spent."""
        for cid in configuration_ids:
            check_proof_types(metadata.configuration(cid))
        secure_endpoint(metadata.credential_endpoint, "credential_endpoint", self.policy)
        for what, url in (
            ("nonce_endpoint", metadata.nonce_endpoint),
            ("deferred_credential_endpoint", metadata.deferred_credential_endpoint),
            ("notification_endpoint", metadata.notification_endpoint),
        ):
            if url is not None:
                secure_endpoint(url, what, self.policy)

    def _driver(
        self,
        *,
        dpop_key: Signer | None = None,
        nonces: NonceMemory | None = None,
        c_nonce: str | None = None,
    ) -> Driver:
        return Driver(
            self.transport,
            policy=self.policy,
            clock=self.clock,
            sleep=self.sleep,
            dpop_key=dpop_key,
            nonces=nonces,
            c_nonce=c_nonce,
        )

    def _session(
        self,
        metadata: CredentialIssuerMetadata,
        version: SpecVersion,
        token: TokenResponse,
        driver: Driver,
        client_id: str | None,
    ) -> IssuerSession:
        return IssuerSession(
            credential_issuer=metadata.credential_issuer,
            spec_version=version,
            access_token=token.access_token,
            token_type="DPoP" if token.is_dpop else "Bearer",
            dpop_key=driver.dpop_key if token.is_dpop else None,
            credential_endpoint=secure_endpoint(
                metadata.credential_endpoint, "credential_endpoint", self.policy
            ),
            nonce_endpoint=metadata.nonce_endpoint,
            deferred_credential_endpoint=metadata.deferred_credential_endpoint,
            notification_endpoint=metadata.notification_endpoint,
            client_id=client_id,
            dpop_nonces=driver.nonces,
        )

    async def _issue(
        self,
        flow: Flow,
        kind: FlowKind,
        driver: Driver,
        session: IssuerSession,
        metadata: CredentialIssuerMetadata,
        configuration_ids: Sequence[str],
        token: TokenResponse,
        *,
        count: int,
        proof_client_id: str | None,
    ) -> IssuanceResult:
        received: list[ReceivedCredential] = []
        deferred: list[DeferredTransaction] = []
        for cid in configuration_ids:
            config = metadata.configuration(cid)
            # One Credential Dataset per identifier (e.g. two degrees): ``count`` of each.
            identifiers: Sequence[str | None] = token.credential_identifiers(cid) or [None]
            for identifier in identifiers:
                target = CredentialTarget(
                    configuration_id=cid, configuration=config, credential_identifier=identifier
                )
                got, later = await driver.request_credentials(
                    session, metadata, target, count=count, proof_client_id=proof_client_id
                )
                received.extend(got)
                deferred.extend(later)
        flow = flow.advance(Event.DEFERRAL_RECEIVED if deferred else Event.CREDENTIALS_RECEIVED)
        return IssuanceResult(
            credentials=tuple(received),
            deferred=tuple(deferred),
            spec_version=session.spec_version,
            flow=kind,
            state=flow.state,
            credential_issuer=metadata.credential_issuer,
            session=session,
        )

    # --- pre-authorized code flow ------------------------------------------------------------

    async def accept_offer(
        self,
        offer: CredentialOffer,
        *,
        tx_code: str | None = None,
        configuration_ids: Sequence[str] | None = None,
        count: int = 1,
    ) -> IssuanceResult:
        """Run the pre-authorized code flow for ``offer`` and return the verified credentials.

        ``tx_code`` is checked against the offer before anything is sent; ``count``
        credentials (each bound to its own holder key) are requested per configuration.
        """
        grant = offer.pre_authorized_code
        if grant is None:
            raise OfferError("the offer has no pre-authorized code grant")
        check_tx_code(offer, tx_code)
        chosen = self._configuration_ids(offer, configuration_ids)
        _check_count(count)
        flow = Flow()
        found = await self.discover(
            offer.credential_issuer, authorization_server=grant.authorization_server
        )
        flow = flow.advance(Event.METADATA_LOADED)
        self._preflight(found.issuer_metadata, chosen)
        token_endpoint = secure_endpoint(
            found.as_metadata.token_endpoint, "token_endpoint", self.policy
        )
        driver = self._driver(dpop_key=choose_dpop_key(self.policy, found.as_metadata))
        token = await driver.request_token(
            token_endpoint,
            pre_authorized_grant(
                grant.pre_authorized_code, tx_code=tx_code, client_id=self.client_id
            ),
        )
        flow = flow.advance(Event.TOKEN_RECEIVED)
        session = self._session(
            found.issuer_metadata, found.spec_version, token, driver, self.client_id
        )
        return await self._issue(
            flow,
            "pre-authorized_code",
            driver,
            session,
            found.issuer_metadata,
            chosen,
            token,
            count=count,
            proof_client_id=self.client_id,
        )

    # --- authorization code flow -------------------------------------------------------------

    async def authorize(
        self,
        offer: CredentialOffer,
        *,
        redirect_uri: str,
        client_id: str | None = None,
        configuration_ids: Sequence[str] | None = None,
    ) -> tuple[str, PendingAuthorization]:
        """Start the authorization code flow: returns the URL to open and the pending state.

        PKCE S256 and ``state`` always; ``issuer_state`` forwarded; ``authorization_details``
        or ``scope`` per policy; PAR when the AS offers it (always when it requires it);
        the DPoP key is bound at PAR (``DPoP`` header) and with ``dpop_jkt``.
        """
        cid = client_id or self.client_id
        if not cid:
            raise ValidationError("the authorization code flow needs a client_id")
        chosen = self._configuration_ids(offer, configuration_ids)
        auth_grant = offer.authorization_code
        flow = Flow()
        found = await self.discover(
            offer.credential_issuer,
            authorization_server=auth_grant.authorization_server if auth_grant else None,
        )
        flow = flow.advance(Event.METADATA_LOADED)
        as_meta, meta = found.as_metadata, found.issuer_metadata
        self._preflight(meta, chosen)
        authorization_endpoint = secure_endpoint(
            as_meta.authorization_endpoint, "authorization_endpoint", self.policy
        )
        token_endpoint = secure_endpoint(as_meta.token_endpoint, "token_endpoint", self.policy)
        methods = as_meta.code_challenge_methods_supported
        if methods is not None and "S256" not in methods:
            raise MetadataError("the authorization server does not support PKCE S256")
        dpop_key = choose_dpop_key(self.policy, as_meta)
        details, scope = self._what_to_request(as_meta, meta, chosen)
        use_par = self._use_par(as_meta)
        verifier = generate_code_verifier()
        state = generate_state()
        params = authorization_request_params(
            client_id=cid,
            redirect_uri=redirect_uri,
            code_challenge=code_challenge(verifier),
            state=state,
            authorization_details=details,
            scope=scope,
            issuer_state=auth_grant.issuer_state if auth_grant else None,
            dpop_jkt=jwk_thumbprint(dpop_key.public_jwk) if dpop_key is not None else None,
            resource=meta.credential_issuer if (scope and meta.authorization_servers) else None,
        )
        driver = self._driver(dpop_key=dpop_key)
        if use_par:
            endpoint = secure_endpoint(
                as_meta.pushed_authorization_request_endpoint,
                "pushed_authorization_request_endpoint",
                self.policy,
            )
            pushed = await driver.push_authorization_request(endpoint, params)
            url = build_authorization_url(
                authorization_endpoint, {"client_id": cid, "request_uri": pushed.request_uri}
            )
        else:
            url = build_authorization_url(authorization_endpoint, params)
        flow = flow.advance(Event.AUTHORIZATION_REQUESTED)
        pending = PendingAuthorization(
            credential_issuer=meta.credential_issuer,
            configuration_ids=chosen,
            spec_version=found.spec_version,
            client_id=cid,
            redirect_uri=redirect_uri,
            code_verifier=verifier,
            state=state,
            authorization_server=found.authorization_server,
            authorization_endpoint=authorization_endpoint,
            token_endpoint=token_endpoint,
            issuer_metadata=found.issuer_metadata_json,
            authorization_server_metadata=found.as_metadata_json,
            dpop_key=dpop_key if isinstance(dpop_key, LocalSigner) else None,
            dpop_nonces=driver.nonces.to_dict(),
            c_nonce=driver.c_nonce,
            issuer_state=auth_grant.issuer_state if auth_grant else None,
            authorization_details=tuple(details) if details is not None else None,
            scope=scope,
            used_par=use_par,
            created_at=self.clock(),
        )
        return url, pending

    def _use_par(self, as_meta: AuthorizationServerMetadata) -> bool:
        """Whether to push the authorization request (``policy.par`` against the AS)."""
        par_endpoint = as_meta.pushed_authorization_request_endpoint
        mode = self.policy.par
        if mode == "always" and not par_endpoint:
            raise MetadataError(
                "the authorization server has no PAR endpoint (policy requires PAR)"
            )
        if mode == "never" and as_meta.require_pushed_authorization_requests:
            raise MetadataError("the authorization server requires PAR (policy forbids it)")
        return bool(par_endpoint) and mode != "never"

    def _what_to_request(
        self,
        as_meta: AuthorizationServerMetadata,
        meta: CredentialIssuerMetadata,
        chosen: Sequence[str],
    ) -> tuple[list[dict[str, Any]] | None, str | None]:
        """``(authorization_details, None)`` or ``(None, scope)`` for the chosen configurations.

        ``authorization_details`` when the policy prefers it and the AS accepts
        ``openid_credential``, or when some configuration has no ``scope``; else the scopes."""
        types = as_meta.authorization_details_types_supported
        details_ok = types is None or "openid_credential" in types
        scopes = [meta.configuration(c).scope for c in chosen]
        if not (self.policy.use_authorization_details and details_ok) and all(scopes):
            return None, " ".join(dict.fromkeys(s for s in scopes if s))
        if not details_ok:
            raise MetadataError(
                "neither authorization_details nor scope can request these configurations"
            )
        details: list[dict[str, Any]] = []
        for c in chosen:
            entry: dict[str, Any] = {"type": "openid_credential", "credential_configuration_id": c}
            if meta.authorization_servers:
                entry["locations"] = [meta.credential_issuer]
            details.append(entry)
        return details, None

    async def claim(
        self, pending: PendingAuthorization, callback_url: str, *, count: int = 1
    ) -> IssuanceResult:
        """Finish the code flow: check the callback (``state``, RFC 9207 ``iss``, errors),
        redeem the code with the PKCE verifier, and fetch the credentials."""
        _check_count(count)
        if not isinstance(pending, PendingAuthorization):
            raise StateError("claim needs the PendingAuthorization returned by authorize")
        flow = Flow(state=FlowState.AWAITING_AUTHORIZATION)
        code = read_authorization_callback(
            callback_url,
            expected_state=pending.state,
            expected_issuer=pending.authorization_server,
            iss_supported=pending.iss_parameter_supported,
        )
        meta, version = read_issuer_metadata(pending.issuer_metadata, pending.credential_issuer)
        self._preflight(meta, pending.configuration_ids)
        token_endpoint = secure_endpoint(pending.token_endpoint, "token_endpoint", self.policy)
        driver = self._driver(
            dpop_key=pending.dpop_key,
            nonces=NonceMemory(pending.dpop_nonces),
            c_nonce=pending.c_nonce,
        )
        token = await driver.request_token(
            token_endpoint,
            authorization_code_grant(
                code,
                code_verifier=pending.code_verifier,
                redirect_uri=pending.redirect_uri,
                client_id=pending.client_id,
            ),
        )
        flow = flow.advance(Event.TOKEN_RECEIVED)
        session = self._session(meta, version, token, driver, pending.client_id)
        return await self._issue(
            flow,
            "authorization_code",
            driver,
            session,
            meta,
            pending.configuration_ids,
            token,
            count=count,
            proof_client_id=pending.client_id,
        )

    # --- after issuance ----------------------------------------------------------------------

    async def poll_deferred(
        self,
        deferred: DeferredTransaction | IssuanceResult,
        *,
        max_wait: float | None = None,
    ) -> tuple[ReceivedCredential, ...]:
        """Poll deferred transactions until their credentials arrive (verified), at most
        ``max_wait`` seconds each (default: the policy's ``deferred_max_wait``)."""
        transactions = deferred.deferred if isinstance(deferred, IssuanceResult) else (deferred,)
        out: list[ReceivedCredential] = []
        for tx in transactions:
            driver = self._driver(nonces=tx.session.dpop_nonces)
            out.extend(await driver.poll_deferred(tx, max_wait=max_wait))
        return tuple(out)

    async def notify(
        self,
        target: IssuanceResult | ReceivedCredential,
        event: str,
        description: str | None = None,
    ) -> None:
        """Tell the issuer what became of the credentials (``credential_accepted``,
        ``credential_failure`` or ``credential_deleted``), once per ``notification_id``."""
        if event not in NOTIFICATION_EVENTS:
            raise ValidationError("unknown notification event")
        creds = target.credentials if isinstance(target, IssuanceResult) else (target,)
        sent: set[str] = set()
        for cred in creds:
            nid = cred.notification_id
            if nid is None or nid in sent:
                continue
            session = cred.session
            if session is None:
                raise StateError("the credential carries no issuer session")
            driver = self._driver(nonces=session.dpop_nonces)
            await driver.notify(session, nid, event, description)
            sent.add(nid)
        if not sent:
            raise StateError("nothing to notify: no notification_id was issued")
