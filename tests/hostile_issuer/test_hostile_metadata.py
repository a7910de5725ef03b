"""A hostile issuer's offers and metadata (in memory, asyncio and trio).

Every case ends in a typed :class:`~oid4vci.errors.Oid4vciError`, and the wallet spends
nothing single-use on a document it refuses: no token request is sent (the pre-authorized code
stays redeemable), nothing is returned.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from oid4vci.errors import (
    InsecureUrlError,
    MetadataError,
    OfferError,
    Oid4vciError,
    ProtocolError,
    WireFormatError,
)
from oid4vci.http import HttpResponse
from oid4vci.models import CredentialOffer, parse_credential_offer_json
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.urls import insert_well_known
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from oid4vci.wallet.preflight import MAX_OFFERED_CONFIGURATIONS
from tests.conftest import FakeClock
from tests.hostile_issuer.conftest import HostileIssuer, json_response, make_client, raw_response
from tests.wallet.fakes import CONFIG_ID, D13, D15, ISSUER, PRE_AUTH_CODE, V1

META_PATH = "/.well-known/openid-credential-issuer"
AS_PATH = "/.well-known/oauth-authorization-server"
OFFER_URI = ISSUER + "/offers/1"


def offer_of(fake: HostileIssuer, **changes: Any) -> CredentialOffer:
    data = fake.offer()
    data.update(changes)
    return parse_credential_offer_json(data)


async def refused(
    fake: HostileIssuer,
    clock: FakeClock,
    expected: type[Oid4vciError] | tuple[type[Oid4vciError], ...],
    *,
    offer: CredentialOffer | None = None,
    **policy: Any,
) -> Oid4vciError:
    """Run the pre-authorized flow and check it fails with ``expected`` having spent nothing."""
    client, _ = make_client(fake, clock, **policy)
    with pytest.raises(expected) as info:
        await client.accept_offer(offer if offer is not None else offer_of(fake))
    assert fake.count("/token") == 0, "the pre-authorized code was sent to a refused issuer"
    assert fake.count("/credential") == 0
    assert not fake.pre_auth_used
    return info.value


# --- credential_issuer must be string-identical -----------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        ISSUER + "/",
        "https://ISSUER.example",
        "https://Issuer.Example",
        "HTTPS://issuer.example",
        "https://issuer.example:443",
        "https://issuer.example/#",
        "https://issuer.example?",
        " https://issuer.example",
        "https://issuer.example ",
        "https://issuer.example/other",
        "https://evil.example",
        "http://issuer.example",
        "",
        None,
        5,
        [ISSUER],
        {"url": ISSUER},
    ],
)
async def test_metadata_credential_issuer_mismatch(value: Any, clock: FakeClock) -> None:
    fake = HostileIssuer(metadata_overrides={"credential_issuer": value})
    await refused(fake, clock, MetadataError)


@pytest.mark.parametrize("version", [D13, D15, V1], ids=lambda v: v.value)
async def test_offer_with_trailing_slash_vs_metadata_without(
    version: Any, clock: FakeClock
) -> None:
    """The offer says ``…/`` and the metadata says ``…`` — not the same issuer."""
    fake = HostileIssuer(version=version)
    await refused(fake, clock, MetadataError, offer=offer_of(fake, credential_issuer=ISSUER + "/"))


async def test_offer_issuer_with_other_case_does_not_match(clock: FakeClock) -> None:
    fake = HostileIssuer(issuer="https://issuer.example/Tenant", metadata_at="inserted")
    offer = offer_of(fake, credential_issuer="https://issuer.example/tenant")
    # the document is served for the other spelling too (paths may be case-insensitive)
    fake.inject["/.well-known/openid-credential-issuer/tenant"] = [
        json_response(200, fake.issuer_metadata())
    ]
    await refused(fake, clock, MetadataError, offer=offer)


async def test_mismatch_on_first_location_is_not_skipped_for_the_second(clock: FakeClock) -> None:
    """A wrong document at the 1.0 location stops discovery; the draft location that would have
    a correct one is not tried ("next best" would let an attacker at either place win)."""
    fake = HostileIssuer(issuer=ISSUER + "/tenant", metadata_at="appended")
    wrong = fake.issuer_metadata() | {"credential_issuer": ISSUER + "/other"}
    fake.inject["/.well-known/openid-credential-issuer/tenant"] = [json_response(200, wrong)]
    await refused(fake, clock, MetadataError)
    assert fake.count("/tenant/.well-known/openid-credential-issuer") == 0


# --- the authorization server's issuer -------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        ISSUER + "/",
        "https://ISSUER.example",
        "https://issuer.example:443",
        "https://evil.example",
        "",
        None,
        7,
        [ISSUER],
    ],
)
async def test_as_issuer_mismatch(value: Any, clock: FakeClock) -> None:
    fake = HostileIssuer(as_overrides={"issuer": value})
    await refused(fake, clock, MetadataError)


async def test_as_issuer_mismatch_in_code_flow(clock: FakeClock) -> None:
    fake = HostileIssuer(as_overrides={"issuer": ISSUER + "/"})
    client, _ = make_client(fake, clock)
    with pytest.raises(MetadataError):
        await client.authorize(
            offer_of(fake, grants={"authorization_code": {}}),
            redirect_uri="https://wallet.example.org/cb",
            client_id="wallet",
        )
    assert fake.count("/par") == 0


async def test_offer_names_unlisted_authorization_server(clock: FakeClock) -> None:
    fake = HostileIssuer()
    data = fake.offer()
    grant = data["grants"]["urn:ietf:params:oauth:grant-type:pre-authorized_code"]
    grant["authorization_server"] = "https://evil-as.example"
    await refused(fake, clock, MetadataError, offer=parse_credential_offer_json(data))


# --- http endpoints for non-loopback hosts -------------------------------------------------------


HTTP_HOSTS = [
    "http://issuer.example",
    "http://127.0.0.1.nip.io",
    "http://localhost.evil.example",
    "http://[::ffff:8.8.8.8]",
]


@pytest.mark.parametrize("host", HTTP_HOSTS)
@pytest.mark.parametrize(
    "key",
    [
        "credential_endpoint",
        "nonce_endpoint",
        "deferred_credential_endpoint",
        "notification_endpoint",
    ],
)
async def test_http_issuer_endpoint_refused_before_the_code_is_spent(
    key: str, host: str, clock: FakeClock
) -> None:
    fake = HostileIssuer(metadata_overrides={key: f"{host}/{key}"})
    await refused(fake, clock, InsecureUrlError, allow_insecure_loopback=True)


@pytest.mark.parametrize("host", HTTP_HOSTS)
async def test_http_token_endpoint_refused(host: str, clock: FakeClock) -> None:
    fake = HostileIssuer(as_overrides={"token_endpoint": f"{host}/token"})
    await refused(fake, clock, InsecureUrlError, allow_insecure_loopback=True)


@pytest.mark.parametrize(
    "url", ["javascript:alert(1)", "file:///etc/passwd", "https://", "//issuer.example/c", ""]
)
async def test_unusable_credential_endpoint(url: str, clock: FakeClock) -> None:
    fake = HostileIssuer(metadata_overrides={"credential_endpoint": url})
    await refused(fake, clock, (InsecureUrlError, MetadataError))


@pytest.mark.parametrize(
    "key", ["authorization_endpoint", "pushed_authorization_request_endpoint", "token_endpoint"]
)
async def test_http_as_endpoints_refused_in_code_flow(key: str, clock: FakeClock) -> None:
    fake = HostileIssuer(as_overrides={key: f"http://issuer.example/{key}"})
    client, _ = make_client(fake, clock, allow_insecure_loopback=True)
    with pytest.raises(InsecureUrlError):
        await client.authorize(
            offer_of(fake, grants={"authorization_code": {}}),
            redirect_uri="https://wallet.example.org/cb",
            client_id="wallet",
        )
    assert fake.requests == [] or all("/par" not in r.url for r in fake.requests)


async def test_http_credential_endpoint_refused_in_code_flow(clock: FakeClock) -> None:
    fake = HostileIssuer(metadata_overrides={"credential_endpoint": "http://issuer.example/c"})
    client, _ = make_client(fake, clock)
    with pytest.raises(InsecureUrlError):
        await client.authorize(
            offer_of(fake, grants={"authorization_code": {}}),
            redirect_uri="https://wallet.example.org/cb",
            client_id="wallet",
        )
    assert fake.count("/par") == 0


@pytest.mark.parametrize("host", HTTP_HOSTS)
async def test_http_offer_uri_refused(host: str, clock: FakeClock) -> None:
    fake = HostileIssuer()
    client, _ = make_client(fake, clock, allow_insecure_loopback=True)
    link = "openid-credential-offer://?credential_offer_uri=" + quote(f"{host}/offer", safe="")
    with pytest.raises(InsecureUrlError):
        await client.parse_offer(link)
    assert fake.requests == []


@pytest.mark.parametrize("host", HTTP_HOSTS)
async def test_http_credential_issuer_refused(host: str, clock: FakeClock) -> None:
    fake = HostileIssuer()
    client, _ = make_client(fake, clock, allow_insecure_loopback=True)
    with pytest.raises(InsecureUrlError):
        await client.accept_offer(offer_of(fake, credential_issuer=host))
    assert fake.requests == []


async def test_http_authorization_server_refused(clock: FakeClock) -> None:
    fake = HostileIssuer(metadata_overrides={"authorization_servers": ["http://as.example"]})
    await refused(fake, clock, InsecureUrlError, allow_insecure_loopback=True)


# --- malformed documents and wrong shapes ------------------------------------------------------

BAD_BODIES: dict[str, HttpResponse] = {
    "not_json": raw_response(200, b"{not json"),
    "empty": raw_response(200, b""),
    "array": json_response(200, [1, 2]),
    "string": json_response(200, "metadata"),
    "null": json_response(200, None),
    "html": raw_response(200, b"<html>hello</html>", "text/html"),
    "bad_utf8": raw_response(200, b'{"credential_issuer": "\xff\xfe"}'),
    "deeply_nested": raw_response(200, b"[" * 50_000 + b"]" * 50_000),
    "huge_number": raw_response(200, b'{"n": ' + b"9" * 10_000 + b"}"),
    "error_500": json_response(500, {"error": "server_error"}),
    "error_404": raw_response(404, b""),
}


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
@pytest.mark.parametrize("path", [META_PATH, AS_PATH], ids=["issuer", "as"])
async def test_unreadable_metadata(path: str, name: str, clock: FakeClock) -> None:
    fake = HostileIssuer()
    fake.inject[path] = [BAD_BODIES[name]] * 3
    await refused(fake, clock, MetadataError)


ISSUER_SHAPES: list[tuple[str, Any]] = [
    ("credential_endpoint", 5),
    ("credential_endpoint", None),
    ("credential_endpoint", ["https://issuer.example/credential"]),
    ("nonce_endpoint", 7),
    ("nonce_endpoint", {"url": "https://issuer.example/nonce"}),
    ("deferred_credential_endpoint", True),
    ("credential_configurations_supported", []),
    ("credential_configurations_supported", {}),
    ("credential_configurations_supported", "IdentityCredential"),
    ("credential_configurations_supported", {CONFIG_ID: 5}),
    ("credential_configurations_supported", {CONFIG_ID: {"format": 5}}),
    ("credential_configurations_supported", {CONFIG_ID: {"vct": "x"}}),
    (
        "credential_configurations_supported",
        {CONFIG_ID: {"format": "dc+sd-jwt", "vct": "x", "proof_types_supported": []}},
    ),
    (
        "credential_configurations_supported",
        {CONFIG_ID: {"format": "dc+sd-jwt", "vct": "x", "proof_types_supported": {"jwt": 5}}},
    ),
    (
        "credential_configurations_supported",
        {
            CONFIG_ID: {
                "format": "dc+sd-jwt",
                "vct": "x",
                "proof_types_supported": {"cwt": {"proof_signing_alg_values_supported": ["x"]}},
            }
        },
    ),
    (
        "credential_configurations_supported",
        {
            CONFIG_ID: {
                "format": "dc+sd-jwt",
                "vct": "x",
                "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": "ES256"}},
            }
        },
    ),
    ("authorization_servers", ISSUER),
    ("authorization_servers", [5]),
    ("authorization_servers", [None]),
    ("batch_credential_issuance", 5),
    ("batch_credential_issuance", {"batch_size": -5}),
    ("batch_credential_issuance", {"batch_size": "10"}),
    ("batch_credential_issuance", {}),
]


@pytest.mark.parametrize(("key", "value"), ISSUER_SHAPES, ids=lambda x: repr(x)[:40])
async def test_issuer_metadata_wrong_shape(key: str, value: Any, clock: FakeClock) -> None:
    fake = HostileIssuer(metadata_overrides={key: value})
    await refused(fake, clock, (MetadataError, WireFormatError))


AS_SHAPES: list[tuple[str, Any]] = [
    ("token_endpoint", 5),
    ("token_endpoint", None),
    ("token_endpoint", [ISSUER + "/token"]),
    ("dpop_signing_alg_values_supported", "ES256"),
    ("dpop_signing_alg_values_supported", [5]),
    ("pre-authorized_grant_anonymous_access_supported", "yes"),
    ("code_challenge_methods_supported", "S256"),
    ("grant_types_supported", {"a": 1}),
]


@pytest.mark.parametrize(("key", "value"), AS_SHAPES, ids=lambda x: repr(x)[:40])
async def test_as_metadata_wrong_shape(key: str, value: Any, clock: FakeClock) -> None:
    fake = HostileIssuer(as_overrides={key: value})
    await refused(fake, clock, (MetadataError, WireFormatError))


async def test_as_without_s256_refused_for_code_flow(clock: FakeClock) -> None:
    fake = HostileIssuer(as_overrides={"code_challenge_methods_supported": ["plain"]})
    client, _ = make_client(fake, clock)
    with pytest.raises(MetadataError):
        await client.authorize(
            offer_of(fake, grants={"authorization_code": {}}),
            redirect_uri="https://wallet.example.org/cb",
            client_id="wallet",
        )


async def test_dpop_required_but_as_offers_only_weak_algs(clock: FakeClock) -> None:
    fake = HostileIssuer(as_overrides={"dpop_signing_alg_values_supported": ["none", "HS256"]})
    await refused(fake, clock, MetadataError, dpop="required")


# --- offers by reference ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BAD_BODIES))
async def test_unreadable_offer_by_reference(name: str, clock: FakeClock) -> None:
    fake = HostileIssuer()
    fake.inject["/offers/1"] = [BAD_BODIES[name]]
    client, _ = make_client(fake, clock)
    link = "openid-credential-offer://?credential_offer_uri=" + quote(OFFER_URI, safe="")
    with pytest.raises((OfferError, WireFormatError, ProtocolError)):
        await client.parse_offer(link)


OFFER_SHAPES: list[dict[str, Any]] = [
    {},
    {"credential_issuer": ISSUER},
    {"credential_issuer": 5, "credential_configuration_ids": [CONFIG_ID]},
    {"credential_issuer": ISSUER, "credential_configuration_ids": CONFIG_ID},
    {"credential_issuer": ISSUER, "credential_configuration_ids": [5]},
    {"credential_issuer": ISSUER, "credential_configuration_ids": [CONFIG_ID, CONFIG_ID]},
    {"credential_issuer": ISSUER, "credential_configuration_ids": [CONFIG_ID], "grants": []},
    {
        "credential_issuer": ISSUER,
        "credential_configuration_ids": [CONFIG_ID],
        "grants": {"urn:ietf:params:oauth:grant-type:pre-authorized_code": {}},
    },
    {
        "credential_issuer": ISSUER,
        "credential_configuration_ids": [CONFIG_ID],
        "grants": {"urn:ietf:params:oauth:grant-type:pre-authorized_code": "code"},
    },
    {
        "credential_issuer": ISSUER,
        "credential_configuration_ids": [CONFIG_ID],
        "grants": {
            "urn:ietf:params:oauth:grant-type:pre-authorized_code": {
                "pre-authorized_code": PRE_AUTH_CODE,
                "tx_code": {"length": "6"},
            }
        },
    },
    {
        "credential_issuer": ISSUER,
        "credential_configuration_ids": [CONFIG_ID],
        "grants": {"authorization_code": {"issuer_state": 5}},
    },
]


@pytest.mark.parametrize("doc", OFFER_SHAPES, ids=lambda d: json.dumps(d)[:50])
async def test_offer_wrong_shape(doc: dict[str, Any], clock: FakeClock) -> None:
    fake = HostileIssuer()
    fake.inject["/offers/1"] = [json_response(200, doc)]
    client, _ = make_client(fake, clock)
    by_ref = "openid-credential-offer://?credential_offer_uri=" + quote(OFFER_URI, safe="")
    by_value = "openid-credential-offer://?credential_offer=" + quote(json.dumps(doc), safe="")
    for link in (by_ref, by_value):
        with pytest.raises((OfferError, WireFormatError)):
            await client.parse_offer(link)


async def test_offer_by_reference_with_error_status(clock: FakeClock) -> None:
    fake = HostileIssuer()
    fake.inject["/offers/1"] = [json_response(400, {"error": "invalid_request"})]
    client, _ = make_client(fake, clock)
    link = "openid-credential-offer://?credential_offer_uri=" + quote(OFFER_URI, safe="")
    with pytest.raises(ProtocolError):
        await client.parse_offer(link)


# --- absurd offers ----------------------------------------------------------------------------


def absurd_offer(count: int) -> dict[str, Any]:
    return {
        "credential_issuer": ISSUER,
        "credential_configuration_ids": [f"config-{i}" for i in range(count)],
        "grants": {
            "urn:ietf:params:oauth:grant-type:pre-authorized_code": {
                "pre-authorized_code": PRE_AUTH_CODE
            }
        },
    }


async def test_ten_thousand_configuration_ids_refused(clock: FakeClock) -> None:
    """Even when the metadata lists them all, the wallet does not start 10k issuances."""
    doc = absurd_offer(10_000)
    fake = HostileIssuer()
    config = fake.issuer_metadata()["credential_configurations_supported"][CONFIG_ID]
    fake.metadata_overrides["credential_configurations_supported"] = {
        cid: config for cid in doc["credential_configuration_ids"]
    }
    client, _ = make_client(fake, clock)
    fake.inject["/offers/1"] = [json_response(200, doc)]
    by_ref = "openid-credential-offer://?credential_offer_uri=" + quote(OFFER_URI, safe="")
    with pytest.raises(OfferError):
        await client.parse_offer(by_ref)
    by_value = "openid-credential-offer://?credential_offer=" + quote(json.dumps(doc), safe="")
    with pytest.raises(OfferError):
        await client.parse_offer(by_value)
    # an offer built by the application itself is checked by the flows too
    offer = parse_credential_offer_json(doc)
    with pytest.raises(OfferError):
        await client.accept_offer(offer)
    with pytest.raises(OfferError):
        await client.authorize(offer, redirect_uri="https://wallet.example.org/cb", client_id="w")
    assert fake.count("/token") == 0 and fake.count("/credential") == 0


async def test_many_but_bounded_configuration_ids_are_accepted_by_parse(clock: FakeClock) -> None:
    fake = HostileIssuer()
    client, _ = make_client(fake, clock)
    doc = absurd_offer(MAX_OFFERED_CONFIGURATIONS)
    link = "openid-credential-offer://?credential_offer=" + quote(json.dumps(doc), safe="")
    offer = await client.parse_offer(link)
    assert len(offer.credential_configuration_ids) == MAX_OFFERED_CONFIGURATIONS
    # ... and refused for the right reason: the issuer does not know them
    await refused(fake, clock, MetadataError, offer=offer)


@pytest.mark.parametrize("length", [10**6, 10**9, 10**30])
async def test_huge_tx_code_length(length: int, clock: FakeClock) -> None:
    fake = HostileIssuer(tx_code={"length": length, "input_mode": "numeric"})
    client, _ = make_client(fake, clock)
    doc = fake.offer()
    link = "openid-credential-offer://?credential_offer=" + quote(json.dumps(doc), safe="")
    with pytest.raises(OfferError):
        await client.parse_offer(link)
    offer = parse_credential_offer_json(doc)
    for tx_code in ("123456", "1" * 1000):
        with pytest.raises(OfferError):
            await client.accept_offer(offer, tx_code=tx_code)
    assert fake.count("/token") == 0


@pytest.mark.parametrize(
    "tx_code",
    [{"length": 0}, {"length": -1}, {"length": True}, {"input_mode": "binary"}, {"length": 1.5}],
)
async def test_nonsense_tx_code_objects(tx_code: dict[str, Any], clock: FakeClock) -> None:
    fake = HostileIssuer(tx_code=tx_code)
    client, _ = make_client(fake, clock)
    link = "openid-credential-offer://?credential_offer=" + quote(json.dumps(fake.offer()), safe="")
    with pytest.raises(OfferError):
        await client.parse_offer(link)


async def test_huge_tx_code_description(clock: FakeClock) -> None:
    fake = HostileIssuer(tx_code={"length": 6, "description": "x" * 100_000})
    client, _ = make_client(fake, clock)
    link = "openid-credential-offer://?credential_offer=" + quote(json.dumps(fake.offer()), safe="")
    with pytest.raises(OfferError):
        await client.parse_offer(link)


async def test_huge_pre_authorized_code_and_issuer_state_are_not_echoed(clock: FakeClock) -> None:
    """A 1 MB pre-authorized code is the issuer's business; errors never quote it."""
    fake = HostileIssuer()
    client, _ = make_client(fake, clock)
    huge = "c" * 1_000_000
    doc = fake.offer()
    doc["grants"]["urn:ietf:params:oauth:grant-type:pre-authorized_code"]["pre-authorized_code"] = (
        huge
    )
    with pytest.raises(Oid4vciError) as info:
        await client.accept_offer(parse_credential_offer_json(doc))
    assert huge[:64] not in str(info.value) and huge[:64] not in repr(info.value)


async def test_well_known_urls_of_offer_issuer_only() -> None:
    """Sanity for the fixtures above: the paths the fake serves are the wallet's paths."""
    assert insert_well_known(ISSUER, "openid-credential-issuer").endswith(META_PATH)
    assert insert_well_known(ISSUER, "oauth-authorization-server").endswith(AS_PATH)


async def test_no_network_for_refused_offer_by_value(clock: FakeClock) -> None:
    """Parsing an offer by value never touches the network, even for a hostile issuer URL."""

    async def explode(request: Any) -> HttpResponse:
        raise AssertionError("no request expected")

    client = Oid4vciClient(InMemoryTransport(explode), policy=WalletPolicy(), clock=clock)
    doc = absurd_offer(1) | {"credential_issuer": "http://evil.example"}
    link = "openid-credential-offer://?credential_offer=" + quote(json.dumps(doc), safe="")
    offer = await client.parse_offer(link)
    with pytest.raises(InsecureUrlError):
        await client.accept_offer(offer)


async def test_refused_documents_are_not_cached(clock: FakeClock) -> None:
    """A refused issuer or AS document is not remembered: the next flow fetches again."""
    fake = HostileIssuer()
    wrong_issuer = fake.issuer_metadata() | {"credential_issuer": ISSUER + "/"}
    wrong_as = fake.as_metadata() | {"issuer": ISSUER + "/"}
    fake.inject[META_PATH] = [json_response(200, wrong_issuer)]
    client, _ = make_client(fake, clock)
    with pytest.raises(MetadataError):
        await client.accept_offer(offer_of(fake))
    fake.inject[AS_PATH] = [json_response(200, wrong_as)]
    with pytest.raises(MetadataError):
        await client.accept_offer(offer_of(fake))
    result = await client.accept_offer(offer_of(fake))
    assert len(result.credentials) == 1
