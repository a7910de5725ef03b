"""The Issuer service end to end by raw HTTP requests (and shared helpers for the issuer tests).

The helpers here play the wallet with hand-written requests (no wallet code), and check minted
SD-JWT VCs with a parser written in this file (hashlib + cryptography), independent of
``oid4vci.sdjwt``.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import attrs
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from oid4vci.dpop import build_dpop_jwt
from oid4vci.errors import CredentialRequestError, ErrorCode, StoreFullError
from oid4vci.http import Headers, HttpRequest, HttpResponse, Transport
from oid4vci.issuer import (
    CredentialConfigurationSpec,
    DeferIssuance,
    Issuer,
    IssuerConfig,
    MemoryStore,
    OfferOptions,
    OfferTemplate,
    Tenancy,
    TxCodeSpec,
)
from oid4vci.jose import LocalSigner, create_jws
from oid4vci.pkce import code_challenge, generate_code_verifier
from oid4vci.sdjwt import sd
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.versions import SpecVersion
from tests.conftest import FakeClock

ISSUER = "https://issuer.example"
VCT = "https://issuer.example/identity"
OTHER_VCT = "https://issuer.example/other"
PRE_AUTH_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"

IDENTITY_CLAIMS: dict[str, Any] = {
    "given_name": "Alice",
    "family_name": "Liddell",
    "address": {"locality": "Oxford", "country": "GB"},
    "nationalities": ["GB", "IE"],
    "is_over_18": True,
}


class ClaimsHook:
    """A claims source whose behaviour tests switch: claims, defer, deny."""

    def __init__(self) -> None:
        self.defer: int | None = None
        self.deny = False
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, subject: str, configuration_id: str) -> Mapping[str, Any]:
        self.calls.append((subject, configuration_id))
        if self.deny:
            raise CredentialRequestError(ErrorCode.CREDENTIAL_REQUEST_DENIED, "no")
        if self.defer is not None:
            raise DeferIssuance(self.defer)
        return {
            "given_name": sd("Alice"),
            "family_name": sd("Liddell"),
            "address": sd({"locality": sd("Oxford"), "country": sd("GB")}),
            "nationalities": [sd("GB"), sd("IE")],
            "is_over_18": True,
        }


class LoginAll:
    """A user authenticator that logs everybody in as alice."""

    async def __call__(self, request: HttpRequest, pending: Any) -> Any:
        from oid4vci.issuer import Authenticated

        return Authenticated(subject="alice")


def make_config(
    clock: FakeClock,
    *,
    issuer: str = ISSUER,
    version: SpecVersion = SpecVersion.V1,
    hook: ClaimsHook | None = None,
    **kwargs: Any,
) -> IssuerConfig:
    """An issuer with configurations ``identity`` and ``other``."""
    specs = [
        CredentialConfigurationSpec(
            id="identity",
            vct=VCT,
            scope="identity",
            display=[{"name": "Identity", "locale": "en"}],
            claims=[
                {"path": ["given_name"], "display": [{"name": "Given name"}]},
                {"path": ["address", "locality"]},
            ],
        ),
        CredentialConfigurationSpec(id="other", vct=OTHER_VCT, scope="other"),
    ]
    options: dict[str, Any] = {
        "credential_issuer": issuer,
        "credential_signer": LocalSigner.generate(kid="issuer-key-1"),
        "credential_configurations": specs,
        "claims_source": hook or ClaimsHook(),
        "store": MemoryStore(clock=clock),
        "user_authenticator": LoginAll(),
        "published_version": version,
        "clock": clock,
    }
    options.update(kwargs)
    return IssuerConfig(**options)


def transport_for(issuer: Issuer) -> InMemoryTransport:
    """A transport sending every request to ``issuer.handle``."""
    return InMemoryTransport(issuer.handle, raise_on_redirect=False)


async def send(
    transport: Transport,
    method: str,
    url: str,
    *,
    json_body: Any = None,
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> HttpResponse:
    """Send one raw request."""
    hdrs = Headers(dict(headers or {}))
    data = b""
    if json_body is not None:
        hdrs = hdrs.with_header("Content-Type", "application/json")
        data = json.dumps(json_body).encode()
    elif form is not None:
        hdrs = hdrs.with_header("Content-Type", "application/x-www-form-urlencoded")
        data = urlencode(dict(form)).encode()
    if body is not None:
        data = body
    return await transport.send(HttpRequest(method=method, url=url, headers=hdrs, body=data))


@attrs.define
class Session:
    """A wallet session played by hand: one DPoP key, one access token."""

    transport: Transport
    clock: FakeClock
    issuer: str = ISSUER
    dpop: LocalSigner = attrs.field(factory=LocalSigner.generate)
    token: str | None = None
    token_body: dict[str, Any] = attrs.field(factory=dict)
    dpop_nonce: str | None = None

    def url(self, path: str) -> str:
        return self.issuer.rstrip("/") + path

    async def dpop_header(self, method: str, url: str, *, ath: bool) -> dict[str, str]:
        proof = await build_dpop_jwt(
            self.dpop,
            method,
            url,
            access_token=self.token if ath else None,
            nonce=self.dpop_nonce,
            clock=self.clock,
        )
        return {"DPoP": proof}

    async def redeem(self, code: str, tx_code: str | None = None) -> HttpResponse:
        form = {"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": code}
        if tx_code is not None:
            form["tx_code"] = tx_code
        url = self.url("/token")
        headers = await self.dpop_header("POST", url, ath=False)
        response = await send(self.transport, "POST", url, form=form, headers=headers)
        if response.status == 200:
            self.token_body = response.json_body()
            self.token = self.token_body["access_token"]
        return response

    async def nonce(self) -> str:
        response = await send(self.transport, "POST", self.url("/nonce"))
        assert response.status == 200, response.body
        value = response.json_body()["c_nonce"]
        assert isinstance(value, str)
        if response.headers.get("DPoP-Nonce"):
            self.dpop_nonce = response.headers.get("DPoP-Nonce")
        return value

    async def post(
        self, path: str, body: Any, *, raw: bytes | None = None, auth: bool = True
    ) -> HttpResponse:
        url = self.url(path)
        headers: dict[str, str] = {}
        if auth and self.token is not None:
            headers.update(await self.dpop_header("POST", url, ath=True))
            headers["Authorization"] = f"DPoP {self.token}"
        return await send(
            self.transport, "POST", url, json_body=body if raw is None else None,
            headers=headers, body=raw,
        )  # fmt: skip

    async def proof(
        self,
        key: LocalSigner,
        nonce: str | None,
        *,
        aud: str | None = None,
        iss: str | None = None,
    ) -> str:
        claims: dict[str, Any] = {"aud": aud or self.issuer, "iat": int(self.clock())}
        if nonce is not None:
            claims["nonce"] = nonce
        if iss is not None:
            claims["iss"] = iss
        header = {"typ": "openid4vci-proof+jwt", "jwk": key.public_jwk}
        return await create_jws(key, claims, header)


async def pre_authorized_session(
    issuer: Issuer, transport: Transport, clock: FakeClock, *, ids: Sequence[str] = ("identity",)
) -> Session:
    """A session holding an access token for ``ids`` (pre-authorized, DPoP-bound)."""
    created = await issuer.create_pre_authorized_offer(configuration_ids=ids, subject="alice")
    session = Session(transport=transport, clock=clock, issuer=issuer.credential_issuer)
    assert created.pre_authorized_code is not None
    response = await session.redeem(created.pre_authorized_code)
    assert response.status == 200, response.body
    return session


# -- an independent SD-JWT VC check ----------------------------------------------------------


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _verify_es256(jwk: Mapping[str, Any], signing_input: bytes, signature: bytes) -> None:
    assert jwk["kty"] == "EC" and jwk["crv"] == "P-256"
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(_b64d(jwk["x"]), "big"), int.from_bytes(_b64d(jwk["y"]), "big"),
        ec.SECP256R1(),
    )  # fmt: skip
    key = numbers.public_key()
    assert len(signature) == 64
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        pytest.fail("SD-JWT signature does not verify")


def check_sd_jwt_vc(
    text: str,
    *,
    jwks: Sequence[Mapping[str, Any]],
    holder_jwk: Mapping[str, Any],
    typ: str,
    vct: str = VCT,
    issuer: str = ISSUER,
) -> dict[str, Any]:
    """Parse and check an SD-JWT VC by hand; returns the claims with every disclosure applied."""
    parts = text.split("~")
    assert parts[-1] == "", "an SD-JWT without key binding ends with ~"
    jwt, disclosures = parts[0], parts[1:-1]
    head_b64, payload_b64, sig_b64 = jwt.split(".")
    header = json.loads(_b64d(head_b64))
    payload = json.loads(_b64d(payload_b64))
    assert header["typ"] == typ
    assert header["alg"] == "ES256"
    key = next(k for k in jwks if k.get("kid") == header["kid"])
    _verify_es256(key, f"{head_b64}.{payload_b64}".encode(), _b64d(sig_b64))
    assert payload["_sd_alg"] == "sha-256"
    assert payload["vct"] == vct
    assert payload["iss"] == issuer
    assert payload["cnf"] == {"jwk": dict(holder_jwk)}
    by_digest: dict[str, Any] = {}
    for disclosure in disclosures:
        digest = _b64e(hashlib.sha256(disclosure.encode("ascii")).digest())
        assert digest not in by_digest
        by_digest[digest] = json.loads(_b64d(disclosure))
    used: list[str] = []

    def expand(value: Any) -> Any:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for digest in value.get("_sd", []):
                if digest in by_digest:
                    used.append(digest)
                    salt, name, claim = by_digest[digest]
                    assert isinstance(salt, str) and name not in out
                    out[name] = expand(claim)
            for name, claim in value.items():
                if name not in ("_sd", "_sd_alg"):
                    out[name] = expand(claim)
            return out
        if isinstance(value, list):
            items = []
            for item in value:
                if isinstance(item, dict) and list(item) == ["..."]:
                    if item["..."] in by_digest:
                        used.append(item["..."])
                        items.append(expand(by_digest[item["..."]][1]))
                else:
                    items.append(expand(item))
            return items
        return value

    claims = expand(payload)
    assert sorted(used) == sorted(by_digest), "every disclosure is referenced exactly once"
    return dict(claims)


async def fetch_jwks(transport: Transport, issuer: str = ISSUER) -> list[dict[str, Any]]:
    """The issuer's keys from ``/.well-known/jwt-vc-issuer`` (inserted before the path)."""
    parts = urlsplit(issuer)
    url = f"{parts.scheme}://{parts.netloc}/.well-known/jwt-vc-issuer{parts.path.rstrip('/')}"
    response = await send(transport, "GET", url)
    assert response.status == 200
    body = response.json_body()
    assert body["issuer"] == issuer
    keys: list[dict[str, Any]] = body["jwks"]["keys"]
    assert all("d" not in k for k in keys)
    return keys


# -- whole issuance per request shape ---------------------------------------------------------


def request_body(
    version: SpecVersion, proofs: list[str], token_body: Mapping[str, Any]
) -> dict[str, Any]:
    """The credential request a wallet of ``version`` would send."""
    if version is SpecVersion.DRAFT_13:
        return {"format": "vc+sd-jwt", "vct": VCT, "proof": {"proof_type": "jwt", "jwt": proofs[0]}}
    if version is SpecVersion.DRAFT_14:
        return {"format": "vc+sd-jwt", "vct": VCT, "proofs": {"jwt": proofs}}
    if version is SpecVersion.DRAFT_15:
        return {
            "credential_configuration_id": "identity",
            "proof": {"proof_type": "jwt", "jwt": proofs[0]},
        }
    if "authorization_details" not in token_body:
        return {"credential_configuration_id": "identity", "proofs": {"jwt": proofs}}
    identifier = token_body["authorization_details"][0]["credential_identifiers"][0]
    return {"credential_identifier": identifier, "proofs": {"jwt": proofs}}


def credentials_of(version: SpecVersion, body: Mapping[str, Any]) -> list[str]:
    """The credentials of a response, checking the version's shape."""
    if version is SpecVersion.DRAFT_13:
        assert "credentials" not in body
        return [body["credential"]]
    if version is SpecVersion.DRAFT_14:
        assert "credential" not in body
        assert all(isinstance(c, str) for c in body["credentials"])
        return list(body["credentials"])
    assert all(isinstance(c, dict) for c in body["credentials"])
    return [c["credential"] for c in body["credentials"]]


ALL_VERSIONS = list(SpecVersion)


@pytest.mark.parametrize("published", ALL_VERSIONS, ids=lambda v: v.value)
@pytest.mark.parametrize("shape", ALL_VERSIONS, ids=lambda v: v.value)
async def test_whole_issuance_by_raw_requests(
    clock: FakeClock, published: SpecVersion, shape: SpecVersion
) -> None:
    issuer = Issuer(make_config(clock, version=published))
    transport = transport_for(issuer)
    # 1. the offer, by reference
    created = await issuer.create_pre_authorized_offer(
        configuration_ids=["identity"], subject="alice", options=OfferOptions(by_reference=True)
    )
    link = parse_qs(urlsplit(created.offer_uri).query)["credential_offer_uri"][0]
    offer_response = await send(transport, "GET", link)
    assert offer_response.status == 200
    offer = offer_response.json_body()
    assert offer["credential_issuer"] == ISSUER
    code = offer["grants"][PRE_AUTH_GRANT]["pre-authorized_code"]
    # 2. metadata
    meta = await send(transport, "GET", ISSUER + "/.well-known/openid-credential-issuer")
    assert meta.status == 200
    assert meta.json_body()["credential_endpoint"] == ISSUER + "/credential"
    # 3. token with DPoP
    session = Session(transport=transport, clock=clock)
    token_response = await session.redeem(code)
    assert token_response.status == 200, token_response.body
    assert session.token_body["token_type"] == "DPoP"
    # 4. nonce (Draft 15+) or the token response's c_nonce (Draft 13/14)
    if published.c_nonce_in_responses:
        nonce = session.token_body["c_nonce"]
    else:
        nonce = await session.nonce()
    keys = [
        LocalSigner.generate()
        for _ in range(1 if shape in (SpecVersion.DRAFT_13, SpecVersion.DRAFT_15) else 2)
    ]
    proofs = [await session.proof(k, nonce) for k in keys]
    # 5. credential
    response = await session.post("/credential", request_body(shape, proofs, session.token_body))
    assert response.status == 200, response.body
    assert response.headers.get("Cache-Control") == "no-store"
    body = response.json_body()
    # a 1.0-shaped request (identifier/id + proofs) is also a Draft 14/15 shape: the token's
    # version decides; every other shape is answered in its own version
    answered = (
        published
        if shape is SpecVersion.V1 and published in (SpecVersion.DRAFT_14, SpecVersion.DRAFT_15)
        else shape
    )
    assert ("c_nonce" in body) is answered.c_nonce_in_responses
    # Draft 14 allows notification_id only beside a single ``credential``
    several_in_d14 = answered is SpecVersion.DRAFT_14 and len(keys) > 1
    assert isinstance(body.get("notification_id"), str) is not several_in_d14
    credentials = credentials_of(answered, body)
    assert len(credentials) == len(keys)
    jwks = await fetch_jwks(transport)
    for credential, key in zip(credentials, keys, strict=True):
        claims = check_sd_jwt_vc(
            credential, jwks=jwks, holder_jwk=key.public_jwk, typ=answered.sd_jwt_typ
        )
        assert claims["given_name"] == "Alice"
        assert claims["address"] == {"locality": "Oxford", "country": "GB"}
        assert claims["nationalities"] == ["GB", "IE"]


async def test_authorization_code_flow_by_raw_requests(clock: FakeClock) -> None:
    issuer = Issuer(make_config(clock))
    transport = transport_for(issuer)
    created = await issuer.create_authorization_code_offer(configuration_ids=["identity"])
    assert created.issuer_state is not None
    verifier = generate_code_verifier()
    query = urlencode(
        {
            "response_type": "code",
            "client_id": "wallet",
            "redirect_uri": "https://wallet.example/cb",
            "code_challenge": code_challenge(verifier),
            "code_challenge_method": "S256",
            "issuer_state": created.issuer_state,
            "state": "xyz",
        }
    )
    response = await send(transport, "GET", f"{ISSUER}/authorize?{query}")
    assert response.status == 303
    location = response.headers.get("Location") or ""
    params = parse_qs(urlsplit(location).query)
    assert params["state"] == ["xyz"]
    session = Session(transport=transport, clock=clock)
    url = ISSUER + "/token"
    token = await send(
        transport,
        "POST",
        url,
        form={
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "code_verifier": verifier,
            "client_id": "wallet",
            "redirect_uri": "https://wallet.example/cb",
        },
        headers=await session.dpop_header("POST", url, ath=False),
    )
    assert token.status == 200, token.body
    session.token = token.json_body()["access_token"]
    key = LocalSigner.generate()
    proof = await session.proof(key, await session.nonce(), iss="wallet")
    response = await session.post(
        "/credential", {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
    )
    assert response.status == 200, response.body
    # the proof's iss must be the client_id
    bad = await session.proof(key, await session.nonce(), iss="someone-else")
    response = await session.post(
        "/credential", {"credential_configuration_id": "identity", "proofs": {"jwt": [bad]}}
    )
    assert response.status == 400
    assert response.json_body()["error"] == "invalid_proof"


# -- routing and error mapping ----------------------------------------------------------------


async def test_unknown_path_and_wrong_method(clock: FakeClock) -> None:
    transport = transport_for(Issuer(make_config(clock)))
    response = await send(transport, "GET", ISSUER + "/nowhere")
    assert response.status == 404
    assert response.media_type == "application/json"
    response = await send(transport, "GET", ISSUER + "/credential")
    assert response.status == 405
    assert response.headers.get("Allow") == "POST"
    response = await send(transport, "DELETE", ISSUER + "/.well-known/openid-credential-issuer")
    assert response.status == 405
    assert response.headers.get("Allow") == "GET"
    response = await send(transport, "PUT", ISSUER + "/authorize")
    assert response.status == 405
    assert response.headers.get("Allow") == "GET, POST"


async def test_body_too_large(clock: FakeClock) -> None:
    transport = transport_for(Issuer(make_config(clock, max_body_size=100)))
    response = await send(
        transport, "POST", ISSUER + "/credential", body=b"{" + b" " * 200 + b"}",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    assert response.status == 413
    assert response.json_body()["error"] == "invalid_credential_request"


class _FullStore(MemoryStore):
    async def put(self, key: str, value: Any, ttl: float) -> None:
        raise StoreFullError("full")


class _QuiteFullStore(_FullStore):
    async def add_if_absent(self, key: str, value: Any, ttl: float) -> bool:
        raise StoreFullError("full")


class _BrokenHook(ClaimsHook):
    async def __call__(self, subject: str, configuration_id: str) -> Mapping[str, Any]:
        raise RuntimeError("database down; secret=hunter2")


async def test_store_full_is_503(clock: FakeClock) -> None:
    from oid4vci.issuer.offers import OfferTemplate

    template = OfferTemplate(name="t", configuration_ids=["identity"], subject="alice")
    store = _QuiteFullStore(clock=clock)
    issuer = Issuer(make_config(clock, store=store), offer_templates=[template])
    transport = transport_for(issuer)
    response = await send(transport, "GET", ISSUER + "/offers/templates/t")
    assert response.status == 503
    assert response.json_body()["error"] == "temporarily_unavailable"
    assert response.headers.get("Retry-After") == "5"
    # Stateless nonces need no store: the nonce endpoint answers even when it is full.
    assert (await send(transport, "POST", ISSUER + "/nonce")).status == 200


async def test_store_full_is_503_with_retry_after_from_every_helper(clock: FakeClock) -> None:
    # The endpoint helpers answer a full store like Issuer.handle does.
    from oid4vci.issuer import handle_authorization, handle_par, handle_token
    from oid4vci.issuer.token import PreAuthorizedCodeRecord, store_pre_authorized_code

    config = make_config(clock, store=_FullStore(clock=clock), allow_bearer=True)
    grant = PreAuthorizedCodeRecord(subject="alice", configuration_ids=("identity",))
    await store_pre_authorized_code(config.store, "code-1", grant, 600)
    token = await handle_token(
        HttpRequest.form(
            "POST",
            ISSUER + "/token",
            {"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": "code-1"},
        ),
        config,
    )
    authorization = {
        "response_type": "code",
        "client_id": "wallet",
        "redirect_uri": "https://wallet.example/cb",
        "code_challenge": code_challenge(generate_code_verifier()),
        "code_challenge_method": "S256",
        "scope": "identity",
    }
    par = await handle_par(HttpRequest.form("POST", ISSUER + "/par", authorization), config)
    for response in (token, par):
        assert response.status == 503
        assert response.json_body()["error"] == "temporarily_unavailable"
        assert response.headers.get("Retry-After") == "5"
    page = await handle_authorization(
        HttpRequest(method="GET", url=ISSUER + "/authorize?" + urlencode(authorization)), config
    )
    assert page.status == 503
    assert page.headers.get("Retry-After") == "5"
    assert b"temporarily_unavailable" in page.body


async def test_unexpected_exception_is_500_without_details(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    issuer = Issuer(make_config(clock, hook=_BrokenHook()))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock)
    proof = await session.proof(LocalSigner.generate(), await session.nonce())
    response = await session.post(
        "/credential", {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
    )
    assert response.status == 500
    assert response.json_body() == {"error": "server_error"}
    assert "hunter2" not in caplog.text


async def test_dict_requests_are_accepted(clock: FakeClock) -> None:
    issuer = Issuer(make_config(clock))
    response = await issuer.handle(
        {"method": "GET", "url": ISSUER + "/.well-known/openid-credential-issuer"}
    )
    assert response.status == 200
    assert response.json_body()["credential_issuer"] == ISSUER


# -- issuer URL with a path, tenants ----------------------------------------------------------


async def test_issuer_with_path_serves_its_endpoints_under_the_path(clock: FakeClock) -> None:
    issuer_url = "https://issuer.example/tenants/acme"
    issuer = Issuer(make_config(clock, issuer=issuer_url))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock)
    proof = await session.proof(LocalSigner.generate(), await session.nonce())
    response = await session.post(
        "/credential", {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
    )
    assert response.status == 200, response.body
    response = await send(transport, "POST", "https://issuer.example/credential")
    assert response.status == 404
    jwks = await fetch_jwks(transport, issuer_url)
    assert jwks[0]["kid"] == "issuer-key-1"


async def test_multi_tenant_host_routing(clock: FakeClock) -> None:
    base = "https://issuer.example"
    known = {"acme"}

    async def resolver(tenant: str) -> bool:
        return tenant in known

    issuer = Issuer(
        make_config(clock, issuer=base), tenancy=Tenancy(base_url=base, resolver=resolver)
    )
    transport = transport_for(issuer)
    response = await send(
        transport, "GET", "https://acme.issuer.example/.well-known/openid-credential-issuer"
    )
    assert response.status == 200
    meta = response.json_body()
    assert meta["credential_issuer"] == "https://acme.issuer.example"
    assert meta["credential_endpoint"] == "https://acme.issuer.example/credential"
    response = await send(
        transport, "GET", "https://evil.issuer.example/.well-known/openid-credential-issuer"
    )
    assert response.status == 404
    response = await send(transport, "GET", base + "/.well-known/openid-credential-issuer")
    assert response.json_body()["credential_issuer"] == base
    # a tenant's codes are worthless at another tenant (scoped store) and at the base
    acme = issuer.tenant_config("acme")
    created = await issuer.create_pre_authorized_offer(
        configuration_ids=["identity"], subject="alice", config=acme
    )
    assert created.pre_authorized_code is not None
    base_session = Session(transport=transport, clock=clock)
    response = await base_session.redeem(created.pre_authorized_code)
    assert response.status == 400
    assert response.json_body()["error"] == "invalid_grant"
    tenant_session = Session(transport=transport, clock=clock, issuer="https://acme.issuer.example")
    response = await tenant_session.redeem(created.pre_authorized_code)
    assert response.status == 200, response.body
    proof = await tenant_session.proof(LocalSigner.generate(), await tenant_session.nonce())
    response = await tenant_session.post(
        "/credential", {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
    )
    assert response.status == 200, response.body


async def test_offer_template_via_service(clock: FakeClock) -> None:
    issuer = Issuer(
        make_config(clock),
        offer_templates=[
            OfferTemplate(
                name="with_code",
                configuration_ids=["identity"],
                subject="alice",
                tx_code=TxCodeSpec(length=6, value="123456"),
            )
        ],
    )
    transport = transport_for(issuer)
    link = issuer.offer_template_link("with_code")
    url = parse_qs(urlsplit(link).query)["credential_offer_uri"][0]
    assert url == ISSUER + "/offers/templates/with_code"
    codes = set()
    for _ in range(2):
        response = await send(transport, "GET", url)
        assert response.status == 200
        grant = response.json_body()["grants"][PRE_AUTH_GRANT]
        assert grant["tx_code"] == {"input_mode": "numeric", "length": 6}
        codes.add(grant["pre-authorized_code"])
    assert len(codes) == 2
    session = Session(transport=transport, clock=clock)
    response = await session.redeem(codes.pop(), tx_code="123456")
    assert response.status == 200, response.body


# -- the demo issuer --------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["pre_auth", "pre_auth_tx_code"])
async def test_demo_issuer_templates(clock: FakeClock, template: str) -> None:
    from oid4vci.issuer import build_demo_issuer
    from oid4vci.issuer.demo import DEMO_TX_CODE

    demo = build_demo_issuer("https://demo.example", clock=clock)
    assert demo.tx_code == DEMO_TX_CODE and demo.login == "alice:wonderland"
    assert set(demo.offer_links) == {"pre_auth", "pre_auth_tx_code", "auth_code", "pre_auth_mdoc"}
    transport = InMemoryTransport(demo.handle)
    url = parse_qs(urlsplit(demo.offer_links[template]).query)["credential_offer_uri"][0]
    assert url == demo.offer_urls[template]
    offer = (await send(transport, "GET", url)).json_body()
    assert offer["credential_configuration_ids"] == ["identity_credential"]
    grant = offer["grants"][PRE_AUTH_GRANT]
    session = Session(transport=transport, clock=clock, issuer="https://demo.example")
    tx_code = demo.tx_code if template == "pre_auth_tx_code" else None
    assert ("tx_code" in grant) is (tx_code is not None)
    response = await session.redeem(grant["pre-authorized_code"], tx_code)
    assert response.status == 200, response.body
    keys = [LocalSigner.generate() for _ in range(10)]
    nonce = await session.nonce()
    identifier = session.token_body["authorization_details"][0]["credential_identifiers"][0]
    response = await session.post(
        "/credential",
        {
            "credential_identifier": identifier,
            "proofs": {"jwt": [await session.proof(k, nonce) for k in keys]},
        },
    )
    assert response.status == 200, response.body
    jwks = await fetch_jwks(transport, "https://demo.example")
    for item, key in zip(response.json_body()["credentials"], keys, strict=True):
        claims = check_sd_jwt_vc(
            item["credential"], jwks=jwks, holder_jwk=key.public_jwk, typ="dc+sd-jwt",
            vct="https://demo.example/identity_credential", issuer="https://demo.example",
        )  # fmt: skip
        assert claims["address"]["country"] == "GB"
        assert claims["nationalities"] == ["GB", "IE"]
        assert claims["is_over_18"] is True
        payload = json.loads(_b64d(item["credential"].split(".")[1]))
        assert "given_name" not in payload and "address" not in payload


async def test_server_dpop_nonces_through_the_flow(clock: FakeClock) -> None:
    issuer = Issuer(make_config(clock, require_dpop_nonce=True))
    transport = transport_for(issuer)
    created = await issuer.create_pre_authorized_offer(configuration_ids=["identity"], subject="a")
    assert created.pre_authorized_code is not None
    session = Session(transport=transport, clock=clock)
    response = await session.redeem(created.pre_authorized_code)
    assert (response.status, response.json_body()["error"]) == (400, "use_dpop_nonce")
    session.dpop_nonce = response.headers.get("DPoP-Nonce")
    assert session.dpop_nonce is not None
    response = await session.redeem(created.pre_authorized_code)
    assert response.status == 200, response.body
    c_nonce = await session.nonce()  # also refreshes the DPoP nonce from its header
    proof = await session.proof(LocalSigner.generate(), c_nonce)
    body = {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
    stale, session.dpop_nonce = session.dpop_nonce, "not-a-server-nonce-at-all"
    response = await session.post("/credential", body)
    assert response.status == 401
    assert 'error="use_dpop_nonce"' in (response.headers.get("WWW-Authenticate") or "")
    assert response.headers.get("DPoP-Nonce")
    session.dpop_nonce = stale
    response = await session.post("/credential", body)
    assert response.status == 200, response.body
