"""Transports: the I/O half of the library, reached as ``oid4vci.transports``.

Each client module implements :class:`oid4vci.http.Transport` (``async send(HttpRequest) ->
HttpResponse``) and never follows redirects; each server adapter exposes an async
``handler(HttpRequest) -> HttpResponse`` such as ``Issuer.handle``:

- :mod:`oid4vci.transports.memory` -- :class:`~oid4vci.transports.memory.InMemoryTransport`
  calls async handlers in-process, routed by origin (tests, end-to-end runs without sockets);
  runs on asyncio and trio. Core: no extra needed.
- :mod:`oid4vci.transports.httpx` -- :class:`~oid4vci.transports.httpx.HttpxTransport`
  speaks real HTTP through httpx; runs on asyncio and trio. Extra ``httpx``.
- :mod:`oid4vci.transports.aiohttp` -- :class:`~oid4vci.transports.aiohttp.AiohttpTransport`
  speaks real HTTP, and the server adapter (:func:`~oid4vci.transports.aiohttp.serve`,
  :func:`~oid4vci.transports.aiohttp.make_aiohttp_server`,
  :func:`~oid4vci.transports.aiohttp.make_aiohttp_app`,
  :func:`~oid4vci.transports.aiohttp.handler_for_aiohttp`) exposes an async handler over HTTP;
  asyncio only. Extra ``aiohttp``.
- :mod:`oid4vci.transports.asgi` -- :func:`~oid4vci.transports.asgi.asgi_app` serves a
  handler as an ASGI 3 application (uvicorn, hypercorn; mounted in Starlette, FastAPI,
  Litestar, Quart). Plain ASGI: no extra needed.

Importing a module whose extra is not installed raises
:class:`~oid4vci.errors.MissingDependencyError` naming it (``pip install 'oid4vci[httpx]'``).
The client transports share one policy: https only (http to loopback when
``allow_insecure_loopback`` is set), connect and total timeouts, a response size cap, no
cookies kept, errors mapped to :class:`~oid4vci.errors.TransportError` subclasses whose
messages never contain a URL's query.

This package imports no submodule, so importing it costs nothing; import the submodule
you need. The folder lives beside ``oid4vci/`` and is reached through the committed symlink
``oid4vci/transports -> ../transports``: always import it as ``oid4vci.transports``, never as
a top-level ``transports`` package.
"""

from __future__ import annotations

__all__: list[str] = []
