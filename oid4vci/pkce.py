"""PKCE (RFC 7636), both roles, plus the random ``state`` and nonce values OAuth flows need.

Only the ``S256`` method is supported: ``plain`` offers no protection against an attacker who
can read the authorization request, so it is refused when building a challenge and never
verifies.

* A wallet calls :func:`generate_code_verifier`, sends :func:`code_challenge` of it with
  ``code_challenge_method=S256`` and later sends the verifier to the token endpoint.
* An authorization server calls :func:`verify_code_challenge` at the token endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

from .errors import ValidationError
from .jose import b64url_encode

__all__ = [
    "UNRESERVED_CHARACTERS",
    "code_challenge",
    "generate_code_verifier",
    "generate_nonce",
    "generate_state",
    "verify_code_challenge",
]

#: RFC 3986 unreserved characters, the alphabet of a ``code_verifier`` (RFC 7636 §4.1).
UNRESERVED_CHARACTERS = string.ascii_letters + string.digits + "-._~"

_MIN_LENGTH = 43
_MAX_LENGTH = 128
_VERIFIER_RE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_SUPPORTED_METHOD = "S256"


def _is_valid_verifier(verifier: object) -> bool:
    return isinstance(verifier, str) and _VERIFIER_RE.fullmatch(verifier) is not None


def generate_code_verifier(length: int = 64) -> str:
    """A fresh ``code_verifier`` of ``length`` (43–128) unreserved characters from :mod:`secrets`.

    Raises :class:`ValidationError` for a length outside 43–128.
    """
    if isinstance(length, bool) or not isinstance(length, int):
        raise ValidationError("code_verifier length must be an integer")
    if not _MIN_LENGTH <= length <= _MAX_LENGTH:
        raise ValidationError("code_verifier length must be between 43 and 128")
    return "".join(secrets.choice(UNRESERVED_CHARACTERS) for _ in range(length))


def code_challenge(verifier: str, method: str = "S256") -> str:
    """The ``code_challenge`` for ``verifier``: ``BASE64URL(SHA256(ASCII(verifier)))``.

    Only ``S256`` is supported; ``plain`` and any other method raise :class:`ValidationError`,
    as does a verifier that is not 43–128 unreserved characters. The message never contains
    the verifier.
    """
    if method != _SUPPORTED_METHOD:
        raise ValidationError("unsupported code_challenge_method (only S256 is allowed)")
    if not _is_valid_verifier(verifier):
        raise ValidationError("code_verifier must be 43-128 characters from [A-Za-z0-9-._~]")
    return b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())


def verify_code_challenge(verifier: str, challenge: str, method: str = "S256") -> bool:
    """True when ``verifier`` matches ``challenge`` under ``method`` (constant-time compare).

    Returns False (never raises) for ``plain`` or unknown methods, a malformed verifier or a
    challenge that is not a string.
    """
    if method != _SUPPORTED_METHOD or not isinstance(challenge, str):
        return False
    if not _is_valid_verifier(verifier):
        return False
    expected = code_challenge(verifier, method)
    return hmac.compare_digest(expected.encode("ascii"), challenge.encode("utf-8"))


def generate_state() -> str:
    """A fresh, unguessable OAuth ``state`` value (256 bits, base64url)."""
    return secrets.token_urlsafe(32)


def generate_nonce() -> str:
    """A fresh, unguessable nonce (256 bits, base64url; at least the 128 bits required)."""
    return secrets.token_urlsafe(32)
