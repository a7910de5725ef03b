"""The authorization code flow, with the flow surviving a browser hop and a restart.

What it shows:

1. ``client.authorize(offer, redirect_uri=...)`` returns the URL to open in the browser and the
   :class:`~oid4vci.wallet.IssuanceFlow`, waiting for the authorization (PKCE verifier,
   ``state``, DPoP key, ...).
2. The wallet saves ``flow.to_json()`` to a file and may exit: the JSON is **secret** (it
   holds the PKCE verifier and the DPoP private key), so a real wallet encrypts it at rest.
3. The user logs in at the issuer in the browser; the issuer redirects to ``redirect_uri`` with
   ``code`` and ``state``. Here the "browser" is simulated: it opens the URL and posts the demo
   login form (``alice`` / ``wonderland``) through a transport that does not follow redirects.
4. A FRESH :class:`~oid4vci.wallet.Oid4vciClient` (new process, new transport) reads the file
   back with ``IssuanceFlow.from_json`` and calls ``claim(flow, callback_url)``,
   which checks ``state``/``iss``, redeems the code and fetches the credential.

Run it: ``python -m examples.wallet_authorization_code``
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import anyio

from oid4vci.http import HttpRequest
from oid4vci.issuer import build_demo_issuer
from oid4vci.issuer.demo import DEMO_PASSWORD, DEMO_USERNAME, DemoIssuer
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import IssuanceFlow, Oid4vciClient

ISSUER_URL = "https://issuer.example"
CLIENT_ID = "example-wallet"
REDIRECT_URI = "https://wallet.example.org/callback"


async def browser_login(demo: DemoIssuer, authorization_url: str) -> str:
    """Play the user's browser: open the URL, post the login form, return the redirect target."""
    async with InMemoryTransport(routes={ISSUER_URL: demo.handle}, raise_on_redirect=False) as web:
        page = await web.send(HttpRequest(method="GET", url=authorization_url))
        html = page.body.decode()
        action = re.search(r"<form method='post' action='([^']+)'", html)
        handle = re.search(r"name='handle' value='([^']+)'", html)
        assert page.status == 200 and action is not None and handle is not None
        form = {"handle": handle[1], "username": DEMO_USERNAME, "password": DEMO_PASSWORD}
        answer = await web.send(HttpRequest.form("POST", action[1], form))
    location = answer.headers.get("Location")
    assert answer.status == 303 and location is not None, "login failed"
    return location  # https://wallet.example.org/callback?code=...&state=...&iss=...


async def start(demo: DemoIssuer, pending_file: anyio.Path) -> str:
    """First wallet process: start the flow, save it, return the URL to open."""
    async with InMemoryTransport(routes={ISSUER_URL: demo.handle}) as transport:
        client = Oid4vciClient(transport, client_id=CLIENT_ID)
        offer = await client.parse_offer(demo.offer_links["auth_code"])
        url, flow = await client.authorize(offer, redirect_uri=REDIRECT_URI)
    await pending_file.write_text(flow.to_json())
    return url


async def finish(demo: DemoIssuer, pending_file: anyio.Path, callback_url: str) -> dict[str, Any]:
    """Second wallet process: restore the flow and claim the credential."""
    flow = IssuanceFlow.from_json(await pending_file.read_text())
    await pending_file.unlink()  # single use: never keep the secrets around
    async with InMemoryTransport(routes={ISSUER_URL: demo.handle}) as transport:
        client = Oid4vciClient(transport, client_id=CLIENT_ID)
        result = await client.claim(flow, callback_url)
    (credential,) = result.credentials
    assert credential.verified
    return credential.claims


async def main(workdir: Path | None = None) -> dict[str, Any]:
    """Run the whole flow; return the verified claims. ``workdir`` holds the saved flow."""
    demo = build_demo_issuer(ISSUER_URL)  # stays up while the wallet "restarts"
    with tempfile.TemporaryDirectory() as tmp:
        pending_file = anyio.Path(workdir or tmp) / "issuance-flow.json"
        url = await start(demo, pending_file)
        print(f"open in the browser: {url.split('?')[0]}?...")
        callback_url = await browser_login(demo, url)
        print(f"the browser came back to: {callback_url.split('?')[0]}?code=...")
        claims = await finish(demo, pending_file, callback_url)
    print(f"credential for {claims['given_name']} {claims['family_name']}")
    return claims


if __name__ == "__main__":
    anyio.run(main)
