"""Arbitrary JSON never makes a parser raise anything but a ValidationError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oid4vci.errors import ValidationError, WireFormatError
from oid4vci.models import (
    parse_as_metadata,
    parse_authorization_details,
    parse_credential_offer_json,
    parse_credential_offer_uri,
    parse_credential_request_json,
    parse_credential_response_json,
    parse_deferred_credential_request_json,
    parse_error_response,
    parse_issuer_metadata,
    parse_nonce_response,
    parse_notification_request_json,
    parse_par_response,
    parse_token_response,
)

KEYS = [
    "credential_issuer",
    "credential_configuration_ids",
    "credentials",
    "grants",
    "urn:ietf:params:oauth:grant-type:pre-authorized_code",
    "pre-authorized_code",
    "tx_code",
    "length",
    "credential_endpoint",
    "credential_configurations_supported",
    "format",
    "proof",
    "proofs",
    "proof_type",
    "jwt",
    "credential",
    "credential_identifier",
    "credential_configuration_id",
    "access_token",
    "token_type",
    "authorization_details",
    "type",
    "transaction_id",
    "notification_id",
    "event",
    "error",
    "issuer",
    "request_uri",
    "expires_in",
    "c_nonce",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.text(max_size=4)
    | st.floats(allow_nan=False)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3), inner, max_size=4)
    ),
    max_leaves=12,
)

PARSERS: list[Callable[[Any], Any]] = [
    parse_as_metadata,
    parse_authorization_details,
    parse_credential_offer_json,
    parse_credential_request_json,
    parse_credential_response_json,
    parse_deferred_credential_request_json,
    parse_error_response,
    parse_issuer_metadata,
    parse_nonce_response,
    parse_notification_request_json,
    parse_par_response,
    parse_token_response,
]


@pytest.mark.parametrize("parse", PARSERS, ids=lambda f: f.__name__)
@settings(max_examples=80, deadline=None)
@given(data=values)
def test_parsers_raise_only_validation_errors(parse: Callable[[Any], Any], data: Any) -> None:
    try:
        parse(data)
    except ValidationError as exc:
        assert isinstance(exc, WireFormatError) or "configuration" in str(exc)


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=40))
def test_offer_uri_raises_only_validation_errors(text: str) -> None:
    try:
        result = parse_credential_offer_uri("openid-credential-offer://?" + text)
    except WireFormatError:
        return
    assert isinstance(result, str) or result.credential_configuration_ids
