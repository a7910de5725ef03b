"""Their wallet, our issuer: oid4vc-ts (``wallet.mjs``) receives credentials from
``python -m oid4vci serve`` over real HTTP on 127.0.0.1.

``wallet.mjs`` uses oid4vc-ts for every protocol step (offer by reference, metadata, token with
DPoP, PAR + PKCE, nonce, jwt proofs, credential request) and checks each SD-JWT VC on its own:
issuer signature with the key from ``/.well-known/jwt-vc-issuer``, ``typ``, ``iss``, ``vct``, the
disclosure digests, and ``cnf.jwk`` equal to the key it proved. This module checks its report
again from the raw credentials.
"""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.interop._node import (
    REPO,
    BackgroundServer,
    installed_versions,
    locked_versions,
    pinned_versions,
    run_node_wallet,
    skip_reason,
)

SKIP = skip_reason()
pytestmark = [pytest.mark.interop, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]

# Our --spec value -> what oid4vc-ts detects from the metadata. Draft 13 metadata reads as its
# "Draft14" (it has no separate Draft 13 mode); the request shape is the same (format + vct,
# singular proof).
SPECS = {"1.0": "V1", "draft-15": "Draft15", "draft-14": "Draft14", "draft-13": "Draft14"}
WALLET_TIMEOUT = 60.0
# Refusals do not depend on the metadata version: check them against 1.0 only.
NEGATIVE = pytest.mark.parametrize("our_issuer", ["1.0"], indirect=True)


@pytest.fixture(scope="module", params=list(SPECS))
def our_issuer(request: pytest.FixtureRequest) -> Iterator[tuple[str, BackgroundServer]]:
    """``oid4vci serve --json`` publishing the parametrized spec version's metadata."""
    spec = str(request.param)
    argv = [sys.executable, "-m", "oid4vci", "serve", "--json", "--port", "0", "--spec", spec]
    server = BackgroundServer(argv, cwd=REPO, ready_timeout=30)
    try:
        yield spec, server
    finally:
        server.stop()


def _b64json(part: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


def _assert_received(out: dict[str, Any], spec: str, server: BackgroundServer, count: int) -> None:
    context = (
        f"wallet said {out.get('error')}\nwallet log: {out['_stderr']}\nissuer log: {server.log()}"
    )
    assert out["ok"] is True, context
    assert out["_status"] == 0, context
    assert out["spec_version"] == SPECS[spec]
    assert out["issuer"] == server.ready["issuer"]
    assert out["dpop"] is True and out["token_type"] == "DPoP"
    credentials = out["credentials"]
    assert len(credentials) == count, context
    expected_typ = "vc+sd-jwt" if spec in ("draft-13", "draft-14") else "dc+sd-jwt"
    holder_keys = set()
    for cred in credentials:
        assert cred["verified"] is True, cred["checks"]
        assert all(cred["checks"].values()), cred["checks"]
        # Our own look at the raw SD-JWT VC, independent of the JS checks.
        text: str = cred["credential"]
        assert text.endswith("~")
        jwt = text.split("~")[0]
        header_b64, payload_b64, _ = jwt.split(".")
        header, payload = _b64json(header_b64), _b64json(payload_b64)
        assert header["typ"] == expected_typ
        assert header["alg"] == "ES256"
        assert payload["iss"] == server.ready["issuer"]
        holder = cred["holder_jwk"]
        cnf = payload["cnf"]["jwk"]
        assert {k: cnf[k] for k in ("kty", "crv", "x", "y")} == holder
        assert "d" not in cnf
        holder_keys.add(holder["x"])
        assert cred["claims"]["vct"] == payload["vct"]
        # Selectively disclosed claims came through (the demo discloses its claims).
        disclosed = set(cred["claims"]) - set(payload)
        assert disclosed, "no selectively disclosed claim was recovered"
    assert len(holder_keys) == count, "each credential must be bound to its own proved key"
    # The wallet told our notification endpoint it accepted them (OID4VCI 1.0 §11). Draft 14
    # allows notification_id only beside a single ``credential``, so a Draft 14 batch (sent as
    # ``credentials``) carries none and there is nothing to notify.
    notifications = out["notifications"]
    expected = [] if spec == "draft-14" and count > 1 else [("credential_accepted", 204)]
    assert [(n["event"], n["status"]) for n in notifications] == expected


def test_pinned_oid4vc_ts_versions() -> None:
    """package.json pins exact versions, the lock file agrees, and node_modules has them."""
    pinned = pinned_versions()
    assert all(v[0].isdigit() for v in pinned.values()), f"pins must be exact: {pinned}"
    assert locked_versions() == pinned
    assert installed_versions() == pinned, f"stale node_modules: {installed_versions()}"


def test_pre_authorized_code(our_issuer: tuple[str, BackgroundServer]) -> None:
    spec, server = our_issuer
    out = run_node_wallet([server.ready["offers"]["pre_auth"]], timeout=WALLET_TIMEOUT)
    assert out["flow"] == "pre_auth"
    _assert_received(out, spec, server, 1)


def test_pre_authorized_code_with_tx_code(our_issuer: tuple[str, BackgroundServer]) -> None:
    spec, server = our_issuer
    ready = server.ready
    out = run_node_wallet(
        [ready["offers"]["pre_auth_tx_code"], "--tx-code", ready["tx_code"]],
        timeout=WALLET_TIMEOUT,
    )
    assert out["flow"] == "pre_auth"
    _assert_received(out, spec, server, 1)


@NEGATIVE
def test_wrong_tx_code_is_refused(our_issuer: tuple[str, BackgroundServer]) -> None:
    _, server = our_issuer
    ready = server.ready
    wrong = "1" if ready["tx_code"] != "1" * len(ready["tx_code"]) else "2"
    wrong *= len(ready["tx_code"])
    out = run_node_wallet(
        [ready["offers"]["pre_auth_tx_code"], "--tx-code", wrong], timeout=WALLET_TIMEOUT
    )
    assert out["ok"] is False
    assert out["_status"] == 1
    assert out["credentials"] == []
    assert out["error"]["status"] == 400, out["error"]
    assert out["error"]["body"]["error"] == "invalid_grant", out["error"]


def test_authorization_code_with_login(our_issuer: tuple[str, BackgroundServer]) -> None:
    """PAR (DPoP-bound), PKCE S256, our HTML login form, RFC 9207 ``iss``, code for token."""
    spec, server = our_issuer
    ready = server.ready
    out = run_node_wallet(
        [ready["offers"]["auth_code"], "--login", ready["login"]], timeout=WALLET_TIMEOUT
    )
    assert out["flow"] == "auth_code"
    _assert_received(out, spec, server, 1)


@NEGATIVE
def test_wrong_password_gets_no_code(our_issuer: tuple[str, BackgroundServer]) -> None:
    _, server = our_issuer
    ready = server.ready
    user = ready["login"].split(":", 1)[0]
    out = run_node_wallet(
        [ready["offers"]["auth_code"], "--login", f"{user}:not-the-password"],
        timeout=WALLET_TIMEOUT,
    )
    assert out["ok"] is False
    assert out["credentials"] == []
    assert "login did not redirect" in out["error"]["message"], out["error"]


@NEGATIVE
def test_bearer_refused_when_dpop_required(our_issuer: tuple[str, BackgroundServer]) -> None:
    """By default our issuer demands DPoP: a plain Bearer token request is refused."""
    _, server = our_issuer
    out = run_node_wallet([server.ready["offers"]["pre_auth"], "--no-dpop"], timeout=WALLET_TIMEOUT)
    assert out["ok"] is False
    assert out["credentials"] == []
    assert out["error"]["status"] == 400, out["error"]
    assert out["error"]["body"]["error"] in ("invalid_request", "invalid_dpop_proof")


@pytest.fixture(scope="module")
def bearer_issuer() -> Iterator[BackgroundServer]:
    """``oid4vci serve --allow-bearer`` (1.0 metadata)."""
    argv = [sys.executable, "-m", "oid4vci", "serve", "--json", "--port", "0", "--allow-bearer"]
    server = BackgroundServer(argv, cwd=REPO, ready_timeout=30)
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("offer", ["pre_auth", "auth_code"])
def test_bearer_tokens_when_allowed(bearer_issuer: BackgroundServer, offer: str) -> None:
    ready = bearer_issuer.ready
    args = [ready["offers"][offer], "--no-dpop"]
    if offer == "auth_code":
        args += ["--login", ready["login"]]
    out = run_node_wallet(args, timeout=WALLET_TIMEOUT)
    assert out["ok"] is True, f"{out['error']}\n{bearer_issuer.log()}"
    assert out["dpop"] is False and out["token_type"] == "Bearer"
    assert len(out["credentials"]) == 1 and out["credentials"][0]["verified"] is True


# Draft 13 has no batch_credential_issuance (oid4vc-ts then refuses to send more than one proof).
@pytest.mark.parametrize("our_issuer", [s for s in SPECS if s != "draft-13"], indirect=True)
def test_batch_issuance(our_issuer: tuple[str, BackgroundServer]) -> None:
    """Three jwt proofs in one credential request, three credentials, one per key."""
    spec, server = our_issuer
    out = run_node_wallet(
        [server.ready["offers"]["pre_auth"], "--batch", "3"], timeout=WALLET_TIMEOUT
    )
    _assert_received(out, spec, server, 3)
