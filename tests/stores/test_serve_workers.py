"""``oid4vci serve --workers N --store URL``: N processes on one port, one Redis, one ready line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from oid4vci.cli import main
from tests.e2e.conftest import REPO_ROOT, _read_line, json_line, run_cli, subprocess_env
from tests.redis_servers import RedisServer

#: Several worker processes per test: run by ``make test-slow`` (and so by CI), not ``make test``.
pytestmark = pytest.mark.slow

READY_KEYS = {"issuer", "offers", "tx_code", "login"}


@contextmanager
def serve_workers(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """``oid4vci serve --json ARGS``: the process and its ready line; killed afterwards."""
    with tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "oid4vci", "serve", "--json", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
            env=subprocess_env(),
            cwd=REPO_ROOT,
        )
        try:
            assert process.stdout is not None
            line = _read_line(process.stdout, 90)
            stderr.seek(0)
            assert line, f"serve exited before it was ready: {stderr.read()[-2000:]}"
            yield process, json.loads(line)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            if process.stdout is not None:
                process.stdout.close()


def test_workers_behind_a_proxy_use_the_public_url() -> None:
    """``--public-url`` is the issuer identifier of every worker (offers, metadata); the ready
    line's ``listen`` is where they listen."""
    import urllib.request
    from urllib.parse import unquote

    public = "https://issuer.example"
    with serve_workers("--workers", "1", "--public-url", public) as (_process, ready):
        assert ready["issuer"] == public
        assert ready["listen"].startswith("http://127.0.0.1:")
        assert all(public + "/" in unquote(link) for link in ready["offers"].values())
        url = ready["listen"] + "/.well-known/openid-credential-issuer"
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert json.loads(answer.read())["credential_issuer"] == public


def test_the_admin_endpoint_works_at_every_worker(redis_single: RedisServer) -> None:
    """The admin token is shared: status changes through it are served by every worker."""
    import urllib.error
    import urllib.request

    from oid4vci.jose import decode_jws
    from oid4vci.status import parse_status_reference

    with serve_workers("--workers", "2", "--store", redis_single.url) as (process, ready):
        admin = ready["admin"]
        assert admin["status_url"] == ready["issuer"] + "/admin/status"
        done = run_cli("receive", ready["offers"]["pre_auth"], "--json")
        entry = json_line(done.stdout)["credentials"][0]
        assert entry["status"] == "valid"
        credential = entry["credential"]
        payload = decode_jws(credential.split("~")[0]).payload
        reference = parse_status_reference(payload, allow_insecure_loopback=True)
        assert reference is not None
        # new connections are spread over the workers: every one must know the token
        for new in ("suspended", "invalid", "valid", "invalid"):
            body = json.dumps({"uri": reference.uri, "idx": reference.idx, "status": new})
            request = urllib.request.Request(
                admin["status_url"],
                data=body.encode(),
                headers={"Authorization": "Bearer " + admin["token"]},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                assert response.status == 204
            done = run_cli("status", credential, "--json")
            assert json_line(done.stdout)["status"] == new, done.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is not alive
        return stat.read().split(") ", 1)[1][0] != "Z"


def _wait_gone(pids: list[int], timeout: float = 15) -> None:
    import time

    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if _alive(p)]}"
        time.sleep(0.05)


def test_two_workers_on_one_redis_serve_flows(redis_single: RedisServer, tmp_path: Path) -> None:
    with serve_workers("--workers", "2", "--store", redis_single.url) as (process, ready):
        assert set(ready) >= READY_KEYS
        assert set(ready) - READY_KEYS == {
            "workers",
            "store",
            "page",
            "listen",
            "admin",
            "trust_anchors_pem",
        }
        assert ready["store"] == redis_single.url
        workers = ready["workers"]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
        for name, extra in [("pre_auth", ["--batch", "2"]), ("auth_code", ["--login"])]:
            if extra == ["--login"]:
                extra = ["--login", ready["login"]]
            done = run_cli("receive", ready["offers"][name], *extra, "--json")
            assert "Traceback" not in done.stderr, done.stderr[-2000:]
            data = json_line(done.stdout)
            assert done.returncode == 0 and data["ok"] is True, data
        done = run_cli(
            "receive", ready["offers"]["pre_auth_tx_code"], "--tx-code", ready["tx_code"], "--json"
        )
        assert done.returncode == 0, done.stdout[-2000:]
        # every worker signs mdocs under the one IACA root of the ready line
        anchor = tmp_path / "iaca.pem"
        anchor.write_text(ready["trust_anchors_pem"])
        for _ in range(3):
            done = run_cli(
                "receive", ready["offers"]["pre_auth_mdoc"], "--trust-anchor", str(anchor), "--json"
            )
            assert done.returncode == 0 and json_line(done.stdout)["ok"] is True, done.stdout
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        _wait_gone(workers)


def test_a_dead_worker_stops_the_server(redis_single: RedisServer) -> None:
    with serve_workers("--workers", "2", "--store", redis_single.url) as (process, ready):
        first, second = ready["workers"]
        os.kill(first, signal.SIGKILL)
        assert process.wait(timeout=20) == 1
        _wait_gone([second])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--workers", "0", "--store", "redis://127.0.0.1:1"], "--workers must be"),
        (["--workers", "two", "--store", "redis://127.0.0.1:1"], "--workers must be"),
        (["--workers", "65", "--store", "redis://127.0.0.1:1"], "--workers must be"),
        (["--workers", "2"], "needs --store"),
        (["--store", "http://127.0.0.1:6379"], "scheme"),
        (["--store", "redis://:hunter2@127.0.0.1:notaport"], "port"),
        (["--workers", "2", "--store", "redis+cluster://a:1/3"], "database 0"),
    ],
)
def test_bad_values_print_one_line_and_exit_2(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # In process (the checks come before any worker starts); one subprocess run below.
    assert main(["serve", "--json", *args]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and says in lines[0], err
    assert "hunter2" not in err


def test_bad_value_from_the_command_line() -> None:
    done = run_cli("serve", "--json", "--workers", "0", "--store", "redis://127.0.0.1:1")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "oid4vci serve: error: --workers must be a whole number from 1 to 64"
        " (see oid4vci serve --help)\n"
    )


@pytest.mark.parametrize("scheme", ["redis", "redis+cluster"])
def test_unreachable_store_prints_one_line_and_exits_1(
    private_redis: RedisServer, scheme: str
) -> None:
    private_redis.stop()
    url = f"{scheme}://127.0.0.1:{private_redis.port}"
    done = run_cli("serve", "--json", "--workers", "2", "--store", url, timeout=90)
    assert done.returncode == 1 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "cannot use the store" in lines[0], done.stderr


def test_haip_workers_share_the_signing_certificates(
    redis_single: RedisServer, tmp_path: Any
) -> None:
    """``--profile haip``: every worker signs under the one root of the ready line."""
    from tests.e2e.test_cli_haip import attester_files

    key, chain, provider_root = attester_files(tmp_path)
    args = ("--workers", "2", "--store", redis_single.url)
    with serve_workers(*args, "--profile", "haip", "--trust-attester", provider_root) as (
        process,
        ready,
    ):
        assert ready["profile"] == "haip"
        anchor = tmp_path / "root.pem"
        anchor.write_text(ready["trust_anchors_pem"])
        attester = (
            "--attester-key",
            key,
            "--attester-chain",
            chain,
            "--client-id",
            "https://wallet.example/app",
        )
        for _ in range(4):  # new connections: the kernel spreads them over both workers
            done = run_cli(
                "receive",
                ready["offers"]["pre_auth"],
                *attester,
                "--trust-anchor",
                str(anchor),
                "--profile",
                "haip",
                "--json",
            )
            data = json_line(done.stdout)
            assert done.returncode == 0, done.stderr[-2000:]
            assert [c["x5c_verified"] for c in data["credentials"]] == [True]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
