"""Token endpoint: pre-authorized and authorization code grants, DPoP, tx_code limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest

from oid4vci._wire import record_from_json, record_to_json
from oid4vci.dpop import build_dpop_jwt
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer.access_token import verify_access_token
from oid4vci.issuer.config import CredentialConfigurationSpec, IssuerConfig
from oid4vci.issuer.nonce import take_c_nonce
from oid4vci.issuer.responses import ResourceServerError
from oid4vci.issuer.store import MemoryStore
from oid4vci.issuer.token import (
    AuthorizationCodeRecord,
    PreAuthorizedCodeRecord,
    handle_token,
    store_authorization_code,
    store_pre_authorized_code,
)
from oid4vci.jose import LocalSigner, jwk_thumbprint
from oid4vci.models import PRE_AUTHORIZED_CODE_GRANT
from oid4vci.pkce import code_challenge, generate_code_verifier
from oid4vci.versions import SpecVersion
from tests.conftest import FakeClock

ISSUER = "https://issuer.example.com"
TOKEN = ISSUER + "/token"
CREDENTIAL = ISSUER + "/credential"
REDIRECT = "https://wallet.example.org/cb"


async def _claims(subject: str, configuration_id: str) -> Mapping[str, Any]:
    return {"sub": subject}


def make_config(clock: FakeClock, **overrides: Any) -> IssuerConfig:
    return IssuerConfig(
        credential_issuer=ISSUER,
        credential_signer=LocalSigner.generate(),
        credential_configurations=[
            CredentialConfigurationSpec(id="pid", vct="urn:eudi:pid:1", scope="pid"),
            CredentialConfigurationSpec(id="diploma", vct="urn:diploma", scope="diploma"),
        ],
        claims_source=_claims,
        store=MemoryStore(clock=clock),
        clock=clock,
        **overrides,
    )


async def pre_auth(config: IssuerConfig, code: str = "code-1", tx_code: str | None = None) -> str:
    grant = PreAuthorizedCodeRecord(subject="alice", configuration_ids=("pid",), tx_code=tx_code)
    await store_pre_authorized_code(config.store, code, grant, 600)
    return code


async def token_request(
    config: IssuerConfig,
    data: Mapping[str, str],
    key: LocalSigner | None,
    *,
    nonce: str | None = None,
    proof: str | None = None,
) -> HttpResponse:
    headers: dict[str, str] = {}
    if proof is not None:
        headers["DPoP"] = proof
    elif key is not None:
        headers["DPoP"] = await build_dpop_jwt(key, "POST", TOKEN, nonce=nonce, clock=config.clock)
    return await handle_token(HttpRequest.form("POST", TOKEN, data, headers), config)


def pre_auth_form(code: str, **extra: str) -> dict[str, str]:
    return {"grant_type": PRE_AUTHORIZED_CODE_GRANT, "pre-authorized_code": code, **extra}


def error_of(response: HttpResponse) -> str:
    body = response.json_body()
    assert response.headers.get("Cache-Control") == "no-store"
    return str(body["error"])


async def test_pre_authorized_happy_path(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    code = await pre_auth(config)
    response = await token_request(config, pre_auth_form(code), key)
    assert response.status == 200, response.body
    assert response.headers.get("Cache-Control") == "no-store"
    body = response.json_body()
    assert body["token_type"] == "DPoP"
    assert body["expires_in"] == 600
    assert len(body["access_token"]) >= 43
    assert "c_nonce" not in body
    assert body["authorization_details"] == [
        {
            "type": "openid_credential",
            "credential_configuration_id": "pid",
            "credential_identifiers": ["pid"],
        }
    ]
    token = body["access_token"]
    # the raw token is never a store key
    assert await config.store.get(token) is None
    proof = await build_dpop_jwt(key, "POST", CREDENTIAL, access_token=token, clock=clock)
    request = HttpRequest.json(
        "POST", CREDENTIAL, {}, {"Authorization": f"DPoP {token}", "DPoP": proof}
    )
    context = await verify_access_token(request, config)
    assert context.subject == "alice"
    assert context.anonymous
    assert context.client_id is None
    assert context.jkt == jwk_thumbprint(key.public_jwk)
    assert context.credential_identifiers == {"pid": "pid"}


async def test_draft13_token_response_has_c_nonce(clock: FakeClock) -> None:
    config = make_config(clock, published_version=SpecVersion.DRAFT_13)
    code = await pre_auth(config)
    response = await token_request(config, pre_auth_form(code), LocalSigner.generate())
    body = response.json_body()
    assert body["c_nonce_expires_in"] == 300
    assert "authorization_details" not in body
    assert await take_c_nonce(body["c_nonce"], config)
    assert not await take_c_nonce(body["c_nonce"], config)


async def test_tx_code_required_unexpected_and_wrong(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    code = await pre_auth(config, tx_code="493536")
    missing = await token_request(config, pre_auth_form(code), key)
    assert (missing.status, error_of(missing)) == (400, "invalid_request")
    wrong = await token_request(config, pre_auth_form(code, tx_code="000000"), key)
    assert (wrong.status, error_of(wrong)) == (400, "invalid_grant")
    good = await token_request(config, pre_auth_form(code, tx_code="493536"), key)
    assert good.status == 200

    plain = await pre_auth(config, "code-2")
    unexpected = await token_request(config, pre_auth_form(plain, tx_code="1"), key)
    assert (unexpected.status, error_of(unexpected)) == (400, "invalid_request")


async def test_code_burned_after_max_wrong_tx_codes(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    code = await pre_auth(config, tx_code="493536")
    for _ in range(5):
        wrong = await token_request(config, pre_auth_form(code, tx_code="111111"), key)
        assert error_of(wrong) == "invalid_grant"
    right = await token_request(config, pre_auth_form(code, tx_code="493536"), key)
    assert (right.status, error_of(right)) == (400, "invalid_grant")


async def test_four_wrong_tx_codes_then_right_succeeds(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    code = await pre_auth(config, tx_code="493536")
    for _ in range(4):
        await token_request(config, pre_auth_form(code, tx_code="111111"), key)
    right = await token_request(config, pre_auth_form(code, tx_code="493536"), key)
    assert right.status == 200


@pytest.mark.parametrize("tx_code", [None, "493536"])
async def test_parallel_redemption_succeeds_exactly_once(
    clock: FakeClock, tx_code: str | None
) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    code = await pre_auth(config, tx_code=tx_code)
    form = pre_auth_form(code) if tx_code is None else pre_auth_form(code, tx_code=tx_code)
    proofs = [await build_dpop_jwt(key, "POST", TOKEN, clock=clock) for _ in range(20)]
    statuses: list[int] = []

    async def redeem(proof: str) -> None:
        await anyio.lowlevel.checkpoint()
        response = await token_request(config, form, None, proof=proof)
        statuses.append(response.status)

    async with anyio.create_task_group() as tg:
        for proof in proofs:
            tg.start_soon(redeem, proof)
    assert sorted(statuses) == [200] + [400] * 19


async def test_pre_authorized_code_reuse_refused(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    code = await pre_auth(config)
    assert (await token_request(config, pre_auth_form(code), key)).status == 200
    again = await token_request(config, pre_auth_form(code), key)
    assert error_of(again) == "invalid_grant"


async def test_pre_authorized_code_expires(clock: FakeClock) -> None:
    config = make_config(clock)
    code = await pre_auth(config)
    clock.advance(601)
    response = await token_request(config, pre_auth_form(code), LocalSigner.generate())
    assert error_of(response) == "invalid_grant"


async def test_anonymous_refused_when_disabled(clock: FakeClock) -> None:
    config = make_config(clock, pre_authorized_anonymous_access=False)
    key = LocalSigner.generate()
    code = await pre_auth(config)
    anonymous = await token_request(config, pre_auth_form(code), key)
    assert error_of(anonymous) == "invalid_client"
    named = await token_request(config, pre_auth_form(code, client_id="wallet"), key)
    assert named.status == 200


async def test_dpop_required_when_bearer_disallowed(clock: FakeClock) -> None:
    config = make_config(clock)
    code = await pre_auth(config)
    response = await token_request(config, pre_auth_form(code), None)
    assert (response.status, error_of(response)) == (400, "invalid_request")
    assert response.json_body()["error_description"] == "DPoP proof required"
    # the code was not consumed by the refused request
    assert (await token_request(config, pre_auth_form(code), LocalSigner.generate())).status == 200


async def test_bearer_token_when_allowed(clock: FakeClock) -> None:
    config = make_config(clock, allow_bearer=True)
    code = await pre_auth(config)
    response = await token_request(config, pre_auth_form(code), None)
    assert response.json_body()["token_type"] == "Bearer"


async def test_dpop_nonce_challenge_then_success(clock: FakeClock) -> None:
    config = make_config(clock, require_dpop_nonce=True)
    key = LocalSigner.generate()
    code = await pre_auth(config)
    first = await token_request(config, pre_auth_form(code), key)
    assert (first.status, error_of(first)) == (400, "use_dpop_nonce")
    assert "WWW-Authenticate" not in first.headers
    nonce = first.headers.get("DPoP-Nonce")
    assert nonce
    wrong = await token_request(config, pre_auth_form(code), key, nonce="x" * 32)
    assert error_of(wrong) == "use_dpop_nonce"
    retry = await token_request(config, pre_auth_form(code), key, nonce=nonce)
    assert retry.status == 200


async def test_replayed_dpop_proof_refused(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    first = await pre_auth(config, "code-a")
    second = await pre_auth(config, "code-b")
    proof = await build_dpop_jwt(key, "POST", TOKEN, clock=clock)
    assert (await token_request(config, pre_auth_form(first), None, proof=proof)).status == 200
    replay = await token_request(config, pre_auth_form(second), None, proof=proof)
    assert error_of(replay) == "invalid_dpop_proof"


async def test_dpop_proof_for_another_url_refused(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    code = await pre_auth(config)
    proof = await build_dpop_jwt(key, "POST", ISSUER + "/par", clock=clock)
    response = await token_request(config, pre_auth_form(code), None, proof=proof)
    assert error_of(response) == "invalid_dpop_proof"


async def test_method_content_type_and_grant_type(clock: FakeClock) -> None:
    config = make_config(clock)
    get = await handle_token(HttpRequest(method="GET", url=TOKEN), config)
    assert get.status == 405
    assert get.headers.get("Allow") == "POST"
    as_json = await handle_token(
        HttpRequest.json("POST", TOKEN, {"grant_type": "authorization_code"}), config
    )
    assert (as_json.status, error_of(as_json)) == (400, "invalid_request")
    other = await token_request(config, {"grant_type": "password"}, LocalSigner.generate())
    assert error_of(other) == "unsupported_grant_type"
    missing = await token_request(config, {}, LocalSigner.generate())
    assert error_of(missing) == "invalid_request"


async def test_token_request_authorization_details_narrow(clock: FakeClock) -> None:
    config = make_config(clock)
    grant = PreAuthorizedCodeRecord(subject="alice", configuration_ids=("pid", "diploma"))
    await store_pre_authorized_code(config.store, "both", grant, 600)
    details = '[{"type":"openid_credential","credential_configuration_id":"diploma"}]'
    response = await token_request(
        config, pre_auth_form("both", authorization_details=details), LocalSigner.generate()
    )
    body = response.json_body()
    assert [d["credential_configuration_id"] for d in body["authorization_details"]] == ["diploma"]
    await store_pre_authorized_code(config.store, "one", grant, 600)
    bad = '[{"type":"openid_credential","credential_configuration_id":"other"}]'
    refused = await token_request(
        config, pre_auth_form("one", authorization_details=bad), LocalSigner.generate()
    )
    assert error_of(refused) == "invalid_authorization_details"


# -- authorization code grant --------------------------------------------------------------

VERIFIER = generate_code_verifier()


async def auth_code(
    config: IssuerConfig, code: str = "auth-code", *, dpop_jkt: str | None = None
) -> AuthorizationCodeRecord:
    grant = AuthorizationCodeRecord(
        subject="bob",
        client_id="wallet",
        redirect_uri=REDIRECT,
        code_challenge=code_challenge(VERIFIER),
        configuration_ids=("pid",),
        authorization_details_used=True,
        dpop_jkt=dpop_jkt,
    )
    await store_authorization_code(config.store, code, grant, 60)
    return grant


def code_form(code: str = "auth-code", **overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": VERIFIER,
        "client_id": "wallet",
    }
    form.update(overrides)
    return form


async def test_authorization_code_happy_path(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    await auth_code(config, dpop_jkt=jwk_thumbprint(key.public_jwk))
    response = await token_request(config, code_form(), key)
    assert response.status == 200, response.body
    body = response.json_body()
    assert body["authorization_details"][0]["credential_identifiers"] == ["pid"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"code_verifier": generate_code_verifier()},
        {"redirect_uri": "https://wallet.example.org/other"},
        {"client_id": "intruder"},
        {"code": "unknown"},
    ],
)
async def test_authorization_code_mismatches(clock: FakeClock, overrides: dict[str, str]) -> None:
    config = make_config(clock)
    await auth_code(config)
    response = await token_request(config, code_form(**overrides), LocalSigner.generate())
    assert (response.status, error_of(response)) == (400, "invalid_grant")


async def test_authorization_code_survives_bad_authorization_details(clock: FakeClock) -> None:
    config = make_config(clock)
    await auth_code(config)
    key = LocalSigner.generate()
    bad = '[{"type":"openid_credential","credential_configuration_id":"diploma"}]'
    refused = await token_request(config, code_form(authorization_details=bad), key)
    assert (refused.status, error_of(refused)) == (400, "invalid_authorization_details")
    response = await token_request(config, code_form(), key)
    assert response.status == 200, response.body


async def test_authorization_code_missing_verifier(clock: FakeClock) -> None:
    config = make_config(clock)
    await auth_code(config)
    form = code_form()
    del form["code_verifier"]
    response = await token_request(config, form, LocalSigner.generate())
    assert error_of(response) == "invalid_request"


async def test_authorization_code_dpop_jkt_mismatch(clock: FakeClock) -> None:
    config = make_config(clock)
    bound = LocalSigner.generate()
    await auth_code(config, dpop_jkt=jwk_thumbprint(bound.public_jwk))
    response = await token_request(config, code_form(), LocalSigner.generate())
    assert error_of(response) == "invalid_grant"


async def test_authorization_code_reuse_revokes_tokens(clock: FakeClock) -> None:
    config = make_config(clock)
    key = LocalSigner.generate()
    await auth_code(config)
    first = await token_request(config, code_form(), key)
    token = first.json_body()["access_token"]

    async def use() -> None:
        proof = await build_dpop_jwt(key, "POST", CREDENTIAL, access_token=token, clock=clock)
        headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
        await verify_access_token(HttpRequest.json("POST", CREDENTIAL, {}, headers), config)

    await use()
    again = await token_request(config, code_form(), key)
    assert error_of(again) == "invalid_grant"
    with pytest.raises(ResourceServerError) as info:
        await use()
    assert info.value.error == "invalid_token"


async def test_external_as_disables_token_endpoint(clock: FakeClock) -> None:
    from oid4vci.issuer.config import ExternalAuthorizationServer

    signer = LocalSigner.generate()
    config = make_config(
        clock,
        external_authorization_server=ExternalAuthorizationServer(
            issuer="https://as.example.com", jwks=[signer.public_jwk]
        ),
    )
    response = await token_request(config, pre_auth_form("x"), LocalSigner.generate())
    assert response.status == 404


def test_grant_reprs_hide_secrets() -> None:
    grant = PreAuthorizedCodeRecord(subject="alice", configuration_ids=["pid"], tx_code="493536")
    assert "493536" not in repr(grant)
    assert record_from_json(record_to_json(grant), PreAuthorizedCodeRecord) == grant
    code_grant = AuthorizationCodeRecord(
        subject="bob", client_id="c", redirect_uri=REDIRECT, code_challenge="x" * 43
    )
    assert record_from_json(record_to_json(code_grant), AuthorizationCodeRecord) == code_grant
    assert attrs.evolve(code_grant, scope="pid").scope == "pid"
