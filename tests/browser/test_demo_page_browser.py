"""The demo issuer's page in a real (headless) Chromium: rendered, photographed, QR codes read.

The demo issuer runs over aiohttp on 127.0.0.1 (``running_demo_issuer``, as ``oid4vci serve``
runs it). Chromium, driven over the DevTools protocol (:mod:`tests.browser.cdp`), opens the
page; the test takes a full-page PNG screenshot and decodes every QR code in the picture with
zxing-cpp (:mod:`tests.cli.qr`), as a phone pointed at the screen would, and compares them with
the offer URIs the server announced.

Without a Chromium binary the test skips, except under ``CI`` where a missing browser is a
failure (``scripts/install-chromium.sh`` installs Debian's package).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from oid4vci.cli.serve import DemoServer, running_demo_issuer
from tests.cli.qr import decode_png
from tests.e2e.conftest import REPO_ROOT

from .cdp import Browser, Page, find_chromium, launch_chromium
from .test_login_browser import assert_png, navigation_status, page_errors

#: The whole test, browser start included.
TEST_TIMEOUT = 60

_PAGE_READY = (
    "document.readyState === 'complete' && document.querySelectorAll('section svg').length"
)


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp (server, DevTools websocket) runs on asyncio only."""
    return "asyncio"


def require_chromium() -> str:
    """The Chromium binary; missing, the test skips, or FAILS under ``CI``.

    Called in the test's body (not a fixture), so under ``CI`` it is reported as a failed test,
    not as a setup error.
    """
    binary = find_chromium()
    if binary is None:
        message = "no chromium binary on PATH (run scripts/install-chromium.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return binary


@pytest.fixture
async def issuer() -> AsyncIterator[DemoServer]:
    """The demo issuer with its page, over aiohttp on a free port of 127.0.0.1."""
    async with running_demo_issuer("127.0.0.1", 0) as server:
        yield server


async def full_page_screenshot(page: Page, path: Path) -> bytes:
    """The whole document (not only the viewport) as PNG, written to ``path``."""
    import base64

    metrics = await page.send("Page.getLayoutMetrics")
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
    shot = await page.send(
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    data = base64.b64decode(shot["data"])
    await anyio.Path(path).write_bytes(data)
    return data


async def test_page_renders_and_its_qr_codes_scan_from_the_screenshot(
    issuer: DemoServer, tmp_path: Path
) -> None:
    chromium = require_chromium()
    offers = issuer.ready_line()["offers"]
    with anyio.fail_after(TEST_TIMEOUT):
        async with launch_chromium(chromium, tmp_path / "chromium-profile") as browser:
            png = await photograph_page(browser, issuer, tmp_path / "demo-page.png")
    decoded = decode_png(png)
    assert sorted(decoded) == sorted(offers.values()), decoded


async def photograph_page(browser: Browser, issuer: DemoServer, shot: Path) -> bytes:
    """Open the page, check what a person sees, and return its full-page screenshot."""
    offers = issuer.ready_line()["offers"]
    page = await browser.new_page()
    await page.navigate(issuer.page_url)
    assert await page.wait_for(_PAGE_READY) == len(offers)
    assert await navigation_status(page) == 200
    assert await page.evaluate("document.title") == "oid4vci demo issuer"
    # The page's style applied: CSP allowed its <style> element (by hash).
    assert await page.evaluate("getComputedStyle(document.querySelector('section')).width") == (
        "240px"
    )
    boxes = await page.evaluate(
        "[...document.querySelectorAll('section svg')].map(s => {"
        " const r = s.getBoundingClientRect(); return [r.width, r.height]; })"
    )
    assert all(width >= 150 and height >= 150 for width, height in boxes), boxes
    text = await page.evaluate("document.body.innerText")
    assert issuer.ready_line()["tx_code"] in text
    assert "alice" in text and "wonderland" in text
    png = await full_page_screenshot(page, shot)
    assert_png(png, shot)
    assert page_errors(page) == []  # no CSP violation, no script error
    return png


@pytest.mark.parametrize(("ci", "outcome"), [("true", "1 failed"), ("", "1 skipped")])
def test_missing_chromium_fails_under_ci_and_skips_elsewhere(ci: str, outcome: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "CI"}
    env["CHROMIUM"] = "no-such-chromium-binary"  # find_chromium() honours $CHROMIUM
    if ci:
        env["CI"] = ci
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"{__file__}::test_page_renders_and_its_qr_codes_scan_from_the_screenshot",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO_ROOT,
        check=False,
    )
    assert outcome in done.stdout, done.stdout[-3000:]
    assert "no chromium binary" in done.stdout
