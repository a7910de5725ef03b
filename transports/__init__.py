"""Transports: the I/O half of the library, reached as ``oid4vci.transports``.

Each module implements :class:`oid4vci.http.Transport` (``async send(HttpRequest) ->
HttpResponse``) and never follows redirects:

- :mod:`oid4vci.transports.memory` -- :class:`~oid4vci.transports.memory.InMemoryTransport`
  calls async handlers in-process, routed by origin (tests, end-to-end runs without sockets);
  runs on asyncio and trio.
- :mod:`oid4vci.transports.aiohttp` -- :class:`~oid4vci.transports.aiohttp.AiohttpTransport`
  speaks real HTTP, and the server adapter (:func:`~oid4vci.transports.aiohttp.serve`,
  :func:`~oid4vci.transports.aiohttp.make_aiohttp_app`,
  :func:`~oid4vci.transports.aiohttp.handler_for_aiohttp`) exposes an async handler over HTTP;
  asyncio only.

This package imports neither submodule, so importing it costs nothing; import the submodule
you need. The folder lives beside ``oid4vci/`` and is reached through the committed symlink
``oid4vci/transports -> ../transports``: always import it as ``oid4vci.transports``, never as
a top-level ``transports`` package.
"""

from __future__ import annotations

__all__: list[str] = []
