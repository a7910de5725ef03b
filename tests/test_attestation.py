"""oid4vci.attestation: wallet attestations, their PoPs and key attestations (pure)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from oid4vci.attestation import (
    CLIENT_ATTESTATION_POP_TYP,
    CLIENT_ATTESTATION_TYP,
    AttestationError,
    AttestationProvider,
    AttestationReason,
    LocalAttestationProvider,
    check_key_attestation_levels,
    create_client_attestation,
    create_client_attestation_pop,
    create_key_attestation,
    encode_x5c,
    verify_client_attestation,
    verify_key_attestation,
)
from oid4vci.errors import ArgumentTypeError, JoseError, UsageError
from oid4vci.jose import LocalSigner, create_jws, decode_jws, jwk_thumbprint
from tests.attestation_support import CLIENT_ID, make_provider, provider_pki
from tests.conftest import FakeClock
from tests.x509_support import Pki, b64, make_certificate

AS = "https://as.example.com"


async def pair(pki: Pki, clock: FakeClock, **pop: Any) -> tuple[str, str, LocalSigner]:
    instance = LocalSigner.generate()
    attestation = await create_client_attestation(
        pki.signer,
        x5c=pki.x5c,
        client_id=CLIENT_ID,
        instance_jwk=instance.public_jwk,
        issuer="https://wallet-provider.example",
        claims={"wallet_name": "Test Wallet"},
        clock=clock,
    )
    signer = pop.pop("signer", instance)
    proof = await create_client_attestation_pop(
        signer, audience=pop.pop("audience", AS), client_id=CLIENT_ID, clock=clock, **pop
    )
    return attestation, proof, instance


def verify(pki: Pki, clock: FakeClock, attestation: str, pop: str, **kw: Any) -> Any:
    kw.setdefault("trust_anchors", [pki.root])
    kw.setdefault("audience", AS)
    return verify_client_attestation(attestation, pop, clock=clock, **kw)


def reason_of(excinfo: pytest.ExceptionInfo[AttestationError]) -> str:
    return excinfo.value.reason


async def test_client_attestation_round_trip(clock: FakeClock) -> None:
    pki = provider_pki()
    attestation, pop, instance = await pair(pki, clock, challenge="c-1")
    header = decode_jws(attestation).header
    assert header["typ"] == CLIENT_ATTESTATION_TYP and header["x5c"] == pki.x5c
    assert decode_jws(pop).header["typ"] == CLIENT_ATTESTATION_POP_TYP
    verified = verify(pki, clock, attestation, pop, client_id=CLIENT_ID, challenge="c-1")
    assert verified.client_id == CLIENT_ID
    assert jwk_thumbprint(verified.instance_jwk) == jwk_thumbprint(instance.public_jwk)
    assert verified.claims["wallet_name"] == "Test Wallet"
    assert verified.pop_iat == int(clock())
    assert "jti" not in repr(verified) and verified.jti not in repr(verified)


async def test_pop_carries_exp_for_draft_05_servers(clock: FakeClock) -> None:
    """oid4vc-ts 0.4.6 (a -05 server) requires PoP ``exp``: ours sends ``iat`` + lifetime,
    and our own -07 verifier refuses a PoP whose ``exp`` has passed."""
    pki = provider_pki()
    _, pop, _ = await pair(pki, clock)
    claims = decode_jws(pop).payload
    assert claims["exp"] == claims["iat"] + 60
    attestation, short, _ = await pair(pki, clock, lifetime=5)
    assert decode_jws(short).payload["exp"] == int(clock()) + 5
    clock.advance(120)  # within pop_max_age (300) but past exp + skew (60)
    with pytest.raises(AttestationError) as caught:
        verify(pki, clock, attestation, short)
    assert reason_of(caught) == AttestationReason.EXPIRED
    with pytest.raises(UsageError):
        await create_client_attestation_pop(LocalSigner.generate(), audience=AS, lifetime=0)


async def test_known_answer_pop_of_draft_10(clock: FakeClock, spec_dir: Path) -> None:
    """The -10 PoP example verifies with its attestation's cnf key (client-attestation.md §11)."""
    text = (spec_dir / "client-attestation.md").read_text()
    pop = re.search(r"`(eyJ0eXAiOiJvYXV0aC1jbGllbnQtYXR0ZXN0YXRpb24tcG9wK2p3dCI[^`]+)`", text)
    assert pop is not None
    cnf = {
        "kty": "EC",
        "crv": "P-256",
        "x": "VcKVNBZ4IaBAYW3jxM4w3TJFVA7myeUGQyGt-g_yvpQ",
        "y": "f-E-hYE3TAWKwhVv9pej9NABs9SX9XsNO80x57jFTyU",
    }
    pki = provider_pki()
    clock.now = 1772487595 + 5
    attestation = await create_client_attestation(
        pki.signer,
        x5c=pki.x5c,
        client_id="https://client.example.com",
        instance_jwk=cnf,
        clock=clock,
    )
    verified = verify(
        pki,
        clock,
        attestation,
        pop.group(1),
        audience="https://as.example.com",
        challenge="5c1a9e10-29ff-4c2b-ae73-57c0957c09c4",
    )
    assert verified.jti == "d25d00ab-552b-46fc-ae19-98f440f25064"
    with pytest.raises(AttestationError) as caught:
        verify(pki, clock, attestation, pop.group(1), audience="https://rs.example.com")
    assert reason_of(caught) == AttestationReason.AUDIENCE


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("expired", AttestationReason.EXPIRED),
        ("foreign chain", AttestationReason.UNTRUSTED),
        ("no anchors", AttestationReason.UNTRUSTED),
        ("sub is not client_id", AttestationReason.CLIENT_MISMATCH),
        ("PoP aud", AttestationReason.AUDIENCE),
        ("PoP by another key", AttestationReason.SIGNATURE),
        ("stale PoP", AttestationReason.STALE),
        ("PoP from the future", AttestationReason.NOT_YET_VALID),
        ("missing challenge", AttestationReason.CHALLENGE),
        ("algorithm", AttestationReason.ALGORITHM),
        ("attestation as PoP", AttestationReason.WRONG_TYP),
        ("garbage", AttestationReason.MALFORMED),
    ],
)
async def test_client_attestation_refusals(clock: FakeClock, case: str, reason: str) -> None:
    pki = provider_pki()
    attestation, pop, _ = await pair(pki, clock)
    kw: dict[str, Any] = {}
    if case == "expired":
        clock.advance(3600 + 61)
        _, pop, _ = await pair(pki, clock)
    elif case == "foreign chain":
        kw["trust_anchors"] = [provider_pki().root]
    elif case == "no anchors":
        kw["trust_anchors"] = []
    elif case == "sub is not client_id":
        kw["client_id"] = "https://other.example"
    elif case == "PoP aud":
        _, pop, _ = await pair(pki, clock, audience=AS + "/token")
        attestation, pop, _ = await pair(pki, clock, audience=AS + "/token")
    elif case == "PoP by another key":
        attestation, pop, _ = await pair(pki, clock, signer=LocalSigner.generate())
    elif case == "stale PoP":
        clock.advance(301)
    elif case == "PoP from the future":
        clock.advance(-61)
    elif case == "missing challenge":
        kw["challenge"] = "expected"
    elif case == "algorithm":
        kw["algorithms"] = ["ES384"]
    elif case == "attestation as PoP":
        pop = attestation
    else:
        pop = "not.a.jws"
    with pytest.raises(AttestationError) as caught:
        verify(pki, clock, attestation, pop, **kw)
    assert reason_of(caught) == reason
    assert isinstance(caught.value, JoseError)
    assert attestation not in str(caught.value)


async def test_cnf_with_a_private_key_is_refused(clock: FakeClock) -> None:
    pki = provider_pki()
    instance = LocalSigner.generate()
    now = int(clock())
    attestation = await create_jws(
        pki.signer,
        {"sub": CLIENT_ID, "iat": now, "exp": now + 60, "cnf": {"jwk": instance.private_jwk()}},
        {"typ": CLIENT_ATTESTATION_TYP, "x5c": pki.x5c},
    )
    pop = await create_client_attestation_pop(instance, audience=AS, clock=clock)
    with pytest.raises(AttestationError) as caught:
        verify(pki, clock, attestation, pop)
    assert reason_of(caught) == AttestationReason.PRIVATE_KEY


async def test_missing_x5c_and_missing_claims(clock: FakeClock) -> None:
    pki = provider_pki()
    instance = LocalSigner.generate()
    now = int(clock())
    claims: dict[str, Any] = {
        "sub": CLIENT_ID,
        "iat": now,
        "exp": now + 60,
        "cnf": {"jwk": instance.public_jwk},
    }
    pop = await create_client_attestation_pop(instance, audience=AS, clock=clock)
    cases: list[tuple[dict[str, Any], dict[str, Any], str]] = [
        ({"typ": CLIENT_ATTESTATION_TYP}, claims, AttestationReason.NO_X5C),
        (
            {"typ": CLIENT_ATTESTATION_TYP, "x5c": pki.x5c},
            {k: v for k, v in claims.items() if k != "exp"},
            AttestationReason.MISSING_CLAIM,
        ),
        (
            {"typ": CLIENT_ATTESTATION_TYP, "x5c": pki.x5c},
            {k: v for k, v in claims.items() if k != "sub"},
            AttestationReason.MISSING_CLAIM,
        ),
        (
            {"typ": CLIENT_ATTESTATION_TYP, "x5c": pki.x5c},
            {**claims, "exp": "tomorrow"},
            AttestationReason.MALFORMED,
        ),
    ]
    for header, payload, reason in cases:
        attestation = await create_jws(pki.signer, payload, header)
        with pytest.raises(AttestationError) as caught:
            verify(pki, clock, attestation, pop)
        assert reason_of(caught) == reason


async def key_attestation(pki: Pki, clock: FakeClock, keys: list[Any], **kw: Any) -> str:
    kw.setdefault("key_storage", ["iso_18045_high"])
    kw.setdefault("nonce", "n-1")
    return await create_key_attestation(
        pki.signer, x5c=pki.x5c, attested_keys=[k.public_jwk for k in keys], clock=clock, **kw
    )


async def test_key_attestation_round_trip(clock: FakeClock) -> None:
    pki = provider_pki()
    keys = [LocalSigner.generate() for _ in range(3)]
    token = await key_attestation(pki, clock, keys, user_authentication=["iso_18045_moderate"])
    verified = verify_key_attestation(
        token,
        trust_anchors=[pki.root],
        require_exp=True,
        nonce="n-1",
        required={"key_storage": ["iso_18045_high", "iso_18045_moderate"]},
        clock=clock,
    )
    assert verified.thumbprints == tuple(jwk_thumbprint(k.public_jwk) for k in keys)
    assert all(verified.attests(k.public_jwk) for k in keys)
    assert not verified.attests(LocalSigner.generate().public_jwk)
    assert not verified.attests({"kty": "nonsense"})
    assert verified.key_storage == ("iso_18045_high",)
    check_key_attestation_levels(verified, {})


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("self-signed signer", AttestationReason.SELF_SIGNED),
        ("untrusted root", AttestationReason.UNTRUSTED),
        ("level", AttestationReason.LEVEL),
        ("level claim missing", AttestationReason.LEVEL),
        ("nonce", AttestationReason.NONCE),
        ("expired", AttestationReason.EXPIRED),
        ("client attestation typ", AttestationReason.WRONG_TYP),
    ],
)
async def test_key_attestation_refusals(clock: FakeClock, case: str, reason: str) -> None:
    pki = provider_pki()
    keys = [LocalSigner.generate()]
    kw: dict[str, Any] = {"trust_anchors": [pki.root], "nonce": "n-1", "clock": clock}
    token = await key_attestation(pki, clock, keys)
    if case == "self-signed signer":
        key = ec.generate_private_key(ec.SECP256R1())
        cert = make_certificate(key=key, subject="self", dns_names=["self.example"])
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        signer = LocalSigner.from_jwk(_jwk_of(pem))
        token = await create_key_attestation(
            signer, x5c=[b64(cert)], attested_keys=[keys[0].public_jwk], nonce="n-1", clock=clock
        )
        kw["trust_anchors"] = [cert]
    elif case == "untrusted root":
        kw["trust_anchors"] = [provider_pki().root]
    elif case == "level":
        kw["required"] = {"key_storage": ["iso_18045_moderate"]}
    elif case == "level claim missing":
        kw["required"] = {"user_authentication": ["iso_18045_high"]}
    elif case == "nonce":
        kw["nonce"] = "n-2"
    elif case == "expired":
        clock.advance(3600 + 61)
    else:
        token = await create_client_attestation(
            pki.signer, x5c=pki.x5c, client_id=CLIENT_ID, instance_jwk=keys[0].public_jwk
        )
    with pytest.raises(AttestationError) as caught:
        verify_key_attestation(token, **kw)
    assert reason_of(caught) == reason


def _jwk_of(pem: bytes) -> dict[str, Any]:
    from joserfc.jwk import ECKey

    return dict(ECKey.import_key(pem).as_dict(private=True))


async def test_key_attestation_shape_refusals(clock: FakeClock) -> None:
    pki = provider_pki()
    now = int(clock())
    header = {"typ": "key-attestation+jwt", "x5c": pki.x5c}
    key = LocalSigner.generate()
    cases: list[tuple[dict[str, Any], str, bool]] = [
        ({"iat": now, "attested_keys": [key.public_jwk]}, AttestationReason.MISSING_CLAIM, True),
        (
            {"exp": now + 60, "attested_keys": [key.public_jwk]},
            AttestationReason.MISSING_CLAIM,
            False,
        ),
        ({"iat": now, "attested_keys": []}, AttestationReason.MISSING_CLAIM, False),
        ({"iat": now, "attested_keys": [key.private_jwk()]}, AttestationReason.PRIVATE_KEY, False),
        ({"iat": now, "attested_keys": ["x"]}, AttestationReason.MALFORMED, False),
        (
            {"iat": now, "attested_keys": [key.public_jwk] * 101},
            AttestationReason.TOO_MANY_KEYS,
            False,
        ),
        (
            {"iat": now, "attested_keys": [key.public_jwk], "key_storage": []},
            AttestationReason.MALFORMED,
            False,
        ),
        (
            {"iat": now, "attested_keys": [key.public_jwk], "nonce": 7},
            AttestationReason.MALFORMED,
            False,
        ),
    ]
    for payload, reason, require_exp in cases:
        token = await create_jws(pki.signer, payload, header)
        with pytest.raises(AttestationError) as caught:
            verify_key_attestation(
                token, trust_anchors=[pki.root], require_exp=require_exp, clock=clock
            )
        assert reason_of(caught) == reason, payload


async def test_local_provider(clock: FakeClock) -> None:
    pki = provider_pki()
    provider = make_provider(pki, clock)
    assert isinstance(provider, AttestationProvider)
    first = await provider.client_attestation(authorization_server="https://a.example")
    again = await provider.client_attestation(authorization_server="https://a.example")
    other = await provider.client_attestation(authorization_server="https://b.example")
    assert first is again
    # a different instance key per authorization server (HAIP 1.0 §4.4.1)
    assert first.instance_key.public_jwk != other.instance_key.public_jwk
    clock.advance(3600)
    renewed = await provider.client_attestation(authorization_server="https://a.example")
    assert renewed is not first
    assert repr(provider) == f"LocalAttestationProvider(client_id={CLIENT_ID!r})"
    assert first.attestation not in repr(first)
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (pki.leaf, pki.intermediate))
    loaded = LocalAttestationProvider.from_files(pki.signer.private_jwk(), pem, client_id=CLIENT_ID)
    assert loaded.chain == tuple(pki.x5c) == encode_x5c([pem])
    with pytest.raises(UsageError):
        LocalAttestationProvider(signer=pki.signer, chain=[pem], client_id="")
    with pytest.raises(UsageError):
        encode_x5c([])
    # levels: any iterable of strings becomes a tuple; a lone string is refused, not split
    levels = LocalAttestationProvider(
        signer=pki.signer, chain=[pem], client_id=CLIENT_ID, key_storage=["iso_18045_high"]
    )
    assert levels.key_storage == ("iso_18045_high",)
    with pytest.raises(ArgumentTypeError):
        LocalAttestationProvider(
            signer=pki.signer, chain=[pem], client_id=CLIENT_ID, key_storage="iso_18045_high"
        )


async def test_attestation_headers_are_redacted_in_traces(clock: FakeClock) -> None:
    from oid4vci.http import Headers
    from oid4vci.tracing import redact_headers

    pki = provider_pki()
    attestation, pop, _ = await pair(pki, clock)
    shown = redact_headers(
        Headers([("OAuth-Client-Attestation", attestation), ("OAuth-Client-Attestation-PoP", pop)])
    )
    assert shown == (("OAuth-Client-Attestation", "***"), ("OAuth-Client-Attestation-PoP", "***"))


async def test_local_provider_cache_is_bounded(clock: FakeClock) -> None:
    provider = make_provider(provider_pki(), clock)
    first = await provider.client_attestation(authorization_server="https://as-0.example")
    for n in range(1, 70):
        await provider.client_attestation(authorization_server=f"https://as-{n}.example")
    again = await provider.client_attestation(authorization_server="https://as-0.example")
    assert again is not first  # evicted, minted anew
