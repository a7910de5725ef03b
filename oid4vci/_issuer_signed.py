"""Checks shared by every issuer-signed credential JWT (SD-JWT VC, ``jwt_vc_json``).

Each function takes ``fail(reason, message) -> Exception`` so the caller raises its own
:class:`~oid4vci.errors.CredentialVerificationError` subclass; the reason strings are the
ones :class:`oid4vci.sdjwt.SdJwtReason` names.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from ._json import finite_number
from .errors import ArgumentTypeError, JoseError
from .jose import ASYMMETRIC_ALGORITHMS, DecodedJws, verify_jws

__all__ = ["Fail", "check_validity", "verify_issuer_signature"]

Fail = Callable[[str, str], Exception]
"""``fail(reason, message)`` builds the exception the caller raises."""


def _candidate_keys(
    header: Mapping[str, Any], issuer_keys: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    if type(issuer_keys) is not list and isinstance(issuer_keys, Mapping):
        raise ArgumentTypeError("issuer_keys must be a sequence of JWKs, not a single JWK")
    kid = header.get("kid")
    if kid is None:
        return list(issuer_keys)
    # Keys without a ``kid`` stay candidates: published examples sign with a kid their JWK lacks.
    return [k for k in issuer_keys if k.get("kid") == kid or "kid" not in k]


def verify_issuer_signature(
    jws: DecodedJws,
    issuer_keys: Sequence[Mapping[str, Any]],
    algorithms: Collection[str],
    fail: Fail,
) -> None:
    """The JWS verifies under an allow-listed asymmetric ``alg`` with one of ``issuer_keys``
    (those whose ``kid`` matches the header's, when it has one)."""
    alg = jws.header["alg"]
    if alg not in algorithms or alg not in ASYMMETRIC_ALGORITHMS:
        raise fail("alg not allowed", "the credential uses an algorithm that is not allowed")
    candidates = _candidate_keys(jws.header, issuer_keys)
    if not candidates:
        raise fail("unknown key", "no issuer key matches the header 'kid'")
    for key in candidates:
        try:
            verify_jws(jws, key, algorithms=algorithms)
        except JoseError:
            continue
        return
    raise fail("signature", "the issuer signature does not verify")


def _numeric_date(claims: Mapping[str, Any], name: str, fail: Fail) -> float | None:
    if name not in claims:
        return None
    number = finite_number(claims[name])
    if number is None:  # NaN would pass every comparison below
        raise fail("claim type", f"{name!r} must be a NumericDate")
    return number


def check_validity(claims: Mapping[str, Any], now: float, leeway: float, fail: Fail) -> None:
    """``exp``, ``nbf`` and ``iat`` (when present) hold at ``now`` with ``leeway`` seconds."""
    exp = _numeric_date(claims, "exp", fail)
    if exp is not None and now - leeway >= exp:
        raise fail("expired", "the credential has expired")
    nbf = _numeric_date(claims, "nbf", fail)
    if nbf is not None and now + leeway < nbf:
        raise fail("not yet valid", "the credential is not valid yet ('nbf')")
    iat = _numeric_date(claims, "iat", fail)
    if iat is not None and now + leeway < iat:
        raise fail("issued in future", "'iat' is in the future")
