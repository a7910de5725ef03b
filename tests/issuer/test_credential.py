"""The credential endpoint: parsing, errors with exact codes and statuses, batches, shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oid4vci.errors import CredentialRequestError, WireFormatError
from oid4vci.http import HttpRequest
from oid4vci.issuer import Issuer, parse_credential_request
from oid4vci.issuer.access_token import TokenContext
from oid4vci.issuer.credential import credential_response_body
from oid4vci.jose import LocalSigner, create_jws
from oid4vci.models.credential import (
    CredentialResponse,
    IssuedCredential,
    credential_response_to_json,
)
from oid4vci.versions import SpecVersion
from tests.conftest import FakeClock
from tests.issuer.test_service import (
    ISSUER,
    VCT,
    ClaimsHook,
    Session,
    check_sd_jwt_vc,
    fetch_jwks,
    make_config,
    pre_authorized_session,
    send,
    transport_for,
)
from tests.x509_support import Pki, make_pki


def _request(body: Any, content_type: str = "application/json") -> HttpRequest:
    import json

    return HttpRequest(
        method="POST",
        url=ISSUER + "/credential",
        headers={"Content-Type": content_type},
        body=json.dumps(body),
    )


def _context(**kwargs: Any) -> TokenContext:
    options: dict[str, Any] = {
        "grant_id": "g",
        "subject": "alice",
        "configuration_ids": ("identity",),
        "credential_identifiers": {"id-1": "identity"},
    }
    options.update(kwargs)
    return TokenContext(**options)


def _parse_error(body: Any, clock: FakeClock, **kwargs: Any) -> CredentialRequestError:
    with pytest.raises(CredentialRequestError) as info:
        parse_credential_request(_request(body), make_config(clock), **kwargs)
    return info.value


PROOFS = {"jwt": ["a.b.c"]}


def test_parse_selectors(clock: FakeClock) -> None:
    config = make_config(clock)
    ctx = _context()
    by_id = parse_credential_request(
        _request({"credential_identifier": "id-1", "proofs": PROOFS}), config, context=ctx
    )
    assert by_id.configuration_id == "identity"
    assert by_id.version is SpecVersion.V1
    assert by_id.credential_identifier == "id-1"
    by_cfg = parse_credential_request(
        _request(
            {"credential_configuration_id": "identity", "proof": {"proof_type": "jwt", "jwt": "x"}}
        ),
        config,
        context=ctx,
    )
    assert by_cfg.version is SpecVersion.DRAFT_15
    assert by_cfg.single_proof and by_cfg.proofs == ("x",)
    by_format = parse_credential_request(
        _request({"format": "vc+sd-jwt", "vct": VCT, "proofs": PROOFS}), config, context=ctx
    )
    assert by_format.version is SpecVersion.DRAFT_14
    assert by_format.configuration_id == "identity"
    # the token's version hint decides for shapes several versions share
    hinted = parse_credential_request(
        _request({"credential_identifier": "id-1", "proofs": PROOFS}),
        config,
        context=_context(version=SpecVersion.DRAFT_14),
    )
    assert hinted.version is SpecVersion.DRAFT_14
    # unknown members are ignored
    extra = parse_credential_request(
        _request({"credential_configuration_id": "identity", "proofs": PROOFS, "x": 1}), config
    )
    assert extra.configuration_id == "identity"


@pytest.mark.parametrize(
    "members",
    [
        {"format": "dc+sd-jwt"},
        {"proof": {"proof_type": "jwt", "jwt": "x"}},
        {"format": "vc+sd-jwt", "vct": "urn:other", "proof": {"proof_type": "jwt", "jwt": "x"}},
    ],
)
@pytest.mark.parametrize(
    "selector", [{"credential_configuration_id": "identity"}, {"credential_identifier": "id-1"}]
)
def test_v1_request_ignores_unknown_members(
    clock: FakeClock, selector: dict[str, str], members: dict[str, Any]
) -> None:
    # OID4VCI 1.0 §8.2: a 1.0 request (1.0 selector + proofs) that also carries the draft
    # members format / proof is answered as 1.0, not refused.
    parsed = parse_credential_request(
        _request({**selector, "proofs": PROOFS, **members}), make_config(clock), context=_context()
    )
    assert parsed.version is SpecVersion.V1
    assert parsed.configuration_id == "identity"
    assert parsed.proofs == ("a.b.c",)
    assert parsed.single_proof is False


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {"credential_configuration_id": "nope", "proofs": PROOFS},
            "unknown_credential_configuration",
        ),
        (
            {"credential_configuration_id": "nope", "proof": {"proof_type": "jwt", "jwt": "x"}},
            "unsupported_credential_type",
        ),
        ({"credential_identifier": "nope", "proofs": PROOFS}, "unknown_credential_identifier"),
        (
            {"credential_identifier": "nope", "proof": {"proof_type": "jwt", "jwt": "x"}},
            "invalid_credential_request",
        ),
        (
            {"format": "vc+sd-jwt", "vct": "urn:unknown", "proofs": PROOFS},
            "unsupported_credential_type",
        ),
        ({"format": "jwt_vc_json", "proofs": PROOFS}, "unsupported_credential_format"),
        ({"format": "vc+sd-jwt", "proofs": PROOFS}, "invalid_credential_request"),
        (
            {
                "credential_configuration_id": "identity",
                "credential_identifier": "id-1",
                "proofs": PROOFS,
            },
            "invalid_credential_request",
        ),
        ({"proofs": PROOFS}, "invalid_credential_request"),
        ({"credential_configuration_id": "identity"}, "invalid_proof"),
        ({"credential_configuration_id": "identity", "proofs": {"ldp_vp": [{}]}}, "invalid_proof"),
        (
            {"credential_configuration_id": "identity", "proofs": {"jwt": []}},
            "invalid_proof",  # OID4VCI 1.0 §8.3.1.2: the proofs parameter is invalid
        ),
        (
            {
                "credential_configuration_id": "identity",
                "proofs": PROOFS,
                "credential_response_encryption": {"jwk": {}, "enc": "A256GCM"},
            },
            "invalid_encryption_parameters",
        ),
    ],
)
def test_parse_errors(clock: FakeClock, body: Any, code: str) -> None:
    err = _parse_error(body, clock, context=_context())
    assert err.error == code
    assert err.status == 400


def test_configuration_not_covered_by_the_token(clock: FakeClock) -> None:
    body = {"credential_configuration_id": "other", "proofs": PROOFS}
    assert _parse_error(body, clock, context=_context()).error == "credential_request_denied"
    d13 = {
        "format": "vc+sd-jwt",
        "vct": "https://issuer.example/other",
        "proof": {"proof_type": "jwt", "jwt": "x"},
    }
    assert _parse_error(d13, clock, context=_context()).error == "invalid_credential_request"


def test_body_must_be_json(clock: FakeClock) -> None:
    config = make_config(clock)
    with pytest.raises(CredentialRequestError) as info:
        parse_credential_request(_request({}, "text/plain"), config)
    assert (info.value.error, info.value.status) == ("invalid_credential_request", 415)
    bad = HttpRequest(
        method="POST",
        url=ISSUER + "/credential",
        headers={"Content-Type": "application/json"},
        body=b"{nope",
    )
    with pytest.raises(CredentialRequestError) as info:
        parse_credential_request(bad, config)
    assert (info.value.error, info.value.status) == ("invalid_credential_request", 400)
    with pytest.raises(CredentialRequestError) as info:
        parse_credential_request(_request([1, 2]), config)
    assert info.value.error == "invalid_credential_request"


def test_response_shapes() -> None:
    creds = ["a~", "b~"]
    assert credential_response_body(SpecVersion.DRAFT_13, credentials=["a~"], c_nonce="n", c_nonce_expires_in=5) == {
        "credential": "a~", "c_nonce": "n", "c_nonce_expires_in": 5,
    }  # fmt: skip
    assert credential_response_body(
        SpecVersion.DRAFT_14, credentials=["a~"], single_proof=True
    ) == {"credential": "a~"}
    # one credential travels as ``credential`` (only there may notification_id accompany it)
    assert credential_response_body(
        SpecVersion.DRAFT_14, credentials=["a~"], single_proof=False, notification_id="n1"
    ) == {"credential": "a~", "notification_id": "n1"}
    assert credential_response_body(
        SpecVersion.DRAFT_14, credentials=creds, single_proof=False, notification_id="n1"
    ) == {"credentials": creds}
    for version in (SpecVersion.DRAFT_15, SpecVersion.V1):
        body = credential_response_body(
            version, credentials=creds, notification_id="n1", c_nonce="x"
        )
        assert body == {
            "credentials": [{"credential": "a~"}, {"credential": "b~"}],
            "notification_id": "n1",
        }
    assert credential_response_body(SpecVersion.V1, transaction_id="t", interval=7) == {
        "transaction_id": "t",
        "interval": 7,
    }
    assert credential_response_body(SpecVersion.DRAFT_15, transaction_id="t", interval=7) == {
        "transaction_id": "t"
    }


@pytest.mark.parametrize("version", list(SpecVersion))
@pytest.mark.parametrize("credentials", [None, [], ["a~"], ["a~", "b~"]])
@pytest.mark.parametrize("notification_id", [None, "n1"])
@pytest.mark.parametrize("deferred", [False, True])
def test_response_body_is_what_the_response_model_writes(
    version: SpecVersion, credentials: list[str] | None, notification_id: str | None, deferred: bool
) -> None:
    """The direct body of a Draft 15 / 1.0 credentials answer is byte for byte the body of the
    CredentialResponse model written by credential_response_to_json, in every version."""
    kwargs: dict[str, Any] = {
        "credentials": credentials,
        "notification_id": notification_id,
        "c_nonce": "cn",
        "c_nonce_expires_in": 60,
    }
    if deferred:
        kwargs.update(transaction_id="t", interval=5)
    model = CredentialResponse(
        credentials=None
        if credentials is None
        else tuple(IssuedCredential(credential=c) for c in credentials),
        transaction_id=kwargs.get("transaction_id"),
        interval=kwargs.get("interval"),
        notification_id=notification_id,
        c_nonce="cn",
        c_nonce_expires_in=60,
    )
    if version is SpecVersion.DRAFT_13 and credentials is not None and len(credentials) != 1:
        with pytest.raises(WireFormatError):
            credential_response_body(version, **kwargs)
        return
    expected = credential_response_to_json(model, version)
    body = credential_response_body(version, **kwargs)
    assert body == expected
    assert json.dumps(body) == json.dumps(expected)  # the same members in the same order


# -- through the endpoint ---------------------------------------------------------------------


async def _credential(session: Session, body: Any) -> tuple[int, dict[str, Any]]:
    response = await session.post("/credential", body)
    assert response.headers.get("Cache-Control") == "no-store"
    return response.status, response.json_body()


async def test_batch_of_ten_keys(clock: FakeClock) -> None:
    issuer = Issuer(make_config(clock, batch_size=10))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock)
    keys = [LocalSigner.generate() for _ in range(10)]
    nonce = await session.nonce()
    proofs = [await session.proof(k, nonce) for k in keys]
    status, body = await _credential(
        session, {"credential_configuration_id": "identity", "proofs": {"jwt": proofs}}
    )
    assert status == 200, body
    jwks = await fetch_jwks(transport)
    creds = [c["credential"] for c in body["credentials"]]
    assert len(creds) == 10
    for cred, key in zip(creds, keys, strict=True):
        check_sd_jwt_vc(cred, jwks=jwks, holder_jwk=key.public_jwk, typ="dc+sd-jwt")
    assert len(set(creds)) == 10


async def test_batch_over_size_and_duplicate_keys_refused_without_consuming_the_nonce(
    clock: FakeClock,
) -> None:
    hook = ClaimsHook()
    issuer = Issuer(make_config(clock, batch_size=3, hook=hook))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock)
    nonce = await session.nonce()
    keys = [LocalSigner.generate() for _ in range(4)]
    proofs = [await session.proof(k, nonce) for k in keys]
    status, body = await _credential(
        session, {"credential_configuration_id": "identity", "proofs": {"jwt": proofs}}
    )
    assert (status, body["error"]) == (400, "invalid_proof")
    same = [proofs[0], await session.proof(keys[0], nonce)]
    status, body = await _credential(
        session, {"credential_configuration_id": "identity", "proofs": {"jwt": same}}
    )
    assert (status, body["error"]) == (400, "invalid_proof")
    assert hook.calls == []
    # the nonce was not consumed by the refused requests
    status, body = await _credential(
        session, {"credential_configuration_id": "identity", "proofs": {"jwt": proofs[:3]}}
    )
    assert status == 200, body
    assert len(body["credentials"]) == 3


async def test_proof_errors_per_version(clock: FakeClock) -> None:
    issuer = Issuer(make_config(clock))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock)
    key = LocalSigner.generate()
    # 1.0: unknown nonce → invalid_nonce, no c_nonce in the body
    proof = await session.proof(key, "0123456789abcdef0123")
    status, body = await _credential(
        session, {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
    )
    assert (status, body["error"]) == (400, "invalid_nonce")
    assert "c_nonce" not in body
    # 1.0: no nonce → invalid_proof
    proof = await session.proof(key, None)
    status, body = await _credential(
        session, {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
    )
    assert (status, body["error"]) == (400, "invalid_proof")
    # wrong audience → invalid_proof
    proof = await session.proof(key, await session.nonce(), aud="https://other.example")
    status, body = await _credential(
        session, {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
    )
    assert (status, body["error"]) == (400, "invalid_proof")
    # Draft 13 shape: a stale nonce is invalid_proof with a fresh c_nonce that then works
    proof = await session.proof(key, "0123456789abcdef0123")
    d13 = {"format": "vc+sd-jwt", "vct": VCT, "proof": {"proof_type": "jwt", "jwt": proof}}
    status, body = await _credential(session, d13)
    assert (status, body["error"]) == (400, "invalid_proof")
    assert isinstance(body["c_nonce"], str) and body["c_nonce_expires_in"] == 300
    proof = await session.proof(key, body["c_nonce"])
    d13["proof"] = {"proof_type": "jwt", "jwt": proof}
    status, body = await _credential(session, d13)
    assert status == 200, body
    assert isinstance(body["credential"], str) and isinstance(body["c_nonce"], str)


async def test_token_errors_are_401_with_challenge(clock: FakeClock) -> None:
    issuer = Issuer(make_config(clock))
    transport = transport_for(issuer)
    body = {"credential_configuration_id": "identity", "proofs": PROOFS}
    response = await send(transport, "POST", ISSUER + "/credential", json_body=body)
    assert response.status == 401
    assert (response.headers.get("WWW-Authenticate") or "").startswith("DPoP")
    response = await send(
        transport, "POST", ISSUER + "/credential", json_body=body,
        headers={"Authorization": "DPoP not-a-real-token"},
    )  # fmt: skip
    assert response.status == 401
    assert 'error="invalid_token"' in (response.headers.get("WWW-Authenticate") or "")
    assert response.json_body()["error"] == "invalid_token"
    # a DPoP-bound token sent as Bearer is refused
    session = await pre_authorized_session(issuer, transport, clock)
    response = await send(
        transport, "POST", ISSUER + "/credential", json_body=body,
        headers={"Authorization": f"Bearer {session.token}"},
    )  # fmt: skip
    assert response.status == 401
    # token fine but no DPoP proof
    response = await send(
        transport, "POST", ISSUER + "/credential", json_body=body,
        headers={"Authorization": f"DPoP {session.token}"},
    )  # fmt: skip
    assert response.status == 401
    assert 'error="invalid_dpop_proof"' in (response.headers.get("WWW-Authenticate") or "")


async def test_denied_by_claims_source(clock: FakeClock) -> None:
    hook = ClaimsHook()
    hook.deny = True
    issuer = Issuer(make_config(clock, hook=hook))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock)
    proof = await session.proof(LocalSigner.generate(), await session.nonce())
    status, body = await _credential(
        session, {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
    )
    assert (status, body["error"]) == (400, "credential_request_denied")


async def test_unknown_configuration_through_endpoint(clock: FakeClock) -> None:
    issuer = Issuer(make_config(clock))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock)
    status, body = await _credential(
        session, {"credential_configuration_id": "nope", "proofs": PROOFS}
    )
    assert (status, body["error"]) == (400, "unknown_credential_configuration")
    status, body = await _credential(session, {"credential_identifier": "nope", "proofs": PROOFS})
    assert (status, body["error"]) == (400, "unknown_credential_identifier")
    status, body = await _credential(
        session, {"credential_configuration_id": "other", "proofs": PROOFS}
    )
    assert (status, body["error"]) == (400, "credential_request_denied")
    response = await session.post("/credential", None, raw=b"not json")
    assert response.status == 415
    assert response.json_body()["error"] == "invalid_credential_request"


async def _x5c_proof(session: Session, pki: Pki, nonce: str) -> str:
    claims = {"aud": session.issuer, "iat": int(session.clock()), "nonce": nonce}
    header = {"typ": "openid4vci-proof+jwt", "x5c": pki.x5c}
    return await create_jws(pki.signer, claims, header)


async def test_x5c_proofs_validate_against_the_configured_trust_anchors(clock: FakeClock) -> None:
    trusted, stranger = make_pki(), make_pki(root_name="Another Root")
    issuer = Issuer(make_config(clock, x5c_trust_anchors=[trusted.root]))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock)
    nonce = await session.nonce()
    body = {"credential_configuration_id": "identity"}
    status, answer = await _credential(
        session, body | {"proofs": {"jwt": [await _x5c_proof(session, stranger, nonce)]}}
    )
    assert (status, answer["error"]) == (400, "invalid_proof")
    # the refused chain did not spend the nonce; the trusted one is bound via cnf.jwk
    status, answer = await _credential(
        session, body | {"proofs": {"jwt": [await _x5c_proof(session, trusted, nonce)]}}
    )
    assert status == 200, answer
    jwks = await fetch_jwks(transport)
    check_sd_jwt_vc(
        answer["credentials"][0]["credential"],
        jwks=jwks,
        holder_jwk=trusted.signer.public_jwk,
        typ="dc+sd-jwt",
    )
