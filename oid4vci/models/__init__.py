"""Wire models: frozen attrs values for every OID4VCI / OAuth document, one module per
spec section. Reading and writing go through the one converter in :mod:`oid4vci._wire`."""

from __future__ import annotations

from oid4vci.models.authorization import OPENID_CREDENTIAL as OPENID_CREDENTIAL
from oid4vci.models.authorization import AuthorizationDetail as AuthorizationDetail
from oid4vci.models.authorization import PushedAuthorizationResponse as PushedAuthorizationResponse
from oid4vci.models.authorization import (
    authorization_details_to_json as authorization_details_to_json,
)
from oid4vci.models.authorization import (
    authorization_details_to_text as authorization_details_to_text,
)
from oid4vci.models.authorization import par_response_to_json as par_response_to_json
from oid4vci.models.authorization import parse_authorization_details as parse_authorization_details
from oid4vci.models.authorization import parse_par_response as parse_par_response
from oid4vci.models.credential import PROOF_TYP as PROOF_TYP
from oid4vci.models.credential import CredentialRequest as CredentialRequest
from oid4vci.models.credential import CredentialResponse as CredentialResponse
from oid4vci.models.credential import IssuedCredential as IssuedCredential
from oid4vci.models.credential import ProofSet as ProofSet
from oid4vci.models.credential import credential_request_to_json as credential_request_to_json
from oid4vci.models.credential import credential_response_to_json as credential_response_to_json
from oid4vci.models.credential import parse_credential_request_json as parse_credential_request_json
from oid4vci.models.credential import (
    parse_credential_response_json as parse_credential_response_json,
)
from oid4vci.models.deferred import DeferredCredentialRequest as DeferredCredentialRequest
from oid4vci.models.deferred import (
    deferred_credential_request_to_json as deferred_credential_request_to_json,
)
from oid4vci.models.deferred import (
    parse_deferred_credential_request_json as parse_deferred_credential_request_json,
)
from oid4vci.models.error import ErrorResponse as ErrorResponse
from oid4vci.models.error import error_response_to_json as error_response_to_json
from oid4vci.models.error import parse_error_response as parse_error_response
from oid4vci.models.metadata import AuthorizationServerMetadata as AuthorizationServerMetadata
from oid4vci.models.metadata import BatchCredentialIssuance as BatchCredentialIssuance
from oid4vci.models.metadata import CredentialConfiguration as CredentialConfiguration
from oid4vci.models.metadata import CredentialIssuerMetadata as CredentialIssuerMetadata
from oid4vci.models.metadata import MetadataFormatError as MetadataFormatError
from oid4vci.models.metadata import ProofTypeMetadata as ProofTypeMetadata
from oid4vci.models.metadata import as_metadata_to_json as as_metadata_to_json
from oid4vci.models.metadata import claims_map_to_paths as claims_map_to_paths
from oid4vci.models.metadata import claims_paths_to_map as claims_paths_to_map
from oid4vci.models.metadata import (
    credential_configuration_to_json as credential_configuration_to_json,
)
from oid4vci.models.metadata import issuer_metadata_to_json as issuer_metadata_to_json
from oid4vci.models.metadata import parse_as_metadata as parse_as_metadata
from oid4vci.models.metadata import parse_credential_configuration as parse_credential_configuration
from oid4vci.models.metadata import parse_issuer_metadata as parse_issuer_metadata
from oid4vci.models.nonce import NonceResponse as NonceResponse
from oid4vci.models.nonce import nonce_response_to_json as nonce_response_to_json
from oid4vci.models.nonce import parse_nonce_response as parse_nonce_response
from oid4vci.models.notification import NOTIFICATION_EVENTS as NOTIFICATION_EVENTS
from oid4vci.models.notification import NotificationEvent as NotificationEvent
from oid4vci.models.notification import NotificationRequest as NotificationRequest
from oid4vci.models.notification import notification_request_to_json as notification_request_to_json
from oid4vci.models.notification import (
    parse_notification_request_json as parse_notification_request_json,
)
from oid4vci.models.offer import AUTHORIZATION_CODE_GRANT as AUTHORIZATION_CODE_GRANT
from oid4vci.models.offer import PRE_AUTHORIZED_CODE_GRANT as PRE_AUTHORIZED_CODE_GRANT
from oid4vci.models.offer import AuthorizationCodeGrant as AuthorizationCodeGrant
from oid4vci.models.offer import CredentialOffer as CredentialOffer
from oid4vci.models.offer import OfferFormatError as OfferFormatError
from oid4vci.models.offer import PreAuthorizedCodeGrant as PreAuthorizedCodeGrant
from oid4vci.models.offer import TxCode as TxCode
from oid4vci.models.offer import build_credential_offer_uri as build_credential_offer_uri
from oid4vci.models.offer import credential_offer_to_json as credential_offer_to_json
from oid4vci.models.offer import parse_credential_offer_json as parse_credential_offer_json
from oid4vci.models.offer import parse_credential_offer_uri as parse_credential_offer_uri
from oid4vci.models.token import TokenResponse as TokenResponse
from oid4vci.models.token import parse_token_response as parse_token_response
from oid4vci.models.token import token_response_to_json as token_response_to_json

__all__ = [
    "AUTHORIZATION_CODE_GRANT",
    "NOTIFICATION_EVENTS",
    "OPENID_CREDENTIAL",
    "PRE_AUTHORIZED_CODE_GRANT",
    "PROOF_TYP",
    "AuthorizationCodeGrant",
    "AuthorizationDetail",
    "AuthorizationServerMetadata",
    "BatchCredentialIssuance",
    "CredentialConfiguration",
    "CredentialIssuerMetadata",
    "CredentialOffer",
    "CredentialRequest",
    "CredentialResponse",
    "DeferredCredentialRequest",
    "ErrorResponse",
    "IssuedCredential",
    "MetadataFormatError",
    "NonceResponse",
    "NotificationEvent",
    "NotificationRequest",
    "OfferFormatError",
    "PreAuthorizedCodeGrant",
    "ProofSet",
    "ProofTypeMetadata",
    "PushedAuthorizationResponse",
    "TokenResponse",
    "TxCode",
    "as_metadata_to_json",
    "authorization_details_to_json",
    "authorization_details_to_text",
    "build_credential_offer_uri",
    "claims_map_to_paths",
    "claims_paths_to_map",
    "credential_configuration_to_json",
    "credential_offer_to_json",
    "credential_request_to_json",
    "credential_response_to_json",
    "deferred_credential_request_to_json",
    "error_response_to_json",
    "issuer_metadata_to_json",
    "nonce_response_to_json",
    "notification_request_to_json",
    "par_response_to_json",
    "parse_as_metadata",
    "parse_authorization_details",
    "parse_credential_configuration",
    "parse_credential_offer_json",
    "parse_credential_offer_uri",
    "parse_credential_request_json",
    "parse_credential_response_json",
    "parse_deferred_credential_request_json",
    "parse_error_response",
    "parse_issuer_metadata",
    "parse_nonce_response",
    "parse_notification_request_json",
    "parse_par_response",
    "parse_token_response",
    "token_response_to_json",
]
