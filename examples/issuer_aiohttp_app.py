"""Embedding the :class:`~oid4vci.issuer.Issuer` in an existing aiohttp application.

The app keeps its own pages and cookie login and hands the OID4VCI paths to the issuer with
:func:`oid4vci.transports.aiohttp.handler_for_aiohttp`. The issuer's identifier is
``<app>/oid4vci`` (endpoints under ``/oid4vci/``, metadata under ``/.well-known/``); it calls two
app hooks: ``cookie_login`` (a :class:`~oid4vci.issuer.config.UserAuthenticator`: logged-in users are
authenticated, others go through the app's ``/login`` and back) and ``employee_claims`` (a
:class:`~oid4vci.issuer.config.ClaimsSource`; :func:`oid4vci.sdjwt.sd` marks selectively disclosable
claims). ``main()`` serves the app on 127.0.0.1 (free port), plays browser and wallet through
the authorization code flow, and returns the badge's claims.

Run it: ``python -m examples.issuer_aiohttp_app``
"""

from __future__ import annotations

import hmac
import secrets
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import anyio
from aiohttp import web

from oid4vci.http import HttpRequest
from oid4vci.issuer import (
    Authenticated,
    CredentialConfigurationSpec,
    Issuer,
    IssuerConfig,
    MemoryStore,
    PendingLogin,
    Respond,
)
from oid4vci.issuer.authorization import HANDLE_PARAMETER
from oid4vci.issuer.config import AuthenticationResult
from oid4vci.issuer.responses import redirect_response
from oid4vci.jose import LocalSigner
from oid4vci.sdjwt import sd
from oid4vci.transports.aiohttp import AiohttpTransport, handler_for_aiohttp
from oid4vci.wallet import Oid4vciClient, WalletPolicy

USERS = {"bob": ("builder", "Bob", "Builder", "Construction")}  # the app's own user table
SESSIONS: dict[str, str] = {}  # session cookie value -> username


async def cookie_login(request: HttpRequest, pending: PendingLogin) -> AuthenticationResult:
    """Authenticate from the app's ``session`` cookie, else send the browser to /login."""
    morsel = SimpleCookie(request.headers.get("Cookie") or "").get("session")
    user = SESSIONS.get(morsel.value) if morsel is not None else None
    if user is not None:
        return Authenticated(subject=user)
    resume = f"{urlsplit(request.url).path}?{urlencode({HANDLE_PARAMETER: pending.handle})}"
    return Respond(response=redirect_response("/login?" + urlencode({"next": resume})))


async def employee_claims(subject: str, configuration_id: str) -> Mapping[str, Any]:
    """The badge's claims; the personal ones selectively disclosable."""
    _, given, family, department = USERS[subject]
    return {
        "employee_id": subject,
        "given_name": sd(given),
        "family_name": sd(family),
        "department": sd(department),
    }


def build_app(base_url: str) -> web.Application:
    """The company's app, with the issuer mounted next to its own routes."""
    badge = CredentialConfigurationSpec(
        id="employee_badge",
        vct=base_url + "/oid4vci/employee_badge",
        scope="badge",
        display=[{"name": "Employee badge", "locale": "en-US"}],
    )
    issuer = Issuer(
        IssuerConfig(
            credential_issuer=base_url + "/oid4vci",
            credential_configurations=[badge],
            credential_signer=LocalSigner.generate("ES256", kid="badge-key-1"),
            claims_source=employee_claims,
            user_authenticator=cookie_login,
            store=MemoryStore(),
        )
    )

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        user, after = str(form.get("username", "")), str(form.get("next", "/"))
        if user not in USERS or not hmac.compare_digest(USERS[user][0], str(form.get("password"))):
            raise web.HTTPUnauthorized(text="wrong username or password")
        if not after.startswith("/") or after.startswith("//"):
            after = "/"  # never an open redirect
        SESSIONS[token := secrets.token_urlsafe(24)] = user
        response = web.HTTPSeeOther(after)
        response.set_cookie("session", token, httponly=True, samesite="Lax")
        raise response

    async def badge_offer(request: web.Request) -> web.Response:
        created = await issuer.create_authorization_code_offer(configuration_ids=[badge.id])
        return web.Response(text=created.offer_uri)  # a real app shows it as a QR code

    app = web.Application()
    app.router.add_post("/login", login)
    app.router.add_get("/badge-offer", badge_offer)
    for path in ("/oid4vci/{tail:.*}", "/.well-known/{tail:.*}"):
        app.router.add_route("*", path, handler_for_aiohttp(issuer.handle))
    return app


@asynccontextmanager
async def running_app(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve the app; yields its base URL (the socket is bound first so the URL is known)."""
    with socket.socket() as sock:
        sock.bind((host, port))
        base_url = f"http://{host}:{sock.getsockname()[1]}"
        runner = web.AppRunner(build_app(base_url), access_log=None)
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
            yield base_url
        finally:
            await runner.cleanup()


async def main() -> dict[str, Any]:
    """Serve the app, get a badge into a wallet, return (and print) its claims."""
    jar = aiohttp.CookieJar(unsafe=True)  # lets the "browser" keep cookies of 127.0.0.1
    async with (
        running_app() as base_url,
        aiohttp.ClientSession(cookie_jar=jar) as browser,
        AiohttpTransport(allow_insecure_loopback=True) as transport,
    ):
        async with browser.get(base_url + "/badge-offer") as page:
            offer_link = await page.text()
        policy = WalletPolicy(allow_insecure_loopback=True)  # only because this is 127.0.0.1
        client = Oid4vciClient(transport, client_id="example-wallet", policy=policy)
        offer = await client.parse_offer(offer_link)
        url, pending = await client.authorize(offer, redirect_uri="https://wallet.example/cb")
        async with browser.get(url, allow_redirects=False) as answer:  # not logged in yet
            resume = parse_qs(urlsplit(answer.headers["Location"]).query)["next"][0]
        form = {"username": "bob", "password": "builder", "next": resume}
        async with browser.post(base_url + "/login", data=form, allow_redirects=False) as answer:
            assert answer.status == 303, "login failed"
        async with browser.get(base_url + resume, allow_redirects=False) as answer:
            callback_url = answer.headers["Location"]  # https://wallet.example/cb?code=...
        result = await client.claim(pending, callback_url)
    (badge,) = result.credentials
    claims = badge.claims
    print(
        f"{badge.vct}: {claims['given_name']} {claims['family_name']} (verified {badge.verified})"
    )
    return claims


if __name__ == "__main__":
    anyio.run(main)
