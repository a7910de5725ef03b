"""The ``status`` of wallet and key attestations at the issuer (OID4VCI 1.0 Appendix D, E;
draft-ietf-oauth-status-list-14): the real wallet with a :class:`LocalAttestationProvider` that
puts Token Status List references into what it mints, a wallet provider whose lists are served
by the library's own status list issuer code (in memory and over aiohttp on 127.0.0.1), and the
issuer fetching, verifying and caching them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import attrs
import pytest

from oid4vci.attestation import (
    CLIENT_ATTESTATION_HEADER,
    CLIENT_ATTESTATION_POP_HEADER,
    AttestationError,
    create_client_attestation_pop,
    encode_x5c,
)
from oid4vci.dpop import build_dpop_jwt
from oid4vci.errors import CredentialRequestError, TokenError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import build_demo_issuer
from oid4vci.issuer.attestation_status import verify_attestation_status
from oid4vci.issuer.config import AttestationSettings
from oid4vci.issuer.demo import DemoIssuer
from oid4vci.issuer.status_list import (
    StatusName,
    allocate_status_entries,
    set_credential_status,
)
from oid4vci.models import PRE_AUTHORIZED_CODE_GRANT
from oid4vci.pkce import code_challenge, generate_code_verifier
from oid4vci.status import (
    StatusList,
    StatusListTokenCache,
    StatusReference,
    create_status_list_token,
)
from oid4vci.transports.aiohttp import AiohttpTransport, serve
from oid4vci.wallet import FlowState, Oid4vciClient, WalletPolicy
from tests.attestation_support import (
    ISSUER,
    REDIRECT_URI,
    AttestedIssuer,
    Recorder,
    attested_issuer,
    make_provider,
    provider_pki,
)
from tests.conftest import FakeClock
from tests.x509_support import Pki

PROVIDER = "https://wallet-provider.example"


def provider_lists(clock: FakeClock, pki: Pki, *, url: str = PROVIDER, **chain: Any) -> DemoIssuer:
    """The wallet provider's status list service: the demo issuer's status lists, signed by the
    provider's attester key with its ``x5c`` chain (leaf, intermediate)."""
    return build_demo_issuer(
        url,
        clock=clock,
        signer=pki.signer,
        credential_signer_chain=chain.get("chain", [pki.leaf, pki.intermediate]),
        trust_anchors=[pki.root],
    )


async def entry(lists: DemoIssuer, status: StatusName = "valid") -> StatusReference:
    """A fresh entry of the provider's list, set to ``status``."""
    (reference,) = await allocate_status_entries(
        lists.config,
        subject="",
        configuration_id=lists.configuration_id,
        count=1,
        lifetime=3600,
    )
    if status != "valid":
        await set_credential_status(reference, lists.config, status)
    return reference


@attrs.define
class World:
    clock: FakeClock
    pki: Pki
    lists: DemoIssuer
    fetches: Recorder
    issuer: AttestedIssuer

    def wallet(self, **provider: Any) -> tuple[Recorder, Oid4vciClient]:
        recorder = Recorder({ISSUER: self.issuer.handle})
        client = Oid4vciClient(
            recorder,
            clock=self.clock,
            policy=WalletPolicy(
                attestation_provider=make_provider(self.pki, self.clock, **provider)
            ),
        )
        return recorder, client


def world(
    clock: FakeClock, *, lists_pki: Pki | None = None, front: Any = None, **settings: Any
) -> World:
    """An attested issuer whose status lists come from the provider through a recorder."""
    pki = provider_pki()
    lists = provider_lists(clock, lists_pki or pki)
    fetches = Recorder({PROVIDER: front(lists) if front is not None else lists.issuer.handle})
    values: dict[str, Any] = {
        "status_transport": fetches,
        "status_cache": StatusListTokenCache(clock=clock),
    }
    values.update(settings)
    issuer = attested_issuer(clock, pki, status=values)
    return World(clock=clock, pki=pki, lists=lists, fetches=fetches, issuer=issuer)


async def test_valid_statuses_pass_and_one_list_is_fetched_once_per_ttl(clock: FakeClock) -> None:
    w = world(clock)
    valid = await entry(w.lists)
    _, client = w.wallet(client_status=valid, key_status=valid)
    result = await client.accept_offer(w.issuer.links["pre_auth"], count=2)
    assert result.state is FlowState.DONE and len(result.credentials) == 2
    # the wallet attestation and the key attestation share the list: one fetch for both
    assert len(w.fetches.requests) == 1
    (fetch,) = w.fetches.requests
    assert fetch.url == valid.uri
    assert fetch.headers.get("Accept") == "application/statuslist+jwt"
    _, again = w.wallet(client_status=valid, key_status=valid)
    await again.accept_offer(w.issuer.links["pre_auth"])
    assert len(w.fetches.requests) == 1  # cached: the second issuance made no fetch
    clock.advance(3601)  # past the list's ttl (StatusListSettings.ttl = 3600)
    _, later = w.wallet(client_status=valid, key_status=valid)
    await later.accept_offer(w.issuer.links["pre_auth"])
    assert len(w.fetches.requests) == 2


@pytest.mark.parametrize(("status", "words"), [("invalid", "revoked"), ("suspended", "suspended")])
async def test_wallet_attestation_not_valid_is_invalid_client(
    clock: FakeClock, status: StatusName, words: str
) -> None:
    w = world(clock)
    recorder, client = w.wallet(client_status=await entry(w.lists, status))
    with pytest.raises(TokenError) as caught:
        await client.accept_offer(w.issuer.links["pre_auth"])
    assert (caught.value.error, caught.value.status) == ("invalid_client", 400)
    assert f"wallet attestation is {words}" in (caught.value.error_description or "")
    assert recorder.to("/credential") == []


async def par_request(w: World, reference: StatusReference | None) -> HttpResponse:
    provider = make_provider(w.pki, w.clock, client_status=reference)
    attestation = await provider.client_attestation(authorization_server=ISSUER)
    pop = await create_client_attestation_pop(
        attestation.instance_key, audience=ISSUER, client_id=provider.client_id, clock=w.clock
    )
    params = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": REDIRECT_URI,
        "code_challenge": code_challenge(generate_code_verifier()),
        "code_challenge_method": "S256",
        "authorization_details": (
            '[{"type":"openid_credential","credential_configuration_id":"'
            + w.issuer.configuration_id
            + '"}]'
        ),
    }
    headers = {
        CLIENT_ATTESTATION_HEADER: attestation.attestation,
        CLIENT_ATTESTATION_POP_HEADER: pop,
    }
    return await w.issuer.handle(HttpRequest.form("POST", ISSUER + "/par", params, headers=headers))


async def test_par_refuses_a_revoked_wallet_attestation(clock: FakeClock) -> None:
    w = world(clock)
    valid, invalid = await entry(w.lists), await entry(w.lists, "invalid")
    assert (await par_request(w, valid)).status == 201
    revoked = await par_request(w, invalid)
    assert revoked.status == 400, revoked.body
    assert revoked.json_body()["error"] == "invalid_client"
    assert "revoked" in revoked.json_body()["error_description"]


async def test_revocation_takes_effect_after_the_ttl(clock: FakeClock) -> None:
    w = world(clock)
    reference = await entry(w.lists)
    assert (await par_request(w, reference)).status == 201
    await set_credential_status(reference, w.lists.config, "invalid")
    assert (await par_request(w, reference)).status == 201  # the cached list is still fresh
    clock.advance(3601)
    assert (await par_request(w, reference)).status == 400


@pytest.mark.parametrize(("status", "words"), [("invalid", "revoked"), ("suspended", "suspended")])
async def test_key_attestation_not_valid_is_invalid_proof(
    clock: FakeClock, status: StatusName, words: str
) -> None:
    w = world(clock)
    _, client = w.wallet(key_status=await entry(w.lists, status))
    with pytest.raises(CredentialRequestError) as caught:
        await client.accept_offer(w.issuer.links["pre_auth"])
    assert caught.value.error == "invalid_proof"
    assert f"key attestation is {words}" in (caught.value.error_description or "")


async def test_attestation_proof_type_with_revoked_key_attestation(clock: FakeClock) -> None:
    pki = provider_pki()
    lists = provider_lists(clock, pki)
    fetches = Recorder({PROVIDER: lists.issuer.handle})
    issuer = attested_issuer(
        clock,
        pki,
        proof_types=("attestation",),
        status={"status_transport": fetches, "status_cache": StatusListTokenCache(clock=clock)},
    )
    w = World(clock=clock, pki=pki, lists=lists, fetches=fetches, issuer=issuer)
    _, client = w.wallet(key_status=await entry(lists, "invalid"))
    with pytest.raises(CredentialRequestError) as caught:
        await client.accept_offer(issuer.links["pre_auth"])
    assert caught.value.error == "invalid_proof"
    assert "revoked" in (caught.value.error_description or "")


async def answer_404(request: HttpRequest) -> HttpResponse:
    return HttpResponse.json(404, {"error": "not_found"})


def tampered(lists: DemoIssuer) -> Any:
    async def handle(request: HttpRequest) -> HttpResponse:
        response = await lists.issuer.handle(request)
        head, payload, signature = response.body.decode().split(".")
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        return attrs.evolve(response, body=f"{head}.{payload}.{flipped}".encode())

    return handle


def anchor_in_x5c(pki: Pki, clock: FakeClock) -> Any:
    """A list signed by the right key whose ``x5c`` also carries the root (HAIP 1.0 §6.1
    forbids it; the library's own status list issuer refuses to build such a chain)."""

    async def handle(request: HttpRequest) -> HttpResponse:
        token = await create_status_list_token(
            pki.signer,
            StatusList(2, 1 << 10),
            uri=request.url,
            expires_in=86400,
            ttl=3600,
            x5c=encode_x5c([pki.leaf, pki.intermediate, pki.root]),
            clock=clock,
        )
        return HttpResponse(
            status=200,
            headers={"Content-Type": "application/statuslist+jwt"},
            body=token.encode(),
        )

    return handle


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("unreachable", "unreachable"),
        ("404", "unavailable"),
        ("bad signature", "signature"),
        ("foreign root", "unknown key"),
        ("anchor in x5c", "trust anchor"),
        ("no transport", "no status_transport"),
    ],
)
@pytest.mark.parametrize("policy", ["check", "require"])
async def test_an_unverifiable_status_fails_closed(
    clock: FakeClock, case: str, words: str, policy: str
) -> None:
    settings: dict[str, Any] = {"status": policy}
    front = None
    if case == "unreachable":
        settings["status_transport"] = Recorder({})
    elif case == "404":
        front = lambda _lists: answer_404  # noqa: E731
    elif case == "bad signature":
        front = tampered
    elif case == "no transport":
        settings["status_transport"] = None
    w = world(clock, front=front, **settings)
    if case == "foreign root":
        w.lists = provider_lists(clock, provider_pki())
        w.fetches.inner.mount(PROVIDER, w.lists.issuer.handle)
    elif case == "anchor in x5c":
        w.fetches.inner.mount(PROVIDER, anchor_in_x5c(w.pki, clock))
    _, client = w.wallet(client_status=await entry(w.lists))
    with pytest.raises(TokenError) as caught:
        await client.accept_offer(w.issuer.links["pre_auth"])
    assert (caught.value.error, caught.value.status) == ("invalid_client", 400)
    description = caught.value.error_description or ""
    assert "status unverifiable" in description and words in description


async def test_a_failed_fetch_is_not_cached(clock: FakeClock) -> None:
    down = {"down": True}

    def front(lists: DemoIssuer) -> Any:
        async def handle(request: HttpRequest) -> HttpResponse:
            return await (answer_404 if down["down"] else lists.issuer.handle)(request)

        return handle

    w = world(clock, front=front)
    reference = await entry(w.lists)
    assert (await par_request(w, reference)).status == 400
    down["down"] = False
    assert (await par_request(w, reference)).status == 201
    assert len(w.fetches.requests) == 2


async def test_policies_without_a_status(clock: FakeClock) -> None:
    w = world(clock, status="require")
    refused = await par_request(w, None)
    assert refused.status == 400 and "no status" in refused.json_body()["error_description"]
    checked = world(clock)
    assert (await par_request(checked, None)).status == 201
    assert checked.fetches.requests == []
    off = world(clock, status="off")
    assert (await par_request(off, await entry(off.lists, "invalid"))).status == 201
    assert off.fetches.requests == []


def claims(status: Any) -> Mapping[str, Any]:
    return {"sub": "x", "status": status}


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ({"other_mechanism": {}}, "names no status_list"),
        ({"status_list": {"idx": -1, "uri": PROVIDER + "/l"}}, "status claim"),
        ({"status_list": {"idx": 0, "uri": "http://wallet-provider.example/l"}}, "insecure"),
        ("revoked", "status claim"),
    ],
)
async def test_malformed_status_claims_are_refused(
    clock: FakeClock, status: Any, words: str
) -> None:
    settings = AttestationSettings(
        client_trust_anchors=[provider_pki().root], status_transport=Recorder({})
    )
    with pytest.raises(AttestationError) as caught:
        await verify_attestation_status(
            claims(status),
            settings,
            kind="wallet",
            trust_anchors=settings.client_trust_anchors,
            clock=clock,
        )
    assert caught.value.reason == "status unverifiable"
    assert words in str(caught.value)


async def test_index_past_the_end_is_refused(clock: FakeClock) -> None:
    w = world(clock)
    reference = await entry(w.lists)
    beyond = StatusReference(uri=reference.uri, idx=10**9)
    response = await par_request(w, beyond)
    assert response.status == 400
    assert "index out of range" in response.json_body()["error_description"]


async def test_settings_refuse_nonsense() -> None:
    from oid4vci.errors import UsageError

    with pytest.raises(UsageError):
        AttestationSettings(status="sometimes")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        AttestationSettings(status_transport="https://lists.example")  # type: ignore[arg-type]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_over_aiohttp(clock: FakeClock) -> None:
    """The provider's lists served by aiohttp on 127.0.0.1 and fetched by the issuer with the
    aiohttp transport: a valid wallet attestation passes, a revoked one is refused."""
    pki = provider_pki()
    holder: dict[str, DemoIssuer] = {}

    async def handle(request: Any) -> Any:
        return await holder["lists"].issuer.handle(request)

    async with (
        serve(handle) as served,
        AiohttpTransport(allow_insecure_loopback=True) as transport,
    ):
        lists = holder["lists"] = provider_lists(clock, pki, url=served.base_url)
        issuer = attested_issuer(
            clock,
            pki,
            status={
                "status_transport": transport,
                "status_cache": StatusListTokenCache(clock=clock),
                "status_allow_insecure_loopback": True,
            },
        )
        w = World(clock=clock, pki=pki, lists=lists, fetches=Recorder({}), issuer=issuer)
        valid, revoked = await entry(lists), await entry(lists, "invalid")
        assert valid.uri.startswith("http://127.0.0.1:")
        _, client = w.wallet(client_status=valid, key_status=valid)
        result = await client.accept_offer(issuer.links["pre_auth"])
        assert result.state is FlowState.DONE
        _, refused = w.wallet(client_status=revoked)
        with pytest.raises(TokenError) as caught:
            await refused.accept_offer(issuer.links["pre_auth"])
        assert (caught.value.error, caught.value.status) == ("invalid_client", 400)
        assert "revoked" in (caught.value.error_description or "")


async def test_unreachable_list_of_a_key_attestation_is_invalid_proof(clock: FakeClock) -> None:
    w = world(clock, front=lambda _lists: answer_404)
    _, client = w.wallet(key_status=StatusReference(uri=PROVIDER + "/status-lists/x", idx=3))
    with pytest.raises(CredentialRequestError) as caught:
        await client.accept_offer(w.issuer.links["pre_auth"])
    assert caught.value.error == "invalid_proof"
    assert "status unverifiable" in (caught.value.error_description or "")


@pytest.mark.parametrize("up", [True, False])
async def test_concurrent_requests_share_one_fetch(clock: FakeClock, up: bool) -> None:
    """Requests arriving while a list is being fetched wait for that fetch: one ``GET`` for
    all of them, and when it fails all of them are refused."""
    gate = anyio.Event()
    waiting: list[HttpRequest] = []

    def front(lists: DemoIssuer) -> Any:
        async def handle(request: HttpRequest) -> HttpResponse:
            waiting.append(request)
            await gate.wait()
            return await (lists.issuer.handle if up else answer_404)(request)

        return handle

    w = world(clock, front=front)
    reference = await entry(w.lists)
    answers: list[int] = []

    async def one() -> None:
        answers.append((await par_request(w, reference)).status)

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(one)
        await anyio.wait_all_tasks_blocked()  # one at the gate, the others on its fetch
        assert len(waiting) == 1
        gate.set()
    assert answers == [201 if up else 400] * 4
    assert len(w.fetches.requests) == 1


async def test_dpop_combined_mode_checks_the_status_too(clock: FakeClock) -> None:
    w = world(clock, dpop_combined=True)
    valid, revoked = await entry(w.lists), await entry(w.lists, "invalid")

    async def token(reference: StatusReference) -> HttpResponse:
        created = await w.issuer.issuer.create_pre_authorized_offer(
            configuration_ids=[w.issuer.configuration_id], subject="alice"
        )
        assert created.pre_authorized_code is not None
        provider = make_provider(w.pki, w.clock, client_status=reference)
        attestation = await provider.client_attestation(authorization_server=ISSUER)
        dpop = await build_dpop_jwt(
            attestation.instance_key, "POST", ISSUER + "/token", clock=clock
        )
        request = HttpRequest.form(
            "POST",
            ISSUER + "/token",
            {
                "grant_type": PRE_AUTHORIZED_CODE_GRANT,
                "pre-authorized_code": created.pre_authorized_code,
            },
            headers=[(CLIENT_ATTESTATION_HEADER, attestation.attestation), ("DPoP", dpop)],
        )
        return await w.issuer.handle(request)

    assert (await token(valid)).status == 200
    refused = await token(revoked)
    assert refused.status == 400
    assert "revoked" in refused.json_body()["error_description"]


async def test_a_redirected_list_is_followed(clock: FakeClock) -> None:
    """A 302 to where the list really is (a CDN, say) is followed, as by the wallet
    (draft-ietf-oauth-status-list-20 §8.1); the token's ``sub`` is still the original URI."""

    def front(lists: DemoIssuer) -> Any:
        async def handle(request: HttpRequest) -> HttpResponse:
            if "/moved/" not in request.url:
                moved = request.url.replace("/status-lists/", "/moved/")
                return HttpResponse(status=302, headers={"Location": moved}, body=b"")
            original = request.url.replace("/moved/", "/status-lists/")
            return await lists.issuer.handle(attrs.evolve(request, url=original))

        return handle

    w = world(clock, front=front)
    valid, revoked = await entry(w.lists), await entry(w.lists, "invalid")
    assert (await par_request(w, valid)).status == 201
    assert (await par_request(w, revoked)).status == 400
    assert [r.url.split("/")[3] for r in w.fetches.requests] == ["status-lists", "moved"]
