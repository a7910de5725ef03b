"""Encrypted credential / deferred requests and responses at the issuer (OID4VCI 1.0 §10).

Every request here is real: a pre-authorized token with DPoP, a fresh ``c_nonce``, key proofs;
the issuer's answers are decrypted with the wallet's ephemeral key made for the request.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import pytest

from oid4vci.errors import UsageError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import DeferIssuance
from oid4vci.issuer.encryption import EncryptionSettings
from oid4vci.jose import LocalSigner, b64url_decode, b64url_encode
from oid4vci.jwe import decrypt_jwe, encrypt_json, generate_encryption_key
from oid4vci.sdjwt import sd
from tests.conftest import FakeClock
from tests.security.support import CREDENTIAL, DEFERRED, ISSUER, Env, assert_error

pytestmark = pytest.mark.anyio

REQUEST_KEY = generate_encryption_key(kid="req-2")
OLD_REQUEST_KEY = generate_encryption_key(kid="req-1")


def public(jwk: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in jwk.items() if k != "d"}


def settings(**overrides: Any) -> EncryptionSettings:
    options: dict[str, Any] = {
        "request_keys": (REQUEST_KEY, OLD_REQUEST_KEY),
        "published_request_keys": 1,
        "request_zip_values": ("DEF",),
        "response_zip_values": ("DEF",),
    }
    options.update(overrides)
    return EncryptionSettings(**options)


class Wallet:
    """One token, one DPoP key and the body builders of an encrypting wallet."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.dpop = LocalSigner.generate()
        self.token = ""

    async def start(self) -> Wallet:
        self.token = await self.env.access_token(self.dpop)
        return self

    async def body(self, **extra: Any) -> dict[str, Any]:
        holder = LocalSigner.generate()
        proof = await self.env.key_proof(holder, await self.env.c_nonce())
        return {"credential_configuration_id": "pid", "proofs": {"jwt": [proof]}, **extra}

    async def post_jwe(self, token: str, *, url: str = CREDENTIAL) -> HttpResponse:
        return await self.env.credential(
            self.token, self.dpop, token.encode(), content_type="application/jwt", url=url
        )

    async def post_json(self, body: dict[str, Any], *, url: str = CREDENTIAL) -> HttpResponse:
        return await self.env.credential(self.token, self.dpop, body, url=url)


def response_params(key: dict[str, Any], enc: str = "A128GCM", **extra: Any) -> dict[str, Any]:
    return {"jwk": public(key), "enc": enc, **extra}


def seal(body: dict[str, Any], *, enc: str = "A128GCM", zip: str | None = None) -> str:
    return encrypt_json(body, public(REQUEST_KEY), alg="ECDH-ES", enc=enc, zip=zip)


def open_answer(response: HttpResponse, key: dict[str, Any], enc: str = "A128GCM") -> Any:
    assert response.media_type == "application/jwt", (response.status, response.body)
    assert response.headers.get("Cache-Control") == "no-store"
    opened = decrypt_jwe(
        response.body.decode(), [key], algorithms=["ECDH-ES"], encryptions=[enc], zips=["DEF"]
    )
    assert opened.header["enc"] == enc
    return opened


@pytest.fixture
async def env(clock: FakeClock) -> Env:
    return Env(clock, encryption=settings())


async def test_metadata_publishes_both_objects_and_only_public_keys(env: Env) -> None:
    response = await env.send(
        HttpRequest(method="GET", url=ISSUER + "/.well-known/openid-credential-issuer")
    )
    doc = response.json_body()
    request = doc["credential_request_encryption"]
    assert request == {
        "jwks": {"keys": [{**public(REQUEST_KEY), "use": "enc"}]},
        "enc_values_supported": ["A128GCM", "A256GCM"],
        "zip_values_supported": ["DEF"],
        "encryption_required": False,
    }
    assert all("d" not in key for key in request["jwks"]["keys"])
    assert doc["credential_response_encryption"] == {
        "alg_values_supported": ["ECDH-ES"],
        "enc_values_supported": ["A128GCM", "A256GCM"],
        "zip_values_supported": ["DEF"],
        "encryption_required": False,
    }


@pytest.mark.parametrize("version", ["draft-13", "draft-14", "draft-15"])
async def test_draft_metadata_has_response_encryption_only(clock: FakeClock, version: str) -> None:
    from oid4vci.issuer.metadata import create_issuer_metadata
    from oid4vci.versions import SpecVersion

    env = Env(clock, encryption=settings())
    doc = create_issuer_metadata(env.config, version=SpecVersion(version))
    assert "credential_request_encryption" not in doc
    assert doc["credential_response_encryption"] == {
        "alg_values_supported": ["ECDH-ES"],
        "enc_values_supported": ["A128GCM", "A256GCM"],
        "encryption_required": False,
    }


@pytest.mark.parametrize("enc", ["A128GCM", "A256GCM"])
@pytest.mark.parametrize("zip_", [None, "DEF"])
async def test_encrypted_request_and_response_round_trip(
    env: Env, enc: str, zip_: str | None
) -> None:
    wallet = await Wallet(env).start()
    ephemeral = generate_encryption_key()
    extra = {"zip": zip_} if zip_ else {}
    body = await wallet.body(
        credential_response_encryption=response_params(ephemeral, enc, **extra)
    )
    response = await wallet.post_jwe(seal(body, enc=enc, zip=zip_))
    assert response.status == 200
    opened = open_answer(response, ephemeral, enc)
    assert opened.header.get("zip") == zip_
    assert "kid" not in opened.header  # the wallet's key had none
    answer = opened.json_object()
    assert len(answer["credentials"]) == 1 and answer["notification_id"]
    assert env.claims.calls == 1


async def test_old_request_key_still_decrypts(env: Env) -> None:
    wallet = await Wallet(env).start()
    body = await wallet.body()
    token = encrypt_json(body, public(OLD_REQUEST_KEY), alg="ECDH-ES", enc="A128GCM")
    response = await wallet.post_jwe(token)
    assert response.status == 200 and response.media_type == "application/json"
    assert response.json_body()["credentials"]


async def test_encrypted_request_with_plain_answer(env: Env) -> None:
    wallet = await Wallet(env).start()
    response = await wallet.post_jwe(seal(await wallet.body()))
    assert response.status == 200 and response.media_type == "application/json"


async def test_plain_request_without_encryption_still_works(env: Env) -> None:
    wallet = await Wallet(env).start()
    response = await wallet.post_json(await wallet.body())
    assert response.status == 200 and response.media_type == "application/json"


async def test_draft_shape_response_encryption_in_a_plain_request(env: Env) -> None:
    # Draft 13-15 form: {"jwk", "alg", "enc"}, the request itself is never encrypted.
    wallet = await Wallet(env).start()
    holder = LocalSigner.generate()
    proof = await env.key_proof(holder, await env.c_nonce())
    ephemeral = generate_encryption_key()
    key = public(ephemeral)
    key.pop("alg")
    body = {
        "format": "vc+sd-jwt",
        "vct": "urn:eudi:pid:1",
        "proof": {"proof_type": "jwt", "jwt": proof},
        "credential_response_encryption": {"jwk": key, "alg": "ECDH-ES", "enc": "A256GCM"},
    }
    response = await wallet.post_json(body)
    assert response.status == 200
    assert "credential" in open_answer(response, ephemeral, "A256GCM").json_object()


# --- refusals -------------------------------------------------------------------------------


async def refused(
    response: HttpResponse, env: Env, code: str = "invalid_encryption_parameters"
) -> str:
    body = assert_error(response, 400, code)
    assert env.claims.calls == 0
    return str(body.get("error_description"))


async def test_v1_plain_request_carrying_response_encryption_is_refused(env: Env) -> None:
    wallet = await Wallet(env).start()
    ephemeral = generate_encryption_key()
    body = await wallet.body(credential_response_encryption=response_params(ephemeral))
    await refused(await wallet.post_json(body), env)


async def test_required_request_encryption_refuses_plain_json(clock: FakeClock) -> None:
    env = Env(clock, encryption=settings(request_required=True))
    wallet = await Wallet(env).start()
    await refused(await wallet.post_json(await wallet.body()), env)
    assert (await wallet.post_jwe(seal(await wallet.body()))).status == 200


async def test_required_response_encryption_refuses_a_request_without_it(clock: FakeClock) -> None:
    env = Env(clock, encryption=settings(response_required=True))
    wallet = await Wallet(env).start()
    await refused(await wallet.post_jwe(seal(await wallet.body())), env)


async def test_no_settings_refuses_both(clock: FakeClock) -> None:
    env = Env(clock)
    wallet = await Wallet(env).start()
    # application/jwt is just a media type this endpoint does not take
    assert_error(
        await wallet.post_jwe(seal(await wallet.body())), 415, "invalid_credential_request"
    )
    ephemeral = generate_encryption_key()
    body = await wallet.body(credential_response_encryption=response_params(ephemeral))
    await refused(await wallet.post_json(body), env)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"enc": "A128CBC-HS256"}, id="enc-not-advertised"),
        pytest.param({"enc": "none"}, id="enc-none"),
        pytest.param({"zip": "GZIP"}, id="unknown-zip"),
        pytest.param({"jwk": {"kty": "oct", "k": "AAAA", "alg": "ECDH-ES"}}, id="symmetric-jwk"),
        pytest.param({"jwk": "private"}, id="private-jwk"),
        pytest.param({"jwk": "no-alg"}, id="jwk-without-alg"),
        pytest.param({"jwk": "alg-dir"}, id="jwk-alg-dir"),
        pytest.param({"alg": "RSA-OAEP-256"}, id="alg-differs-from-jwk"),
        pytest.param({"jwk": "off-curve"}, id="point-not-on-curve"),
        pytest.param({"jwk": "sig"}, id="signing-key"),
    ],
)
async def test_bad_response_encryption_parameters(env: Env, params: dict[str, Any]) -> None:
    ephemeral = generate_encryption_key()
    value = response_params(ephemeral)
    jwk = params.get("jwk")
    if jwk == "private":
        value["jwk"] = ephemeral
    elif jwk == "no-alg":
        value["jwk"].pop("alg")
    elif jwk == "alg-dir":
        value["jwk"]["alg"] = "dir"
    elif jwk == "sig":
        value["jwk"]["use"] = "sig"
    elif jwk == "off-curve":
        value["jwk"]["y"] = b64url_encode(b"\x01" * 32)
    elif jwk is not None:
        value["jwk"] = jwk
    value.update({k: v for k, v in params.items() if k != "jwk"})
    wallet = await Wallet(env).start()
    holder = LocalSigner.generate()
    nonce = await env.c_nonce()
    proof = await env.key_proof(holder, nonce)
    body = {
        "credential_configuration_id": "pid",
        "proofs": {"jwt": [proof]},
        "credential_response_encryption": value,
    }
    await refused(await wallet.post_jwe(seal(body)), env)
    assert await env.nonce_works(nonce, wallet.token, wallet.dpop)  # refused before its use


def _header(token: str) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(b64url_decode(token.split(".")[0]))
    return parsed


def _with_header(token: str, **changes: Any) -> str:
    parts = token.split(".")
    header = _header(token)
    header.update(changes)
    header = {k: v for k, v in header.items() if v is not None}
    parts[0] = b64url_encode(json.dumps(header).encode())
    return ".".join(parts)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda t: _with_header(t, kid="nobody"), id="unknown-kid"),
        pytest.param(lambda t: _with_header(t, alg="dir"), id="alg-dir"),
        pytest.param(lambda t: _with_header(t, alg="A128KW"), id="alg-symmetric"),
        pytest.param(lambda t: _with_header(t, alg="RSA-OAEP-256"), id="alg-not-the-keys"),
        pytest.param(lambda t: _with_header(t, alg="none"), id="alg-none"),
        pytest.param(lambda t: _with_header(t, enc="A192GCM"), id="enc-not-advertised"),
        pytest.param(lambda t: _with_header(t, zip="GZIP"), id="zip-unknown"),
        pytest.param(lambda t: _with_header(t, kid="req-2"), id="kid-changed-aad-breaks"),
        pytest.param(
            lambda t: ".".join([*t.split(".")[:3], t.split(".")[3][:-4] + "AAAA", t.split(".")[4]]),
            id="tampered-ciphertext",
        ),
        pytest.param(lambda t: ".".join(t.split(".")[:4]), id="four-parts"),
        pytest.param(lambda t: "x" + t, id="garbage-header"),
        pytest.param(lambda t: "\u00e9" + t, id="non-ascii"),
        pytest.param(lambda t: "", id="empty"),
    ],
)
async def test_hostile_jwe_requests(env: Env, mangle: Any) -> None:
    wallet = await Wallet(env).start()
    body = await wallet.body()
    token = encrypt_json(body, public(OLD_REQUEST_KEY), alg="ECDH-ES", enc="A128GCM")
    await refused(await wallet.post_jwe(mangle(token)), env)


async def test_jwe_of_a_non_object_is_an_invalid_credential_request(env: Env) -> None:
    wallet = await Wallet(env).start()
    from joserfc import jwe
    from joserfc.jwk import JWKRegistry

    from oid4vci.jwe import _Registry

    key = JWKRegistry.import_key(public(REQUEST_KEY))
    for plaintext in (b"[1,2]", b"not json", b"\xff\xfe"):
        token = jwe.encrypt_compact(
            {"alg": "ECDH-ES", "enc": "A128GCM", "kid": "req-2"},
            plaintext,
            key,
            registry=_Registry(["ECDH-ES", "A128GCM"], 1024),
        )
        await refused(await wallet.post_jwe(token), env, "invalid_credential_request")


async def test_zip_bomb_is_refused_with_bounded_output(clock: FakeClock) -> None:
    env = Env(clock, encryption=settings(max_plaintext=64 * 1024))
    wallet = await Wallet(env).start()
    # 50 MB of spaces deflate to ~50 kB; only max_plaintext + 1 bytes are ever inflated.
    body = json.dumps({"credential_configuration_id": "pid", "pad": " " * 50_000_000})
    from joserfc import jwe
    from joserfc.jwk import JWKRegistry

    from oid4vci.jwe import _Registry

    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    deflated = compressor.compress(body.encode()) + compressor.flush()
    assert len(deflated) < 100_000

    class Raw(_Registry):
        def get_zip(self, name: str) -> Any:
            class Passthrough:
                def compress(self, s: bytes) -> bytes:
                    return deflated

            return Passthrough()

    registry = Raw(["ECDH-ES", "A128GCM", "DEF"], 1024)
    registry.max_ciphertext_length = 1 << 20
    token = jwe.encrypt_compact(
        {"alg": "ECDH-ES", "enc": "A128GCM", "kid": "req-2", "zip": "DEF"},
        b"ignored",
        JWKRegistry.import_key(public(REQUEST_KEY)),
        registry=registry,
    )
    described = await refused(await wallet.post_jwe(token), env)
    assert described == "the JWE plaintext inflates past the size limit"


# --- deferred -------------------------------------------------------------------------------


async def test_deferred_answers_are_encrypted_to_the_key_of_each_request(clock: FakeClock) -> None:
    ready = False

    async def claims(subject: str, configuration_id: str) -> dict[str, Any]:
        if not ready:
            raise DeferIssuance(interval=5)
        return {"given_name": sd("Erika")}

    env = Env(clock, encryption=settings(), claims_source=claims)
    wallet = await Wallet(env).start()
    first = generate_encryption_key()
    body = await wallet.body(credential_response_encryption=response_params(first))
    accepted = await wallet.post_jwe(seal(body))
    assert accepted.status == 202
    transaction_id = open_answer(accepted, first).json_object()["transaction_id"]
    # A poll with a new key: still pending, 202 encrypted to the new key.
    second = generate_encryption_key()
    poll = {
        "transaction_id": transaction_id,
        "credential_response_encryption": response_params(second),
    }
    pending = await wallet.post_jwe(seal(poll), url=DEFERRED)
    assert pending.status == 202
    assert open_answer(pending, second).json_object()["transaction_id"] == transaction_id
    ready = True
    third = generate_encryption_key()
    poll["credential_response_encryption"] = response_params(third, "A256GCM")
    done = await wallet.post_jwe(seal(poll), url=DEFERRED)
    assert done.status == 200
    assert open_answer(done, third, "A256GCM").json_object()["credentials"]


async def test_deferred_poll_with_bad_parameters_keeps_the_transaction(clock: FakeClock) -> None:
    calls = {"n": 0}

    async def deferring(subject: str, configuration_id: str) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] == 1:
            raise DeferIssuance(interval=5)
        return {"given_name": "Erika"}

    env = Env(clock, encryption=settings(), claims_source=deferring)
    wallet = await Wallet(env).start()
    accepted = await wallet.post_jwe(seal(await wallet.body()))
    transaction_id = accepted.json_body()["transaction_id"]
    bad = {
        "transaction_id": transaction_id,
        "credential_response_encryption": {"jwk": {}, "enc": "A128GCM"},
    }
    assert_error(
        await wallet.post_jwe(seal(bad), url=DEFERRED), 400, "invalid_encryption_parameters"
    )
    good = await wallet.post_jwe(seal({"transaction_id": transaction_id}), url=DEFERRED)
    assert good.status == 200 and good.json_body()["credentials"]


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {"request_keys": (public(REQUEST_KEY),)},
        {"request_keys": ({**REQUEST_KEY, "kid": ""},)},
        {"request_keys": (REQUEST_KEY, REQUEST_KEY)},
        {"request_keys": ({**REQUEST_KEY, "alg": "dir"},)},
        {"request_keys": ({**REQUEST_KEY, "use": "sig"},)},
        {"request_keys": (), "request_required": True},
        {"response_alg_values": ("dir",)},
        {"response_enc_values": ()},
        {"request_zip_values": ("GZIP",)},
    ],
)
def test_bad_settings_are_usage_errors(overrides: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        settings(**overrides)


def test_settings_repr_hides_the_private_keys() -> None:
    text = repr(settings())
    assert REQUEST_KEY["d"] not in text and OLD_REQUEST_KEY["d"] not in text
