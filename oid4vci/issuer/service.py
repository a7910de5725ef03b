"""The :class:`Issuer` service: one ``async handle(request) -> response`` for every endpoint.

``Issuer(config).handle`` is what both :class:`oid4vci.transports.memory.InMemoryTransport` and
the aiohttp adapter (``oid4vci.transports.aiohttp.make_aiohttp_app(issuer.handle)``) call.
It routes by method and path (paths are those of the configured endpoint URLs, so an issuer
identifier with a path such as ``https://host/tenant`` answers under ``/tenant/…``):

=====================================================  ========  =============================
path                                                   method    handler
=====================================================  ========  =============================
``/.well-known/openid-credential-issuer[/path]``,      GET       Credential Issuer metadata
``[/path]/.well-known/openid-credential-issuer``
``/.well-known/jwt-vc-issuer[/path]`` (+ appended)     GET       JWT VC Issuer metadata
``/.well-known/oauth-authorization-server[/path]``     GET       AS metadata (built-in AS only)
``<path>/credential``                                  POST      credential endpoint
``<path>/nonce``                                       POST      nonce endpoint
``<path>/deferred``                                    POST      deferred credential endpoint
``<path>/notification``                                POST      notification endpoint
``<path>/token``, ``<path>/par``                       POST      token, PAR (built-in AS only)
``<path>/authorize``                                   GET/POST  authorization endpoint
``<path>/offers/<id>``, ``<path>/offers/templates/<n>`` GET      credential offers by reference
``<path>/status-lists/<id>`` (``status.path``)          GET      Token Status List (``status``)
=====================================================  ========  =============================

Each route calls the endpoint's ``handle_*`` function (``handle_token``, ``handle_credential``,
...), which answers every protocol error itself. The service adds: an unknown path → 404 JSON,
a known path with another method → 405 with ``Allow``, a client over its rate limit
(``config.flood_limits``, :mod:`oid4vci.issuer.flood_limits`) → 429 with ``Retry-After``, a body
over ``config.max_body_size`` → 413 (checked before anything is parsed). As a safety net for hooks and custom code,
:class:`~oid4vci.errors.ProtocolError` → :func:`~oid4vci.issuer.responses.create_error_response`;
:class:`~oid4vci.errors.StoreError` (full or unavailable) → 503 ``temporarily_unavailable`` with ``Retry-After``;
any other :class:`~oid4vci.errors.ValidationError` → 400 with the endpoint's error code; any
other exception → 500 ``server_error`` (logged with the endpoint name and exception type only).

Multi-tenant: with a :class:`Tenancy` (``base_url``, ``resolver``, ``mode``), one ``Issuer``
serves many credential issuers. The tenant comes from

* ``mode="subdomain"`` (default): the ``Host`` header, ``<tenant>.<base host>``
  (:func:`~oid4vci.issuer.tenancy.tenant_from_host`);
* ``mode="path"``: the request path, for identifiers ``<base URL>/<tenant>``
  (:func:`~oid4vci.issuer.tenancy.tenant_from_path`): ``/.well-known/<name>[/base]/<tenant>``
  (1.0 inserted form), ``[/base]/<tenant>/.well-known/<name>`` (Draft 13–15 appended form) and
  ``[/base]/<tenant>/<endpoint>``. A path that is one of the base configuration's own routes is
  served by the base configuration first (so with ``config.credential_issuer`` equal to the
  tenant base, a tenant named ``offers`` would be shadowed by the base's offer endpoint).

The request is then served by ``config.for_issuer(<tenant issuer URL>)`` when the resolver
accepts the tenant (the resolver may also return a ready :class:`IssuerConfig`); a tenant the
resolver refuses gets 404. Tenant names are DNS labels in both modes, so hostile path segments
(``..``, ``%2e%2e``, ``a%2Fb``, upper case, empty) never reach the resolver.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlsplit

import attrs

from oid4vci.errors import (
    CredentialRequestError,
    ErrorCode,
    ProtocolError,
    StoreError,
    UsageError,
    ValidationError,
    WireFormatError,
)
from oid4vci.http import HttpRequest, HttpResponse, RequestDict
from oid4vci.issuer.as_metadata import handle_as_metadata
from oid4vci.issuer.authorization import handle_authorization
from oid4vci.issuer.client_attestation import handle_challenge
from oid4vci.issuer.config import IssuerConfig
from oid4vci.issuer.credential import handle_credential
from oid4vci.issuer.deferred import (
    complete_deferred,
    deny_deferred,
    handle_deferred_credential,
)
from oid4vci.issuer.flood_limits import (
    rate_limit_endpoint,
    rate_limit_wait,
    rate_limited,
    refused,
)
from oid4vci.issuer.metadata import (
    CREDENTIAL_ISSUER_WELL_KNOWN,
    JWT_VC_ISSUER_WELL_KNOWN,
    OAUTH_AS_WELL_KNOWN,
    create_issuer_metadata,
    create_jwt_vc_issuer_metadata,
    handle_issuer_metadata,
    handle_jwt_vc_issuer_metadata,
    well_known_paths,
)
from oid4vci.issuer.nonce import handle_nonce
from oid4vci.issuer.notification import NotificationHook, handle_notification
from oid4vci.issuer.offers import (
    OFFER_SCHEME,
    CreatedOffer,
    OfferOptions,
    OfferTemplate,
    TxCodeSpec,
    create_authorization_code_offer,
    create_pre_authorized_offer,
    handle_offer,
    offer_template_url,
)
from oid4vci.issuer.par import handle_par
from oid4vci.issuer.responses import (
    create_error_response,
    json_response,
    temporarily_unavailable,
)
from oid4vci.issuer.status_list import (
    StatusListCache,
    StatusName,
    handle_status_list,
    set_credential_status,
    status_list_uri,
)
from oid4vci.issuer.tenancy import (
    build_path_issuer_url,
    build_subdomain_issuer_url,
    tenant_from_host,
    tenant_from_path,
)
from oid4vci.issuer.token import handle_token
from oid4vci.models.offer import build_credential_offer_uri
from oid4vci.status import StatusReference
from oid4vci.versions import SpecVersion

__all__ = ["Issuer", "Tenancy", "TenantResolver"]

logger = logging.getLogger("oid4vci.issuer")

TenantResolver = Callable[[str], Awaitable["bool | IssuerConfig | None"]]
"""``async def resolve(tenant) -> bool | IssuerConfig | None``: True to serve ``tenant`` with
the base configuration moved to its sub-domain or path (:meth:`Issuer.tenant_config`), an
:class:`IssuerConfig` to serve it with that, False/None to answer 404."""

_TENANT_MODES = ("subdomain", "path")


@attrs.frozen(kw_only=True)
class Tenancy:
    """One :class:`Issuer` serving many credential issuers (tenants).

    ``base_url`` is the base issuer URL of the tenants: ``https://issuer.example`` gives
    ``https://<tenant>.issuer.example`` (``mode="subdomain"``, tenant from the ``Host``
    header) or ``https://issuer.example/<tenant>`` (``mode="path"``, tenant from the request
    path; a base path is kept, ``https://host/issuers`` gives ``https://host/issuers/<tenant>``).
    ``resolver`` decides whether a tenant exists (see :data:`TenantResolver`).
    """

    base_url: str
    resolver: TenantResolver = attrs.field(repr=False)
    mode: Literal["subdomain", "path"] = "subdomain"

    def __attrs_post_init__(self) -> None:
        if self.mode not in _TENANT_MODES:
            raise UsageError("tenancy mode must be 'subdomain' or 'path'")
        if self.mode == "path":
            build_path_issuer_url(self.base_url, "probe")  # refuse a bad base URL now

    def tenant_url(self, tenant: str) -> str:
        """The issuer identifier of ``tenant`` (raises ``ValidationError`` for a bad name)."""
        if self.mode == "path":
            return build_path_issuer_url(self.base_url, tenant)
        return build_subdomain_issuer_url(self.base_url, tenant)


Endpoint = Callable[[HttpRequest, IssuerConfig], Awaitable[HttpResponse]]


@attrs.frozen(kw_only=True)
class _Route:
    name: str
    methods: tuple[str, ...]
    endpoint: Endpoint
    error_code: str = ErrorCode.INVALID_REQUEST


def _path_of(url: str) -> str:
    try:
        return urlsplit(url).path or "/"
    except ValueError as exc:
        raise WireFormatError("the request URL is not a valid URL") from exc


class Issuer:
    """An OID4VCI credential issuer (and, unless an external one is configured, its own AS).

    :param config: the deployment (:class:`~oid4vci.issuer.config.IssuerConfig`).
    :param offer_templates: reusable offer links (:class:`OfferTemplate`), served at
        ``<issuer>/offers/templates/<name>``; more can be added with
        :meth:`register_offer_template`.
    :param on_notification: ``async`` hook called with each new notification event.
    :param tenancy: serve many credential issuers (see :class:`Tenancy`).
    """

    def __init__(
        self,
        config: IssuerConfig,
        *,
        offer_templates: Iterable[OfferTemplate] = (),
        on_notification: NotificationHook | None = None,
        tenancy: Tenancy | None = None,
    ) -> None:
        self.config = config
        self.on_notification = on_notification
        self.tenancy = tenancy
        self._templates: dict[str, OfferTemplate] = {}
        for template in offer_templates:
            self.register_offer_template(template)
        self._routes_cache: dict[tuple[bool, str], dict[str, _Route]] = {}
        self._notification_route = _Route(
            name="notification",
            methods=("POST",),
            endpoint=self._notification,
            error_code=ErrorCode.INVALID_NOTIFICATION_REQUEST,
        )
        self._offer_route = _Route(name="offer", methods=("GET",), endpoint=self._offer)
        #: The signed Status List Tokens and list bits this process serves.
        self.status_lists = StatusListCache()
        self._status_route = _Route(
            name="status_list", methods=("GET",), endpoint=self._status_list
        )

    def __repr__(self) -> str:
        return f"Issuer(credential_issuer={self.config.credential_issuer!r})"

    # -- configuration helpers -------------------------------------------------------------

    @property
    def credential_issuer(self) -> str:
        """The credential issuer identifier."""
        return self.config.credential_issuer

    @property
    def offer_templates(self) -> Mapping[str, OfferTemplate]:
        """The registered offer templates by name."""
        return dict(self._templates)

    def register_offer_template(self, template: OfferTemplate) -> str:
        """Add (or replace) an offer template; returns its URL at this issuer."""
        for cid in template.configuration_ids:
            if cid not in self.config.credential_configurations:
                raise UsageError(f"unknown credential configuration {cid!r}")
        self._templates[template.name] = template
        return offer_template_url(template.name, self.config)

    def offer_template_url(self, name: str, *, config: IssuerConfig | None = None) -> str:
        """The https URL of template ``name`` (``<issuer>/offers/templates/<name>``)."""
        if name not in self._templates:
            raise KeyError(name)
        return offer_template_url(name, config or self.config)

    def offer_template_link(
        self, name: str, *, scheme: str = OFFER_SCHEME, config: IssuerConfig | None = None
    ) -> str:
        """``openid-credential-offer://?credential_offer_uri=<template URL>`` (reusable)."""
        url = self.offer_template_url(name, config=config)
        return build_credential_offer_uri(None, offer_uri=url, scheme=scheme)

    def tenant_url(self, tenant: str) -> str:
        """The issuer identifier of ``tenant`` in this issuer's tenant mode.

        ``https://<tenant>.<base host>`` (sub-domain) or ``<base URL>/<tenant>`` (path). Raises
        :class:`~oid4vci.errors.ValidationError` for an invalid tenant name.
        """
        if self.tenancy is None:
            raise UsageError("this issuer is not multi-tenant")
        return self.tenancy.tenant_url(tenant)

    def tenant_config(self, tenant: str) -> IssuerConfig:
        """The configuration of ``tenant`` (without asking the resolver).

        The base configuration moved to :meth:`tenant_url` with ``config.for_issuer``, so its
        store is scoped to the tenant.
        """
        return self.config.for_issuer(self.tenant_url(tenant))

    # -- conveniences ----------------------------------------------------------------------

    async def create_pre_authorized_offer(
        self,
        *,
        configuration_ids: Sequence[str],
        subject: str,
        tx_code: TxCodeSpec | None = None,
        options: OfferOptions | None = None,
        config: IssuerConfig | None = None,
    ) -> CreatedOffer:
        """See :func:`oid4vci.issuer.offers.create_pre_authorized_offer`."""
        return await create_pre_authorized_offer(
            config or self.config,
            configuration_ids=configuration_ids,
            subject=subject,
            tx_code=tx_code,
            options=options,
        )

    async def create_authorization_code_offer(
        self,
        *,
        configuration_ids: Sequence[str],
        options: OfferOptions | None = None,
        config: IssuerConfig | None = None,
    ) -> CreatedOffer:
        """See :func:`oid4vci.issuer.offers.create_authorization_code_offer`."""
        return await create_authorization_code_offer(
            config or self.config, configuration_ids=configuration_ids, options=options
        )

    async def complete_deferred(self, transaction_id: str, claims: Mapping[str, Any]) -> None:
        """See :func:`oid4vci.issuer.deferred.complete_deferred`."""
        await complete_deferred(transaction_id, self.config, claims)

    async def deny_deferred(self, transaction_id: str) -> None:
        """See :func:`oid4vci.issuer.deferred.deny_deferred`."""
        await deny_deferred(transaction_id, self.config)

    async def set_credential_status(
        self,
        reference: tuple[str, int] | StatusReference | str,
        status: StatusName | int,
        *,
        configuration_id: str | None = None,
        config: IssuerConfig | None = None,
    ) -> list[StatusReference]:
        """See :func:`oid4vci.issuer.status_list.set_credential_status`.

        ``reference`` is a ``(uri, idx)`` pair or a subject ("all credentials of subject X",
        only those of ``configuration_id`` when given); ``status`` is ``"valid"``,
        ``"invalid"`` or ``"suspended"``. Returns the entries changed.
        """
        return await set_credential_status(
            reference, config or self.config, status, configuration_id=configuration_id
        )

    def metadata(self, version: SpecVersion | None = None) -> dict[str, Any]:
        """The Credential Issuer metadata document (see :func:`create_issuer_metadata`)."""
        return create_issuer_metadata(self.config, version=version)

    def jwt_vc_issuer_metadata(self) -> dict[str, Any]:
        """The JWT VC Issuer metadata document."""
        return create_jwt_vc_issuer_metadata(self.config)

    # -- routing ---------------------------------------------------------------------------

    def _routes(self, config: IssuerConfig) -> dict[str, _Route]:
        cache_key = (config.builtin_authorization_server, config.credential_issuer)
        cached = self._routes_cache.get(cache_key)
        if cached is not None:
            return cached
        # (paths, route): the first route added for a path wins.
        table: list[tuple[Iterable[str], _Route]] = [
            (well_known_paths(config, CREDENTIAL_ISSUER_WELL_KNOWN), _METADATA_ROUTE),
            (well_known_paths(config, JWT_VC_ISSUER_WELL_KNOWN), _JWT_VC_ISSUER_ROUTE),
            *(
                ((_path_of(config.endpoint(name)),), route)
                for name, route in _ENDPOINT_ROUTES.items()
            ),
            ((_path_of(config.endpoint("notification")),), self._notification_route),
        ]
        if config.builtin_authorization_server:
            table.append((well_known_paths(config, OAUTH_AS_WELL_KNOWN), _AS_METADATA_ROUTE))
            table.extend(
                ((_path_of(config.endpoint(name)),), route)
                for name, route in _AS_ENDPOINT_ROUTES.items()
            )
        routes: dict[str, _Route] = {}
        for paths, route in table:
            for path in paths:
                routes.setdefault(path, route)
        if len(self._routes_cache) < 1024:
            self._routes_cache[cache_key] = routes
        return routes

    def _route_for(self, config: IssuerConfig, path: str) -> _Route | None:
        route = self._routes(config).get(path)
        if route is not None:
            return route
        prefix = _path_of(config.endpoint("offer", "x"))[:-1]
        if path.startswith(prefix) and len(path) > len(prefix):
            return self._offer_route
        if config.status is not None:
            prefix = _path_of(status_list_uri("", config))
            if path.startswith(prefix) and len(path) > len(prefix):
                return self._status_route
        return None

    def _tenant_of(self, request: HttpRequest, base_url: str) -> str | None:
        assert self.tenancy is not None
        if self.tenancy.mode == "path":
            path = _path_of(request.url)
            if self._route_for(self.config, path) is not None:
                return None  # the base configuration's own endpoint
            return tenant_from_path(path, base_url)
        host = request.headers.get("Host") or urlsplit(request.url).netloc
        return tenant_from_host(host, base_url)

    async def _config_for(self, request: HttpRequest) -> IssuerConfig | None:
        if self.tenancy is None:
            return self.config
        tenant = self._tenant_of(request, self.tenancy.base_url)
        if tenant is None:
            return self.config
        resolved = await self.tenancy.resolver(tenant)
        if isinstance(resolved, IssuerConfig):
            return resolved
        if resolved:
            return self.tenant_config(tenant)
        return None

    # -- endpoints bound to this instance ------------------------------------------------

    async def _notification(self, request: HttpRequest, config: IssuerConfig) -> HttpResponse:
        return await handle_notification(request, config, on_notification=self.on_notification)

    async def _offer(self, request: HttpRequest, config: IssuerConfig) -> HttpResponse:
        return await handle_offer(request, config, templates=self._templates)

    async def _status_list(self, request: HttpRequest, config: IssuerConfig) -> HttpResponse:
        return await handle_status_list(request, config, cache=self.status_lists)

    # -- the handler ---------------------------------------------------------------------

    async def handle(self, request: HttpRequest | RequestDict) -> HttpResponse:
        """Answer one HTTP request (never raises for protocol or input errors)."""
        route_name = "unknown"
        route: _Route | None = None
        config: IssuerConfig | None = None
        try:
            req = HttpRequest.coerce(request)
            config = await self._config_for(req)
            if config is None:
                return _not_found()
            path = _path_of(req.url)
            route = self._route_for(config, path)
            if route is None:
                return _not_found()
            route_name = route.name
            if req.method not in route.methods:
                return _method_not_allowed(route.methods)
            limited = rate_limit_endpoint(route.name, path)
            wait = await rate_limit_wait(req, config, limited)
            if wait > 0:
                return rate_limited(limited, config, wait, html=route.name == "authorize")
            if len(req.body) > config.max_body_size:
                return json_response(
                    413, {"error": route.error_code, "error_description": "request body too large"}
                )
            return await route.endpoint(req, config)
        except ProtocolError as err:
            response = create_error_response(err)
            if err.status == 405 and route is not None:
                return _with_allow(response, route.methods)
            return response
        except StoreError as exc:
            if config is None:
                return temporarily_unavailable()
            return refused(exc, config, route_name)
        except ValidationError as exc:
            code = route.error_code if route is not None else ErrorCode.INVALID_REQUEST
            return create_error_response(CredentialRequestError(code, str(exc)))
        except Exception as exc:
            # A bug in the application's hooks (claims source, login, notification) or in ours:
            # the client gets 500; the log gets the exception type and where it was raised
            # (file, line, function of every frame), never its message or source lines, which
            # may hold claims, tokens or keys.
            logger.error(
                "issuer endpoint %s failed with %s; traceback (most recent call last):\n%s",
                route_name,
                type(exc).__name__,
                _frames(exc),
            )
            return json_response(500, {"error": ErrorCode.SERVER_ERROR})

    async def __call__(self, request: HttpRequest | RequestDict) -> HttpResponse:
        """Same as :meth:`handle`."""
        return await self.handle(request)


def _frames(exc: BaseException) -> str:
    """Where ``exc`` was raised: one ``file:line in function`` per frame, nothing else."""
    return "\n".join(
        f"  {frame.filename}:{frame.lineno} in {frame.name}"
        for frame in traceback.extract_tb(exc.__traceback__)
    )


def _not_found() -> HttpResponse:
    return json_response(404, {"error": "not_found", "error_description": "no such endpoint"})


def _with_allow(response: HttpResponse, methods: Sequence[str]) -> HttpResponse:
    return attrs.evolve(response, headers=response.headers.with_header("Allow", ", ".join(methods)))


def _method_not_allowed(methods: Sequence[str]) -> HttpResponse:
    response = json_response(
        405, {"error": ErrorCode.INVALID_REQUEST, "error_description": "method not allowed"}
    )
    return _with_allow(response, methods)


_POST = ("POST",)
_METADATA_ROUTE = _Route(name="metadata", methods=("GET",), endpoint=handle_issuer_metadata)
_JWT_VC_ISSUER_ROUTE = _Route(
    name="jwt_vc_issuer", methods=("GET",), endpoint=handle_jwt_vc_issuer_metadata
)
_AS_METADATA_ROUTE = _Route(name="as_metadata", methods=("GET",), endpoint=handle_as_metadata)
#: The issuer's own endpoints by ``IssuerConfig.endpoint`` name (the notification endpoint,
#: which needs this Issuer's hook, is added per instance).
_ENDPOINT_ROUTES: dict[str, _Route] = {
    "credential": _Route(
        name="credential",
        methods=_POST,
        endpoint=handle_credential,
        error_code=ErrorCode.INVALID_CREDENTIAL_REQUEST,
    ),
    "nonce": _Route(name="nonce", methods=_POST, endpoint=handle_nonce),
    "deferred_credential": _Route(
        name="deferred",
        methods=_POST,
        endpoint=handle_deferred_credential,
        error_code=ErrorCode.INVALID_CREDENTIAL_REQUEST,
    ),
}
#: The built-in authorization server's endpoints (off with an external one).
_AS_ENDPOINT_ROUTES: dict[str, _Route] = {
    "token": _Route(name="token", methods=_POST, endpoint=handle_token),
    "par": _Route(name="par", methods=_POST, endpoint=handle_par),
    "challenge": _Route(name="challenge", methods=_POST, endpoint=handle_challenge),
    "authorize": _Route(name="authorize", methods=("GET", "POST"), endpoint=handle_authorization),
}
