"""The authorization endpoint (RFC 6749 §4.1, RFC 7636, RFC 9126, RFC 9207, RFC 9396).

Stages, composed by :func:`handle_authorization`:

* :func:`parse_authorization_request` — the front-channel request: the query (GET) or the
  form (POST from a login page), each parameter at most once (RFC 6749 §3.1);
* :func:`verify_authorization_request` — one authorization request's parameters (also used by
  the PAR endpoint): ``client_id`` and ``redirect_uri`` against the :class:`ClientPolicy`,
  ``response_type=code``, PKCE S256 (RFC 7636 §4.3), ``authorization_details`` (RFC 9396,
  OID4VCI 1.0 §5.1.1) / ``scope`` (§5.1.2) mapped to known credential configurations,
  ``issuer_state`` created by an offer, ``dpop_jkt`` (RFC 9449 §10); returns a
  :class:`PendingLogin`;
* the :class:`UserAuthenticator` hook, called with the :class:`PendingLogin` stored under
  ``authz_pending:<handle>``; it may answer :class:`Respond` (e.g. a login page that posts back
  to this endpoint with ``handle``), :class:`Denied` (→ ``access_denied``) or
  :class:`Authenticated`;
* :func:`create_authorization_response` — a single-use code stored (``code:<code>``, see
  :mod:`oid4vci.issuer.token`) and a 303 to ``redirect_uri?code=…&state=…&iss=…`` (RFC 6749
  §4.1.2, RFC 9207 §2; the request's ``issuer_state``, if any, is used up).

Errors about ``client_id`` / ``redirect_uri`` (or an unusable ``request_uri`` / ``handle``) are
shown as a 400 page and never redirected (RFC 6749 §4.1.2.1); other errors are redirected with
``error``, ``error_description``, ``state`` and ``iss``
(:func:`create_authorization_error_response`).

Store keys read (see :mod:`oid4vci.issuer.store_keys`): ``issuer_state:<value>`` (written by
the offer side: an :class:`IssuerStateRecord`; checked when the request
is verified and taken when a code is issued, so one offer yields at most one code; a second
authorization with it is redirected with ``invalid_request``), ``par:<request_uri>`` (a
:class:`ParRecord`, written by :mod:`oid4vci.issuer.par`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from oid4vci._wire import record_from_json, record_to_json, store_record
from oid4vci.errors import (
    AuthorizationError,
    ErrorCode,
    ProtocolError,
    StoreError,
    WireFormatError,
)
from oid4vci.http import FORM_CONTENT_TYPE, HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer import store_keys
from oid4vci.issuer.config import (
    Authenticated,
    Denied,
    IssuerConfig,
    PendingLogin,
    Respond,
    _str_tuple,
)
from oid4vci.issuer.flood_limits import claim_room, refused
from oid4vci.issuer.responses import clean_error_description, error_page, redirect_response
from oid4vci.issuer.token import AuthorizationCodeRecord, store_authorization_code
from oid4vci.models.authorization import AuthorizationDetail, parse_authorization_details

__all__ = [
    "HANDLE_PARAMETER",
    "MAX_PARAMETERS",
    "REQUEST_URI_PREFIX",
    "AuthorizationRequest",
    "IssuerStateRecord",
    "ParRecord",
    "UnredirectableError",
    "create_authorization_error_response",
    "create_authorization_response",
    "handle_authorization",
    "parse_authorization_request",
    "verify_authorization_details",
    "verify_authorization_request",
]

#: The form/query parameter carrying a pending authorization's handle (login form post-back).
HANDLE_PARAMETER = "handle"
#: Prefix of the ``request_uri`` values created by the PAR endpoint.
REQUEST_URI_PREFIX = "urn:ietf:params:oauth:request_uri:"

_CHALLENGE_RE = re.compile(r"[A-Za-z0-9\-_]{43}")
_JKT_RE = re.compile(r"[A-Za-z0-9\-_]{43}")
_MAX_PARAM = 4096
_MAX_DETAILS = 16 * 1024
_MAX_NAME = 64
_MAX_TOTAL = _MAX_DETAILS + 4 * _MAX_PARAM  # what a pending login or pushed request may hold
#: The most parameters an authorization request (or a pushed one) may have: the authorization
#: request's own (RFC 6749 §4.1.1, RFC 7636, RFC 9396, OID4VCI 1.0 §5.1) are about twenty.
MAX_PARAMETERS = 40


class UnredirectableError(AuthorizationError):
    """An authorization error that must be shown to the user, not sent to ``redirect_uri``."""


@attrs.frozen(kw_only=True, repr=False)
class AuthorizationRequest:
    """A parsed authorization request (RFC 6749 §4.1.1): the HTTP request and its parameters."""

    request: HttpRequest
    params: Mapping[str, str]

    def __repr__(self) -> str:
        return f"AuthorizationRequest(client_id={self.params.get('client_id')!r})"


@store_record
@attrs.frozen(kw_only=True, repr=False)
class ParRecord:
    """A pushed authorization request as stored under ``par:<request_uri>`` (RFC 9126 §2).

    ``attested_jkt`` is the thumbprint of the wallet attestation's instance key when the
    request was pushed with one: the authorization code is bound to it.
    """

    client_id: str
    params: Mapping[str, str]
    attested_jkt: str | None = None

    def __repr__(self) -> str:
        return f"ParRecord(client_id={self.client_id!r})"


@store_record
@attrs.frozen(kw_only=True)
class IssuerStateRecord:
    """What an authorization code offer stores under ``issuer_state:<value>`` (OID4VCI 1.0 §4.1.1).

    ``subject`` is an optional hint for the login hook; ``offer_id`` is the digest of the
    offer's id (never the id, a secret while the offer is unfetched).
    """

    configuration_ids: tuple[str, ...] = attrs.field(default=(), converter=_str_tuple)
    offer_id: str | None = None
    subject: str | None = None


def parse_authorization_request(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> AuthorizationRequest:
    """Parse a front-channel request: the query (GET) or the form body (POST).

    Raises :class:`UnredirectableError` (nothing is known yet that could be redirected to).
    """
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
    return AuthorizationRequest(request=req, params=params)


def _detail_configuration(config: IssuerConfig, detail: AuthorizationDetail) -> str:
    """The configuration id an ``openid_credential`` entry names (id, or D13/14 ``format``
    with ``vct``, ``jwt_vc_json`` with ``credential_definition.type``, or ``mso_mdoc`` with
    ``doctype``, Draft 13/14 Appendix A.2.3)."""
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
                spec.format == "mso_mdoc"
                and detail.format == "mso_mdoc"
                and detail.doctype is not None
                and spec.doctype == detail.doctype
            ):
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


def verify_authorization_details(
    text: str, config: IssuerConfig
) -> tuple[tuple[str, ...], tuple[dict[str, Any], ...]]:
    """Parse ``authorization_details`` and map each entry to a known configuration id.

    RFC 9396 §2, OID4VCI 1.0 §5.1.1 (``openid_credential`` entries).
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


async def verify_authorization_request(
    parsed: AuthorizationRequest, config: IssuerConfig
) -> PendingLogin:
    """Verify an authorization request's parameters; returns the login it waits for.

    The result has an empty ``handle``. Raises :class:`UnredirectableError` for a bad
    ``client_id`` / ``redirect_uri`` and :class:`AuthorizationError` otherwise.
    """
    params = parsed.params
    if len(params) > MAX_PARAMETERS:
        # Each is kept with the pending login (and a pushed request): a bound on their number
        # bounds what one unauthenticated request can make the store hold (RFC 9126 §2.1).
        raise UnredirectableError(ErrorCode.INVALID_REQUEST, "too many parameters")
    if sum(len(name) + len(value) for name, value in params.items()) > _MAX_TOTAL:
        raise UnredirectableError(ErrorCode.INVALID_REQUEST, "the request is too large")
    for name, value in params.items():
        if len(name) > _MAX_NAME:
            raise UnredirectableError(ErrorCode.INVALID_REQUEST, "a parameter name is too long")
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
        ids, details = verify_authorization_details(text, config)
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
        raw = await config.store.get(store_keys.issuer_state_key(issuer_state))
        stored = record_from_json(raw, IssuerStateRecord)
        if stored is None:
            raise AuthorizationError(ErrorCode.INVALID_REQUEST, "issuer_state is unknown")
        issuer_state_data = {k: v for k, v in record_to_json(stored).items() if v is not None}
        if not configuration_ids:
            configuration_ids.extend(
                c for c in stored.configuration_ids if c in config.credential_configurations
            )
    if not configuration_ids:
        raise AuthorizationError(
            ErrorCode.INVALID_SCOPE, "no known credential configuration was requested"
        )
    return PendingLogin(
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


def create_authorization_error_response(
    err: AuthorizationError, config: IssuerConfig, *, redirect_uri: str, state: str | None
) -> HttpResponse:
    """A 303 to ``redirect_uri`` carrying the error, ``state`` and ``iss`` (RFC 6749 §4.1.2.1,
    RFC 9207 §2)."""
    return redirect_response(
        _with_query(
            redirect_uri,
            {
                "error": err.error,
                "error_description": (
                    clean_error_description(err.error_description)
                    if err.error_description
                    else None
                ),
                "state": state,
                "iss": config.credential_issuer,
            },
        )
    )


def _error_page(err: AuthorizationError) -> HttpResponse:
    status = err.status if err.status != 401 else 400
    return error_page(status, err.error, err.error_description)


async def _load_par(config: IssuerConfig, params: Mapping[str, str]) -> ParRecord:
    request_uri = params["request_uri"]
    if not request_uri.startswith(REQUEST_URI_PREFIX):
        raise UnredirectableError(ErrorCode.INVALID_REQUEST_URI, "request_uri is not ours")
    key = store_keys.par_key(request_uri)
    # Check the client before taking: another client's attempt must not use it up.
    peeked = record_from_json(await config.store.get(key), ParRecord)
    if peeked is not None and params.get("client_id") != peeked.client_id:
        raise UnredirectableError(
            ErrorCode.INVALID_REQUEST_URI, "request_uri was pushed by another client"
        )
    stored = record_from_json(await config.store.take(key), ParRecord)
    if stored is None:
        raise UnredirectableError(
            ErrorCode.INVALID_REQUEST_URI, "request_uri is invalid, expired or used"
        )
    if params.get("client_id") != stored.client_id:
        raise UnredirectableError(
            ErrorCode.INVALID_REQUEST_URI, "request_uri was pushed by another client"
        )
    return stored


async def _start(parsed: AuthorizationRequest, config: IssuerConfig) -> PendingLogin | HttpResponse:
    params = parsed.params
    attested_jkt: str | None = None
    pushed_request = "request_uri" in params
    if pushed_request:
        # Room first: a 503 (quota) must leave the single-use request_uri for the retry that
        # Retry-After asks for.
        await claim_room("authorization_request", config)
        pushed = await _load_par(config, params)
        params, attested_jkt = dict(pushed.params), pushed.attested_jkt
        parsed = AuthorizationRequest(request=parsed.request, params=params)
    elif config.require_par:
        # Verify the client first so the error can be redirected safely.
        try:
            pending = await verify_authorization_request(parsed, config)
        except UnredirectableError:
            raise
        except AuthorizationError:
            pending = None
        err = AuthorizationError(
            ErrorCode.INVALID_REQUEST, "pushed authorization request (PAR) required"
        )
        if pending is None:
            raise UnredirectableError(err.error, err.error_description)
        return create_authorization_error_response(
            err, config, redirect_uri=pending.redirect_uri, state=pending.state
        )
    try:
        pending = await verify_authorization_request(parsed, config)
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
        return create_authorization_error_response(
            err, config, redirect_uri=redirect_uri, state=params.get("state")
        )
    if not pushed_request:
        await claim_room("authorization_request", config)
    handle = secrets.token_urlsafe(24)
    ttl = store_keys.PENDING_LOGIN.ttl(config)
    pending = attrs.evolve(pending, expires_at=config.clock() + ttl, attested_jkt=attested_jkt)
    # Stored without its handle (the key holds only the handle's digest); read back, it gets
    # the handle the form posted.
    await config.store.put(store_keys.pending_login_key(handle), record_to_json(pending), ttl)
    return attrs.evolve(pending, handle=handle)


async def create_authorization_response(
    login: PendingLogin, config: IssuerConfig, result: Authenticated
) -> HttpResponse:
    """Create the authorization code for a completed login and redirect to the client.

    303 to ``redirect_uri?code=…&state=…&iss=…`` (RFC 6749 §4.1.2, RFC 9207 §2); a login that
    approved nothing, or an ``issuer_state`` used meanwhile, is redirected as an error. Raises
    :class:`UnredirectableError` when the login was already completed.
    """
    if await config.store.take(store_keys.pending_login_key(login.handle)) is None:
        raise UnredirectableError(ErrorCode.INVALID_REQUEST, "authorization already completed")
    ids = login.configuration_ids
    if result.configuration_ids is not None:
        ids = tuple(c for c in login.configuration_ids if c in result.configuration_ids)
        if not ids:
            err = AuthorizationError(ErrorCode.ACCESS_DENIED, "nothing was approved")
            return create_authorization_error_response(
                err, config, redirect_uri=login.redirect_uri, state=login.state
            )
    # An offer's issuer_state is single use, like its pre-authorized counterpart: taken only now,
    # when a code is issued (an abandoned or refused login leaves it usable).
    if (
        login.issuer_state is not None
        and await config.store.take(store_keys.issuer_state_key(login.issuer_state)) is None
    ):
        err = AuthorizationError(ErrorCode.INVALID_REQUEST, "issuer_state is expired or used")
        return create_authorization_error_response(
            err, config, redirect_uri=login.redirect_uri, state=login.state
        )
    code = secrets.token_urlsafe(32)
    grant = AuthorizationCodeRecord(
        subject=result.subject,
        client_id=login.client_id,
        redirect_uri=login.redirect_uri,
        code_challenge=login.code_challenge,
        code_challenge_method=login.code_challenge_method,
        configuration_ids=ids,
        authorization_details_used=login.authorization_details is not None,
        scope=login.scope,
        dpop_jkt=login.dpop_jkt,
        issuer_state=login.issuer_state,
        attested_jkt=login.attested_jkt,
    )
    await store_authorization_code(
        config.store, code, grant, store_keys.AUTHORIZATION_CODE.ttl(config)
    )
    return redirect_response(
        _with_query(
            login.redirect_uri,
            {"code": code, "state": login.state, "iss": config.credential_issuer},
        )
    )


async def handle_authorization(
    request: HttpRequest | RequestDict, config: IssuerConfig
) -> HttpResponse:
    """The authorization endpoint (GET, or POST from a login form); see the module docstring.

    Answers errors (an HTML page or a redirect), never raises them; a full store is a 503 page.
    """
    try:
        parsed = parse_authorization_request(request, config)
        params = parsed.params
        authenticator = config.user_authenticator
        handle = params.get(HANDLE_PARAMETER)
        if handle is not None and "client_id" not in params:
            stored = record_from_json(
                await config.store.get(store_keys.pending_login_key(handle)), PendingLogin
            )
            if stored is None:
                raise UnredirectableError(
                    ErrorCode.INVALID_REQUEST, "the authorization request expired; start again"
                )
            pending = attrs.evolve(stored, handle=handle)
        else:
            started = await _start(parsed, config)
            if isinstance(started, HttpResponse):
                return started
            pending = started
        if authenticator is None:  # verify_authorization_request refuses this earlier
            raise UnredirectableError(ErrorCode.SERVER_ERROR, "no user authenticator")
        result = await authenticator(parsed.request, pending)
        if isinstance(result, Respond):
            return result.response
        if isinstance(result, Denied):
            await config.store.delete(store_keys.pending_login_key(pending.handle))
            err = AuthorizationError(
                ErrorCode.ACCESS_DENIED, result.description or "the request was denied"
            )
            return create_authorization_error_response(
                err, config, redirect_uri=pending.redirect_uri, state=pending.state
            )
        return await create_authorization_response(pending, config, result)
    except AuthorizationError as err:  # UnredirectableError, or before a redirect_uri is known
        return _error_page(err)
    except ProtocolError as err:
        return _error_page(AuthorizationError(err.error, err.error_description, status=err.status))
    except StoreError as exc:
        return refused(exc, config, "authorize", html=True)
