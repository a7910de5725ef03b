"""InMemoryTransport: routing by origin, errors, size cap, redirects, lifecycle (asyncio and trio)."""

from __future__ import annotations

import pytest

from oid4vci.errors import (
    ConnectError,
    RedirectRefused,
    ResponseTooLarge,
    TransportError,
)
from oid4vci.http import HttpRequest, HttpResponse, Transport
from oid4vci.transports.memory import Handler, InMemoryTransport


def answering(name: str, seen: list[HttpRequest] | None = None) -> Handler:
    """A handler answering ``{"server": name, "url": ...}`` and recording what it got."""

    async def handler(request: HttpRequest) -> HttpResponse:
        if seen is not None:
            seen.append(request)
        return HttpResponse.json(200, {"server": name, "url": request.url})

    return handler


async def test_routes_by_origin_across_two_servers() -> None:
    a_seen: list[HttpRequest] = []
    b_seen: list[HttpRequest] = []
    transport = InMemoryTransport(
        routes={"https://a.example": answering("a", a_seen)},
    )
    transport.mount("https://b.example:8443", answering("b", b_seen))
    async with transport:
        ra = await transport.send(HttpRequest(method="GET", url="https://a.example/x?q=1"))
        rb = await transport.send(
            HttpRequest.json("POST", "https://b.example:8443/credential", {"k": "v"})
        )
    assert ra.json_body() == {"server": "a", "url": "https://a.example/x?q=1"}
    assert rb.json_body()["server"] == "b"
    assert [r.url for r in a_seen] == ["https://a.example/x?q=1"]
    assert len(b_seen) == 1
    assert b_seen[0].method == "POST"
    assert b_seen[0].json_body() == {"k": "v"}


async def test_transport_satisfies_protocol() -> None:
    assert isinstance(InMemoryTransport(), Transport)


@pytest.mark.parametrize(
    ("mounted", "requested"),
    [
        ("https://a.example:443", "https://a.example/path"),
        ("https://a.example", "https://a.example:443/path"),
        ("https://A.Example/", "https://a.example/path"),
        ("http://localhost:80", "http://localhost/path"),
        ("http://[::1]:8080", "http://[::1]:8080/"),
    ],
)
async def test_default_ports_and_case_are_the_same_origin(mounted: str, requested: str) -> None:
    transport = InMemoryTransport(routes={mounted: answering("a")})
    response = await transport.send(HttpRequest(method="GET", url=requested))
    assert response.json_body()["server"] == "a"


@pytest.mark.parametrize(
    "requested",
    [
        "https://c.example/",
        "http://a.example/",  # scheme differs
        "https://a.example:8443/",  # port differs
        "https://sub.a.example/",
    ],
)
async def test_unknown_origin_is_connect_error(requested: str) -> None:
    transport = InMemoryTransport(routes={"https://a.example": answering("a")})
    with pytest.raises(ConnectError, match="no in-memory route"):
        await transport.send(HttpRequest(method="GET", url=requested))


async def test_unknown_origin_message_hides_query() -> None:
    transport = InMemoryTransport()
    with pytest.raises(ConnectError) as info:
        await transport.send(
            HttpRequest(method="GET", url="https://c.example/cb?code=SECRET-CODE#frag")
        )
    assert "SECRET-CODE" not in str(info.value)
    assert "https://c.example/cb" in str(info.value)


async def test_default_handler_answers_unrouted_origins() -> None:
    transport = InMemoryTransport(
        answering("default"), routes={"https://a.example": answering("a")}
    )
    other = await transport.send(HttpRequest(method="GET", url="https://z.example/"))
    routed = await transport.send(HttpRequest(method="GET", url="https://a.example/"))
    assert other.json_body()["server"] == "default"
    assert routed.json_body()["server"] == "a"


async def test_for_handler_sends_everything_to_one_handler() -> None:
    transport = InMemoryTransport.for_handler(answering("only"))
    for url in ("https://a.example/", "http://127.0.0.1:9/x"):
        response = await transport.send(HttpRequest(method="GET", url=url))
        assert response.json_body()["server"] == "only"


async def test_mount_replaces_and_unmount_removes() -> None:
    transport = InMemoryTransport(routes={"https://a.example": answering("old")})
    transport.mount("https://a.example:443/", answering("new"))
    assert transport.origins == frozenset({"https://a.example"})
    response = await transport.send(HttpRequest(method="GET", url="https://a.example/"))
    assert response.json_body()["server"] == "new"
    transport.unmount("https://a.example")
    with pytest.raises(ConnectError):
        await transport.send(HttpRequest(method="GET", url="https://a.example/"))


@pytest.mark.parametrize(
    "origin",
    [
        "https://a.example/tenant",
        "https://a.example/?x=1",
        "https://a.example#f",
        "a.example",
        "ftp://a.example",
        "https://",
        "https://a.example:99999",
        "https://user@a.example",
    ],
)
def test_mount_refuses_non_origins(origin: str) -> None:
    with pytest.raises(ValueError):
        InMemoryTransport(routes={origin: answering("a")})


async def test_handler_exception_propagates_unchanged() -> None:
    class Boom(Exception):
        pass

    async def broken(request: HttpRequest) -> HttpResponse:
        raise Boom("handler bug")

    transport = InMemoryTransport(routes={"https://a.example": broken})
    with pytest.raises(Boom, match="handler bug"):
        await transport.send(HttpRequest(method="GET", url="https://a.example/"))


async def test_handler_returning_wrong_type_is_type_error() -> None:
    async def wrong(request: HttpRequest) -> HttpResponse:
        return {"status": 200}  # type: ignore[return-value]

    transport = InMemoryTransport(wrong)
    with pytest.raises(TypeError, match="expected HttpResponse"):
        await transport.send(HttpRequest(method="GET", url="https://a.example/"))


async def test_max_response_size() -> None:
    async def big(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=200, body=b"x" * 101)

    async def exact(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=200, body=b"x" * 100)

    transport = InMemoryTransport(
        routes={"https://big.example": big, "https://exact.example": exact},
        max_response_size=100,
    )
    with pytest.raises(ResponseTooLarge):
        await transport.send(HttpRequest(method="GET", url="https://big.example/"))
    response = await transport.send(HttpRequest(method="GET", url="https://exact.example/"))
    assert len(response.body) == 100
    unlimited = InMemoryTransport(big)
    assert len((await unlimited.send(HttpRequest(method="GET", url="https://b.example/"))).body)


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_refused_by_default_and_never_followed(status: int) -> None:
    followed: list[HttpRequest] = []

    async def redirect(request: HttpRequest) -> HttpResponse:
        return HttpResponse(
            status=status, headers={"Location": "https://b.example/cb?code=SECRET-CODE"}
        )

    transport = InMemoryTransport(
        routes={"https://a.example": redirect, "https://b.example": answering("b", followed)}
    )
    with pytest.raises(RedirectRefused) as info:
        await transport.send(HttpRequest(method="GET", url="https://a.example/authorize"))
    assert "SECRET-CODE" not in str(info.value)
    assert str(status) in str(info.value)

    lenient = InMemoryTransport(
        routes={"https://a.example": redirect, "https://b.example": answering("b", followed)},
        raise_on_redirect=False,
    )
    response = await lenient.send(HttpRequest(method="GET", url="https://a.example/authorize"))
    assert response.status == status
    assert response.headers.get("location") == "https://b.example/cb?code=SECRET-CODE"
    assert followed == []


async def test_non_redirect_3xx_is_returned() -> None:
    async def not_modified(request: HttpRequest) -> HttpResponse:
        return HttpResponse(status=304)

    transport = InMemoryTransport(not_modified)
    response = await transport.send(HttpRequest(method="GET", url="https://a.example/"))
    assert response.status == 304


async def test_send_after_close_fails() -> None:
    transport = InMemoryTransport(answering("a"))
    async with transport as entered:
        assert entered is transport
        await transport.send(HttpRequest(method="GET", url="https://a.example/"))
    with pytest.raises(TransportError, match="closed"):
        await transport.send(HttpRequest(method="GET", url="https://a.example/"))
    await transport.aclose()  # idempotent


async def test_invalid_request_url_is_transport_error() -> None:
    transport = InMemoryTransport(answering("a"))
    with pytest.raises(TransportError):
        await transport.send(HttpRequest(method="GET", url="https://a.example:99999/"))


def test_negative_size_cap_refused() -> None:
    with pytest.raises(ValueError):
        InMemoryTransport(max_response_size=-1)


def test_repr_lists_origins_only() -> None:
    transport = InMemoryTransport(routes={"https://a.example:443": answering("a")})
    assert repr(transport) == "InMemoryTransport(origins=['https://a.example'])"
