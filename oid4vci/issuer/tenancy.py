"""Multi-tenant issuers on sub-domains: ``https://issuer.example.com`` + ``acme`` →
``https://acme.issuer.example.com``.

Each tenant is its own credential issuer identifier; serve it with
``config.for_issuer(build_subdomain_issuer_url(base, tenant))``, which also scopes the store
so codes, tokens and nonces of one tenant are worthless at another.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from oid4vci.errors import ValidationError
from oid4vci.urls import require_secure_url

__all__ = ["build_subdomain_issuer_url", "tenant_from_host", "validate_tenant_label"]

_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


def validate_tenant_label(tenant: str, *, allow_punycode: bool = False) -> str:
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
    label = validate_tenant_label(tenant, allow_punycode=allow_punycode)
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
        return validate_tenant_label(label, allow_punycode=True)
    except ValidationError:
        return None
