"""The ``oid4vci`` command end to end: ``serve`` and ``receive`` as two processes, and ``demo``.

``receive --json`` prints one line ``{"ok", "flow", "spec_version", "credentials", "errors"}``
and exits 0 only when every credential was received and verified.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oid4vci.jose import jwk_thumbprint
from oid4vci.mdoc import verify_mdoc
from oid4vci.sdjwt import parse_sd_jwt
from oid4vci.x509 import load_trust_anchors
from tests.e2e.conftest import ALICE_CLAIMS, ServedIssuer, json_line, run_cli, served_issuer


@pytest.fixture(scope="module", params=["1.0", "draft-14"], ids=["v1", "d14"])
def served(request: pytest.FixtureRequest) -> Iterator[ServedIssuer]:
    """The demo issuer in its own process for the whole module."""
    with served_issuer(str(request.param)) as server:
        yield server
        assert server.stop() == 0, server.stderr_text()[-2000:]


def _receive(*args: str) -> tuple[int, dict[str, Any]]:
    done = run_cli("receive", *args, "--json")
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    return done.returncode, json_line(done.stdout)


def _check_success(data: dict[str, Any], served: ServedIssuer, *, flow: str, count: int) -> None:
    assert data["ok"] is True
    assert data["errors"] == []
    assert data["flow"] == flow
    assert data["spec_version"] == served.spec
    credentials = data["credentials"]
    assert len(credentials) == count
    jkts = set()
    for item in credentials:
        assert item["verified"] is True
        assert item["vct"] == served.issuer + "/identity_credential"
        claims = item["claims"]
        assert {k: claims.get(k) for k in ALICE_CLAIMS} == ALICE_CLAIMS
        assert claims["iss"] == served.issuer
        assert jwk_thumbprint(claims["cnf"]["jwk"]) == item["holder_jkt"]
        jkts.add(item["holder_jkt"])
    assert len(jkts) == count


def test_receive_pre_auth_batch(served: ServedIssuer) -> None:
    code, data = _receive(served.offers["pre_auth"], "--batch", "2")
    assert code == 0, data
    _check_success(data, served, flow="pre_auth", count=2)


def test_receive_pre_auth_tx_code(served: ServedIssuer) -> None:
    code, data = _receive(served.offers["pre_auth_tx_code"], "--tx-code", served.ready["tx_code"])
    assert code == 0, data
    _check_success(data, served, flow="pre_auth", count=1)


def test_receive_auth_code_with_login(served: ServedIssuer) -> None:
    code, data = _receive(served.offers["auth_code"], "--login", served.ready["login"])
    assert code == 0, data
    _check_success(data, served, flow="auth_code", count=1)


def test_receive_wrong_tx_code_fails(served: ServedIssuer) -> None:
    wrong = "000000" if served.ready["tx_code"] != "000000" else "111111"
    code, data = _receive(served.offers["pre_auth_tx_code"], "--tx-code", wrong)
    assert code != 0
    assert data["ok"] is False
    assert data["credentials"] == []
    assert data["errors"] and data["errors"][0]["type"] == "TokenError"
    assert "invalid_grant" in data["errors"][0]["message"]
    assert wrong not in json.dumps(data), "the transaction code must not be echoed"


def test_receive_wrong_login_fails(served: ServedIssuer) -> None:
    code, data = _receive(served.offers["auth_code"], "--login", "alice:not-the-password")
    assert code != 0
    assert data["ok"] is False and data["credentials"] == [] and data["errors"]
    assert "not-the-password" not in json.dumps(data)


def test_receive_out_writes_files(served: ServedIssuer, tmp_path: Path) -> None:
    out = tmp_path / "creds"
    code, data = _receive(served.offers["pre_auth"], "--batch", "2", "--out", str(out))
    assert code == 0, data
    _check_success(data, served, flow="pre_auth", count=2)
    tokens = sorted(out.glob("*.sd-jwt"))
    decoded = sorted(out.glob("*.json"))
    assert len(tokens) == 2 and len(decoded) == 2
    jkts = {item["holder_jkt"] for item in data["credentials"]}
    for path in tokens:
        parsed = parse_sd_jwt(path.read_text().strip())
        assert parsed.jws.payload["iss"] == served.issuer
        assert jwk_thumbprint(parsed.jws.payload["cnf"]["jwk"]) in jkts
    for path in decoded:
        claims = json.loads(path.read_text())
        assert claims["given_name"] == "Alice"


def _trust_anchor_file(served: ServedIssuer, tmp_path: Path) -> Path:
    pem = served.ready["trust_anchors_pem"]
    assert pem.startswith("-----BEGIN CERTIFICATE-----")
    path = tmp_path / "iaca.pem"
    path.write_text(pem)
    return path


def test_receive_mdl_with_trust_anchor(served: ServedIssuer, tmp_path: Path) -> None:
    anchor = _trust_anchor_file(served, tmp_path)
    out = tmp_path / "mdl"
    code, data = _receive(
        served.offers["pre_auth_mdoc"], "--trust-anchor", str(anchor), "--batch", "2",
        "--out", str(out),
    )  # fmt: skip
    assert code == 0, data
    assert data["ok"] is True and data["errors"] == []
    assert data["spec_version"] == served.spec
    jkts = set()
    iaca = load_trust_anchors([anchor.read_bytes()])
    for item in data["credentials"]:
        assert item["format"] == "mso_mdoc" and item["vct"] is None
        assert item["doctype"] == "org.iso.18013.5.1.mDL"
        assert item["verified"] is True
        elements = item["claims"]["org.iso.18013.5.1"]
        assert elements["family_name"] == "Liddell" and elements["birth_date"] == "2000-05-04"
        assert elements["issuing_country"] == "UT"
        # ``credential`` is the base64url IssuerSigned as issued: it verifies here again
        checked = verify_mdoc(
            item["credential"], trust_anchors=iaca, expected_doctype="org.iso.18013.5.1.mDL"
        )
        assert jwk_thumbprint(checked.device_key) == item["holder_jkt"]
        jkts.add(item["holder_jkt"])
    assert len(jkts) == 2
    written = sorted(out.glob("*.mdoc.b64u"))
    assert {p.read_text() for p in written} == {i["credential"] for i in data["credentials"]}


def test_receive_mdl_without_trust_anchor_fails(served: ServedIssuer) -> None:
    code, data = _receive(served.offers["pre_auth_mdoc"])
    assert code != 0 and data["ok"] is False and data["credentials"] == []
    assert data["errors"][0]["type"] == "MdocVerificationError"
    assert "untrusted" in data["errors"][0]["message"]
    assert "--trust-anchor" in data["errors"][0]["hint"]


def test_receive_unreadable_trust_anchor_is_a_usage_error(
    served: ServedIssuer, tmp_path: Path
) -> None:
    bad = tmp_path / "not-a-cert.pem"
    bad.write_text("hello")
    done = run_cli("receive", served.offers["pre_auth_mdoc"], "--trust-anchor", str(bad))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--trust-anchor" in done.stderr and "not-a-cert.pem" in done.stderr


def test_demo_command() -> None:
    done = run_cli("demo")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "4 of 4 flows succeeded" in done.stdout
    assert "org.iso.18013.5.1.mDL (ISO mdoc)" in done.stdout
    assert "Traceback" not in done.stderr
