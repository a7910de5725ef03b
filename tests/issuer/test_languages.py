"""``Accept-Language`` at the Credential Issuer metadata endpoint (OID4VCI 1.0 §12.2.2) and the
wallet side that sends it."""

from __future__ import annotations

from typing import Any

import pytest

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import CredentialConfigurationSpec, Issuer, IssuerConfig, MemoryStore
from oid4vci.issuer.languages import (
    MAX_RANGES,
    accept_language_ranges,
    available_locales,
    localize_display,
    negotiate_languages,
)
from oid4vci.issuer.metadata import create_issuer_metadata
from oid4vci.jose import LocalSigner
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.versions import SpecVersion
from oid4vci.wallet import MetadataCache, WalletPolicy, discover
from oid4vci.wallet.steps import accept_language, build_metadata_request
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio

ISSUER = "https://issuer.example"
WELL_KNOWN = ISSUER + "/.well-known/openid-credential-issuer"


def names(entries: list[dict[str, Any]]) -> list[str | None]:
    return [e.get("locale") for e in entries]


# --- the header ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "ranges"),
    [
        # the OID4VCI 1.0 §12.2.2 example
        ("fr-ch, fr;q=0.9, en;q=0.8, de;q=0.7, *;q=0.5", ("fr-ch", "fr", "en", "de", "*")),
        ("en;q=0.1, DE", ("de", "en")),
        ("de;q=0, en", ("en",)),
        ("de;q=0.5, en;q=0.5", ("de", "en")),  # equal weights keep the header's order
        ("de;q=2, en;q=abc, fr;x=1, it;q=0.3;q=0.2, nl", ("nl",)),
        ("12, de_DE, ,;q=1, en-", ()),
        ("de, de", ("de",)),
        ("", ()),
        (None, ()),
        ("x" * 2000, ()),
    ],
)
def test_accept_language_ranges(header: str | None, ranges: tuple[str, ...]) -> None:
    assert accept_language_ranges(header) == ranges


def test_accept_language_ranges_caps_the_ranges() -> None:
    header = ", ".join(f"l{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(60))
    assert len(accept_language_ranges(header)) == MAX_RANGES


@pytest.mark.parametrize(
    ("ranges", "chosen"),
    [
        (("de",), ("de-CH", "de")),  # RFC 4647 §3.3.1: a prefix at a "-" boundary matches
        (("de-ch",), ("de-CH",)),
        (("d",), ()),
        (("fr", "en"), ("fr-FR", "en-US")),
        (("en", "*"), ("en-US", "de-CH", "de", "fr-FR")),
        (("it",), ()),
    ],
)
def test_negotiate_basic_filtering(ranges: tuple[str, ...], chosen: tuple[str, ...]) -> None:
    assert negotiate_languages(ranges, ("en-US", "de-CH", "de", "fr-FR")) == chosen


def test_wallet_writes_descending_weights() -> None:
    assert accept_language(("de-CH", "de", "en")) == "de-CH, de;q=0.9, en;q=0.8"
    request = build_metadata_request(WELL_KNOWN, languages=("fr",))
    assert request.headers.get("Accept-Language") == "fr"
    assert build_metadata_request(WELL_KNOWN).headers.get("Accept-Language") is None
    assert accept_language_ranges(accept_language(("de-CH", "de", "en"))) == ("de-ch", "de", "en")


# --- the metadata document ----------------------------------------------------------------------


def display(*locales: str | None) -> list[dict[str, Any]]:
    return [{"name": f"n-{loc}", **({"locale": loc} if loc else {})} for loc in locales]


def config(clock: FakeClock, version: SpecVersion = SpecVersion.V1) -> IssuerConfig:
    async def claims(subject: str, configuration_id: str) -> dict[str, Any]:
        return {}

    spec = CredentialConfigurationSpec(
        id="pid",
        vct="urn:pid",
        display=display("en-US", "de-DE", "fr"),
        claims=[
            {"path": ["given_name"], "display": display("en-US", "de-CH")},
            {"path": ["age"], "display": display("fr")},
            {"path": ["neutral"], "display": display(None, "de")},
        ],
    )
    return IssuerConfig(
        credential_issuer=ISSUER,
        credential_signer=LocalSigner.generate(),
        credential_configurations=[spec],
        claims_source=claims,
        store=MemoryStore(clock=clock),
        display=display("en", "de"),
        published_version=version,
        clock=clock,
    )


async def get(issuer: Issuer, header: str | None) -> HttpResponse:
    headers = {"Accept-Language": header} if header is not None else {}
    return await issuer.handle(HttpRequest(method="GET", url=WELL_KNOWN, headers=headers))


async def test_german_first(clock: FakeClock) -> None:
    response = await get(Issuer(config(clock)), "de, en;q=0.5")
    assert response.status == 200
    assert response.headers.get("Vary") == "Accept-Language"
    assert response.headers.get("Content-Language") == "de, de-DE, de-CH, en, en-US"
    doc = response.json_body()
    assert names(doc["display"]) == ["de", "en"]
    pid = doc["credential_configurations_supported"]["pid"]["credential_metadata"]
    assert names(pid["display"]) == ["de-DE", "en-US"]
    claims = {c["path"][0]: names(c["display"]) for c in pid["claims"]}
    # fr only: nothing matches, the array stays whole; a neutral entry (no locale) is kept
    assert claims == {"given_name": ["de-CH", "en-US"], "age": ["fr"], "neutral": ["de", None]}


async def test_no_header_or_no_match_sends_everything(clock: FakeClock) -> None:
    issuer = Issuer(config(clock))
    full = create_issuer_metadata(issuer.config)
    for header in (None, "it", "garbage;;;"):
        response = await get(issuer, header)
        assert response.json_body() == full
        assert response.headers.get("Content-Language") is None
        assert response.headers.get("Vary") == "Accept-Language"


@pytest.mark.parametrize("version", list(SpecVersion), ids=lambda v: v.value)
async def test_every_version_shape_is_localized(clock: FakeClock, version: SpecVersion) -> None:
    issuer = Issuer(config(clock, version))
    doc = (await get(issuer, "fr")).json_body()
    assert names(doc["display"]) == ["en", "de"]  # no fr at the top: left whole
    configurations = doc["credential_configurations_supported"]
    # the configuration's display is down to fr; the claims without fr keep theirs
    assert set(available_locales(configurations)) == {"fr", "en-US", "de-CH", "de"}
    assert "n-fr" in str(configurations) and "de-DE" not in str(configurations)


def test_localize_is_pure_and_cache_keyable(clock: FakeClock) -> None:
    cfg = config(clock)
    full = create_issuer_metadata(cfg)
    snapshot = repr(full)
    languages = negotiate_languages(("de",), available_locales(full))
    assert languages == ("de", "de-DE", "de-CH")
    assert create_issuer_metadata(cfg, languages=languages) == localize_display(full, languages)
    assert repr(full) == snapshot
    assert localize_display(full, ()) is full


async def test_wallet_sends_languages_and_caches_per_language(clock: FakeClock) -> None:
    issuer = Issuer(config(clock))
    seen: list[str | None] = []

    async def handle(request: HttpRequest) -> HttpResponse:
        if "openid-credential-issuer" in request.url:
            seen.append(request.headers.get("Accept-Language"))
        return await issuer.handle(request)

    transport = InMemoryTransport(routes={ISSUER: handle})
    cache = MetadataCache(ttl=300, clock=clock)
    german = await discover(transport, ISSUER, policy=WalletPolicy(languages=("de",)), cache=cache)
    english = await discover(transport, ISSUER, policy=WalletPolicy(languages=("en",)), cache=cache)
    again = await discover(transport, ISSUER, policy=WalletPolicy(languages=("de",)), cache=cache)
    assert seen == ["de", "en"]
    assert names(german.issuer_metadata_json["display"]) == ["de"]
    assert names(english.issuer_metadata_json["display"]) == ["en"]
    assert again.issuer_metadata_json == german.issuer_metadata_json


@pytest.mark.parametrize("bad", ["de_DE", "", "d e", "x" * 9])
def test_policy_refuses_malformed_tags(bad: str) -> None:
    from oid4vci.errors import UsageError

    with pytest.raises(UsageError):
        WalletPolicy(languages=(bad,))
