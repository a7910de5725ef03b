"""The in-memory transport's error messages name the request without the URL's secrets:
no user info, query or fragment (as the network transports)."""

from __future__ import annotations

import pytest

from oid4vci.errors import ConnectError, RedirectRefused, ResponseTooLarge
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.transports.memory import InMemoryTransport

URL = "https://alice:S3cretPassw0rd@issuer.example/token?code=SECRET-CODE#frag"


async def _big(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=200, body=b"x" * 100)


async def _redirect(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=302, headers={"Location": "https://elsewhere.example/"})


@pytest.mark.parametrize(
    ("transport", "error"),
    [
        (InMemoryTransport(routes={"https://other.example": _big}), ConnectError),
        (InMemoryTransport(_big, max_response_size=10), ResponseTooLarge),
        (InMemoryTransport(_redirect), RedirectRefused),
    ],
)
async def test_messages_carry_no_secret_of_the_url(
    transport: InMemoryTransport, error: type[Exception]
) -> None:
    with pytest.raises(error) as refused:
        await transport.send(HttpRequest(method="POST", url=URL))
    message = str(refused.value)
    for secret in ("alice", "S3cretPassw0rd", "SECRET-CODE", "frag"):
        assert secret not in message
    assert "https://issuer.example/token" in message
