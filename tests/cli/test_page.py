"""The demo issuer's page (``GET /`` of ``oid4vci serve``): HTML, headers, and QR codes that work.

The server is the real one (``running_demo_issuer`` over aiohttp on 127.0.0.1). Every QR code
of the page is rasterized and decoded with zxing-cpp (:mod:`tests.cli.qr`), and the decoded
offer URI is then used by our wallet over HTTP to receive a verified credential.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from typing import Any

import aiohttp
import pytest

from oid4vci.cli.login import scripted_login
from oid4vci.cli.page import PAGE_CSP, demo_page_html, page_path, qr_svg
from oid4vci.cli.serve import DemoServer, running_demo_issuer
from oid4vci.errors import MissingDependencyError
from oid4vci.issuer import build_demo_issuer
from oid4vci.transports.aiohttp import AiohttpTransport
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from tests.cli.qr import decode_svg, svg_elements
from tests.e2e.conftest import REPO_ROOT, subprocess_env

OFFER_NAMES = ("pre_auth", "pre_auth_tx_code", "auth_code", "pre_auth_mdoc")


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp runs on asyncio only."""
    return "asyncio"


@pytest.fixture
async def server() -> AsyncIterator[DemoServer]:
    """The demo issuer over aiohttp on a free port of 127.0.0.1."""
    async with running_demo_issuer("127.0.0.1", 0) as running:
        yield running


async def fetch(method: str, url: str) -> tuple[int, dict[str, str], str]:
    """One request: status, headers (last value of each), body as text."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, allow_redirects=False) as response,
    ):
        return response.status, dict(response.headers), await response.text()


class PageReader(HTMLParser):
    """What a person would read on the page: sections, their offer links and codes, links."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, str]] = {}
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.metadata_links: list[str] = []
        self._section: str | None = None
        self._capture: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = {name: value or "" for name, value in attrs}
        self.attributes += list(values.items())
        if tag == "section":
            self._section = values["data-offer"]
            self.sections[self._section] = {}
        elif tag == "a" and "offer" in values.get("class", "") and self._section:
            self.sections[self._section]["href"] = values["href"]
            self._capture = "link"
        elif tag == "a" and values.get("class") == "metadata":
            self.metadata_links.append(values["href"])
        elif tag == "code" and self._section and values.get("class"):
            self._capture = values["class"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self._section = None
        if tag in ("a", "code"):
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture and self._section:
            entry = self.sections[self._section]
            entry[self._capture] = entry.get(self._capture, "") + data


async def read_page(server: DemoServer) -> tuple[str, PageReader]:
    status, _, page = await fetch("GET", server.page_url)
    assert status == 200
    reader = PageReader()
    reader.feed(page)
    return page, reader


# --- HTML and headers ------------------------------------------------------------------------


async def test_page_headers_are_strict(server: DemoServer) -> None:
    status, headers, page = await fetch("GET", server.page_url)
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-store"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    csp = {
        part.split()[0]: part.split()[1:]
        for part in headers["Content-Security-Policy"].split(";")
        if part.strip()
    }
    assert csp["default-src"] == ["'none'"]  # so no script-src: no script runs
    assert "script-src" not in csp
    assert csp["frame-ancestors"] == ["'none'"]
    # The one style allowed is the page's own <style> element, by hash (no 'unsafe-inline').
    styles = re.findall(r"<style>(.*?)</style>", page, re.DOTALL)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode()).digest()).decode()
    assert csp["style-src"] == [f"'sha256-{digest}'"]
    assert headers["Content-Security-Policy"] == PAGE_CSP


async def test_page_has_no_script_and_needs_none(server: DemoServer) -> None:
    page, reader = await read_page(server)
    assert page.lower().startswith("<!doctype html>")
    assert "script" not in reader.tags
    assert not [name for name, _ in reader.attributes if name.lower().startswith("on")]
    assert "javascript:" not in page.lower()
    assert reader.tags.count("svg") == len(OFFER_NAMES)


async def test_page_lists_the_offers_tx_code_login_and_metadata(server: DemoServer) -> None:
    _, reader = await read_page(server)
    ready = server.ready_line()
    assert list(reader.sections) == list(OFFER_NAMES)
    for name in OFFER_NAMES:
        section = reader.sections[name]
        assert section["href"] == ready["offers"][name]
        assert section["link"] == ready["offers"][name]
    assert reader.sections["pre_auth_tx_code"]["tx-code"] == ready["tx_code"]
    user, _, password = ready["login"].partition(":")
    assert reader.sections["auth_code"]["login-user"] == user
    assert reader.sections["auth_code"]["login-password"] == password
    issuer = server.issuer_url
    assert reader.metadata_links == [
        f"{issuer}/.well-known/openid-credential-issuer",
        f"{issuer}/.well-known/oauth-authorization-server",
        f"{issuer}/.well-known/jwt-vc-issuer",
    ]
    for link in reader.metadata_links:  # each link answers with its document
        status, headers, body = await fetch("GET", link)
        assert status == 200, link
        assert headers["Content-Type"].startswith("application/json")
        assert issuer in body


async def test_page_methods(server: DemoServer) -> None:
    status, headers, body = await fetch("HEAD", server.page_url)
    assert status == 200 and body == ""
    assert headers["Cache-Control"] == "no-store"
    status, headers, _ = await fetch("POST", server.page_url)
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    # The issuer's own routes are untouched; other paths are still the issuer's 404.
    status, _, _ = await fetch("GET", server.issuer_url + "/nothing-here")
    assert status == 404


# --- the QR codes decode back to offers that work --------------------------------------------


async def test_every_qr_code_decodes_to_a_working_offer(server: DemoServer) -> None:
    page, reader = await read_page(server)
    svgs = svg_elements(page)
    assert len(svgs) == len(OFFER_NAMES)
    decoded: dict[str, str] = {}
    for name, svg in zip(OFFER_NAMES, svgs, strict=True):
        texts = decode_svg(svg)
        assert texts == [reader.sections[name]["href"]], (name, texts)
        decoded[name] = texts[0]
    assert decoded == server.ready_line()["offers"]

    tx_code = reader.sections["pre_auth_tx_code"]["tx-code"]
    user = reader.sections["auth_code"]["login-user"]
    password = reader.sections["auth_code"]["login-password"]
    async with AiohttpTransport(allow_insecure_loopback=True) as transport:
        wallet = Oid4vciClient(transport, policy=WalletPolicy(allow_insecure_loopback=True))
        results: list[Any] = [
            await wallet.accept_offer(decoded["pre_auth"]),
            await wallet.accept_offer(decoded["pre_auth_tx_code"], tx_code=tx_code),
        ]
        redirect_uri = "http://127.0.0.1:9/callback"
        url, flow = await wallet.authorize(
            decoded["auth_code"], redirect_uri=redirect_uri, client_id="page-test"
        )
        callback = await scripted_login(url, redirect_uri, user, password)
        results.append(await wallet.claim(flow, callback))
        anchors = WalletPolicy(allow_insecure_loopback=True, trust_anchors=[server.demo.iaca])
        mdl = await Oid4vciClient(transport, policy=anchors).accept_offer(decoded["pre_auth_mdoc"])
    (mdoc,) = mdl.credentials
    assert mdoc.verified is True and mdoc.format == "mso_mdoc"
    assert mdoc.claims["org.iso.18013.5.1"]["given_name"] == "Alice"
    for result in results:
        assert len(result.credentials) == 1
        credential = result.credentials[0]
        assert credential.verified is True
        assert credential.issuer == server.issuer_url
        assert credential.claims["given_name"] == "Alice"


def test_qr_svg_decodes_back() -> None:
    text = "openid-credential-offer://?credential_offer_uri=https%3A%2F%2Fissuer.example%2Fo%2F1"
    svg = qr_svg(text, title="an <offer>")
    assert svg.startswith("<svg") and "<title>an &lt;offer&gt;</title>" in svg
    assert decode_svg(svg) == [text]
    assert decode_svg(qr_svg(text + "2", title="x")) != [text]  # the decoder does read


# --- behind a proxy, and without segno -------------------------------------------------------


def test_page_behind_a_proxy_uses_the_public_url() -> None:
    demo = build_demo_issuer("https://issuer.example.test/demo")
    page = demo_page_html(demo, published_version="1.0")
    assert page_path(demo.credential_issuer) == "/demo/"
    assert page_path("http://127.0.0.1:8080") == "/"
    assert "https://issuer.example.test/.well-known/openid-credential-issuer/demo" in page
    for svg in svg_elements(page):
        (text,) = decode_svg(svg)
        assert "https%3A%2F%2Fissuer.example.test%2Fdemo%2Foffers%2Ftemplates%2F" in text


def test_missing_segno_names_the_cli_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "segno", None)
    with pytest.raises(MissingDependencyError, match=re.escape("pip install 'oid4vci[cli]'")):
        qr_svg("x", title="x")


def test_import_oid4vci_does_not_need_segno() -> None:
    code = (
        "import sys; sys.modules['segno'] = None\n"
        "import oid4vci, oid4vci.cli, oid4vci.cli.serve, oid4vci.cli.page, oid4vci.issuer\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=subprocess_env(),
        cwd=REPO_ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
