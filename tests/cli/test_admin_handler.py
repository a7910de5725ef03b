"""The admin endpoint of ``oid4vci serve`` answers a store failure like every issuer endpoint:
503 with ``Retry-After`` (RFC 9110 §15.6.4), never a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest

from oid4vci.cli.admin import admin_handler, admin_status_url
from oid4vci.errors import StoreFullError, StoreUnavailableError
from oid4vci.http import HttpRequest, HttpResponse

ISSUER = "https://issuer.example"
TOKEN = "admin-token-for-the-test"


class FailingIssuer:
    """An issuer whose store fails when a status is set."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def set_credential_status(self, entry: Any, status: str) -> None:
        raise self.error


async def _passed_on(request: HttpRequest) -> HttpResponse:
    return HttpResponse(status=404)


@pytest.mark.parametrize("error", [StoreUnavailableError("down"), StoreFullError("full")])
async def test_a_store_failure_is_503_with_retry_after(error: Exception) -> None:
    handle = admin_handler(FailingIssuer(error), TOKEN, _passed_on, issuer_url=ISSUER)
    body = {"uri": ISSUER + "/status/1", "idx": 3, "status": "suspended"}
    request = HttpRequest(
        method="POST",
        url=admin_status_url(ISSUER),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        body=json.dumps(body).encode(),
    )
    response = await handle(request)
    assert response.status == 503, response.body
    assert response.headers.get("Retry-After")
    assert response.json_body()["error"] == "temporarily_unavailable"
