"""The nonce endpoint."""

from __future__ import annotations

from oid4vci.issuer import Issuer
from oid4vci.issuer.access_token import is_live_dpop_nonce
from oid4vci.issuer.nonce import take_c_nonce
from tests.conftest import FakeClock
from tests.issuer.test_service import ISSUER, make_config, send, transport_for


async def test_nonce_endpoint(clock: FakeClock) -> None:
    config = make_config(clock)
    transport = transport_for(Issuer(config))
    first = await send(transport, "POST", ISSUER + "/nonce")
    second = await send(transport, "POST", ISSUER + "/nonce")
    assert first.status == 200
    assert first.media_type == "application/json"
    assert first.headers.get("Cache-Control") == "no-store"
    assert first.headers.get("DPoP-Nonce") is None
    body = first.json_body()
    assert list(body) == ["c_nonce"]
    assert body["c_nonce"] != second.json_body()["c_nonce"]
    assert len(body["c_nonce"]) >= 22
    # single use, and expires after c_nonce_ttl
    assert await take_c_nonce(body["c_nonce"], config)
    assert not await take_c_nonce(body["c_nonce"], config)
    clock.advance(config.c_nonce_ttl + 1)
    assert not await take_c_nonce(second.json_body()["c_nonce"], config)


async def test_nonce_needs_no_token_and_ignores_the_body(clock: FakeClock) -> None:
    transport = transport_for(Issuer(make_config(clock)))
    response = await send(
        transport, "POST", ISSUER + "/nonce", body=b"", headers={"Content-Length": "0"}
    )
    assert response.status == 200


async def test_nonce_post_only(clock: FakeClock) -> None:
    transport = transport_for(Issuer(make_config(clock)))
    response = await send(transport, "GET", ISSUER + "/nonce")
    assert response.status == 405
    assert response.headers.get("Allow") == "POST"


async def test_dpop_nonce_header_when_required(clock: FakeClock) -> None:
    config = make_config(clock, require_dpop_nonce=True)
    transport = transport_for(Issuer(config))
    response = await send(transport, "POST", ISSUER + "/nonce")
    assert response.status == 200
    dpop_nonce = response.headers.get("DPoP-Nonce")
    assert dpop_nonce is not None
    assert await is_live_dpop_nonce(dpop_nonce, config)
