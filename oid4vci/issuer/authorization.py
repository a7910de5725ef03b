"""The authorization endpoint (RFC 6749 §4.1, RFC 7636, RFC 9126, RFC 9207, RFC 9396).

:func:`validate_authorization_parameters` checks one authorization request (also used by the
PAR endpoint): ``client_id`` and ``redirect_uri`` against the :class:`ClientPolicy`,
``response_type=code``, PKCE S256, ``authorization_details`` / ``scope`` mapped to known
credential configurations, ``issuer_state`` minted by an offer, ``dpop_jkt``.

:func:`handle_authorization` runs the front channel:

1. ``GET /authorize?client_id=…&request_uri=urn:…`` (PAR, taken once) or with the parameters
   themselves (unless ``require_par``);
2. the validated request is stored as a :class:`PendingAuthorization` under
   ``authz_pending:<handle>`` and the :class:`UserAuthenticator` hook is called; it may answer
   :class:`Respond` (e.g. a login page that posts back to this endpoint with ``handle``),
   :class:`Denied` (→ ``access_denied``) or :class:`Authenticated`;
3. on success a single-use code is stored (``code:<code>``, see
   :mod:`oid4vci.issuer.token`) and the browser is sent (303) to
   ``redirect_uri?code=…&state=…&iss=…`` (the request's ``issuer_state``, if any, is used up).

Errors about ``client_id`` / ``redirect_uri`` (or an unusable ``request_uri`` / ``handle``) are
shown as a 400 page and never redirected; other errors are redirected with ``error``,
``error_description``, ``state`` and ``iss``.

Store keys read: ``issuer_state:<value>`` (written by the offer side: a JSON object with
``configuration_ids`` and optionally ``subject``; checked when the request is validated and
taken when a code is issued, so one offer yields at most one code; a second authorization
with it is redirected with ``invalid_request``), ``par:<request_uri>`` (written by
:mod:`oid4vci.issuer.par`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from oid4vci.errors import AuthorizationError, ErrorCode, StoreError, WireFormatError
from oid4vci.http import FORM_CONTENT_TYPE, HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer.config import (
    Authenticated,
    Denied,
    IssuerConfig,
    PendingAuthorization,
    Respond,
)
from oid4vci.issuer.responses import error_page, redirect_response, temporarily_unavailable
from oid4vci.issuer.token import AuthorizationCodeGrant, store_authorization_code
from oid4vci.models.authorization import AuthorizationDetail, parse_authorization_details

__all__ = [
    "HANDLE_PARAMETER",
    "REQUEST_URI_PREFIX",
    "UnredirectableError",
    "authorization_error_redirect",
    "authorization_response_url",
    "handle_authorization",
    "read_authorization_parameters",
    "resolve_authorization_details",
    "validate_authorization_parameters",
]

#: The form/query parameter carrying a pending authorization's handle (login form post-back).
HANDLE_PARAMETER = "handle"
#: Prefix of the ``request_uri`` values minted by the PAR endpoint.
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"

_CHALLENGE_RE = re.compile(r"[A-Za-z0-9\-_]{43}")
_JKT_RE = re.compile(r"[A-Za-z0-9\-_]{43}")
_MAX_PARAM = 4096
_MAX_DETAILS = 16 * 1024


class UnredirectableError(AuthorizationError):
    """An authorization error that must be shown to the user, not sent to ``redirect_uri``."""


def read_authorization_parameters(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> tuple[HttpRequest, dict[str, str]]:
    """The parameters of a front-channel request: the query (GET) or the form body (POST)."""
    req = HttpRequest.coerce(request)
    if req.method not in ("GET", "POST"):
        raise UnredirectableError(ErrorCode.INVALID_REQUEST, "method not allowed", status=405)
    if len(req.body) > config.max_body_size or len(req.url) > 16 * 1024:
        raise UnredirectableError(ErrorCode.INVALID_REQUEST, "request too large", status=413)
    try:
        query = urlsplit(req.url).query
        pairs = parse_qsl(query, keep_blank_values=True)
    except ValueError:
        raise UnredirectableError(ErrorCode.INVALID_REQUEST, "malformed query") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise UnredirectableError(ErrorCode.INVALID_REQUEST, f"parameter {name} repeated")
        params[name] = value
    if req.method == "POST":
        if req.media_type != FORM_CONTENT_TYPE:
            raise UnredirectableError(ErrorCode.INVALID_REQUEST, "form content type required")
        try:
            form = req.form_body()
        except WireFormatError as exc:
            raise UnredirectableError(ErrorCode.INVALID_REQUEST, str(exc)) from None
        for name, value in form.items():
            if name in params:
                raise UnredirectableError(ErrorCode.INVALID_REQUEST, f"parameter {name} repeated")
            params[name] = value
    return req, params


def _detail_configuration(config: IssuerConfig, detail: AuthorizationDetail) -> str:
    """The configuration id an ``openid_credential`` entry names (id, or D13/14 ``format``
    with ``vct``, or ``jwt_vc_json`` with ``credential_definition.type``)."""
    if detail.credential_configuration_id is not None:
        if detail.credential_configuration_id not in config.credential_configurations:
            raise AuthorizationError(
                ErrorCode.INVALID_AUTHORIZATION_DETAILS, "unknown credential_configuration_id"
            )
        return detail.credential_configuration_id
    if detail.format is not None:
        formats = {detail.format}
        if detail.format in ("vc+sd-jwt", "dc+sd-jwt"):
            formats = {"vc+sd-jwt", "dc+sd-jwt"}
        definition = detail.credential_definition or {}
        types = definition.get("type")
        wanted = set(types) if isinstance(types, list) and types else None
        for cid, spec in config.credential_configurations.items():
            if spec.format in formats and detail.vct is not None and spec.vct == detail.vct:
                return cid
            if (
                spec.format == "jwt_vc_json"
                and detail.format == "jwt_vc_json"
                and wanted is not None
                and set(spec.credential_definition_types) == wanted
            ):
                return cid
        raise AuthorizationError(
            ErrorCode.INVALID_AUTHORIZATION_DETAILS, "no credential configuration matches"
        )
    raise AuthorizationError(
        ErrorCode.INVALID_AUTHORIZATION_DETAILS,
        "credential_configuration_id (or format) is required",
    )


def resolve_authorization_details(
    config: IssuerConfig, text: str
) -> tuple[tuple[str, ...], tuple[dict[str, Any], ...]]:
    """Parse ``authorization_details`` and map each entry to a known configuration id.

    Returns the configuration ids and the entries as JSON. Raises
    :class:`AuthorizationError` (``invalid_authorization_details``).
    """
    if len(text) > _MAX_DETAILS:
        raise AuthorizationError(
            ErrorCode.INVALID_AUTHORIZATION_DETAILS, "authorization_details too large"
        )
    try:
        details = parse_authorization_details(text)
    except WireFormatError as exc:
        raise AuthorizationError(ErrorCode.INVALID_AUTHORIZATION_DETAILS, str(exc)) from None
    if not details:
        raise AuthorizationError(
            ErrorCode.INVALID_AUTHORIZATION_DETAILS, "authorization_details is empty"
        )
    ids: list[str] = []
    entries: list[dict[str, Any]] = []
    for detail in details:
        if detail.type != "openid_credential":
            raise AuthorizationError(
                ErrorCode.INVALID_AUTHORIZATION_DETAILS, "unsupported authorization details type"
            )
        if detail.locations is not None and config.credential_issuer not in detail.locations:
            raise AuthorizationError(
                ErrorCode.INVALID_AUTHORIZATION_DETAILS, "locations must name this issuer"
            )
        cid = _detail_configuration(config, detail)
        if cid not in ids:
            ids.append(cid)
        entry: dict[str, Any] = {"type": "openid_credential", "credential_configuration_id": cid}
        if detail.claims is not None:
            entry["claims"] = detail.claims
        entries.append(entry)
    return tuple(ids), tuple(entries)


async def validate_authorization_parameters(
    params: Mapping[str, str], config: IssuerConfig
) -> PendingAuthorization:
    """Check an authorization request's parameters; returns the pending authorization.

    The result has an empty ``handle``. Raises :class:`UnredirectableError` for a bad
    ``client_id`` / ``redirect_uri`` and :class:`AuthorizationError` otherwise.
    """
    for name, value in params.items():
        if len(value) > (_MAX_DETAILS if name == "authorization_details" else _MAX_PARAM):
            raise UnredirectableError(ErrorCode.INVALID_REQUEST, f"{name} is too long")
    client_id = params.get("client_id")
    if not client_id:
        raise UnredirectableError(ErrorCode.INVALID_REQUEST, "client_id is required")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        registered = config.clients.registered.get(client_id)
        if registered is not None and len(registered) == 1:
            redirect_uri = registered[0]
        else:
            raise UnredirectableError(ErrorCode.INVALID_REQUEST, "redirect_uri is required")
    if not config.clients.redirect_uri_allowed(client_id, redirect_uri):
        if client_id not in config.clients.registered and (
            not config.clients.allow_unregistered_public_clients
        ):
            raise UnredirectableError(ErrorCode.INVALID_CLIENT, "unknown client")
        raise UnredirectableError(ErrorCode.INVALID_REQUEST, "redirect_uri is not allowed")
    if "request" in params:
        raise AuthorizationError("request_not_supported", "request objects are not supported")
    if "request_uri" in params:
        raise AuthorizationError(ErrorCode.INVALID_REQUEST, "request_uri is not allowed here")
    if config.user_authenticator is None or not config.builtin_authorization_server:
        raise AuthorizationError(
            ErrorCode.UNSUPPORTED_RESPONSE_TYPE, "the authorization code flow is not enabled"
        )
    if params.get("response_type") != "code":
        raise AuthorizationError(ErrorCode.UNSUPPORTED_RESPONSE_TYPE, "response_type must be code")
    if params.get("response_mode") not in (None, "query"):
        raise AuthorizationError(ErrorCode.INVALID_REQUEST, "only response_mode=query is supported")
    challenge = params.get("code_challenge")
    if not challenge:
        raise AuthorizationError(ErrorCode.INVALID_REQUEST, "code_challenge (PKCE) is required")
    if params.get("code_challenge_method") != "S256":
        raise AuthorizationError(ErrorCode.INVALID_REQUEST, "code_challenge_method must be S256")
    if not _CHALLENGE_RE.fullmatch(challenge):
        raise AuthorizationError(ErrorCode.INVALID_REQUEST, "code_challenge is malformed")
    dpop_jkt = params.get("dpop_jkt")
    if dpop_jkt is not None and not _JKT_RE.fullmatch(dpop_jkt):
        raise AuthorizationError(ErrorCode.INVALID_REQUEST, "dpop_jkt is malformed")

    configuration_ids: list[str] = []
    details: tuple[dict[str, Any], ...] | None = None
    text = params.get("authorization_details")
    if text is not None:
        ids, details = resolve_authorization_details(config, text)
        configuration_ids.extend(ids)
    scope = params.get("scope")
    if scope:
        for value in scope.split():
            for cid, spec in config.credential_configurations.items():
                if spec.scope == value and cid not in configuration_ids:
                    configuration_ids.append(cid)
    issuer_state = params.get("issuer_state")
    issuer_state_data: dict[str, Any] | None = None
    if issuer_state is not None:
        stored = await config.store.get(f"issuer_state:{issuer_state}")
        if not isinstance(stored, Mapping):
            raise AuthorizationError(ErrorCode.INVALID_REQUEST, "issuer_state is unknown")
        issuer_state_data = dict(stored)
        if not configuration_ids:
            offered = stored.get("configuration_ids")
            if isinstance(offered, list):
                configuration_ids.extend(
                    c for c in offered if c in config.credential_configurations
                )
    if not configuration_ids:
        raise AuthorizationError(
            ErrorCode.INVALID_SCOPE, "no known credential configuration was requested"
        )
    return PendingAuthorization(
        handle="",
        client_id=client_id,
        redirect_uri=redirect_uri,
        state=params.get("state"),
        scope=scope or None,
        configuration_ids=tuple(configuration_ids),
        authorization_details=details,
        issuer_state=issuer_state,
        issuer_state_data=issuer_state_data,
        code_challenge=challenge,
        code_challenge_method="S256",
        dpop_jkt=dpop_jkt,
    )


def _with_query(url: str, params: Mapping[str, str | None]) -> str:
    parts = urlsplit(url)
    extra = urlencode([(k, v) for k, v in params.items() if v is not None])
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def authorization_response_url(
    config: IssuerConfig, pending: PendingAuthorization, code: str
) -> str:
    """``redirect_uri`` with ``code``, ``state`` and ``iss`` (RFC 9207)."""
    return _with_query(
        pending.redirect_uri,
        {"code": code, "state": pending.state, "iss": config.credential_issuer},
    )


def authorization_error_redirect(
    config: IssuerConfig, redirect_uri: str, state: str | None, err: AuthorizationError
) -> HttpResponse:
    """A 303 to ``redirect_uri`` carrying the error, ``state`` and ``iss``."""
    return redirect_response(
        _with_query(
            redirect_uri,
            {
                "error": err.error,
                "error_description": err.error_description,
                "state": state,
                "iss": config.credential_issuer,
            },
        )
    )


def _error_page(err: AuthorizationError) -> HttpResponse:
    status = err.status if err.status != 401 else 400
    return error_page(status, err.error, err.error_description)


async def _load_par(config: IssuerConfig, params: Mapping[str, str]) -> dict[str, str]:
    request_uri = params["request_uri"]
    if not request_uri.startswith(REQUEST_URI_PREFIX):
        raise UnredirectableError(ErrorCode.INVALID_REQUEST_URI, "request_uri is not ours")
    key = f"par:{request_uri}"
    # Check the client before taking: another client's attempt must not use it up.
    peeked = await config.store.get(key)
    if isinstance(peeked, Mapping) and params.get("client_id") != peeked.get("client_id"):
        raise UnredirectableError(
            ErrorCode.INVALID_REQUEST_URI, "request_uri was pushed by another client"
        )
    stored = await config.store.take(key)
    if not isinstance(stored, Mapping) or not isinstance(stored.get("params"), Mapping):
        raise UnredirectableError(
            ErrorCode.INVALID_REQUEST_URI, "request_uri is invalid, expired or used"
        )
    if params.get("client_id") != stored.get("client_id"):
        raise UnredirectableError(
            ErrorCode.INVALID_REQUEST_URI, "request_uri was pushed by another client"
        )
    return {str(k): str(v) for k, v in stored["params"].items()}


async def _start(
    config: IssuerConfig, params: Mapping[str, str]
) -> PendingAuthorization | HttpResponse:
    if "request_uri" in params:
        params = await _load_par(config, params)
    elif config.require_par:
        # Validate the client first so the error can be redirected safely.
        try:
            pending = await validate_authorization_parameters(params, config)
        except UnredirectableError:
            raise
        except AuthorizationError:
            pending = None
        err = AuthorizationError(
            ErrorCode.INVALID_REQUEST, "pushed authorization request (PAR) required"
        )
        if pending is None:
            raise UnredirectableError(err.error, err.error_description)
        return authorization_error_redirect(config, pending.redirect_uri, pending.state, err)
    try:
        pending = await validate_authorization_parameters(params, config)
    except UnredirectableError:
        raise
    except AuthorizationError as err:
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri")
        if redirect_uri is None:
            registered = config.clients.registered.get(client_id, ())
            redirect_uri = registered[0] if len(registered) == 1 else None
        if redirect_uri is None:
            raise UnredirectableError(err.error, err.error_description) from None
        return authorization_error_redirect(config, redirect_uri, params.get("state"), err)
    handle = secrets.token_urlsafe(24)
    ttl = config.pending_authorization_ttl
    pending = attrs.evolve(pending, handle=handle, expires_at=config.clock() + ttl)
    await config.store.put(f"authz_pending:{handle}", pending.to_json(), ttl)
    return pending


async def _complete(
    config: IssuerConfig, pending: PendingAuthorization, result: Authenticated
) -> HttpResponse:
    if await config.store.take(f"authz_pending:{pending.handle}") is None:
        raise UnredirectableError(ErrorCode.INVALID_REQUEST, "authorization already completed")
    ids = pending.configuration_ids
    if result.configuration_ids is not None:
        ids = tuple(c for c in pending.configuration_ids if c in result.configuration_ids)
        if not ids:
            err = AuthorizationError(ErrorCode.ACCESS_DENIED, "nothing was approved")
            return authorization_error_redirect(config, pending.redirect_uri, pending.state, err)
    # An offer's issuer_state is single use, like its pre-authorized counterpart: taken only now,
    # when a code is issued (an abandoned or refused login leaves it usable).
    if (
        pending.issuer_state is not None
        and await config.store.take(f"issuer_state:{pending.issuer_state}") is None
    ):
        err = AuthorizationError(ErrorCode.INVALID_REQUEST, "issuer_state is expired or used")
        return authorization_error_redirect(config, pending.redirect_uri, pending.state, err)
    code = secrets.token_urlsafe(32)
    grant = AuthorizationCodeGrant(
        subject=result.subject,
        client_id=pending.client_id,
        redirect_uri=pending.redirect_uri,
        code_challenge=pending.code_challenge,
        code_challenge_method=pending.code_challenge_method,
        configuration_ids=ids,
        authorization_details_used=pending.authorization_details is not None,
        scope=pending.scope,
        dpop_jkt=pending.dpop_jkt,
        issuer_state=pending.issuer_state,
    )
    await store_authorization_code(config.store, code, grant, config.authorization_code_ttl)
    return redirect_response(authorization_response_url(config, pending, code))


async def handle_authorization(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> HttpResponse:
    """The authorization endpoint (GET, or POST from a login form); see the module docstring."""
    try:
        req, params = read_authorization_parameters(request, config)
        authenticator = config.user_authenticator
        handle = params.get(HANDLE_PARAMETER)
        if handle is not None and "client_id" not in params:
            stored = await config.store.get(f"authz_pending:{handle}")
            if not isinstance(stored, Mapping):
                raise UnredirectableError(
                    ErrorCode.INVALID_REQUEST, "the authorization request expired; start again"
                )
            pending = PendingAuthorization.from_json(stored)
        else:
            started = await _start(config, params)
            if isinstance(started, HttpResponse):
                return started
            pending = started
        if authenticator is None:  # validate_authorization_parameters refuses this earlier
            raise UnredirectableError(ErrorCode.SERVER_ERROR, "no user authenticator")
        result = await authenticator(req, pending)
        if isinstance(result, Respond):
            return result.response
        if isinstance(result, Denied):
            await config.store.delete(f"authz_pending:{pending.handle}")
            err = AuthorizationError(
                ErrorCode.ACCESS_DENIED, result.description or "the request was denied"
            )
            return authorization_error_redirect(config, pending.redirect_uri, pending.state, err)
        return await _complete(config, pending, result)
    except UnredirectableError as err:
        return _error_page(err)
    except AuthorizationError as err:  # only before a redirect_uri is known
        return _error_page(err)
    except StoreError:
        return temporarily_unavailable(html=True)
