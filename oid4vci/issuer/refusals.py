"""Requests the issuer refused to protect itself: counted on a metrics hook, logged once a minute.

Every refusal (a rate-limited client, a purpose at its quota, a full or unreachable store) is
counted on :class:`MetricsHook` ``increment(name, labels)`` as::

    oid4vci_refusals_total{reason="rate_limited", endpoint="nonce"}

=====================  ==========================================================================
``reason``             when
=====================  ==========================================================================
``rate_limited``       a client address over its token bucket (429 with ``Retry-After``)
``quota``              a purpose at its store quota (:class:`~oid4vci.errors.QuotaExceededError`,
                       503 with ``Retry-After``)
``store_full``         the store refused a write (:class:`~oid4vci.errors.StoreFullError`, 503)
``store_unavailable``  the store did not answer (:class:`~oid4vci.errors.StoreUnavailableError`,
                       503)
=====================  ==========================================================================

``endpoint`` is the route (``nonce``, ``offer_template``, ``par``, ``authorize``, ``token``,
``credential`` ...). :class:`Counters` is the default hook: it keeps the counts in memory and
renders them in the Prometheus text format (:meth:`Counters.render`); an application passes its
own hook (a Prometheus client, StatsD ...) as ``Refusals(metrics=...)``.

While refusals happen, :class:`Refusals` logs one WARNING per reason per ``warning_interval``
seconds (60 by default) on the ``oid4vci.issuer`` logger, with the number refused since the
last line, never one line per request (a flood must not flood the log too).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from typing import Literal, Protocol, runtime_checkable

from oid4vci.errors import (
    QuotaExceededError,
    StoreError,
    StoreFullError,
    StoreUnavailableError,
    UsageError,
)

__all__ = [
    "REFUSALS_METRIC",
    "Counters",
    "MetricsHook",
    "RefusalReason",
    "Refusals",
    "reason_of",
]

logger = logging.getLogger("oid4vci.issuer")

#: The counter every refusal increments.
REFUSALS_METRIC = "oid4vci_refusals_total"

RefusalReason = Literal["rate_limited", "quota", "store_full", "store_unavailable"]


@runtime_checkable
class MetricsHook(Protocol):
    """Where the issuer's counters go: ``increment(name, labels)`` adds one to a counter.

    Called on the request path: keep it cheap and never let it raise.
    """

    def increment(self, name: str, labels: Mapping[str, str]) -> None:
        """Add one to counter ``name`` with ``labels``."""
        ...


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Counters:
    """The default :class:`MetricsHook`: counters in memory, rendered as Prometheus text."""

    def __init__(self) -> None:
        self._values: dict[tuple[str, tuple[tuple[str, str], ...]], int] = {}

    def __repr__(self) -> str:
        return f"Counters({len(self._values)} series)"

    def increment(self, name: str, labels: Mapping[str, str]) -> None:
        """Add one to ``name{labels}``."""
        key = (name, tuple(sorted(labels.items())))
        self._values[key] = self._values.get(key, 0) + 1

    def value(self, name: str, **labels: str) -> int:
        """The count of ``name`` with exactly ``labels`` (0 when never incremented)."""
        return self._values.get((name, tuple(sorted(labels.items()))), 0)

    def total(self, name: str, **labels: str) -> int:
        """The sum of every series of ``name`` whose labels include ``labels``."""
        wanted = set(labels.items())
        return sum(
            count
            for (series, items), count in self._values.items()
            if series == name and wanted <= set(items)
        )

    def render(self) -> str:
        """Every counter in the Prometheus text exposition format (``# TYPE … counter``)."""
        lines: list[str] = []
        for name in sorted({series for series, _ in self._values}):
            lines.append(f"# TYPE {name} counter")
            for (series, items), count in sorted(self._values.items()):
                if series != name:
                    continue
                text = ",".join(f'{k}="{_escape(v)}"' for k, v in items)
                lines.append(f"{name}{{{text}}} {count}" if text else f"{name} {count}")
        return "\n".join(lines) + ("\n" if lines else "")


def reason_of(exc: StoreError) -> RefusalReason:
    """The refusal reason of a store error."""
    if isinstance(exc, QuotaExceededError):
        return "quota"
    if isinstance(exc, StoreFullError):
        return "store_full"
    if isinstance(exc, StoreUnavailableError):
        return "store_unavailable"
    return "store_full"


class Refusals:
    """Counts refusals on ``metrics`` and logs one WARNING per reason per ``warning_interval``.

    One instance per deployment (it is :attr:`IssuerConfig.refusals
    <oid4vci.issuer.config.IssuerConfig>`, shared by every tenant's configuration). ``clock``
    (seconds) decides when the next WARNING may be logged; tests pass a fake one.
    """

    def __init__(
        self,
        metrics: MetricsHook | None = None,
        *,
        warning_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not math.isfinite(warning_interval) or warning_interval <= 0:
            raise UsageError("warning_interval must be a positive number of seconds")
        self.metrics: MetricsHook = metrics if metrics is not None else Counters()
        self.warning_interval = float(warning_interval)
        self._clock = clock
        # reason -> (time of the last WARNING, refusals since it)
        self._last: dict[str, float] = {}
        self._since: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Refusals(metrics={self.metrics!r}, warning_interval={self.warning_interval:g})"

    def record(self, reason: RefusalReason, endpoint: str) -> None:
        """Count one refusal; log a WARNING when none was logged for ``reason`` lately."""
        try:
            self.metrics.increment(REFUSALS_METRIC, {"reason": reason, "endpoint": endpoint})
        except Exception as exc:  # a broken exporter must not turn refusals into 500s
            logger.error("metrics hook failed with %s", type(exc).__name__)
        count = self._since.get(reason, 0) + 1
        now = self._clock()
        last = self._last.get(reason)
        if last is not None and now - last < self.warning_interval:
            self._since[reason] = count
            return
        self._last[reason] = now
        self._since[reason] = 0
        logger.warning(
            "issuer refusing requests: %s (%d since the last warning, latest at %s endpoint); "
            "see the %s metric",
            reason,
            count,
            endpoint,
            REFUSALS_METRIC,
        )
