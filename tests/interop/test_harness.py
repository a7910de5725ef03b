"""The harness checks itself: ``wallet.mjs`` (which judges our issuer's credentials) must refuse
the deliberately broken credentials ``issuer.mjs`` can mint, and accept the good ones."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.interop._node import BackgroundServer, run_node_wallet, skip_reason, start_node_script

SKIP = skip_reason()
pytestmark = [pytest.mark.interop, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]

TAMPER_MODES = ("cnf", "signature", "disclosure", "iss", "vct", "typ", "expired")


@pytest.fixture(scope="module")
def node_issuer() -> Iterator[BackgroundServer]:
    """``node issuer.mjs`` (1.0 metadata)."""
    server = start_node_script("issuer.mjs", ready_timeout=30)
    try:
        yield server
    finally:
        server.stop()


def tampered_offer(server: BackgroundServer, mode: str) -> str:
    """A pre-authorized offer (by reference) whose credentials are broken in ``mode``."""
    url = f"{server.ready['issuer']}/offers/pre_auth?tamper={mode}"
    return f"openid-credential-offer://?credential_offer_uri={quote(url, safe='')}"


def test_node_wallet_accepts_node_issuer(node_issuer: BackgroundServer) -> None:
    out = run_node_wallet([node_issuer.ready["offers"]["pre_auth"], "--batch", "2"])
    assert out["ok"] is True, f"{out['error']}\n{node_issuer.log()}"
    assert len(out["credentials"]) == 2
    assert all(c["verified"] for c in out["credentials"])


@pytest.mark.parametrize("mode", TAMPER_MODES)
def test_node_wallet_refuses_tampered_credentials(node_issuer: BackgroundServer, mode: str) -> None:
    out = run_node_wallet([tampered_offer(node_issuer, mode)])
    assert out["ok"] is False, f"a credential tampered with ({mode}) passed the JS checks"
    assert out["_status"] == 1
    assert not any(c["verified"] for c in out["credentials"])
