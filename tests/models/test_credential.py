"""Credential requests and responses: version shapes and malformed inputs."""

from __future__ import annotations

from typing import Any

import pytest

from oid4vci.errors import WireFormatError
from oid4vci.models import (
    CredentialRequest,
    CredentialResponse,
    IssuedCredential,
    ProofSet,
    credential_request_to_json,
    credential_response_to_json,
    parse_credential_request_json,
    parse_credential_response_json,
)
from oid4vci.versions import SpecVersion


@pytest.mark.parametrize(
    ("data", "path", "version"),
    [
        (
            {
                "credential_configuration_id": "a",
                "proof": {"proof_type": "jwt", "jwt": "x"},
                "proofs": {"jwt": ["x"]},
            },
            "proof",
            SpecVersion.DRAFT_15,  # auto-detected, this is 1.0 and `proof` is ignored
        ),
        (
            {"credential_identifier": "i", "credential_configuration_id": "a"},
            "credential_identifier",
            None,
        ),
        ({"credential_identifier": "i", "format": "jwt_vc_json"}, "credential_identifier", None),
        ({"proofs": {"jwt": ["x"]}}, "credential_configuration_id", None),
        ({"credential_configuration_id": "a", "proofs": {}}, "proofs", None),
        (
            {"credential_configuration_id": "a", "proofs": {"jwt": ["x"], "attestation": ["y"]}},
            "proofs",
            None,
        ),
        ({"credential_configuration_id": "a", "proofs": {"jwt": []}}, "proofs.jwt", None),
        ({"credential_configuration_id": "a", "proofs": {"jwt": "x"}}, "proofs.jwt", None),
        ({"credential_configuration_id": "a", "proofs": ["x"]}, "proofs", None),
        ({"credential_configuration_id": "a", "proof": {"jwt": "x"}}, "proof.proof_type", None),
        ({"credential_configuration_id": "a", "proof": {"proof_type": "jwt"}}, "proof.jwt", None),
        (
            {"credential_configuration_id": "a", "proof": {"proof_type": 1}},
            "proof.proof_type",
            None,
        ),
        ({"credential_configuration_id": "a", "proof": "x"}, "proof", None),
        (
            {"credential_configuration_id": 5, "proofs": {"jwt": ["x"]}},
            "credential_configuration_id",
            None,
        ),
        ({"credential_identifier": True}, "credential_identifier", None),
        ({"format": "vc+sd-jwt", "vct": 3}, "vct", None),
        ({"format": "jwt_vc_json", "credential_definition": []}, "credential_definition", None),
        (
            {"credential_configuration_id": "a", "credential_response_encryption": "x"},
            "credential_response_encryption",
            None,
        ),
        (
            {"credential_configuration_id": "a", "proof": {"proof_type": "jwt", "jwt": "x"}},
            "proof",
            SpecVersion.V1,
        ),
        ({"format": "mso_mdoc", "doctype": "d"}, "format", SpecVersion.V1),
        ({"credential_configuration_id": "a"}, "credential_configuration_id", SpecVersion.DRAFT_13),
        ({"format": "mso_mdoc", "proofs": {"jwt": ["x"]}}, "proofs", SpecVersion.DRAFT_13),
        ({}, "format", SpecVersion.DRAFT_14),
    ],
)
def test_malformed_requests(data: dict[str, Any], path: str, version: SpecVersion | None) -> None:
    with pytest.raises(WireFormatError) as info:
        parse_credential_request_json(data, version=version)
    assert info.value.path == path


@pytest.mark.parametrize("data", [None, [], "x", 1])
def test_request_not_an_object(data: Any) -> None:
    with pytest.raises(WireFormatError):
        parse_credential_request_json(data)


def test_unknown_request_members_are_kept() -> None:
    data = {"credential_configuration_id": "a", "proofs": {"jwt": ["x"]}, "x-ext": {"y": 1}}
    req, version = parse_credential_request_json(data)
    assert req.extra == {"x-ext": {"y": 1}}
    assert credential_request_to_json(req, version) == data


@pytest.mark.parametrize(
    ("data", "ignored"),
    [
        (
            {
                "credential_configuration_id": "a",
                "proofs": {"jwt": ["x"]},
                "proof": {"proof_type": "jwt", "jwt": "y"},
            },
            {"proof"},
        ),
        (
            {"credential_configuration_id": "a", "proofs": {"jwt": ["x"]}, "format": "dc+sd-jwt"},
            {"format"},
        ),
        (
            {
                "credential_identifier": "i",
                "proofs": {"jwt": ["x"]},
                "format": 7,  # not even a string: unknown members are not read
                "proof": "junk",
                "vct": "urn:x",
            },
            {"format", "proof", "vct"},
        ),
    ],
)
def test_v1_request_ignores_draft_members(data: dict[str, Any], ignored: set[str]) -> None:
    # OID4VCI 1.0 §8.2: a 1.0 request (1.0 selector + proofs) ignores unknown members.
    req, version = parse_credential_request_json(data)
    assert version is SpecVersion.V1
    assert req.format is None
    assert req.single_proof is False
    assert req.proofs == ProofSet(proof_type="jwt", values=("x",))
    assert set(req.extra) == ignored
    assert set(credential_request_to_json(req, version)) == set(data) - ignored


def test_request_writers_per_version() -> None:
    req = CredentialRequest(
        credential_configuration_id="pid",
        format="dc+sd-jwt",
        vct="urn:pid",
        proofs=ProofSet(proof_type="jwt", values=("p1",)),
        single_proof=True,
    )
    assert credential_request_to_json(req, SpecVersion.DRAFT_13) == {
        "format": "vc+sd-jwt",
        "vct": "urn:pid",
        "proof": {"proof_type": "jwt", "jwt": "p1"},
    }
    assert credential_request_to_json(req, SpecVersion.DRAFT_14)["proof"] == {
        "proof_type": "jwt",
        "jwt": "p1",
    }
    assert credential_request_to_json(req, SpecVersion.DRAFT_15) == {
        "credential_configuration_id": "pid",
        "proof": {"proof_type": "jwt", "jwt": "p1"},
    }
    assert credential_request_to_json(req, SpecVersion.V1) == {
        "credential_configuration_id": "pid",
        "proofs": {"jwt": ["p1"]},
    }
    batch = CredentialRequest(
        credential_identifier="id-1", proofs=ProofSet(proof_type="jwt", values=("a", "b"))
    )
    with pytest.raises(WireFormatError):
        credential_request_to_json(batch, SpecVersion.DRAFT_13)
    for version in (SpecVersion.DRAFT_14, SpecVersion.DRAFT_15, SpecVersion.V1):
        assert credential_request_to_json(batch, version) == {
            "credential_identifier": "id-1",
            "proofs": {"jwt": ["a", "b"]},
        }
    with pytest.raises(WireFormatError):
        credential_request_to_json(CredentialRequest(format="mso_mdoc"), SpecVersion.V1)
    with pytest.raises(WireFormatError):
        credential_request_to_json(
            CredentialRequest(credential_configuration_id="x"), SpecVersion.DRAFT_13
        )


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({}, "credentials"),
        ({"credentials": []}, "credentials"),
        ({"credentials": "x"}, "credentials"),
        ({"credentials": [1]}, "credentials.0"),
        ({"credentials": [{"credential": None}]}, "credentials.0.credential"),
        ({"credential": 5}, "credential"),
        ({"credential": "a", "credentials": ["b"]}, "credential"),
        ({"transaction_id": 5}, "transaction_id"),
        ({"transaction_id": "t", "interval": "5"}, "interval"),
        ({"transaction_id": "t", "interval": True}, "interval"),
        ({"transaction_id": "t", "interval": float("nan")}, "interval"),
        ({"transaction_id": "t", "interval": float("inf")}, "interval"),
        ({"credentials": [{"credential": "a"}], "transaction_id": "t"}, "transaction_id"),
        ({"credential": "a", "transaction_id": "t"}, "transaction_id"),
        ({"credential": "a", "notification_id": 3}, "notification_id"),
        ({"credential": "a", "c_nonce_expires_in": "1"}, "c_nonce_expires_in"),
    ],
)
def test_malformed_responses(data: dict[str, Any], path: str) -> None:
    with pytest.raises(WireFormatError) as info:
        parse_credential_response_json(data)
    assert info.value.path == path


@pytest.mark.parametrize(("interval", "seconds"), [(2.5, 3), (0.1, 1), (5, 5), (7.0, 7)])
def test_a_deferred_interval_is_any_number_rounded_up(interval: float, seconds: int) -> None:
    # OID4VCI 1.0 §8.3: interval "contains a positive number" (not only whole seconds).
    parsed = parse_credential_response_json({"transaction_id": "t", "interval": interval})
    assert parsed.interval == seconds
    assert type(parsed.interval) is int


def test_response_writers_per_version() -> None:
    resp = CredentialResponse(
        credentials=(IssuedCredential(credential="a"), IssuedCredential(credential={"k": 1})),
        notification_id="n",
        c_nonce="cn",
        c_nonce_expires_in=5,
        extra={"x": 1},
    )
    with pytest.raises(WireFormatError):
        credential_response_to_json(resp, SpecVersion.DRAFT_13)
    assert credential_response_to_json(resp, SpecVersion.DRAFT_14) == {
        "credentials": ["a", {"k": 1}],  # no notification_id without ``credential`` (D14)
        "c_nonce": "cn",
        "c_nonce_expires_in": 5,
        "x": 1,
    }
    assert credential_response_to_json(resp, SpecVersion.V1) == {
        "credentials": [{"credential": "a"}, {"credential": {"k": 1}}],
        "notification_id": "n",
        "x": 1,
    }
    deferred = CredentialResponse(transaction_id="t", interval=5)
    assert credential_response_to_json(deferred, SpecVersion.DRAFT_15) == {"transaction_id": "t"}
    assert credential_response_to_json(deferred, SpecVersion.V1) == {
        "transaction_id": "t",
        "interval": 5,
    }


@pytest.mark.parametrize(
    ("version", "credentials", "present"),
    [
        (SpecVersion.DRAFT_13, ("a",), True),
        (SpecVersion.DRAFT_14, ("a",), True),
        (SpecVersion.DRAFT_14, ("a", "b"), False),  # only beside ``credential``
        (SpecVersion.DRAFT_15, ("a", "b"), True),
        (SpecVersion.V1, ("a", "b"), True),
        (SpecVersion.V1, None, False),  # never in a deferred answer
    ],
)
def test_notification_id_only_beside_its_credentials(
    version: SpecVersion, credentials: tuple[str, ...] | None, present: bool
) -> None:
    response = CredentialResponse(
        credentials=None
        if credentials is None
        else tuple(IssuedCredential(credential=c) for c in credentials),
        transaction_id=None if credentials else "tx-1",
        notification_id="n-1",
    )
    body = credential_response_to_json(response, version)
    assert ("notification_id" in body) is present
