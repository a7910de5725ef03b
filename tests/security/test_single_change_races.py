"""Races on one deferred transaction or one notification: each change happens once.

A deferred transaction is worked on by one poll or one completion at a time.
Two polls of a ready transaction used to run the claims source twice, mint twice and leave
Token Status List entries for a credential never delivered; a completion racing a poll wrote
back a transaction the poll had just delivered, so it was delivered a second time (OID4VCI 1.0
§9: the ``transaction_id`` is invalidated once the credential is obtained).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from oid4vci.errors import UsageError
from oid4vci.http import HttpResponse
from oid4vci.issuer import Issuer, StatusListSettings
from oid4vci.issuer.config import DeferIssuance
from oid4vci.issuer.deferred import complete_deferred, deny_deferred
from oid4vci.issuer.notification import Notification
from oid4vci.jose import LocalSigner
from oid4vci.sdjwt import sd
from tests.conftest import FakeClock
from tests.security.support import DEFERRED, NOTIFICATION, Env


class Deferring:
    """A claims source that defers until ``ready``, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.ready = False

    async def __call__(self, subject: str, configuration_id: str) -> dict[str, Any]:
        self.calls += 1
        if not self.ready:
            raise DeferIssuance(interval=1)
        return {"given_name": sd("Alice")}


async def _deferred(clock: FakeClock) -> tuple[Env, Deferring, str, LocalSigner, str]:
    claims = Deferring()
    env = Env(clock, yielding=True, claims_source=claims, status=StatusListSettings())
    key = LocalSigner.generate()
    token = await env.access_token(key)
    proof = await env.key_proof(LocalSigner.generate(), await env.c_nonce())
    started = await env.issue(token, key, [proof])
    assert started.status == 202, started.body
    return env, claims, token, key, started.json_body()["transaction_id"]


async def _poll(env: Env, token: str, key: LocalSigner, transaction_id: str) -> HttpResponse:
    return await env.credential(token, key, {"transaction_id": transaction_id}, url=DEFERRED)


async def test_two_polls_of_a_ready_transaction_mint_once(clock: FakeClock) -> None:
    env, claims, token, key, transaction_id = await _deferred(clock)
    claims.ready = True
    calls, status_writes = claims.calls, env.store.count("status_idx:")
    answers: list[HttpResponse] = []

    async def poll() -> None:
        answers.append(await _poll(env, token, key, transaction_id))

    async with anyio.create_task_group() as group:
        group.start_soon(poll)
        group.start_soon(poll)
    assert sorted(a.status for a in answers) == [200, 202]  # the other is told to wait
    assert claims.calls - calls == 1
    assert env.store.count("status_idx:") - status_writes == 1  # one entry, one credential
    assert (await _poll(env, token, key, transaction_id)).json_body()["error"] == (
        "invalid_transaction_id"
    )


async def test_a_completion_racing_a_delivery_cannot_deliver_twice(clock: FakeClock) -> None:
    env, _, token, key, transaction_id = await _deferred(clock)
    claims = {"given_name": sd("Alice")}
    await complete_deferred(transaction_id, env.config, claims)
    outcomes: list[Any] = []

    async def complete_again() -> None:
        try:
            await complete_deferred(transaction_id, env.config, claims)
        except (UsageError, KeyError) as exc:  # already completed, or already delivered
            outcomes.append(type(exc).__name__)

    async def poll() -> None:
        outcomes.append((await _poll(env, token, key, transaction_id)).status)

    async with anyio.create_task_group() as group:
        group.start_soon(complete_again)
        group.start_soon(poll)
    delivered = [o for o in outcomes if o == 200]
    later = await _poll(env, token, key, transaction_id)
    assert len(delivered) + (later.status == 200) == 1, (outcomes, later.body)
    if later.status != 200:
        assert later.json_body()["error"] == "invalid_transaction_id"


async def test_a_completed_transaction_is_not_completed_again(clock: FakeClock) -> None:
    env, _, token, key, transaction_id = await _deferred(clock)
    await complete_deferred(transaction_id, env.config, {"given_name": sd("Alice")})
    status_writes = env.store.count("status_idx:")
    with pytest.raises(UsageError, match="already completed"):
        await complete_deferred(transaction_id, env.config, {"given_name": "Bob"})
    assert env.store.count("status_idx:") == status_writes
    delivered = await _poll(env, token, key, transaction_id)
    assert delivered.status == 200, delivered.body


async def test_a_denied_transaction_is_not_completed(clock: FakeClock) -> None:
    env, _, token, key, transaction_id = await _deferred(clock)
    await deny_deferred(transaction_id, env.config)
    with pytest.raises(UsageError, match="denied"):
        await complete_deferred(transaction_id, env.config, {"given_name": "Bob"})
    refused = await _poll(env, token, key, transaction_id)
    assert refused.json_body()["error"] == "credential_request_denied"


async def test_two_identical_notifications_call_the_hook_once(clock: FakeClock) -> None:
    """OID4VCI 1.0 §11: a notification is idempotent; two sent at once used to both see the
    old event and both call ``on_notification``. A later different event is still news."""
    env = Env(clock, yielding=True)
    calls: list[tuple[str, str]] = []

    async def hook(notification: Notification) -> None:
        calls.append((notification.notification_id, notification.event))

    env.issuer = Issuer(env.config, on_notification=hook)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    proof = await env.key_proof(LocalSigner.generate(), await env.c_nonce())
    notification_id = (await env.issue(token, key, [proof])).json_body()["notification_id"]

    async def send(event: str) -> None:
        body = {"notification_id": notification_id, "event": event}
        answer = await env.credential(token, key, body, url=NOTIFICATION)
        assert answer.status == 204, answer.body

    async with anyio.create_task_group() as group:
        group.start_soon(send, "credential_accepted")
        group.start_soon(send, "credential_accepted")
    await send("credential_accepted")
    assert calls == [(notification_id, "credential_accepted")]
    await send("credential_deleted")
    await send("credential_accepted")
    assert [event for _, event in calls] == [
        "credential_accepted",
        "credential_deleted",
        "credential_accepted",
    ]
