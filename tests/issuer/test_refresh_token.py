"""Refresh tokens at the token endpoint (RFC 6749 §6, RFC 9449 §5, RFC 9700 §4.14.2): issued
when configured, bound to the DPoP key and the wallet attestation, rotated (single use, a
reuse revokes the family, two parallel uses: exactly one wins), expiry, AS metadata."""

from __future__ import annotations

from typing import Any

import anyio
import attrs
import pytest

from oid4vci.dpop import build_dpop_jwt
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import Issuer
from oid4vci.issuer.access_token import verify_access_token
from oid4vci.issuer.as_metadata import create_as_metadata
from oid4vci.issuer.config import IssuerConfig, RefreshTokenSettings
from oid4vci.issuer.responses import ResourceServerError
from oid4vci.issuer.store import MemoryStore
from oid4vci.jose import LocalSigner
from tests.attestation_support import attested_issuer, provider_pki
from tests.conftest import FakeClock
from tests.issuer.test_client_attestation import auth_headers, pre_authorized_code
from tests.issuer.test_token import (
    CREDENTIAL,
    error_of,
    make_config,
    pre_auth,
    pre_auth_form,
    token_request,
)

ROTATE = RefreshTokenSettings(ttl=3600, family_lifetime=7200, rotate=True)


def refresh_form(token: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token, **extra}


async def first_tokens(config: IssuerConfig, key: LocalSigner | None) -> dict[str, Any]:
    response = await token_request(config, pre_auth_form(await pre_auth(config)), key)
    assert response.status == 200, response.body
    return response.json_body()


async def use_access_token(config: IssuerConfig, key: LocalSigner, token: str) -> None:
    proof = await build_dpop_jwt(key, "POST", CREDENTIAL, access_token=token, clock=config.clock)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    await verify_access_token(HttpRequest.json("POST", CREDENTIAL, {}, headers), config)


async def assert_revoked(config: IssuerConfig, key: LocalSigner, token: str) -> None:
    with pytest.raises(ResourceServerError) as info:
        await use_access_token(config, key, token)
    assert info.value.error == "invalid_token"


async def test_off_by_default(clock: FakeClock) -> None:
    config = make_config(clock)
    body = await first_tokens(config, LocalSigner.generate())
    assert "refresh_token" not in body
    response = await token_request(config, refresh_form("x"), LocalSigner.generate())
    assert error_of(response) == "unsupported_grant_type"
    assert "refresh_token" not in create_as_metadata(config)["grant_types_supported"]


async def test_rotation_flow(clock: FakeClock) -> None:
    """Issue, refresh (new tokens of the same grant), reuse of the old one revokes all."""
    config = make_config(clock, refresh_tokens=ROTATE)
    assert "refresh_token" in create_as_metadata(config)["grant_types_supported"]
    key = LocalSigner.generate()
    body = await first_tokens(config, key)
    first_refresh = body["refresh_token"]
    # hashed at rest: the raw token is in no key and no value
    assert isinstance(config.store, MemoryStore)
    assert first_refresh not in repr(config.store._data)
    clock.advance(config.access_token_ttl + 1)
    await assert_revoked(config, key, body["access_token"])  # expired
    response = await token_request(config, refresh_form(first_refresh), key)
    assert response.status == 200, response.body
    second = response.json_body()
    assert second["token_type"] == "DPoP"
    assert second["refresh_token"] != first_refresh
    assert second["authorization_details"][0]["credential_configuration_id"] == "pid"
    await use_access_token(config, key, second["access_token"])
    # the old refresh token again: refused, and the whole family is revoked
    replay = await token_request(config, refresh_form(first_refresh), key)
    assert error_of(replay) == "invalid_grant"
    await assert_revoked(config, key, second["access_token"])
    refused = await token_request(config, refresh_form(second["refresh_token"]), key)
    assert error_of(refused) == "invalid_grant"


async def test_two_parallel_refreshes_exactly_one_wins_and_the_family_dies(
    clock: FakeClock,
) -> None:
    config = make_config(clock, refresh_tokens=ROTATE)
    key = LocalSigner.generate()
    body = await first_tokens(config, key)
    results: list[HttpResponse] = []

    async def refresh() -> None:
        results.append(await token_request(config, refresh_form(body["refresh_token"]), key))

    async with anyio.create_task_group() as group:
        group.start_soon(refresh)
        group.start_soon(refresh)
    assert sorted(r.status for r in results) == [200, 400]
    winner = next(r for r in results if r.status == 200).json_body()
    loser = next(r for r in results if r.status == 400)
    assert error_of(loser) == "invalid_grant"
    await assert_revoked(config, key, winner["access_token"])
    again = await token_request(config, refresh_form(winner["refresh_token"]), key)
    assert error_of(again) == "invalid_grant"


async def test_without_rotation_the_token_stays_and_none_is_returned(clock: FakeClock) -> None:
    config = make_config(clock, refresh_tokens=RefreshTokenSettings(ttl=3600))
    key = LocalSigner.generate()
    body = await first_tokens(config, key)
    for _ in range(2):
        response = await token_request(config, refresh_form(body["refresh_token"]), key)
        assert response.status == 200, response.body
        assert "refresh_token" not in response.json_body()
        await use_access_token(config, key, response.json_body()["access_token"])


async def test_bearer_tokens_get_no_refresh_token_without_rotation(clock: FakeClock) -> None:
    config = make_config(clock, allow_bearer=True, refresh_tokens=RefreshTokenSettings())
    body = await first_tokens(config, None)
    assert body["token_type"] == "Bearer" and "refresh_token" not in body


async def test_wrong_or_missing_dpop_key_is_refused_and_the_token_survives(
    clock: FakeClock,
) -> None:
    config = make_config(clock, refresh_tokens=ROTATE)
    key = LocalSigner.generate()
    body = await first_tokens(config, key)
    wrong = await token_request(config, refresh_form(body["refresh_token"]), LocalSigner.generate())
    assert wrong.status == 400 and error_of(wrong) == "invalid_dpop_proof"
    bearer = attrs.evolve(config, allow_bearer=True)
    missing = await token_request(bearer, refresh_form(body["refresh_token"]), None)
    assert error_of(missing) == "invalid_dpop_proof"
    # the refusals did not burn the token: its owner still refreshes
    ok = await token_request(config, refresh_form(body["refresh_token"]), key)
    assert ok.status == 200, ok.body


async def test_expired_refresh_token_and_family_end(clock: FakeClock) -> None:
    config = make_config(clock, refresh_tokens=ROTATE)
    key = LocalSigner.generate()
    body = await first_tokens(config, key)
    clock.advance(ROTATE.ttl + 1)
    expired = await token_request(config, refresh_form(body["refresh_token"]), key)
    assert error_of(expired) == "invalid_grant"
    # the family's end cuts a fresh token's life short
    body = await first_tokens(config, key)
    clock.advance(ROTATE.ttl - 10)
    token = body["refresh_token"]
    for _ in range(2):
        response = await token_request(config, refresh_form(token), key)
        assert response.status == 200, response.body
        token = response.json_body()["refresh_token"]
        clock.advance(ROTATE.ttl - 10)
    # 3 × (ttl - 10) > family_lifetime: the third use is past the family's end
    late = await token_request(config, refresh_form(token), key)
    assert error_of(late) == "invalid_grant"


@pytest.mark.parametrize(
    ("form", "error"),
    [
        ({"grant_type": "refresh_token"}, "invalid_request"),
        (refresh_form("unknown"), "invalid_grant"),
        (refresh_form("x", code="c"), "invalid_request"),
        (refresh_form("x", authorization_details="[]"), "invalid_request"),
    ],
)
async def test_malformed_refresh_requests(
    clock: FakeClock, form: dict[str, str], error: str
) -> None:
    config = make_config(clock, refresh_tokens=ROTATE)
    body = await first_tokens(config, LocalSigner.generate())
    if form.get("refresh_token") == "x":
        form = {**form, "refresh_token": body["refresh_token"]}
    response = await token_request(config, form, LocalSigner.generate())
    assert error_of(response) == error


async def test_scope_beyond_the_grant_is_refused_and_the_token_survives(clock: FakeClock) -> None:
    config = make_config(clock, refresh_tokens=ROTATE)
    key = LocalSigner.generate()
    body = await first_tokens(config, key)
    token = body["refresh_token"]
    wider = await token_request(config, refresh_form(token, scope="pid diploma"), key)
    assert error_of(wider) == "invalid_scope"
    ok = await token_request(config, refresh_form(token), key)
    assert ok.status == 200


async def test_token_for_another_dpop_proof_htu_is_refused(clock: FakeClock) -> None:
    config = make_config(clock, refresh_tokens=ROTATE)
    key = LocalSigner.generate()
    body = await first_tokens(config, key)
    proof = await build_dpop_jwt(key, "POST", CREDENTIAL, clock=clock)
    response = await token_request(config, refresh_form(body["refresh_token"]), key, proof=proof)
    assert error_of(response) == "invalid_dpop_proof"  # htu is not the token endpoint (TOKEN)


# --- attested grants ------------------------------------------------------------------------


async def _attested(clock: FakeClock) -> tuple[Issuer, Any]:
    pki = provider_pki()
    base = attested_issuer(clock, pki, key_required=None, require_client=False)
    config = attrs.evolve(base.issuer.config, refresh_tokens=ROTATE)
    return Issuer(config, offer_templates=list(base.issuer.offer_templates.values())), (pki, base)


async def _attested_request(
    issuer: Issuer, clock: FakeClock, form: dict[str, str], key: LocalSigner, headers: Any
) -> HttpResponse:
    dpop = await build_dpop_jwt(key, "POST", issuer.config.endpoint("token"), clock=clock)
    request = HttpRequest.form(
        "POST", issuer.config.endpoint("token"), form, headers={**headers, "DPoP": dpop}
    )
    return await issuer.handle(request)


async def test_attested_family_needs_the_same_attestation(clock: FakeClock) -> None:
    issuer, (pki, base) = await _attested(clock)
    key = LocalSigner.generate()
    code = await pre_authorized_code(attrs.evolve(base, issuer=issuer))
    first = await _attested_request(
        issuer, clock, pre_auth_form(code), key, await auth_headers(pki, clock)
    )
    assert first.status == 200, first.body
    token = first.json_body()["refresh_token"]
    # no attestation: invalid_client (400)
    missing = await _attested_request(issuer, clock, refresh_form(token), key, {})
    assert missing.status == 400 and error_of(missing) == "invalid_client"
    # a valid attestation of the same provider, but another instance key: invalid_client
    foreign = await _attested_request(
        issuer, clock, refresh_form(token), key, await auth_headers(pki, clock)
    )
    assert foreign.status == 400 and error_of(foreign) == "invalid_client"
    assert "bound" in foreign.json_body()["error_description"]


async def test_attested_family_refreshes_with_the_same_instance_key(clock: FakeClock) -> None:
    from oid4vci.attestation import (
        CLIENT_ATTESTATION_HEADER,
        CLIENT_ATTESTATION_POP_HEADER,
        create_client_attestation_pop,
    )
    from tests.attestation_support import CLIENT_ID, make_provider

    issuer, (pki, base) = await _attested(clock)
    provider = make_provider(pki, clock)
    attestation = await provider.client_attestation(
        authorization_server=issuer.config.credential_issuer
    )

    async def headers() -> dict[str, str]:
        pop = await create_client_attestation_pop(
            attestation.instance_key,
            audience=issuer.config.credential_issuer,
            client_id=CLIENT_ID,
            clock=clock,
        )
        return {
            CLIENT_ATTESTATION_HEADER: attestation.attestation,
            CLIENT_ATTESTATION_POP_HEADER: pop,
        }

    key = LocalSigner.generate()
    code = await pre_authorized_code(attrs.evolve(base, issuer=issuer))
    first = await _attested_request(issuer, clock, pre_auth_form(code), key, await headers())
    assert first.status == 200, first.body
    token = first.json_body()["refresh_token"]
    again = await _attested_request(issuer, clock, refresh_form(token), key, await headers())
    assert again.status == 200, again.body
