"""A ready-made demo issuer (used by ``oid4vci serve`` and the examples).

:func:`build_demo_issuer` returns a :class:`DemoIssuer`: an :class:`~oid4vci.issuer.Issuer` for
one SD-JWT VC identity credential (configuration ``identity_credential``, with a Token Status
List reference in every credential, served at ``<issuer>/status-lists/<id>``), an ISO mDL
(configuration ``org.iso.18013.5.1.mDL``, format ``mso_mdoc``, signed by a demo Document
Signer certificate under a demo IACA root, ``DemoIssuer.iaca``; both made fresh per issuer by
:func:`oid4vci.mdoc_certificates.create_iaca_and_document_signer`, country ``UT``), a demo user
``alice`` / ``wonderland`` (subject ``alice``) with a plain HTML login form, ``batch_size`` 10,
and three **offer templates**, each a reusable link:

========================  ================================================================
template                  what every fetch of its ``credential_offer_uri`` creates
========================  ================================================================
``pre_auth``              a fresh pre-authorized code for ``alice``
``pre_auth_tx_code``      a fresh pre-authorized code for ``alice`` that also needs the
                          Transaction Code (numeric, 6 digits); the code is the FIXED value
                          :data:`DEMO_TX_CODE` (``DemoIssuer.tx_code``) so a CLI can print it
``auth_code``             a fresh ``issuer_state`` for the authorization code flow (log in
                          as ``alice`` / ``wonderland``)
``pre_auth_mdoc``         a fresh pre-authorized code for ``alice``'s mDL (only when the
                          ``mdoc`` extra, cbor2, is installed)
========================  ================================================================

``DemoIssuer.offer_links[name]`` is ``openid-credential-offer://?credential_offer_uri=<issuer>
/offers/templates/<name>``: printing it once is enough, every wallet following it gets its own
single-use code. The fixed tx_code and the password are demo values: never use this in
production.
"""

from __future__ import annotations

import base64
import datetime
import hmac
import html
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from oid4vci.errors import CredentialRequestError, ErrorCode, WireFormatError
from oid4vci.http import FORM_CONTENT_TYPE, HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer.config import (
    AttestationSettings,
    Authenticated,
    AuthenticationResult,
    ClientPolicy,
    CredentialConfigurationSpec,
    DocumentSigner,
    IssuerConfig,
    PendingLogin,
    RefreshTokenSettings,
    Respond,
    StatusListSettings,
)
from oid4vci.issuer.encryption import EncryptionSettings
from oid4vci.issuer.flood_limits import FloodLimits
from oid4vci.issuer.offers import OfferTemplate, TxCodeSpec
from oid4vci.issuer.responses import html_response
from oid4vci.issuer.service import Issuer
from oid4vci.issuer.stateless_nonce import NonceKeys, default_nonce_keys
from oid4vci.issuer.store import MemoryStore, Store
from oid4vci.issuer_certificates import create_issuer_signing_certificates
from oid4vci.jose import LocalSigner, Signer
from oid4vci.mdoc import mdoc_available
from oid4vci.mdoc_certificates import MdocIssuerCertificates, create_iaca_and_document_signer
from oid4vci.sdjwt import sd
from oid4vci.versions import SpecVersion

__all__ = [
    "DEMO_CONFIGURATION_ID",
    "DEMO_MDL_CONFIGURATION_ID",
    "DEMO_MDL_COUNTRY",
    "DEMO_PASSWORD",
    "DEMO_TX_CODE",
    "DEMO_USERNAME",
    "DemoClaimsSource",
    "DemoIssuer",
    "DemoLogin",
    "build_demo_issuer",
    "demo_configuration",
    "demo_mdl_configuration",
]

#: The demo's one credential configuration.
DEMO_CONFIGURATION_ID = "identity_credential"
#: The user the demo login page accepts (with :data:`DEMO_PASSWORD`); demo only.
DEMO_USERNAME = "alice"
#: The demo login password (demo only, never for a real deployment).
DEMO_PASSWORD = "wonderland"
#: The fixed Transaction Code of the ``pre_auth_tx_code`` template (demo only).
DEMO_TX_CODE = "493817"

#: The demo mDL configuration (its id is the doctype, as in OID4VCI 1.0 Appendix A.2 examples).
DEMO_MDL_CONFIGURATION_ID = "org.iso.18013.5.1.mDL"
#: The ``countryName`` of the demo IACA and Document Signer and the mDL's ``issuing_country``
#: (``UT``, "Utopia", the code ISO/IEC 18013-5 examples use).
DEMO_MDL_COUNTRY = "UT"
_MDL_NAMESPACE = "org.iso.18013.5.1"

_USERS: Mapping[str, tuple[str, str]] = {DEMO_USERNAME: (DEMO_PASSWORD, "alice")}


def _claim(path: list[Any], name: str) -> dict[str, Any]:
    return {"path": path, "display": [{"name": name, "locale": "en-US"}]}


def demo_configuration(issuer_url: str) -> CredentialConfigurationSpec:
    """The demo identity credential configuration (``vct`` ``<issuer>/identity_credential``)."""
    return CredentialConfigurationSpec(
        id=DEMO_CONFIGURATION_ID,
        vct=issuer_url.rstrip("/") + "/identity_credential",
        scope="identity_credential",
        display=[
            {
                "name": "Demo Identity Credential",
                "locale": "en-US",
                "background_color": "#12107c",
                "text_color": "#FFFFFF",
            }
        ],
        claims=[
            _claim(["given_name"], "Given name"),
            _claim(["family_name"], "Family name"),
            _claim(["birthdate"], "Date of birth"),
            _claim(["address"], "Address"),
            _claim(["address", "street_address"], "Street"),
            _claim(["address", "locality"], "City"),
            _claim(["address", "postal_code"], "Postal code"),
            _claim(["address", "country"], "Country"),
            _claim(["nationalities"], "Nationalities"),
            _claim(["is_over_18"], "Over 18"),
        ],
    )


#: The demo mDL's ``issuing_authority`` and ``un_distinguishing_sign`` (Utopia's).
DEMO_MDL_AUTHORITY = "Utopia Department of Motor Vehicles"
DEMO_MDL_DISTINGUISHING_SIGN = "UTO"
#: The demo mDL's ``portrait``: a 16 × 20 grey JPEG of 233 bytes (a JPEG, as in the example
#: of ISO/IEC 18013-5:2021 Annex D).
DEMO_MDL_PORTRAIT = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDABsSFBcUERsXFhceHBsgKEIrKCUlKFE6PTBCYFVlZF9VXVtqeJmBanGQ"
    "c1tdhbWGkJ6jq62rZ4C8ybqmx5moq6T/wAALCAAUABABAREA/8QAFwAAAwEAAAAAAAAAAAAAAAAAAQIDBP/EACIQ"
    "AAEDAwQDAQAAAAAAAAAAAAECAxEABAUiNFGxEiFygf/aAAgBAQAAPwDZfXJt2wEjUqYPFJYXaniW3PagJ8uRSZN1"
    "AIaU3JiQqYip411CXA2G9Splc0MpuE/A7NTx+8b/AHo1/9k="
)


def demo_mdl_configuration() -> CredentialConfigurationSpec:
    """The demo mDL configuration: doctype ``org.iso.18013.5.1.mDL`` with the eleven mandatory
    elements of namespace ``org.iso.18013.5.1`` (ISO/IEC 18013-5:2021 §7.2.1)
    (family_name, given_name, birth_date, issue_date, expiry_date, issuing_country,
    issuing_authority, document_number, portrait, driving_privileges, un_distinguishing_sign)."""
    names = {
        "family_name": "Family name",
        "given_name": "Given name",
        "birth_date": "Date of birth",
        "issue_date": "Issue date",
        "expiry_date": "Expiry date",
        "issuing_country": "Issuing country",
        "issuing_authority": "Issuing authority",
        "document_number": "Document number",
        "portrait": "Portrait",
        "driving_privileges": "Driving privileges",
        "un_distinguishing_sign": "Distinguishing sign",
    }
    return CredentialConfigurationSpec(
        id=DEMO_MDL_CONFIGURATION_ID,
        format="mso_mdoc",
        doctype=DEMO_MDL_CONFIGURATION_ID,
        scope="mdl",
        display=[{"name": "Demo mobile driving licence", "locale": "en-US"}],
        claims=[
            {**_claim([_MDL_NAMESPACE, element], name), "mandatory": True}
            for element, name in names.items()
        ],
        lifetime=365 * 24 * 3600,
    )


class DemoClaimsSource:
    """Alice's identity claims (every personal value selectively disclosable) and her mDL
    elements (by namespace; dates as :class:`datetime.date`, written as CBOR full-date)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    async def __call__(self, subject: str, configuration_id: str) -> Mapping[str, Any]:
        """The claims of ``subject`` (only ``alice`` exists)."""
        if subject == "alice" and configuration_id == DEMO_MDL_CONFIGURATION_ID:
            today = datetime.datetime.fromtimestamp(self._clock(), tz=datetime.UTC).date()
            expiry = today.replace(year=today.year + 5, day=min(today.day, 28))
            return {
                _MDL_NAMESPACE: {
                    "family_name": "Liddell",
                    "given_name": "Alice",
                    "birth_date": datetime.date(2000, 5, 4),
                    "issue_date": today,
                    "expiry_date": expiry,
                    "issuing_country": DEMO_MDL_COUNTRY,
                    "issuing_authority": DEMO_MDL_AUTHORITY,
                    "document_number": "DL-0001-ALICE",
                    "portrait": DEMO_MDL_PORTRAIT,
                    "driving_privileges": [
                        {"vehicle_category_code": "B", "issue_date": today, "expiry_date": expiry}
                    ],
                    "un_distinguishing_sign": DEMO_MDL_DISTINGUISHING_SIGN,
                }
            }
        if subject != "alice" or configuration_id != DEMO_CONFIGURATION_ID:
            raise CredentialRequestError(
                ErrorCode.CREDENTIAL_REQUEST_DENIED, "no data for this subject"
            )
        return {
            "given_name": sd("Alice"),
            "family_name": sd("Liddell"),
            "birthdate": sd("2000-05-04"),
            "address": sd(
                {
                    "street_address": sd("1 Rabbit Hole"),
                    "locality": sd("Oxford"),
                    "postal_code": sd("OX1 1AA"),
                    "country": sd("GB"),
                }
            ),
            "nationalities": [sd("GB"), sd("IE")],
            "is_over_18": sd(True),
        }


def _login_page(pending: PendingLogin, action: str, error: str | None) -> str:
    message = f"<p role='alert' class='error'>{html.escape(error)}</p>" if error else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<title>Sign in to the demo issuer</title></head><body>"
        "<h1>Sign in</h1>"
        f"<p>Client <code>{html.escape(pending.client_id)}</code> asks for: "
        f"{html.escape(', '.join(pending.configuration_ids))}</p>"
        f"{message}"
        f"<form method='post' action='{html.escape(action, quote=True)}'>"
        f"<input type='hidden' name='handle' value='{html.escape(pending.handle, quote=True)}'>"
        "<label>Username <input name='username' autocomplete='username'></label> "
        "<label>Password <input name='password' type='password' "
        "autocomplete='current-password'></label> "
        "<button type='submit'>Sign in</button></form>"
        f"<p>Demo user: <code>{DEMO_USERNAME}</code> / <code>{DEMO_PASSWORD}</code></p>"
        "</body></html>"
    )


@attrs.frozen(kw_only=True)
class DemoLogin:
    """A :class:`~oid4vci.issuer.config.UserAuthenticator` with a plain HTML login form.

    The first request shows the form (200); it posts ``handle``, ``username`` and ``password``
    back to the authorization endpoint. Wrong credentials re-render the form with an error
    (401).
    """

    action: str
    users: Mapping[str, tuple[str, str]] = attrs.field(factory=lambda: dict(_USERS))

    async def __call__(self, request: HttpRequest, pending: PendingLogin) -> AuthenticationResult:
        """Show the form, or check the posted credentials."""
        if request.method != "POST" or request.media_type != FORM_CONTENT_TYPE:
            return Respond(response=html_response(200, _login_page(pending, self.action, None)))
        try:
            form = request.form_body()
        except WireFormatError:
            form = {}
        if "username" not in form and "password" not in form:
            return Respond(response=html_response(200, _login_page(pending, self.action, None)))
        user = self.users.get(form.get("username", ""))
        password = form.get("password", "")
        if user is not None and hmac.compare_digest(password.encode(), user[0].encode()):
            return Authenticated(subject=user[1])
        page = _login_page(pending, self.action, "Wrong username or password.")
        return Respond(response=html_response(401, page))


@attrs.frozen(kw_only=True)
class DemoIssuer:
    """The demo issuer and what a CLI needs to print about it.

    ``offer_links`` maps template names to reusable ``openid-credential-offer://`` links,
    ``offer_urls`` to their https ``credential_offer_uri``; ``tx_code`` is the fixed code of the
    ``pre_auth_tx_code`` template; ``login`` is ``"alice:wonderland"``; ``iaca`` the demo IACA
    root the mDL's Document Signer chains to (``None`` without the ``mdoc`` extra).
    """

    issuer: Issuer
    offer_links: dict[str, str]
    offer_urls: dict[str, str]
    iaca: x509.Certificate | None = None
    tx_code: str = DEMO_TX_CODE
    login: str = f"{DEMO_USERNAME}:{DEMO_PASSWORD}"
    configuration_id: str = DEMO_CONFIGURATION_ID
    #: The roots the issuer's credentials are signed under (x5c; empty without a chain).
    trust_anchors: tuple[x509.Certificate, ...] = ()

    @property
    def config(self) -> IssuerConfig:
        """The issuer's configuration."""
        return self.issuer.config

    @property
    def trust_anchors_pem(self) -> str:
        """Every root the demo issuer signs under, PEM: the IACA of the mDL (when the ``mdoc``
        extra is installed) and the roots of x5c-signed credentials (``trust_anchors``)."""
        roots = ([self.iaca] if self.iaca is not None else []) + list(self.trust_anchors)
        return "".join(
            root.public_bytes(serialization.Encoding.PEM).decode("ascii") for root in roots
        )

    @property
    def credential_issuer(self) -> str:
        """The credential issuer identifier."""
        return self.issuer.credential_issuer

    async def handle(self, request: HttpRequest | RequestDict) -> HttpResponse:
        """The issuer's request handler (same as ``issuer.handle``)."""
        return await self.issuer.handle(request)


def build_demo_issuer(
    issuer_url: str,
    *,
    published_version: SpecVersion = SpecVersion.V1,
    allow_bearer: bool = False,
    store: Store | None = None,
    signer: Signer | None = None,
    clock: Callable[[], float] = time.time,
    nonce_keys: NonceKeys | None = None,
    encryption: EncryptionSettings | None = None,
    flood_limits: FloodLimits | None = None,
    mdoc_certificates: MdocIssuerCertificates | None = None,
    profile: Literal["haip"] | None = None,
    attestation: AttestationSettings | None = None,
    credential_signer_chain: Sequence[x509.Certificate] = (),
    trust_anchors: Sequence[x509.Certificate] = (),
    refresh_tokens: RefreshTokenSettings | None = None,
    access_token_ttl: int = 600,
) -> DemoIssuer:
    """The demo issuer at ``issuer_url`` (https, or http on loopback).

    ``signer`` defaults to a fresh ES256 key with ``kid`` ``demo-issuer-key``; ``store`` to a
    :class:`MemoryStore` using ``clock``; ``nonce_keys`` to this process's random nonce key
    (workers sharing a store must share one value); ``encryption`` turns on encrypted requests
    and responses (OID4VCI 1.0 §10); ``flood_limits`` to the library's (quotas on, no rate
    limit; ``oid4vci serve`` turns a rate limit on). ``mdoc_certificates`` (an IACA + Document
    Signer pair) signs the mDL; by default a fresh pair is made, and without cbor2 (the ``mdoc``
    extra) the demo has no mDL configuration. Workers sharing a store must share one pair, or
    their mDLs chain to different roots. ``refresh_tokens`` turns on the ``refresh_token`` grant
    (RFC 6749 §6); ``access_token_ttl`` is the access tokens' lifetime in seconds.

    ``profile="haip"`` makes it a HAIP 1.0 issuer (``IssuerConfig.profile``): ``attestation``
    (with the wallet providers' roots) is then needed, key attestations are required, and
    credentials are x5c-signed: under ``credential_signer_chain`` (with its ``trust_anchors``,
    e.g. shared by workers) or, without one, a fresh demo root and signer certificate
    (:func:`oid4vci.issuer_certificates.create_issuer_signing_certificates`).
    """
    spec = demo_configuration(issuer_url)
    signer = signer or LocalSigner.generate("ES256", kid="demo-issuer-key")
    chain, anchors = tuple(credential_signer_chain), tuple(trust_anchors)
    if profile is not None:
        spec = attrs.evolve(spec, key_attestations_required={})
        if not chain:
            certificates = create_issuer_signing_certificates(
                signer, issuer_uri=issuer_url, clock=clock
            )
            chain, anchors = certificates.chain, (certificates.root,)
    specs = [spec]
    document_signer: DocumentSigner | None = None
    iaca: x509.Certificate | None = None
    if mdoc_certificates is None and mdoc_available():
        mdoc_certificates = create_iaca_and_document_signer(
            country=DEMO_MDL_COUNTRY, issuer_uri=issuer_url, clock=clock
        )
    if mdoc_certificates is not None:
        specs.append(demo_mdl_configuration())
        iaca = mdoc_certificates.iaca
        document_signer = DocumentSigner(
            signer=mdoc_certificates.signer,
            certificate_chain=mdoc_certificates.certificate_chain,
        )
    base = IssuerConfig(
        credential_issuer=issuer_url,
        credential_signer=signer,
        credential_configurations=specs,
        document_signer=document_signer,
        claims_source=DemoClaimsSource(clock),
        store=store if store is not None else MemoryStore(clock=clock),
        user_authenticator=DemoLogin(action="/authorize"),
        published_version=published_version,
        display=[{"name": "oid4vci demo issuer", "locale": "en-US"}],
        allow_bearer=allow_bearer,
        batch_size=10,
        clients=ClientPolicy(allow_custom_schemes=True),
        clock=clock,
        status=StatusListSettings(),
        nonce_keys=nonce_keys if nonce_keys is not None else default_nonce_keys(),
        encryption=encryption,
        flood_limits=flood_limits if flood_limits is not None else FloodLimits(),
        attestation=attestation,
        credential_signer_chain=chain,
        profile=profile,
        refresh_tokens=refresh_tokens,
        access_token_ttl=access_token_ttl,
    )
    config = attrs.evolve(base, user_authenticator=DemoLogin(action=base.endpoint("authorize")))
    templates = [
        OfferTemplate(name="pre_auth", configuration_ids=[spec.id], subject="alice"),
        OfferTemplate(
            name="pre_auth_tx_code",
            configuration_ids=[spec.id],
            subject="alice",
            tx_code=TxCodeSpec(
                input_mode="numeric",
                length=len(DEMO_TX_CODE),
                description="the 6-digit code shown by the demo issuer",
                value=DEMO_TX_CODE,
            ),
        ),
        OfferTemplate(
            name="auth_code",
            configuration_ids=[spec.id],
            grant="authorization_code",
            subject="alice",
        ),
    ]
    if document_signer is not None:
        templates.append(
            OfferTemplate(
                name="pre_auth_mdoc", configuration_ids=[DEMO_MDL_CONFIGURATION_ID], subject="alice"
            )
        )
    issuer = Issuer(config, offer_templates=templates)
    return DemoIssuer(
        issuer=issuer,
        offer_links={t.name: issuer.offer_template_link(t.name) for t in templates},
        offer_urls={t.name: issuer.offer_template_url(t.name) for t in templates},
        iaca=iaca,
        trust_anchors=anchors,
    )
