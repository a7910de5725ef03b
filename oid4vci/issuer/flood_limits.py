"""What unauthenticated requests may cost the issuer: per-client rate limits and store quotas.

Two limits, both kept in the :class:`~oid4vci.issuer.store.Store` so that every worker sharing
a :class:`~oid4vci.stores.redis.RedisStore` enforces them together, and in the deployment's whole
store (:func:`~oid4vci.issuer.store.deployment_store`), not a tenant's view of it: the tenants of
one deployment share one store, so a client has one bucket and a purpose one quota across all of
them (a flood spread over many tenant sub-domains counts once, and the bound below holds):

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
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from oid4vci.errors import QuotaExceededError, StoreError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import store_keys
from oid4vci.issuer.client_address import (
    client_key,
)
from oid4vci.issuer.flood_settings import (
    DEFAULT_QUOTAS,
    RATE_LIMITED_ENDPOINTS,
    FloodLimits,
    RateLimit,
)
from oid4vci.issuer.refusals import reason_of
from oid4vci.issuer.responses import temporarily_unavailable, too_many_requests
from oid4vci.issuer.store import deployment_store, take_token

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

#: Each quota purpose and the TTL of what it bounds (its counting window).
QUOTA_PURPOSES: Mapping[str, Callable[[IssuerConfig], float]] = {
    "offer_template": lambda c: float(c.pre_authorized_code_ttl),
    "par": lambda c: float(c.par_ttl),
    "authorization_request": lambda c: float(c.pending_authorization_ttl),
}


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
    return await take_token(deployment_store(config.store), key, rate.rate, rate.burst)


def rate_limited(
    endpoint: str, config: IssuerConfig, wait: float, *, html: bool = False
) -> HttpResponse:
    """Count the refusal and answer 429 with ``Retry-After`` (whole seconds, at least 1)."""
    config.refusals.record("rate_limited", endpoint)
    return too_many_requests(max(1, math.ceil(wait)), html=html)


async def claim_room(purpose: str, config: IssuerConfig) -> None:
    """Count one new entry of ``purpose``; :class:`QuotaExceededError` past its quota.

    Call it before writing what the purpose bounds. A purpose without a quota costs nothing.
    """
    limit = config.flood_limits.quotas.get(purpose)
    if limit is None:
        return
    window = QUOTA_PURPOSES[purpose](config)
    store = deployment_store(config.store)
    if await store.increment(store_keys.quota_key(purpose), window) > limit:
        raise QuotaExceededError(purpose)


def refused(
    exc: StoreError, config: IssuerConfig, endpoint: str, *, html: bool = False
) -> HttpResponse:
    """Count a store refusal (quota, full, unavailable) and answer 503 with ``Retry-After``."""
    config.refusals.record(reason_of(exc), endpoint)
    return temporarily_unavailable(html=html)
