"""Our wallet, their issuer: ``oid4vci.wallet.Oid4vciClient`` over aiohttp receives credentials
from ``issuer.mjs``, an issuer and authorization server built on oid4vc-ts
(``Openid4vciIssuer``, ``Oauth2AuthorizationServer``, ``Oauth2ResourceServer``) on 127.0.0.1.

The Node issuer publishes 1.0 or Draft 15 metadata, demands DPoP (optionally with server
nonces, RFC 9449 §8-9), offers pre-authorized codes with and without ``tx_code`` (by reference
and by value), PAR + PKCE for the code flow, a nonce endpoint, batch issuance, and SD-JWT VCs
with nested and array-element disclosures whose ``cnf.jwk`` is the proved key.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import anyio
import pytest

from oid4vci.errors import TokenError
from oid4vci.http import HttpRequest
from oid4vci.jose import jwk_thumbprint
from oid4vci.sdjwt import SdJwtReason, SdJwtVerificationError
from oid4vci.transports.aiohttp import AiohttpTransport
from oid4vci.versions import SpecVersion
from oid4vci.wallet import IssuanceResult, Oid4vciClient, WalletPolicy
from tests.interop._node import BackgroundServer, skip_reason, start_node_script

SKIP = skip_reason()
pytestmark = [pytest.mark.interop, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]

# issuer.mjs mode -> (its arguments, the spec version our wallet must detect)
MODES: dict[str, tuple[list[str], SpecVersion]] = {
    "v1": ([], SpecVersion.V1),
    "draft15": (["--metadata", "draft15"], SpecVersion.DRAFT_15),
    "v1-dpop-nonce": (["--require-dpop-nonce"], SpecVersion.V1),
}
CLIENT_ID = "oid4vci-python-interop"
REDIRECT_URI = "http://127.0.0.1/oid4vci-python/callback"
FLOW_TIMEOUT = 60.0


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp runs on asyncio only."""
    return "asyncio"


@pytest.fixture(scope="module", params=list(MODES))
def their_issuer(request: pytest.FixtureRequest) -> Iterator[tuple[str, BackgroundServer]]:
    """``node issuer.mjs`` in the parametrized mode."""
    mode = str(request.param)
    server = start_node_script("issuer.mjs", MODES[mode][0], ready_timeout=30)
    try:
        yield mode, server
    finally:
        server.stop()


@asynccontextmanager
async def wallet(*, use_authorization_details: bool = True) -> AsyncIterator[Oid4vciClient]:
    """Our wallet over real HTTP, loopback http allowed (the Node issuer has no TLS)."""
    policy = WalletPolicy(
        allow_insecure_loopback=True, use_authorization_details=use_authorization_details
    )
    async with AiohttpTransport(allow_insecure_loopback=True) as transport:
        yield Oid4vciClient(transport, policy=policy, client_id=CLIENT_ID)


async def http_get(url: str, *, raise_on_redirect: bool = True) -> tuple[int, str, str | None]:
    """GET ``url``; returns status, body text and ``Location``."""
    async with AiohttpTransport(
        allow_insecure_loopback=True, raise_on_redirect=raise_on_redirect
    ) as transport:
        response = await transport.send(HttpRequest(method="GET", url=url))
    return response.status, response.body.decode(), response.headers.get("Location")


def _b64json(part: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


def assert_issued(
    result: IssuanceResult, server: BackgroundServer, mode: str, *, count: int, flow: str
) -> None:
    """Every credential verified by our wallet, bound to its own key, claims as issued."""
    ready = server.ready
    context = f"issuer log:\n{server.log()}"
    assert result.spec_version is MODES[mode][1], context
    assert result.flow == flow
    assert result.credential_issuer == ready["issuer"]
    assert result.deferred == ()
    assert result.session is not None and result.session.uses_dpop, "DPoP-bound token expected"
    assert len(result.credentials) == count, context
    thumbprints = set()
    for cred in result.credentials:
        assert cred.verified is True
        assert cred.format == "dc+sd-jwt"
        assert cred.vct == ready["vct"]
        assert cred.configuration_id == ready["configuration_id"]
        assert cred.issuer == ready["issuer"]
        # Disclosures applied: flat, nested inside a disclosed object, and an array element.
        claims = cred.claims
        assert claims["given_name"] == "Erika"
        assert claims["family_name"] == "Mustermann"
        assert claims["email"] == "erika@example.com"
        assert claims["address"] == {
            "street_address": "Schulstr. 12",
            "locality": "Schulpforta",
            "country": "DE",
        }
        assert claims["nationalities"] == ["DE", "FR"]
        assert claims["issuing_country"] == "DE"
        assert not any(name in claims for name in ("_sd", "_sd_alg"))
        # cnf.jwk in the issuer-signed JWT is the holder key our wallet proved.
        assert cred.holder_key is not None
        jwt = str(cred.credential).split("~")[0]
        header_b64, payload_b64, _ = jwt.split(".")
        header, payload = _b64json(header_b64), _b64json(payload_b64)
        assert header["typ"] == "dc+sd-jwt" and header["kid"] == "issuer-key-1"
        assert jwk_thumbprint(payload["cnf"]["jwk"]) == cred.holder_jkt
        thumbprints.add(cred.holder_jkt)
    assert len(thumbprints) == count, "each credential must be bound to its own holder key"


async def test_pre_authorized_code(their_issuer: tuple[str, BackgroundServer]) -> None:
    mode, server = their_issuer
    with anyio.fail_after(FLOW_TIMEOUT):
        async with wallet() as client:
            offer = await client.parse_offer(server.ready["offers"]["pre_auth"])
            assert offer.credential_issuer == server.ready["issuer"]
            result = await client.accept_offer(offer)
    assert_issued(result, server, mode, count=1, flow="pre-authorized_code")


async def test_pre_authorized_code_with_tx_code(
    their_issuer: tuple[str, BackgroundServer],
) -> None:
    mode, server = their_issuer
    with anyio.fail_after(FLOW_TIMEOUT):
        async with wallet() as client:
            offer = await client.parse_offer(server.ready["offers"]["pre_auth_tx_code"])
            grant = offer.pre_authorized_code
            assert grant is not None and grant.tx_code is not None
            assert grant.tx_code.input_mode == "numeric"
            assert grant.tx_code.length == len(server.ready["tx_code"])
            result = await client.accept_offer(offer, tx_code=server.ready["tx_code"])
    assert_issued(result, server, mode, count=1, flow="pre-authorized_code")


async def test_offer_by_value(their_issuer: tuple[str, BackgroundServer]) -> None:
    """An ``openid-credential-offer://?credential_offer=...`` made by oid4vc-ts."""
    mode, server = their_issuer
    with anyio.fail_after(FLOW_TIMEOUT):
        status, uri, _ = await http_get(server.ready["mint"]["pre_auth"])
        assert status == 200 and uri.startswith("openid-credential-offer://?credential_offer=")
        async with wallet() as client:
            offer = await client.parse_offer(uri)
            result = await client.accept_offer(offer)
    assert_issued(result, server, mode, count=1, flow="pre-authorized_code")


async def test_wrong_tx_code_is_refused(their_issuer: tuple[str, BackgroundServer]) -> None:
    _, server = their_issuer
    real = server.ready["tx_code"]
    wrong = "".join("1" if c != "1" else "2" for c in real)
    with anyio.fail_after(FLOW_TIMEOUT):
        async with wallet() as client:
            offer = await client.parse_offer(server.ready["offers"]["pre_auth_tx_code"])
            with pytest.raises(TokenError) as caught:
                await client.accept_offer(offer, tx_code=wrong)
    assert caught.value.error == "invalid_grant"
    assert caught.value.status == 400
    assert wrong not in str(caught.value) and real not in str(caught.value)


async def test_batch_issuance(their_issuer: tuple[str, BackgroundServer]) -> None:
    mode, server = their_issuer
    with anyio.fail_after(FLOW_TIMEOUT):
        async with wallet() as client:
            offer = await client.parse_offer(server.ready["offers"]["pre_auth"])
            result = await client.accept_offer(offer, count=3)
    assert_issued(result, server, mode, count=3, flow="pre-authorized_code")


async def test_notification(their_issuer: tuple[str, BackgroundServer]) -> None:
    """Our wallet's ``notify`` reaches the Node issuer's notification endpoint (DPoP-bound)."""
    mode, server = their_issuer
    with anyio.fail_after(FLOW_TIMEOUT):
        async with wallet() as client:
            offer = await client.parse_offer(server.ready["offers"]["pre_auth"])
            result = await client.accept_offer(offer)
            assert len(result.notification_ids) == 1
            await client.notify(result, "credential_accepted")
        status, body, _ = await http_get(f"{server.ready['issuer']}/_events")
    assert_issued(result, server, mode, count=1, flow="pre-authorized_code")
    assert status == 200
    received = json.loads(body)["notifications"]
    assert {"notification_id": result.notification_ids[0], "event": "credential_accepted"} in (
        received
    )


async def _code_flow(
    server: BackgroundServer, *, use_authorization_details: bool, count: int = 1
) -> IssuanceResult:
    async with wallet(use_authorization_details=use_authorization_details) as client:
        offer = await client.parse_offer(server.ready["offers"]["auth_code"])
        url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
        assert "request_uri=" in url, "the Node AS offers PAR; our wallet should use it"
        # issuer.mjs approves at once: the authorization endpoint answers with the redirect.
        status, _, location = await http_get(url, raise_on_redirect=False)
        assert status == 302 and location is not None, server.log()
        assert location.startswith(REDIRECT_URI)
        return await client.claim(pending, location, count=count)


async def test_authorization_code_with_authorization_details(
    their_issuer: tuple[str, BackgroundServer],
) -> None:
    """RFC 9396 details in, ``credential_identifiers`` back; the wallet must ask by identifier
    (issuer.mjs refuses ``credential_configuration_id`` for such a token)."""
    mode, server = their_issuer
    with anyio.fail_after(FLOW_TIMEOUT):
        result = await _code_flow(server, use_authorization_details=True, count=2)
    assert_issued(result, server, mode, count=2, flow="authorization_code")


async def test_authorization_code_with_scope(their_issuer: tuple[str, BackgroundServer]) -> None:
    mode, server = their_issuer
    with anyio.fail_after(FLOW_TIMEOUT):
        result = await _code_flow(server, use_authorization_details=False)
    assert_issued(result, server, mode, count=1, flow="authorization_code")


# issuer.mjs ?tamper=MODE -> the reason our wallet must give for refusing the credential.
TAMPERED = {
    "cnf": SdJwtReason.CNF_MISMATCH,
    "signature": SdJwtReason.SIGNATURE,
    "disclosure": SdJwtReason.DISCLOSURE_NOT_REFERENCED,
    "iss": SdJwtReason.ISSUER_MISMATCH,
    "vct": SdJwtReason.VCT_MISMATCH,
    "typ": SdJwtReason.TYP,
    "expired": SdJwtReason.EXPIRED,
}


@pytest.mark.parametrize("their_issuer", ["v1"], indirect=True)
@pytest.mark.parametrize("mode", list(TAMPERED))
async def test_wallet_refuses_tampered_credential(
    their_issuer: tuple[str, BackgroundServer], mode: str
) -> None:
    """A credential from an independent issuer that fails a check is refused, not returned."""
    _, server = their_issuer
    url = f"{server.ready['issuer']}/offers/pre_auth?tamper={mode}"
    offer_uri = f"openid-credential-offer://?credential_offer_uri={quote(url, safe='')}"
    with anyio.fail_after(FLOW_TIMEOUT):
        async with wallet() as client:
            offer = await client.parse_offer(offer_uri)
            with pytest.raises(SdJwtVerificationError) as caught:
                await client.accept_offer(offer)
    assert caught.value.reason == TAMPERED[mode], str(caught.value)
