"""The one async driver: runs the sans-IO steps of :mod:`oid4vci.wallet.steps` over a Transport.

Retry rules (each retry happens at most once per request, then the error is raised):

* **DPoP nonce.** The newest ``DPoP-Nonce`` of every response is remembered per server origin
  and put into the next proof to that origin. A ``use_dpop_nonce`` answer — 400 JSON at the
  authorization server, 401 with ``WWW-Authenticate: DPoP error="use_dpop_nonce"`` at the
  issuer — that carries a ``DPoP-Nonce`` is retried once with a fresh proof.
* **c_nonce.** With a Nonce Endpoint (Draft 15, 1.0) a fresh ``c_nonce`` is fetched before every
  credential request (issuers may treat them as single use); otherwise the newest ``c_nonce``
  of the token / credential responses is used (Draft 13/14). On ``invalid_nonce``, or
  ``invalid_proof`` carrying a fresh ``c_nonce``, the proofs are rebuilt with the new nonce and
  the request is sent once more. When a nonce is needed and none can be had, the request is
  not sent (fail closed: a proof is never sent without the nonce the issuer asked for).
* **Deferred.** ``202`` + ``transaction_id`` (1.0) and ``issuance_pending`` (drafts) are polled
  with the issuer's ``interval`` through an injectable ``sleep`` (``anyio.sleep`` by default,
  so cancellation works), for at most ``policy.deferred_max_wait`` seconds in total.

Redirects are never followed (:class:`~oid4vci.errors.RedirectRefused`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import anyio
import attrs

from oid4vci.dpop import build_dpop_jwt
from oid4vci.errors import (
    CredentialRequestError,
    ErrorCode,
    MetadataError,
    ProtocolError,
    WireFormatError,
)
from oid4vci.http import HttpRequest, HttpResponse, Transport
from oid4vci.jose import LocalSigner, Signer
from oid4vci.models import (
    AuthorizationServerMetadata,
    CredentialConfiguration,
    CredentialIssuerMetadata,
    CredentialRequest,
    CredentialResponse,
    ProofSet,
    PushedAuthorizationResponse,
    TokenResponse,
    credential_request_to_json,
)
from oid4vci.urls import origin_of, require_secure_url
from oid4vci.versions import SpecVersion

from .policy import WalletPolicy, choose_local_alg
from .results import DeferredTransaction, IssuerSession, NonceMemory, ReceivedCredential
from .steps import (
    DeferredPending,
    build_credential_request,
    build_deferred_credential_request,
    build_key_proof,
    build_nonce_request,
    build_notification_request,
    build_par_request,
    build_token_request,
    check_redirect,
    is_use_dpop_nonce,
    read_credential_response,
    read_deferred_credential_response,
    read_nonce_response,
    read_notification_response,
    read_par_response,
    read_token_response,
)
from .verify import IssuerKeyResolver, verify_credential

__all__ = [
    "CredentialTarget",
    "Driver",
    "Sleep",
    "check_proof_types",
    "choose_dpop_key",
    "definition_types",
    "polling_interval",
    "secure_endpoint",
]

Sleep = Callable[[float], Awaitable[None]]
"""``async sleep(seconds)``; ``anyio.sleep`` unless a test injects another."""

log = logging.getLogger("oid4vci.wallet")

#: The longest polling interval taken from an issuer (a year): longer ones exceed every wait
#: budget anyway, and an absurd integer must not overflow a float.
_LONGEST_INTERVAL = 365 * 24 * 3600


def polling_interval(issuer_interval: int | None, fallback: float) -> float:
    """The issuer's ``interval`` (seconds) when it is positive, else ``fallback``."""
    if issuer_interval is None or issuer_interval <= 0:
        return fallback
    return float(min(issuer_interval, _LONGEST_INTERVAL))


def _proof_key(token_type: str, dpop_key: Signer | None) -> Signer | None:
    """The key for DPoP proofs at the issuer: ``dpop_key`` when the token is DPoP-bound."""
    return dpop_key if token_type.lower() == "dpop" else None


def secure_endpoint(url: str | None, what: str, policy: WalletPolicy) -> str:
    """``url`` after the https check; :class:`MetadataError` when the metadata lacks it."""
    if not url:
        raise MetadataError(f"the metadata has no {what}")
    return require_secure_url(
        url, allow_insecure_loopback=policy.allow_insecure_loopback, what=what
    )


def choose_dpop_key(
    policy: WalletPolicy, as_metadata: AuthorizationServerMetadata
) -> Signer | None:
    """A fresh DPoP key when the AS supports an alg we prefer (and policy allows DPoP)."""
    if policy.dpop == "off":
        return None
    algs = as_metadata.dpop_signing_alg_values_supported or ()
    alg = choose_local_alg(policy.dpop_algorithms, algs)
    if alg is None:
        if policy.dpop == "required":
            raise MetadataError(
                "the authorization server does not support DPoP (policy requires it)"
            )
        return None
    return LocalSigner.generate(alg)


def check_proof_types(config: CredentialConfiguration) -> bool:
    """Whether ``config`` needs key proofs; :class:`MetadataError` when it needs proofs of a
    type this wallet cannot make (only ``jwt``)."""
    needs_proof = bool(config.proof_types_supported) or bool(
        config.cryptographic_binding_methods_supported
    )
    if needs_proof and config.proof_types_supported and "jwt" not in config.proof_types_supported:
        raise MetadataError("the configuration accepts no 'jwt' key proofs")
    return needs_proof


def definition_types(config: CredentialConfiguration) -> tuple[str, ...] | None:
    """``credential_definition.type`` of ``config`` when it is an array of strings, else None."""
    definition = config.credential_definition
    types = definition.get("type") if isinstance(definition, dict) else None
    if isinstance(types, list) and types and all(isinstance(t, str) for t in types):
        return tuple(types)
    return None


def _request_definition(config: CredentialConfiguration) -> dict[str, Any] | None:
    """The ``credential_definition`` of a Draft 13/14 request: the metadata's, without the
    ``credentialSubject`` claim descriptions (metadata for display, not a claims request)."""
    definition = config.credential_definition
    if not isinstance(definition, dict):
        return definition
    return {k: v for k, v in definition.items() if k != "credentialSubject"}


@attrs.frozen(kw_only=True)
class CredentialTarget:
    """What to ask the credential endpoint for."""

    configuration_id: str
    configuration: CredentialConfiguration
    credential_identifier: str | None = None


class Driver:
    """Runs one flow's requests: DPoP proofs and nonces, c_nonce memory, retries, polling."""

    def __init__(
        self,
        transport: Transport,
        *,
        policy: WalletPolicy,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = anyio.sleep,
        dpop_key: Signer | None = None,
        nonces: NonceMemory | None = None,
        c_nonce: str | None = None,
    ) -> None:
        self.transport = transport
        self.policy = policy
        self.clock = clock
        self.sleep = sleep
        self.dpop_key = dpop_key
        self.nonces = nonces if nonces is not None else NonceMemory()
        self.c_nonce = c_nonce
        self._resolver = IssuerKeyResolver(transport, policy=policy)

    # --- plumbing ------------------------------------------------------------------------------

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send one request; remember its ``DPoP-Nonce``; refuse redirects."""
        response = await self.transport.send(request)
        # Only method, path and status: queries and bodies may carry codes and tokens.
        log.info(
            "%s %s -> %d%s",
            request.method,
            urlsplit(request.url).path or "/",
            response.status,
            " (DPoP)" if "DPoP" in request.headers else "",
        )
        nonce = response.headers.get("DPoP-Nonce")
        if nonce:
            self.nonces.set(origin_of(request.url), nonce)
        check_redirect(response)
        return response

    async def exchange(
        self,
        method: str,
        url: str,
        make: Callable[[str | None], HttpRequest],
        *,
        dpop_key: Signer | None,
        access_token: str | None = None,
    ) -> HttpResponse:
        """Send ``make(dpop_proof)``; retry once on ``use_dpop_nonce`` with a new nonce."""
        origin = origin_of(url)

        async def attempt() -> HttpResponse:
            proof = None
            if dpop_key is not None:
                proof = await build_dpop_jwt(
                    dpop_key,
                    method,
                    url,
                    access_token=access_token,
                    nonce=self.nonces.get(origin),
                    clock=self.clock,
                )
            return await self.send(make(proof))

        previous = self.nonces.get(origin)
        response = await attempt()
        # Retry only when the answer brought a nonce we did not use (never loop on the same one).
        if (
            dpop_key is not None
            and is_use_dpop_nonce(response)
            and self.nonces.get(origin) != previous
        ):
            response = await attempt()
        return response

    # --- authorization server ------------------------------------------------------------------

    async def push_authorization_request(
        self, par_endpoint: str, params: Mapping[str, str]
    ) -> PushedAuthorizationResponse:
        """POST the pushed authorization request (``DPoP`` header when a DPoP key is in use)."""
        response = await self.exchange(
            "POST",
            par_endpoint,
            lambda proof: build_par_request(par_endpoint, params, dpop_proof=proof),
            dpop_key=self.dpop_key,
        )
        return read_par_response(response)

    async def send_token_request(
        self, token_endpoint: str, params: Mapping[str, str]
    ) -> TokenResponse:
        """POST the token request (DPoP proof when a DPoP key is in use) and read the answer."""
        response = await self.exchange(
            "POST",
            token_endpoint,
            lambda proof: build_token_request(token_endpoint, params, dpop_proof=proof),
            dpop_key=self.dpop_key,
        )
        return read_token_response(response)

    async def request_token(self, token_endpoint: str, params: Mapping[str, str]) -> TokenResponse:
        """:meth:`send_token_request`, then check ``token_type`` against the DPoP key and policy
        and remember the token response's ``c_nonce``."""
        token = await self.send_token_request(token_endpoint, params)
        if token.is_dpop and self.dpop_key is None:
            raise WireFormatError("DPoP token although no DPoP proof was sent", path="token_type")
        if not token.is_dpop and self.dpop_key is not None and self.policy.dpop == "required":
            raise WireFormatError(
                "the token is not DPoP-bound (policy requires DPoP)", path="token_type"
            )
        if token.c_nonce is not None:
            self.c_nonce = token.c_nonce
        return token

    # --- issuer: one request each, by endpoint and access token ---------------------------------

    async def send_nonce_request(self, nonce_endpoint: str, *, dpop_key: Signer | None) -> str:
        """POST the nonce request and return the fresh ``c_nonce`` (DPoP proof with ``dpop_key``)."""
        response = await self.exchange(
            "POST",
            nonce_endpoint,
            lambda proof: build_nonce_request(nonce_endpoint, dpop_proof=proof),
            dpop_key=dpop_key,
        )
        return read_nonce_response(response)

    async def send_credential_request(
        self,
        credential_endpoint: str,
        body: Mapping[str, Any],
        *,
        access_token: str,
        token_type: str,
        dpop_key: Signer | None,
    ) -> CredentialResponse:
        """POST one credential request (``body`` already in the issuer's version shape) and
        read the answer; a DPoP proof goes along when the token is DPoP-bound."""
        response = await self.exchange(
            "POST",
            credential_endpoint,
            lambda proof: build_credential_request(
                credential_endpoint,
                body,
                access_token=access_token,
                token_type=token_type,
                dpop_proof=proof,
            ),
            dpop_key=_proof_key(token_type, dpop_key),
            access_token=access_token,
        )
        return read_credential_response(response)

    async def poll_deferred_credential(
        self,
        deferred_credential_endpoint: str,
        transaction_id: str,
        *,
        access_token: str,
        token_type: str,
        dpop_key: Signer | None,
        interval: float,
        max_wait: float,
    ) -> CredentialResponse:
        """Send deferred credential requests until the credentials come.

        Waits the issuer's latest ``interval`` (else ``interval``) between requests through
        :attr:`sleep`; :class:`CredentialRequestError` ``issuance_pending`` when the next wait
        would pass ``max_wait`` seconds in total."""
        if not interval > 0:
            raise ValueError("the polling interval must be positive")
        waited = 0.0
        while True:
            response = await self.exchange(
                "POST",
                deferred_credential_endpoint,
                lambda proof: build_deferred_credential_request(
                    deferred_credential_endpoint,
                    transaction_id,
                    access_token=access_token,
                    token_type=token_type,
                    dpop_proof=proof,
                ),
                dpop_key=_proof_key(token_type, dpop_key),
                access_token=access_token,
            )
            outcome = read_deferred_credential_response(response)
            if not isinstance(outcome, DeferredPending):
                return outcome
            interval = polling_interval(outcome.interval, interval)
            if waited + interval > max_wait:
                raise CredentialRequestError(
                    ErrorCode.ISSUANCE_PENDING,
                    "the deferred credential was not ready within the maximum wait",
                )
            await self.sleep(interval)
            waited += interval

    async def send_notification_request(
        self,
        notification_endpoint: str,
        notification_id: str,
        event: str,
        *,
        event_description: str | None,
        access_token: str,
        token_type: str,
        dpop_key: Signer | None,
    ) -> None:
        """POST one notification (``credential_accepted`` / ``_failure`` / ``_deleted``)."""
        response = await self.exchange(
            "POST",
            notification_endpoint,
            lambda proof: build_notification_request(
                notification_endpoint,
                notification_id,
                event,
                event_description=event_description,
                access_token=access_token,
                token_type=token_type,
                dpop_proof=proof,
            ),
            dpop_key=_proof_key(token_type, dpop_key),
            access_token=access_token,
        )
        read_notification_response(response)

    # --- issuer: a flow's session ---------------------------------------------------------------

    async def _session_nonce(self, session: IssuerSession) -> str:
        """A fresh ``c_nonce`` from the session's Nonce Endpoint."""
        endpoint = secure_endpoint(session.nonce_endpoint, "nonce_endpoint", self.policy)
        return await self.send_nonce_request(
            endpoint, dpop_key=_proof_key(session.token_type, session.dpop_key)
        )

    async def _proofs(
        self,
        keys: Sequence[Signer],
        *,
        audience: str,
        nonce: str | None,
        client_id: str | None,
    ) -> tuple[str, ...]:
        return tuple(
            [
                await build_key_proof(
                    key, audience=audience, nonce=nonce, client_id=client_id, clock=self.clock
                )
                for key in keys
            ]
        )

    @staticmethod
    def _request(
        target: CredentialTarget, proofs: tuple[str, ...], version: SpecVersion
    ) -> dict[str, Any]:
        config = target.configuration
        request = CredentialRequest(
            credential_identifier=target.credential_identifier,
            credential_configuration_id=(
                None if target.credential_identifier else target.configuration_id
            ),
            format=config.format,
            vct=config.vct,
            doctype=config.doctype,
            credential_definition=_request_definition(config),
            proofs=ProofSet(proof_type="jwt", values=proofs) if proofs else None,
            single_proof=len(proofs) == 1,
        )
        return credential_request_to_json(request, version)

    async def request_credentials(
        self,
        session: IssuerSession,
        metadata: CredentialIssuerMetadata,
        target: CredentialTarget,
        *,
        count: int,
        proof_client_id: str | None,
    ) -> tuple[list[ReceivedCredential], list[DeferredTransaction]]:
        """Ask for ``count`` credentials of ``target``: one holder key and proof each, in
        chunks of the issuer's ``batch_size`` (one request per credential without batch
        support). Returns the verified credentials and any deferred transactions."""
        if count < 1:
            raise ValueError("count must be at least 1")
        config = target.configuration
        version = session.spec_version
        needs_proof = check_proof_types(config)
        chunks: list[list[Signer]]
        if needs_proof:
            batch = metadata.batch_credential_issuance
            batch_size = 1
            if batch is not None and version is not SpecVersion.DRAFT_13:
                batch_size = max(1, batch.batch_size)
            algorithms = config.proof_algorithms("jwt")
            keys = [
                await self.policy.holder_key_provider(
                    configuration_id=target.configuration_id, algorithms=algorithms
                )
                for _ in range(count)
            ]
            chunks = [keys[i : i + batch_size] for i in range(0, len(keys), batch_size)]
        else:
            chunks = [[] for _ in range(count)]
        received: list[ReceivedCredential] = []
        deferred: list[DeferredTransaction] = []
        for chunk in chunks:
            response = await self._request_chunk(
                session, target, chunk, version=version, proof_client_id=proof_client_id
            )
            if response.c_nonce is not None:
                self.c_nonce = response.c_nonce
            if response.credentials:
                received.extend(
                    await self.accept_credentials(
                        session,
                        response,
                        target.configuration_id,
                        format=config.format,
                        expected_vct=config.vct,
                        expected_types=definition_types(config),
                        keys=chunk,
                    )
                )
            elif response.transaction_id is not None:
                deferred.append(
                    DeferredTransaction(
                        transaction_id=response.transaction_id,
                        configuration_id=target.configuration_id,
                        holder_keys=tuple(chunk),
                        interval=polling_interval(
                            response.interval, self.policy.deferred_default_interval
                        ),
                        session=session,
                        expected_vct=config.vct,
                        format=config.format,
                        expected_types=definition_types(config),
                    )
                )
        return received, deferred

    async def _request_chunk(
        self,
        session: IssuerSession,
        target: CredentialTarget,
        keys: Sequence[Signer],
        *,
        version: SpecVersion,
        proof_client_id: str | None,
    ) -> CredentialResponse:
        endpoint = secure_endpoint(session.credential_endpoint, "credential_endpoint", self.policy)

        async def send(nonce: str | None) -> CredentialResponse:
            proofs = await self._proofs(
                keys, audience=session.credential_issuer, nonce=nonce, client_id=proof_client_id
            )
            return await self.send_credential_request(
                endpoint,
                self._request(target, proofs, version),
                access_token=session.access_token,
                token_type=session.token_type,
                dpop_key=session.dpop_key,
            )

        nonce: str | None = None
        if keys:
            nonce = await self._session_nonce(session) if session.nonce_endpoint else self.c_nonce
        try:
            return await send(nonce)
        except CredentialRequestError as err:
            if not keys:
                raise
            fresh = await self._fresh_nonce_after(err, session)
            if fresh is None:
                raise
        return await send(fresh)

    async def _fresh_nonce_after(self, err: ProtocolError, session: IssuerSession) -> str | None:
        """The nonce to retry with after ``err``, or None when no retry is possible."""
        if err.error == ErrorCode.INVALID_NONCE:
            if session.nonce_endpoint:
                return await self._session_nonce(session)
            return err.c_nonce
        if err.error == ErrorCode.INVALID_PROOF and err.c_nonce:
            return err.c_nonce
        return None

    async def accept_credentials(
        self,
        session: IssuerSession,
        response: CredentialResponse,
        configuration_id: str,
        *,
        format: str,
        expected_vct: str | None,
        keys: Sequence[Signer],
        expected_types: Sequence[str] | None = None,
    ) -> list[ReceivedCredential]:
        """Verify every credential of ``response`` (bound to ``keys``) and wrap them.

        ``expected_vct`` is checked for SD-JWT VCs, ``expected_types`` for ``jwt_vc_json``."""
        used: set[str] = set()
        out: list[ReceivedCredential] = []
        for issued in response.credentials or ():
            outcome = await verify_credential(
                issued.credential,
                format=format,
                credential_issuer=session.credential_issuer,
                expected_vct=expected_vct,
                holder_keys=keys,
                used_keys=used,
                resolver=self._resolver,
                policy=self.policy,
                clock=self.clock,
                expected_types=expected_types,
            )
            notification_id = response.notification_id
            extra_id = issued.extra.get("notification_id")
            if notification_id is None and isinstance(extra_id, str):
                notification_id = extra_id
            out.append(
                ReceivedCredential(
                    credential=issued.credential,
                    format=format,
                    vct=outcome.vct,
                    claims=outcome.claims,
                    holder_key=outcome.holder_key,
                    verified=outcome.verified,
                    notification_id=notification_id,
                    configuration_id=configuration_id,
                    issuer=session.credential_issuer,
                    session=session,
                    types=outcome.types,
                )
            )
        return out

    async def poll_deferred(
        self, transaction: DeferredTransaction, *, max_wait: float | None = None
    ) -> list[ReceivedCredential]:
        """Poll the Deferred Credential Endpoint for ``transaction`` until its credentials come
        (verified), for at most ``max_wait`` seconds (default: the policy's
        ``deferred_max_wait``; then :class:`CredentialRequestError` ``issuance_pending``)."""
        session = transaction.session
        endpoint = secure_endpoint(
            session.deferred_credential_endpoint, "deferred_credential_endpoint", self.policy
        )
        response = await self.poll_deferred_credential(
            endpoint,
            transaction.transaction_id,
            access_token=session.access_token,
            token_type=session.token_type,
            dpop_key=session.dpop_key,
            interval=transaction.interval,
            max_wait=self.policy.deferred_max_wait if max_wait is None else max_wait,
        )
        if response.c_nonce is not None:
            self.c_nonce = response.c_nonce
        return await self.accept_credentials(
            session,
            response,
            transaction.configuration_id,
            format=transaction.format,
            expected_vct=transaction.expected_vct,
            keys=transaction.holder_keys,
            expected_types=transaction.expected_types,
        )

    async def notify(
        self,
        session: IssuerSession,
        notification_id: str,
        event: str,
        description: str | None = None,
    ) -> None:
        """Send one notification to the session's Notification Endpoint."""
        endpoint = secure_endpoint(
            session.notification_endpoint, "notification_endpoint", self.policy
        )
        await self.send_notification_request(
            endpoint,
            notification_id,
            event,
            event_description=description,
            access_token=session.access_token,
            token_type=session.token_type,
            dpop_key=session.dpop_key,
        )
