"""Path tenants: ``https://issuer.example/<tenant>`` served by one :class:`Issuer`.

The tenant is read from the request path in every place an issuer identifier with a path
answers (1.0 inserted well-known form, Draft 13–15 appended form, endpoints under the tenant
path); each tenant's store is scoped, hostile path segments never reach the resolver.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import attrs
import pytest

from oid4vci.errors import InsecureUrlError, ValidationError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import CredentialConfigurationSpec, Issuer, IssuerConfig, Tenancy
from oid4vci.issuer.tenancy import build_path_issuer_url, tenant_from_path
from oid4vci.jose import LocalSigner
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import Oid4vciClient
from oid4vci.wallet.policy import WalletPolicy
from tests.conftest import FakeClock
from tests.issuer.test_service import Session, make_config, send, transport_for

BASE = "https://issuer.example"
NESTED = "https://host.example/issuers"
KNOWN = frozenset({"acme", "globex"})
CI = "openid-credential-issuer"
AS = "oauth-authorization-server"
JWT_VC = "jwt-vc-issuer"


def path_issuer(
    clock: FakeClock,
    *,
    base: str = BASE,
    calls: list[str] | None = None,
    config: IssuerConfig | None = None,
) -> Issuer:
    """One issuer serving tenants ``acme`` and ``globex`` under ``base`` (and ``base`` itself)."""

    async def resolve(tenant: str) -> bool:
        if calls is not None:
            calls.append(tenant)
        return tenant in KNOWN

    return Issuer(
        config or make_config(clock, issuer=base),
        tenancy=Tenancy(base_url=base, resolver=resolve, mode="path"),
    )


def inserted(url: str, suffix: str) -> str:
    """RFC 8414 / 1.0 form, written out by hand: ``/.well-known/<suffix>`` before the path."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/.well-known/{suffix}{parts.path}"


def appended(url: str, suffix: str) -> str:
    """Draft 13–15 form: ``/.well-known/<suffix>`` after the path."""
    return f"{url}/.well-known/{suffix}"


# -- metadata at both locations -----------------------------------------------------------


@pytest.mark.parametrize("base", [BASE, NESTED])
@pytest.mark.parametrize("tenant", sorted(KNOWN))
@pytest.mark.parametrize("where", [inserted, appended], ids=["inserted", "appended"])
async def test_issuer_metadata_per_tenant(
    clock: FakeClock, base: str, tenant: str, where: Callable[[str, str], str]
) -> None:
    issuer = path_issuer(clock, base=base)
    url = f"{base}/{tenant}"
    response = await send(transport_for(issuer), "GET", where(url, CI))
    assert response.status == 200, response.body
    meta = response.json_body()
    assert meta["credential_issuer"] == url
    for name, path in [
        ("credential_endpoint", "/credential"),
        ("nonce_endpoint", "/nonce"),
        ("deferred_credential_endpoint", "/deferred"),
        ("notification_endpoint", "/notification"),
    ]:
        assert meta[name] == url + path
    assert "authorization_servers" not in meta  # the tenant is its own AS


@pytest.mark.parametrize("base", [BASE, NESTED])
async def test_as_and_jwt_vc_issuer_metadata_inserted(clock: FakeClock, base: str) -> None:
    issuer = path_issuer(clock, base=base)
    transport = transport_for(issuer)
    for tenant in sorted(KNOWN):
        url = f"{base}/{tenant}"
        response = await send(transport, "GET", inserted(url, AS))
        assert response.status == 200, response.body
        as_meta = response.json_body()
        assert as_meta["issuer"] == url
        assert as_meta["token_endpoint"] == url + "/token"
        assert as_meta["authorization_endpoint"] == url + "/authorize"
        assert as_meta["pushed_authorization_request_endpoint"] == url + "/par"
        response = await send(transport, "GET", inserted(url, JWT_VC))
        assert response.status == 200, response.body
        jwt_vc = response.json_body()
        assert jwt_vc["issuer"] == url
        assert jwt_vc["jwks"]["keys"][0]["kid"] == "issuer-key-1"


async def test_base_issuer_keeps_its_own_endpoints(clock: FakeClock) -> None:
    calls: list[str] = []
    issuer = path_issuer(clock, calls=calls)
    transport = transport_for(issuer)
    response = await send(transport, "GET", inserted(BASE, CI))
    assert response.json_body()["credential_issuer"] == BASE
    # ``/token`` is the base issuer's token endpoint, not a tenant named "token"
    response = await send(transport, "POST", BASE + "/token", form={"grant_type": "nope"})
    assert response.status == 400
    assert response.json_body()["error"] == "unsupported_grant_type"
    assert calls == []


async def test_resolver_may_return_a_ready_config(clock: FakeClock) -> None:
    base_config = make_config(clock)
    spec = CredentialConfigurationSpec(id="badge", vct="https://issuer.example/acme/badge")
    ready = attrs.evolve(base_config.for_issuer(BASE + "/acme"), credential_configurations=[spec])

    async def resolve(tenant: str) -> IssuerConfig | None:
        return ready if tenant == "acme" else None

    issuer = Issuer(base_config, tenancy=Tenancy(base_url=BASE, resolver=resolve, mode="path"))
    transport = transport_for(issuer)
    response = await send(transport, "GET", inserted(BASE + "/acme", CI))
    assert response.status == 200
    assert list(response.json_body()["credential_configurations_supported"]) == ["badge"]
    response = await send(transport, "GET", inserted(BASE + "/globex", CI))
    assert response.status == 404


# -- whole issuance with our wallet ---------------------------------------------------------


@pytest.mark.parametrize(("base", "tenant"), [(BASE, "acme"), (BASE, "globex"), (NESTED, "acme")])
async def test_wallet_pre_authorized_issuance(clock: FakeClock, base: str, tenant: str) -> None:
    issuer = path_issuer(clock, base=base)
    url = f"{base}/{tenant}"
    wire: list[tuple[str, str, int]] = []

    async def recording(request: HttpRequest) -> HttpResponse:
        response = await issuer.handle(request)
        wire.append((request.method, request.url, response.status))
        return response

    created = await issuer.create_pre_authorized_offer(
        configuration_ids=["identity"], subject="alice", config=issuer.tenant_config(tenant)
    )
    async with InMemoryTransport(recording) as transport:
        client = Oid4vciClient(transport, policy=WalletPolicy(), clock=clock)
        offer = await client.parse_offer(created.offer_uri)
        assert offer.credential_issuer == url
        result = await client.accept_offer(offer)
    assert result.credential_issuer == url
    (credential,) = result.credentials
    assert credential.verified
    assert credential.issuer == url
    assert credential.claims["iss"] == url
    assert credential.claims["given_name"] == "Alice"
    assert all(status < 400 for _, _, status in wire), wire
    # discovery went to the 1.0 inserted location first and found it there
    metadata_urls = [u for _, u, _ in wire if CI in u]
    assert metadata_urls == [inserted(url, CI)]
    assert ("POST", url + "/token", 200) in wire
    assert ("POST", url + "/credential", 200) in wire
    endpoints = [u for _, u, _ in wire if "/.well-known/" not in u]
    assert endpoints and all(u.startswith(url + "/") for u in endpoints), endpoints


# -- isolation ------------------------------------------------------------------------------


async def test_code_of_one_tenant_is_refused_at_another(clock: FakeClock) -> None:
    issuer = path_issuer(clock)
    transport = transport_for(issuer)
    created = await issuer.create_pre_authorized_offer(
        configuration_ids=["identity"], subject="alice", config=issuer.tenant_config("acme")
    )
    code = created.pre_authorized_code
    assert code is not None
    for elsewhere in (BASE + "/globex", BASE):
        response = await Session(transport=transport, clock=clock, issuer=elsewhere).redeem(code)
        assert response.status == 400, elsewhere
        assert response.json_body()["error"] == "invalid_grant"
    session = Session(transport=transport, clock=clock, issuer=BASE + "/acme")
    response = await session.redeem(code)
    assert response.status == 200, response.body
    # acme's access token is worthless at globex's credential endpoint
    proof = await session.proof(LocalSigner.generate(), await session.nonce())
    body = {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
    at_globex = attrs.evolve(session, issuer=BASE + "/globex")
    response = await at_globex.post("/credential", body)
    assert response.status == 401
    response = await session.post("/credential", body)
    assert response.status == 200, response.body


# -- unknown and hostile tenants --------------------------------------------------------------


async def test_unknown_tenant_is_404(clock: FakeClock) -> None:
    calls: list[str] = []
    issuer = path_issuer(clock, calls=calls)
    transport = transport_for(issuer)
    url = BASE + "/initech"
    for method, target in [
        ("GET", inserted(url, CI)),
        ("GET", appended(url, CI)),
        ("GET", inserted(url, AS)),
        ("POST", url + "/token"),
        ("POST", url + "/credential"),
        ("GET", url + "/offers/x"),
    ]:
        response = await send(transport, method, target)
        assert response.status == 404, target
        assert response.json_body()["error"] == "not_found"
    assert set(calls) == {"initech"}
    # a known tenant, an unknown endpoint
    response = await send(transport, "GET", BASE + "/acme/nope")
    assert response.status == 404


HOSTILE = ["..", ".", "%2e%2e", "%2E%2E", ".%2e", "a%2Fb", "a%2fb", "ACME", "Acme", "x" * 64]
HOSTILE += ["", "%61cme", "acme%00", "a b", "-acme", "ac_me", "ab--cd"]


@pytest.mark.parametrize("base", [BASE, NESTED])
@pytest.mark.parametrize("segment", HOSTILE)
async def test_hostile_tenant_segments(clock: FakeClock, base: str, segment: str) -> None:
    calls: list[str] = []
    issuer = path_issuer(clock, base=base, calls=calls)
    transport = transport_for(issuer)
    url = f"{base}/{segment}"
    targets = [
        ("GET", inserted(url, CI)),
        ("GET", appended(url, CI)),
        ("GET", inserted(url, JWT_VC)),
        ("POST", url + "/token"),
        ("POST", url + "/credential"),
        ("GET", url + "/offers/templates/x"),
    ]
    for method, target in targets:
        response = await send(transport, method, target, form={"grant_type": "x"})
        assert response.status in (400, 404), (target, response.status)
        assert "credential_issuer" not in response.body.decode()
    assert calls == []


@pytest.mark.parametrize(
    "path",
    [
        "/acme/../globex/token",
        "/acme/%2e%2e/globex/token",
        "/acme%2F..%2Fglobex/token",
        "/acme//token",
        "/.well-known/openid-credential-issuer/acme/../globex",
        "/.well-known/openid-credential-issuer/acme/",
        "/.well-known/openid-credential-issuer//acme",
        "/acme/.well-known/openid-credential-issuer/../../globex",
    ],
)
async def test_traversal_never_reaches_another_tenant(clock: FakeClock, path: str) -> None:
    issuer = path_issuer(clock)
    response = await send(transport_for(issuer), "POST", BASE + path, form={"grant_type": "x"})
    assert response.status == 404, response.body
    response = await send(transport_for(issuer), "GET", BASE + path)
    assert response.status == 404, response.body


# -- unit cases -------------------------------------------------------------------------------


def test_build_path_issuer_url() -> None:
    assert build_path_issuer_url(BASE, "acme") == "https://issuer.example/acme"
    assert build_path_issuer_url(BASE + "/", "acme") == "https://issuer.example/acme"
    assert build_path_issuer_url(NESTED, "ACME") == "https://host.example/issuers/acme"
    assert build_path_issuer_url(NESTED + "/", "t-1") == "https://host.example/issuers/t-1"
    assert (
        build_path_issuer_url("https://h.example:8443/a/b", "x") == "https://h.example:8443/a/b/x"
    )
    assert build_path_issuer_url("http://localhost:8080", "a") == "http://localhost:8080/a"
    assert build_path_issuer_url("https://10.0.0.7", "a") == "https://10.0.0.7/a"  # no DNS needed
    assert build_path_issuer_url(BASE, "x" * 63) == BASE + "/" + "x" * 63
    assert build_path_issuer_url(BASE, "xn--bcher-kva", allow_punycode=True).endswith(
        "/xn--bcher-kva"
    )


BAD_LABELS = ["", "-acme", "acme-", "a.b", "a_b", "ac me", "x" * 64, "xn--bcher-kva", "ab--cd"]
BAD_LABELS += ["ä", "..", ".", "a/b", "a%2Fb", "%2e%2e", "a?b", "a#b"]


@pytest.mark.parametrize("label", BAD_LABELS)
def test_build_path_issuer_url_refuses_bad_labels(label: str) -> None:
    with pytest.raises(ValidationError):
        build_path_issuer_url(BASE, label)


@pytest.mark.parametrize(
    "base",
    [
        BASE + "?x=1",
        BASE + "/a/../b",
        BASE + "/a//b",
        BASE + "/./a",
        BASE + "/a%2Fb",
    ],
)
def test_build_path_issuer_url_refuses_bad_bases(base: str) -> None:
    with pytest.raises(ValidationError):
        build_path_issuer_url(base, "acme")


@pytest.mark.parametrize("base", ["http://issuer.example", "ftp://issuer.example", "/issuers"])
def test_build_path_issuer_url_refuses_insecure_bases(base: str) -> None:
    with pytest.raises(InsecureUrlError):
        build_path_issuer_url(base, "acme")


@pytest.mark.parametrize(
    ("path", "base", "expected"),
    [
        ("/.well-known/openid-credential-issuer/acme", BASE, "acme"),
        ("/.well-known/oauth-authorization-server/acme", BASE, "acme"),
        ("/.well-known/jwt-vc-issuer/acme", BASE + "/", "acme"),
        ("/acme/.well-known/openid-credential-issuer", BASE, "acme"),
        ("/acme/token", BASE, "acme"),
        ("/acme/offers/templates/x", BASE, "acme"),
        ("/acme", BASE, "acme"),
        ("/acme/token?x=1", BASE, "acme"),
        ("/.well-known/openid-credential-issuer/issuers/acme", NESTED, "acme"),
        ("/issuers/acme/.well-known/openid-credential-issuer", NESTED, "acme"),
        ("/issuers/acme/credential", NESTED, "acme"),
        ("/issuers/acme/credential", "/issuers", "acme"),
        ("/issuers/acme/credential", "/issuers/", "acme"),
        ("/.well-known/openid-credential-issuer", BASE, None),
        ("/.well-known/openid-credential-issuer/", BASE, None),
        ("/.well-known/openid-credential-issuer/acme/", BASE, None),
        ("/.well-known/openid-credential-issuer/acme/x", BASE, None),
        ("/.well-known//acme", BASE, None),
        ("/.well-known/openid-credential-issuer/acme", NESTED, None),
        ("/.well-known/openid-credential-issuer/other/acme", NESTED, None),
        ("/other/acme/token", NESTED, None),
        ("/issuers", NESTED, None),
        ("/issuers/", NESTED, None),
        ("/issuersacme/token", NESTED, None),
        ("acme/token", BASE, None),
        ("", BASE, None),
        ("/", BASE, None),
        ("//acme/token", BASE, None),
        ("/../token", BASE, None),
        ("/%2e%2e/token", BASE, None),
        ("/a%2Fb/token", BASE, None),
        ("/ACME/token", BASE, None),
        ("/" + "x" * 64 + "/token", BASE, None),
        ("/.well-known/openid-credential-issuer/..", BASE, None),
        ("/.well-known/openid-credential-issuer/ACME", BASE, None),
    ],
)
def test_tenant_from_path(path: str, base: str, expected: str | None) -> None:
    assert tenant_from_path(path, base) == expected


def test_tenant_from_path_round_trips_build() -> None:
    for base in (BASE, NESTED, NESTED + "/"):
        url = build_path_issuer_url(base, "acme")
        path = urlsplit(url).path
        assert tenant_from_path(path, base) == "acme"
        assert tenant_from_path(urlsplit(inserted(url, CI)).path, base) == "acme"
        assert tenant_from_path(urlsplit(appended(url, CI)).path, base) == "acme"


def test_issuer_tenant_mode_options(clock: FakeClock) -> None:
    config = make_config(clock)

    async def resolve(tenant: str) -> bool:
        return True

    path_mode = Issuer(config, tenancy=Tenancy(base_url=NESTED, resolver=resolve, mode="path"))
    assert path_mode.tenancy is not None and path_mode.tenancy.mode == "path"
    assert path_mode.tenant_url("acme") == NESTED + "/acme"
    acme = path_mode.tenant_config("acme")
    assert acme.credential_issuer == NESTED + "/acme"
    assert acme.endpoint("token") == NESTED + "/acme/token"
    with pytest.raises(ValidationError):
        path_mode.tenant_config("..")
    subdomain = Issuer(config, tenancy=Tenancy(base_url=BASE, resolver=resolve))
    assert subdomain.tenancy is not None and subdomain.tenancy.mode == "subdomain"
    assert subdomain.tenant_config("acme").credential_issuer == "https://acme.issuer.example"
    with pytest.raises(ValueError, match="tenancy mode"):
        Issuer(config, tenancy=Tenancy(base_url=BASE, resolver=resolve, mode="query"))  # type: ignore[arg-type]
    with pytest.raises(InsecureUrlError):
        Issuer(
            config,
            tenancy=Tenancy(base_url="http://issuer.example", resolver=resolve, mode="path"),
        )
    with pytest.raises(ValueError, match="not multi-tenant"):
        Issuer(config).tenant_config("acme")
