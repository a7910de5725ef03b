"""Hostile ``application/jwt`` bodies at the credential and deferred endpoints (OID4VCI 1.0
§10) of an issuer with request encryption on.

Whatever the JWE, the issuer answers a 400 JSON error (``invalid_encryption_parameters``, or
``invalid_credential_request`` for a well-encrypted body that is not a request), never a 500,
never issues, and never echoes key material. The random part runs with the security fuzz
profile (``OID4VCI_FUZZ=long`` for a longer run).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwe
from joserfc.jwk import JWKRegistry

from oid4vci.issuer.encryption import EncryptionSettings
from oid4vci.jose import LocalSigner, b64url_decode, b64url_encode
from oid4vci.jwe import _Registry, encrypt_json, generate_encryption_key
from tests.conftest import FakeClock
from tests.security.conftest import FUZZ_PROFILE
from tests.security.support import CREDENTIAL, DEFERRED, Env, assert_error

pytestmark = pytest.mark.anyio

KEY = generate_encryption_key(kid="k1")
PUBLIC = {k: v for k, v in KEY.items() if k != "d"}
SETTINGS = EncryptionSettings(request_keys=(KEY,), request_zip_values=("DEF",))
FUZZ = settings.get_profile(FUZZ_PROFILE)
REFUSALS = {"invalid_encryption_parameters", "invalid_credential_request"}


class Target:
    def __init__(self, clock: FakeClock) -> None:
        self.env = Env(clock, encryption=SETTINGS)
        self.key = LocalSigner.generate()
        self.token: str | None = None

    async def post(self, body: bytes, url: str = CREDENTIAL) -> Any:
        if self.token is None:
            self.token = await self.env.access_token(self.key)
        response = await self.env.credential(
            self.token, self.key, body, url=url, content_type="application/jwt"
        )
        assert response.status == 400, (response.status, response.body)
        body_json = assert_error(response, 400, response.json_body()["error"])
        assert body_json["error"] in REFUSALS, body_json
        assert KEY["d"] not in response.body.decode()
        assert self.env.claims.calls == 0
        return body_json


@pytest.fixture
def target(clock: FakeClock) -> Target:
    return Target(clock)


def segment(value: Any) -> str:
    return b64url_encode(json.dumps(value).encode())


def sealed(header: dict[str, Any], plaintext: bytes) -> str:
    allowed = [header["alg"], header["enc"]] + ([header["zip"]] if "zip" in header else [])
    registry = _Registry(allowed, 1 << 20)
    return jwe.encrypt_compact(header, plaintext, JWKRegistry.import_key(PUBLIC), registry=registry)


_CONTAINERS = st.lists(st.sampled_from(["DEF", "k1"]), max_size=2) | st.dictionaries(
    st.sampled_from(["DEF", "k1"]), st.integers(), max_size=1
)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["ECDH-ES", "dir", "none", "A128KW", "RSA1_5", "PBES2-HS256+A128KW"])
        | st.text(max_size=10)
        | st.integers(),
        "enc": st.sampled_from(["A128GCM", "A256GCM", "A128CBC-HS256", "none"])
        | st.text(max_size=5),
        # JSON arrays and objects too: an unhashable member once escaped a set lookup
        "kid": st.sampled_from(["k1", "k2", ""]) | st.integers() | st.none() | _CONTAINERS,
        "zip": st.sampled_from(["DEF", "GZIP", ""]) | st.integers() | _CONTAINERS,
        "epk": st.sampled_from(
            [PUBLIC, KEY, {"kty": "EC", "crv": "P-384"}, {"kty": "oct", "k": "AAAA"}, "x", {}]
        ),
        "crit": st.just(["exp"]),
        "cty": st.sampled_from(["JWT", "json"]),
    },
)


@FUZZ
@given(
    header=HEADERS,
    parts=st.lists(st.text(alphabet="ABCabc012-_", max_size=40), min_size=4, max_size=4),
    url=st.sampled_from([CREDENTIAL, DEFERRED]),
)
async def test_random_jwe_bodies_are_refused(
    target: Target, header: dict[str, Any], parts: list[str], url: str
) -> None:
    await target.post(".".join([segment(header), *parts]).encode(), url)


@FUZZ
@given(
    plaintext=st.binary(max_size=200)
    | st.sampled_from([b"[]", b"null", b"1", b'"x"', b"{", b"\xff"]),
    url=st.sampled_from([CREDENTIAL, DEFERRED]),
)
async def test_encrypted_non_requests_are_invalid_requests(
    target: Target, plaintext: bytes, url: str
) -> None:
    token = sealed({"alg": "ECDH-ES", "enc": "A128GCM", "kid": "k1"}, plaintext)
    try:
        value = json.loads(plaintext)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return  # a JSON object is parsed as a request: the endpoint's own checks take it
    assert (await target.post(token.encode(), url))["error"] == "invalid_credential_request"


HOSTILE = [
    (
        "header-too-large",
        lambda: sealed({"alg": "ECDH-ES", "enc": "A128GCM", "kid": "k" * 2000}, b"{}"),
    ),
    ("epk-private", lambda: _with_epk(KEY)),
    ("epk-other-curve", lambda: _with_epk(generate_encryption_key("P-384"))),
    ("epk-not-on-curve", lambda: _with_epk({**PUBLIC, "y": b64url_encode(b"\x02" * 32)})),
    ("crit-unknown", lambda: _add_header(crit=["exp"], exp=1)),
    ("six-parts", lambda: encrypt_json({}, PUBLIC, alg="ECDH-ES", enc="A128GCM") + ".x"),
    ("encrypted-key-present", lambda: _set_part(1, b64url_encode(b"\x00" * 16))),
    ("short-iv", lambda: _set_part(2, b64url_encode(b"\x00"))),
    ("no-tag", lambda: _set_part(4, "")),
    ("json-serialization", lambda: json.dumps({"protected": "e30", "ciphertext": "AA"})),
    ("deep-header", lambda: "[" * 5000 + "." * 4),
    # zip must be a string (RFC 7516 §4.1.3): an array or object was looked up in a set
    ("zip-array", lambda: _add_header(zip=["DEF"])),
    ("zip-object", lambda: _add_header(zip={"DEF": 1})),
]


def _parts() -> list[str]:
    return encrypt_json({"transaction_id": "x"}, PUBLIC, alg="ECDH-ES", enc="A128GCM").split(".")


def _add_header(**members: Any) -> str:
    parts = _parts()
    header = json.loads(b64url_decode(parts[0]))
    header.update(members)
    parts[0] = segment(header)
    return ".".join(parts)


def _with_epk(epk: dict[str, Any]) -> str:
    return _add_header(epk={k: v for k, v in epk.items() if k not in ("alg", "use", "kid")})


def _set_part(index: int, value: str) -> str:
    parts = _parts()
    parts[index] = value
    return ".".join(parts)


@pytest.mark.parametrize(("name", "make"), HOSTILE, ids=[h[0] for h in HOSTILE])
@pytest.mark.parametrize("url", [CREDENTIAL, DEFERRED], ids=["credential", "deferred"])
async def test_hostile_jwe(target: Target, name: str, make: Any, url: str) -> None:
    body = await target.post(make().encode(), url)
    assert body["error"] == "invalid_encryption_parameters", (name, body)


async def test_oversized_jwe_body_is_413(clock: FakeClock) -> None:
    env = Env(clock, encryption=SETTINGS)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    big = encrypt_json({"pad": "x" * (1 << 20)}, PUBLIC, alg="ECDH-ES", enc="A128GCM")
    response = await env.credential(token, key, big.encode(), content_type="application/jwt")
    assert_error(response, 413, "invalid_credential_request")
