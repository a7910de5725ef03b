"""Replays: DPoP proofs, pre-authorized codes (also in parallel), c_nonce values."""

from __future__ import annotations

import anyio

from oid4vci.http import HttpResponse
from oid4vci.issuer import Issuer
from oid4vci.jose import LocalSigner
from tests.conftest import FakeClock
from tests.issuer.test_service import (
    ISSUER,
    PRE_AUTH_GRANT,
    Session,
    make_config,
    pre_authorized_session,
    send,
    transport_for,
)


async def test_same_dpop_proof_twice_at_the_credential_endpoint(clock: FakeClock) -> None:
    issuer = Issuer(make_config(clock))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock)
    url = ISSUER + "/credential"
    headers = await session.dpop_header("POST", url, ath=True)
    headers["Authorization"] = f"DPoP {session.token}"
    proof = await session.proof(LocalSigner.generate(), await session.nonce())
    body = {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
    first = await send(transport, "POST", url, json_body=body, headers=headers)
    assert first.status == 200, first.body
    second = await send(transport, "POST", url, json_body=body, headers=headers)
    assert second.status == 401
    assert 'error="invalid_dpop_proof"' in (second.headers.get("WWW-Authenticate") or "")


async def test_same_dpop_proof_twice_at_the_token_endpoint(clock: FakeClock) -> None:
    issuer = Issuer(make_config(clock))
    transport = transport_for(issuer)
    codes = []
    for _ in range(2):
        created = await issuer.create_pre_authorized_offer(
            configuration_ids=["identity"], subject="a"
        )
        codes.append(created.pre_authorized_code)
    session = Session(transport=transport, clock=clock)
    url = ISSUER + "/token"
    headers = await session.dpop_header("POST", url, ath=False)
    responses = [
        await send(transport, "POST", url, headers=headers,
                   form={"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": str(code)})
        for code in codes
    ]  # fmt: skip
    assert responses[0].status == 200
    assert responses[1].status == 400
    assert responses[1].json_body()["error"] == "invalid_dpop_proof"


async def test_same_pre_authorized_code_twice(clock: FakeClock) -> None:
    issuer = Issuer(make_config(clock))
    transport = transport_for(issuer)
    created = await issuer.create_pre_authorized_offer(configuration_ids=["identity"], subject="a")
    assert created.pre_authorized_code is not None
    first = await Session(transport=transport, clock=clock).redeem(created.pre_authorized_code)
    second = await Session(transport=transport, clock=clock).redeem(created.pre_authorized_code)
    assert first.status == 200
    assert (second.status, second.json_body()["error"]) == (400, "invalid_grant")


async def test_parallel_redemption_of_one_code(clock: FakeClock) -> None:
    issuer = Issuer(make_config(clock))
    transport = transport_for(issuer)
    created = await issuer.create_pre_authorized_offer(configuration_ids=["identity"], subject="a")
    code = created.pre_authorized_code
    assert code is not None
    results: list[HttpResponse] = []

    async def redeem() -> None:
        results.append(await Session(transport=transport, clock=clock).redeem(code))

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(redeem)
    statuses = sorted(r.status for r in results)
    assert statuses == [200] + [400] * 7
    assert all(r.json_body()["error"] == "invalid_grant" for r in results if r.status == 400)


async def test_same_c_nonce_twice(clock: FakeClock) -> None:
    issuer = Issuer(make_config(clock))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock)
    nonce = await session.nonce()
    for expected in (200, 400):
        proof = await session.proof(LocalSigner.generate(), nonce)
        response = await session.post(
            "/credential", {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
        )
        assert response.status == expected, response.body
    assert response.json_body()["error"] == "invalid_nonce"


async def test_parallel_use_of_one_c_nonce(clock: FakeClock) -> None:
    issuer = Issuer(make_config(clock))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock)
    nonce = await session.nonce()
    results: list[int] = []

    async def request() -> None:
        proof = await session.proof(LocalSigner.generate(), nonce)
        response = await session.post(
            "/credential", {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
        )
        results.append(response.status)

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(request)
    assert sorted(results) == [200, 400, 400, 400, 400]
