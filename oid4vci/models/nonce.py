"""Nonce endpoint response (Draft 15+): ``{"c_nonce": "..."}``."""

from __future__ import annotations

from typing import Any

import attrs

from oid4vci._wire import structure, unstructure, wire_model

__all__ = ["NonceResponse", "nonce_response_to_json", "parse_nonce_response"]


@wire_model()
@attrs.frozen(kw_only=True)
class NonceResponse:
    """The Nonce Endpoint's body. The nonce is not shown in ``repr``."""

    c_nonce: str = attrs.field(repr=False)
    extra: dict[str, Any] = attrs.field(factory=dict)


def parse_nonce_response(data: Any) -> NonceResponse:
    """Read a nonce response body; raises :class:`~oid4vci.errors.WireFormatError`."""
    return structure(data, NonceResponse)


def nonce_response_to_json(resp: NonceResponse) -> dict[str, Any]:
    """The nonce response as a JSON-ready dict."""
    out: dict[str, Any] = unstructure(resp)
    return out
