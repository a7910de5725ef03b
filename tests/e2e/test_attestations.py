"""Wallet attestation and key attestations end to end: the real wallet against the real issuer,
in memory and over aiohttp on 127.0.0.1 (HAIP 1.0 §4.4.1, §4.5.1; OID4VCI 1.0 Appendix D, E)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oid4vci.attestation import (
    ATTEST_JWT_CLIENT_AUTH,
    CLIENT_ATTESTATION_HEADER,
    CLIENT_ATTESTATION_POP_HEADER,
    KEY_ATTESTATION_TYP,
)
from oid4vci.errors import (
    AuthorizationError,
    CredentialRequestError,
    MetadataError,
    TokenError,
    WireFormatError,
)
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer.as_metadata import create_as_metadata
from oid4vci.issuer.metadata import create_issuer_metadata
from oid4vci.jose import LocalSigner, decode_jws, jwk_thumbprint
from oid4vci.pkce import code_challenge, generate_code_verifier
from oid4vci.transports.aiohttp import AiohttpTransport, serve
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import Event, FlowState, IssuanceFlow, Oid4vciClient, WalletPolicy
from oid4vci.wallet.client_auth import client_attestation_headers
from oid4vci.wallet.lowlevel import push_authorization_request, request_token
from oid4vci.wallet.steps import pre_authorized_grant
from tests.attestation_support import (
    CLIENT_ID,
    HIGH,
    ISSUER,
    REDIRECT_URI,
    AttestedIssuer,
    DroppingProvider,
    Recorder,
    attested_issuer,
    browser_login,
    make_provider,
    provider_pki,
)
from tests.conftest import FakeClock


def wallet(
    issuer: AttestedIssuer, clock: FakeClock, provider: Any = None, **policy: Any
) -> tuple[Recorder, Oid4vciClient]:
    recorder = Recorder({ISSUER: issuer.handle})
    client = Oid4vciClient(
        recorder,
        client_id=None,
        clock=clock,
        policy=WalletPolicy(attestation_provider=provider, **policy),
    )
    return recorder, client


def credential_bodies(recorder: Recorder) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in recorder.to("/credential")]


def cnf_thumbprint(credential: str) -> str:
    return jwk_thumbprint(decode_jws(credential.split("~")[0]).payload["cnf"]["jwk"])


def test_metadata_advertises_attestations(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki, proof_types=("jwt", "attestation"))
    as_meta = create_as_metadata(issuer.issuer.config)
    assert as_meta["token_endpoint_auth_methods_supported"] == ["attest_jwt_client_auth"]
    assert "ES256" in as_meta["client_attestation_signing_alg_values_supported"]
    assert "ES256" in as_meta["client_attestation_pop_signing_alg_values_supported"]
    meta = create_issuer_metadata(issuer.issuer.config)
    proof_types = meta["credential_configurations_supported"][issuer.configuration_id][
        "proof_types_supported"
    ]
    assert proof_types["jwt"]["key_attestations_required"] == HIGH
    assert proof_types["attestation"]["key_attestations_required"] == HIGH
    optional = attested_issuer(clock, pki, require_client=False, key_required=None)
    assert create_as_metadata(optional.issuer.config)["token_endpoint_auth_methods_supported"] == [
        "attest_jwt_client_auth",
        "none",
    ]
    spec = create_issuer_metadata(optional.issuer.config)["credential_configurations_supported"]
    assert (
        "key_attestations_required"
        not in spec[optional.configuration_id]["proof_types_supported"]["jwt"]
    )


async def test_pre_authorized_batch_with_both_attestations(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki)
    recorder, client = wallet(issuer, clock, make_provider(pki, clock))
    result = await client.accept_offer(issuer.links["pre_auth"], count=3)
    assert result.state is FlowState.DONE
    assert len(result.credentials) == 3 and all(c.verified for c in result.credentials)
    (token_request,) = recorder.to("/token")
    assert token_request.headers.get(CLIENT_ATTESTATION_HEADER)
    assert token_request.headers.get(CLIENT_ATTESTATION_POP_HEADER)
    assert "client_id" not in token_request.form_body() or (
        token_request.form_body()["client_id"] == CLIENT_ID
    )
    # every proof carries one attestation listing all three keys; credentials are bound to them
    (body,) = credential_bodies(recorder)
    proofs = body["proofs"]["jwt"]
    headers = [decode_jws(p).header for p in proofs]
    attestations = {h["key_attestation"] for h in headers}
    assert len(attestations) == 1
    attestation = decode_jws(attestations.pop())
    assert attestation.header["typ"] == KEY_ATTESTATION_TYP
    attested = {jwk_thumbprint(k) for k in attestation.payload["attested_keys"]}
    assert attested == {jwk_thumbprint(h["jwk"]) for h in headers}
    assert {cnf_thumbprint(c.credential) for c in result.credentials} == attested


async def test_authorization_code_with_par_dpop_and_attestation(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki)
    provider = make_provider(pki, clock)
    recorder, client = wallet(issuer, clock, provider, par="always", dpop="required")
    url, pending = await client.authorize(issuer.links["auth_code"], redirect_uri=REDIRECT_URI)
    callback = await browser_login(issuer, url)
    restored = IssuanceFlow.from_json(pending.to_json(), policy=client.policy, clock=clock)
    result = await client.claim(restored, callback, count=2)
    assert len(result.credentials) == 2
    (par,) = recorder.to("/par")
    (token,) = recorder.to("/token")
    for request in (par, token):
        assert request.headers.get("DPoP")
        assert request.headers.get(CLIENT_ATTESTATION_HEADER)
        assert request.form_body()["client_id"] == CLIENT_ID
    # the same attestation, a fresh PoP (new jti) per request, aud = the AS issuer identifier
    assert par.headers.get(CLIENT_ATTESTATION_HEADER) == token.headers.get(
        CLIENT_ATTESTATION_HEADER
    )
    pops = [decode_jws(r.headers[CLIENT_ATTESTATION_POP_HEADER]).payload for r in (par, token)]
    assert pops[0]["jti"] != pops[1]["jti"]
    assert {p["aud"] for p in pops} == {ISSUER}


async def test_attestation_proof_type(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki, proof_types=("attestation",))
    recorder, client = wallet(issuer, clock, make_provider(pki, clock))
    result = await client.accept_offer(issuer.links["pre_auth"], count=2)
    assert len(result.credentials) == 2
    (body,) = credential_bodies(recorder)
    (attestation,) = body["proofs"]["attestation"]
    claims = decode_jws(attestation).payload
    assert claims["nonce"]  # the c_nonce from the nonce endpoint
    attested = {jwk_thumbprint(k) for k in claims["attested_keys"]}
    assert {cnf_thumbprint(c.credential) for c in result.credentials} == attested


async def test_unattested_key_in_a_batch_is_refused(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki)
    _, client = wallet(issuer, clock, DroppingProvider(inner=make_provider(pki, clock)))
    with pytest.raises(CredentialRequestError) as caught:
        await client.accept_offer(issuer.links["pre_auth"], count=3)
    assert caught.value.error == "invalid_proof"
    assert "not one of the attested keys" in (caught.value.error_description or "")


async def test_key_attestation_from_an_untrusted_root_is_refused(clock: FakeClock) -> None:
    pki, foreign = provider_pki(), provider_pki()
    issuer = attested_issuer(clock, pki, client_anchors=False)
    _, client = wallet(issuer, clock, make_provider(foreign, clock))
    with pytest.raises(CredentialRequestError) as caught:
        await client.accept_offer(issuer.links["pre_auth"])
    assert caught.value.error == "invalid_proof"
    assert "untrusted" in (caught.value.error_description or "")


async def test_key_attestation_below_the_required_level_is_refused(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki)
    provider = make_provider(pki, clock, key_storage=["iso_18045_moderate"])
    _, client = wallet(issuer, clock, provider)
    with pytest.raises(CredentialRequestError) as caught:
        await client.accept_offer(issuer.links["pre_auth"])
    assert caught.value.error == "invalid_proof"
    assert "level not met" in (caught.value.error_description or "")


async def test_wallet_attestation_from_a_foreign_chain_is_refused(clock: FakeClock) -> None:
    pki, foreign = provider_pki(), provider_pki()
    issuer = attested_issuer(clock, pki, key_required=None)
    recorder, client = wallet(issuer, clock, make_provider(foreign, clock))
    with pytest.raises(TokenError) as caught:
        await client.accept_offer(issuer.links["pre_auth"])
    assert (caught.value.error, caught.value.status) == ("invalid_client", 400)
    assert recorder.paths().count("/token") == 1


@pytest.mark.parametrize("required", ["key", "client"])
async def test_wallet_without_provider_refuses_before_spending_a_code(
    clock: FakeClock, required: str
) -> None:
    pki = provider_pki()
    if required == "key":
        issuer = attested_issuer(clock, pki, require_client=False)
        message = "key attestations"
    else:
        issuer = attested_issuer(clock, pki, key_required=None)
        message = "requires wallet attestation"
    recorder, client = wallet(issuer, clock)
    with pytest.raises(MetadataError, match=message):
        await client.accept_offer(issuer.links["pre_auth"])
    # only the offer and discovery went out: no token request, the code is still unspent
    assert recorder.paths() == [
        "/offers/templates/pre_auth",
        "/.well-known/openid-credential-issuer",
        "/.well-known/oauth-authorization-server",
    ]
    _, good = wallet(issuer, clock, make_provider(pki, clock))
    assert len((await good.accept_offer(issuer.links["pre_auth"])).credentials) == 1


async def test_optional_attestation_still_serves_public_clients(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki, require_client=False, key_required=None)
    recorder, client = wallet(issuer, clock)
    result = await client.accept_offer(issuer.links["pre_auth"])
    assert len(result.credentials) == 1
    assert CLIENT_ATTESTATION_HEADER not in recorder.to("/token")[0].headers


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_over_aiohttp(clock: FakeClock) -> None:
    pki = provider_pki()
    holder: dict[str, AttestedIssuer] = {}

    async def handle(request: Any) -> Any:
        return await holder["issuer"].handle(request)

    async with (
        serve(handle) as served,
        AiohttpTransport(allow_insecure_loopback=True) as transport,
    ):
        issuer = holder["issuer"] = attested_issuer(
            clock, pki, issuer_url=served.base_url, proof_types=("jwt", "attestation")
        )
        provider = make_provider(pki, clock)
        client = Oid4vciClient(
            transport,
            clock=clock,
            policy=WalletPolicy(attestation_provider=provider, allow_insecure_loopback=True),
        )
        result = await client.accept_offer(issuer.links["pre_auth"], count=2)
        assert len(result.credentials) == 2 and all(c.verified for c in result.credentials)
        stranger = Oid4vciClient(
            transport,
            clock=clock,
            policy=WalletPolicy(
                attestation_provider=make_provider(provider_pki(), clock),
                allow_insecure_loopback=True,
            ),
        )
        with pytest.raises(TokenError) as caught:
            await stranger.accept_offer(issuer.links["pre_auth"])
        assert (caught.value.error, caught.value.status) == ("invalid_client", 400)


class ChallengingServer:
    """The attested issuer behind a front that demands a server challenge in every PoP
    (draft-ietf-oauth-attestation-based-client-auth-07 §8): a PoP without the current one gets
    ``use_attestation_challenge`` with a new ``OAuth-Client-Attestation-Challenge``. The
    issuer itself has no challenge support, so this front plays that part."""

    def __init__(self, issuer: AttestedIssuer) -> None:
        self.issuer = issuer
        self.issued: list[str] = []

    async def handle(self, request: HttpRequest) -> HttpResponse:
        pop = request.headers.get(CLIENT_ATTESTATION_POP_HEADER)
        if pop is not None:
            challenge = decode_jws(pop).payload.get("challenge")
            if not self.issued or challenge != self.issued[-1]:
                self.issued.append(f"challenge-{len(self.issued)}")
                return HttpResponse.json(
                    400,
                    {"error": "use_attestation_challenge"},
                    headers={"OAuth-Client-Attestation-Challenge": self.issued[-1]},
                )
        return await self.issuer.handle(request)


async def test_use_attestation_challenge_is_retried_once(clock: FakeClock) -> None:
    pki = provider_pki()
    front = ChallengingServer(attested_issuer(clock, pki))
    recorder = Recorder({ISSUER: front.handle})
    client = Oid4vciClient(
        recorder,
        clock=clock,
        policy=WalletPolicy(attestation_provider=make_provider(pki, clock), par="always"),
    )
    url, pending = await client.authorize(
        front.issuer.links["auth_code"], redirect_uri=REDIRECT_URI
    )
    result = await client.claim(pending, await browser_login(front.issuer, url))
    assert len(result.credentials) == 1
    assert recorder.paths().count("/par") == 2 and recorder.paths().count("/token") == 1
    pops = [
        decode_jws(r.headers[CLIENT_ATTESTATION_POP_HEADER]).payload
        for r in recorder.requests
        if CLIENT_ATTESTATION_POP_HEADER in r.headers
    ]
    assert [p.get("challenge") for p in pops] == [None, "challenge-0", "challenge-0"]
    taken = pending.history
    assert (FlowState.PUSHING_AUTHORIZATION_REQUEST, Event.USE_ATTESTATION_CHALLENGE) in taken


async def test_a_second_use_attestation_challenge_fails(clock: FakeClock) -> None:
    pki = provider_pki()
    front = ChallengingServer(attested_issuer(clock, pki, key_required=None))

    async def always(request: HttpRequest) -> HttpResponse:
        front.issued.append("stale")  # a new challenge every time: the retry is spent
        return await front.handle(request)

    recorder = Recorder({ISSUER: always})
    client = Oid4vciClient(
        recorder, clock=clock, policy=WalletPolicy(attestation_provider=make_provider(pki, clock))
    )
    with pytest.raises(TokenError) as caught:
        await client.accept_offer(front.issuer.links["pre_auth"])
    assert caught.value.error == "use_attestation_challenge"
    assert recorder.paths().count("/token") == 2


@pytest.mark.parametrize("grant", ["pre_auth", "auth_code"])
async def test_issuer_requiring_challenges(clock: FakeClock, grant: str) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki, challenge=True)
    recorder, client = wallet(issuer, clock, make_provider(pki, clock), par="always")
    if grant == "pre_auth":
        result = await client.accept_offer(issuer.links["pre_auth"])
    else:
        url, pending = await client.authorize(issuer.links["auth_code"], redirect_uri=REDIRECT_URI)
        result = await client.claim(pending, await browser_login(issuer, url))
        assert recorder.paths().count("/par") == 1
    assert len(result.credentials) == 1
    # one challenge from the challenge_endpoint, used in every PoP (it is still live)
    paths = recorder.paths()
    assert paths.count("/challenge") == 1 and paths.count("/token") == 1
    assert paths.index("/challenge") < paths.index("/token")
    (challenge,) = {
        decode_jws(r.headers[CLIENT_ATTESTATION_POP_HEADER]).payload["challenge"]
        for r in recorder.requests
        if CLIENT_ATTESTATION_POP_HEADER in r.headers
    }
    assert challenge


async def test_challenge_endpoint_answer_must_be_a_challenge(clock: FakeClock) -> None:
    pki = provider_pki()
    issuer = attested_issuer(clock, pki, key_required=None, challenge=True)

    async def broken(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/challenge"):
            return HttpResponse.json(200, {"attestation_challenge": 42})
        return await issuer.handle(request)

    recorder = Recorder({ISSUER: broken})
    client = Oid4vciClient(
        recorder, clock=clock, policy=WalletPolicy(attestation_provider=make_provider(pki, clock))
    )
    with pytest.raises(WireFormatError, match="attestation_challenge"):
        await client.accept_offer(issuer.links["pre_auth"])
    assert "/token" not in recorder.paths()  # nothing single use was spent


async def test_the_low_level_token_and_par_calls_send_a_wallet_attestation(
    clock: FakeClock,
) -> None:
    """``request_token`` and ``push_authorization_request`` take ``client_auth`` (the wallet
    attestation headers), as ``refresh_access_token`` does: without it they could not talk to
    an authorization server that authenticates clients by attestation."""
    pki = provider_pki()
    attested = attested_issuer(clock, pki, key_required=None)
    config = attested.issuer.config
    transport = InMemoryTransport(attested.handle)
    provider = make_provider(pki, clock)

    async def headers() -> dict[str, str]:
        return await client_attestation_headers(
            provider,
            config.credential_issuer,
            ATTEST_JWT_CLIENT_AUTH,
            fresh=False,
            challenge=None,
            clock=clock,
        )

    created = await attested.issuer.create_pre_authorized_offer(
        configuration_ids=[attested.configuration_id], subject="alice"
    )
    code = created.pre_authorized_code
    assert code is not None
    token_endpoint = config.endpoint("token")
    key = LocalSigner.generate()
    with pytest.raises(TokenError) as refused:
        await request_token(
            transport, token_endpoint, pre_authorized_grant(code), dpop_key=key, clock=clock
        )
    assert refused.value.error == "invalid_client"
    token = await request_token(
        transport,
        token_endpoint,
        pre_authorized_grant(code),
        dpop_key=key,
        client_auth=await headers(),
        clock=clock,
    )
    assert token.access_token
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": code_challenge(generate_code_verifier()),
        "code_challenge_method": "S256",
        "scope": config.credential_configurations[attested.configuration_id].scope or "",
    }
    par_endpoint = config.endpoint("par")
    with pytest.raises(AuthorizationError) as refused_par:
        await push_authorization_request(transport, par_endpoint, params, clock=clock)
    assert refused_par.value.error == "invalid_client"
    pushed = await push_authorization_request(
        transport, par_endpoint, params, client_auth=await headers(), clock=clock
    )
    assert pushed.request_uri
