"""Every spec example (offers, metadata, authorization details, credential requests and
responses) is read and written back identically in the version it came from."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from oid4vci.errors import MetadataError, WireFormatError
from oid4vci.http import HttpResponse
from oid4vci.models import (
    authorization_details_to_json,
    credential_offer_to_json,
    credential_request_to_json,
    credential_response_to_json,
    issuer_metadata_to_json,
    parse_authorization_details,
    parse_credential_offer_json,
    parse_credential_request_json,
    parse_credential_response_json,
    parse_error_response,
    parse_issuer_metadata,
)
from oid4vci.versions import SpecVersion

from .helpers import EXAMPLE_DIRS, examples, extract_json_text, load_example

FOLDERS = list(EXAMPLE_DIRS)
# Documented exception: the Draft 15 ldp_vc metadata example is not valid JSON (missing comma,
# duplicate "@context"); test_broken_examples_are_wire_format_errors covers it.
BROKEN = {("draft-15", "credential_metadata_ldp_vc.json")}


def _wrap_fragment(data: dict[str, Any]) -> dict[str, Any]:
    # credential_metadata_*.json hold only credential_configurations_supported.
    return {
        "credential_issuer": "https://credential-issuer.example.com",
        "credential_endpoint": "https://credential-issuer.example.com/credential",
        **data,
    }


@pytest.mark.parametrize("folder", FOLDERS)
def test_authorization_details_round_trip(spec_dir: Path, folder: str) -> None:
    files = examples(spec_dir, folder, "authorization_details")
    assert len(files) >= 5
    for path in files:
        data = load_example(path)
        details = parse_authorization_details(data)
        assert len(details) == len(data)
        assert authorization_details_to_json(details) == data, path.name
        # JSON text (the form parameter) gives the same result.
        assert parse_authorization_details(json.dumps(data)) == details


@pytest.mark.parametrize("folder", FOLDERS)
def test_offers_round_trip(spec_dir: Path, folder: str) -> None:
    files = examples(spec_dir, folder, "credential_offer")
    assert len(files) == 4
    for path in files:
        data = load_example(path)
        offer = parse_credential_offer_json(data)
        assert offer.credential_issuer == "https://credential-issuer.example.com"
        assert credential_offer_to_json(offer) == data, path.name


@pytest.mark.parametrize("folder", FOLDERS)
def test_issuer_metadata_round_trip(spec_dir: Path, folder: str) -> None:
    version = EXAMPLE_DIRS[folder]
    files = examples(spec_dir, folder, "credential_issuer_metadata") + examples(
        spec_dir, folder, "credential_metadata"
    )
    files = [p for p in files if p.suffix == ".json" and (folder, p.name) not in BROKEN]
    assert len(files) >= 3
    for path in files:
        data = load_example(path)
        if "credential_issuer" not in data:
            data = _wrap_fragment(data)
        meta, _ = parse_issuer_metadata(data)
        assert not meta.invalid_configurations, path.name
        assert meta.credential_configurations_supported
        for cid in meta.credential_configurations_supported:
            assert meta.configuration(cid).format
        assert issuer_metadata_to_json(meta, version) == data, path.name


@pytest.mark.parametrize("folder", FOLDERS)
def test_credential_requests_round_trip(spec_dir: Path, folder: str) -> None:
    files = examples(spec_dir, folder, "credential_request")
    assert files
    for path in files:
        data = load_example(path)
        req, version = parse_credential_request_json(data)
        assert req.proofs is not None and req.proofs.values
        assert credential_request_to_json(req, version) == data, path.name


@pytest.mark.parametrize("folder", FOLDERS)
def test_credential_responses_round_trip(spec_dir: Path, folder: str) -> None:
    version = EXAMPLE_DIRS[folder]
    files = examples(spec_dir, folder, "credential_response")
    assert len(files) >= 2
    for path in files:
        data = load_example(path)
        resp = parse_credential_response_json(data)
        assert resp.credentials is not None and len(resp.credentials) == 1
        assert credential_response_to_json(resp, version) == data, path.name


def test_broken_examples_are_wire_format_errors(spec_dir: Path) -> None:
    path = spec_dir / "raw" / "examples" / "draft-15" / "credential_metadata_ldp_vc.json"
    body = extract_json_text(path.read_text(encoding="utf-8")).encode()
    with pytest.raises(WireFormatError):
        HttpResponse(status=200, body=body).json_body()


def _invalid_proof_example(spec_dir: Path, draft: str) -> str:
    text = (spec_dir / "raw" / f"openid-4-verifiable-credential-issuance-1_0-{draft}.md").read_text(
        encoding="utf-8"
    )
    at = text.index('"error": "invalid_proof"')
    start = text.rindex("{", 0, at)
    end = text.index("}", at) + 1
    return text[start:end]


@pytest.mark.parametrize("draft", ["13", "14"])
def test_invalid_proof_example_missing_comma(spec_dir: Path, draft: str) -> None:
    body = _invalid_proof_example(spec_dir, draft)
    assert '"invalid_proof"\n' in body  # the comma really is missing
    with pytest.raises(WireFormatError):
        HttpResponse(status=400, body=body.encode()).json_body()
    with pytest.raises(WireFormatError):
        parse_error_response(body)
    # With the comma restored, the body reads as the vector says.
    fixed = parse_error_response(body.replace('"invalid_proof"', '"invalid_proof",'))
    assert fixed.error == "invalid_proof"
    assert fixed.c_nonce == "8YE9hCnyV2"
    assert fixed.c_nonce_expires_in == 86400


@pytest.mark.parametrize(
    ("folder", "name", "expected"),
    [
        ("draft-13", "credential_issuer_metadata_jwt_vc_json.json", {SpecVersion.DRAFT_13}),
        # The Draft 14 example carries no Draft-14-only member; it reads as a draft ≤ 14.
        (
            "draft-14",
            "credential_issuer_metadata_jwt_vc_json.json",
            {SpecVersion.DRAFT_13, SpecVersion.DRAFT_14},
        ),
        ("draft-15", "credential_issuer_metadata_jwt_vc_json.json", {SpecVersion.DRAFT_15}),
        ("1.0-final", "credential_issuer_metadata_sd_jwt_long.json", {SpecVersion.V1}),
        ("draft-13", "credential_metadata_sd_jwt_vc.json", {SpecVersion.DRAFT_13}),
        ("draft-13", "credential_metadata_jwt_vc_json.json", {SpecVersion.DRAFT_13}),
        ("draft-14", "credential_metadata_mso_mdoc.json", {SpecVersion.DRAFT_13}),
        ("draft-15", "credential_metadata_sd_jwt_vc.json", {SpecVersion.DRAFT_15}),
        ("draft-15", "credential_metadata_mso_mdoc.json", {SpecVersion.DRAFT_15}),
        ("1.0-final", "credential_metadata_mso_mdoc.json", {SpecVersion.V1}),
        ("1.0-final", "credential_metadata_jwt_vc_json.json", {SpecVersion.V1}),
    ],
)
def test_version_detection_on_examples(
    spec_dir: Path, folder: str, name: str, expected: set[SpecVersion]
) -> None:
    data = load_example(spec_dir / "raw" / "examples" / folder / name)
    if "credential_issuer" not in data:
        data = _wrap_fragment(data)
    _, version = parse_issuer_metadata(data)
    assert version in expected


def test_signed_v1_metadata_payload(vectors: dict[str, Any]) -> None:
    token: str = vectors["oid4vci"]["signed_issuer_metadata_v1_0"]
    payload_b64 = token.split(".")[1]
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
    claims = {k: v for k, v in payload.items() if k not in ("sub", "iat", "iss", "exp")}
    meta, version = parse_issuer_metadata(claims)
    assert version is SpecVersion.V1
    assert meta.credential_endpoint == "https://credential-issuer.example.com/credential"
    config = meta.configuration("SD_JWT_VC_example_in_OpenID4VCI")
    assert config.format == "dc+sd-jwt"
    assert config.proof_algorithms("jwt") == ("ES256",)
    assert isinstance(config.claims, list) and config.claims[0]["path"] == ["given_name"]
    assert issuer_metadata_to_json(meta, SpecVersion.V1) == claims
    with pytest.raises(MetadataError):
        meta.configuration("nope")
