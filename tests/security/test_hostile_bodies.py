"""Hostile request bodies: malformed JSON and forms, wrong types, old shapes, oversized bodies.

Every rejection is checked exactly (status, ``error``, ``Cache-Control: no-store``, no stray
headers) and for its side effects: a rejected token request leaves the pre-authorized code
redeemable and mints no token; a rejected credential request leaves the ``c_nonce`` usable
and issues nothing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from oid4vci.http import Headers, HttpRequest, HttpResponse
from oid4vci.jose import LocalSigner
from oid4vci.models import PRE_AUTHORIZED_CODE_GRANT
from oid4vci.transports.aiohttp import serve
from tests.conftest import FakeClock
from tests.security.support import (
    AUTHORIZE,
    CREDENTIAL,
    DEFERRED,
    NONCE,
    NOTIFICATION,
    PAR,
    REDIRECT,
    TOKEN,
    TX_CODE,
    Env,
    assert_error,
)

FORM = "application/x-www-form-urlencoded"


def raw_request(url: str, body: bytes, content_type: str | None, **headers: str) -> HttpRequest:
    hdrs = Headers(headers)
    if content_type is not None:
        hdrs = hdrs.with_header("Content-Type", content_type)
    return HttpRequest(method="POST", url=url, headers=hdrs, body=body)


# -- token endpoint --------------------------------------------------------------------------


def _code_form(code: str) -> bytes:
    return f"grant_type={PRE_AUTHORIZED_CODE_GRANT}&pre-authorized_code={code}".encode()


TOKEN_BODIES: list[tuple[str, Any, str | None, str]] = [
    # (id, body builder(code) -> bytes, content type, expected error)
    (
        "json-body",
        lambda c: json.dumps({"pre-authorized_code": c}).encode(),
        "application/json",
        "invalid_request",
    ),
    (
        "json-as-form",
        lambda c: json.dumps({"pre-authorized_code": c}).encode(),
        FORM,
        "invalid_request",
    ),
    ("no-content-type", _code_form, None, "invalid_request"),
    ("text-plain", _code_form, "text/plain", "invalid_request"),
    ("multipart", _code_form, "multipart/form-data; boundary=x", "invalid_request"),
    ("invalid-utf8", lambda c: _code_form(c) + b"&x=\xff\xfe", FORM, "invalid_request"),
    ("no-equals", lambda c: _code_form(c) + b"&garbage", FORM, "invalid_request"),
    (
        "repeated-code",
        lambda c: _code_form(c) + f"&pre-authorized_code={c}".encode(),
        FORM,
        "invalid_request",
    ),
    (
        "repeated-grant",
        lambda c: _code_form(c) + b"&grant_type=authorization_code",
        FORM,
        "invalid_request",
    ),
    ("missing-grant", lambda c: f"pre-authorized_code={c}".encode(), FORM, "invalid_request"),
    (
        "empty-grant",
        lambda c: f"grant_type=&pre-authorized_code={c}".encode(),
        FORM,
        "invalid_request",
    ),
    (
        "unknown-grant",
        lambda c: f"grant_type=password&pre-authorized_code={c}".encode(),
        FORM,
        "unsupported_grant_type",
    ),
    (
        "grant-case",
        lambda c: _code_form(c).replace(b"pre-authorized_code&", b"PRE-AUTHORIZED_CODE&"),
        FORM,
        "unsupported_grant_type",
    ),
    (
        "missing-code",
        lambda c: f"grant_type={PRE_AUTHORIZED_CODE_GRANT}".encode(),
        FORM,
        "invalid_request",
    ),
    (
        "empty-code",
        lambda c: f"grant_type={PRE_AUTHORIZED_CODE_GRANT}&pre-authorized_code=".encode(),
        FORM,
        "invalid_request",
    ),
    (
        "underscore-name",
        lambda c: f"grant_type={PRE_AUTHORIZED_CODE_GRANT}&pre_authorized_code={c}".encode(),
        FORM,
        "invalid_request",
    ),
    (
        "with-code-verifier",
        lambda c: _code_form(c) + b"&code_verifier=abc",
        FORM,
        "invalid_request",
    ),
    ("with-code", lambda c: _code_form(c) + b"&code=abc", FORM, "invalid_request"),
    ("unexpected-tx-code", lambda c: _code_form(c) + b"&tx_code=123456", FORM, "invalid_request"),
    (
        "bad-details-json",
        lambda c: _code_form(c) + b"&authorization_details=%5B",
        FORM,
        "invalid_authorization_details",
    ),
    (
        "details-object",
        lambda c: _code_form(c) + b"&authorization_details=%7B%7D",
        FORM,
        "invalid_authorization_details",
    ),
    (
        "details-ungranted",
        lambda c: (
            _code_form(c)
            + b"&authorization_details="
            + b"%5B%7B%22type%22%3A%22openid_credential%22%2C%22credential_configuration_id%22%3A%22x%22%7D%5D"
        ),
        FORM,
        "invalid_authorization_details",
    ),
    (
        "details-wrong-type",
        lambda c: (
            _code_form(c) + b"&authorization_details=" + b"%5B%7B%22type%22%3A%22other%22%7D%5D"
        ),
        FORM,
        "invalid_authorization_details",
    ),
    (
        "details-deep",
        lambda c: _code_form(c) + b"&authorization_details=" + b"%5B" * 5000,
        FORM,
        "invalid_authorization_details",
    ),
]


@pytest.mark.parametrize(
    ("builder", "content_type", "error"),
    [pytest.param(b, ct, e, id=i) for i, b, ct, e in TOKEN_BODIES],
)
async def test_token_endpoint_rejects_hostile_bodies(
    clock: FakeClock, builder: Any, content_type: str | None, error: str
) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code = await env.pre_auth_code()
    proof = await env.dpop(key, TOKEN)
    response = await env.send(raw_request(TOKEN, builder(code), content_type, DPoP=proof))
    assert_error(response, 400, error)
    assert env.tokens_minted() == 0
    # The code was not consumed.
    response = await env.redeem(code, key)
    assert response.status == 200, response.body
    assert env.tokens_minted() == 1


async def test_token_endpoint_wrong_method(clock: FakeClock) -> None:
    env = Env(clock)
    code = await env.pre_auth_code()
    for method in ("GET", "PUT", "DELETE", "PATCH"):
        response = await env.send(
            HttpRequest(method=method, url=f"{TOKEN}?pre-authorized_code={code}")
        )
        assert_error(response, 405, "invalid_request")
        assert response.headers.get("Allow") == "POST"
    assert (await env.redeem(code, LocalSigner.generate())).status == 200


async def test_old_user_pin_shape_is_not_a_tx_code(clock: FakeClock) -> None:
    """Draft ≤12 ``user_pin`` is not read as ``tx_code`` (and burns no attempt)."""
    env = Env(clock, tx_code_max_attempts=1)
    key = LocalSigner.generate()
    code = await env.pre_auth_code(tx_code=True)
    response = await env.redeem(code, key, user_pin=TX_CODE)
    body = assert_error(response, 400, "invalid_request")
    assert body["error_description"] == "tx_code is required"
    assert (await env.redeem(code, key, tx_code=TX_CODE)).status == 200


# -- credential endpoint ---------------------------------------------------------------------


def cred_body(jwt: str, **members: Any) -> dict[str, Any]:
    return {"credential_configuration_id": "pid", "proofs": {"jwt": [jwt]}, **members}


CREDENTIAL_CASES: list[tuple[str, Any, int, str]] = [
    # (id, body builder(proof) -> dict | bytes, status, error)
    ("not-json", lambda p: b"{not json", 400, "invalid_credential_request"),
    ("array", lambda p: json.dumps([cred_body(p)]).encode(), 400, "invalid_credential_request"),
    ("string", lambda p: b'"hello"', 400, "invalid_credential_request"),
    ("null", lambda p: b"null", 400, "invalid_credential_request"),
    ("nan", lambda p: b"NaN", 400, "invalid_credential_request"),
    ("empty", lambda p: b"", 400, "invalid_credential_request"),
    ("invalid-utf8", lambda p: b'{"a":"\xff"}', 400, "invalid_credential_request"),
    ("empty-object", lambda p: {}, 400, "invalid_credential_request"),
    (
        "config-id-number",
        lambda p: cred_body(p, credential_configuration_id=5),
        400,
        "invalid_credential_request",
    ),
    (
        "config-id-list",
        lambda p: cred_body(p, credential_configuration_id=["pid"]),
        400,
        "invalid_credential_request",
    ),
    (
        "unknown-config",
        lambda p: cred_body(p, credential_configuration_id="nope"),
        400,
        "unknown_credential_configuration",
    ),
    (
        "unknown-identifier",
        lambda p: {"credential_identifier": "nope", "proofs": {"jwt": [p]}},
        400,
        "unknown_credential_identifier",
    ),
    (
        "identifier-and-config",
        lambda p: cred_body(p, credential_identifier="pid"),
        400,
        "invalid_credential_request",
    ),
    (
        "proofs-string",
        lambda p: {"credential_configuration_id": "pid", "proofs": p},
        400,
        "invalid_proof",
    ),
    (
        "proofs-jwt-string",
        lambda p: {"credential_configuration_id": "pid", "proofs": {"jwt": p}},
        400,
        "invalid_proof",
    ),
    (
        "proofs-empty",
        lambda p: {"credential_configuration_id": "pid", "proofs": {"jwt": []}},
        400,
        "invalid_proof",
    ),
    (
        "proofs-two-types",
        lambda p: {
            "credential_configuration_id": "pid",
            "proofs": {"jwt": [p], "attestation": [p]},
        },
        400,
        "invalid_proof",
    ),
    (
        # A draft-shaped request (format) may not carry both (invalid_proof, Draft 14
        # §7.3.1.2); a 1.0 one ignores `proof` (OID4VCI 1.0 §8.2, tests/issuer/test_credential.py).
        # A malformed `proofs` is invalid_proof too (OID4VCI 1.0 §8.3.1.2).
        "proof-and-proofs",
        lambda p: {
            "format": "dc+sd-jwt",
            "vct": "urn:x",
            "proof": {"proof_type": "jwt", "jwt": p},
            "proofs": {"jwt": [p]},
        },
        400,
        "invalid_proof",
    ),
    ("proofs-missing", lambda p: {"credential_configuration_id": "pid"}, 400, "invalid_proof"),
    (
        "proofs-ldp",
        lambda p: {"credential_configuration_id": "pid", "proofs": {"di_vp": [{}]}},
        400,
        "invalid_proof",
    ),
    (
        "proof-number",
        lambda p: {"credential_configuration_id": "pid", "proofs": {"jwt": [5]}},
        400,
        "invalid_proof",
    ),
    (
        "encryption",
        lambda p: cred_body(
            p, credential_response_encryption={"jwk": {}, "alg": "ECDH-ES", "enc": "A128GCM"}
        ),
        400,
        "invalid_encryption_parameters",
    ),
    (
        "encryption-number",
        lambda p: cred_body(p, credential_response_encryption=5),
        400,
        "invalid_credential_request",
    ),
    (
        "d13-ldp-format",
        lambda p: {
            "format": "ldp_vc",
            "credential_definition": {"type": ["X"]},
            "proof": {"proof_type": "jwt", "jwt": p},
        },
        400,
        "unsupported_credential_format",
    ),
    (
        "d13-unknown-vct",
        lambda p: {
            "format": "vc+sd-jwt",
            "vct": "urn:other",
            "proof": {"proof_type": "jwt", "jwt": p},
        },
        400,
        "unsupported_credential_type",
    ),
    (
        "d13-vct-object",
        lambda p: {
            "format": "vc+sd-jwt",
            "vct": {"a": 1},
            "proof": {"proof_type": "jwt", "jwt": p},
        },
        400,
        "invalid_credential_request",
    ),
    (
        "pre-d13-types",
        lambda p: {
            "types": ["VerifiableCredential"],
            "format": "jwt_vc_json",
            "proof": {"proof_type": "jwt", "jwt": p},
        },
        400,
        "unsupported_credential_format",
    ),
]


@pytest.mark.parametrize(
    ("builder", "status", "error"),
    [pytest.param(b, s, e, id=i) for i, b, s, e in CREDENTIAL_CASES],
)
async def test_credential_endpoint_rejects_hostile_bodies(
    clock: FakeClock, builder: Any, status: int, error: str
) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    proof = await env.key_proof(LocalSigner.generate(), nonce)
    body = builder(proof)
    response = await env.credential(token, key, body)
    assert_error(response, status, error)
    assert env.claims.calls == 0
    # The c_nonce was not consumed by the rejected request.
    assert await env.nonce_works(nonce, token, key)


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", FORM, "application/jwt", "application/json-patch+json"]
)
async def test_credential_endpoint_wrong_content_type(
    clock: FakeClock, content_type: str | None
) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    body = json.dumps(cred_body(await env.key_proof(LocalSigner.generate(), nonce))).encode()
    proof = await env.dpop(key, CREDENTIAL, access_token=token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": proof}
    response = await env.send(raw_request(CREDENTIAL, body, content_type, **headers))
    assert_error(response, 415, "invalid_credential_request")
    assert env.claims.calls == 0
    assert await env.nonce_works(nonce, token, key)


async def test_json_content_type_parameters_are_accepted(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    nonce = await env.c_nonce()
    body = cred_body(await env.key_proof(LocalSigner.generate(), nonce))
    response = await env.credential(
        token, key, body, content_type="Application/JSON; charset=utf-8"
    )
    assert response.status == 200, response.body


# -- nonce, deferred, notification, PAR ----------------------------------------------------


async def test_nonce_endpoint_ignores_bodies_and_refuses_other_methods(clock: FakeClock) -> None:
    env = Env(clock)
    for body in (b"", b"{not json", b"\xff" * 100, b'{"c_nonce":"mine"}'):
        response = await env.send(raw_request(NONCE, body, "application/json"))
        assert response.status == 200
        assert response.headers.get("Cache-Control") == "no-store"
        assert response.json_body()["c_nonce"] != "mine"
    for method in ("GET", "PUT", "DELETE"):
        response = await env.send(HttpRequest(method=method, url=NONCE))
        assert_error(response, 405, "invalid_request")
        assert response.headers.get("Allow") == "POST"


DEFERRED_CASES = [
    (b"{not json", "application/json", 400, "invalid_credential_request"),
    (b"[]", "application/json", 400, "invalid_credential_request"),
    (b"{}", "application/json", 400, "invalid_credential_request"),
    (b'{"transaction_id": 5}', "application/json", 400, "invalid_credential_request"),
    (b'{"transaction_id": "nope"}', "application/json", 400, "invalid_transaction_id"),
    (b'{"transaction_id": "nope"}', "text/plain", 415, "invalid_credential_request"),
]


@pytest.mark.parametrize(("body", "content_type", "status", "error"), DEFERRED_CASES)
async def test_deferred_endpoint_rejects_hostile_bodies(
    clock: FakeClock, body: bytes, content_type: str, status: int, error: str
) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    response = await env.credential(token, key, body, url=DEFERRED, content_type=content_type)
    assert_error(response, status, error)


NOTIFICATION_CASES = [
    (b"{not json", "application/json", "invalid_notification_request"),
    (b"[]", "application/json", "invalid_notification_request"),
    (b"{}", "application/json", "invalid_notification_request"),
    (
        b'{"notification_id": 5, "event": "credential_accepted"}',
        "application/json",
        "invalid_notification_request",
    ),
    (
        b'{"notification_id": "n", "event": "credential_stolen"}',
        "application/json",
        "invalid_notification_request",
    ),
    (
        b'{"notification_id": "n", "event": "credential_accepted", "event_description": "\\u00e9"}',
        "application/json",
        "invalid_notification_request",
    ),
    (
        b'{"notification_id": "n", "event": "credential_accepted"}',
        "text/plain",
        "invalid_notification_request",
    ),
    (
        b'{"notification_id": "n", "event": "credential_accepted"}',
        "application/json",
        "invalid_notification_id",
    ),
]


@pytest.mark.parametrize(("body", "content_type", "error"), NOTIFICATION_CASES)
async def test_notification_endpoint_rejects_hostile_bodies(
    clock: FakeClock, body: bytes, content_type: str, error: str
) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    response = await env.credential(token, key, body, url=NOTIFICATION, content_type=content_type)
    assert_error(response, 400, error)


PAR_BASE = {
    "client_id": "wallet-client",
    "redirect_uri": REDIRECT,
    "response_type": "code",
    "scope": "pid",
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    "code_challenge_method": "S256",
}


@pytest.mark.parametrize(
    ("body", "content_type", "error"),
    [
        pytest.param(
            json.dumps(PAR_BASE).encode(), "application/json", "invalid_request", id="json"
        ),
        pytest.param(b"client_id=a&client_id=b", FORM, "invalid_request", id="repeated"),
        pytest.param(b"\xff\xfe", FORM, "invalid_request", id="invalid-utf8"),
        pytest.param(b"redirect_uri=x", FORM, "invalid_request", id="no-client"),
        pytest.param(
            b"client_id=c&request_uri=urn%3Aietf%3Aparams%3Aoauth%3Arequest_uri%3Ax",
            FORM,
            "invalid_request",
            id="request-uri-pushed",
        ),
        pytest.param(
            "&".join(
                f"{k}={v}" for k, v in {**PAR_BASE, "code_challenge_method": "plain"}.items()
            ).encode(),
            FORM,
            "invalid_request",
            id="pkce-plain",
        ),
        pytest.param(
            "&".join(
                f"{k}={v}" for k, v in {**PAR_BASE, "authorization_details": "%5B1%5D"}.items()
            ).encode(),
            FORM,
            "invalid_authorization_details",
            id="details",
        ),
        pytest.param(
            "&".join(f"{k}={v}" for k, v in {**PAR_BASE, "scope": "unknown"}.items()).encode(),
            FORM,
            "invalid_scope",
            id="scope",
        ),
    ],
)
async def test_par_endpoint_rejects_hostile_bodies(
    clock: FakeClock, body: bytes, content_type: str, error: str
) -> None:
    env = Env(clock)
    response = await env.send(raw_request(PAR, body, content_type))
    assert_error(response, 400, error)
    assert env.store.count("par:") == 0


# -- oversized bodies (Issuer.handle) -------------------------------------------------------

ROUTE_CODES = [
    (TOKEN, "invalid_request"),
    (PAR, "invalid_request"),
    (NONCE, "invalid_request"),
    (CREDENTIAL, "invalid_credential_request"),
    (DEFERRED, "invalid_credential_request"),
    (NOTIFICATION, "invalid_notification_request"),
]


@pytest.mark.parametrize(("url", "error"), ROUTE_CODES)
async def test_oversized_body_is_refused_before_parsing(
    clock: FakeClock, url: str, error: str
) -> None:
    env = Env(clock, max_body_size=2048)
    key = LocalSigner.generate()
    code = await env.pre_auth_code()
    token = await env.access_token(key)
    minted = env.tokens_minted()
    # A valid token request padded past the limit, and garbage past the limit: both 413,
    # with no authentication and no parsing (no DPoP jti is burned either).
    valid = _code_form(code) + b"&pad=" + b"a" * 2100
    for body in (valid, b"\xff{" * 1100):
        proof = await env.dpop(key, url, access_token=token)
        request = raw_request(url, body, FORM, Authorization=f"DPoP {token}", DPoP=proof)
        response = await env.send(request)
        assert_error(response, 413, error)
        # The same DPoP proof is still fresh: it was never looked at.
        if url == TOKEN:
            ok = await env.send(
                HttpRequest.form(
                    "POST",
                    TOKEN,
                    {"grant_type": PRE_AUTHORIZED_CODE_GRANT, "pre-authorized_code": code},
                    {"DPoP": proof},
                )
            )
            assert ok.status == 200, ok.body
            code = await env.pre_auth_code()
            minted += 1
    assert env.tokens_minted() == minted
    # The limit is exclusive of nothing: a body of exactly max_body_size is parsed.
    response = await env.send(
        raw_request(url, b"x" * 2048, "application/json", Authorization=f"DPoP {token}")
    )
    assert response.status != 413


async def test_authorize_oversized_is_413_page(clock: FakeClock) -> None:
    env = Env(clock, max_body_size=1024)
    request = HttpRequest(
        method="POST",
        url=AUTHORIZE,
        headers={"Content-Type": FORM},
        body=b"client_id=" + b"a" * 2000,
    )
    response = await env.send(request)
    assert_error(response, 413, "invalid_request")


# -- oversized bodies over real HTTP (aiohttp adapter on 127.0.0.1) --------------------------


class CountingHandler:
    """Forwards to the issuer and counts the requests that reached it."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.calls = 0

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        self.calls += 1
        return await self.env.send(request)


async def _chunks(data: bytes, size: int = 4096) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


class TestOverAiohttp:
    """The adapter refuses large bodies before the issuer sees them; the issuer still works."""

    @pytest.fixture
    def anyio_backend(self) -> str:
        return "asyncio"

    async def test_oversized_with_content_length(self, clock: FakeClock) -> None:
        env = Env(clock)
        key = LocalSigner.generate()
        code = await env.pre_auth_code()
        handler = CountingHandler(env)
        async with serve(handler, max_body_size=4096) as served, aiohttp.ClientSession() as http:
            body = _code_form(code) + b"&pad=" + b"a" * 5000
            proof = await env.dpop(key, TOKEN)
            async with http.post(
                served.base_url + "/token",
                data=body,
                headers={"Content-Type": FORM, "DPoP": proof},
            ) as resp:
                assert resp.status == 413
                assert resp.headers.get("Cache-Control") == "no-store"
                assert await resp.json() == {
                    "error": "invalid_request",
                    "error_description": "request body too large",
                }
            assert handler.calls == 0
            # The same proof and code still work: nothing was parsed or consumed.
            async with http.post(
                served.base_url + "/token",
                data=_code_form(code),
                headers={"Content-Type": FORM, "DPoP": proof},
            ) as resp:
                assert resp.status == 200, await resp.text()
                assert resp.headers.get("Cache-Control") == "no-store"
                assert (await resp.json())["token_type"] == "DPoP"
            assert handler.calls == 1

    @pytest.mark.parametrize("path", ["/credential", "/par", "/nonce", "/notification"])
    async def test_oversized_chunked(self, clock: FakeClock, path: str) -> None:
        env = Env(clock)
        handler = CountingHandler(env)
        async with (
            serve(handler, max_body_size=4096) as served,
            aiohttp.ClientSession() as http,
            http.post(
                served.base_url + path,
                data=_chunks(b"{" * 10_000),
                headers={"Content-Type": "application/json"},
            ) as resp,
        ):
            assert resp.status == 413
            assert resp.headers.get("Cache-Control") == "no-store"
            assert (await resp.json())["error"] == "invalid_request"
        assert handler.calls == 0

    async def test_issuer_limit_below_adapter_limit(self, clock: FakeClock) -> None:
        env = Env(clock, max_body_size=1000)
        handler = CountingHandler(env)
        async with (
            serve(handler, max_body_size=4096) as served,
            aiohttp.ClientSession() as http,
            http.post(
                served.base_url + "/credential",
                data=b"[" * 2000,
                headers={"Content-Type": "application/json"},
            ) as resp,
        ):
            assert resp.status == 413
            assert resp.headers.get("Cache-Control") == "no-store"
            assert (await resp.json())["error"] == "invalid_credential_request"
        assert handler.calls == 1

    async def test_bad_host_header(self, clock: FakeClock) -> None:
        env = Env(clock)
        handler = CountingHandler(env)
        async with (
            serve(handler) as served,
            aiohttp.ClientSession() as http,
            http.post(served.base_url + "/nonce", headers={"Host": "evil.example/x?y"}) as resp,
        ):
            assert resp.status == 400
            assert (await resp.json())["error"] == "invalid_request"
        assert handler.calls == 0


# -- known bugs (reported; the lead fixes them) ----------------------------------------------


@pytest.mark.parametrize("url", [CREDENTIAL, DEFERRED, NOTIFICATION])
async def test_deeply_nested_json_is_a_400(clock: FakeClock, url: str) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    response = await env.credential(token, key, b"[" * 100_000 + b"]" * 100_000, url=url)
    assert response.status == 400, response.body
