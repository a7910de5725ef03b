"""Random requests against every issuer endpoint through ``Issuer.handle``.

Whatever the method, headers and body, the issuer answers: never a 500, never an exception;
every 4xx is JSON with a string ``error`` (except the authorization endpoint's HTML error pages
and the bare 401 challenge of a request without credentials), and every response is
``Cache-Control: no-store``. Set ``OID4VCI_FUZZ=long`` for a longer run.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oid4vci.http import Headers, HttpRequest, HttpResponse
from oid4vci.issuer.config import RefreshTokenSettings
from oid4vci.jose import LocalSigner
from tests.conftest import FakeClock
from tests.security.conftest import FUZZ_PROFILE
from tests.security.support import ISSUER, Env

FUZZ = settings.get_profile(FUZZ_PROFILE)

PATHS = [
    "/token",
    "/par",
    "/challenge",
    "/nonce",
    "/credential",
    "/deferred",
    "/notification",
    "/authorize",
    "/offers/x",
    "/offers/templates/none",
    "/.well-known/openid-credential-issuer",
    "/.well-known/oauth-authorization-server",
    "/.well-known/jwt-vc-issuer",
    "/unknown",
]
RESOURCE_PATHS = ["/credential", "/deferred", "/notification"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
known_members = st.sampled_from(
    [
        "credential_configuration_id",
        "credential_identifier",
        "proofs",
        "proof",
        "format",
        "vct",
        "transaction_id",
        "notification_id",
        "event",
        "credential_response_encryption",
        "grant_type",
        "pre-authorized_code",
        "tx_code",
        "code",
        "client_id",
        "refresh_token",
    ]
)
json_objects = st.dictionaries(known_members | st.text(max_size=8), json_values, max_size=5)
form_values = st.dictionaries(
    known_members
    | st.sampled_from(
        [
            "redirect_uri",
            "code_verifier",
            "authorization_details",
            "request_uri",
            "scope",
            "response_type",
        ]
    ),
    st.text(max_size=30)
    | st.sampled_from(
        [
            "urn:ietf:params:oauth:grant-type:pre-authorized_code",
            "authorization_code",
            "pid",
            "[",
            '[{"type":"openid_credential"}]',
            "code",
            "https://wallet.example.org/cb",
        ]
    ),
    max_size=6,
)


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, str | None]:
    kind = draw(st.sampled_from(["json", "form", "bytes", "deep", "empty"]))
    if kind == "json":
        return json.dumps(draw(json_objects | json_values)).encode(), "application/json"
    if kind == "form":
        from urllib.parse import urlencode

        return urlencode(draw(form_values)).encode(), "application/x-www-form-urlencoded"
    if kind == "deep":
        # (deeper JSON crashes the parser: see test_deeply_nested_json_*)
        depth = draw(st.integers(min_value=1, max_value=500))
        return b"[" * depth + b"]" * depth, draw(st.sampled_from(["application/json", None]))
    if kind == "empty":
        return b"", draw(st.sampled_from([None, "application/json"]))
    content_type = draw(
        st.sampled_from(
            [
                None,
                "application/json",
                "application/x-www-form-urlencoded",
                "text/plain",
                "multipart/form-data",
            ]
        )
        | st.text(max_size=20).filter(lambda t: "\r" not in t and "\n" not in t)
    )
    return draw(st.binary(max_size=200)), content_type


header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


TOKEN_MARK = "<TOKEN>"
PROOF_MARK = "<PROOF>"


@st.composite
def requests(draw: st.DrawFn) -> HttpRequest:
    """A request whose headers may hold ``<TOKEN>`` / ``<PROOF>`` (a real token and proof)."""
    token, proof = TOKEN_MARK, PROOF_MARK
    path = draw(st.sampled_from(PATHS))
    query = draw(
        st.sampled_from(["", "?a=1", "?a=%zz", "?client_id=x&client_id=y", "?" + "q" * 50])
    )
    method = draw(st.sampled_from(["POST", "POST", "GET", "PUT", "DELETE", "OPTIONS"]))
    body, content_type = draw(bodies())
    headers: list[tuple[str, str]] = []
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    authorization = draw(
        st.sampled_from([None, f"DPoP {token}", f"Bearer {token}", "DPoP", "Basic abc"])
        | header_text
    )
    if authorization is not None:
        headers.append(("Authorization", authorization))
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        headers.append(("DPoP", draw(st.sampled_from([proof, "a.b.c", ""]) | header_text)))
    return HttpRequest(method=method, url=ISSUER + path + query, headers=headers, body=body)


def assert_sane(request: HttpRequest, response: HttpResponse) -> None:
    path = request.url[len(ISSUER) :].split("?", 1)[0]
    assert response.status < 500, (request, response.status, response.body)
    assert response.headers.get("Cache-Control") == "no-store", (request, response.headers)
    if response.status < 400:
        return
    if path == "/authorize" and response.media_type == "text/html":
        assert response.status in (400, 405, 413)
        return
    if response.status == 401 and not response.body:
        assert (response.headers.get("WWW-Authenticate") or "").startswith("DPoP")
        assert path in RESOURCE_PATHS
        return
    assert response.media_type == "application/json", (request, response.body)
    body: Any = json.loads(response.body)
    assert isinstance(body, dict) and isinstance(body.get("error"), str), body
    if response.status == 401:
        challenge = response.headers.get("WWW-Authenticate") or ""
        if path in ("/token", "/par"):
            # client credentials in the Authorization header, which these endpoints do not
            # take: invalid_client with a challenge of the scheme used (RFC 6749 §5.2)
            assert body["error"] == "invalid_client" and challenge, (request, response.body)
        else:
            assert challenge.startswith("DPoP"), (request, challenge)


class FuzzTarget:
    """One issuer shared by the examples of a test, with a valid DPoP-bound token."""

    def __init__(self, clock: FakeClock) -> None:
        self.env = Env(clock, refresh_tokens=RefreshTokenSettings(rotate=True))
        self.key = LocalSigner.generate()
        self.token: str | None = None

    async def fill(self, template: HttpRequest) -> HttpRequest:
        if self.token is None:
            self.token = await self.env.access_token(self.key)
        path = template.url.split("?", 1)[0]
        proof = await self.env.dpop(self.key, path, access_token=self.token)
        headers = Headers(
            [
                (name, value.replace(TOKEN_MARK, self.token).replace(PROOF_MARK, proof))
                for name, value in template.headers.multi_items()
            ]
        )
        return HttpRequest(
            method=template.method, url=template.url, headers=headers, body=template.body
        )


@pytest.fixture
def target(clock: FakeClock) -> FuzzTarget:
    return FuzzTarget(clock)


@FUZZ
@given(template=requests())
async def test_random_requests_never_crash_the_issuer(
    target: FuzzTarget, template: HttpRequest
) -> None:
    request = await target.fill(template)
    response = await target.env.send(request)
    assert_sane(request, response)


@pytest.mark.parametrize("url", ["https://[bad/token", "https://[::1/credential"])
async def test_unparsable_url_is_not_a_500(clock: FakeClock, url: str) -> None:
    env = Env(clock)
    response = await env.send(HttpRequest(method="POST", url=url))
    assert response.status < 500, response.body
