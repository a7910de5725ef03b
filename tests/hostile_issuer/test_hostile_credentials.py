"""A hostile issuer's token, nonce, credential and deferred answers (in memory, both backends).

Bad credentials raise :class:`~oid4vci.errors.CredentialVerificationError` with the precise
``reason``; malformed answers raise typed errors; retry loops are bounded (one DPoP-Nonce retry,
deferred polling within ``max_wait``). Nothing is returned when anything is wrong, even when
only one credential of a batch is bad.
"""

from __future__ import annotations

from typing import Any

import pytest

from oid4vci.errors import (
    CredentialRequestError,
    CredentialVerificationError,
    DpopError,
    ErrorCode,
    Oid4vciError,
    ProtocolError,
    TokenError,
    WireFormatError,
)
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.models import parse_credential_offer_json
from oid4vci.sdjwt import SdJwtReason
from oid4vci.wallet import WalletReason
from tests.conftest import FakeClock
from tests.hostile_issuer.conftest import HostileIssuer, json_response, make_client, raw_response
from tests.wallet.fakes import ALL_VERSIONS, D13, D14, D15, V1, error

JWT_VC_PATH = "/.well-known/jwt-vc-issuer"


async def run(fake: HostileIssuer, clock: FakeClock, *, count: int = 1, **policy: Any) -> Any:
    client, _ = make_client(fake, clock, **policy)
    return await client.accept_offer(parse_credential_offer_json(fake.offer()), count=count)


# --- bad credentials ---------------------------------------------------------------------------

BAD_CREDENTIALS = [
    ("bad_signature", SdJwtReason.SIGNATURE),
    ("stray_disclosure", SdJwtReason.DISCLOSURE_NOT_REFERENCED),
    ("duplicate_disclosure", SdJwtReason.DUPLICATE_DISCLOSURE),
    ("wrong_cnf", SdJwtReason.CNF_MISMATCH),
    ("no_cnf", SdJwtReason.CNF_MISMATCH),
    ("wrong_vct", SdJwtReason.VCT_MISMATCH),
    ("expired", SdJwtReason.EXPIRED),
    ("future_iat", SdJwtReason.ISSUED_IN_FUTURE),
    ("not_yet_valid", SdJwtReason.NOT_YET_VALID),
    ("none_alg", SdJwtReason.ALG),
    ("hs256", SdJwtReason.ALG),
    ("kb_jwt", SdJwtReason.KEY_BINDING),
    ("iss_mismatch", SdJwtReason.ISSUER_MISMATCH),
    ("no_iss", WalletReason.ISSUER_KEY_UNAVAILABLE),
    ("wrong_typ", SdJwtReason.TYP),
    ("unknown_kid", SdJwtReason.UNKNOWN_KEY),
    ("not_a_string", SdJwtReason.MALFORMED),
    ("garbage", SdJwtReason.MALFORMED),
    ("deep_payload", SdJwtReason.MALFORMED),
]


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=lambda v: v.value)
@pytest.mark.parametrize(("mode", "reason"), BAD_CREDENTIALS, ids=[m for m, _ in BAD_CREDENTIALS])
async def test_bad_credential_refused(
    mode: str, reason: str, version: Any, clock: FakeClock
) -> None:
    fake = HostileIssuer(version=version, credential_mode=mode)
    with pytest.raises(CredentialVerificationError) as info:
        await run(fake, clock)
    assert getattr(info.value, "reason", None) == reason
    assert fake.count("/credential") == 1


@pytest.mark.parametrize("version", [D14, D15, V1], ids=lambda v: v.value)
@pytest.mark.parametrize("mode", ["same_key_twice", "extra_credential"])
async def test_more_credentials_than_keys_refused(
    mode: str, version: Any, clock: FakeClock
) -> None:
    """Two credentials bound to one proof key, or one more credential than proofs sent."""
    fake = HostileIssuer(version=version, credential_mode=mode, batch_size=3)
    with pytest.raises(CredentialVerificationError) as info:
        await run(fake, clock, count=2)
    assert getattr(info.value, "reason", None) == SdJwtReason.CNF_MISMATCH


async def test_one_bad_credential_spoils_the_batch(clock: FakeClock) -> None:
    """No partial result: if the last credential of a batch is bad, none is returned."""
    fake = HostileIssuer(batch_size=5, credential_mode="last_wrong_vct")
    with pytest.raises(CredentialVerificationError) as info:
        await run(fake, clock, count=5)
    assert getattr(info.value, "reason", None) == SdJwtReason.VCT_MISMATCH


async def test_bad_credential_after_deferral(clock: FakeClock) -> None:
    fake = HostileIssuer(deferred_polls=1, credential_mode="wrong_cnf")
    client, _ = make_client(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert result.credentials == () and len(result.deferred) == 1
    with pytest.raises(CredentialVerificationError) as info:
        await client.poll_deferred(result)
    assert getattr(info.value, "reason", None) == SdJwtReason.CNF_MISMATCH


def jwt_vc_docs(fake: HostileIssuer) -> dict[str, tuple[Any, str]]:
    key = fake.key.public_jwk
    return {
        "other_issuer": (
            {"issuer": "https://evil.example", "jwks": {"keys": [key]}},
            SdJwtReason.ISSUER_MISMATCH,
        ),
        "trailing_slash": (
            {"issuer": fake.issuer + "/", "jwks": {"keys": [key]}},
            SdJwtReason.ISSUER_MISMATCH,
        ),
        "upper_case": (
            {"issuer": fake.issuer.upper(), "jwks": {"keys": [key]}},
            SdJwtReason.ISSUER_MISMATCH,
        ),
        "no_issuer": ({"jwks": {"keys": [key]}}, SdJwtReason.ISSUER_MISMATCH),
        "both_jwks_and_uri": (
            {"issuer": fake.issuer, "jwks": {"keys": [key]}, "jwks_uri": fake.issuer + "/jwks"},
            WalletReason.ISSUER_KEY_UNAVAILABLE,
        ),
        "neither": ({"issuer": fake.issuer}, WalletReason.ISSUER_KEY_UNAVAILABLE),
        "http_jwks_uri": (
            {"issuer": fake.issuer, "jwks_uri": "http://issuer.example/jwks"},
            WalletReason.ISSUER_KEY_UNAVAILABLE,
        ),
        "jwks_uri_not_string": (
            {"issuer": fake.issuer, "jwks_uri": 5},
            WalletReason.ISSUER_KEY_UNAVAILABLE,
        ),
        "keys_not_list": (
            {"issuer": fake.issuer, "jwks": {"keys": "x"}},
            WalletReason.ISSUER_KEY_UNAVAILABLE,
        ),
        "empty_keys": (
            {"issuer": fake.issuer, "jwks": {"keys": []}},
            WalletReason.ISSUER_KEY_UNAVAILABLE,
        ),
        "other_key": (
            {"issuer": fake.issuer, "jwks": {"keys": [HostileIssuer().key.public_jwk]}},
            SdJwtReason.SIGNATURE,
        ),
        "symmetric_key": (
            {"issuer": fake.issuer, "jwks": {"keys": [{"kty": "oct", "k": "AAAA"}]}},
            SdJwtReason.SIGNATURE,
        ),
    }


@pytest.mark.parametrize(
    "case",
    sorted(jwt_vc_docs(HostileIssuer())),
)
async def test_jwt_vc_issuer_metadata_hostile(case: str, clock: FakeClock) -> None:
    fake = HostileIssuer()
    doc, reason = jwt_vc_docs(fake)[case]
    fake.inject[JWT_VC_PATH] = [json_response(200, doc)]
    with pytest.raises(CredentialVerificationError) as info:
        await run(fake, clock)
    assert getattr(info.value, "reason", None) == reason


@pytest.mark.parametrize(
    "answer",
    [
        raw_response(200, b"not json"),
        raw_response(200, b"[" * 50_000 + b"]" * 50_000),
        json_response(200, [1]),
        json_response(404, {"error": "not_found"}),
        json_response(500, {}),
    ],
    ids=["not_json", "deep", "array", "404", "500"],
)
async def test_jwt_vc_issuer_metadata_unreadable(answer: HttpResponse, clock: FakeClock) -> None:
    fake = HostileIssuer()
    fake.inject[JWT_VC_PATH] = [answer]
    with pytest.raises(CredentialVerificationError) as info:
        await run(fake, clock)
    assert getattr(info.value, "reason", None) == WalletReason.ISSUER_KEY_UNAVAILABLE


# --- malformed answers at every protocol step ------------------------------------------------

GARBAGE: dict[str, HttpResponse] = {
    "not_json": raw_response(200, b"{not json"),
    "empty": raw_response(200, b""),
    "array": json_response(200, [1, 2]),
    "string": json_response(200, "x"),
    "null": json_response(200, None),
    "html": raw_response(200, b"<html></html>", "text/html"),
    "bad_utf8": raw_response(200, b'{"a": "\xff"}'),
    "deeply_nested": raw_response(200, b"[" * 50_000 + b"]" * 50_000),
    "huge_number": raw_response(200, b'{"a": ' + b"9" * 10_000 + b"}"),
    "empty_object": json_response(200, {}),
}


def expect_typed(exc: BaseException) -> None:
    assert isinstance(exc, Oid4vciError), f"{type(exc).__name__} escaped"


@pytest.mark.parametrize("name", sorted(GARBAGE))
@pytest.mark.parametrize("path", ["/token", "/nonce", "/credential"])
async def test_garbage_answer(path: str, name: str, clock: FakeClock) -> None:
    fake = HostileIssuer()
    fake.inject[path] = [GARBAGE[name]] * 3
    with pytest.raises(Oid4vciError) as info:
        await run(fake, clock)
    expect_typed(info.value)


@pytest.mark.parametrize("name", sorted(GARBAGE))
async def test_garbage_deferred_answer(name: str, clock: FakeClock) -> None:
    fake = HostileIssuer(deferred_polls=1)
    client, _ = make_client(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    fake.inject["/deferred"] = [GARBAGE[name]]
    with pytest.raises(Oid4vciError):
        await client.poll_deferred(result)


TOKEN_SHAPES: list[dict[str, Any]] = [
    {"token_type": "DPoP"},
    {"access_token": 5, "token_type": "DPoP"},
    {"access_token": "", "token_type": "DPoP"},
    {"access_token": ["a"], "token_type": "DPoP"},
    {"access_token": "at\r\nX-Injected: 1", "token_type": "DPoP"},
    {"access_token": "at at", "token_type": "DPoP"},
    {"access_token": "at\u00e9", "token_type": "DPoP"},
    {"access_token": "at"},
    {"access_token": "at", "token_type": "MAC"},
    {"access_token": "at", "token_type": 5},
    {"access_token": "at", "token_type": "DPoP", "expires_in": "soon"},
    {"access_token": "at", "token_type": "DPoP", "c_nonce": 5},
    {"access_token": "at", "token_type": "DPoP", "authorization_details": "x"},
    {"access_token": "at", "token_type": "DPoP", "authorization_details": [5]},
    {
        "access_token": "at",
        "token_type": "DPoP",
        "authorization_details": [{"type": "openid_credential", "credential_identifiers": 5}],
    },
]


@pytest.mark.parametrize("body", TOKEN_SHAPES, ids=lambda b: repr(b)[:60])
async def test_token_response_wrong_shape(body: dict[str, Any], clock: FakeClock) -> None:
    fake = HostileIssuer()
    fake.inject["/token"] = [json_response(200, body)]
    with pytest.raises(WireFormatError):
        await run(fake, clock)
    assert fake.count("/credential") == 0 and fake.count("/nonce") == 0


async def test_bearer_token_when_dpop_required(clock: FakeClock) -> None:
    fake = HostileIssuer()
    fake.inject["/token"] = [json_response(200, {"access_token": "at", "token_type": "Bearer"})]
    with pytest.raises(WireFormatError):
        await run(fake, clock, dpop="required")
    assert fake.count("/credential") == 0


async def test_dpop_token_without_dpop_proof(clock: FakeClock) -> None:
    fake = HostileIssuer(dpop=False)
    fake.inject["/token"] = [json_response(200, {"access_token": "at", "token_type": "DPoP"})]
    with pytest.raises(WireFormatError):
        await run(fake, clock)


@pytest.mark.parametrize(
    "body", [{"c_nonce": 5}, {"c_nonce": ""}, {"c_nonce": None}, {"nonce": "x"}, {"c_nonce": [1]}]
)
async def test_nonce_response_wrong_shape(body: dict[str, Any], clock: FakeClock) -> None:
    fake = HostileIssuer()
    fake.inject["/nonce"] = [json_response(200, body)]
    with pytest.raises(WireFormatError):
        await run(fake, clock)
    assert fake.count("/credential") == 0


CREDENTIAL_SHAPES: list[dict[str, Any]] = [
    {},
    {"credentials": []},
    {"credentials": "eyJ..."},
    {"credentials": [5]},
    {"credentials": [{"credential": 5}]},
    {"credentials": [{"cred": "x"}]},
    {"credentials": [None]},
    {"credential": None},
    {"transaction_id": 5},
    {"transaction_id": ""},
    {"credentials": [{"credential": "a~"}], "notification_id": 5},
]


@pytest.mark.parametrize("body", CREDENTIAL_SHAPES, ids=lambda b: repr(b)[:60])
@pytest.mark.parametrize("status", [200, 202])
async def test_credential_response_wrong_shape(
    body: dict[str, Any], status: int, clock: FakeClock
) -> None:
    fake = HostileIssuer()
    fake.inject["/credential"] = [json_response(status, body)]
    with pytest.raises(Oid4vciError) as info:
        await run(fake, clock)
    assert isinstance(info.value, WireFormatError | CredentialVerificationError)


@pytest.mark.parametrize(
    "answer",
    [
        json_response(400, {"error": 5}),
        json_response(400, {"error": ["invalid_proof"], "error_description": {"x": 1}}),
        json_response(400, {"error": "invalid_nonce", "c_nonce": 5}),
        json_response(401, {}, {"WWW-Authenticate": 'DPoP error="'}),
        json_response(401, {}, {"WWW-Authenticate": "\x00\x01,,,=="}),
        raw_response(400, b"[" * 50_000),
        raw_response(503, b"<html>down</html>", "text/html"),
    ],
    ids=[
        "int_error",
        "list_error",
        "bad_c_nonce",
        "broken_challenge",
        "junk_challenge",
        "deep",
        "503",
    ],
)
async def test_error_answers_with_wrong_shapes(answer: HttpResponse, clock: FakeClock) -> None:
    fake = HostileIssuer()
    fake.inject["/credential"] = [answer] * 3
    with pytest.raises(ProtocolError):
        await run(fake, clock)


# --- bounded retries ---------------------------------------------------------------------------


def always_use_dpop_nonce(path: str, *, resource: bool) -> Any:
    counter = {"n": 0}

    async def answer(request: HttpRequest) -> HttpResponse | None:
        if not request.url.endswith(path):
            return None
        counter["n"] += 1
        nonce = f"nonce-{counter['n']}"  # a fresh nonce every time
        if resource:
            return json_response(
                401,
                {},
                {"DPoP-Nonce": nonce, "WWW-Authenticate": 'DPoP error="use_dpop_nonce"'},
            )
        return error(400, "use_dpop_nonce", {"DPoP-Nonce": nonce})

    return answer


@pytest.mark.parametrize(
    ("path", "resource"),
    [("/token", False), ("/nonce", True), ("/credential", True)],
)
async def test_dpop_nonce_loop_retried_exactly_once(
    path: str, resource: bool, clock: FakeClock
) -> None:
    fake = HostileIssuer(override=always_use_dpop_nonce(path, resource=resource))
    with pytest.raises(DpopError) as info:
        await run(fake, clock)
    assert info.value.error == ErrorCode.USE_DPOP_NONCE
    assert fake.count(path) == 2


async def test_dpop_nonce_loop_at_par(clock: FakeClock) -> None:
    fake = HostileIssuer(override=always_use_dpop_nonce("/par", resource=False))
    client, _ = make_client(fake, clock)
    offer = parse_credential_offer_json(fake.offer(pre_authorized=False))
    with pytest.raises(DpopError):
        await client.authorize(offer, redirect_uri="https://wallet.example.org/cb", client_id="w")
    assert fake.count("/par") == 2


async def test_dpop_nonce_loop_in_deferred(clock: FakeClock) -> None:
    fake = HostileIssuer(deferred_polls=1)
    client, _ = make_client(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    fake.override = always_use_dpop_nonce("/deferred", resource=True)
    with pytest.raises(DpopError):
        await client.poll_deferred(result)
    assert fake.count("/deferred") == 2


async def test_use_dpop_nonce_without_a_nonce_is_not_retried(clock: FakeClock) -> None:
    fake = HostileIssuer()
    fake.inject["/token"] = [error(400, "use_dpop_nonce")] * 3
    with pytest.raises(DpopError):
        await run(fake, clock)
    assert fake.count("/token") == 1


async def test_same_dpop_nonce_again_is_not_retried(clock: FakeClock) -> None:
    fake = HostileIssuer()
    fake.inject["/token"] = [error(400, "use_dpop_nonce", {"DPoP-Nonce": "same"})] * 3
    with pytest.raises(DpopError):
        await run(fake, clock)
    assert fake.count("/token") == 2


@pytest.mark.parametrize("version", [D13, D14, D15, V1], ids=lambda v: v.value)
async def test_invalid_nonce_loop_retried_once(version: Any, clock: FakeClock) -> None:
    """An issuer rejecting every proof's c_nonce (with a fresh one each time)."""
    counter = {"n": 0}

    async def answer(request: HttpRequest) -> HttpResponse | None:
        if not request.url.endswith("/credential"):
            return None
        counter["n"] += 1
        if version in (D13, D14):
            return error(400, "invalid_proof", c_nonce=f"n{counter['n']}")
        return error(400, "invalid_nonce")

    fake = HostileIssuer(version=version, override=answer)
    with pytest.raises(CredentialRequestError):
        await run(fake, clock)
    assert fake.count("/credential") == 2


async def test_slow_down_at_token_endpoint_is_not_a_loop(clock: FakeClock) -> None:
    fake = HostileIssuer()
    fake.inject["/token"] = [error(400, "slow_down", interval=0)] * 5
    with pytest.raises(TokenError):
        await run(fake, clock)
    assert fake.count("/token") == 1


# --- infinite deferral ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [D13, V1], ids=lambda v: v.value)
@pytest.mark.parametrize("max_wait", [0.0, 10.0, 60.0])
async def test_infinite_deferred_is_bounded(
    version: Any, max_wait: float, clock: FakeClock
) -> None:
    fake = HostileIssuer(version=version, deferred_polls=10**9)
    client, sleep = make_client(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    with pytest.raises(CredentialRequestError) as info:
        await client.poll_deferred(result, max_wait=max_wait)
    assert info.value.error == ErrorCode.ISSUANCE_PENDING
    assert sleep.total <= max_wait
    assert fake.count("/deferred") <= max_wait / 2 + 1  # the fake asks for 2 s intervals


async def test_infinite_deferred_uses_the_policy_bound(clock: FakeClock) -> None:
    fake = HostileIssuer(deferred_polls=10**9)
    client, sleep = make_client(fake, clock, deferred_max_wait=30.0)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    with pytest.raises(CredentialRequestError):
        await client.poll_deferred(result)
    assert 0 < sleep.total <= 30.0


@pytest.mark.parametrize("interval", [0, -5, 10**12, "soon", 0.001, True])
async def test_hostile_deferred_intervals(interval: Any, clock: FakeClock) -> None:
    """Zero, negative, absurd or mistyped intervals neither spin nor sleep forever."""

    async def answer(request: HttpRequest) -> HttpResponse | None:
        if request.url.endswith("/deferred"):
            return json_response(202, {"transaction_id": "tx", "interval": interval})
        return None

    fake = HostileIssuer(deferred_polls=1)
    client, sleep = make_client(fake, clock, deferred_max_wait=20.0)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    fake.override = answer
    with pytest.raises(Oid4vciError):
        await client.poll_deferred(result)
    assert sleep.total <= 20.0
    assert fake.count("/deferred") <= 21
    assert all(s > 0 for s in sleep.calls)


async def test_deferred_with_absurd_initial_interval(clock: FakeClock) -> None:
    async def answer(request: HttpRequest) -> HttpResponse | None:
        if request.url.endswith("/credential"):
            return json_response(202, {"transaction_id": "tx", "interval": 10**12})
        return None

    fake = HostileIssuer(override=answer)
    client, sleep = make_client(fake, clock, deferred_max_wait=20.0)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    with pytest.raises(CredentialRequestError):
        await client.poll_deferred(result)
    assert sleep.total == 0
