"""oid4vci: OpenID for Verifiable Credential Issuance (Draft 13, 14, 15 and 1.0) for Python.

The wallet side is :class:`Oid4vciClient` over the sans-IO :class:`IssuanceFlow` (driven by
:func:`run_flow`), plus the low-level calls ``request_token``, ``request_credential``, ...;
the issuer side is :class:`Issuer` and the pure helpers in :mod:`oid4vci.issuer`. Transports live in :mod:`oid4vci.transports`
(``memory``, ``aiohttp``, ``httpx``, and ``asgi`` to serve an issuer from an ASGI server).
Every name below is also importable from the submodule that defines it, and is imported on
first use (PEP 562): ``import oid4vci.jose`` loads what :mod:`oid4vci.jose` needs, not the whole
library, and ``python -m oid4vci`` starts its command before the heavy imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oid4vci.dpop import DpopProof as DpopProof
    from oid4vci.dpop import access_token_hash as access_token_hash
    from oid4vci.dpop import build_dpop_jwt as build_dpop_jwt
    from oid4vci.dpop import verify_dpop_jwt as verify_dpop_jwt
    from oid4vci.errors import ArgumentTypeError as ArgumentTypeError
    from oid4vci.errors import AuthorizationError as AuthorizationError
    from oid4vci.errors import CallbackError as CallbackError
    from oid4vci.errors import ConnectError as ConnectError
    from oid4vci.errors import CredentialRequestError as CredentialRequestError
    from oid4vci.errors import CredentialVerificationError as CredentialVerificationError
    from oid4vci.errors import DpopError as DpopError
    from oid4vci.errors import ErrorCode as ErrorCode
    from oid4vci.errors import InsecureUrlError as InsecureUrlError
    from oid4vci.errors import JoseError as JoseError
    from oid4vci.errors import MetadataError as MetadataError
    from oid4vci.errors import OfferError as OfferError
    from oid4vci.errors import Oid4vciError as Oid4vciError
    from oid4vci.errors import ProtocolError as ProtocolError
    from oid4vci.errors import RedirectRefused as RedirectRefused
    from oid4vci.errors import ResponseTooLarge as ResponseTooLarge
    from oid4vci.errors import StateError as StateError
    from oid4vci.errors import StoreError as StoreError
    from oid4vci.errors import StoreFullError as StoreFullError
    from oid4vci.errors import StoreUnavailableError as StoreUnavailableError
    from oid4vci.errors import TokenError as TokenError
    from oid4vci.errors import TransportError as TransportError
    from oid4vci.errors import TransportTimeout as TransportTimeout
    from oid4vci.errors import UsageError as UsageError
    from oid4vci.errors import ValidationError as ValidationError
    from oid4vci.errors import WireFormatError as WireFormatError
    from oid4vci.http import AsyncTransport as AsyncTransport
    from oid4vci.http import Headers as Headers
    from oid4vci.http import HttpRequest as HttpRequest
    from oid4vci.http import HttpResponse as HttpResponse
    from oid4vci.http import Transport as Transport
    from oid4vci.issuer import CredentialConfigurationSpec as CredentialConfigurationSpec
    from oid4vci.issuer import Issuer as Issuer
    from oid4vci.issuer import IssuerConfig as IssuerConfig
    from oid4vci.issuer import MemoryStore as MemoryStore
    from oid4vci.issuer import Store as Store
    from oid4vci.issuer import parse_credential_request as parse_credential_request
    from oid4vci.issuer.proof import verify_proof_jwt as verify_proof_jwt
    from oid4vci.issuer.tenancy import build_subdomain_issuer_url as build_subdomain_issuer_url
    from oid4vci.jose import LocalSigner as LocalSigner
    from oid4vci.jose import Signer as Signer
    from oid4vci.jose import generate_signer as generate_signer
    from oid4vci.jose import jwk_thumbprint as jwk_thumbprint
    from oid4vci.jwtvc import issue_jwt_vc_json as issue_jwt_vc_json
    from oid4vci.jwtvc import verify_jwt_vc_json as verify_jwt_vc_json
    from oid4vci.models import CredentialIssuerMetadata as CredentialIssuerMetadata
    from oid4vci.models import CredentialOffer as CredentialOffer
    from oid4vci.models import CredentialRequest as CredentialRequest
    from oid4vci.models import CredentialResponse as CredentialResponse
    from oid4vci.models import TokenResponse as TokenResponse
    from oid4vci.pkce import code_challenge as code_challenge
    from oid4vci.pkce import generate_code_verifier as generate_code_verifier
    from oid4vci.pkce import generate_state as generate_state
    from oid4vci.sdjwt import issue_batch as issue_batch
    from oid4vci.sdjwt import issue_sd_jwt_vc as issue_sd_jwt_vc
    from oid4vci.sdjwt import sd as sd
    from oid4vci.sdjwt import verify_sd_jwt_vc as verify_sd_jwt_vc
    from oid4vci.tracing import Exchange as Exchange
    from oid4vci.tracing import TracingTransport as TracingTransport
    from oid4vci.versions import SpecVersion as SpecVersion
    from oid4vci.wallet import IssuanceFlow as IssuanceFlow
    from oid4vci.wallet import IssuanceResult as IssuanceResult
    from oid4vci.wallet import Oid4vciClient as Oid4vciClient
    from oid4vci.wallet import ReceivedCredential as ReceivedCredential
    from oid4vci.wallet import WalletPolicy as WalletPolicy
    from oid4vci.wallet import notify as notify
    from oid4vci.wallet import push_authorization_request as push_authorization_request
    from oid4vci.wallet import request_credential as request_credential
    from oid4vci.wallet import request_deferred_credential as request_deferred_credential
    from oid4vci.wallet import request_nonce as request_nonce
    from oid4vci.wallet import request_token as request_token
    from oid4vci.wallet import run_flow as run_flow

__version__ = "0.1.0"

#: Each public name and the module that defines it, imported on first use.
_DEFINED_IN: dict[str, str] = {
    "DpopProof": "oid4vci.dpop",
    "access_token_hash": "oid4vci.dpop",
    "build_dpop_jwt": "oid4vci.dpop",
    "verify_dpop_jwt": "oid4vci.dpop",
    "ArgumentTypeError": "oid4vci.errors",
    "AuthorizationError": "oid4vci.errors",
    "CallbackError": "oid4vci.errors",
    "ConnectError": "oid4vci.errors",
    "CredentialRequestError": "oid4vci.errors",
    "CredentialVerificationError": "oid4vci.errors",
    "DpopError": "oid4vci.errors",
    "ErrorCode": "oid4vci.errors",
    "InsecureUrlError": "oid4vci.errors",
    "JoseError": "oid4vci.errors",
    "MetadataError": "oid4vci.errors",
    "OfferError": "oid4vci.errors",
    "Oid4vciError": "oid4vci.errors",
    "ProtocolError": "oid4vci.errors",
    "RedirectRefused": "oid4vci.errors",
    "ResponseTooLarge": "oid4vci.errors",
    "StateError": "oid4vci.errors",
    "StoreError": "oid4vci.errors",
    "StoreFullError": "oid4vci.errors",
    "StoreUnavailableError": "oid4vci.errors",
    "TokenError": "oid4vci.errors",
    "TransportError": "oid4vci.errors",
    "TransportTimeout": "oid4vci.errors",
    "UsageError": "oid4vci.errors",
    "ValidationError": "oid4vci.errors",
    "WireFormatError": "oid4vci.errors",
    "AsyncTransport": "oid4vci.http",
    "Headers": "oid4vci.http",
    "HttpRequest": "oid4vci.http",
    "HttpResponse": "oid4vci.http",
    "Transport": "oid4vci.http",
    "CredentialConfigurationSpec": "oid4vci.issuer",
    "Issuer": "oid4vci.issuer",
    "IssuerConfig": "oid4vci.issuer",
    "MemoryStore": "oid4vci.issuer",
    "Store": "oid4vci.issuer",
    "parse_credential_request": "oid4vci.issuer",
    "verify_proof_jwt": "oid4vci.issuer.proof",
    "build_subdomain_issuer_url": "oid4vci.issuer.tenancy",
    "LocalSigner": "oid4vci.jose",
    "Signer": "oid4vci.jose",
    "generate_signer": "oid4vci.jose",
    "jwk_thumbprint": "oid4vci.jose",
    "issue_jwt_vc_json": "oid4vci.jwtvc",
    "verify_jwt_vc_json": "oid4vci.jwtvc",
    "CredentialIssuerMetadata": "oid4vci.models",
    "CredentialOffer": "oid4vci.models",
    "CredentialRequest": "oid4vci.models",
    "CredentialResponse": "oid4vci.models",
    "TokenResponse": "oid4vci.models",
    "code_challenge": "oid4vci.pkce",
    "generate_code_verifier": "oid4vci.pkce",
    "generate_state": "oid4vci.pkce",
    "issue_batch": "oid4vci.sdjwt",
    "issue_sd_jwt_vc": "oid4vci.sdjwt",
    "sd": "oid4vci.sdjwt",
    "verify_sd_jwt_vc": "oid4vci.sdjwt",
    "Exchange": "oid4vci.tracing",
    "TracingTransport": "oid4vci.tracing",
    "SpecVersion": "oid4vci.versions",
    "IssuanceFlow": "oid4vci.wallet",
    "IssuanceResult": "oid4vci.wallet",
    "Oid4vciClient": "oid4vci.wallet",
    "ReceivedCredential": "oid4vci.wallet",
    "WalletPolicy": "oid4vci.wallet",
    "notify": "oid4vci.wallet",
    "push_authorization_request": "oid4vci.wallet",
    "request_credential": "oid4vci.wallet",
    "request_deferred_credential": "oid4vci.wallet",
    "request_nonce": "oid4vci.wallet",
    "request_token": "oid4vci.wallet",
    "run_flow": "oid4vci.wallet",
}

__all__ = [
    "ArgumentTypeError",
    "AsyncTransport",
    "AuthorizationError",
    "CallbackError",
    "ConnectError",
    "CredentialConfigurationSpec",
    "CredentialIssuerMetadata",
    "CredentialOffer",
    "CredentialRequest",
    "CredentialRequestError",
    "CredentialResponse",
    "CredentialVerificationError",
    "DpopError",
    "DpopProof",
    "ErrorCode",
    "Exchange",
    "Headers",
    "HttpRequest",
    "HttpResponse",
    "InsecureUrlError",
    "IssuanceFlow",
    "IssuanceResult",
    "Issuer",
    "IssuerConfig",
    "JoseError",
    "LocalSigner",
    "MemoryStore",
    "MetadataError",
    "OfferError",
    "Oid4vciClient",
    "Oid4vciError",
    "ProtocolError",
    "ReceivedCredential",
    "RedirectRefused",
    "ResponseTooLarge",
    "Signer",
    "SpecVersion",
    "StateError",
    "Store",
    "StoreError",
    "StoreFullError",
    "StoreUnavailableError",
    "TokenError",
    "TokenResponse",
    "TracingTransport",
    "Transport",
    "TransportError",
    "TransportTimeout",
    "UsageError",
    "ValidationError",
    "WalletPolicy",
    "WireFormatError",
    "access_token_hash",
    "build_dpop_jwt",
    "build_subdomain_issuer_url",
    "code_challenge",
    "generate_code_verifier",
    "generate_signer",
    "generate_state",
    "issue_batch",
    "issue_jwt_vc_json",
    "issue_sd_jwt_vc",
    "jwk_thumbprint",
    "notify",
    "parse_credential_request",
    "push_authorization_request",
    "request_credential",
    "request_deferred_credential",
    "request_nonce",
    "request_token",
    "run_flow",
    "sd",
    "verify_dpop_jwt",
    "verify_jwt_vc_json",
    "verify_proof_jwt",
    "verify_sd_jwt_vc",
]


if not TYPE_CHECKING:  # for type checkers every name is imported above

    def __getattr__(name: str) -> Any:
        """A public name (imported from its module on first use), or a submodule."""
        module = _DEFINED_IN.get(name)
        if module is not None:
            value = getattr(importlib.import_module(module), name)
            globals()[name] = value  # the next lookup does not come here
            return value
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{name}":
                raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
