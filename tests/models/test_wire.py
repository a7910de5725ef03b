"""The converter: strict types, renames, unknown members kept, wire-path errors."""

from __future__ import annotations

from typing import Any

import pytest

from oid4vci import _wire
from oid4vci.errors import WireFormatError
from oid4vci.models import (
    AuthorizationDetail,
    AuthorizationServerMetadata,
    DeferredCredentialRequest,
    ErrorResponse,
    NonceResponse,
    NotificationRequest,
    PreAuthorizedCodeGrant,
    TokenResponse,
    TxCode,
    as_metadata_to_json,
    deferred_credential_request_to_json,
    error_response_to_json,
    nonce_response_to_json,
    notification_request_to_json,
    par_response_to_json,
    parse_as_metadata,
    parse_deferred_credential_request_json,
    parse_error_response,
    parse_nonce_response,
    parse_notification_request_json,
    parse_par_response,
    parse_token_response,
)


def test_rename_and_extra_round_trip() -> None:
    data = {"pre-authorized_code": "abc", "tx_code": {"length": 6, "x-ext": 1}, "future": [1, 2]}
    grant = _wire.structure(data, PreAuthorizedCodeGrant)
    assert grant.pre_authorized_code == "abc"
    assert grant.tx_code == TxCode(length=6, extra={"x-ext": 1})
    assert grant.extra == {"future": [1, 2]}
    assert _wire.unstructure(grant) == data


def test_output_omits_none_and_defaults() -> None:
    assert _wire.unstructure(TxCode()) == {}
    assert _wire.unstructure(AuthorizationDetail(credential_configuration_id="x")) == {
        "type": "openid_credential",
        "credential_configuration_id": "x",
    }


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"pre-authorized_code": 5}, "pre-authorized_code"),
        ({"pre-authorized_code": True}, "pre-authorized_code"),
        ({}, "pre-authorized_code"),
        ({"pre-authorized_code": "a", "tx_code": {"length": True}}, "tx_code.length"),
        ({"pre-authorized_code": "a", "tx_code": {"length": "4"}}, "tx_code.length"),
        ({"pre-authorized_code": "a", "tx_code": {"length": 4.0}}, "tx_code.length"),
        ({"pre-authorized_code": "a", "tx_code": {"length": 0}}, "tx_code.length"),
        ({"pre-authorized_code": "a", "tx_code": {"input_mode": "emoji"}}, "tx_code.input_mode"),
        (
            {"pre-authorized_code": "a", "tx_code": {"description": "x" * 301}},
            "tx_code.description",
        ),
        ({"pre-authorized_code": "a", "tx_code": []}, "tx_code"),
        ({"pre-authorized_code": "a", "interval": "5"}, "interval"),
    ],
)
def test_structure_errors_name_wire_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(WireFormatError) as info:
        _wire.structure(data, PreAuthorizedCodeGrant, path_prefix="grants.g")
    assert info.value.path == f"grants.g.{path}"


@pytest.mark.parametrize("data", [None, [], "x", 5, True])
def test_non_object_is_wire_format_error(data: Any) -> None:
    with pytest.raises(WireFormatError):
        _wire.structure(data, TokenResponse)


def test_tx_code_limits_accept_boundaries() -> None:
    tx = _wire.structure({"description": "x" * 300, "length": 1, "input_mode": "text"}, TxCode)
    assert tx.length == 1 and tx.effective_input_mode == "text"
    assert TxCode().effective_input_mode == "numeric"


def test_arrays_are_not_strings() -> None:
    with pytest.raises(WireFormatError) as info:
        parse_as_metadata({"issuer": "https://as", "grant_types_supported": "authorization_code"})
    assert info.value.path == "grant_types_supported"
    with pytest.raises(WireFormatError) as info:
        parse_as_metadata({"issuer": "https://as", "grant_types_supported": ["a", 1]})
    assert info.value.path == "grant_types_supported.1"


def test_token_response_parse_and_repr_hides_secrets() -> None:
    data = {
        "access_token": "SECRET-ACCESS",
        "token_type": "DPoP",
        "refresh_token": "SECRET-REFRESH",
        "c_nonce": "SECRET-NONCE",
        "expires_in": 60,
    }
    resp = parse_token_response(data)
    assert resp.is_dpop and not resp.is_bearer
    text = repr(resp)
    for secret in ("SECRET-ACCESS", "SECRET-REFRESH", "SECRET-NONCE"):
        assert secret not in text


def test_token_response_errors() -> None:
    with pytest.raises(WireFormatError) as info:
        parse_token_response({"token_type": "Bearer"})
    assert info.value.path == "access_token"
    with pytest.raises(WireFormatError) as info:
        parse_token_response({"access_token": "a", "token_type": "Bearer", "expires_in": True})
    assert info.value.path == "expires_in"
    with pytest.raises(WireFormatError) as info:
        parse_token_response(
            {"access_token": "a", "token_type": "b", "authorization_details": [{"type": 1}]}
        )
    assert info.value.path == "authorization_details.0.type"


def test_as_metadata_round_trip() -> None:
    data = {
        "issuer": "https://as.example.com",
        "token_endpoint": "https://as.example.com/token",
        "pre-authorized_grant_anonymous_access_supported": True,
        "dpop_signing_alg_values_supported": ["ES256"],
        "require_pushed_authorization_requests": True,
        "introspection_endpoint": "https://as.example.com/introspect",
    }
    meta = parse_as_metadata(data)
    assert meta.pre_authorized_grant_anonymous_access_supported is True
    assert meta.extra == {"introspection_endpoint": "https://as.example.com/introspect"}
    assert as_metadata_to_json(meta) == data
    plain = AuthorizationServerMetadata(issuer="https://as")
    assert plain.effective_grant_types == ("authorization_code", "implicit")
    with pytest.raises(WireFormatError) as info:
        parse_as_metadata({"issuer": "https://as", "require_pushed_authorization_requests": 1})
    assert info.value.path == "require_pushed_authorization_requests"


def test_small_documents_round_trip() -> None:
    nonce = parse_nonce_response({"c_nonce": "wKI4LT17ac15ES9bw8ac4"})
    assert nonce == NonceResponse(c_nonce="wKI4LT17ac15ES9bw8ac4")
    assert "wKI4" not in repr(nonce)
    assert nonce_response_to_json(nonce) == {"c_nonce": "wKI4LT17ac15ES9bw8ac4"}
    par = {
        "request_uri": "urn:ietf:params:oauth:request_uri:6esc_11ACC5bwc014ltc14eY22c",
        "expires_in": 60,
    }
    assert par_response_to_json(parse_par_response(par)) == par
    with pytest.raises(WireFormatError) as info:
        parse_par_response({"request_uri": "urn:x", "expires_in": 0})
    assert info.value.path == "expires_in"
    deferred = parse_deferred_credential_request_json({"transaction_id": "8xLOxBtZp8"})
    assert deferred == DeferredCredentialRequest(transaction_id="8xLOxBtZp8")
    assert deferred_credential_request_to_json(deferred) == {"transaction_id": "8xLOxBtZp8"}
    with pytest.raises(WireFormatError) as info:
        parse_deferred_credential_request_json({"transaction_id": 8})
    assert info.value.path == "transaction_id"


def test_notification_requests() -> None:
    ok = {
        "notification_id": "3fwe98js",
        "event": "credential_failure",
        "event_description": "Could not store the Credential. Out of storage.",
    }
    req = parse_notification_request_json(ok)
    assert req == NotificationRequest(
        notification_id="3fwe98js",
        event="credential_failure",
        event_description="Could not store the Credential. Out of storage.",
    )
    assert notification_request_to_json(req) == ok
    with pytest.raises(WireFormatError) as info:
        parse_notification_request_json({"notification_id": "n", "event": "credential_lost"})
    assert info.value.path == "event"
    with pytest.raises(WireFormatError) as info:
        parse_notification_request_json(
            {"notification_id": "n", "event": "credential_deleted", "event_description": 'a"b'}
        )
    assert info.value.path == "event_description"
    with pytest.raises(WireFormatError) as info:
        parse_notification_request_json({"event": "credential_accepted"})
    assert info.value.path == "notification_id"


def test_error_response() -> None:
    err = parse_error_response({"error": "invalid_proof", "c_nonce": "n", "c_nonce_expires_in": 5})
    assert err == ErrorResponse(error="invalid_proof", c_nonce="n", c_nonce_expires_in=5)
    from oid4vci.errors import CredentialRequestError
    from oid4vci.versions import SpecVersion

    exc = err.to_exception(CredentialRequestError, status=400)
    assert exc.error == "invalid_proof" and exc.c_nonce == "n" and exc.status == 400
    assert ErrorResponse.from_exception(exc) == err
    assert error_response_to_json(err, SpecVersion.V1) == {"error": "invalid_proof"}
    assert error_response_to_json(err, SpecVersion.DRAFT_14) == {
        "error": "invalid_proof",
        "c_nonce": "n",
        "c_nonce_expires_in": 5,
    }
    with pytest.raises(WireFormatError) as info:
        parse_error_response({"error_description": "x"})
    assert info.value.path == "error"
    with pytest.raises(WireFormatError):
        parse_error_response(b"not json")
