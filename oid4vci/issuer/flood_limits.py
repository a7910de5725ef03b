"""What unauthenticated requests may cost the issuer: per-client rate limits and store quotas.

Two limits, both kept in the :class:`~oid4vci.issuer.store.Store` so that every worker sharing
a :class:`~oid4vci.stores.redis.RedisStore` enforces them together:

* **Rate limits** (:class:`RateLimit`): a token bucket per client address and endpoint
  (``rate:<endpoint>:<address>``, :func:`~oid4vci.issuer.store.take_token`) in front of the
  endpoints that answer anybody: ``nonce``, ``offer_template``, ``par``, ``authorize`` and
  ``token``. Over the limit the issuer answers 429 with ``Retry-After`` (whole seconds) and the
  OAuth error body ``{"error": "temporarily_unavailable", ...}`` (RFC 6749 §4.1.2.1, §5.2 shape;
  an HTML page at the authorization endpoint). The address is the TCP peer, or the client a
  configured trusted proxy names (:mod:`oid4vci.issuer.client_address`). Requests without a
  known address (the in-memory transport) are not rate limited.
* **Quotas** (:data:`DEFAULT_QUOTAS`): the entries one kind of unauthenticated request may add
  to the store, so a flood of one kind cannot take the room the others need: codes and tokens
  of wallets already in a flow always have room. Each quota is a fixed-window counter
  (``quota:<purpose>``, ``Store.increment`` with the purpose's TTL as the window), so a purpose
  holds at most twice its quota of live entries. Past it,
  :class:`~oid4vci.errors.QuotaExceededError` (503 ``temporarily_unavailable`` with
  ``Retry-After``).

=========================  ===================================================  ===============
quota purpose              what it bounds                                       window
=========================  ===================================================  ===============
``offer_template``         offers (pre-authorized codes, ``issuer_state``)      ``pre_authorized
                           minted by fetching a reusable offer template         _code_ttl``
``par``                    pushed authorization requests (``par:``, and the     ``par_ttl``
                           DPoP ``jti`` of a PAR proof)
``authorization_request``  pending logins (``authz_pending:``)                  ``pending_
                                                                                authorization
                                                                                _ttl``
=========================  ===================================================  ===============

Every refusal is counted and logged by :class:`~oid4vci.issuer.refusals.Refusals`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

import attrs

from oid4vci.errors import QuotaExceededError, StoreError, UsageError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import store_keys
from oid4vci.issuer.client_address import (
    ForwardedHeader,
    IpNetwork,
    client_key,
    trusted_networks,
)
from oid4vci.issuer.refusals import reason_of
from oid4vci.issuer.responses import temporarily_unavailable, too_many_requests
from oid4vci.issuer.store import take_token

if TYPE_CHECKING:
    from oid4vci.issuer.config import IssuerConfig

__all__ = [
    "DEFAULT_QUOTAS",
    "QUOTA_PURPOSES",
    "RATE_LIMITED_ENDPOINTS",
    "FloodLimits",
    "RateLimit",
    "claim_room",
    "rate_limit_endpoint",
    "rate_limit_wait",
    "rate_limited",
    "refused",
]

#: The endpoints that answer anybody and are rate limited by default.
RATE_LIMITED_ENDPOINTS: tuple[str, ...] = ("nonce", "offer_template", "par", "authorize", "token")

#: Each quota purpose and the TTL of what it bounds (its counting window).
QUOTA_PURPOSES: Mapping[str, Callable[[IssuerConfig], float]] = {
    "offer_template": lambda c: float(c.pre_authorized_code_ttl),
    "par": lambda c: float(c.par_ttl),
    "authorization_request": lambda c: float(c.pending_authorization_ttl),
}

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
        if purpose not in QUOTA_PURPOSES:
            raise UsageError(
                f"no quota purpose {purpose!r}: choose from {', '.join(QUOTA_PURPOSES)}"
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
    ``quotas``: entries per window by purpose (:data:`QUOTA_PURPOSES`); a purpose left out
    has no quota.
    """

    rate_limit: RateLimit | None = None
    trusted_proxies: tuple[IpNetwork, ...] = attrs.field(default=(), converter=_networks)
    forwarded_header: ForwardedHeader = attrs.field(default="x-forwarded-for", validator=_header)
    quotas: Mapping[str, int] = attrs.field(factory=lambda: dict(DEFAULT_QUOTAS), converter=_quotas)


def rate_limit_endpoint(route: str, path: str) -> str:
    """The rate-limit name of a request to ``route``: fetching a template is ``offer_template``."""
    if route == "offer" and "/offers/templates/" in path:
        return "offer_template"
    return route


async def rate_limit_wait(request: HttpRequest, config: IssuerConfig, endpoint: str) -> float:
    """Take a token for ``request`` at ``endpoint``: ``0.0`` when allowed, else seconds to wait.

    Allowed without a store operation when rate limiting is off, the endpoint is not limited
    or the client address is unknown.
    """
    limits = config.flood_limits
    rate = limits.rate_limit
    if rate is None or endpoint not in rate.endpoints:
        return 0.0
    address = client_key(request, limits.trusted_proxies, header=limits.forwarded_header)
    if address is None:
        return 0.0
    key = store_keys.rate_key(endpoint, address)
    return await take_token(config.store, key, rate.rate, rate.burst)


def rate_limited(
    config: IssuerConfig, endpoint: str, wait: float, *, html: bool = False
) -> HttpResponse:
    """Count the refusal and answer 429 with ``Retry-After`` (whole seconds, at least 1)."""
    config.refusals.record("rate_limited", endpoint)
    return too_many_requests(max(1, math.ceil(wait)), html=html)


async def claim_room(config: IssuerConfig, purpose: str) -> None:
    """Count one new entry of ``purpose``; :class:`QuotaExceededError` past its quota.

    Call it before writing what the purpose bounds. A purpose without a quota costs nothing.
    """
    limit = config.flood_limits.quotas.get(purpose)
    if limit is None:
        return
    window = QUOTA_PURPOSES[purpose](config)
    if await config.store.increment(store_keys.quota_key(purpose), window) > limit:
        raise QuotaExceededError(purpose)


def refused(
    exc: StoreError, config: IssuerConfig, endpoint: str, *, html: bool = False
) -> HttpResponse:
    """Count a store refusal (quota, full, unavailable) and answer 503 with ``Retry-After``."""
    config.refusals.record(reason_of(exc), endpoint)
    return temporarily_unavailable(html=html)
