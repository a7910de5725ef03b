"""SpecVersion properties and version detection on small hand-made documents."""

from __future__ import annotations

from typing import Any

import pytest

from oid4vci.versions import (
    SpecVersion,
    detect_credential_request_version,
    detect_metadata_version,
)

D13, D14, D15, V1 = (
    SpecVersion.DRAFT_13,
    SpecVersion.DRAFT_14,
    SpecVersion.DRAFT_15,
    SpecVersion.V1,
)
ISSUER = "https://credential-issuer.example.com"


def _meta(config: dict[str, Any] | None = None, **top: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "credential_issuer": ISSUER,
        "credential_endpoint": ISSUER + "/credential",
    }
    if config is not None:
        meta["credential_configurations_supported"] = {"cfg": config}
    meta.update(top)
    return meta


def test_properties() -> None:
    assert [v.is_draft for v in (D13, D14, D15, V1)] == [True, True, True, False]
    assert [v.sd_jwt_format for v in (D13, D14, D15, V1)] == [
        "vc+sd-jwt",
        "vc+sd-jwt",
        "dc+sd-jwt",
        "dc+sd-jwt",
    ]
    assert V1.sd_jwt_typ == "dc+sd-jwt"
    assert D13.sd_jwt_typ == "vc+sd-jwt"
    assert [v.has_nonce_endpoint for v in (D13, D14, D15, V1)] == [False, False, True, True]
    assert [v.c_nonce_in_responses for v in (D13, D14, D15, V1)] == [True, True, False, False]
    assert [v.inserts_well_known for v in (D13, D14, D15, V1)] == [False, False, False, True]
    assert SpecVersion("1.0") is V1
    assert SpecVersion("draft-13") is D13


def test_ordering() -> None:
    assert D13 < D14 < D15 < V1
    assert not V1 < D13
    assert sorted([V1, D13, D15, D14]) == [D13, D14, D15, V1]
    with pytest.raises(TypeError):
        assert D13 < "draft-14"


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        # 1.0 signals
        (_meta(credential_request_encryption={"jwks": {"keys": []}}), V1),
        (_meta({"format": "dc+sd-jwt", "credential_metadata": {"claims": []}}), V1),
        (_meta({"format": "jwt_vc_json", "proof_types_supported": {"di_vp": {}}}), V1),
        (_meta(nonce_endpoint=ISSUER + "/nonce"), V1),
        (_meta(), V1),
        ({}, V1),
        # Draft 15 signals
        (_meta({"format": "dc+sd-jwt", "claims": [{"path": ["given_name"]}]}), D15),
        (_meta(signed_metadata="eyJ..."), D15),
        (
            _meta(
                {"format": "dc+sd-jwt", "claims": [{"path": ["a"]}]},
                nonce_endpoint=ISSUER + "/nonce",
            ),
            D15,
        ),
        # Draft 14 signals
        (_meta({"format": "vc+sd-jwt"}, batch_credential_issuance={"batch_size": 2}), D14),
        (
            _meta(
                {"format": "jwt_vc_json", "claims": {"given_name": {}}},
                batch_credential_issuance={"batch_size": 2},
            ),
            D14,
        ),
        (_meta({"format": "mso_mdoc", "order": ["a"]}, batch_credential_issuance={}), D14),
        # Draft 13 signals
        (_meta(batch_credential_endpoint=ISSUER + "/batch"), D13),
        (_meta(credential_identifiers_supported=True), D13),
        (_meta({"format": "vc+sd-jwt"}), D13),
        (_meta({"format": "jwt_vc_json", "claims": {"given_name": {}}}), D13),
        (_meta({"format": "mso_mdoc", "order": ["a"]}), D13),
    ],
)
def test_detect_metadata_version(metadata: dict[str, Any], expected: SpecVersion) -> None:
    assert detect_metadata_version(metadata) is expected


def test_detect_metadata_ignores_malformed_configurations() -> None:
    assert detect_metadata_version({"credential_configurations_supported": []}) is V1
    assert detect_metadata_version(_meta({"format": "vc+sd-jwt"}) | {"x": 1}) is D13
    meta = {"credential_configurations_supported": {"a": "junk", "b": {"format": "vc+sd-jwt"}}}
    assert detect_metadata_version(meta) is D13
    weird = _meta({"format": "dc+sd-jwt", "proof_types_supported": ["jwt"]})
    assert detect_metadata_version(weird) is V1


@pytest.mark.parametrize(
    ("request_body", "expected"),
    [
        ({"format": "vc+sd-jwt", "vct": "X", "proof": {"proof_type": "jwt", "jwt": "j"}}, D13),
        ({"format": "mso_mdoc", "doctype": "org.iso.18013.5.1.mDL"}, D13),
        ({"format": "vc+sd-jwt", "vct": "X", "proofs": {"jwt": ["a", "b"]}}, D14),
        ({"credential_identifier": "Civil-2023", "proof": {"proof_type": "jwt", "jwt": "j"}}, D13),
        ({"credential_configuration_id": "mDL", "proof": {"proof_type": "jwt", "jwt": "j"}}, D15),
        ({"credential_configuration_id": "mDL", "proofs": {"jwt": ["j"]}}, V1),
        ({"credential_identifier": "Civil-2023", "proofs": {"jwt": ["a", "b"]}}, V1),
        ({"credential_configuration_id": "mDL"}, V1),
        # OID4VCI 1.0 §8.2: a 1.0 request ignores unknown members, draft ones included.
        ({"credential_configuration_id": "mDL", "proofs": {"jwt": ["j"]}, "format": "x"}, V1),
        ({"credential_identifier": "C", "proofs": {"jwt": ["j"]}, "proof": {}}, V1),
    ],
)
def test_detect_credential_request_version(
    request_body: dict[str, Any], expected: SpecVersion
) -> None:
    assert detect_credential_request_version(request_body) is expected


def test_detection_survives_a_format_that_is_not_a_string() -> None:
    """Found by the long wallet fuzz: an object as ``format`` crashed the detector."""
    from oid4vci.versions import detect_metadata_version

    metadata = {
        "credential_issuer": "https://issuer.example",
        "credential_endpoint": "https://issuer.example/credential",
        "credential_configurations_supported": {"a": {"format": {"": None, "0": None}}},
    }
    assert detect_metadata_version(metadata) is not None
