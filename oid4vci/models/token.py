"""Token endpoint success response (RFC 6749 §5.1 with the OID4VCI members)."""

from __future__ import annotations

from typing import Any

import attrs

from oid4vci._wire import structure, unstructure, wire_model
from oid4vci.models.authorization import AuthorizationDetail
from oid4vci.versions import SpecVersion

__all__ = ["TokenResponse", "parse_token_response", "token_response_to_json"]


@wire_model()
@attrs.frozen(kw_only=True)
class TokenResponse:
    """A token response. ``token_type`` is stored as given; compare it case-insensitively
    (see :attr:`is_dpop`). The access token, refresh token and ``c_nonce`` never appear in
    ``repr``. ``c_nonce``/``c_nonce_expires_in`` exist in Draft 13/14 only.
    """

    access_token: str = attrs.field(repr=False)
    token_type: str
    expires_in: int | None = None
    refresh_token: str | None = attrs.field(default=None, repr=False)
    scope: str | None = None
    c_nonce: str | None = attrs.field(default=None, repr=False)
    c_nonce_expires_in: int | None = None
    authorization_details: tuple[AuthorizationDetail, ...] | None = None
    extra: dict[str, Any] = attrs.field(factory=dict, repr=False)

    @property
    def is_dpop(self) -> bool:
        """True when ``token_type`` is ``DPoP`` (case-insensitive)."""
        return self.token_type.lower() == "dpop"

    @property
    def is_bearer(self) -> bool:
        """True when ``token_type`` is ``Bearer`` (case-insensitive)."""
        return self.token_type.lower() == "bearer"

    def credential_identifiers(self, configuration_id: str | None = None) -> tuple[str, ...]:
        """All ``credential_identifiers`` of the returned authorization details (optionally
        only those of ``configuration_id``)."""
        out: list[str] = []
        for d in self.authorization_details or ():
            if configuration_id is not None and d.credential_configuration_id != configuration_id:
                continue
            out.extend(d.credential_identifiers or ())
        return tuple(out)


def parse_token_response(data: Any) -> TokenResponse:
    """Read a token response body; raises :class:`~oid4vci.errors.WireFormatError`."""
    return structure(data, TokenResponse)


def token_response_to_json(
    resp: TokenResponse, version: SpecVersion | None = None
) -> dict[str, Any]:
    """The token response as a JSON-ready dict; ``c_nonce*`` left out for Draft 15 and 1.0."""
    out: dict[str, Any] = unstructure(resp)
    if version is not None and not version.c_nonce_in_responses:
        out.pop("c_nonce", None)
        out.pop("c_nonce_expires_in", None)
    return out
