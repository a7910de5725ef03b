"""Sans-IO protocol steps of the wallet: build the next request, read the response.

Every ``build_*`` function returns an :class:`~oid4vci.http.HttpRequest` (or a URL) and every
``read_*`` function turns an :class:`~oid4vci.http.HttpResponse` into a value or raises the
typed error the response means. Nothing here sends anything or reads a clock unless it is
passed one; :mod:`oid4vci.wallet.driver` runs these steps over a transport.

Names follow the spec: the token request, the nonce request, the pushed authorization request,
the credential request, the deferred credential request, the notification request.

Response reading rules shared by every step:

* a 3xx answer is never followed (:class:`~oid4vci.errors.RedirectRefused`);
* an error answer becomes the endpoint's :class:`~oid4vci.errors.ProtocolError` subclass with
  ``error``, ``error_description``, ``status``, any ``c_nonce`` and the ``DPoP-Nonce`` header;
  ``invalid_dpop_proof`` / ``use_dpop_nonce`` (from the JSON body at the AS or the
  ``WWW-Authenticate: DPoP`` challenge at the issuer) become :class:`~oid4vci.errors.DpopError`;
* a success answer that is not the expected JSON object is a
  :class:`~oid4vci.errors.WireFormatError` (never a crash, never a partial value).
"""

from __future__ import annotations

import hmac
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from oid4vci._wire import check_seconds
from oid4vci.attestation import USE_ATTESTATION_CHALLENGE, USE_FRESH_ATTESTATION
from oid4vci.errors import (
    AuthorizationError,
    CallbackError,
    CredentialRequestError,
    DpopError,
    ErrorCode,
    OfferError,
    ProtocolError,
    RedirectRefused,
    TokenError,
    WireFormatError,
)
from oid4vci.http import REDIRECT_STATUSES, HttpRequest, HttpResponse
from oid4vci.jose import Signer, create_jws, signer_public_jwk
from oid4vci.models import (
    PRE_AUTHORIZED_CODE_GRANT,
    PROOF_TYP,
    CredentialResponse,
    PushedAuthorizationResponse,
    TokenResponse,
    parse_credential_response_json,
    parse_par_response,
    parse_token_response,
)

__all__ = [
    "DeferredPending",
    "accept_language",
    "authorization_code_grant",
    "authorization_header",
    "authorization_request_params",
    "build_attestation_challenge_request",
    "build_authorization_url",
    "build_credential_request",
    "build_deferred_credential_request",
    "build_key_proof",
    "build_metadata_request",
    "build_nonce_request",
    "build_notification_request",
    "build_offer_request",
    "build_par_request",
    "build_token_request",
    "check_redirect",
    "is_use_attestation_challenge",
    "is_use_dpop_nonce",
    "is_use_fresh_attestation",
    "parse_www_authenticate",
    "pre_authorized_grant",
    "read_attestation_challenge_response",
    "read_authorization_callback",
    "read_credential_response",
    "read_deferred_credential_response",
    "read_error_response",
    "read_json_object",
    "read_nonce_response",
    "read_notification_response",
    "read_offer_response",
    "read_par_response",
    "read_token_response",
    "refresh_token_grant",
]

_TOKEN_RE = re.compile(r"[\x21-\x7e]+")


def _json_headers(dpop_proof: str | None = None) -> dict[str, str]:
    """``Accept: application/json``, plus the ``DPoP`` proof when there is one."""
    headers = {"Accept": "application/json"}
    if dpop_proof is not None:
        headers["DPoP"] = dpop_proof
    return headers


def _compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


# --- shared response handling ------------------------------------------------------------------


def check_redirect(response: HttpResponse) -> None:
    """Raise :class:`RedirectRefused` for any 3xx answer (API calls never follow redirects)."""
    if response.status in REDIRECT_STATUSES:
        raise RedirectRefused(f"the server answered {response.status}; redirects are not followed")


_SCHEME_RE = re.compile(r"\s*,?\s*([A-Za-z0-9!#$%&'*+\-.^_`|~]+)(?=\s|,|$)")
_PARAM_RE = re.compile(r'\s*([A-Za-z0-9!#$%&\'*+\-.^_`|~]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')
_COMMA_RE = re.compile(r"\s*,")


def parse_www_authenticate(value: str) -> list[tuple[str, dict[str, str]]]:
    """Split a ``WWW-Authenticate`` value into ``[(scheme, {param: value})]`` (RFC 9110 §11.6.1).

    Scheme names are lower-cased; quoted values are unquoted. Unparseable input gives ``[]``.
    """
    challenges: list[tuple[str, dict[str, str]]] = []
    text = value or ""
    pos = 0
    while scheme := _SCHEME_RE.match(text, pos):
        pos = scheme.end()
        params: dict[str, str] = {}
        while param := _PARAM_RE.match(text, pos):
            name, raw = param.group(1).lower(), param.group(2)
            if raw.startswith('"'):
                raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
            params[name] = raw
            pos = param.end()
            comma = _COMMA_RE.match(text, pos)
            if not comma:
                break
            pos = comma.end()
        challenges.append((scheme.group(1).lower(), params))
    return challenges


def _error_fields(response: HttpResponse) -> dict[str, Any]:
    try:
        body = json.loads(response.body) if response.body else {}
    except (UnicodeDecodeError, ValueError, RecursionError):
        body = {}
    return body if isinstance(body, dict) else {}


def _opt(body: Mapping[str, Any], key: str, kind: type) -> Any:
    value = body.get(key)
    if isinstance(value, bool) and kind is int:
        return None
    return value if isinstance(value, kind) else None


def read_error_response(
    response: HttpResponse, error_class: type[ProtocolError] = ProtocolError
) -> ProtocolError:
    """The :class:`ProtocolError` an error answer means (``error_class`` for the endpoint).

    The code comes from the JSON body, else from a ``WWW-Authenticate`` challenge, else it is
    ``server_error`` (5xx) / ``invalid_request``. DPoP codes give :class:`DpopError`.
    """
    body = _error_fields(response)
    error = _opt(body, "error", str)
    description = _opt(body, "error_description", str)
    scheme: str | None = None
    for header in response.headers.get_all("WWW-Authenticate"):
        for name, params in parse_www_authenticate(header):
            if "error" in params and error is None:
                error = params["error"]
                description = description or params.get("error_description")
                scheme = name
    if error is None:
        error = ErrorCode.SERVER_ERROR if response.status >= 500 else ErrorCode.INVALID_REQUEST
        description = f"HTTP {response.status} without an error body"
    cls: type[ProtocolError] = error_class
    if error in (ErrorCode.INVALID_DPOP_PROOF, ErrorCode.USE_DPOP_NONCE):
        cls = DpopError
    interval = body.get("interval")
    try:
        interval = None if interval is None else check_seconds(interval)
    except WireFormatError:
        interval = None  # as for the other members: a wrong type is ignored
    return cls(
        error,
        description,
        status=response.status,
        c_nonce=_opt(body, "c_nonce", str),
        c_nonce_expires_in=_opt(body, "c_nonce_expires_in", int),
        dpop_nonce=response.headers.get("DPoP-Nonce"),
        interval=interval,
        www_authenticate_scheme=scheme,
    )


def is_use_attestation_challenge(response: HttpResponse) -> bool:
    """Whether ``response`` is a ``use_attestation_challenge`` error (a 400 JSON body,
    draft-ietf-oauth-attestation-based-client-auth-07 §8)."""
    if response.status != 400:
        return False
    return _error_fields(response).get("error") == USE_ATTESTATION_CHALLENGE


def is_use_fresh_attestation(response: HttpResponse) -> bool:
    """Whether ``response`` is a ``use_fresh_attestation`` error (a 400 JSON body; introduced
    by draft-ietf-oauth-attestation-based-client-auth-07)."""
    if response.status != 400:
        return False
    return _error_fields(response).get("error") == USE_FRESH_ATTESTATION


def is_use_dpop_nonce(response: HttpResponse) -> bool:
    """True for a ``use_dpop_nonce`` challenge: AS (400 JSON) or resource (401 header)."""
    if response.status == 400:
        return _error_fields(response).get("error") == ErrorCode.USE_DPOP_NONCE
    if response.status == 401:
        for header in response.headers.get_all("WWW-Authenticate"):
            for scheme, params in parse_www_authenticate(header):
                if scheme == "dpop" and params.get("error") == ErrorCode.USE_DPOP_NONCE:
                    return True
    return False


def read_json_object(
    response: HttpResponse,
    error_class: type[ProtocolError] = ProtocolError,
    *,
    ok: Sequence[int] = (200,),
) -> dict[str, Any]:
    """The JSON object of a success answer; the typed error for anything else."""
    check_redirect(response)
    if response.status not in ok:
        raise read_error_response(response, error_class)
    return response.json_body()


# --- metadata and offers -----------------------------------------------------------------------


def build_metadata_request(
    url: str, *, languages: Sequence[str] = (), signed: bool = False
) -> HttpRequest:
    """GET a metadata document (issuer, AS, JWT VC issuer) as JSON; ``languages`` (best
    first) go as ``Accept-Language`` with descending weights (OID4VCI 1.0 §12.2.2);
    ``signed`` prefers the signed form (``Accept: application/jwt``, OID4VCI 1.0 §12.2.2)."""
    headers = _json_headers()
    if signed:
        headers["Accept"] = "application/jwt, application/json;q=0.9"
    if languages:
        headers["Accept-Language"] = accept_language(languages)
    return HttpRequest(method="GET", url=url, headers=headers)


def accept_language(languages: Sequence[str]) -> str:
    """``de-CH, de;q=0.9, en;q=0.8`` for ``("de-CH", "de", "en")`` (RFC 9110 §12.5.4)."""
    parts = []
    for index, tag in enumerate(languages[:10]):
        parts.append(tag if index == 0 else f"{tag};q={(10 - index) / 10:.1f}")
    return ", ".join(parts)


def build_offer_request(credential_offer_uri: str) -> HttpRequest:
    """GET a Credential Offer passed by reference (``credential_offer_uri``)."""
    return HttpRequest(method="GET", url=credential_offer_uri, headers=_json_headers())


def read_offer_response(response: HttpResponse) -> dict[str, Any]:
    """The JSON object of a Credential Offer fetched by reference (OID4VCI 1.0 §4.1.3)."""
    try:
        return read_json_object(response)
    except WireFormatError:
        raise OfferError("the credential offer fetched by reference is not JSON") from None


# --- authorization (code flow) -----------------------------------------------------------------


def authorization_request_params(
    *,
    client_id: str,
    redirect_uri: str,
    code_challenge: str,
    state: str,
    authorization_details: Sequence[Mapping[str, Any]] | None = None,
    scope: str | None = None,
    issuer_state: str | None = None,
    dpop_jkt: str | None = None,
    resource: str | None = None,
) -> dict[str, str]:
    """The authorization request parameters (RFC 6749 §4.1.1 + PKCE S256 + OID4VCI 1.0 §5)."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
        "state": state,
    }
    if authorization_details:
        params["authorization_details"] = _compact_json(list(authorization_details))
    if scope:
        params["scope"] = scope
    if issuer_state is not None:
        params["issuer_state"] = issuer_state
    if dpop_jkt is not None:
        params["dpop_jkt"] = dpop_jkt
    if resource is not None:
        params["resource"] = resource
    return params


def build_attestation_challenge_request(challenge_endpoint: str) -> HttpRequest:
    """A request for a wallet attestation challenge: ``POST``, no body
    (draft-ietf-oauth-attestation-based-client-auth-07 §8.1)."""
    return HttpRequest(method="POST", url=challenge_endpoint, headers=_json_headers(), body=b"")


def read_attestation_challenge_response(response: HttpResponse) -> str:
    """The ``attestation_challenge`` of a 200 challenge answer (a non-empty string of at most
    1024 characters, draft-ietf-oauth-attestation-based-client-auth-07 §8.1)."""
    body = read_json_object(response, AuthorizationError)
    challenge = body.get("attestation_challenge")
    if not isinstance(challenge, str) or not challenge or len(challenge) > 1024:
        raise WireFormatError(
            "must be a non-empty string of at most 1024 characters", path="attestation_challenge"
        )
    return challenge


def build_par_request(
    par_endpoint: str,
    params: Mapping[str, str],
    *,
    dpop_proof: str | None = None,
    client_auth: Mapping[str, str] | None = None,
) -> HttpRequest:
    """The pushed authorization request (RFC 9126): the parameters as a form POST.

    ``client_auth`` are client authentication headers (the wallet attestation and its PoP,
    draft-ietf-oauth-attestation-based-client-auth-07 §6.1).
    """
    headers = {**_json_headers(dpop_proof), **(client_auth or {})}
    return HttpRequest.form("POST", par_endpoint, dict(params), headers=headers)


def read_par_response(response: HttpResponse) -> PushedAuthorizationResponse:
    """A 201 (or 200) PAR answer → ``request_uri`` and ``expires_in``."""
    body = read_json_object(response, AuthorizationError, ok=(200, 201))
    return parse_par_response(body)


def build_authorization_url(authorization_endpoint: str, params: Mapping[str, str]) -> str:
    """The front-channel URL: ``authorization_endpoint`` plus ``params`` in the query."""
    parts = urlsplit(authorization_endpoint)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *params.items()]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def read_authorization_callback(
    callback_url: str,
    *,
    expected_state: str,
    expected_issuer: str,
    iss_supported: bool,
) -> str:
    """The ``code`` of the redirect to the wallet; checks ``state`` and RFC 9207 ``iss``.

    An ``error`` in the callback raises :class:`AuthorizationError`; a missing or different
    ``state``, or an ``iss`` that is not ``expected_issuer`` (present, or required because the
    AS announces ``authorization_response_iss_parameter_supported``) raises
    :class:`CallbackError`. Parameters may be in the query or the fragment.
    """
    try:
        parts = urlsplit(callback_url)
    except ValueError:
        raise CallbackError("the callback is not a URL") from None
    pairs = parse_qsl(parts.query, keep_blank_values=True) + parse_qsl(
        parts.fragment, keep_blank_values=True
    )
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise CallbackError(f"the callback repeats the parameter {name!r}")
        params[name] = value
    state = params.get("state")
    if state is None or not _same(state, expected_state):
        raise CallbackError("the callback 'state' does not match the pending authorization")
    iss = params.get("iss")
    if iss is not None or iss_supported:
        if iss is None:
            raise CallbackError("the callback lacks 'iss' although the server announces it")
        if iss != expected_issuer:
            raise CallbackError("the callback 'iss' is not the authorization server")
    if "error" in params:
        raise AuthorizationError(params["error"], params.get("error_description"))
    code = params.get("code")
    if not code:
        raise CallbackError("the callback carries neither 'code' nor 'error'")
    return code


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


# --- token endpoint -----------------------------------------------------------------------------


def build_token_request(
    token_endpoint: str,
    params: Mapping[str, str],
    *,
    dpop_proof: str | None = None,
    client_auth: Mapping[str, str] | None = None,
) -> HttpRequest:
    """The token request: ``params`` form-encoded (see the ``*_grant`` helpers), with the
    ``client_auth`` headers (wallet attestation + PoP) when given."""
    headers = {**_json_headers(dpop_proof), **(client_auth or {})}
    return HttpRequest.form("POST", token_endpoint, dict(params), headers=headers)


def pre_authorized_grant(
    pre_authorized_code: str,
    *,
    tx_code: str | None = None,
    client_id: str | None = None,
    authorization_details: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, str]:
    """Token request parameters for the pre-authorized code grant."""
    params = {"grant_type": PRE_AUTHORIZED_CODE_GRANT, "pre-authorized_code": pre_authorized_code}
    if tx_code is not None:
        params["tx_code"] = tx_code
    if client_id is not None:
        params["client_id"] = client_id
    if authorization_details:
        params["authorization_details"] = _compact_json(list(authorization_details))
    return params


def authorization_code_grant(
    code: str, *, code_verifier: str, redirect_uri: str, client_id: str
) -> dict[str, str]:
    """Token request parameters for the authorization code grant (with the PKCE verifier)."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": code_verifier,
        "redirect_uri": redirect_uri,
        "client_id": client_id,
    }


def refresh_token_grant(refresh_token: str, *, client_id: str | None = None) -> dict[str, str]:
    """Token request parameters to refresh an access token (RFC 6749 §6)."""
    params = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if client_id is not None:
        params["client_id"] = client_id
    return params


def read_token_response(response: HttpResponse, *, dpop_proof_sent: bool) -> TokenResponse:
    """A token answer → :class:`TokenResponse`; errors → :class:`TokenError` / DpopError.

    The token must be bound the way it was asked for (RFC 9449 §5): a ``DPoP`` token when no
    proof was sent is refused, and so is a ``Bearer`` token after a DPoP proof was sent (a
    downgrade: the wallet only sends a proof when the server advertises DPoP or the caller
    asked for it).
    """
    body = read_json_object(response, TokenError)
    token = parse_token_response(body)
    if token.token_type.lower() not in ("bearer", "dpop"):
        raise WireFormatError("unsupported token_type", path="token_type")
    # It goes into an Authorization header: visible ASCII only (no CR/LF, no spaces).
    if not _TOKEN_RE.fullmatch(token.access_token):
        raise WireFormatError("must be a non-empty string of visible ASCII", path="access_token")
    if token.is_dpop and not dpop_proof_sent:
        raise WireFormatError("DPoP token although no DPoP proof was sent", path="token_type")
    if not token.is_dpop and dpop_proof_sent:
        raise WireFormatError(
            "a Bearer token after a DPoP proof was sent (a downgrade, RFC 9449 §5)",
            path="token_type",
        )
    return token


# --- nonce endpoint -----------------------------------------------------------------------------


def build_nonce_request(nonce_endpoint: str, *, dpop_proof: str | None = None) -> HttpRequest:
    """The nonce request: an empty POST (no access token)."""
    return HttpRequest(
        method="POST", url=nonce_endpoint, headers=_json_headers(dpop_proof), body=b""
    )


def read_nonce_response(response: HttpResponse) -> str:
    """The ``c_nonce`` of a nonce answer."""
    body = read_json_object(response, CredentialRequestError)
    nonce = body.get("c_nonce")
    if not isinstance(nonce, str) or not nonce:
        raise WireFormatError("must be a non-empty string", path="c_nonce")
    return nonce


# --- credential endpoint ------------------------------------------------------------------------


def authorization_header(access_token: str, token_type: str) -> str:
    """``DPoP <token>`` for DPoP-bound tokens (any case), else ``Bearer <token>``."""
    scheme = "DPoP" if token_type.lower() == "dpop" else "Bearer"
    return f"{scheme} {access_token}"


def _resource_request(
    endpoint: str,
    body: Mapping[str, Any],
    *,
    access_token: str,
    token_type: str,
    dpop_proof: str | None,
) -> HttpRequest:
    """A JSON POST to a protected issuer endpoint, with the access token (and DPoP proof)."""
    headers = _json_headers(dpop_proof)
    headers["Authorization"] = authorization_header(access_token, token_type)
    return HttpRequest.json("POST", endpoint, body, headers=headers)


async def build_key_proof(
    signer: Signer,
    *,
    audience: str,
    nonce: str | None,
    client_id: str | None = None,
    key_attestation: str | None = None,
    clock: Callable[[], float] = time.time,
) -> str:
    """A ``jwt`` key proof (OID4VCI 1.0 Appendix F.1; Draft 13/14 §7.2.1.1, Draft 15 §8.2.1.1)
    signed by the holder key.

    ``iss`` is the ``client_id`` (omit it after an anonymous pre-authorized grant);
    ``nonce`` the issuer's ``c_nonce`` when one is in use; ``key_attestation`` a key
    attestation JWT (OID4VCI 1.0 Appendix D) listing this key, sent in the header of that name.
    """
    header: dict[str, Any] = {"typ": PROOF_TYP, "jwk": signer_public_jwk(signer)}
    if key_attestation is not None:
        header["key_attestation"] = key_attestation
    claims: dict[str, Any] = {"aud": audience, "iat": int(clock())}
    if nonce is not None:
        claims["nonce"] = nonce
    if client_id is not None:
        claims["iss"] = client_id
    return await create_jws(signer, claims, header)


def build_credential_request(
    credential_endpoint: str,
    body: Mapping[str, Any],
    *,
    access_token: str,
    token_type: str,
    dpop_proof: str | None = None,
) -> HttpRequest:
    """The credential request: ``body`` (already in the issuer's version shape) as JSON."""
    return _resource_request(
        credential_endpoint,
        body,
        access_token=access_token,
        token_type=token_type,
        dpop_proof=dpop_proof,
    )


def read_credential_response(response: HttpResponse) -> CredentialResponse:
    """A credential answer (200 immediate or 202 deferred) in any version's shape.

    A success answer must carry credentials or a ``transaction_id``.
    """
    body = read_json_object(response, CredentialRequestError, ok=(200, 202))
    parsed = parse_credential_response_json(body)
    if not parsed.credentials and not parsed.transaction_id:
        raise WireFormatError("the response has neither credentials nor transaction_id")
    return parsed


@attrs.frozen(kw_only=True)
class DeferredPending:
    """A deferred credential that is not ready yet; poll again after ``interval`` seconds."""

    interval: int | None


def build_deferred_credential_request(
    deferred_credential_endpoint: str,
    transaction_id: str,
    *,
    access_token: str,
    token_type: str,
    dpop_proof: str | None = None,
    credential_response_encryption: Mapping[str, Any] | None = None,
) -> HttpRequest:
    """The deferred credential request ``{"transaction_id": ...}`` (1.0: with an optional
    ``credential_response_encryption``, OID4VCI 1.0 §9.1)."""
    body: dict[str, Any] = {"transaction_id": transaction_id}
    if credential_response_encryption is not None:
        body["credential_response_encryption"] = dict(credential_response_encryption)
    return _resource_request(
        deferred_credential_endpoint,
        body,
        access_token=access_token,
        token_type=token_type,
        dpop_proof=dpop_proof,
    )


def read_deferred_credential_response(
    response: HttpResponse,
) -> CredentialResponse | DeferredPending:
    """The deferred answer: credentials, or :class:`DeferredPending` (1.0: 202 with
    ``transaction_id`` and ``interval``; drafts: the ``issuance_pending`` error)."""
    check_redirect(response)
    if response.status == 400:
        err = read_error_response(response, CredentialRequestError)
        if err.error == ErrorCode.ISSUANCE_PENDING:
            return DeferredPending(interval=err.interval)
        raise err
    parsed = read_credential_response(response)
    if not parsed.credentials:
        return DeferredPending(interval=parsed.interval)
    return parsed


def build_notification_request(
    notification_endpoint: str,
    notification_id: str,
    event: str,
    *,
    event_description: str | None = None,
    access_token: str,
    token_type: str,
    dpop_proof: str | None = None,
) -> HttpRequest:
    """The notification request (``credential_accepted`` / ``_failure`` / ``_deleted``)."""
    body: dict[str, Any] = {"notification_id": notification_id, "event": event}
    if event_description is not None:
        body["event_description"] = event_description
    return _resource_request(
        notification_endpoint,
        body,
        access_token=access_token,
        token_type=token_type,
        dpop_proof=dpop_proof,
    )


def read_notification_response(response: HttpResponse) -> None:
    """Any 2xx is success; errors raise :class:`CredentialRequestError`."""
    check_redirect(response)
    if not 200 <= response.status < 300:
        raise read_error_response(response, CredentialRequestError)
