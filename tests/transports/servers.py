"""Real servers on 127.0.0.1 in a background thread, so tests on any event loop can use them.

aiohttp and uvicorn serve on asyncio only; a test running on trio talks to them over real
sockets while they run on their own asyncio loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import uvicorn
from aiohttp import web

T = TypeVar("T")

START_TIMEOUT = 10.0


class BackgroundLoop:
    """An asyncio event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = START_TIMEOUT) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and join the thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(START_TIMEOUT)
        self.loop.close()


@contextmanager
def background_loop() -> Iterator[BackgroundLoop]:
    """A :class:`BackgroundLoop` for the block."""
    loop = BackgroundLoop()
    try:
        yield loop
    finally:
        loop.close()


@contextmanager
def aiohttp_app_in_thread(loop: BackgroundLoop, app: web.Application) -> Iterator[str]:
    """Serve ``app`` on a free port of 127.0.0.1 from ``loop``; yield the base URL."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return int(runner.addresses[0][1])

    port = loop.run(start())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        loop.run(runner.cleanup())


@contextmanager
def raw_tcp_in_thread(loop: BackgroundLoop, reply: bytes) -> Iterator[str]:
    """A TCP server that reads the request head, writes ``reply`` verbatim, and closes."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(reply)
            await writer.drain()
        finally:
            writer.close()

    async def start() -> asyncio.Server:
        return await asyncio.start_server(on_connect, "127.0.0.1", 0)

    server = loop.run(start())
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:

        async def stop() -> None:
            server.close()
            await server.wait_closed()

        loop.run(stop())


def bound_socket() -> socket.socket:
    """A listening TCP socket on a free port of 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


@contextmanager
def uvicorn_in_thread(app: Any, sock: socket.socket, **config: Any) -> Iterator[uvicorn.Server]:
    """Run ``app`` under uvicorn (lifespan on) on ``sock`` in a thread for the block."""
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_level="warning", access_log=False, **config)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT)
        sock.close()
