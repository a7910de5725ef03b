"""The servers' event loop: uvloop when installed (the cli and test extras install it)."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from oid4vci.cli.event_loop import EVENT_LOOP_ENV, server_backend_options, server_event_loop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_servers_run_on_uvloop_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(EVENT_LOOP_ENV, raising=False)
    assert server_event_loop() == "uvloop"
    module = anyio.run(_loop_module, backend_options=server_backend_options())
    assert module.startswith("uvloop")


def test_the_environment_keeps_the_standard_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(EVENT_LOOP_ENV, " AsyncIO ")
    assert server_event_loop() == "asyncio"
    assert server_backend_options() == {}
    module = anyio.run(_loop_module, backend_options=server_backend_options())
    assert module.startswith("asyncio")
