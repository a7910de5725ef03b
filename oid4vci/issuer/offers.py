"""Credential Offers (OID4VCI 1.0 §4), issuer side: creating them and serving them by reference.

* :func:`create_pre_authorized_offer` creates a pre-authorized code for a subject (optionally
  protected by a Transaction Code) and stores it through
  :func:`oid4vci.issuer.token.store_pre_authorized_code`.
* :func:`create_authorization_code_offer` creates an ``issuer_state`` stored as
  ``issuer_state:<value>`` (read by the authorization endpoint, and used up when it issues
  a code: single use, like a pre-authorized code).
* By reference (OID4VCI 1.0 §4.1.3): the offer JSON is stored as ``offer:<id>`` and served at
  ``GET <issuer>/offers/<id>``, single use unless ``reusable``. The store sees neither the id
  (the key holds its digest) nor the offer, whose pre-authorized code is a secret: the record
  is sealed (AES-256-GCM, :class:`SealedOfferRecord`) under a key derived from the id. Stages, composed by
  :func:`handle_offer`: :func:`parse_offer_request` → :func:`verify_offer_request` (the
  stored offer, taken once, or the template) → :func:`create_offer_response`.
* Offer templates (:class:`OfferTemplate`): ``GET <issuer>/offers/templates/<name>`` creates a
  **fresh** single-use offer (new pre-authorized code or ``issuer_state``) at every fetch, so a
  printed ``openid-credential-offer://?credential_offer_uri=…`` link stays usable forever while
  every wallet that follows it gets its own code.

Secrets (pre-authorized codes, Transaction Codes) never appear in reprs.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

import attrs
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from oid4vci._wire import record_from_json, record_to_json, store_record
from oid4vci.errors import (
    ArgumentTypeError,
    CredentialRequestError,
    ErrorCode,
    JoseError,
    ProtocolError,
    StoreError,
    UsageError,
)
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer import store_keys
from oid4vci.issuer.authorization import IssuerStateRecord
from oid4vci.issuer.config import IssuerConfig, _str_tuple
from oid4vci.issuer.flood_limits import claim_room, refused
from oid4vci.issuer.responses import (
    create_error_response,
    json_response,
    with_allow,
)
from oid4vci.issuer.token import PreAuthorizedCodeRecord, store_pre_authorized_code
from oid4vci.jose import b64url_decode, b64url_encode
from oid4vci.models.offer import (
    AuthorizationCodeGrant,
    CredentialOffer,
    PreAuthorizedCodeGrant,
    TxCode,
    build_credential_offer_uri,
    credential_offer_to_json,
)

__all__ = [
    "OFFER_SCHEME",
    "TEMPLATE_PATH",
    "CreatedOffer",
    "OfferOptions",
    "OfferRecord",
    "OfferRequest",
    "OfferTemplate",
    "SealedOfferRecord",
    "TxCodeSpec",
    "create_authorization_code_offer",
    "create_offer_from_template",
    "create_offer_response",
    "create_pre_authorized_offer",
    "handle_offer",
    "offer_template_url",
    "offer_url",
    "parse_offer_request",
    "verify_offer_request",
]

#: The custom scheme of offer links when the wallet's offer endpoint is unknown.
OFFER_SCHEME = "openid-credential-offer://"
#: Path segment under ``/offers/`` where templates are served.
TEMPLATE_PATH = "templates/"


@attrs.frozen(kw_only=True)
class OfferOptions:
    """How an offer is published (OID4VCI 1.0 §4.1).

    ``by_reference`` stores it and links to ``<issuer>/offers/<id>`` (``credential_offer_uri``,
    OID4VCI 1.0 §4.1.3) instead of putting it in the link by value; such an offer is served once
    unless ``reusable``. ``scheme`` is the link's scheme (the wallet's credential offer endpoint, or
    ``openid-credential-offer://``).
    """

    by_reference: bool = False
    reusable: bool = False
    scheme: str = OFFER_SCHEME


@store_record
@attrs.frozen(kw_only=True, repr=False)
class OfferRecord:
    """An offer served by reference, as stored under ``offer:<id>`` (OID4VCI 1.0 §4.1.3).

    Its repr names the configurations and grant types only: the offer holds the
    pre-authorized code, a bearer secret (OID4VCI 1.0 §13.6)."""

    offer: dict[str, Any]
    reusable: bool = False

    def __repr__(self) -> str:
        ids = self.offer.get("credential_configuration_ids")
        grants = self.offer.get("grants")
        names = sorted(grants) if isinstance(grants, dict) else []
        return f"OfferRecord(configuration_ids={ids!r}, grants={names!r}, reusable={self.reusable})"


@store_record
@attrs.frozen(kw_only=True, repr=False)
class SealedOfferRecord:
    """What the store holds under ``offer:<digest of the id>``: an :class:`OfferRecord`'s
    JSON, AES-256-GCM encrypted (base64url of nonce and ciphertext) under SHA-256 of a domain
    label and the offer id, with the store key as associated data. Only the holder of the
    offer URL can open it; the store never sees the id."""

    sealed: str

    def __repr__(self) -> str:
        return "SealedOfferRecord(...)"


_SEAL_LABEL = b"oid4vci offer record\x00"


def _offer_cipher(offer_id: str) -> AESGCM:
    return AESGCM(hashlib.sha256(_SEAL_LABEL + offer_id.encode("utf-8")).digest())


def _seal_offer(offer_id: str, record: OfferRecord) -> dict[str, Any]:
    nonce = secrets.token_bytes(12)
    plain = json.dumps(record_to_json(record), separators=(",", ":")).encode("utf-8")
    aad = store_keys.offer_key(offer_id).encode("utf-8")
    sealed = nonce + _offer_cipher(offer_id).encrypt(nonce, plain, aad)
    return record_to_json(SealedOfferRecord(sealed=b64url_encode(sealed)))


def _open_offer(offer_id: str, raw: Any) -> OfferRecord | None:
    """The sealed offer ``raw`` holds, or ``None`` (missing, malformed, or not this id's)."""
    stored = record_from_json(raw, SealedOfferRecord)
    if stored is None:
        return None
    try:
        blob = b64url_decode(stored.sealed)
        aad = store_keys.offer_key(offer_id).encode("utf-8")
        plain = _offer_cipher(offer_id).decrypt(blob[:12], blob[12:], aad)
        return record_from_json(json.loads(plain), OfferRecord)
    except (JoseError, InvalidTag, ValueError):
        return None


@attrs.frozen(kw_only=True)
class OfferRequest:
    """A parsed request for an offer by reference: a stored offer's id or a template's name."""

    offer_id: str | None = None
    template: str | None = None


@attrs.frozen(kw_only=True, repr=False)
class TxCodeSpec:
    """How to protect a pre-authorized code with a Transaction Code.

    ``value`` fixes the code (e.g. for a demo); ``None`` draws a random one of ``length``
    characters (digits for ``numeric``, letters and digits for ``text``).
    """

    input_mode: Literal["numeric", "text"] = "numeric"
    length: int = attrs.field(default=6)
    description: str | None = None
    value: str | None = attrs.field(default=None)

    @length.validator
    def _check_length(self, _: attrs.Attribute[int], value: int) -> None:
        if not 4 <= value <= 32:
            raise UsageError("tx_code length must be between 4 and 32")

    @value.validator
    def _check_value(self, _: attrs.Attribute[str | None], value: str | None) -> None:
        if value is None:
            return
        if len(value) != self.length:
            raise UsageError("tx_code value must have the declared length")
        if self.input_mode == "numeric" and not value.isdigit():
            raise UsageError("a numeric tx_code must be digits")

    def generate(self) -> str:
        """The code to require: ``value`` or a fresh random one."""
        if self.value is not None:
            return self.value
        alphabet = (
            string.digits if self.input_mode == "numeric" else string.ascii_letters + string.digits
        )
        return "".join(secrets.choice(alphabet) for _ in range(self.length))

    def wire(self) -> TxCode:
        """The ``tx_code`` object of the offer (never the value)."""
        return TxCode(input_mode=self.input_mode, length=self.length, description=self.description)

    def __repr__(self) -> str:
        fixed = "fixed" if self.value is not None else "random"
        return f"TxCodeSpec(input_mode={self.input_mode!r}, length={self.length}, value={fixed})"


@attrs.frozen(kw_only=True, repr=False)
class CreatedOffer:
    """A created offer.

    ``offer_uri`` is the ``openid-credential-offer://`` link (by value, or by reference to
    ``https_uri``); ``https_uri`` is the by-reference URL (``None`` for offers by value).
    ``tx_code`` is the Transaction Code to give the user out of band; ``pre_authorized_code``
    and ``tx_code`` are secrets and hidden from ``repr``.
    """

    offer: CredentialOffer
    offer_uri: str
    https_uri: str | None = None
    offer_id: str | None = None
    tx_code: str | None = None
    pre_authorized_code: str | None = None
    issuer_state: str | None = None

    @property
    def offer_json(self) -> dict[str, Any]:
        """The offer object as JSON."""
        return credential_offer_to_json(self.offer)

    def __repr__(self) -> str:
        return (
            f"CreatedOffer(configuration_ids={self.offer.credential_configuration_ids!r}, "
            f"grants={self.offer.grant_types!r}, by_reference={self.https_uri is not None})"
        )


@attrs.frozen(kw_only=True)
class OfferTemplate:
    """A reusable offer link: each fetch creates a fresh single-use offer.

    ``grant`` is ``pre-authorized_code`` (needs ``subject``; optional ``tx_code``) or
    ``authorization_code`` (``subject`` is stored with the ``issuer_state`` as a hint).
    """

    name: str = attrs.field()
    configuration_ids: tuple[str, ...] = attrs.field(converter=_str_tuple)
    grant: Literal["pre-authorized_code", "authorization_code"] = "pre-authorized_code"
    subject: str | None = None
    tx_code: TxCodeSpec | None = None

    @name.validator
    def _check_name(self, _: attrs.Attribute[str], value: str) -> None:
        if not value or quote(value, safe="") != value:
            raise UsageError("template names must be non-empty and URL-safe")

    def __attrs_post_init__(self) -> None:
        if self.grant == "pre-authorized_code" and not self.subject:
            raise UsageError("a pre-authorized template needs a subject")


def offer_url(offer_id: str, config: IssuerConfig) -> str:
    """The by-reference URL of a stored offer: ``<issuer>/offers/<id>``."""
    return config.endpoint("offer", offer_id)


def offer_template_url(name: str, config: IssuerConfig) -> str:
    """The URL serving template ``name``: ``<issuer>/offers/templates/<name>``."""
    return config.endpoint("offer", "x")[:-1] + TEMPLATE_PATH + quote(name, safe="")


def _check_ids(config: IssuerConfig, configuration_ids: Sequence[str]) -> tuple[str, ...]:
    ids = _str_tuple(configuration_ids)
    if not all(isinstance(cid, str) for cid in ids):
        raise ArgumentTypeError("configuration_ids must be strings")
    if not ids:
        raise UsageError("an offer needs at least one credential configuration")
    unknown = [cid for cid in ids if cid not in config.credential_configurations]
    if unknown:
        raise UsageError(f"unknown credential configurations: {unknown!r}")
    if len(set(ids)) != len(ids):
        raise UsageError("credential configurations must not repeat")
    return ids


async def _create_offer(
    config: IssuerConfig,
    *,
    ids: tuple[str, ...],
    offer_id: str,
    options: OfferOptions,
    pre_authorized_code: PreAuthorizedCodeGrant | None = None,
    authorization_code: AuthorizationCodeGrant | None = None,
) -> CreatedOffer:
    """The offer with one grant, published by value or (stored as ``offer:<id>``) by reference."""
    offer = CredentialOffer(
        credential_issuer=config.credential_issuer,
        credential_configuration_ids=ids,
        pre_authorized_code=pre_authorized_code,
        authorization_code=authorization_code,
    )
    https_uri: str | None = None
    scheme = options.scheme
    if options.by_reference:
        record = OfferRecord(offer=credential_offer_to_json(offer), reusable=options.reusable)
        await config.store.put(
            store_keys.offer_key(offer_id),
            _seal_offer(offer_id, record),
            store_keys.OFFER.ttl(config),
        )
        https_uri = offer_url(offer_id, config)
        offer_uri = build_credential_offer_uri(None, offer_uri=https_uri, scheme=scheme)
    else:
        offer_uri = build_credential_offer_uri(offer, scheme=scheme)
    return CreatedOffer(offer=offer, offer_uri=offer_uri, https_uri=https_uri, offer_id=offer_id)


async def create_pre_authorized_offer(
    config: IssuerConfig,
    *,
    configuration_ids: Sequence[str],
    subject: str,
    tx_code: TxCodeSpec | None = None,
    data: Mapping[str, Any] | None = None,
    options: OfferOptions | None = None,
) -> CreatedOffer:
    """Create a pre-authorized code offer for ``subject``.

    The code lives ``config.pre_authorized_code_ttl`` seconds and is redeemable once (with the
    Transaction Code when ``tx_code`` is given). ``options`` (:class:`OfferOptions`) says how
    it is published (by value by default). ``data`` is stored with the code
    (see :class:`~oid4vci.issuer.token.PreAuthorizedCodeRecord`). Raises :class:`ValueError` for
    unknown configurations or an empty ``subject`` (:class:`~oid4vci.errors.UsageError`, a
    ``ValueError``), :class:`~oid4vci.errors.ArgumentTypeError` for arguments of the wrong type.
    """
    ids = _check_ids(config, configuration_ids)
    if not isinstance(subject, str):
        raise ArgumentTypeError("subject must be a string")
    if not subject:
        raise UsageError("a pre-authorized offer needs a subject")
    code = secrets.token_urlsafe(32)
    offer_id = secrets.token_urlsafe(16)
    tx_value = tx_code.generate() if tx_code is not None else None
    grant = PreAuthorizedCodeRecord(
        subject=subject,
        configuration_ids=ids,
        tx_code=tx_value,
        offer_id=store_keys.secret_digest(offer_id),
        data=dict(data or {}),
    )
    await store_pre_authorized_code(
        config.store, code, grant, store_keys.PRE_AUTHORIZED_CODE.ttl(config)
    )
    created = await _create_offer(
        config,
        ids=ids,
        offer_id=offer_id,
        options=options or OfferOptions(),
        pre_authorized_code=PreAuthorizedCodeGrant(
            pre_authorized_code=code,
            tx_code=tx_code.wire() if tx_code is not None else None,
        ),
    )
    return attrs.evolve(created, tx_code=tx_value, pre_authorized_code=code)


async def create_authorization_code_offer(
    config: IssuerConfig,
    *,
    configuration_ids: Sequence[str],
    subject: str | None = None,
    options: OfferOptions | None = None,
) -> CreatedOffer:
    """Create an authorization code offer with a fresh ``issuer_state``.

    ``issuer_state:<value>`` stores ``{"configuration_ids", "offer_id", "subject"?}`` for the
    authorization endpoint (which uses the offered configurations when the wallet asks for none,
    and uses the ``issuer_state`` up when it issues a code).
    """
    ids = _check_ids(config, configuration_ids)
    issuer_state = secrets.token_urlsafe(24)
    offer_id = secrets.token_urlsafe(16)
    state = IssuerStateRecord(
        configuration_ids=ids, offer_id=store_keys.secret_digest(offer_id), subject=subject
    )
    await config.store.put(
        store_keys.issuer_state_key(issuer_state),
        record_to_json(state),
        store_keys.ISSUER_STATE.ttl(config),
    )
    created = await _create_offer(
        config,
        ids=ids,
        offer_id=offer_id,
        options=options or OfferOptions(),
        authorization_code=AuthorizationCodeGrant(issuer_state=issuer_state),
    )
    return attrs.evolve(created, issuer_state=issuer_state)


async def create_offer_from_template(
    template: OfferTemplate, config: IssuerConfig, *, options: OfferOptions | None = None
) -> CreatedOffer:
    """A fresh single-use offer made from ``template``.

    Anybody may fetch a template, so each fetch first claims room in the ``offer_template``
    quota (:func:`~oid4vci.issuer.flood_limits.claim_room`).
    """
    await claim_room("offer_template", config)
    if template.grant == "authorization_code":
        return await create_authorization_code_offer(
            config,
            configuration_ids=template.configuration_ids,
            subject=template.subject,
            options=options,
        )
    assert template.subject is not None
    return await create_pre_authorized_offer(
        config,
        configuration_ids=template.configuration_ids,
        subject=template.subject,
        tx_code=template.tx_code,
        options=options,
    )


def _not_found() -> CredentialRequestError:
    return CredentialRequestError(
        ErrorCode.INVALID_REQUEST, "unknown or expired credential offer", status=404
    )


def parse_offer_request(request: HttpRequest | RequestDict, config: IssuerConfig) -> OfferRequest:
    """Parse ``GET <issuer>/offers/<id>`` or ``…/offers/templates/<name>`` (OID4VCI 1.0 §4.1.3).

    Raises :class:`CredentialRequestError` (405 for another method, 404 for another path).
    """
    req = HttpRequest.coerce(request)
    if req.method != "GET":
        raise CredentialRequestError(ErrorCode.INVALID_REQUEST, "use GET", status=405)
    base = urlsplit(config.endpoint("offer", "x")).path[:-1]
    try:
        path = urlsplit(req.url).path
    except ValueError:
        raise _not_found() from None
    if not path.startswith(base):
        raise _not_found()
    rest = path[len(base) :]
    if rest.startswith(TEMPLATE_PATH):
        return OfferRequest(template=unquote(rest[len(TEMPLATE_PATH) :]))
    offer_id = unquote(rest)
    if not offer_id or "/" in offer_id:
        raise _not_found()
    return OfferRequest(offer_id=offer_id)


async def verify_offer_request(
    parsed: OfferRequest,
    config: IssuerConfig,
    *,
    templates: Mapping[str, OfferTemplate] | None = None,
) -> OfferRecord | OfferTemplate:
    """Find the offer: the stored one (taken unless reusable) or the named template.

    Unknown, expired or used offers raise :class:`CredentialRequestError` (404).
    """
    if parsed.template is not None:
        template = (templates or {}).get(parsed.template)
        if template is None:
            raise _not_found()
        return template
    assert parsed.offer_id is not None
    key = store_keys.offer_key(parsed.offer_id)
    record = _open_offer(parsed.offer_id, await config.store.get(key))
    if record is None:
        raise _not_found()
    if not record.reusable and await config.store.take(key) is None:
        raise _not_found()
    return record


async def create_offer_response(
    offer: OfferRecord | OfferTemplate, config: IssuerConfig
) -> HttpResponse:
    """200 with the offer JSON; a template first creates a fresh single-use offer."""
    if isinstance(offer, OfferTemplate):
        created = await create_offer_from_template(offer, config)
        return json_response(200, created.offer_json)
    return json_response(200, offer.offer)


async def handle_offer(
    request: HttpRequest | RequestDict,
    config: IssuerConfig,
    *,
    templates: Mapping[str, OfferTemplate] | None = None,
) -> HttpResponse:
    """The credential offer endpoint (by reference): parse → verify → create the response.

    Answers errors (404 JSON for unknown, expired or used offers), never raises them.
    """
    try:
        parsed = parse_offer_request(request, config)
        offer = await verify_offer_request(parsed, config, templates=templates)
        return await create_offer_response(offer, config)
    except ProtocolError as err:
        return with_allow(create_error_response(err), ("GET",))
    except StoreError as exc:
        return refused(exc, config, "offer")
