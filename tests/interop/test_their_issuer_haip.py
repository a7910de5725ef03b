"""Our HAIP wallet, their issuer: ``Oid4vciClient`` with ``WalletPolicy.haip(...)`` over aiohttp
against ``issuer.mjs --haip``, an issuer and authorization server built on oid4vc-ts, on
127.0.0.1.

What oid4vc-ts does itself: the wallet attestation and its PoP at PAR and token
(``verifyPushedAuthorizationRequest`` / ``verify*AccessTokenRequest`` with ``clientAttestation``
required: signature, ``cnf``, ``sub`` = ``client_id``, PoP ``aud``, ``exp``), DPoP, PKCE,
refresh tokens (``createAccessTokenResponse({refreshToken})``,
``verifyRefreshTokenAccessTokenRequest``), and the key attestation in the ``key_attestation``
header of ``jwt`` proofs (``verifyCredentialRequestJwtProof``: signature, ``exp``, proof key in
``attested_keys``). What the glue does: the ``x5c`` chains of both attestations are validated to
the wallet provider root the test passes (node:crypto ``X509Certificate`` in the verifyJwt
callback), PoP ``iat``/``jti``, key attestation level and nonce, SD-JWT VC minting with the
``x5c`` chain the test made (leaf + intermediate), and the JWE layer: OID4VCI 1.0 §10 request
and response encryption (``encryption_required``) is glue with npm ``jose`` because oid4vc-ts
0.4.6 has no JWE.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs
import pytest
from cryptography.hazmat.primitives import serialization

from oid4vci.attestation import ClientAttestation, LocalAttestationProvider
from oid4vci.errors import AuthorizationError, CredentialRequestError, MetadataError, TokenError
from oid4vci.http import HttpRequest
from oid4vci.jose import LocalSigner, decode_jws
from oid4vci.transports.aiohttp import AiohttpTransport
from oid4vci.wallet import (
    IssuanceResult,
    Oid4vciClient,
    WalletPolicy,
    pre_authorized_grant,
    push_authorization_request,
    request_credential,
    request_token,
)
from oid4vci.x509 import verify_issuer_x5c
from tests.attestation_support import CLIENT_ID, realtime_pki
from tests.interop._node import BackgroundServer, skip_reason, start_node_script
from tests.x509_support import Pki

SKIP = skip_reason()
pytestmark = [pytest.mark.interop, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]

REDIRECT_URI = "http://127.0.0.1/oid4vci-python/callback"
FLOW_TIMEOUT = 60.0


def _pem(*certificates: Any) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates)


class HaipIssuer:
    """``issuer.mjs --haip`` with the trust material the test made: the wallet provider PKI it
    trusts and the issuer PKI whose leaf signs the credentials."""

    def __init__(self, server: BackgroundServer, provider: Pki, credential_pki: Pki) -> None:
        self.server = server
        self.provider = provider
        self.credential_pki = credential_pki

    @property
    def ready(self) -> dict[str, Any]:
        return self.server.ready


@pytest.fixture
def anyio_backend() -> str:
    """aiohttp runs on asyncio only."""
    return "asyncio"


@pytest.fixture(scope="module")
def their_haip_issuer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HaipIssuer]:
    files = tmp_path_factory.mktemp("haip-issuer")
    provider, credential_pki = realtime_pki(), realtime_pki()
    (files / "provider-root.pem").write_bytes(_pem(provider.root))
    (files / "credential.jwk").write_text(json.dumps(credential_pki.signer.private_jwk()))
    (files / "credential-chain.pem").write_bytes(
        _pem(credential_pki.leaf, credential_pki.intermediate)
    )
    args = [
        "--haip",
        *("--trust-attester", str(files / "provider-root.pem")),
        *("--credential-key", str(files / "credential.jwk")),
        *("--credential-chain", str(files / "credential-chain.pem")),
    ]
    server = start_node_script("issuer.mjs", args, ready_timeout=30)
    try:
        yield HaipIssuer(server, provider, credential_pki)
    finally:
        server.stop()


def attestation_provider(pki: Pki) -> LocalAttestationProvider:
    """A wallet provider minting from ``pki``'s leaf (real time: the Node issuer checks it)."""
    return LocalAttestationProvider(
        signer=pki.signer,
        chain=[pki.leaf, pki.intermediate],
        client_id=CLIENT_ID,
        provider_id="https://wallet-provider.example",
        key_storage=("iso_18045_high",),
        user_authentication=("iso_18045_moderate",),
    )


@asynccontextmanager
async def haip_wallet(
    issuer: HaipIssuer, *, provider_pki: Pki | None = None
) -> AsyncIterator[Oid4vciClient]:
    """Our HAIP wallet trusting the issuer root, attested by ``provider_pki`` (default: the
    wallet provider the Node issuer trusts). Loopback http allowed (the Node issuer has no TLS)."""
    policy = WalletPolicy.haip(
        trusted_x5c_roots=[issuer.credential_pki.root],
        attestation_provider=attestation_provider(provider_pki or issuer.provider),
        allow_insecure_loopback=True,
        deferred_max_wait=30.0,
    )
    async with AiohttpTransport(allow_insecure_loopback=True) as transport:
        yield Oid4vciClient(transport, policy=policy, client_id=None)


async def http_get(url: str, *, raise_on_redirect: bool = True) -> tuple[int, str, str | None]:
    """GET ``url``; returns status, body text and ``Location``."""
    async with AiohttpTransport(
        allow_insecure_loopback=True, raise_on_redirect=raise_on_redirect
    ) as transport:
        response = await transport.send(HttpRequest(method="GET", url=url))
    return response.status, response.body.decode(), response.headers.get("Location")


async def logged(server: BackgroundServer, text: str) -> None:
    """Wait (5 s at most) until the server's stderr, drained by a thread, shows ``text``."""
    for _ in range(100):
        if text in server.log():
            return
        await anyio.sleep(0.05)
    raise AssertionError(f"{text!r} not in the issuer log:\n{server.log()}")


def assert_x5c_credentials(result: IssuanceResult, issuer: HaipIssuer, *, count: int) -> None:
    """Every credential verified by our wallet through its x5c chain to the issuer root, bound
    to its own holder key, claims as issued."""
    context = f"issuer log:\n{issuer.server.log()}"
    assert result.session is not None and result.session.uses_dpop, "DPoP-bound token expected"
    assert len(result.credentials) == count, context
    assert len({c.holder_jkt for c in result.credentials}) == count
    leaf_x5c = issuer.credential_pki.x5c
    for cred in result.credentials:
        assert cred.verified is True and cred.x5c_verified is True, context
        assert cred.format == "dc+sd-jwt" and cred.vct == issuer.ready["vct"]
        assert cred.issuer == issuer.ready["issuer"]
        assert cred.claims["given_name"] == "Erika"
        assert cred.claims["address"]["locality"] == "Schulpforta"
        header = decode_jws(str(cred.credential).split("~")[0]).header
        assert header["x5c"] == leaf_x5c and "kid" not in header
        # the chain in the credential validates to the issuer root with our own x509 code too
        verify_issuer_x5c(header["x5c"], trust_anchors=[issuer.credential_pki.root])


async def test_pre_authorized_batch(their_haip_issuer: HaipIssuer) -> None:
    issuer = their_haip_issuer
    with anyio.fail_after(FLOW_TIMEOUT):
        async with haip_wallet(issuer) as client:
            offer = await client.parse_offer(issuer.ready["offers"]["pre_auth"])
            result = await client.accept_offer(offer, count=2)
    assert result.flow == "pre-authorized_code"
    assert_x5c_credentials(result, issuer, count=2)


async def test_attestation_proof_type(their_haip_issuer: HaipIssuer) -> None:
    """A configuration that takes only ``attestation`` proofs (OID4VCI 1.0 Appendix F.3):
    oid4vc-ts's ``verifyCredentialRequestAttestationProof`` checks the one key attestation,
    whose ``attested_keys`` become the holder keys of the batch."""
    issuer = their_haip_issuer
    with anyio.fail_after(FLOW_TIMEOUT):
        async with haip_wallet(issuer) as client:
            offer = await client.parse_offer(issuer.ready["offers"]["pre_auth_attestation_proof"])
            result = await client.accept_offer(offer, count=2)
    assert {c.configuration_id for c in result.credentials} == {"identity_sd_jwt_attestation_proof"}
    assert_x5c_credentials(result, issuer, count=2)


async def test_their_issuer_refuses_a_plain_credential_request(
    their_haip_issuer: HaipIssuer,
) -> None:
    """``encryption_required``: a credential request in the clear (with the valid DPoP token
    of a finished flow) is refused by the glue with ``invalid_encryption_parameters``."""
    issuer = their_haip_issuer
    with anyio.fail_after(FLOW_TIMEOUT):
        async with haip_wallet(issuer) as client:
            result = await client.accept_offer(issuer.ready["offers"]["pre_auth"])
            session = result.session
            assert session is not None
            body = {"credential_configuration_id": issuer.ready["configuration_id"]}
            with pytest.raises(CredentialRequestError) as caught:
                await request_credential(
                    client.transport,
                    session.credential_endpoint,
                    body,
                    access_token=session.access_token,
                    token_type=session.token_type,
                    dpop_key=session.dpop_key,
                )
    assert caught.value.error == "invalid_encryption_parameters", issuer.server.log()


async def test_authorization_code_batch(their_haip_issuer: HaipIssuer) -> None:
    """PAR (required) with wallet attestation and DPoP, PKCE S256, scope (HAIP 1.0 §4.3)."""
    issuer = their_haip_issuer
    with anyio.fail_after(FLOW_TIMEOUT):
        async with haip_wallet(issuer) as client:
            offer = await client.parse_offer(issuer.ready["offers"]["auth_code"])
            url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
            assert "request_uri=" in url and "code_challenge" not in url
            status, _, location = await http_get(url, raise_on_redirect=False)
            assert status == 302 and location is not None, issuer.server.log()
            result = await client.claim(pending, location, count=2)
    assert result.flow == "authorization_code"
    assert_x5c_credentials(result, issuer, count=2)


async def test_deferred_batch_after_refreshing_the_expired_token(
    their_haip_issuer: HaipIssuer,
) -> None:
    """The credentials are deferred and the access token lives 2 s; the poll after the
    issuer's 3 s interval meets ``invalid_token``, the wallet refreshes (refresh token, same
    DPoP key, fresh attestation PoP) and fetches the batch from the Deferred Credential
    Endpoint, encrypted both ways."""
    issuer = their_haip_issuer
    events = f"{issuer.ready['issuer']}/_events"
    before = json.loads((await http_get(events))[1])["refreshed"]
    with anyio.fail_after(FLOW_TIMEOUT):
        async with haip_wallet(issuer) as client:
            offer = await client.parse_offer(issuer.ready["offers"]["pre_auth_deferred"])
            deferred = await client.accept_offer(offer, count=2)
            assert deferred.credentials == () and len(deferred.deferred) == 1
            credentials = await client.poll_deferred(deferred)
    result = attrs.evolve(deferred, credentials=credentials, deferred=())
    assert_x5c_credentials(result, issuer, count=2)
    after = json.loads((await http_get(events))[1])["refreshed"]
    assert after == before + 1, issuer.server.log()


async def test_request_without_wallet_attestation_is_refused(
    their_haip_issuer: HaipIssuer,
) -> None:
    """A DPoP token request with no attestation headers: ``invalid_client``; the code stays."""
    issuer = their_haip_issuer
    with anyio.fail_after(FLOW_TIMEOUT):
        status, offer_uri, _ = await http_get(issuer.ready["mint"]["pre_auth"])
        assert status == 200
        async with haip_wallet(issuer) as client:
            offer = await client.parse_offer(offer_uri)
            grant = offer.pre_authorized_code
            assert grant is not None
            async with AiohttpTransport(allow_insecure_loopback=True) as transport:
                with pytest.raises(TokenError) as caught:
                    await request_token(
                        transport,
                        f"{issuer.ready['issuer']}/token",
                        pre_authorized_grant(grant.pre_authorized_code, client_id=CLIENT_ID),
                        dpop_key=LocalSigner.generate("ES256"),
                    )
            assert caught.value.error == "invalid_client", issuer.server.log()
            assert grant.pre_authorized_code not in str(caught.value)
            # refused before the code was spent: the attested wallet still redeems it
            result = await client.accept_offer(offer)
    assert_x5c_credentials(result, issuer, count=1)


async def test_pushed_request_without_wallet_attestation_is_refused(
    their_haip_issuer: HaipIssuer,
) -> None:
    """PAR with DPoP and PKCE but no attestation headers: ``invalid_client``."""
    issuer = their_haip_issuer
    params = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "interop_identity",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",  # RFC 7636 App. B
        "code_challenge_method": "S256",
    }
    with anyio.fail_after(FLOW_TIMEOUT):
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            with pytest.raises(AuthorizationError) as caught:
                await push_authorization_request(
                    transport,
                    f"{issuer.ready['issuer']}/par",
                    params,
                    dpop_key=LocalSigner.generate("ES256"),
                )
    assert caught.value.error == "invalid_client", issuer.server.log()


async def test_attestation_from_a_foreign_wallet_provider_is_refused(
    their_haip_issuer: HaipIssuer,
) -> None:
    issuer = their_haip_issuer
    with anyio.fail_after(FLOW_TIMEOUT):
        async with haip_wallet(issuer, provider_pki=realtime_pki()) as client:
            offer = await client.parse_offer(issuer.ready["offers"]["pre_auth"])
            with pytest.raises(TokenError) as caught:
                await client.accept_offer(offer)
    assert caught.value.error == "invalid_client"
    assert caught.value.status == 401
    assert "client attestation" in str(caught.value)
    await logged(issuer.server, "x5c signer refused: the x5c chain does not end at a trusted root")


async def test_haip_wallet_refuses_their_plain_issuer_before_spending_a_code(
    their_haip_issuer: HaipIssuer,
) -> None:
    """issuer.mjs without ``--haip`` (no wallet attestation, anonymous pre-authorized access):
    our HAIP wallet refuses its metadata; the same offer then works for a plain wallet."""
    plain = start_node_script("issuer.mjs", [], ready_timeout=30)
    try:
        with anyio.fail_after(FLOW_TIMEOUT):
            status, offer_uri, _ = await http_get(plain.ready["mint"]["pre_auth"])
            assert status == 200
            async with haip_wallet(their_haip_issuer) as client:
                offer = await client.parse_offer(offer_uri)
                with pytest.raises(MetadataError, match="attest_jwt_client_auth"):
                    await client.accept_offer(offer)
            assert "POST /token" not in plain.log()
            async with AiohttpTransport(allow_insecure_loopback=True) as transport:
                policy = WalletPolicy(allow_insecure_loopback=True)
                result = await Oid4vciClient(transport, policy=policy).accept_offer(offer_uri)
        assert len(result.credentials) == 1 and result.credentials[0].verified
    finally:
        plain.stop()


@attrs.frozen(kw_only=True)
class KeyAttesterSwap:
    """Wallet attestations from ``client``, key attestations from ``keys``."""

    client: LocalAttestationProvider
    keys: LocalAttestationProvider

    @property
    def client_id(self) -> str:
        return self.client.client_id

    async def client_attestation(
        self, *, authorization_server: str, fresh: bool = False
    ) -> ClientAttestation:
        return await self.client.client_attestation(
            authorization_server=authorization_server, fresh=fresh
        )

    async def key_attestation(
        self, *, keys: Sequence[Mapping[str, Any]], nonce: str | None, credential_issuer: str
    ) -> str:
        return await self.keys.key_attestation(
            keys=keys, nonce=nonce, credential_issuer=credential_issuer
        )


@pytest.mark.parametrize("case", ["foreign root", "low key storage"])
async def test_key_attestation_is_verified(their_haip_issuer: HaipIssuer, case: str) -> None:
    """The key attestation in the jwt proofs must chain to the wallet provider root and meet
    ``key_attestations_required``: else ``invalid_proof`` at the credential endpoint."""
    issuer = their_haip_issuer
    good = attestation_provider(issuer.provider)
    if case == "foreign root":
        keys = attestation_provider(realtime_pki())
    else:
        keys = attrs.evolve(good, key_storage=("iso_18045_moderate",))
    policy = WalletPolicy.haip(
        trusted_x5c_roots=[issuer.credential_pki.root],
        attestation_provider=KeyAttesterSwap(client=good, keys=keys),
        allow_insecure_loopback=True,
    )
    with anyio.fail_after(FLOW_TIMEOUT):
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            client = Oid4vciClient(transport, policy=policy)
            with pytest.raises(CredentialRequestError) as caught:
                await client.accept_offer(issuer.ready["offers"]["pre_auth"])
    assert caught.value.error == "invalid_proof", issuer.server.log()
    expected = {
        "foreign root": "Error verifiying key attestation jwt",  # oid4vc-ts's wording
        "low key storage": "the key attestation does not meet key_storage",
    }
    assert expected[case] in str(caught.value)
