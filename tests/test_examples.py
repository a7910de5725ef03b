"""Runs every program in ``examples/`` and checks what it returns and prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

import examples.testing_a_wallet as testing_a_wallet
from examples import (
    issuer_aiohttp_app,
    multi_tenant_issuer,
    pure_helpers_other_framework,
    wallet_authorization_code,
    wallet_pre_authorized,
)
from oid4vci.errors import CallbackError
from oid4vci.http import HttpResponse, RequestDict
from oid4vci.issuer import build_demo_issuer
from oid4vci.versions import SpecVersion

REPO = Path(__file__).resolve().parents[1]


# -- 1. pre-authorized flow -------------------------------------------------------------------


async def test_wallet_pre_authorized(capsys: pytest.CaptureFixture[str]) -> None:
    claims = await wallet_pre_authorized.main()
    assert claims["given_name"] == "Alice" and claims["family_name"] == "Liddell"
    assert claims["address"]["locality"] == "Oxford"
    out = capsys.readouterr().out
    assert "verified: True" in out
    assert "it asks for a 6-digit code" in out
    assert "  given_name: Alice" in out and "  cnf:" not in out


# -- 2. authorization code flow with a restart ------------------------------------------------


async def test_wallet_authorization_code(tmp_path: Path) -> None:
    claims = await wallet_authorization_code.main(tmp_path)
    assert claims["given_name"] == "Alice"
    # the secret pending file was deleted after use
    assert [p async for p in anyio.Path(tmp_path).iterdir()] == []


async def test_authorization_code_steps_survive_a_restart(tmp_path: Path) -> None:
    demo = build_demo_issuer(wallet_authorization_code.ISSUER_URL)
    pending_file = anyio.Path(tmp_path / "pending.json")
    url = await wallet_authorization_code.start(demo, pending_file)
    saved = json.loads(await pending_file.read_text())
    assert saved["format"] == "oid4vci-issuance-flow/1"
    assert saved["state"] == "awaiting_authorization"
    assert saved["redirect_uri"] == wallet_authorization_code.REDIRECT_URI
    assert saved["dpop_key"]["d"]  # the DPoP private key travels with it (hence: secret)
    callback = await wallet_authorization_code.browser_login(demo, url)
    assert parse_qs(urlsplit(callback).query)["state"] == [saved["oauth_state"]]
    claims = await wallet_authorization_code.finish(demo, pending_file, callback)
    assert claims["birthdate"] == "2000-05-04"
    assert not await pending_file.exists()


async def test_authorization_code_callback_with_a_foreign_state_is_refused(
    tmp_path: Path,
) -> None:
    demo = build_demo_issuer(wallet_authorization_code.ISSUER_URL)
    pending_file = anyio.Path(tmp_path / "pending.json")
    url = await wallet_authorization_code.start(demo, pending_file)
    callback = await wallet_authorization_code.browser_login(demo, url)
    forged = callback.replace("state=", "state=x")
    with pytest.raises(CallbackError):
        await wallet_authorization_code.finish(demo, pending_file, forged)


# -- 3. the issuer inside an aiohttp app ------------------------------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_issuer_aiohttp_app(anyio_backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    claims = await issuer_aiohttp_app.main()
    assert claims["employee_id"] == "bob"
    assert (claims["given_name"], claims["department"]) == ("Bob", "Construction")
    assert "Bob Builder (verified True)" in capsys.readouterr().out


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_issuer_aiohttp_app_routes(anyio_backend: str) -> None:
    import aiohttp

    async with (
        issuer_aiohttp_app.running_app() as base_url,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(base_url + "/badge-offer") as page:
            assert (await page.text()).startswith("openid-credential-offer://?credential_offer=")
        async with http.get(base_url + "/.well-known/openid-credential-issuer/oid4vci") as meta:
            body = await meta.json()
        assert body["credential_issuer"] == base_url + "/oid4vci"
        assert set(body["credential_configurations_supported"]) == {"employee_badge"}
        bad = {"username": "bob", "password": "wrong", "next": "/"}
        async with http.post(base_url + "/login", data=bad, allow_redirects=False) as answer:
            assert answer.status == 401
        evil = {"username": "bob", "password": "builder", "next": "//evil.example/"}
        async with http.post(base_url + "/login", data=evil, allow_redirects=False) as answer:
            assert answer.status == 303 and answer.headers["Location"] == "/"
        async with http.get(base_url + "/oid4vci/nowhere") as missing:
            assert missing.status == 404


def test_issuer_aiohttp_app_runs_as_a_program() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "examples.issuer_aiohttp_app"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "/oid4vci/employee_badge: Bob Builder (verified True)" in done.stdout


# -- 4. pure helpers from another framework ---------------------------------------------------


async def test_pure_helpers_other_framework() -> None:
    out = await pure_helpers_other_framework.main()
    assert out["metadata_status"] == 200
    assert out["metadata"]["credential_issuer"] == pure_helpers_other_framework.ISSUER_URL
    assert out["c_nonce"]
    draft13, v1 = out["parsed"]["draft 13"], out["parsed"]["1.0"]
    assert (draft13.version, v1.version) == (SpecVersion.DRAFT_13, SpecVersion.V1)
    assert draft13.configuration_id == v1.configuration_id == "identity_credential"
    assert draft13.proofs == v1.proofs and len(v1.proofs) == 1
    assert (draft13.single_proof, v1.single_proof) == (True, False)
    assert len(out["dpop_jkt"]) == 43


async def test_asgi_adapter_builds_the_request_dict() -> None:
    seen: list[RequestDict] = []

    async def handler(request: RequestDict) -> HttpResponse:
        seen.append(request)
        return HttpResponse.json(201, {"ok": True}, headers={"X-Test": "1"})

    app = pure_helpers_other_framework.asgi_adapter(handler)
    chunks = [
        {"type": "http.request", "body": b'{"a":', "more_body": True},
        {"type": "http.request", "body": b"1}", "more_body": False},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "https",
        "raw_path": b"/credential",
        "query_string": b"x=1",
        "headers": [(b"host", b"issuer.example"), (b"content-type", b"application/json")],
    }
    await app(scope, receive, send)
    (request,) = seen
    assert request["url"] == "https://issuer.example/credential?x=1"
    assert request["body"] == b'{"a":1}' and request["method"] == "POST"
    assert ("content-type", "application/json") in request["headers"]
    assert sent[0]["status"] == 201 and (b"X-Test", b"1") in sent[0]["headers"]
    assert json.loads(sent[1]["body"]) == {"ok": True}


# -- 5. multi-tenant issuer -------------------------------------------------------------------


async def test_multi_tenant_issuer() -> None:
    out = await multi_tenant_issuer.main()
    assert out["host_header_issuer"] == "https://globex.issuer.example"
    assert out["unknown_tenant_status"] == 404
    assert out["cross_tenant_error"] == "invalid_grant"
    acme, globex = out["claims"]["acme"], out["claims"]["globex"]
    assert acme["employee"] == "alice" and acme["iss"] == "https://acme.issuer.example"
    assert globex["tier"] == "gold" and globex["iss"] == "https://globex.issuer.example"
    assert acme["vct"] == "https://acme.issuer.example/employee_badge"
    # path tenants: one host, the tenant from the path
    assert out["path_metadata_issuer"] == "https://issuer.example/globex"
    path_claims = out["path_claims"]
    assert path_claims["employee"] == "bob" and path_claims["iss"] == "https://issuer.example/acme"
    assert path_claims["vct"] == "https://issuer.example/acme/employee_badge"


# -- 6. testing a wallet ----------------------------------------------------------------------


def test_testing_a_wallet_lists_all_its_tests() -> None:
    names = {name for name in vars(testing_a_wallet) if name.startswith("test_")}
    assert names == {test.__name__ for test in testing_a_wallet.TESTS}


@pytest.mark.parametrize("name", [test.__name__ for test in testing_a_wallet.TESTS])
async def test_testing_a_wallet(name: str) -> None:
    await getattr(testing_a_wallet, name)()


async def test_testing_a_wallet_main() -> None:
    assert await testing_a_wallet.main() == [t.__name__ for t in testing_a_wallet.TESTS]


# -- every example runs as a program ----------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("wallet_pre_authorized", "given_name: Alice"),
        ("wallet_authorization_code", "credential for Alice Liddell"),
        ("pure_helpers_other_framework", "draft 13 body -> draft-13: identity_credential"),
        ("multi_tenant_issuer", "ACME's code at Globex -> invalid_grant"),
        ("testing_a_wallet", "ok  test_the_issuer_refusing_is_reported"),
    ],
)
def test_example_runs_as_a_program(module: str, expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"examples.{module}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
