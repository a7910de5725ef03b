"""Credential offers: pre-authorized and authorization code, by value and by reference, templates."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from oid4vci.issuer import Issuer, OfferOptions, OfferTemplate, TxCodeSpec, store_keys
from oid4vci.issuer.offers import create_authorization_code_offer, create_pre_authorized_offer
from oid4vci.models import parse_credential_offer_uri
from tests.conftest import FakeClock
from tests.issuer.test_service import (
    ISSUER,
    PRE_AUTH_GRANT,
    Session,
    make_config,
    send,
    transport_for,
)


async def test_pre_authorized_offer_by_value(clock: FakeClock) -> None:
    config = make_config(clock)
    created = await create_pre_authorized_offer(
        config, configuration_ids=["identity"], subject="alice"
    )
    assert created.offer_uri.startswith("openid-credential-offer://?credential_offer=")
    assert created.https_uri is None
    offer = json.loads(parse_qs(urlsplit(created.offer_uri).query)["credential_offer"][0])
    assert offer["credential_issuer"] == ISSUER
    assert offer["credential_configuration_ids"] == ["identity"]
    grant = offer["grants"][PRE_AUTH_GRANT]
    assert grant == {"pre-authorized_code": created.pre_authorized_code}
    assert created.tx_code is None
    parsed = parse_credential_offer_uri(created.offer_uri)
    assert not isinstance(parsed, str)
    assert parsed.pre_authorized_code is not None
    # the code is redeemable once
    transport = transport_for(Issuer(config))
    session = Session(transport=transport, clock=clock)
    assert created.pre_authorized_code is not None
    assert (await session.redeem(created.pre_authorized_code)).status == 200
    again = await Session(transport=transport, clock=clock).redeem(created.pre_authorized_code)
    assert again.status == 400
    assert again.json_body()["error"] == "invalid_grant"


async def test_tx_code_offer_and_secrets_hidden(clock: FakeClock) -> None:
    config = make_config(clock)
    created = await create_pre_authorized_offer(
        config,
        configuration_ids=["identity"],
        subject="alice",
        tx_code=TxCodeSpec(input_mode="numeric", length=6, description="check your mail"),
    )
    assert created.tx_code is not None and created.tx_code.isdigit() and len(created.tx_code) == 6
    grant = created.offer_json["grants"][PRE_AUTH_GRANT]
    assert grant["tx_code"] == {
        "input_mode": "numeric",
        "length": 6,
        "description": "check your mail",
    }
    assert created.tx_code not in json.dumps(created.offer_json)
    assert created.pre_authorized_code is not None
    for text in (repr(created), repr(created.offer)):
        assert created.tx_code not in text
        assert created.pre_authorized_code not in text
    text_code = TxCodeSpec(input_mode="text", length=8)
    assert len(text_code.generate()) == 8
    assert "1234" not in repr(TxCodeSpec(length=4, value="1234"))
    transport = transport_for(Issuer(config))
    wrong = await Session(transport=transport, clock=clock).redeem(
        created.pre_authorized_code, "000000" if created.tx_code != "000000" else "111111"
    )
    assert (wrong.status, wrong.json_body()["error"]) == (400, "invalid_grant")
    right = await Session(transport=transport, clock=clock).redeem(
        created.pre_authorized_code, created.tx_code
    )
    assert right.status == 200, right.body


def test_tx_code_spec_validation() -> None:
    with pytest.raises(ValueError):
        TxCodeSpec(length=2)
    with pytest.raises(ValueError):
        TxCodeSpec(length=4, value="12a4")
    with pytest.raises(ValueError):
        TxCodeSpec(length=4, value="12345")


async def test_unknown_configuration_refused(clock: FakeClock) -> None:
    config = make_config(clock)
    with pytest.raises(ValueError):
        await create_pre_authorized_offer(config, configuration_ids=["nope"], subject="a")
    with pytest.raises(ValueError):
        await create_authorization_code_offer(config, configuration_ids=[])


async def test_an_offer_by_reference_is_stored_sealed(clock: FakeClock) -> None:
    """The store holds neither the offer id nor the offer (its pre-authorized code): only the
    URL's holder can open the record, and a record moved under another id opens for nobody."""
    config = make_config(clock)
    transport = transport_for(Issuer(config))
    options = OfferOptions(by_reference=True, reusable=True)
    created = await create_pre_authorized_offer(
        config, configuration_ids=["identity"], subject="alice", options=options
    )
    other = await create_pre_authorized_offer(
        config, configuration_ids=["identity"], subject="alice", options=options
    )
    assert created.pre_authorized_code and created.https_uri and other.https_uri
    assert created.offer_id is not None and other.offer_id is not None
    stored = await config.store.get(store_keys.offer_key(created.offer_id))
    assert isinstance(stored, dict) and set(stored) == {"sealed"}
    text = json.dumps(stored)
    assert created.pre_authorized_code not in text and created.offer_id not in text
    await config.store.put(store_keys.offer_key(other.offer_id), stored, 60)
    assert (await send(transport, "GET", other.https_uri)).status == 404
    tampered = {"sealed": stored["sealed"][:-4] + "AAAA"}
    await config.store.put(store_keys.offer_key(created.offer_id), tampered, 60)
    assert (await send(transport, "GET", created.https_uri)).status == 404


async def test_offer_by_reference_single_use_and_reusable(clock: FakeClock) -> None:
    config = make_config(clock)
    transport = transport_for(Issuer(config))
    once = await create_pre_authorized_offer(
        config,
        configuration_ids=["identity"],
        subject="alice",
        options=OfferOptions(by_reference=True),
    )
    assert once.https_uri == f"{ISSUER}/offers/{once.offer_id}"
    assert once.offer_uri == "openid-credential-offer://?credential_offer_uri=" + (
        f"https%3A%2F%2Fissuer.example%2Foffers%2F{once.offer_id}"
    )
    first = await send(transport, "GET", once.https_uri)
    assert first.status == 200
    assert first.media_type == "application/json"
    assert first.json_body() == once.offer_json
    second = await send(transport, "GET", once.https_uri)
    assert second.status == 404
    assert second.json_body()["error"] == "invalid_request"
    reusable = await create_pre_authorized_offer(
        config,
        configuration_ids=["identity"],
        subject="alice",
        options=OfferOptions(by_reference=True, reusable=True),
    )
    assert reusable.https_uri is not None
    for _ in range(2):
        assert (await send(transport, "GET", reusable.https_uri)).status == 200
    # expires with the pre-authorized code
    clock.advance(config.pre_authorized_code_ttl + 1)
    assert (await send(transport, "GET", reusable.https_uri)).status == 404
    assert (await send(transport, "GET", ISSUER + "/offers/unknown")).status == 404
    assert (await send(transport, "POST", ISSUER + "/offers/unknown")).status == 405


async def test_authorization_code_offer_stores_issuer_state(clock: FakeClock) -> None:
    config = make_config(clock)
    created = await create_authorization_code_offer(
        config, configuration_ids=["identity", "other"], options=OfferOptions(by_reference=True)
    )
    assert created.issuer_state is not None
    assert created.pre_authorized_code is None
    assert created.offer_json["grants"] == {
        "authorization_code": {"issuer_state": created.issuer_state}
    }
    stored = await config.store.get(store_keys.issuer_state_key(created.issuer_state))
    assert isinstance(stored, dict)
    assert stored["configuration_ids"] == ["identity", "other"]


async def test_templates_mint_fresh_offers(clock: FakeClock) -> None:
    config = make_config(clock)
    issuer = Issuer(
        config,
        offer_templates=[
            OfferTemplate(name="pre", configuration_ids=["identity"], subject="alice"),
            OfferTemplate(name="code", configuration_ids=["identity"], grant="authorization_code"),
        ],
    )
    transport = transport_for(issuer)
    url = issuer.offer_template_url("pre")
    codes = {
        (await send(transport, "GET", url)).json_body()["grants"][PRE_AUTH_GRANT][
            "pre-authorized_code"
        ]
        for _ in range(3)
    }
    assert len(codes) == 3
    states = set()
    for _ in range(2):
        body = (await send(transport, "GET", issuer.offer_template_url("code"))).json_body()
        states.add(body["grants"]["authorization_code"]["issuer_state"])
    assert len(states) == 2
    assert (await send(transport, "GET", ISSUER + "/offers/templates/nope")).status == 404
    with pytest.raises(ValueError):
        OfferTemplate(name="x", configuration_ids=["identity"])  # pre-auth needs a subject
    with pytest.raises(ValueError):
        OfferTemplate(name="a/b", configuration_ids=["identity"], subject="s")
    with pytest.raises(ValueError):
        issuer.register_offer_template(
            OfferTemplate(name="y", configuration_ids=["nope"], subject="s")
        )
    with pytest.raises(KeyError):
        issuer.offer_template_url("unknown")


async def test_offer_arguments_of_the_wrong_type_name_the_parameter() -> None:
    from oid4vci.errors import ArgumentTypeError, UsageError
    from oid4vci.issuer import build_demo_issuer

    demo = build_demo_issuer("https://issuer.example")
    with pytest.raises(ArgumentTypeError, match="subject"):
        await demo.issuer.create_pre_authorized_offer(
            configuration_ids=[demo.configuration_id],
            subject=5,  # type: ignore[arg-type]
        )
    with pytest.raises(ArgumentTypeError, match="configuration_ids"):
        await demo.issuer.create_pre_authorized_offer(
            configuration_ids=[1],  # type: ignore[list-item]
            subject="alice",
        )
    with pytest.raises(UsageError, match="unknown"):
        await demo.issuer.create_pre_authorized_offer(configuration_ids=["nope"], subject="a")
    assert issubclass(ArgumentTypeError, TypeError) and issubclass(UsageError, ValueError)
