"""Issuer metadata: lenient configurations, strict top level, version writers."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from oid4vci.errors import MetadataError, WireFormatError
from oid4vci.models import (
    CredentialConfiguration,
    CredentialIssuerMetadata,
    claims_map_to_paths,
    claims_paths_to_map,
    issuer_metadata_to_json,
    parse_issuer_metadata,
)
from oid4vci.versions import SpecVersion

from .helpers import load_example

GOOD: dict[str, Any] = {
    "credential_issuer": "https://issuer.example.com",
    "credential_endpoint": "https://issuer.example.com/credential",
    "nonce_endpoint": "https://issuer.example.com/nonce",
    "batch_credential_issuance": {"batch_size": 5},
    "credential_configurations_supported": {
        "pid": {
            "format": "dc+sd-jwt",
            "vct": "urn:pid",
            "scope": "pid",
            "cryptographic_binding_methods_supported": ["jwk"],
            "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["ES256"]}},
            "credential_metadata": {
                "display": [{"name": "PID"}],
                "claims": [
                    {"path": ["given_name"], "display": [{"name": "Given"}]},
                    {"path": ["address", "locality"], "mandatory": True},
                ],
            },
        }
    },
}


def test_v1_to_each_version() -> None:
    meta, version = parse_issuer_metadata(GOOD)
    assert version is SpecVersion.V1
    cfg = meta.configuration("pid")
    assert cfg.is_sd_jwt_vc and cfg.display == ({"name": "PID"},)
    assert issuer_metadata_to_json(meta, SpecVersion.V1) == GOOD

    d15 = issuer_metadata_to_json(meta, SpecVersion.DRAFT_15)
    c15 = d15["credential_configurations_supported"]["pid"]
    assert "credential_metadata" not in c15
    assert (
        c15["claims"]
        == GOOD["credential_configurations_supported"]["pid"]["credential_metadata"]["claims"]
    )
    assert c15["display"] == [{"name": "PID"}]
    assert d15["nonce_endpoint"] and d15["batch_credential_issuance"] == {"batch_size": 5}

    d14 = issuer_metadata_to_json(meta, SpecVersion.DRAFT_14)
    c14 = d14["credential_configurations_supported"]["pid"]
    assert c14["format"] == "vc+sd-jwt"
    assert c14["claims"] == {
        "given_name": {"display": [{"name": "Given"}]},
        "address": {"locality": {"mandatory": True}},
    }
    assert "nonce_endpoint" not in d14 and d14["batch_credential_issuance"] == {"batch_size": 5}

    d13 = issuer_metadata_to_json(meta, SpecVersion.DRAFT_13)
    assert "nonce_endpoint" not in d13 and "batch_credential_issuance" not in d13
    assert d13["credential_configurations_supported"]["pid"]["format"] == "vc+sd-jwt"

    # Each version's output reads back as the same configuration and is detected as itself
    # where the version leaves a signal.
    for target in SpecVersion:
        again, detected = parse_issuer_metadata(issuer_metadata_to_json(meta, target))
        assert again.configuration("pid").vct == "urn:pid"
        if target is not SpecVersion.DRAFT_13:
            assert detected is target


def test_d13_w3c_claims_move_between_shapes(spec_dir: Path) -> None:
    data = load_example(
        spec_dir / "raw/examples/draft-13/credential_issuer_metadata_jwt_vc_json.json"
    )
    meta, version = parse_issuer_metadata(data)
    assert version is SpecVersion.DRAFT_13
    v1 = issuer_metadata_to_json(meta, SpecVersion.V1)
    cfg = v1["credential_configurations_supported"]["UniversityDegreeCredential"]
    assert "credentialSubject" not in cfg["credential_definition"]
    assert cfg["credential_metadata"]["claims"][0]["path"] == ["credentialSubject", "given_name"]
    assert "batch_credential_endpoint" not in v1
    back, _ = parse_issuer_metadata(v1)
    d13 = issuer_metadata_to_json(back, SpecVersion.DRAFT_13)
    cfg13 = d13["credential_configurations_supported"]["UniversityDegreeCredential"]
    assert (
        cfg13["credential_definition"]
        == (
            data["credential_configurations_supported"]["UniversityDegreeCredential"][
                "credential_definition"
            ]
        )
    )


def test_claims_conversions() -> None:
    paths = [
        {"path": ["a"], "display": [{"name": "A"}]},
        {"path": ["b", "c"], "mandatory": True},
        {"path": ["d", None, "e"]},  # not representable as a map: dropped
    ]
    as_map = claims_paths_to_map(paths)
    assert as_map == {"a": {"display": [{"name": "A"}]}, "b": {"c": {"mandatory": True}}}
    assert claims_map_to_paths(as_map) == paths[:2]
    assert claims_paths_to_map("junk") == {}
    assert claims_map_to_paths(["junk"]) == []


def test_malformed_configuration_is_lenient_until_used() -> None:
    data = copy.deepcopy(GOOD)
    data["credential_configurations_supported"]["broken"] = {"format": 3}
    data["credential_configurations_supported"]["bad_proofs"] = {
        "format": "dc+sd-jwt",
        "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": "ES256"}},
    }
    data["credential_configurations_supported"]["bad_cm"] = {
        "format": "dc+sd-jwt",
        "credential_metadata": {"display": "x"},
    }
    data["credential_configurations_supported"]["not_object"] = []
    meta, _ = parse_issuer_metadata(data)
    assert meta.configuration("pid").vct == "urn:pid"
    assert set(meta.invalid_configurations) == {"broken", "bad_proofs", "bad_cm", "not_object"}
    expected = {
        "broken": "credential_configurations_supported.broken.format",
        "bad_proofs": (
            "credential_configurations_supported.bad_proofs.proof_types_supported.jwt."
            "proof_signing_alg_values_supported"
        ),
        "bad_cm": "credential_configurations_supported.bad_cm.credential_metadata.display",
        "not_object": "credential_configurations_supported.not_object",
    }
    for cid, path in expected.items():
        with pytest.raises(MetadataError) as info:
            meta.configuration(cid)
        assert isinstance(info.value, WireFormatError)
        assert info.value.path == path
    with pytest.raises(MetadataError):
        meta.configuration("missing")
    # Written back unchanged.
    out = issuer_metadata_to_json(meta, SpecVersion.V1)
    assert out["credential_configurations_supported"]["broken"] == {"format": 3}


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"credential_issuer": None}, "credential_issuer"),
        ({"credential_issuer": 1}, "credential_issuer"),
        ({"credential_endpoint": None}, "credential_endpoint"),
        ({"credential_configurations_supported": None}, "credential_configurations_supported"),
        ({"credential_configurations_supported": []}, "credential_configurations_supported"),
        ({"authorization_servers": "https://as"}, "authorization_servers"),
        ({"batch_credential_issuance": {"batch_size": 0}}, "batch_credential_issuance.batch_size"),
        (
            {"batch_credential_issuance": {"batch_size": "2"}},
            "batch_credential_issuance.batch_size",
        ),
        ({"display": {"name": "x"}}, "display"),
    ],
)
def test_top_level_is_strict(change: dict[str, Any], path: str) -> None:
    data = copy.deepcopy(GOOD)
    for key, value in change.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    with pytest.raises(MetadataError) as info:
        parse_issuer_metadata(data)
    assert isinstance(info.value, WireFormatError)
    assert info.value.path == path


@pytest.mark.parametrize("data", [None, [], "x"])
def test_metadata_not_an_object(data: Any) -> None:
    with pytest.raises(WireFormatError):
        parse_issuer_metadata(data)


def test_mdoc_cose_algorithm_integers() -> None:
    data = copy.deepcopy(GOOD)
    data["credential_configurations_supported"]["mdl"] = {
        "format": "mso_mdoc",
        "doctype": "org.iso.18013.5.1.mDL",
        "credential_signing_alg_values_supported": [-7, "ES256"],
    }
    meta, _ = parse_issuer_metadata(data)
    cfg = meta.configuration("mdl")
    assert cfg.credential_signing_alg_values_supported == (-7, "ES256")
    assert cfg.proof_algorithms() == ()
    data["credential_configurations_supported"]["mdl"][
        "credential_signing_alg_values_supported"
    ] = [True]
    meta, _ = parse_issuer_metadata(data)
    with pytest.raises(WireFormatError):
        meta.configuration("mdl")


def test_model_defaults() -> None:
    meta = CredentialIssuerMetadata(
        credential_issuer="https://i",
        credential_endpoint="https://i/c",
        credential_configurations_supported={"a": CredentialConfiguration(format="jwt_vc_json")},
    )
    assert meta.authorization_server_ids == ("https://i",)
    assert issuer_metadata_to_json(meta, SpecVersion.V1) == {
        "credential_issuer": "https://i",
        "credential_endpoint": "https://i/c",
        "credential_configurations_supported": {"a": {"format": "jwt_vc_json"}},
    }
