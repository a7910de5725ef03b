"""Credential Offer (OID4VCI 1.0 §4): the offer object, its grants, and the offer URL forms."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit

import attrs

from oid4vci._wire import (
    check_dict,
    check_list,
    check_str,
    field_check,
    loads_json,
    merge_extra,
    structure,
    unstructure,
    wire_model,
)
from oid4vci.errors import OfferError, UsageError, WireFormatError

__all__ = [
    "AUTHORIZATION_CODE_GRANT",
    "PRE_AUTHORIZED_CODE_GRANT",
    "AuthorizationCodeGrant",
    "CredentialOffer",
    "OfferFormatError",
    "PreAuthorizedCodeGrant",
    "TxCode",
    "build_credential_offer_uri",
    "credential_offer_to_json",
    "parse_credential_offer_json",
    "parse_credential_offer_uri",
]

#: Grant type identifier of the pre-authorized code flow.
PRE_AUTHORIZED_CODE_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
#: Grant type identifier of the authorization code flow (as used in offers).
AUTHORIZATION_CODE_GRANT = "authorization_code"

_TX_DESCRIPTION_MAX = 300


class OfferFormatError(OfferError, WireFormatError):
    """A credential offer (or offer URL) that does not have the wire shape.

    Both an :class:`~oid4vci.errors.OfferError` and a :class:`~oid4vci.errors.WireFormatError`
    (with ``path`` in wire spelling).
    """


@wire_model()
@attrs.frozen(kw_only=True)
class TxCode:
    """The ``tx_code`` object of a pre-authorized grant: a Transaction Code is required.

    Its presence (even ``{}``) means the wallet must send a ``tx_code`` to the token endpoint.
    """

    input_mode: Literal["numeric", "text"] | None = None
    length: int | None = attrs.field(
        default=None, validator=field_check(lambda v: v > 0, "must be a positive integer")
    )
    description: str | None = attrs.field(
        default=None,
        validator=field_check(
            lambda v: len(v) <= _TX_DESCRIPTION_MAX, "must be at most 300 characters"
        ),
    )
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def effective_input_mode(self) -> str:
        """``input_mode`` with its default (``numeric``, OID4VCI 1.0 §4.1.1) applied."""
        return self.input_mode or "numeric"


@wire_model(pre_authorized_code="pre-authorized_code")
@attrs.frozen(kw_only=True)
class PreAuthorizedCodeGrant:
    """``grants["urn:ietf:params:oauth:grant-type:pre-authorized_code"]``.

    The code is a secret and never shown in ``repr``.
    """

    pre_authorized_code: str = attrs.field(repr=False)
    tx_code: TxCode | None = None
    authorization_server: str | None = None
    interval: int | None = None  # Draft 13 only
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)


@wire_model()
@attrs.frozen(kw_only=True)
class AuthorizationCodeGrant:
    """``grants["authorization_code"]``: optional ``issuer_state`` and ``authorization_server``."""

    issuer_state: str | None = None
    authorization_server: str | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


def _unique_ids(ids: tuple[str, ...]) -> bool:
    return len(ids) > 0 and len(set(ids)) == len(ids)


@attrs.frozen(kw_only=True)
class CredentialOffer:
    """A Credential Offer (normalized; same shape in every version).

    ``other_grants`` keeps grant types this library does not know, ``extra`` unknown members.
    """

    credential_issuer: str
    credential_configuration_ids: tuple[str, ...] = attrs.field(
        validator=field_check(_unique_ids, "must be a non-empty array of unique strings")
    )
    pre_authorized_code: PreAuthorizedCodeGrant | None = attrs.field(default=None, repr=False)
    authorization_code: AuthorizationCodeGrant | None = None
    other_grants: dict[str, Any] = attrs.field(factory=dict)
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def grant_types(self) -> tuple[str, ...]:
        """The grant type identifiers the offer carries."""
        out: list[str] = []
        if self.authorization_code is not None:
            out.append(AUTHORIZATION_CODE_GRANT)
        if self.pre_authorized_code is not None:
            out.append(PRE_AUTHORIZED_CODE_GRANT)
        out.extend(self.other_grants)
        return tuple(out)


_OFFER_KNOWN = frozenset({"credential_issuer", "credential_configuration_ids", "grants"})


def _offer_error(exc: WireFormatError) -> OfferFormatError:
    if isinstance(exc, OfferFormatError):
        return exc
    message = str(exc)
    if exc.path and message.startswith(exc.path + ": "):
        message = message[len(exc.path) + 2 :]
    return OfferFormatError(message, path=exc.path)


def parse_credential_offer_json(data: Any) -> CredentialOffer:
    """Read a Credential Offer object (a dict, already decoded from JSON).

    Accepts the legacy ``credentials`` key (Draft 13's by-value URL examples) when
    ``credential_configuration_ids`` is absent. Raises :class:`OfferFormatError`.
    """
    try:
        return _parse_offer(data)
    except WireFormatError as exc:
        raise _offer_error(exc) from None


def _parse_offer(data: Any) -> CredentialOffer:
    check_dict(data)
    issuer = check_str(_required(data, "credential_issuer"), "credential_issuer")
    extra = {k: v for k, v in data.items() if k not in _OFFER_KNOWN}
    if "credential_configuration_ids" in data:
        key = "credential_configuration_ids"
    elif "credentials" in data:
        key = "credentials"
        extra.pop("credentials")
    else:
        raise WireFormatError("required member is missing", path="credential_configuration_ids")
    raw_ids = check_list(data[key], key)
    ids = tuple(check_str(v, f"{key}.{i}") for i, v in enumerate(raw_ids))
    if not ids:
        raise WireFormatError("must not be empty", path=key)
    if len(set(ids)) != len(ids):
        raise WireFormatError("must not contain duplicates", path=key)

    pre: PreAuthorizedCodeGrant | None = None
    auth: AuthorizationCodeGrant | None = None
    other: dict[str, Any] = {}
    grants = data.get("grants")
    if grants is not None:
        check_dict(grants, "grants")
        for name, value in grants.items():
            if name == PRE_AUTHORIZED_CODE_GRANT:
                pre = structure(value, PreAuthorizedCodeGrant, path_prefix=f"grants.{name}")
            elif name == AUTHORIZATION_CODE_GRANT:
                auth = structure(value, AuthorizationCodeGrant, path_prefix=f"grants.{name}")
            else:
                other[name] = value
    return CredentialOffer(
        credential_issuer=issuer,
        credential_configuration_ids=ids,
        pre_authorized_code=pre,
        authorization_code=auth,
        other_grants=other,
        extra=extra,
    )


def _required(data: Mapping[str, Any], key: str, prefix: str = "") -> Any:
    try:
        return data[key]
    except KeyError:
        raise WireFormatError(
            "required member is missing", path=f"{prefix}.{key}" if prefix else key
        ) from None


def credential_offer_to_json(offer: CredentialOffer) -> dict[str, Any]:
    """The offer as a JSON-ready dict (always ``credential_configuration_ids``)."""
    out: dict[str, Any] = {
        "credential_issuer": offer.credential_issuer,
        "credential_configuration_ids": list(offer.credential_configuration_ids),
    }
    grants: dict[str, Any] = {}
    if offer.authorization_code is not None:
        grants[AUTHORIZATION_CODE_GRANT] = unstructure(offer.authorization_code)
    if offer.pre_authorized_code is not None:
        grants[PRE_AUTHORIZED_CODE_GRANT] = unstructure(offer.pre_authorized_code)
    for name, value in offer.other_grants.items():
        grants.setdefault(name, value)
    if grants:
        out["grants"] = grants
    return merge_extra(out, offer.extra)


def parse_credential_offer_uri(text: str) -> CredentialOffer | str:
    """Read what a wallet received as a Credential Offer.

    Accepts ``openid-credential-offer://?credential_offer=...`` (and any other scheme such as
    ``haip://`` or an ``https`` link to the wallet's offer endpoint) and raw JSON offer text.
    Returns the :class:`CredentialOffer` (by value) or the ``credential_offer_uri`` string (by
    reference; not fetched here). Exactly one of the two parameters must be present, once.
    """
    if not isinstance(text, str):
        raise OfferFormatError("expected the offer URL as a string")
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = loads_json(stripped)
        except WireFormatError as exc:
            raise _offer_error(exc) from None
        return parse_credential_offer_json(data)
    try:
        parts = urlsplit(stripped)
    except ValueError as exc:
        raise OfferFormatError("not a valid URL") from exc
    query = parts.query
    if not query and "?" not in stripped and parts.fragment == "" and "=" in stripped:
        query = stripped  # a bare query string
    try:
        params = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:
        raise OfferFormatError("malformed query string") from exc
    by_value = [v for k, v in params if k == "credential_offer"]
    by_ref = [v for k, v in params if k == "credential_offer_uri"]
    if by_value and by_ref:
        raise OfferFormatError(
            "credential_offer and credential_offer_uri are mutually exclusive",
            path="credential_offer",
        )
    if len(by_value) > 1:
        raise OfferFormatError("repeated parameter", path="credential_offer")
    if len(by_ref) > 1:
        raise OfferFormatError("repeated parameter", path="credential_offer_uri")
    if by_ref:
        uri = by_ref[0].strip()
        if not uri:
            raise OfferFormatError("must not be empty", path="credential_offer_uri")
        return uri
    if by_value:
        try:
            data = loads_json(by_value[0], "credential_offer")
        except WireFormatError as exc:
            raise _offer_error(exc) from None
        try:
            return _parse_offer(data)
        except WireFormatError as exc:
            raise _offer_error(exc) from None
    raise OfferFormatError(
        "neither credential_offer nor credential_offer_uri is present", path="credential_offer"
    )


def build_credential_offer_uri(
    offer: CredentialOffer | None,
    *,
    offer_uri: str | None = None,
    scheme: str = "openid-credential-offer://",
) -> str:
    """Build the offer URL: ``<scheme>?credential_offer=<json>`` or ``...credential_offer_uri=``.

    ``scheme`` may be a bare scheme (``openid-credential-offer://``, ``haip://``) or the URL of a
    wallet's Credential Offer Endpoint. Exactly one of ``offer`` and ``offer_uri`` is given.
    """
    if (offer is None) == (offer_uri is None):
        raise UsageError("give exactly one of offer and offer_uri")
    if offer is not None:
        text = json.dumps(credential_offer_to_json(offer), separators=(",", ":"))
        query = urlencode({"credential_offer": text})
    else:
        query = urlencode({"credential_offer_uri": offer_uri})
    sep = "?"
    if "?" in scheme:
        sep = "" if scheme.endswith(("?", "&")) else "&"
    return f"{scheme}{sep}{query}"
