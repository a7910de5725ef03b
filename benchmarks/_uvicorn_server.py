"""uvicorn (httptools parser) for :mod:`benchmarks.http_server` ``--server uvicorn``.

:func:`serving_uvicorn` serves an ASGI application on an already bound, listening socket
inside the running event loop (uvloop when installed, as ``oid4vci serve``), without uvicorn's
process model, signal handlers or logging configuration. Proxy-header rewriting and the
access log are off; the ``Date`` header is kept (uvicorn's once-a-second tick). With
:func:`oid4vci.transports.asgi.asgi_app` of the issuer's handler this is what an
``oid4vci serve`` worker on uvicorn would run. Needs ``uvicorn[standard]`` (httptools).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio

from oid4vci.transports.asgi import ASGIApp, asgi_app

__all__ = ["MISSING", "serving_uvicorn", "uvicorn_serving"]

#: The one line printed when uvicorn or httptools is not installed.
MISSING = "--server uvicorn needs uvicorn[standard]: pip install 'uvicorn[standard]'"


@contextlib.asynccontextmanager
async def serving_uvicorn(app: ASGIApp, listener: socket.socket) -> AsyncIterator[None]:
    """Serve the ASGI application ``app`` with uvicorn on ``listener`` for the body."""
    import uvicorn

    config = uvicorn.Config(
        app,
        http="httptools",
        lifespan="off",
        proxy_headers=False,  # the issuer's flood limits decide which proxies to trust
        server_header=False,
        access_log=False,  # request lines may carry codes
        log_config=None,
        timeout_graceful_shutdown=5,
    )
    config.load()
    server: Any = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    sockets = [listener]
    await server.startup(sockets=sockets)
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(server.main_loop)  # the Date header, once a second
            try:
                yield
            finally:
                server.should_exit = True
    finally:
        await server.shutdown(sockets=sockets)


@contextlib.asynccontextmanager
async def uvicorn_serving(handler: Any, listener: socket.socket) -> AsyncIterator[None]:
    """``oid4vci.cli.workers._serving`` on uvicorn: ``handler`` through the ASGI adapter."""
    async with serving_uvicorn(asgi_app(handler), listener):
        yield
