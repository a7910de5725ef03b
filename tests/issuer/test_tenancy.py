"""Sub-domain tenants: label validation, URL building, host parsing, store isolation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from oid4vci.errors import InsecureUrlError, ValidationError
from oid4vci.issuer.config import CredentialConfigurationSpec, IssuerConfig
from oid4vci.issuer.store import MemoryStore
from oid4vci.issuer.tenancy import (
    build_subdomain_issuer_url,
    tenant_from_host,
    verify_tenant_label,
)
from oid4vci.jose import LocalSigner
from tests.conftest import FakeClock

BASE = "https://issuer.example.com"


def test_build_subdomain_issuer_url() -> None:
    assert build_subdomain_issuer_url(BASE, "acme") == "https://acme.issuer.example.com"
    assert build_subdomain_issuer_url(BASE, "ACME") == "https://acme.issuer.example.com"
    assert (
        build_subdomain_issuer_url("https://issuer.example.com:8443/vci", "t-1")
        == "https://t-1.issuer.example.com:8443/vci"
    )
    assert build_subdomain_issuer_url("http://localhost:8080", "a") == "http://a.localhost:8080"


@pytest.mark.parametrize(
    "label",
    ["", "-acme", "acme-", "a.b", "a_b", "ac me", "x" * 64, "xn--bcher-kva", "ab--cd", "ä"],
)
def test_invalid_labels(label: str) -> None:
    with pytest.raises(ValidationError):
        build_subdomain_issuer_url(BASE, label)


def test_label_limits_and_punycode_opt_in() -> None:
    assert verify_tenant_label("x" * 63) == "x" * 63
    assert verify_tenant_label("a") == "a"
    assert verify_tenant_label("xn--bcher-kva", allow_punycode=True) == "xn--bcher-kva"
    with pytest.raises(ValidationError):
        verify_tenant_label("ab--cd", allow_punycode=True)


@pytest.mark.parametrize("base", ["http://issuer.example.com", "ftp://issuer.example.com"])
def test_insecure_base_refused(base: str) -> None:
    with pytest.raises(InsecureUrlError):
        build_subdomain_issuer_url(base, "acme")


def test_base_with_query_or_ip_refused() -> None:
    with pytest.raises(ValidationError):
        build_subdomain_issuer_url(BASE + "?x=1", "acme")
    with pytest.raises(ValidationError):
        build_subdomain_issuer_url("http://[::1]:8000", "acme")


def test_tenant_from_host() -> None:
    assert tenant_from_host("acme.issuer.example.com", BASE) == "acme"
    assert tenant_from_host("ACME.Issuer.Example.com.", BASE) == "acme"
    assert tenant_from_host("acme.issuer.example.com:443", BASE) == "acme"
    assert tenant_from_host("acme.issuer.example.com:8443", BASE) is None
    assert tenant_from_host("issuer.example.com", BASE) is None
    assert tenant_from_host("a.b.issuer.example.com", BASE) is None
    assert tenant_from_host("acme.evil-issuer.example.com", BASE) is None
    assert tenant_from_host("acmeissuer.example.com", BASE) is None
    assert tenant_from_host("t.issuer.example.com:8443", BASE + ":8443") == "t"


async def _claims(subject: str, configuration_id: str) -> Mapping[str, Any]:
    return {}


async def test_for_issuer_scopes_store_and_endpoints(clock: FakeClock) -> None:
    root = IssuerConfig(
        credential_issuer=BASE,
        credential_signer=LocalSigner.generate(),
        credential_configurations=[CredentialConfigurationSpec(id="pid", vct="urn:pid")],
        claims_source=_claims,
        store=MemoryStore(clock=clock),
        clock=clock,
    )
    acme = root.for_issuer(build_subdomain_issuer_url(BASE, "acme"))
    other = root.for_issuer(build_subdomain_issuer_url(BASE, "other"))
    assert acme.credential_issuer == "https://acme.issuer.example.com"
    assert acme.endpoint("token") == "https://acme.issuer.example.com/token"
    assert acme.endpoint("offer", "o 1") == "https://acme.issuer.example.com/offers/o%201"
    await acme.store.put("pre_auth:c", {"x": 1}, 60)
    assert await other.store.get("pre_auth:c") is None
    assert await root.store.get("pre_auth:c") is None
    assert await acme.for_issuer(acme.credential_issuer).store.get("pre_auth:c") == {"x": 1}


def test_config_endpoints_and_validation(clock: FakeClock) -> None:
    signer = LocalSigner.generate()
    config = IssuerConfig(
        credential_issuer="https://issuer.example.com/tenant/",
        credential_signer=signer,
        credential_configurations={"pid": CredentialConfigurationSpec(id="pid", vct="urn:pid")},
        claims_source=_claims,
        store=MemoryStore(clock=clock),
    )
    assert config.endpoint("credential") == "https://issuer.example.com/tenant/credential"
    assert config.endpoint("deferred_credential").endswith("/tenant/deferred")
    assert config.credential_signing_alg("pid") == "ES256"
    with pytest.raises(ValueError):
        config.endpoint("nope")
    with pytest.raises(ValueError):
        config.endpoint("offer")
    with pytest.raises(InsecureUrlError):
        config.for_issuer("http://issuer.example.com")
    with pytest.raises(ValueError):
        IssuerConfig(
            credential_issuer=BASE,
            credential_signer=signer,
            credential_configurations={"x": CredentialConfigurationSpec(id="pid", vct="urn:pid")},
            claims_source=_claims,
            store=MemoryStore(),
        )
