"""Authorization code flow: PKCE, state, iss, PAR, DPoP binding, pending round trip."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from oid4vci.errors import (
    AuthorizationError,
    CallbackError,
    MetadataError,
    StateError,
    TokenError,
    UsageError,
)
from oid4vci.jose import LocalSigner, decode_jws, jwk_thumbprint
from oid4vci.models import parse_credential_offer_json
from oid4vci.pkce import code_challenge
from oid4vci.wallet import FlowState, IssuanceFlow, Oid4vciClient, WalletPolicy
from tests.conftest import FakeClock
from tests.wallet.fakes import ALL_VERSIONS, CLIENT_ID, D14, REDIRECT_URI, FakeIssuer


def client_for(fake: FakeIssuer, clock: FakeClock, **policy: Any) -> Oid4vciClient:
    fake.clock = clock
    return Oid4vciClient(
        fake.transport(), policy=WalletPolicy(**policy), client_id=CLIENT_ID, clock=clock
    )


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


class Saved:
    """The secrets a flow waiting for authorization holds, read from its saved JSON."""

    def __init__(self, flow: IssuanceFlow) -> None:
        data = json.loads(flow.to_json())
        self.code_verifier: str = data["code_verifier"]
        self.state: str = data["oauth_state"]
        self.dpop_key = LocalSigner.from_jwk(data["dpop_key"]) if data["dpop_key"] else None


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=lambda v: v.value)
async def test_code_flow_with_par(version: Any, clock: FakeClock) -> None:
    fake = FakeIssuer(version=version, batch_size=2 if version is D14 else None)
    client = client_for(fake, clock)
    offer = parse_credential_offer_json(fake.offer(pre_authorized=False))
    url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
    saved = Saved(pending)
    q = query(url)
    assert set(q) == {"client_id", "request_uri"}
    (par,) = [r for r in fake.requests if r.url.endswith("/par")]
    form = par.form_body()
    assert form["code_challenge_method"] == "S256"
    assert form["code_challenge"] == code_challenge(saved.code_verifier)
    assert form["issuer_state"] == "issuer-state-1"
    assert form["state"] == saved.state
    assert json.loads(form["authorization_details"]) == [
        {"type": "openid_credential", "credential_configuration_id": "IdentityCredential"}
    ]
    # DPoP key bound at PAR: header proof and dpop_jkt agree
    assert saved.dpop_key is not None
    jkt = jwk_thumbprint(saved.dpop_key.public_jwk)
    assert form["dpop_jkt"] == jkt
    assert jwk_thumbprint(decode_jws(par.headers.get("DPoP") or "").header["jwk"]) == jkt
    callback = fake.approve(url)
    result = await client.claim(pending, callback)
    assert result.flow == "authorization_code"
    assert result.state is FlowState.DONE
    assert len(result.credentials) == 1 and result.credentials[0].verified
    token = next(r for r in fake.requests if r.url.endswith("/token")).form_body()
    assert token["code_verifier"] == saved.code_verifier
    assert token["redirect_uri"] == REDIRECT_URI
    body = next(r for r in fake.requests if r.url.endswith("/credential")).json_body()
    # credential_identifiers from the token response are used in the credential request
    assert body["credential_identifier"] == "IdentityCredential-ds1"


async def test_code_flow_without_par_front_channel(clock: FakeClock) -> None:
    fake = FakeIssuer(par=False)
    client = client_for(fake, clock)
    offer = parse_credential_offer_json(fake.offer(pre_authorized=False))
    url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
    saved = Saved(pending)
    q = query(url)
    assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID
    assert q["code_challenge"] == code_challenge(saved.code_verifier)
    assert q["state"] == saved.state and q["issuer_state"] == "issuer-state-1"
    assert "dpop_jkt" in q
    assert fake.count("/par") == 0
    result = await client.claim(pending, fake.approve(url), count=2)
    assert len(result.credentials) == 2


async def test_par_never_policy_and_required_par(clock: FakeClock) -> None:
    fake = FakeIssuer(require_par=True)
    client = client_for(fake, clock, par="never")
    offer = parse_credential_offer_json(fake.offer(pre_authorized=False))
    with pytest.raises(MetadataError):
        await client.authorize(offer, redirect_uri=REDIRECT_URI)
    no_par = FakeIssuer(par=False)
    client = client_for(no_par, clock, par="always")
    with pytest.raises(MetadataError):
        await client.authorize(
            parse_credential_offer_json(no_par.offer(pre_authorized=False)),
            redirect_uri=REDIRECT_URI,
        )


async def test_scope_policy(clock: FakeClock) -> None:
    fake = FakeIssuer(par=False)
    client = client_for(fake, clock, use_authorization_details=False)
    offer = parse_credential_offer_json(fake.offer(pre_authorized=False))
    url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
    q = query(url)
    assert q["scope"] == "identity" and "authorization_details" not in q
    result = await client.claim(pending, fake.approve(url))
    body = next(r for r in fake.requests if r.url.endswith("/credential")).json_body()
    assert body["credential_configuration_id"] == "IdentityCredential"
    assert len(result.credentials) == 1


async def test_client_id_required(clock: FakeClock) -> None:
    fake = FakeIssuer()
    client = Oid4vciClient(fake.transport(), clock=clock)
    with pytest.raises(UsageError):
        await client.authorize(
            parse_credential_offer_json(fake.offer(pre_authorized=False)), redirect_uri=REDIRECT_URI
        )


async def _started(
    clock: FakeClock, **kw: Any
) -> tuple[FakeIssuer, Oid4vciClient, str, IssuanceFlow]:
    fake = FakeIssuer(**kw)
    client = client_for(fake, clock)
    url, pending = await client.authorize(
        parse_credential_offer_json(fake.offer(pre_authorized=False)), redirect_uri=REDIRECT_URI
    )
    return fake, client, url, pending


async def test_state_mismatch(clock: FakeClock) -> None:
    fake, client, url, pending = await _started(clock)
    callback = fake.approve(url).replace(f"state={Saved(pending).state}", "state=forged")
    with pytest.raises(CallbackError):
        await client.claim(pending, callback)
    assert fake.count("/token") == 0


async def test_missing_state(clock: FakeClock) -> None:
    fake, client, _url, pending = await _started(clock)
    with pytest.raises(CallbackError):
        await client.claim(pending, f"{REDIRECT_URI}?code=abc&iss={fake.issuer}")


async def test_iss_mismatch(clock: FakeClock) -> None:
    fake, client, url, pending = await _started(clock)
    callback = fake.approve(url).replace("iss=https", "iss=https%3A%2F%2Fevil.example%2Fx")
    with pytest.raises(CallbackError):
        await client.claim(pending, callback)
    assert fake.count("/token") == 0


async def test_iss_required_when_announced(clock: FakeClock) -> None:
    fake, client, url, pending = await _started(clock, iss_parameter=True)
    with pytest.raises(CallbackError):
        await client.claim(pending, fake.approve(url, with_iss=False))


async def test_iss_optional_when_not_announced(clock: FakeClock) -> None:
    fake, client, url, pending = await _started(clock, iss_parameter=False)
    result = await client.claim(pending, fake.approve(url))
    assert len(result.credentials) == 1
    # but a present iss is still checked
    fake2, client2, url2, pending2 = await _started(clock, iss_parameter=False)
    bad = fake2.approve(url2, with_iss=True).replace("iss=https", "iss=http")
    with pytest.raises(CallbackError):
        await client2.claim(pending2, bad)


async def test_error_callback(clock: FakeClock) -> None:
    fake, client, _url, pending = await _started(clock)
    callback = f"{REDIRECT_URI}?error=access_denied&state={Saved(pending).state}&iss={fake.issuer}"
    with pytest.raises(AuthorizationError) as info:
        await client.claim(pending, callback)
    assert info.value.error == "access_denied"


async def test_flow_round_trip_in_fresh_client(clock: FakeClock) -> None:
    fake, _client, url, pending = await _started(clock)
    assert pending.state is FlowState.AWAITING_AUTHORIZATION
    text = pending.to_json()
    saved = Saved(pending)
    restored = IssuanceFlow.from_json(text, policy=WalletPolicy(), clock=clock)
    assert restored.state is FlowState.AWAITING_AUTHORIZATION
    assert json.loads(restored.to_json()) == json.loads(text)
    # repr hides secrets
    assert saved.dpop_key is not None
    for secret in (saved.code_verifier, saved.state, saved.dpop_key.private_jwk()["d"]):
        assert secret not in repr(pending)
    # a brand-new client (another process) finishes the flow with the restored value
    fresh = Oid4vciClient(fake.transport(), client_id=CLIENT_ID, clock=clock)
    before = len(fake.requests)
    result = await fresh.claim(restored, fake.approve(url))
    assert len(result.credentials) == 1
    # the fresh client fetched no metadata again: the token request came first
    assert fake.requests[before].url.endswith("/token")
    token = [r for r in fake.requests if r.url.endswith("/token")]
    assert token and jwk_thumbprint(
        decode_jws(token[0].headers.get("DPoP") or "").header["jwk"]
    ) == (jwk_thumbprint(saved.dpop_key.public_jwk))


@pytest.mark.parametrize(
    "text",
    ["{}", "not json", "[]", json.dumps({"format": "oid4vci-issuance-flow/1"})],
)
def test_flow_from_bad_json(text: str) -> None:
    with pytest.raises(UsageError):
        IssuanceFlow.from_json(text)


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("dpop_nonces", ["https://as.example", "nonce"]),
        ("dpop_nonces", {"https://as.example": 7}),
        ("configuration_ids", "IdentityCredential"),
        ("count", "2"),
        ("count", 0),
        ("state", "requesting_token"),
        ("state", "nonsense"),
        ("spec_version", ["1.0"]),
        ("dpop_key", {"kty": "EC"}),
        ("code_verifier", None),
        ("authorization_server_metadata", {"issuer": "https://other.example"}),
    ],
)
async def test_flow_with_a_bad_member_is_refused(
    member: str, value: object, clock: FakeClock
) -> None:
    """A tampered or corrupted document is refused, never coerced into something else."""
    _fake, _client, _url, pending = await _started(clock)
    data = json.loads(pending.to_json())
    data[member] = value
    with pytest.raises(UsageError):
        IssuanceFlow.from_json(json.dumps(data))


async def test_code_reuse_not_possible(clock: FakeClock) -> None:
    fake, client, url, pending = await _started(clock)
    saved = pending.to_json()
    callback = fake.approve(url)
    await client.claim(pending, callback)
    # the finished flow takes no second callback
    with pytest.raises(StateError):
        await client.claim(pending, callback)
    # a copy saved before the claim gets the code refused by the issuer
    with pytest.raises(TokenError):
        await client.claim(IssuanceFlow.from_json(saved, clock=clock), callback)


async def test_every_credential_identifier_gets_its_own_request(clock: FakeClock) -> None:
    # Two Credential Datasets of one configuration (e.g. two degrees): one request each.
    fake = FakeIssuer(datasets=2)
    client = client_for(fake, clock)
    offer = parse_credential_offer_json(fake.offer(pre_authorized=False))
    url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
    result = await client.claim(pending, fake.approve(url))
    sent = [r.json_body() for r in fake.requests if r.url.endswith("/credential")]
    assert [body["credential_identifier"] for body in sent] == [
        "IdentityCredential-ds1",
        "IdentityCredential-ds2",
    ]
    assert len(result.credentials) == 2 and all(c.verified for c in result.credentials)
