"""The issuer mounted in a Starlette application (FastAPI: the same ``mount`` call).

:func:`oid4vci.transports.asgi.asgi_app` turns ``issuer.handle`` into an ASGI application;
mounting it at ``/`` serves every issuer route (metadata, offers, authorization, token, nonce,
credential, ...) next to the app's own routes, which are matched first. Any ASGI server runs
it::

    uvicorn examples.issuer_starlette:app --port 8000

The same with FastAPI::

    app = FastAPI()
    app.mount("/", asgi_app(demo.issuer.handle))

``main()`` serves the app with uvicorn on a free port of 127.0.0.1, receives a credential with
the library's wallet over :class:`~oid4vci.transports.httpx.HttpxTransport` and returns its
claims. Run it: ``python -m examples.issuer_starlette``
"""

from __future__ import annotations

import socket
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route

from oid4vci.issuer import build_demo_issuer
from oid4vci.issuer.demo import DemoIssuer
from oid4vci.transports.asgi import asgi_app
from oid4vci.transports.httpx import HttpxTransport
from oid4vci.wallet import Oid4vciClient, WalletPolicy


def build_app(issuer_url: str) -> tuple[Starlette, DemoIssuer]:
    """The app with its own ``/health`` route and the demo issuer at ``issuer_url``."""
    demo = build_demo_issuer(issuer_url)

    async def health(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/health", health), Mount("/", app=asgi_app(demo.issuer.handle))])
    return app, demo


app, demo = build_app("http://127.0.0.1:8000")  # for `uvicorn examples.issuer_starlette:app`


async def main() -> dict[str, Any]:
    """Serve the app, receive a credential from it, return (and print) its claims."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        served, issuer = build_app(f"http://127.0.0.1:{sock.getsockname()[1]}")
        server = uvicorn.Server(uvicorn.Config(served, log_level="warning", access_log=False))
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(server.serve, [sock])
            while not server.started:  # noqa: ASYNC110 - uvicorn offers a flag, no event
                await anyio.sleep(0.01)
            async with HttpxTransport(allow_insecure_loopback=True) as transport:
                policy = WalletPolicy(allow_insecure_loopback=True)  # only because of 127.0.0.1
                client = Oid4vciClient(transport, policy=policy)
                offer = await client.parse_offer(issuer.offer_links["pre_auth_tx_code"])
                result = await client.accept_offer(offer, tx_code=issuer.tx_code)
            server.should_exit = True
    (credential,) = result.credentials
    print(f"{credential.vct}: {credential.claims['given_name']} (verified {credential.verified})")
    return credential.claims


if __name__ == "__main__":
    anyio.run(main)
