"""Multi-tenant issuers, on sub-domains or on paths.

* Sub-domains: ``https://issuer.example.com`` + ``acme`` → ``https://acme.issuer.example.com``
  (:func:`build_subdomain_issuer_url`; the tenant comes from the ``Host`` header,
  :func:`tenant_from_host`).
* Paths: ``https://issuer.example.com`` (or ``https://host/issuers``) + ``acme`` →
  ``https://issuer.example.com/acme`` (:func:`build_path_issuer_url`; the tenant comes from the
  request path, :func:`tenant_from_path`, in every place an issuer with a path answers: the
  RFC 8414 inserted well-known form ``/.well-known/<name>/acme``, the Draft 13–15 appended
  form ``/acme/.well-known/<name>`` and the endpoints ``/acme/token``, ``/acme/offers/…``).

Both forms use the same tenant names: DNS labels (:func:`verify_tenant_label`), so a path
tenant can never be ``..``, hold a slash (plain or ``%2F``) or be empty. Each tenant is its own
credential issuer identifier; serve it with ``config.for_issuer(<tenant URL>)``, which also
scopes the store so codes, tokens and nonces of one tenant are worthless at another.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from oid4vci.errors import ValidationError
from oid4vci.urls import require_secure_url

__all__ = [
    "build_path_issuer_url",
    "build_subdomain_issuer_url",
    "tenant_from_host",
    "tenant_from_path",
    "verify_tenant_label",
]

_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def verify_tenant_label(tenant: str, *, allow_punycode: bool = False) -> str:
    """Return ``tenant`` lower-cased when it is a valid DNS label; raise :class:`ValidationError`.

    1–63 characters of ``[a-z0-9-]``, no leading or trailing hyphen, no dots, and no
    ``xn--`` (or any ``??--``) prefix unless ``allow_punycode``.
    """
    if not isinstance(tenant, str):
        raise ValidationError("tenant must be a string")
    label = tenant.lower()
    if not label.isascii() or not _LABEL_RE.fullmatch(label):
        raise ValidationError("tenant must be a DNS label: 1-63 of [a-z0-9-], no edge hyphens")
    if len(label) >= 4 and label[2:4] == "--" and not (allow_punycode and label.startswith("xn")):
        raise ValidationError("tenant must not use a reserved '??--' prefix")
    return label


def _check_base(base: str) -> tuple[str, str, int | None, str]:
    require_secure_url(base, allow_insecure_loopback=True, what="base issuer URL")
    parts = urlsplit(base)
    if parts.query:
        raise ValidationError("base issuer URL must not have a query")
    host = parts.hostname or ""
    return parts.scheme, host, parts.port, parts.path


def build_subdomain_issuer_url(base: str, tenant: str, *, allow_punycode: bool = False) -> str:
    """The issuer identifier of ``tenant`` under ``base`` (port and path kept).

    ``base`` must be https (http only for loopback hosts such as ``localhost``).
    """
    label = verify_tenant_label(tenant, allow_punycode=allow_punycode)
    scheme, host, port, path = _check_base(base)
    if ":" in host:
        raise ValidationError("base issuer URL must use a host name, not an IP address")
    netloc = f"{label}.{host}" + (f":{port}" if port is not None else "")
    return urlunsplit((scheme, netloc, path, "", ""))


def tenant_from_host(host: str, base: str) -> str | None:
    """The tenant label of ``host`` (a ``Host`` header value) under ``base``, or ``None``.

    ``acme.issuer.example.com`` (with ``base`` ``https://issuer.example.com``) → ``acme``.
    The port of ``host`` must match ``base``'s port when either has one.
    """
    scheme, base_host, base_port, _ = _check_base(base)
    default = 443 if scheme == "https" else 80
    value = host.strip().lower().rstrip(".")
    name, sep, port_text = value.rpartition(":")
    if sep and port_text.isdigit() and "]" not in port_text:
        port: int | None = int(port_text)
        value = name
    else:
        port = None
    if (port or default) != (base_port or default):
        return None
    suffix = "." + base_host
    if not value.endswith(suffix):
        return None
    label = value[: -len(suffix)]
    try:
        return verify_tenant_label(label, allow_punycode=True)
    except ValidationError:
        return None


def _base_path(base: str) -> str:
    """The path of a path-tenant base URL without its terminating ``/`` (``""`` for none)."""
    _check_base(base)
    path = urlsplit(base).path.rstrip("/")
    segments = path.split("/")[1:]
    if any(seg in ("", ".", "..") or "%" in seg for seg in segments):
        raise ValidationError("base issuer URL path must not have empty, dot or encoded segments")
    return path


def build_path_issuer_url(base: str, tenant: str, *, allow_punycode: bool = False) -> str:
    """The issuer identifier of path tenant ``tenant`` under ``base``: ``<base>/<tenant>``.

    ``https://issuer.example`` + ``acme`` → ``https://issuer.example/acme``;
    ``https://host/issuers/`` + ``acme`` → ``https://host/issuers/acme``. ``tenant`` must be a
    DNS label as for sub-domains (:func:`verify_tenant_label`; returned lower-cased);
    ``base`` must be https (http only for loopback hosts), without query, fragment, or empty,
    dot or percent-encoded path segments.
    """
    label = verify_tenant_label(tenant, allow_punycode=allow_punycode)
    path = _base_path(base)
    parts = urlsplit(base)
    return urlunsplit((parts.scheme, parts.netloc, f"{path}/{label}", "", ""))


def _canonical_label(segment: str) -> str | None:
    try:
        label = verify_tenant_label(segment, allow_punycode=True)
    except ValidationError:
        return None
    # Paths are case-sensitive: only the exact (lower-case) form names the tenant.
    return label if label == segment else None


def tenant_from_path(path: str, base: str) -> str | None:
    """The tenant named by request ``path`` for path tenants under ``base``, or ``None``.

    ``base`` is the base issuer URL (or just its path, starting with ``/``). With base path
    ``/issuers`` these all name ``acme``:

    * ``/.well-known/openid-credential-issuer/issuers/acme`` (1.0 / RFC 8414 inserted form;
      any single ``/.well-known/<name>`` segment, e.g. ``oauth-authorization-server``);
    * ``/issuers/acme/.well-known/openid-credential-issuer`` (Draft 13–15 appended form);
    * ``/issuers/acme`` and ``/issuers/acme/<anything>`` (endpoints).

    ``path`` is the raw (still percent-encoded) request path; a query or fragment is ignored.
    The tenant segment must be a lower-case DNS label, so ``..``, ``%2e%2e``, ``a%2Fb``, empty
    segments and upper case give ``None``; so does a path outside ``base``.
    """
    base_path = base.rstrip("/") if base.startswith("/") else _base_path(base)
    value = path.split("#", 1)[0].split("?", 1)[0]
    if not value.startswith("/"):
        return None
    if value.startswith("/.well-known/"):
        name, sep, rest = value[len("/.well-known/") :].partition("/")
        identifier_path = "/" + rest  # the issuer identifier's path, e.g. /issuers/acme
        if name and sep and identifier_path.startswith(base_path + "/"):
            segment = identifier_path[len(base_path) + 1 :]
            if "/" not in segment:
                return _canonical_label(segment)
    prefix = base_path + "/"
    if not value.startswith(prefix):
        return None
    segment = value[len(prefix) :].split("/", 1)[0]
    return _canonical_label(segment)
