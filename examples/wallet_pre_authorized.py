"""A wallet receiving a credential through the pre-authorized code flow, with a Transaction Code.

What it shows: parsing a ``openid-credential-offer://`` link, checking which Transaction Code
the offer asks for, accepting the offer with the code the user typed, and reading the verified
claims of the SD-JWT VC (disclosures already applied, signature and holder binding checked).

The issuer is the library's demo issuer, running in this process behind an
:class:`~oid4vci.transports.memory.InMemoryTransport`, so the example needs no network. To talk
to a real issuer, swap the transport (and paste the link its web page shows)::

    from oid4vci.transports.aiohttp import AiohttpTransport

    async with AiohttpTransport() as transport:          # https only, no redirects followed
        client = Oid4vciClient(transport)
        offer = await client.parse_offer("openid-credential-offer://?credential_offer_uri=...")
        result = await client.accept_offer(offer, tx_code=input("Transaction Code: "))

Run it: ``python -m examples.wallet_pre_authorized``
"""

from __future__ import annotations

from typing import Any

import anyio

from oid4vci.issuer import build_demo_issuer
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import Oid4vciClient

ISSUER_URL = "https://issuer.example"
#: JWT / SD-JWT VC claims that describe the credential rather than the holder.
REGISTERED_CLAIMS = frozenset({"iss", "iat", "exp", "nbf", "vct", "cnf", "status"})


async def main() -> dict[str, Any]:
    """Receive the demo identity credential; return (and print) its verified claims."""
    demo = build_demo_issuer(ISSUER_URL)
    # The issuer shows this link as a QR code and sends the Transaction Code another way.
    link = demo.offer_links["pre_auth_tx_code"]
    tx_code_from_user = demo.tx_code

    async with InMemoryTransport(routes={ISSUER_URL: demo.handle}) as transport:
        client = Oid4vciClient(transport)
        offer = await client.parse_offer(link)  # fetched by reference from the issuer
        grant = offer.pre_authorized_code
        assert grant is not None and grant.tx_code is not None
        print(f"{offer.credential_issuer} offers {list(offer.credential_configuration_ids)}")
        print(f"it asks for a {grant.tx_code.length}-digit code: {grant.tx_code.description}")

        result = await client.accept_offer(offer, tx_code=tx_code_from_user)
        (credential,) = result.credentials
        print(f"received {credential.format} credential of type {credential.vct}")
        print(f"verified: {credential.verified}, bound to key {credential.holder_jkt}")
        for name, value in sorted(credential.claims.items()):
            if name not in REGISTERED_CLAIMS:
                print(f"  {name}: {value}")
        # Tell the issuer the credential was stored (optional, when it gave a notification_id).
        await client.notify(result, "credential_accepted")
        return credential.claims


if __name__ == "__main__":
    anyio.run(main)
