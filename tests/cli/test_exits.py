"""Exit codes, one-line errors and option checks of the ``oid4vci`` command (in process)."""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path

import pytest

from oid4vci.cli.exits import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    MAX_MESSAGE_LENGTH,
    CliError,
    Terminated,
    describe_error,
    run_guarded,
)
from oid4vci.cli.options import (
    check_serve_address,
    is_loopback_host,
    login_value,
    port_value,
    public_url_value,
)
from oid4vci.errors import (
    AuthorizationError,
    ConnectError,
    CredentialVerificationError,
    InsecureUrlError,
    MissingDependencyError,
    OfferError,
    TokenError,
    UsageError,
    WireFormatError,
)


def _raise(exc: BaseException) -> int:
    raise exc


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (CliError("port taken; choose another", 1), EXIT_FAILURE, "port taken; choose another"),
        (CliError("bad --out", EXIT_USAGE), EXIT_USAGE, "bad --out"),
        (KeyboardInterrupt(), EXIT_INTERRUPTED, "interrupted"),
        (Terminated(), EXIT_TERMINATED, "terminated"),
        (MissingDependencyError("install 'oid4vci[cli]'"), EXIT_FAILURE, "oid4vci[cli]"),
        (ModuleNotFoundError("no", name="aiohttp"), EXIT_FAILURE, "aiohttp"),
        (UsageError("the offer requires a transaction code"), EXIT_USAGE, "--tx-code"),
        (RuntimeError("secret-value-xyz"), EXIT_FAILURE, "unexpected RuntimeError"),
        (OSError(errno.EACCES, "secret-value-xyz"), EXIT_FAILURE, "unexpected PermissionError"),
        (OSError(errno.ENOSPC, "No space left on device"), EXIT_FAILURE, "cannot write the output"),
        (BrokenPipeError(errno.EPIPE, "Broken pipe"), EXIT_FAILURE, "output was closed"),
    ],
)
def test_run_guarded_prints_one_line(
    exc: BaseException, code: int, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_guarded("oid4vci test", lambda: _raise(exc)) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("oid4vci test: error: ")
    assert words in lines[0]
    assert "Traceback" not in captured.err
    assert "secret-value-xyz" not in captured.err  # unexpected errors show their type only


def test_run_guarded_passes_the_code_through() -> None:
    assert run_guarded("oid4vci test", lambda: 0) == 0
    assert run_guarded("oid4vci test", lambda: 1) == 1


@pytest.mark.parametrize(
    ("exc", "code", "hint"),
    [
        (TokenError("invalid_grant", "wrong"), 1, "--tx-code"),
        (TokenError("invalid_client", "no"), 1, "token endpoint"),
        (AuthorizationError("access_denied", "login refused by the issuer"), 1, "--login"),
        (ConnectError("could not connect"), 1, "is the issuer running"),
        (InsecureUrlError("credential_offer_uri must use https"), 1, "https"),
        (OfferError("no grants"), 1, "copy the whole offer"),
        (WireFormatError("token_type: DPoP token although no DPoP proof was sent"), 1, "unusable"),
        (UsageError("the offer does not ask for a transaction code"), 2, "leave out --tx-code"),
        (CredentialVerificationError("bad signature"), 1, "not saved"),
        (UsageError("count must be positive"), 2, "--help"),
    ],
)
def test_describe_error_says_what_to_do(exc: Exception, code: int, hint: str) -> None:
    failure = describe_error(exc)
    assert failure.exit_code == code
    assert hint in failure.hint
    assert "\n" not in failure.line() and failure.hint in failure.line()
    if isinstance(exc, WireFormatError):
        assert "offer" not in failure.line()  # an answer's shape, not the offer's


def test_usage_hints_name_the_command_that_failed() -> None:
    assert "oid4vci status --help" in describe_error(UsageError("x"), "oid4vci status").hint


def test_remote_text_cannot_drive_the_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """An issuer's error_description is shown with its control characters escaped (no screen
    clearing, no bell, no fake second line) and cut at a bounded length."""
    hostile = TokenError("invalid_grant", "bad\x1b[2J\x1b[31mRED\x07\r\nFAKE LINE\x9b" + "y" * 5000)
    assert run_guarded("oid4vci test", lambda: _raise(hostile)) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in err.rstrip("\n"))
    assert "\\x1b[2J" in err and "\\x07" in err and "\\x9b" in err
    assert len(err) < MAX_MESSAGE_LENGTH + 200


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def test_non_loopback_host_needs_a_public_url() -> None:
    with pytest.raises(CliError) as refused:
        check_serve_address("0.0.0.0", None)
    assert refused.value.exit_code == EXIT_USAGE
    assert "--public-url" in refused.value.message
    check_serve_address("0.0.0.0", "https://issuer.example.com")  # behind a TLS proxy: fine
    check_serve_address("127.0.0.1", None)


@pytest.mark.parametrize("extra", [["--workers", "1"], ["--store", "redis://127.0.0.1:1"]])
def test_workers_refuse_a_non_loopback_host_too(
    extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``serve --workers`` / ``--store`` check the address as one process does, before any
    worker starts or store is reached."""
    from oid4vci.cli import main

    assert main(["serve", "--json", "--host", "0.0.0.0", *extra]) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "--public-url" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://issuer.example.com", "https://issuer.example.com"),
        ("https://issuer.example.com/", "https://issuer.example.com"),
        ("https://issuer.example.com:8443/demo/", "https://issuer.example.com:8443/demo"),
    ],
)
def test_public_url_accepted(text: str, expected: str) -> None:
    assert public_url_value(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "http://issuer.example.com",
        "issuer.example.com",
        "https://",
        "https://issuer.example.com/?a=b",
        "https://issuer.example.com/#x",
        "https://user:pw@issuer.example.com",
        "https://issuer.example.com:99999",
        "https://issuer.example.com/ä",
        "https://ä.example",
        "https://x .example",
        "https://issuer.example.com/a\tb",
    ],
)
def test_public_url_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        public_url_value(text)


def test_login_and_port_values() -> None:
    assert login_value("alice:wonderland") == "alice:wonderland"
    assert login_value("alice:") == "alice:"
    for bad in ("alice-s3cret-pw", ":s3cret-pw"):
        with pytest.raises(argparse.ArgumentTypeError) as refused:
            login_value(bad)
        assert "s3cret" not in str(refused.value)  # a password is never echoed
    assert port_value("0") == 0 and port_value("65535") == 65535
    for bad in ("-1", "65536", "http"):
        with pytest.raises(argparse.ArgumentTypeError):
            port_value(bad)


@pytest.mark.parametrize("value", ["inf", "1e400", "Infinity", "-inf"])
def test_an_infinite_rate_limit_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from oid4vci.cli import main

    with pytest.raises(SystemExit) as ended:
        main(["serve", "--rate-limit", value])
    assert ended.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--rate-limit" in err and "Traceback" not in err


def test_workers_count_of_thousands_of_digits_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """More digits than int() takes (4300) is refused like any bad count, not a crash."""
    from oid4vci.cli import main

    assert main(["serve", "--workers", "1" * 5000, "--store", "redis://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("oid4vci serve: error: --workers must be") and len(err.splitlines()) == 1


@pytest.mark.parametrize("host", ["a..b", "a" * 300])
def test_a_host_name_that_cannot_be_encoded_is_one_line(
    host: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from oid4vci.cli import main

    code = main(["serve", "--host", host, "--public-url", "https://x.example", "--port", "0"])
    assert code == EXIT_FAILURE
    err = capsys.readouterr().err
    assert "not a valid host name; check --host" in err and len(err.splitlines()) == 1


def test_the_command_says_so_when_interrupted_while_it_imports(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``oid4vci`` (``oid4vci.__main__.run``) turns a Ctrl-C that comes before the command's own
    guard into one line and exit 130."""
    import oid4vci.cli
    from oid4vci.__main__ import run

    def interrupted() -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(oid4vci.cli, "main", interrupted)
    assert run() == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "oid4vci: error: interrupted\n"


def test_closed_stdout_is_refused_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from oid4vci.cli import main

    monkeypatch.setattr(sys, "stdout", None)
    assert main(["receive", "openid-credential-offer://?credential_offer_uri=x"]) == EXIT_USAGE
    assert "standard output is closed" in capsys.readouterr().err


def test_receive_refuses_an_empty_out(capsys: pytest.CaptureFixture[str]) -> None:
    """``--out ""`` is not "no --out": refused before anything is received."""
    from oid4vci.cli import main

    assert main(["receive", "openid-credential-offer://?credential_offer=%7B%7D", "--out", ""]) == 2
    err = capsys.readouterr().err
    assert "--out needs a directory name" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("case", ["deep JSON", "endless", "not UTF-8"])
def test_unusable_attester_key_files_are_usage_errors(case: str, tmp_path: Path) -> None:
    from oid4vci.cli.receive import load_attester

    chain = tmp_path / "chain.pem"
    chain.write_text("-----BEGIN CERTIFICATE-----\n")
    key = tmp_path / "key.jwk"
    if case == "deep JSON":
        key.write_text("[" * 100_000)
    elif case == "not UTF-8":
        key.write_bytes(b"\xff\xfe{}")
    key_path = "/dev/zero" if case == "endless" else str(key)
    with pytest.raises(CliError) as refused:
        load_attester(key_path, str(chain), "wallet")
    assert refused.value.exit_code == EXIT_USAGE
    expected = "larger than a key" if case == "endless" else "is not a JSON JWK"
    assert expected in refused.value.message


def test_sigterm_ends_a_command_as_one_line_and_exit_143(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """While a command runs, SIGTERM raises :class:`Terminated` where it stands (exit 143, one
    line); afterwards the process's own handler is back."""
    import os
    import signal

    import oid4vci.cli.receive as receive_command
    from oid4vci.cli import main

    async def run_receive(_args: object) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        return 0  # not reached: the handler raises at the next bytecode

    monkeypatch.setattr(receive_command, "run_receive", run_receive)
    before = signal.getsignal(signal.SIGTERM)
    offer = "openid-credential-offer://?credential_offer=%7B%7D"
    assert main(["receive", offer]) == EXIT_TERMINATED
    assert capsys.readouterr().err == "oid4vci receive: error: terminated\n"
    assert signal.getsignal(signal.SIGTERM) is before


def test_with_json_a_stopped_or_refused_receive_still_prints_its_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Scripts read one ``--json`` line whatever happens: also for SIGTERM during the run and
    for an argument refused before it (they used to get nothing on stdout)."""
    import json
    import os
    import signal

    import oid4vci.cli.receive as receive_command
    from oid4vci.cli import main

    async def run_receive(_args: object) -> int:
        os.kill(os.getpid(), signal.SIGTERM)
        return 0  # not reached

    offer = "openid-credential-offer://?credential_offer=%7B%7D"
    with monkeypatch.context() as patched:
        patched.setattr(receive_command, "run_receive", run_receive)
        assert main(["receive", offer, "--json"]) == EXIT_TERMINATED
    captured = capsys.readouterr()
    line = json.loads(captured.out)
    assert line["ok"] is False and line["credentials"] == []
    assert line["errors"] == [{"type": "Terminated", "message": "terminated", "hint": ""}]
    assert captured.err == "oid4vci receive: error: terminated\n"
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert main(["receive", offer, "--json", "--out", str(a_file)]) == EXIT_USAGE
    captured = capsys.readouterr()
    (error,) = json.loads(captured.out)["errors"]
    assert error["type"] == "UsageError" and "--out" in error["message"]
    assert captured.err.startswith("oid4vci receive: error: ")


def test_a_command_run_from_a_thread_keeps_the_process_signal_handling() -> None:
    """Only the main thread may set signal handlers: ``main`` called from another thread runs
    (here to its usage error) instead of failing on ``signal.signal``."""
    import signal
    import threading

    from oid4vci.cli import main

    before = signal.getsignal(signal.SIGTERM)
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(main(["receive", "x", "--out", ""])))
    thread.start()
    thread.join(30)
    assert codes == [EXIT_USAGE]
    assert signal.getsignal(signal.SIGTERM) is before
