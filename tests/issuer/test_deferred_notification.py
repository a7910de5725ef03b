"""Deferred issuance and the notification endpoint."""

from __future__ import annotations

from typing import Any

import pytest

from oid4vci.errors import UnknownTransactionError
from oid4vci.issuer import Issuer
from oid4vci.issuer.deferred import complete_deferred
from oid4vci.issuer.notification import Notification
from oid4vci.jose import LocalSigner
from oid4vci.sdjwt import sd
from oid4vci.versions import SpecVersion
from tests.conftest import FakeClock
from tests.issuer.test_service import (
    VCT,
    ClaimsHook,
    Session,
    check_sd_jwt_vc,
    fetch_jwks,
    make_config,
    pre_authorized_session,
    transport_for,
)


async def _deferred_start(
    clock: FakeClock, body_version: SpecVersion
) -> tuple[Issuer, Session, ClaimsHook, LocalSigner, dict[str, Any]]:
    hook = ClaimsHook()
    hook.defer = 30
    issuer = Issuer(make_config(clock, hook=hook))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock)
    key = LocalSigner.generate()
    proof = await session.proof(key, await session.nonce())
    if body_version is SpecVersion.V1:
        body: dict[str, Any] = {
            "credential_configuration_id": "identity",
            "proofs": {"jwt": [proof]},
        }
    elif body_version is SpecVersion.DRAFT_15:
        body = {
            "credential_configuration_id": "identity",
            "proof": {"proof_type": "jwt", "jwt": proof},
        }
    else:
        body = {"format": "vc+sd-jwt", "vct": VCT, "proof": {"proof_type": "jwt", "jwt": proof}}
    response = await session.post("/credential", body)
    assert response.status == 202, response.body
    return issuer, session, hook, key, response.json_body()


async def test_v1_deferred_pending_then_ready(clock: FakeClock) -> None:
    _issuer, session, hook, key, started = await _deferred_start(clock, SpecVersion.V1)
    assert set(started) == {"transaction_id", "interval"}
    assert started["interval"] == 30
    tid = started["transaction_id"]
    pending = await session.post("/deferred", {"transaction_id": tid})
    assert pending.status == 202
    assert pending.json_body() == {"transaction_id": tid, "interval": 30}
    hook.defer = None
    ready = await session.post("/deferred", {"transaction_id": tid})
    assert ready.status == 200, ready.body
    body = ready.json_body()
    assert isinstance(body["notification_id"], str)
    (item,) = body["credentials"]
    jwks = await fetch_jwks(session.transport)
    check_sd_jwt_vc(item["credential"], jwks=jwks, holder_jwk=key.public_jwk, typ="dc+sd-jwt")
    used = await session.post("/deferred", {"transaction_id": tid})
    assert (used.status, used.json_body()["error"]) == (400, "invalid_transaction_id")


@pytest.mark.parametrize("version", [SpecVersion.DRAFT_13, SpecVersion.DRAFT_15])
async def test_draft_deferred_uses_issuance_pending(clock: FakeClock, version: SpecVersion) -> None:
    issuer, session, _hook, key, started = await _deferred_start(clock, version)
    assert "interval" not in started
    assert ("c_nonce" in started) is (version is SpecVersion.DRAFT_13)
    tid = started["transaction_id"]
    pending = await session.post("/deferred", {"transaction_id": tid})
    assert pending.status == 400
    assert pending.json_body() == {
        "error": "issuance_pending", "error_description": "the credential is not ready yet", "interval": 30,
    }  # fmt: skip
    await complete_deferred(tid, issuer.config, {"given_name": sd("Alice")})
    ready = await session.post("/deferred", {"transaction_id": tid})
    assert ready.status == 200, ready.body
    body = ready.json_body()
    credential = (
        body["credential"]
        if version is SpecVersion.DRAFT_13
        else body["credentials"][0]["credential"]
    )
    jwks = await fetch_jwks(session.transport)
    claims = check_sd_jwt_vc(
        credential, jwks=jwks, holder_jwk=key.public_jwk, typ=version.sd_jwt_typ
    )
    assert claims["given_name"] == "Alice"


async def test_deferred_errors(clock: FakeClock) -> None:
    issuer, session, _hook, _key, started = await _deferred_start(clock, SpecVersion.V1)
    tid = started["transaction_id"]
    response = await session.post("/deferred", {"transaction_id": "unknown"})
    assert (response.status, response.json_body()["error"]) == (400, "invalid_transaction_id")
    response = await session.post("/deferred", {"nothing": 1})
    assert (response.status, response.json_body()["error"]) == (400, "invalid_credential_request")
    response = await session.post("/deferred", {"transaction_id": tid}, auth=False)
    assert response.status == 401
    # another grant's token cannot collect it
    other = await pre_authorized_session(issuer, session.transport, clock)
    response = await other.post("/deferred", {"transaction_id": tid})
    assert (response.status, response.json_body()["error"]) == (400, "invalid_transaction_id")
    # the issuer gives up
    await issuer.deny_deferred(tid)
    response = await session.post("/deferred", {"transaction_id": tid})
    assert (response.status, response.json_body()["error"]) == (400, "credential_request_denied")
    response = await session.post("/deferred", {"transaction_id": tid})
    assert response.json_body()["error"] == "invalid_transaction_id"
    with pytest.raises(UnknownTransactionError) as caught:
        await issuer.complete_deferred(tid, {})
    assert isinstance(caught.value, KeyError)  # callers that caught KeyError keep working
    assert tid not in str(caught.value) and tid not in repr(caught.value)
    with pytest.raises(UnknownTransactionError):
        await issuer.deny_deferred(tid)


async def test_notification_flow(clock: FakeClock) -> None:
    seen: list[Notification] = []

    async def hook(notification: Notification) -> None:
        seen.append(notification)

    config = make_config(clock)
    issuer = Issuer(config, on_notification=hook)
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock)
    proof = await session.proof(LocalSigner.generate(), await session.nonce())
    response = await session.post(
        "/credential", {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
    )
    notification_id = response.json_body()["notification_id"]
    body = {"notification_id": notification_id, "event": "credential_accepted"}
    for _ in range(2):  # idempotent
        response = await session.post("/notification", body)
        assert response.status == 204
        assert response.body == b""
    assert len(seen) == 1
    assert (seen[0].event, seen[0].subject, seen[0].configuration_id) == (
        "credential_accepted", "alice", "identity",
    )  # fmt: skip
    response = await session.post(
        "/notification",
        {
            "notification_id": notification_id,
            "event": "credential_deleted",
            "event_description": "user removed it",
        },
    )
    assert response.status == 204
    assert seen[-1].event_description == "user removed it"
    cases: list[tuple[Any, str]] = [
        ({"notification_id": "unknown", "event": "credential_accepted"}, "invalid_notification_id"),
        (
            {"notification_id": notification_id, "event": "credential_liked"},
            "invalid_notification_request",
        ),
        ({"event": "credential_accepted"}, "invalid_notification_request"),
        (
            {
                "notification_id": notification_id,
                "event": "credential_failure",
                "event_description": 'bad "quote"',
            },
            "invalid_notification_request",
        ),
    ]
    for payload, code in cases:
        response = await session.post("/notification", payload)
        assert (response.status, response.json_body()["error"]) == (400, code), payload
    response = await session.post("/notification", None, raw=b"nope")
    assert (response.status, response.json_body()["error"]) == (400, "invalid_notification_request")
    response = await session.post("/notification", body, auth=False)
    assert response.status == 401
    other = await pre_authorized_session(issuer, transport, clock)
    response = await other.post("/notification", body)
    assert (response.status, response.json_body()["error"]) == (400, "invalid_notification_id")
