"""Using the issuer from any other web framework, through plain request dicts.

Every issuer entry point takes ``{"method", "url", "headers", "body"}`` (or an
:class:`~oid4vci.http.HttpRequest`) and returns an :class:`~oid4vci.http.HttpResponse`, so an
adapter is two small conversions. What it shows:

1. ``asgi_adapter``: a complete ASGI app around ``Issuer.handle`` (mount it in Starlette,
   FastAPI, Quart, Django's ASGI handler or run it with any ASGI server); ``call_asgi`` plays
   the ASGI server here so the example runs without one.
2. The pure helpers on their own, for a framework that routes itself: ``handle_nonce``;
   ``parse_credential_request`` reading a Draft 13 body (``format`` + ``vct`` + singular
   ``proof``) and a 1.0 body (``credential_configuration_id`` + ``proofs``) into one
   :class:`~oid4vci.issuer.credential.NormalizedCredentialRequest`; ``verify_dpop_jwt`` checking the
   DPoP proof of a request dict.

Run it: ``python -m examples.pure_helpers_other_framework``
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio

from oid4vci.dpop import verify_dpop_jwt
from oid4vci.http import HttpResponse, RequestDict
from oid4vci.issuer import build_demo_issuer, handle_nonce, parse_credential_request
from oid4vci.jose import LocalSigner, jwk_thumbprint
from oid4vci.wallet import build_dpop_jwt, build_key_proof

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Mapping[str, Any], Receive, Send], Awaitable[None]]
ISSUER_URL = "https://issuer.example"


def asgi_adapter(handler: Callable[[RequestDict], Awaitable[HttpResponse]]) -> AsgiApp:
    """An ASGI application sending every HTTP request to ``handler`` as a request dict."""

    async def app(scope: Mapping[str, Any], receive: Receive, send: Send) -> None:
        body, more = b"", True
        while more:  # the body may arrive in several messages
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
        host = dict(headers).get("host", "localhost")
        query = scope["query_string"].decode("latin-1")
        url = f"{scope['scheme']}://{host}{scope['raw_path'].decode('latin-1')}"
        request = {
            "method": scope["method"],
            "url": url + (f"?{query}" if query else ""),
            "headers": headers,
            "body": body,
        }
        response = await handler(request)
        raw_headers = [
            (k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.multi_items()
        ]
        await send(
            {"type": "http.response.start", "status": response.status, "headers": raw_headers}
        )
        await send({"type": "http.response.body", "body": response.body})

    return app


async def call_asgi(app: AsgiApp, method: str, path: str) -> tuple[int, dict[str, Any]]:
    """What an ASGI server does for one request; returns the status and the JSON body."""
    scope = {
        "type": "http",
        "method": method,
        "scheme": "https",
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"issuer.example")],
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent[0]["status"], json.loads(sent[1]["body"])


async def main() -> dict[str, Any]:
    """Run the adapter and the helpers; return what they produced."""
    issuer = build_demo_issuer(ISSUER_URL).issuer
    config = issuer.config
    app = asgi_adapter(issuer.handle)
    status, metadata = await call_asgi(app, "GET", "/.well-known/openid-credential-issuer")
    print(f"ASGI GET metadata -> {status}, credential_endpoint {metadata['credential_endpoint']}")

    # A framework with its own router calls the endpoint helpers directly.
    nonce_response = await handle_nonce({"method": "POST", "url": ISSUER_URL + "/nonce"}, config)
    c_nonce = nonce_response.json_body()["c_nonce"]

    holder = LocalSigner.generate("ES256")
    proof = await build_key_proof(holder, audience=ISSUER_URL, nonce=c_nonce)
    vct = config.credential_configurations["identity_credential"].vct
    bodies = {
        "draft 13": {
            "format": "vc+sd-jwt",
            "vct": vct,
            "proof": {"proof_type": "jwt", "jwt": proof},
        },
        "1.0": {"credential_configuration_id": "identity_credential", "proofs": {"jwt": [proof]}},
    }
    parsed = {}
    for name, body in bodies.items():
        request = {
            "method": "POST",
            "url": ISSUER_URL + "/credential",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps(body),
        }
        parsed[name] = normalized = parse_credential_request(request, config)
        print(
            f"{name:>8} body -> {normalized.version.value}: {normalized.configuration_id}, "
            f"{len(normalized.proofs)} {normalized.proof_type} proof(s)"
        )

    dpop_key = LocalSigner.generate("ES256")
    token_url = ISSUER_URL + "/token"
    dpop = await build_dpop_jwt(dpop_key, "POST", token_url)
    verified = await verify_dpop_jwt(
        {"method": "POST", "url": token_url, "headers": {"DPoP": dpop}}
    )
    assert verified.jkt == jwk_thumbprint(dpop_key.public_jwk)
    print(f"DPoP proof verified, key thumbprint {verified.jkt}")
    return {
        "metadata_status": status,
        "metadata": metadata,
        "c_nonce": c_nonce,
        "parsed": parsed,
        "dpop_jkt": verified.jkt,
    }


if __name__ == "__main__":
    anyio.run(main)
