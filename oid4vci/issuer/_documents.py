"""Metadata responses serialised once per configuration.

The Credential Issuer metadata (OID4VCI 1.0 §12.2), the AS metadata (RFC 8414 §3) and the JWT
VC Issuer metadata (draft-ietf-oauth-sd-jwt-vc-11 §5) are pure functions of the frozen
:class:`~oid4vci.issuer.config.IssuerConfig`, so the answer built for one configuration
object is kept and sent again (:class:`~oid4vci.http.HttpResponse` is immutable). A new
configuration object is a new entry; entries go with their configuration (weak references)
and at most :data:`MAX_ENTRIES` are kept (tenants each have their own configuration).
``validator`` guards what a configuration holds but may change behind it (a signer's keys):
the entry is used only while the validator's value is unchanged.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

from oid4vci.http import HttpResponse

__all__ = ["MAX_ENTRIES", "cached_document", "cached_document_async", "cached_value"]

_T = TypeVar("_T")

#: Documents kept (configurations × document kinds); the oldest goes first.
MAX_ENTRIES = 512

_Entry = tuple["weakref.ref[Any]", Hashable, Any]
_cache: OrderedDict[tuple[int, str], _Entry] = OrderedDict()


def cached_document(
    config: Any,
    kind: str,
    build: Callable[[], HttpResponse],
    validator: Hashable = None,
) -> HttpResponse:
    """The response ``build()`` gave for ``(config, kind)``, built on the first call."""
    return cached_value(config, kind, build, validator)


def cached_value(
    config: Any,
    kind: str,
    build: Callable[[], _T],
    validator: Hashable = None,
) -> _T:
    """What ``build()`` gave for ``(config, kind)`` (an immutable value), built on the first
    call; :func:`cached_document` for responses."""
    key = (id(config), kind)
    entry = _cache.get(key)
    if entry is not None and entry[0]() is config and entry[1] == validator:
        value: _T = entry[2]
        return value
    value = build()
    _keep(config, key, validator, value)
    return value


async def cached_document_async(
    config: Any,
    kind: str,
    build: Callable[[], Awaitable[HttpResponse]],
    validator: Hashable = None,
) -> HttpResponse:
    """:func:`cached_document` for a ``build`` that awaits (a signer signs the document)."""
    key = (id(config), kind)
    entry = _cache.get(key)
    if entry is not None and entry[0]() is config and entry[1] == validator:
        response: HttpResponse = entry[2]
        return response
    response = await build()
    _keep(config, key, validator, response)
    return response


def _keep(config: Any, key: tuple[int, str], validator: Hashable, value: Any) -> None:
    _cache[key] = (weakref.ref(config), validator, value)
    _cache.move_to_end(key)
    while len(_cache) > MAX_ENTRIES:
        _cache.popitem(last=False)


def clear() -> None:
    """Forget every cached document."""
    _cache.clear()
