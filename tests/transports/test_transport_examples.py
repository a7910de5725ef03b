"""The transport examples run as written: the issuer in Starlette, the wallet on trio."""

from __future__ import annotations

import subprocess
import sys

import pytest

from examples import issuer_starlette
from tests.e2e.conftest import REPO_ROOT, served_issuer, subprocess_env


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # uvicorn runs on asyncio
async def test_issuer_starlette(anyio_backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    claims = await issuer_starlette.main()
    assert claims["given_name"] == "Alice"
    out = capsys.readouterr().out
    assert out.endswith(": Alice (verified True)\n"), out


def test_issuer_starlette_module_app() -> None:
    """What ``uvicorn examples.issuer_starlette:app`` serves."""
    assert issuer_starlette.demo.credential_issuer == "http://127.0.0.1:8000"
    assert [getattr(route, "path", None) for route in issuer_starlette.app.routes] == [
        "/health",
        "",
    ]


def test_wallet_httpx_trio_against_a_served_issuer() -> None:
    with served_issuer("1.0") as served:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "examples.wallet_httpx_trio",
                served.offers["pre_auth_tx_code"],
                served.ready["tx_code"],
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env=subprocess_env(),
            cwd=REPO_ROOT,
            check=False,
        )
        assert served.stop() == 0
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines() == [
        f"{served.issuer}/identity_credential (verified True)",
        "  given_name: Alice",
        "  family_name: Liddell",
        "  birthdate: 2000-05-04",
    ]


def test_issuer_starlette_runs_as_a_program() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "examples.issuer_starlette"],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
        cwd=REPO_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.endswith(": Alice (verified True)\n"), done.stdout
