"""The README recipe: ``Issuer`` in an aiohttp application (as gunicorn's aiohttp workers run it)
with a RedisStore opened by ``cleanup_ctx`` in each worker process."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from aiohttp import web

from oid4vci import CredentialConfigurationSpec, Issuer, IssuerConfig, LocalSigner, sd
from oid4vci.stores.redis import RedisStore
from oid4vci.transports.aiohttp import AiohttpTransport, handler_for_aiohttp
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from tests.redis_servers import RedisServer
from tests.stores.conftest import unique_prefix

ISSUER = web.AppKey("issuer", Issuer)


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp: asyncio only."""
    return "asyncio"


async def claims_for(subject: str, configuration_id: str) -> Mapping[str, Any]:
    """The recipe's claims source."""
    return {"given_name": sd("Ada"), "family_name": sd("Lovelace")}


def create_app(issuer_url: str, redis_url: str, private_jwk: dict[str, Any]) -> web.Application:
    """What ``gunicorn myissuer:create_app --worker-class aiohttp.GunicornWebWorker`` builds
    in every worker: one RedisStore per process, opened and closed with the application."""
    store = RedisStore.from_url(redis_url, prefix=unique_prefix())
    issuer = Issuer(
        IssuerConfig(
            credential_issuer=issuer_url,
            credential_signer=LocalSigner.from_jwk(private_jwk),  # the same key in every worker
            credential_configurations=[
                CredentialConfigurationSpec(id="employee_badge", vct=issuer_url + "/badge")
            ],
            claims_source=claims_for,
            store=store,
        )
    )

    async def redis_pool(app: web.Application) -> AsyncIterator[None]:
        async with store:
            yield

    app = web.Application()
    app.cleanup_ctx.append(redis_pool)
    app.router.add_route("*", "/{tail:.*}", handler_for_aiohttp(issuer.handle))
    app[ISSUER] = issuer
    return app


async def test_recipe_serves_flows_on_redis(redis_single: RedisServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    issuer_url = f"http://127.0.0.1:{port}"
    key = LocalSigner.generate("ES256", kid="k1").private_jwk()
    app = create_app(issuer_url, redis_single.url, key)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    transport = AiohttpTransport(allow_insecure_loopback=True)
    try:
        await web.TCPSite(runner, "127.0.0.1", port).start()
        issuer = app[ISSUER]
        offer = await issuer.create_pre_authorized_offer(
            configuration_ids=["employee_badge"], subject="ada"
        )
        wallet = Oid4vciClient(transport, policy=WalletPolicy(allow_insecure_loopback=True))
        result = await wallet.accept_offer(offer.offer_uri)
        assert [c.claims["given_name"] for c in result.credentials] == ["Ada"]
    finally:
        await transport.aclose()
        await runner.cleanup()
