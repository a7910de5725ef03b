"""The in-memory matrix: every published version × our wallet × every flow.

The issuer is :func:`oid4vci.issuer.build_demo_issuer` rebuilt with test knobs (PAR required,
deferring claims source, notification hook) and reached through ``InMemoryTransport``. Every
case checks that the credentials are verified (by the wallet and again here), that each ``cnf``
binds a distinct holder key, that the detected ``spec_version`` is the published one, the
number of credentials and the claims.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from oid4vci.errors import MetadataError
from oid4vci.sdjwt import sd
from oid4vci.versions import SpecVersion
from oid4vci.wallet import FlowState, IssuanceResult, WalletPolicy
from oid4vci.wallet.policy import ParMode
from tests.conftest import FakeClock
from tests.e2e.conftest import (
    CONFIGURATION_ID,
    ISSUER,
    REDIRECT_URI,
    VERSION_IDS,
    DeferringClaims,
    E2eIssuer,
    FakeSleep,
    browser_login,
    build_e2e_issuer,
    check_credentials,
    check_result,
    check_wire,
    make_client,
)

Flow = Callable[[SpecVersion, FakeClock], Awaitable[None]]


# --- pre-authorized code -------------------------------------------------------------------


async def _pre_auth(
    version: SpecVersion,
    clock: FakeClock,
    *,
    count: int = 1,
    tx_code: bool = False,
    e2e: E2eIssuer | None = None,
    clean_wire: bool = True,
) -> E2eIssuer:
    e2e = e2e if e2e is not None else build_e2e_issuer(version, clock)
    client = make_client(e2e, clock)
    offer = await client.parse_offer(e2e.offer_links["pre_auth_tx_code" if tx_code else "pre_auth"])
    assert offer.credential_issuer == ISSUER
    assert offer.credential_configuration_ids == (CONFIGURATION_ID,)
    grant = offer.pre_authorized_code
    assert grant is not None and offer.authorization_code is None
    assert (grant.tx_code is not None) is tx_code
    result = await client.accept_offer(offer, tx_code=e2e.tx_code if tx_code else None, count=count)
    check_result(
        result,
        e2e=e2e,
        version=version,
        count=count,
        clock=clock,
        flow="pre-authorized_code",
        clean_wire=clean_wire,
    )
    if clean_wire:
        assert len(e2e.calls("/token")) == 1
    return e2e


async def flow_pre_auth(version: SpecVersion, clock: FakeClock) -> None:
    await _pre_auth(version, clock)


async def flow_pre_auth_tx_code(version: SpecVersion, clock: FakeClock) -> None:
    await _pre_auth(version, clock, tx_code=True)


async def flow_batch_3(version: SpecVersion, clock: FakeClock) -> None:
    await _pre_auth(version, clock, count=3)


async def flow_batch_10(version: SpecVersion, clock: FakeClock) -> None:
    e2e = await _pre_auth(version, clock, count=10, tx_code=True)
    if version is not SpecVersion.DRAFT_13:
        # batch_credential_issuance (Draft 14+): all ten in one request with ten proofs
        assert len(e2e.calls("/credential")) == 1


async def flow_batch_over_limit(version: SpecVersion, clock: FakeClock) -> None:
    """11 credentials with ``batch_size`` 10: the wallet splits them into two requests."""
    e2e = await _pre_auth(version, clock, count=11)
    expected = 11 if version is SpecVersion.DRAFT_13 else 2
    assert [e.status for e in e2e.calls("/credential")] == [200] * expected


async def flow_pre_auth_dpop_nonce(version: SpecVersion, clock: FakeClock) -> None:
    e2e = build_e2e_issuer(version, clock, require_dpop_nonce=True)
    await _pre_auth(version, clock, count=2, e2e=e2e, clean_wire=False)
    # the token endpoint asked for a DPoP nonce once, the retry succeeded
    assert [e.status for e in e2e.calls("/token")] == [400, 200]


async def flow_pre_auth_bearer(version: SpecVersion, clock: FakeClock) -> None:
    e2e = build_e2e_issuer(version, clock, allow_bearer=True)
    client = make_client(e2e, clock, policy=WalletPolicy(dpop="off"))
    offer = await client.parse_offer(e2e.offer_links["pre_auth"])
    result = await client.accept_offer(offer, count=2)
    check_result(result, e2e=e2e, version=version, count=2, clock=clock, flow="pre-authorized_code")
    assert result.session is not None
    assert result.session.token_type == "Bearer" and not result.session.uses_dpop


# --- authorization code --------------------------------------------------------------------


async def _auth_code(
    version: SpecVersion,
    clock: FakeClock,
    *,
    par: ParMode,
    require_par: bool,
    expect_par: bool,
    count: int = 1,
    use_authorization_details: bool = True,
    require_dpop_nonce: bool = False,
) -> E2eIssuer:
    e2e = build_e2e_issuer(
        version, clock, require_par=require_par, require_dpop_nonce=require_dpop_nonce
    )
    policy = WalletPolicy(par=par, use_authorization_details=use_authorization_details)
    client = make_client(e2e, clock, policy=policy)
    offer = await client.parse_offer(e2e.offer_links["auth_code"])
    assert offer.pre_authorized_code is None
    assert offer.authorization_code is not None and offer.authorization_code.issuer_state
    url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
    assert pending.spec_version is version
    query = parse_qs(urlsplit(url).query)
    assert ("request_uri" in query) is expect_par
    if expect_par:
        assert set(query) == {"client_id", "request_uri"}
        assert [e.status for e in e2e.calls("/par")][-1] == 201
    else:
        assert query["code_challenge_method"] == ["S256"]
        assert query["issuer_state"] == [offer.authorization_code.issuer_state]
        assert e2e.calls("/par") == []
    callback = await browser_login(e2e, url)
    result = await client.claim(pending, callback, count=count)
    check_result(
        result,
        e2e=e2e,
        version=version,
        count=count,
        clock=clock,
        flow="authorization_code",
        clean_wire=not require_dpop_nonce,
    )
    return e2e


async def flow_auth_code_par(version: SpecVersion, clock: FakeClock) -> None:
    await _auth_code(version, clock, par="always", require_par=False, expect_par=True)


async def flow_auth_code_par_required(version: SpecVersion, clock: FakeClock) -> None:
    await _auth_code(version, clock, par="auto", require_par=True, expect_par=True, count=2)


async def flow_auth_code_dpop_nonce(version: SpecVersion, clock: FakeClock) -> None:
    e2e = await _auth_code(
        version, clock, par="always", require_par=False, expect_par=True, require_dpop_nonce=True
    )
    # PAR asked for a DPoP nonce once; the wallet kept it (through the pending state) for
    # the token request, which therefore succeeds at the first attempt
    assert [e.status for e in e2e.calls("/par")] == [400, 201]
    assert [e.status for e in e2e.calls("/token")] == [200]


async def flow_auth_code_no_par(version: SpecVersion, clock: FakeClock) -> None:
    await _auth_code(version, clock, par="never", require_par=False, expect_par=False)


async def flow_auth_code_scope(version: SpecVersion, clock: FakeClock) -> None:
    await _auth_code(
        version,
        clock,
        par="auto",
        require_par=False,
        expect_par=True,
        use_authorization_details=False,
    )


# --- deferred ------------------------------------------------------------------------------


async def flow_deferred(version: SpecVersion, clock: FakeClock) -> None:
    """The claims source defers twice, then has the claims: the third poll delivers."""
    source = DeferringClaims(interval=7)
    e2e = build_e2e_issuer(version, clock, claims_source=source)

    async def on_sleep(n: int) -> None:
        if n == 2:
            source.ready = True

    sleep = FakeSleep(clock, on_sleep)
    client = make_client(e2e, clock, sleep=sleep)
    offer = await client.parse_offer(e2e.offer_links["pre_auth"])
    started = await client.accept_offer(offer, count=2)
    assert started.state is FlowState.DEFERRED
    assert started.spec_version is version
    assert started.credentials == ()
    # Draft 13 sends one proof per request (one transaction each); later drafts batch them
    per_request = version is SpecVersion.DRAFT_13
    assert len(started.deferred) == (2 if per_request else 1)
    assert all(t.configuration_id == CONFIGURATION_ID for t in started.deferred)
    held = {k.public_jwk["x"] for t in started.deferred for k in t.holder_keys}
    assert len(held) == 2
    # 1.0 sends ``interval`` with the 202; the drafts do not (the wallet's default applies)
    default = WalletPolicy().deferred_default_interval
    expected_interval = 7 if version is SpecVersion.V1 else default
    assert all(t.interval == expected_interval for t in started.deferred)
    credentials = await client.poll_deferred(started)
    # wait the interval, poll, wait (now ready), poll (OID4VCI 1.0 §9.2: the interval is
    # waited before every poll); a second transaction is due by then and polled at once
    assert sleep.slept == [expected_interval, 7]
    polls = e2e.calls("/deferred")
    pending = 400 if version.is_draft else 202  # drafts: "not yet" is 400 issuance_pending
    assert [e.status for e in polls] == [pending, 200] + ([200] if per_request else [])
    assert source.calls == len(started.deferred) + len(polls)
    check_credentials(
        credentials, issuer_keys=e2e.issuer_keys, version=version, count=2, clock=clock
    )
    assert {c.holder_key.public_jwk["x"] for c in credentials if c.holder_key} == held
    check_wire(e2e, version, clean=not version.is_draft)
    ids = {c.notification_id for c in credentials}
    if version is SpecVersion.DRAFT_14 and not per_request:
        # Draft 14: notification_id "MUST NOT be present if credential is not present", and
        # two credentials travel as ``credentials``.
        assert ids == {None}
        return
    assert None not in ids
    for credential in credentials:
        await client.notify(credential, "credential_accepted")
    assert [n.event for n in e2e.notifications] == ["credential_accepted"] * len(ids)
    assert sum(n.credential_count for n in e2e.notifications) == 2


async def flow_deferred_completed_by_issuer(version: SpecVersion, clock: FakeClock) -> None:
    """The claims source never has the claims; the application pushes them with
    ``Issuer.complete_deferred`` while the wallet waits."""
    source = DeferringClaims(interval=3)
    e2e = build_e2e_issuer(version, clock, claims_source=source)
    transactions: list[str] = []
    claims: dict[str, Any] = {"given_name": sd("Bob"), "family_name": "Builder", "level": sd(3)}

    async def on_sleep(n: int) -> None:
        if n == 1:
            await e2e.issuer.complete_deferred(transactions[0], claims)

    sleep = FakeSleep(clock, on_sleep)
    client = make_client(e2e, clock, sleep=sleep)
    offer = await client.parse_offer(e2e.offer_links["pre_auth_tx_code"])
    started = await client.accept_offer(offer, tx_code=e2e.tx_code)
    assert started.state is FlowState.DEFERRED and started.spec_version is version
    (transaction,) = started.deferred
    transactions.append(transaction.transaction_id)
    credentials = await client.poll_deferred(transaction)
    # the interval (1.0: the issuer's; the drafts send none: the wallet's default) is waited
    # before the first poll, which delivers
    first = 3 if version is SpecVersion.V1 else WalletPolicy().deferred_default_interval
    assert sleep.slept == [first]
    assert len(e2e.calls("/deferred")) == 1
    check_credentials(
        credentials,
        issuer_keys=e2e.issuer_keys,
        version=version,
        count=1,
        clock=clock,
        claims={"given_name": "Bob", "family_name": "Builder", "level": 3},
    )
    assert "birthdate" not in credentials[0].claims


async def flow_auth_code_deferred(version: SpecVersion, clock: FakeClock) -> None:
    """Authorization code flow whose credentials are deferred once."""
    source = DeferringClaims(interval=2)
    e2e = build_e2e_issuer(version, clock, claims_source=source)

    async def on_sleep(n: int) -> None:
        source.ready = True

    sleep = FakeSleep(clock, on_sleep)
    client = make_client(e2e, clock, sleep=sleep)
    offer = await client.parse_offer(e2e.offer_links["auth_code"])
    url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
    started = await client.claim(pending, await browser_login(e2e, url), count=2)
    assert started.state is FlowState.DEFERRED and started.spec_version is version
    assert started.flow == "authorization_code" and started.credentials == ()
    credentials = await client.poll_deferred(started)
    assert len(sleep.slept) == 1
    check_credentials(
        credentials, issuer_keys=e2e.issuer_keys, version=version, count=2, clock=clock
    )
    check_wire(e2e, version, clean=not version.is_draft)


# --- notification --------------------------------------------------------------------------


async def flow_notification(version: SpecVersion, clock: FakeClock) -> None:
    e2e = build_e2e_issuer(version, clock)
    client = make_client(e2e, clock)
    offer = await client.parse_offer(e2e.offer_links["pre_auth"])
    # Draft 14 sends notification_id only beside a single ``credential``: ask for one there
    count = 1 if version is SpecVersion.DRAFT_14 else 2
    result = await client.accept_offer(offer, count=count)
    check_result(
        result, e2e=e2e, version=version, count=count, clock=clock, flow="pre-authorized_code"
    )
    ids = result.notification_ids
    assert ids, "the issuer must hand out a notification_id"
    await client.notify(result, "credential_accepted")
    assert [e.status for e in e2e.calls("/notification")] == [204] * len(ids)
    assert {n.notification_id for n in e2e.notifications} == set(ids)
    assert all(n.event == "credential_accepted" for n in e2e.notifications)
    assert all(n.subject == "alice" for n in e2e.notifications)
    assert all(n.configuration_id == CONFIGURATION_ID for n in e2e.notifications)
    assert sum(n.credential_count for n in e2e.notifications) == count
    # repeating an event is idempotent (204, no second hook call); a new event is reported
    await client.notify(result, "credential_accepted")
    assert len(e2e.notifications) == len(ids)
    await client.notify(result, "credential_deleted", "removed by the user")
    assert [n.event for n in e2e.notifications[len(ids) :]] == ["credential_deleted"] * len(ids)
    assert e2e.notifications[-1].event_description == "removed by the user"
    assert all(e.status == 204 for e in e2e.calls("/notification"))
    assert len(e2e.calls("/notification")) == 3 * len(ids)


FLOWS: dict[str, Flow] = {
    "pre_auth": flow_pre_auth,
    "pre_auth_tx_code": flow_pre_auth_tx_code,
    "pre_auth_dpop_nonce": flow_pre_auth_dpop_nonce,
    "pre_auth_bearer": flow_pre_auth_bearer,
    "auth_code_par": flow_auth_code_par,
    "auth_code_par_required": flow_auth_code_par_required,
    "auth_code_dpop_nonce": flow_auth_code_dpop_nonce,
    "auth_code_no_par": flow_auth_code_no_par,
    "auth_code_scope": flow_auth_code_scope,
    "batch_3": flow_batch_3,
    "batch_10": flow_batch_10,
    "batch_11_split": flow_batch_over_limit,
    "deferred": flow_deferred,
    "deferred_completed_by_issuer": flow_deferred_completed_by_issuer,
    "auth_code_deferred": flow_auth_code_deferred,
    "notification": flow_notification,
}

#: Known library bugs: (version, flow) -> reason. Each case stays in the matrix as a strict xfail.
KNOWN_BUGS: dict[tuple[SpecVersion, str], str] = {}


def _cases() -> list[Any]:
    cases = []
    for version, vid in VERSION_IDS.items():
        for name in FLOWS:
            marks = []
            reason = KNOWN_BUGS.get((version, name))
            if reason is not None:
                marks.append(pytest.mark.xfail(strict=True, reason=reason))
            cases.append(pytest.param(version, name, id=f"{vid}-{name}", marks=marks))
    return cases


@pytest.mark.parametrize(("version", "flow"), _cases())
async def test_matrix(version: SpecVersion, flow: str, clock: FakeClock) -> None:
    await FLOWS[flow](version, clock)


async def test_wallet_refuses_front_channel_when_issuer_requires_par(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock, require_par=True)
    client = make_client(e2e, clock, policy=WalletPolicy(par="never"))
    offer = await client.parse_offer(e2e.offer_links["auth_code"])
    with pytest.raises(MetadataError):
        await client.authorize(offer, redirect_uri=REDIRECT_URI)
    assert e2e.calls("/par") == [] and e2e.calls("/authorize") == []


async def test_offer_links_are_reusable_in_memory(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    client = make_client(e2e, clock)
    first = await client.parse_offer(e2e.offer_links["pre_auth"])
    second = await client.parse_offer(e2e.offer_links["pre_auth"])
    assert first.pre_authorized_code is not None and second.pre_authorized_code is not None
    assert first.pre_authorized_code.pre_authorized_code != (
        second.pre_authorized_code.pre_authorized_code
    )
    for offer in (first, second):
        result = await client.accept_offer(offer)
        assert result.credentials[0].verified


@pytest.mark.parametrize(
    "version", [SpecVersion.V1, SpecVersion.DRAFT_13], ids=[VERSION_IDS[SpecVersion.V1], "d13"]
)
async def test_concurrent_wallets(version: SpecVersion, clock: FakeClock) -> None:
    """Eight flows at once (both grants) against one issuer that also requires DPoP nonces."""
    e2e = build_e2e_issuer(version, clock, require_dpop_nonce=True)
    client = make_client(e2e, clock)
    results: list[IssuanceResult] = []

    async def one(index: int) -> None:
        if index % 2:
            offer = await client.parse_offer(e2e.offer_links["pre_auth_tx_code"])
            results.append(await client.accept_offer(offer, tx_code=e2e.tx_code, count=3))
        else:
            offer = await client.parse_offer(e2e.offer_links["auth_code"])
            url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
            results.append(await client.claim(pending, await browser_login(e2e, url), count=3))

    async with anyio.create_task_group() as tg:
        for index in range(8):
            tg.start_soon(one, index)
    assert len(results) == 8
    for result in results:
        assert result.spec_version is version
    every = [cred for result in results for cred in result.credentials]
    check_credentials(every, issuer_keys=e2e.issuer_keys, version=version, count=24, clock=clock)
    assert (
        sorted(r.flow for r in results) == ["authorization_code"] * 4 + ["pre-authorized_code"] * 4
    )
