"""Request URLs whose host name cannot be looked up, on both client transports.

An empty label or a label over 63 characters made the IDNA encoders on the way to the resolver
raise a bare ``UnicodeError`` out of ``send``. Each transport now raises
:class:`~oid4vci.errors.TransportError` (the request could not be made; not a
:class:`~oid4vci.errors.ConnectError`, which says the server could not be reached), with a
one-line message naming the host name's problem but not the URL's query, before any network
I/O. The httpx transport is checked on asyncio and on trio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace

import aiohttp
import httpx
import pytest

from oid4vci.errors import TransportError
from oid4vci.http import AsyncTransport, HttpRequest
from oid4vci.transports import aiohttp as aiohttp_transport
from oid4vci.transports import httpx as httpx_transport
from oid4vci.transports._common import host_name_problem
from oid4vci.transports.aiohttp import AiohttpTransport
from oid4vci.transports.httpx import HttpxTransport

SECRET = "SECRET-CODE-321"
LONG_LABEL = "a" * 300

# URL, and the end of the error message
BAD_HOSTS: dict[str, tuple[str, str]] = {
    "empty label": (
        f"https://a..b/x?code={SECRET}",
        "invalid request URL (host name has an empty label)",
    ),
    "label of 300 characters": (
        f"https://{LONG_LABEL}.example/cb?code={SECRET}",
        "invalid request URL (host name has a label longer than 63 characters)",
    ),
    "label of 64 characters": (
        f"https://{'b' * 64}.example/?code={SECRET}",
        "invalid request URL (host name has a label longer than 63 characters)",
    ),
    "leading dot": (
        f"https://.example/?code={SECRET}",
        "invalid request URL (host name has an empty label)",
    ),
    "name of 254 characters": (
        "https://" + ".".join(["c" * 63] * 4)[:254] + f"/?code={SECRET}",
        "invalid request URL (host name is longer than 253 characters)",
    ),
}

# (anyio backend, transport): aiohttp runs on asyncio only
TRANSPORTS = [
    pytest.param("asyncio", "aiohttp", id="aiohttp"),
    pytest.param("asyncio", "httpx", id="httpx-asyncio"),
    pytest.param("trio", "httpx", id="httpx-trio"),
]


@asynccontextmanager
async def transport_recording(kind: str) -> AsyncIterator[tuple[AsyncTransport, list[str]]]:
    """A transport of ``kind`` over a client of its own that records every request it starts."""
    started: list[str] = []
    if kind == "aiohttp":

        async def on_start(
            session: aiohttp.ClientSession,
            context: SimpleNamespace,
            params: aiohttp.TraceRequestStartParams,
        ) -> None:
            started.append(str(params.url))

        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(on_start)
        async with aiohttp.ClientSession(trace_configs=[trace]) as session:
            yield AiohttpTransport(session=session, total_timeout=5), started
    else:

        async def on_request(request: httpx.Request) -> None:
            started.append(str(request.url))

        async with httpx.AsyncClient(event_hooks={"request": [on_request]}) as client:
            yield HttpxTransport(client=client, total_timeout=5), started


def assert_one_line_without_secrets(error: TransportError, *, ends_with: str) -> None:
    text = str(error)
    assert type(error) is TransportError
    assert text.startswith("GET https://")
    assert text.endswith(": " + ends_with), text
    assert SECRET not in text
    assert "\n" not in text
    assert error.__cause__ is None  # nothing chained: the library's text can hold the URL
    assert error.__context__ is None or error.__suppress_context__


@pytest.mark.parametrize("case", list(BAD_HOSTS))
@pytest.mark.parametrize(("anyio_backend", "kind"), TRANSPORTS)
async def test_unusable_host_is_transport_error_before_any_io(case: str, kind: str) -> None:
    url, ends_with = BAD_HOSTS[case]
    async with transport_recording(kind) as (transport, started):
        with pytest.raises(TransportError) as info:
            await transport.send(HttpRequest(method="GET", url=url))
    assert_one_line_without_secrets(info.value, ends_with=ends_with)
    assert started == []


@pytest.mark.parametrize(("anyio_backend", "kind"), TRANSPORTS)
async def test_host_the_idna_encoder_refuses_is_transport_error(kind: str) -> None:
    # Not ASCII: the pre-check leaves it to the library's IDNA encoder (yarl's, httpx's).
    url = f"https://{'ü' * 70}.example/cb?code={SECRET}"
    async with transport_recording(kind) as (transport, started):
        with pytest.raises(TransportError) as info:
            await transport.send(HttpRequest(method="GET", url=url))
    ends_with = (
        "invalid request URL (host name cannot be IDNA-encoded)"
        if kind == "aiohttp"
        else "invalid request URL"
    )
    assert_one_line_without_secrets(info.value, ends_with=ends_with)
    assert started == []


@pytest.mark.parametrize("case", ["empty label", "label of 300 characters"])
@pytest.mark.parametrize(("anyio_backend", "kind"), TRANSPORTS)
async def test_without_the_pre_check_nothing_but_transport_error_escapes(
    case: str, kind: str, anyio_backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Behind the pre-check: the resolvers' IDNA codec refusing the host is mapped too (on
    asyncio httpx's resolver reports the name as not found: a ConnectError)."""

    def no_pre_check(request: HttpRequest) -> None:
        return None

    module = aiohttp_transport if kind == "aiohttp" else httpx_transport
    monkeypatch.setattr(module, "refuse_unusable_host", no_pre_check)
    url, _ = BAD_HOSTS[case]
    async with transport_recording(kind) as (transport, _started):
        with pytest.raises(TransportError) as info:
            await transport.send(HttpRequest(method="GET", url=url))
    if kind == "aiohttp" or anyio_backend == "trio":  # a UnicodeError before the mapping
        assert type(info.value) is TransportError
        assert str(info.value).endswith(": invalid request URL (host name cannot be IDNA-encoded)")
    assert isinstance(info.value, TransportError)
    assert SECRET not in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


@pytest.mark.parametrize(
    "host",
    [
        "issuer.example",
        "issuer.example.",  # the root's trailing dot
        "127.0.0.1",
        "[::1]",
        "[2001:db8::1]:8443",
        "d" * 63 + ".example",
        ".".join(["e" * 63] * 4)[:253],
        "ü" * 70 + ".example",  # not ASCII: for the transport's IDNA encoder to judge
        "bücher.example",
    ],
)
def test_host_name_problem_passes_usable_names(host: str) -> None:
    assert host_name_problem(f"https://{host}/path?code={SECRET}") is None


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("a..b", "has an empty label"),
        (".example", "has an empty label"),
        ("example..", "has an empty label"),
        (".", "has an empty label"),
        ("ü..example", "has an empty label"),
        ("d" * 64 + ".example", "has a label longer than 63 characters"),
        ("issuer." + "d" * 64, "has a label longer than 63 characters"),
        (".".join(["e" * 63] * 4)[:254], "is longer than 253 characters"),
    ],
)
def test_host_name_problem_names_the_problem(host: str, problem: str) -> None:
    assert host_name_problem(f"https://{host}/path?code={SECRET}") == problem
