"""Their wallet, our HAIP issuer: oid4vc-ts (``wallet.mjs``) against ``python -m oid4vci serve
--profile haip --trust-attester CA.pem --require-encryption --refresh-tokens --access-token-ttl 4``
over real HTTP on 127.0.0.1.

oid4vc-ts makes the wallet attestation (``createClientAttestationJwt``) and its PoP
(``clientAuthenticationClientAttestationJwt``, at PAR, token and refresh) and one key
attestation per credential request (``createKeyAttestationJwt``, in the ``key_attestation``
header of every ``jwt`` proof); the glue only signs. Each credential must carry an ``x5c`` chain
that node:crypto validates to the issuer root of the ready line, and its signature must verify
with the leaf key.

The issuer requires encrypted credential requests and responses (OID4VCI 1.0 §10). The JWE
layer is glue, not oid4vc-ts: oid4vc-ts 0.4.6 has no JWE for credential requests, so
``jwe.mjs`` wraps the ``fetch`` callback oid4vc-ts is given and, with npm ``jose``, adds
``credential_response_encryption`` (a fresh ECDH-ES key), encrypts the request to the key of
``credential_request_encryption`` (``application/jwt``) and decrypts the ``application/jwt``
answer before oid4vc-ts parses it. The refresh (``grant_type=refresh_token``, DPoP and wallet
attestation) is oid4vc-ts's own ``Oauth2Client.retrieveRefreshTokenAccessToken``. The demo
issuer never defers, so the deferred endpoint is not exercised here.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from oid4vci.cli.serve import DEMO_ENCRYPTION_KID
from tests.attestation_support import CLIENT_ID, realtime_pki
from tests.interop._node import REPO, BackgroundServer, run_node_wallet, skip_reason

SKIP = skip_reason()
pytestmark = [pytest.mark.interop, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]


#: The issuer's access-token lifetime (seconds): short, so ``--refresh`` waits little.
TOKEN_TTL = 4


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
        *("--require-encryption", "--refresh-tokens", "--access-token-ttl", str(TOKEN_TTL)),
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


def _assert_encrypted(out: dict[str, Any]) -> None:
    """Every credential request went out as a JWE to the issuer's key and every answer came
    back as a JWE with the ``enc`` the wallet asked for."""
    encryption = out["encryption"]
    assert encryption["request"] is True and encryption["response"] is True
    exchanges = encryption["exchanges"]
    assert exchanges, "no credential request went through the JWE glue"
    for exchange in exchanges:
        assert exchange["endpoint"].endswith("/credential")
        assert exchange["request_type"] == "application/jwt"
        header = exchange["request_header"]
        assert header["alg"] == "ECDH-ES" and header["kid"] == DEMO_ENCRYPTION_KID
        assert header["enc"] in ("A128GCM", "A256GCM")
    answers = [e for e in exchanges if e["status"] == 200]
    assert answers
    for answer in answers:
        assert answer["response_type"] == "application/jwt"
        assert answer["response_header"]["alg"] == "ECDH-ES"
        assert answer["response_header"]["enc"] in ("A128GCM", "A256GCM")


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
    _assert_encrypted(out)
    assert [n["status"] for n in out["notifications"]] == [204]
    assert out["refresh"] is None


def test_their_wallet_refreshes_an_expired_token(
    haip_issuer: tuple[BackgroundServer, Path],
) -> None:
    server, files = haip_issuer
    out = run_node_wallet([server.ready["offers"]["pre_auth"], *_attested(files), "--refresh"])
    context = f"wallet said {out.get('error')}\nissuer log: {server.log()}"
    assert out["ok"] is True and out["_status"] == 0, context
    refresh = out["refresh"]
    assert refresh["expires_in"] == TOKEN_TTL
    # the expired token was refused (RFC 6750 §3.1 / RFC 9449 §7.1) ...
    assert refresh["expired_status"] == 401
    assert (
        refresh["expired_error"].startswith("DPoP ") and "invalid_token" in refresh["expired_error"]
    )
    # ... and the refreshed, DPoP-bound one got the credential
    assert refresh["token_type"] == "DPoP" and refresh["new_token"] is True
    assert [c["checks"]["x5c"] for c in out["credentials"]] == [True]
    _assert_encrypted(out)
    statuses = [e["status"] for e in out["encryption"]["exchanges"]]
    assert statuses == [401, 200]


@pytest.mark.parametrize(
    ("variant", "status", "error"),
    [("no-attestation", 400, "invalid_client"), ("other-dpop-key", 400, "invalid_dpop_proof")],
)
def test_their_refresh_needs_the_attestation_and_the_dpop_key(
    haip_issuer: tuple[BackgroundServer, Path], variant: str, status: int, error: str
) -> None:
    """A refresh without the wallet attestation, or with a DPoP proof of another key, is
    refused and uses nothing up: the proper refresh right after it works."""
    server, files = haip_issuer
    args = [server.ready["offers"]["pre_auth"], *_attested(files), "--bad-refresh", variant]
    out = run_node_wallet(args)
    context = f"wallet said {out.get('error')}\nissuer log: {server.log()}"
    assert out["ok"] is True and out["_status"] == 0, context
    refused = out["refresh"]["refused"]
    assert refused["status"] == status and refused["body"]["error"] == error, refused
    assert out["refresh"]["token_type"] == "DPoP" and out["refresh"]["new_token"] is True
    _assert_encrypted(out)


@pytest.mark.parametrize(
    ("wallet_args", "description"),
    [
        (["--jwe", "off"], "must be encrypted"),
        (["--jwe", "request-only"], "credential_response_encryption"),
        (["--jwe-enc", "A192GCM"], "enc"),
        (["--jwe-response-enc", "A192GCM"], "enc"),
    ],
    ids=["plain-request", "no-response-encryption", "request-enc", "response-enc"],
)
def test_their_wallet_without_the_right_encryption_is_refused(
    haip_issuer: tuple[BackgroundServer, Path], wallet_args: list[str], description: str
) -> None:
    server, files = haip_issuer
    out = run_node_wallet([server.ready["offers"]["pre_auth"], *_attested(files), *wallet_args])
    assert out["ok"] is False and out["_status"] == 1 and out["credentials"] == []
    # OID4VCI 1.0 §8.3.1.2; errors are never encrypted (§8.3.1)
    assert out["error"]["status"] == 400, out["error"]
    assert out["error"]["body"]["error"] == "invalid_encryption_parameters"
    assert description in out["error"]["body"]["error_description"]
    for exchange in out["encryption"]["exchanges"]:
        assert exchange["status"] == 400 and exchange["response_type"] == "application/json"


def test_their_unattested_wallet_is_refused(haip_issuer: tuple[BackgroundServer, Path]) -> None:
    server, _ = haip_issuer
    out = run_node_wallet([server.ready["offers"]["pre_auth"], "--client-id", CLIENT_ID])
    assert out["ok"] is False and out["_status"] == 1
    assert out["error"]["status"] == 400
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
