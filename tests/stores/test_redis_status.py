"""Token Status Lists on a RedisStore: concurrent allocation never repeats an index, and a
status set through one issuer "process" is served by another (draft-ietf-oauth-status-list-20
§13.2: no double allocation)."""

from __future__ import annotations

import anyio
import attrs
import pytest

from oid4vci.http import HttpRequest
from oid4vci.issuer import Issuer, StatusListSettings, build_demo_issuer
from oid4vci.issuer.status_list import allocate_status_entries
from oid4vci.status import (
    INVALID,
    StatusReference,
    status_of,
    verify_status_list_token,
)
from oid4vci.stores.redis import RedisStore
from tests.redis_servers import RedisCluster, RedisServer
from tests.stores.conftest import LOADED_TIMEOUT, unique_prefix

ISSUER = "https://issuer.example"


@pytest.fixture
def anyio_backend() -> str:
    """The issuer runs on asyncio here (the contract suite covers trio)."""
    return "asyncio"


@pytest.mark.parametrize("kind", ["redis", "redis-cluster"])
async def test_two_issuers_allocate_concurrently_on_redis(
    kind: str, request: pytest.FixtureRequest
) -> None:
    server: RedisServer | RedisCluster = request.getfixturevalue(
        "redis_single" if kind == "redis" else "redis_three_masters"
    )
    async with RedisStore.from_url(
        server.url, prefix=unique_prefix(), timeout=LOADED_TIMEOUT
    ) as store:
        demo = build_demo_issuer(ISSUER, store=store)
        # 256 entries, half of them usable: the 200 mints fill lists and roll over.
        settings = StatusListSettings(size=256)
        one = Issuer(attrs.evolve(demo.config, status=settings))
        two = Issuer(one.config)
        found: list[StatusReference] = []

        async def mint(issuer: Issuer) -> None:
            found.extend(
                await allocate_status_entries(
                    issuer.config,
                    subject="alice",
                    configuration_id=demo.configuration_id,
                    count=1,
                    lifetime=3600,
                )
            )

        async with anyio.create_task_group() as tg:
            for n in range(200):
                tg.start_soon(mint, one if n % 2 else two)
        assert len({(r.uri, r.idx) for r in found}) == 200
        assert len({r.uri for r in found}) >= 2
        reference = found[0]
        assert await one.set_credential_status(reference, "invalid") == [reference]
        response = await two.handle(HttpRequest(method="GET", url=reference.uri))
        assert response.status == 200
        keys = two.jwt_vc_issuer_metadata()["jwks"]["keys"]
        token = verify_status_list_token(response.body.decode(), uri=reference.uri, keys=keys)
        assert status_of(token, reference.idx) == INVALID
