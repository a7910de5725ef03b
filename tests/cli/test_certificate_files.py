"""The one reader of certificate files on the command line (``serve --trust-attester``,
``receive --trust-anchor``): PEM or DER in, one-line usage errors (exit 2) out."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from oid4vci.cli.exits import EXIT_USAGE, CliError
from oid4vci.cli.options import MAX_CERTIFICATE_FILE, read_certificate_files
from tests.e2e.conftest import run_cli
from tests.e2e.test_cli_errors import one_line_error
from tests.x509_support import make_certificate

FLAGS = ["--trust-anchor", "--trust-attester"]


def _write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _unusable(tmp_path: Path, case: str) -> str:
    if case == "missing":
        return str(tmp_path / "absent.pem")
    if case == "empty":
        return _write(tmp_path / "empty.pem", b"")
    if case == "not PEM":
        return _write(tmp_path / "notes.pem", b"hello, not a certificate\n")
    return _write(tmp_path / "broken.pem", b"-----BEGIN CERTIFICATE-----\nAAAA\n")


@pytest.mark.parametrize("flag", FLAGS)
@pytest.mark.parametrize("case", ["missing", "empty", "not PEM", "broken PEM"])
def test_unusable_files_are_one_line_usage_errors(tmp_path: Path, flag: str, case: str) -> None:
    path = _unusable(tmp_path, case)
    with pytest.raises(CliError) as caught:
        read_certificate_files([path], flag)
    message = str(caught.value)
    assert caught.value.exit_code == EXIT_USAGE
    assert "\n" not in message and message.startswith((f"{flag} {path} ", f"cannot read {flag}"))
    assert path in message and "; " in message  # what went wrong; what to do
    expected = "cannot read" if case == "missing" else "holds no certificate"
    assert expected in message


@pytest.mark.parametrize("flag", FLAGS)
def test_an_endless_file_is_not_read_forever(flag: str, tmp_path: Path) -> None:
    """A device that never ends (/dev/zero) or a huge file is refused after 1 MiB."""
    for path in ("/dev/zero", _write(tmp_path / "big.pem", b"\n" * (MAX_CERTIFICATE_FILE + 1))):
        with pytest.raises(CliError) as caught:
            read_certificate_files([path], flag)
        assert caught.value.exit_code == EXIT_USAGE
        assert f"{flag} {path} is larger than a certificate file can be" in caught.value.message


def test_pem_with_several_certificates_and_der(tmp_path: Path) -> None:
    first, second = (
        make_certificate(key=ec.generate_private_key(ec.SECP256R1()), subject=name, ca=True)
        for name in ("first root", "second root")
    )
    pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (first, second))
    der = second.public_bytes(serialization.Encoding.DER)
    paths = [_write(tmp_path / "two.pem", pem), _write(tmp_path / "one.der", der)]
    assert read_certificate_files(paths, "--trust-anchor") == (first, second, second)
    assert read_certificate_files(None, "--trust-anchor") == ()


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("receive", ["openid-credential-offer://?credential_offer=%7B%7D", "--trust-anchor"]),
        ("serve", ["--profile", "haip", "--trust-attester"]),
    ],
)
@pytest.mark.parametrize("case", ["missing", "empty", "not PEM"])
def test_both_commands_read_certificates_alike(
    tmp_path: Path, command: str, args: list[str], case: str
) -> None:
    path = _unusable(tmp_path, case)
    done = run_cli(command, *args, path)
    words = ("cannot read", path) if case == "missing" else ("holds no certificate", path)
    one_line_error(done, EXIT_USAGE, command, *words)
