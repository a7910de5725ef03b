"""OAuth 2.0 / OID4VCI error response bodies."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

from oid4vci._wire import loads_json, structure, unstructure, wire_model
from oid4vci.errors import ProtocolError
from oid4vci.versions import SpecVersion

__all__ = ["ErrorResponse", "error_response_to_json", "parse_error_response"]

E = TypeVar("E", bound=ProtocolError)


@wire_model()
@attrs.frozen(kw_only=True)
class ErrorResponse:
    """An error body: ``error`` plus optional description, URI, and the Draft 13/14
    ``c_nonce``/``c_nonce_expires_in`` and ``interval`` (``issuance_pending``/``slow_down``)."""

    error: str
    error_description: str | None = None
    error_uri: str | None = None
    c_nonce: str | None = attrs.field(default=None, repr=False)
    c_nonce_expires_in: int | None = None
    interval: int | None = None
    extra: dict[str, Any] = attrs.field(factory=dict)

    def to_exception(
        self, cls: type[E], *, status: int | None = None, dpop_nonce: str | None = None
    ) -> E:
        """The :class:`~oid4vci.errors.ProtocolError` subclass ``cls`` carrying this error."""
        return cls(
            self.error,
            self.error_description,
            status=status,
            c_nonce=self.c_nonce,
            c_nonce_expires_in=self.c_nonce_expires_in,
            dpop_nonce=dpop_nonce,
            interval=self.interval,
        )

    @classmethod
    def from_exception(cls, err: ProtocolError) -> ErrorResponse:
        """The body for a :class:`~oid4vci.errors.ProtocolError`."""
        return cls(
            error=err.error,
            error_description=err.error_description,
            c_nonce=err.c_nonce,
            c_nonce_expires_in=err.c_nonce_expires_in,
            interval=err.interval,
        )


def parse_error_response(data: Any) -> ErrorResponse:
    """Read an error body (a dict, or JSON text/bytes); raises
    :class:`~oid4vci.errors.WireFormatError` (also for malformed JSON text)."""
    if isinstance(data, str | bytes):
        data = loads_json(data)
    return structure(data, ErrorResponse)


def error_response_to_json(
    err: ErrorResponse, version: SpecVersion | None = None
) -> dict[str, Any]:
    """The error body as a JSON-ready dict; ``c_nonce*`` left out for Draft 15 and 1.0."""
    out: dict[str, Any] = unstructure(err)
    if version is not None and not version.c_nonce_in_responses:
        out.pop("c_nonce", None)
        out.pop("c_nonce_expires_in", None)
    return out
