"""The issuer on a RedisStore: whole flows, and 503 + ``Retry-After`` (never 500) when Redis fails."""

from __future__ import annotations

import time
from typing import Any

import pytest

from oid4vci.errors import ProtocolError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import build_demo_issuer
from oid4vci.stores.redis import RedisStore
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import Oid4vciClient
from tests.redis_servers import RedisCluster, RedisServer
from tests.stores.conftest import unique_prefix

ISSUER = "https://issuer.example"


@pytest.fixture
def anyio_backend() -> str:
    """The issuer and wallet run on asyncio here (the contract suite covers trio)."""
    return "asyncio"


def _client(handler: Any) -> Oid4vciClient:
    return Oid4vciClient(InMemoryTransport(routes={ISSUER: handler}), client_id="redis-test")


@pytest.mark.parametrize("kind", ["redis", "redis-cluster"])
async def test_pre_authorized_flows_on_redis(kind: str, request: pytest.FixtureRequest) -> None:
    server: RedisServer | RedisCluster = request.getfixturevalue(
        "redis_single" if kind == "redis" else "redis_three_masters"
    )
    async with RedisStore.from_url(server.url, prefix=unique_prefix()) as store:
        demo = build_demo_issuer(ISSUER, store=store)
        wallet = _client(demo.issuer.handle)
        result = await wallet.accept_offer(demo.offer_links["pre_auth"], count=2)
        assert len(result.credentials) == 2 and all(c.verified for c in result.credentials)
        result = await wallet.accept_offer(
            demo.offer_links["pre_auth_tx_code"], tx_code=demo.tx_code
        )
        assert len(result.credentials) == 1


async def test_a_code_redeemed_twice_fails_the_second_time(redis_single: RedisServer) -> None:
    async with RedisStore.from_url(redis_single.url, prefix=unique_prefix()) as store:
        demo = build_demo_issuer(ISSUER, store=store, allow_bearer=True)
        offer = await demo.issuer.create_pre_authorized_offer(
            configuration_ids=[demo.configuration_id], subject="alice"
        )
        code = offer.pre_authorized_code
        assert code is not None
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code"}
        token = HttpRequest.form("POST", ISSUER + "/token", {**form, "pre-authorized_code": code})
        # A second Issuer on the same store: another worker process in production.
        other = build_demo_issuer(
            ISSUER, store=store, signer=demo.config.credential_signer, allow_bearer=True
        )
        first = await demo.issuer.handle(token)
        second = await other.issuer.handle(token)
        statuses = sorted([first.status, second.status])
        assert statuses == [200, 400], (first.body, second.body)


def _is_503(response: HttpResponse) -> bool:
    return response.status == 503 and response.headers.get("Retry-After") is not None


async def test_redis_down_answers_503_with_retry_after(private_redis: RedisServer) -> None:
    async with RedisStore.from_url(private_redis.url, timeout=0.5) as store:
        demo = build_demo_issuer(ISSUER, store=store, allow_bearer=True)
        offer = await demo.issuer.create_pre_authorized_offer(
            configuration_ids=[demo.configuration_id], subject="alice"
        )
        assert offer.pre_authorized_code is not None
        private_redis.stop()
        grant = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
        requests = [
            HttpRequest.form(
                "POST",
                ISSUER + "/token",
                {"grant_type": grant, "pre-authorized_code": offer.pre_authorized_code},
            ),
            HttpRequest(method="GET", url=demo.offer_urls["pre_auth"]),
            HttpRequest.form(
                "POST",
                ISSUER + "/par",
                {
                    "response_type": "code",
                    "client_id": "wallet",
                    "redirect_uri": "https://wallet.example/cb",
                    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                    "code_challenge_method": "S256",
                    "scope": "identity_credential",
                },
            ),
            HttpRequest(
                method="POST",
                url=ISSUER + "/credential",
                headers={"Authorization": "Bearer some-token", "Content-Type": "application/json"},
                body=b'{"credential_configuration_id": "identity_credential"}',
            ),
        ]
        for req in requests:
            started = time.monotonic()
            response = await demo.issuer.handle(req)
            assert time.monotonic() - started < 1.5
            assert _is_503(response), (req.url, response.status, response.body[:200])
        # Stateless nonces: the nonce endpoint needs no store, so it answers while Redis is down.
        nonce = await demo.issuer.handle(HttpRequest(method="POST", url=ISSUER + "/nonce"))
        assert nonce.status == 200
        # The wallet sees a typed error carrying the status, not a crash.
        with pytest.raises(ProtocolError) as caught:
            await _client(demo.issuer.handle).accept_offer(demo.offer_links["pre_auth"])
        assert caught.value.status == 503
        # Redis back (empty: persistence is off): flows succeed again.
        private_redis.start()
        result = await _client(demo.issuer.handle).accept_offer(demo.offer_links["pre_auth"])
        assert len(result.credentials) == 1
