"""Token Status Lists at the wallet (draft-ietf-oauth-status-list-20 §8): the flow's
``FETCHING_STATUS_LISTS`` rows, ``WalletPolicy.status``, :func:`oid4vci.wallet.status_lists.check_status`,
and hostile Status List Tokens.

The issuer is the demo issuer (status lists on) in memory, and once on a real aiohttp server on
127.0.0.1; hostile lists are the issuer's true answer replaced by a transport in between, signed
with the issuer's real status list key unless the test is about the signature.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from oid4vci.errors import (
    ConnectError,
    CredentialVerificationError,
    ResponseTooLarge,
    StateError,
)
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import Issuer
from oid4vci.issuer.demo import build_demo_issuer
from oid4vci.issuer.status_list import status_list_key_id, status_list_signer
from oid4vci.jose import LocalSigner, Signer, create_jws
from oid4vci.status import (
    STATUS_LIST_JWT_MEDIA_TYPE,
    StatusList,
    StatusListReason,
    StatusListTokenCache,
    StatusListVerificationError,
    create_status_list_token,
    read_credential_status_reference,
)
from oid4vci.transports.aiohttp import AiohttpTransport, serve
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.versions import SpecVersion
from oid4vci.wallet import (
    FlowState,
    IssuanceFlow,
    Oid4vciClient,
    SendRequest,
    WalletPolicy,
    run_flow,
)
from oid4vci.wallet.status_lists import check_status
from tests.conftest import FakeClock
from tests.e2e.conftest import CLIENT_ID, ISSUER, E2eIssuer, build_e2e_issuer

Rewrite = Callable[[HttpRequest, HttpResponse], Awaitable[HttpResponse]]


class Tamper:
    """A transport to the in-memory issuer that lets ``rewrite`` replace status list answers
    and counts the status list requests."""

    def __init__(self, e2e: E2eIssuer, rewrite: Rewrite | None = None) -> None:
        self.inner = e2e.transport()
        self.rewrite = rewrite
        self.status_requests: list[HttpRequest] = []

    async def send(self, request: HttpRequest) -> HttpResponse:
        response = await self.inner.send(request)
        if "/status-lists/" in request.url:
            self.status_requests.append(request)
            if self.rewrite is not None:
                return await self.rewrite(request, response)
        return response


def client_for(
    transport: Any, clock: FakeClock, policy: WalletPolicy | None = None
) -> Oid4vciClient:
    return Oid4vciClient(transport, client_id=CLIENT_ID, clock=clock, policy=policy)


async def receive(e2e: E2eIssuer, client: Oid4vciClient, count: int = 1) -> Any:
    offer = await client.parse_offer(e2e.offer_links["pre_auth"])
    return await client.accept_offer(offer, count=count)


def token_response(
    token: str | bytes, media_type: str = STATUS_LIST_JWT_MEDIA_TYPE
) -> HttpResponse:
    body = token.encode() if isinstance(token, str) else token
    return HttpResponse(status=200, headers={"Content-Type": media_type}, body=body)


def issuer_signer(e2e: E2eIssuer) -> tuple[Signer, str]:
    config = e2e.issuer.config
    return status_list_signer(config), status_list_key_id(config)


# --- the flow reports each status ---------------------------------------------------------


async def test_valid_invalid_suspended_through_the_flow(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    transport = Tamper(e2e)
    client = client_for(transport, clock)
    result = await receive(e2e, client, count=2)
    first, second = result.credentials
    assert (first.status, second.status) == ("valid", "valid")
    assert first.status_reference == read_credential_status_reference(first.credential)
    assert first.status_reference is not None
    # one request per distinct status list URI
    assert len(transport.status_requests) == 1
    assert transport.status_requests[0].headers["Accept"] == STATUS_LIST_JWT_MEDIA_TYPE
    ref = first.status_reference
    for status in ("invalid", "suspended", "valid"):
        await e2e.issuer.set_credential_status((ref.uri, ref.idx), status)
        # a fresh wallet (no cache) checking the saved credential sees the change
        check = await check_status(first.credential, transport, policy=WalletPolicy(), clock=clock)
        assert (check.status, check.uri, check.idx) == (status, ref.uri, ref.idx)
    # the other credential was never touched
    assert (await client_for(transport, clock).check_status(second)).status == "valid"


async def test_a_revoked_credential_is_reported_by_the_flow(clock: FakeClock) -> None:
    """The issuer revokes between the credential answer and the status list fetch."""
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    flow = IssuanceFlow.from_offer(e2e.offer_links["pre_auth"], clock=clock)
    seen: list[str] = []
    while True:
        action = await flow.next_action()
        if not isinstance(action, SendRequest):
            break
        request = action.request
        if flow.state is FlowState.FETCHING_STATUS_LISTS:
            # what the wallet received: revoke it before the list is served
            (cred,) = flow._status_fetch.credentials  # type: ignore[union-attr]
            ref = cred.status_reference
            assert ref is not None and request.url == ref.uri
            await e2e.issuer.set_credential_status((ref.uri, ref.idx), "invalid")
            seen.append(ref.uri)
        flow.receive_response(await e2e.handle(request))
    (cred,) = flow.result.credentials
    assert seen and cred.status == "invalid" and cred.verified


async def test_the_cache_is_used_until_ttl(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    transport = Tamper(e2e)
    client = client_for(transport, clock)
    (cred,) = (await receive(e2e, client)).credentials
    assert len(transport.status_requests) == 1
    ref = cred.status_reference
    assert ref is not None
    await e2e.issuer.set_credential_status(ref, "invalid")
    # cached: the wallet still has the old list and asks nobody
    assert (await client.check_status(cred)).status == "valid"
    assert len(transport.status_requests) == 1
    ttl = client.status_cache.get(ref.uri).ttl  # type: ignore[union-attr]
    assert ttl is not None
    clock.advance(ttl + 1)
    assert (await client.check_status(cred)).status == "invalid"
    assert len(transport.status_requests) == 2


def test_the_cache_clamps_ttl_and_respects_exp(clock: FakeClock) -> None:
    cache = StatusListTokenCache(min_ttl=10, max_ttl=100, default_ttl=50, clock=clock)
    from oid4vci.status import StatusListToken

    def token(ttl: float | None, exp: float | None) -> StatusListToken:
        return StatusListToken(
            status_list=StatusList(1, 8), sub="u", iat=clock(), exp=exp, ttl=ttl,
            aggregation_uri=None, header={}, claims={},
        )  # fmt: skip

    cache.put("a", token(1, None))  # clamped up to 10
    cache.put("b", token(10**9, None))  # clamped down to 100
    cache.put("c", token(50, clock() + 5))  # exp first
    clock.advance(6)
    assert cache.get("a") is not None and cache.get("c") is None
    clock.advance(5)
    assert cache.get("a") is None and cache.get("b") is not None
    clock.advance(90)
    assert cache.get("b") is None


# --- WalletPolicy.status ------------------------------------------------------------------


async def test_policy_off_makes_no_request(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    transport = Tamper(e2e)
    (cred,) = (
        await receive(e2e, client_for(transport, clock, WalletPolicy(status="off")))
    ).credentials
    assert cred.verified and cred.status is None and cred.status_reference is None
    assert transport.status_requests == []


async def _unavailable(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    return HttpResponse.json(503, {"error": "temporarily_unavailable"})


async def _unreachable(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    raise ConnectError("connection refused")


@pytest.mark.parametrize("rewrite", [_unavailable, _unreachable], ids=["503", "no answer"])
async def test_check_reports_and_require_fails_when_the_list_cannot_be_fetched(
    clock: FakeClock, rewrite: Rewrite
) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    (cred,) = (await receive(e2e, client_for(Tamper(e2e, rewrite), clock))).credentials
    assert cred.verified and cred.status is None and cred.status_reference is not None
    client = client_for(Tamper(e2e, rewrite), clock, WalletPolicy(status="require"))
    with pytest.raises((StatusListVerificationError, ConnectError)) as caught:
        await receive(e2e, client)
    if isinstance(caught.value, StatusListVerificationError):
        assert caught.value.reason == StatusListReason.UNAVAILABLE
    # and standalone
    with pytest.raises((StatusListVerificationError, ConnectError)):
        await check_status(cred.credential, Tamper(e2e, rewrite), clock=clock)


async def test_an_oversized_answer_is_never_taken_for_unavailable(clock: FakeClock) -> None:
    """The transport's size cap is a refusal, not a list that could not be fetched."""

    async def too_large(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        raise ResponseTooLarge("response body exceeds 1048576 bytes")

    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    for mode in ("check", "require"):
        policy = WalletPolicy(status=mode)
        with pytest.raises(ResponseTooLarge):
            await receive(e2e, client_for(Tamper(e2e, too_large), clock, policy))


def test_policy_status_is_checked() -> None:
    with pytest.raises(ValueError, match="status must be"):
        WalletPolicy(status="sometimes")  # type: ignore[arg-type]


# --- hostile status lists -----------------------------------------------------------------


async def _signed(e2e: E2eIssuer, request: HttpRequest, **overrides: Any) -> HttpResponse:
    """A token for ``request.url`` signed with the issuer's status list key, with changes."""
    signer, kid = issuer_signer(e2e)
    clock = e2e.issuer.config.clock
    status_list = overrides.pop("status_list", StatusList(1, 64))
    token = await create_status_list_token(
        overrides.pop("signer", signer), status_list, uri=overrides.pop("uri", request.url),
        expires_in=overrides.pop("expires_in", 3600), ttl=300, kid=kid, clock=clock,
        issued_at=overrides.pop("issued_at", None),
    )  # fmt: skip
    return token_response(token, overrides.pop("media_type", STATUS_LIST_JWT_MEDIA_TYPE))


def _zip_bomb() -> str:
    return base64.urlsafe_b64encode(zlib.compress(bytes(64 << 20), 9)).decode().rstrip("=")


async def _raw_claims(e2e: E2eIssuer, request: HttpRequest, claims: dict[str, Any]) -> HttpResponse:
    signer, kid = issuer_signer(e2e)
    token = await create_jws(signer, claims, {"typ": "statuslist+jwt", "kid": kid})
    return token_response(token)


def _hostile() -> dict[
    str, tuple[Callable[[E2eIssuer, HttpRequest], Awaitable[HttpResponse]], str]
]:
    async def wrong_signature(e2e: E2eIssuer, request: HttpRequest) -> HttpResponse:
        return await _signed(e2e, request, signer=LocalSigner.generate("ES256", kid="x"))

    async def sub_mismatch(e2e: E2eIssuer, request: HttpRequest) -> HttpResponse:
        return await _signed(e2e, request, uri=request.url + "x")

    async def wrong_typ(e2e: E2eIssuer, request: HttpRequest) -> HttpResponse:
        signer, kid = issuer_signer(e2e)
        now = int(e2e.issuer.config.clock())
        claims = {
            "sub": request.url,
            "iat": now,
            "status_list": {"bits": 1, "lst": StatusList(1, 8).encode()},
        }
        return token_response(await create_jws(signer, claims, {"typ": "JWT", "kid": kid}))

    async def expired(e2e: E2eIssuer, request: HttpRequest) -> HttpResponse:
        now = int(e2e.issuer.config.clock())
        return await _signed(e2e, request, issued_at=now - 7200, expires_in=3600)

    async def huge_lst(e2e: E2eIssuer, request: HttpRequest) -> HttpResponse:
        now = int(e2e.issuer.config.clock())
        lst = base64.urlsafe_b64encode(bytes(3 << 20)).decode().rstrip("=")
        return await _raw_claims(
            e2e, request, {"sub": request.url, "iat": now, "status_list": {"bits": 1, "lst": lst}}
        )

    async def zip_bomb(e2e: E2eIssuer, request: HttpRequest) -> HttpResponse:
        now = int(e2e.issuer.config.clock())
        claims = {"sub": request.url, "iat": now, "status_list": {"bits": 8, "lst": _zip_bomb()}}
        return await _raw_claims(e2e, request, claims)

    async def short_list(e2e: E2eIssuer, request: HttpRequest) -> HttpResponse:
        return await _signed(e2e, request, status_list=StatusList(1, 8))

    async def wrong_media_type(e2e: E2eIssuer, request: HttpRequest) -> HttpResponse:
        return await _signed(e2e, request, media_type="application/json")

    async def not_a_jwt(e2e: E2eIssuer, request: HttpRequest) -> HttpResponse:
        return token_response(b"\xff\x00 not a token")

    return {
        "wrong signature": (wrong_signature, StatusListReason.SIGNATURE),
        "sub mismatch": (sub_mismatch, StatusListReason.SUB_MISMATCH),
        "wrong typ": (wrong_typ, StatusListReason.TYP),
        "expired": (expired, StatusListReason.EXPIRED),
        "huge lst": (huge_lst, StatusListReason.TOO_LARGE),
        "zip bomb": (zip_bomb, StatusListReason.TOO_LARGE),
        "index beyond the list": (short_list, StatusListReason.INDEX_OUT_OF_RANGE),
        "wrong media type": (wrong_media_type, StatusListReason.CONTENT_TYPE),
        "not a jwt": (not_a_jwt, StatusListReason.MALFORMED),
    }


HOSTILE = _hostile()


@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("mode", ["check", "require"])
async def test_hostile_status_lists_are_refused(clock: FakeClock, case: str, mode: str) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    make, reason = HOSTILE[case]

    async def rewrite(request: HttpRequest, response: HttpResponse) -> HttpResponse:
        return await make(e2e, request)

    policy = WalletPolicy(status=mode)  # type: ignore[arg-type]
    with pytest.raises(StatusListVerificationError) as caught:
        await receive(e2e, client_for(Tamper(e2e, rewrite), clock, policy))
    assert caught.value.reason == reason, caught.value
    assert isinstance(caught.value, CredentialVerificationError)


async def test_hostile_list_through_check_status(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    (cred,) = (await receive(e2e, client_for(e2e.transport(), clock))).credentials
    for case, (make, reason) in HOSTILE.items():

        async def rewrite(
            request: HttpRequest, response: HttpResponse, make: Any = make
        ) -> HttpResponse:
            answer: HttpResponse = await make(e2e, request)
            return answer

        with pytest.raises(StatusListVerificationError) as caught:
            await check_status(cred.credential, Tamper(e2e, rewrite), clock=clock)
        assert caught.value.reason == reason, case


async def test_an_http_status_uri_to_another_host_is_refused(clock: FakeClock) -> None:
    signer = LocalSigner.generate("ES256")
    cases = (
        ("http://status.example/lists/1", WalletPolicy(allow_insecure_loopback=True)),
        ("http://127.0.0.1:9/lists/1", WalletPolicy()),
        ("https://user@status.example/lists/1", WalletPolicy()),
    )
    for uri, policy in cases:
        claims = {"iss": ISSUER, "status": {"status_list": {"idx": 3, "uri": uri}}}
        credential = await create_jws(signer, claims, {"typ": "dc+sd-jwt"}) + "~"
        transport = Tamper(build_e2e_issuer(SpecVersion.V1, clock))
        with pytest.raises(StatusListVerificationError) as caught:
            await check_status(credential, transport, policy=policy, clock=clock)
        assert caught.value.reason == StatusListReason.INSECURE_URI, uri
        assert transport.status_requests == []
    # loopback http is fine when the policy allows it
    reference = read_credential_status_reference(
        await create_jws(
            signer,
            {"status": {"status_list": {"idx": 3, "uri": "http://127.0.0.1:9/l"}}},
            {"typ": "dc+sd-jwt"},
        ),
        allow_insecure_loopback=True,
    )
    assert reference is not None and reference.idx == 3


async def test_check_status_without_a_reference(clock: FakeClock) -> None:
    signer = LocalSigner.generate("ES256")
    plain = await create_jws(signer, {"iss": ISSUER, "vct": "x"}, {"typ": "dc+sd-jwt"})
    with pytest.raises(StatusListVerificationError) as caught:
        await check_status(plain + "~", InMemoryTransport(routes={}), clock=clock)
    assert caught.value.reason == StatusListReason.NO_REFERENCE


# --- saved flows and the table ------------------------------------------------------------


async def test_a_saved_flow_keeps_the_status(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    flow = IssuanceFlow.from_offer(e2e.offer_links["pre_auth"], clock=clock)
    result = await run_flow(flow, e2e.transport())
    (cred,) = result.credentials
    ref = cred.status_reference
    assert ref is not None
    await e2e.issuer.set_credential_status(ref, "suspended")
    resumed = IssuanceFlow.from_json(flow.to_json(), clock=clock)
    (again,) = resumed.result.credentials
    assert (again.status, again.status_reference) == ("valid", ref)
    assert FlowState.FETCHING_STATUS_LISTS in {state for state, _ in flow.history}


async def test_a_flow_cannot_be_saved_while_fetching_a_status_list(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    flow = IssuanceFlow.from_offer(e2e.offer_links["pre_auth"], clock=clock)
    action = await flow.next_action()
    while flow.state is not FlowState.FETCHING_STATUS_LISTS:
        flow.receive_response(await e2e.handle(action.request))  # type: ignore[union-attr]
        action = await flow.next_action()
    assert "/status-lists/" in action.request.url  # type: ignore[union-attr]
    with pytest.raises(StateError):
        flow.to_json()


# --- over a real server on 127.0.0.1 ------------------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_status_over_aiohttp_on_loopback() -> None:
    holder: list[Issuer] = []

    async def handle(request: HttpRequest) -> HttpResponse:
        return await holder[0].handle(request)

    async with serve(handle) as served:
        demo = build_demo_issuer(served.base_url)
        holder.append(demo.issuer)
        policy = WalletPolicy(allow_insecure_loopback=True)
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            client = Oid4vciClient(transport, client_id=CLIENT_ID, policy=policy)
            offer = await client.parse_offer(demo.offer_links["pre_auth"])
            (cred,) = (await client.accept_offer(offer)).credentials
            assert cred.status == "valid"
            ref = cred.status_reference
            assert ref is not None and ref.uri.startswith(served.base_url + "/status-lists/")
            for status in ("suspended", "valid", "invalid"):
                await demo.issuer.set_credential_status(ref, status)
                check = await check_status(cred.credential, transport, policy=policy)
                assert check.status == status


# --- x5c-signed Status List Tokens (HAIP 1.0 requires x5c on them) ---------------------------


async def test_check_status_with_an_x5c_chain(clock: FakeClock) -> None:
    from tests.x509_support import HOST, make_pki

    pki = make_pki()
    issuer, uri = f"https://{HOST}", f"https://{HOST}/lists/9"
    seen: list[str] = []
    status_list = StatusList(2, 64)
    status_list.set(5, 2)

    async def handle(request: HttpRequest) -> HttpResponse:
        seen.append(request.url)
        if request.url != uri:
            return HttpResponse.json(404, {"error": "not_found"})
        token = await create_status_list_token(
            pki.signer, status_list, uri=uri, expires_in=600, ttl=60, x5c=pki.x5c, clock=clock
        )
        return token_response(token)

    claims = {"iss": issuer, "status": {"status_list": {"idx": 5, "uri": uri}}}
    credential = await create_jws(pki.signer, claims, {"typ": "dc+sd-jwt", "x5c": pki.x5c}) + "~"
    transport = InMemoryTransport(routes={issuer: handle})
    trusted = WalletPolicy(trusted_x5c_roots=[pki.root])
    check = await check_status(credential, transport, policy=trusted, clock=clock)
    assert check.status == "suspended"
    assert seen == [uri]  # the chain decided: no JWT VC Issuer Metadata fetched
    # another root: the chain is refused, never a fallback to metadata
    other = WalletPolicy(trusted_x5c_roots=[make_pki().root])
    with pytest.raises(CredentialVerificationError) as caught:
        await check_status(credential, transport, policy=other, clock=clock)
    assert getattr(caught.value, "reason", None) == "x5c untrusted"
