"""Races and floods against ONE demo issuer served over aiohttp on 127.0.0.1.

* Many wallets at once (50 by default, 500 under ``-m slow``), each its own client and
  transport, each following the same reusable offer link: every wallet gets exactly the
  credentials bound to its own holder keys — no cross-delivery, no shared keys or tokens.
* One client running many flows concurrently keeps them apart as well.
* The same pre-authorized code redeemed by 50 wallets in parallel succeeds exactly once; the
  others get :class:`~oid4vci.errors.TokenError` ``invalid_grant``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import attrs
import pytest

from oid4vci.cli.serve import DemoServer, running_demo_issuer
from oid4vci.errors import ErrorCode, TokenError
from oid4vci.jose import LocalSigner, Signer, jwk_thumbprint
from oid4vci.models import CredentialOffer
from oid4vci.sdjwt import parse_sd_jwt
from oid4vci.transports.aiohttp import AiohttpTransport
from oid4vci.wallet import IssuanceResult, Oid4vciClient, WalletPolicy

CREDENTIALS_PER_WALLET = 2


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def demo() -> AsyncIterator[DemoServer]:
    async with running_demo_issuer() as server:
        yield server


@attrs.define
class RecordingKeys:
    """A holder key provider that remembers the keys it handed out (one wallet's keys)."""

    keys: list[Signer] = attrs.field(factory=list)

    async def __call__(self, *, configuration_id: str, algorithms: Sequence[str]) -> Signer:
        key = LocalSigner.generate("ES256")
        self.keys.append(key)
        return key

    @property
    def thumbprints(self) -> set[str]:
        return {jwk_thumbprint(k.public_jwk) for k in self.keys}


@attrs.define
class WalletRun:
    """What one wallet got."""

    index: int
    keys: RecordingKeys
    result: IssuanceResult


def policy(keys: RecordingKeys) -> WalletPolicy:
    return WalletPolicy(allow_insecure_loopback=True, holder_key_provider=keys)


def cnf_thumbprint(credential: Any) -> str:
    """The credential's ``cnf.jwk`` thumbprint, read straight from the signed payload."""
    payload = parse_sd_jwt(credential).jws.payload
    return jwk_thumbprint(payload["cnf"]["jwk"])


async def one_wallet(
    index: int, link: str, limiter: anyio.CapacityLimiter, out: list[WalletRun]
) -> None:
    keys = RecordingKeys()
    async with limiter, AiohttpTransport(allow_insecure_loopback=True, total_timeout=60) as tr:
        client = Oid4vciClient(tr, policy=policy(keys))
        offer = await client.parse_offer(link)
        result = await client.accept_offer(offer, count=CREDENTIALS_PER_WALLET)
    out.append(WalletRun(index=index, keys=keys, result=result))


async def flood(demo: DemoServer, wallets: int, *, concurrency: int, deadline: float) -> None:
    link = demo.demo.offer_links["pre_auth"]
    runs: list[WalletRun] = []
    limiter = anyio.CapacityLimiter(concurrency)
    with anyio.fail_after(deadline):
        async with anyio.create_task_group() as tg:
            for i in range(wallets):
                tg.start_soon(one_wallet, i, link, limiter, runs)
    assert sorted(r.index for r in runs) == list(range(wallets)), "every flow completed"
    all_cnf: list[str] = []
    tokens: set[str] = set()
    for run in runs:
        creds = run.result.credentials
        assert len(creds) == CREDENTIALS_PER_WALLET
        assert len(run.keys.keys) == CREDENTIALS_PER_WALLET
        mine = run.keys.thumbprints
        got = [cnf_thumbprint(c.credential) for c in creds]
        # each credential is bound to a key of THIS wallet, each key used once
        assert set(got) == mine and len(set(got)) == len(got)
        for cred in creds:
            assert cred.verified and cred.claims["given_name"] == "Alice"
            assert cred.holder_jkt in mine
        all_cnf.extend(got)
        assert run.result.session is not None
        tokens.add(run.result.session.access_token)
    # distinct holder keys everywhere: nothing crossed over between wallets
    assert len(all_cnf) == len(set(all_cnf)) == wallets * CREDENTIALS_PER_WALLET
    assert len(tokens) == wallets


async def test_fifty_wallets_at_once(demo: DemoServer) -> None:
    await flood(demo, 50, concurrency=50, deadline=60)


@pytest.mark.slow
async def test_five_hundred_wallets_at_once(demo: DemoServer) -> None:
    await flood(demo, 500, concurrency=500, deadline=240)


async def test_one_client_many_concurrent_flows(demo: DemoServer) -> None:
    """Flows sharing one client (and its metadata cache and connection pool) stay apart."""
    keys = RecordingKeys()
    results: list[IssuanceResult] = []
    async with AiohttpTransport(allow_insecure_loopback=True) as tr:
        client = Oid4vciClient(tr, policy=policy(keys))

        async def flow() -> None:
            offer = await client.parse_offer(demo.demo.offer_links["pre_auth"])
            results.append(await client.accept_offer(offer, count=CREDENTIALS_PER_WALLET))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(flow)
    assert len(results) == 20
    seen: set[str] = set()
    for result in results:
        holder = {c.holder_jkt for c in result.credentials}
        cnf = {cnf_thumbprint(c.credential) for c in result.credentials}
        assert holder == cnf and len(cnf) == CREDENTIALS_PER_WALLET
        assert not (seen & cnf)
        seen |= cnf
    assert seen == keys.thumbprints
    sessions = {r.session.access_token for r in results if r.session is not None}
    assert len(sessions) == 20


async def redeem(
    index: int,
    offer: CredentialOffer,
    tx_code: str | None,
    outcomes: dict[int, IssuanceResult | TokenError],
) -> None:
    """One wallet (own client and connection pool) tries to redeem ``offer``."""
    async with AiohttpTransport(allow_insecure_loopback=True, total_timeout=60) as tr:
        wallet = Oid4vciClient(tr, policy=policy(RecordingKeys()))
        try:
            outcomes[index] = await wallet.accept_offer(offer, tx_code=tx_code)
        except TokenError as err:
            outcomes[index] = err


@pytest.mark.parametrize("template", ["pre_auth", "pre_auth_tx_code"])
async def test_same_code_redeemed_in_parallel_succeeds_once(
    demo: DemoServer, template: str
) -> None:
    async with AiohttpTransport(allow_insecure_loopback=True) as tr:
        client = Oid4vciClient(tr, policy=WalletPolicy(allow_insecure_loopback=True))
        offer = await client.parse_offer(demo.demo.offer_links[template])
    tx_code = demo.demo.tx_code if template == "pre_auth_tx_code" else None
    outcomes: dict[int, IssuanceResult | TokenError] = {}
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for i in range(50):
                tg.start_soon(redeem, i, offer, tx_code, outcomes)
    assert len(outcomes) == 50
    wins = [o for o in outcomes.values() if isinstance(o, IssuanceResult)]
    losses = [o for o in outcomes.values() if isinstance(o, TokenError)]
    assert len(wins) == 1, f"{len(wins)} wallets redeemed the same code"
    assert len(losses) == 49
    assert all(err.error == ErrorCode.INVALID_GRANT for err in losses)
    (winner,) = wins
    assert len(winner.credentials) == 1 and winner.credentials[0].verified
    # the code stays spent afterwards
    late: dict[int, IssuanceResult | TokenError] = {}
    await redeem(50, offer, tx_code, late)
    assert isinstance(late[50], TokenError) and late[50].error == ErrorCode.INVALID_GRANT
