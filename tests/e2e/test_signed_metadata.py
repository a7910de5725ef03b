"""Signed Credential Issuer metadata, both roles: the 1.0 ``application/jwt`` form (OID4VCI 1.0
§12.2.3) and the Draft 13–15 ``signed_metadata`` member; the wallet verifies it (chain to its
roots, ``sub``, freshness, signature), prefers the signed values and, by policy, requires it."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from oid4vci.errors import SignedMetadataError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import Issuer
from oid4vci.issuer.config import SignedMetadataSettings
from oid4vci.jose import b64url_decode, b64url_encode, decode_jws
from oid4vci.signed_metadata import (
    SIGNED_METADATA_TYP,
    create_signed_metadata,
    verify_signed_metadata,
)
from oid4vci.versions import SpecVersion
from oid4vci.wallet import FlowState, WalletPolicy
from oid4vci.wallet.discovery import read_issuer_metadata_response
from tests.conftest import FakeClock
from tests.e2e.conftest import ISSUER, E2eIssuer, build_e2e_issuer, make_client
from tests.x509_support import Pki, make_certificate, make_pki

METADATA = ISSUER + "/.well-known/openid-credential-issuer"
VERSIONS = [SpecVersion.V1, SpecVersion.DRAFT_15, SpecVersion.DRAFT_14, SpecVersion.DRAFT_13]


def signing_issuer(version: SpecVersion, clock: FakeClock, pki: Pki) -> E2eIssuer:
    e2e = build_e2e_issuer(version, clock)
    settings = SignedMetadataSettings(
        metadata_signer=pki.signer, metadata_signer_chain=[pki.leaf, pki.intermediate]
    )
    config = attrs.evolve(e2e.issuer.config, signed_metadata=settings)
    e2e.issuer = Issuer(config, offer_templates=e2e.issuer.offer_templates.values())
    return e2e


async def get_metadata(e2e: E2eIssuer, accept: str = "application/json") -> HttpResponse:
    return await e2e.handle(HttpRequest(method="GET", url=METADATA, headers={"Accept": accept}))


def policy(pki: Pki, **kw: Any) -> WalletPolicy:
    return WalletPolicy(trusted_x5c_roots=[pki.root], **kw)


# --- the issuer ------------------------------------------------------------------------------


async def test_v1_serves_a_jwt_when_asked(clock: FakeClock) -> None:
    pki = make_pki()
    e2e = signing_issuer(SpecVersion.V1, clock, pki)
    plain = await get_metadata(e2e)
    assert plain.media_type == "application/json"
    assert "signed_metadata" not in plain.json_body()
    assert plain.headers.get("Vary") == "Accept, Accept-Language"
    signed = await get_metadata(e2e, "application/jwt, application/json;q=0.9")
    assert signed.media_type == "application/jwt"
    decoded = decode_jws(signed.body.decode())
    assert decoded.header["typ"] == SIGNED_METADATA_TYP and len(decoded.header["x5c"]) == 2
    claims = decoded.payload
    assert claims["sub"] == ISSUER and claims["iat"] == int(clock())
    assert claims["exp"] == int(clock()) + 24 * 3600
    assert {k: v for k, v in claims.items() if k not in ("iss", "sub", "iat", "exp")} == (
        plain.json_body()
    )
    # cached: the same signature until half the lifetime has passed, then signed again
    assert (await get_metadata(e2e, "application/jwt")).body == signed.body
    clock.advance(12 * 3600 + 1)
    again = await get_metadata(e2e, "application/jwt")
    assert again.body != signed.body
    assert decode_jws(again.body.decode()).payload["iat"] == int(clock())
    # a zero weight is a refusal of the JWT form
    assert (await get_metadata(e2e, "application/jwt;q=0")).media_type == "application/json"


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        ("application/jwt;q=0.1, application/json;q=0.9", "application/json"),
        ("application/jwt;q=0.5, */*", "application/json"),
        ("application/jwt, */*;q=0.1", "application/jwt"),
        ("application/json;q=0.2, application/jwt;q=0.8", "application/jwt"),
        ("*/*", "application/json"),
        ("application/jwt;q=x", "application/json"),
    ],
)
async def test_v1_follows_the_accept_weights(
    clock: FakeClock, accept: str, media_type: str
) -> None:
    """OID4VCI 1.0 §12.2.2 with RFC 9110 §12.5.1: the JWT form when the wallet weighs it at
    least as high as JSON (``q=0.1`` for the JWT against ``0.9`` for JSON used to get the JWT)."""
    e2e = signing_issuer(SpecVersion.V1, clock, make_pki())
    assert (await get_metadata(e2e, accept)).media_type == media_type


@pytest.mark.parametrize("version", VERSIONS[1:], ids=["d15", "d14", "d13"])
async def test_drafts_carry_signed_metadata(clock: FakeClock, version: SpecVersion) -> None:
    pki = make_pki()
    e2e = signing_issuer(version, clock, pki)
    for accept in ("application/json", "application/jwt"):
        response = await get_metadata(e2e, accept)
        assert response.media_type == "application/json"
        doc = response.json_body()
        claims = verify_signed_metadata(
            doc["signed_metadata"],
            credential_issuer=ISSUER,
            trust_anchors=[pki.root],
            typed=False,
            clock=clock,
        )
        assert claims == {k: v for k, v in doc.items() if k != "signed_metadata"}


# --- the wallet ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS, ids=["v1", "d15", "d14", "d13"])
@pytest.mark.parametrize("mode", ["verify-if-present", "require"])
async def test_wallet_verifies_signed_metadata(
    clock: FakeClock, version: SpecVersion, mode: str
) -> None:
    pki = make_pki()
    e2e = signing_issuer(version, clock, pki)
    client = make_client(e2e, clock, policy=policy(pki, signed_metadata=mode))
    result = await client.accept_offer(e2e.offer_links["pre_auth"])
    assert result.state is FlowState.DONE and result.credentials[0].verified


@pytest.mark.parametrize("version", VERSIONS[1:], ids=["d15", "d14", "d13"])
async def test_signed_values_win_over_plain_ones(
    clock: FakeClock, version: SpecVersion, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A man in the middle rewrites the plain credential endpoint; the signed one is used (the
    1.0 form has no plain part)."""
    pki = make_pki()
    e2e = signing_issuer(version, clock, pki)
    inner = e2e.issuer.handle

    async def tampering(request: HttpRequest) -> HttpResponse:
        response = await inner(request)
        if "/.well-known/openid-credential-issuer" in request.url and (
            response.media_type == "application/json"
        ):
            doc = response.json_body()
            doc["credential_endpoint"] = "https://evil.example/credential"
            return HttpResponse.json(200, doc)
        return response

    monkeypatch.setattr(e2e.issuer, "handle", tampering)
    client = make_client(e2e, clock, policy=policy(pki))
    result = await client.accept_offer(e2e.offer_links["pre_auth"])
    assert result.credentials[0].verified
    assert len(e2e.calls("/credential")) == 1


async def test_required_but_absent_is_refused_before_the_code_is_spent(clock: FakeClock) -> None:
    pki = make_pki()
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    client = make_client(e2e, clock, policy=policy(pki, signed_metadata="require"))
    with pytest.raises(SignedMetadataError, match="not signed"):
        await client.accept_offer(e2e.offer_links["pre_auth"])
    assert e2e.calls("/token") == []


async def test_ignore_asks_for_json_only(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    pki = make_pki()
    e2e = signing_issuer(SpecVersion.V1, clock, make_pki())  # a signer the wallet does not trust
    seen: list[str | None] = []
    inner = e2e.issuer.handle

    async def recording(request: HttpRequest) -> HttpResponse:
        if "/.well-known/openid-credential-issuer" in request.url:
            seen.append(request.headers.get("Accept"))
        return await inner(request)

    monkeypatch.setattr(e2e.issuer, "handle", recording)
    client = make_client(e2e, clock, policy=policy(pki, signed_metadata="ignore"))
    assert (await client.accept_offer(e2e.offer_links["pre_auth"])).credentials
    assert seen == ["application/json"]


# --- refusals --------------------------------------------------------------------------------


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    claims["credential_endpoint"] = "https://evil.example/credential"
    return ".".join([header, b64url_encode(json.dumps(claims).encode()), signature])


async def _token(pki: Pki, clock: FakeClock, *, issuer: str = ISSUER, **kw: Any) -> str:
    return await create_signed_metadata(
        {"credential_issuer": issuer, "credential_endpoint": issuer + "/credential"},
        signer=kw.pop("signer", pki.signer),
        chain=kw.pop("chain", [pki.leaf, pki.intermediate]),
        credential_issuer=issuer,
        lifetime=3600,
        clock=clock,
        **kw,
    )


def _jwt_response(token: str) -> HttpResponse:
    return HttpResponse(
        status=200, headers={"Content-Type": "application/jwt"}, body=token.encode()
    )


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("untrusted chain", "untrusted"),
        ("wrong sub", "sub"),
        ("expired", "expired"),
        ("tampered", "signature"),
        ("self-signed signer", "self-signed"),
        ("no typ", "typ"),
        ("no x5c", "x5c"),
        ("not a JWT", "malformed"),
    ],
)
async def test_refusals(clock: FakeClock, case: str, words: str) -> None:
    pki = make_pki()
    trusted = policy(pki)
    token = await _token(pki, clock)
    if case == "untrusted chain":
        trusted = policy(make_pki())
    elif case == "wrong sub":
        token = await _token(pki, clock, issuer="https://other.example")
    elif case == "expired":
        clock.advance(3600 + 61)
    elif case == "tampered":
        token = _tampered(token)
    elif case == "self-signed signer":
        from cryptography.hazmat.primitives.asymmetric import ec

        from oid4vci.jose import LocalSigner

        key = ec.generate_private_key(ec.SECP256R1())
        cert = make_certificate(key=key, subject="issuer.example", dns_names=["issuer.example"])
        trusted = WalletPolicy(trusted_x5c_roots=[cert])
        token = await _token(pki, clock, signer=LocalSigner("ES256", key), chain=[cert])
    elif case == "no typ":
        token = await _token(pki, clock, typed=False)
    elif case == "no x5c":
        token = await _token(pki, clock, chain=[])
    elif case == "not a JWT":
        token = "not.a-jwt"
    with pytest.raises(SignedMetadataError, match=words):
        read_issuer_metadata_response(_jwt_response(token), ISSUER, trusted, clock=clock)


@pytest.mark.parametrize("claim", ["iat", "exp"])
@pytest.mark.parametrize("value", ["NaN", "Infinity", "1" + "0" * 400, '"soon"'])
async def test_time_claims_must_be_finite_numbers(clock: FakeClock, claim: str, value: str) -> None:
    # exp = NaN passes every comparison and 10**400 is beyond any float: neither is a
    # NumericDate (RFC 7519 §2), so the metadata is refused, never accepted and never a crash.
    pki = make_pki()
    header, payload, _ = (await _token(pki, clock)).split(".")
    text = b64url_decode(payload).decode()
    claims = json.loads(text)
    text = text.replace(f'"{claim}":{claims[claim]}', f'"{claim}":{value}')
    assert value in text
    body = b64url_encode(text.encode())
    signature = b64url_encode(pki.signer.sign_sync(f"{header}.{body}".encode()))
    token = f"{header}.{body}.{signature}"
    with pytest.raises(SignedMetadataError, match=claim):
        read_issuer_metadata_response(_jwt_response(token), ISSUER, policy(pki), clock=clock)


async def test_draft_member_refusals(clock: FakeClock) -> None:
    pki = make_pki()
    token = await _token(pki, clock, typed=False)
    doc = {"credential_issuer": ISSUER, "credential_endpoint": "x", "signed_metadata": token}
    merged = read_issuer_metadata_response(
        HttpResponse.json(200, doc), ISSUER, policy(pki), clock=clock
    )
    assert merged is not None and merged["credential_endpoint"] == ISSUER + "/credential"
    assert "signed_metadata" not in merged
    for bad in (_tampered(token), 42):
        with pytest.raises(SignedMetadataError):
            read_issuer_metadata_response(
                HttpResponse.json(200, {**doc, "signed_metadata": bad}),
                ISSUER,
                policy(pki),
                clock=clock,
            )
    # ignore: the member is not read at all
    ignored = read_issuer_metadata_response(
        HttpResponse.json(200, {**doc, "signed_metadata": 42}),
        ISSUER,
        policy(pki, signed_metadata="ignore"),
        clock=clock,
    )
    assert ignored is not None and ignored["credential_endpoint"] == "x"


def test_settings_need_a_chain() -> None:
    from oid4vci.errors import UsageError

    pki = make_pki()
    with pytest.raises(UsageError):
        SignedMetadataSettings(metadata_signer=pki.signer, metadata_signer_chain=[])


async def test_discover_verifies_signed_metadata(clock: FakeClock) -> None:
    from oid4vci.wallet.discovery import discover

    pki = make_pki()
    for version in (SpecVersion.V1, SpecVersion.DRAFT_13):
        e2e = signing_issuer(version, clock, pki)
        found = await discover(
            e2e.transport(), ISSUER, policy=policy(pki, signed_metadata="require"), clock=clock
        )
        assert found.spec_version is version and "signed_metadata" not in found.issuer_metadata_json
        with pytest.raises(SignedMetadataError):
            await discover(e2e.transport(), ISSUER, policy=policy(make_pki()), clock=clock)
    unsigned = build_e2e_issuer(SpecVersion.V1, clock)
    with pytest.raises(SignedMetadataError):
        await discover(
            unsigned.transport(), ISSUER, policy=policy(pki, signed_metadata="require"), clock=clock
        )


async def test_draft_member_needs_iss(clock: FakeClock) -> None:
    from oid4vci.jose import create_jws
    from tests.x509_support import b64

    pki = make_pki()
    claims = {"sub": ISSUER, "iat": int(clock()), "credential_endpoint": "x"}
    token = await create_jws(pki.signer, claims, {"x5c": [b64(pki.leaf), b64(pki.intermediate)]})
    with pytest.raises(SignedMetadataError, match="iss"):
        verify_signed_metadata(
            token, credential_issuer=ISSUER, trust_anchors=[pki.root], typed=False, clock=clock
        )
    typed = await create_jws(
        pki.signer,
        claims,
        {"typ": SIGNED_METADATA_TYP, "x5c": [b64(pki.leaf), b64(pki.intermediate)]},
    )
    verified = verify_signed_metadata(
        typed, credential_issuer=ISSUER, trust_anchors=[pki.root], clock=clock
    )
    assert verified == {"credential_endpoint": "x"}  # 1.0: iss is optional
