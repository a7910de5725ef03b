"""What an issuer deployment is: credential configurations, hooks, policies, TTLs and the store.

* :class:`CredentialConfigurationSpec` — one credential the issuer offers.
* :class:`ClaimsSource` — the hook that returns the claims of a subject for a configuration.
  It may raise :class:`~oid4vci.errors.CredentialRequestError` (``credential_request_denied``)
  or :class:`DeferIssuance` to issue later through the deferred endpoint.
* :class:`UserAuthenticator` — the hook the authorization endpoint calls to log the user in;
  it answers :class:`Authenticated`, :class:`Denied` or :class:`Respond` (e.g. a login page).
* :class:`PendingLogin` — a verified authorization request awaiting the user's login.
* :class:`ExternalAuthorizationServer` — a separate AS whose RFC 9068 JWT access tokens the
  issuer accepts (the built-in token, PAR and authorization endpoints are then off).
* :class:`ClientPolicy` — registered clients and the rule for unregistered public clients.
* :class:`AttestationSettings` — wallet attestation (client authentication) and key
  attestation trust and policy (HAIP 1.0 §4.4.1, §4.5.1).
* :class:`RefreshTokenSettings` — refresh tokens (RFC 6749 §6), bound to the DPoP key
  (RFC 9449 §5) and the wallet attestation's instance key.
* :class:`SignedMetadataSettings` — signed Credential Issuer metadata (OID4VCI 1.0 §12.2.3).
* :class:`IssuerConfig` — everything above plus TTLs, DPoP policy and the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

import attrs
from cryptography import x509
from cryptography.x509.oid import NameOID

from oid4vci._wire import store_record
from oid4vci.dpop import DEFAULT_DPOP_ALGORITHMS
from oid4vci.errors import UsageError, ValidationError
from oid4vci.http import HttpRequest, HttpResponse, Transport
from oid4vci.issuer.encryption_settings import EncryptionSettings
from oid4vci.issuer.flood_settings import FloodLimits
from oid4vci.issuer.refusals import Refusals
from oid4vci.issuer.stateless_nonce import NonceKeys, default_nonce_keys
from oid4vci.issuer.store import Store, scoped_store
from oid4vci.jose import Signer, jwk_thumbprint
from oid4vci.status import StatusListTokenCache
from oid4vci.urls import is_loopback_url, require_secure_url
from oid4vci.versions import SpecVersion
from oid4vci.x509 import (
    CertificateError,
    certificate_b64,
    is_self_signed,
    leaf_public_jwk,
    load_trust_anchors,
)
from oid4vci.x509 import _public_jwk_of as public_jwk_of

__all__ = [
    "COSE_ALGORITHMS",
    "DEFAULT_DPOP_ALGORITHMS",
    "DEFAULT_PROOF_ALGORITHMS",
    "ENDPOINT_PATHS",
    "PROOF_TYPES",
    "AttestationSettings",
    "Authenticated",
    "AuthenticationResult",
    "ClaimsSource",
    "ClientPolicy",
    "CredentialConfigurationSpec",
    "DeferIssuance",
    "Denied",
    "DocumentSigner",
    "ExternalAuthorizationServer",
    "IssuerConfig",
    "PendingLogin",
    "RefreshTokenSettings",
    "Respond",
    "SignedMetadataSettings",
    "StatusListSettings",
    "UserAuthenticator",
]

#: Key proof algorithms a configuration accepts unless it says otherwise (no ``none``, no MAC).
DEFAULT_PROOF_ALGORITHMS: tuple[str, ...] = ("ES256", "ES384", "EdDSA")
#: Path of each endpoint below the credential issuer identifier (``offer`` takes an id).
ENDPOINT_PATHS: Mapping[str, str] = {
    "credential": "/credential",
    "nonce": "/nonce",
    "deferred_credential": "/deferred",
    "notification": "/notification",
    "token": "/token",
    "authorize": "/authorize",
    "par": "/par",
    "challenge": "/challenge",
    "offer": "/offers/",
}

_ONE_YEAR = 365 * 24 * 3600
#: The key proof types a configuration may accept (OID4VCI 1.0 Appendix F.1, F.3).
PROOF_TYPES: tuple[str, ...] = ("jwt", "attestation")


def _mapping_tuple(value: Iterable[Mapping[str, Any]]) -> tuple[Mapping[str, Any], ...]:
    return tuple(dict(item) for item in value)


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    """A tuple of strings; a lone string is one item, not its characters."""
    if isinstance(value, str):
        return (value,)
    return tuple(value)


#: The SD-JWT VC format identifiers (``vc+sd-jwt`` is the Draft 13/14 name).
_SD_JWT_FORMATS = frozenset({"dc+sd-jwt", "vc+sd-jwt"})
#: The ISO mdoc format identifier (OID4VCI 1.0 Appendix A.2).
_MSO_MDOC = "mso_mdoc"
#: The ``format`` values a :class:`CredentialConfigurationSpec` may have.
_ISSUABLE_FORMATS = _SD_JWT_FORMATS | {"jwt_vc_json", _MSO_MDOC}
#: COSE algorithm identifiers (RFC 9053 §2.1, §2.2) of the JOSE names an mdoc may be signed with.
COSE_ALGORITHMS: Mapping[str, int] = {"ES256": -7, "ES384": -35, "ES512": -36, "EdDSA": -8}


def _levels_required(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """Converter for ``key_attestations_required``: ``None``, ``{}`` or non-empty level lists."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise UsageError("key_attestations_required must be a mapping")
    out: dict[str, Any] = {}
    for name, levels in value.items():
        if name not in ("key_storage", "user_authentication"):
            raise UsageError("key_attestations_required takes key_storage, user_authentication")
        items = [levels] if isinstance(levels, str) else list(levels)
        if not items or not all(isinstance(item, str) and item for item in items):
            raise UsageError(f"key_attestations_required.{name} must be a non-empty list")
        out[name] = items
    return out


@attrs.frozen(kw_only=True)
class CredentialConfigurationSpec:
    """One credential configuration the issuer offers (SD-JWT VC by default).

    ``format`` is ``dc+sd-jwt`` (the default; ``vc+sd-jwt`` is accepted as its Draft 13/14
    name, and each version's metadata and ``typ`` use that version's name), ``jwt_vc_json``
    (a W3C VCDM 1.1 credential as a JWT, see :mod:`oid4vci.jwtvc`) or ``mso_mdoc`` (an ISO
    mdoc, see :mod:`oid4vci.mdoc`). SD-JWT VC needs ``vct``; ``jwt_vc_json`` needs
    ``credential_definition_types`` (the ``vc.type`` values, with ``VerifiableCredential``,
    e.g. ``("VerifiableCredential", "UniversityDegreeCredential")``) and takes no ``vct``;
    ``mso_mdoc`` needs ``doctype`` (e.g. ``org.iso.18013.5.1.mDL``), takes neither, and its
    claim paths are ``[namespace, element identifier]`` (OID4VCI 1.0 Appendix A.2.2); its
    claims source returns ``{namespace: {element: value}}`` and it needs
    :attr:`IssuerConfig.document_signer`.

    ``claims`` uses the Draft 15+ claims-description form
    ``{"path": [...], "display": [...], "mandatory": bool}``; metadata writers adapt it to older
    shapes. For ``jwt_vc_json`` a path is relative to ``credentialSubject`` unless it starts
    with ``"credentialSubject"`` (the spec's own spelling); the metadata always writes the full
    path. ``credential_signing_alg`` is ``None`` to use the issuer signer's algorithm.
    ``lifetime`` is the credential validity in seconds.

    ``key_attestations_required`` (OID4VCI 1.0 §12.2.4) demands a key attestation
    (OID4VCI 1.0 Appendix D) for every bound key: ``{}`` any attestation, or ``key_storage`` /
    ``user_authentication`` lists of accepted levels (e.g. ``["iso_18045_high"]``); it needs
    :attr:`IssuerConfig.attestation` with key attestation trust anchors. ``proof_types`` are the
    accepted proof types: ``jwt`` (with the attestation in its ``key_attestation`` header when
    required) and/or ``attestation`` (OID4VCI 1.0 Appendix F.3, which needs
    ``key_attestations_required``).
    """

    id: str = attrs.field()
    vct: str | None = None
    doctype: str | None = None
    scope: str | None = None
    format: str = attrs.field(default="dc+sd-jwt")
    credential_definition_types: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    display: tuple[Mapping[str, Any], ...] = attrs.field(default=(), converter=_mapping_tuple)
    claims: tuple[Mapping[str, Any], ...] = attrs.field(default=(), converter=_mapping_tuple)
    proof_signing_alg_values_supported: tuple[str, ...] = attrs.field(
        default=DEFAULT_PROOF_ALGORITHMS, converter=_str_tuple
    )
    credential_signing_alg: str | None = None
    lifetime: int = attrs.field(default=_ONE_YEAR)
    key_attestations_required: Mapping[str, Any] | None = attrs.field(
        default=None, converter=_levels_required
    )
    proof_types: tuple[str, ...] = attrs.field(default=("jwt",), converter=_str_tuple)

    @id.validator
    def _check_id(self, _: attrs.Attribute[str], value: str) -> None:
        if not value or not isinstance(value, str):
            raise UsageError("credential configuration id must be a non-empty string")

    @lifetime.validator
    def _check_lifetime(self, _: attrs.Attribute[int], value: int) -> None:
        if value <= 0:
            raise UsageError("lifetime must be positive")

    @proof_types.validator
    def _check_proof_types(
        self, _: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
    ) -> None:
        if not value or any(t not in PROOF_TYPES for t in value) or len(set(value)) != len(value):
            raise UsageError("proof_types must be distinct values of 'jwt', 'attestation'")
        if "attestation" in value and self.key_attestations_required is None:
            raise UsageError("the attestation proof type needs key_attestations_required")

    @format.validator
    def _check_format(self, _: attrs.Attribute[str], value: str) -> None:
        if value not in _ISSUABLE_FORMATS:
            raise UsageError("format must be 'dc+sd-jwt', 'vc+sd-jwt', 'jwt_vc_json' or 'mso_mdoc'")

    def __attrs_post_init__(self) -> None:
        if self.format == _MSO_MDOC:
            self._check_mdoc()
            return
        if self.doctype is not None:
            raise UsageError("doctype is only for mso_mdoc")
        if self.format in _SD_JWT_FORMATS:
            if not isinstance(self.vct, str) or not self.vct:
                raise UsageError("an SD-JWT VC configuration needs a non-empty vct")
            if self.credential_definition_types:
                raise UsageError("credential_definition_types is only for jwt_vc_json")
            return
        if self.vct is not None:
            raise UsageError("a jwt_vc_json configuration has no vct")
        types = self.credential_definition_types
        if not all(isinstance(t, str) and t for t in types) or len(set(types)) != len(types):
            raise UsageError("credential_definition_types must be distinct non-empty strings")
        if "VerifiableCredential" not in types:
            raise UsageError(
                "a jwt_vc_json configuration needs credential_definition_types "
                "including 'VerifiableCredential'"
            )

    def _check_mdoc(self) -> None:
        if not isinstance(self.doctype, str) or not self.doctype:
            raise UsageError("an mso_mdoc configuration needs a non-empty doctype")
        if self.vct is not None or self.credential_definition_types:
            raise UsageError("an mso_mdoc configuration has no vct or credential_definition_types")
        for claim in self.claims:
            path = claim.get("path")
            if (
                not isinstance(path, list | tuple)
                or len(path) != 2
                or not all(isinstance(p, str) and p for p in path)
            ):
                raise UsageError("mso_mdoc claim paths must be [namespace, element identifier]")
        if self.credential_signing_alg is not None and (
            self.credential_signing_alg not in COSE_ALGORITHMS
        ):
            raise UsageError(
                "an mso_mdoc credential_signing_alg must be ES256, ES384, ES512 or EdDSA"
            )

    @property
    def is_sd_jwt_vc(self) -> bool:
        """True for ``dc+sd-jwt`` / ``vc+sd-jwt`` configurations."""
        return self.format in _SD_JWT_FORMATS

    @property
    def is_mdoc(self) -> bool:
        """True for ``mso_mdoc`` configurations."""
        return self.format == _MSO_MDOC


class DeferIssuance(Exception):
    """Raised by a :class:`ClaimsSource` to issue later through the deferred endpoint.

    ``interval`` is the number of seconds the wallet should wait before polling.
    """

    def __init__(self, interval: int = 5) -> None:
        self.interval = interval
        super().__init__("issuance deferred")


@runtime_checkable
class ClaimsSource(Protocol):
    """Returns the claims of ``subject`` for ``configuration_id``.

    Values wrapped with :func:`oid4vci.sdjwt.sd` are selectively disclosable. May raise
    ``CredentialRequestError("credential_request_denied")`` or :class:`DeferIssuance`.
    """

    async def __call__(self, subject: str, configuration_id: str) -> Mapping[str, Any]:
        """The claims to put in the credential."""
        ...


@store_record
@attrs.frozen(kw_only=True, repr=False)
class PendingLogin:
    """A verified authorization request waiting for the user to log in (RFC 6749 §4.1.1).

    What the :class:`UserAuthenticator` hook is shown; kept in the store (through the
    converter in :mod:`oid4vci._wire`) under ``authz_pending:<handle>``.

    ``handle`` identifies it in the store so that a login form posted back to the
    authorization endpoint (as parameter ``handle``) continues it. ``issuer_state_data`` is
    what the auth-code offer stored for ``issuer_state`` (e.g. a subject hint), if any.
    """

    handle: str
    client_id: str
    redirect_uri: str
    state: str | None = None
    scope: str | None = None
    configuration_ids: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    authorization_details: tuple[Mapping[str, Any], ...] | None = None
    issuer_state: str | None = None
    issuer_state_data: Mapping[str, Any] | None = None
    code_challenge: str
    code_challenge_method: str = "S256"
    dpop_jkt: str | None = None
    expires_at: float = 0.0
    #: The wallet attestation instance key (RFC 7638 thumbprint) the request was pushed with
    #: at PAR; the code is bound to it (``None``: not attested).
    attested_jkt: str | None = None

    def __repr__(self) -> str:
        return (
            f"PendingLogin(client_id={self.client_id!r}, "
            f"configuration_ids={self.configuration_ids!r})"
        )


@attrs.frozen(kw_only=True)
class Authenticated:
    """The user logged in as ``subject`` and approved the request.

    ``configuration_ids`` optionally narrows what the user approved (``None`` = everything asked).
    """

    subject: str
    configuration_ids: tuple[str, ...] | None = None


@attrs.frozen(kw_only=True)
class Denied:
    """The user (or policy) refused; the client receives ``access_denied``."""

    description: str | None = None


@attrs.frozen(kw_only=True)
class Respond:
    """Send ``response`` to the browser as is (e.g. a login page posting back with ``handle``)."""

    response: HttpResponse


AuthenticationResult = Authenticated | Denied | Respond


@runtime_checkable
class UserAuthenticator(Protocol):
    """The authorization endpoint's hook to authenticate the user.

    Called with the browser's request (the first GET, and every later request carrying the
    pending authorization's ``handle``) and the validated :class:`PendingLogin`.
    """

    async def __call__(self, request: HttpRequest, pending: PendingLogin) -> AuthenticationResult:
        """Answer :class:`Authenticated`, :class:`Denied` or :class:`Respond`."""
        ...


@attrs.frozen(kw_only=True)
class ExternalAuthorizationServer:
    """An authorization server, other than the issuer, whose JWT access tokens are accepted.

    Tokens are RFC 9068 JWTs signed by one of ``jwks`` (public JWKs) with one of
    ``algorithms``; their ``aud`` must contain one of ``audiences`` (empty = the credential
    issuer identifier).
    """

    issuer: str
    jwks: tuple[Mapping[str, Any], ...] = attrs.field(converter=_mapping_tuple)
    audiences: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    algorithms: tuple[str, ...] = attrs.field(
        default=("ES256", "ES384", "EdDSA", "RS256", "PS256"), converter=_str_tuple
    )
    leeway: float = 30.0


def _clients(value: Mapping[str, Iterable[str]]) -> Mapping[str, tuple[str, ...]]:
    return {client: _str_tuple(uris) for client, uris in value.items()}


@attrs.frozen(kw_only=True)
class ClientPolicy:
    """Which clients may use the authorization code flow, and with which redirect URIs.

    ``registered`` maps ``client_id`` to its exact redirect URIs. Unregistered public clients
    are accepted when ``allow_unregistered_public_clients`` is true, provided their
    ``redirect_uri`` is https, loopback http (RFC 8252 §7.3) or, when ``allow_custom_schemes``,
    a private-use URI scheme containing a dot (RFC 8252 §7.1).
    """

    registered: Mapping[str, tuple[str, ...]] = attrs.field(factory=dict, converter=_clients)
    allow_unregistered_public_clients: bool = True
    allow_custom_schemes: bool = False

    def redirect_uri_allowed(self, client_id: str, redirect_uri: str) -> bool:
        """True when ``client_id`` may receive codes at ``redirect_uri``."""
        if not client_id or not redirect_uri:
            return False
        try:
            parts = urlsplit(redirect_uri)
        except ValueError:
            return False
        if parts.fragment or not parts.scheme:
            return False
        known = self.registered.get(client_id)
        if known is not None:
            if redirect_uri in known:
                return True
            # RFC 8252 §7.3: any port on a loopback redirect URI.
            if parts.scheme == "http" and is_loopback_url(redirect_uri):
                return any(_same_loopback(redirect_uri, uri) for uri in known)
            return False
        if not self.allow_unregistered_public_clients:
            return False
        if parts.scheme in ("http", "https"):
            try:
                require_secure_url(redirect_uri, allow_insecure_loopback=True, what="redirect_uri")
            except ValueError:
                return False
            return True
        return self.allow_custom_schemes and "." in parts.scheme


def _same_loopback(actual: str, registered: str) -> bool:
    a, r = urlsplit(actual), urlsplit(registered)
    return (
        r.scheme == "http"
        and is_loopback_url(registered)
        and (a.hostname, a.path, a.query) == (r.hostname, r.path, r.query)
    )


def _configurations(
    value: Mapping[str, CredentialConfigurationSpec] | Iterable[CredentialConfigurationSpec],
) -> Mapping[str, CredentialConfigurationSpec]:
    specs = value.values() if isinstance(value, Mapping) else value
    out: dict[str, CredentialConfigurationSpec] = {}
    for spec in specs:
        if spec.id in out:
            raise UsageError("duplicate credential configuration id")
        out[spec.id] = spec
    if isinstance(value, Mapping) and any(key != spec.id for key, spec in value.items()):
        raise UsageError("credential_configurations keys must equal each spec's id")
    return out


def _issuer_url(value: str) -> str:
    require_secure_url(value, allow_insecure_loopback=True, what="credential_issuer")
    parts = urlsplit(value)
    if parts.query:
        raise UsageError("credential_issuer must not have a query")
    return value


def _positive(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise UsageError(f"{attribute.name} must be a positive integer")


@attrs.frozen(kw_only=True)
class StatusListSettings:
    """How the issuer publishes Token Status Lists (draft-ietf-oauth-status-list-20).

    ``bits`` per entry (1, 2, 4 or 8; the default 2 holds valid, invalid and suspended) and
    ``size`` entries per list (at least 2^17 by default: a big list hides who is checked).
    Lists are served at ``<credential issuer><path><list id>``; a Status List Token lives
    ``token_lifetime`` seconds (its ``exp``) and tells consumers to cache it ``ttl`` seconds
    (its ``ttl`` and the ``Cache-Control`` max-age). A list's store entries live
    ``list_lifetime`` seconds from its creation; it takes new credentials only while their
    whole ``lifetime`` fits (so it must be longer than every configuration's ``lifetime``),
    and only until ``fill_limit`` of its entries are used or ``max_tries`` random draws in a
    row hit used entries: then a new list is started. ``signer`` signs the tokens (default:
    the credential signer; its key is published at ``/.well-known/jwt-vc-issuer`` either way).
    """

    bits: int = attrs.field(default=2)
    size: int = attrs.field(default=1 << 17, validator=_positive)
    token_lifetime: int = attrs.field(default=24 * 3600, validator=_positive)
    ttl: int = attrs.field(default=3600, validator=_positive)
    list_lifetime: int = attrs.field(default=2 * _ONE_YEAR, validator=_positive)
    fill_limit: float = 0.5
    max_tries: int = attrs.field(default=16, validator=_positive)
    path: str = "/status-lists/"
    signer: Signer | None = attrs.field(default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.bits not in (1, 2, 4, 8):
            raise UsageError("bits must be 1, 2, 4 or 8")
        if self.size % (8 // self.bits):
            raise UsageError("size * bits must be a multiple of 8")
        if not 0 < self.fill_limit <= 1:
            raise UsageError("fill_limit must be in (0, 1]")
        if self.ttl >= self.token_lifetime:
            raise UsageError("ttl must be shorter than token_lifetime")
        if not self.path.startswith("/") or not self.path.endswith("/") or "?" in self.path:
            raise UsageError("path must start and end with '/'")


@attrs.frozen(kw_only=True)
class AttestationSettings:
    """Wallet attestation (client authentication) and key attestation policy.

    Wallet attestation is OAuth 2.0 Attestation-Based Client Authentication
    (draft-ietf-oauth-attestation-based-client-auth-07, OID4VCI 1.0 Appendix E, HAIP 1.0
    §4.4.1): the PAR and token endpoints verify ``OAuth-Client-Attestation`` +
    ``OAuth-Client-Attestation-PoP`` headers whenever they are sent, and with
    ``require_client_attestation`` refuse requests without them (``invalid_client``); the AS
    metadata then lists only ``attest_jwt_client_auth``. ``client_trust_anchors`` are the
    wallet providers' roots (PEM, DER or certificates); ``key_trust_anchors`` the roots of key
    attestation signers (OID4VCI 1.0 Appendix D; default: the same as ``client_trust_anchors``).

    ``algorithms`` are accepted for attestations, PoPs and key attestations (HAIP 1.0 §7:
    ES256 at least); ``clock_skew`` is the leeway for ``exp`` / ``iat``; ``pop_max_age`` the
    oldest PoP ``iat`` accepted (its ``jti`` is remembered that long, plus ``clock_skew``).
    ``require_challenge`` demands a server challenge in every PoP
    (draft-ietf-oauth-attestation-based-client-auth-07 §8): handed out by
    the ``challenge_endpoint`` (advertised in the AS metadata) and in the
    ``OAuth-Client-Attestation-Challenge`` header of a ``use_attestation_challenge`` error;
    challenges are stateless (sealed with the nonce keys) and live ``challenge_ttl`` seconds.
    ``max_attestation_age`` (seconds, ``None``: no limit) refuses a Client Attestation whose
    ``iat`` is older, or that has no ``iat``, with ``use_fresh_attestation`` (400; introduced by
    draft-ietf-oauth-attestation-based-client-auth-07): the wallet then fetches a new one
    from its provider and sends the request again.

    ``dpop_combined`` also accepts DPoP-combined mode (draft-ietf-oauth-attestation-based-client-auth-10
    §5.2; -09+): a request with the attestation header, no PoP header and a ``DPoP`` proof
    signed by the attestation's ``cnf`` key; the AS metadata then lists
    ``attest_jwt_client_auth_dpop`` next to ``attest_jwt_client_auth``, which stays accepted
    (OID4VCI 1.0 and HAIP 1.0 pin draft -07). Not with ``require_challenge`` (the challenge
    would travel as the DPoP ``nonce``, which this issuer uses for its own DPoP nonces).

    ``status`` is the policy for the ``status`` claim of wallet attestations (OID4VCI 1.0
    Appendix E) and key attestations (OID4VCI 1.0 Appendix D.1), a Token Status List reference
    (draft-ietf-oauth-status-list-14, pinned by HAIP 1.0 §9.4): ``"check"`` (default) checks it
    when present, ``"require"`` also refuses attestations without one, ``"off"`` ignores it.
    A status that is not VALID, or that cannot be checked (no ``status_transport``, list
    unreachable, bad signature, untrusted signer), refuses the attestation under both
    ``"check"`` and ``"require"`` (see :mod:`oid4vci.issuer.attestation_status`).
    ``status_transport`` fetches the lists (the issuer's only outgoing I/O);
    ``status_cache`` keeps verified Status List Tokens for their ``ttl`` and never past their
    ``exp`` (build it with the issuer's ``clock``); ``status_allow_insecure_loopback`` lets list URIs be http on a loopback host
    (tests, local demos).
    """

    client_trust_anchors: tuple[x509.Certificate, ...] = attrs.field(
        default=(), converter=load_trust_anchors
    )
    key_trust_anchors: tuple[x509.Certificate, ...] = attrs.field(
        default=(), converter=load_trust_anchors
    )
    require_client_attestation: bool = False
    algorithms: tuple[str, ...] = attrs.field(
        default=("ES256", "ES384", "EdDSA"), converter=_str_tuple
    )
    clock_skew: float = 60.0
    pop_max_age: float = 300.0
    require_challenge: bool = False
    challenge_ttl: int = 300
    max_attestation_age: float | None = None
    dpop_combined: bool = False
    status: Literal["check", "require", "off"] = "check"
    status_transport: Transport | None = attrs.field(default=None, repr=False, eq=False)
    status_cache: StatusListTokenCache = attrs.field(
        factory=StatusListTokenCache, repr=False, eq=False
    )
    status_allow_insecure_loopback: bool = False

    def __attrs_post_init__(self) -> None:
        if self.dpop_combined and (self.require_challenge or not self.client_trust_anchors):
            raise UsageError("dpop_combined needs client_trust_anchors and no require_challenge")
        if self.status not in ("check", "require", "off"):
            raise UsageError("status must be 'check', 'require' or 'off'")
        if self.status_transport is not None and not callable(
            getattr(self.status_transport, "send", None)
        ):
            raise UsageError("status_transport must be a Transport (an object with send)")
        if self.max_attestation_age is not None and not self.max_attestation_age > 0:
            raise UsageError("max_attestation_age must be a positive number of seconds")
        if self.require_challenge and not self.client_trust_anchors:
            raise UsageError("require_challenge needs client_trust_anchors")
        if not 0 < self.challenge_ttl <= 3600:
            raise UsageError("challenge_ttl must be in (0, 3600]")
        if self.require_client_attestation and not self.client_trust_anchors:
            raise UsageError("require_client_attestation needs client_trust_anchors")
        if not 0 <= self.clock_skew <= 600 or not 0 < self.pop_max_age <= 3600:
            raise UsageError("clock_skew must be in [0, 600] and pop_max_age in (0, 3600]")
        if not self.algorithms or any(
            a in ("none", "HS256", "HS384", "HS512") for a in self.algorithms
        ):
            raise UsageError("algorithms must be asymmetric JWS algorithms")

    @property
    def key_anchors(self) -> tuple[x509.Certificate, ...]:
        """The trust anchors for key attestations (``key_trust_anchors`` or the client ones)."""
        return self.key_trust_anchors or self.client_trust_anchors


@attrs.frozen(kw_only=True)
class RefreshTokenSettings:
    """Refresh tokens (RFC 6749 §6) from the built-in token endpoint.

    A refresh token is issued with every access token that is DPoP-bound (or, for Bearer
    tokens, only with ``rotate``: RFC 9700 §4.14.2 wants public clients' refresh tokens
    sender-constrained or rotated). It lives ``ttl`` seconds, and never past ``family_lifetime``
    seconds after the grant's first token (HAIP 1.0 §4.4 asks issuers to bound it; one year at
    most here). It is bound to the DPoP key of the grant (RFC 9449 §5) and, when the grant was
    made with a wallet attestation, to the attestation's instance key
    (draft-ietf-oauth-attestation-based-client-auth-07 §6.2).

    ``rotate``: each use returns a new refresh token and uses up the old one; presenting a used
    one again revokes the whole grant (every refresh and access token of it, RFC 9700 §4.14.2).
    Off by default: FAPI 2.0 (which HAIP 1.0 §4.4 applies) asks servers not to rotate refresh
    tokens of sender-constrained clients; the token then stays valid until it expires.
    """

    ttl: int = 24 * 3600
    family_lifetime: int = 30 * 24 * 3600
    rotate: bool = False

    def __attrs_post_init__(self) -> None:
        if not 0 < self.ttl <= self.family_lifetime <= _ONE_YEAR:
            raise UsageError("refresh tokens need 0 < ttl <= family_lifetime <= one year")


def _chain(value: Iterable[Any]) -> tuple[x509.Certificate, ...]:
    chain = load_trust_anchors(value)
    if not chain:
        raise UsageError("metadata_signer_chain needs the signer's certificate")
    return chain


@attrs.frozen(kw_only=True)
class SignedMetadataSettings:
    """Signed Credential Issuer metadata (OID4VCI 1.0 §12.2.3; Draft 13–15 ``signed_metadata``).

    ``metadata_signer`` signs; ``metadata_signer_chain`` is its certificate chain, leaf first,
    without the trust anchor (HAIP 1.0 §4.1; PEM, DER or certificates), sent in ``x5c``. A 1.0
    issuer answers ``Accept: application/jwt`` with the metadata as a JWT; a Draft 13–15 issuer
    adds the ``signed_metadata`` member. Each signed form is valid ``lifetime`` seconds
    (``exp``) and signed again after half of it.
    """

    metadata_signer: Signer
    metadata_signer_chain: tuple[x509.Certificate, ...] = attrs.field(converter=_chain)
    lifetime: int = 24 * 3600

    def __attrs_post_init__(self) -> None:
        if not 60 <= self.lifetime <= _ONE_YEAR:
            raise UsageError("lifetime must be between 60 seconds and one year")


def _decoy_range(value: Iterable[int]) -> tuple[int, int]:
    low, high = tuple(value)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
        raise UsageError("decoy_digests must be two integers")
    if not 0 <= low <= high <= 1000:
        raise UsageError("decoy_digests must be (low, high) with 0 <= low <= high <= 1000")
    return (low, high)


def _certificates(
    value: x509.Certificate | Iterable[x509.Certificate],
) -> tuple[x509.Certificate, ...]:
    chain = (value,) if isinstance(value, x509.Certificate) else tuple(value)
    if not chain or not all(isinstance(c, x509.Certificate) for c in chain):
        raise UsageError("certificate_chain must hold at least one x509.Certificate")
    return chain


@attrs.frozen(kw_only=True)
class DocumentSigner:
    """The key and certificates ISO mdocs (``mso_mdoc``) are signed with.

    ``signer`` holds the Document Signer key; ``certificate_chain`` is the ``x5chain`` sent in
    every ``issuerAuth`` (ISO/IEC 18013-5:2021 §9.1.2.4; RFC 9360): the Document Signer
    certificate first, without the IACA root, which verifiers hold as their trust anchor
    (:func:`oid4vci.mdoc_certificates.create_iaca_and_document_signer` makes a demo pair).
    """

    signer: Signer = attrs.field(repr=False)
    certificate_chain: tuple[x509.Certificate, ...] = attrs.field(converter=_certificates)

    def __attrs_post_init__(self) -> None:
        try:
            same = jwk_thumbprint(public_jwk_of(self.certificate_chain[0])) == jwk_thumbprint(
                self.signer.public_jwk
            )
        except ValidationError:
            same = False
        if not same:
            raise UsageError("the signer's key is not the first certificate's key")

    @property
    def country(self) -> str | None:
        """The ``countryName`` of the Document Signer's subject (``issuing_country`` must match)."""
        names = self.certificate_chain[0].subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)
        value = names[0].value if names else None
        return value if isinstance(value, str) else None


@attrs.frozen(kw_only=True)
class IssuerConfig:
    """The whole configuration of an issuer (and its built-in authorization server).

    Security-relevant defaults: DPoP required for access tokens (``allow_bearer=False``), PKCE
    S256 only, single-use codes, ``tx_code`` attempts limited. Setting
    ``external_authorization_server`` turns the built-in token, PAR and authorization
    endpoints off; access tokens are then that server's JWTs.
    """

    credential_issuer: str = attrs.field(converter=_issuer_url)
    credential_signer: Signer
    credential_configurations: Mapping[str, CredentialConfigurationSpec] = attrs.field(
        converter=_configurations
    )
    claims_source: ClaimsSource
    store: Store
    user_authenticator: UserAuthenticator | None = None
    published_version: SpecVersion = SpecVersion.V1
    display: tuple[Mapping[str, Any], ...] = attrs.field(default=(), converter=_mapping_tuple)
    allow_bearer: bool = False
    require_dpop_nonce: bool = False
    dpop_algorithms: tuple[str, ...] = attrs.field(
        default=DEFAULT_DPOP_ALGORITHMS, converter=_str_tuple
    )
    batch_size: int = attrs.field(default=10)
    require_par: bool = False
    clients: ClientPolicy = attrs.field(factory=ClientPolicy)
    pre_authorized_anonymous_access: bool = True
    tx_code_max_attempts: int = attrs.field(default=5)
    access_token_ttl: int = 600
    authorization_code_ttl: int = 60
    pre_authorized_code_ttl: int = 600
    par_ttl: int = 60
    pending_authorization_ttl: int = 600
    c_nonce_ttl: int = 300
    dpop_nonce_ttl: int = 300
    dpop_max_age: float = 300.0
    external_authorization_server: ExternalAuthorizationServer | None = None
    clock: Callable[[], float] = time.time
    max_body_size: int = 1 << 20
    #: Roots for ``x5c`` key proofs. With none, an ``x5c`` proof binds the leaf's key without
    #: any trust decision (like a ``jwk`` header); with some, the chain must validate to one.
    x5c_trust_anchors: tuple[x509.Certificate, ...] = attrs.field(
        default=(), converter=load_trust_anchors
    )
    #: Token Status List references in every minted credential (``None``: none); see
    #: :mod:`oid4vci.issuer.status_list`.
    status: StatusListSettings | None = attrs.field(default=None)
    #: Decoy digests per ``_sd`` array of an SD-JWT VC: a random number in ``(low, high)``,
    #: drawn for each array, so credentials of one configuration differ in digest counts.
    decoy_digests: tuple[int, int] = attrs.field(default=(1, 5), converter=_decoy_range)
    #: Encrypted credential requests and responses (OID4VCI 1.0 §10; ``None``: none, and
    #: every ``credential_response_encryption`` is refused); see
    #: :mod:`oid4vci.issuer.encryption`.
    encryption: EncryptionSettings | None = attrs.field(default=None, repr=False)
    #: Wallet attestation and key attestation trust and policy (``None``: public clients only,
    #: key attestations not accepted); see :class:`AttestationSettings`.
    attestation: AttestationSettings | None = attrs.field(default=None)
    #: Refresh tokens at the token endpoint (``None``: none are issued and the
    #: ``refresh_token`` grant is refused); see :class:`RefreshTokenSettings`.
    refresh_tokens: RefreshTokenSettings | None = attrs.field(default=None)
    #: Signed Credential Issuer metadata (``None``: JSON only); see
    #: :class:`SignedMetadataSettings`.
    signed_metadata: SignedMetadataSettings | None = attrs.field(default=None, repr=False)

    #: The credential signer's certificate chain, leaf first, without the root (PEM, DER or
    #: certificates). With it, SD-JWT VCs, ``jwt_vc_json`` credentials and Status List Tokens
    #: signed by ``credential_signer`` carry it as ``x5c`` (HAIP 1.0 §6.1, §6.1.1; SD-JWT VC
    #: draft-ietf-oauth-sd-jwt-vc-13 §3.5) instead of a ``kid``. The leaf's key must be the
    #: signer's and no certificate may be self-signed (a trust anchor is never sent).
    credential_signer_chain: tuple[x509.Certificate, ...] = attrs.field(
        default=(), converter=load_trust_anchors
    )

    @credential_signer_chain.validator
    def _check_signer_chain(
        self, _: attrs.Attribute[Any], value: tuple[x509.Certificate, ...]
    ) -> None:
        if not value:
            return
        if any(is_self_signed(certificate) for certificate in value):
            raise UsageError(
                "credential_signer_chain must not hold a self-signed certificate "
                "(leaf first, without the root)"
            )
        try:
            leaf_jwk = leaf_public_jwk([certificate_b64(value[0])])
        except CertificateError as exc:
            raise UsageError(f"credential_signer_chain leaf: {exc.reason}") from None
        if jwk_thumbprint(leaf_jwk) != jwk_thumbprint(self.credential_signer.public_jwk):
            raise UsageError(
                "the leaf of credential_signer_chain does not certify credential_signer's key"
            )

    #: ``"haip"``: OpenID4VC HAIP 1.0 as an issuer (see :meth:`_apply_profile`); ``None``: no
    #: profile beyond this class's own defaults.
    profile: Literal["haip"] | None = None

    def __attrs_post_init__(self) -> None:
        if self.profile is not None:
            self._apply_profile()

    def _apply_profile(self) -> None:
        """``profile="haip"`` (HAIP 1.0): check what a deployment must bring, switch on what
        the profile requires. A missing piece is a :class:`UsageError` naming it.

        Must be given: ``credential_signer_chain`` (HAIP 1.0 §6.1.1, x5c signing) and an
        ES256 ``credential_signer``; ``attestation`` with client trust anchors (HAIP 1.0
        HAIP 1.0 §4.4.1: client authentication at PAR and token endpoints) whose algorithms include
        ES256 (HAIP 1.0 §7); Status List Tokens signed by the x5c-certified signer (HAIP 1.0 §6.1). Refused:
        ``allow_bearer`` (DPoP only, HAIP 1.0 §4), an external authorization server (this profile
        covers the built-in one). Switched on: ``require_par`` (FAPI 2.0 via HAIP 1.0 §4),
        ``require_client_attestation``, no anonymous pre-authorized access (HAIP 1.0 §4.4.1);
        DPoP and key proof algorithms left at the library defaults narrow to ES256. PKCE S256
        only and single-use codes are the library's behaviour anyway. Key attestations are
        verified against the attestation key anchors whenever sent; requiring them per
        configuration (``key_attestations_required``) stays the ecosystem's choice (HAIP 1.0 §4.5.1).
        """
        if self.profile != "haip":
            raise UsageError("profile must be 'haip' or None")
        if not self.credential_signer_chain:
            raise UsageError("profile 'haip' needs credential_signer_chain (x5c signing)")
        if self.credential_signer.alg != "ES256":
            raise UsageError("profile 'haip' needs an ES256 credential_signer")
        if self.allow_bearer:
            raise UsageError("profile 'haip' forbids allow_bearer (DPoP only)")
        if self.external_authorization_server is not None:
            raise UsageError("profile 'haip' covers the built-in authorization server only")
        attestation = self.attestation
        if attestation is None or not attestation.client_trust_anchors:
            raise UsageError(
                "profile 'haip' needs attestation=AttestationSettings(client_trust_anchors=...)"
            )
        if "ES256" not in attestation.algorithms:
            raise UsageError("profile 'haip' needs ES256 in attestation.algorithms")
        if self.status is not None and self.status.signer is not None:
            raise UsageError(
                "profile 'haip' signs Status List Tokens with the x5c credential signer: "
                "leave status.signer unset"
            )
        if "ES256" not in self.dpop_algorithms:
            raise UsageError("profile 'haip' needs ES256 in dpop_algorithms")
        es256 = ("ES256",)
        configurations: dict[str, CredentialConfigurationSpec] = {}
        for cid, spec in self.credential_configurations.items():
            algs = spec.proof_signing_alg_values_supported
            if "ES256" not in algs:
                raise UsageError(f"profile 'haip' needs ES256 proofs for configuration {cid!r}")
            if algs == DEFAULT_PROOF_ALGORITHMS:
                spec = attrs.evolve(spec, proof_signing_alg_values_supported=es256)
            configurations[cid] = spec
        switched = {
            "require_par": True,
            "pre_authorized_anonymous_access": False,
            "attestation": attrs.evolve(attestation, require_client_attestation=True),
            "credential_configurations": configurations,
        }
        if self.dpop_algorithms == DEFAULT_DPOP_ALGORITHMS:
            switched["dpop_algorithms"] = es256
        for name, value in switched.items():
            object.__setattr__(self, name, value)  # frozen: set once, during construction

    @property
    def credential_x5c(self) -> list[str] | None:
        """The ``x5c`` header value of credential signatures (``None`` without a chain)."""
        if not self.credential_signer_chain:
            return None
        return [certificate_b64(c) for c in self.credential_signer_chain]

    @attestation.validator
    def _check_attestation(
        self, _: attrs.Attribute[Any], value: AttestationSettings | None
    ) -> None:
        needs_keys = [
            s.id
            for s in self.credential_configurations.values()
            if s.key_attestations_required is not None
        ]
        if needs_keys and (value is None or not value.key_anchors):
            raise UsageError(
                "key_attestations_required needs attestation=AttestationSettings(...) "
                "with key trust anchors"
            )

    #: Signs ``mso_mdoc`` credentials (required when a configuration has that format).
    document_signer: DocumentSigner | None = attrs.field(default=None)

    @document_signer.validator
    def _check_document_signer(self, _: attrs.Attribute[Any], value: DocumentSigner | None) -> None:
        if value is None and any(s.is_mdoc for s in self.credential_configurations.values()):
            raise UsageError("mso_mdoc configurations need a document_signer")

    @status.validator
    def _check_status(self, _: attrs.Attribute[Any], value: StatusListSettings | None) -> None:
        if value is None:
            return
        longest = max((s.lifetime for s in self.credential_configurations.values()), default=0)
        if longest >= value.list_lifetime:
            raise UsageError("status.list_lifetime must be longer than every credential lifetime")

    #: Keys of the stateless ``c_nonce`` and ``DPoP-Nonce`` values (current + still accepted).
    #: The default is one random key per process: every worker of a deployment must be given
    #: the same :class:`~oid4vci.issuer.stateless_nonce.NonceKeys`, or nonces minted by one
    #: worker are refused by another.
    nonce_keys: NonceKeys = attrs.field(factory=default_nonce_keys, repr=False)
    #: Limits on what unauthenticated requests may cost: per-client rate limits (off unless
    #: set) and per-purpose store quotas (on); see :mod:`oid4vci.issuer.flood_limits`.
    flood_limits: FloodLimits = attrs.field(factory=FloodLimits)
    #: Where refusals (rate limited, quota, store full) are counted and logged:
    #: ``Refusals(metrics=<your MetricsHook>)``; see :mod:`oid4vci.issuer.refusals`.
    refusals: Refusals = attrs.field(factory=Refusals, eq=False, repr=False)

    @batch_size.validator
    def _check_batch_size(self, _: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise UsageError("batch_size must be at least 1")

    @tx_code_max_attempts.validator
    def _check_attempts(self, _: attrs.Attribute[int], value: int) -> None:
        if value < 1:
            raise UsageError("tx_code_max_attempts must be at least 1")

    @property
    def builtin_authorization_server(self) -> bool:
        """True when the issuer is its own authorization server (no external AS)."""
        return self.external_authorization_server is None

    @property
    def authorization_server(self) -> str:
        """The issuer identifier of the authorization server to use."""
        external = self.external_authorization_server
        return self.credential_issuer if external is None else external.issuer

    def endpoint(self, name: str, item: str | None = None) -> str:
        """The absolute URL of endpoint ``name`` (see :data:`ENDPOINT_PATHS`).

        ``endpoint("offer", offer_id)`` gives the by-reference offer URL.
        """
        try:
            path = ENDPOINT_PATHS[name]
        except KeyError:
            raise UsageError(f"unknown endpoint {name!r}") from None
        base = self.credential_issuer.rstrip("/")
        if name == "offer":
            if not item:
                raise UsageError("the offer endpoint needs an offer id")
            return base + path + quote(item, safe="")
        if item is not None:
            raise UsageError(f"endpoint {name!r} takes no item")
        return base + path

    def configuration(self, configuration_id: str) -> CredentialConfigurationSpec | None:
        """The configuration with ``configuration_id``, or ``None``."""
        return self.credential_configurations.get(configuration_id)

    def credential_signing_alg(self, configuration_id: str) -> str:
        """The algorithm credentials of ``configuration_id`` are signed with (JOSE name; for
        ``mso_mdoc`` the document signer's)."""
        spec = self.credential_configurations.get(configuration_id)
        if spec is not None and spec.credential_signing_alg:
            return spec.credential_signing_alg
        if spec is not None and spec.is_mdoc and self.document_signer is not None:
            return self.document_signer.signer.alg
        return self.credential_signer.alg

    def for_issuer(self, credential_issuer: str) -> IssuerConfig:
        """The same deployment as another credential issuer (one tenant).

        The store is scoped to the new identifier so codes, tokens and nonces of one tenant are
        never valid at another.
        """
        issuer = _issuer_url(credential_issuer)
        return attrs.evolve(
            self, credential_issuer=issuer, store=scoped_store(self.store, f"{issuer}|")
        )
