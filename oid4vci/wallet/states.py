"""The wallet's issuance flow as an explicit state machine.

Rules (read these before changing anything below):

* A flow is one :class:`Flow` value. It is immutable; :meth:`Flow.advance` returns a new value.
* The only way to change state is an :class:`Event` that appears in :data:`TRANSITIONS` for the
  current state. Anything else raises :class:`~oid4vci.errors.StateError` — a step taken out of
  order is a bug (ours or the caller's), never something to paper over.
* ``CREDENTIALS_ISSUED`` and ``FAILED`` are terminal: nothing leaves them.
* ``FAIL`` is accepted from every non-terminal state.
* ``DEFERRED`` is left only by ``CREDENTIALS_RECEIVED`` (polling delivered everything) or
  ``FAIL``.
* The pre-authorized code flow skips ``AWAITING_AUTHORIZATION``: the offer already holds the
  grant, so ``METADATA_DISCOVERED`` goes straight to ``AUTHORIZED`` on ``TOKEN_RECEIVED``.

::

    OFFER_RESOLVED --METADATA_LOADED--> METADATA_DISCOVERED
    METADATA_DISCOVERED --AUTHORIZATION_REQUESTED--> AWAITING_AUTHORIZATION   (code flow)
    METADATA_DISCOVERED --TOKEN_RECEIVED--> AUTHORIZED                        (pre-authorized)
    AWAITING_AUTHORIZATION --TOKEN_RECEIVED--> AUTHORIZED
    AUTHORIZED --CREDENTIALS_RECEIVED--> CREDENTIALS_ISSUED
    AUTHORIZED --DEFERRAL_RECEIVED--> DEFERRED
    DEFERRED --CREDENTIALS_RECEIVED--> CREDENTIALS_ISSUED
    (any non-terminal) --FAIL--> FAILED
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs

from oid4vci.errors import StateError

__all__ = ["TERMINAL_STATES", "TRANSITIONS", "Event", "Flow", "FlowState", "next_state"]


class FlowState(enum.Enum):
    """Where an issuance flow stands."""

    OFFER_RESOLVED = "offer_resolved"
    METADATA_DISCOVERED = "metadata_discovered"
    AWAITING_AUTHORIZATION = "awaiting_authorization"
    AUTHORIZED = "authorized"
    CREDENTIALS_ISSUED = "credentials_issued"
    DEFERRED = "deferred"
    FAILED = "failed"


class Event(enum.Enum):
    """What happened to a flow."""

    METADATA_LOADED = "metadata_loaded"
    AUTHORIZATION_REQUESTED = "authorization_requested"
    TOKEN_RECEIVED = "token_received"
    CREDENTIALS_RECEIVED = "credentials_received"
    DEFERRAL_RECEIVED = "deferral_received"
    FAIL = "fail"


_S = FlowState
_E = Event

TERMINAL_STATES: Final = frozenset({_S.CREDENTIALS_ISSUED, _S.FAILED})

_TABLE: dict[tuple[FlowState, Event], FlowState] = {
    (_S.OFFER_RESOLVED, _E.METADATA_LOADED): _S.METADATA_DISCOVERED,
    (_S.METADATA_DISCOVERED, _E.AUTHORIZATION_REQUESTED): _S.AWAITING_AUTHORIZATION,
    (_S.METADATA_DISCOVERED, _E.TOKEN_RECEIVED): _S.AUTHORIZED,
    (_S.AWAITING_AUTHORIZATION, _E.TOKEN_RECEIVED): _S.AUTHORIZED,
    (_S.AUTHORIZED, _E.CREDENTIALS_RECEIVED): _S.CREDENTIALS_ISSUED,
    (_S.AUTHORIZED, _E.DEFERRAL_RECEIVED): _S.DEFERRED,
    (_S.DEFERRED, _E.CREDENTIALS_RECEIVED): _S.CREDENTIALS_ISSUED,
}
for _state in FlowState:
    if _state not in TERMINAL_STATES:
        _TABLE[(_state, _E.FAIL)] = _S.FAILED

TRANSITIONS: Final[Mapping[tuple[FlowState, Event], FlowState]] = MappingProxyType(_TABLE)
"""``(state, event) -> next state``; a pair that is not a key is not allowed."""


def next_state(state: FlowState, event: Event) -> FlowState:
    """The state after ``event`` in ``state``; :class:`StateError` when not in the table."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise StateError(f"{event.value} is not allowed in state {state.value}") from None


@attrs.frozen(kw_only=True)
class Flow:
    """An issuance flow's position: its current ``state`` and the states it went through."""

    state: FlowState = FlowState.OFFER_RESOLVED
    history: tuple[FlowState, ...] = ()

    def advance(self, event: Event) -> Flow:
        """A new :class:`Flow` after ``event`` (raises :class:`StateError` when not allowed)."""
        new = next_state(self.state, event)
        return Flow(state=new, history=(*self.history, self.state))

    def require(self, *states: FlowState) -> None:
        """Raise :class:`StateError` unless the flow is in one of ``states``."""
        if self.state not in states:
            raise StateError(f"this step is not allowed in state {self.state.value}")

    @property
    def is_terminal(self) -> bool:
        """True in ``CREDENTIALS_ISSUED`` and ``FAILED``."""
        return self.state in TERMINAL_STATES
