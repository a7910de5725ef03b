"""The event loop ``oid4vci serve`` runs its servers on: uvloop when it is installed.

uvloop (in the ``cli`` extra, where it has wheels) runs the same asyncio programs with its
event loop written in C: about a fifth less server CPU per HTTP request than the standard
library's loop (``benchmarks/http_server.py``). Without it, or with ``OID4VCI_EVENT_LOOP=asyncio``
in the environment, the standard loop runs. Only the servers use it; the wallet commands keep
the default loop.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

__all__ = ["EVENT_LOOP_ENV", "server_backend_options", "server_event_loop"]

#: Set to ``asyncio`` to keep the standard library's event loop even when uvloop is installed.
EVENT_LOOP_ENV = "OID4VCI_EVENT_LOOP"


def server_event_loop() -> str:
    """``"uvloop"`` when the servers will run on uvloop, else ``"asyncio"``."""
    if os.environ.get(EVENT_LOOP_ENV, "").strip().lower() == "asyncio":
        return "asyncio"
    return "uvloop" if importlib.util.find_spec("uvloop") is not None else "asyncio"


def server_backend_options() -> dict[str, Any]:
    """The ``backend_options`` for :func:`anyio.run` of a server."""
    return {"use_uvloop": True} if server_event_loop() == "uvloop" else {}
