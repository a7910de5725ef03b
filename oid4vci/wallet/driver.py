"""The async driver: :func:`run_flow` runs an :class:`~oid4vci.wallet.flow.IssuanceFlow` over a
:class:`~oid4vci.http.Transport`.

It is a loop over the flow's actions and decides nothing: every step and retry is the flow's
(:mod:`oid4vci.wallet.states`). It sends each request, sleeps each :class:`Wait` through an
injectable ``sleep`` (``anyio.sleep``, so cancellation works), and hands the browser hop to
``authorize``. Each exchange is logged at DEBUG by :func:`oid4vci.tracing.send`, secrets
redacted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio

from oid4vci.errors import StateError
from oid4vci.http import Transport
from oid4vci.tracing import send

from .actions import Authorize, Done, SendRequest, Wait
from .flow import IssuanceFlow
from .results import IssuanceResult
from .states import FlowState

__all__ = ["AuthorizeHook", "Sleep", "run_flow", "run_until_authorize"]

Sleep = Callable[[float], Awaitable[None]]
"""``async sleep(seconds)``; ``anyio.sleep`` unless a test injects another."""

AuthorizeHook = Callable[[str], Awaitable[str]]
"""``async authorize(url) -> callback_url``: open ``url`` in a user agent and return the URL
the authorization server redirected it to (the wallet's ``redirect_uri`` with the answer)."""


async def _drive(
    flow: IssuanceFlow, transport: Transport, *, sleep: Sleep
) -> Authorize | IssuanceResult:
    """Run ``flow`` until it needs the browser hop (its :class:`Authorize`) or is done."""
    while True:
        action = await flow.next_action()
        if isinstance(action, SendRequest):
            try:
                response = await send(transport, action.request)
            except Exception as exc:
                flow.send_failed(exc)
                if flow.state is FlowState.FAILED:
                    raise
                continue  # the flow chose to go on (an unreachable Status List under "check")
            except BaseException:
                flow.send_failed()
                raise
            flow.receive_response(response)
        elif isinstance(action, Wait):
            await sleep(action.seconds)
        elif isinstance(action, Authorize):
            return action
        else:
            assert isinstance(action, Done)
            return action.result


async def run_flow(
    flow: IssuanceFlow,
    transport: Transport,
    *,
    authorize: AuthorizeHook | None = None,
    sleep: Sleep = anyio.sleep,
) -> IssuanceResult:
    """Run ``flow`` over ``transport`` until it is done; return its result.

    ``authorize`` opens the authorization URL (code flow) and returns the callback URL; without
    it a flow that needs the user's authorization raises :class:`StateError` (use
    :func:`run_until_authorize`, or drive the flow by hand). A flow whose deferred credentials
    are still pending when its polling budget is spent returns with them in
    ``result.deferred`` (``result.state`` is ``DEFERRED``).
    """
    while True:
        outcome = await _drive(flow, transport, sleep=sleep)
        if isinstance(outcome, IssuanceResult):
            return outcome
        if authorize is None:
            raise StateError("the flow needs the user's authorization: pass authorize= to run_flow")
        flow.receive_callback(await authorize(outcome.url))


async def run_until_authorize(
    flow: IssuanceFlow, transport: Transport, *, sleep: Sleep = anyio.sleep
) -> str:
    """Run a code-flow ``flow`` up to the browser hop and return the URL to open (the flow
    then waits in ``AWAITING_AUTHORIZATION``: save it, or give it the callback)."""
    outcome = await _drive(flow, transport, sleep=sleep)
    if isinstance(outcome, IssuanceResult):
        raise StateError("the flow finished without asking for authorization")
    return outcome.url
