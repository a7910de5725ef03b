"""URL rules shared by both roles: well-known locations, https policy, ``htu`` normalization."""

from __future__ import annotations

import functools
import ipaddress
from urllib.parse import urlsplit, urlunsplit

from .errors import InsecureUrlError

__all__ = [
    "LOOPBACK_HOSTS",
    "append_well_known",
    "insert_well_known",
    "is_loopback_url",
    "normalize_htu",
    "origin_of",
    "require_secure_url",
]

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is 127.0.0.0/8, ``localhost`` or ``::1``."""
    host = _host(url)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secure_url(
    url: str, *, allow_insecure_loopback: bool = False, what: str = "URL"
) -> str:
    """Return ``url`` when it is https (or http to loopback when allowed); raise otherwise.

    Also refuses URLs with user info, a fragment, or no host.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise InsecureUrlError(f"{what} is not a valid URL") from exc
    if not parts.hostname:
        raise InsecureUrlError(f"{what} has no host")
    if parts.username is not None or parts.password is not None:
        raise InsecureUrlError(f"{what} must not contain user info")
    if parts.fragment:
        raise InsecureUrlError(f"{what} must not contain a fragment")
    if parts.scheme == "https":
        return url
    if parts.scheme == "http" and is_loopback_url(url):
        if allow_insecure_loopback:
            return url
        raise InsecureUrlError(
            f"{what} must use https (http to a loopback host needs allow_insecure_loopback=True)"
        )
    raise InsecureUrlError(f"{what} must use https")


_CACHEABLE_URL_LENGTH = 2048


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, lower-cased, default port dropped."""
    # A pure function of the string, asked for the same few URLs on every request (the
    # in-memory transport routes by it): results are cached for URLs of a sane length.
    if len(url) <= _CACHEABLE_URL_LENGTH:
        return _origin_cached(url)
    return _origin(url)


@functools.lru_cache(maxsize=512)
def _origin_cached(url: str) -> str:
    return _origin(url)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def normalize_htu(url: str) -> str:
    """RFC 9449 ``htu`` comparison form (RFC 3986 §6.2.2–6.2.3).

    Scheme and host lower-cased, default port removed, empty path as ``/``, dot segments
    removed, percent-encoding hex upper-cased, query and fragment dropped.
    """
    parts = urlsplit(url)
    path = _remove_dot_segments(parts.path or "/")
    path = _upper_percent(path)
    return urlunsplit((parts.scheme.lower(), origin_of(url).split("://", 1)[1], path, "", ""))


def _upper_percent(path: str) -> str:
    out = []
    i = 0
    while i < len(path):
        if path[i] == "%" and i + 2 < len(path):
            out.append("%" + path[i + 1 : i + 3].upper())
            i += 3
        else:
            out.append(path[i])
            i += 1
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    output: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if len(output) > 1:
                output.pop()
        elif segment != ".":
            output.append(segment)
    result = "/".join(output)
    if path.endswith(("/.", "/..")):
        result += "/"
    return result if result.startswith("/") else "/" + result


def insert_well_known(identifier: str, suffix: str) -> str:
    """RFC 8414 style: ``/.well-known/<suffix>`` between host and path (1.0, AS, jwt-vc-issuer).

    A terminating ``/`` of the path is dropped first.
    """
    parts = urlsplit(identifier)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, f"/.well-known/{suffix}{path}", "", ""))


def append_well_known(identifier: str, suffix: str) -> str:
    """Draft 13–15 style: ``/.well-known/<suffix>`` appended to the identifier's path."""
    parts = urlsplit(identifier)
    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme, parts.netloc, f"{path}/.well-known/{suffix}", "", ""))
