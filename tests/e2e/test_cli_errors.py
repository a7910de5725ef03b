"""Every way a user can get the ``oid4vci`` command wrong, or meet a failing issuer, as processes.

Each case runs ``python -m oid4vci ...`` and checks the exit code (0 ok, 1 failure, 2 usage),
that the failure is ONE line on stderr (``oid4vci <command>: error: ...``) saying what went
wrong and what to do, that no secret is echoed, and that no ``Traceback`` appears anywhere.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.e2e.conftest import (
    REPO_ROOT,
    ServedIssuer,
    _read_line,
    json_line,
    run_cli,
    served_issuer,
    subprocess_env,
)

#: An offer whose issuer cannot be reached (nothing listens on port 1).
DEAD_OFFER = "openid-credential-offer://?credential_offer_uri=" + quote(
    "http://127.0.0.1:1/offers/templates/pre_auth", safe=""
)


@pytest.fixture(scope="module")
def served() -> Iterator[ServedIssuer]:
    """The demo issuer in its own process for the whole module."""
    with served_issuer("1.0") as server:
        yield server
        assert server.stop() == 0, server.stderr_text()[-2000:]


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    """Neither stream shows a Python traceback."""
    assert "Traceback" not in done.stdout, done.stdout[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]


def one_line_error(
    done: subprocess.CompletedProcess[str], code: int, command: str, *words: str
) -> str:
    """Exit ``code``; stderr is exactly one ``oid4vci <command>: error: ...`` line with ``words``."""
    no_traceback(done)
    assert done.returncode == code, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    line = lines[0]
    if command:
        assert line.startswith(f"oid4vci {command}: error: "), line
    else:  # argparse reports some errors as the top-level command's
        assert line.startswith("oid4vci") and ": error: " in line, line
    for word in words:
        assert word.lower() in line.lower(), (word, line)
    return line


# --- the command itself ----------------------------------------------------------------------


def test_version() -> None:
    done = run_cli("--version")
    no_traceback(done)
    assert done.returncode == 0
    from oid4vci import __version__

    assert done.stdout.strip() == f"oid4vci {__version__}"


@pytest.mark.parametrize("command", [(), ("serve",), ("receive",), ("demo",)])
def test_help_documents_exit_codes(command: tuple[str, ...]) -> None:
    done = run_cli(*command, "--help")
    no_traceback(done)
    assert done.returncode == 0
    assert "exit codes:" in done.stdout
    for line in ("0    success", "1    failure", "2    usage"):
        assert line in done.stdout


def test_serve_help_shows_defaults() -> None:
    done = run_cli("serve", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for default in ("(default: 127.0.0.1)", "(default: 0)", "(default: 1.0)"):
        assert default in text, text


def test_unknown_option_is_one_line_usage_error() -> None:
    one_line_error(run_cli("serve", "--no-such-option"), 2, "", "--no-such-option", "--help")


def test_no_command_is_usage_error() -> None:
    done = run_cli()
    one_line_error(done, 2, "", "command")


# --- receive: usage errors -------------------------------------------------------------------


def test_login_without_colon_is_usage_error() -> None:
    done = run_cli("receive", DEAD_OFFER, "--login", "alicewonderland")
    one_line_error(done, 2, "receive", "--login", "USER:PASS", "colon")
    assert "alicewonderland" not in done.stderr + done.stdout, "the password must not be echoed"


@pytest.mark.parametrize(
    ("option", "value"), [("--batch", "0"), ("--batch", "x"), ("--timeout", "0")]
)
def test_bad_numbers_are_usage_errors(option: str, value: str) -> None:
    one_line_error(run_cli("receive", DEAD_OFFER, option, value), 2, "receive", option)


def test_out_not_writable_is_checked_before_the_issuer_is_asked(tmp_path: Path) -> None:
    # The offer points at a dead issuer: were --out checked after the exchange, the error
    # would be the connection's (exit 1), and a real issuer would have spent a code.
    done = run_cli("receive", DEAD_OFFER, "--out", "/dev/null/x")
    one_line_error(done, 2, "receive", "--out /dev/null/x", "not a directory", "choose")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    done = run_cli("receive", DEAD_OFFER, "--out", str(a_file), "--json")
    one_line_error(done, 2, "receive", "not a directory")
    # with --json the refusal is also the line scripts read
    (error,) = json.loads(done.stdout)["errors"]
    assert error["type"] == "UsageError" and "not a directory" in error["message"]


def test_missing_tx_code_is_usage_error(served: ServedIssuer) -> None:
    done = run_cli("receive", served.offers["pre_auth_tx_code"])
    one_line_error(done, 2, "receive", "transaction code", "--tx-code")


# --- receive: remote failures ----------------------------------------------------------------


def test_unreachable_issuer_is_one_line() -> None:
    done = run_cli("receive", DEAD_OFFER)
    one_line_error(done, 1, "receive", "could not connect", "is the issuer running")
    assert "FAILED" not in done.stdout and "None" not in done.stdout


def test_unusable_offer_is_one_line() -> None:
    done = run_cli("receive", "not an offer")
    one_line_error(done, 1, "receive", "the offer cannot be used", "copy the whole offer")


def test_plain_http_elsewhere_than_loopback_is_refused() -> None:
    offer = "openid-credential-offer://?credential_offer_uri=" + quote(
        "http://issuer.example/offer", safe=""
    )
    one_line_error(run_cli("receive", offer), 1, "receive", "https")


def test_wrong_tx_code_is_one_line_without_the_code(served: ServedIssuer) -> None:
    done = run_cli("receive", served.offers["pre_auth_tx_code"], "--tx-code", "271828")
    one_line_error(done, 1, "receive", "invalid_grant", "--tx-code", "fresh offer")
    assert "271828" not in done.stderr + done.stdout


def test_wrong_login_is_one_line_without_the_password(served: ServedIssuer) -> None:
    done = run_cli("receive", served.offers["auth_code"], "--login", "alice:not-the-password")
    one_line_error(done, 1, "receive", "login refused", "--login")
    assert "not-the-password" not in done.stderr + done.stdout


def test_json_failure_keeps_the_line_members_and_adds_a_hint() -> None:
    done = run_cli("receive", DEAD_OFFER, "--json")
    one_line_error(done, 1, "receive", "could not connect")
    data = json_line(done.stdout)
    assert set(data) >= {"ok", "flow", "spec_version", "credentials", "errors"}
    assert data["ok"] is False and data["credentials"] == []
    assert data["errors"][0]["type"] == "ConnectError"
    assert set(data["errors"][0]) == {"type", "message", "hint"}
    assert data["errors"][0]["hint"]


# --- receive: the human summary --------------------------------------------------------------


def test_summary_in_spec_terms_hides_registered_claims(served: ServedIssuer) -> None:
    done = run_cli("receive", served.offers["pre_auth"])
    no_traceback(done)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "flow: pre-authorized_code" in out
    assert "issuer speaks: 1.0" in out
    assert "None" not in out
    assert '"Alice"' in out and "given_name" in out
    claim_names = {line.split()[0] for line in out.splitlines() if line.startswith("      ")}
    for hidden in ("iss", "iat", "exp", "nbf", "cnf", "vct", "status", "_sd_alg"):
        assert hidden not in claim_names, out
    assert "--all-claims shows them" in out
    assert f"issued by        {served.issuer}" in out
    assert "revocation       valid (Token Status List)" in out

    shown = run_cli("receive", served.offers["pre_auth"], "--all-claims")
    assert shown.returncode == 0, shown.stderr
    names = {line.split()[0] for line in shown.stdout.splitlines() if line.startswith("      ")}
    assert {"iss", "iat", "exp", "cnf", "vct"} <= names, shown.stdout
    assert "--all-claims shows them" not in shown.stdout


def test_summary_of_the_code_flow(served: ServedIssuer) -> None:
    done = run_cli("receive", served.offers["auth_code"], "--login", served.ready["login"])
    no_traceback(done)
    assert done.returncode == 0, done.stderr
    assert "flow: authorization_code" in done.stdout
    assert "issuer speaks: 1.0" in done.stdout
    assert "None" not in done.stdout


# --- receive: the code flow without --login (RFC 8252 loopback redirect) ---------------------


def test_code_flow_without_login_prints_url_waits_and_times_out(served: ServedIssuer) -> None:
    done = run_cli("receive", served.offers["auth_code"], "--timeout", "1.5", "--no-browser")
    line = one_line_error(done, 1, "receive", "no authorization response", "1.5 s", "--timeout")
    lines = done.stdout.splitlines()
    urls = [text for text in lines if text.startswith(served.issuer + "/authorize?")]
    assert len(urls) == 1, done.stdout
    query = urlsplit(urls[0]).query
    assert "client_id=" in query and "request_uri=" in query  # the full URL, not cut at "?"
    waiting = [text for text in lines if text.startswith("Waiting up to 1.5 s")]
    assert len(waiting) == 1, done.stdout
    redirect = waiting[0].split(" come back to ", 1)[1].split(" ", 1)[0]
    parts = urlsplit(redirect)
    assert parts.scheme == "http" and parts.hostname == "127.0.0.1" and parts.port
    assert parts.path == "/callback"
    assert redirect in line


def test_code_flow_without_login_completes_through_the_loopback_redirect(
    served: ServedIssuer,
) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "oid4vci",
            "receive",
            served.offers["auth_code"],
            "--json",
            "--no-browser",
            "--timeout",
            "30",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=subprocess_env(),
        cwd=REPO_ROOT,
    )
    try:
        assert process.stderr is not None and process.stdout is not None
        seen: list[str] = []
        while not any(text.startswith("Waiting up to") for text in seen):
            seen.append(_read_line(process.stderr, 20.0))
            assert seen[-1], "".join(seen)
        url = next(text.strip() for text in seen if text.startswith(served.issuer + "/authorize?"))
        redirect = seen[-1].split(" come back to ", 1)[1].split(" ", 1)[0]
        callback = _log_in(url, redirect, "alice", "wonderland")
        with urllib.request.urlopen(callback, timeout=10) as response:  # the browser's last hop
            assert response.status == 200
            assert b"close this window" in response.read()
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert "Traceback" not in stderr + stdout
    assert process.returncode == 0, stderr
    data = json_line(stdout)
    assert data["ok"] is True and data["flow"] == "auth_code"
    assert len(data["credentials"]) == 1 and data["credentials"][0]["verified"] is True


def test_ctrl_c_while_waiting_is_one_line(served: ServedIssuer) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "oid4vci", "receive", served.offers["auth_code"], "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=subprocess_env(),
        cwd=REPO_ROOT,
    )
    try:
        assert process.stdout is not None
        seen: list[str] = []
        while not seen or not seen[-1].startswith("Waiting up to 300 s"):
            seen.append(_read_line(process.stdout, 20.0))
            assert seen[-1], "".join(seen)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    one_line_error(done, 130, "receive", "interrupted")


def _log_in(url: str, redirect_uri: str, user: str, password: str) -> str:
    """Play the browser: the issuer's login form, up to the redirect to ``redirect_uri``."""
    import anyio

    from oid4vci.cli.login import scripted_login

    async def run() -> str:
        return await scripted_login(url, redirect_uri, user, password)

    return anyio.run(run)


# --- serve -----------------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "example.com", "192.0.2.1", "::"])
def test_serve_refuses_non_loopback_hosts(host: str) -> None:
    done = run_cli("serve", "--host", host, "--port", "0")
    one_line_error(done, 2, "serve", f"--host {host}", "loopback", "--public-url")


def test_serve_public_url_must_be_https() -> None:
    done = run_cli("serve", "--public-url", "http://issuer.example", "--port", "0")
    one_line_error(done, 2, "serve", "--public-url", "https")


def test_serve_port_taken_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = run_cli("serve", "--port", str(port))
    one_line_error(done, 1, "serve", f"127.0.0.1:{port}", "already in use", "--port")


def test_serve_behind_a_tls_proxy_publishes_the_public_url() -> None:
    public = "https://issuer.example.test"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "oid4vci",
            "serve",
            "--json",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--public-url",
            public + "/",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=subprocess_env(),
        cwd=REPO_ROOT,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(_read_line(process.stdout, 20.0))
        assert ready["issuer"] == public
        assert ready["page"] == public + "/"
        for offer in ready["offers"].values():
            assert offer.startswith("openid-credential-offer://?credential_offer_uri=")
            assert quote(public + "/offers/templates/", safe="") in offer
        listen = urlsplit(ready["listen"])
        assert listen.scheme == "http" and listen.hostname == "127.0.0.1" and listen.port
        metadata = _get_json(ready["listen"] + "/.well-known/openid-credential-issuer")
        assert metadata["credential_issuer"] == public
        for name in ("credential_endpoint", "nonce_endpoint"):
            assert metadata[name].startswith(public + "/"), metadata[name]
        authorization_server = _get_json(
            ready["listen"] + "/.well-known/oauth-authorization-server"
        )
        assert authorization_server["issuer"] == public
        for name, value in authorization_server.items():
            if name.endswith("_endpoint"):
                assert value.startswith(public + "/"), (name, value)
        offer = _get_json(ready["listen"] + "/offers/templates/pre_auth")
        assert offer["credential_issuer"] == public
        with urllib.request.urlopen(ready["listen"] + "/", timeout=10) as response:
            page = response.read().decode()
        assert f"{public}/.well-known/openid-credential-issuer" in page
        assert "http://127.0.0.1" not in page
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        data = json.loads(response.read())
    assert isinstance(data, dict)
    return data


def test_serve_ready_line_adds_page_and_listen(served: ServedIssuer) -> None:
    ready = served.ready
    assert set(ready) >= {"issuer", "offers", "tx_code", "login", "page", "listen"}
    assert set(ready["offers"]) == {"pre_auth", "pre_auth_tx_code", "auth_code", "pre_auth_mdoc"}
    assert ready["trust_anchors_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert ready["page"] == served.issuer + "/"
    assert ready["listen"] == served.issuer
    with urllib.request.urlopen(ready["page"], timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"


def test_serve_without_segno_says_which_extra() -> None:
    code = (
        "import sys; sys.modules['segno'] = None\n"
        "from oid4vci.cli import main\n"
        "raise SystemExit(main(['serve', '--port', '0']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    one_line_error(done, 1, "serve", "segno", "pip install 'oid4vci[cli]'")


# --- serve on a terminal: the page URL and a QR code -----------------------------------------


def _serve_on_a_terminal() -> str:
    """Run ``serve`` with stdout on a pseudo-terminal; what it printed until it was ready."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "oid4vci", "serve", "--port", "0"],
        stdout=terminal,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        env=subprocess_env(),
        cwd=REPO_ROOT,
    )
    os.close(terminal)
    output = b""
    try:
        deadline = time.monotonic() + 20
        while b"Ctrl-C stops the server." not in output:
            assert time.monotonic() < deadline, output[-2000:]
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    output += os.read(controller, 65536)
                except OSError:  # the child closed the terminal
                    break
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
        os.close(controller)
    assert process.returncode == 0, stderr
    assert b"Traceback" not in output + stderr
    return output.decode("utf-8").replace("\r\n", "\n")


def test_serve_on_a_terminal_prints_the_page_and_a_qr_code_that_decodes() -> None:
    from tests.cli.qr import decode_terminal_qr

    text = _serve_on_a_terminal()
    lines = text.splitlines()
    issuer = next(line.split()[1] for line in lines if line.startswith("issuer "))
    page = next(line.split()[1] for line in lines if line.startswith("page "))
    assert page == issuer + "/"
    offer = next(
        line.split()[2] for line in lines if line.startswith("offer ") and "pre_auth " in line
    )
    assert decode_terminal_qr(text) == [offer]


def test_serve_without_a_terminal_prints_no_qr_code() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "oid4vci", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=subprocess_env(),
        cwd=REPO_ROOT,
    )
    try:
        assert process.stdout is not None
        seen: list[str] = []
        while not seen or not seen[-1].startswith("Ctrl-C"):
            seen.append(_read_line(process.stdout, 20.0))
            assert seen[-1], "".join(seen)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
    text = "".join(seen)
    assert any(line.startswith("page ") for line in seen)
    assert "█" not in text and "▀" not in text
