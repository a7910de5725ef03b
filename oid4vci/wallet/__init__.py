"""The wallet (client) side of OpenID4VCI.

High level: :class:`Oid4vciClient` (``parse_offer``, ``accept_offer``, ``authorize``,
``claim``, ``poll_deferred``, ``notify``) configured by a :class:`WalletPolicy`.
Low level: one call per protocol request (:func:`request_token`, :func:`request_credential`,
:func:`request_nonce`, :func:`push_authorization_request`, :func:`poll_deferred`,
:func:`notify`); the sans-IO steps of :mod:`oid4vci.wallet.steps`, a ``build_*`` for every
request and a ``read_*`` for every response (the pushed authorization request, the
authorization request and its callback, the token request, the nonce request, the credential
request, the deferred credential request, the notification request); discovery
(:func:`discover`); credential verification (:func:`verify_credential`); and the flow's state
table in :mod:`oid4vci.wallet.states`.
"""

from __future__ import annotations

from oid4vci.dpop import build_dpop_jwt as build_dpop_jwt
from oid4vci.pkce import code_challenge as code_challenge
from oid4vci.pkce import generate_code_verifier as generate_code_verifier
from oid4vci.pkce import generate_state as generate_state
from oid4vci.wallet.client import Oid4vciClient as Oid4vciClient
from oid4vci.wallet.client import check_tx_code as check_tx_code
from oid4vci.wallet.discovery import Discovery as Discovery
from oid4vci.wallet.discovery import MetadataCache as MetadataCache
from oid4vci.wallet.discovery import discover as discover
from oid4vci.wallet.lowlevel import notify as notify
from oid4vci.wallet.lowlevel import poll_deferred as poll_deferred
from oid4vci.wallet.lowlevel import push_authorization_request as push_authorization_request
from oid4vci.wallet.lowlevel import request_credential as request_credential
from oid4vci.wallet.lowlevel import request_nonce as request_nonce
from oid4vci.wallet.lowlevel import request_token as request_token
from oid4vci.wallet.pending import PendingAuthorization as PendingAuthorization
from oid4vci.wallet.policy import HolderKeyProvider as HolderKeyProvider
from oid4vci.wallet.policy import WalletPolicy as WalletPolicy
from oid4vci.wallet.policy import default_holder_key_provider as default_holder_key_provider
from oid4vci.wallet.results import DeferredTransaction as DeferredTransaction
from oid4vci.wallet.results import IssuanceResult as IssuanceResult
from oid4vci.wallet.results import IssuerSession as IssuerSession
from oid4vci.wallet.results import NonceMemory as NonceMemory
from oid4vci.wallet.results import ReceivedCredential as ReceivedCredential
from oid4vci.wallet.states import Event as Event
from oid4vci.wallet.states import Flow as Flow
from oid4vci.wallet.states import FlowState as FlowState
from oid4vci.wallet.steps import DeferredPending as DeferredPending
from oid4vci.wallet.steps import authorization_code_grant as authorization_code_grant
from oid4vci.wallet.steps import authorization_request_params as authorization_request_params
from oid4vci.wallet.steps import build_authorization_url as build_authorization_url
from oid4vci.wallet.steps import build_credential_request as build_credential_request
from oid4vci.wallet.steps import (
    build_deferred_credential_request as build_deferred_credential_request,
)
from oid4vci.wallet.steps import build_key_proof as build_key_proof
from oid4vci.wallet.steps import build_nonce_request as build_nonce_request
from oid4vci.wallet.steps import build_notification_request as build_notification_request
from oid4vci.wallet.steps import build_par_request as build_par_request
from oid4vci.wallet.steps import build_token_request as build_token_request
from oid4vci.wallet.steps import pre_authorized_grant as pre_authorized_grant
from oid4vci.wallet.steps import read_authorization_callback as read_authorization_callback
from oid4vci.wallet.steps import read_credential_response as read_credential_response
from oid4vci.wallet.steps import (
    read_deferred_credential_response as read_deferred_credential_response,
)
from oid4vci.wallet.steps import read_nonce_response as read_nonce_response
from oid4vci.wallet.steps import read_notification_response as read_notification_response
from oid4vci.wallet.steps import read_par_response as read_par_response
from oid4vci.wallet.steps import read_token_response as read_token_response
from oid4vci.wallet.verify import WalletReason as WalletReason
from oid4vci.wallet.verify import verify_credential as verify_credential

__all__ = [
    "DeferredPending",
    "DeferredTransaction",
    "Discovery",
    "Event",
    "Flow",
    "FlowState",
    "HolderKeyProvider",
    "IssuanceResult",
    "IssuerSession",
    "MetadataCache",
    "NonceMemory",
    "Oid4vciClient",
    "PendingAuthorization",
    "ReceivedCredential",
    "WalletPolicy",
    "WalletReason",
    "authorization_code_grant",
    "authorization_request_params",
    "build_authorization_url",
    "build_credential_request",
    "build_deferred_credential_request",
    "build_dpop_jwt",
    "build_key_proof",
    "build_nonce_request",
    "build_notification_request",
    "build_par_request",
    "build_token_request",
    "check_tx_code",
    "code_challenge",
    "default_holder_key_provider",
    "discover",
    "generate_code_verifier",
    "generate_state",
    "notify",
    "poll_deferred",
    "pre_authorized_grant",
    "push_authorization_request",
    "read_authorization_callback",
    "read_credential_response",
    "read_deferred_credential_response",
    "read_nonce_response",
    "read_notification_response",
    "read_par_response",
    "read_token_response",
    "request_credential",
    "request_nonce",
    "request_token",
    "verify_credential",
]
