"""Status List fetches follow redirects (draft-ietf-oauth-status-list-20 §8.1: clients SHOULD):
the flow's ``STATUS_LIST_REDIRECTED`` row and :func:`oid4vci.wallet.status_lists.check_status`, at most
``MAX_STATUS_LIST_REDIRECTS`` hops, https only, never downgraded; in memory (whether the
transport refuses or returns a 3xx) and over a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

import pytest

from oid4vci.errors import RedirectRefused
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import Issuer
from oid4vci.issuer.demo import build_demo_issuer
from oid4vci.status import (
    MAX_STATUS_LIST_REDIRECTS,
    StatusListReason,
    StatusListVerificationError,
    status_list_redirect_target,
)
from oid4vci.transports.aiohttp import AiohttpTransport, serve
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.versions import SpecVersion
from oid4vci.wallet import Event, FlowState, IssuanceFlow, Oid4vciClient, WalletPolicy, run_flow
from oid4vci.wallet.states import TRANSITIONS
from oid4vci.wallet.status_lists import check_status
from tests.conftest import FakeClock
from tests.e2e.conftest import CLIENT_ID, ISSUER, E2eIssuer, build_e2e_issuer

CDN = "https://cdn.example"
_HOP = re.compile(r"^/hop/(\d+)(/status-lists/.*)$")

#: Where hop ``n`` of the list at path ``rest`` is sent (the redirect's Location).
Target = Callable[[int, str], str]


def relative(n: int, rest: str) -> str:
    return f"/hop/{n}{rest}"


def via_cdn(n: int, rest: str) -> str:
    return f"{CDN if n % 2 else ISSUER}/hop/{n}{rest}"


class Redirecting:
    """The e2e issuer, except that a status list is served only after ``hops`` redirects."""

    def __init__(self, e2e: E2eIssuer, hops: int, target: Target = relative, code: int = 302):
        self.e2e, self.hops, self.target, self.code = e2e, hops, target, code
        self.status_urls: list[str] = []

    async def handle(self, request: HttpRequest) -> HttpResponse:
        path = request.url.split("://", 1)[1].partition("/")[2]
        path = "/" + path
        hop = _HOP.match(path)
        if not path.startswith("/status-lists/") and hop is None:
            return await self.e2e.handle(request)
        self.status_urls.append(request.url)
        n, rest = (int(hop.group(1)), hop.group(2)) if hop else (0, path)
        if n < self.hops:
            return HttpResponse(status=self.code, headers={"Location": self.target(n + 1, rest)})
        return await self.e2e.handle(HttpRequest(method="GET", url=ISSUER + rest))

    def transport(self, *, raise_on_redirect: bool) -> InMemoryTransport:
        routes = {ISSUER: self.handle, CDN: self.handle}
        return InMemoryTransport(routes=routes, raise_on_redirect=raise_on_redirect)


def test_the_row_limit_is_the_hop_limit() -> None:
    rule = TRANSITIONS[(FlowState.FETCHING_STATUS_LISTS, Event.STATUS_LIST_REDIRECTED)]
    assert rule.target is FlowState.FETCHING_STATUS_LISTS
    assert rule.limit == MAX_STATUS_LIST_REDIRECTS == 3


@pytest.mark.parametrize("raise_on_redirect", [True, False], ids=["refused", "returned"])
@pytest.mark.parametrize(
    ("hops", "target", "code"),
    [(1, relative, 302), (3, via_cdn, 307), (2, relative, 308)],
    ids=["one relative", "three across origins", "two permanent"],
)
@pytest.mark.parametrize("mode", ["check", "require"])
async def test_redirects_are_followed(
    clock: FakeClock,
    raise_on_redirect: bool,
    hops: int,
    target: Target,
    code: int,
    mode: Literal["check", "require"],
) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    server = Redirecting(e2e, hops, target, code)
    transport = server.transport(raise_on_redirect=raise_on_redirect)
    client = Oid4vciClient(transport, client_id=CLIENT_ID, clock=clock)
    policy = WalletPolicy(status=mode)
    flow = IssuanceFlow.from_offer(e2e.offer_links["pre_auth"], clock=clock, policy=policy)
    result = await run_flow(flow, transport)
    (cred,) = result.credentials
    assert cred.status == "valid" and cred.status_reference is not None
    assert len(server.status_urls) == hops + 1
    assert server.status_urls[0] == cred.status_reference.uri  # the token's sub stays the URI
    assert [e for _, e in flow.history].count(Event.STATUS_LIST_REDIRECTED) == hops
    # check_status follows the same way, and sees a change
    await e2e.issuer.set_credential_status(cred.status_reference, "invalid")
    check = await check_status(cred.credential, transport, clock=clock)
    assert (check.status, check.uri) == ("invalid", cred.status_reference.uri)
    assert (await client.check_status(cred)).status == "invalid"


def _bad_target(kind: str) -> Target:
    def target(n: int, rest: str) -> str:
        if kind == "downgrade":
            return f"http://127.0.0.1:8080{rest}"
        if kind == "no location":
            return ""
        if kind == "other scheme":
            return f"ftp://issuer.example{rest}"
        return f"https://user:pw@issuer.example{rest}"  # user info

    return target


@pytest.mark.parametrize("raise_on_redirect", [True, False], ids=["refused", "returned"])
@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("too many", StatusListReason.UNAVAILABLE),
        ("loop", StatusListReason.UNAVAILABLE),
        ("no location", StatusListReason.UNAVAILABLE),
        ("downgrade", StatusListReason.INSECURE_URI),
        ("other scheme", StatusListReason.INSECURE_URI),
        ("user info", StatusListReason.INSECURE_URI),
    ],
)
async def test_redirects_not_followed(
    clock: FakeClock, raise_on_redirect: bool, case: str, reason: str
) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    if case == "too many":
        server = Redirecting(e2e, MAX_STATUS_LIST_REDIRECTS + 1, via_cdn)
    elif case == "loop":
        server = Redirecting(e2e, 100, lambda n, rest: rest)  # always back to the list itself
    else:
        server = Redirecting(e2e, 1, _bad_target(case))
    transport = server.transport(raise_on_redirect=raise_on_redirect)
    # "check": the list is unavailable, the credential's status unknown; nothing more is fetched
    policy = WalletPolicy(status="check", allow_insecure_loopback=True)
    flow = IssuanceFlow.from_offer(e2e.offer_links["pre_auth"], clock=clock, policy=policy)
    (cred,) = (await run_flow(flow, transport)).credentials
    assert cred.verified and cred.status is None and cred.status_reference is not None
    expected = MAX_STATUS_LIST_REDIRECTS + 1 if case in ("too many", "loop") else 1
    assert len(server.status_urls) == expected
    assert flow.state is FlowState.DONE
    # "require": the flow fails with the reason
    policy = WalletPolicy(status="require", allow_insecure_loopback=True)
    flow = IssuanceFlow.from_offer(e2e.offer_links["pre_auth"], clock=clock, policy=policy)
    with pytest.raises(StatusListVerificationError) as caught:
        await run_flow(flow, transport)
    assert caught.value.reason == reason and flow.state is FlowState.FAILED
    # check_status: the same refusal
    with pytest.raises(StatusListVerificationError) as caught:
        await check_status(cred.credential, transport, policy=policy, clock=clock)
    assert caught.value.reason == reason


def test_redirect_targets() -> None:
    here = "https://issuer.example/status-lists/1"
    assert status_list_redirect_target(here, "/b?x=1#f") == "https://issuer.example/b?x=1"
    assert status_list_redirect_target(here, "2") == "https://issuer.example/status-lists/2"
    assert status_list_redirect_target(here, "https://cdn.example/l") == "https://cdn.example/l"
    local = "http://127.0.0.1:9/status-lists/1"
    hop = "http://localhost:9/l"
    assert status_list_redirect_target(local, hop, allow_insecure_loopback=True) == hop
    for current, location, allowed in [
        (here, "http://127.0.0.1:9/l", True),  # no downgrade, even to loopback
        (local, hop, False),  # http only when allowed
        (local, "http://example.com/l", True),  # http only to loopback
        (here, None, False),
        (here, "  ", False),
    ]:
        with pytest.raises(StatusListVerificationError):
            status_list_redirect_target(current, location, allow_insecure_loopback=allowed)


async def test_a_redirect_outside_a_status_list_fetch_still_fails(clock: FakeClock) -> None:
    """Only the Status List fetch follows redirects: an API call answered by one fails."""

    async def redirecting_token(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/token"):
            return HttpResponse(status=302, headers={"Location": ISSUER + "/elsewhere"})
        return await e2e.handle(request)

    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    transport = InMemoryTransport(routes={ISSUER: redirecting_token})
    client = Oid4vciClient(transport, client_id=CLIENT_ID, clock=clock)
    with pytest.raises(RedirectRefused):
        await client.accept_offer(await client.parse_offer(e2e.offer_links["pre_auth"]))


# --- over a real server on 127.0.0.1 ------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_redirects_over_aiohttp_on_loopback() -> None:
    holder: list[Issuer] = []
    fetched: list[str] = []

    async def handle(request: HttpRequest) -> HttpResponse:
        path = "/" + request.url.split("://", 1)[1].partition("/")[2]
        if path.startswith("/status-lists/"):
            fetched.append(path)
            return HttpResponse(status=307, headers={"Location": "/moved" + path})
        if path.startswith("/moved/"):
            fetched.append(path)
            real = request.url.replace("/moved/", "/", 1)
            return await holder[0].handle(HttpRequest(method="GET", url=real))
        return await holder[0].handle(request)

    async with serve(handle) as served:
        demo = build_demo_issuer(served.base_url)
        holder.append(demo.issuer)
        policy = WalletPolicy(allow_insecure_loopback=True, status="require")
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            client = Oid4vciClient(transport, client_id=CLIENT_ID, policy=policy)
            offer = await client.parse_offer(demo.offer_links["pre_auth"])
            (cred,) = (await client.accept_offer(offer)).credentials
            assert cred.status == "valid" and cred.status_reference is not None
            assert [p.startswith("/moved/") for p in fetched] == [False, True]
            await demo.issuer.set_credential_status(cred.status_reference, "suspended")
            check = await check_status(cred.credential, transport, policy=policy)
            assert check.status == "suspended"
