"""Credential Issuer metadata, JWT VC Issuer metadata and where they are served."""

from __future__ import annotations

from typing import Any

import pytest

from oid4vci.issuer import (
    ExternalAuthorizationServer,
    Issuer,
    create_issuer_metadata,
    create_jwt_vc_issuer_metadata,
)
from oid4vci.issuer.metadata import well_known_paths
from oid4vci.jose import LocalSigner, jwk_thumbprint
from oid4vci.models import parse_issuer_metadata
from oid4vci.versions import SpecVersion, detect_metadata_version
from tests.attestation_support import HIGH, attested_issuer, provider_pki
from tests.conftest import FakeClock
from tests.issuer.test_service import ISSUER, VCT, make_config, send, transport_for


def _identity(meta: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = meta["credential_configurations_supported"]["identity"]
    return config


def test_v1_metadata(clock: FakeClock) -> None:
    meta = create_issuer_metadata(make_config(clock, batch_size=10))
    assert meta["credential_issuer"] == ISSUER
    assert meta["credential_endpoint"] == ISSUER + "/credential"
    assert meta["nonce_endpoint"] == ISSUER + "/nonce"
    assert meta["deferred_credential_endpoint"] == ISSUER + "/deferred"
    assert meta["notification_endpoint"] == ISSUER + "/notification"
    assert meta["batch_credential_issuance"] == {"batch_size": 10}
    assert "authorization_servers" not in meta
    config = _identity(meta)
    assert config["format"] == "dc+sd-jwt"
    assert config["vct"] == VCT
    assert config["scope"] == "identity"
    assert config["cryptographic_binding_methods_supported"] == ["jwk"]
    assert config["credential_signing_alg_values_supported"] == ["ES256"]
    assert config["proof_types_supported"] == {
        "jwt": {"proof_signing_alg_values_supported": ["ES256", "ES384", "EdDSA"]}
    }
    assert config["credential_metadata"]["display"] == [{"name": "Identity", "locale": "en"}]
    assert {"path": ["address", "locality"]} in config["credential_metadata"]["claims"]
    assert "claims" not in config
    parsed, version = parse_issuer_metadata(meta)
    assert version is SpecVersion.V1
    assert parsed.configuration("identity").vct == VCT


@pytest.mark.parametrize("version", list(SpecVersion), ids=lambda v: v.value)
def test_metadata_shape_per_version(clock: FakeClock, version: SpecVersion) -> None:
    meta = create_issuer_metadata(make_config(clock), version=version)
    config = _identity(meta)
    assert config["format"] == version.sd_jwt_format
    assert ("nonce_endpoint" in meta) is version.has_nonce_endpoint
    assert ("batch_credential_issuance" in meta) is (version is not SpecVersion.DRAFT_13)
    if version in (SpecVersion.DRAFT_13, SpecVersion.DRAFT_14):
        assert config["claims"]["address"]["locality"] == {}
        assert config["display"] == [{"name": "Identity", "locale": "en"}]
    elif version is SpecVersion.DRAFT_15:
        assert config["claims"][0]["path"] == ["given_name"]
    assert detect_metadata_version(meta) is version


@pytest.mark.parametrize("version", list(SpecVersion), ids=lambda v: v.value)
def test_key_attestations_required_only_from_draft_15(
    clock: FakeClock, version: SpecVersion
) -> None:
    attested = attested_issuer(clock, provider_pki(), key_required=HIGH)
    meta = create_issuer_metadata(attested.issuer.config, version=version)
    entry = meta["credential_configurations_supported"][attested.configuration_id]
    proof_type = entry["proof_types_supported"]["jwt"]
    if version in (SpecVersion.DRAFT_13, SpecVersion.DRAFT_14):
        # Draft 14 §10.2.3: a proof type entry has proof_signing_alg_values_supported only
        assert set(proof_type) == {"proof_signing_alg_values_supported"}
    else:  # Draft 15 §11.2.3, OID4VCI 1.0 §12.2.4
        assert proof_type["key_attestations_required"] == dict(HIGH)
    assert proof_type["proof_signing_alg_values_supported"]
    assert detect_metadata_version(meta) is version


@pytest.mark.parametrize("version", list(SpecVersion), ids=lambda v: v.value)
@pytest.mark.parametrize("proof_types", [("jwt", "attestation"), ("attestation",)])
def test_attestation_proof_type_only_from_draft_15(
    clock: FakeClock, version: SpecVersion, proof_types: tuple[str, ...]
) -> None:
    attested = attested_issuer(clock, provider_pki(), proof_types=proof_types)
    meta = create_issuer_metadata(attested.issuer.config, version=version)
    entry = meta["credential_configurations_supported"][attested.configuration_id]
    published = set(entry.get("proof_types_supported", {}))
    if version in (SpecVersion.DRAFT_13, SpecVersion.DRAFT_14):
        # Draft 13 §7.2.1 and Draft 14 §7.2.1 define jwt/cwt/ldp_vp only; the attestation
        # proof type is Draft 15 §8.2.1.3 (an empty map is left out, not published empty)
        assert published == set(proof_types) - {"attestation"}
        assert "proof_types_supported" in entry or proof_types == ("attestation",)
    else:
        assert published == set(proof_types)
    assert detect_metadata_version(meta) is version


def test_batch_size_one_is_not_published(clock: FakeClock) -> None:
    assert "batch_credential_issuance" not in create_issuer_metadata(
        make_config(clock, batch_size=1)
    )


def test_external_authorization_server(clock: FakeClock) -> None:
    external = ExternalAuthorizationServer(
        issuer="https://as.example", jwks=[LocalSigner.generate().public_jwk]
    )
    meta = create_issuer_metadata(make_config(clock, external_authorization_server=external))
    assert meta["authorization_servers"] == ["https://as.example"]


def test_jwt_vc_issuer_metadata(clock: FakeClock) -> None:
    config = make_config(clock)
    doc = create_jwt_vc_issuer_metadata(config)
    assert doc["issuer"] == ISSUER
    (key,) = doc["jwks"]["keys"]
    assert key["kid"] == "issuer-key-1"
    assert "d" not in key
    unnamed = make_config(clock, credential_signer=LocalSigner.generate())
    (key,) = create_jwt_vc_issuer_metadata(unnamed)["jwks"]["keys"]
    assert key["kid"] == jwk_thumbprint(key)


def test_well_known_paths(clock: FakeClock) -> None:
    assert well_known_paths(make_config(clock), "openid-credential-issuer") == (
        "/.well-known/openid-credential-issuer",
    )
    with_path = make_config(clock, issuer="https://issuer.example/t/1/")
    assert well_known_paths(with_path, "openid-credential-issuer") == (
        "/.well-known/openid-credential-issuer/t/1",
        "/t/1/.well-known/openid-credential-issuer",
    )


async def test_both_locations_for_an_issuer_with_a_path(clock: FakeClock) -> None:
    issuer_url = "https://issuer.example/tenant"
    issuer = Issuer(make_config(clock, issuer=issuer_url))
    transport = transport_for(issuer)
    for url in (
        "https://issuer.example/.well-known/openid-credential-issuer/tenant",
        "https://issuer.example/tenant/.well-known/openid-credential-issuer",
    ):
        response = await send(transport, "GET", url)
        assert response.status == 200, url
        assert response.media_type == "application/json"
        body = response.json_body()
        assert body["credential_issuer"] == issuer_url
        assert body["credential_endpoint"] == issuer_url + "/credential"
    response = await send(
        transport, "GET", "https://issuer.example/.well-known/openid-credential-issuer"
    )
    assert response.status == 404
    response = await send(
        transport, "GET", "https://issuer.example/.well-known/jwt-vc-issuer/tenant"
    )
    assert response.status == 200
    assert response.json_body()["issuer"] == issuer_url
    response = await send(
        transport, "GET", "https://issuer.example/.well-known/oauth-authorization-server/tenant"
    )
    assert response.status == 200
    assert response.json_body()["issuer"] == issuer_url
    assert response.json_body()["token_endpoint"] == issuer_url + "/token"


async def test_published_version_is_served(clock: FakeClock) -> None:
    transport = transport_for(Issuer(make_config(clock, version=SpecVersion.DRAFT_13)))
    response = await send(transport, "GET", ISSUER + "/.well-known/openid-credential-issuer")
    body = response.json_body()
    assert _identity(body)["format"] == "vc+sd-jwt"
    assert "nonce_endpoint" not in body


async def test_no_as_metadata_with_an_external_server(clock: FakeClock) -> None:
    external = ExternalAuthorizationServer(
        issuer="https://as.example", jwks=[LocalSigner.generate().public_jwk]
    )
    transport = transport_for(Issuer(make_config(clock, external_authorization_server=external)))
    response = await send(transport, "GET", ISSUER + "/.well-known/oauth-authorization-server")
    assert response.status == 404
    response = await send(transport, "POST", ISSUER + "/token")
    assert response.status == 404
