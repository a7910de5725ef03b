"""Property: whatever the other side answers, an IssuanceFlow moves only along rows of the
transition table and raises nothing but :class:`~oid4vci.errors.Oid4vciError` subclasses.

Each example drives a flow by hand against the real in-process issuer; a drawn script says,
request by request, whether the issuer's true answer is handed to the flow, or the true answer
with a member mutated, or an arbitrary hostile answer (status, ``DPoP-Nonce``,
``WWW-Authenticate``, body). The code flow's callback is drawn too (the true one or a forged
one). Mixing true answers in gets the flow deep (token, nonce, batch, deferred polling)
before it is attacked. ``OID4VCI_FUZZ=long`` runs many more examples.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from oid4vci.errors import Oid4vciError
from oid4vci.http import HttpResponse
from oid4vci.versions import SpecVersion
from oid4vci.wallet import (
    TRANSITIONS,
    Authorize,
    Done,
    FlowState,
    IssuanceFlow,
    SendRequest,
    Wait,
    WalletPolicy,
)
from tests.conftest import FakeClock
from tests.e2e.conftest import (
    CLIENT_ID,
    REDIRECT_URI,
    DeferringClaims,
    E2eIssuer,
    browser_login,
)
from tests.e2e.conftest import build_e2e_issuer as build
from tests.hostile_issuer.conftest import FUZZ_SETTINGS
from tests.hostile_issuer.test_fuzz_wallet import answers

#: The most actions one example takes (a flow that is still going then is fine: bounded).
MAX_ACTIONS = 60

TRUE = "true answer"
MUTATED = st.tuples(st.just("mutated"), st.integers(min_value=0, max_value=2**32))
STEP = st.one_of(st.just(TRUE), st.just(TRUE), MUTATED, answers())
CALLBACKS = st.sampled_from(
    [
        "true",
        "forged-state",
        "no-state",
        "error",
        "not a url \x00",
        "wrong-iss",
        "repeated-code",
    ]
)


def on_table(flow: IssuanceFlow) -> None:
    state = FlowState.START
    for row in flow.history:
        assert row[0] is state and row in TRANSITIONS
        state = TRANSITIONS[row].target
    assert state is flow.state


def forge(callback: str, how: str) -> str:
    if how == "forged-state":
        return callback.replace("state=", "state=forged")
    if how == "no-state":
        return callback.split("?")[0] + "?code=abc"
    if how == "error":
        return callback.replace("code=", "error=access_denied&x=")
    if how == "wrong-iss":
        return callback.replace("iss=", "iss=https%3A%2F%2Fevil.example&x=")
    if how == "repeated-code":
        return callback + "&code=second"
    return how


async def drive(flow: IssuanceFlow, e2e: E2eIssuer, script: list[Any], callback_how: str) -> None:
    clock: FakeClock = flow.clock  # type: ignore[assignment]
    steps = iter(script)
    for _ in range(MAX_ACTIONS):
        try:
            action = await flow.next_action()
        except Oid4vciError:
            assert flow.state is FlowState.FAILED
            return
        finally:
            on_table(flow)
        if isinstance(action, Done):
            return
        if isinstance(action, Wait):
            assert action.seconds > 0
            clock.advance(action.seconds)
            continue
        if isinstance(action, Authorize):
            try:
                true = await browser_login(e2e, action.url)
            except AssertionError:  # a mutated PAR answer: the issuer shows no login form
                true = REDIRECT_URI + "?error=invalid_request"
            callback = true if callback_how == "true" else forge(true, callback_how)
            try:
                flow.receive_callback(callback)
            except Oid4vciError:
                assert flow.state is FlowState.FAILED
                return
            continue
        assert isinstance(action, SendRequest)
        true_answer = await e2e.handle(action.request)
        step = next(steps, TRUE)
        if step == TRUE:
            answer = true_answer
        elif isinstance(step, HttpResponse):
            answer = step
        else:
            answer = _mutate(true_answer, int(step[1]))
        try:
            flow.receive_response(answer)
        except Oid4vciError:
            assert flow.state is FlowState.FAILED
            return
        finally:
            on_table(flow)


def _mutate(answer: HttpResponse, seed: int) -> HttpResponse:
    """The true answer with members replaced or deleted (a deterministic draw from ``seed``)."""
    try:
        body = json.loads(answer.body)
    except ValueError:
        return answer
    if not isinstance(body, dict):
        return answer
    doc = _seeded(body, seed)
    return HttpResponse(status=answer.status, headers=answer.headers, body=json.dumps(doc))


def _seeded(body: dict[str, Any], seed: int) -> Any:
    import random

    rng = random.Random(seed)
    doc: Any = json.loads(json.dumps(body))
    keys = list(doc)
    if not keys:
        return doc
    key = rng.choice(keys)
    choice = rng.randrange(6)
    if choice == 0:
        del doc[key]
    elif choice == 1:
        doc[key] = None
    elif choice == 2:
        doc[key] = rng.choice([0, -1, 10**30, "", "x" * 3000, [], {}, True])
    elif choice == 3:
        doc[key] = "https://evil.example/" + key
    elif choice == 4:
        doc = [doc]
    else:
        doc[key] = {"nested": doc.get(key)}
    return doc


@FUZZ_SETTINGS
@given(
    script=st.lists(STEP, max_size=14),
    version=st.sampled_from(list(SpecVersion)),
    count=st.integers(min_value=1, max_value=3),
    deferred=st.booleans(),
    dpop_nonce=st.booleans(),
)
async def test_pre_authorized_flow_stays_on_the_table(
    script: list[Any], version: SpecVersion, count: int, deferred: bool, dpop_nonce: bool
) -> None:
    clock = FakeClock()
    claims = DeferringClaims(interval=3) if deferred else None
    e2e = build(version, clock, claims_source=claims, require_dpop_nonce=dpop_nonce)
    flow = IssuanceFlow.from_offer(
        e2e.offer_links["pre_auth"],
        policy=WalletPolicy(deferred_max_wait=10),
        count=count,
        clock=clock,
    )
    if claims is not None:
        claims.ready = len(script) % 2 == 0
    await drive(flow, e2e, script, "true")


@FUZZ_SETTINGS
@given(
    script=st.lists(STEP, max_size=12),
    callback_how=CALLBACKS,
    require_par=st.booleans(),
)
async def test_authorization_code_flow_stays_on_the_table(
    script: list[Any], callback_how: str, require_par: bool
) -> None:
    clock = FakeClock()
    e2e = build(SpecVersion.V1, clock, require_par=require_par)
    flow = IssuanceFlow.from_offer(
        e2e.offer_links["auth_code"],
        redirect_uri=REDIRECT_URI,
        client_id=CLIENT_ID,
        clock=clock,
    )
    await drive(flow, e2e, script, callback_how)
