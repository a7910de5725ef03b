"""Revocation end to end on the command line: ``oid4vci serve``'s admin endpoint, ``receive
--json`` / ``--out`` and ``oid4vci status``, each in its own process over 127.0.0.1."""

from __future__ import annotations

import json
import stat
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oid4vci.jose import LocalSigner, decode_jws, jwk_thumbprint
from oid4vci.status import parse_status_reference, read_credential_status_reference
from tests.e2e.conftest import ServedIssuer, json_line, run_cli, served_issuer


@pytest.fixture(scope="module")
def served() -> Iterator[ServedIssuer]:
    with served_issuer("1.0") as issuer:
        yield issuer


def admin(
    served: ServedIssuer, body: Any, *, token: str | None = "ok", raw: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    """POST to the admin endpoint; ``token`` "ok" means the real one."""
    info = served.ready["admin"]
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = "Bearer " + (info["token"] if token == "ok" else token)
    data = raw if raw is not None else json.dumps(body).encode()
    request = urllib.request.Request(info["status_url"], data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def receive(served: ServedIssuer, *args: str) -> dict[str, Any]:
    done = run_cli("receive", served.offers["pre_auth"], "--json", *args)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-2000:]
    return json_line(done.stdout)


def status(*args: str) -> tuple[int, dict[str, Any] | None, str]:
    done = run_cli("status", *args, "--json")
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(done.stderr.strip().splitlines()) <= 1, done.stderr
    return done.returncode, json_line(done.stdout) if done.stdout.strip() else None, done.stderr


def failure_of(line: dict[str, Any] | None) -> dict[str, Any]:
    """The one error of a failure's ``--json`` line (status, uri and idx null)."""
    assert line is not None
    assert (line["status"], line["uri"], line["idx"]) == (None, None, None)
    (error,) = line["errors"]
    assert set(error) == {"type", "message", "hint"}
    return dict(error)


def test_ready_line_has_the_admin_endpoint(served: ServedIssuer) -> None:
    info = served.ready["admin"]
    assert info["status_url"] == served.issuer + "/admin/status"
    assert isinstance(info["token"], str) and len(info["token"]) >= 32
    assert info["token"] not in served.stderr_text()


def test_revoke_suspend_unsuspend(served: ServedIssuer, tmp_path: Path) -> None:
    data = receive(served, "--out", str(tmp_path))
    (entry,) = data["credentials"]
    assert entry["status"] == "valid"
    credential = entry["credential"]
    assert isinstance(credential, str) and credential.endswith("~")
    reference = parse_status_reference(
        decode_jws(credential.split("~")[0]).payload, allow_insecure_loopback=True
    )
    assert reference is not None
    # receive --out: the credential and the holder's private key, 0600
    (saved,) = tmp_path.glob("*.sd-jwt")
    assert saved.read_text().strip() == credential
    (key_file,) = tmp_path.glob("*.key.jwk")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = LocalSigner.from_jwk(json.loads(key_file.read_text()))
    assert jwk_thumbprint(key.public_jwk) == entry["holder_jkt"]

    code, line, _ = status(str(saved))
    valid = {"status": "valid", "uri": reference.uri, "idx": reference.idx, "errors": []}
    assert (code, line) == (0, valid)
    for new, exit_code in (("invalid", 3), ("suspended", 3), ("valid", 0)):
        answer = admin(served, {"uri": reference.uri, "idx": reference.idx, "status": new})
        assert answer[0] == 204, answer
        code, line, err = status(str(saved))
        assert code == exit_code and line is not None and line["status"] == new, err
    # the credential string works as well as the file
    assert status(credential)[1] == valid
    assert served.ready["admin"]["token"] not in served.stderr_text()


def test_receive_reports_a_revoked_credential_of_the_same_list(served: ServedIssuer) -> None:
    first = receive(served)["credentials"][0]["credential"]
    reference = parse_status_reference(
        decode_jws(first.split("~")[0]).payload, allow_insecure_loopback=True
    )
    assert reference is not None
    assert (
        admin(served, {"uri": reference.uri, "idx": reference.idx, "status": "suspended"})[0] == 204
    )
    code, line, _ = status(first)
    assert code == 3 and line is not None and line["status"] == "suspended"


def test_admin_refusals(served: ServedIssuer) -> None:
    good = {"uri": served.issuer + "/status-lists/" + "0" * 32, "idx": 1, "status": "invalid"}
    for token in (None, "wrong-token"):
        code, headers, _ = admin(served, good, token=token)
        assert code == 401
        assert headers["WWW-Authenticate"].startswith("Bearer")
    for body in (
        {"uri": good["uri"], "idx": -1, "status": "invalid"},
        {"uri": good["uri"], "idx": True, "status": "invalid"},
        {"uri": good["uri"], "idx": 1, "status": "revoked"},
        {"idx": 1, "status": "invalid"},
        [1, 2],
    ):
        assert admin(served, body)[0] == 400, body
    assert admin(served, None, raw=b"{not json")[0] == 400
    assert admin(served, good)[0] == 404  # a list this issuer never made


def test_status_command_errors(tmp_path: Path) -> None:
    code, line, err = status(str(tmp_path / "missing-file"))
    assert code == 2 and err.startswith("oid4vci status: error:")
    assert failure_of(line)["type"] == "UsageError"
    plain = tmp_path / "plain.sd-jwt"
    plain.write_text("eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.~")
    code, line, err = status(str(plain))
    assert code == 1 and "no status" in err.lower()
    # with --json a failure is a line too: null values and the error
    failure = failure_of(line)
    assert failure["type"] == "StatusListVerificationError"
    assert "no status" in failure["message"].lower()


def test_status_of_an_mdoc(served: ServedIssuer, tmp_path: Path) -> None:
    anchor = tmp_path / "iaca.pem"
    anchor.write_text(served.ready["trust_anchors_pem"])
    out = tmp_path / "out"
    done = run_cli(
        "receive", served.offers["pre_auth_mdoc"], "--json", "--trust-anchor", str(anchor),
        "--out", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (entry,) = json_line(done.stdout)["credentials"]
    assert entry["status"] == "valid"
    (saved,) = out.glob("*.mdoc.b64u")
    reference = read_credential_status_reference(
        saved.read_text().strip(), allow_insecure_loopback=True
    )
    assert reference is not None
    expected = {"uri": reference.uri, "idx": reference.idx}
    # an mdoc names no issuer: --issuer says whose keys sign its list
    code, line, err = status(str(saved))
    assert code == 2 and "--issuer" in err
    assert failure_of(line)["type"] == "UsageError"
    code, line, _ = status(str(saved), "--issuer", served.issuer)
    assert (code, line) == (0, {"status": "valid", **expected, "errors": []})
    answer = admin(served, {**expected, "status": "invalid"})
    assert answer[0] == 204, answer
    code, line, _ = status(saved.read_text().strip(), "--issuer", served.issuer)
    assert (code, line) == (3, {"status": "invalid", **expected, "errors": []})


def test_status_of_what_is_no_credential(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mdoc.b64u"
    junk.write_text("A" * 300)
    code, line, err = status(str(junk))
    assert code == 2 and failure_of(line)["type"] == "StatusListVerificationError"
    assert "not a JWT, SD-JWT or mdoc" in err and "give an SD-JWT VC, JWT or mdoc" in err
