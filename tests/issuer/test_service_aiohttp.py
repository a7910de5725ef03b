"""The Issuer served over real HTTP (aiohttp on 127.0.0.1), driven by raw requests."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import Issuer, OfferOptions, build_demo_issuer
from oid4vci.jose import LocalSigner
from oid4vci.pkce import code_challenge, generate_code_verifier
from oid4vci.transports.aiohttp import AiohttpTransport, serve
from oid4vci.versions import SpecVersion
from tests.conftest import FakeClock
from tests.issuer.test_service import (
    PRE_AUTH_GRANT,
    Session,
    check_sd_jwt_vc,
    credentials_of,
    fetch_jwks,
    make_config,
    request_body,
    send,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class LateIssuer:
    """Serves an Issuer created after the port is known."""

    issuer: Issuer | None = None

    async def handle(self, request: HttpRequest) -> HttpResponse:
        assert self.issuer is not None
        return await self.issuer.handle(request)


@pytest.mark.parametrize("version", [SpecVersion.DRAFT_13, SpecVersion.V1], ids=lambda v: v.value)
async def test_whole_issuance_over_http(clock: FakeClock, version: SpecVersion) -> None:
    late = LateIssuer()
    async with (
        serve(late.handle) as served,
        AiohttpTransport(allow_insecure_loopback=True) as transport,
    ):
        base = served.base_url + "/issuer"
        issuer = late.issuer = Issuer(make_config(clock, issuer=base, version=version))
        created = await issuer.create_pre_authorized_offer(
            configuration_ids=["identity"], subject="alice", options=OfferOptions(by_reference=True)
        )
        assert created.https_uri is not None and created.https_uri.startswith(base)
        offer = (await send(transport, "GET", created.https_uri)).json_body()
        meta = await send(
            transport, "GET", served.base_url + "/.well-known/openid-credential-issuer/issuer"
        )
        assert meta.status == 200 and meta.json_body()["credential_issuer"] == base
        legacy = await send(transport, "GET", base + "/.well-known/openid-credential-issuer")
        assert legacy.status == 200
        session = Session(transport=transport, clock=clock, issuer=base)
        response = await session.redeem(offer["grants"][PRE_AUTH_GRANT]["pre-authorized_code"])
        assert response.status == 200, response.body
        nonce = (
            session.token_body["c_nonce"] if version.c_nonce_in_responses else await session.nonce()
        )
        key = LocalSigner.generate()
        proofs = [await session.proof(key, nonce)]
        response = await session.post(
            "/credential", request_body(version, proofs, session.token_body)
        )
        assert response.status == 200, response.body
        (credential,) = credentials_of(version, response.json_body())
        jwks = await fetch_jwks(transport, base)
        claims = check_sd_jwt_vc(
            credential, jwks=jwks, holder_jwk=key.public_jwk, typ=version.sd_jwt_typ, vct=
            "https://issuer.example/identity", issuer=base,
        )  # fmt: skip
        assert claims["given_name"] == "Alice"
        # errors keep their status and headers over HTTP
        response = await send(transport, "POST", base + "/credential", json_body={})
        assert response.status == 401
        assert response.headers.get("WWW-Authenticate") is not None
        response = await send(transport, "GET", base + "/credential")
        assert (response.status, response.headers.get("Allow")) == (405, "POST")


async def test_demo_issuer_over_http_with_login_form() -> None:
    late = LateIssuer()
    async with (
        serve(late.handle) as served,
        AiohttpTransport(allow_insecure_loopback=True, raise_on_redirect=False) as transport,
    ):
        demo = build_demo_issuer(served.base_url)
        late.issuer = demo.issuer
        link = demo.offer_links["auth_code"]
        offer_url = parse_qs(urlsplit(link).query)["credential_offer_uri"][0]
        offer = (await send(transport, "GET", offer_url)).json_body()
        issuer_state = offer["grants"]["authorization_code"]["issuer_state"]
        verifier = generate_code_verifier()
        redirect = "http://127.0.0.1:9/cb"
        query = urlencode({
            "response_type": "code", "client_id": "wallet", "redirect_uri": redirect,
            "code_challenge": code_challenge(verifier), "code_challenge_method": "S256",
            "issuer_state": issuer_state, "state": "s1",
        })  # fmt: skip
        page = await send(transport, "GET", f"{served.base_url}/authorize?{query}")
        assert page.status == 200
        assert page.media_type == "text/html"
        match = re.search(r"name='handle' value='([^']+)'", page.body.decode())
        assert match is not None
        handle = match.group(1)
        wrong = await send(transport, "POST", served.base_url + "/authorize",
                           form={"handle": handle, "username": "alice", "password": "nope"})  # fmt: skip
        assert wrong.status == 401
        assert "Wrong username or password" in wrong.body.decode()
        user, password = demo.login.split(":")
        ok = await send(transport, "POST", served.base_url + "/authorize",
                        form={"handle": handle, "username": user, "password": password})  # fmt: skip
        assert ok.status == 303
        location = ok.headers.get("Location") or ""
        assert location.startswith(redirect)
        assert parse_qs(urlsplit(location).query)["state"] == ["s1"]
