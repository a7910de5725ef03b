"""Scripted login for the authorization-code flow against test issuers (``receive --login``).

Fetches the authorization URL with a cookie-keeping session, fills the issuer's HTML login form
(``username`` / ``password``), submits it and follows redirects until the loopback redirect URI
is reached. Only meant for test and demo issuers; real users log in through their browser.
"""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urljoin

import aiohttp

from oid4vci.errors import AuthorizationError, Oid4vciError, TransportError
from oid4vci.urls import require_secure_url

__all__ = ["LoginForm", "find_login_form", "scripted_login"]

_MAX_STEPS = 10
_MAX_PAGE = 256 * 1024


class LoginForm:
    """The first ``<form>`` of a page with its action, method and input fields."""

    def __init__(self, action: str, method: str, fields: dict[str, str]) -> None:
        self.action = action
        self.method = method
        self.fields = fields


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[LoginForm] = []
        self._current: LoginForm | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            self._current = LoginForm(
                attributes.get("action", ""), attributes.get("method", "get").lower(), {}
            )
            self.forms.append(self._current)
        elif tag in ("input", "button") and self._current is not None:
            name = attributes.get("name")
            if name and attributes.get("type", "text").lower() not in ("submit", "button"):
                self._current.fields[name] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None


def find_login_form(html: str) -> LoginForm | None:
    """The first form on the page that has ``username`` and ``password`` fields."""
    parser = _FormParser()
    parser.feed(html)
    for form in parser.forms:
        if "username" in form.fields and "password" in form.fields:
            return form
    return None


async def scripted_login(
    authorization_url: str, redirect_uri: str, username: str, password: str
) -> str:
    """Log in at ``authorization_url`` and return the callback URL the issuer redirected to.

    Raises :class:`AuthorizationError` when the login is refused or no form is found.
    """
    jar = aiohttp.CookieJar(unsafe=True)
    timeout = aiohttp.ClientTimeout(total=30)
    submitted = False
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=timeout) as session:
        method, url, data = "GET", authorization_url, None
        for _ in range(_MAX_STEPS):
            try:
                require_secure_url(url, allow_insecure_loopback=True, what="login page URL")
                async with session.request(method, url, data=data, allow_redirects=False) as resp:
                    location = resp.headers.get("Location")
                    body = (await resp.content.read(_MAX_PAGE)).decode("utf-8", "replace")
                    status = resp.status
            except Oid4vciError:  # an insecure URL (InsecureUrlError, also a ValueError)
                raise
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise TransportError("could not reach the login page") from exc
            except (ValueError, UnicodeError):  # a URL yarl or IDNA cannot use
                raise TransportError("the login page's URL is unusable") from None
            if status in (301, 302, 303, 307, 308) and location:
                try:
                    target = urljoin(url, location)
                except ValueError:  # e.g. "http://[::1"
                    raise TransportError("the login page redirected to an unusable URL") from None
                if target.startswith(redirect_uri):
                    return target
                method, url, data = "GET", target, None
                continue
            form = find_login_form(body)
            if form is None:
                raise AuthorizationError("access_denied", f"no login form (HTTP {status})")
            if submitted:
                raise AuthorizationError("access_denied", "login refused by the issuer")
            fields = dict(form.fields)
            fields["username"] = username
            fields["password"] = password
            method = "POST" if form.method == "post" else "GET"
            url = urljoin(url, form.action) if form.action else url
            data = fields
            submitted = True
    raise AuthorizationError("access_denied", "too many steps during login")
