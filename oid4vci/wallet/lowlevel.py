"""Low-level wallet calls: one protocol request each, over any Transport, with DPoP options.

Use these to build a flow :class:`~oid4vci.wallet.Oid4vciClient` does not cover. Each call
retries once on ``use_dpop_nonce`` (like the driver). Pass a shared
:class:`~oid4vci.wallet.results.NonceMemory` as ``dpop_nonces`` to keep server nonces across
calls, or a single ``dpop_nonce`` for the target server.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from oid4vci.errors import CredentialRequestError, ErrorCode
from oid4vci.http import HttpRequest, Transport
from oid4vci.jose import Signer
from oid4vci.models import (
    CredentialRequest,
    CredentialResponse,
    PushedAuthorizationResponse,
    TokenResponse,
    credential_request_to_json,
)
from oid4vci.urls import origin_of
from oid4vci.versions import SpecVersion

from .driver import Driver, Sleep
from .policy import WalletPolicy
from .results import NonceMemory
from .steps import (
    DeferredPending,
    build_credential_request,
    build_deferred_credential_request,
    build_nonce_request,
    build_notification_request,
    build_par_request,
    build_token_request,
    read_credential_response,
    read_deferred_credential_response,
    read_nonce_response,
    read_notification_response,
    read_par_response,
    read_token_response,
)

__all__ = [
    "notify",
    "poll_deferred",
    "push_authorization_request",
    "request_credential",
    "request_nonce",
    "request_token",
]

_POLICY = WalletPolicy(dpop="auto", allow_insecure_loopback=True)


def _driver(
    transport: Transport,
    url: str,
    *,
    dpop_nonce: str | None,
    dpop_nonces: NonceMemory | None,
    clock: Callable[[], float],
    sleep: Sleep = anyio.sleep,
) -> Driver:
    nonces = dpop_nonces if dpop_nonces is not None else NonceMemory()
    if dpop_nonce is not None:
        nonces.set(origin_of(url), dpop_nonce)
    return Driver(transport, policy=_POLICY, clock=clock, sleep=sleep, nonces=nonces)


async def request_token(
    transport: Transport,
    token_endpoint: str,
    params: Mapping[str, str],
    *,
    dpop_key: Signer | None = None,
    dpop_nonce: str | None = None,
    dpop_nonces: NonceMemory | None = None,
    clock: Callable[[], float] = time.time,
) -> TokenResponse:
    """POST a token request (``params`` from ``steps.pre_authorized_grant`` or
    ``steps.authorization_code_grant``); a DPoP proof is attached when ``dpop_key`` is given."""
    driver = _driver(
        transport, token_endpoint, dpop_nonce=dpop_nonce, dpop_nonces=dpop_nonces, clock=clock
    )
    response = await driver.exchange(
        "POST",
        token_endpoint,
        lambda proof: build_token_request(token_endpoint, params, dpop_proof=proof),
        dpop_key=dpop_key,
    )
    return read_token_response(response)


async def push_authorization_request(
    transport: Transport,
    par_endpoint: str,
    params: Mapping[str, str],
    *,
    dpop_key: Signer | None = None,
    dpop_nonce: str | None = None,
    dpop_nonces: NonceMemory | None = None,
    clock: Callable[[], float] = time.time,
) -> PushedAuthorizationResponse:
    """POST a pushed authorization request (RFC 9126) and return ``request_uri``/``expires_in``."""
    driver = _driver(
        transport, par_endpoint, dpop_nonce=dpop_nonce, dpop_nonces=dpop_nonces, clock=clock
    )
    response = await driver.exchange(
        "POST",
        par_endpoint,
        lambda proof: build_par_request(par_endpoint, params, dpop_proof=proof),
        dpop_key=dpop_key,
    )
    return read_par_response(response)


async def request_nonce(
    transport: Transport,
    nonce_endpoint: str,
    *,
    dpop_key: Signer | None = None,
    dpop_nonce: str | None = None,
    dpop_nonces: NonceMemory | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """POST to the Nonce Endpoint and return the ``c_nonce``."""
    driver = _driver(
        transport, nonce_endpoint, dpop_nonce=dpop_nonce, dpop_nonces=dpop_nonces, clock=clock
    )
    response = await driver.exchange(
        "POST",
        nonce_endpoint,
        lambda proof: build_nonce_request(nonce_endpoint, dpop_proof=proof),
        dpop_key=dpop_key,
    )
    return read_nonce_response(response)


def _resource_make(
    builder: Callable[..., HttpRequest], *args: Any, **kwargs: Any
) -> Callable[[str | None], HttpRequest]:
    return lambda proof: builder(*args, **kwargs, dpop_proof=proof)


async def request_credential(
    transport: Transport,
    credential_endpoint: str,
    request: CredentialRequest | Mapping[str, Any],
    *,
    access_token: str,
    token_type: str = "Bearer",
    version: SpecVersion = SpecVersion.V1,
    dpop_key: Signer | None = None,
    dpop_nonce: str | None = None,
    dpop_nonces: NonceMemory | None = None,
    clock: Callable[[], float] = time.time,
) -> CredentialResponse:
    """POST one credential request (a :class:`CredentialRequest`, written in ``version``'s
    shape, or a ready body) and return the parsed response (credentials or deferred).

    The credentials are **not** verified here; use :mod:`oid4vci.wallet.verify`."""
    body = (
        credential_request_to_json(request, version)
        if isinstance(request, CredentialRequest)
        else dict(request)
    )
    driver = _driver(
        transport, credential_endpoint, dpop_nonce=dpop_nonce, dpop_nonces=dpop_nonces, clock=clock
    )
    key = dpop_key if token_type.lower() == "dpop" else None
    response = await driver.exchange(
        "POST",
        credential_endpoint,
        _resource_make(
            build_credential_request,
            credential_endpoint,
            body,
            access_token=access_token,
            token_type=token_type,
        ),
        dpop_key=key,
        access_token=access_token,
    )
    return read_credential_response(response)


async def poll_deferred(
    transport: Transport,
    deferred_credential_endpoint: str,
    transaction_id: str,
    *,
    access_token: str,
    token_type: str = "Bearer",
    dpop_key: Signer | None = None,
    dpop_nonce: str | None = None,
    dpop_nonces: NonceMemory | None = None,
    interval: float = 5.0,
    max_wait: float = 300.0,
    sleep: Sleep = anyio.sleep,
    clock: Callable[[], float] = time.time,
) -> CredentialResponse:
    """Poll the Deferred Credential Endpoint until it delivers (not verified here).

    Waits the issuer's ``interval`` (else ``interval``) between attempts through ``sleep``;
    raises :class:`CredentialRequestError` ``issuance_pending`` after ``max_wait`` seconds."""
    driver = _driver(
        transport,
        deferred_credential_endpoint,
        dpop_nonce=dpop_nonce,
        dpop_nonces=dpop_nonces,
        clock=clock,
        sleep=sleep,
    )
    key = dpop_key if token_type.lower() == "dpop" else None
    waited = 0.0
    while True:
        response = await driver.exchange(
            "POST",
            deferred_credential_endpoint,
            _resource_make(
                build_deferred_credential_request,
                deferred_credential_endpoint,
                transaction_id,
                access_token=access_token,
                token_type=token_type,
            ),
            dpop_key=key,
            access_token=access_token,
        )
        outcome = read_deferred_credential_response(response)
        if not isinstance(outcome, DeferredPending):
            return outcome
        if outcome.interval is not None and outcome.interval > 0:
            interval = float(outcome.interval)
        if waited + interval > max_wait:
            raise CredentialRequestError(
                ErrorCode.ISSUANCE_PENDING,
                "the deferred credential was not ready within the maximum wait",
            )
        await sleep(interval)
        waited += interval


async def notify(
    transport: Transport,
    notification_endpoint: str,
    notification_id: str,
    event: str,
    *,
    access_token: str,
    token_type: str = "Bearer",
    event_description: str | None = None,
    dpop_key: Signer | None = None,
    dpop_nonce: str | None = None,
    dpop_nonces: NonceMemory | None = None,
    clock: Callable[[], float] = time.time,
) -> None:
    """POST one notification (``credential_accepted`` / ``_failure`` / ``_deleted``)."""
    driver = _driver(
        transport,
        notification_endpoint,
        dpop_nonce=dpop_nonce,
        dpop_nonces=dpop_nonces,
        clock=clock,
    )
    key = dpop_key if token_type.lower() == "dpop" else None
    response = await driver.exchange(
        "POST",
        notification_endpoint,
        _resource_make(
            build_notification_request,
            notification_endpoint,
            notification_id,
            event,
            event_description=event_description,
            access_token=access_token,
            token_type=token_type,
        ),
        dpop_key=key,
        access_token=access_token,
    )
    read_notification_response(response)
