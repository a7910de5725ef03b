"""Scale-out on real processes: two issuer workers on one Redis, hundreds of wallets over HTTP.

Each worker is an ``oid4vci serve`` worker process (:mod:`oid4vci.cli.workers`) on its own
port, with the same issuer identifier, signing key and Redis; the wallets reach them through
a transport that picks the worker per request (as a load balancer would, keeping ``Host``), so
each wallet takes its token from one worker and its credential from the other. Then: a code
redeemed on both at once, a DPoP proof replayed on the other worker, a ``c_nonce`` used on both
(each succeeds exactly once), Redis killed in the middle of a run, and the memory Redis holds
after 10,000 abandoned offers and nonces.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import anyio
import attrs
import pytest

from oid4vci.cli.workers import WorkerProcess, WorkerSpec, start_workers, stop_workers
from oid4vci.dpop import build_dpop_jwt
from oid4vci.errors import Oid4vciError, ProtocolError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import Issuer, NonceKeys, build_demo_issuer
from oid4vci.jose import LocalSigner
from oid4vci.stores.redis import RedisStore
from oid4vci.transports.aiohttp import AiohttpTransport
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from oid4vci.wallet.steps import (
    build_credential_request,
    build_key_proof,
    build_nonce_request,
    build_token_request,
    pre_authorized_grant,
)
from tests.redis_servers import RedisServer, RedisUnavailable, redis_server, require_redis

pytestmark = pytest.mark.slow

#: Concurrent wallets of the main run (2 cores: about a minute with both workers).
WALLETS = int(os.environ.get("OID4VCI_SCALE_WALLETS", "500"))


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp: asyncio only."""
    return "asyncio"


@attrs.frozen
class Workers:
    """Two workers: the issuer identifier (worker 0's address) and both ports."""

    issuer: str
    ports: tuple[int, int]
    processes: tuple[WorkerProcess, WorkerProcess]
    redis: RedisServer


@pytest.fixture(scope="module")
def module_redis() -> Iterator[RedisServer]:
    """A Redis server of this module (its tests stop and restart it)."""
    try:
        with redis_server() as server:
            yield server
    except RedisUnavailable as exc:
        require_redis(str(exc))


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


@pytest.fixture(scope="module")
def workers(module_redis: RedisServer) -> Iterator[Workers]:
    """Two worker processes on two ports sharing the issuer URL, the key and Redis."""
    sockets = (_listener(), _listener())
    ports = (sockets[0].getsockname()[1], sockets[1].getsockname()[1])
    issuer = f"http://127.0.0.1:{ports[0]}"
    key = LocalSigner.generate("ES256", kid="scale-key").private_jwk()
    nonce_keys = NonceKeys.generate().to_text()  # every worker of a deployment shares them
    started: list[WorkerProcess] = []
    try:
        for index, sock in enumerate(sockets):
            spec = WorkerSpec(
                issuer_url=issuer,
                store_url=module_redis.url,
                signing_jwk=key,
                nonce_keys=nonce_keys,
                index=index,
            )
            started += start_workers([spec], sock)
            sock.close()
        yield Workers(issuer, ports, (started[0], started[1]), module_redis)
    finally:
        stop_workers(started)
        for sock in sockets:
            sock.close()


class RoutingTransport:
    """Sends each request to the worker ``route`` picks, keeping the issuer's ``Host``.

    Records ``(path, port, status)`` of every exchange.
    """

    def __init__(self, inner: AiohttpTransport, ports: tuple[int, int], token_worker: int):
        self.inner = inner
        self.ports = ports
        self.token_worker = token_worker
        self.seen: list[tuple[str, int, int]] = []

    def port_for(self, path: str) -> int:
        """Token from ``token_worker``, everything else (credential, nonce) from the other."""
        return self.ports[self.token_worker if path.endswith("/token") else 1 - self.token_worker]

    async def send(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` to the chosen worker."""
        parts = urlsplit(request.url)
        port = self.port_for(parts.path)
        target = urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))
        routed = attrs.evolve(
            request, url=target, headers=request.headers.with_header("Host", parts.netloc)
        )
        response = await self.inner.send(routed)
        self.seen.append((parts.path, port, response.status))
        return response


@pytest.fixture
async def http() -> AsyncIterator[AiohttpTransport]:
    """One aiohttp client for the test's wallets."""
    transport = AiohttpTransport(allow_insecure_loopback=True, total_timeout=120)
    try:
        yield transport
    finally:
        await transport.aclose()


def _wallet(http: AiohttpTransport, workers: Workers, index: int) -> RoutingTransport:
    return RoutingTransport(http, workers.ports, token_worker=index % 2)


@attrs.define
class Outcome:
    """What one wallet got."""

    credentials: list[str] = attrs.field(factory=list)
    jkts: list[str] = attrs.field(factory=list)
    error: BaseException | None = None


async def _run_wallets(
    http: AiohttpTransport, workers: Workers, count: int, start: int = 0, spread: float = 0.0
) -> tuple[list[Outcome], list[RoutingTransport]]:
    """``count`` wallets at once (or started evenly over ``spread`` seconds)."""
    outcomes = [Outcome() for _ in range(count)]
    routes = [_wallet(http, workers, start + i) for i in range(count)]
    offer = f"openid-credential-offer://?credential_offer_uri={workers.issuer}/offers/templates/pre_auth"
    policy = WalletPolicy(allow_insecure_loopback=True)

    async def one(i: int) -> None:
        await anyio.sleep(spread * i / count)
        client = Oid4vciClient(routes[i], policy=policy, client_id=f"wallet-{start + i}")
        try:
            result = await client.accept_offer(offer)
        except Oid4vciError as exc:
            outcomes[i].error = exc
            return
        for cred in result.credentials:
            assert cred.verified and cred.holder_jkt is not None
            outcomes[i].credentials.append(cred.credential)
            outcomes[i].jkts.append(cred.holder_jkt)

    async with anyio.create_task_group() as tg:
        for i in range(count):
            tg.start_soon(one, i)
    return outcomes, routes


def _check_routing(routes: list[RoutingTransport]) -> None:
    for route in routes:
        token_ports = {port for path, port, _ in route.seen if path.endswith("/token")}
        credential_ports = {port for path, port, _ in route.seen if path.endswith("/credential")}
        if token_ports and credential_ports:
            assert token_ports.isdisjoint(credential_ports), route.seen


async def test_many_wallets_token_from_one_worker_credential_from_the_other(
    workers: Workers, http: AiohttpTransport
) -> None:
    started = time.monotonic()
    outcomes, routes = await _run_wallets(http, workers, WALLETS)
    elapsed = time.monotonic() - started
    errors = [repr(o.error) for o in outcomes if o.error is not None]
    assert not errors, errors[:5]
    # Every wallet exactly one credential, bound to its own key; no credential twice.
    assert all(len(o.credentials) == 1 for o in outcomes)
    credentials = [c for o in outcomes for c in o.credentials]
    assert len(set(credentials)) == WALLETS
    assert len({j for o in outcomes for j in o.jkts}) == WALLETS
    _check_routing(routes)
    per_port = Counter(port for r in routes for _, port, _ in r.seen)
    assert set(per_port) == set(workers.ports)
    assert all(status < 500 for r in routes for _, _, status in r.seen)
    print(f"{WALLETS} wallets over 2 workers in {elapsed:.1f} s; requests per worker {per_port}")


async def _offer_code(http: AiohttpTransport, workers: Workers) -> str:
    """A fresh pre-authorized code (the offer template minted at worker 0)."""
    response = await http.send(
        HttpRequest(method="GET", url=f"{workers.issuer}/offers/templates/pre_auth")
    )
    assert response.status == 200
    grants = json.loads(response.body)["grants"]
    code = grants["urn:ietf:params:oauth:grant-type:pre-authorized_code"]["pre-authorized_code"]
    assert isinstance(code, str)
    return code


async def _at_both(
    http: AiohttpTransport, workers: Workers, requests: tuple[HttpRequest, HttpRequest]
) -> list[HttpResponse]:
    """Send ``requests[i]`` to worker ``i``, both at once."""
    answers: list[HttpResponse | None] = [None, None]

    async def send(i: int) -> None:
        parts = urlsplit(requests[i].url)
        target = urlunsplit(parts._replace(netloc=f"127.0.0.1:{workers.ports[i]}"))
        routed = attrs.evolve(
            requests[i], url=target, headers=requests[i].headers.with_header("Host", parts.netloc)
        )
        answers[i] = await http.send(routed)

    async with anyio.create_task_group() as tg:
        tg.start_soon(send, 0)
        tg.start_soon(send, 1)
    assert answers[0] is not None and answers[1] is not None
    return [answers[0], answers[1]]


def _statuses(answers: list[HttpResponse]) -> list[int]:
    return sorted(a.status for a in answers)


async def test_a_code_redeemed_on_both_workers_at_once(
    workers: Workers, http: AiohttpTransport
) -> None:
    token_url = workers.issuer + "/token"
    for _ in range(20):
        code = await _offer_code(http, workers)
        requests = []
        for _ in range(2):
            key = LocalSigner.generate("ES256")
            proof = await build_dpop_jwt(key, "POST", token_url)
            requests.append(
                build_token_request(token_url, pre_authorized_grant(code), dpop_proof=proof)
            )
        answers = await _at_both(http, workers, (requests[0], requests[1]))
        assert _statuses(answers) == [200, 400], [a.body for a in answers]


async def test_a_dpop_proof_replayed_on_the_other_worker(
    workers: Workers, http: AiohttpTransport
) -> None:
    token_url = workers.issuer + "/token"
    for _ in range(20):
        key = LocalSigner.generate("ES256")
        proof = await build_dpop_jwt(key, "POST", token_url)
        codes = [await _offer_code(http, workers), await _offer_code(http, workers)]
        requests = tuple(
            build_token_request(token_url, pre_authorized_grant(code), dpop_proof=proof)
            for code in codes
        )
        answers = await _at_both(http, workers, (requests[0], requests[1]))
        assert _statuses(answers) == [200, 400], [a.body for a in answers]
        loser = next(a for a in answers if a.status == 400)
        assert json.loads(loser.body)["error"] == "invalid_dpop_proof"


async def test_a_c_nonce_used_on_both_workers(workers: Workers, http: AiohttpTransport) -> None:
    issuer = workers.issuer
    token_url, nonce_url, credential_url = (issuer + p for p in ("/token", "/nonce", "/credential"))
    for _ in range(10):
        dpop_key = LocalSigner.generate("ES256")
        code = await _offer_code(http, workers)
        proof = await build_dpop_jwt(dpop_key, "POST", token_url)
        token_answer = await http.send(
            build_token_request(token_url, pre_authorized_grant(code), dpop_proof=proof)
        )
        assert token_answer.status == 200
        access_token = json.loads(token_answer.body)["access_token"]
        nonce_answer = await http.send(build_nonce_request(nonce_url))
        c_nonce = json.loads(nonce_answer.body)["c_nonce"]
        requests = []
        for _ in range(2):
            holder = LocalSigner.generate("ES256")
            key_proof = await build_key_proof(holder, audience=issuer, nonce=c_nonce)
            body = {
                "credential_configuration_id": "identity_credential",
                "proofs": {"jwt": [key_proof]},
            }
            dpop = await build_dpop_jwt(dpop_key, "POST", credential_url, access_token=access_token)
            requests.append(
                build_credential_request(
                    credential_url,
                    body,
                    access_token=access_token,
                    token_type="DPoP",
                    dpop_proof=dpop,
                )
            )
        answers = await _at_both(http, workers, (requests[0], requests[1]))
        assert _statuses(answers) == [200, 400], [a.body for a in answers]
        loser = next(a for a in answers if a.status == 400)
        assert json.loads(loser.body)["error"] in ("invalid_nonce", "invalid_proof")


async def test_redis_killed_mid_run(workers: Workers, http: AiohttpTransport) -> None:
    count = min(WALLETS, 300)

    async def kill_and_restart() -> None:
        await anyio.sleep(1.0)
        workers.redis.stop()
        await anyio.sleep(1.0)
        workers.redis.start()

    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(kill_and_restart)
        # Wallets keep arriving for 3 s: before, during and after the outage.
        outcomes, routes = await _run_wallets(http, workers, count, start=10_000, spread=3.0)
    assert time.monotonic() - started < 120
    seen = [(path, status) for r in routes for path, _, status in r.seen]
    statuses = Counter(status for _, status in seen)
    assert statuses[503] > 0, f"Redis was killed but nothing answered 503: {statuses}"
    assert not [s for s in statuses if s >= 500 and s != 503], statuses
    failed = [o for o in outcomes if o.error is not None]
    succeeded = [o for o in outcomes if o.error is None]
    # Nothing issued twice: each wallet at most one credential, all distinct.
    assert all(len(o.credentials) == 1 for o in succeeded)
    credentials = [c for o in succeeded for c in o.credentials]
    assert len(set(credentials)) == len(credentials)
    assert all(isinstance(o.error, ProtocolError | Oid4vciError) for o in failed)
    print(
        f"Redis down 1 s under {count} wallets: {len(succeeded)} done, {len(failed)} failed; {statuses}"
    )
    # Redis back: every flow succeeds again, on both workers.
    after, after_routes = await _run_wallets(http, workers, 50, start=20_000)
    assert [repr(o.error) for o in after if o.error is not None] == []
    _check_routing(after_routes)


async def test_redis_memory_is_bounded_by_ttls(module_redis: RedisServer) -> None:
    """10,000 abandoned offers and 10,000 abandoned nonces: gone once their TTLs pass."""
    url = module_redis.url.rsplit("/", 1)[0] + "/7"  # a database of its own: DBSIZE is ours
    ttl = 3
    baseline = _used_memory(module_redis)
    async with RedisStore.from_url(url) as store:
        demo = build_demo_issuer("https://issuer.example", store=store)
        config = attrs.evolve(
            demo.config,
            pre_authorized_code_ttl=ttl,
            c_nonce_ttl=ttl,
            access_token_ttl=ttl,
            dpop_nonce_ttl=ttl,
            par_ttl=ttl,
            pending_authorization_ttl=ttl,
            authorization_code_ttl=ttl,
        )
        issuer = Issuer(config, offer_templates=demo.issuer.offer_templates.values())
        limit = anyio.Semaphore(64)

        async def offer() -> None:
            async with limit:
                await issuer.create_pre_authorized_offer(
                    configuration_ids=[demo.configuration_id], subject="alice"
                )

        async def nonce() -> None:
            async with limit:
                answer = await issuer.handle(
                    HttpRequest(method="POST", url="https://issuer.example/nonce")
                )
                assert answer.status == 200

        async def template_fetch() -> None:
            async with limit:
                answer = await issuer.handle(
                    HttpRequest(method="GET", url=demo.offer_urls["pre_auth"])
                )
                assert answer.status == 200

        async with anyio.create_task_group() as tg:
            for i in range(10_000):
                tg.start_soon(offer if i % 2 else template_fetch)
                tg.start_soon(nonce)
        # Some keys already expired while writing; those left all have TTLs.
        filled = int(module_redis.cli("-n", "7", "dbsize"))
        memory_filled = _used_memory(module_redis)
        assert filled > 0
        deadline = time.monotonic() + ttl + 15
        while (left := int(module_redis.cli("-n", "7", "dbsize"))) > 0:
            assert time.monotonic() < deadline, f"{left} keys outlived their TTL"
            await anyio.sleep(0.25)
        memory_after = _used_memory(module_redis)
        assert memory_after - baseline < 1_000_000, (baseline, memory_filled, memory_after)
        print(
            f"20,000 abandoned: {filled} keys live after the writes ({memory_filled - baseline} "
            f"bytes); 0 keys {ttl} s later ({memory_after - baseline} bytes over the baseline)"
        )


def _used_memory(server: RedisServer) -> int:
    info = server.cli("info", "memory")
    return int(
        next(
            v
            for k, _, v in (line.partition(":") for line in info.splitlines())
            if k == "used_memory"
        )
    )
