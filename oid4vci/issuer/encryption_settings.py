"""The issuer's encryption settings (``IssuerConfig.encryption``; OID4VCI 1.0 §10, §12.2.4):
request-decryption keys and the algorithms accepted, kept apart from the stages of
:mod:`oid4vci.issuer.encryption` so that the configuration needs only this data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from oid4vci.errors import UsageError
from oid4vci.jwe import (
    CONTENT_ENCRYPTION_ALGORITHMS,
    DEFAULT_MAX_PLAINTEXT,
    KEY_AGREEMENT_ALGORITHMS,
    ZIP_ALGORITHMS,
    is_private_jwk,
)

__all__ = ["EncryptionSettings"]

_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def _str_tuple(value: Iterable[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    return tuple(value)


def _private_keys(value: Iterable[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
    if isinstance(value, Mapping):
        value = (value,)
    return tuple(dict(k) for k in value)


def _subset(allowed: frozenset[str], what: str) -> Any:
    def check(_: Any, __: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
        unknown = [v for v in value if v not in allowed]
        if unknown:
            raise UsageError(f"{what}: {', '.join(unknown)} not supported")

    return check


@attrs.frozen(kw_only=True)
class EncryptionSettings:
    """What the issuer decrypts and encrypts (OID4VCI 1.0 §12.2.4).

    ``request_keys``: private JWKs (``kty`` EC or RSA, each with a unique ``kid`` and an
    ``alg`` from :data:`~oid4vci.jwe.KEY_AGREEMENT_ALGORITHMS`); the first ones are published,
    all are accepted (list an old key after the new one while wallets may still use it, and
    set ``published_request_keys`` to the number to publish). No keys: requests cannot be
    encrypted and ``credential_request_encryption`` is not published.
    Response encryption is offered whenever settings are given
    (``credential_response_encryption``).
    """

    request_keys: tuple[dict[str, Any], ...] = attrs.field(
        default=(), converter=_private_keys, repr=False
    )
    published_request_keys: int | None = None
    request_enc_values: tuple[str, ...] = attrs.field(
        default=("A128GCM", "A256GCM"),
        converter=_str_tuple,
        validator=_subset(CONTENT_ENCRYPTION_ALGORITHMS, "request_enc_values"),
    )
    request_zip_values: tuple[str, ...] = attrs.field(
        default=(), converter=_str_tuple, validator=_subset(ZIP_ALGORITHMS, "request_zip_values")
    )
    request_required: bool = False
    response_alg_values: tuple[str, ...] = attrs.field(
        default=("ECDH-ES",),
        converter=_str_tuple,
        validator=_subset(KEY_AGREEMENT_ALGORITHMS, "response_alg_values"),
    )
    response_enc_values: tuple[str, ...] = attrs.field(
        default=("A128GCM", "A256GCM"),
        converter=_str_tuple,
        validator=_subset(CONTENT_ENCRYPTION_ALGORITHMS, "response_enc_values"),
    )
    response_zip_values: tuple[str, ...] = attrs.field(
        default=(), converter=_str_tuple, validator=_subset(ZIP_ALGORITHMS, "response_zip_values")
    )
    response_required: bool = False
    #: Largest decrypted (and inflated) request body accepted, in bytes.
    max_plaintext: int = DEFAULT_MAX_PLAINTEXT

    def __attrs_post_init__(self) -> None:
        kids: set[str] = set()
        for jwk in self.request_keys:
            kid = jwk.get("kid")
            if not isinstance(kid, str) or not kid or kid in kids:
                raise UsageError("every request key needs a unique kid")
            kids.add(kid)
            if not is_private_jwk(jwk) or jwk.get("kty") not in ("EC", "RSA"):
                raise UsageError(f"request key {kid!r} must be a private EC/RSA JWK")
            if jwk.get("alg") not in KEY_AGREEMENT_ALGORITHMS:
                raise UsageError(f"request key {kid!r} needs an alg for JWE")
            if jwk.get("use", "enc") != "enc":
                raise UsageError(f"request key {kid!r} is not for encryption")
        if self.request_required and not self.request_keys:
            raise UsageError("request_required needs request_keys")
        if self.request_keys and not self.request_enc_values:
            raise UsageError("request_enc_values must not be empty")
        if not self.response_alg_values or not self.response_enc_values:
            raise UsageError("response alg and enc values must not be empty")
        if self.max_plaintext < 1024:
            raise UsageError("max_plaintext must be at least 1024 bytes")

    def public_request_keys(self) -> list[dict[str, Any]]:
        """The published request keys: public members with ``kid``, ``alg`` and ``use: enc``."""
        count = self.published_request_keys
        keys = self.request_keys if count is None else self.request_keys[:count]
        out = []
        for jwk in keys:
            public = {k: v for k, v in jwk.items() if k not in _PRIVATE_MEMBERS}
            public["use"] = "enc"
            out.append(public)
        return out
