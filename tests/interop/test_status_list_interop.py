"""Token Status Lists against an independent implementation, ``@sd-jwt/jwt-status-list``
(pinned in ``package.json``), both ways:

* ours → theirs: Status List Tokens minted here (by the demo issuer's endpoint after real
  status changes, and by :func:`oid4vci.status.create_status_list_token` at every width) are
  verified and decoded by ``status_list.mjs read`` with the package's
  ``getListFromStatusListJWT`` / ``getStatusListFromJWT``;
* theirs → ours: lists built by the package (``StatusList`` + ``createHeaderAndPayload``,
  signed in the Node glue) are verified here with
  :func:`oid4vci.status.verify_status_list_token`, and read by the wallet's
  :func:`oid4vci.wallet.status_lists.check_status` from a real server on 127.0.0.1.
"""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any, Literal

import pytest

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.jose import LocalSigner, create_jws, decode_jws
from oid4vci.status import (
    STATUS_LIST_JWT_MEDIA_TYPE,
    StatusList,
    create_status_list_token,
    parse_status_reference,
    status_of,
    verify_status_list_token,
)
from oid4vci.transports.aiohttp import AiohttpTransport, serve
from oid4vci.versions import SpecVersion
from oid4vci.wallet import WalletPolicy
from oid4vci.wallet.status_lists import check_status
from tests.conftest import FakeClock
from tests.e2e.conftest import ISSUER, build_e2e_issuer, make_client
from tests.interop._node import HERE, node_executable, skip_reason

SKIP = skip_reason()
pytestmark = [pytest.mark.interop, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]


def node(mode: str, data: dict[str, Any]) -> dict[str, Any]:
    executable = node_executable()
    assert executable is not None
    done = subprocess.run(
        [executable, str(HERE / "status_list.mjs"), mode],
        cwd=HERE,
        input=json.dumps(data),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines, f"status_list.mjs printed nothing ({done.returncode}): {done.stderr}"
    out: dict[str, Any] = json.loads(lines[-1])
    assert done.returncode == 0 and "error" not in out, out
    return out


# --- ours -> theirs -----------------------------------------------------------------------


async def test_they_read_our_issuers_status_list_after_changes(clock: FakeClock) -> None:
    clock.now = time.time()  # their JWT code knows only the real clock
    e2e = build_e2e_issuer(SpecVersion.V1, clock)
    client = make_client(e2e, clock)
    result = await client.accept_offer(await client.parse_offer(e2e.offer_links["pre_auth"]))
    (cred,) = result.credentials
    reference = cred.status_reference
    assert reference is not None and cred.status == "valid"
    meta = await e2e.handle(HttpRequest(method="GET", url=ISSUER + "/.well-known/jwt-vc-issuer"))
    (jwk,) = meta.json_body()["jwks"]["keys"]
    changes: list[tuple[Literal["valid", "invalid", "suspended"], int]] = [
        ("valid", 0), ("invalid", 1), ("suspended", 2), ("valid", 0),
    ]  # fmt: skip
    for status, value in changes:
        await e2e.issuer.set_credential_status(reference, status)
        response = await e2e.handle(HttpRequest(method="GET", url=reference.uri))
        token = response.body.decode()
        out = node("read", {"token": token, "jwk": jwk, "credential": cred.credential})
        assert out["typ"] == "statuslist+jwt" and out["sub"] == reference.uri
        assert out["reference"] == {"idx": reference.idx, "uri": reference.uri}
        assert out["status"] == value, status


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
async def test_they_read_every_width_we_encode(bits: int) -> None:
    size = 4096
    status_list = StatusList(bits, size)
    entries = {i: (i * 7 + 3) % (1 << bits) for i in range(0, size, 37)}
    for idx, value in entries.items():
        status_list.set(idx, value)
    signer = LocalSigner.generate("ES256", kid="ours")
    token = await create_status_list_token(
        signer, status_list, uri="https://ours.example/lists/1", expires_in=3600, ttl=60
    )
    indices = list(range(size))
    out = node("read", {"token": token, "jwk": signer.public_jwk, "indices": indices})
    assert out["bits"] == bits
    assert out["statuses"] == [status_list.get(i) for i in indices]


# --- theirs -> ours -----------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_we_read_every_width_they_encode(bits: int) -> None:
    uri = "https://theirs.example/lists/7"
    entries = [[i, (i * 5 + 1) % (1 << bits)] for i in range(0, 2048, 29)]
    minted = node("mint", {"uri": uri, "bits": bits, "size": 2048, "set": entries})
    token = verify_status_list_token(minted["token"], uri=uri, keys=[minted["jwk"]])
    assert token.status_list.bits == bits and token.ttl == 300 and token.exp is not None
    expected = dict.fromkeys(range(2048), 0) | {i: v for i, v in entries}
    assert {i: status_of(token, i) for i in range(2048)} == expected


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_our_wallet_checks_a_credential_against_their_list() -> None:
    """check_status over aiohttp: their token at the URI, their key in JWT VC Issuer Metadata."""
    served_docs: dict[str, HttpResponse] = {}

    async def handle(request: HttpRequest) -> HttpResponse:
        path = request.url.split("://", 1)[1].split("/", 1)[1]
        return served_docs.get("/" + path, HttpResponse.json(404, {"error": "not_found"}))

    async with serve(handle) as served:
        base = served.base_url
        uri = base + "/lists/3"
        minted = node(
            "mint", {"uri": uri, "iss": base, "bits": 2, "size": 1024, "set": [[17, 1], [18, 2]]}
        )
        served_docs["/lists/3"] = HttpResponse(
            status=200,
            headers={"Content-Type": STATUS_LIST_JWT_MEDIA_TYPE},
            body=minted["token"].encode(),
        )
        served_docs["/.well-known/jwt-vc-issuer"] = HttpResponse.json(
            200, {"issuer": base, "jwks": {"keys": [minted["jwk"]]}}
        )
        policy = WalletPolicy(allow_insecure_loopback=True)
        signer = LocalSigner.generate("ES256")
        async with AiohttpTransport(allow_insecure_loopback=True) as transport:
            for idx, expected in ((16, "valid"), (17, "invalid"), (18, "suspended")):
                claims = {"iss": base, "status": {"status_list": {"idx": idx, "uri": uri}}}
                credential = await create_jws(signer, claims, {"typ": "dc+sd-jwt"}) + "~"
                reference = parse_status_reference(
                    decode_jws(credential[:-1]).payload, allow_insecure_loopback=True
                )
                assert reference is not None and reference.idx == idx
                check = await check_status(credential, transport, policy=policy)
                assert (check.status, check.uri, check.idx) == (expected, uri, idx)
