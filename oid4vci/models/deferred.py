"""Deferred Credential endpoint request (the response is a
:class:`~oid4vci.models.credential.CredentialResponse`)."""

from __future__ import annotations

from typing import Any

import attrs

from oid4vci._wire import structure, unstructure, wire_model

__all__ = [
    "DeferredCredentialRequest",
    "deferred_credential_request_to_json",
    "parse_deferred_credential_request_json",
]


@wire_model()
@attrs.frozen(kw_only=True)
class DeferredCredentialRequest:
    """``{"transaction_id": ...}`` (+ optional ``credential_response_encryption`` in 1.0)."""

    transaction_id: str
    credential_response_encryption: dict[str, Any] | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)


def parse_deferred_credential_request_json(data: Any) -> DeferredCredentialRequest:
    """Read a deferred credential request body; raises :class:`~oid4vci.errors.WireFormatError`."""
    return structure(data, DeferredCredentialRequest)


def deferred_credential_request_to_json(req: DeferredCredentialRequest) -> dict[str, Any]:
    """The deferred credential request as a JSON-ready dict."""
    out: dict[str, Any] = unstructure(req)
    return out
