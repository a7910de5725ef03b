"""Pre-authorized flows against the fake issuers: versions, batches, retries, deferred."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oid4vci.errors import (
    CredentialRequestError,
    DpopError,
    MetadataError,
    OfferError,
    RedirectRefused,
    TokenError,
    UsageError,
    WireFormatError,
)
from oid4vci.http import HttpResponse
from oid4vci.jose import decode_jws, jwk_thumbprint
from oid4vci.models import parse_credential_offer_json
from oid4vci.wallet import FlowState, Oid4vciClient, WalletPolicy
from tests.conftest import FakeClock
from tests.wallet.fakes import (
    ALL_VERSIONS,
    D13,
    D14,
    D15,
    V1,
    VCT,
    FakeIssuer,
    error,
    json_response,
)


class FakeSleep:
    """Records sleeps instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def make(fake: FakeIssuer, clock: FakeClock, **policy: Any) -> tuple[Oid4vciClient, FakeSleep]:
    fake.clock = clock
    sleep = FakeSleep()
    client = Oid4vciClient(
        fake.transport(), policy=WalletPolicy(**policy), clock=clock, sleep=sleep
    )
    return client, sleep


def bodies(fake: FakeIssuer, suffix: str) -> list[dict[str, Any]]:
    return [r.json_body() for r in fake.requests if r.url.endswith(suffix)]


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=lambda v: v.value)
async def test_pre_authorized_flow_each_version(version: Any, clock: FakeClock) -> None:
    fake = FakeIssuer(version=version, batch_size=2 if version is D14 else None)
    client, _ = make(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert result.spec_version is version
    assert result.state is FlowState.DONE
    assert result.flow == "pre-authorized_code"
    (cred,) = result.credentials
    assert cred.verified and cred.vct == VCT
    assert cred.claims["given_name"] == "Erika"
    assert cred.holder_key is not None
    assert cred.claims["cnf"]["jwk"] == cred.holder_key.public_jwk
    (body,) = bodies(fake, "/credential")
    if version is D13:
        assert body["format"] == "vc+sd-jwt" and "proof" in body
    elif version is D14:
        assert body["format"] == "vc+sd-jwt"
    else:
        assert body["credential_configuration_id"] == "IdentityCredential"
    if version is V1:
        assert "proofs" in body and "proof" not in body
    # DPoP-bound token by default
    cred_req = next(r for r in fake.requests if r.url.endswith("/credential"))
    assert (cred_req.headers.get("Authorization") or "").startswith("DPoP ")
    # the key proof carries the c_nonce the issuer handed out and no iss (anonymous)
    proof = (body.get("proof") or {}).get("jwt") or body["proofs"]["jwt"][0]
    claims = decode_jws(proof).payload
    assert claims["nonce"] and "iss" not in claims and claims["aud"] == fake.issuer


async def test_bearer_when_as_has_no_dpop(clock: FakeClock) -> None:
    fake = FakeIssuer(dpop=False)
    client, _ = make(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert len(result.credentials) == 1
    assert all(r.headers.get("DPoP") is None for r in fake.requests)
    cred_req = next(r for r in fake.requests if r.url.endswith("/credential"))
    assert (cred_req.headers.get("Authorization") or "").startswith("Bearer ")


async def test_dpop_required_refuses_as_without_dpop(clock: FakeClock) -> None:
    fake = FakeIssuer(dpop=False)
    client, _ = make(fake, clock, dpop="required")
    with pytest.raises(MetadataError):
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert fake.count("/token") == 0


async def test_dpop_off_sends_no_proofs(clock: FakeClock) -> None:
    fake = FakeIssuer()
    client, _ = make(fake, clock, dpop="off")
    await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert all(r.headers.get("DPoP") is None for r in fake.requests)


async def test_client_id_goes_into_token_request_and_proof_iss(clock: FakeClock) -> None:
    fake = FakeIssuer()
    fake.clock = clock
    client = Oid4vciClient(fake.transport(), client_id="wallet-1", clock=clock)
    await client.accept_offer(parse_credential_offer_json(fake.offer()))
    token_req = next(r for r in fake.requests if r.url.endswith("/token"))
    assert token_req.form_body()["client_id"] == "wallet-1"
    body = bodies(fake, "/credential")[0]
    assert decode_jws(body["proofs"]["jwt"][0]).payload["iss"] == "wallet-1"


# --- batches --------------------------------------------------------------------------------------


async def test_batch_chunking_count_10_batch_size_3(clock: FakeClock) -> None:
    fake = FakeIssuer(batch_size=3)
    client, _ = make(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()), count=10)
    sizes = [len(b["proofs"]["jwt"]) for b in bodies(fake, "/credential")]
    assert sizes == [3, 3, 3, 1]
    assert len(result.credentials) == 10
    keys = {jwk_thumbprint(c.holder_key.public_jwk) for c in result.credentials if c.holder_key}
    assert len(keys) == 10
    # one nonce per request, shared by all its proofs
    for body in bodies(fake, "/credential"):
        nonces = {decode_jws(p).payload["nonce"] for p in body["proofs"]["jwt"]}
        assert len(nonces) == 1


async def test_no_batch_support_one_request_per_credential(clock: FakeClock) -> None:
    fake = FakeIssuer(version=D15)
    client, _ = make(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()), count=3)
    assert fake.count("/credential") == 3
    assert len(result.credentials) == 3


async def test_d13_batch_of_three_uses_single_proof_requests(clock: FakeClock) -> None:
    fake = FakeIssuer(version=D13)
    client, _ = make(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()), count=3)
    assert fake.count("/credential") == 3
    assert all("proof" in b for b in bodies(fake, "/credential"))
    # each request used the c_nonce of the previous answer
    nonces = [decode_jws(b["proof"]["jwt"]).payload["nonce"] for b in bodies(fake, "/credential")]
    assert len(set(nonces)) == 3
    assert len(result.credentials) == 3


# --- DPoP nonce retries ---------------------------------------------------------------------------


async def test_dpop_nonce_at_as_retried_once(clock: FakeClock) -> None:
    fake = FakeIssuer(require_dpop_nonce_as=True)
    client, _ = make(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert len(result.credentials) == 1
    tokens = [r for r in fake.requests if r.url.endswith("/token")]
    assert len(tokens) == 2
    assert "nonce" not in decode_jws(tokens[0].headers.get("DPoP") or "").payload
    assert decode_jws(tokens[1].headers.get("DPoP") or "").payload["nonce"] in fake.dpop_nonces


async def test_dpop_nonce_rs_401_challenge_then_success(clock: FakeClock) -> None:
    fake = FakeIssuer(require_dpop_nonce_rs=True)
    client, _ = make(fake, clock)
    # inject a use_dpop_nonce challenge with a fresh nonce before the real credential answer
    nonce = fake._new_dpop_nonce()
    fake.inject["/credential"] = [
        json_response(
            401,
            {},
            {"WWW-Authenticate": 'DPoP error="use_dpop_nonce"', "DPoP-Nonce": nonce},
        )
    ]
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    creds = [r for r in fake.requests if r.url.endswith("/credential")]
    assert len(creds) == 2
    assert decode_jws(creds[1].headers.get("DPoP") or "").payload["nonce"] == nonce
    assert len(result.credentials) == 1


async def test_dpop_nonce_retry_only_once(clock: FakeClock) -> None:
    fake = FakeIssuer(require_dpop_nonce_as=True, always_use_dpop_nonce=True)
    client, _ = make(fake, clock)
    with pytest.raises(DpopError) as info:
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert info.value.error == "use_dpop_nonce"
    assert fake.count("/token") == 2


async def test_dpop_nonce_at_resource_only_once(clock: FakeClock) -> None:
    fake = FakeIssuer(require_dpop_nonce_rs=True, always_use_dpop_nonce=True)
    client, _ = make(fake, clock)
    with pytest.raises(DpopError):
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert fake.count("/credential") == 2


# --- c_nonce retries ------------------------------------------------------------------------------


async def test_invalid_nonce_refetches_and_retries_once(clock: FakeClock) -> None:
    fake = FakeIssuer(version=V1)
    client, _ = make(fake, clock)
    fake.inject["/credential"] = [error(400, "invalid_nonce")]
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert len(result.credentials) == 1
    assert fake.count("/nonce") == 2
    assert fake.count("/credential") == 2


async def test_invalid_nonce_twice_fails(clock: FakeClock) -> None:
    fake = FakeIssuer(version=D15)
    client, _ = make(fake, clock)
    fake.inject["/credential"] = [error(400, "invalid_nonce"), error(400, "invalid_nonce")]
    with pytest.raises(CredentialRequestError) as info:
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert info.value.error == "invalid_nonce"
    assert fake.count("/credential") == 2


async def test_d13_invalid_proof_with_c_nonce_retries_once(clock: FakeClock) -> None:
    fake = FakeIssuer(version=D13)
    client, _ = make(fake, clock)
    fake.inject["/credential"] = [
        error(400, "invalid_proof", c_nonce="fresh-nonce-1", c_nonce_expires_in=60)
    ]
    fake.c_nonces.add("fresh-nonce-1")
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert len(result.credentials) == 1
    second = bodies(fake, "/credential")[1]
    assert decode_jws(second["proof"]["jwt"]).payload["nonce"] == "fresh-nonce-1"


async def test_invalid_proof_without_nonce_is_not_retried(clock: FakeClock) -> None:
    fake = FakeIssuer(version=D13)
    client, _ = make(fake, clock)
    fake.inject["/credential"] = [error(400, "invalid_proof")]
    with pytest.raises(CredentialRequestError):
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert fake.count("/credential") == 1


async def test_nonce_endpoint_failure_fails_closed(clock: FakeClock) -> None:
    fake = FakeIssuer(version=V1)
    client, _ = make(fake, clock)
    fake.inject["/nonce"] = [json_response(500, {"error": "server_error"})]
    with pytest.raises(CredentialRequestError):
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert fake.count("/credential") == 0


async def test_nonce_endpoint_garbage_fails_closed(clock: FakeClock) -> None:
    fake = FakeIssuer(version=V1)
    client, _ = make(fake, clock)
    fake.inject["/nonce"] = [json_response(200, {"c_nonce": 5})]
    with pytest.raises(WireFormatError):
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert fake.count("/credential") == 0


# --- deferred -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [V1, D15, D13], ids=lambda v: v.value)
async def test_deferred_polling(version: Any, clock: FakeClock) -> None:
    fake = FakeIssuer(version=version, deferred_polls=2)
    client, sleep = make(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert result.state is FlowState.DEFERRED
    assert not result.credentials
    (tx,) = result.deferred
    assert tx.interval == (3 if version is V1 else 5)
    creds = await client.poll_deferred(result)
    assert len(creds) == 1 and creds[0].verified
    assert fake.count("/deferred") == 3
    # the issuer's interval is waited before every poll (OID4VCI 1.0 §9.2), the first too
    assert sleep.calls == [tx.interval, 2.0, 2.0]


async def test_deferred_bounded_wait(clock: FakeClock) -> None:
    fake = FakeIssuer(version=V1, deferred_polls=100)
    client, sleep = make(fake, clock, deferred_max_wait=5)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    with pytest.raises(CredentialRequestError) as info:
        await client.poll_deferred(result)
    assert info.value.error == "issuance_pending"
    assert sleep.calls == [3.0, 2.0]  # a third wait would pass the 5 s budget
    assert fake.count("/deferred") == 2


async def test_deferred_cancellable_with_real_sleep(clock: FakeClock) -> None:
    import anyio

    fake = FakeIssuer(version=V1, deferred_polls=100)
    fake.clock = clock
    client = Oid4vciClient(fake.transport(), clock=clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    with anyio.move_on_after(0.05) as scope:
        await client.poll_deferred(result)
    assert scope.cancelled_caught


# --- notification ---------------------------------------------------------------------------------


async def test_notify_once_per_notification_id(clock: FakeClock) -> None:
    fake = FakeIssuer(batch_size=3)
    client, _ = make(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()), count=3)
    await client.notify(result, "credential_accepted")
    assert fake.notifications == [{"notification_id": "notif-1", "event": "credential_accepted"}]
    req = next(r for r in fake.requests if r.url.endswith("/notification"))
    assert req.headers.get("DPoP") is not None
    await client.notify(result.credentials[0], "credential_deleted", "user deleted it")
    assert fake.notifications[-1]["event_description"] == "user deleted it"


# --- tx_code ----------------------------------------------------------------------------------------


async def test_tx_code_sent(clock: FakeClock) -> None:
    fake = FakeIssuer(tx_code={"input_mode": "numeric", "length": 4}, expected_tx_code="1234")
    client, _ = make(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()), tx_code="1234")
    assert len(result.credentials) == 1
    token = next(r for r in fake.requests if r.url.endswith("/token")).form_body()
    assert token["tx_code"] == "1234"


@pytest.mark.parametrize(
    ("spec", "code"),
    [
        ({"input_mode": "numeric", "length": 4}, None),
        ({"input_mode": "numeric", "length": 4}, "12a4"),
        ({"input_mode": "numeric", "length": 4}, "12345"),
        ({}, "abc"),
        (None, "1234"),
    ],
)
async def test_tx_code_checked_before_sending(
    spec: dict[str, Any] | None, code: str | None, clock: FakeClock
) -> None:
    fake = FakeIssuer(tx_code=spec)
    client, _ = make(fake, clock)
    with pytest.raises(UsageError) as info:
        await client.accept_offer(parse_credential_offer_json(fake.offer()), tx_code=code)
    assert fake.requests == []
    if code:
        assert code not in str(info.value)


async def test_text_tx_code_accepts_letters(clock: FakeClock) -> None:
    fake = FakeIssuer(tx_code={"input_mode": "text"}, expected_tx_code="ab-12")
    client, _ = make(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()), tx_code="ab-12")
    assert len(result.credentials) == 1


async def test_wrong_tx_code_is_token_error(clock: FakeClock) -> None:
    fake = FakeIssuer(tx_code={"length": 4}, expected_tx_code="1234")
    client, _ = make(fake, clock)
    with pytest.raises(TokenError) as info:
        await client.accept_offer(parse_credential_offer_json(fake.offer()), tx_code="9999")
    assert info.value.error == "invalid_grant"


# --- offers and selections ----------------------------------------------------------------------


async def test_offer_without_pre_authorized_grant(clock: FakeClock) -> None:
    fake = FakeIssuer()
    client, _ = make(fake, clock)
    with pytest.raises(OfferError):
        await client.accept_offer(parse_credential_offer_json(fake.offer(pre_authorized=False)))


async def test_configuration_ids_must_be_offered(clock: FakeClock) -> None:
    fake = FakeIssuer()
    client, _ = make(fake, clock)
    with pytest.raises(UsageError):
        await client.accept_offer(
            parse_credential_offer_json(fake.offer()), configuration_ids=["Other"]
        )


# --- bad input from the issuer ------------------------------------------------------------------


async def test_redirect_on_api_call_refused(clock: FakeClock) -> None:
    fake = FakeIssuer()
    client, _ = make(fake, clock)
    fake.inject["/token"] = [
        HttpResponse(status=302, headers={"Location": "https://evil.example/"})
    ]
    with pytest.raises(RedirectRefused):
        await client.accept_offer(parse_credential_offer_json(fake.offer()))


@pytest.mark.parametrize(
    "answer",
    [
        HttpResponse(status=200, headers={"Content-Type": "text/html"}, body=b"<html>"),
        HttpResponse.json(200, ["not", "an", "object"]),
        HttpResponse.json(200, {"token_type": "Bearer"}),
        HttpResponse.json(200, {"access_token": "x", "token_type": "MAC"}),
    ],
)
async def test_malformed_token_response(answer: HttpResponse, clock: FakeClock) -> None:
    fake = FakeIssuer()
    client, _ = make(fake, clock)
    fake.inject["/token"] = [answer]
    with pytest.raises(WireFormatError):
        await client.accept_offer(parse_credential_offer_json(fake.offer()))


@pytest.mark.parametrize(
    "answer",
    [
        HttpResponse(status=200, body=b"garbage"),
        HttpResponse.json(200, {"credentials": []}),
        HttpResponse.json(200, {"credentials": [{"credential": None}]}),
        HttpResponse.json(200, {}),
    ],
)
async def test_malformed_credential_response(answer: HttpResponse, clock: FakeClock) -> None:
    fake = FakeIssuer()
    client, _ = make(fake, clock)
    fake.inject["/credential"] = [answer]
    with pytest.raises(WireFormatError):
        await client.accept_offer(parse_credential_offer_json(fake.offer()))


async def test_server_error_without_json(clock: FakeClock) -> None:
    fake = FakeIssuer()
    client, _ = make(fake, clock)
    fake.inject["/credential"] = [HttpResponse(status=503, body=b"down")]
    with pytest.raises(CredentialRequestError) as info:
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert info.value.status == 503 and info.value.error == "server_error"


async def test_dpop_token_without_proof_is_refused(clock: FakeClock) -> None:
    fake = FakeIssuer()
    client, _ = make(fake, clock, dpop="off")
    fake.inject["/token"] = [json_response(200, {"access_token": "t", "token_type": "dpop"})]
    with pytest.raises(WireFormatError):
        await client.accept_offer(parse_credential_offer_json(fake.offer()))


async def test_secrets_not_in_messages(clock: FakeClock) -> None:
    fake = FakeIssuer()
    client, _ = make(fake, clock)
    fake.inject["/credential"] = [error(400, "invalid_credential_request")]
    with pytest.raises(CredentialRequestError) as info:
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    token = next(iter(fake.tokens))
    assert token not in str(info.value) and token not in repr(info.value)
    assert "pre-auth-code" not in json.dumps(str(info.value))


async def test_reprs_hide_tokens_and_keys(clock: FakeClock) -> None:
    fake = FakeIssuer()
    client, _ = make(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    token = next(iter(fake.tokens))
    cred = result.credentials[0]
    for text in (repr(result), repr(result.session), repr(cred)):
        assert token not in text
        assert cred.credential not in text
        assert "Erika" not in text


@pytest.mark.parametrize("count", [0, -1, True, 1001])
async def test_count_out_of_bounds_is_refused_before_any_request(
    count: Any, clock: FakeClock
) -> None:
    fake = FakeIssuer()
    client = Oid4vciClient(fake.transport(), clock=clock)
    offer = await client.parse_offer(json.dumps(fake.offer()))
    with pytest.raises(ValueError, match="count"):
        await client.accept_offer(offer, count=count)
    assert fake.count("/token") == 0
