"""HAIP gaps at the issuer, by raw requests: an authorization code pushed at PAR with a wallet
attestation is redeemable only with an attestation of the same instance key (``invalid_grant``
otherwise, the code unspent), and ``use_fresh_attestation`` (400) for attestations older than
``AttestationSettings.max_attestation_age`` — distinct from ``invalid_client``, nothing used up."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import attrs
import pytest

from oid4vci.attestation import (
    CLIENT_ATTESTATION_HEADER,
    CLIENT_ATTESTATION_POP_HEADER,
    CLIENT_ATTESTATION_TYP,
    LocalAttestationProvider,
    create_client_attestation_pop,
    encode_x5c,
)
from oid4vci.dpop import build_dpop_jwt
from oid4vci.errors import UsageError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import Issuer
from oid4vci.issuer.config import AttestationSettings
from oid4vci.jose import LocalSigner, create_jws, public_jwk
from oid4vci.pkce import code_challenge, generate_code_verifier
from tests.attestation_support import (
    CLIENT_ID,
    ISSUER,
    REDIRECT_URI,
    AttestedIssuer,
    attested_issuer,
    browser_login,
    make_provider,
    provider_pki,
)
from tests.conftest import FakeClock
from tests.issuer.test_client_attestation import pre_authorized_code, token_request
from tests.x509_support import Pki

TOKEN = ISSUER + "/token"
PAR = ISSUER + "/par"


async def headers_of(provider: LocalAttestationProvider, clock: FakeClock) -> dict[str, str]:
    """The provider's (cached) attestation for the issuer with a fresh PoP."""
    attestation = await provider.client_attestation(authorization_server=ISSUER)
    pop = await create_client_attestation_pop(
        attestation.instance_key, audience=ISSUER, client_id=CLIENT_ID, clock=clock
    )
    return {CLIENT_ATTESTATION_HEADER: attestation.attestation, CLIENT_ATTESTATION_POP_HEADER: pop}


def par_request(headers: dict[str, str], verifier: str, scope: str) -> HttpRequest:
    return HttpRequest.form(
        "POST",
        PAR,
        {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "code_challenge": code_challenge(verifier),
            "code_challenge_method": "S256",
            "scope": scope,
        },
        headers=headers,
    )


async def authorization_code(issuer: AttestedIssuer, headers: dict[str, str], verifier: str) -> str:
    """PAR with ``headers``, the login, the code from the callback."""
    scope = issuer.issuer.config.credential_configurations[issuer.configuration_id].scope
    pushed = await issuer.handle(par_request(headers, verifier, scope or ""))
    assert pushed.status == 201, pushed.body
    request_uri = pushed.json_body()["request_uri"]
    callback = await browser_login(
        issuer, f"{ISSUER}/authorize?client_id={CLIENT_ID}&request_uri={request_uri}"
    )
    return parse_qs(urlsplit(callback).query)["code"][0]


async def redeem(
    issuer: AttestedIssuer, clock: FakeClock, code: str, verifier: str, headers: dict[str, str]
) -> HttpResponse:
    dpop = await build_dpop_jwt(LocalSigner.generate(), "POST", TOKEN, clock=clock)
    return await issuer.handle(
        HttpRequest.form(
            "POST",
            TOKEN,
            {
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": REDIRECT_URI,
                "client_id": CLIENT_ID,
            },
            headers=[*headers.items(), ("DPoP", dpop)],
        )
    )


def invalid_grant(response: HttpResponse, words: str) -> None:
    assert response.status == 400, response.body
    body = response.json_body()
    assert body["error"] == "invalid_grant"
    assert words in body["error_description"]


# --- the code is bound to the instance key it was pushed with -------------------------------


async def test_code_pushed_with_an_attestation_needs_the_same_instance_key(
    clock: FakeClock,
) -> None:
    pki = provider_pki()
    # Attestations verified when sent, not required: the binding must hold without the rule.
    issuer = attested_issuer(clock, pki, key_required=None, require_client=False)
    wallet, other = make_provider(pki, clock), make_provider(pki, clock)
    verifier = generate_code_verifier()
    code = await authorization_code(issuer, await headers_of(wallet, clock), verifier)
    # another instance of the same wallet solution (same client_id, another key): refused
    invalid_grant(
        await redeem(issuer, clock, code, verifier, await headers_of(other, clock)),
        "instance key",
    )
    # no attestation at all: refused as well
    invalid_grant(await redeem(issuer, clock, code, verifier, {}), "instance key")
    # nothing was used up: the instance that pushed the request redeems the code
    ok = await redeem(issuer, clock, code, verifier, await headers_of(wallet, clock))
    assert ok.status == 200, ok.body
    # and only once
    invalid_grant(
        await redeem(issuer, clock, code, verifier, await headers_of(wallet, clock)), "used"
    )


async def test_a_fresh_attestation_of_the_same_key_redeems_the_code(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki, key_required=None)
    wallet = make_provider(pki, clock)
    verifier = generate_code_verifier()
    code = await authorization_code(issuer, await headers_of(wallet, clock), verifier)
    before = await wallet.client_attestation(authorization_server=ISSUER)
    fresh = await wallet.client_attestation(authorization_server=ISSUER, fresh=True)
    assert fresh.attestation != before.attestation
    assert fresh.instance_key.public_jwk == before.instance_key.public_jwk
    ok = await redeem(issuer, clock, code, verifier, await headers_of(wallet, clock))
    assert ok.status == 200, ok.body


async def test_code_pushed_without_an_attestation_is_not_bound(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki, key_required=None, require_client=False)
    verifier = generate_code_verifier()
    code = await authorization_code(issuer, {}, verifier)
    ok = await redeem(
        issuer, clock, code, verifier, await headers_of(make_provider(pki, clock), clock)
    )
    assert ok.status == 200, ok.body


# --- use_fresh_attestation ------------------------------------------------------------------


def aging_issuer(clock: FakeClock, pki: Pki, max_age: float = 600) -> AttestedIssuer:
    base = attested_issuer(clock, pki, key_required=None)
    assert base.issuer.config.attestation is not None
    settings = attrs.evolve(base.issuer.config.attestation, max_attestation_age=max_age)
    config = attrs.evolve(base.issuer.config, attestation=settings)
    issuer = Issuer(config, offer_templates=base.issuer.offer_templates.values())
    return attrs.evolve(base, issuer=issuer)


def use_fresh(response: HttpResponse) -> None:
    assert response.status == 400, response.body
    body = response.json_body()
    assert body["error"] == "use_fresh_attestation"
    assert "too old" in body["error_description"]
    assert response.headers.get("Cache-Control") == "no-store"


async def test_an_old_attestation_gets_use_fresh_attestation(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = aging_issuer(clock, pki)
    wallet = make_provider(pki, clock, lifetime=3600)
    await wallet.client_attestation(authorization_server=ISSUER)  # minted now, cached
    clock.advance(601)
    code = await pre_authorized_code(issuer)
    use_fresh(await token_request(issuer, clock, code, await headers_of(wallet, clock)))
    # the code was not used up; a fresh attestation (same instance key) is accepted
    await wallet.client_attestation(authorization_server=ISSUER, fresh=True)
    ok = await token_request(issuer, clock, code, await headers_of(wallet, clock))
    assert ok.status == 200, ok.body


async def test_a_young_attestation_passes(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = aging_issuer(clock, pki)
    wallet = make_provider(pki, clock)
    await wallet.client_attestation(authorization_server=ISSUER)
    clock.advance(599)
    ok = await token_request(
        issuer, clock, await pre_authorized_code(issuer), await headers_of(wallet, clock)
    )
    assert ok.status == 200, ok.body


async def test_an_attestation_without_iat_counts_as_too_old(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = aging_issuer(clock, pki)
    instance = LocalSigner.generate()
    attestation = await create_jws(
        pki.signer,
        {
            "sub": CLIENT_ID,
            "exp": int(clock()) + 3600,
            "cnf": {"jwk": public_jwk(instance.public_jwk)},
        },
        {"typ": CLIENT_ATTESTATION_TYP, "x5c": list(encode_x5c([pki.leaf, pki.intermediate]))},
    )
    pop = await create_client_attestation_pop(
        instance, audience=ISSUER, client_id=CLIENT_ID, clock=clock
    )
    headers = {CLIENT_ATTESTATION_HEADER: attestation, CLIENT_ATTESTATION_POP_HEADER: pop}
    use_fresh(await token_request(issuer, clock, await pre_authorized_code(issuer), headers))


async def test_use_fresh_attestation_at_par(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = aging_issuer(clock, pki)
    wallet = make_provider(pki, clock)
    await wallet.client_attestation(authorization_server=ISSUER)
    clock.advance(601)
    answer = await issuer.handle(
        par_request(await headers_of(wallet, clock), generate_code_verifier(), "x")
    )
    use_fresh(answer)


async def test_an_invalid_attestation_is_still_invalid_client(clock: FakeClock) -> None:
    """Age is judged only for attestations that verify: a forged one is invalid_client."""
    pki = provider_pki()
    issuer = aging_issuer(clock, pki)
    wallet = make_provider(pki, clock, chain=[provider_pki().leaf])  # another provider's chain
    clock.advance(601)
    answer = await token_request(
        issuer, clock, await pre_authorized_code(issuer), await headers_of(wallet, clock)
    )
    assert answer.status == 400 and answer.json_body()["error"] == "invalid_client"


@pytest.mark.parametrize("value", [0, -1.0])
def test_max_attestation_age_must_be_positive(value: float) -> None:
    with pytest.raises(UsageError):
        AttestationSettings(client_trust_anchors=[provider_pki().root], max_attestation_age=value)
