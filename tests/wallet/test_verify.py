"""Every received credential is verified; each failure is a typed error with a reason."""

from __future__ import annotations

import pytest

from oid4vci.errors import CredentialVerificationError
from oid4vci.http import HttpResponse
from oid4vci.models import parse_credential_offer_json
from oid4vci.sdjwt import SdJwtReason
from oid4vci.wallet import Oid4vciClient, WalletPolicy, WalletReason
from tests.conftest import FakeClock
from tests.wallet.fakes import D13, V1, FakeIssuer, json_response


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        ("bad_signature", SdJwtReason.SIGNATURE),
        ("stray_disclosure", SdJwtReason.DISCLOSURE_NOT_REFERENCED),
        ("wrong_cnf", SdJwtReason.CNF_MISMATCH),
        ("wrong_vct", SdJwtReason.VCT_MISMATCH),
        ("expired", SdJwtReason.EXPIRED),
    ],
)
@pytest.mark.parametrize("version", [V1, D13], ids=lambda v: v.value)
async def test_bad_credentials_rejected(
    mode: str, reason: str, version: object, clock: FakeClock
) -> None:
    fake = FakeIssuer(version=version, credential_mode=mode)  # type: ignore[arg-type]
    fake.clock = clock
    client = Oid4vciClient(fake.transport(), clock=clock)
    with pytest.raises(CredentialVerificationError) as info:
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert getattr(info.value, "reason", None) == reason


async def test_good_credential_within_skew(clock: FakeClock) -> None:
    fake = FakeIssuer()
    fake.clock = clock
    client = Oid4vciClient(fake.transport(), clock=clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert result.credentials[0].verified
    # the wallet's clock slightly ahead of the issuer's: still fine within the skew
    assert "Erika" not in repr(result.credentials[0])
    assert result.credentials[0].credential not in repr(result)


async def test_wallet_clock_far_ahead_sees_expiry(clock: FakeClock) -> None:
    fake = FakeIssuer()
    fake.clock = FakeClock(clock.now)
    clock.advance(3600 + 120)  # the credential lives one hour
    client = Oid4vciClient(fake.transport(), clock=clock, policy=WalletPolicy(dpop="off"))
    with pytest.raises(CredentialVerificationError) as info:
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert getattr(info.value, "reason", None) == SdJwtReason.EXPIRED


async def test_jwt_vc_issuer_metadata_mismatch(clock: FakeClock) -> None:
    fake = FakeIssuer()
    fake.clock = clock
    fake.inject["/.well-known/jwt-vc-issuer"] = [
        json_response(200, {"issuer": "https://other.example", "jwks": {"keys": []}})
    ]
    client = Oid4vciClient(fake.transport(), clock=clock)
    with pytest.raises(CredentialVerificationError) as info:
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert getattr(info.value, "reason", None) == SdJwtReason.ISSUER_MISMATCH


@pytest.mark.parametrize(
    "answer",
    [
        json_response(404, {}),
        HttpResponse(status=200, body=b"nope"),
        json_response(200, {"issuer": "https://issuer.example"}),
        json_response(
            200,
            {"issuer": "https://issuer.example", "jwks": {"keys": []}, "jwks_uri": "https://x/"},
        ),
    ],
)
async def test_issuer_key_unavailable(answer: HttpResponse, clock: FakeClock) -> None:
    fake = FakeIssuer()
    fake.clock = clock
    fake.inject["/.well-known/jwt-vc-issuer"] = [answer]
    client = Oid4vciClient(fake.transport(), clock=clock)
    with pytest.raises(CredentialVerificationError) as info:
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert getattr(info.value, "reason", None) == WalletReason.ISSUER_KEY_UNAVAILABLE


async def test_jwks_uri_is_followed(clock: FakeClock) -> None:
    fake = FakeIssuer()
    fake.clock = clock
    fake.inject["/.well-known/jwt-vc-issuer"] = [
        json_response(200, {"issuer": fake.issuer, "jwks_uri": fake.url("/jwks")})
    ]
    fake.inject["/jwks"] = [json_response(200, {"keys": [fake.key.public_jwk]})]
    client = Oid4vciClient(fake.transport(), clock=clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert result.credentials[0].verified
    assert fake.count("/jwks") == 1


async def test_unverifiable_format_refused_by_default(clock: FakeClock) -> None:
    fake = FakeIssuer()
    fake.clock = clock
    meta = fake.issuer_metadata()
    config = meta["credential_configurations_supported"]["IdentityCredential"]
    # ldp_vc: a format this wallet cannot verify (jwt_vc_json, used here before, now can be)
    config["format"] = "ldp_vc"
    config.pop("vct")
    config["credential_definition"] = {
        "@context": ["https://www.w3.org/2018/credentials/v1"],
        "type": ["VerifiableCredential"],
    }
    fake.inject["/.well-known/openid-credential-issuer"] = [json_response(200, meta)]
    client = Oid4vciClient(fake.transport(), clock=clock)
    with pytest.raises(CredentialVerificationError) as info:
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert getattr(info.value, "reason", None) == WalletReason.UNSUPPORTED_FORMAT


async def test_credential_is_not_a_string(clock: FakeClock) -> None:
    fake = FakeIssuer()
    fake.clock = clock
    fake.inject["/credential"] = [json_response(200, {"credentials": [{"credential": {"a": 1}}]})]
    client = Oid4vciClient(fake.transport(), clock=clock)
    with pytest.raises(CredentialVerificationError) as info:
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert getattr(info.value, "reason", None) == SdJwtReason.MALFORMED
