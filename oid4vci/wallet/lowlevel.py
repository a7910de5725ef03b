"""Low-level wallet calls: one protocol request each, over any Transport, with DPoP options.

Use these to build a flow :class:`~oid4vci.wallet.Oid4vciClient` does not cover. Each call
runs through the same :class:`~oid4vci.wallet.driver.Driver` as the client, so it retries once
on ``use_dpop_nonce``. Pass a shared :class:`~oid4vci.wallet.results.NonceMemory` as
``dpop_nonces`` to keep server nonces across calls, or a single ``dpop_nonce`` for the target
server. URLs are not checked here (the caller chose them); responses are, as everywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio

from oid4vci.http import Transport
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
    dpop_key: Signer | None,
    dpop_nonce: str | None,
    dpop_nonces: NonceMemory | None,
    clock: Callable[[], float],
    sleep: Sleep = anyio.sleep,
) -> Driver:
    nonces = dpop_nonces if dpop_nonces is not None else NonceMemory()
    if dpop_nonce is not None:
        nonces.set(origin_of(url), dpop_nonce)
    return Driver(
        transport, policy=_POLICY, clock=clock, sleep=sleep, dpop_key=dpop_key, nonces=nonces
    )


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
        transport,
        token_endpoint,
        dpop_key=dpop_key,
        dpop_nonce=dpop_nonce,
        dpop_nonces=dpop_nonces,
        clock=clock,
    )
    return await driver.send_token_request(token_endpoint, params)


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
        transport,
        par_endpoint,
        dpop_key=dpop_key,
        dpop_nonce=dpop_nonce,
        dpop_nonces=dpop_nonces,
        clock=clock,
    )
    return await driver.push_authorization_request(par_endpoint, params)


async def request_nonce(
    transport: Transport,
    nonce_endpoint: str,
    *,
    dpop_key: Signer | None = None,
    dpop_nonce: str | None = None,
    dpop_nonces: NonceMemory | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """POST to the Nonce Endpoint and return the ``c_nonce`` (DPoP proof with ``dpop_key``)."""
    driver = _driver(
        transport,
        nonce_endpoint,
        dpop_key=dpop_key,
        dpop_nonce=dpop_nonce,
        dpop_nonces=dpop_nonces,
        clock=clock,
    )
    return await driver.send_nonce_request(nonce_endpoint, dpop_key=dpop_key)


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

    A DPoP proof is attached when ``token_type`` is ``DPoP`` and ``dpop_key`` is given.
    The credentials are **not** verified here; use :mod:`oid4vci.wallet.verify`."""
    body = (
        credential_request_to_json(request, version)
        if isinstance(request, CredentialRequest)
        else dict(request)
    )
    driver = _driver(
        transport,
        credential_endpoint,
        dpop_key=dpop_key,
        dpop_nonce=dpop_nonce,
        dpop_nonces=dpop_nonces,
        clock=clock,
    )
    return await driver.send_credential_request(
        credential_endpoint,
        body,
        access_token=access_token,
        token_type=token_type,
        dpop_key=dpop_key,
    )


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

    Waits the issuer's ``interval`` (else ``interval``, which must be positive) between
    attempts through ``sleep``; raises :class:`~oid4vci.errors.CredentialRequestError`
    ``issuance_pending`` after ``max_wait`` seconds."""
    driver = _driver(
        transport,
        deferred_credential_endpoint,
        dpop_key=dpop_key,
        dpop_nonce=dpop_nonce,
        dpop_nonces=dpop_nonces,
        clock=clock,
        sleep=sleep,
    )
    return await driver.poll_deferred_credential(
        deferred_credential_endpoint,
        transaction_id,
        access_token=access_token,
        token_type=token_type,
        dpop_key=dpop_key,
        interval=interval,
        max_wait=max_wait,
    )


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
        dpop_key=dpop_key,
        dpop_nonce=dpop_nonce,
        dpop_nonces=dpop_nonces,
        clock=clock,
    )
    await driver.send_notification_request(
        notification_endpoint,
        notification_id,
        event,
        event_description=event_description,
        access_token=access_token,
        token_type=token_type,
        dpop_key=dpop_key,
    )
