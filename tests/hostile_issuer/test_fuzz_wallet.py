"""Fuzzing the wallet with hypothesis: whatever a hostile issuer sends, only
:class:`~oid4vci.errors.Oid4vciError` subclasses come out (never KeyError, TypeError,
AttributeError, RecursionError, ...).

Inputs: offer links and offer JSON into :meth:`Oid4vciClient.parse_offer` (by value and by
reference), mutated issuer / AS metadata served by the fake issuer, and arbitrary token,
nonce, credential, deferred and JWT VC issuer answers (status, headers and body).

The fake issuer's handler is wrapped so that its own exceptions become 500 answers: anything
raised out of the client is the wallet's. ``OID4VCI_FUZZ=long`` runs many more examples.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from hypothesis import given
from hypothesis import strategies as st

from oid4vci.errors import Oid4vciError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.models import CredentialOffer, parse_credential_offer_json
from oid4vci.transports.memory import Handler, InMemoryTransport
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from tests.conftest import FakeClock
from tests.hostile_issuer.conftest import FUZZ_SETTINGS, FakeSleep, HostileIssuer
from tests.wallet.fakes import CONFIG_ID, ISSUER, PRE_AUTH_CODE

# --- strategies --------------------------------------------------------------------------------

INTERESTING_STRINGS = st.sampled_from(
    [
        "",
        " ",
        ISSUER,
        ISSUER + "/",
        "https://issuer.example/credential",
        "http://issuer.example/credential",
        "http://127.0.0.1/x",
        "https://evil.example/x",
        "javascript:alert(1)",
        "https://",
        "//issuer.example",
        "a\r\nb",
        "\x00",
        "dc+sd-jwt",
        "vc+sd-jwt",
        "jwt",
        "ES256",
        "none",
        "DPoP",
        "Bearer",
        CONFIG_ID,
        PRE_AUTH_CODE,
        "use_dpop_nonce",
        "invalid_nonce",
        "issuance_pending",
        "é" * 3,
        "~",
        "a~b~",
        "eyJhbGciOiJub25lIn0.e30.~",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=16)
    | INTERESTING_STRINGS
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8) | INTERESTING_STRINGS, children, max_size=4)
    ),
    max_leaves=12,
)
RAW_BODIES = st.sampled_from(
    [
        b"",
        b"{",
        b"[" * 20_000,
        b"[" * 5_000 + b"]" * 5_000,
        b'{"a": NaN}',
        b"\xff\xfe",
        b"null",
        b"<html>",
        b'{"a": ' + b"9" * 5_000 + b"}",
    ]
)
HEADER_VALUES = st.sampled_from(
    [
        'DPoP error="use_dpop_nonce"',
        'DPoP error="invalid_dpop_proof", algs="ES256"',
        'Bearer error="invalid_token"',
        'DPoP error="',
        "\x01,,,==",
        'DPoP realm="a", error=use_dpop_nonce, Bearer error="x"',
        "",
    ]
)
STATUSES = st.sampled_from([200, 201, 202, 204, 400, 401, 403, 404, 429, 500, 503])


@st.composite
def answers(draw: st.DrawFn) -> HttpResponse:
    """An arbitrary answer: status, optional DPoP-Nonce / WWW-Authenticate, JSON or raw body."""
    status = draw(STATUSES)
    headers: dict[str, str] = {"Content-Type": "application/json"}
    if draw(st.booleans()):
        headers["DPoP-Nonce"] = draw(st.sampled_from(["n1", "n2", "x" * 300]))
    if draw(st.booleans()):
        headers["WWW-Authenticate"] = draw(HEADER_VALUES)
    body = draw(RAW_BODIES) if draw(st.booleans()) else json.dumps(draw(JSON)).encode()
    return HttpResponse(status=status, headers=headers, body=body)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            out.extend(_paths(child, (*prefix, key)))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            out.extend(_paths(child, (*prefix, index)))
    return out


@st.composite
def mutated(draw: st.DrawFn, original: dict[str, Any]) -> Any:
    """``original`` with one to three members replaced by arbitrary JSON, or deleted."""
    doc: Any = json.loads(json.dumps(original))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        delete = bool(path) and draw(st.booleans())
        value = None if delete else draw(JSON)
        if not path:
            doc = value
            continue
        parent = doc
        try:
            for step in path[:-1]:
                parent = parent[step]
            if delete:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    return doc


# --- harness ---------------------------------------------------------------------------------


def shielded(handler: Handler) -> Handler:
    """The fake's handler, with its own crashes turned into 500 answers."""

    async def answer(request: HttpRequest) -> HttpResponse:
        try:
            return await handler(request)
        except Exception:
            return HttpResponse(status=500, body=b'{"error":"server_error"}')

    return answer


def client_for(fake: HostileIssuer, **policy: Any) -> Oid4vciClient:
    clock = FakeClock()
    fake.clock = clock
    transport = InMemoryTransport(shielded(fake.handle))
    return Oid4vciClient(
        transport, policy=WalletPolicy(**policy), clock=clock, sleep=FakeSleep(), client_id="w"
    )


def answering(path_suffix: str, answer: HttpResponse) -> Callable[..., Any]:
    async def override(request: HttpRequest) -> HttpResponse | None:
        if request.url.split("?")[0].endswith(path_suffix):
            return answer
        return None

    return override


async def only_typed_errors(run: Callable[[], Any]) -> None:
    with contextlib.suppress(Oid4vciError):
        await run()


# --- offers ----------------------------------------------------------------------------------


@FUZZ_SETTINGS
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
async def test_parse_offer_arbitrary_text(text: str) -> None:
    fake = HostileIssuer()
    client = client_for(fake)
    await only_typed_errors(lambda: client.parse_offer(text))


LINK_PREFIXES = st.sampled_from(
    [
        "openid-credential-offer://?",
        "openid-credential-offer://",
        "haip://?",
        "https://wallet.example/offer?",
        "",
    ]
)


@FUZZ_SETTINGS
@given(
    prefix=LINK_PREFIXES,
    params=st.lists(
        st.tuples(
            st.sampled_from(["credential_offer", "credential_offer_uri", "x", ""]),
            st.text(max_size=40) | INTERESTING_STRINGS | JSON.map(json.dumps),
        ),
        max_size=3,
    ),
)
async def test_parse_offer_link_parameters(prefix: str, params: list[tuple[str, str]]) -> None:
    fake = HostileIssuer()
    client = client_for(fake)
    link = prefix + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params)
    await only_typed_errors(lambda: client.parse_offer(link))


OFFER = HostileIssuer(tx_code={"length": 6}).offer() | {
    "grants": {
        "urn:ietf:params:oauth:grant-type:pre-authorized_code": {
            "pre-authorized_code": PRE_AUTH_CODE,
            "tx_code": {"length": 6, "input_mode": "numeric", "description": "code"},
        },
        "authorization_code": {"issuer_state": "s"},
    }
}


@FUZZ_SETTINGS
@given(doc=mutated(OFFER) | JSON, by_reference=st.booleans())
async def test_parse_offer_json(doc: Any, by_reference: bool) -> None:
    fake = HostileIssuer()
    client = client_for(fake)
    if by_reference:
        fake.override = answering("/offer", HttpResponse.json(200, doc))
        link = "openid-credential-offer://?credential_offer_uri=" + quote(ISSUER + "/offer")
    else:
        link = "openid-credential-offer://?credential_offer=" + quote(json.dumps(doc), safe="")
    await only_typed_errors(lambda: client.parse_offer(link))


@FUZZ_SETTINGS
@given(answer=answers())
async def test_offer_by_reference_arbitrary_answer(answer: HttpResponse) -> None:
    fake = HostileIssuer()
    fake.override = answering("/offer", answer)
    client = client_for(fake)
    link = "openid-credential-offer://?credential_offer_uri=" + quote(ISSUER + "/offer")
    await only_typed_errors(lambda: client.parse_offer(link))


@FUZZ_SETTINGS
@given(doc=mutated(OFFER))
async def test_mutated_offer_through_the_flows(doc: Any) -> None:
    """An offer that parses is safe to hand to both flows."""
    try:
        offer = parse_credential_offer_json(doc)
    except Oid4vciError:
        return
    fake = HostileIssuer()
    client = client_for(fake)
    await only_typed_errors(lambda: client.accept_offer(offer, tx_code="123456"))
    await only_typed_errors(lambda: client.accept_offer(offer))
    await only_typed_errors(
        lambda: client.authorize(offer, redirect_uri="https://wallet.example.org/cb")
    )


# --- metadata --------------------------------------------------------------------------------


def good_offer(fake: HostileIssuer) -> CredentialOffer:
    return parse_credential_offer_json(fake.offer())


ISSUER_METADATA = HostileIssuer(batch_size=3).issuer_metadata()
AS_METADATA = HostileIssuer().as_metadata()


@FUZZ_SETTINGS
@given(doc=mutated(ISSUER_METADATA), count=st.integers(min_value=1, max_value=3))
async def test_mutated_issuer_metadata(doc: Any, count: int) -> None:
    fake = HostileIssuer(batch_size=3)
    fake.override = answering("/.well-known/openid-credential-issuer", HttpResponse.json(200, doc))
    client = client_for(fake)
    await only_typed_errors(lambda: client.accept_offer(good_offer(fake), count=count))


@FUZZ_SETTINGS
@given(doc=mutated(AS_METADATA))
async def test_mutated_as_metadata(doc: Any) -> None:
    fake = HostileIssuer()
    fake.override = answering(
        "/.well-known/oauth-authorization-server", HttpResponse.json(200, doc)
    )
    client = client_for(fake)
    await only_typed_errors(lambda: client.accept_offer(good_offer(fake)))
    await only_typed_errors(
        lambda: client.authorize(good_offer(fake), redirect_uri="https://wallet.example.org/cb")
    )


@FUZZ_SETTINGS
@given(
    answer=answers(),
    path=st.sampled_from(
        [
            "/.well-known/openid-credential-issuer",
            "/.well-known/oauth-authorization-server",
            "/.well-known/jwt-vc-issuer",
        ]
    ),
)
async def test_arbitrary_metadata_answers(answer: HttpResponse, path: str) -> None:
    fake = HostileIssuer()
    fake.override = answering(path, answer)
    client = client_for(fake)
    await only_typed_errors(lambda: client.accept_offer(good_offer(fake)))


# --- token, nonce, credential, deferred answers --------------------------------------------


TOKEN = {"access_token": "at-1", "token_type": "DPoP", "expires_in": 300, "c_nonce": "cn"}


@FUZZ_SETTINGS
@given(doc=mutated(TOKEN), status=st.sampled_from([200, 400]))
async def test_mutated_token_response(doc: Any, status: int) -> None:
    fake = HostileIssuer()
    fake.override = answering("/token", HttpResponse.json(status, doc))
    client = client_for(fake)
    await only_typed_errors(lambda: client.accept_offer(good_offer(fake)))


@FUZZ_SETTINGS
@given(
    answer=answers(),
    path=st.sampled_from(["/token", "/nonce", "/credential", "/par"]),
)
async def test_arbitrary_protocol_answers(answer: HttpResponse, path: str) -> None:
    fake = HostileIssuer()
    fake.override = answering(path, answer)
    client = client_for(fake)
    await only_typed_errors(lambda: client.accept_offer(good_offer(fake)))
    await only_typed_errors(
        lambda: client.authorize(good_offer(fake), redirect_uri="https://wallet.example.org/cb")
    )


CREDENTIAL_BODIES: list[dict[str, Any]] = [
    {"credentials": [{"credential": "x~"}], "notification_id": "n"},
    {"credentials": ["x~"], "c_nonce": "c"},
    {"credential": "x~", "c_nonce": "c", "c_nonce_expires_in": 5},
    {"transaction_id": "tx", "interval": 5},
]


@FUZZ_SETTINGS
@given(
    doc=st.sampled_from(CREDENTIAL_BODIES).flatmap(mutated),
    status=st.sampled_from([200, 202, 400]),
)
async def test_mutated_credential_response(doc: Any, status: int) -> None:
    fake = HostileIssuer()
    fake.override = answering("/credential", HttpResponse.json(status, doc))
    client = client_for(fake)

    async def run() -> None:
        result = await client.accept_offer(good_offer(fake))
        if result.deferred:
            await client.poll_deferred(result)

    await only_typed_errors(run)


@FUZZ_SETTINGS
@given(
    answer=answers()
    | st.sampled_from(CREDENTIAL_BODIES).flatmap(mutated).map(lambda d: HttpResponse.json(202, d))
)
async def test_arbitrary_deferred_answers(answer: HttpResponse) -> None:
    fake = HostileIssuer(deferred_polls=1)
    client = client_for(fake, deferred_max_wait=30.0)

    async def run() -> None:
        result = await client.accept_offer(good_offer(fake))
        fake.override = answering("/deferred", answer)
        await client.poll_deferred(result)

    await only_typed_errors(run)


@FUZZ_SETTINGS
@given(
    text=st.text(alphabet="~.-_aAzZ09=", max_size=80)
    | JSON.map(json.dumps)
    | st.sampled_from(["~", "a.b.c~", ".~", "..~", "a~b~c"]),
)
async def test_arbitrary_credential_strings(text: str) -> None:
    fake = HostileIssuer()
    fake.override = answering(
        "/credential", HttpResponse.json(200, {"credentials": [{"credential": text}]})
    )
    client = client_for(fake)
    await only_typed_errors(lambda: client.accept_offer(good_offer(fake)))
