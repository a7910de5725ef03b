"""DPoP-combined wallet attestation (``attest_jwt_client_auth_dpop``,
draft-ietf-oauth-attestation-based-client-auth-10 §5.2): the issuer accepts a DPoP proof by the
attestation's ``cnf`` key as the PoP when configured (and keeps the two-header mode of draft
-07); the wallet uses it when the AS offers only that method, with the instance key as its DPoP
key. Raw requests, then the real wallet in memory and over aiohttp on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest

from oid4vci.attestation import (
    ATTEST_JWT_CLIENT_AUTH,
    ATTEST_JWT_CLIENT_AUTH_DPOP,
    CLIENT_ATTESTATION_HEADER,
    CLIENT_ATTESTATION_POP_HEADER,
)
from oid4vci.dpop import build_dpop_jwt
from oid4vci.errors import MetadataError, UsageError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import Issuer
from oid4vci.issuer.as_metadata import create_as_metadata
from oid4vci.issuer.config import AttestationSettings, RefreshTokenSettings
from oid4vci.jose import LocalSigner, decode_jws, jwk_thumbprint
from oid4vci.models import PRE_AUTHORIZED_CODE_GRANT
from oid4vci.transports.aiohttp import AiohttpTransport, serve
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from tests.attestation_support import (
    CLIENT_ID,
    ISSUER,
    REDIRECT_URI,
    AttestedIssuer,
    Recorder,
    attested_issuer,
    browser_login,
    make_provider,
    provider_pki,
)
from tests.conftest import FakeClock
from tests.issuer.test_client_attestation import auth_headers, pre_authorized_code
from tests.x509_support import Pki

TOKEN = ISSUER + "/token"
AS_METADATA = "/.well-known/oauth-authorization-server"


def combined_issuer(
    clock: FakeClock, pki: Pki, *, issuer_url: str = ISSUER, combined: bool = True
) -> AttestedIssuer:
    base = attested_issuer(clock, pki, issuer_url=issuer_url, key_required=None)
    config = base.issuer.config
    assert config.attestation is not None
    config = attrs.evolve(
        config,
        attestation=attrs.evolve(config.attestation, dpop_combined=combined),
        refresh_tokens=RefreshTokenSettings(ttl=3600, family_lifetime=7200),
    )
    issuer = Issuer(config, offer_templates=base.issuer.offer_templates.values())
    links = {name: issuer.offer_template_link(name) for name in base.links}
    return attrs.evolve(base, issuer=issuer, links=links)


async def combined_token_request(
    issuer: AttestedIssuer, clock: FakeClock, pki: Pki, *, dpop_key: Any = None
) -> HttpResponse:
    provider = make_provider(pki, clock)
    attestation = await provider.client_attestation(authorization_server=ISSUER)
    key = dpop_key or attestation.instance_key
    dpop = await build_dpop_jwt(key, "POST", TOKEN, clock=clock)
    code = await pre_authorized_code(issuer)
    return await issuer.handle(
        HttpRequest.form(
            "POST",
            TOKEN,
            {"grant_type": PRE_AUTHORIZED_CODE_GRANT, "pre-authorized_code": code},
            headers=[(CLIENT_ATTESTATION_HEADER, attestation.attestation), ("DPoP", dpop)],
        )
    )


# --- the issuer ----------------------------------------------------------------------------


def test_metadata_lists_both_methods(clock: FakeClock) -> None:
    pki = provider_pki()
    methods = create_as_metadata(combined_issuer(clock, pki).issuer.config)[
        "token_endpoint_auth_methods_supported"
    ]
    assert methods == [ATTEST_JWT_CLIENT_AUTH, ATTEST_JWT_CLIENT_AUTH_DPOP]
    plain = create_as_metadata(combined_issuer(clock, pki, combined=False).issuer.config)
    assert ATTEST_JWT_CLIENT_AUTH_DPOP not in plain["token_endpoint_auth_methods_supported"]


async def test_a_dpop_proof_by_the_instance_key_is_the_pop(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = combined_issuer(clock, pki)
    ok = await combined_token_request(issuer, clock, pki)
    assert ok.status == 200, ok.body
    assert ok.json_body()["token_type"] == "DPoP"


async def test_a_dpop_proof_by_another_key_is_invalid_client(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = combined_issuer(clock, pki)
    answer = await combined_token_request(issuer, clock, pki, dpop_key=LocalSigner.generate())
    assert answer.status == 400, answer.body
    assert answer.json_body()["error"] == "invalid_client"
    assert "cnf" in answer.json_body()["error_description"]


async def test_without_the_setting_one_header_is_refused(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = combined_issuer(clock, pki, combined=False)
    answer = await combined_token_request(issuer, clock, pki)
    assert answer.status == 400 and "exactly one" in answer.json_body()["error_description"]


async def test_the_two_header_mode_stays_accepted(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = combined_issuer(clock, pki)
    headers = await auth_headers(pki, clock)
    dpop = await build_dpop_jwt(LocalSigner.generate(), "POST", TOKEN, clock=clock)
    answer = await issuer.handle(
        HttpRequest.form(
            "POST",
            TOKEN,
            {
                "grant_type": PRE_AUTHORIZED_CODE_GRANT,
                "pre-authorized_code": await pre_authorized_code(issuer),
                "client_id": CLIENT_ID,
            },
            headers=[*headers.items(), ("DPoP", dpop)],
        )
    )
    assert answer.status == 200, answer.body


def test_combined_mode_does_not_go_with_challenges() -> None:
    with pytest.raises(UsageError):
        AttestationSettings(
            client_trust_anchors=[provider_pki().root], dpop_combined=True, require_challenge=True
        )


# --- the wallet ----------------------------------------------------------------------------


def only_combined(issuer: AttestedIssuer) -> Callable[[HttpRequest], Awaitable[HttpResponse]]:
    """The issuer, its AS metadata offering only ``attest_jwt_client_auth_dpop``."""

    async def handle(request: HttpRequest) -> HttpResponse:
        response = await issuer.handle(request)
        if request.url.endswith(AS_METADATA):
            doc = response.json_body()
            doc["token_endpoint_auth_methods_supported"] = [ATTEST_JWT_CLIENT_AUTH_DPOP]
            return HttpResponse.json(200, doc)
        return response

    return handle


def check_combined(requests: list[HttpRequest]) -> None:
    """Every attested request: the attestation, no PoP header, a DPoP proof by its cnf key."""
    assert requests
    for request in requests:
        attestation = request.headers[CLIENT_ATTESTATION_HEADER]
        assert CLIENT_ATTESTATION_POP_HEADER not in request.headers
        cnf = decode_jws(attestation).payload["cnf"]["jwk"]
        assert jwk_thumbprint(decode_jws(request.headers["DPoP"]).header["jwk"]) == (
            jwk_thumbprint(cnf)
        )


async def test_wallet_uses_combined_mode_when_it_is_the_only_method(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = combined_issuer(clock, pki)
    recorder = Recorder({ISSUER: only_combined(issuer)})
    client = Oid4vciClient(
        recorder,
        clock=clock,
        policy=WalletPolicy(attestation_provider=make_provider(pki, clock), par="always"),
    )
    url, pending = await client.authorize(issuer.links["auth_code"], redirect_uri=REDIRECT_URI)
    result = await client.claim(pending, await browser_login(issuer, url))
    assert len(result.credentials) == 1
    assert result.session is not None
    assert result.session.token_endpoint_auth_method == ATTEST_JWT_CLIENT_AUTH_DPOP
    check_combined([*recorder.to("/par"), *recorder.to("/token")])
    # the holder key is not the instance key (that one authenticates the client only)
    body = json.loads(recorder.to("/credential")[0].body)
    proof = decode_jws(body["proofs"]["jwt"][0]).header["jwk"]
    cnf = decode_jws(recorder.to("/token")[0].headers[CLIENT_ATTESTATION_HEADER]).payload["cnf"]
    assert jwk_thumbprint(proof) != jwk_thumbprint(cnf["jwk"])


async def test_wallet_prefers_the_two_header_mode(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = combined_issuer(clock, pki)
    recorder = Recorder({ISSUER: issuer.handle})
    client = Oid4vciClient(
        recorder, clock=clock, policy=WalletPolicy(attestation_provider=make_provider(pki, clock))
    )
    await client.accept_offer(issuer.links["pre_auth"])
    (token,) = recorder.to("/token")
    assert token.headers.get(CLIENT_ATTESTATION_POP_HEADER)


async def test_wallet_without_dpop_cannot_use_combined_mode(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = combined_issuer(clock, pki)
    recorder = Recorder({ISSUER: only_combined(issuer)})
    client = Oid4vciClient(
        recorder,
        clock=clock,
        policy=WalletPolicy(attestation_provider=make_provider(pki, clock), dpop="off"),
    )
    with pytest.raises(MetadataError, match="attest_jwt_client_auth_dpop"):
        await client.accept_offer(issuer.links["pre_auth"])
    assert recorder.to("/token") == []


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_combined_mode_over_aiohttp_with_a_refresh(clock: FakeClock) -> None:
    """Pre-authorized grant, then a refresh (by hand: the access token expired) in combined
    mode: the refresh's DPoP key is the instance key the tokens are bound to."""
    pki = provider_pki()
    holder: dict[str, AttestedIssuer] = {}
    seen: list[HttpRequest] = []

    async def handle(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return await only_combined(holder["issuer"])(request)

    async with (
        serve(handle) as served,
        AiohttpTransport(allow_insecure_loopback=True) as transport,
    ):
        issuer = holder["issuer"] = combined_issuer(clock, pki, issuer_url=served.base_url)
        client = Oid4vciClient(
            transport,
            clock=clock,
            policy=WalletPolicy(
                attestation_provider=make_provider(pki, clock), allow_insecure_loopback=True
            ),
        )
        result = await client.accept_offer(issuer.links["pre_auth"])
        assert len(result.credentials) == 1 and result.credentials[0].verified
        clock.advance(issuer.issuer.config.access_token_ttl + 1)
        await client.notify(result, "credential_accepted")
    tokens = [r for r in seen if r.url.endswith("/token")]
    assert [r.form_body()["grant_type"] for r in tokens] == [
        PRE_AUTHORIZED_CODE_GRANT,
        "refresh_token",
    ]
    check_combined(tokens)
