"""Encrypted credential and deferred credential requests and responses at the issuer
(OID4VCI 1.0 §10; Draft 13 §7.2/§7.3, Draft 14 §7.2, Draft 15 §8.2: response encryption only).

:class:`EncryptionSettings` (``IssuerConfig.encryption``) holds the issuer's request-decryption
keys (private JWKs with ``kid`` and ``alg``; several at once, so keys can rotate), the
algorithms it accepts and the ``encryption_required`` flags. The stages, used by the credential
and deferred credential endpoints between the access token check and the usual parse:

1. :func:`decrypt_request` — with request keys, an ``application/jwt`` body is a compact JWE to one of the issuer's
   keys: it is decrypted (``kid`` picks the key; its ``alg``, the ``enc`` and any ``zip`` must be
   what the metadata lists; the inflated size is capped) and the request continues as the JSON
   it carried. A plain JSON body while requests must be encrypted is refused.
2. :func:`response_encryption` — checks the request's ``credential_response_encryption``
   (1.0: ``{"jwk" (with alg), "enc", "zip"?}``; Draft 13–15: ``{"jwk", "alg", "enc"}``; both
   shapes are read in every version) before any nonce is used or credential made, including a
   trial encryption to its key.
3. :func:`encrypt_response` — a 200 or 202 answer becomes ``Content-Type: application/jwt``
   with the JSON body encrypted to the wallet's key; error answers stay plain JSON
   (OID4VCI 1.0 §8.3.1).

Every refusal is 400 ``invalid_encryption_parameters`` (OID4VCI 1.0 §8.3.1.2 has no more
specific code; an unencrypted request where encryption is required gets it too, this project's
choice). A JWE that decrypts to something that is not a JSON object is
``invalid_credential_request``. ``encryption_required`` is applied to every request whatever its
version: an issuer that requires encryption serves only wallets that encrypt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from oid4vci.errors import (
    CredentialRequestError,
    EncryptionError,
    ErrorCode,
    JoseError,
)
from oid4vci.http import JSON_CONTENT_TYPE, HttpRequest, HttpResponse
from oid4vci.issuer.encryption_settings import EncryptionSettings
from oid4vci.issuer.responses import NO_STORE
from oid4vci.jose import public_jwk
from oid4vci.jwe import (
    JWT_CONTENT_TYPE,
    decrypt_jwe,
    encrypt_json,
)
from oid4vci.versions import SpecVersion

if TYPE_CHECKING:
    from oid4vci.issuer.config import IssuerConfig

__all__ = [
    "DecryptedRequest",
    "EncryptionSettings",
    "ResponseEncryption",
    "decrypt_request",
    "encrypt_response",
    "encryption_metadata",
    "response_encryption",
]


@attrs.frozen(kw_only=True)
class DecryptedRequest:
    """A request with its body in the clear: ``encrypted`` says whether it came as a JWE."""

    request: HttpRequest
    encrypted: bool


@attrs.frozen(kw_only=True)
class ResponseEncryption:
    """How to encrypt this request's answer: the wallet's public key, ``alg``, ``enc``, ``zip``."""

    jwk: dict[str, Any]
    alg: str
    enc: str
    zip: str | None = None


def _refuse(description: str) -> CredentialRequestError:
    return CredentialRequestError(ErrorCode.INVALID_ENCRYPTION_PARAMETERS, description)


def encryption_metadata(config: IssuerConfig, version: SpecVersion) -> dict[str, Any]:
    """The encryption members of the Credential Issuer metadata for ``version`` (empty without
    settings): ``credential_request_encryption`` (1.0 only, when there are request keys) and
    ``credential_response_encryption`` (``zip_values_supported`` from 1.0 on)."""
    settings = config.encryption
    if settings is None:
        return {}
    response: dict[str, Any] = {
        "alg_values_supported": list(settings.response_alg_values),
        "enc_values_supported": list(settings.response_enc_values),
    }
    if version is SpecVersion.V1 and settings.response_zip_values:
        response["zip_values_supported"] = list(settings.response_zip_values)
    response["encryption_required"] = settings.response_required
    out: dict[str, Any] = {"credential_response_encryption": response}
    if version is SpecVersion.V1 and settings.request_keys:
        request: dict[str, Any] = {
            "jwks": {"keys": settings.public_request_keys()},
            "enc_values_supported": list(settings.request_enc_values),
        }
        if settings.request_zip_values:
            request["zip_values_supported"] = list(settings.request_zip_values)
        request["encryption_required"] = settings.request_required
        out["credential_request_encryption"] = request
    return out


def decrypt_request(request: HttpRequest, config: IssuerConfig) -> DecryptedRequest:
    """Decrypt an ``application/jwt`` request body (OID4VCI 1.0 §10); see the module docstring.

    The decrypted body is handed on as ``application/json``; the endpoint's parse stage then
    refuses one that is not a JSON object. Raises :class:`CredentialRequestError`.
    """
    settings = config.encryption
    if settings is None or not settings.request_keys:
        # Without request keys application/jwt is a media type the endpoint does not take (415).
        return DecryptedRequest(request=request, encrypted=False)
    if request.media_type != JWT_CONTENT_TYPE:
        if settings.request_required:
            raise _refuse("the request must be encrypted (credential_request_encryption)")
        return DecryptedRequest(request=request, encrypted=False)
    try:
        token = request.body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise _refuse("the request body is not a compact JWE") from None
    algorithms = {k["alg"] for k in settings.request_keys}
    try:
        opened = decrypt_jwe(
            token,
            settings.request_keys,
            algorithms=algorithms,
            encryptions=settings.request_enc_values,
            zips=settings.request_zip_values,
            max_plaintext=settings.max_plaintext,
        )
    except EncryptionError as exc:
        raise _refuse(str(exc)) from None
    headers = request.headers.with_header("Content-Type", JSON_CONTENT_TYPE)
    clear = HttpRequest(
        method=request.method, url=request.url, headers=headers, body=opened.plaintext
    )
    return DecryptedRequest(request=clear, encrypted=True)


def response_encryption(
    params: Mapping[str, Any] | None,
    config: IssuerConfig,
    *,
    version: SpecVersion,
    encrypted_request: bool,
    required: bool = True,
) -> ResponseEncryption | None:
    """The checked ``credential_response_encryption`` of a request, or ``None`` (plain answer).

    ``required=False`` ignores ``encryption_required`` (a Draft 13–15 deferred request, whose
    answer those drafts define as JSON only). Raises :class:`CredentialRequestError`
    ``invalid_encryption_parameters``.
    """
    settings = config.encryption
    if params is None:
        if settings is not None and settings.response_required and required:
            raise _refuse("credential_response_encryption is required")
        return None
    if settings is None:
        raise _refuse("response encryption is not supported")
    if version is SpecVersion.V1 and settings.request_keys and not encrypted_request:
        # OID4VCI 1.0 §10: a request carrying credential_response_encryption MUST be encrypted.
        raise _refuse("a request with credential_response_encryption must be encrypted")
    if not isinstance(params, Mapping):
        raise _refuse("credential_response_encryption must be an object")
    jwk = params.get("jwk")
    if not isinstance(jwk, Mapping):
        raise _refuse("credential_response_encryption.jwk must be a JWK object")
    try:
        jwk = public_jwk(jwk)
    except JoseError:
        raise _refuse("credential_response_encryption.jwk is not a usable public key") from None
    if jwk.get("kty") not in ("EC", "RSA") or jwk.get("use", "enc") != "enc":
        raise _refuse("credential_response_encryption.jwk is not a key for encryption")
    top_alg, key_alg = params.get("alg"), jwk.get("alg")
    if top_alg is not None and key_alg is not None and top_alg != key_alg:
        raise _refuse("credential_response_encryption alg and jwk.alg differ")
    alg = top_alg if top_alg is not None else key_alg
    if alg is None:
        raise _refuse("credential_response_encryption.jwk needs an alg")
    if not isinstance(alg, str) or alg not in settings.response_alg_values:
        raise _refuse("credential_response_encryption alg is not supported")
    enc = params.get("enc")
    if not isinstance(enc, str) or enc not in settings.response_enc_values:
        raise _refuse("credential_response_encryption enc is not supported")
    zip_ = params.get("zip")
    if zip_ is not None and (not isinstance(zip_, str) or zip_ not in settings.response_zip_values):
        raise _refuse("credential_response_encryption zip is not supported")
    chosen = ResponseEncryption(jwk=jwk, alg=alg, enc=enc, zip=zip_)
    try:
        # A key that cannot be encrypted to is refused now, before the nonce is used.
        encrypt_json({}, chosen.jwk, alg=alg, enc=enc)
    except EncryptionError:
        raise _refuse("credential_response_encryption.jwk cannot be used with its alg") from None
    return chosen


def encrypt_response(response: HttpResponse, encryption: ResponseEncryption | None) -> HttpResponse:
    """``response`` as ``application/jwt`` encrypted to the wallet (200 and 202 only; errors and
    answers without ``encryption`` are returned unchanged)."""
    if encryption is None or response.status not in (200, 202):
        return response
    token = encrypt_json(
        response.json_body(),
        encryption.jwk,
        alg=encryption.alg,
        enc=encryption.enc,
        zip=encryption.zip,
    )
    headers = response.headers.with_header("Content-Type", JWT_CONTENT_TYPE)
    for name, value in NO_STORE.items():
        headers = headers.with_header(name, value)
    return HttpResponse(status=response.status, headers=headers, body=token.encode("ascii"))
