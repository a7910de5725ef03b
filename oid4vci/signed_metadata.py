"""Signed Credential Issuer metadata, both roles (pure: no I/O).

Two forms, by spec version:

* OID4VCI 1.0 §12.2.3: the whole metadata response is a JWT (media type ``application/jwt``,
  asked for with ``Accept: application/jwt``): header ``typ`` ``openidvci-issuer-metadata+jwt``,
  an asymmetric ``alg`` and the signer's chain in ``x5c`` (HAIP 1.0 §4.1: without the trust
  anchor, the signer not self-signed); payload ``sub`` (= the credential issuer), ``iat``,
  optional ``iss`` / ``exp``, and every metadata parameter as a top-level claim.
* Draft 13 §11.2.3 (and the same member in Drafts 14 and 15): the JSON document carries a ``signed_metadata`` member, a
  JWT with ``iat``, ``iss``, ``sub`` (= the credential issuer) and metadata parameters as
  claims, which take precedence over the plain ones; ``signed_metadata`` never appears inside.

:func:`create_signed_metadata` signs a document; :func:`verify_signed_metadata` checks one
(chain to the wallet's roots, signature, ``typ`` for 1.0, ``sub``, ``iat`` / ``exp``) and returns
the metadata parameters; :func:`apply_signed_metadata` merges them over the plain document.
Refusals raise :class:`~oid4vci.errors.SignedMetadataError`.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from oid4vci._json import finite_number
from oid4vci.errors import JoseError, SignedMetadataError
from oid4vci.jose import Signer, create_jws, decode_jws, verify_jws
from oid4vci.x509 import verify_x5c_chain, x5c_entry_is_self_signed

__all__ = [
    "SIGNED_METADATA_MEDIA_TYPE",
    "SIGNED_METADATA_TYP",
    "apply_signed_metadata",
    "create_signed_metadata",
    "verify_signed_metadata",
]

#: ``typ`` of a 1.0 signed metadata JWT (OID4VCI 1.0 §12.2.3).
SIGNED_METADATA_TYP: Final = "openidvci-issuer-metadata+jwt"
#: The media type of a signed metadata response (OID4VCI 1.0 §12.2.2).
SIGNED_METADATA_MEDIA_TYPE: Final = "application/jwt"
#: JWT claims that are not metadata parameters.
_JWT_CLAIMS = frozenset({"iss", "sub", "iat", "exp", "nbf", "jti", "aud"})
_ALGORITHMS = ("ES256", "ES384", "ES512", "EdDSA", "PS256", "RS256")


def _x5c(chain: Sequence[x509.Certificate]) -> list[str]:
    return [
        base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode() for cert in chain
    ]


async def create_signed_metadata(
    document: Mapping[str, Any],
    *,
    signer: Signer,
    chain: Sequence[x509.Certificate],
    credential_issuer: str,
    lifetime: int,
    typed: bool = True,
    clock: Callable[[], float] = time.time,
) -> str:
    """The signed form of ``document``: a JWT with ``x5c`` = ``chain`` (leaf first, no trust
    anchor), ``iss`` = ``sub`` = ``credential_issuer``, ``iat`` and ``exp`` = ``iat`` +
    ``lifetime``. ``typed``: the 1.0 ``typ`` header (the drafts define none)."""
    now = int(clock())
    claims = {k: v for k, v in document.items() if k != "signed_metadata"}
    claims.update(
        {"iss": credential_issuer, "sub": credential_issuer, "iat": now, "exp": now + lifetime}
    )
    header: dict[str, Any] = {"x5c": _x5c(chain)}
    if typed:
        header["typ"] = SIGNED_METADATA_TYP
    return await create_jws(signer, claims, header)


def verify_signed_metadata(
    token: str,
    *,
    credential_issuer: str,
    trust_anchors: Sequence[x509.Certificate],
    typed: bool = True,
    algorithms: Collection[str] = _ALGORITHMS,
    clock_skew: float = 60.0,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Verify signed metadata and return its metadata parameters (JWT claims removed).

    ``typed`` demands the 1.0 ``typ``; without it (the Draft 13–15 member) ``iss`` is required. The ``x5c`` chain must lead to ``trust_anchors`` and
    its leaf must not be self-signed (HAIP 1.0 §4.1); ``sub`` must be ``credential_issuer``
    (string-identical), ``iat`` not in the future, ``exp`` (when present) not past, each within
    ``clock_skew``; ``signed_metadata`` must not be a claim. Raises
    :class:`~oid4vci.errors.SignedMetadataError`.
    """
    try:
        decoded = decode_jws(token)
    except JoseError as exc:
        raise SignedMetadataError(f"signed metadata is malformed ({exc})") from None
    header, claims = decoded.header, decoded.payload
    if typed and header.get("typ") != SIGNED_METADATA_TYP:
        raise SignedMetadataError(f"signed metadata typ must be {SIGNED_METADATA_TYP}")
    x5c = header.get("x5c")
    if not isinstance(x5c, list) or not x5c:
        raise SignedMetadataError("signed metadata has no x5c chain")
    if x5c_entry_is_self_signed(x5c[0]):
        raise SignedMetadataError("the metadata signer's certificate is self-signed")
    try:
        jwk = verify_x5c_chain(x5c, trust_anchors=trust_anchors, clock=clock)
        verify_jws(decoded, jwk, algorithms=algorithms)
    except JoseError as exc:
        raise SignedMetadataError(f"signed metadata refused ({exc})") from None
    if claims.get("sub") != credential_issuer:
        raise SignedMetadataError("signed metadata sub is not the credential issuer")
    iss = claims.get("iss")
    if (iss is not None or not typed) and not isinstance(iss, str):
        # iss: optional in OID4VCI 1.0 §12.2.3, required by Draft 13 §11.2.3.
        raise SignedMetadataError("signed metadata iss must be a string")
    now = clock()
    iat = finite_number(claims.get("iat"))
    if iat is None or iat > now + clock_skew:
        raise SignedMetadataError("signed metadata iat is missing or in the future")
    exp = claims.get("exp")
    if exp is not None:
        expires = finite_number(exp)
        if expires is None:
            raise SignedMetadataError("signed metadata exp must be a NumericDate")
        if expires + clock_skew <= now:
            raise SignedMetadataError("signed metadata expired")
    if "signed_metadata" in claims:
        raise SignedMetadataError("signed_metadata must not be a claim of itself")
    return {k: v for k, v in claims.items() if k not in _JWT_CLAIMS}


def apply_signed_metadata(document: Mapping[str, Any], signed: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with the signed values over the plain ones, ``signed_metadata`` removed
    (Draft 13 §11.2.3: signed values take precedence)."""
    merged = {k: v for k, v in document.items() if k != "signed_metadata"}
    merged.update(signed)
    return merged
