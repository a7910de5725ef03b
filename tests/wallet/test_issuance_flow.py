"""IssuanceFlow driven by hand: no Transport at all, the in-process Issuer answers every request.

Each test records ``flow.state`` after every action and checks that the flow moved only along
rows of the transition table (``oid4vci.wallet.states.TRANSITIONS``).
"""

from __future__ import annotations

import gc
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from oid4vci.errors import StateError, UsageError, WireFormatError
from oid4vci.http import HttpRequest, HttpResponse, Transport
from oid4vci.jose import decode_jws, jwk_thumbprint
from oid4vci.versions import SpecVersion
from oid4vci.wallet import (
    TRANSITIONS,
    Authorize,
    Done,
    Event,
    FlowState,
    IssuanceFlow,
    IssuanceResult,
    Oid4vciClient,
    SendRequest,
    Wait,
    WalletPolicy,
)
from tests.conftest import FakeClock
from tests.e2e.conftest import (
    CLIENT_ID,
    REDIRECT_URI,
    DeferringClaims,
    browser_login,
    build_e2e_issuer,
)

S = FlowState
E = Event
Handle = Callable[[HttpRequest], Awaitable[HttpResponse]]


def assert_on_table(flow: IssuanceFlow, seen: list[FlowState]) -> None:
    """The flow's history is a chain of table rows from START, ending in its state, and the
    states recorded after each action lie on that chain in order."""
    chain = [S.START]
    for state, event in flow.history:
        assert state is chain[-1], f"{event.value} fired in {state.value}, not {chain[-1].value}"
        assert (state, event) in TRANSITIONS
        chain.append(TRANSITIONS[(state, event)].target)
    assert chain[-1] is flow.state
    position = 0
    for state in seen:
        position = chain.index(state, position)


async def drive(
    flow: IssuanceFlow,
    handle: Handle,
    seen: list[FlowState],
    *,
    clock: FakeClock,
    login: Callable[[str], Awaitable[str]] | None = None,
    stop_at: type | None = None,
) -> Any:
    """A synchronous-looking loop over ``next_action``; returns the result, or the action of
    type ``stop_at`` when one comes."""
    while True:
        action = await flow.next_action()
        seen.append(flow.state)
        if stop_at is not None and isinstance(action, stop_at):
            return action
        if isinstance(action, SendRequest):
            flow.receive_response(await handle(action.request))
        elif isinstance(action, Authorize):
            assert login is not None
            flow.receive_callback(await login(action.url))
        elif isinstance(action, Wait):
            clock.advance(action.seconds)
        else:
            assert isinstance(action, Done)
            return action.result
        seen.append(flow.state)


def state_of(flow: IssuanceFlow) -> FlowState:
    """``flow.state`` read anew (a plain attribute read would be narrowed by mypy)."""
    return flow.state


def rows(flow: IssuanceFlow) -> set[tuple[FlowState, Event]]:
    return set(flow.history)


async def test_pre_authorized_with_tx_code_and_a_batch(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock, require_dpop_nonce=True)
    flow = IssuanceFlow.from_offer(
        e2e.offer_links["pre_auth_tx_code"], tx_code=e2e.tx_code, count=3, clock=clock
    )
    assert flow.state is S.RESOLVING_OFFER  # the demo issuer offers by reference
    seen: list[FlowState] = [flow.state]
    result = await drive(flow, e2e.handle, seen, clock=clock)
    assert isinstance(result, IssuanceResult)
    assert state_of(flow) is S.DONE and result.state is S.DONE
    assert result.flow == "pre-authorized_code"
    assert len(result.credentials) == 3 and all(c.verified for c in result.credentials)
    assert len({c.holder_jkt for c in result.credentials}) == 3
    assert_on_table(flow, seen)
    taken = rows(flow)
    # the DPoP nonce retry at the AS and at the issuer, the nonce endpoint, one batch request
    assert (S.REQUESTING_TOKEN, E.USE_DPOP_NONCE) in taken
    assert (S.REQUESTING_NONCE, E.NONCE_RECEIVED) in taken
    assert (S.FETCHING_ISSUER_KEYS, E.ISSUER_KEYS_RECEIVED) in taken
    assert [r for r in flow.history if r == (S.REQUESTING_CREDENTIAL, E.CREDENTIALS_RECEIVED)]
    assert len(e2e.calls("/credential")) == 1
    token = [r for r in e2e.wire if r.path == "/token"]
    assert [t.status for t in token] == [400, 200]


async def test_authorization_code_with_par_pkce_dpop_and_the_login_form(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock, require_par=True)
    sent: list[HttpRequest] = []

    async def handle(request: HttpRequest) -> HttpResponse:
        sent.append(request)
        return await e2e.handle(request)

    flow = IssuanceFlow.from_offer(
        e2e.offer_links["auth_code"], redirect_uri=REDIRECT_URI, client_id=CLIENT_ID, clock=clock
    )
    seen: list[FlowState] = [flow.state]
    action = await drive(flow, handle, seen, clock=clock, stop_at=Authorize)
    assert isinstance(action, Authorize) and flow.state is S.AWAITING_AUTHORIZATION
    (par,) = [r for r in sent if r.url.endswith("/par")]
    form = par.form_body()
    assert form["code_challenge_method"] == "S256" and form["response_type"] == "code"
    dpop_header = decode_jws(par.headers.get("DPoP") or "").header
    assert form["dpop_jkt"] == jwk_thumbprint(dpop_header["jwk"])
    assert "request_uri=" in action.url and "code_challenge" not in action.url
    assert "state=" not in repr(action)

    # the browser hop ends in "another process": save, drop the flow, resume from the JSON
    saved = flow.to_json()
    history = flow.history
    del flow
    gc.collect()
    resumed = IssuanceFlow.from_json(saved, policy=WalletPolicy(), clock=clock)
    assert resumed.state is S.AWAITING_AUTHORIZATION
    callback = await browser_login(e2e, action.url)
    resumed.receive_callback(callback)
    seen.append(resumed.state)
    result = await drive(resumed, handle, seen, clock=clock)
    assert result.flow == "authorization_code" and result.state is S.DONE
    assert len(result.credentials) == 1 and result.credentials[0].verified
    token = next(r for r in sent if r.url.endswith("/token")).form_body()
    assert token["grant_type"] == "authorization_code" and len(token["code_verifier"]) >= 43
    # one chain of table rows across the save: the resumed flow starts where the first stopped
    assert history[-1] == (S.PUSHING_AUTHORIZATION_REQUEST, E.AUTHORIZATION_REQUEST_PUSHED)
    assert resumed.history[: len(history)] == history
    assert resumed.history[len(history)] == (S.AWAITING_AUTHORIZATION, E.CALLBACK_RECEIVED)
    assert_on_table(resumed, seen)


async def test_deferred_issuance_saved_at_wait(clock: FakeClock) -> None:
    claims = DeferringClaims(interval=5)
    e2e = build_e2e_issuer(SpecVersion.V1, clock, claims_source=claims)
    flow = IssuanceFlow.from_offer(e2e.offer_links["pre_auth"], count=2, clock=clock)
    seen: list[FlowState] = [flow.state]
    wait = await drive(flow, e2e.handle, seen, clock=clock, stop_at=Wait)
    assert isinstance(wait, Wait) and wait.seconds == 5
    assert flow.state is S.WAITING_FOR_DEFERRED
    assert not flow.result.credentials and len(flow.result.deferred) == 1
    assert_on_table(flow, seen)

    saved = flow.to_json()
    del flow
    resumed = IssuanceFlow.from_json(saved, policy=WalletPolicy(), clock=clock)
    clock.advance(wait.seconds)
    # first poll: still pending, so another interval is waited
    seen = [resumed.state]
    second = await drive(resumed, e2e.handle, seen, clock=clock, stop_at=Wait)
    assert isinstance(second, Wait)
    assert (S.REQUESTING_DEFERRED_CREDENTIAL, E.ISSUANCE_PENDING) in rows(resumed)
    claims.ready = True
    clock.advance(second.seconds)
    result = await drive(resumed, e2e.handle, seen, clock=clock)
    assert result.state is S.DONE and not result.deferred
    assert len(result.credentials) == 2 and all(c.verified for c in result.credentials)
    assert len({c.holder_jkt for c in result.credentials}) == 2
    assert_on_table(resumed, seen)


async def test_polling_budget_stops_in_deferred_and_resumes(clock: FakeClock) -> None:
    claims = DeferringClaims(interval=5)
    e2e = build_e2e_issuer(SpecVersion.V1, clock, claims_source=claims)
    flow = IssuanceFlow.from_offer(e2e.offer_links["pre_auth"], deferred_max_wait=7, clock=clock)
    seen: list[FlowState] = [flow.state]
    result = await drive(flow, e2e.handle, seen, clock=clock)
    # waited 5, polled (pending), a second 5 would pass 7: stop with the transaction
    assert result.state is S.DEFERRED and len(result.deferred) == 1
    assert len(e2e.calls("/deferred")) == 1
    text = flow.to_json()
    claims.ready = True
    resumed = IssuanceFlow.from_json(text, clock=clock)
    resumed.resume_polling(max_wait=60)
    result = await drive(resumed, e2e.handle, seen, clock=clock)
    assert result.state is S.DONE and len(result.credentials) == 1
    with pytest.raises(StateError):
        resumed.resume_polling()


async def test_notification_from_a_done_flow(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    flow = IssuanceFlow.from_offer(e2e.offer_links["pre_auth"], clock=clock)
    seen: list[FlowState] = [flow.state]
    await drive(flow, e2e.handle, seen, clock=clock)
    flow.notify("credential_accepted")
    assert flow.state is S.NOTIFYING
    await drive(flow, e2e.handle, seen, clock=clock)
    assert state_of(flow) is S.DONE
    assert [n.event for n in e2e.notifications] == ["credential_accepted"]
    assert_on_table(flow, seen)
    with pytest.raises(UsageError):
        flow.notify("credential_liked")


async def test_misuse_raises_state_error_and_changes_nothing(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    flow = IssuanceFlow.from_offer(e2e.offer_links["pre_auth"], clock=clock)
    with pytest.raises(StateError):
        flow.receive_response(HttpResponse(status=200))
    with pytest.raises(StateError):
        flow.receive_callback("https://wallet.example.org/cb?code=x&state=y")
    with pytest.raises(StateError):
        flow.to_json()  # not a waiting state
    action = await flow.next_action()
    assert isinstance(action, SendRequest)
    with pytest.raises(StateError):
        await flow.next_action()  # the request is still in flight
    with pytest.raises(UsageError):
        flow.receive_response("not a response")  # type: ignore[arg-type]
    assert flow.state is S.RESOLVING_OFFER and not flow.history[1:]


async def test_a_failure_leaves_the_flow_failed(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    flow = IssuanceFlow.from_offer(e2e.offer_links["pre_auth"], clock=clock)
    seen: list[FlowState] = [flow.state]
    action = await flow.next_action()
    while flow.state is not S.REQUESTING_TOKEN:
        assert isinstance(action, SendRequest)
        flow.receive_response(await e2e.handle(action.request))
        action = await flow.next_action()
    # a Bearer token after a DPoP proof was sent: a downgrade (RFC 9449 §5), refused
    bearer = HttpResponse.json(200, {"access_token": "abc", "token_type": "Bearer"})
    with pytest.raises(WireFormatError, match="downgrade"):
        flow.receive_response(bearer)
    assert state_of(flow) is S.FAILED and flow.history[-1] == (S.REQUESTING_TOKEN, E.FAIL)
    assert_on_table(flow, seen)
    with pytest.raises(StateError):
        await flow.next_action()


async def test_a_send_only_transport_of_four_lines(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)

    class Recorder:  # a transport needs one method; no base class, no lifecycle
        def __init__(self, handle: Handle) -> None:
            self.handle, self.seen = handle, list[str]()

        async def send(self, request: HttpRequest) -> HttpResponse:
            self.seen.append(request.method)
            return await self.handle(request)

    transport = Recorder(e2e.handle)
    assert isinstance(transport, Transport)
    client = Oid4vciClient(transport, client_id=CLIENT_ID, clock=clock)
    result = await client.accept_offer(e2e.offer_links["pre_auth"], count=2)
    assert len(result.credentials) == 2 and all(c.verified for c in result.credentials)
    assert transport.seen.count("POST") >= 3 and "GET" in transport.seen


def test_saved_flow_documents_say_what_they_hold(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    flow = IssuanceFlow.from_offer(e2e.offer_links["pre_auth"], clock=clock)
    assert "IssuanceFlow(state='resolving_offer'" in repr(flow)
    with pytest.raises(UsageError):
        IssuanceFlow.from_json(json.dumps({"format": "oid4vci-pending-authorization/1"}))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"count": 0},
        {"count": True},
        {"tx_code": 1234},
        {"grant": "implicit"},
        {"grant": "authorization_code"},
        {"configuration_ids": "identity_credential"},
        {"deferred_max_wait": -1},
    ],
)
def test_from_offer_checks_its_arguments(kwargs: dict[str, Any], clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    with pytest.raises(UsageError):
        IssuanceFlow.from_offer(e2e.offer_links["pre_auth"], clock=clock, **kwargs)


def test_from_offer_needs_text_or_an_offer() -> None:
    with pytest.raises(UsageError):
        IssuanceFlow.from_offer(42)  # type: ignore[arg-type]
