"""Exit codes, one-line errors and option checks of the ``oid4vci`` command (in process)."""

from __future__ import annotations

import argparse

import pytest

from oid4vci.cli.exits import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliError,
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
)


def _raise(exc: BaseException) -> int:
    raise exc


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (CliError("port taken; choose another", 1), EXIT_FAILURE, "port taken; choose another"),
        (CliError("bad --out", EXIT_USAGE), EXIT_USAGE, "bad --out"),
        (KeyboardInterrupt(), EXIT_INTERRUPTED, "interrupted"),
        (MissingDependencyError("install 'oid4vci[cli]'"), EXIT_FAILURE, "oid4vci[cli]"),
        (ModuleNotFoundError("no", name="aiohttp"), EXIT_FAILURE, "aiohttp"),
        (UsageError("the offer requires a transaction code"), EXIT_USAGE, "--tx-code"),
        (RuntimeError("secret-value-xyz"), EXIT_FAILURE, "unexpected RuntimeError"),
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
        (CredentialVerificationError("bad signature"), 1, "not saved"),
        (UsageError("count must be positive"), 2, "--help"),
    ],
)
def test_describe_error_says_what_to_do(exc: Exception, code: int, hint: str) -> None:
    failure = describe_error(exc)
    assert failure.exit_code == code
    assert hint in failure.hint
    assert "\n" not in failure.line() and failure.hint in failure.line()


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
