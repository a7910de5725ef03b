"""The ISO mdoc rows of the e2e matrix: every published version × both flows.

The demo issuer's mDL configuration (``org.iso.18013.5.1.mDL``, format ``mso_mdoc``) is
requested by our wallet in each version's shape (Draft 13/14: ``format`` + ``doctype``; Draft
15/1.0: ``credential_configuration_id``), over the in-memory transport, with the demo IACA
root as the wallet's trust anchor. Each case checks what the wallet returns, and verifies
every mdoc again here with :func:`oid4vci.mdoc.verify_mdoc`: one MSO per holder key, each
``deviceKey`` the holder key of its proof.
"""

from __future__ import annotations

import datetime

import pytest

from oid4vci.issuer.demo import DEMO_MDL_CONFIGURATION_ID, DEMO_MDL_COUNTRY
from oid4vci.issuer.offers import OfferTemplate
from oid4vci.jose import jwk_thumbprint
from oid4vci.mdoc import verify_mdoc
from oid4vci.versions import SpecVersion
from oid4vci.wallet import FlowState, IssuanceResult, WalletPolicy
from tests.conftest import FakeClock
from tests.e2e.conftest import (
    ISSUER,
    REDIRECT_URI,
    VERSION_IDS,
    DeferringClaims,
    E2eIssuer,
    FakeSleep,
    browser_login,
    build_e2e_issuer,
    check_wire,
    make_client,
)
from tests.issuer.test_demo_mdl import MDL_MANDATORY_ELEMENTS

MDL = "org.iso.18013.5.1"
AUTH_CODE_MDOC = OfferTemplate(
    name="auth_code_mdoc",
    configuration_ids=[DEMO_MDL_CONFIGURATION_ID],
    grant="authorization_code",
    subject="alice",
)


def _check(
    result: IssuanceResult, e2e: E2eIssuer, version: SpecVersion, count: int, clock: FakeClock
) -> None:
    assert result.state is FlowState.DONE and result.spec_version is version
    assert len(result.credentials) == count
    assert e2e.iaca is not None
    keys: set[str] = set()
    for cred in result.credentials:
        assert cred.verified is True
        assert cred.format == "mso_mdoc"
        assert cred.doctype == DEMO_MDL_CONFIGURATION_ID
        assert cred.configuration_id == DEMO_MDL_CONFIGURATION_ID
        assert cred.vct is None
        elements = cred.claims[MDL]
        assert elements["family_name"] == "Liddell" and elements["given_name"] == "Alice"
        assert elements["birth_date"] == datetime.date(2000, 5, 4)
        assert elements["issuing_country"] == DEMO_MDL_COUNTRY
        assert set(elements) == MDL_MANDATORY_ELEMENTS
        assert cred.holder_key is not None
        # independently: the same bytes verify under the IACA, bound to this holder key
        checked = verify_mdoc(
            cred.credential,
            trust_anchors=[e2e.iaca],
            expected_doctype=DEMO_MDL_CONFIGURATION_ID,
            holder_keys=[cred.holder_key.public_jwk],
            clock=clock,
        )
        assert checked.claims == cred.claims
        # the demo issuer publishes status lists: the MSO refers to its own entry
        # (draft-ietf-oauth-status-list-14 §6.3.2)
        assert checked.status is not None
        reference = checked.status["status_list"]
        assert reference["uri"].startswith(ISSUER + "/status-lists/") and reference["idx"] >= 0
        keys.add(jwk_thumbprint(checked.device_key))
    assert len(keys) == count, "one MSO per holder key"
    check_wire(e2e, version)


async def _pre_auth(version: SpecVersion, clock: FakeClock, count: int) -> None:
    e2e = build_e2e_issuer(version, clock)
    assert e2e.iaca is not None
    client = make_client(e2e, clock, policy=WalletPolicy(trust_anchors=[e2e.iaca]))
    offer = await client.parse_offer(e2e.offer_links["pre_auth_mdoc"])
    assert offer.credential_configuration_ids == (DEMO_MDL_CONFIGURATION_ID,)
    result = await client.accept_offer(offer, count=count)
    _check(result, e2e, version, count, clock)
    if version is not SpecVersion.DRAFT_13 and count > 1:
        assert len(e2e.calls("/credential")) == 1, "batch issuance: one request, many proofs"


async def _auth_code(version: SpecVersion, clock: FakeClock) -> None:
    e2e = build_e2e_issuer(version, clock, extra_templates=[AUTH_CODE_MDOC])
    assert e2e.iaca is not None
    client = make_client(e2e, clock, policy=WalletPolicy(trust_anchors=[e2e.iaca]))
    offer = await client.parse_offer(e2e.offer_links["auth_code_mdoc"])
    url, pending = await client.authorize(offer, redirect_uri=REDIRECT_URI)
    result = await client.claim(pending, await browser_login(e2e, url), count=2)
    _check(result, e2e, version, 2, clock)


async def _deferred(version: SpecVersion, clock: FakeClock) -> None:
    """The claims source defers once; the polled mdocs are checked against the doctype kept
    with the deferred transaction."""
    source = DeferringClaims(interval=4)
    e2e = build_e2e_issuer(version, clock, claims_source=source)
    assert e2e.iaca is not None

    async def on_sleep(n: int) -> None:
        source.ready = True

    sleep = FakeSleep(clock, on_sleep)
    client = make_client(e2e, clock, policy=WalletPolicy(trust_anchors=[e2e.iaca]), sleep=sleep)
    started = await client.accept_offer(e2e.offer_links["pre_auth_mdoc"], count=2)
    assert started.state is FlowState.DEFERRED
    assert all(t.expected_doctype == DEMO_MDL_CONFIGURATION_ID for t in started.deferred)
    credentials = await client.poll_deferred(started)
    assert len(credentials) == 2
    for cred in credentials:
        assert cred.verified and cred.doctype == DEMO_MDL_CONFIGURATION_ID
        assert cred.claims[MDL]["given_name"] == "Alice"
    assert len({c.holder_jkt for c in credentials}) == 2


@pytest.mark.parametrize("version", list(VERSION_IDS), ids=list(VERSION_IDS.values()))
@pytest.mark.parametrize("flow", ["pre_auth", "pre_auth_batch_3", "auth_code", "deferred"])
async def test_mdoc_matrix(version: SpecVersion, flow: str, clock: FakeClock) -> None:
    if flow == "auth_code":
        await _auth_code(version, clock)
    elif flow == "deferred":
        await _deferred(version, clock)
    else:
        await _pre_auth(version, clock, 3 if flow.endswith("3") else 1)
