"""The issuer side: framework-neutral endpoint helpers and the :class:`Issuer` service.

``Issuer(config).handle`` answers every endpoint (metadata, offers, authorization, PAR, token,
nonce, credential, deferred, notification); the helpers it composes are public too, following
the parse → verify → create-response pattern. See :mod:`oid4vci.issuer.service`.
"""

from __future__ import annotations

from oid4vci.issuer.access_token import TokenContext as TokenContext
from oid4vci.issuer.access_token import (
    authenticate_resource_request as authenticate_resource_request,
)
from oid4vci.issuer.access_token import check_dpop_nonce as check_dpop_nonce
from oid4vci.issuer.access_token import consume_c_nonce as consume_c_nonce
from oid4vci.issuer.access_token import grant_is_revoked as grant_is_revoked
from oid4vci.issuer.access_token import issue_access_token as issue_access_token
from oid4vci.issuer.access_token import jti_store_for as jti_store_for
from oid4vci.issuer.access_token import mint_c_nonce as mint_c_nonce
from oid4vci.issuer.access_token import mint_dpop_nonce as mint_dpop_nonce
from oid4vci.issuer.access_token import revoke_grant as revoke_grant
from oid4vci.issuer.access_token import token_key as token_key
from oid4vci.issuer.access_token import verify_dpop_proof as verify_dpop_proof
from oid4vci.issuer.as_metadata import as_metadata_url as as_metadata_url
from oid4vci.issuer.as_metadata import create_as_metadata as create_as_metadata
from oid4vci.issuer.as_metadata import handle_as_metadata as handle_as_metadata
from oid4vci.issuer.authorization import HANDLE_PARAMETER as HANDLE_PARAMETER
from oid4vci.issuer.authorization import REQUEST_URI_PREFIX as REQUEST_URI_PREFIX
from oid4vci.issuer.authorization import UnredirectableError as UnredirectableError
from oid4vci.issuer.authorization import (
    authorization_error_redirect as authorization_error_redirect,
)
from oid4vci.issuer.authorization import authorization_response_url as authorization_response_url
from oid4vci.issuer.authorization import handle_authorization as handle_authorization
from oid4vci.issuer.authorization import (
    read_authorization_parameters as read_authorization_parameters,
)
from oid4vci.issuer.authorization import (
    resolve_authorization_details as resolve_authorization_details,
)
from oid4vci.issuer.authorization import (
    validate_authorization_parameters as validate_authorization_parameters,
)
from oid4vci.issuer.config import DEFAULT_DPOP_ALGORITHMS as DEFAULT_DPOP_ALGORITHMS
from oid4vci.issuer.config import DEFAULT_PROOF_ALGORITHMS as DEFAULT_PROOF_ALGORITHMS
from oid4vci.issuer.config import ENDPOINT_PATHS as ENDPOINT_PATHS
from oid4vci.issuer.config import Authenticated as Authenticated
from oid4vci.issuer.config import AuthenticationResult as AuthenticationResult
from oid4vci.issuer.config import ClaimsSource as ClaimsSource
from oid4vci.issuer.config import ClientPolicy as ClientPolicy
from oid4vci.issuer.config import CredentialConfigurationSpec as CredentialConfigurationSpec
from oid4vci.issuer.config import DeferIssuance as DeferIssuance
from oid4vci.issuer.config import Denied as Denied
from oid4vci.issuer.config import ExternalAuthorizationServer as ExternalAuthorizationServer
from oid4vci.issuer.config import IssuerConfig as IssuerConfig
from oid4vci.issuer.config import PendingAuthorization as PendingAuthorization
from oid4vci.issuer.config import Respond as Respond
from oid4vci.issuer.config import UserAuthenticator as UserAuthenticator
from oid4vci.issuer.credential import DEFERRED_PREFIX as DEFERRED_PREFIX
from oid4vci.issuer.credential import DEFERRED_TTL as DEFERRED_TTL
from oid4vci.issuer.credential import ISSUABLE_FORMATS as ISSUABLE_FORMATS
from oid4vci.issuer.credential import JWT_VC_JSON_FORMAT as JWT_VC_JSON_FORMAT
from oid4vci.issuer.credential import SD_JWT_FORMATS as SD_JWT_FORMATS
from oid4vci.issuer.credential import NormalizedCredentialRequest as NormalizedCredentialRequest
from oid4vci.issuer.credential import credential_response_body as credential_response_body
from oid4vci.issuer.credential import handle_credential_request as handle_credential_request
from oid4vci.issuer.credential import mint_credentials as mint_credentials
from oid4vci.issuer.credential import parse_credential_request as parse_credential_request
from oid4vci.issuer.deferred import complete_deferred as complete_deferred
from oid4vci.issuer.deferred import deny_deferred as deny_deferred
from oid4vci.issuer.deferred import handle_deferred_credential as handle_deferred_credential
from oid4vci.issuer.demo import DEMO_CONFIGURATION_ID as DEMO_CONFIGURATION_ID
from oid4vci.issuer.demo import DEMO_PASSWORD as DEMO_PASSWORD
from oid4vci.issuer.demo import DEMO_TX_CODE as DEMO_TX_CODE
from oid4vci.issuer.demo import DEMO_USERNAME as DEMO_USERNAME
from oid4vci.issuer.demo import DemoClaimsSource as DemoClaimsSource
from oid4vci.issuer.demo import DemoIssuer as DemoIssuer
from oid4vci.issuer.demo import DemoLogin as DemoLogin
from oid4vci.issuer.demo import build_demo_issuer as build_demo_issuer
from oid4vci.issuer.demo import demo_configuration as demo_configuration
from oid4vci.issuer.metadata import CREDENTIAL_ISSUER_WELL_KNOWN as CREDENTIAL_ISSUER_WELL_KNOWN
from oid4vci.issuer.metadata import JWT_VC_ISSUER_WELL_KNOWN as JWT_VC_ISSUER_WELL_KNOWN
from oid4vci.issuer.metadata import OAUTH_AS_WELL_KNOWN as OAUTH_AS_WELL_KNOWN
from oid4vci.issuer.metadata import create_issuer_metadata as create_issuer_metadata
from oid4vci.issuer.metadata import create_jwt_vc_issuer_metadata as create_jwt_vc_issuer_metadata
from oid4vci.issuer.metadata import (
    credential_configuration_metadata as credential_configuration_metadata,
)
from oid4vci.issuer.metadata import credential_key_id as credential_key_id
from oid4vci.issuer.metadata import handle_issuer_metadata as handle_issuer_metadata
from oid4vci.issuer.metadata import handle_jwt_vc_issuer_metadata as handle_jwt_vc_issuer_metadata
from oid4vci.issuer.metadata import public_credential_jwk as public_credential_jwk
from oid4vci.issuer.metadata import well_known_paths as well_known_paths
from oid4vci.issuer.nonce import handle_nonce as handle_nonce
from oid4vci.issuer.nonce import new_c_nonce as new_c_nonce
from oid4vci.issuer.notification import Notification as Notification
from oid4vci.issuer.notification import NotificationHook as NotificationHook
from oid4vci.issuer.notification import handle_notification as handle_notification
from oid4vci.issuer.notification import parse_notification as parse_notification
from oid4vci.issuer.notification import register_notification as register_notification
from oid4vci.issuer.offers import OFFER_SCHEME as OFFER_SCHEME
from oid4vci.issuer.offers import TEMPLATE_PATH as TEMPLATE_PATH
from oid4vci.issuer.offers import CreatedOffer as CreatedOffer
from oid4vci.issuer.offers import OfferTemplate as OfferTemplate
from oid4vci.issuer.offers import TxCodeSpec as TxCodeSpec
from oid4vci.issuer.offers import create_authorization_code_offer as create_authorization_code_offer
from oid4vci.issuer.offers import create_offer_from_template as create_offer_from_template
from oid4vci.issuer.offers import create_pre_authorized_offer as create_pre_authorized_offer
from oid4vci.issuer.offers import handle_offer_request as handle_offer_request
from oid4vci.issuer.offers import offer_template_url as offer_template_url
from oid4vci.issuer.offers import offer_url as offer_url
from oid4vci.issuer.par import PushedRequest as PushedRequest
from oid4vci.issuer.par import create_par_response as create_par_response
from oid4vci.issuer.par import handle_par as handle_par
from oid4vci.issuer.par import parse_par_request as parse_par_request
from oid4vci.issuer.par import verify_par_request as verify_par_request
from oid4vci.issuer.proof import PROOF_TYP as PROOF_TYP
from oid4vci.issuer.proof import VerifiedProof as VerifiedProof
from oid4vci.issuer.proof import jwk_from_did_jwk as jwk_from_did_jwk
from oid4vci.issuer.proof import jwk_from_x5c as jwk_from_x5c
from oid4vci.issuer.proof import verify_proof_jwt as verify_proof_jwt
from oid4vci.issuer.proof import verify_proof_jwts as verify_proof_jwts
from oid4vci.issuer.responses import NO_STORE as NO_STORE
from oid4vci.issuer.responses import ResourceServerError as ResourceServerError
from oid4vci.issuer.responses import create_error_response as create_error_response
from oid4vci.issuer.responses import html_response as html_response
from oid4vci.issuer.responses import json_response as json_response
from oid4vci.issuer.responses import redirect_response as redirect_response
from oid4vci.issuer.responses import resource_error as resource_error
from oid4vci.issuer.responses import temporarily_unavailable as temporarily_unavailable
from oid4vci.issuer.service import Issuer as Issuer
from oid4vci.issuer.service import TenantResolver as TenantResolver
from oid4vci.issuer.store import MemoryStore as MemoryStore
from oid4vci.issuer.store import Store as Store
from oid4vci.issuer.store import scoped_store as scoped_store
from oid4vci.issuer.tenancy import build_path_issuer_url as build_path_issuer_url
from oid4vci.issuer.tenancy import build_subdomain_issuer_url as build_subdomain_issuer_url
from oid4vci.issuer.tenancy import tenant_from_host as tenant_from_host
from oid4vci.issuer.tenancy import tenant_from_path as tenant_from_path
from oid4vci.issuer.tenancy import validate_tenant_label as validate_tenant_label
from oid4vci.issuer.token import AUTHORIZATION_CODE_GRANT as AUTHORIZATION_CODE_GRANT
from oid4vci.issuer.token import PRE_AUTHORIZED_CODE_GRANT as PRE_AUTHORIZED_CODE_GRANT
from oid4vci.issuer.token import AuthorizationCodeGrant as AuthorizationCodeGrant
from oid4vci.issuer.token import PreAuthorizedGrant as PreAuthorizedGrant
from oid4vci.issuer.token import TokenRequest as TokenRequest
from oid4vci.issuer.token import create_token_response as create_token_response
from oid4vci.issuer.token import handle_token as handle_token
from oid4vci.issuer.token import parse_token_request as parse_token_request
from oid4vci.issuer.token import redeem_authorization_code as redeem_authorization_code
from oid4vci.issuer.token import redeem_pre_authorized_code as redeem_pre_authorized_code
from oid4vci.issuer.token import store_authorization_code as store_authorization_code
from oid4vci.issuer.token import store_pre_authorized_code as store_pre_authorized_code

__all__ = [
    "AUTHORIZATION_CODE_GRANT",
    "CREDENTIAL_ISSUER_WELL_KNOWN",
    "DEFAULT_DPOP_ALGORITHMS",
    "DEFAULT_PROOF_ALGORITHMS",
    "DEFERRED_PREFIX",
    "DEFERRED_TTL",
    "DEMO_CONFIGURATION_ID",
    "DEMO_PASSWORD",
    "DEMO_TX_CODE",
    "DEMO_USERNAME",
    "ENDPOINT_PATHS",
    "HANDLE_PARAMETER",
    "ISSUABLE_FORMATS",
    "JWT_VC_ISSUER_WELL_KNOWN",
    "JWT_VC_JSON_FORMAT",
    "NO_STORE",
    "OAUTH_AS_WELL_KNOWN",
    "OFFER_SCHEME",
    "PRE_AUTHORIZED_CODE_GRANT",
    "PROOF_TYP",
    "REQUEST_URI_PREFIX",
    "SD_JWT_FORMATS",
    "TEMPLATE_PATH",
    "Authenticated",
    "AuthenticationResult",
    "AuthorizationCodeGrant",
    "ClaimsSource",
    "ClientPolicy",
    "CreatedOffer",
    "CredentialConfigurationSpec",
    "DeferIssuance",
    "DemoClaimsSource",
    "DemoIssuer",
    "DemoLogin",
    "Denied",
    "ExternalAuthorizationServer",
    "Issuer",
    "IssuerConfig",
    "MemoryStore",
    "NormalizedCredentialRequest",
    "Notification",
    "NotificationHook",
    "OfferTemplate",
    "PendingAuthorization",
    "PreAuthorizedGrant",
    "PushedRequest",
    "ResourceServerError",
    "Respond",
    "Store",
    "TenantResolver",
    "TokenContext",
    "TokenRequest",
    "TxCodeSpec",
    "UnredirectableError",
    "UserAuthenticator",
    "VerifiedProof",
    "as_metadata_url",
    "authenticate_resource_request",
    "authorization_error_redirect",
    "authorization_response_url",
    "build_demo_issuer",
    "build_path_issuer_url",
    "build_subdomain_issuer_url",
    "check_dpop_nonce",
    "complete_deferred",
    "consume_c_nonce",
    "create_as_metadata",
    "create_authorization_code_offer",
    "create_error_response",
    "create_issuer_metadata",
    "create_jwt_vc_issuer_metadata",
    "create_offer_from_template",
    "create_par_response",
    "create_pre_authorized_offer",
    "create_token_response",
    "credential_configuration_metadata",
    "credential_key_id",
    "credential_response_body",
    "demo_configuration",
    "deny_deferred",
    "grant_is_revoked",
    "handle_as_metadata",
    "handle_authorization",
    "handle_credential_request",
    "handle_deferred_credential",
    "handle_issuer_metadata",
    "handle_jwt_vc_issuer_metadata",
    "handle_nonce",
    "handle_notification",
    "handle_offer_request",
    "handle_par",
    "handle_token",
    "html_response",
    "issue_access_token",
    "json_response",
    "jti_store_for",
    "jwk_from_did_jwk",
    "jwk_from_x5c",
    "mint_c_nonce",
    "mint_credentials",
    "mint_dpop_nonce",
    "new_c_nonce",
    "offer_template_url",
    "offer_url",
    "parse_credential_request",
    "parse_notification",
    "parse_par_request",
    "parse_token_request",
    "public_credential_jwk",
    "read_authorization_parameters",
    "redeem_authorization_code",
    "redeem_pre_authorized_code",
    "redirect_response",
    "register_notification",
    "resolve_authorization_details",
    "resource_error",
    "revoke_grant",
    "scoped_store",
    "store_authorization_code",
    "store_pre_authorized_code",
    "temporarily_unavailable",
    "tenant_from_host",
    "tenant_from_path",
    "token_key",
    "validate_authorization_parameters",
    "validate_tenant_label",
    "verify_dpop_proof",
    "verify_par_request",
    "verify_proof_jwt",
    "verify_proof_jwts",
    "well_known_paths",
]
