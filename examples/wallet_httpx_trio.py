"""A wallet on trio: :class:`~oid4vci.transports.httpx.HttpxTransport` runs on asyncio and trio.

Receives the credentials of a pre-authorized offer and prints their claims::

    python -m oid4vci serve &      # prints an issuer, offers and a tx_code
    python -m examples.wallet_httpx_trio 'openid-credential-offer://?credential_offer_uri=…' 493536

Plain http is allowed only because the demo issuer runs on 127.0.0.1; leave
``allow_insecure_loopback`` off for real issuers (https only).
"""

from __future__ import annotations

import sys
from typing import Any

import anyio

from oid4vci.transports.httpx import HttpxTransport
from oid4vci.wallet import Oid4vciClient, WalletPolicy


async def main(offer_link: str, tx_code: str | None = None) -> list[dict[str, Any]]:
    """Accept the offer; return (and print) the claims of every credential received."""
    async with HttpxTransport(allow_insecure_loopback=True) as transport:
        client = Oid4vciClient(transport, policy=WalletPolicy(allow_insecure_loopback=True))
        offer = await client.parse_offer(offer_link)
        result = await client.accept_offer(offer, tx_code=tx_code)
    for credential in result.credentials:
        print(f"{credential.vct} (verified {credential.verified})")
        for name in ("given_name", "family_name", "birthdate"):
            print(f"  {name}: {credential.claims.get(name)}")
    return [dict(credential.claims) for credential in result.credentials]


if __name__ == "__main__":
    link, code = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None
    anyio.run(main, link, code, backend="trio")
