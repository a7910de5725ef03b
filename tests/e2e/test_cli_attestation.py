"""``oid4vci receive --attester-key KEY.jwk --attester-chain CHAIN.pem``: the CLI wallet sends
wallet and key attestations to an issuer that requires both (a real process against aiohttp on
127.0.0.1), and reports unusable attester files in one line with exit code 2."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from cryptography.hazmat.primitives import serialization

from oid4vci.transports.aiohttp import serve
from tests.attestation_support import CLIENT_ID, AttestedIssuer, attested_issuer, realtime_pki
from tests.conftest import FakeClock
from tests.e2e.conftest import run_cli
from tests.e2e.test_cli_errors import one_line_error


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def attester_files(tmp_path: Path) -> tuple[str, str, Any]:
    pki = realtime_pki()
    key = tmp_path / "attester.jwk"
    key.write_text(json.dumps(pki.signer.private_jwk()))
    chain = tmp_path / "chain.pem"
    chain.write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (pki.leaf, pki.intermediate))
    )
    return str(key), str(chain), pki


async def test_receive_with_attestations(tmp_path: Path) -> None:
    key, chain, pki = attester_files(tmp_path)
    holder: dict[str, AttestedIssuer] = {}

    async def handle(request: Any) -> Any:
        return await holder["issuer"].handle(request)

    async with serve(handle) as served:
        issuer = holder["issuer"] = attested_issuer(
            FakeClock(time.time()), pki, issuer_url=served.base_url, key_required={}
        )
        link = issuer.links["pre_auth"]
        args = ("receive", link, "--json", "--batch", "2", "--client-id", CLIENT_ID)
        done = await anyio.to_thread.run_sync(
            lambda: run_cli(*args, "--attester-key", key, "--attester-chain", chain)
        )
        assert done.returncode == 0, done.stderr[-2000:]
        line = json.loads(done.stdout.strip().splitlines()[-1])
        assert line["ok"] is True and len(line["credentials"]) == 2
        # without the attester the wallet refuses before spending the code (exit 1)
        done = await anyio.to_thread.run_sync(lambda: run_cli(*args))
        assert done.returncode == 1
        assert (
            "attestation"
            in json.loads(done.stdout.strip().splitlines()[-1])["errors"][0]["message"]
        )


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("key only", ("--attester-chain", "together")),
        ("missing file", ("cannot read",)),
        ("not json", ("not a JSON JWK",)),
        ("public key", ("not a private JWK",)),
        ("not a chain", ("cannot be used",)),
    ],
)
def test_unusable_attester_files(tmp_path: Path, case: str, words: tuple[str, ...]) -> None:
    key, chain, pki = attester_files(tmp_path)
    options = ["--attester-key", key, "--attester-chain", chain]
    if case == "key only":
        options = options[:2]
    elif case == "missing file":
        options[3] = str(tmp_path / "absent.pem")
    elif case == "not json":
        Path(key).write_text("-----BEGIN PRIVATE KEY-----")
    elif case == "public key":
        Path(key).write_text(json.dumps(pki.signer.public_jwk))
    else:
        Path(chain).write_text("not a certificate")
    done = run_cli("receive", "openid-credential-offer://?credential_offer=%7B%7D", *options)
    line = one_line_error(done, 2, "receive", *words)
    assert pki.signer.private_jwk()["d"] not in line
