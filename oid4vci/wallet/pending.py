"""The pending authorization: what a wallet keeps across the browser hop of the code flow.

:meth:`Oid4vciClient.authorize` returns the authorization URL and a
:class:`PendingAuthorization`. The wallet opens the URL, waits for the redirect to its
``redirect_uri`` and then calls :meth:`Oid4vciClient.claim` with the same pending value —
possibly in another process, after :meth:`PendingAuthorization.to_json` /
:meth:`PendingAuthorization.from_json`.

**The JSON is secret.** It holds the PKCE ``code_verifier``, the ``state``, the DPoP private
key (exported on purpose as a private JWK, because the authorization code is bound to it with
``dpop_jkt``) and the latest DPoP nonces. Store it like a password (encrypted at rest, deleted
after use). ``repr`` shows none of these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from oid4vci.errors import StateError
from oid4vci.jose import LocalSigner
from oid4vci.versions import SpecVersion

__all__ = ["PENDING_FORMAT", "PendingAuthorization"]

#: The ``format`` marker written by :meth:`PendingAuthorization.to_json`.
PENDING_FORMAT = "oid4vci-pending-authorization/1"


@attrs.frozen(kw_only=True, repr=False, eq=False)
class PendingAuthorization:
    """An authorization request in flight (code flow).

    Secrets: ``code_verifier``, ``state``, ``dpop_key``, ``dpop_nonces``, ``c_nonce``.
    """

    credential_issuer: str
    configuration_ids: tuple[str, ...]
    spec_version: SpecVersion
    client_id: str
    redirect_uri: str
    code_verifier: str
    state: str
    authorization_server: str
    authorization_endpoint: str
    token_endpoint: str
    issuer_metadata: dict[str, Any]
    authorization_server_metadata: dict[str, Any]
    dpop_key: LocalSigner | None = None
    dpop_nonces: dict[str, str] = attrs.field(factory=dict)
    c_nonce: str | None = None
    issuer_state: str | None = None
    authorization_details: tuple[dict[str, Any], ...] | None = None
    scope: str | None = None
    used_par: bool = False
    created_at: float = 0.0

    @property
    def iss_parameter_supported(self) -> bool:
        """True when the AS announces RFC 9207 ``iss`` in authorization responses."""
        return (
            self.authorization_server_metadata.get("authorization_response_iss_parameter_supported")
            is True
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able form (contains secrets; see the module docstring)."""
        return {
            "format": PENDING_FORMAT,
            "credential_issuer": self.credential_issuer,
            "configuration_ids": list(self.configuration_ids),
            "spec_version": self.spec_version.value,
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "code_verifier": self.code_verifier,
            "state": self.state,
            "authorization_server": self.authorization_server,
            "authorization_endpoint": self.authorization_endpoint,
            "token_endpoint": self.token_endpoint,
            "issuer_metadata": self.issuer_metadata,
            "authorization_server_metadata": self.authorization_server_metadata,
            "dpop_key": self.dpop_key.private_jwk() if self.dpop_key is not None else None,
            "dpop_nonces": dict(self.dpop_nonces),
            "c_nonce": self.c_nonce,
            "issuer_state": self.issuer_state,
            "authorization_details": (
                list(self.authorization_details) if self.authorization_details is not None else None
            ),
            "scope": self.scope,
            "used_par": self.used_par,
            "created_at": self.created_at,
        }

    def to_json(self) -> str:
        """Serialize for a later :meth:`from_json` (the text is secret)."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingAuthorization:
        """Rebuild from :meth:`to_dict` output; :class:`StateError` when it is not one."""
        if not isinstance(data, Mapping) or data.get("format") != PENDING_FORMAT:
            raise StateError("not a pending authorization document")
        try:
            version = SpecVersion(data["spec_version"])
            key_jwk = data.get("dpop_key")
            dpop_key = LocalSigner.from_jwk(key_jwk) if key_jwk is not None else None
            details = data.get("authorization_details")
            return cls(
                credential_issuer=_str(data, "credential_issuer"),
                configuration_ids=tuple(_str_list(data, "configuration_ids")),
                spec_version=version,
                client_id=_str(data, "client_id"),
                redirect_uri=_str(data, "redirect_uri"),
                code_verifier=_str(data, "code_verifier"),
                state=_str(data, "state"),
                authorization_server=_str(data, "authorization_server"),
                authorization_endpoint=_str(data, "authorization_endpoint"),
                token_endpoint=_str(data, "token_endpoint"),
                issuer_metadata=_dict(data, "issuer_metadata"),
                authorization_server_metadata=_dict(data, "authorization_server_metadata"),
                dpop_key=dpop_key,
                dpop_nonces=_str_dict(data, "dpop_nonces"),
                c_nonce=_opt_str(data, "c_nonce"),
                issuer_state=_opt_str(data, "issuer_state"),
                authorization_details=(
                    tuple(_dict_list(data, "authorization_details"))
                    if details is not None
                    else None
                ),
                scope=_opt_str(data, "scope"),
                used_par=_bool(data, "used_par"),
                created_at=float(data.get("created_at") or 0.0),
            )
        except (KeyError, TypeError, ValueError):  # JoseError is a ValueError
            raise StateError("pending authorization document is malformed") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> PendingAuthorization:
        """Rebuild from :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except (UnicodeDecodeError, ValueError):
            raise StateError("pending authorization document is not JSON") from None
        return cls.from_dict(data)

    def __repr__(self) -> str:
        return (
            f"PendingAuthorization(credential_issuer={self.credential_issuer!r}, "
            f"configuration_ids={self.configuration_ids!r}, "
            f"spec_version={self.spec_version.value!r}, used_par={self.used_par})"
        )


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise TypeError(key)
    return value


def _opt_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise TypeError(key)
    return value


def _str_list(data: Mapping[str, Any], key: str) -> list[str]:
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(key)
    return value


def _dict(data: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = data[key]
    if not isinstance(value, dict):
        raise TypeError(key)
    return value


def _str_dict(data: Mapping[str, Any], key: str) -> dict[str, str]:
    value = data.get(key) or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise TypeError(key)
    return dict(value)


def _dict_list(data: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise TypeError(key)
    return value


def _bool(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool):
        raise TypeError(key)
    return value
