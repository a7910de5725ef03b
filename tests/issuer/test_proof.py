"""Key proof verification (``openid4vci-proof+jwt``)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from oid4vci.errors import CredentialRequestError, ErrorCode
from oid4vci.issuer.proof import (
    ProofOptions,
    VerifiedProof,
    jwk_from_did_jwk,
    verify_proof_jwt,
    verify_proof_jwts,
)
from oid4vci.jose import LocalSigner, b64url_encode, create_jws, jwk_thumbprint
from tests.conftest import FakeClock
from tests.x509_support import make_certificate

ISSUER = "https://issuer.example"
ALGS = ("ES256", "EdDSA")


async def make_proof(
    signer: LocalSigner,
    clock: FakeClock,
    *,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
) -> str:
    hdr: dict[str, Any] = {"typ": "openid4vci-proof+jwt", "jwk": signer.public_jwk}
    hdr.update(header or {})
    body: dict[str, Any] = {"aud": ISSUER, "iat": int(clock()), "nonce": "n-1"}
    body.update(claims or {})
    for name in drop:
        hdr.pop(name, None)
        body.pop(name, None)
    return await create_jws(signer, body, hdr)


class Nonces:
    """A c_nonce set whose consume() counts calls."""

    def __init__(self, *values: str) -> None:
        self.values = set(values)
        self.calls = 0

    async def consume(self, value: str) -> bool:
        self.calls += 1
        if value in self.values:
            self.values.discard(value)
            return True
        return False


async def verify(jwt: str, clock: FakeClock, **kwargs: Any) -> VerifiedProof:
    options: dict[str, Any] = {
        "audience": ISSUER,
        "algorithms": ALGS,
        "client_id": None,
        "anonymous": False,
        "consume_nonce": None,
        "nonce_required": False,
        "clock": clock,
    }
    options.update(kwargs)
    per_request = {k: options.pop(k) for k in ("client_id", "anonymous", "consume_nonce")}
    return await verify_proof_jwt(jwt, ProofOptions(**options), **per_request)


async def expect_error(code: str, jwt: str, clock: FakeClock, **kwargs: Any) -> None:
    with pytest.raises(CredentialRequestError) as info:
        await verify(jwt, clock, **kwargs)
    assert info.value.error == code
    assert info.value.status == 400


async def test_valid_jwk_proof_consumes_nonce(clock: FakeClock) -> None:
    signer = LocalSigner.generate()
    nonces = Nonces("n-1")
    proof = await verify(
        await make_proof(signer, clock), clock, consume_nonce=nonces.consume, nonce_required=True
    )
    assert proof.jwk == signer.public_jwk
    assert proof.jkt == jwk_thumbprint(signer.public_jwk)
    assert proof.nonce == "n-1"
    assert nonces.values == set()
    # the same nonce again is stale
    await expect_error(
        ErrorCode.INVALID_NONCE,
        await make_proof(signer, clock),
        clock,
        consume_nonce=nonces.consume,
        nonce_required=True,
    )


async def test_eddsa_and_aud_array(clock: FakeClock) -> None:
    signer = LocalSigner.generate("EdDSA")
    jwt = await make_proof(signer, clock, claims={"aud": ["https://other.example", ISSUER]})
    assert (await verify(jwt, clock)).jwk["crv"] == "Ed25519"


@pytest.mark.parametrize(
    ("header", "claims", "drop", "why"),
    [
        ({"typ": "JWT"}, {}, (), "typ"),
        ({}, {}, ("typ",), "no typ"),
        ({}, {"aud": "https://evil.example"}, (), "aud"),
        ({}, {"aud": ["https://evil.example"]}, (), "aud array"),
        ({}, {}, ("aud",), "no aud"),
        ({}, {}, ("iat",), "no iat"),
        ({}, {"iat": "now"}, (), "iat type"),
        ({}, {"iat": 1_750_000_000 - 301}, (), "too old"),
        ({}, {"iat": 1_750_000_000 + 61}, (), "future"),
        ({}, {}, ("jwk",), "no key"),
        ({"kid": "key-1"}, {}, (), "jwk and kid"),
        ({"kid": "https://example.com/keys#1"}, {}, ("jwk",), "unresolvable kid"),
        ({"jwk": {"kty": "oct", "k": "AAAA"}}, {}, (), "symmetric jwk"),
        ({}, {"nonce": 7}, (), "nonce type"),
    ],
)
async def test_invalid_proofs(
    clock: FakeClock,
    header: dict[str, Any],
    claims: dict[str, Any],
    drop: tuple[str, ...],
    why: str,
) -> None:
    signer = LocalSigner.generate()
    jwt = await make_proof(signer, clock, header=header, claims=claims, drop=drop)
    await expect_error(ErrorCode.INVALID_PROOF, jwt, clock)


async def test_private_jwk_refused(clock: FakeClock) -> None:
    signer = LocalSigner.generate()
    jwt = await make_proof(signer, clock, header={"jwk": signer.private_jwk()})
    await expect_error(ErrorCode.INVALID_PROOF, jwt, clock)


async def test_wrong_key_signature(clock: FakeClock) -> None:
    signer, other = LocalSigner.generate(), LocalSigner.generate()
    jwt = await make_proof(signer, clock, header={"jwk": other.public_jwk})
    await expect_error(ErrorCode.INVALID_PROOF, jwt, clock)


async def test_alg_not_allowed(clock: FakeClock) -> None:
    signer = LocalSigner.generate("ES384")
    await expect_error(ErrorCode.INVALID_PROOF, await make_proof(signer, clock), clock)
    assert await verify(await make_proof(signer, clock), clock, algorithms=["ES384"])


async def test_alg_none_and_mac_refused(clock: FakeClock) -> None:
    signer = LocalSigner.generate()
    jwt = await make_proof(signer, clock)
    head, body, _ = jwt.split(".")
    for alg in ("none", "HS256"):
        header = {"typ": "openid4vci-proof+jwt", "alg": alg, "jwk": signer.public_jwk}
        forged = f"{b64url_encode(json.dumps(header).encode())}.{body}.AAAA"
        await expect_error(ErrorCode.INVALID_PROOF, forged, clock, algorithms=[alg, "ES256"])
    assert head


async def test_garbage_refused(clock: FakeClock) -> None:
    await expect_error(ErrorCode.INVALID_PROOF, "not-a-jwt", clock)


async def test_iss_rules(clock: FakeClock) -> None:
    signer = LocalSigner.generate()
    with_iss = await make_proof(signer, clock, claims={"iss": "wallet"})
    assert await verify(with_iss, clock, client_id="wallet")
    await expect_error(ErrorCode.INVALID_PROOF, with_iss, clock, client_id="other")
    await expect_error(ErrorCode.INVALID_PROOF, with_iss, clock, anonymous=True)
    without = await make_proof(signer, clock)
    assert await verify(without, clock, anonymous=True)
    assert await verify(without, clock, client_id="wallet")


async def test_nonce_required(clock: FakeClock) -> None:
    signer = LocalSigner.generate()
    jwt = await make_proof(signer, clock, drop=("nonce",))
    await expect_error(ErrorCode.INVALID_PROOF, jwt, clock, nonce_required=True)
    assert (await verify(jwt, clock)).nonce is None


async def test_did_jwk_kid(clock: FakeClock) -> None:
    signer = LocalSigner.generate()
    did = "did:jwk:" + b64url_encode(json.dumps(signer.public_jwk).encode())
    for kid in (did, did + "#0"):
        jwt = await make_proof(signer, clock, header={"kid": kid}, drop=("jwk",))
        assert (await verify(jwt, clock)).jwk == signer.public_jwk
    assert jwk_from_did_jwk(did) == signer.public_jwk
    bad = await make_proof(signer, clock, header={"kid": did + "#1"}, drop=("jwk",))
    await expect_error(ErrorCode.INVALID_PROOF, bad, clock)
    other = LocalSigner.generate()
    other_did = "did:jwk:" + b64url_encode(json.dumps(other.public_jwk).encode())
    wrong = await make_proof(signer, clock, header={"kid": other_did}, drop=("jwk",))
    await expect_error(ErrorCode.INVALID_PROOF, wrong, clock)


def _b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()


async def test_x5c_leaf_key(clock: FakeClock) -> None:
    signer = LocalSigner.generate()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = make_certificate(key=ca_key, subject="ca", ca=True)
    # anchored chains are validated with the RFC 5280 web PKI profile (oid4vci.x509): the CA
    # needs basicConstraints/keyUsage, the leaf a subjectAltName and authorityKeyIdentifier
    leaf = make_certificate(
        key=signer._private_key,
        subject="wallet key",
        issuer=ca_cert,
        issuer_key=ca_key,
        dns_names=["wallet.example"],
    )
    jwt = await make_proof(signer, clock, header={"x5c": [_b64(leaf)]}, drop=("jwk",))
    proof = await verify(jwt, clock)
    assert proof.jkt == jwk_thumbprint(signer.public_jwk)
    assert await verify(jwt, clock, trust_anchors=[ca_cert])
    stranger = ec.generate_private_key(ec.SECP256R1())
    await expect_error(
        ErrorCode.INVALID_PROOF,
        jwt,
        clock,
        trust_anchors=[make_certificate(key=stranger, subject="ca", ca=True)],
    )
    broken = await make_proof(signer, clock, header={"x5c": ["!!!"]}, drop=("jwk",))
    await expect_error(ErrorCode.INVALID_PROOF, broken, clock)


async def test_batch_rules(clock: FakeClock) -> None:
    signers = [LocalSigner.generate() for _ in range(3)]
    jwts = [await make_proof(s, clock) for s in signers]
    nonces = Nonces("n-1")

    def common(batch_size: int) -> ProofOptions:
        return ProofOptions(
            audience=ISSUER,
            algorithms=ALGS,
            nonce_required=True,
            clock=clock,
            batch_size=batch_size,
        )

    # over the batch size: nothing consumed
    with pytest.raises(CredentialRequestError) as info:
        await verify_proof_jwts(jwts, common(2), consume_nonce=nonces.consume)
    assert info.value.error == ErrorCode.INVALID_PROOF
    # same key twice
    with pytest.raises(CredentialRequestError) as info:
        await verify_proof_jwts(
            [jwts[0], jwts[1], jwts[0]], common(5), consume_nonce=nonces.consume
        )
    assert info.value.error == ErrorCode.INVALID_PROOF
    # different nonces
    odd = await make_proof(signers[2], clock, claims={"nonce": "n-2"})
    with pytest.raises(CredentialRequestError) as info:
        await verify_proof_jwts([jwts[0], jwts[1], odd], common(5), consume_nonce=nonces.consume)
    assert info.value.error == ErrorCode.INVALID_PROOF
    # empty
    with pytest.raises(CredentialRequestError):
        await verify_proof_jwts([], common(5), consume_nonce=nonces.consume)
    assert nonces.calls == 0
    # valid batch: the nonce is consumed exactly once
    proofs = await verify_proof_jwts(jwts, common(3), consume_nonce=nonces.consume)
    assert [p.jwk for p in proofs] == [s.public_jwk for s in signers]
    assert nonces.calls == 1
