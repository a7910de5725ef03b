"""Wallet secrets stay secret: not in logs (DEBUG captured), exception messages or reprs, or
the reprs of results, sessions, pending authorizations, offers and deferred transactions.

Secrets: access tokens, pre-authorized codes, authorization codes, tx_codes, PKCE verifiers,
``state``, DPoP and holder private keys (their ``d``), c_nonces, DPoP nonces, transaction ids.
:meth:`IssuanceFlow.to_json` holds some of them on purpose (documented); the scanner is
shown to catch them there, so a leak anywhere else would be caught too.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from oid4vci.errors import (
    CallbackError,
    ConnectError,
    CredentialRequestError,
    CredentialVerificationError,
    DpopError,
    Oid4vciError,
    TokenError,
    UsageError,
)
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer.demo import build_demo_issuer
from oid4vci.jose import LocalSigner, decode_jws
from oid4vci.models import parse_credential_offer_json
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import FlowState, IssuanceFlow, Oid4vciClient
from tests.conftest import FakeClock
from tests.hostile_issuer.conftest import HostileIssuer, make_client
from tests.wallet.fakes import D13, PRE_AUTH_CODE, V1, error, json_response

REDIRECT_URI = "https://wallet.example.org/cb"
TX_CODE = "271828"


class KeyRecorder:
    """Every key the wallet generates (DPoP and holder keys), for their private parts."""

    def __init__(self) -> None:
        self.keys: list[LocalSigner] = []

    def secrets(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for i, key in enumerate(self.keys):
            out[f"private key {i} (d)"] = str(key.private_jwk()["d"])
        return out


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> KeyRecorder:
    recorder = KeyRecorder()
    original = LocalSigner.generate.__func__  # type: ignore[attr-defined]

    def generate(cls: type[LocalSigner], *args: Any, **kwargs: Any) -> LocalSigner:
        key: LocalSigner = original(cls, *args, **kwargs)
        recorder.keys.append(key)
        return key

    monkeypatch.setattr(LocalSigner, "generate", classmethod(generate))
    return recorder


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    # caplog restores every level it sets, so later tests keep their own logging setup
    caplog.set_level(logging.DEBUG)
    for name in ("oid4vci", "oid4vci.wallet", "oid4vci.issuer", "oid4vci.transports"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def exception_texts(exc: BaseException) -> Iterator[str]:
    """str, repr and args of ``exc`` and of everything chained to it."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        yield repr(current.args)
        yield repr(getattr(current, "__notes__", ""))
        todo.extend([current.__cause__, current.__context__])


def log_texts(caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    yield caplog.text
    for record in caplog.records:
        yield record.getMessage()
        yield repr(record.args)
        if record.exc_info and record.exc_info[1] is not None:
            yield from exception_texts(record.exc_info[1])


def secret_finder(secret: str) -> Callable[[str], object]:
    """Whether a text holds ``secret``. An all-digit secret (a numeric tx_code) is looked for
    between non-digits: the 17 digits of a logged float (a duration's ``repr`` in a record's
    args) may hold any six in a row."""
    if secret.isdigit():
        return re.compile(rf"(?<![0-9]){secret}(?![0-9])").search
    return lambda text: secret in text


def test_secret_finder() -> None:
    numeric = secret_finder(TX_CODE)
    assert numeric(f"tx_code={TX_CODE}&x=1") and numeric(f'{{"tx_code":"{TX_CODE}"}}')
    assert numeric(TX_CODE) and not numeric(f"0.0919360{TX_CODE}473")
    assert secret_finder("at-abc123")("Bearer at-abc123")


def assert_hidden(
    secrets: dict[str, str],
    *,
    caplog: pytest.LogCaptureFixture,
    objects: Sequence[object] = (),
    errors: Sequence[BaseException] = (),
) -> None:
    """No secret in the captured logs, in ``repr``/``str`` of ``objects``, or in ``errors``."""
    assert any(r.name.startswith("oid4vci") for r in caplog.records), "no log was captured"
    texts: list[tuple[str, str]] = [("log", t) for t in log_texts(caplog)]
    for obj in objects:
        texts.append((f"repr({type(obj).__name__})", repr(obj)))
        texts.append((f"str({type(obj).__name__})", str(obj)))
    for exc in errors:
        texts.extend((f"{type(exc).__name__}", t) for t in exception_texts(exc))
    assert secrets, "nothing to look for"
    for name, secret in secrets.items():
        assert isinstance(secret, str) and len(secret) >= 6, f"{name} is too short to search"
        found = secret_finder(secret)
        for where, text in texts:
            assert not found(text), f"{name} appears in {where}"


def fake_secrets(fake: HostileIssuer) -> dict[str, str]:
    """Secrets the fake handed out or saw: tokens, codes, nonces, transaction ids."""
    out: dict[str, str] = {"pre-authorized code": PRE_AUTH_CODE}
    for i, token in enumerate(fake.tokens):
        out[f"access token {i}"] = token
    for i, nonce in enumerate(sorted(fake.dpop_nonces)):
        out[f"DPoP nonce {i}"] = nonce
    for i, tx in enumerate(fake.transactions):
        out[f"transaction id {i}"] = tx
    for request in fake.requests:
        body = request.body
        if request.url.endswith("/credential") and body:
            for j, proof in enumerate(_proofs(request)):
                c_nonce = decode_jws(proof).payload.get("nonce")
                if isinstance(c_nonce, str) and len(c_nonce) >= 6:
                    out[f"c_nonce {len(out)}-{j}"] = c_nonce
    return out


def _proofs(request: HttpRequest) -> list[str]:
    try:
        body = request.json_body()
    except Oid4vciError:
        return []
    proofs = body.get("proofs", {}).get("jwt", [])
    single = body.get("proof", {}).get("jwt")
    return [p for p in [*proofs, single] if isinstance(p, str)]


# --- the scanner works -------------------------------------------------------------------------


async def test_scanner_finds_a_leak(logs: pytest.LogCaptureFixture) -> None:
    logging.getLogger("oid4vci.wallet").debug("token is %s", "leaky-secret-123")
    with pytest.raises(AssertionError):
        assert_hidden({"token": "leaky-secret-123"}, caplog=logs)
    with pytest.raises(AssertionError):
        assert_hidden({"x": "secret-value"}, caplog=logs, errors=[ValueError("secret-value")])


# --- successful flows ----------------------------------------------------------------------


@pytest.mark.parametrize("version", [D13, V1], ids=lambda v: v.value)
async def test_pre_authorized_flow_with_tx_code(
    version: Any, logs: pytest.LogCaptureFixture, keys: KeyRecorder, clock: FakeClock
) -> None:
    fake = HostileIssuer(
        version=version,
        tx_code={"length": 6},
        expected_tx_code=TX_CODE,
        batch_size=2 if version is V1 else None,
        require_dpop_nonce_as=True,
        require_dpop_nonce_rs=True,
    )
    client, _ = make_client(fake, clock)
    offer = parse_credential_offer_json(fake.offer())
    result = await client.accept_offer(offer, tx_code=TX_CODE, count=2)
    await client.notify(result, "credential_accepted")
    assert len(result.credentials) == 2 and keys.keys
    secrets = fake_secrets(fake) | keys.secrets() | {"tx_code": TX_CODE}
    assert any(k.startswith("access token") for k in secrets)
    assert any(k.startswith("DPoP nonce") for k in secrets)
    objects: list[object] = [result, result.session, offer, client, client.transport]
    objects += [*result.credentials, *[c.holder_key for c in result.credentials]]
    assert_hidden(secrets, caplog=logs, objects=objects)


async def test_deferred_flow(
    logs: pytest.LogCaptureFixture, keys: KeyRecorder, clock: FakeClock
) -> None:
    fake = HostileIssuer(deferred_polls=2)
    client, _ = make_client(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    (tx,) = result.deferred
    secrets = fake_secrets(fake) | keys.secrets() | {"transaction id": tx.transaction_id}
    creds = await client.poll_deferred(result)
    assert_hidden(secrets, caplog=logs, objects=[result, tx, tx.session, *creds])


class PendingJson:
    """Wraps a saved flow's JSON so the scanner can look at it like at any other object."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


async def test_code_flow(
    logs: pytest.LogCaptureFixture, keys: KeyRecorder, clock: FakeClock
) -> None:
    fake = HostileIssuer(require_dpop_nonce_as=True)
    client, _ = make_client(fake, clock)
    offer = parse_credential_offer_json(fake.offer(pre_authorized=False))
    url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI, client_id="wallet")
    callback = fake.approve(url)
    code = dict(parse_qsl(urlsplit(callback).query))["code"]
    saved = pending.to_json()
    held = json.loads(saved)
    restored = IssuanceFlow.from_json(saved, clock=clock)
    result = await client.claim(restored, callback)
    secrets = fake_secrets(fake) | keys.secrets()
    del secrets["pre-authorized code"]
    secrets |= {"PKCE verifier": held["code_verifier"], "state": held["oauth_state"], "code": code}
    objects = [pending, restored, result, result.session, *result.credentials, offer]
    assert_hidden(secrets, caplog=logs, objects=objects)
    # The saved flow holds the verifier, state and DPoP key on purpose (documented): the
    # scanner finds them there, so it would find them anywhere else.
    for name, secret in {
        "PKCE verifier": held["code_verifier"],
        "state": held["oauth_state"],
        "DPoP key": str(held["dpop_key"]["d"]),
    }.items():
        with pytest.raises(AssertionError):
            assert_hidden({name: secret}, caplog=logs, objects=[PendingJson(pending.to_json())])


async def test_demo_issuer_flows(
    logs: pytest.LogCaptureFixture, keys: KeyRecorder, clock: FakeClock
) -> None:
    """The real issuer in memory: its logs (and the wallet's) hold no secret either."""
    issuer_url = "https://issuer.example"
    demo = build_demo_issuer(issuer_url, clock=clock)
    client = Oid4vciClient(
        InMemoryTransport(routes={issuer_url: demo.handle}), client_id="wallet", clock=clock
    )
    offer = await client.parse_offer(demo.offer_links["pre_auth_tx_code"])
    assert offer.pre_authorized_code is not None
    pre_auth = offer.pre_authorized_code.pre_authorized_code
    with pytest.raises(TokenError) as wrong:
        await client.accept_offer(offer, tx_code="000000")
    result = await client.accept_offer(offer, tx_code=demo.tx_code)
    with pytest.raises(TokenError) as replay:
        await client.accept_offer(offer, tx_code=demo.tx_code)
    assert result.session is not None
    secrets = keys.secrets() | {
        "pre-authorized code": pre_auth,
        "tx_code": demo.tx_code,
        "access token": result.session.access_token,
    }
    assert_hidden(
        secrets,
        caplog=logs,
        objects=[offer, result, result.session, *result.credentials],
        errors=[wrong.value, replay.value],
    )


# --- failures ------------------------------------------------------------------------------


async def test_failures_before_the_token(
    logs: pytest.LogCaptureFixture, keys: KeyRecorder, clock: FakeClock
) -> None:
    fake = HostileIssuer(tx_code={"length": 6, "input_mode": "numeric"}, expected_tx_code=TX_CODE)
    client, _ = make_client(fake, clock)
    offer = parse_credential_offer_json(fake.offer())
    errors: list[BaseException] = []
    wrong_codes = {"wrong tx_code": "314159", "text tx_code": "abcdef", "long tx_code": "1234567"}
    for tx in wrong_codes.values():
        with pytest.raises((TokenError, UsageError)) as info:
            await client.accept_offer(offer, tx_code=tx)
        errors.append(info.value)
    assert fake.count("/token") == 1  # only the well-formed wrong code was sent
    # an offer by reference whose URL carries a secret, to an unreachable host
    link = "openid-credential-offer://?credential_offer_uri=" + "https%3A%2F%2Fgone.example%2Fo"
    with pytest.raises(ConnectError) as gone:
        await client.parse_offer(link + "%3Fcode%3Dofferuri-secret")
    errors.append(gone.value)
    secrets = wrong_codes | {
        "pre-authorized code": PRE_AUTH_CODE,
        "offer URI query": "offeruri-secret",
    }
    assert_hidden(secrets | keys.secrets(), caplog=logs, objects=[offer], errors=errors)


@pytest.mark.parametrize(
    "mode", ["wrong_cnf", "bad_signature", "kb_jwt", "none_alg", "iss_mismatch", "garbage"]
)
async def test_credential_verification_failure(
    mode: str, logs: pytest.LogCaptureFixture, keys: KeyRecorder, clock: FakeClock
) -> None:
    fake = HostileIssuer(credential_mode=mode, tx_code={"length": 6}, expected_tx_code=TX_CODE)
    client, _ = make_client(fake, clock)
    with pytest.raises(CredentialVerificationError) as info:
        await client.accept_offer(parse_credential_offer_json(fake.offer()), tx_code=TX_CODE)
    secrets = fake_secrets(fake) | keys.secrets() | {"tx_code": TX_CODE}
    assert any(k.startswith("access token") for k in secrets)
    assert_hidden(secrets, caplog=logs, errors=[info.value])


async def test_protocol_failures_after_the_token(
    logs: pytest.LogCaptureFixture, keys: KeyRecorder, clock: FakeClock
) -> None:
    errors: list[BaseException] = []
    secrets: dict[str, str] = {}

    served: list[str] = []

    async def forever_nonce(request: HttpRequest) -> HttpResponse | None:
        if request.url.endswith("/credential"):
            nonce = f"dpop-nonce-{len(served):04d}"
            served.append(nonce)
            return json_response(
                401, {}, {"DPoP-Nonce": nonce, "WWW-Authenticate": 'DPoP error="use_dpop_nonce"'}
            )
        return None

    fake = HostileIssuer(override=forever_nonce)
    client, _ = make_client(fake, clock)
    with pytest.raises(DpopError) as loop:
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    errors.append(loop.value)
    assert len(served) == 2
    secrets |= fake_secrets(fake) | {f"served DPoP nonce {n}": n for n in served}

    fake2 = HostileIssuer(deferred_polls=10**6)
    client2, _ = make_client(fake2, clock)
    result = await client2.accept_offer(parse_credential_offer_json(fake2.offer()))
    with pytest.raises(CredentialRequestError) as pending:
        await client2.poll_deferred(result, max_wait=10)
    errors.append(pending.value)
    secrets |= {f"2/{k}": v for k, v in fake_secrets(fake2).items()}

    fake3 = HostileIssuer()
    fake3.inject["/credential"] = [
        error(400, "invalid_credential_request", c_nonce="cnonce-secret")
    ]
    client3, _ = make_client(fake3, clock)
    with pytest.raises(CredentialRequestError) as bad:
        await client3.accept_offer(parse_credential_offer_json(fake3.offer()))
    errors.append(bad.value)
    secrets |= {f"3/{k}": v for k, v in fake_secrets(fake3).items()}
    secrets["c_nonce in error body"] = "cnonce-secret"
    assert_hidden(secrets | keys.secrets(), caplog=logs, objects=[result], errors=errors)


async def test_code_flow_failures(
    logs: pytest.LogCaptureFixture, keys: KeyRecorder, clock: FakeClock
) -> None:
    fake = HostileIssuer()
    client, _ = make_client(fake, clock)
    offer = parse_credential_offer_json(fake.offer(pre_authorized=False))
    url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI, client_id="wallet")
    callback = fake.approve(url)
    code = dict(parse_qsl(urlsplit(callback).query))["code"]
    errors: list[BaseException] = []
    saved = pending.to_json()
    held = json.loads(saved)
    state = held["oauth_state"]
    forged = callback.replace(state, "forged-state-value")
    for bad in (
        forged,
        callback + "&code=second-code-value",
        f"{REDIRECT_URI}?state={state}&iss=https%3A%2F%2Fevil.example&code={code}",
        f"{REDIRECT_URI}?state={state}&iss={fake.issuer}",
    ):
        flow = IssuanceFlow.from_json(saved, clock=clock)
        with pytest.raises(CallbackError) as info:
            await client.claim(flow, bad)
        assert flow.state is FlowState.FAILED  # a bad callback ends the flow (fail closed)
        errors.append(info.value)
    result = await client.claim(pending, callback)
    with pytest.raises(TokenError) as replay:  # the code is single use
        await client.claim(IssuanceFlow.from_json(saved, clock=clock), callback)
    errors.append(replay.value)
    secrets = fake_secrets(fake) | keys.secrets()
    del secrets["pre-authorized code"]
    secrets |= {
        "PKCE verifier": held["code_verifier"],
        "state": state,
        "code": code,
        "second code": "second-code-value",
    }
    assert_hidden(secrets, caplog=logs, objects=[pending, result], errors=errors)


# --- an issuer that quotes the request in its error answers -------------------------------


@pytest.mark.parametrize("endpoint", ["/token", "/credential"])
async def test_an_issuer_quoting_the_request_gets_no_secret_back(
    endpoint: str, logs: pytest.LogCaptureFixture, keys: KeyRecorder, clock: FakeClock
) -> None:
    """An ``error_description`` that echoes the request (its form body: the pre-authorized
    code and tx_code; its headers: the access token) reaches neither the exception's text nor
    the DEBUG exchange log: what the wallet sent is scrubbed out of what comes back."""

    async def echo(request: HttpRequest) -> HttpResponse | None:
        if not request.url.endswith(endpoint):
            return None
        quoted = f"{request.body.decode()} {dict(request.headers.multi_items())}"
        return error(400, "invalid_request", error_description=f"bad request: {quoted}")

    fake = HostileIssuer(tx_code={"length": 6}, expected_tx_code=TX_CODE, override=echo)
    client, _ = make_client(fake, clock)
    expected = TokenError if endpoint == "/token" else CredentialRequestError
    with pytest.raises(expected) as refused:
        await client.accept_offer(parse_credential_offer_json(fake.offer()), tx_code=TX_CODE)
    description = refused.value.error_description or ""
    assert description.startswith("bad request: ") and "***" in description
    secrets = fake_secrets(fake) | {"tx_code": TX_CODE}
    assert_hidden(secrets | keys.secrets(), caplog=logs, errors=[refused.value])


async def test_a_challenge_or_a_success_body_quoting_the_request_is_scrubbed(
    logs: pytest.LogCaptureFixture, keys: KeyRecorder, clock: FakeClock
) -> None:
    """The DEBUG exchange log scrubs what was sent out of every answer, not only out of error
    bodies: a 200 token response echoing the form (pre-authorized code, tx_code) and a 401
    whose ``WWW-Authenticate`` challenge quotes the ``Authorization`` header (RFC 6750 §3
    lets ``error_description`` say anything)."""
    fake = HostileIssuer(tx_code={"length": 6}, expected_tx_code=TX_CODE)

    async def echo(request: HttpRequest) -> HttpResponse | None:
        if request.url.endswith("/token"):
            answer = await fake._token(request)
            body = json.loads(answer.body)
            body["debug_echo"] = request.body.decode()
            return json_response(200, body)
        if request.url.endswith("/credential"):
            quoted = request.headers.get("Authorization")
            challenge = f'Bearer error="invalid_token", error_description="{quoted} unknown"'
            return HttpResponse(status=401, headers={"WWW-Authenticate": challenge})
        return None

    fake.override = echo
    client, _ = make_client(fake, clock)
    with pytest.raises(CredentialRequestError) as refused:
        await client.accept_offer(parse_credential_offer_json(fake.offer()), tx_code=TX_CODE)
    assert refused.value.error == "invalid_token"
    logged = "\n".join(log_texts(logs))
    assert "debug_echo" in logged and "WWW-Authenticate" in logged  # the answers were logged
    secrets = fake_secrets(fake) | {"tx_code": TX_CODE}
    assert_hidden(secrets | keys.secrets(), caplog=logs, errors=[refused.value])


async def test_the_low_level_calls_scrub_what_the_issuer_quotes(
    logs: pytest.LogCaptureFixture,
) -> None:
    """``request_token`` / ``request_credential`` read the answer inside the request's
    context as a flow does: the error names the request and quotes none of its secrets."""
    from oid4vci.wallet.lowlevel import request_credential, request_token
    from oid4vci.wallet.steps import pre_authorized_grant

    access_token = "at-quoted-back-1234"

    async def echo(request: HttpRequest) -> HttpResponse:
        quoted = f"{request.body.decode()} auth={request.headers.get('Authorization')}"
        return error(400, "invalid_request", error_description=f"bad request: {quoted}")

    transport = InMemoryTransport(routes={"https://issuer.example": echo})
    with pytest.raises(TokenError) as token_refused:
        await request_token(
            transport,
            "https://issuer.example/token",
            pre_authorized_grant(PRE_AUTH_CODE, tx_code=TX_CODE),
        )
    with pytest.raises(CredentialRequestError) as credential_refused:
        await request_credential(
            transport,
            "https://issuer.example/credential",
            {"credential_configuration_id": "x"},
            access_token=access_token,
        )
    for refused, line in (
        (token_refused.value, "POST https://issuer.example/token"),
        (credential_refused.value, "POST https://issuer.example/credential"),
    ):
        assert refused.request_line == line
        assert "bad request: " in str(refused) and "***" in str(refused)
    secrets = {"pre-authorized code": PRE_AUTH_CODE, "tx_code": TX_CODE, "token": access_token}
    assert_hidden(secrets, caplog=logs, errors=[token_refused.value, credential_refused.value])
