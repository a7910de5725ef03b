"""A multi-tenant issuer on sub-domains (``https://<tenant>.issuer.example``) or on paths.

What it shows:

* one :class:`~oid4vci.issuer.Issuer` serving several credential issuers, each tenant on its
  own sub-domain (:func:`~oid4vci.issuer.tenancy.build_subdomain_issuer_url`), chosen from the request's
  ``Host`` header by a tenant resolver; unknown tenants get 404;
* two tenants issuing different credentials (ACME an employee badge, Globex a loyalty card),
  each tenant's configuration derived from one base with ``config.for_issuer(url)``;
* isolation: ``for_issuer`` scopes the store per tenant, so a pre-authorized code minted by
  ACME is rejected (``invalid_grant``) by Globex and still works at ACME;
* the same tenants on paths, ``https://issuer.example/<tenant>``
  (:func:`~oid4vci.issuer.tenancy.build_path_issuer_url`, ``Tenancy(mode="path")``): the tenant comes
  from the request path, e.g. ``/.well-known/openid-credential-issuer/acme`` or ``/acme/token``.

Run it: ``python -m examples.multi_tenant_issuer``
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio
import attrs

from oid4vci.errors import TokenError
from oid4vci.issuer import CredentialConfigurationSpec, Issuer, IssuerConfig, MemoryStore, Tenancy
from oid4vci.issuer.tenancy import build_path_issuer_url, build_subdomain_issuer_url
from oid4vci.jose import LocalSigner
from oid4vci.models import PRE_AUTHORIZED_CODE_GRANT
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import Oid4vciClient, request_token

BASE_URL = "https://issuer.example"
METADATA_AT_IP = "https://10.0.0.7/.well-known/openid-credential-issuer"
UNKNOWN_TENANT_METADATA = "https://initech.issuer.example/.well-known/openid-credential-issuer"
PATH_METADATA = "https://issuer.example/.well-known/openid-credential-issuer/globex"  # 1.0 form
OFFERS = {"acme": "employee_badge", "globex": "loyalty_card"}  # tenant -> what it issues


async def tenant_claims(subject: str, configuration_id: str) -> Mapping[str, Any]:
    """Claims for both tenants (a real deployment reads each tenant's own database)."""
    if configuration_id == "employee_badge":
        return {"employee": subject, "role": "engineer"}
    return {"member": subject, "tier": "gold"}


def tenant_configs(
    base: IssuerConfig, build: Callable[[str, str], str] = build_subdomain_issuer_url
) -> dict[str, IssuerConfig]:
    """Each tenant: the base deployment moved to its sub-domain (or path), with its credential."""
    configs = {}
    for tenant, configuration_id in OFFERS.items():
        url = build(BASE_URL, tenant)  # https://acme.issuer.example or https://issuer.example/acme
        spec = CredentialConfigurationSpec(id=configuration_id, vct=f"{url}/{configuration_id}")
        configs[tenant] = attrs.evolve(base.for_issuer(url), credential_configurations=[spec])
    return configs


async def main() -> dict[str, Any]:
    """Issue at both tenants and try a code at the wrong one; return what happened."""
    base = IssuerConfig(
        credential_issuer=BASE_URL,
        credential_signer=LocalSigner.generate("ES256", kid="shared-key"),
        credential_configurations=[],
        claims_source=tenant_claims,
        store=MemoryStore(),  # one store; for_issuer gives each tenant its own key prefix
    )
    tenants = tenant_configs(base)

    async def resolve(tenant: str) -> IssuerConfig | None:
        return tenants.get(tenant)  # None: unknown tenant, 404

    issuer = Issuer(base, tenancy=Tenancy(base_url=BASE_URL, resolver=resolve))
    # The Host header picks the tenant (e.g. behind a reverse proxy that keeps it):
    headers = {"Host": "globex.issuer.example"}
    answer = await issuer.handle({"method": "GET", "url": METADATA_AT_IP, "headers": headers})
    print(f"Host globex.issuer.example -> {answer.json_body()['credential_issuer']}")
    unknown = await issuer.handle({"method": "GET", "url": UNKNOWN_TENANT_METADATA})
    print(f"unknown tenant -> {unknown.status}")

    out: dict[str, Any] = {
        "host_header_issuer": answer.json_body()["credential_issuer"],
        "unknown_tenant_status": unknown.status,
        "claims": {},
    }
    async with InMemoryTransport(issuer.handle) as transport:  # every sub-domain -> issuer
        client = Oid4vciClient(transport)
        created = {
            tenant: await issuer.create_pre_authorized_offer(
                configuration_ids=[cid], subject="alice", config=tenants[tenant]
            )
            for tenant, cid in OFFERS.items()
        }
        # ACME's code, presented at Globex's token endpoint: worthless there.
        acme_code = created["acme"].pre_authorized_code
        assert acme_code is not None
        grant = {"grant_type": PRE_AUTHORIZED_CODE_GRANT, "pre-authorized_code": acme_code}
        try:
            globex_token = tenants["globex"].endpoint("token")
            await request_token(transport, globex_token, grant, dpop_key=LocalSigner.generate())
        except TokenError as err:
            out["cross_tenant_error"] = err.error
            print(f"ACME's code at Globex -> {err.error}")
        for tenant, offer in created.items():
            result = await client.accept_offer(await client.parse_offer(offer.offer_uri))
            (credential,) = result.credentials
            out["claims"][tenant] = credential.claims
            print(f"{tenant}: {credential.vct} issued by {credential.issuer}")
    out.update(await path_tenants(base))
    return out


async def path_tenants(base: IssuerConfig) -> dict[str, Any]:
    """The same tenants on paths of one host: ``https://issuer.example/<tenant>``."""
    tenants = tenant_configs(base, build_path_issuer_url)

    async def resolve(tenant: str) -> IssuerConfig | None:
        return tenants.get(tenant)

    issuer = Issuer(base, tenancy=Tenancy(base_url=BASE_URL, resolver=resolve, mode="path"))
    answer = await issuer.handle({"method": "GET", "url": PATH_METADATA})
    print(f"{PATH_METADATA} -> {answer.json_body()['credential_issuer']}")
    created = await issuer.create_pre_authorized_offer(
        configuration_ids=["employee_badge"], subject="bob", config=tenants["acme"]
    )
    async with InMemoryTransport(issuer.handle) as transport:
        client = Oid4vciClient(transport)  # discovers at /.well-known/openid-credential-issuer/acme
        result = await client.accept_offer(await client.parse_offer(created.offer_uri))
    (credential,) = result.credentials
    print(f"acme (path): {credential.vct} issued by {credential.issuer}")
    return {
        "path_metadata_issuer": answer.json_body()["credential_issuer"],
        "path_claims": credential.claims,
    }


if __name__ == "__main__":
    anyio.run(main)
