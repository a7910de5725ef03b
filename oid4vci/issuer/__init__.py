"""The issuer side: framework-neutral endpoint stages and the :class:`Issuer` service.

``Issuer(config).handle`` answers every endpoint (metadata, offers, authorization, PAR, token,
nonce, credential, deferred, notification). Each endpoint is a module with the same stages:
``parse_<endpoint>_request(request, config)`` (pure, sync) → ``verify_<...>(parsed, config)``
(may await the store or a signer) → ``create_<endpoint>_response(verified, config)``, composed
by ``handle_<endpoint>(request, config)``, which answers errors and never raises them. See
:mod:`oid4vci.issuer.service` and, for the store keys, :mod:`oid4vci.issuer.store_keys`.

This namespace holds the service, its configuration values, the stages (with
:func:`create_error_response`, the response to any error a stage raises), the store and the
demo builder; everything else (hook protocols such as ``ClaimsSource`` and
``UserAuthenticator``, records, constants, lower-level helpers) is public in its module.
"""

from __future__ import annotations

from oid4vci.issuer.access_token import verify_access_token as verify_access_token
from oid4vci.issuer.access_token import verify_dpop_proof as verify_dpop_proof
from oid4vci.issuer.as_metadata import create_as_metadata as create_as_metadata
from oid4vci.issuer.as_metadata import handle_as_metadata as handle_as_metadata
from oid4vci.issuer.authorization import (
    create_authorization_response as create_authorization_response,
)
from oid4vci.issuer.authorization import handle_authorization as handle_authorization
from oid4vci.issuer.authorization import parse_authorization_request as parse_authorization_request
from oid4vci.issuer.authorization import (
    verify_authorization_request as verify_authorization_request,
)
from oid4vci.issuer.config import Authenticated as Authenticated
from oid4vci.issuer.config import ClientPolicy as ClientPolicy
from oid4vci.issuer.config import CredentialConfigurationSpec as CredentialConfigurationSpec
from oid4vci.issuer.config import DeferIssuance as DeferIssuance
from oid4vci.issuer.config import Denied as Denied
from oid4vci.issuer.config import ExternalAuthorizationServer as ExternalAuthorizationServer
from oid4vci.issuer.config import IssuerConfig as IssuerConfig
from oid4vci.issuer.config import PendingLogin as PendingLogin
from oid4vci.issuer.config import Respond as Respond
from oid4vci.issuer.config import StatusListSettings as StatusListSettings
from oid4vci.issuer.credential import create_credential_response as create_credential_response
from oid4vci.issuer.credential import handle_credential as handle_credential
from oid4vci.issuer.credential import parse_credential_request as parse_credential_request
from oid4vci.issuer.credential import verify_credential_request as verify_credential_request
from oid4vci.issuer.deferred import (
    create_deferred_credential_response as create_deferred_credential_response,
)
from oid4vci.issuer.deferred import handle_deferred_credential as handle_deferred_credential
from oid4vci.issuer.deferred import (
    parse_deferred_credential_request as parse_deferred_credential_request,
)
from oid4vci.issuer.deferred import (
    verify_deferred_credential_request as verify_deferred_credential_request,
)
from oid4vci.issuer.demo import build_demo_issuer as build_demo_issuer
from oid4vci.issuer.metadata import create_issuer_metadata as create_issuer_metadata
from oid4vci.issuer.metadata import create_jwt_vc_issuer_metadata as create_jwt_vc_issuer_metadata
from oid4vci.issuer.metadata import handle_issuer_metadata as handle_issuer_metadata
from oid4vci.issuer.metadata import handle_jwt_vc_issuer_metadata as handle_jwt_vc_issuer_metadata
from oid4vci.issuer.nonce import create_nonce_response as create_nonce_response
from oid4vci.issuer.nonce import handle_nonce as handle_nonce
from oid4vci.issuer.nonce import parse_nonce_request as parse_nonce_request
from oid4vci.issuer.notification import create_notification_response as create_notification_response
from oid4vci.issuer.notification import handle_notification as handle_notification
from oid4vci.issuer.notification import parse_notification_request as parse_notification_request
from oid4vci.issuer.notification import verify_notification_request as verify_notification_request
from oid4vci.issuer.offers import OfferOptions as OfferOptions
from oid4vci.issuer.offers import OfferTemplate as OfferTemplate
from oid4vci.issuer.offers import TxCodeSpec as TxCodeSpec
from oid4vci.issuer.offers import create_offer_response as create_offer_response
from oid4vci.issuer.offers import handle_offer as handle_offer
from oid4vci.issuer.offers import parse_offer_request as parse_offer_request
from oid4vci.issuer.offers import verify_offer_request as verify_offer_request
from oid4vci.issuer.par import create_par_response as create_par_response
from oid4vci.issuer.par import handle_par as handle_par
from oid4vci.issuer.par import parse_par_request as parse_par_request
from oid4vci.issuer.par import verify_par_request as verify_par_request
from oid4vci.issuer.responses import create_error_response as create_error_response
from oid4vci.issuer.service import Issuer as Issuer
from oid4vci.issuer.service import Tenancy as Tenancy
from oid4vci.issuer.stateless_nonce import NonceKeys as NonceKeys
from oid4vci.issuer.status_list import handle_status_list as handle_status_list
from oid4vci.issuer.store import MemoryStore as MemoryStore
from oid4vci.issuer.store import Store as Store
from oid4vci.issuer.token import create_token_response as create_token_response
from oid4vci.issuer.token import handle_token as handle_token
from oid4vci.issuer.token import parse_token_request as parse_token_request
from oid4vci.issuer.token import verify_token_request as verify_token_request

__all__ = [
    "Authenticated",
    "ClientPolicy",
    "CredentialConfigurationSpec",
    "DeferIssuance",
    # the demo
    "Denied",
    "ExternalAuthorizationServer",
    # service and configuration
    "Issuer",
    "IssuerConfig",
    "MemoryStore",
    "NonceKeys",
    "OfferOptions",
    "OfferTemplate",
    "PendingLogin",
    "Respond",
    "StatusListSettings",
    # the store
    "Store",
    "Tenancy",
    "TxCodeSpec",
    "build_demo_issuer",
    "create_as_metadata",
    "create_authorization_response",
    "create_credential_response",
    "create_deferred_credential_response",
    "create_error_response",
    # metadata endpoints (OID4VCI 1.0 §12, draft-ietf-oauth-sd-jwt-vc-11 §5, RFC 8414)
    "create_issuer_metadata",
    "create_jwt_vc_issuer_metadata",
    "create_nonce_response",
    "create_notification_response",
    "create_offer_response",
    "create_par_response",
    # credential offers (OID4VCI 1.0 §4)
    "create_token_response",
    "handle_as_metadata",
    "handle_authorization",
    "handle_credential",
    "handle_deferred_credential",
    "handle_issuer_metadata",
    "handle_jwt_vc_issuer_metadata",
    "handle_nonce",
    "handle_notification",
    "handle_offer",
    "handle_par",
    "handle_status_list",
    "handle_token",
    # authorization request (RFC 6749 §4.1)
    "parse_authorization_request",
    # credential request (OID4VCI 1.0 §8)
    "parse_credential_request",
    # deferred credential request (OID4VCI 1.0 §9)
    "parse_deferred_credential_request",
    # nonce request (OID4VCI 1.0 §7)
    # notification request (OID4VCI 1.0 §11)
    "parse_nonce_request",
    "parse_notification_request",
    "parse_offer_request",
    # pushed authorization request (RFC 9126)
    "parse_par_request",
    # token request (RFC 6749 §3.2, OID4VCI 1.0 §6)
    "parse_token_request",
    # shared verify stages (RFC 6750, RFC 9449)
    "verify_access_token",
    "verify_authorization_request",
    "verify_credential_request",
    "verify_deferred_credential_request",
    "verify_dpop_proof",
    "verify_notification_request",
    "verify_offer_request",
    "verify_par_request",
    "verify_token_request",
]
