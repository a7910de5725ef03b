"""Exact example values of spec/vectors.md §5.2, per version."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote

import pytest

from oid4vci.models import (
    CredentialOffer,
    CredentialRequest,
    ProofSet,
    credential_offer_to_json,
    credential_request_to_json,
    credential_response_to_json,
    parse_authorization_details,
    parse_credential_offer_json,
    parse_credential_offer_uri,
    parse_credential_request_json,
    parse_credential_response_json,
    parse_deferred_credential_request_json,
    parse_error_response,
    parse_notification_request_json,
    parse_par_response,
    parse_token_response,
    token_response_to_json,
)
from oid4vci.versions import SpecVersion

PRE = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
OFFER_V1 = (
    '{"credential_issuer":"https://credential-issuer.example.com","credential_configuration_ids":'
    '["UniversityDegree_JWT","org.iso.18013.5.1.mDL"],"grants":{"urn:ietf:params:oauth:grant-type:'
    'pre-authorized_code":{"pre-authorized_code":"oaKazRN8I0IbtZ0C7JuMn5","tx_code":{}}}}'
)
OFFER_URI = (
    "openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fserver%2Eexample%2Ecom%2F"
    "credential-offer%2FGkurKxf5T0Y-mnPFCHqWOMiZi4VS138cQO_V7PZHAdM"
)
TOKEN_D13 = {
    "access_token": "eyJhbGciOiJSUzI1NiIsInR5cCI6Ikp..sHQ",
    "token_type": "bearer",
    "expires_in": 86400,
    "c_nonce": "tZignsnFbp",
    "c_nonce_expires_in": 86400,
    "authorization_details": [
        {
            "type": "openid_credential",
            "credential_configuration_id": "UniversityDegreeCredential",
            "credential_identifiers": [
                "CivilEngineeringDegree-2023",
                "ElectricalEngineeringDegree-2023",
            ],
        }
    ],
}


def test_offer_by_value_url() -> None:
    url = "openid-credential-offer://?credential_offer=" + quote(OFFER_V1, safe="")
    offer = parse_credential_offer_uri(url)
    assert isinstance(offer, CredentialOffer)
    assert offer.credential_configuration_ids == ("UniversityDegree_JWT", "org.iso.18013.5.1.mDL")
    assert offer.pre_authorized_code is not None
    assert offer.pre_authorized_code.pre_authorized_code == "oaKazRN8I0IbtZ0C7JuMn5"
    assert offer.pre_authorized_code.tx_code is not None  # {} means a tx_code is required
    assert offer.authorization_code is None
    assert credential_offer_to_json(offer) == json.loads(OFFER_V1)
    assert "oaKazRN8I0IbtZ0C7JuMn5" not in repr(offer)
    assert "oaKazRN8I0IbtZ0C7JuMn5" not in repr(offer.pre_authorized_code)


def test_offer_by_reference_url() -> None:
    assert parse_credential_offer_uri(OFFER_URI) == (
        "https://server.example.com/credential-offer/GkurKxf5T0Y-mnPFCHqWOMiZi4VS138cQO_V7PZHAdM"
    )


def test_d13_legacy_credentials_key() -> None:
    legacy = json.loads(OFFER_V1.replace("credential_configuration_ids", "credentials"))
    url = "openid-credential-offer://?credential_offer=" + quote(json.dumps(legacy))
    offer = parse_credential_offer_uri(url)
    assert isinstance(offer, CredentialOffer)
    assert offer.credential_configuration_ids == ("UniversityDegree_JWT", "org.iso.18013.5.1.mDL")
    assert "credentials" not in offer.extra
    assert credential_offer_to_json(offer) == json.loads(OFFER_V1)


def test_authorization_code_offer() -> None:
    data = {
        "credential_issuer": "https://credential-issuer.example.com",
        "credential_configuration_ids": ["UniversityDegreeCredential"],
        "grants": {"authorization_code": {"issuer_state": "eyJhbGciOiJSU0Et...FYUaBy"}},
    }
    offer = parse_credential_offer_json(data)
    assert offer.authorization_code is not None
    assert offer.authorization_code.issuer_state == "eyJhbGciOiJSU0Et...FYUaBy"
    assert offer.grant_types == ("authorization_code",)


def test_authorization_details_vectors() -> None:
    encoded = (
        "%5B%7B%22type%22%3A%20%22openid_credential%22%2C%20%22credential_configuration_id%22"
        "%3A%20%22UniversityDegreeCredential%22%7D%5D"
    )
    (detail,) = parse_authorization_details(unquote(encoded))
    assert detail.type == "openid_credential"
    assert detail.credential_configuration_id == "UniversityDegreeCredential"
    (fmt,) = parse_authorization_details(
        '[{"type":"openid_credential","format":"vc+sd-jwt","vct":"SD_JWT_VC_example_in_OpenID4VCI"}]'
    )
    assert (fmt.format, fmt.vct) == ("vc+sd-jwt", "SD_JWT_VC_example_in_OpenID4VCI")
    (v1,) = parse_authorization_details(
        '[{"type":"openid_credential","credential_configuration_id":"PID_SD_JWT_VC",'
        '"claims":[{"path":["given_name"]},{"path":["family_name"]}]}]'
    )
    assert v1.claims == [{"path": ["given_name"]}, {"path": ["family_name"]}]


def test_par_response_vector() -> None:
    par = parse_par_response(
        {
            "request_uri": "urn:ietf:params:oauth:request_uri:6esc_11ACC5bwc014ltc14eY22c",
            "expires_in": 60,
        }
    )
    assert par.expires_in == 60


@pytest.mark.parametrize("version", [SpecVersion.DRAFT_13, SpecVersion.DRAFT_14])
def test_token_response_with_c_nonce(version: SpecVersion) -> None:
    resp = parse_token_response(TOKEN_D13)
    assert resp.c_nonce == "tZignsnFbp" and resp.c_nonce_expires_in == 86400
    assert resp.is_bearer  # "bearer" compared case-insensitively
    assert resp.token_type == "bearer"  # stored as given
    assert resp.credential_identifiers("UniversityDegreeCredential") == (
        "CivilEngineeringDegree-2023",
        "ElectricalEngineeringDegree-2023",
    )
    assert token_response_to_json(resp, version) == TOKEN_D13


@pytest.mark.parametrize("version", [SpecVersion.DRAFT_15, SpecVersion.V1])
def test_token_response_without_c_nonce(version: SpecVersion) -> None:
    v15 = {k: v for k, v in TOKEN_D13.items() if not k.startswith("c_nonce")}
    v15["token_type"] = "Bearer"
    resp = parse_token_response(v15)
    assert resp.c_nonce is None and resp.is_bearer
    assert token_response_to_json(resp, version) == v15
    # A draft response written for D15/1.0 loses c_nonce*.
    assert token_response_to_json(parse_token_response(TOKEN_D13), version) == {
        **{k: v for k, v in TOKEN_D13.items() if not k.startswith("c_nonce")}
    }


CRED_REQUESTS: list[tuple[SpecVersion, dict[str, Any]]] = [
    (
        SpecVersion.DRAFT_13,
        {
            "format": "vc+sd-jwt",
            "vct": "SD_JWT_VC_example_in_OpenID4VCI",
            "proof": {"proof_type": "jwt", "jwt": "<proof>"},
        },
    ),
    (
        SpecVersion.DRAFT_13,
        {
            "credential_identifier": "CivilEngineeringDegree-2023",
            "proof": {"proof_type": "jwt", "jwt": "<proof>"},
        },
    ),
    (
        SpecVersion.DRAFT_13,
        {
            "format": "mso_mdoc",
            "doctype": "org.iso.18013.5.1.mDL",
            "proof": {"proof_type": "cwt", "cwt": "..."},
        },
    ),
    (
        SpecVersion.DRAFT_14,
        {
            "credential_identifier": "CivilEngineeringDegree-2023",
            "proofs": {"jwt": ["<proof1>", "<proof2>"]},
        },
    ),
    (
        SpecVersion.DRAFT_14,
        {
            "format": "mso_mdoc",
            "doctype": "org.iso.18013.5.1.mDL",
            "proof": {"proof_type": "jwt", "jwt": "..."},
        },
    ),
    (
        SpecVersion.DRAFT_15,
        {
            "credential_configuration_id": "org.iso.18013.5.1.mDL",
            "proof": {"proof_type": "jwt", "jwt": "..."},
        },
    ),
    (
        SpecVersion.DRAFT_15,
        {
            "credential_identifier": "CivilEngineeringDegree-2023",
            "proofs": {"jwt": ["<proof1>", "<proof2>"]},
        },
    ),
    (
        SpecVersion.V1,
        {"credential_configuration_id": "org.iso.18013.5.1.mDL", "proofs": {"jwt": ["..."]}},
    ),
    (
        SpecVersion.V1,
        {
            "credential_identifier": "CivilEngineeringDegree-2023",
            "proofs": {"jwt": ["...", "..."]},
        },
    ),
]


@pytest.mark.parametrize(("version", "data"), CRED_REQUESTS)
def test_credential_request_vectors(version: SpecVersion, data: dict[str, Any]) -> None:
    req, detected = parse_credential_request_json(data, version=version)
    assert detected is version
    assert req.proofs is not None
    assert credential_request_to_json(req, version) == data
    # Auto-detection reads the same request (it may name an older compatible version).
    auto, _ = parse_credential_request_json(data)
    assert auto == req


def test_credential_request_with_real_proof(vectors: dict[str, Any]) -> None:
    proof = vectors["oid4vci"]["jwt_proof_example"]
    req, version = parse_credential_request_json(
        {"credential_configuration_id": "pid", "proofs": {"jwt": [proof]}}
    )
    assert version is SpecVersion.V1
    assert req == CredentialRequest(
        credential_configuration_id="pid", proofs=ProofSet(proof_type="jwt", values=(proof,))
    )


CRED_RESPONSES: list[tuple[SpecVersion, dict[str, Any], int, bool]] = [
    (
        SpecVersion.DRAFT_13,
        {
            "credential": "LUpixVCWJk0eOt4CXQe1NXK....WZwmhmn9OQp6YxX0a2L",
            "c_nonce": "fGFF7UkhLa",
            "c_nonce_expires_in": 86400,
        },
        1,
        False,
    ),
    (
        SpecVersion.DRAFT_13,
        {"transaction_id": "8xLOxBtZp8", "c_nonce": "wlbQc6pCJp", "c_nonce_expires_in": 86400},
        0,
        True,
    ),
    (
        SpecVersion.DRAFT_14,
        {
            "credentials": [
                "LUpixVCWJk0eOt4CXQe1NXK....WZwmhmn9OQp6YxX0a2L",
                "YXNkZnNhZGZkamZqZGFza23....29tZTIzMjMyMzIzMjMy",
            ],
            "c_nonce": "fGFF7UkhLa",
            "c_nonce_expires_in": 86400,
        },
        2,
        False,
    ),
    (
        SpecVersion.DRAFT_15,
        {"credentials": [{"credential": "LUpixVCWJk0eOt4CXQe1NXK....WZwmhmn9OQp6YxX0a2L"}]},
        1,
        False,
    ),
    (
        SpecVersion.DRAFT_15,
        {
            "credentials": [
                {"credential": "LUpixVCWJk0eOt4CXQe1NXK....WZwmhmn9OQp6YxX0a2L"},
                {"credential": "YXNkZnNhZGZkamZqZGFza23....29tZTIzMjMyMzIzMjMy"},
            ],
            "notification_id": "3fwe98js",
        },
        2,
        False,
    ),
    (SpecVersion.DRAFT_15, {"transaction_id": "8xLOxBtZp8"}, 0, True),
    (SpecVersion.V1, {"transaction_id": "8xLOxBtZp8", "interval": 3600}, 0, True),
    (SpecVersion.V1, {"transaction_id": "8xLOxBtZp8", "interval": 86400}, 0, True),
]


@pytest.mark.parametrize(("version", "data", "count", "deferred"), CRED_RESPONSES)
def test_credential_response_vectors(
    version: SpecVersion, data: dict[str, Any], count: int, deferred: bool
) -> None:
    resp = parse_credential_response_json(data)
    assert resp.is_deferred is deferred
    assert len(resp.credential_values) == count
    assert credential_response_to_json(resp, version) == data


def test_credential_response_c_nonce_only_for_d13_d14() -> None:
    resp = parse_credential_response_json(CRED_RESPONSES[0][1])
    assert "fGFF7UkhLa" not in repr(resp)
    assert credential_response_to_json(resp, SpecVersion.V1) == {
        "credentials": [{"credential": "LUpixVCWJk0eOt4CXQe1NXK....WZwmhmn9OQp6YxX0a2L"}]
    }


@pytest.mark.parametrize(
    "data",
    [
        {"error": "unsupported_credential_format"},
        {"error": "unknown_credential_configuration"},
        {"error": "invalid_transaction_id"},
        {"error": "invalid_request"},
        {
            "error": "invalid_proof",
            "error_description": "...",
            "c_nonce": "8YE9hCnyV2",
            "c_nonce_expires_in": 86400,
        },
    ],
)
def test_error_vectors(data: dict[str, Any]) -> None:
    err = parse_error_response(data)
    assert err.error == data["error"]
    assert err.c_nonce == data.get("c_nonce")


def test_deferred_and_notification_vectors() -> None:
    assert parse_deferred_credential_request_json(
        {"transaction_id": "8xLOxBtZp8"}
    ).transaction_id == ("8xLOxBtZp8")
    n = parse_notification_request_json(
        {"notification_id": "3fwe98js", "event": "credential_accepted"}
    )
    assert (n.notification_id, n.event, n.event_description) == (
        "3fwe98js",
        "credential_accepted",
        None,
    )
