"""The floor: the credential endpoint's cryptographic work written directly on ``cryptography``.

Per request: verify one DPoP proof (ES256), verify N key proofs (ES256), mint N SD-JWT VCs with
``DISCLOSURES`` disclosures and ``DECOYS`` decoy digests each and sign them (ES256). No HTTP, no parsing beyond what the
crypto needs, no checks beyond signatures: the least work any implementation must do.

That least work includes reading each proof's key: a DPoP proof and a key proof carry their
public key in the JWS header (``jwk``, RFC 9449 §4.2, OID4VCI 1.0 Appendix F.1), and an issuer
that has never seen the wallet cannot verify the signature before it has decoded the header and
turned that JWK into a key object (:func:`_header_key`). The floor does that for every key
proof (a fresh holder key each); the DPoP key is imported on the first request and then kept,
as the wallet sends the same one with every request (the library's key cache does the same;
its cache is cleared before a measured phase, the floor's is not, which favours the floor).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

DISCLOSURES = 10
#: Decoy digests per credential: the issuer's default is a random 1..5 per ``_sd`` array; the
#: benchmarks fix both sides at 3 so the work (and callgrind's instruction count) is the same.
DECOYS = 3


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: ec.EllipticCurvePrivateKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def _header_key(head: str) -> ec.EllipticCurvePublicKey:
    """The P-256 public key of the JWS header's ``jwk`` (decoded, point checked on import)."""
    jwk = json.loads(_unb64(head))["jwk"]
    point = b"\x04" + _unb64(jwk["x"]) + _unb64(jwk["y"])
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)


def _verify(token: str, public: ec.EllipticCurvePublicKey | None = None) -> dict[str, Any]:
    """Verify a JWS signed by the key in its header (``public``: that key, already read)."""
    head, body, sig = token.split(".")
    if public is None:
        public = _header_key(head)
    raw = _unb64(sig)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    payload: dict[str, Any] = json.loads(_unb64(body))
    return payload


def _public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


class FloorPipeline:
    """Prepared inputs for one credential request of ``n`` credentials."""

    def __init__(self, n: int) -> None:
        self.issuer_key = ec.generate_private_key(ec.SECP256R1())
        dpop_key = ec.generate_private_key(ec.SECP256R1())
        self.dpop_public: ec.EllipticCurvePublicKey | None = None  # read from the first proof
        now = int(time.time())
        self.dpop = _sign(
            dpop_key,
            {"typ": "dpop+jwt", "alg": "ES256", "jwk": _public_jwk(dpop_key)},
            {"htm": "POST", "htu": "https://issuer/credential", "iat": now, "jti": "x"},
        )
        self.proofs: list[tuple[ec.EllipticCurvePublicKey, str, dict[str, str]]] = []
        for _ in range(n):
            holder = ec.generate_private_key(ec.SECP256R1())
            jwk = _public_jwk(holder)
            proof = _sign(
                holder,
                {"typ": "openid4vci-proof+jwt", "alg": "ES256", "jwk": jwk},
                {"aud": "https://issuer", "iat": now, "nonce": "n"},
            )
            self.proofs.append((holder.public_key(), proof, jwk))
        self.claims = {f"claim_{i}": f"value {i}" for i in range(DISCLOSURES)}

    def run(self) -> list[str]:
        """Do the request's cryptographic work once; returns the N credentials."""
        if self.dpop_public is None:
            self.dpop_public = _header_key(self.dpop.split(".", 1)[0])
        _verify(self.dpop, self.dpop_public)
        out = []
        for _, proof, jwk in self.proofs:
            _verify(proof)
            disclosures = []
            digests = []
            for name, value in self.claims.items():
                disclosure = _b64(json.dumps([_b64(os.urandom(16)), name, value]).encode())
                disclosures.append(disclosure)
                digests.append(_b64(hashlib.sha256(disclosure.encode()).digest()))
            for _ in range(DECOYS):
                digests.append(_b64(hashlib.sha256(os.urandom(16)).digest()))
            payload = {
                "iss": "https://issuer",
                "vct": "urn:example",
                "iat": int(time.time()),
                "_sd": sorted(digests),
                "_sd_alg": "sha-256",
                "cnf": {"jwk": jwk},
            }
            jwt = _sign(self.issuer_key, {"alg": "ES256", "typ": "dc+sd-jwt"}, payload)
            out.append(jwt + "~" + "~".join(disclosures) + "~")
        return out
