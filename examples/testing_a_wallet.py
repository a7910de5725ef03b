"""Unit-testing your wallet code against an in-memory issuer (pytest style).

What it shows: a wallet developer's tests, with no network and no mocks of protocol details.
The issuer is real (:func:`~oid4vci.issuer.build_demo_issuer`, or your own
:class:`~oid4vci.issuer.Issuer` for a particular setup) and the wallet reaches it through
:class:`~oid4vci.transports.memory.InMemoryTransport`. A fake clock shared by issuer and wallet
makes expiry testable. The code under test is ``MyWallet``; each ``test_...`` function is an
ordinary async pytest test (``anyio_mode = "auto"``).

Run them: ``python -m pytest examples/testing_a_wallet.py`` (or ``python -m
examples.testing_a_wallet``, which runs each test once).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import pytest

from oid4vci.errors import CredentialRequestError, ErrorCode, TokenError
from oid4vci.http import Transport
from oid4vci.issuer import (
    CredentialConfigurationSpec,
    Issuer,
    IssuerConfig,
    MemoryStore,
    build_demo_issuer,
)
from oid4vci.jose import LocalSigner
from oid4vci.sdjwt import sd
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.versions import SpecVersion
from oid4vci.wallet import Oid4vciClient, ReceivedCredential

ISSUER_URL = "https://issuer.example"


class MyWallet:
    """The code under test: receives credentials from offer links and keeps them."""

    def __init__(self, transport: Transport, *, clock: Callable[[], float] = time.time) -> None:
        self.client = Oid4vciClient(transport, clock=clock)
        self.stored: list[ReceivedCredential] = []

    async def receive(self, link: str, tx_code: str | None = None) -> list[str]:
        """Accept the offer, store its credentials, return their types."""
        offer = await self.client.parse_offer(link)
        result = await self.client.accept_offer(offer, tx_code=tx_code)
        self.stored.extend(result.credentials)
        return [credential.vct or "" for credential in result.credentials]


class FakeClock:
    """A clock the test moves by hand (give the same one to issuer and wallet)."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_receives_and_stores_the_demo_credential() -> None:
    demo = build_demo_issuer(ISSUER_URL)
    wallet = MyWallet(InMemoryTransport(routes={ISSUER_URL: demo.handle}))
    types = await wallet.receive(demo.offer_links["pre_auth_tx_code"], tx_code=demo.tx_code)
    assert types == [f"{ISSUER_URL}/identity_credential"]
    (stored,) = wallet.stored
    assert stored.verified and stored.claims["given_name"] == "Alice"


async def test_a_wrong_transaction_code_stores_nothing() -> None:
    demo = build_demo_issuer(ISSUER_URL)
    wallet = MyWallet(InMemoryTransport(routes={ISSUER_URL: demo.handle}))
    with pytest.raises(TokenError) as caught:
        await wallet.receive(demo.offer_links["pre_auth_tx_code"], tx_code="000000")
    assert caught.value.error == ErrorCode.INVALID_GRANT
    assert wallet.stored == []


async def test_an_expired_offer_is_refused() -> None:
    clock = FakeClock()
    demo = build_demo_issuer(ISSUER_URL, clock=clock)
    wallet = MyWallet(InMemoryTransport(routes={ISSUER_URL: demo.handle}), clock=clock)
    created = await demo.issuer.create_pre_authorized_offer(
        configuration_ids=[demo.configuration_id], subject="alice"
    )
    clock.now += demo.config.pre_authorized_code_ttl + 1  # the user waited too long
    with pytest.raises(TokenError) as caught:
        await wallet.receive(created.offer_uri)
    assert caught.value.error == ErrorCode.INVALID_GRANT


def custom_issuer(claims: Mapping[str, Any] | None) -> Issuer:
    """A Draft 13 issuer of ``membership`` cards; ``claims=None`` denies every request."""

    async def claims_source(subject: str, configuration_id: str) -> Mapping[str, Any]:
        if claims is None:
            raise CredentialRequestError(ErrorCode.CREDENTIAL_REQUEST_DENIED, "not a member")
        return claims

    spec = CredentialConfigurationSpec(id="membership", vct=f"{ISSUER_URL}/membership")
    return Issuer(
        IssuerConfig(
            credential_issuer=ISSUER_URL,
            credential_signer=LocalSigner.generate("ES256"),
            credential_configurations=[spec],
            claims_source=claims_source,
            store=MemoryStore(),
            published_version=SpecVersion.DRAFT_13,
        )
    )


async def test_a_draft_13_issuer_with_selective_disclosure() -> None:
    issuer = custom_issuer({"member_no": "M-42", "name": sd("Zoe"), "tier": sd("gold")})
    wallet = MyWallet(InMemoryTransport(routes={ISSUER_URL: issuer.handle}))
    created = await issuer.create_pre_authorized_offer(
        configuration_ids=["membership"], subject="z"
    )
    await wallet.receive(created.offer_uri)
    (stored,) = wallet.stored
    assert stored.format == "vc+sd-jwt"  # the Draft 13 name of SD-JWT VC
    assert {"member_no": "M-42", "name": "Zoe", "tier": "gold"}.items() <= stored.claims.items()


async def test_the_issuer_refusing_is_reported() -> None:
    issuer = custom_issuer(None)
    wallet = MyWallet(InMemoryTransport(routes={ISSUER_URL: issuer.handle}))
    created = await issuer.create_pre_authorized_offer(
        configuration_ids=["membership"], subject="z"
    )
    with pytest.raises(CredentialRequestError) as caught:
        await wallet.receive(created.offer_uri)
    # Draft 13 has no credential_request_denied (Draft 14 added it): the refusal arrives as
    # invalid_credential_request
    assert caught.value.error == ErrorCode.INVALID_CREDENTIAL_REQUEST
    assert wallet.stored == []


TESTS = [
    test_receives_and_stores_the_demo_credential,
    test_a_wrong_transaction_code_stores_nothing,
    test_an_expired_offer_is_refused,
    test_a_draft_13_issuer_with_selective_disclosure,
    test_the_issuer_refusing_is_reported,
]


async def main() -> list[str]:
    """Run every test once (without pytest); return the names of those that passed."""
    passed = []
    for test in TESTS:
        await test()
        passed.append(test.__name__)
        print(f"ok  {test.__name__}")
    return passed


if __name__ == "__main__":
    anyio.run(main)
