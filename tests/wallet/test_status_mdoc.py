"""``check_status`` and ``client.check_status`` on ``mso_mdoc`` credentials: the reference is
the MSO's ``status`` (draft-ietf-oauth-status-list-14 §6.3.2), the list's keys the issuer's
(an mdoc names none, so ``issuer=`` says whose), as in the wallet's ``FETCHING_STATUS_LISTS``.
The demo issuer (status lists on) in memory."""

from __future__ import annotations

import pytest

from oid4vci.errors import UsageError
from oid4vci.issuer.demo import DemoIssuer, build_demo_issuer
from oid4vci.mdoc import read_mdoc_status
from oid4vci.status import (
    StatusListReason,
    StatusListVerificationError,
    read_credential_status_reference,
)
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import Oid4vciClient, ReceivedCredential, WalletPolicy
from oid4vci.wallet.status_lists import check_status
from tests.conftest import FakeClock

ISSUER = "https://issuer.example"


async def _mdl(clock: FakeClock) -> tuple[DemoIssuer, InMemoryTransport, ReceivedCredential]:
    demo = build_demo_issuer(ISSUER, clock=clock)
    assert demo.iaca is not None
    transport = InMemoryTransport(routes={ISSUER: demo.handle})
    client = Oid4vciClient(transport, clock=clock, policy=WalletPolicy(trust_anchors=[demo.iaca]))
    (mdl,) = (await client.accept_offer(demo.offer_links["pre_auth_mdoc"])).credentials
    assert mdl.format == "mso_mdoc" and mdl.status == "valid"
    return demo, transport, mdl


async def test_the_reference_is_read_from_the_mso(clock: FakeClock) -> None:
    _, _, mdl = await _mdl(clock)
    assert isinstance(mdl.credential, str)
    assert read_credential_status_reference(mdl.credential) == mdl.status_reference
    status = read_mdoc_status(mdl.credential)
    assert status is not None and mdl.status_reference is not None
    assert status["status_list"] == {
        "idx": mdl.status_reference.idx,
        "uri": mdl.status_reference.uri,
    }


async def test_check_status_of_an_mdoc_follows_every_change(clock: FakeClock) -> None:
    demo, transport, mdl = await _mdl(clock)
    ref = mdl.status_reference
    assert ref is not None and isinstance(mdl.credential, str)
    client = Oid4vciClient(transport, clock=clock)
    for status in ("suspended", "invalid"):
        await demo.issuer.set_credential_status(ref, status)
        check = await check_status(mdl.credential, transport, clock=clock, issuer=ISSUER)
        assert (check.status, check.uri, check.idx) == (status, ref.uri, ref.idx)
        client.status_cache.clear()
        assert (await client.check_status(mdl)).status == status  # the issuer comes with it


async def test_an_mdoc_needs_its_issuer(clock: FakeClock) -> None:
    demo, transport, mdl = await _mdl(clock)
    assert isinstance(mdl.credential, str)
    with pytest.raises(UsageError, match="issuer="):
        await check_status(mdl.credential, transport, clock=clock)
    # the keys of another issuer do not verify the list
    other = build_demo_issuer("https://other.example", clock=clock)
    routes = {ISSUER: demo.handle, "https://other.example": other.handle}
    with pytest.raises(StatusListVerificationError) as caught:
        await check_status(
            mdl.credential,
            InMemoryTransport(routes=routes),
            clock=clock,
            issuer="https://other.example",
        )
    assert caught.value.reason in (StatusListReason.SIGNATURE, StatusListReason.UNKNOWN_KEY)


async def test_a_jwt_must_name_the_given_issuer(clock: FakeClock) -> None:
    demo = build_demo_issuer(ISSUER, clock=clock)
    transport = InMemoryTransport(routes={ISSUER: demo.handle})
    (cred,) = (
        await Oid4vciClient(transport, clock=clock).accept_offer(demo.offer_links["pre_auth"])
    ).credentials
    assert isinstance(cred.credential, str)
    check = await check_status(cred.credential, transport, clock=clock, issuer=ISSUER)
    assert check.status == "valid"
    with pytest.raises(StatusListVerificationError) as caught:
        await check_status(cred.credential, transport, clock=clock, issuer="https://x.example")
    assert caught.value.reason == StatusListReason.MALFORMED


@pytest.mark.parametrize("text", ["AAAA", "not base64url!", "oA"])
def test_what_is_no_mdoc_is_malformed(text: str) -> None:
    with pytest.raises(StatusListVerificationError) as caught:
        read_credential_status_reference(text)
    assert caught.value.reason == StatusListReason.MALFORMED
