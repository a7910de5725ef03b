"""Token Status Lists at the issuer: allocation, status changes, the endpoint, decoys.

The issuer runs in memory (the demo issuer, which has status lists on); the tokens its
endpoint answers are checked with :func:`oid4vci.status.verify_status_list_token` against the
key it publishes at ``/.well-known/jwt-vc-issuer``, as a relying party would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest

from oid4vci.errors import UsageError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import Issuer, IssuerConfig, StatusListSettings, store_keys
from oid4vci.issuer.config import CredentialConfigurationSpec
from oid4vci.issuer.credential import create_credentials
from oid4vci.issuer.status_list import JOURNAL_GRACE, allocate_status_entries, status_list_uri
from oid4vci.issuer.store import MemoryStore, Store
from oid4vci.jose import LocalSigner, Signer, decode_jws
from oid4vci.jwtvc import verify_jwt_vc_json
from oid4vci.sdjwt import parse_sd_jwt, sd
from oid4vci.status import (
    INVALID,
    STATUS_LIST_JWT_MEDIA_TYPE,
    SUSPENDED,
    VALID,
    StatusReference,
    parse_status_reference,
    status_of,
    verify_status_list_token,
)
from oid4vci.versions import SpecVersion
from tests.conftest import FakeClock
from tests.e2e.conftest import (
    ISSUER,
    VERSION_IDS,
    E2eIssuer,
    build_e2e_issuer,
    check_credentials,
    make_client,
)

VERSIONS = list(VERSION_IDS)


class YieldingStore:
    """A :class:`MemoryStore` that lets other tasks run before every operation.

    ``MemoryStore`` never suspends, so concurrent tasks would never interleave; a network
    store (Redis) suspends on every call. This puts a checkpoint there, nothing else.
    """

    def __init__(self, inner: MemoryStore) -> None:
        self.inner = inner

    async def put(self, key: str, value: Any, ttl: float) -> None:
        await anyio.lowlevel.checkpoint()
        await self.inner.put(key, value, ttl)

    async def get(self, key: str) -> Any | None:
        await anyio.lowlevel.checkpoint()
        return await self.inner.get(key)

    async def take(self, key: str) -> Any | None:
        await anyio.lowlevel.checkpoint()
        return await self.inner.take(key)

    async def add_if_absent(self, key: str, value: Any, ttl: float) -> bool:
        await anyio.lowlevel.checkpoint()
        return await self.inner.add_if_absent(key, value, ttl)

    async def delete(self, key: str) -> None:
        await anyio.lowlevel.checkpoint()
        await self.inner.delete(key)

    async def increment(self, key: str, ttl: float) -> int:
        await anyio.lowlevel.checkpoint()
        return await self.inner.increment(key, ttl)


class CountingSigner:
    """A real signer that counts its signatures."""

    def __init__(self, inner: Signer) -> None:
        self.inner = inner
        self.calls = 0

    @property
    def alg(self) -> str:
        return self.inner.alg

    @property
    def public_jwk(self) -> dict[str, Any]:
        return self.inner.public_jwk

    async def sign(self, signing_input: bytes) -> bytes:
        self.calls += 1
        return await self.inner.sign(signing_input)


class Claims:
    async def __call__(self, subject: str, configuration_id: str) -> Mapping[str, Any]:
        return {"given_name": sd("Ada"), "address": sd({"city": sd("London")}), "n": 1}


def make_config(
    clock: FakeClock,
    *,
    store: Store | None = None,
    credential_signer: Signer | None = None,
    **settings: Any,
) -> IssuerConfig:
    return IssuerConfig(
        credential_issuer=ISSUER,
        credential_signer=credential_signer or LocalSigner.generate("ES256", kid="k1"),
        credential_configurations=[
            CredentialConfigurationSpec(id="badge", vct="https://example.com/badge"),
            CredentialConfigurationSpec(
                id="badge_vc",
                format="jwt_vc_json",
                credential_definition_types=("VerifiableCredential", "Badge"),
            ),
        ],
        claims_source=Claims(),
        store=store if store is not None else MemoryStore(clock=clock),
        clock=clock,
        status=StatusListSettings(**settings),
    )


async def _mint(
    config: IssuerConfig, count: int = 1, *, subject: str = "ada", cid: str = "badge"
) -> list[str]:
    holders = [LocalSigner.generate("ES256").public_jwk for _ in range(count)]
    spec = config.credential_configurations[cid]
    return await create_credentials(
        spec, config, claims=await Claims()("ada", cid), holder_jwks=holders,
        version=SpecVersion.V1, subject=subject,
    )  # fmt: skip


def _reference(credential: str) -> StatusReference:
    jwt = credential.split("~", 1)[0]
    reference = parse_status_reference(decode_jws(jwt).payload)
    assert reference is not None
    return reference


async def _get(issuer: Issuer | E2eIssuer, url: str, method: str = "GET") -> HttpResponse:
    return await issuer.handle(HttpRequest(method=method, url=url))


async def _status(issuer: Issuer | E2eIssuer, reference: StatusReference, clock: FakeClock) -> int:
    """What a relying party sees: the token from the endpoint, checked with the published key."""
    response = await _get(issuer, reference.uri)
    assert response.status == 200, response.body
    metadata = await _get(issuer, ISSUER + "/.well-known/jwt-vc-issuer")
    keys = metadata.json_body()["jwks"]["keys"]
    token = verify_status_list_token(
        response.body.decode(), uri=reference.uri, keys=keys, clock=clock
    )
    assert token.header["kid"] in {k["kid"] for k in keys}
    assert token.exp is not None and token.ttl is not None
    return status_of(token, reference.idx)


# --- through the wallet, in every version -------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=[VERSION_IDS[v] for v in VERSIONS])
async def test_the_wallet_receives_credentials_with_status_and_decoys(
    version: SpecVersion, clock: FakeClock
) -> None:
    e2e = build_e2e_issuer(version, clock)
    client = make_client(e2e, clock)
    offer = await client.parse_offer(e2e.offer_links["pre_auth"])
    result = await client.accept_offer(offer, count=3)
    check_credentials(
        result.credentials, issuer_keys=e2e.issuer_keys, version=version, count=3, clock=clock
    )
    references = {_reference(c.credential) for c in result.credentials}
    assert len(references) == 3
    for cred in result.credentials:
        assert cred.claims["status"]["status_list"] == attrs.asdict(_reference(cred.credential))
        assert await _status(e2e, _reference(cred.credential), clock) == VALID
        # the demo has five top-level disclosable claims, plus 1-5 decoys
        assert 6 <= len(parse_sd_jwt(cred.credential).jws.payload["_sd"]) <= 10


async def test_issue_revoke_suspend_unsuspend(clock: FakeClock) -> None:
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    client = make_client(e2e, clock)
    result = await client.accept_offer(await client.parse_offer(e2e.offer_links["pre_auth"]))
    (cred,) = result.credentials
    assert cred.verified
    reference = _reference(cred.credential)
    assert reference.uri.startswith(ISSUER + "/status-lists/")
    issuer = e2e.issuer
    assert await _status(e2e, reference, clock) == VALID
    changed = await issuer.set_credential_status((reference.uri, reference.idx), "suspended")
    assert changed == [reference]
    assert await _status(e2e, reference, clock) == SUSPENDED
    await issuer.set_credential_status(reference, "valid")
    assert await _status(e2e, reference, clock) == VALID
    await issuer.set_credential_status(reference, "invalid")
    assert await _status(e2e, reference, clock) == INVALID


async def test_revoke_every_credential_of_a_subject(clock: FakeClock) -> None:
    config = make_config(clock)
    issuer = Issuer(config)
    ada = [_reference(c) for c in await _mint(config, 3)]
    ada_vc = [_reference(c) for c in await _mint(config, 1, cid="badge_vc")]
    bob = [_reference(c) for c in await _mint(config, 2, subject="bob")]
    changed = await issuer.set_credential_status("ada", "invalid", configuration_id="badge")
    assert sorted(changed, key=lambda r: r.idx) == sorted(ada, key=lambda r: r.idx)
    for reference in ada:
        assert await _status(issuer, reference, clock) == INVALID
    for reference in ada_vc + bob:
        assert await _status(issuer, reference, clock) == VALID
    changed = await issuer.set_credential_status("ada", "suspended")
    assert len(changed) == 4
    assert await _status(issuer, ada_vc[0], clock) == SUSPENDED
    assert await issuer.set_credential_status("nobody", "invalid") == []


async def test_refused_status_changes(clock: FakeClock) -> None:
    config = make_config(clock)
    issuer = Issuer(config)
    reference = _reference((await _mint(config))[0])
    other = (reference.idx + 1) % config.status.size if config.status else 0
    with pytest.raises(UsageError):
        await issuer.set_credential_status((reference.uri, other), "invalid")  # never issued
    with pytest.raises(UsageError):
        await issuer.set_credential_status(("https://elsewhere.example/x", 1), "invalid")
    with pytest.raises(UsageError):
        await issuer.set_credential_status(reference, "revoked")  # type: ignore[arg-type]
    with pytest.raises(UsageError):
        await issuer.set_credential_status(reference, 4)  # does not fit 2 bits
    one_bit = Issuer(make_config(clock, bits=1))
    with pytest.raises(UsageError):
        await one_bit.set_credential_status(reference, "suspended")
    plain = Issuer(attrs.evolve(config, status=None))
    with pytest.raises(UsageError):
        await plain.set_credential_status(reference, "invalid")
    assert await _status(issuer, reference, clock) == VALID


# --- allocation ----------------------------------------------------------------------------


async def test_a_batch_of_ten_gets_distinct_random_indices(clock: FakeClock) -> None:
    config = make_config(clock)
    references = [_reference(c) for c in await _mint(config, 10)]
    assert len({r.uri for r in references}) == 1
    indices = [r.idx for r in references]
    assert len(set(indices)) == 10
    # Not handed out in order: with 2^17 entries, ten random draws are sorted or consecutive
    # with negligible probability.
    assert indices != sorted(indices)
    assert sorted(indices) != list(range(min(indices), min(indices) + 10))
    assert config.status is not None and config.status.size >= 1 << 17


async def test_jwt_vc_json_credentials_carry_status(clock: FakeClock) -> None:
    config = make_config(clock)
    (credential,) = await _mint(config, cid="badge_vc")
    verified = verify_jwt_vc_json(
        credential,
        issuer_keys=[config.credential_signer.public_jwk],
        algorithms=["ES256"],
        clock=clock,
    )
    assert verified is not None
    reference = _reference(credential)
    assert await _status(Issuer(config), reference, clock) == VALID


@pytest.mark.parametrize("size", [1 << 17, 256])
async def test_concurrent_mints_never_repeat_an_index(clock: FakeClock, size: int) -> None:
    # One store shared by 200 concurrent mints, as by several processes on one Redis; with
    # 256 entries at fill_limit 0.5 the lists fill up and roll over while the tasks race.
    store = YieldingStore(MemoryStore(clock=clock, max_entries=1_000_000))
    config = make_config(clock, store=store, size=size)
    other = Issuer(attrs.evolve(config))  # a second "process": its own cache, same store
    found: list[StatusReference] = []

    async def mint() -> None:
        found.extend(
            await allocate_status_entries(
                config, subject="ada", configuration_id="badge", count=1, lifetime=3600
            )
        )

    async with anyio.create_task_group() as tg:
        for _ in range(200):
            tg.start_soon(mint)
    assert len(found) == 200
    assert len({(r.uri, r.idx) for r in found}) == 200
    lists = {r.uri for r in found}
    if size == 256:
        assert len(lists) >= 2
    else:
        assert len(lists) == 1
    changed = await other.set_credential_status("ada", "invalid")
    assert len(changed) == 200


async def test_a_full_list_rolls_over(clock: FakeClock) -> None:
    config = make_config(clock, size=16, fill_limit=0.5)
    references = [_reference(c) for c in await _mint(config, 10)]
    assert len({r.uri for r in references}) == 2
    assert len({(r.uri, r.idx) for r in references}) == 10


async def test_a_list_takes_only_credentials_it_outlives(clock: FakeClock) -> None:
    config = make_config(clock, list_lifetime=2 * 365 * 24 * 3600)
    first = _reference((await _mint(config))[0])
    clock.advance(366 * 24 * 3600)  # a one-year credential no longer fits in the first list
    second = _reference((await _mint(config))[0])
    assert first.uri != second.uri
    assert await _status(Issuer(config), first, clock) == VALID
    with pytest.raises(ValueError, match="list_lifetime"):
        make_config(clock, list_lifetime=3600)


# --- the endpoint ----------------------------------------------------------------------------


async def test_endpoint_headers_and_token(clock: FakeClock) -> None:
    config = make_config(clock, ttl=600, token_lifetime=7200)
    issuer = Issuer(config)
    reference = _reference((await _mint(config))[0])
    response = await _get(issuer, reference.uri)
    assert response.status == 200
    assert response.headers["Content-Type"] == STATUS_LIST_JWT_MEDIA_TYPE
    assert response.headers["Cache-Control"] == "public, max-age=600"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    jws = decode_jws(response.body.decode())
    assert jws.header["typ"] == "statuslist+jwt"
    assert jws.header["kid"] == "k1"
    claims = jws.payload
    assert claims["sub"] == reference.uri
    assert claims["iat"] == int(clock())
    assert claims["exp"] == int(clock()) + 7200
    assert claims["ttl"] == 600
    assert claims["status_list"]["bits"] == 2


async def test_endpoint_refusals(clock: FakeClock) -> None:
    config = make_config(clock)
    issuer = Issuer(config)
    reference = _reference((await _mint(config))[0])
    for method in ("POST", "PUT", "DELETE"):
        response = await _get(issuer, reference.uri, method)
        assert response.status == 405
        assert response.headers["Allow"] == "GET"
    for url in (
        status_list_uri("0" * 32, config),  # well formed, never created
        status_list_uri("not-a-list", config),
        status_list_uri("..%2F..%2Ftoken", config),
    ):
        response = await _get(issuer, url)
        assert response.status == 404
        assert response.json_body()["error"] == "not_found"
    # Without status lists the path is not routed at all.
    plain = Issuer(attrs.evolve(config, status=None))
    assert (await _get(plain, reference.uri)).status == 404


async def test_the_signed_token_is_reused_until_a_status_changes(clock: FakeClock) -> None:
    signer = CountingSigner(LocalSigner.generate("ES256", kid="k1"))
    config = make_config(clock, credential_signer=signer, ttl=600, token_lifetime=3600)
    issuer = Issuer(config)
    reference = _reference((await _mint(config))[0])
    minted = signer.calls
    first = await _get(issuer, reference.uri)
    assert signer.calls == minted + 1
    for _ in range(5):
        clock.advance(60)
        assert (await _get(issuer, reference.uri)).body == first.body
    assert signer.calls == minted + 1
    await issuer.set_credential_status(reference, "invalid")
    assert await _status(issuer, reference, clock) == INVALID
    assert signer.calls == minted + 2
    # exp nears: less than ttl (+ a minute) left, so the token is signed again
    clock.advance(3600 - 600)
    await _get(issuer, reference.uri)
    assert signer.calls == minted + 3
    assert issuer.status_lists.tokens_signed == 3


async def test_a_change_made_by_another_process_is_served(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    config = make_config(clock, store=store)
    one, two = Issuer(config), Issuer(config)
    reference = _reference((await _mint(config))[0])
    assert await _status(two, reference, clock) == VALID
    await one.set_credential_status(reference, "suspended")
    assert await _status(two, reference, clock) == SUSPENDED


async def test_a_separate_status_signer_is_published(clock: FakeClock) -> None:
    status_signer = LocalSigner.generate("ES256", kid="status-key")
    config = make_config(clock, signer=status_signer)
    issuer = Issuer(config)
    keys = issuer.jwt_vc_issuer_metadata()["jwks"]["keys"]
    assert [k["kid"] for k in keys] == ["k1", "status-key"]
    reference = _reference((await _mint(config))[0])
    response = await _get(issuer, reference.uri)
    assert decode_jws(response.body.decode()).header["kid"] == "status-key"
    assert await _status(issuer, reference, clock) == VALID


async def test_path_tenants_have_their_own_lists(clock: FakeClock) -> None:
    config = make_config(clock)
    tenant = config.for_issuer(ISSUER + "/tenant-a")
    reference = _reference((await _mint(tenant))[0])
    assert reference.uri.startswith(ISSUER + "/tenant-a/status-lists/")
    issuer = Issuer(tenant)
    response = await _get(issuer, reference.uri)
    assert response.status == 200
    # the base issuer's store scope does not know the tenant's list
    assert (
        await _get(Issuer(config), ISSUER + "/status-lists/" + reference.uri[-32:])
    ).status == 404


# --- decoys ----------------------------------------------------------------------------------


async def test_decoys_vary_the_digest_count(clock: FakeClock) -> None:
    config = make_config(clock)
    credentials = await _mint(config, 20)
    counts = set()
    for credential in credentials:
        parsed = parse_sd_jwt(credential)
        digests = parsed.jws.payload["_sd"]
        assert digests == sorted(digests)
        counts.add(len(digests))
        real = [d for d in parsed.disclosures if d.name in ("given_name", "address")]
        assert 1 <= len(digests) - len(real) <= 5
    assert len(counts) > 1


async def test_decoys_can_be_turned_off(clock: FakeClock) -> None:
    config = attrs.evolve(make_config(clock), decoy_digests=(0, 0))
    for credential in await _mint(config, 3):
        assert len(parse_sd_jwt(credential).jws.payload["_sd"]) == 2
    with pytest.raises(ValueError, match="decoy_digests"):
        attrs.evolve(config, decoy_digests=(3, 1))


# --- the key schema flow (used by tests/issuer/test_stages.py) -----------------------------


async def status_flow(clock: FakeClock) -> None:
    """Mint, set a status by reference and by subject, fetch the list: every status key."""
    config = make_config(clock, size=16, fill_limit=0.5)
    issuer = Issuer(config)
    references = [_reference(c) for c in await _mint(config, 10)]  # two lists
    await issuer.set_credential_status(references[0], "invalid")
    await issuer.set_credential_status("ada", "suspended")
    assert await _status(issuer, references[0], clock) == SUSPENDED


async def test_a_journal_gap_is_waited_for_then_skipped(clock: FakeClock) -> None:
    # A writer between its two steps (change number taken, change not yet written), and one
    # that died there: the list is still served, later changes are applied past the gap, and
    # the late change is picked up when it arrives.
    store = MemoryStore(clock=clock)
    config = make_config(clock, store=store)
    issuer = Issuer(config)
    first, second = (_reference(c) for c in await _mint(config, 2))
    list_id = first.uri.rsplit("/", 1)[1]
    assert await _status(issuer, first, clock) == VALID
    # the slow writer: entry record updated, change number taken, journal entry not yet written
    entry_key = store_keys.status_entry_key(list_id, first.idx)
    entry = await store.get(entry_key)
    assert isinstance(entry, dict)
    await store.put(entry_key, {**entry, "status": INVALID}, 3600)
    number = await store.increment(store_keys.status_version_key(list_id), 3600)
    await store.increment(store_keys.status_version_key(list_id), 3600)  # a writer that died
    await issuer.set_credential_status(second, "suspended")  # a later change, complete
    assert await _status(issuer, second, clock) == SUSPENDED
    assert await _status(issuer, first, clock) == VALID  # its change is not journaled yet
    await store.put(store_keys.status_change_key(list_id, number), first.idx, 3600)
    assert await _status(issuer, first, clock) == INVALID
    signed = issuer.status_lists.tokens_signed
    clock.advance(JOURNAL_GRACE + 1)  # the dead writer's number is given up
    await _status(issuer, first, clock)
    await _status(issuer, first, clock)
    assert issuer.status_lists.tokens_signed == signed  # nothing changed: the token is reused
