"""Low-level wallet calls: one protocol request each, named after its endpoint.

Use these to build a flow :class:`~oid4vci.wallet.IssuanceFlow` does not cover. Each call
builds its request with the same sans-IO builders as the flow (:mod:`oid4vci.wallet.steps`),
sends it **once** over the transport, and reads the answer with the same checks (including
the DPoP binding of a token answer, RFC 9449 §5). Retrying is the flow's job: a
``use_dpop_nonce`` answer raises :class:`~oid4vci.errors.DpopError` whose ``dpop_nonce`` the
caller passes as ``dpop_nonce=`` to try again. URLs are not checked here (the caller chose
them); responses are, as everywhere.

These calls return wire values (:class:`~oid4vci.models.CredentialResponse` and so on), never
credentials marked as verified: check credentials with :func:`~oid4vci.wallet.verify_credential`,
the one verification path the flow uses too.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from oid4vci.dpop import build_dpop_jwt
from oid4vci.http import HttpRequest, HttpResponse, Transport
from oid4vci.jose import Signer
from oid4vci.models import (
    CredentialRequest,
    CredentialResponse,
    PushedAuthorizationResponse,
    TokenResponse,
    credential_request_to_json,
)
from oid4vci.tracing import attach_request, send
from oid4vci.versions import SpecVersion

from .encryption import (
    EncryptionPlan,
    new_response_key,
    open_response,
    response_encryption_member,
    seal_request,
)
from .steps import (
    DeferredPending,
    build_credential_request,
    build_deferred_credential_request,
    build_nonce_request,
    build_notification_request,
    build_par_request,
    build_token_request,
    check_redirect,
    read_credential_response,
    read_deferred_credential_response,
    read_nonce_response,
    read_notification_response,
    read_par_response,
    read_token_response,
    refresh_token_grant,
)

__all__ = [
    "notify",
    "push_authorization_request",
    "refresh_access_token",
    "request_credential",
    "request_deferred_credential",
    "request_nonce",
    "request_token",
]


_T = TypeVar("_T")


async def _exchange(
    transport: Transport,
    url: str,
    make: Callable[[str | None], HttpRequest],
    read: Callable[[HttpResponse], _T],
    *,
    dpop_key: Signer | None,
    dpop_nonce: str | None,
    access_token: str | None = None,
    clock: Callable[[], float],
) -> _T:
    """Send ``make(dpop_proof)`` (a POST to ``url``) once and ``read`` the answer; redirects
    are refused. An error ``read`` raises names the request, and whatever secret of the
    request the issuer's text quotes is scrubbed from it (as in a flow)."""
    proof = None
    if dpop_key is not None:
        proof = await build_dpop_jwt(
            dpop_key, "POST", url, access_token=access_token, nonce=dpop_nonce, clock=clock
        )
    request = make(proof)
    response = await send(transport, request)
    with attach_request(request):
        check_redirect(response)
        return read(response)


def _resource_key(token_type: str, dpop_key: Signer | None) -> Signer | None:
    return dpop_key if token_type.lower() == "dpop" else None


async def push_authorization_request(
    transport: Transport,
    par_endpoint: str,
    params: Mapping[str, str],
    *,
    dpop_key: Signer | None = None,
    dpop_nonce: str | None = None,
    client_auth: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> PushedAuthorizationResponse:
    """The pushed authorization request (RFC 9126): ``request_uri`` and ``expires_in``.
    ``client_auth``: the wallet attestation headers, when the authorization server
    authenticates clients by attestation (``client_attestation_headers``,
    draft-ietf-oauth-attestation-based-client-auth-07 §6.1)."""
    return await _exchange(
        transport,
        par_endpoint,
        lambda proof: build_par_request(
            par_endpoint, params, dpop_proof=proof, client_auth=client_auth
        ),
        read_par_response,
        dpop_key=dpop_key,
        dpop_nonce=dpop_nonce,
        clock=clock,
    )


async def request_token(
    transport: Transport,
    token_endpoint: str,
    params: Mapping[str, str],
    *,
    dpop_key: Signer | None = None,
    dpop_nonce: str | None = None,
    client_auth: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> TokenResponse:
    """The token request (``params`` from ``pre_authorized_grant`` or
    ``authorization_code_grant``); a DPoP proof goes along when ``dpop_key`` is given, and
    the answer must then be a DPoP token (a ``Bearer`` one is a downgrade and refused).
    ``client_auth``: the wallet attestation headers, as for :func:`push_authorization_request`."""
    return await _exchange(
        transport,
        token_endpoint,
        lambda proof: build_token_request(
            token_endpoint, params, dpop_proof=proof, client_auth=client_auth
        ),
        functools.partial(read_token_response, dpop_proof_sent=dpop_key is not None),
        dpop_key=dpop_key,
        dpop_nonce=dpop_nonce,
        clock=clock,
    )


async def refresh_access_token(
    transport: Transport,
    token_endpoint: str,
    refresh_token: str,
    *,
    client_id: str | None = None,
    dpop_key: Signer | None = None,
    dpop_nonce: str | None = None,
    client_auth: Mapping[str, str] | None = None,
    clock: Callable[[], float] = time.time,
) -> TokenResponse:
    """A refresh request (RFC 6749 §6): a new access token for ``refresh_token``.

    ``dpop_key`` must be the key the grant's tokens are bound to (RFC 9449 §5); pass the
    wallet attestation headers as ``client_auth`` when the grant was made with one
    (draft-ietf-oauth-attestation-based-client-auth-07 §6.2). The answer's ``refresh_token``
    is ``None`` when the server keeps the old one valid (keep using it then).
    """
    params = refresh_token_grant(refresh_token, client_id=client_id)
    return await _exchange(
        transport,
        token_endpoint,
        lambda proof: build_token_request(
            token_endpoint, params, dpop_proof=proof, client_auth=client_auth
        ),
        functools.partial(read_token_response, dpop_proof_sent=dpop_key is not None),
        dpop_key=dpop_key,
        dpop_nonce=dpop_nonce,
        clock=clock,
    )


async def request_nonce(
    transport: Transport,
    nonce_endpoint: str,
    *,
    dpop_key: Signer | None = None,
    dpop_nonce: str | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """The nonce request (OID4VCI 1.0 §7): a fresh ``c_nonce``."""
    return await _exchange(
        transport,
        nonce_endpoint,
        lambda proof: build_nonce_request(nonce_endpoint, dpop_proof=proof),
        read_nonce_response,
        dpop_key=dpop_key,
        dpop_nonce=dpop_nonce,
        clock=clock,
    )


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
    clock: Callable[[], float] = time.time,
    encryption: EncryptionPlan | None = None,
) -> CredentialResponse:
    """The credential request (OID4VCI 1.0 §8): a :class:`CredentialRequest` written in
    ``version``'s shape, or a ready body. Returns the parsed response (credentials or a
    ``transaction_id``), **not verified**. A DPoP proof goes along when ``token_type`` is
    ``DPoP`` and ``dpop_key`` is given. ``encryption`` (from
    :func:`~oid4vci.wallet.encryption.plan_encryption`) encrypts the request and asks for an
    encrypted answer with a fresh key (OID4VCI 1.0 §10)."""
    body = (
        credential_request_to_json(request, version)
        if isinstance(request, CredentialRequest)
        else dict(request)
    )
    plan = encryption or EncryptionPlan()
    response_key = new_response_key(plan)
    if response_key is not None:
        body["credential_response_encryption"] = response_encryption_member(response_key, version)
    return await _exchange(
        transport,
        credential_endpoint,
        lambda proof: seal_request(
            build_credential_request(
                credential_endpoint,
                body,
                access_token=access_token,
                token_type=token_type,
                dpop_proof=proof,
            ),
            plan,
        ),
        lambda response: read_credential_response(open_response(response, response_key)),
        dpop_key=_resource_key(token_type, dpop_key),
        dpop_nonce=dpop_nonce,
        access_token=access_token,
        clock=clock,
    )


async def request_deferred_credential(
    transport: Transport,
    deferred_credential_endpoint: str,
    transaction_id: str,
    *,
    access_token: str,
    token_type: str = "Bearer",
    dpop_key: Signer | None = None,
    dpop_nonce: str | None = None,
    clock: Callable[[], float] = time.time,
    encryption: EncryptionPlan | None = None,
) -> CredentialResponse | DeferredPending:
    """The deferred credential request (OID4VCI 1.0 §9): the credentials (**not verified**),
    or :class:`DeferredPending` with the issuer's ``interval`` when they are not ready.
    Polling is :meth:`Oid4vciClient.poll_deferred` (or an ``IssuanceFlow``). ``encryption``
    as for :func:`request_credential` (1.0 issuers only: Draft 13-15 deferred requests are
    JSON both ways)."""
    plan = encryption or EncryptionPlan()
    response_key = new_response_key(plan)
    member = (
        None if response_key is None else response_encryption_member(response_key, SpecVersion.V1)
    )
    return await _exchange(
        transport,
        deferred_credential_endpoint,
        lambda proof: seal_request(
            build_deferred_credential_request(
                deferred_credential_endpoint,
                transaction_id,
                access_token=access_token,
                token_type=token_type,
                dpop_proof=proof,
                credential_response_encryption=member,
            ),
            plan,
        ),
        lambda response: read_deferred_credential_response(open_response(response, response_key)),
        dpop_key=_resource_key(token_type, dpop_key),
        dpop_nonce=dpop_nonce,
        access_token=access_token,
        clock=clock,
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
    clock: Callable[[], float] = time.time,
) -> None:
    """The notification request (OID4VCI 1.0 §11): ``credential_accepted``,
    ``credential_failure`` or ``credential_deleted``."""
    return await _exchange(
        transport,
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
        read_notification_response,
        dpop_key=_resource_key(token_type, dpop_key),
        dpop_nonce=dpop_nonce,
        access_token=access_token,
        clock=clock,
    )
