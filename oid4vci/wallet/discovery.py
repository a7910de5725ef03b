"""Finding an issuer's metadata and its authorization server's metadata.

Rules:

* Credential Issuer metadata is fetched at the 1.0 location first (``/.well-known/
  openid-credential-issuer`` inserted between host and path), then at the drafts' location
  (appended to the identifier). Without a path both are the same URL and it is fetched once. A
  location that does not answer 200 with a JSON object is skipped; a document whose
  ``credential_issuer`` is not *string-identical* to the offer's issuer stops discovery
  (:class:`~oid4vci.errors.MetadataError`), it is never "the next best".
* The authorization server is the grant's ``authorization_server`` when the offer names one
  (it must be listed in ``authorization_servers``), else the first of
  ``authorization_servers``, else the issuer itself.
* Its metadata is read per RFC 8414 (``oauth-authorization-server`` inserted), then — when the
  policy allows — OpenID Connect discovery (``openid-configuration`` appended). The document's
  ``issuer`` must equal the identifier used.
* Documents are cached per identifier (per client) for ``policy.metadata_cache_ttl`` seconds
  (clock injected), or for the response's ``Cache-Control: max-age`` when that is shorter. A malformed credential configuration that the flow does not use does not stop
  discovery; asking for it does (:meth:`CredentialIssuerMetadata.configuration`).
* Signed metadata (OID4VCI 1.0 §12.2.3 ``application/jwt``; Draft 13–15 ``signed_metadata``)
  is asked for and checked per ``policy.signed_metadata`` by :func:`read_issuer_metadata_response`
  (:mod:`oid4vci.signed_metadata`): verified values replace the plain ones; a refusal is a
  :class:`~oid4vci.errors.SignedMetadataError` before any code is spent.
* Every URL is checked with :func:`oid4vci.urls.require_secure_url` (https, or http to loopback
  when the policy allows it) before anything is sent to it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from oid4vci.errors import MetadataError, SignedMetadataError, WireFormatError
from oid4vci.http import HttpResponse, Transport
from oid4vci.models import (
    AuthorizationServerMetadata,
    CredentialIssuerMetadata,
    parse_as_metadata,
    parse_issuer_metadata,
)
from oid4vci.signed_metadata import (
    SIGNED_METADATA_MEDIA_TYPE,
    apply_signed_metadata,
    verify_signed_metadata,
)
from oid4vci.tracing import send
from oid4vci.urls import append_well_known, insert_well_known, require_secure_url
from oid4vci.versions import SpecVersion

from .policy import WalletPolicy
from .steps import build_metadata_request, check_redirect

__all__ = [
    "Discovery",
    "MetadataCache",
    "as_metadata_urls",
    "cache_max_age",
    "discover",
    "fetch_as_metadata",
    "fetch_issuer_metadata",
    "fetch_json_document",
    "issuer_cache_key",
    "issuer_metadata_urls",
    "read_as_metadata",
    "read_issuer_metadata",
    "read_issuer_metadata_response",
    "read_metadata_response",
    "select_authorization_server",
]

_T = TypeVar("_T")


@attrs.frozen(kw_only=True)
class Discovery:
    """What discovery found: both documents (parsed and raw) and the issuer's spec version."""

    credential_issuer: str
    issuer_metadata: CredentialIssuerMetadata
    issuer_metadata_json: dict[str, Any] = attrs.field(repr=False)
    spec_version: SpecVersion
    authorization_server: str
    as_metadata: AuthorizationServerMetadata
    as_metadata_json: dict[str, Any] = attrs.field(repr=False)


class MetadataCache:
    """Raw metadata documents per key, each kept for ``ttl`` seconds of ``clock``."""

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.time) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        """The cached document, or None when absent or expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, doc = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        return doc

    def put(self, key: str, doc: dict[str, Any], *, max_age: float | None = None) -> None:
        """Cache ``doc`` under ``key`` for the TTL, or for ``max_age`` seconds when that is
        shorter (the response's ``Cache-Control: max-age``); no-op when either is 0."""
        ttl = self._ttl if max_age is None else min(self._ttl, max_age)
        if ttl > 0:
            self._entries[key] = (self._clock() + ttl, doc)


def cache_max_age(headers: Mapping[str, str]) -> float | None:
    """The ``max-age`` of a response's ``Cache-Control`` (RFC 9111 §5.2.2.1), else ``None``.

    A malformed ``max-age`` counts as 0 (not cached). ``no-store`` is not read: the wallet's
    metadata cache is the policy's choice (many issuers send ``no-store`` on every answer);
    ``max-age`` only shortens the policy's TTL.
    """
    value = headers.get("Cache-Control")
    if not value:
        return None
    for directive in value.split(","):
        name, _, argument = directive.strip().partition("=")
        if name.strip().lower() == "max-age":
            argument = argument.strip().strip('"')
            # delta-seconds = 1*DIGIT, ASCII digits only (RFC 9111 §1.2.2, RFC 5234 B.1):
            # str.isdigit() alone also takes "²" or "٣", which float() refuses or misreads.
            return float(argument) if argument.isascii() and argument.isdigit() else 0.0
    return None

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()


def issuer_metadata_urls(credential_issuer: str) -> list[str]:
    """Where to look for issuer metadata, in order: 1.0 inserted form, then the drafts' form."""
    urls = [
        insert_well_known(credential_issuer, "openid-credential-issuer"),
        append_well_known(credential_issuer, "openid-credential-issuer"),
    ]
    return list(dict.fromkeys(urls))


def as_metadata_urls(authorization_server: str, *, openid_configuration: bool = True) -> list[str]:
    """RFC 8414 ``oauth-authorization-server`` (inserted), then OIDC ``openid-configuration``."""
    urls = [insert_well_known(authorization_server, "oauth-authorization-server")]
    if openid_configuration:
        urls.append(append_well_known(authorization_server, "openid-configuration"))
    return list(dict.fromkeys(urls))


def read_issuer_metadata(
    doc: dict[str, Any], credential_issuer: str
) -> tuple[CredentialIssuerMetadata, SpecVersion]:
    """Parse issuer metadata; ``credential_issuer`` must be identical to the expected one."""
    if doc.get("credential_issuer") != credential_issuer:
        raise MetadataError("the metadata's credential_issuer is not the offer's issuer")
    return parse_issuer_metadata(doc)


def read_issuer_metadata_response(
    response: HttpResponse,
    credential_issuer: str,
    policy: WalletPolicy,
    *,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any] | None:
    """The metadata document of a Credential Issuer metadata answer, signed values applied
    per ``policy.signed_metadata``; ``None`` when the answer is not a 200 document (the next
    location is tried). Raises :class:`~oid4vci.errors.SignedMetadataError`."""
    if response.status != 200:
        return None
    mode = policy.signed_metadata

    def verify(token: str, *, typed: bool) -> dict[str, Any]:
        return verify_signed_metadata(
            token,
            credential_issuer=credential_issuer,
            trust_anchors=policy.trusted_x5c_roots,
            typed=typed,
            clock_skew=policy.clock_skew,
            clock=clock,
        )

    if response.media_type == SIGNED_METADATA_MEDIA_TYPE:
        if mode == "ignore":
            return None
        try:
            token = response.body.decode("ascii").strip()
        except UnicodeDecodeError:
            raise SignedMetadataError("signed metadata is not a compact JWT") from None
        return verify(token, typed=True)
    try:
        doc = response.json_body()
    except WireFormatError:
        return None
    if mode == "ignore":
        return doc
    signed = doc.get("signed_metadata")
    if signed is not None:
        if not isinstance(signed, str):
            raise SignedMetadataError("signed_metadata must be a JWT string")
        claims = verify(signed, typed=False)
        return apply_signed_metadata(doc, claims)
    if mode == "require":
        raise SignedMetadataError("the issuer's metadata is not signed (policy requires it)")
    return doc


def read_metadata_response(response: HttpResponse) -> dict[str, Any] | None:
    """The JSON object of a 200 answer to a metadata request (authorization server metadata,
    JWT VC Issuer Metadata, a JWKS); ``None`` when the answer is not one (a location that does
    not have it)."""
    if response.status != 200:
        return None
    try:
        return response.json_body()
    except WireFormatError:
        return None


def read_as_metadata(doc: dict[str, Any], authorization_server: str) -> AuthorizationServerMetadata:
    """Parse AS metadata; its ``issuer`` must be identical to the identifier used."""
    if doc.get("issuer") != authorization_server:
        raise MetadataError("the authorization server metadata 'issuer' does not match")
    try:
        return parse_as_metadata(doc)
    except WireFormatError as exc:
        raise MetadataError(f"authorization server metadata is malformed ({exc})") from None


def select_authorization_server(
    metadata: CredentialIssuerMetadata, grant_authorization_server: str | None = None
) -> str:
    """The AS identifier to use for a grant (see the module rules)."""
    listed = metadata.authorization_servers
    if grant_authorization_server is not None:
        if not listed or grant_authorization_server not in listed:
            raise MetadataError(
                "the offer names an authorization_server the issuer metadata does not list"
            )
        return grant_authorization_server
    if listed:
        return listed[0]
    return metadata.credential_issuer


async def fetch_json_document(
    transport: Transport,
    url: str,
    *,
    policy: WalletPolicy,
    what: str,
    languages: Sequence[str] = (),
) -> dict[str, Any]:
    """GET ``url`` (https checked first, redirects refused) and return its JSON object;
    :class:`MetadataError` when the answer is not 200 with a JSON object. ``languages`` are
    sent as ``Accept-Language``."""
    require_secure_url(url, allow_insecure_loopback=policy.allow_insecure_loopback, what=what)
    response = await send(transport, build_metadata_request(url, languages=languages))
    check_redirect(response)
    if response.status != 200:
        raise MetadataError(f"{what} answered {response.status}")
    try:
        return response.json_body()
    except WireFormatError:
        raise MetadataError(f"{what} is not JSON") from None


async def _load(
    transport: Transport,
    urls: list[str],
    read: Callable[[dict[str, Any]], _T],
    *,
    kind: str,
    key: str,
    policy: WalletPolicy,
    cache: MetadataCache | None,
    languages: Sequence[str] = (),
) -> tuple[_T, dict[str, Any]]:
    """``read`` of the document cached under ``key``, else of the first of ``urls`` that
    answers with a JSON object (a location that does not is skipped). A fetched document is
    cached only once ``read`` accepted it."""
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        return read(cached), cached
    for url in urls:
        try:
            doc = await fetch_json_document(
                transport, url, policy=policy, what=f"{kind} URL", languages=languages
            )
        except MetadataError:
            continue
        value = read(doc)
        if cache is not None:
            cache.put(key, doc)
        return value, doc
    raise MetadataError(f"no {kind} found")


def issuer_cache_key(
    credential_issuer: str, languages: Sequence[str] = (), signed: str = "verify-if-present"
) -> str:
    """The metadata cache key of an issuer's document (per ``Accept-Language`` asked for and
    per ``WalletPolicy.signed_metadata``: a document read under one mode is not another's)."""
    key = f"issuer {credential_issuer}"
    if signed != "verify-if-present":
        key = f"{key} signed={signed}"
    return f"{key} lang={','.join(languages)}" if languages else key


async def fetch_issuer_metadata(
    transport: Transport,
    credential_issuer: str,
    *,
    policy: WalletPolicy,
    cache: MetadataCache | None = None,
    clock: Callable[[], float] = time.time,
) -> tuple[CredentialIssuerMetadata, SpecVersion, dict[str, Any]]:
    """Fetch (or take from ``cache``) and check the issuer's metadata (signed metadata per
    ``policy.signed_metadata``, :func:`read_issuer_metadata_response`)."""
    require_secure_url(
        credential_issuer,
        allow_insecure_loopback=policy.allow_insecure_loopback,
        what="credential_issuer",
    )
    key = issuer_cache_key(credential_issuer, policy.languages, policy.signed_metadata)
    cached = cache.get(key) if cache is not None else None
    if cached is not None:
        meta, version = read_issuer_metadata(cached, credential_issuer)
        return meta, version, cached
    for url in issuer_metadata_urls(credential_issuer):
        require_secure_url(
            url, allow_insecure_loopback=policy.allow_insecure_loopback, what="metadata URL"
        )
        request = build_metadata_request(
            url, languages=policy.languages, signed=policy.signed_metadata != "ignore"
        )
        response = await send(transport, request)
        check_redirect(response)
        doc = read_issuer_metadata_response(response, credential_issuer, policy, clock=clock)
        if doc is None:
            continue
        meta, version = read_issuer_metadata(doc, credential_issuer)
        if cache is not None:
            cache.put(key, doc, max_age=cache_max_age(response.headers))
        return meta, version, doc
    raise MetadataError("no Credential Issuer metadata found")


async def fetch_as_metadata(
    transport: Transport,
    authorization_server: str,
    *,
    policy: WalletPolicy,
    cache: MetadataCache | None = None,
) -> tuple[AuthorizationServerMetadata, dict[str, Any]]:
    """Fetch (or take from ``cache``) and check an authorization server's metadata."""
    require_secure_url(
        authorization_server,
        allow_insecure_loopback=policy.allow_insecure_loopback,
        what="authorization server",
    )
    return await _load(
        transport,
        as_metadata_urls(
            authorization_server, openid_configuration=policy.openid_configuration_fallback
        ),
        lambda doc: read_as_metadata(doc, authorization_server),
        kind="authorization server metadata",
        key=f"as {authorization_server}",
        policy=policy,
        cache=cache,
    )


async def discover(
    transport: Transport,
    credential_issuer: str,
    *,
    policy: WalletPolicy,
    grant_authorization_server: str | None = None,
    cache: MetadataCache | None = None,
    clock: Callable[[], float] = time.time,
) -> Discovery:
    """Issuer metadata, then the chosen authorization server's metadata (``clock`` for the
    freshness of signed metadata)."""
    meta, version, doc = await fetch_issuer_metadata(
        transport, credential_issuer, policy=policy, cache=cache, clock=clock
    )
    as_id = select_authorization_server(meta, grant_authorization_server)
    as_meta, as_doc = await fetch_as_metadata(transport, as_id, policy=policy, cache=cache)
    return Discovery(
        credential_issuer=credential_issuer,
        issuer_metadata=meta,
        issuer_metadata_json=doc,
        spec_version=version,
        authorization_server=as_id,
        as_metadata=as_meta,
        as_metadata_json=as_doc,
    )
