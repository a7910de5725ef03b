"""The exception tree and the protocol's error codes.

Every exception this library raises derives from :class:`Oid4vciError`. A module in brackets
is where the class is defined; the others are defined here::

    Oid4vciError
    ├── UsageError                   the caller's misuse: a bad argument, a step in the wrong state
    │   ├── StateError               a flow step taken in a state that does not allow it
    │   ├── ArgumentTypeError        an argument of the wrong type (also a TypeError); names it
    │   ├── UnknownTransactionError  no pending deferred transaction by that id (raised by
    │   │                            oid4vci.issuer.deferred; also a KeyError)
    │   ├── StatusListError          (oid4vci.status) a status list argument out of range
    │   └── UnissuableClaimsError    (oid4vci.issuer.credential) a claims source's claims that no
    │                                credential can carry (the endpoint answers 500 server_error)
    ├── MissingDependencyError       an optional extra is not installed (also an ImportError)
    ├── ValidationError              what another party sent breaks the protocol's rules
    │   ├── WireFormatError          a JSON/form document does not have the wire shape; names the path
    │   ├── JoseError                a JWS/JWK is malformed, unsigned, wrongly signed or not allowed
    │   │   ├── CertificateError     (oid4vci.x509) an X.509 chain that does not validate
    │   │   ├── EncryptionError      a JWE that does not decrypt or is not allowed (oid4vci.jwe), or
    │   │   │                        an unencrypted answer where encryption was asked (OID4VCI 1.0 §10)
    │   │   └── AttestationError     (oid4vci.attestation) a wallet / key attestation refused;
    │   │                            with an ``AttestationReason``
    │   ├── InsecureUrlError         an http:// (or otherwise unsafe) URL where https is required
    │   ├── MetadataError            issuer / authorization-server metadata unusable for the flow
    │   │   ├── MetadataFormatError  (oid4vci.models.metadata) also a WireFormatError
    │   │   └── SignedMetadataError  signed issuer metadata refused (untrusted, wrong ``sub``,
    │   │                            expired, tampered) or required and absent
    │   ├── OfferError               a credential offer that cannot be used
    │   │   └── OfferFormatError     (oid4vci.models.offer) also a WireFormatError
    │   ├── NonceError               (oid4vci.issuer.stateless_nonce) a server nonce that is forged,
    │   │                            tampered with, of another purpose or expired; with a ``NonceReason``
    │   ├── CallbackError            an authorization response (the redirect to the wallet) that
    │   │                            does not match the flow (``state``, RFC 9207 ``iss``) or is malformed
    │   └── CredentialVerificationError   a received credential failed verification
    │       ├── SdJwtVerificationError    (oid4vci.sdjwt) with an ``SdJwtReason``
    │       ├── JwtVcVerificationError    (oid4vci.jwtvc) with a ``JwtVcReason``
    │       ├── MdocVerificationError     (oid4vci.mdoc) with an ``MdocReason``
    │       └── StatusListVerificationError  (oid4vci.status) with a ``StatusListReason``
    ├── ProtocolError                an OAuth / OID4VCI error response (``error``,
    │   │                            ``error_description``, status, ``c_nonce``, ``DPoP-Nonce``)
    │   ├── AuthorizationError       authorization / PAR endpoint
    │   │   └── UnredirectableError  (oid4vci.issuer.authorization) answered on a page, not by redirect
    │   ├── TokenError               token endpoint
    │   ├── CredentialRequestError   credential / deferred / notification / nonce endpoints
    │   │   └── ResourceServerError  (oid4vci.issuer.responses) sent as a WWW-Authenticate challenge
    │   ├── DpopError                ``invalid_dpop_proof`` and ``use_dpop_nonce``
    │   └── StaleAttestationError    ``use_fresh_attestation`` again after the wallet sent a fresh
    │                                wallet attestation (PAR or token endpoint)
    ├── StoreError                   the issuer's Store refused an operation
    │   ├── StoreFullError
    │   │   └── QuotaExceededError   one purpose's entries are at their quota (the rest have room)
    │   └── StoreUnavailableError    the store did not answer in time or cannot be reached (Redis down)
    └── TransportError               the request did not complete
        ├── TransportTimeout
        ├── ConnectError
        ├── ResponseTooLarge
        └── RedirectRefused

Not errors, and never raised to a caller of this library: ``DeferIssuance``
(:mod:`oid4vci.issuer.config`), which an issuer application's claims source raises to defer
issuance, the converter's internal ``WireTypeError`` / ``FieldInvariantError``
(:mod:`oid4vci._wire`), which :func:`oid4vci._wire.structure` turns into
:class:`WireFormatError`, and the wallet flow's internal ``IssuerKeysNeeded``
(:mod:`oid4vci.wallet.received`), which stops a verification until the flow has fetched the
issuer's keys.

Whose fault: :class:`UsageError` is the calling program's (fix the call); a
:class:`ValidationError` or :class:`ProtocolError` is the other party's (an issuer, an
authorization server, a browser redirect, a document); a :class:`TransportError` is the
network's. :class:`UsageError` is also a :class:`ValueError`, so code that caught
``ValueError`` for a bad argument keeps working.

On the wallet side a :class:`ProtocolError` is what the server answered; on the issuer side the
helpers raise it and :func:`oid4vci.issuer.create_error_response` turns it into the exact response.

Messages and reprs never contain secrets: access tokens, codes, tx_codes, private keys and
nonces are never interpolated into them.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ArgumentTypeError",
    "AuthorizationError",
    "CallbackError",
    "ConnectError",
    "CredentialRequestError",
    "CredentialVerificationError",
    "DpopError",
    "EncryptionError",
    "ErrorCode",
    "InsecureUrlError",
    "JoseError",
    "MetadataError",
    "MissingDependencyError",
    "OfferError",
    "Oid4vciError",
    "ProtocolError",
    "QuotaExceededError",
    "RedirectRefused",
    "ResponseTooLarge",
    "SignedMetadataError",
    "StaleAttestationError",
    "StateError",
    "StoreError",
    "StoreFullError",
    "StoreUnavailableError",
    "TokenError",
    "TransportError",
    "TransportTimeout",
    "UnknownTransactionError",
    "UsageError",
    "ValidationError",
    "WireFormatError",
]


class ErrorCode:
    """Error codes of RFC 6749, 6750, 9126, 9396, 9449 and OID4VCI Draft 13 … 1.0."""

    # RFC 6749 §4.1.2.1 / §5.2
    INVALID_REQUEST: Final = "invalid_request"
    INVALID_CLIENT: Final = "invalid_client"
    INVALID_GRANT: Final = "invalid_grant"
    UNAUTHORIZED_CLIENT: Final = "unauthorized_client"
    UNSUPPORTED_GRANT_TYPE: Final = "unsupported_grant_type"
    INVALID_SCOPE: Final = "invalid_scope"
    ACCESS_DENIED: Final = "access_denied"
    UNSUPPORTED_RESPONSE_TYPE: Final = "unsupported_response_type"
    SERVER_ERROR: Final = "server_error"
    TEMPORARILY_UNAVAILABLE: Final = "temporarily_unavailable"
    # RFC 6750 §3.1
    INVALID_TOKEN: Final = "invalid_token"
    INSUFFICIENT_SCOPE: Final = "insufficient_scope"
    # RFC 9396
    INVALID_AUTHORIZATION_DETAILS: Final = "invalid_authorization_details"
    # RFC 9126 (PAR) uses the token-endpoint set; RFC 9101 adds this one
    INVALID_REQUEST_URI: Final = "invalid_request_uri"
    # RFC 9449
    INVALID_DPOP_PROOF: Final = "invalid_dpop_proof"
    USE_DPOP_NONCE: Final = "use_dpop_nonce"
    # OID4VCI token endpoint, Draft 13 only (pre-authorized polling)
    AUTHORIZATION_PENDING: Final = "authorization_pending"
    SLOW_DOWN: Final = "slow_down"
    # OID4VCI credential endpoint
    INVALID_CREDENTIAL_REQUEST: Final = "invalid_credential_request"
    UNSUPPORTED_CREDENTIAL_TYPE: Final = "unsupported_credential_type"  # D13–D15
    UNSUPPORTED_CREDENTIAL_FORMAT: Final = "unsupported_credential_format"  # D13–D15
    UNKNOWN_CREDENTIAL_CONFIGURATION: Final = "unknown_credential_configuration"  # 1.0
    UNKNOWN_CREDENTIAL_IDENTIFIER: Final = "unknown_credential_identifier"  # 1.0
    INVALID_PROOF: Final = "invalid_proof"
    INVALID_NONCE: Final = "invalid_nonce"  # D15+
    INVALID_ENCRYPTION_PARAMETERS: Final = "invalid_encryption_parameters"
    CREDENTIAL_REQUEST_DENIED: Final = "credential_request_denied"  # D14+
    # deferred endpoint
    INVALID_TRANSACTION_ID: Final = "invalid_transaction_id"
    ISSUANCE_PENDING: Final = "issuance_pending"  # D13–D15
    # notification endpoint
    INVALID_NOTIFICATION_ID: Final = "invalid_notification_id"
    INVALID_NOTIFICATION_REQUEST: Final = "invalid_notification_request"


class Oid4vciError(Exception):
    """Base of every exception raised by this library."""


class UsageError(Oid4vciError, ValueError):
    """The calling program misused the library: a bad argument, or a step in the wrong state."""


class ArgumentTypeError(UsageError, TypeError):
    """An argument of the wrong type; the message names the parameter (also a ``TypeError``)."""


class StateError(UsageError):
    """A flow step taken in a state that does not allow it (e.g. ``claim`` before ``authorize``,
    ``receive_response`` with no request in flight)."""


class UnknownTransactionError(UsageError, KeyError):
    """An issuer application named a deferred transaction the store does not hold (unknown,
    expired or already delivered); also a ``KeyError``. The id is never in the message."""

    def __str__(self) -> str:
        # KeyError quotes its argument; this error reads as a sentence.
        return str(self.args[0]) if self.args else "unknown deferred transaction"


class MissingDependencyError(Oid4vciError, ImportError):
    """An optional extra is not installed; the message names it (``pip install 'oid4vci[x]'``)."""


class ValidationError(Oid4vciError, ValueError):
    """What another party sent does not satisfy the protocol's rules."""


class WireFormatError(ValidationError):
    """A wire document does not have the expected shape.

    ``path`` names the offending member in wire spelling, e.g. ``grants.urn:…:pre-authorized_code.tx_code.length``.
    """

    def __init__(self, message: str, *, path: str = "") -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)


class JoseError(ValidationError):
    """A JOSE object (JWS, JWK, JWT claims) is malformed, not allowed or does not verify."""


class EncryptionError(JoseError):
    """A JWE is malformed, uses an algorithm not allowed, does not decrypt, or an answer came
    back unencrypted after encryption was asked for (OID4VCI 1.0 §10)."""


class InsecureUrlError(ValidationError):
    """A URL uses a scheme or host that policy does not allow (e.g. http to a non-loopback host)."""


class MetadataError(ValidationError):
    """Issuer or authorization-server metadata cannot be used for the requested flow."""


class SignedMetadataError(MetadataError):
    """Signed Credential Issuer metadata (OID4VCI 1.0 §12.2.3; Draft 13–15 ``signed_metadata``)
    does not verify, or the wallet's policy requires it and the issuer has none."""


class OfferError(ValidationError):
    """A credential offer is malformed or cannot be accepted."""


class CallbackError(ValidationError):
    """The authorization response (the redirect to the wallet's ``redirect_uri``) does not
    match the flow: a missing or different ``state``, a wrong or missing RFC 9207 ``iss``, a
    repeated parameter, or neither ``code`` nor ``error``."""


class CredentialVerificationError(ValidationError):
    """A credential received from an issuer failed verification; nothing was stored."""


class ProtocolError(Oid4vciError):
    """An OAuth 2.0 / OID4VCI error response.

    Attributes mirror the wire: ``error`` (the code), ``error_description``, ``status`` (HTTP
    status), ``c_nonce`` / ``c_nonce_expires_in`` (Draft 13/14 error bodies), ``dpop_nonce``
    (the ``DPoP-Nonce`` header), ``interval`` (``issuance_pending``/``slow_down``) and, on the
    issuer side, ``www_authenticate_scheme`` when the error must be sent as a
    ``WWW-Authenticate`` challenge (resource server errors). On the wallet side
    ``request_line`` is the request whose answer it was (``"POST https://…/token"``, queries
    redacted).
    """

    default_status = 400
    request_line: str | None = None

    def __init__(
        self,
        error: str,
        error_description: str | None = None,
        *,
        status: int | None = None,
        c_nonce: str | None = None,
        c_nonce_expires_in: int | None = None,
        dpop_nonce: str | None = None,
        interval: int | None = None,
        www_authenticate_scheme: str | None = None,
    ) -> None:
        self.error = error
        self.error_description = error_description
        self.status = status if status is not None else self.default_status
        self.c_nonce = c_nonce
        self.c_nonce_expires_in = c_nonce_expires_in
        self.dpop_nonce = dpop_nonce
        self.interval = interval
        self.www_authenticate_scheme = www_authenticate_scheme
        text = error if not error_description else f"{error}: {error_description}"
        super().__init__(text)

    def __repr__(self) -> str:
        line = f", request={self.request_line!r}" if self.request_line else ""
        return f"{type(self).__name__}(error={self.error!r}, status={self.status}{line})"


class AuthorizationError(ProtocolError):
    """An error from the authorization or pushed authorization request endpoint."""


class TokenError(ProtocolError):
    """An error from the token endpoint (RFC 6749 §5.2 and OID4VCI 1.0 §6.3)."""


class CredentialRequestError(ProtocolError):
    """An error from the credential, deferred, notification or nonce endpoint."""


class DpopError(ProtocolError):
    """``invalid_dpop_proof`` or ``use_dpop_nonce`` (RFC 9449)."""


class StaleAttestationError(ProtocolError):
    """The authorization server still finds the wallet attestation too old
    (``use_fresh_attestation``, introduced by draft-ietf-oauth-attestation-based-client-auth-07)
    after the wallet asked its attestation provider for a fresh one and sent the request
    again: the provider's attestations do not meet the server's age policy."""


class StoreError(Oid4vciError):
    """The issuer's state store could not complete an operation."""


class StoreFullError(StoreError):
    """The store is at capacity and refuses rather than evicting live entries (retry later)."""


class QuotaExceededError(StoreFullError):
    """One purpose (offer template fetches, PAR, authorization requests) used up its quota.

    Raised by :func:`oid4vci.issuer.flood_limits.claim_room` so that a flood of one kind of
    entry cannot take the room other entries need; ``purpose`` names the quota.
    """

    def __init__(self, purpose: str) -> None:
        self.purpose = purpose
        super().__init__(f"the store's quota for {purpose} is used up; retry later")


class StoreUnavailableError(StoreError):
    """The store could not be reached or did not answer within its timeout (retry later).

    Whether the operation took effect is unknown: a single-use value may have been consumed,
    so callers answer "try again later" and never assume the operation did not happen.
    """


class TransportError(Oid4vciError):
    """The HTTP exchange did not complete; ``request_line`` is the request it failed on
    (``"POST https://…/token"``, queries redacted) when the wallet sent it."""

    request_line: str | None = None


class TransportTimeout(TransportError):
    """Connecting or reading took longer than the configured timeout."""


class ConnectError(TransportError):
    """The server could not be reached."""


class ResponseTooLarge(TransportError):
    """The response body exceeded the configured size cap."""


class RedirectRefused(TransportError):
    """The server answered with a redirect on an API call; redirects are not followed.

    ``status`` is the redirect's status and ``location`` its ``Location`` header (kept out of
    the message: a URL may carry secrets), so a caller that may follow it (a Status List
    fetch, draft-ietf-oauth-status-list-20 §8.1) can.
    """

    def __init__(self, message: str, *, status: int | None = None, location: str | None = None):
        super().__init__(message)
        self.status = status
        self.location = location
