"""``serve --rate-limit``, ``--trusted-proxy`` and ``--forwarded-header``, and a served 429."""

from __future__ import annotations

import argparse
import ipaddress

import pytest

from oid4vci.cli import build_parser
from oid4vci.cli.options import flood_limits_from, rate_limit_value, trusted_proxy_value
from oid4vci.cli.serve import running_demo_issuer
from oid4vci.http import HttpRequest
from oid4vci.transports.aiohttp import AiohttpTransport


@pytest.fixture
def anyio_backend() -> str:
    """The server runs on aiohttp (asyncio)."""
    return "asyncio"


def test_rate_limit_values() -> None:
    assert rate_limit_value("10/40") == (10.0, 40)
    assert rate_limit_value("0.5/3") == (0.5, 3)
    assert rate_limit_value("5") == (5.0, 5)
    assert rate_limit_value("OFF") is None
    for bad in ("", "x/1", "0/5", "5/0", "inf/2", "1/2.5", "-1/3"):
        with pytest.raises(argparse.ArgumentTypeError):
            rate_limit_value(bad)
    assert trusted_proxy_value(" 10.0.0.0/8 ") == "10.0.0.0/8"
    with pytest.raises(argparse.ArgumentTypeError):
        trusted_proxy_value("proxy.example")


def test_serve_defaults_and_options() -> None:
    parser = build_parser()
    args = parser.parse_args(["serve"])
    assert args.rate_limit == (10.0, 40) and args.trusted_proxy == []
    args = parser.parse_args(
        ["serve", "--rate-limit", "off", "--trusted-proxy", "10.0.0.1", "--trusted-proxy", "::1"]
    )
    limits = flood_limits_from(args.rate_limit, args.trusted_proxy, args.forwarded_header)
    assert limits.rate_limit is None
    assert limits.trusted_proxies == (
        ipaddress.ip_network("10.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    limits = flood_limits_from((2.0, 3), [], "forwarded")
    assert limits.rate_limit is not None and limits.rate_limit.burst == 3
    assert limits.forwarded_header == "forwarded"


async def test_a_served_issuer_answers_429_past_the_limit() -> None:
    limits = flood_limits_from((0.01, 2), [], "x-forwarded-for")
    async with (
        running_demo_issuer(flood_limits=limits) as server,
        AiohttpTransport(allow_insecure_loopback=True) as http,
    ):
        nonce = HttpRequest(method="POST", url=server.issuer_url + "/nonce")
        statuses = [(await http.send(nonce)).status for _ in range(3)]
        assert statuses[:2] == [200, 200] and statuses[2] == 429
        # A spoofed X-Forwarded-For from a peer that is not a trusted proxy changes nothing.
        spoofed = HttpRequest(
            method="POST",
            url=server.issuer_url + "/nonce",
            headers={"X-Forwarded-For": "198.51.100.77"},
        )
        answer = await http.send(spoofed)
        assert answer.status == 429
        assert 90 <= int(answer.headers.get("Retry-After") or 0) <= 100  # a token per 100 s
