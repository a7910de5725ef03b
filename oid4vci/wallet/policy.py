"""The wallet's explicit policy: every security-relevant choice in one frozen value.

A :class:`WalletPolicy` is given to :class:`~oid4vci.wallet.Oid4vciClient` once; the defaults
are the safe ones (https only, DPoP whenever the authorization server supports it, PKCE S256
always, credentials verified before they are returned).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Iterable, Sequence
from typing import Literal, Protocol

import attrs
from cryptography import x509

from oid4vci.attestation import AttestationProvider
from oid4vci.errors import UsageError
from oid4vci.jose import LocalSigner, Signer
from oid4vci.wallet.encryption import EncryptionMode
from oid4vci.x509 import TrustAnchor, load_trust_anchors

__all__ = [
    "DpopMode",
    "HolderKeyProvider",
    "KeyReferences",
    "ParMode",
    "SignedMetadataMode",
    "StatusMode",
    "WalletPolicy",
    "default_holder_key_provider",
]

DpopMode = Literal["auto", "required", "off"]
"""``auto``: DPoP when the AS advertises a supported alg, else Bearer; ``required``: refuse an
AS without DPoP (and a ``Bearer`` token answer); ``off``: never send DPoP."""

ParMode = Literal["auto", "always", "never"]
"""``auto``: PAR when the AS advertises it (always when it requires it); ``always``: refuse an
AS without PAR; ``never``: front-channel parameters only (fails when the AS requires PAR)."""

SignedMetadataMode = Literal["verify-if-present", "require", "ignore"]
"""Signed Credential Issuer metadata (OID4VCI 1.0 §12.2.3; Draft 13–15 ``signed_metadata``):
``verify-if-present`` asks for it (``Accept: application/jwt``), verifies it when the issuer
sends it (chain to ``trusted_x5c_roots``, ``sub``, freshness) and uses the signed values over
the plain ones; ``require`` also refuses an issuer that sends none; ``ignore`` neither asks
for nor reads it. A signed form that does not verify stops the flow in both first modes."""

StatusMode = Literal["check", "require", "off"]
"""What the wallet does with a credential's Token Status List reference
(draft-ietf-oauth-status-list-20 §8.3): ``check`` fetches and verifies the list and reports
the entry in ``ReceivedCredential.status`` (a list that cannot be fetched leaves it ``None``);
``require`` also fails the flow when the list cannot be fetched; ``off`` fetches nothing.
A list that is fetched and does not verify fails the flow in both ``check`` and ``require``."""

#: Algorithms :class:`~oid4vci.jose.LocalSigner` can generate, in preference order.
_LOCAL_ALGS: tuple[str, ...] = ("ES256", "ES384", "ES512", "EdDSA")


class HolderKeyProvider(Protocol):
    """Gives the key a credential is bound to (one call per credential).

    ``algorithms`` is what the issuer accepts for key proofs of that configuration (empty when
    the issuer does not say). Return any :class:`~oid4vci.jose.Signer` (e.g. one backed by a
    secure element).
    """

    def __call__(self, *, configuration_id: str, algorithms: Sequence[str]) -> Awaitable[Signer]:
        """Return the holder key for one credential of ``configuration_id``."""
        ...


async def default_holder_key_provider(
    *, configuration_id: str, algorithms: Sequence[str]
) -> Signer:
    """A fresh in-process key: P-256 (ES256) unless the issuer accepts only another alg."""
    del configuration_id
    for alg in _LOCAL_ALGS:
        if not algorithms or alg in algorithms:
            return LocalSigner.generate(alg)
    return LocalSigner.generate("ES256")


class KeyReferences(Protocol):
    """Names the keys a saved flow cannot hold (a secure element, an HSM, a KMS key).

    :meth:`~oid4vci.wallet.flow.IssuanceFlow.to_json` writes an in-process key
    (:class:`~oid4vci.jose.LocalSigner`) as its private JWK; any other key is written as the
    string :meth:`reference_of` gives for it (with its public JWK), and
    :meth:`~oid4vci.wallet.flow.IssuanceFlow.from_json` asks :meth:`key_for` for the key
    again. A reference is not a secret to this library, but it is stored in the saved text.
    """

    def reference_of(self, key: Signer) -> str | None:
        """A non-empty string naming ``key``; ``None`` when this store does not hold it."""
        ...

    def key_for(self, reference: str) -> Signer:
        """The key ``reference`` names; raise (e.g. :class:`KeyError`) when there is none."""
        ...


def choose_local_alg(preference: Sequence[str], supported: Sequence[str]) -> str | None:
    """The first of ``preference`` that the server ``supported`` and we can generate."""
    for alg in preference:
        if alg in supported and alg in _LOCAL_ALGS:
            return alg
    return None


_LANGUAGE_TAG = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")


def _language_tags(value: Iterable[str]) -> tuple[str, ...]:
    """Converter for :attr:`WalletPolicy.languages`: BCP 47 tags (RFC 5646 syntax, loosely)."""
    tags = (value,) if isinstance(value, str) else tuple(value)
    for tag in tags:
        if not isinstance(tag, str) or not _LANGUAGE_TAG.fullmatch(tag):
            raise UsageError("languages must be BCP 47 language tags such as 'de-CH'")
    return tags


def _trust_anchors(value: Iterable[TrustAnchor]) -> tuple[x509.Certificate, ...]:
    """Converter for :attr:`WalletPolicy.trusted_x5c_roots` and ``trust_anchors``."""
    return load_trust_anchors(value)


@attrs.frozen(kw_only=True)
class WalletPolicy:
    """What the wallet allows and prefers.

    :param dpop: ``"auto"`` | ``"required"`` | ``"off"`` (see :data:`DpopMode`).
    :param dpop_algorithms: DPoP algorithm preference; the first one the AS supports is used.
    :param allow_insecure_loopback: accept ``http://`` URLs whose host is ``127.0.0.1``,
        ``localhost`` or ``::1`` (for local testing only). Every other URL must be https.
    :param use_authorization_details: ask for credentials with RFC 9396
        ``authorization_details`` (``True``) or with the configurations' ``scope`` values.
    :param par: ``"auto"`` | ``"always"`` | ``"never"`` (see :data:`ParMode`).
    :param openid_configuration_fallback: after RFC 8414 ``oauth-authorization-server``, also
        try ``openid-configuration`` for the authorization server metadata.
    :param metadata_cache_ttl: seconds issuer / AS metadata stays cached (0 disables caching).
    :param deferred_max_wait: the longest total time a deferred credential is polled for.
    :param deferred_default_interval: polling interval when the issuer does not give a
        positive one (seconds, must be positive).
    :param clock_skew: leeway in seconds for ``iat`` / ``nbf`` / ``exp`` of received credentials.
    :param holder_key_provider: makes holder keys (default: fresh P-256 keys).
    :param credential_algorithms: issuer signature algorithms accepted on credentials.
    :param trusted_x5c_roots: trust anchors for issuer keys given as an ``x5c`` chain in an
        SD-JWT VC header: DER bytes, PEM (text or bytes), base64 DER text or
        :class:`cryptography.x509.Certificate` objects, parsed once here (stored as
        certificates; a value that does not parse raises
        :class:`~oid4vci.x509.CertificateError`). Empty (the default): ``x5c`` is never trusted
        and issuer keys come from JWT VC Issuer Metadata only. See
        :mod:`oid4vci.wallet.verify` for how a chain is checked.
    :param trust_anchors: root certificates for credentials signed under an X.509 chain of
        their own: for ``mso_mdoc`` the IACA roots (ISO/IEC 18013-5:2021 Annex B) the
        ``issuerAuth`` Document Signer chain must validate to (with the mdlDS extended key
        usage). Same input forms as ``trusted_x5c_roots``. Empty (the default): no mdoc is
        trusted, and one received is refused (reason ``untrusted``).
    :param accept_unverifiable_formats: return credentials of formats this library cannot
        verify (anything but SD-JWT VC, ``jwt_vc_json`` and ``mso_mdoc``) with
        ``verified=False`` instead of refusing them.
    :param status: ``"check"`` | ``"require"`` | ``"off"`` (see :data:`StatusMode`).
    :param encryption: ``"when-supported"`` | ``"require"`` | ``"off"`` (see
        :data:`~oid4vci.wallet.encryption.EncryptionMode`): encrypted credential requests and
        responses (OID4VCI 1.0 §10). The default encrypts whenever the issuer offers it.
    :param languages: preferred languages (BCP 47 tags, best first) sent as
        ``Accept-Language`` with metadata requests (OID4VCI 1.0 §12.2.2); empty: none sent.
    :param signed_metadata: ``"verify-if-present"`` | ``"require"`` | ``"ignore"`` (see
        :data:`SignedMetadataMode`); signed metadata is checked against ``trusted_x5c_roots``.
    :param attestation_provider: the source of wallet attestations (client authentication at
        PAR and token endpoints whose AS offers ``attest_jwt_client_auth``) and key
        attestations (for configurations with ``key_attestations_required``); see
        :mod:`oid4vci.attestation`. ``None`` (the default): a public client, and issuers that
        require either are refused before any code is spent.
    :param key_references: names keys that are not :class:`~oid4vci.jose.LocalSigner`
        (holder keys of ``holder_key_provider``, an attestation's instance key used for DPoP)
        in a saved flow (see :class:`KeyReferences`); ``None`` (the default): a flow holding
        such a key cannot be saved.
    :param profile: ``"haip"``: OpenID4VC HAIP 1.0 as a wallet (build it with :meth:`haip`);
        issuers that do not meet it are refused before any code is spent
        (:func:`oid4vci.wallet.preflight.check_haip`) and every SD-JWT VC / ``jwt_vc_json``
        credential must carry an ``x5c`` chain to ``trusted_x5c_roots``.
    """

    dpop: DpopMode = "auto"
    dpop_algorithms: tuple[str, ...] = ("ES256", "ES384", "ES512", "EdDSA")
    allow_insecure_loopback: bool = False
    use_authorization_details: bool = True
    par: ParMode = "auto"
    openid_configuration_fallback: bool = True
    metadata_cache_ttl: float = 300.0
    deferred_max_wait: float = 300.0
    deferred_default_interval: float = 5.0
    clock_skew: float = 60.0
    holder_key_provider: HolderKeyProvider = default_holder_key_provider
    credential_algorithms: tuple[str, ...] = ("ES256", "ES384", "ES512", "EdDSA")
    trusted_x5c_roots: tuple[x509.Certificate, ...] = attrs.field(
        default=(), converter=_trust_anchors
    )
    accept_unverifiable_formats: bool = False
    status: StatusMode = "check"
    encryption: EncryptionMode = "when-supported"
    languages: tuple[str, ...] = attrs.field(default=(), converter=_language_tags)
    attestation_provider: AttestationProvider | None = None
    trust_anchors: tuple[x509.Certificate, ...] = attrs.field(default=(), converter=_trust_anchors)
    signed_metadata: SignedMetadataMode = "verify-if-present"
    key_references: KeyReferences | None = None

    profile: Literal["haip"] | None = None

    @classmethod
    def haip(
        cls,
        *,
        trusted_x5c_roots: Iterable[TrustAnchor],
        attestation_provider: AttestationProvider,
        **overrides: object,
    ) -> WalletPolicy:
        """A policy for OpenID4VC HAIP 1.0: DPoP required (HAIP 1.0 §4), PAR always (FAPI 2.0
        via HAIP 1.0 §4), credential types requested by ``scope`` (HAIP 1.0 §4.3), wallet and key attestations
        from ``attestation_provider`` (HAIP 1.0 §4.4.1, HAIP 1.0 §4.5.1), issuer keys only from ``x5c`` chains
        to ``trusted_x5c_roots`` (HAIP 1.0 §6.1.1). ``overrides`` set other fields (e.g.
        ``allow_insecure_loopback``); ones that break the profile raise :class:`UsageError`."""
        values: dict[str, object] = {
            "dpop": "required",
            "par": "always",
            "use_authorization_details": False,
            **overrides,
        }
        return cls(
            trusted_x5c_roots=trusted_x5c_roots,
            attestation_provider=attestation_provider,
            profile="haip",
            **values,  # type: ignore[arg-type]
        )

    def _check_profile(self) -> None:
        if self.profile is None:
            return
        if self.profile != "haip":
            raise UsageError("profile must be 'haip' or None")
        if self.dpop != "required" or self.par != "always":
            raise UsageError("profile 'haip' needs dpop='required' and par='always'")
        if not self.trusted_x5c_roots:
            raise UsageError("profile 'haip' needs trusted_x5c_roots (x5c issuer keys)")
        if self.attestation_provider is None:
            raise UsageError("profile 'haip' needs an attestation_provider")
        if "ES256" not in self.dpop_algorithms or "ES256" not in self.credential_algorithms:
            raise UsageError("profile 'haip' needs ES256 in dpop_ and credential_algorithms")

    def __attrs_post_init__(self) -> None:
        self._check_profile()
        if self.encryption not in ("when-supported", "require", "off"):
            raise UsageError("encryption must be 'when-supported', 'require' or 'off'")
        if self.dpop not in ("auto", "required", "off"):
            raise UsageError("dpop must be 'auto', 'required' or 'off'")
        if self.par not in ("auto", "always", "never"):
            raise UsageError("par must be 'auto', 'always' or 'never'")
        if self.signed_metadata not in ("verify-if-present", "require", "ignore"):
            raise UsageError("signed_metadata must be 'verify-if-present', 'require' or 'ignore'")
        if self.status not in ("check", "require", "off"):
            raise UsageError("status must be 'check', 'require' or 'off'")
        if self.metadata_cache_ttl < 0 or self.deferred_max_wait < 0 or self.clock_skew < 0:
            raise UsageError("durations must not be negative")
        if not self.deferred_default_interval > 0:
            raise UsageError("deferred_default_interval must be positive")
