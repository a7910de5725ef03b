"""``oid4vci serve --profile haip --trust-attester CA.pem`` and ``oid4vci receive
--attester-key --attester-chain --trust-anchor ROOT.pem [--profile haip]``: x5c-signed
credentials between two processes on 127.0.0.1; without the profile ``serve`` is unchanged."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from oid4vci.x509 import load_trust_anchors
from tests.attestation_support import CLIENT_ID, realtime_pki
from tests.e2e.conftest import json_line, run_cli, served_issuer
from tests.e2e.test_cli_errors import one_line_error

#: The members of ``serve --json`` before HAIP (the stable contract: additive only).
PLAIN_KEYS = {"issuer", "offers", "tx_code", "login", "page", "listen", "admin"}


def attester_files(tmp_path: Path) -> tuple[str, str, str]:
    """``--attester-key``, ``--attester-chain`` and the provider root for ``--trust-attester``."""
    pki = realtime_pki()
    key = tmp_path / "attester.jwk"
    key.write_text(json.dumps(pki.signer.private_jwk()))
    chain = tmp_path / "chain.pem"
    chain.write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (pki.leaf, pki.intermediate))
    )
    root = tmp_path / "provider-root.pem"
    root.write_bytes(pki.root.public_bytes(serialization.Encoding.PEM))
    return str(key), str(chain), str(root)


def receive(*args: str) -> tuple[int, dict[str, Any], subprocess.CompletedProcess[str]]:
    done = run_cli("receive", *args, "--json")
    return done.returncode, json_line(done.stdout), done


def test_haip_serve_and_receive(tmp_path: Path) -> None:
    key, chain, provider_root = attester_files(tmp_path)
    with served_issuer("1.0", "--profile", "haip", "--trust-attester", provider_root) as server:
        ready = server.ready
        assert ready["profile"] == "haip"
        assert set(ready) >= PLAIN_KEYS
        anchors = load_trust_anchors([ready["trust_anchors_pem"]])
        # the root of the x5c-signed credentials, beside the mDL's IACA root
        names = sorted(a.subject.rfc4514_string() for a in anchors)
        assert names == ["CN=oid4vci demo IACA,C=UT", "CN=oid4vci demo root CA"]
        anchor = tmp_path / "issuer-root.pem"
        anchor.write_text(ready["trust_anchors_pem"])
        attester = ("--attester-key", key, "--attester-chain", chain, "--client-id", CLIENT_ID)
        trust = ("--trust-anchor", str(anchor))
        for offer, more in (
            ("pre_auth", ("--batch", "2")),
            ("auth_code", ("--login", ready["login"], "--profile", "haip")),
        ):
            code, data, stderr = receive(server.offers[offer], *attester, *trust, *more)
            assert code == 0, stderr.stderr[-2000:]
            assert data["ok"] is True and data["credentials"]
            for credential in data["credentials"]:
                assert credential["verified"] is True and credential["x5c_verified"] is True
                assert credential["status"] == "valid"
        # oid4vci status: the x5c-signed status list checked against the same anchor
        out = tmp_path / "out"
        code, data, done = receive(server.offers["pre_auth"], *attester, *trust, "--out", str(out))
        assert code == 0, done.stderr[-2000:]
        (saved,) = out.glob("*.sd-jwt")
        checked = run_cli("status", str(saved), "--json", *trust)
        assert checked.returncode == 0, checked.stderr[-2000:]
        assert json_line(checked.stdout)["status"] == "valid"
        other = tmp_path / "other-root.pem"
        other.write_bytes(realtime_pki().root.public_bytes(serialization.Encoding.PEM))
        refused = run_cli("status", str(saved), "--json", "--trust-anchor", str(other))
        one_line_error(refused, 1, "status", "x5c")
        missing = run_cli("status", str(saved), "--trust-anchor", str(tmp_path / "none.pem"))
        one_line_error(missing, 2, "status", "--trust-anchor")
        # without an anchor the list is checked with the issuer's metadata keys
        assert run_cli("status", str(saved), "--json").returncode == 0
        # without the trust anchor the credentials still verify, through the issuer metadata
        code, data, _ = receive(server.offers["pre_auth"], *attester)
        assert code == 0 and [c["x5c_verified"] for c in data["credentials"]] == [False]
        # without an attester the wallet refuses before spending the code (exit 1)
        code, data, done = receive(server.offers["pre_auth"], *trust)
        assert data["ok"] is False
        one_line_error(done, 1, "receive", "attestation")
        # a trust anchor the credentials do not chain to
        code, data, done = receive(
            server.offers["pre_auth"], *attester, "--trust-anchor", str(other)
        )
        assert data["ok"] is False
        one_line_error(done, 1, "receive", "x5c")
        assert server.stop() == 0


def test_plain_serve_is_unchanged(tmp_path: Path) -> None:
    with served_issuer("1.0") as server:
        assert "profile" not in server.ready and set(server.ready) >= PLAIN_KEYS
        code, data, done = receive(server.offers["pre_auth"])
        assert code == 0, done.stderr[-2000:]
        assert [c["x5c_verified"] for c in data["credentials"]] == [False]
        assert server.stop() == 0


def test_usage_errors(tmp_path: Path) -> None:
    done = run_cli("serve", "--profile", "haip", "--json")
    one_line_error(done, 2, "serve", "--profile haip needs --trust-attester")
    bad = tmp_path / "not.pem"
    bad.write_text("not a certificate")
    done = run_cli("serve", "--profile", "haip", "--trust-attester", str(bad))
    one_line_error(done, 2, "serve", "holds no certificate")
    done = run_cli("receive", "openid-credential-offer://?x", "--profile", "haip")
    one_line_error(done, 2, "receive", "--profile haip needs --attester-key")


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # aiohttp servers
async def test_served_haip_issuer_checks_the_status_of_attestations() -> None:
    """``serve --profile haip``'s issuer fetches the Token Status List a wallet attestation
    names (here the provider's list on 127.0.0.1): a valid one passes, a revoked one is
    ``invalid_client``."""
    import time

    from oid4vci.cli.serve import running_demo_issuer
    from oid4vci.errors import TokenError
    from oid4vci.issuer import build_demo_issuer
    from oid4vci.issuer.status_list import allocate_status_entries, set_credential_status
    from oid4vci.transports.aiohttp import AiohttpTransport, serve
    from oid4vci.wallet import FlowState, Oid4vciClient, WalletPolicy
    from tests.attestation_support import make_provider

    pki = realtime_pki()
    holder: dict[str, Any] = {}

    async def lists_handle(request: Any) -> Any:
        return await holder["lists"].issuer.handle(request)

    async with (
        serve(lists_handle) as lists_server,
        running_demo_issuer(profile="haip", attester_roots=[pki.root]) as server,
        AiohttpTransport(allow_insecure_loopback=True) as transport,
    ):
        lists = holder["lists"] = build_demo_issuer(
            lists_server.base_url,
            signer=pki.signer,
            credential_signer_chain=[pki.leaf, pki.intermediate],
            trust_anchors=[pki.root],
        )
        references = await allocate_status_entries(
            lists.config,
            subject="",
            configuration_id=lists.configuration_id,
            count=2,
            lifetime=3600,
        )
        await set_credential_status(references[1], lists.config, "invalid")

        def client(index: int) -> Oid4vciClient:
            provider = make_provider(pki, time.time, client_status=references[index])  # type: ignore[arg-type]
            policy = WalletPolicy.haip(
                trusted_x5c_roots=server.demo.trust_anchors,
                attestation_provider=provider,
                allow_insecure_loopback=True,
            )
            return Oid4vciClient(transport, policy=policy)

        link = server.demo.offer_links["pre_auth"]
        result = await client(0).accept_offer(link)
        assert result.state is FlowState.DONE and result.credentials[0].x5c_verified
        with pytest.raises(TokenError) as caught:
            await client(1).accept_offer(link)
        assert (caught.value.error, caught.value.status) == ("invalid_client", 400)
