"""Deferred polling: the issuer's ``interval`` never makes the wallet spin, hang or crash.

The first ``interval`` comes with the credential response (it becomes the
:class:`~oid4vci.wallet.DeferredTransaction`'s); later ones with each pending answer.
"""

from __future__ import annotations

import anyio
import pytest

from oid4vci.errors import CredentialRequestError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.models import parse_credential_offer_json
from oid4vci.wallet import WalletPolicy
from oid4vci.wallet.preflight import polling_interval
from tests.conftest import FakeClock
from tests.hostile_issuer.conftest import HostileIssuer, json_response, make_client


def test_polling_interval() -> None:
    assert polling_interval(None, 5.0) == 5.0
    assert polling_interval(0, 5.0) == 5.0
    assert polling_interval(-3, 5.0) == 5.0
    assert polling_interval(2, 5.0) == 2.0
    assert polling_interval(10**400, 5.0) == 365 * 24 * 3600


@pytest.mark.parametrize("initial", [-5, 0, 10**400])
async def test_hostile_initial_interval_is_bounded(initial: int, clock: FakeClock) -> None:
    """A non-positive first interval falls back to the policy's; a huge one is capped (it
    used to overflow a float, and a negative one made ``waited`` shrink forever)."""

    async def answer(request: HttpRequest) -> HttpResponse | None:
        if request.url.endswith("/credential"):
            return json_response(202, {"transaction_id": "tx", "interval": initial})
        if request.url.endswith("/deferred"):
            return json_response(202, {"transaction_id": "tx"})
        return None

    fake = HostileIssuer(override=answer)
    client, sleep = make_client(fake, clock, deferred_max_wait=20.0)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    (transaction,) = result.deferred
    assert transaction.interval > 0
    with anyio.fail_after(10), pytest.raises(CredentialRequestError) as caught:
        await client.poll_deferred(result)
    assert caught.value.error == "issuance_pending"
    assert sleep.total <= 20.0
    assert all(s > 0 for s in sleep.calls)


def test_policy_refuses_a_non_positive_default_interval() -> None:
    with pytest.raises(ValueError):
        WalletPolicy(deferred_default_interval=0)


async def test_fractional_intervals_are_waited_rounded_up(clock: FakeClock) -> None:
    """OID4VCI 1.0 §8.3 allows any positive number: 2.5 s (first answer) and 0.2 s (a Draft 13
    ``issuance_pending`` error) are waited as 3 s and 1 s, not refused or replaced."""
    polls = 0

    async def answer(request: HttpRequest) -> HttpResponse | None:
        nonlocal polls
        if request.url.endswith("/credential"):
            return json_response(202, {"transaction_id": "tx", "interval": 2.5})
        if request.url.endswith("/deferred"):
            polls += 1
            if polls == 1:
                return json_response(400, {"error": "issuance_pending", "interval": 0.2})
            return json_response(202, {"transaction_id": "tx", "interval": 7.5})
        return None

    fake = HostileIssuer(override=answer)
    client, sleep = make_client(fake, clock, deferred_max_wait=20.0)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    (transaction,) = result.deferred
    assert transaction.interval == 3
    with anyio.fail_after(10), pytest.raises(CredentialRequestError):
        await client.poll_deferred(result)
    assert sleep.calls[:3] == [3.0, 1.0, 8.0]
