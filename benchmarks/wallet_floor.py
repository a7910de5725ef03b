"""The wallet's floor: its cryptographic work written directly on ``cryptography``.

* :meth:`WalletFloor.build_request`: generate ``N`` P-256 holder keys, sign ``N`` key proofs
  (ES256, the public key in the header) and one DPoP proof (with ``ath``), and write the
  JSON request body.
* :meth:`WalletFloor.verify`: for each of ``N`` SD-JWT VCs, verify the issuer's ES256
  signature (with a key object built beforehand), decode the payload, decode every disclosure,
  hash it and look the digest up in ``_sd``, and compare ``cnf.jwk`` with the holder key.

No HTTP, no store, no checks beyond those: the least work any wallet must do.
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

__all__ = ["WalletFloor"]

_ECDSA = ec.ECDSA(hashes.SHA256())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    numbers = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": _b64(numbers.x.to_bytes(32, "big")),
        "y": _b64(numbers.y.to_bytes(32, "big")),
    }


def _sign(key: ec.EllipticCurvePrivateKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    r, s = decode_dss_signature(key.sign(signing_input.encode(), _ECDSA))
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class WalletFloor:
    """The wallet's crypto for one credential request of ``n`` credentials."""

    def __init__(self, n: int, *, issuer_public: ec.EllipticCurvePublicKey) -> None:
        self.n = n
        self.issuer_public = issuer_public
        self.dpop_key = ec.generate_private_key(ec.SECP256R1())
        self.dpop_jwk = _public_jwk(self.dpop_key)

    def build_request(self, *, audience: str, nonce: str, url: str, token: str) -> str:
        """``n`` fresh keys and proofs plus a DPoP proof; returns the JSON body."""
        now = int(time.time())
        proofs = []
        for _ in range(self.n):
            holder = ec.generate_private_key(ec.SECP256R1())
            proofs.append(
                _sign(
                    holder,
                    {"typ": "openid4vci-proof+jwt", "alg": "ES256", "jwk": _public_jwk(holder)},
                    {"aud": audience, "iat": now, "nonce": nonce},
                )
            )
        ath = _b64(hashlib.sha256(token.encode()).digest())
        _sign(
            self.dpop_key,
            {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.dpop_jwk},
            {"jti": _b64(os.urandom(16)), "htm": "POST", "htu": url, "iat": now, "ath": ath},
        )
        return json.dumps({"credential_configuration_id": "x", "proofs": {"jwt": proofs}})

    def verify(self, credentials: list[str], holder_jwks: list[dict[str, Any]]) -> list[dict]:
        """Verify ``credentials`` (one per holder key, in order); returns the claims."""
        out = []
        for credential, holder_jwk in zip(credentials, holder_jwks, strict=True):
            jwt, *disclosures, _ = credential.split("~")
            head, body, sig = jwt.split(".")
            raw = _unb64(sig)
            der = encode_dss_signature(
                int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            )
            self.issuer_public.verify(der, f"{head}.{body}".encode(), _ECDSA)
            payload = json.loads(_unb64(body))
            digests = set(payload["_sd"])
            claims = {k: v for k, v in payload.items() if k not in ("_sd", "_sd_alg")}
            for disclosure in disclosures:
                digest = _b64(hashlib.sha256(disclosure.encode()).digest())
                if digest not in digests:
                    raise ValueError("unreferenced disclosure")
                _, name, value = json.loads(_unb64(disclosure))
                claims[name] = value
            cnf = payload["cnf"]["jwk"]
            if {k: cnf[k] for k in ("kty", "crv", "x", "y")} != {
                k: holder_jwk[k] for k in ("kty", "crv", "x", "y")
            }:
                raise ValueError("cnf mismatch")
            out.append(claims)
        return out
