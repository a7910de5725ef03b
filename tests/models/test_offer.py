"""Credential offer parsing: URL forms, legacy key, grants, errors with wire paths."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from oid4vci.errors import OfferError, WireFormatError
from oid4vci.models import (
    CredentialOffer,
    OfferFormatError,
    PreAuthorizedCodeGrant,
    TxCode,
    build_credential_offer_uri,
    credential_offer_to_json,
    parse_credential_offer_json,
    parse_credential_offer_uri,
)

PRE = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
BASE: dict[str, Any] = {
    "credential_issuer": "https://issuer.example.com",
    "credential_configuration_ids": ["pid"],
    "grants": {PRE: {"pre-authorized_code": "code-123", "tx_code": {"length": 4}}},
}


@pytest.mark.parametrize(
    "prefix",
    [
        "openid-credential-offer://?",
        "haip://?",
        "openid-credential-offer://credential_offer?",
        "https://wallet.example.org/offer?foo=bar&",
        "  openid-credential-offer://?",
    ],
)
def test_offer_by_value_in_any_scheme(prefix: str) -> None:
    offer = parse_credential_offer_uri(prefix + "credential_offer=" + quote(json.dumps(BASE)))
    assert isinstance(offer, CredentialOffer)
    assert credential_offer_to_json(offer) == BASE


def test_raw_json_text() -> None:
    offer = parse_credential_offer_uri(json.dumps(BASE))
    assert isinstance(offer, CredentialOffer)
    assert offer.pre_authorized_code == PreAuthorizedCodeGrant(
        pre_authorized_code="code-123", tx_code=TxCode(length=4)
    )


def test_build_and_parse_back() -> None:
    offer = parse_credential_offer_json(BASE)
    for scheme in ("openid-credential-offer://", "haip://", "https://wallet.example/cb?x=1"):
        assert parse_credential_offer_uri(build_credential_offer_uri(offer, scheme=scheme)) == offer
    by_ref = build_credential_offer_uri(None, offer_uri="https://issuer.example.com/o/1")
    assert by_ref.startswith("openid-credential-offer://?credential_offer_uri=")
    assert parse_credential_offer_uri(by_ref) == "https://issuer.example.com/o/1"
    with pytest.raises(ValueError):
        build_credential_offer_uri(offer, offer_uri="https://x")
    with pytest.raises(ValueError):
        build_credential_offer_uri(None)


@pytest.mark.parametrize(
    "url",
    [
        "openid-credential-offer://?credential_offer=%7B%7D&credential_offer_uri=https%3A%2F%2Fx",
        "openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fa&credential_offer_uri=https%3A%2F%2Fb",
        "openid-credential-offer://?credential_offer=%7B%7D&credential_offer=%7B%7D",
        "openid-credential-offer://?foo=bar",
        "openid-credential-offer://",
        "openid-credential-offer://?credential_offer_uri=",
        "openid-credential-offer://?credential_offer=not-json",
        "{not json",
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(OfferError) as info:
        parse_credential_offer_uri(url)
    assert isinstance(info.value, WireFormatError)


def _offer_with(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(BASE))
    data.update(changes)
    return data


def _grant_with(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(BASE))
    data["grants"][PRE].update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "path"),
    [
        (_offer_with(credential_configuration_ids=[]), "credential_configuration_ids"),
        (_offer_with(credential_configuration_ids=["a", "a"]), "credential_configuration_ids"),
        (_offer_with(credential_configuration_ids="pid"), "credential_configuration_ids"),
        (_offer_with(credential_configuration_ids=["a", 3]), "credential_configuration_ids.1"),
        (_offer_with(credential_issuer=5), "credential_issuer"),
        ({"credential_configuration_ids": ["a"]}, "credential_issuer"),
        ({"credential_issuer": "https://i"}, "credential_configuration_ids"),
        ({"credential_issuer": "https://i", "credentials": [{"format": "x"}]}, "credentials.0"),
        (_offer_with(grants=[]), "grants"),
        (_grant_with(**{"pre-authorized_code": 1}), f"grants.{PRE}.pre-authorized_code"),
        (_grant_with(tx_code={"length": -1}), f"grants.{PRE}.tx_code.length"),
        (_grant_with(tx_code={"length": "4"}), f"grants.{PRE}.tx_code.length"),
        (_grant_with(tx_code={"length": True}), f"grants.{PRE}.tx_code.length"),
        (_grant_with(tx_code={"input_mode": "alpha"}), f"grants.{PRE}.tx_code.input_mode"),
        (_grant_with(tx_code={"description": "d" * 301}), f"grants.{PRE}.tx_code.description"),
        (_grant_with(tx_code="yes"), f"grants.{PRE}.tx_code"),
        (
            _offer_with(grants={"authorization_code": {"issuer_state": 7}}),
            "grants.authorization_code.issuer_state",
        ),
    ],
)
def test_offer_errors_name_wire_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(OfferFormatError) as info:
        parse_credential_offer_json(data)
    assert info.value.path == path
    with pytest.raises(WireFormatError):
        parse_credential_offer_uri(
            "openid-credential-offer://?credential_offer=" + quote(json.dumps(data))
        )


@pytest.mark.parametrize("data", [None, [], "offer", 3])
def test_offer_not_an_object(data: Any) -> None:
    with pytest.raises(OfferFormatError):
        parse_credential_offer_json(data)


def test_unknown_members_and_grants_are_kept() -> None:
    data = _offer_with(
        x_custom={"a": 1},
        grants={"urn:example:grant": {"z": 1}, "authorization_code": {"issuer_state": "s", "q": 2}},
    )
    offer = parse_credential_offer_json(data)
    assert offer.extra == {"x_custom": {"a": 1}}
    assert offer.other_grants == {"urn:example:grant": {"z": 1}}
    assert offer.authorization_code is not None and offer.authorization_code.extra == {"q": 2}
    assert credential_offer_to_json(offer) == data
    assert offer.grant_types == ("authorization_code", "urn:example:grant")


def test_repr_hides_pre_authorized_code() -> None:
    offer = parse_credential_offer_json(BASE)
    assert "code-123" not in repr(offer)
    assert offer.pre_authorized_code is not None
    assert "code-123" not in repr(offer.pre_authorized_code)


def test_legacy_credentials_only_when_new_key_absent() -> None:
    both = _offer_with(credentials=["other"])
    offer = parse_credential_offer_json(both)
    assert offer.credential_configuration_ids == ("pid",)
    assert offer.extra == {"credentials": ["other"]}
