"""The issuer's login page and the authorization code flow in a real (headless) browser.

The demo issuer runs over aiohttp on 127.0.0.1 and a loopback callback server plays the
wallet's redirect URI (RFC 8252 §7.3). Our wallet builds the authorization URL (PAR, PKCE,
DPoP as it does by default); Debian's Chromium, driven over the DevTools protocol
(:mod:`tests.browser.cdp`), opens it, shows the login form, types the credentials and clicks
"Sign in"; the issuer redirects the browser to the callback server, and the wallet claims the
credential with the URL the browser arrived at.

The browser tests skip only when no Chromium binary exists (``scripts/install-chromium.sh``
installs Debian's package).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import aiohttp
import anyio
import pytest

from oid4vci.cli.serve import DemoServer, running_demo_issuer
from oid4vci.errors import TokenError
from oid4vci.http import Headers, HttpRequest, HttpResponse
from oid4vci.transports.aiohttp import AiohttpTransport, serve
from oid4vci.wallet import IssuanceFlow, Oid4vciClient, WalletPolicy

from .cdp import Browser, Page, find_chromium, launch_chromium

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium binary on PATH (run scripts/install-chromium.sh to install Debian's)",
)

CLIENT_ID = "browser-test-wallet"
USERNAME = "alice"
PASSWORD = "wonderland"
WRONG_PASSWORD = "not-wonderland-7f3a"
#: The whole of one test, browser start and credential issuance included.
TEST_TIMEOUT = 60
#: One wait for the browser (a page load, a redirect reaching the callback server).
STEP_TIMEOUT = 15

_OLD_PAGE_MARK = "window.__oid4vciTestOldDocument"


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp (server, client, DevTools websocket) runs on asyncio only."""
    return "asyncio"


# --- the pieces: issuer, callback server, wallet, browser ------------------------------------


class CallbackServer:
    """The wallet's loopback redirect URI: records every request to ``/callback``."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.arrived = anyio.Event()
        self.redirect_uri = ""

    async def handle(self, request: HttpRequest) -> HttpResponse:
        """Record a callback; anything else (``/favicon.ico``) is a 404."""
        if urlsplit(request.url).path != "/callback":
            return HttpResponse(status=404, headers=Headers([]), body=b"")
        self.urls.append(request.url)
        self.arrived.set()
        page = b"<!doctype html><title>Wallet</title><h1>Authorization received</h1>"
        return HttpResponse(
            status=200,
            headers=Headers([("Content-Type", "text/html; charset=utf-8")]),
            body=page,
        )


@pytest.fixture
async def issuer() -> AsyncIterator[DemoServer]:
    """The demo issuer over aiohttp on a free port of 127.0.0.1."""
    async with running_demo_issuer("127.0.0.1", 0) as server:
        yield server


@pytest.fixture
async def callback() -> AsyncIterator[CallbackServer]:
    """The loopback callback server (a second real socket on 127.0.0.1)."""
    server = CallbackServer()
    async with serve(server.handle, host="127.0.0.1", port=0) as served:
        server.redirect_uri = f"{served.base_url}/callback"
        yield server


@pytest.fixture
async def wallet() -> AsyncIterator[Oid4vciClient]:
    """Our wallet over real HTTP, allowed to talk http:// to loopback only."""
    async with AiohttpTransport(allow_insecure_loopback=True) as transport:
        yield Oid4vciClient(transport, policy=WalletPolicy(allow_insecure_loopback=True))


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    """Headless Chromium with a fresh profile; always killed, even when the test fails."""
    if CHROMIUM is None:  # pragma: no cover - the tests using it are skipped first
        pytest.skip("no chromium binary")
    launched: Browser | None = None
    try:
        async with launch_chromium(CHROMIUM, tmp_path / "chromium-profile") as started:
            launched = started
            yield started
    finally:
        if launched is not None:
            assert launched.process.returncode is not None, "chromium still running"


async def start_authorization(
    wallet: Oid4vciClient, issuer: DemoServer, callback: CallbackServer
) -> tuple[str, IssuanceFlow]:
    """The wallet reads the demo's code-flow offer and builds the authorization URL."""
    offer = await wallet.parse_offer(issuer.demo.offer_links["auth_code"])
    url, pending = await wallet.authorize(
        offer, redirect_uri=callback.redirect_uri, client_id=CLIENT_ID
    )
    return url, pending


# --- driving the page ----------------------------------------------------------------------

_LOGIN_FORM_READY = (
    "document.readyState === 'complete'"
    " && !!document.querySelector('form input[name=username]')"
    " && !!document.querySelector('form input[name=password]')"
)


async def open_login_page(page: Page, url: str) -> None:
    """Navigate to the authorization URL and wait for the login form."""
    with anyio.fail_after(STEP_TIMEOUT):
        await page.navigate(url)
        await page.wait_for(_LOGIN_FORM_READY)


async def submit_login(page: Page, username: str, password: str) -> None:
    """Type the credentials like a user and click the form's submit button."""
    with anyio.fail_after(STEP_TIMEOUT):
        await page.evaluate(f"{_OLD_PAGE_MARK} = true")
        await page.type_into("form input[name=username]", username)
        await page.type_into("form input[name=password]", password)
        typed = await page.evaluate(
            "[document.querySelector('form input[name=username]').value,"
            " document.querySelector('form input[name=password]').value.length]"
        )
        assert typed == [username, len(password)]
        await page.click("form [type=submit]")


async def wait_for_new_document(page: Page) -> None:
    """Wait until the document marked by :func:`submit_login` was replaced and has loaded."""
    with anyio.fail_after(STEP_TIMEOUT):
        await page.wait_for(f"!{_OLD_PAGE_MARK} && document.readyState === 'complete'")


async def navigation_status(page: Page) -> int:
    """The HTTP status of the current document (Navigation Timing ``responseStatus``)."""
    status = await page.evaluate("performance.getEntriesByType('navigation')[0].responseStatus")
    assert isinstance(status, int)
    return status


def page_errors(page: Page) -> list[str]:
    """Script exceptions and console errors (a CSP violation, say) the page reported so far.

    HTTP error statuses (the 401 of a refused login) are reported too, as ``network`` log
    entries; those are expected and left out.
    """
    problems: list[str] = []
    for event in page.connection.events(page.session_id):
        params = event["params"]
        if event["method"] == "Runtime.exceptionThrown":
            problems.append(str(params["exceptionDetails"].get("text", "exception")))
        elif event["method"] == "Log.entryAdded":
            entry = params["entry"]
            if entry.get("level") == "error" and entry.get("source") != "network":
                problems.append(f"{entry.get('source')}: {entry.get('text')}")
    return problems


def assert_png(data: bytes, path: Path) -> None:
    """``data`` (also saved at ``path``) is a PNG image with a non-empty size."""
    assert path.stat().st_size == len(data) > 1000
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 100 and height > 100


async def claim_and_check(
    wallet: Oid4vciClient, pending: IssuanceFlow, callback_url: str, issuer: DemoServer
) -> None:
    """Redeem the code the browser brought back and check the credential is verified."""
    query = parse_qs(urlsplit(callback_url).query)
    assert query["state"] == [json.loads(pending.to_json())["oauth_state"]]
    assert query["iss"] == [issuer.issuer_url]
    assert len(query["code"]) == 1 and query["code"][0]
    assert "error" not in query
    result = await wallet.claim(pending, callback_url)
    assert result.flow == "authorization_code"
    assert result.session is not None and result.session.uses_dpop  # a DPoP-bound token
    assert len(result.credentials) == 1
    credential = result.credentials[0]
    assert credential.verified is True
    assert credential.issuer == issuer.issuer_url
    assert credential.claims["given_name"] == "Alice"
    assert credential.claims["family_name"] == "Liddell"


# --- the login page as HTML (no browser needed) ----------------------------------------------


class _Form:
    def __init__(self, method: str, action: str) -> None:
        self.method = method
        self.action = action
        self.inputs: dict[str, str] = {}  # name -> type
        self.submit_buttons = 0


class _FormFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self._open: _Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._open = _Form(
                attributes.get("method", "get").lower(), attributes.get("action", "")
            )
            self.forms.append(self._open)
        elif self._open is not None and tag == "input" and attributes.get("name"):
            self._open.inputs[attributes["name"]] = attributes.get("type", "text").lower()
        elif (
            self._open is not None
            and tag == "button"
            and attributes.get("type", "submit").lower() == "submit"
        ):
            self._open.submit_buttons += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


async def test_login_page_is_html_with_a_login_form(
    issuer: DemoServer, callback: CallbackServer, wallet: Oid4vciClient
) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        url, _ = await start_authorization(wallet, issuer, callback)
        assert url.startswith(issuer.issuer_url + "/")
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, allow_redirects=False) as response,
        ):
            status = response.status
            content_type = response.headers.get("Content-Type", "")
            cache_control = response.headers.get("Cache-Control", "")
            page = await response.text()
    assert status == 200
    assert content_type.replace(" ", "").lower() == "text/html;charset=utf-8"
    assert "no-store" in cache_control
    assert page.lstrip().lower().startswith("<!doctype html>")
    finder = _FormFinder()
    finder.feed(page)
    forms = [f for f in finder.forms if "username" in f.inputs and "password" in f.inputs]
    assert len(forms) == 1, page
    form = forms[0]
    assert form.method == "post"
    action = urljoin(url, form.action)
    assert urlsplit(action).netloc == urlsplit(issuer.issuer_url).netloc
    assert form.inputs["password"] == "password"
    assert form.inputs["username"] in ("text", "email")
    assert form.submit_buttons >= 1
    assert callback.urls == []


# --- the browser ---------------------------------------------------------------------------


@needs_chromium
async def test_browser_logs_in_and_wallet_claims_credential(
    issuer: DemoServer,
    callback: CallbackServer,
    wallet: Oid4vciClient,
    browser: Browser,
    tmp_path: Path,
) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        url, pending = await start_authorization(wallet, issuer, callback)
        assert "request_uri=" in url  # the demo AS offers PAR: the URL carries only that
        page = await browser.new_page()
        await open_login_page(page, url)

        assert await navigation_status(page) == 200
        assert await page.evaluate("document.contentType") == "text/html"
        assert await page.evaluate("document.characterSet") == "UTF-8"
        assert await page.evaluate("location.origin") == issuer.issuer_url
        shot = tmp_path / "login.png"
        assert_png(await page.screenshot(shot), shot)

        await submit_login(page, USERNAME, PASSWORD)
        with anyio.fail_after(STEP_TIMEOUT):
            await callback.arrived.wait()
            arrived = await page.wait_for(
                f"location.href.startsWith({json.dumps(callback.redirect_uri + '?')})"
                " && document.readyState === 'complete' && location.href"
            )
        assert len(callback.urls) == 1
        callback_url = callback.urls[0]
        assert arrived == callback_url
        assert "Authorization received" in await page.evaluate("document.body.innerText")

        saved = pending.to_json()
        await claim_and_check(wallet, pending, callback_url, issuer)
        assert page_errors(page) == []
        # The code is single use: a copy of the flow saved before cannot claim it again.
        with pytest.raises(TokenError) as refused:
            await wallet.claim(IssuanceFlow.from_json(saved, policy=wallet.policy), callback_url)
        assert refused.value.error == "invalid_grant"


@needs_chromium
async def test_wrong_password_shows_error_then_right_password_works(
    issuer: DemoServer,
    callback: CallbackServer,
    wallet: Oid4vciClient,
    browser: Browser,
    tmp_path: Path,
) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        url, pending = await start_authorization(wallet, issuer, callback)
        page = await browser.new_page()
        await open_login_page(page, url)
        assert await page.evaluate("document.querySelector('[role=alert]')") is None

        await submit_login(page, USERNAME, WRONG_PASSWORD)
        await wait_for_new_document(page)
        await page.wait_for(_LOGIN_FORM_READY)

        # The form again, with a visible error, on the issuer's origin; no code went out.
        assert await navigation_status(page) == 401
        assert await page.evaluate("location.origin") == issuer.issuer_url
        text = await page.evaluate("document.body.innerText")
        assert isinstance(text, str)
        assert "wrong username or password" in text.lower()
        alert = await page.evaluate(
            "(() => { const el = document.querySelector('[role=alert]');"
            " if (!el) return null; const r = el.getBoundingClientRect();"
            " return {text: el.innerText, visible: r.width > 0 && r.height > 0}; })()"
        )
        assert alert is not None and alert["visible"] is True
        assert "wrong username or password" in alert["text"].lower()
        # The wrong password is not echoed back into the page.
        assert await page.evaluate("document.querySelector('input[name=password]').value") == ""
        html = await page.evaluate("document.documentElement.outerHTML")
        assert WRONG_PASSWORD not in html
        shot = tmp_path / "login-error.png"
        assert_png(await page.screenshot(shot), shot)
        await anyio.sleep(0.2)  # a redirect, were one coming, would have arrived by now
        assert callback.urls == []
        assert not callback.arrived.is_set()

        # The right password in the same page completes the flow.
        await submit_login(page, USERNAME, PASSWORD)
        with anyio.fail_after(STEP_TIMEOUT):
            await callback.arrived.wait()
        assert len(callback.urls) == 1
        await claim_and_check(wallet, pending, callback.urls[0], issuer)
        assert page_errors(page) == []
