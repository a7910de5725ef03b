"""The issuer's limits on unauthenticated requests as configuration (``IssuerConfig.flood_limits``):
:class:`RateLimit` and :class:`FloodLimits`, kept apart from the checks of
:mod:`oid4vci.issuer.flood_limits` so that the configuration needs only this data."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import attrs

from oid4vci.errors import UsageError
from oid4vci.issuer.client_address import ForwardedHeader, IpNetwork, trusted_networks

__all__ = ["DEFAULT_QUOTAS", "RATE_LIMITED_ENDPOINTS", "FloodLimits", "RateLimit"]

#: The endpoints that answer anybody and are rate limited by default.
RATE_LIMITED_ENDPOINTS: tuple[str, ...] = ("nonce", "offer_template", "par", "authorize", "token")

#: Entries per window of each purpose: at most 2 × 5,000 live entries each, 30,000 in all,
#: under a third of a default ``MemoryStore(max_entries=100_000)``.
DEFAULT_QUOTAS: Mapping[str, int] = {
    "offer_template": 5_000,
    "par": 5_000,
    "authorization_request": 5_000,
}


def _positive_rate(_: object, __: attrs.Attribute[float], value: float) -> None:
    if not math.isfinite(value) or value <= 0:
        raise UsageError("rate must be a positive number of requests per second")


def _positive_burst(_: object, __: attrs.Attribute[int], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError("burst must be an integer of at least 1")


def _endpoints(value: Iterable[str]) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value)
    for item in items:
        if item not in RATE_LIMITED_ENDPOINTS:
            raise UsageError(
                f"cannot rate limit {item!r}: choose from {', '.join(RATE_LIMITED_ENDPOINTS)}"
            )
    return items


@attrs.frozen(kw_only=True)
class RateLimit:
    """A token bucket per client address and endpoint: ``burst`` requests at once, then
    ``rate`` per second."""

    rate: float = attrs.field(default=10.0, converter=float, validator=_positive_rate)
    burst: int = attrs.field(default=40, validator=_positive_burst)
    endpoints: tuple[str, ...] = attrs.field(default=RATE_LIMITED_ENDPOINTS, converter=_endpoints)


def _quotas(value: Mapping[str, int]) -> Mapping[str, int]:
    out: dict[str, int] = {}
    for purpose, limit in dict(value).items():
        if purpose not in DEFAULT_QUOTAS:
            raise UsageError(
                f"no quota purpose {purpose!r}: choose from {', '.join(DEFAULT_QUOTAS)}"
            )
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise UsageError("a quota must be an integer of at least 1")
        out[purpose] = limit
    return out


def _networks(value: Iterable[str] | str) -> tuple[IpNetwork, ...]:
    return trusted_networks(value)


def _header(_: object, __: attrs.Attribute[str], value: str) -> None:
    if value not in ("x-forwarded-for", "forwarded"):
        raise UsageError("forwarded_header must be 'x-forwarded-for' or 'forwarded'")


@attrs.frozen(kw_only=True)
class FloodLimits:
    """The issuer's limits on unauthenticated requests (``IssuerConfig.flood_limits``).

    ``rate_limit``: the per-client token bucket, ``None`` (the default) for none. It is off by
    default because behind a reverse proxy every client has the proxy's address until
    ``trusted_proxies`` names it: a shared bucket would let one flooder lock everybody out.
    ``oid4vci serve`` turns it on. ``trusted_proxies``: addresses or networks whose
    ``forwarded_header`` (``"x-forwarded-for"`` or RFC 7239 ``"forwarded"``) is believed.
    ``quotas``: entries per window by purpose (:data:`~oid4vci.issuer.flood_limits.QUOTA_PURPOSES`, the keys of :data:`DEFAULT_QUOTAS`); a purpose left out
    has no quota.
    """

    rate_limit: RateLimit | None = None
    trusted_proxies: tuple[IpNetwork, ...] = attrs.field(default=(), converter=_networks)
    forwarded_header: ForwardedHeader = attrs.field(default="x-forwarded-for", validator=_header)
    quotas: Mapping[str, int] = attrs.field(factory=lambda: dict(DEFAULT_QUOTAS), converter=_quotas)
