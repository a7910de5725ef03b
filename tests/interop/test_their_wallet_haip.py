"""Their wallet, our HAIP issuer: oid4vc-ts (``wallet.mjs``) against ``python -m oid4vci serve
--profile haip --trust-attester CA.pem`` over real HTTP on 127.0.0.1.

oid4vc-ts makes the wallet attestation (``createClientAttestationJwt``) and its PoP
(``clientAuthenticationClientAttestationJwt``, at PAR and token) and one key attestation per
credential request (``createKeyAttestationJwt``, in the ``key_attestation`` header of every
``jwt`` proof); the glue only signs. Each credential must carry an ``x5c`` chain that node:crypto
validates to the issuer root of the ready line, and its signature must verify with the leaf key.
Encryption is off on this path: oid4vc-ts 0.4.6 has no JWE for credential requests (HAIP 1.0
leaves it optional anyway).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.attestation_support import CLIENT_ID, realtime_pki
from tests.interop._node import REPO, BackgroundServer, run_node_wallet, skip_reason

SKIP = skip_reason()
pytestmark = [pytest.mark.interop, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]


@pytest.fixture(scope="module")
def haip_issuer(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[BackgroundServer, Path]]:
    """The HAIP demo issuer trusting a fresh wallet provider; the directory holds the attester's
    key (``attester.jwk``), chain (``chain.pem``) and the issuer root (``issuer-root.pem``)."""
    files = tmp_path_factory.mktemp("haip")
    pki = realtime_pki()
    (files / "attester.jwk").write_text(json.dumps(pki.signer.private_jwk()))
    (files / "chain.pem").write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (pki.leaf, pki.intermediate))
    )
    (files / "provider-root.pem").write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    argv = [
        *(sys.executable, "-m", "oid4vci", "serve", "--json", "--port", "0"),
        *("--profile", "haip", "--trust-attester", str(files / "provider-root.pem")),
    ]
    server = BackgroundServer(argv, cwd=REPO, ready_timeout=30)
    try:
        (files / "issuer-root.pem").write_text(server.ready["trust_anchors_pem"])
        yield server, files
    finally:
        server.stop()


def _attested(files: Path) -> list[str]:
    return [
        *("--attester-key", str(files / "attester.jwk")),
        *("--attester-chain", str(files / "chain.pem")),
        *("--trust-anchor", str(files / "issuer-root.pem")),
        *("--client-id", CLIENT_ID),
    ]


@pytest.mark.parametrize("flow", ["pre_auth", "auth_code"])
def test_their_wallet_gets_x5c_credentials(
    haip_issuer: tuple[BackgroundServer, Path], flow: str
) -> None:
    server, files = haip_issuer
    extra = ["--batch", "2"] if flow == "pre_auth" else ["--login", server.ready["login"]]
    out = run_node_wallet([server.ready["offers"][flow], *_attested(files), *extra])
    context = f"wallet said {out.get('error')}\nissuer log: {server.log()}"
    assert out["ok"] is True and out["_status"] == 0, context
    assert out["dpop"] is True and out["token_type"] == "DPoP"
    assert len(out["credentials"]) == (2 if flow == "pre_auth" else 1)
    for credential in out["credentials"]:
        assert credential["checks"]["x5c"] is True, credential["checks"]
        assert all(credential["checks"].values()), credential["checks"]
        assert "x5c" in credential["header"] and "kid" not in credential["header"]


def test_their_unattested_wallet_is_refused(haip_issuer: tuple[BackgroundServer, Path]) -> None:
    server, _ = haip_issuer
    out = run_node_wallet([server.ready["offers"]["pre_auth"], "--client-id", CLIENT_ID])
    assert out["ok"] is False and out["_status"] == 1
    assert out["error"]["status"] == 401
    assert out["error"]["body"]["error"] == "invalid_client"


def test_a_foreign_trust_anchor_fails_their_x5c_check(
    haip_issuer: tuple[BackgroundServer, Path], tmp_path: Path
) -> None:
    server, files = haip_issuer
    foreign = tmp_path / "foreign.pem"
    foreign.write_bytes(realtime_pki().root.public_bytes(serialization.Encoding.PEM))
    args = [a if a != str(files / "issuer-root.pem") else str(foreign) for a in _attested(files)]
    out = run_node_wallet([server.ready["offers"]["pre_auth"], *args])
    assert out["ok"] is False
    assert [c["checks"]["x5c"] for c in out["credentials"]] == [False]
