"""A token response's ``credential_identifiers`` (OID4VCI 1.0 §6.2) cannot make the wallet
send unbounded credential requests or ask one Credential Dataset twice."""

from __future__ import annotations

import json

import pytest

from oid4vci.errors import WireFormatError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.models import parse_credential_offer_json
from oid4vci.wallet.preflight import MAX_CREDENTIAL_DATASETS
from tests.conftest import FakeClock
from tests.hostile_issuer.conftest import HostileIssuer, json_response, make_client
from tests.wallet.fakes import CONFIG_ID


def _issuer_naming(identifiers: list[str]) -> HostileIssuer:
    fake = HostileIssuer()

    async def answer(request: HttpRequest) -> HttpResponse | None:
        if not request.url.endswith("/token"):
            return None
        response = await fake._token(request)
        body = json.loads(response.body)
        body["authorization_details"] = [
            {
                "type": "openid_credential",
                "credential_configuration_id": CONFIG_ID,
                "credential_identifiers": identifiers,
            }
        ]
        return json_response(200, body)

    fake.override = answer
    return fake


@pytest.mark.parametrize(
    ("identifiers", "words"),
    [
        ([f"dataset-{i}" for i in range(MAX_CREDENTIAL_DATASETS + 1)], "datasets"),
        (["dataset-a", "dataset-b", "dataset-a"], "repeats"),
    ],
)
async def test_too_many_or_repeated_datasets_are_refused_before_any_request(
    identifiers: list[str], words: str, clock: FakeClock
) -> None:
    fake = _issuer_naming(identifiers)
    client, _ = make_client(fake, clock)
    with pytest.raises(WireFormatError, match=words):
        await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert fake.count("/credential") == 0
    assert fake.count("/nonce") == 0


async def test_datasets_times_count_are_bounded(clock: FakeClock) -> None:
    fake = _issuer_naming([f"dataset-{i}" for i in range(20)])
    client, _ = make_client(fake, clock)
    with pytest.raises(WireFormatError, match="1000 credentials"):
        await client.accept_offer(parse_credential_offer_json(fake.offer()), count=51)
    assert fake.count("/credential") == 0


async def test_a_few_datasets_are_each_requested(clock: FakeClock) -> None:
    fake = _issuer_naming(["dataset-a", "dataset-b"])
    client, _ = make_client(fake, clock)
    result = await client.accept_offer(parse_credential_offer_json(fake.offer()))
    assert len(result.credentials) == 2
    sent = [json.loads(r.body) for r in fake.requests if r.url.endswith("/credential")]
    assert sorted(body["credential_identifier"] for body in sent) == ["dataset-a", "dataset-b"]
