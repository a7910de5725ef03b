"""The wallet's side of encrypted credential requests and responses (OID4VCI 1.0 §10; Draft
13 §7.2, Draft 14 §7.2, Draft 15 §8.2: response encryption only).

Sans-IO, used by the credential and deferred credential steps of
:class:`~oid4vci.wallet.flow.IssuanceFlow`:

* :func:`plan_encryption` reads the issuer's ``credential_response_encryption`` and (1.0)
  ``credential_request_encryption`` metadata with ``WalletPolicy.encryption`` and decides, once
  per issuer, what is encrypted and with which algorithms (an :class:`EncryptionPlan`). An
  issuer that *requires* what the policy or this library cannot do is a
  :class:`~oid4vci.errors.MetadataError` before any token is asked for.
* per request, :func:`new_response_key` makes a fresh ephemeral P-256 key (never reused, never
  saved: a flow can only be saved between requests), :func:`response_encryption_member` the
  request member in the version's shape (1.0 ``{"jwk" (with alg), "enc"}``; Draft 13–15
  ``{"jwk", "alg", "enc"}``), :func:`seal_request` the ``application/jwt`` body (1.0, to a key
  from the issuer's ``jwks``);
* :func:`open_response` decrypts a 200/202 ``application/jwt`` answer with that request's key
  and refuses a plain answer to a request that asked for encryption (OID4VCI 1.0 §10: SHOULD
  reject) — both :class:`~oid4vci.errors.EncryptionError`. Error answers are plain JSON in
  every version and pass through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from oid4vci.errors import EncryptionError, MetadataError
from oid4vci.http import JSON_CONTENT_TYPE, HttpRequest, HttpResponse
from oid4vci.jwe import (
    JWT_CONTENT_TYPE,
    decrypt_jwe,
    encrypt_json,
    generate_encryption_key,
)
from oid4vci.models.metadata import CredentialIssuerMetadata
from oid4vci.versions import SpecVersion

__all__ = [
    "EncryptionMode",
    "EncryptionPlan",
    "ResponseKey",
    "new_response_key",
    "open_response",
    "plan_encryption",
    "response_encryption_member",
    "seal_request",
]

EncryptionMode = Literal["when-supported", "require", "off"]
"""``when-supported``: encrypt responses (and, 1.0, requests) whenever the issuer offers it;
``require``: refuse an issuer that cannot encrypt responses; ``off``: encrypt nothing (an
issuer that requires encryption is then refused)."""

#: What this wallet asks for, in preference order (ECDH-ES to an ephemeral P-256 key).
RESPONSE_ALGS: tuple[str, ...] = ("ECDH-ES",)
#: Content encryption in preference order.
ENCS: tuple[str, ...] = ("A256GCM", "A128GCM")
#: Key agreement to the issuer's request keys this wallet can do.
REQUEST_ALGS: tuple[str, ...] = ("ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A256KW", "RSA-OAEP-256")
#: Largest decrypted answer accepted (credentials of a batch, mdocs with portraits).
MAX_RESPONSE_PLAINTEXT = 8 * 1024 * 1024


@attrs.frozen(kw_only=True)
class EncryptionPlan:
    """What is encrypted with one issuer: response encryption with ``response_alg`` /
    ``response_enc`` (``None``: plain answers); request encryption to ``request_jwk`` (the
    issuer's public key) with its ``alg`` and ``request_enc`` (``None``: plain requests)."""

    response_alg: str | None = None
    response_enc: str | None = None
    request_jwk: dict[str, Any] | None = None
    request_enc: str | None = None


@attrs.frozen(kw_only=True)
class ResponseKey:
    """The ephemeral key one request's answer is encrypted to (private; ``repr`` hides it)."""

    private_jwk: dict[str, Any] = attrs.field(repr=False)
    alg: str
    enc: str

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public part with ``alg`` and ``use: enc``."""
        return {k: v for k, v in self.private_jwk.items() if k != "d"}


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        return ()
    return tuple(value)


def _object(doc: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    value = doc.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MetadataError(f"{name} in the issuer metadata is not an object")
    return value


def _pick(preference: tuple[str, ...], offered: tuple[str, ...]) -> str | None:
    return next((value for value in preference if value in offered), None)


def _request_key(meta: Mapping[str, Any]) -> dict[str, Any] | None:
    jwks = meta.get("jwks")
    # OID4VCI 1.0 §12.2.4: a JWK Set; the 1.0 example writes a bare array (fixed in errata).
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else jwks
    if not isinstance(keys, list):
        return None
    for key in keys:
        if (
            isinstance(key, Mapping)
            and isinstance(key.get("kid"), str)
            and key.get("alg") in REQUEST_ALGS
            and key.get("kty") in ("EC", "RSA")
            and key.get("use", "enc") == "enc"
            and not any(member in key for member in ("d", "p", "q", "k"))
        ):
            return dict(key)
    return None


def plan_encryption(
    metadata: CredentialIssuerMetadata, version: SpecVersion, mode: EncryptionMode
) -> EncryptionPlan:
    """Decide what is encrypted with this issuer (see the module docstring).

    Raises :class:`MetadataError` when the issuer requires encryption the policy (``off``) or
    this wallet cannot do, or when ``mode`` is ``require`` and the issuer offers no usable
    response encryption.
    """
    doc: dict[str, Any] = {
        **metadata.extra,
        "credential_response_encryption": metadata.credential_response_encryption,
    }
    response = _object(doc, "credential_response_encryption")
    request = _object(doc, "credential_request_encryption") if version is SpecVersion.V1 else None
    plan = EncryptionPlan()
    if response is not None:
        required = response.get("encryption_required") is True
        alg = _pick(RESPONSE_ALGS, _strings(response.get("alg_values_supported")))
        enc = _pick(ENCS, _strings(response.get("enc_values_supported")))
        if required and mode == "off":
            raise MetadataError("the issuer requires response encryption; policy.encryption is off")
        if (alg is None or enc is None) and (required or mode == "require"):
            raise MetadataError("the issuer offers no response encryption this wallet can do")
        if mode != "off" and alg is not None and enc is not None:
            plan = attrs.evolve(plan, response_alg=alg, response_enc=enc)
    elif mode == "require":
        raise MetadataError("the issuer does not offer response encryption (policy: require)")
    if request is not None:
        required = request.get("encryption_required") is True
        key = _request_key(request)
        enc = _pick(ENCS, _strings(request.get("enc_values_supported")))
        if required and mode == "off":
            raise MetadataError("the issuer requires request encryption; policy.encryption is off")
        if (key is None or enc is None) and required:
            raise MetadataError("the issuer offers no request encryption key this wallet can use")
        if mode != "off" and key is not None and enc is not None:
            plan = attrs.evolve(plan, request_jwk=key, request_enc=enc)
    return plan


def new_response_key(plan: EncryptionPlan) -> ResponseKey | None:
    """A fresh ephemeral key for one request's answer (``None`` when answers stay plain)."""
    if plan.response_alg is None or plan.response_enc is None:
        return None
    jwk = generate_encryption_key("P-256", alg=plan.response_alg)
    return ResponseKey(private_jwk=jwk, alg=plan.response_alg, enc=plan.response_enc)


def response_encryption_member(key: ResponseKey, version: SpecVersion) -> dict[str, Any]:
    """``credential_response_encryption`` for a request of ``version``: 1.0 ``{"jwk", "enc"}``
    (``alg`` inside the JWK, OID4VCI 1.0 §8.2, §10); Draft 13–15 ``{"jwk", "alg", "enc"}``."""
    if version is SpecVersion.V1:
        return {"jwk": key.public_jwk, "enc": key.enc}
    return {"jwk": key.public_jwk, "alg": key.alg, "enc": key.enc}


def seal_request(request: HttpRequest, plan: EncryptionPlan) -> HttpRequest:
    """``request`` with its JSON body encrypted to the issuer (``application/jwt``); unchanged
    when the plan has no request encryption."""
    if plan.request_jwk is None or plan.request_enc is None:
        return request
    token = encrypt_json(
        request.json_body(),
        plan.request_jwk,
        alg=str(plan.request_jwk["alg"]),
        enc=plan.request_enc,
    )
    headers = request.headers.with_header("Content-Type", JWT_CONTENT_TYPE)
    return HttpRequest(method=request.method, url=request.url, headers=headers, body=token)


def open_response(response: HttpResponse, key: ResponseKey | None) -> HttpResponse:
    """A 200/202 answer in the clear: decrypted with ``key`` when it is ``application/jwt``.

    Raises :class:`EncryptionError` for a plain 200/202 answer to a request that asked for
    encryption, an encrypted answer to one that did not, or a JWE that is not what was asked
    (another ``alg``/``enc``, a ``zip`` not asked for, tampered, not JSON). Other statuses pass.
    """
    if response.status not in (200, 202):
        return response
    encrypted = response.media_type == JWT_CONTENT_TYPE
    if key is None:
        if encrypted:
            raise EncryptionError("the issuer encrypted an answer the wallet did not ask to be")
        return response
    if not encrypted:
        raise EncryptionError("the issuer answered unencrypted although encryption was asked for")
    try:
        token = response.body.decode("ascii").strip()
    except UnicodeDecodeError:
        raise EncryptionError("the encrypted answer is not a compact JWE") from None
    opened = decrypt_jwe(
        token,
        [key.private_jwk],
        algorithms=(key.alg,),
        encryptions=(key.enc,),
        max_plaintext=MAX_RESPONSE_PLAINTEXT,
    )
    opened.json_object()
    headers = response.headers.with_header("Content-Type", JSON_CONTENT_TYPE)
    return HttpResponse(status=response.status, headers=headers, body=opened.plaintext)
