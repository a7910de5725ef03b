"""Who sent a request: the client address the issuer's rate limits are keyed by.

The address is the TCP peer (:attr:`HttpRequest.client_address <oid4vci.http.HttpRequest>`,
filled in by the server adapters). Only when that peer is one of the configured trusted
proxies are forwarding headers read, and then only the one header the proxy is configured to
write: ``X-Forwarded-For`` or ``Forwarded`` (RFC 7239 §4, its ``for=`` parameter). The hops
are read from the right: the first hop that is not a trusted proxy is the client (the
"rightmost untrusted hop"), so whatever a client writes into the header itself (to the left of
what its proxies appended) is never believed. A header sent by any other peer is ignored.

A hop the trusted proxy could not name (``unknown``, an obfuscated ``_id``, garbage) stops the
walk: the request is then keyed by the proxy that wrote it. IPv6 clients are keyed by their
``/64`` (one host usually holds a whole ``/64``, so keying single addresses would give a
flooder 2^64 buckets).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Sequence
from typing import Literal

from oid4vci.errors import UsageError
from oid4vci.http import HttpRequest

__all__ = [
    "ForwardedHeader",
    "IpNetwork",
    "client_key",
    "forwarded_for_hops",
    "trusted_networks",
    "x_forwarded_for_hops",
]

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: Which forwarding header a trusted proxy writes.
ForwardedHeader = Literal["x-forwarded-for", "forwarded"]

# Hops read from one request at most (a longer chain is cut at the left, the client's side).
_MAX_HOPS = 32


def trusted_networks(values: Iterable[str] | str) -> tuple[IpNetwork, ...]:
    """``("10.0.0.0/8", "127.0.0.1", "::1")`` as networks (a lone address is a ``/32``/``/128``).

    Raises :class:`~oid4vci.errors.UsageError` for anything that is not an address or network.
    """
    items = (values,) if isinstance(values, str) else tuple(values)
    out: list[IpNetwork] = []
    for item in items:
        if isinstance(item, ipaddress.IPv4Network | ipaddress.IPv6Network):
            out.append(item)
            continue
        try:
            out.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise UsageError(
                "trusted proxies must be IP addresses or networks such as 10.0.0.0/8"
            ) from None
    return tuple(out)


def _address(text: str) -> IpAddress | None:
    """An address from a hop: ``1.2.3.4``, ``1.2.3.4:80``, ``[2001:db8::1]:80`` or ``::1``."""
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        text = text[1:end]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _split_outside_quotes(text: str, separator: str) -> list[str] | None:
    """``text`` split at ``separator`` outside quoted strings; ``None`` when a quoted string is
    not closed (nothing after its opening quote can be told apart)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif quoted and ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch == separator and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if quoted:
        return None
    parts.append("".join(current))
    return parts


def forwarded_for_hops(values: Sequence[str]) -> list[str]:
    """The ``for=`` value of every element of ``Forwarded`` header lines, left to right.

    RFC 7239 §4: elements are comma-separated, pairs semicolon-separated, values tokens or
    quoted strings (``for="[2001:db8::17]:4711"``). An element without ``for=`` gives ``""``
    (a hop that names nobody), and so does a whole line with a quoted string left open: a
    client's ``for=X;x="`` must not swallow the element a proxy appends to its line and pass
    ``X`` off as the last hop.
    """
    hops: list[str] = []
    for line in values:
        elements = _split_outside_quotes(line, ",")
        if elements is None:
            hops.append("")
            continue
        for element in elements:
            if not element.strip():
                continue
            value = ""
            for pair in _split_outside_quotes(element, ";") or ():
                name, sep, raw = pair.partition("=")
                if sep and name.strip().lower() == "for":
                    value = raw.strip()
            hops.append(value)
    return hops


def x_forwarded_for_hops(values: Sequence[str]) -> list[str]:
    """The hops of ``X-Forwarded-For`` header lines, left (client) to right (last proxy)."""
    return [hop.strip() for line in values for hop in line.split(",")]


def _key(address: IpAddress) -> str:
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            return str(mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _trusted(address: IpAddress, proxies: Sequence[IpNetwork]) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in proxies)


@functools.lru_cache(maxsize=4096)
def _peer(text: str) -> tuple[IpAddress, str] | None:
    """The TCP peer's address and its key: a pure function of the adapter's string, parsed
    once per peer (every rate-limited request asks; a flood from many addresses only evicts)."""
    address = _address(text)
    return None if address is None else (address, _key(address))


def client_key(
    request: HttpRequest,
    trusted_proxies: Sequence[IpNetwork] = (),
    *,
    header: ForwardedHeader = "x-forwarded-for",
) -> str | None:
    """The client address ``request`` is rate limited by, or ``None`` when it is unknown.

    ``None`` when the adapter gave no peer address (the in-memory transport, a Unix socket).
    IPv4 addresses as themselves, IPv6 as their ``/64`` (``2001:db8::/64``).
    """
    found = _peer(request.client_address or "")
    if found is None:
        return None
    peer, peer_key = found
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return peer_key
    lines = request.headers.get_all(header)
    hops = forwarded_for_hops(lines) if header == "forwarded" else x_forwarded_for_hops(lines)
    client = peer
    for hop in reversed(hops[-_MAX_HOPS:]):
        address = _address(hop.strip('"'))
        if address is None:
            break  # a hop the proxy could not name: keyed by that proxy
        client = address
        if not _trusted(address, trusted_proxies):
            break
    return _key(client)
