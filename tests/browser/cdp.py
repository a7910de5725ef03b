"""A tiny Chrome DevTools Protocol client for the browser tests (asyncio, aiohttp websockets).

Only what the tests need: launch a headless Chromium on a loopback DevTools port
(:func:`launch_chromium`), open a page target in flattened session mode
(:meth:`Browser.new_page`), and drive it (:class:`Page`: navigate, evaluate, wait for a
condition, type, click, screenshot). No selenium, playwright or pyppeteer.

Protocol reference: https://chromedevtools.github.io/devtools-protocol/ — commands are JSON
``{"id", "method", "params", "sessionId"?}`` on one websocket; answers carry the same ``id``
with ``result`` or ``error``; events carry ``method`` and ``params`` and no ``id``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.abc

__all__ = [
    "Browser",
    "CdpConnection",
    "CdpError",
    "Page",
    "find_chromium",
    "launch_chromium",
]

#: Names a Chromium binary goes by (Debian's package installs ``chromium``).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Flags for a quiet, self-contained headless browser that talks to nothing but loopback.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in a container: the setuid sandbox is unavailable
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-proxy-server",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--metrics-recording-only",
    "--mute-audio",
    "--password-store=basic",
    "--window-size=1024,768",
)

_MAX_MESSAGE = 64 * 1024 * 1024  # screenshots arrive base64-encoded in one message


def find_chromium() -> str | None:
    """The path of a Chromium binary on ``PATH`` (``$CHROMIUM`` wins when set), or None."""
    explicit = os.environ.get("CHROMIUM")
    if explicit:
        return shutil.which(explicit)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class CdpError(Exception):
    """A DevTools command failed, or the connection closed while it was pending."""

    def __init__(self, method: str, message: str, code: int | None = None) -> None:
        super().__init__(f"{method}: {message}" + (f" (code {code})" if code is not None else ""))
        self.method = method
        self.message = message
        self.code = code


class CdpConnection:
    """One websocket to the browser's DevTools endpoint.

    Commands for a page go through the same socket with a ``sessionId`` (flattened mode).
    A reader task routes answers to their waiting command and keeps each session's events
    (see :meth:`events`; ``Page``, ``Runtime`` and ``Log`` are enabled on every page).
    """

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._next_id = 0
        self._pending: dict[int, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self._events: dict[str | None, list[dict[str, Any]]] = {}
        self._closed: str | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        reason = "the DevTools connection closed"
        try:
            async for message in self._ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    if message.type == aiohttp.WSMsgType.ERROR:
                        reason = f"the DevTools connection failed: {self._ws.exception()!r}"
                        break
                    continue
                self._dispatch(json.loads(message.data))
        finally:
            self._fail_all(reason)

    def _dispatch(self, data: dict[str, Any]) -> None:
        if "id" in data:
            entry = self._pending.pop(int(data["id"]), None)
            if entry is None or entry[1].done():
                return
            method, future = entry
            if "error" in data:
                error = data["error"]
                future.set_exception(
                    CdpError(method, str(error.get("message", error)), error.get("code"))
                )
            else:
                future.set_result(dict(data.get("result", {})))
        elif "method" in data:
            self._events.setdefault(data.get("sessionId"), []).append(data)

    def _fail_all(self, reason: str) -> None:
        self._closed = reason
        pending, self._pending = self._pending, {}
        for method, future in pending.values():
            if not future.done():
                future.set_exception(CdpError(method, reason))

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session_id: str | None = None
    ) -> dict[str, Any]:
        """Run one command and return its ``result``; raises :class:`CdpError` on ``error``."""
        if self._closed is not None:
            raise CdpError(method, self._closed)
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = (method, future)
        try:
            await self._ws.send_str(json.dumps(message))
            return await future
        finally:
            self._pending.pop(message["id"], None)

    @property
    def closed(self) -> bool:
        """True once the websocket closed (every later command fails)."""
        return self._closed is not None

    def events(self, session_id: str | None) -> list[dict[str, Any]]:
        """The events received so far for ``session_id`` (None: browser-level), oldest first."""
        return self._events.setdefault(session_id, [])

    async def aclose(self) -> None:
        """Close the websocket and stop the reader."""
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class Page:
    """A page target attached in flattened mode: commands go to its ``sessionId``."""

    def __init__(self, connection: CdpConnection, target_id: str, session_id: str) -> None:
        self.connection = connection
        self.target_id = target_id
        self.session_id = session_id

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run one command in this page's session."""
        return await self.connection.send(method, params, session_id=self.session_id)

    async def navigate(self, url: str) -> str:
        """Navigate (returns once the response is committed) and return the ``loaderId``.

        Raises :class:`CdpError` when the navigation failed (``errorText``, e.g.
        ``net::ERR_CONNECTION_REFUSED``).
        """
        result = await self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CdpError("Page.navigate", str(result["errorText"]))
        return str(result.get("loaderId", ""))

    async def evaluate(self, expression: str) -> Any:
        """Evaluate ``expression`` in the page (promises awaited) and return its JSON value.

        A JavaScript exception raises :class:`CdpError` with its description.
        """
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        details = result.get("exceptionDetails")
        if details is not None:
            exc = details.get("exception", {})
            text = exc.get("description") or details.get("text") or "exception"
            raise CdpError("Runtime.evaluate", str(text))
        return result.get("result", {}).get("value")

    async def wait_for(self, expression: str, *, interval: float = 0.05) -> Any:
        """Poll ``expression`` until it returns a truthy value, and return that value.

        Evaluation errors while a navigation swaps documents ("context destroyed", a
        ``document.body`` not there yet) count as "not yet". Bound it with
        ``anyio.fail_after``.
        """
        while True:
            try:
                value = await self.evaluate(expression)
            except CdpError:
                if self.connection.closed:
                    raise
                value = None
            if value:
                return value
            await anyio.sleep(interval)

    async def type_into(self, selector: str, text: str) -> None:
        """Clear the field matching ``selector``, focus it and type ``text`` as keyboard input."""
        found = await self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return false; el.value = ''; el.focus();"
            " return document.activeElement === el; })()"
        )
        if not found:
            raise CdpError("type_into", f"no focusable element matches {selector}")
        await self.send("Input.insertText", {"text": text})

    async def click(self, selector: str) -> None:
        """Click the centre of the visible element matching ``selector`` with the mouse."""
        box = await self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return null; el.scrollIntoView({block: 'center'});"
            " const r = el.getBoundingClientRect();"
            " if (r.width === 0 || r.height === 0) return null;"
            " return {x: r.left + r.width / 2, y: r.top + r.height / 2}; })()"
        )
        if not box:
            raise CdpError("click", f"no visible element matches {selector}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            params: dict[str, Any] = {"type": kind, "x": box["x"], "y": box["y"]}
            if kind != "mouseMoved":
                params.update(button="left", clickCount=1)
            await self.send("Input.dispatchMouseEvent", params)

    async def screenshot(self, path: Path) -> bytes:
        """Capture the viewport as PNG, write it to ``path`` and return the bytes."""
        result = await self.send("Page.captureScreenshot", {"format": "png"})
        data = base64.b64decode(result["data"])
        await anyio.Path(path).write_bytes(data)
        return data


class Browser:
    """A running Chromium: its process and the browser-level DevTools connection."""

    def __init__(self, process: anyio.abc.Process, connection: CdpConnection) -> None:
        self.process = process
        self.connection = connection

    async def new_page(self, url: str = "about:blank") -> Page:
        """Open a new tab, attach to it (flattened) and enable the Page and Runtime domains."""
        created = await self.connection.send("Target.createTarget", {"url": url})
        target_id = str(created["targetId"])
        attached = await self.connection.send(
            "Target.attachToTarget", {"targetId": target_id, "flatten": True}
        )
        page = Page(self.connection, target_id, str(attached["sessionId"]))
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        await page.send("Log.enable")
        return page


def _read_devtools_port(user_data_dir: Path) -> tuple[int, str] | None:
    """``(port, browser path)`` from ``DevToolsActivePort`` once Chromium wrote both lines."""
    try:
        lines = (user_data_dir / "DevToolsActivePort").read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 2 or not lines[0].strip().isdigit() or not lines[1].startswith("/devtools/"):
        return None
    return int(lines[0]), lines[1].strip()


async def _kill(process: anyio.abc.Process) -> None:
    """Stop the browser and every process it started (its own process group), then reap it."""
    with anyio.CancelScope(shield=True):
        if process.returncode is None:
            process.terminate()
            with anyio.move_on_after(3):
                await process.wait()
        # Renderer, GPU and zygote children share the process group made for the browser.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with anyio.move_on_after(5):
            await process.wait()


@asynccontextmanager
async def launch_chromium(
    binary: str, user_data_dir: Path, *, startup_timeout: float = 30
) -> AsyncIterator[Browser]:
    """Start headless ``binary`` with a fresh profile in ``user_data_dir`` and connect to it.

    The DevTools port is read from ``<user_data_dir>/DevToolsActivePort``; Chromium's stderr
    goes to ``<user_data_dir>/chromium.log`` (shown in the error when startup fails). The
    browser and its children are always killed on exit.
    """
    await anyio.Path(user_data_dir).mkdir(parents=True, exist_ok=True)
    log_path = user_data_dir / "chromium.log"
    with log_path.open("wb") as log:
        process = await anyio.open_process(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    connection: CdpConnection | None = None
    session: aiohttp.ClientSession | None = None
    try:
        found: tuple[int, str] | None = None
        with anyio.move_on_after(startup_timeout):
            while found is None:
                if process.returncode is not None:
                    break
                found = _read_devtools_port(user_data_dir)
                if found is None:
                    await anyio.sleep(0.05)
        if found is None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(
                f"Chromium did not open its DevTools port (exit code {process.returncode}):\n{tail}"
            )
        port, path = found
        session = aiohttp.ClientSession()
        with anyio.fail_after(startup_timeout):
            ws = await session.ws_connect(f"ws://127.0.0.1:{port}{path}", max_msg_size=_MAX_MESSAGE)
        connection = CdpConnection(ws)
        yield Browser(process, connection)
    finally:
        try:
            if connection is not None:
                with anyio.move_on_after(5, shield=True):
                    if not connection.closed:
                        with contextlib.suppress(CdpError):
                            await connection.send("Browser.close")  # a clean exit first
                    await connection.aclose()
            if session is not None:
                with anyio.move_on_after(5, shield=True):
                    await session.close()
        finally:
            await _kill(process)
