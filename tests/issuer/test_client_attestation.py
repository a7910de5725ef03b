"""Wallet attestation at the token and PAR endpoints, by raw requests: every refusal with its
exact answer (``invalid_client``, 400), the PoP ``jti`` replay cache, and that a refused token
request leaves the pre-authorized code redeemable."""

from __future__ import annotations

from typing import Any

import pytest

from oid4vci.attestation import (
    CLIENT_ATTESTATION_HEADER,
    CLIENT_ATTESTATION_POP_HEADER,
    create_client_attestation_pop,
)
from oid4vci.dpop import build_dpop_jwt
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.jose import LocalSigner
from oid4vci.models import PRE_AUTHORIZED_CODE_GRANT
from oid4vci.pkce import code_challenge, generate_code_verifier
from tests.attestation_support import (
    CLIENT_ID,
    ISSUER,
    REDIRECT_URI,
    AttestedIssuer,
    attested_issuer,
    make_provider,
    provider_pki,
)
from tests.conftest import FakeClock
from tests.x509_support import Pki

TOKEN = ISSUER + "/token"
PAR = ISSUER + "/par"


async def pre_authorized_code(issuer: AttestedIssuer) -> str:
    created = await issuer.issuer.create_pre_authorized_offer(
        configuration_ids=[issuer.configuration_id], subject="alice"
    )
    assert created.pre_authorized_code is not None
    return created.pre_authorized_code


async def auth_headers(
    pki: Pki, clock: FakeClock, *, audience: str = ISSUER, client_id: str = CLIENT_ID, **pop: Any
) -> dict[str, str]:
    provider = make_provider(pki, clock, client_id=client_id)
    attestation = await provider.client_attestation(authorization_server=ISSUER)
    signer = pop.pop("signer", attestation.instance_key)
    proof = await create_client_attestation_pop(
        signer, audience=audience, client_id=client_id, clock=clock, **pop
    )
    return {
        CLIENT_ATTESTATION_HEADER: attestation.attestation,
        CLIENT_ATTESTATION_POP_HEADER: proof,
    }


async def token_request(
    issuer: AttestedIssuer,
    clock: FakeClock,
    code: str,
    headers: dict[str, str] | list[tuple[str, str]],
    **params: str,
) -> HttpResponse:
    dpop = await build_dpop_jwt(LocalSigner.generate(), "POST", TOKEN, clock=clock)
    items = list(headers.items()) if isinstance(headers, dict) else list(headers)
    request = HttpRequest.form(
        "POST",
        TOKEN,
        {"grant_type": PRE_AUTHORIZED_CODE_GRANT, "pre-authorized_code": code, **params},
        headers=[*items, ("DPoP", dpop)],
    )
    return await issuer.handle(request)


def refused(response: HttpResponse, words: str) -> None:
    assert response.status == 400, response.body
    body = response.json_body()
    assert body["error"] == "invalid_client"
    assert words in body["error_description"]
    assert response.headers.get("Cache-Control") == "no-store"


async def test_token_with_attestation(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki, key_required=None)
    response = await token_request(
        issuer, clock, await pre_authorized_code(issuer), await auth_headers(pki, clock)
    )
    assert response.status == 200, response.body


async def attested_token_flow(clock: FakeClock) -> None:
    """A token request with a wallet attestation (for the store key schema test)."""
    await test_token_with_attestation(clock)


async def test_missing_attestation_is_refused_and_the_code_survives(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki, key_required=None)
    code = await pre_authorized_code(issuer)
    refused(await token_request(issuer, clock, code, {}), "required")
    refused(
        await token_request(
            issuer,
            clock,
            code,
            {
                CLIENT_ATTESTATION_HEADER: (await auth_headers(pki, clock))[
                    CLIENT_ATTESTATION_HEADER
                ]
            },
        ),
        "exactly one",
    )
    response = await token_request(issuer, clock, code, await auth_headers(pki, clock))
    assert response.status == 200, response.body


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("expired", "expired"),
        ("foreign chain", "untrusted"),
        ("sub is not client_id", "client mismatch"),
        ("PoP aud is the token endpoint", "wrong audience"),
        ("PoP by another key", "bad signature"),
        ("stale PoP", "stale"),
        ("two attestations", "exactly one"),
    ],
)
async def test_refusals(clock: FakeClock, case: str, words: str) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki, key_required=None)
    code = await pre_authorized_code(issuer)
    params: dict[str, str] = {}
    headers: Any
    if case == "expired":
        headers = await auth_headers(pki, clock)
        clock.advance(3600 + 61)
        # a fresh PoP (by any key: the attestation is checked first and refused)
        headers[CLIENT_ATTESTATION_POP_HEADER] = await create_client_attestation_pop(
            LocalSigner.generate(), audience=ISSUER, clock=clock
        )
    elif case == "foreign chain":
        headers = await auth_headers(provider_pki(), clock)
    elif case == "sub is not client_id":
        headers = await auth_headers(pki, clock)
        params["client_id"] = "https://other-wallet.example"
    elif case == "PoP aud is the token endpoint":
        headers = await auth_headers(pki, clock, audience=TOKEN)
    elif case == "PoP by another key":
        headers = await auth_headers(pki, clock, signer=LocalSigner.generate())
    elif case == "stale PoP":
        headers = await auth_headers(pki, clock)
        clock.advance(300 + 1)
    else:
        one = await auth_headers(pki, clock)
        two = await auth_headers(pki, clock)
        headers = [*one.items(), (CLIENT_ATTESTATION_HEADER, two[CLIENT_ATTESTATION_HEADER])]
    refused(await token_request(issuer, clock, code, headers, **params), words)


async def test_pop_jti_replay_is_refused(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki, key_required=None)
    headers = await auth_headers(pki, clock)
    first = await token_request(issuer, clock, await pre_authorized_code(issuer), headers)
    assert first.status == 200, first.body
    second = await pre_authorized_code(issuer)
    refused(await token_request(issuer, clock, second, headers), "replayed")
    # the replay was refused before the code was touched
    assert (
        await token_request(issuer, clock, second, await auth_headers(pki, clock))
    ).status == 200


async def test_par_checks_client_id_against_sub(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki, key_required=None)
    params = {
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "code_challenge": code_challenge(generate_code_verifier()),
        "code_challenge_method": "S256",
        "authorization_details": (
            '[{"type":"openid_credential","credential_configuration_id":"'
            + issuer.configuration_id
            + '"}]'
        ),
    }
    good = await issuer.handle(
        HttpRequest.form(
            "POST", PAR, {**params, "client_id": CLIENT_ID}, headers=await auth_headers(pki, clock)
        )
    )
    assert good.status == 201, good.body
    other = await issuer.handle(
        HttpRequest.form(
            "POST",
            PAR,
            {**params, "client_id": "https://other-wallet.example"},
            headers=await auth_headers(pki, clock),
        )
    )
    refused(other, "client mismatch")
    missing = await issuer.handle(HttpRequest.form("POST", PAR, {**params, "client_id": CLIENT_ID}))
    refused(missing, "required")


async def test_challenges(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki, key_required=None, challenge=True)
    meta = await issuer.handle(
        HttpRequest(method="GET", url=ISSUER + "/.well-known/oauth-authorization-server")
    )
    assert meta.json_body()["challenge_endpoint"] == ISSUER + "/challenge"
    assert (await issuer.handle(HttpRequest(method="GET", url=ISSUER + "/challenge"))).status == 405
    fetched = await issuer.handle(HttpRequest(method="POST", url=ISSUER + "/challenge"))
    assert fetched.status == 200 and fetched.headers.get("Cache-Control") == "no-store"
    challenge = fetched.json_body()["attestation_challenge"]
    code = await pre_authorized_code(issuer)
    # no challenge: use_attestation_challenge with a fresh one in the header, code unspent
    missing = await token_request(issuer, clock, code, await auth_headers(pki, clock))
    assert missing.status == 400
    assert missing.json_body()["error"] == "use_attestation_challenge"
    fresh = missing.headers.get("OAuth-Client-Attestation-Challenge")
    assert fresh and fresh != challenge
    for wrong in ("made-up", challenge[:-2] + "AA"):
        answer = await token_request(
            issuer, clock, code, await auth_headers(pki, clock, challenge=wrong)
        )
        assert answer.json_body()["error"] == "use_attestation_challenge"
    clock.advance(301)
    stale = await token_request(
        issuer, clock, code, await auth_headers(pki, clock, challenge=fresh)
    )
    assert stale.json_body()["error"] == "use_attestation_challenge"
    live = stale.headers.get("OAuth-Client-Attestation-Challenge")
    assert live is not None
    ok = await token_request(issuer, clock, code, await auth_headers(pki, clock, challenge=live))
    assert ok.status == 200, ok.body


async def test_no_challenge_endpoint_without_challenges(clock: FakeClock) -> None:
    issuer = attested_issuer(clock, provider_pki(), key_required=None)
    answer = await issuer.handle(HttpRequest(method="POST", url=ISSUER + "/challenge"))
    assert answer.status == 404
    assert answer.json_body()["error"] == "invalid_request"
