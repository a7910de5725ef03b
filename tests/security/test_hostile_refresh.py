"""Hostile refresh requests at the token endpoint (RFC 6749 §6, RFC 9449 §5, RFC 9700 §4.14.2):
every refusal is the exact OAuth error, mints no token, and (unless it is a reuse of a rotated
token, which revokes the grant) leaves the refresh token usable by its owner."""

from __future__ import annotations

from typing import Any

import pytest

from oid4vci.http import HttpRequest
from oid4vci.issuer.config import RefreshTokenSettings
from oid4vci.jose import LocalSigner
from tests.conftest import FakeClock
from tests.security.support import CREDENTIAL, TOKEN, Env, assert_error
from tests.security.test_hostile_dpop import custom_dpop

ROTATE = RefreshTokenSettings(ttl=3600, family_lifetime=7200, rotate=True)


async def granted(env: Env, key: LocalSigner) -> dict[str, Any]:
    response = await env.redeem(await env.pre_auth_code(), key)
    assert response.status == 200, response.body
    body: dict[str, Any] = response.json_body()
    return body


def refresh(token: str, **extra: str) -> dict[str, str]:
    return {"grant_type": "refresh_token", "refresh_token": token, **extra}


@pytest.mark.parametrize(
    ("case", "status", "error"),
    [
        ("no proof", 400, "invalid_request"),
        ("proof of another key", 400, "invalid_dpop_proof"),
        ("proof for the credential endpoint", 400, "invalid_dpop_proof"),
        ("proof with GET", 400, "invalid_dpop_proof"),
        ("two proofs", 400, "invalid_dpop_proof"),
        ("refresh token with a NUL", 400, "invalid_grant"),
        ("8 KiB refresh token", 400, "invalid_grant"),
        ("access token as refresh token", 400, "invalid_grant"),
        ("empty refresh token", 400, "invalid_request"),
        ("duplicate refresh_token", 400, "invalid_request"),
        ("pre-authorized code beside it", 400, "invalid_request"),
        ("wider scope", 400, "invalid_scope"),
    ],
)
async def test_hostile_refresh_requests(
    clock: FakeClock, case: str, status: int, error: str
) -> None:
    env = Env(clock, refresh_tokens=ROTATE)
    key = LocalSigner.generate()
    body = await granted(env, key)
    token = body["refresh_token"]
    minted = env.tokens_minted()
    form = refresh(token)
    proof: str | None = None
    headers: list[tuple[str, str]] = []
    sender: LocalSigner | None = key
    if case == "no proof":
        sender = None
    elif case == "proof of another key":
        sender = LocalSigner.generate()
    elif case == "proof for the credential endpoint":
        proof = await custom_dpop(env, key, url=CREDENTIAL)
    elif case == "proof with GET":
        proof = await custom_dpop(env, key, claims={"htm": "GET"})
    elif case == "refresh token with a NUL":
        form = refresh(token + "\x00")
    elif case == "8 KiB refresh token":
        form = refresh("A" * 8192)
    elif case == "access token as refresh token":
        form = refresh(body["access_token"])
    elif case == "empty refresh token":
        form = refresh("")
    elif case == "pre-authorized code beside it":
        form = refresh(token, **{"pre-authorized_code": await env.pre_auth_code()})
    elif case == "wider scope":
        form = refresh(token, scope="pid other")
    if case in ("duplicate refresh_token", "two proofs"):
        raw = f"grant_type=refresh_token&refresh_token={token}"
        proofs = [("DPoP", await env.dpop(key, TOKEN))]
        if case == "two proofs":
            proofs.append(("DPoP", await env.dpop(key, TOKEN)))
        else:
            raw += "&refresh_token=x"
        request = HttpRequest(
            method="POST",
            url=TOKEN,
            headers=[("Content-Type", "application/x-www-form-urlencoded"), *proofs],
            body=raw.encode(),
        )
        response = await env.send(request)
    else:
        response = await env.token_request(form, sender, proof=proof, headers=headers)
    assert_error(response, status, error)
    assert env.tokens_minted() == minted
    # the owner's token survived the attempt
    ok = await env.token_request(refresh(token), key)
    assert ok.status == 200, ok.body


async def test_stolen_rotated_token_replayed_by_its_thief_kills_the_family(
    clock: FakeClock,
) -> None:
    """RFC 9700 §4.14.2: the thief uses the token first (with the stolen DPoP key too); the
    owner's later use is a reuse, and everything of the grant dies."""
    env = Env(clock, refresh_tokens=ROTATE)
    key = LocalSigner.generate()
    body = await granted(env, key)
    stolen = await env.token_request(refresh(body["refresh_token"]), key)
    assert stolen.status == 200
    owner = await env.token_request(refresh(body["refresh_token"]), key)
    assert_error(owner, 400, "invalid_grant")
    thief = stolen.json_body()
    again = await env.token_request(refresh(thief["refresh_token"]), key)
    assert_error(again, 400, "invalid_grant")
    proof = await env.dpop(key, CREDENTIAL, access_token=thief["access_token"])
    response = await env.credential(thief["access_token"], key, {}, proof=proof)
    assert response.status == 401


async def test_refresh_grant_refused_when_off(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    body = await granted(env, key)
    assert "refresh_token" not in body
    response = await env.token_request(refresh("anything"), key)
    assert_error(response, 400, "unsupported_grant_type")
