"""The wallet's encryption decisions and JWE handling (``oid4vci.wallet.encryption``,
OID4VCI 1.0 §10 and §12.2.4; Draft 13-15 response encryption)."""

from __future__ import annotations

from typing import Any

import pytest

from oid4vci.errors import EncryptionError, MetadataError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.jwe import decrypt_jwe, encrypt_json, generate_encryption_key
from oid4vci.models.metadata import CredentialIssuerMetadata
from oid4vci.versions import SpecVersion
from oid4vci.wallet.encryption import (
    EncryptionPlan,
    new_response_key,
    open_response,
    plan_encryption,
    response_encryption_member,
    seal_request,
)

V1 = SpecVersion.V1
ISSUER_KEY = generate_encryption_key(kid="i1")
ISSUER_PUBLIC = {k: v for k, v in ISSUER_KEY.items() if k != "d"}
RESPONSE = {
    "alg_values_supported": ["ECDH-ES"],
    "enc_values_supported": ["A128GCM", "A256GCM"],
    "encryption_required": False,
}
REQUEST = {
    "jwks": {"keys": [ISSUER_PUBLIC]},
    "enc_values_supported": ["A128GCM"],
    "encryption_required": False,
}


def meta(response: Any = None, request: Any = None) -> CredentialIssuerMetadata:
    extra = {"credential_request_encryption": request} if request is not None else {}
    return CredentialIssuerMetadata(
        credential_issuer="https://issuer.example",
        credential_endpoint="https://issuer.example/credential",
        credential_response_encryption=response,
        extra=extra,
    )


def test_when_supported_takes_both_with_preferred_algorithms() -> None:
    plan = plan_encryption(meta(RESPONSE, REQUEST), V1, "when-supported")
    assert plan == EncryptionPlan(
        response_alg="ECDH-ES",
        response_enc="A256GCM",
        request_jwk=ISSUER_PUBLIC,
        request_enc="A128GCM",
    )


def test_drafts_never_encrypt_requests() -> None:
    for version in (SpecVersion.DRAFT_13, SpecVersion.DRAFT_14, SpecVersion.DRAFT_15):
        plan = plan_encryption(
            meta(RESPONSE, {**REQUEST, "encryption_required": True}), version, "when-supported"
        )
        assert plan.request_jwk is None and plan.response_alg == "ECDH-ES"


def test_bare_array_jwks_of_the_final_example_is_read() -> None:
    # The 1.0 final example writes "jwks": [ ... ] (fixed in the errata to {"keys": [...]}).
    plan = plan_encryption(meta(None, {**REQUEST, "jwks": [ISSUER_PUBLIC]}), V1, "when-supported")
    assert plan.request_jwk == ISSUER_PUBLIC and plan.response_alg is None


@pytest.mark.parametrize(
    "key",
    [
        {k: v for k, v in ISSUER_PUBLIC.items() if k != "kid"},
        {k: v for k, v in ISSUER_PUBLIC.items() if k != "alg"},
        {**ISSUER_PUBLIC, "alg": "dir"},
        {**ISSUER_PUBLIC, "use": "sig"},
        ISSUER_KEY,  # private members: never used
        {"kty": "oct", "k": "AAAA", "kid": "s", "alg": "A128KW"},
    ],
)
def test_unusable_request_keys_are_skipped_or_refused(key: dict[str, Any]) -> None:
    request = {**REQUEST, "jwks": {"keys": [key]}}
    assert plan_encryption(meta(RESPONSE, request), V1, "when-supported").request_jwk is None
    with pytest.raises(MetadataError, match="no request encryption key"):
        plan_encryption(
            meta(RESPONSE, {**request, "encryption_required": True}), V1, "when-supported"
        )


def test_off_and_require() -> None:
    assert plan_encryption(meta(RESPONSE, REQUEST), V1, "off") == EncryptionPlan()
    with pytest.raises(MetadataError, match="requires response encryption"):
        plan_encryption(meta({**RESPONSE, "encryption_required": True}), V1, "off")
    with pytest.raises(MetadataError, match="requires request encryption"):
        plan_encryption(meta(None, {**REQUEST, "encryption_required": True}), V1, "off")
    with pytest.raises(MetadataError, match="does not offer"):
        plan_encryption(meta(None, REQUEST), V1, "require")
    with pytest.raises(MetadataError, match="no response encryption this wallet can do"):
        plan_encryption(meta({**RESPONSE, "alg_values_supported": ["RSA-OAEP-256"]}), V1, "require")


def test_unsupported_optional_response_encryption_is_skipped() -> None:
    plan = plan_encryption(
        meta({**RESPONSE, "enc_values_supported": ["A192GCM"]}), V1, "when-supported"
    )
    assert plan.response_alg is None


@pytest.mark.parametrize("bad", ["yes", ["ECDH-ES"], 1])
def test_malformed_metadata_objects(bad: Any) -> None:
    with pytest.raises(MetadataError):
        plan_encryption(meta(None, bad), V1, "when-supported")


def test_request_member_shapes_and_fresh_keys() -> None:
    plan = plan_encryption(meta(RESPONSE), V1, "when-supported")
    first, second = new_response_key(plan), new_response_key(plan)
    assert first is not None and second is not None
    assert first.private_jwk["d"] != second.private_jwk["d"]
    assert first.private_jwk["d"] not in repr(first)
    v1 = response_encryption_member(first, V1)
    assert v1 == {"jwk": first.public_jwk, "enc": "A256GCM"} and v1["jwk"]["alg"] == "ECDH-ES"
    assert "d" not in v1["jwk"]
    d13 = response_encryption_member(first, SpecVersion.DRAFT_13)
    assert d13 == {"jwk": first.public_jwk, "alg": "ECDH-ES", "enc": "A256GCM"}
    assert new_response_key(EncryptionPlan()) is None


def test_seal_request_encrypts_to_the_issuer_key() -> None:
    plan = plan_encryption(meta(RESPONSE, REQUEST), V1, "when-supported")
    request = HttpRequest.json(
        "POST", "https://issuer.example/credential", {"a": 1}, {"Authorization": "DPoP x"}
    )
    sealed = seal_request(request, plan)
    assert (
        sealed.media_type == "application/jwt" and sealed.headers.get("Authorization") == "DPoP x"
    )
    opened = decrypt_jwe(
        sealed.body.decode(), [ISSUER_KEY], algorithms=["ECDH-ES"], encryptions=["A128GCM"]
    )
    assert opened.header["kid"] == "i1" and opened.json_object() == {"a": 1}
    assert seal_request(request, EncryptionPlan()) is request


def answer(status: int, body: bytes, media: str) -> HttpResponse:
    return HttpResponse(status=status, headers={"Content-Type": media}, body=body)


def test_open_response() -> None:
    key = new_response_key(plan_encryption(meta(RESPONSE), V1, "when-supported"))
    assert key is not None
    token = encrypt_json({"credentials": []}, key.public_jwk, alg="ECDH-ES", enc="A256GCM")
    opened = open_response(answer(202, token.encode(), "application/jwt"), key)
    assert opened.status == 202 and opened.json_body() == {"credentials": []}
    error = answer(400, b'{"error":"invalid_proof"}', "application/json")
    assert open_response(error, key) is error
    with pytest.raises(EncryptionError, match="answered unencrypted"):
        open_response(answer(200, b"{}", "application/json"), key)
    with pytest.raises(EncryptionError, match="did not ask"):
        open_response(answer(200, token.encode(), "application/jwt"), None)
    plain = answer(200, b"{}", "application/json")
    assert open_response(plain, None) is plain
    other = encrypt_json({"x": 1}, key.public_jwk, alg="ECDH-ES", enc="A128GCM")
    with pytest.raises(EncryptionError, match="enc is not allowed"):
        open_response(answer(200, other.encode(), "application/jwt"), key)


@pytest.mark.anyio
async def test_lowlevel_request_credential_with_encryption(clock: Any) -> None:
    from oid4vci.issuer.encryption import EncryptionSettings
    from oid4vci.jose import LocalSigner
    from oid4vci.transports.memory import InMemoryTransport
    from oid4vci.wallet.lowlevel import request_credential
    from tests.security.support import CREDENTIAL, ISSUER, Env

    env = Env(
        clock, encryption=EncryptionSettings(request_keys=(ISSUER_KEY,), request_required=True)
    )
    dpop = LocalSigner.generate()
    token = await env.access_token(dpop)
    seen: list[tuple[str, str]] = []

    async def handle(request: HttpRequest) -> HttpResponse:
        response = await env.send(request)
        seen.append((request.media_type, response.media_type))
        return response

    metadata = create_metadata(env)
    plan = plan_encryption(metadata, V1, "when-supported")
    proof = await env.key_proof(LocalSigner.generate(), await env.c_nonce())
    async with InMemoryTransport(routes={ISSUER: handle}) as transport:
        answer = await request_credential(
            transport,
            CREDENTIAL,
            {"credential_configuration_id": "pid", "proofs": {"jwt": [proof]}},
            access_token=token,
            token_type="DPoP",
            dpop_key=dpop,
            clock=clock,
            encryption=plan,
        )
    assert answer.credentials and seen == [("application/jwt", "application/jwt")]


def create_metadata(env: Any) -> CredentialIssuerMetadata:
    from oid4vci.issuer.metadata import create_issuer_metadata
    from oid4vci.wallet.discovery import read_issuer_metadata

    meta, _ = read_issuer_metadata(create_issuer_metadata(env.config), env.config.credential_issuer)
    return meta
