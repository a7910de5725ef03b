"""The high-level wallet: :class:`Oid4vciClient`, thin wrappers over
:class:`~oid4vci.wallet.flow.IssuanceFlow` and :func:`~oid4vci.wallet.driver.run_flow`.

::

    async with InMemoryTransport(...) as transport:          # or AiohttpTransport()
        client = Oid4vciClient(transport)
        offer = await client.parse_offer(link)
        result = await client.accept_offer(offer, tx_code="1234")        # pre-authorized
        # or, code flow:
        url, flow = await client.authorize(offer, redirect_uri=..., client_id=...)
        ...  # browser; maybe flow.to_json() → another process → IssuanceFlow.from_json()
        result = await client.claim(flow, callback_url)

Every step, retry and check is the flow's; every credential is verified
(:mod:`oid4vci.wallet.verify`) before it is returned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import anyio
import attrs

from oid4vci.errors import (
    ArgumentTypeError,
    CredentialRequestError,
    ErrorCode,
    StateError,
    UsageError,
)
from oid4vci.http import Transport
from oid4vci.models import CredentialOffer, parse_credential_offer_json, parse_credential_offer_uri
from oid4vci.status import StatusCheck, StatusListTokenCache
from oid4vci.tracing import attach_request, send
from oid4vci.urls import require_secure_url

from .discovery import Discovery, MetadataCache, discover
from .driver import Sleep, run_flow, run_until_authorize
from .flow import IssuanceFlow
from .policy import WalletPolicy
from .preflight import check_offer_limits
from .results import DeferredTransaction, IssuanceResult, ReceivedCredential
from .status_lists import check_status
from .steps import build_offer_request, read_offer_response

__all__ = ["Oid4vciClient"]


class Oid4vciClient:
    """An OpenID4VCI wallet over any :class:`~oid4vci.http.Transport`.

    :param transport: how requests are sent (in-memory, aiohttp, ...).
    :param policy: the :class:`WalletPolicy` (secure defaults). Plain http to loopback hosts is
        allowed when the policy or the transport says so (``allow_insecure_loopback=True`` on
        either is enough).
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
        if not callable(getattr(transport, "send", None)):
            raise ArgumentTypeError("transport must have an async send(request) method")
        self.transport = transport
        policy = policy if policy is not None else WalletPolicy()
        if not isinstance(policy, WalletPolicy):
            raise ArgumentTypeError("policy must be a WalletPolicy")
        if getattr(transport, "allow_insecure_loopback", False) is True:
            policy = attrs.evolve(policy, allow_insecure_loopback=True)
        self.policy = policy
        self.client_id = client_id
        self.clock = clock
        self.sleep = sleep
        self._cache = MetadataCache(self.policy.metadata_cache_ttl, clock=clock)
        self.status_cache = StatusListTokenCache(clock=clock)

    def __repr__(self) -> str:
        return f"Oid4vciClient(client_id={self.client_id!r})"

    # --- offers and metadata -----------------------------------------------------------------

    async def parse_offer(self, text: str) -> CredentialOffer:
        """Read an offer: ``openid-credential-offer://``, ``haip://``, any other scheme, an
        https link, or raw JSON; by value or by reference (fetched through the transport; https
        unless loopback is allowed; the answer must be a JSON object)."""
        found = parse_credential_offer_uri(text)
        if isinstance(found, CredentialOffer):
            check_offer_limits(found)
            return found
        url = require_secure_url(
            found,
            allow_insecure_loopback=self.policy.allow_insecure_loopback,
            what="credential_offer_uri",
        )
        request = build_offer_request(url)
        response = await send(self.transport, request)
        with attach_request(request):
            offer = parse_credential_offer_json(read_offer_response(response))
        check_offer_limits(offer)
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

    # --- the two grants ----------------------------------------------------------------------

    async def accept_offer(
        self,
        offer: CredentialOffer | str,
        *,
        tx_code: str | None = None,
        configuration_ids: Sequence[str] | None = None,
        count: int = 1,
    ) -> IssuanceResult:
        """Run the pre-authorized code flow for ``offer`` and return the verified credentials.

        ``tx_code`` is checked against the offer before anything is sent; ``count``
        credentials (each bound to its own holder key) are requested per configuration.
        Deferred credentials come back in ``result.deferred`` (poll them with
        :meth:`poll_deferred`).
        """
        flow = IssuanceFlow.from_offer(
            offer,
            policy=self.policy,
            tx_code=tx_code,
            count=count,
            configuration_ids=configuration_ids,
            client_id=self.client_id,
            grant="pre-authorized_code",
            deferred_max_wait=0,
            metadata_cache=self._cache,
            status_cache=self.status_cache,
            clock=self.clock,
        )
        return await run_flow(flow, self.transport, sleep=self.sleep)

    async def authorize(
        self,
        offer: CredentialOffer | str,
        *,
        redirect_uri: str,
        client_id: str | None = None,
        configuration_ids: Sequence[str] | None = None,
        count: int = 1,
    ) -> tuple[str, IssuanceFlow]:
        """Start the authorization code flow: returns the URL to open and the flow, waiting
        in ``AWAITING_AUTHORIZATION`` (save it with ``to_json`` across the browser hop).

        PKCE S256 and ``state`` always; ``issuer_state`` forwarded; ``authorization_details``
        or ``scope`` per policy; PAR when the AS offers it (always when it requires it); the
        DPoP key is bound at PAR (``DPoP`` header) and with ``dpop_jkt``.
        """
        provider = self.policy.attestation_provider
        cid = client_id or self.client_id or (provider.client_id if provider else None)
        if not cid:
            raise UsageError("the authorization code flow needs a client_id")
        flow = IssuanceFlow.from_offer(
            offer,
            policy=self.policy,
            count=count,
            configuration_ids=configuration_ids,
            redirect_uri=redirect_uri,
            client_id=cid,
            grant="authorization_code",
            deferred_max_wait=0,
            metadata_cache=self._cache,
            status_cache=self.status_cache,
            clock=self.clock,
        )
        url = await run_until_authorize(flow, self.transport, sleep=self.sleep)
        return url, flow

    async def claim(
        self, flow: IssuanceFlow, callback_url: str, *, count: int | None = None
    ) -> IssuanceResult:
        """Finish the code flow: check the callback (``state``, RFC 9207 ``iss``, errors),
        redeem the code with the PKCE verifier, and fetch the credentials (``count`` per
        configuration, when given, replaces the one of :meth:`authorize`)."""
        if not isinstance(flow, IssuanceFlow):
            raise StateError("claim needs the IssuanceFlow returned by authorize")
        if count is not None:
            flow.set_count(count)
        flow.receive_callback(callback_url)
        return await run_flow(flow, self.transport, sleep=self.sleep)

    # --- after issuance ----------------------------------------------------------------------

    async def poll_deferred(
        self,
        deferred: DeferredTransaction | IssuanceResult,
        *,
        max_wait: float | None = None,
    ) -> tuple[ReceivedCredential, ...]:
        """Poll deferred transactions until their credentials arrive (verified), waiting the
        issuer's ``interval`` between polls, for at most ``max_wait`` seconds in all (default:
        the policy's ``deferred_max_wait``); then :class:`CredentialRequestError`
        ``issuance_pending``."""
        if isinstance(deferred, IssuanceResult):
            transactions: tuple[DeferredTransaction, ...] = deferred.deferred
        elif isinstance(deferred, DeferredTransaction):
            transactions = (deferred,)
        else:
            raise ArgumentTypeError(
                "poll_deferred needs an IssuanceResult or a DeferredTransaction"
            )
        if not transactions:
            return ()
        flow = IssuanceFlow.for_deferred(
            transactions,
            policy=self.policy,
            max_wait=max_wait,
            status_cache=self.status_cache,
            clock=self.clock,
        )
        result = await run_flow(flow, self.transport, sleep=self.sleep)
        if result.deferred:
            raise CredentialRequestError(
                ErrorCode.ISSUANCE_PENDING,
                "the deferred credential was not ready within the maximum wait",
            )
        return result.credentials

    async def check_status(self, credential: str | ReceivedCredential) -> StatusCheck:
        """The Token Status List entry of a credential received earlier (also an mdoc),
        fetched again (cached per ``ttl``): :func:`oid4vci.wallet.status_lists.check_status` with this
        client's transport, policy and cache (and a received credential's ``issuer``)."""
        text = credential.credential if isinstance(credential, ReceivedCredential) else credential
        return await check_status(
            text,
            self.transport,
            policy=self.policy,
            cache=self.status_cache,
            clock=self.clock,
            issuer=_mdoc_issuer(credential),
        )

    async def notify(
        self,
        target: IssuanceResult | ReceivedCredential,
        event: str,
        description: str | None = None,
    ) -> None:
        """Tell the issuer what became of the credentials (``credential_accepted``,
        ``credential_failure`` or ``credential_deleted``), once per ``notification_id``."""
        if isinstance(target, IssuanceResult):
            creds: tuple[ReceivedCredential, ...] = target.credentials
        elif isinstance(target, ReceivedCredential):
            creds = (target,)
        else:
            raise ArgumentTypeError("notify needs an IssuanceResult or a ReceivedCredential")
        flow = IssuanceFlow.for_notification(
            creds, event, description, policy=self.policy, clock=self.clock
        )
        await run_flow(flow, self.transport, sleep=self.sleep)


def _mdoc_issuer(credential: str | ReceivedCredential) -> str | None:
    """The issuer of a received mdoc (it names none itself); a JWT names its own ``iss``."""
    if isinstance(credential, ReceivedCredential) and credential.format == "mso_mdoc":
        return credential.issuer
    return None
