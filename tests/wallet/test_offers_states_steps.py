"""parse_offer forms, the state table, and the sans-IO steps."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from oid4vci.errors import (
    CallbackError,
    DpopError,
    InsecureUrlError,
    OfferError,
    TokenError,
)
from oid4vci.http import HttpResponse
from oid4vci.jose import LocalSigner, decode_jws
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from oid4vci.wallet.steps import (
    authorization_header,
    build_key_proof,
    is_use_dpop_nonce,
    parse_www_authenticate,
    read_authorization_callback,
    read_error_response,
)
from tests.conftest import FakeClock
from tests.wallet.fakes import FakeIssuer, json_response

OFFER = {
    "credential_issuer": "https://issuer.example",
    "credential_configuration_ids": ["IdentityCredential"],
    "grants": {
        "urn:ietf:params:oauth:grant-type:pre-authorized_code": {"pre-authorized_code": "x"}
    },
}


# --- parse_offer ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prefix",
    [
        "openid-credential-offer://?credential_offer=",
        "haip://?credential_offer=",
        "https://wallet.example/offer?credential_offer=",
        "eudi-openid4ci://?credential_offer=",
    ],
)
async def test_parse_offer_by_value(prefix: str) -> None:
    client = Oid4vciClient(FakeIssuer().transport())
    offer = await client.parse_offer(prefix + quote(json.dumps(OFFER)))
    assert offer.credential_issuer == "https://issuer.example"
    assert offer.pre_authorized_code is not None


async def test_parse_offer_raw_json() -> None:
    client = Oid4vciClient(FakeIssuer().transport())
    offer = await client.parse_offer(json.dumps(OFFER))
    assert offer.credential_configuration_ids == ("IdentityCredential",)


async def test_parse_offer_by_reference() -> None:
    fake = FakeIssuer()
    fake.inject["/offers/1"] = [json_response(200, OFFER)]
    client = Oid4vciClient(fake.transport())
    link = "openid-credential-offer://?credential_offer_uri=" + quote(
        fake.url("/offers/1"), safe=""
    )
    offer = await client.parse_offer(link)
    assert offer.credential_issuer == "https://issuer.example"
    assert fake.requests[0].method == "GET"


async def test_parse_offer_by_reference_not_json() -> None:
    fake = FakeIssuer()
    fake.inject["/offers/1"] = [HttpResponse(status=200, body=b"<html>")]
    client = Oid4vciClient(fake.transport())
    with pytest.raises(OfferError):
        await client.parse_offer(
            "openid-credential-offer://?credential_offer_uri=" + fake.url("/offers/1")
        )


async def test_parse_offer_by_reference_needs_https() -> None:
    fake = FakeIssuer(issuer="http://issuer.example")
    client = Oid4vciClient(fake.transport())
    with pytest.raises(InsecureUrlError):
        await client.parse_offer(
            "openid-credential-offer://?credential_offer_uri=http://issuer.example/o"
        )
    assert fake.requests == []
    local = FakeIssuer(issuer="http://127.0.0.1:9999")
    local.inject["/o"] = [json_response(200, OFFER)]
    loopback = Oid4vciClient(local.transport(), policy=WalletPolicy(allow_insecure_loopback=True))
    offer = await loopback.parse_offer(
        "openid-credential-offer://?credential_offer_uri=http://127.0.0.1:9999/o"
    )
    assert offer.credential_issuer == "https://issuer.example"


@pytest.mark.parametrize(
    "text",
    [
        "openid-credential-offer://?foo=bar",
        "openid-credential-offer://?credential_offer=%7Bnot-json",
        "openid-credential-offer://?credential_offer=%7B%7D",
    ],
)
async def test_parse_offer_bad(text: str) -> None:
    client = Oid4vciClient(FakeIssuer().transport())
    with pytest.raises(OfferError):
        await client.parse_offer(text)


# --- steps -----------------------------------------------------------------------------------------


def test_parse_www_authenticate() -> None:
    value = 'DPoP error="use_dpop_nonce", error_description="need \\"nonce\\"", algs="ES256 PS256"'
    [(scheme, params)] = parse_www_authenticate(value)
    assert scheme == "dpop"
    assert params == {
        "error": "use_dpop_nonce",
        "error_description": 'need "nonce"',
        "algs": "ES256 PS256",
    }
    two = parse_www_authenticate('Bearer, DPoP algs="ES256"')
    assert [s for s, _ in two] == ["bearer", "dpop"]
    assert parse_www_authenticate("") == []


def test_read_error_response_shapes() -> None:
    as_err = read_error_response(
        HttpResponse.json(400, {"error": "use_dpop_nonce"}, headers={"DPoP-Nonce": "n1"}),
        TokenError,
    )
    assert isinstance(as_err, DpopError) and as_err.dpop_nonce == "n1"
    rs = HttpResponse(
        status=401, headers={"WWW-Authenticate": 'DPoP error="invalid_token"'}, body=b""
    )
    rs_err = read_error_response(rs)
    assert rs_err.error == "invalid_token" and rs_err.status == 401
    d13 = read_error_response(HttpResponse.json(400, {"error": "invalid_proof", "c_nonce": "c"}))
    assert d13.c_nonce == "c"
    weird = read_error_response(HttpResponse.json(400, {"error": 5, "interval": True}))
    assert weird.error == "invalid_request" and weird.interval is None


def test_is_use_dpop_nonce() -> None:
    assert is_use_dpop_nonce(HttpResponse.json(400, {"error": "use_dpop_nonce"}))
    assert is_use_dpop_nonce(
        HttpResponse(status=401, headers={"WWW-Authenticate": 'DPoP error="use_dpop_nonce"'})
    )
    assert not is_use_dpop_nonce(
        HttpResponse(status=401, headers={"WWW-Authenticate": 'Bearer error="use_dpop_nonce"'})
    )
    assert not is_use_dpop_nonce(HttpResponse.json(400, {"error": "invalid_grant"}))


def test_authorization_header_case_insensitive() -> None:
    assert authorization_header("t", "dpop") == "DPoP t"
    assert authorization_header("t", "DPoP") == "DPoP t"
    assert authorization_header("t", "bearer") == "Bearer t"


def _callback(url: str) -> str:
    return read_authorization_callback(
        url, expected_state="s1", expected_issuer="https://as.example", iss_supported=True
    )


def test_callback_checks() -> None:
    assert _callback("https://w/cb?code=c1&state=s1&iss=https%3A%2F%2Fas.example") == "c1"
    assert _callback("https://w/cb#code=c2&state=s1&iss=https://as.example") == "c2"
    with pytest.raises(CallbackError):
        _callback("https://w/cb?code=c1&state=s1&state=s1&iss=https://as.example")
    with pytest.raises(CallbackError):
        _callback("https://w/cb?state=s1&iss=https://as.example")
    with pytest.raises(CallbackError):
        _callback("https://w/cb?code=c1&state=s1")


async def test_key_proof(clock: FakeClock) -> None:
    key = LocalSigner.generate()
    proof = await build_key_proof(key, audience="https://i", nonce="n", client_id=None, clock=clock)
    decoded = decode_jws(proof)
    assert decoded.header["typ"] == "openid4vci-proof+jwt"
    assert "d" not in decoded.header["jwk"]
    assert decoded.payload == {"aud": "https://i", "iat": int(clock.now), "nonce": "n"}


async def test_low_level_functions(clock: FakeClock) -> None:
    from oid4vci.models import CredentialRequest, ProofSet
    from oid4vci.wallet import request_credential, request_nonce, request_token
    from oid4vci.wallet.steps import pre_authorized_grant

    fake = FakeIssuer(require_dpop_nonce_as=True)
    fake.clock = clock
    transport = fake.transport()
    dpop = LocalSigner.generate()
    # one request per call: the use_dpop_nonce answer is raised with the nonce to retry with
    with pytest.raises(DpopError) as refused:
        await request_token(
            transport,
            fake.url("/token"),
            pre_authorized_grant("pre-auth-code-123"),
            dpop_key=dpop,
            clock=clock,
        )
    assert refused.value.error == "use_dpop_nonce" and refused.value.dpop_nonce
    token = await request_token(
        transport,
        fake.url("/token"),
        pre_authorized_grant("pre-auth-code-123"),
        dpop_key=dpop,
        dpop_nonce=refused.value.dpop_nonce,
        clock=clock,
    )
    assert token.is_dpop and fake.count("/token") == 2
    nonce = await request_nonce(transport, fake.url("/nonce"))
    holder = LocalSigner.generate()
    proof = await build_key_proof(holder, audience=fake.issuer, nonce=nonce, clock=clock)
    resp = await request_credential(
        transport,
        fake.url("/credential"),
        CredentialRequest(
            credential_configuration_id="IdentityCredential",
            proofs=ProofSet(proof_type="jwt", values=(proof,)),
        ),
        access_token=token.access_token,
        token_type=token.token_type,
        dpop_key=dpop,
        clock=clock,
    )
    assert resp.credentials is not None and len(resp.credentials) == 1


def test_wallet_policy_validation() -> None:
    with pytest.raises(ValueError):
        WalletPolicy(dpop="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        WalletPolicy(par="maybe")  # type: ignore[arg-type]
