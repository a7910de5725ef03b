"""``serve --require-encryption``, ``--refresh-tokens`` and ``--access-token-ttl``: the values,
the issuer they build (encryption required both ways, the ``refresh_token`` grant, the token
lifetime) and a served issuer our wallet receives from with encryption."""

from __future__ import annotations

import argparse
import json

import pytest

from oid4vci import Oid4vciClient
from oid4vci.cli import build_parser
from oid4vci.cli.options import token_ttl_value
from oid4vci.cli.serve import DEMO_ENCRYPTION_KID, running_demo_issuer, serve_features
from oid4vci.cli.workers import WorkerSpec
from oid4vci.http import HttpRequest
from oid4vci.issuer.demo import DEMO_CONFIGURATION_ID, build_demo_issuer
from oid4vci.jose import LocalSigner
from oid4vci.transports.aiohttp import AiohttpTransport
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import WalletPolicy, pre_authorized_grant, refresh_access_token, request_token

ISSUER = "https://issuer.example"


@pytest.fixture
def anyio_backend() -> str:
    """The served issuer runs on aiohttp (asyncio)."""
    return "asyncio"


def test_token_ttl_values() -> None:
    assert token_ttl_value("1") == 1 and token_ttl_value("86400") == 86400
    for bad in ("0", "-5", "86401", "1.5", "ten", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            token_ttl_value(bad)


def test_features_are_off_by_default() -> None:
    features = serve_features(build_parser().parse_args(["serve"]))
    assert features.encryption_key is None and not features.refresh_tokens
    assert features.issuer_options() == {} and features.describe() == []
    config = build_demo_issuer(ISSUER, **features.issuer_options()).config
    assert config.encryption is None and config.refresh_tokens is None
    assert config.access_token_ttl == 600


def test_features_from_the_options() -> None:
    args = build_parser().parse_args(
        ["serve", "--require-encryption", "--refresh-tokens", "--access-token-ttl", "42"]
    )
    features = serve_features(args)
    key = features.encryption_key
    assert key is not None and key["kid"] == DEMO_ENCRYPTION_KID and key["alg"] == "ECDH-ES"
    assert key["d"] not in repr(features)  # the private key never shows
    assert len(features.describe()) == 3
    # a fresh key for every serve
    assert serve_features(args).encryption_key != key
    config = build_demo_issuer(ISSUER, **features.issuer_options()).config
    assert config.encryption is not None
    assert config.encryption.request_required and config.encryption.response_required
    assert config.encryption.request_keys == (key,)
    assert config.refresh_tokens is not None and config.access_token_ttl == 42


async def test_the_built_issuer_refreshes_short_lived_tokens() -> None:
    args = build_parser().parse_args(["serve", "--refresh-tokens", "--access-token-ttl", "7"])
    demo = build_demo_issuer(ISSUER, **serve_features(args).issuer_options())
    offer = await demo.issuer.create_pre_authorized_offer(
        configuration_ids=[DEMO_CONFIGURATION_ID], subject="alice"
    )
    assert offer.pre_authorized_code is not None
    dpop_key = LocalSigner.generate()
    async with InMemoryTransport(routes={ISSUER: demo.issuer.handle}) as transport:
        grant = pre_authorized_grant(offer.pre_authorized_code)
        first = await request_token(transport, ISSUER + "/token", grant, dpop_key=dpop_key)
        assert first.expires_in == 7 and first.refresh_token
        second = await refresh_access_token(
            transport, ISSUER + "/token", first.refresh_token, dpop_key=dpop_key
        )
    assert second.expires_in == 7 and second.access_token != first.access_token


async def test_a_served_issuer_requires_encryption() -> None:
    args = build_parser().parse_args(["serve", "--require-encryption", "--refresh-tokens"])
    async with (
        running_demo_issuer(features=serve_features(args)) as server,
        AiohttpTransport(allow_insecure_loopback=True) as http,
    ):
        assert len(server.features.describe()) == 2
        get = HttpRequest(
            method="GET", url=server.issuer_url + "/.well-known/openid-credential-issuer"
        )
        metadata = (await http.send(get)).json_body()
        request_encryption = metadata["credential_request_encryption"]
        assert request_encryption["encryption_required"] is True
        [published] = request_encryption["jwks"]["keys"]
        assert published["kid"] == DEMO_ENCRYPTION_KID and "d" not in published
        assert metadata["credential_response_encryption"]["encryption_required"] is True
        get = HttpRequest(
            method="GET", url=server.issuer_url + "/.well-known/oauth-authorization-server"
        )
        assert "refresh_token" in (await http.send(get)).json_body()["grant_types_supported"]
        # our wallet encrypts both ways and gets the credential
        client = Oid4vciClient(http, policy=WalletPolicy(encryption="require"))
        result = await client.accept_offer(server.demo.offer_links["pre_auth"])
        assert result.credentials[0].claims["given_name"] == "Alice"


def test_workers_get_the_same_features() -> None:
    args = build_parser().parse_args(
        ["serve", "--require-encryption", "--refresh-tokens", "--access-token-ttl", "9"]
    )
    features = serve_features(args)
    assert features.encryption_key is not None
    spec = WorkerSpec(
        issuer_url=ISSUER,
        signing_jwk=LocalSigner.generate().private_jwk(),
        nonce_keys=[],
        encryption_key=features.encryption_key,
        refresh_tokens=features.refresh_tokens,
        access_token_ttl=features.access_token_ttl,
    )
    assert features.encryption_key["d"] not in repr(spec)
    # what a worker reads from its stdin line
    received = WorkerSpec(**json.loads(spec.to_json())).features()
    assert received == features
    config = build_demo_issuer(ISSUER, **received.issuer_options()).config
    assert config.encryption is not None and config.encryption.request_required
    assert config.refresh_tokens is not None and config.access_token_ttl == 9
