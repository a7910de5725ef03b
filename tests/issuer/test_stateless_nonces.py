"""Stateless nonces (issue 15, item 1): ``c_nonce`` and ``DPoP-Nonce`` values need no store.

Minting writes nothing; a forged, tampered, expired, wrong-key or wrong-purpose nonce is refused
with the error of the request's version; a ``c_nonce`` is single use at redemption (recorded
with ``add_if_absent`` only after the access token, DPoP proof and key proofs passed); key
rotation accepts the old key during the overlap and refuses it once dropped.
"""

from __future__ import annotations

import base64
from typing import Any

import anyio
import attrs
import pytest

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import Issuer, NonceKeys
from oid4vci.issuer.access_token import create_dpop_nonce, is_live_dpop_nonce
from oid4vci.issuer.nonce import create_c_nonce, take_c_nonce
from oid4vci.issuer.stateless_nonce import (
    MIN_KEY_BYTES,
    NonceError,
    NoncePurpose,
    NonceReason,
    default_nonce_keys,
    open_nonce,
    seal_nonce,
)
from oid4vci.issuer.store import MemoryStore
from oid4vci.jose import LocalSigner
from oid4vci.models import PRE_AUTHORIZED_CODE_GRANT
from oid4vci.versions import SpecVersion
from tests.conftest import FakeClock
from tests.e2e.conftest import build_e2e_issuer, make_client
from tests.security.support import CREDENTIAL, ISSUER, NONCE, Env, assert_error, make_config

AUDIENCE = "https://issuer.example.com"
KEY_A = b"A" * 32
KEY_B = b"B" * 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _flip(value: str, index: int) -> str:
    raw = bytearray(_unb64(value))
    raw[index] ^= 1
    return _b64(bytes(raw))


def _seal(keys: NonceKeys, purpose: NoncePurpose = NoncePurpose.C_NONCE, **kw: Any) -> str:
    options: dict[str, Any] = {"audience": AUDIENCE, "expires_at": 1_000_300}
    options.update(kw)
    return seal_nonce(keys, purpose, **options)


def _reason(value: object, keys: NonceKeys, **kw: Any) -> NonceReason:
    options: dict[str, Any] = {"audience": AUDIENCE, "now": 1_000_000}
    purpose = kw.pop("purpose", NoncePurpose.C_NONCE)
    options.update(kw)
    with pytest.raises(NonceError) as info:
        open_nonce(value, keys, purpose, **options)
    return info.value.reason


# -- the format -----------------------------------------------------------------------------


def test_round_trip_is_short_url_safe_and_unpredictable() -> None:
    keys = NonceKeys(current=KEY_A)
    values = {_seal(keys) for _ in range(200)}
    assert len(values) == 200
    for value in values:
        assert len(value) < 100
        assert all(c.isalnum() or c in "-_" for c in value)
        opened = open_nonce(value, keys, NoncePurpose.C_NONCE, audience=AUDIENCE, now=1_000_000)
        assert opened.purpose is NoncePurpose.C_NONCE and opened.expires_at == 1_000_300
    ids = {
        open_nonce(v, keys, NoncePurpose.C_NONCE, audience=AUDIENCE, now=0).nonce_id for v in values
    }
    assert len(ids) == 200


def test_expired_at_its_expiry_not_before() -> None:
    keys = NonceKeys(current=KEY_A)
    value = _seal(keys, expires_at=1_000_300)
    open_nonce(value, keys, NoncePurpose.C_NONCE, audience=AUDIENCE, now=1_000_299.9)
    assert _reason(value, keys, now=1_000_300) is NonceReason.EXPIRED
    assert _reason(value, keys, now=2_000_000) is NonceReason.EXPIRED


def test_every_byte_flipped_in_turn_is_refused() -> None:
    keys = NonceKeys(current=KEY_A)
    value = _seal(keys)
    raw = _unb64(value)
    for index in range(len(raw)):
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(raw)
            tampered[index] ^= mask
            reason = _reason(_b64(bytes(tampered)), keys)
            assert reason in (NonceReason.UNKNOWN_KEY, NonceReason.BAD_TAG), (index, mask)


def test_every_character_changed_in_turn_is_refused() -> None:
    keys = NonceKeys(current=KEY_A)
    value = _seal(keys)
    for index, char in enumerate(value):
        for other in ("A", "B", "-", "_", "z"):
            if other == char:
                continue
            changed = value[:index] + other + value[index + 1 :]
            _reason(changed, keys)  # refused, whatever the reason


@pytest.mark.parametrize(
    "junk",
    ["", "short", "x" * 55, "=" * 55, "é" * 55, None, 5, b"bytes", "A" * 200],
    ids=repr,
)
def test_malformed_values_are_refused(junk: object) -> None:
    assert _reason(junk, NonceKeys(current=KEY_A)) in (
        NonceReason.MALFORMED,
        NonceReason.UNKNOWN_KEY,
    )


def test_wrong_key_wrong_audience_wrong_purpose() -> None:
    value = _seal(NonceKeys(current=KEY_A))
    assert _reason(value, NonceKeys(current=KEY_B)) is NonceReason.UNKNOWN_KEY
    assert _reason(value, NonceKeys(current=KEY_A), audience="https://other.example") is (
        NonceReason.BAD_TAG
    )
    assert _reason(value, NonceKeys(current=KEY_A), purpose=NoncePurpose.DPOP_NONCE) is (
        NonceReason.WRONG_PURPOSE
    )
    dpop = _seal(NonceKeys(current=KEY_A), NoncePurpose.DPOP_NONCE)
    assert _reason(dpop, NonceKeys(current=KEY_A)) is NonceReason.WRONG_PURPOSE


def test_rotation_overlap_then_drop() -> None:
    old = NonceKeys(current=KEY_A)
    value = _seal(old)
    overlap = old.rotated(KEY_B)
    assert overlap.current == KEY_B and overlap.previous == (KEY_A,)
    open_nonce(value, overlap, NoncePurpose.C_NONCE, audience=AUDIENCE, now=1_000_000)
    fresh = _seal(overlap)
    open_nonce(fresh, overlap, NoncePurpose.C_NONCE, audience=AUDIENCE, now=1_000_000)
    dropped = overlap.without_previous()
    assert _reason(value, dropped) is NonceReason.UNKNOWN_KEY
    open_nonce(fresh, dropped, NoncePurpose.C_NONCE, audience=AUDIENCE, now=1_000_000)
    # keep bounds how many old keys stay
    assert len(overlap.rotated().rotated().rotated(keep=2).previous) == 2


def test_nonce_keys_values() -> None:
    with pytest.raises(ValueError, match="at least"):
        NonceKeys(current=b"x" * (MIN_KEY_BYTES - 1))
    with pytest.raises(ValueError, match="distinct"):
        NonceKeys(current=KEY_A, previous=(KEY_A,))
    with pytest.raises(ValueError, match="base64url"):
        NonceKeys(current="not base64url!")
    keys = NonceKeys(current=KEY_A, previous=(KEY_B,))
    assert NonceKeys.from_text(keys.to_text()) == keys
    assert NonceKeys(current=_b64(KEY_A)) == NonceKeys(current=KEY_A)
    generated = NonceKeys.generate()
    assert len(generated.current) == 32 and generated != NonceKeys.generate()


def test_secrets_never_in_reprs(clock: FakeClock) -> None:
    keys = NonceKeys(current=KEY_A, previous=(KEY_B,))
    env = Env(clock, nonce_keys=keys)
    for text in (repr(keys), str(keys), repr(env.config)):
        for secret in (KEY_A, KEY_B):
            assert repr(secret) not in text and _b64(secret) not in text
            assert secret.decode() not in text
    value = _seal(keys)
    opened = open_nonce(value, keys, NoncePurpose.C_NONCE, audience=AUDIENCE, now=0)
    assert opened.nonce_id not in repr(opened)
    with pytest.raises(NonceError) as info:
        open_nonce(_flip(value, 30), keys, NoncePurpose.C_NONCE, audience=AUDIENCE, now=0)
    assert value[:20] not in str(info.value)


def test_default_keys_are_one_per_process(clock: FakeClock) -> None:
    """Configurations without nonce_keys (tenants, per-request rebuilds) share the process key."""
    first, second = Env(clock).config, Env(clock).config
    assert first.nonce_keys is second.nonce_keys is default_nonce_keys()


# -- through the issuer ---------------------------------------------------------------------


@pytest.mark.parametrize("dpop_nonces", [False, True])
async def test_nonce_endpoint_writes_nothing(clock: FakeClock, dpop_nonces: bool) -> None:
    env = Env(clock, require_dpop_nonce=dpop_nonces)
    key = LocalSigner.generate()
    env_token = None if dpop_nonces else await env.access_token(key)
    before, written = len(env.store), list(env.store.written)
    seen: set[str] = set()
    for _ in range(1_000):
        response = await env.send(HttpRequest(method="POST", url=NONCE))
        assert response.status == 200
        seen.add(str(response.json_body()["c_nonce"]))
        assert (response.headers.get("DPoP-Nonce") is not None) is dpop_nonces
    assert len(seen) == 1_000
    assert len(env.store) == before
    assert env.store.written == written
    if env_token is not None:
        # and the nonces are good
        assert await env.nonce_works(seen.pop(), env_token, key)


async def test_c_nonce_single_use_recorded_until_expiry(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    assert env.store.count("c_nonce_used:") == 0
    assert await env.nonce_works(nonce, token, key)
    assert env.store.count("c_nonce_used:") == 1
    holder = LocalSigner.generate()
    assert_error(
        await env.issue(token, key, [await env.key_proof(holder, nonce)]), 400, "invalid_nonce"
    )
    # The record lives as long as the nonce (300 s), then goes; the nonce is expired by then.
    held = len(env.store)
    clock.advance(env.config.c_nonce_ttl)
    assert not await take_c_nonce(nonce, env.config)
    assert len(env.store) < held


async def test_expired_c_nonce_is_invalid_nonce(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    nonce = await env.c_nonce()
    clock.advance(env.config.c_nonce_ttl)
    token = await env.access_token(key)
    assert_error(
        await env.issue(token, key, [await env.key_proof(LocalSigner.generate(), nonce)]),
        400,
        "invalid_nonce",
    )
    assert env.claims.calls == 0
    assert env.store.count("c_nonce_used:") == 0


async def test_tampered_wrong_key_and_dpop_nonce_as_c_nonce(clock: FakeClock) -> None:
    env = Env(clock, nonce_keys=NonceKeys(current=KEY_A))
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    other = attrs.evolve(env.config, nonce_keys=NonceKeys(current=KEY_B))
    raw = bytearray(_unb64(nonce))
    raw[10] ^= 1
    bad = [
        _b64(bytes(raw)),
        await create_c_nonce(other),
        await create_dpop_nonce(env.config),
    ]
    for value in bad:
        response = await env.issue(token, key, [await env.key_proof(LocalSigner.generate(), value)])
        assert_error(response, 400, "invalid_nonce")
    assert env.claims.calls == 0
    assert env.store.count("c_nonce_used:") == 0
    assert await env.nonce_works(nonce, token, key)


@pytest.mark.parametrize("version", [SpecVersion.DRAFT_13, SpecVersion.DRAFT_14])
async def test_drafts_answer_invalid_proof_with_a_fresh_c_nonce(
    clock: FakeClock, version: SpecVersion
) -> None:
    env = Env(clock, published_version=version)
    key = LocalSigner.generate()
    response = await env.redeem(await env.pre_auth_code(), key)
    assert response.status == 200
    token = str(response.json_body()["access_token"])
    first = str(response.json_body()["c_nonce"])

    async def request(nonce: str) -> HttpResponse:
        proof = await env.key_proof(LocalSigner.generate(), nonce)
        body = {
            "format": "vc+sd-jwt",
            "vct": "urn:eudi:pid:1",
            "proof": {"proof_type": "jwt", "jwt": proof},
        }
        return await env.credential(token, key, body)

    ok = await request(first)
    assert ok.status == 200, ok.body
    for stale in (first, await create_dpop_nonce(env.config)):
        body = assert_error(await request(stale), 400, "invalid_proof")
        fresh = str(body["c_nonce"])
        assert body["c_nonce_expires_in"] == env.config.c_nonce_ttl
        assert await take_c_nonce(fresh, env.config)


async def test_c_nonce_as_dpop_nonce_is_use_dpop_nonce(clock: FakeClock) -> None:
    env = Env(clock, require_dpop_nonce=True)
    key = LocalSigner.generate()
    answer = await env.send(HttpRequest(method="POST", url=NONCE))
    c_nonce = str(answer.json_body()["c_nonce"])
    dpop_nonce = answer.headers.get("DPoP-Nonce")
    assert dpop_nonce is not None and await is_live_dpop_nonce(dpop_nonce, env.config)
    assert not await is_live_dpop_nonce(c_nonce, env.config)
    code = await env.pre_auth_code()
    refused = await env.token_request(
        {"grant_type": PRE_AUTHORIZED_CODE_GRANT, "pre-authorized_code": code},
        key,
        nonce=c_nonce,
    )
    assert_error(refused, 400, "use_dpop_nonce", dpop_nonce=True)
    retry_nonce = refused.headers.get("DPoP-Nonce")
    assert retry_nonce is not None
    response = await env.token_request(
        {"grant_type": PRE_AUTHORIZED_CODE_GRANT, "pre-authorized_code": code},
        key,
        nonce=retry_nonce,
    )
    assert response.status == 200, response.body
    token = str(response.json_body()["access_token"])
    # at the credential endpoint (a resource server, RFC 9449 §9): 401 with a fresh nonce
    proof = await env.key_proof(LocalSigner.generate(), c_nonce)
    body = {"credential_configuration_id": "pid", "proofs": {"jwt": [proof]}}
    refused = await env.credential(token, key, body, dpop_nonce=c_nonce)
    assert_error(refused, 401, "use_dpop_nonce", www_authenticate=True, dpop_nonce=True)
    # the refused request did not use up the c_nonce
    assert env.store.count("c_nonce_used:") == 0
    ok = await env.credential(token, key, body, dpop_nonce=dpop_nonce)
    assert ok.status == 200, ok.body
    # the DPoP nonce is reusable while it lives (a fresh proof, new jti); the c_nonce is not
    again = await env.credential(token, key, body, dpop_nonce=dpop_nonce)
    assert_error(again, 400, "invalid_nonce")
    assert env.store.count("dpop_nonce:") == 0
    clock.advance(env.config.dpop_nonce_ttl)
    assert not await is_live_dpop_nonce(dpop_nonce, env.config)


async def test_redemption_only_after_token_and_dpop_checks(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    proof = await env.key_proof(LocalSigner.generate(), nonce)
    body = {"credential_configuration_id": "pid", "proofs": {"jwt": [proof]}}
    # unknown token, wrong DPoP key, bad key proof signature: nothing recorded, nonce kept
    assert (await env.credential("x" * 43, key, body)).status == 401
    assert (await env.credential(token, LocalSigner.generate(), body)).status == 401
    bad_proof = proof[:-4] + ("AAAA" if not proof.endswith("AAAA") else "BBBB")
    bad_body = {"credential_configuration_id": "pid", "proofs": {"jwt": [bad_proof]}}
    assert_error(await env.credential(token, key, bad_body), 400, "invalid_proof")
    assert env.store.count("c_nonce_used:") == 0
    assert (await env.credential(token, key, body)).status == 200
    assert env.store.count("c_nonce_used:") == 1


@pytest.mark.parametrize("yielding", [False, True])
async def test_two_concurrent_redemptions_exactly_one_wins(
    clock: FakeClock, yielding: bool
) -> None:
    env = Env(clock, yielding=yielding)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    proofs = [await env.key_proof(LocalSigner.generate(), nonce) for _ in range(2)]
    results: list[HttpResponse] = []

    async def redeem(proof: str) -> None:
        results.append(await env.issue(token, key, [proof]))

    async with anyio.create_task_group() as tg:
        for proof in proofs:
            tg.start_soon(redeem, proof)
    assert sorted(r.status for r in results) == [200, 400]
    assert_error(next(r for r in results if r.status == 400), 400, "invalid_nonce")
    assert env.claims.calls == 1


async def test_rotation_through_the_issuer(clock: FakeClock) -> None:
    env = Env(clock, nonce_keys=NonceKeys(current=KEY_A))
    key = LocalSigner.generate()
    token = await env.access_token(key)
    old_nonces = [await env.c_nonce() for _ in range(2)]
    old_dpop = await create_dpop_nonce(env.config)
    # every worker moves to the rotated keys: old nonces still work during the overlap
    rotated = attrs.evolve(env.config, nonce_keys=env.config.nonce_keys.rotated(KEY_B))
    env.config, env.issuer = rotated, Issuer(rotated)
    assert await is_live_dpop_nonce(old_dpop, env.config)
    assert await env.nonce_works(old_nonces[0], token, key)
    new_nonce = await env.c_nonce()
    # the old key is dropped: its nonces are refused, the new key's still work
    dropped = attrs.evolve(env.config, nonce_keys=env.config.nonce_keys.without_previous())
    env.config, env.issuer = dropped, Issuer(dropped)
    assert not await is_live_dpop_nonce(old_dpop, env.config)
    response = await env.issue(
        token, key, [await env.key_proof(LocalSigner.generate(), old_nonces[1])]
    )
    assert_error(response, 400, "invalid_nonce")
    assert await env.nonce_works(new_nonce, token, key)


async def test_workers_sharing_keys_and_store_accept_each_others_nonces(clock: FakeClock) -> None:
    keys = NonceKeys.generate()
    first = Env(clock, nonce_keys=keys)
    # "another worker": its own configuration object, the same keys and store
    second = make_config(clock, first.store, nonce_keys=keys, claims_source=first.claims)
    key = LocalSigner.generate()
    token = await first.access_token(key)
    nonce = await first.c_nonce()
    first.issuer = Issuer(second)
    assert await first.nonce_works(nonce, token, key)
    assert not await take_c_nonce(nonce, second)


# -- DPoP nonce flows in every version --------------------------------------------------------


@pytest.mark.parametrize("version", list(SpecVersion), ids=lambda v: v.value)
async def test_dpop_nonce_flows_write_no_nonces(version: SpecVersion, clock: FakeClock) -> None:
    e2e = build_e2e_issuer(version, clock, require_dpop_nonce=True)
    store = e2e.issuer.config.store
    assert isinstance(store, MemoryStore)
    client = make_client(e2e, clock)
    offer = await client.parse_offer(e2e.offer_links["pre_auth"])
    result = await client.accept_offer(offer, count=2)
    assert len(result.credentials) == 2
    assert [e.status for e in e2e.calls("/token")] == [400, 200]
    assert {e.status for e in e2e.calls("/credential")} == {200}
    keys = set(store._data)  # what the flow left in the store
    assert not any(k.startswith(("dpop_nonce:", "c_nonce:")) for k in keys)
    used = [k for k in keys if k.startswith("c_nonce_used:")]
    # Draft 15 and 1.0 redeem one nonce-endpoint c_nonce per request; Draft 13/14 redeem
    # the c_nonce of the token response (and of each credential response) the same way.
    assert used


async def test_tenant_nonces_are_not_valid_at_another_tenant(clock: FakeClock) -> None:
    env = Env(clock)
    other = env.config.for_issuer("https://other.example.com")
    assert other.nonce_keys is env.config.nonce_keys
    assert not await take_c_nonce(await create_c_nonce(other), env.config)
    assert not await is_live_dpop_nonce(await create_dpop_nonce(other), env.config)
    assert env.config.credential_issuer == ISSUER and CREDENTIAL.startswith(ISSUER)
