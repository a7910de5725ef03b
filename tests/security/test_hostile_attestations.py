"""Hostile wallet attestations at the token endpoint and hostile key attestations at the
credential endpoint: every one is refused with the exact error (``invalid_client`` 400,
``invalid_proof`` 400), never a 500, never an exception, and a refused token request leaves its
pre-authorized code redeemable. Random header values are fuzzed too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oid4vci.attestation import (
    CLIENT_ATTESTATION_HEADER,
    CLIENT_ATTESTATION_POP_HEADER,
    CLIENT_ATTESTATION_POP_TYP,
    CLIENT_ATTESTATION_TYP,
    KEY_ATTESTATION_TYP,
    create_client_attestation_pop,
)
from oid4vci.dpop import build_dpop_jwt
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.jose import LocalSigner, create_jws
from oid4vci.models import PRE_AUTHORIZED_CODE_GRANT, PROOF_TYP
from oid4vci.versions import SpecVersion
from tests.attestation_support import (
    CLIENT_ID,
    ISSUER,
    AttestedIssuer,
    attested_issuer,
    make_provider,
    provider_pki,
)
from tests.conftest import FakeClock
from tests.security.conftest import FUZZ_PROFILE
from tests.security.support import hs256_jws, unsigned_jws
from tests.x509_support import Pki, b64, make_pki

TOKEN = ISSUER + "/token"
CREDENTIAL = ISSUER + "/credential"
_PKI = provider_pki()
FUZZ = settings.get_profile(FUZZ_PROFILE)
POP = {"typ": CLIENT_ATTESTATION_POP_TYP}


@attrs.define
class Target:
    """An issuer requiring wallet and key attestations, its PKI and a clock."""

    clock: FakeClock
    pki: Pki
    issuer: AttestedIssuer

    async def code(self) -> str:
        created = await self.issuer.issuer.create_pre_authorized_offer(
            configuration_ids=[self.issuer.configuration_id], subject="alice"
        )
        assert created.pre_authorized_code is not None
        return created.pre_authorized_code

    async def token(
        self, code: str, headers: list[tuple[str, str]], key: LocalSigner | None = None
    ) -> HttpResponse:
        dpop = await build_dpop_jwt(key or LocalSigner.generate(), "POST", TOKEN, clock=self.clock)
        return await self.issuer.handle(
            HttpRequest.form(
                "POST",
                TOKEN,
                {"grant_type": PRE_AUTHORIZED_CODE_GRANT, "pre-authorized_code": code},
                headers=[*headers, ("DPoP", dpop)],
            )
        )

    async def good_headers(self) -> list[tuple[str, str]]:
        provider = make_provider(self.pki, self.clock)
        attestation = await provider.client_attestation(authorization_server=ISSUER)
        pop = await create_client_attestation_pop(
            attestation.instance_key, audience=ISSUER, client_id=CLIENT_ID, clock=self.clock
        )
        return [
            (CLIENT_ATTESTATION_HEADER, attestation.attestation),
            (CLIENT_ATTESTATION_POP_HEADER, pop),
        ]


def make_target(clock: FakeClock, **kw: Any) -> Target:
    return Target(clock=clock, pki=_PKI, issuer=attested_issuer(clock, _PKI, **kw))


def invalid_client(response: HttpResponse) -> None:
    assert response.status == 400, response.body
    assert response.headers.get("Cache-Control") == "no-store"
    assert response.json_body()["error"] == "invalid_client"


Maker = Callable[[Target, LocalSigner], Awaitable[str]]


def signed(header: dict[str, Any], payload: Callable[[int, LocalSigner], dict[str, Any]]) -> Maker:
    async def make(target: Target, instance: LocalSigner) -> str:
        now = int(target.clock())
        return await create_jws(target.pki.signer, payload(now, instance), header)

    return make


def raw(text: str) -> Maker:
    async def make(target: Target, instance: LocalSigner) -> str:
        return text

    return make


def good_claims(now: int, instance: LocalSigner) -> dict[str, Any]:
    return {"sub": CLIENT_ID, "iat": now, "exp": now + 600, "cnf": {"jwk": instance.public_jwk}}


def with_claims(**changes: Any) -> Callable[[int, LocalSigner], dict[str, Any]]:
    def payload(now: int, instance: LocalSigner) -> dict[str, Any]:
        claims = good_claims(now, instance)
        for name, value in changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    return payload


def header(**extra: Any) -> dict[str, Any]:
    return {"typ": CLIENT_ATTESTATION_TYP, "x5c": _PKI.x5c, **extra}


def self_signed_x5c() -> list[str]:
    other = make_pki()
    return [b64(other.root)]


HOSTILE_ATTESTATIONS: dict[str, Maker] = {
    "empty": raw(""),
    "three dots": raw("a.b.c"),
    "huge": raw("e" * 200_000),
    "not base64": raw("!!!.???.***"),
    "alg none": raw(
        unsigned_jws({"alg": "none", "typ": CLIENT_ATTESTATION_TYP}, {"sub": CLIENT_ID}, b"")
    ),
    "hs256": raw(
        hs256_jws({"typ": CLIENT_ATTESTATION_TYP, "x5c": _PKI.x5c}, {"sub": CLIENT_ID}, b"k")
    ),
    "crit header": signed(header(crit=["x"], x=1), good_claims),
    "x5c a string": signed(header(x5c=_PKI.x5c[0]), good_claims),
    "x5c empty": signed(header(x5c=[]), good_claims),
    "x5c garbage": signed(header(x5c=["%%%"]), good_claims),
    "x5c too many": signed(header(x5c=_PKI.x5c * 6), good_claims),
    "x5c of numbers": signed(header(x5c=[1, 2]), good_claims),
    "self-signed x5c": signed(header(x5c=self_signed_x5c()), good_claims),
    "no typ": signed({"x5c": _PKI.x5c}, good_claims),
    "PoP typ": signed(header(typ=CLIENT_ATTESTATION_POP_TYP), good_claims),
    "sub a number": signed(header(), with_claims(sub=7)),
    "sub empty": signed(header(), with_claims(sub="")),
    "exp missing": signed(header(), with_claims(exp=None)),
    "exp a string": signed(header(), with_claims(exp="later")),
    "exp true": signed(header(), with_claims(exp=True)),
    "exp NaN": signed(header(), with_claims(exp=float("nan"))),
    "exp infinite": signed(header(), with_claims(exp=float("inf"))),
    "exp huge": signed(header(), with_claims(exp=10**400)),
    "iat in the future": signed(header(), with_claims(iat=2_000_000_000)),
    "cnf a string": signed(header(), with_claims(cnf="jwk")),
    "cnf without jwk": signed(header(), with_claims(cnf={"kid": "1"})),
    "cnf jwk symmetric": signed(header(), with_claims(cnf={"jwk": {"kty": "oct", "k": "AAAA"}})),
    "cnf jwk nonsense": signed(header(), with_claims(cnf={"jwk": {"kty": "EC", "crv": "P-256"}})),
    "cnf jwk a list": signed(header(), with_claims(cnf={"jwk": [1]})),
}


@pytest.mark.parametrize("name", list(HOSTILE_ATTESTATIONS))
async def test_hostile_client_attestations(clock: FakeClock, name: str) -> None:
    target = make_target(clock, key_required=None)
    instance = LocalSigner.generate()
    attestation = await HOSTILE_ATTESTATIONS[name](target, instance)
    pop = await create_client_attestation_pop(instance, audience=ISSUER, clock=clock)
    code = await target.code()
    invalid_client(
        await target.token(
            code, [(CLIENT_ATTESTATION_HEADER, attestation), (CLIENT_ATTESTATION_POP_HEADER, pop)]
        )
    )
    assert (await target.token(code, await target.good_headers())).status == 200


def pop_claims(**changes: Any) -> Callable[[int, LocalSigner], dict[str, Any]]:
    def payload(now: int, instance: LocalSigner) -> dict[str, Any]:
        claims: dict[str, Any] = {"aud": ISSUER, "jti": "j-1", "iat": now, "iss": CLIENT_ID}
        for name, value in changes.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    return payload


HOSTILE_POPS: dict[str, tuple[dict[str, Any], Callable[[int, LocalSigner], dict[str, Any]]]] = {
    "no typ": ({}, pop_claims()),
    "attestation typ": ({"typ": CLIENT_ATTESTATION_TYP}, pop_claims()),
    "aud list of two": (POP, pop_claims(aud=[ISSUER, "https://other.example"])),
    "aud missing": (POP, pop_claims(aud=None)),
    "jti missing": (POP, pop_claims(jti=None)),
    "jti a number": (POP, pop_claims(jti=5)),
    "jti huge": (POP, pop_claims(jti="j" * 10_000)),
    "iat missing": (POP, pop_claims(iat=None)),
    "iat NaN": (POP, pop_claims(iat=float("nan"))),
    "iat a string": (POP, pop_claims(iat="now")),
    "iss another client": (POP, pop_claims(iss="https://other.example")),
}


@pytest.mark.parametrize("name", list(HOSTILE_POPS))
async def test_hostile_pops(clock: FakeClock, name: str) -> None:
    target = make_target(clock, key_required=None)
    provider = make_provider(target.pki, clock)
    attestation = await provider.client_attestation(authorization_server=ISSUER)
    pop_header, payload = HOSTILE_POPS[name]
    pop = await create_jws(
        attestation.instance_key, payload(int(clock()), LocalSigner.generate()), pop_header
    )
    code = await target.code()
    invalid_client(
        await target.token(
            code,
            [
                (CLIENT_ATTESTATION_HEADER, attestation.attestation),
                (CLIENT_ATTESTATION_POP_HEADER, pop),
            ],
        )
    )
    assert (await target.token(code, await target.good_headers())).status == 200


header_values = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=0, max_size=300
)
jws_like = st.builds(
    lambda h, p, s: f"{h}.{p}.{s}",
    st.sampled_from(
        [
            "eyJhbGciOiJFUzI1NiIsInR5cCI6Im9hdXRoLWNsaWVudC1hdHRlc3RhdGlvbitqd3QifQ",
            "eyJhbGciOiJub25lIn0",
            "W10",
            "e30",
        ]
    ),
    st.sampled_from(["e30", "eyJzdWIiOjF9", "W10", "bnVsbA", "eyJleHAiOiJOYU4ifQ"]),
    header_values,
)


@FUZZ
@given(
    attestation=st.one_of(header_values, jws_like),
    pop=st.one_of(header_values, jws_like),
    repeat=st.booleans(),
)
async def test_fuzzed_attestation_headers_are_invalid_client(
    attestation: str, pop: str, repeat: bool
) -> None:
    clock = FakeClock()
    target = _FUZZ_TARGETS.setdefault("t", make_target(clock, key_required=None))
    headers = [(CLIENT_ATTESTATION_HEADER, attestation), (CLIENT_ATTESTATION_POP_HEADER, pop)]
    if repeat:
        headers.append((CLIENT_ATTESTATION_POP_HEADER, pop))
    invalid_client(await target.token("unknown-code", headers))


_FUZZ_TARGETS: dict[str, Target] = {}


# --- key attestations at the credential endpoint ---------------------------------------------


async def session(target: Target) -> tuple[str, LocalSigner, str]:
    """An access token (DPoP-bound to the returned key) and a fresh c_nonce."""
    key = LocalSigner.generate()
    response = await target.token(await target.code(), await target.good_headers(), key)
    assert response.status == 200, response.body
    token = response.json_body()["access_token"]
    proof = await build_dpop_jwt(
        key, "POST", ISSUER + "/nonce", access_token=token, clock=target.clock
    )
    nonce_response = await target.issuer.handle(
        HttpRequest(
            method="POST",
            url=ISSUER + "/nonce",
            headers=[("Authorization", f"DPoP {token}"), ("DPoP", proof)],
        )
    )
    return token, key, nonce_response.json_body()["c_nonce"]


async def credential(
    target: Target, token: str, key: LocalSigner, proofs: dict[str, list[Any]]
) -> HttpResponse:
    proof = await build_dpop_jwt(key, "POST", CREDENTIAL, access_token=token, clock=target.clock)
    body = {"credential_configuration_id": target.issuer.configuration_id, "proofs": proofs}
    return await target.issuer.handle(
        HttpRequest.json(
            "POST", CREDENTIAL, body, headers=[("Authorization", f"DPoP {token}"), ("DPoP", proof)]
        )
    )


KeyAttestationMaker = Callable[[Target, LocalSigner, str], Awaitable[str]]


def key_attestation(
    change: Callable[[dict[str, Any], dict[str, Any]], None], signer_pki: Pki | None = None
) -> KeyAttestationMaker:
    async def make(target: Target, holder: LocalSigner, nonce: str) -> str:
        now = int(target.clock())
        pki = signer_pki or target.pki
        hdr: dict[str, Any] = {"typ": KEY_ATTESTATION_TYP, "x5c": pki.x5c}
        claims: dict[str, Any] = {
            "iat": now,
            "exp": now + 600,
            "nonce": nonce,
            "attested_keys": [holder.public_jwk],
            "key_storage": ["iso_18045_high"],
            "user_authentication": ["iso_18045_moderate"],
        }
        change(hdr, claims)
        return await create_jws(pki.signer, claims, hdr)

    return make


def _set(target: str, name: str, value: Any) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def change(hdr: dict[str, Any], claims: dict[str, Any]) -> None:
        place = hdr if target == "header" else claims
        if value is None:
            place.pop(name, None)
        else:
            place[name] = value

    return change


HOSTILE_KEY_ATTESTATIONS: dict[str, KeyAttestationMaker] = {
    "untrusted root": key_attestation(_set("claims", "iat", int(1e9)), signer_pki=make_pki()),
    "typ of draft 15": key_attestation(_set("header", "typ", "keyattestation+jwt")),
    "no x5c": key_attestation(_set("header", "x5c", None)),
    "x5c a string": key_attestation(_set("header", "x5c", "abc")),
    "exp missing": key_attestation(_set("claims", "exp", None)),
    "exp NaN": key_attestation(_set("claims", "exp", float("nan"))),
    "expired": key_attestation(_set("claims", "exp", 1_000)),
    "other nonce": key_attestation(_set("claims", "nonce", "not-the-c-nonce")),
    "attested_keys empty": key_attestation(_set("claims", "attested_keys", [])),
    "attested_keys an object": key_attestation(_set("claims", "attested_keys", {"kty": "EC"})),
    "attested private key": key_attestation(
        _set("claims", "attested_keys", [LocalSigner.generate().private_jwk()])
    ),
    "another key attested": key_attestation(
        _set("claims", "attested_keys", [LocalSigner.generate().public_jwk])
    ),
    "level too low": key_attestation(_set("claims", "key_storage", ["iso_18045_basic"])),
    "level missing": key_attestation(_set("claims", "user_authentication", None)),
    "levels not a list": key_attestation(_set("claims", "key_storage", "iso_18045_high")),
}


@pytest.mark.parametrize("name", list(HOSTILE_KEY_ATTESTATIONS))
async def test_hostile_key_attestations_in_jwt_proofs(clock: FakeClock, name: str) -> None:
    target = make_target(clock)
    token, key, nonce = await session(target)
    holder = LocalSigner.generate()
    attestation = await HOSTILE_KEY_ATTESTATIONS[name](target, holder, nonce)
    proof = await create_jws(
        holder,
        {"aud": ISSUER, "iat": int(clock()), "nonce": nonce, "iss": CLIENT_ID},
        {"typ": PROOF_TYP, "jwk": holder.public_jwk, "key_attestation": attestation},
    )
    response = await credential(target, token, key, {"jwt": [proof]})
    assert response.status == 400, response.body
    assert response.json_body()["error"] == "invalid_proof"
    # the c_nonce was not used up by the refused request: a good proof still works
    good = await key_attestation(lambda h, c: None)(target, holder, nonce)
    proof = await create_jws(
        holder,
        {"aud": ISSUER, "iat": int(clock()), "nonce": nonce, "iss": CLIENT_ID},
        {"typ": PROOF_TYP, "jwk": holder.public_jwk, "key_attestation": good},
    )
    assert (await credential(target, token, key, {"jwt": [proof]})).status == 200


@pytest.mark.parametrize(
    ("version", "accepted"), [(SpecVersion.DRAFT_15, True), (SpecVersion.V1, False)]
)
async def test_draft_15_key_attestation_typ_only_from_draft_15(
    clock: FakeClock, version: SpecVersion, accepted: bool
) -> None:
    """Draft 15 Appendix D.1 typed key attestations ``keyattestation+jwt`` (Draft 16 renamed
    it): a Draft 15 request may use it, a 1.0 one may not."""
    target = make_target(clock, published_version=version)
    token, key, nonce = await session(target)
    holder = LocalSigner.generate()
    attestation = await HOSTILE_KEY_ATTESTATIONS["typ of draft 15"](target, holder, nonce)
    proof = await create_jws(
        holder,
        {"aud": ISSUER, "iat": int(clock()), "nonce": nonce, "iss": CLIENT_ID},
        {"typ": PROOF_TYP, "jwk": holder.public_jwk, "key_attestation": attestation},
    )
    response = await credential(target, token, key, {"jwt": [proof]})
    if accepted:
        assert response.status == 200, response.body
    else:
        assert response.status == 400, response.body
        assert response.json_body()["error"] == "invalid_proof"


@pytest.mark.parametrize(
    "name",
    [n for n in HOSTILE_KEY_ATTESTATIONS if n not in ("exp missing", "another key attested")],
)
async def test_hostile_attestation_proofs(clock: FakeClock, name: str) -> None:
    target = make_target(clock, proof_types=("attestation",))
    token, key, nonce = await session(target)
    attestation = await HOSTILE_KEY_ATTESTATIONS[name](target, LocalSigner.generate(), nonce)
    response = await credential(target, token, key, {"attestation": [attestation]})
    assert response.status == 400, response.body
    assert response.json_body()["error"] in ("invalid_proof", "invalid_nonce")


async def test_attestation_proof_shapes(clock: FakeClock) -> None:
    target = make_target(clock, proof_types=("attestation",))
    token, key, nonce = await session(target)
    good = await key_attestation(lambda h, c: None)(target, LocalSigner.generate(), nonce)
    shapes: list[dict[str, list[Any]]] = [
        {"attestation": [good, good]},
        {"attestation": [7]},
        {"attestation": []},
        {"jwt": ["a.b.c"]},
    ]
    for proofs in shapes:
        response = await credential(target, token, key, proofs)
        assert response.status == 400, (proofs, response.body)
        assert response.json_body()["error"] in ("invalid_proof", "invalid_credential_request")
    assert (await credential(target, token, key, {"attestation": [good]})).status == 200
    again = await credential(target, token, key, {"attestation": [good]})
    assert again.json_body()["error"] == "invalid_nonce"


async def test_jwt_proof_without_key_attestation_is_refused(clock: FakeClock) -> None:
    target = make_target(clock)
    token, key, nonce = await session(target)
    holder = LocalSigner.generate()
    proof = await create_jws(
        holder,
        {"aud": ISSUER, "iat": int(clock()), "nonce": nonce},
        {"typ": PROOF_TYP, "jwk": holder.public_jwk},
    )
    response = await credential(target, token, key, {"jwt": [proof]})
    assert response.json_body() == {
        "error": "invalid_proof",
        "error_description": "a key attestation is required (key_attestation header)",
    }


@pytest.mark.parametrize(
    ("iat", "description"),
    [
        (float("nan"), "proof lacks a numeric iat"),
        (float("inf"), "proof lacks a numeric iat"),
        (10**400, "proof iat is in the future"),
    ],
    ids=["nan", "inf", "huge"],
)
async def test_key_proof_iat_out_of_range(clock: FakeClock, iat: Any, description: str) -> None:
    """A proof ``iat`` that is NaN, infinite or beyond any float is refused (NaN would pass
    every freshness comparison)."""
    target = make_target(clock)
    token, key, nonce = await session(target)
    holder = LocalSigner.generate()
    good = await key_attestation(lambda h, c: None)(target, holder, nonce)
    proof = await create_jws(
        holder,
        {"aud": ISSUER, "iat": iat, "nonce": nonce},
        {"typ": PROOF_TYP, "jwk": holder.public_jwk, "key_attestation": good},
    )
    response = await credential(target, token, key, {"jwt": [proof]})
    assert response.json_body() == {"error": "invalid_proof", "error_description": description}
