"""Seeing what happened: exchanges traced and logged with secrets redacted, errors that carry
their request line, and issuer hook failures logged with their traceback."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import pytest

from oid4vci.errors import ConnectError, TokenError
from oid4vci.http import Headers, HttpRequest, HttpResponse
from oid4vci.issuer import Issuer
from oid4vci.issuer.demo import build_demo_issuer
from oid4vci.tracing import (
    Exchange,
    TracingTransport,
    redact_body,
    redact_headers,
    redact_url,
    request_line,
)
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import Oid4vciClient
from tests.conftest import FakeClock

ISSUER = "https://issuer.example"


def everything(exchanges: list[Exchange]) -> str:
    return json.dumps([attrs.asdict(e) for e in exchanges])


def test_redact_url_keeps_names_and_drops_values() -> None:
    url = "https://as.example/cb?code=SECRET-CODE&state=SECRET-STATE&iss=x#frag=SECRET"
    shown = redact_url(url)
    assert shown == "https://as.example/cb?code=***&state=***&iss=***#***"
    assert "SECRET" not in shown
    assert redact_url("http://[::1") == "<unparseable URL>"
    line = request_line(HttpRequest(method="post", url="https://x.example/token?a=1"))
    assert line == "POST https://x.example/token?a=***"


def test_redact_headers_and_bodies() -> None:
    headers = Headers(
        [
            ("Authorization", "DPoP TOKEN"),
            ("DPoP", "PROOF"),
            ("Location", "https://w.example/cb?code=CODE"),
            ("Accept", "application/json"),
        ]
    )
    shown = dict(redact_headers(headers))
    assert shown == {
        "Authorization": "***",
        "DPoP": "***",
        "Location": "https://w.example/cb?code=***",
        "Accept": "application/json",
    }
    body = json.dumps(
        {"access_token": "TOKEN", "token_type": "DPoP", "nested": [{"credential": "SDJWT"}]}
    ).encode()
    text = redact_body(body, "application/json")
    assert "TOKEN" not in text and "SDJWT" not in text and '"token_type":"DPoP"' in text
    form = redact_body(b"grant_type=x&tx_code=123456&pre-authorized_code=PAC", FORM)
    assert form == "grant_type=x&tx_code=***&pre-authorized_code=***"
    assert redact_body(b"\x00\x01", "application/octet-stream").startswith("<2 bytes")
    assert redact_body(b"{not json", "application/json") == "<9 bytes, not JSON>"


FORM = "application/x-www-form-urlencoded"


async def test_tracing_transport_sees_every_exchange_and_no_secret(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    demo = build_demo_issuer(ISSUER, clock=clock)
    seen: list[Exchange] = []
    transport = TracingTransport(InMemoryTransport(routes={ISSUER: demo.handle}), seen.append)
    caplog.set_level(logging.DEBUG, logger="oid4vci")
    async with transport:
        client = Oid4vciClient(transport, clock=clock)
        offer = await client.parse_offer(demo.offer_links["pre_auth_tx_code"])
        result = await client.accept_offer(offer, tx_code=demo.tx_code, count=2)
    assert len(result.credentials) == 2
    lines = [e.request_line for e in seen]
    assert lines[0].startswith("GET https://issuer.example/")
    assert "POST https://issuer.example/token" in lines
    assert "POST https://issuer.example/credential" in lines
    assert all(e.status is not None and e.elapsed >= 0 for e in seen)
    assert offer.pre_authorized_code is not None and result.session is not None
    secrets = {
        "tx_code": demo.tx_code,
        "pre-authorized code": offer.pre_authorized_code.pre_authorized_code,
        "access token": result.session.access_token,
        "credential": str(result.credentials[0].credential)[:40],
    }
    traced = everything(seen)
    logged = caplog.text
    for name, secret in secrets.items():
        assert secret not in traced, f"{name} in the traced exchanges"
        assert secret not in logged, f"{name} in the DEBUG log"
    # one DEBUG line per exchange, on the oid4vci logger
    http_records = [r for r in caplog.records if r.name == "oid4vci.http"]
    assert len(http_records) == len(seen)
    assert all(r.levelno == logging.DEBUG for r in http_records)


async def test_async_hook_and_transport_errors_carry_the_request_line(clock: FakeClock) -> None:
    seen: list[Exchange] = []

    async def hook(exchange: Exchange) -> None:
        seen.append(exchange)

    transport = TracingTransport(InMemoryTransport(routes={}), hook)
    with pytest.raises(ConnectError) as caught:
        await transport.send(HttpRequest(method="GET", url="https://gone.example/x?code=SECRET"))
    assert caught.value.request_line == "GET https://gone.example/x?code=***"
    assert seen[0].status is None and seen[0].error == "ConnectError"


async def test_protocol_errors_carry_the_request_line(clock: FakeClock) -> None:
    demo = build_demo_issuer(ISSUER, clock=clock)
    client = Oid4vciClient(InMemoryTransport(routes={ISSUER: demo.handle}), clock=clock)
    offer = await client.parse_offer(demo.offer_links["pre_auth_tx_code"])
    wrong = "9" * len(demo.tx_code) if demo.tx_code != "9" * len(demo.tx_code) else "1" * 6
    with pytest.raises(TokenError) as caught:
        await client.accept_offer(offer, tx_code=wrong)
    assert caught.value.request_line == "POST https://issuer.example/token"
    assert caught.value.status == 400
    assert "request='POST https://issuer.example/token'" in repr(caught.value)


class BrokenClaims:
    """A claims source with a bug in it."""

    async def __call__(self, subject: str, configuration_id: str) -> Mapping[str, Any]:
        record: dict[str, Any] = {}
        return {"given_name": record["given_name"]}


async def test_a_bug_in_an_issuer_hook_is_logged_with_its_traceback(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    demo = build_demo_issuer(ISSUER, clock=clock)
    issuer = Issuer(attrs.evolve(demo.config, claims_source=BrokenClaims()))
    transport = InMemoryTransport(routes={ISSUER: issuer.handle})
    client = Oid4vciClient(transport, clock=clock)
    offer_link = (
        await issuer.create_pre_authorized_offer(
            configuration_ids=[demo.configuration_id], subject="alice"
        )
    ).offer_uri
    caplog.set_level(logging.ERROR, logger="oid4vci")
    from oid4vci.errors import CredentialRequestError

    with pytest.raises(CredentialRequestError) as caught:
        await client.accept_offer(offer_link)
    assert caught.value.status == 500 and caught.value.error == "server_error"
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    # the type and every frame (file, line, function), never the message or source lines
    message = record.getMessage()
    assert "failed with KeyError" in message
    assert "tests/test_tracing.py" in message and "in __call__" in message
    assert "given_name" not in caplog.text
    token = parse_qs(urlsplit(offer_link).query)
    assert all(value not in caplog.text for values in token.values() for value in values)


def test_http_response_is_not_touched_by_redaction() -> None:
    response = HttpResponse.json(200, {"access_token": "T"})
    Exchange.of(HttpRequest(method="GET", url="https://x.example/"), response, elapsed=0.0)
    assert response.json_body() == {"access_token": "T"}
