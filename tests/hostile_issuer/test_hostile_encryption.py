"""A hostile issuer's answers to encrypted credential requests (OID4VCI 1.0 §10).

The issuer is the real one with encryption on; a man in its answer path (it holds the
issuer's request key, so it sees the wallet's ephemeral public key) replaces the credential
answer: plain JSON after encryption was asked, other ``alg``/``enc``, an unasked ``zip``, a
tampered or foreign ciphertext, a non-JSON plaintext. Every one is an
:class:`~oid4vci.errors.EncryptionError`; nothing is returned; the flow is ``FAILED``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from joserfc import jwe
from joserfc.jwk import JWKRegistry

from oid4vci.errors import EncryptionError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer.encryption import EncryptionSettings
from oid4vci.jwe import _Registry, decrypt_jwe, encrypt_json, generate_encryption_key
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.versions import SpecVersion
from oid4vci.wallet import Done, FlowState, IssuanceFlow, Oid4vciClient, WalletPolicy
from oid4vci.wallet.driver import run_flow
from tests.conftest import FakeClock
from tests.e2e.conftest import CLIENT_ID, ISSUER, E2eIssuer, build_e2e_issuer

pytestmark = pytest.mark.anyio

REQUEST_KEY = generate_encryption_key(kid="enc-1")
SETTINGS = EncryptionSettings(request_keys=(REQUEST_KEY,), response_zip_values=("DEF",))

Tamper = Callable[[HttpResponse, dict[str, Any]], HttpResponse]


def jwt_answer(status: int, token: str | bytes) -> HttpResponse:
    body = token.encode() if isinstance(token, str) else token
    return HttpResponse(
        status=status,
        headers={"Content-Type": "application/jwt", "Cache-Control": "no-store"},
        body=body,
    )


def plain(answer: HttpResponse, wallet_jwk: dict[str, Any]) -> HttpResponse:
    return answer


def reencrypt(**options: Any) -> Tamper:
    def tamper(answer: HttpResponse, wallet_jwk: dict[str, Any]) -> HttpResponse:
        jwk = {**wallet_jwk, **options.pop("jwk", {})}
        alg = options.get("alg", "ECDH-ES")
        jwk["alg"] = alg
        token = encrypt_json(
            answer.json_body(),
            jwk,
            alg=alg,
            enc=options.get("enc", "A256GCM"),
            zip=options.get("zip"),
        )
        return jwt_answer(answer.status, token)

    return tamper


def to_another_key(answer: HttpResponse, wallet_jwk: dict[str, Any]) -> HttpResponse:
    other = generate_encryption_key()
    public = {k: v for k, v in other.items() if k != "d"}
    return jwt_answer(
        answer.status, encrypt_json(answer.json_body(), public, alg="ECDH-ES", enc="A256GCM")
    )


def flip_ciphertext(answer: HttpResponse, wallet_jwk: dict[str, Any]) -> HttpResponse:
    good = reencrypt()(answer, wallet_jwk).body.decode()
    parts = good.split(".")
    parts[3] = ("B" if parts[3][0] == "A" else "A") + parts[3][1:]
    return jwt_answer(answer.status, ".".join(parts))


def with_kid(answer: HttpResponse, wallet_jwk: dict[str, Any]) -> HttpResponse:
    return reencrypt(jwk={"kid": "someone-else"})(answer, wallet_jwk)


def not_json(answer: HttpResponse, wallet_jwk: dict[str, Any]) -> HttpResponse:
    token = jwe.encrypt_compact(
        {"alg": "ECDH-ES", "enc": "A256GCM"},
        b"[1,2,3]",
        JWKRegistry.import_key(wallet_jwk),
        registry=_Registry(["ECDH-ES", "A256GCM"], 1024),
    )
    return jwt_answer(answer.status, token)


def zip_bomb(answer: HttpResponse, wallet_jwk: dict[str, Any]) -> HttpResponse:
    body = {"credentials": [{"credential": " " * 20_000_000}]}
    return reencrypt(zip="DEF")(HttpResponse.json(answer.status, body), wallet_jwk)


def garbage(answer: HttpResponse, wallet_jwk: dict[str, Any]) -> HttpResponse:
    return jwt_answer(answer.status, b"\xff\x00not a jwe")


HOSTILE: list[tuple[str, Tamper, str]] = [
    ("plain-json", plain, "answered unencrypted"),
    ("other-enc", reencrypt(enc="A128GCM"), "enc is not allowed"),
    ("other-alg", reencrypt(alg="ECDH-ES+A128KW"), "alg is not allowed"),
    ("unasked-zip", reencrypt(zip="DEF"), "zip is not allowed"),
    ("zip-bomb", zip_bomb, "zip is not allowed"),
    ("to-another-key", to_another_key, "could not be decrypted"),
    ("tampered-ciphertext", flip_ciphertext, "could not be decrypted"),
    ("unknown-kid", with_kid, "kid names no decryption key"),
    ("not-json", not_json, "not a JSON object"),
    ("garbage", garbage, "not a compact JWE"),
]


class Hostile:
    """The real issuer behind a tamperer of credential answers."""

    def __init__(self, e2e: E2eIssuer, tamper: Tamper, *, status: int | None = None) -> None:
        self.e2e = e2e
        self.tamper = tamper
        self.status = status
        self.tampered = 0

    async def handle(self, request: HttpRequest) -> HttpResponse:
        if not request.url.endswith("/credential") or request.media_type != "application/jwt":
            return await self.e2e.handle(request)
        opened = decrypt_jwe(
            request.body.decode(), [REQUEST_KEY], algorithms=["ECDH-ES"], encryptions=["A256GCM"]
        )
        body = opened.json_object()
        wallet_jwk = body.pop("credential_response_encryption")["jwk"]
        # The real issuer answers in the clear (the member is gone), then the answer is replaced.
        sealed = encrypt_json(
            body, {k: v for k, v in REQUEST_KEY.items() if k != "d"}, alg="ECDH-ES", enc="A256GCM"
        )
        forwarded = HttpRequest(
            method=request.method, url=request.url, headers=request.headers, body=sealed
        )
        answer = await self.e2e.handle(forwarded)
        assert answer.status == 200 and answer.media_type == "application/json", answer.body
        self.tampered += 1
        return self.tamper(answer, wallet_jwk)

    def transport(self) -> InMemoryTransport:
        return InMemoryTransport(routes={ISSUER: self.handle}, raise_on_redirect=False)


async def issue(
    route: Callable[[HttpRequest], Awaitable[HttpResponse]],
    e2e: E2eIssuer,
    clock: FakeClock,
    **policy: Any,
) -> IssuanceFlow:
    transport = InMemoryTransport(routes={ISSUER: route}, raise_on_redirect=False)
    client = Oid4vciClient(
        transport, client_id=CLIENT_ID, clock=clock, policy=WalletPolicy(**policy)
    )
    offer = await client.parse_offer(e2e.offer_links["pre_auth"])
    flow = IssuanceFlow.from_offer(offer, policy=client.policy, clock=clock, client_id=CLIENT_ID)
    FLOWS.append(flow)
    await run_flow(flow, transport)
    return flow


#: The flows :func:`issue` made, newest last (to look at them after they raised).
FLOWS: list[IssuanceFlow] = []


@pytest.mark.parametrize(("name", "tamper", "message"), HOSTILE, ids=[h[0] for h in HOSTILE])
async def test_hostile_encrypted_answers_are_refused(
    name: str, tamper: Tamper, message: str, clock: FakeClock
) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock, encryption=SETTINGS)
    hostile = Hostile(e2e, tamper)
    with pytest.raises(EncryptionError, match=message) as info:
        await issue(hostile.handle, e2e, clock)
    assert hostile.tampered == 1
    assert FLOWS[-1].state is FlowState.FAILED and FLOWS[-1].result.credentials == ()
    assert '"d"' not in str(info.value) and REQUEST_KEY["d"] not in str(info.value)


@pytest.mark.parametrize("version", list(SpecVersion), ids=lambda v: v.value)
async def test_encrypted_answer_the_wallet_did_not_ask_for(
    version: SpecVersion, clock: FakeClock
) -> None:
    e2e = build_e2e_issuer(version, clock, encryption=SETTINGS)
    someone = generate_encryption_key()
    public = {k: v for k, v in someone.items() if k != "d"}

    async def route(request: HttpRequest) -> HttpResponse:
        answer = await e2e.handle(request)
        if request.url.endswith("/credential") and answer.status == 200:
            return jwt_answer(
                200, encrypt_json(answer.json_body(), public, alg="ECDH-ES", enc="A128GCM")
            )
        return answer

    with pytest.raises(EncryptionError, match="did not ask"):
        await issue(route, e2e, clock, encryption="off")


@pytest.mark.parametrize("version", list(SpecVersion), ids=lambda v: v.value)
async def test_draft_and_v1_plain_answer_after_asking_is_refused(
    version: SpecVersion, clock: FakeClock
) -> None:
    e2e = build_e2e_issuer(version, clock, encryption=SETTINGS)

    async def route(request: HttpRequest) -> HttpResponse:
        answer = await e2e.handle(request)
        if request.url.endswith("/credential") and answer.media_type == "application/jwt":
            # Replace the encrypted answer by a well-formed plain one (credentials elided).
            return HttpResponse.json(200, {"credentials": [{"credential": "x"}], "credential": "x"})
        return answer

    with pytest.raises(EncryptionError, match="answered unencrypted"):
        await issue(route, e2e, clock)


async def test_error_answers_stay_readable(clock: FakeClock) -> None:
    """A 4xx error is plain JSON in every version: the typed protocol error comes through."""
    from oid4vci.errors import CredentialRequestError

    e2e = build_e2e_issuer(SpecVersion.V1, clock, encryption=SETTINGS)

    async def route(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/credential"):
            return HttpResponse.json(400, {"error": "credential_request_denied"})
        return await e2e.handle(request)

    with pytest.raises(CredentialRequestError) as info:
        await issue(route, e2e, clock)
    assert info.value.error == "credential_request_denied"


async def test_flow_never_holds_the_ephemeral_key_where_it_can_leak(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock, encryption=SETTINGS)
    transport = InMemoryTransport(routes={ISSUER: e2e.handle}, raise_on_redirect=False)
    client = Oid4vciClient(transport, client_id=CLIENT_ID, clock=clock)
    offer = await client.parse_offer(e2e.offer_links["pre_auth"])
    flow = IssuanceFlow.from_offer(offer, policy=client.policy, clock=clock, client_id=CLIENT_ID)
    while True:
        action = await flow.next_action()
        request = getattr(action, "request", None)
        assert request is not None, action
        if flow.state is FlowState.REQUESTING_CREDENTIAL:
            break
        flow.receive_response(await transport.send(request))
    in_flight = flow._in_flight
    assert in_flight is not None and in_flight.response_key is not None
    secret = in_flight.response_key.private_jwk["d"]
    assert secret not in repr(in_flight) and secret not in repr(in_flight.response_key)
    assert secret not in repr(flow)
    assert request.headers.get("Content-Type") == "application/jwt"
    assert secret.encode() not in request.body
    with pytest.raises(Exception, match="cannot be saved"):
        flow.to_json()
    flow.receive_response(await transport.send(request))
    while not isinstance(action := await flow.next_action(), Done):
        flow.receive_response(await transport.send(action.request))  # type: ignore[union-attr]
    saved = flow.to_json()
    assert secret not in saved
    assert json.loads(saved)["state"] == "done"
