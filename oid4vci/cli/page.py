"""The demo issuer's page: ``GET /`` of ``oid4vci serve`` lists its offers as QR codes.

One HTML page, no JavaScript: for each offer template of the demo issuer (pre-authorized,
pre-authorized with a Transaction Code, authorization code, the mDL when cbor2 is installed) a
QR code (SVG inline, made by
`segno <https://segno.readthedocs.io>`_), the offer URI as a link and as text, the tx_code or
the demo login it needs; then links to the Credential Issuer metadata, the authorization
server metadata (RFC 8414) and the JWT VC Issuer metadata.

The offers are the demo's reusable template links: every wallet that scans one fetches its
``credential_offer_uri`` and the issuer mints a fresh single-use code then, so showing the page
writes nothing to the issuer's store. The page is still sent with ``Cache-Control: no-store``
(the codes it leads to are minted fresh, and a cached copy would outlive the server's port).
Its ``Content-Security-Policy`` allows no script at all, no network load, and only the page's
own ``<style>`` element (by hash); inline SVG needs no allowance.

This is a demo route, so it lives with ``oid4vci serve`` (:func:`page_handler` wraps the
issuer's handler), not in :class:`~oid4vci.issuer.Issuer`. ``segno`` is imported only when a
page or a QR code is made; a missing one raises :class:`~oid4vci.errors.MissingDependencyError`
naming ``oid4vci[cli]``.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from oid4vci.errors import MissingDependencyError
from oid4vci.http import Headers, HttpRequest, HttpResponse
from oid4vci.urls import insert_well_known

if TYPE_CHECKING:
    from oid4vci.issuer.demo import DemoIssuer

__all__ = [
    "PAGE_CSP",
    "PAGE_METHODS",
    "OfferEntry",
    "demo_page_html",
    "demo_page_response",
    "page_handler",
    "page_path",
    "qr_svg",
    "qr_terminal",
]

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]

#: Methods the page answers (others get 405 with ``Allow``).
PAGE_METHODS = ("GET", "HEAD")

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#111;background:#fff}"
    "h1{font-size:1.4rem;margin:0 0 .3rem}"
    "main{display:flex;flex-wrap:wrap;gap:1.5rem}"
    "section{border:1px solid #ccc;border-radius:6px;padding:1rem;width:240px}"
    "h2{font-size:1.05rem;margin:0 0 .5rem}"
    "svg{display:block;margin:0 auto .5rem}"
    "code,a.offer{word-break:break-all;font-size:.75rem}"
    "code.tx-code{font-size:1.3rem;letter-spacing:.1em}"
    "dl{margin:.5rem 0 0}dt{font-weight:600}dd{margin:0 0 .4rem}"
    "footer{margin-top:1.5rem;font-size:.9rem}"
    ".warn{color:#8a1c1c}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

#: No script, no loads, nothing but the page's own ``<style>`` (by hash) and inline SVG.
PAGE_CSP = (
    "default-src 'none'; "
    f"style-src 'sha256-{_STYLE_HASH}'; "
    "img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_QR_SCALE = 4
_QR_ERROR = "m"

# (template name, section title, what the wallet needs)
_SECTIONS = (
    ("pre_auth", "Pre-authorized code", "Scan with a wallet: nothing else needed."),
    (
        "pre_auth_tx_code",
        "Pre-authorized code with transaction code",
        "Scan, then type the transaction code below.",
    ),
    (
        "auth_code",
        "Authorization code",
        "Scan, then log in at the issuer with the demo login below.",
    ),
    (
        "pre_auth_mdoc",
        "Mobile driving licence (ISO mdoc)",
        "Scan with an mdoc wallet that trusts the demo IACA root (trust_anchors_pem).",
    ),
)


def _segno() -> Any:
    try:
        import segno
    except ImportError as exc:
        raise MissingDependencyError(
            "QR codes need segno, which is not installed; "
            "install the command's extra: pip install 'oid4vci[cli]'"
        ) from exc
    return segno


def qr_svg(data: str, *, title: str) -> str:
    """``data`` as a QR code: an inline ``<svg>`` element (dark on a white square, quiet zone).

    ``title`` becomes the SVG's ``<title>`` (what a screen reader says).
    """
    qr = _segno().make(data, error=_QR_ERROR, micro=False)
    svg: str = qr.svg_inline(
        scale=_QR_SCALE, dark="#000", light="#fff", title=title, svgclass="qr", lineclass=None
    )
    return svg


def qr_terminal(data: str, out: TextIO) -> None:
    """Draw ``data`` as a QR code on the terminal ``out`` (half-block characters)."""
    _segno().make(data, error=_QR_ERROR, micro=False).terminal(out=out, compact=True)


class OfferEntry:
    """One offer on the page: its template name, title, link, and what else it needs."""

    def __init__(self, name: str, title: str, link: str, needs: str) -> None:
        self.name = name
        self.title = title
        self.link = link
        self.needs = needs


def page_path(issuer_url: str) -> str:
    """The page's path: the issuer identifier's path with a trailing ``/`` (``/`` for none)."""
    return urlsplit(issuer_url).path.rstrip("/") + "/"


def demo_page_html(demo: DemoIssuer, *, published_version: str) -> str:
    """The page for ``demo`` (its offers, tx_code, login and metadata links)."""
    issuer = demo.credential_issuer
    esc = html.escape
    sections = []
    for name, title, needs in _SECTIONS:
        link = demo.offer_links.get(name)
        if link is None:
            continue
        extra = ""
        if name == "pre_auth_tx_code":
            extra = f"<dt>Transaction code</dt><dd><code class='tx-code'>{esc(demo.tx_code)}</code></dd>"
        elif name == "auth_code":
            user, _, password = demo.login.partition(":")
            extra = (
                "<dt>Demo login</dt>"
                f"<dd>user <code class='login-user'>{esc(user)}</code>, password "
                f"<code class='login-password'>{esc(password)}</code></dd>"
            )
        sections.append(
            f"<section id='{esc(name, quote=True)}' data-offer='{esc(name, quote=True)}'>"
            f"<h2>{esc(title)}</h2>"
            f"{qr_svg(link, title=f'QR code of the offer: {title}')}"
            f"<p>{esc(needs)}</p>"
            f"<dl><dt>Offer</dt><dd><a class='offer' href='{esc(link, quote=True)}'>"
            f"{esc(link)}</a></dd>{extra}</dl>"
            "</section>"
        )
    links = [
        ("Credential Issuer metadata", insert_well_known(issuer, "openid-credential-issuer")),
        ("Authorization server metadata", insert_well_known(issuer, "oauth-authorization-server")),
        ("JWT VC Issuer metadata", insert_well_known(issuer, "jwt-vc-issuer")),
    ]
    items = "".join(
        f"<li><a class='metadata' href='{esc(url, quote=True)}'>{esc(text)}</a></li>"
        for text, url in links
    )
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>oid4vci demo issuer</title>"
        f"<style>{_STYLE}</style></head><body>"
        "<header><h1>oid4vci demo issuer</h1>"
        f"<p>Issuer <code class='issuer'>{esc(issuer)}</code>, publishing "
        f"{esc(published_version)} metadata. Each offer is reusable: every scan mints a fresh "
        "single-use code.</p></header>"
        f"<main>{''.join(sections)}</main>"
        f"<footer><ul>{items}</ul>"
        "<p class='warn'>Demo values (fixed transaction code, demo password): "
        "never use this issuer in production.</p></footer>"
        "</body></html>"
    )


def _page_headers(content_type: str) -> Headers:
    return Headers(
        [
            ("Content-Type", content_type),
            ("Cache-Control", "no-store"),
            ("Content-Security-Policy", PAGE_CSP),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
        ]
    )


def demo_page_response(page: str, method: str = "GET") -> HttpResponse:
    """The page as a response with strict headers (405 with ``Allow`` for other methods)."""
    if method not in PAGE_METHODS:
        headers = _page_headers("text/plain; charset=utf-8").with_header(
            "Allow", ", ".join(PAGE_METHODS)
        )
        return HttpResponse(status=405, headers=headers, body=b"method not allowed\n")
    body = b"" if method == "HEAD" else page.encode("utf-8")
    return HttpResponse(status=200, headers=_page_headers("text/html; charset=utf-8"), body=body)


def page_handler(demo: DemoIssuer, handler: Handler, *, published_version: str) -> Handler:
    """``handler`` with the demo page added at :func:`page_path` of the issuer identifier.

    The page is built once, here (so a missing ``segno`` is reported when the server starts).
    """
    page = demo_page_html(demo, published_version=published_version)
    path = page_path(demo.credential_issuer)

    async def handle(request: HttpRequest) -> HttpResponse:
        if urlsplit(request.url).path == path:
            return demo_page_response(page, request.method)
        return await handler(request)

    return handle
