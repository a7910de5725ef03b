"""The wallet (client) side of OpenID4VCI.

* :class:`IssuanceFlow` — one issuance as a sans-IO state machine (the table is
  :mod:`oid4vci.wallet.states`); ``await flow.next_action()`` returns :class:`SendRequest`,
  :class:`Authorize`, :class:`Wait` or :class:`Done`.
* :func:`run_flow` — the small async driver over a :class:`~oid4vci.http.Transport`.
* :class:`Oid4vciClient` — ``parse_offer``, ``accept_offer``, ``authorize`` + ``claim``,
  ``poll_deferred``, ``notify``: thin wrappers over the two above, configured by a
  :class:`WalletPolicy`.
* Low level, one request each, named after its endpoint: :func:`push_authorization_request`,
  :func:`request_token`, :func:`refresh_access_token`, :func:`request_nonce`, :func:`request_credential`,
  :func:`request_deferred_credential`, :func:`notify`; the sans-IO builders and readers of
  :mod:`oid4vci.wallet.steps`; PKCE, ``state`` and DPoP helpers; discovery (:func:`discover`);
  credential verification (:func:`verify_credential`, the one path every credential takes).
"""

from __future__ import annotations

from oid4vci.dpop import build_dpop_jwt as build_dpop_jwt
from oid4vci.pkce import code_challenge as code_challenge
from oid4vci.pkce import generate_code_verifier as generate_code_verifier
from oid4vci.pkce import generate_state as generate_state
from oid4vci.wallet.actions import Action as Action
from oid4vci.wallet.actions import Authorize as Authorize
from oid4vci.wallet.actions import Done as Done
from oid4vci.wallet.actions import SendRequest as SendRequest
from oid4vci.wallet.actions import Wait as Wait
from oid4vci.wallet.client import Oid4vciClient as Oid4vciClient
from oid4vci.wallet.discovery import Discovery as Discovery
from oid4vci.wallet.discovery import MetadataCache as MetadataCache
from oid4vci.wallet.discovery import discover as discover
from oid4vci.wallet.driver import AuthorizeHook as AuthorizeHook
from oid4vci.wallet.driver import run_flow as run_flow
from oid4vci.wallet.driver import run_until_authorize as run_until_authorize
from oid4vci.wallet.flow import IssuanceFlow as IssuanceFlow
from oid4vci.wallet.lowlevel import notify as notify
from oid4vci.wallet.lowlevel import push_authorization_request as push_authorization_request
from oid4vci.wallet.lowlevel import refresh_access_token as refresh_access_token
from oid4vci.wallet.lowlevel import request_credential as request_credential
from oid4vci.wallet.lowlevel import request_deferred_credential as request_deferred_credential
from oid4vci.wallet.lowlevel import request_nonce as request_nonce
from oid4vci.wallet.lowlevel import request_token as request_token
from oid4vci.wallet.policy import HolderKeyProvider as HolderKeyProvider
from oid4vci.wallet.policy import KeyReferences as KeyReferences
from oid4vci.wallet.policy import WalletPolicy as WalletPolicy
from oid4vci.wallet.policy import default_holder_key_provider as default_holder_key_provider
from oid4vci.wallet.preflight import check_tx_code as check_tx_code
from oid4vci.wallet.results import DeferredTransaction as DeferredTransaction
from oid4vci.wallet.results import IssuanceResult as IssuanceResult
from oid4vci.wallet.results import IssuerSession as IssuerSession
from oid4vci.wallet.results import NonceMemory as NonceMemory
from oid4vci.wallet.results import ReceivedCredential as ReceivedCredential
from oid4vci.wallet.states import TRANSITIONS as TRANSITIONS
from oid4vci.wallet.states import Event as Event
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
from oid4vci.wallet.steps import refresh_token_grant as refresh_token_grant
from oid4vci.wallet.verify import WalletReason as WalletReason
from oid4vci.wallet.verify import verify_credential as verify_credential

__all__ = [
    "TRANSITIONS",
    "Action",
    "Authorize",
    "AuthorizeHook",
    "DeferredPending",
    "DeferredTransaction",
    "Discovery",
    "Done",
    "Event",
    "FlowState",
    "HolderKeyProvider",
    "IssuanceFlow",
    "IssuanceResult",
    "IssuerSession",
    "KeyReferences",
    "MetadataCache",
    "NonceMemory",
    "Oid4vciClient",
    "ReceivedCredential",
    "SendRequest",
    "Wait",
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
    "pre_authorized_grant",
    "push_authorization_request",
    "read_authorization_callback",
    "read_credential_response",
    "read_deferred_credential_response",
    "read_nonce_response",
    "read_notification_response",
    "read_par_response",
    "read_token_response",
    "refresh_access_token",
    "refresh_token_grant",
    "request_credential",
    "request_deferred_credential",
    "request_nonce",
    "request_token",
    "run_flow",
    "run_until_authorize",
    "verify_credential",
]
