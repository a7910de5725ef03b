"""Shared helpers of the hostile-input tests: an issuer under test and request builders.

``Env`` wraps one :class:`~oid4vci.issuer.Issuer` (credential issuer ``ISSUER``, one SD-JWT VC
configuration ``pid``) over a :class:`RecordingStore`, so tests can count what was written
(access tokens are stored as ``at:<hash>``, notifications as ``notification:<id>``) and a
:class:`CountingClaims` source, so tests can tell whether a credential was minted.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import anyio.lowlevel

from oid4vci.dpop import build_dpop_jwt
from oid4vci.http import FORM_CONTENT_TYPE, Headers, HttpRequest, HttpResponse
from oid4vci.issuer import (
    Authenticated,
    CredentialConfigurationSpec,
    Issuer,
    IssuerConfig,
    MemoryStore,
    PendingLogin,
    Store,
    TxCodeSpec,
)
from oid4vci.issuer.config import AuthenticationResult
from oid4vci.jose import LocalSigner, b64url_encode, create_jws
from oid4vci.models import PRE_AUTHORIZED_CODE_GRANT
from oid4vci.pkce import code_challenge, generate_code_verifier
from oid4vci.sdjwt import sd
from tests.conftest import FakeClock

ISSUER = "https://issuer.example.com"
TOKEN = ISSUER + "/token"
NONCE = ISSUER + "/nonce"
CREDENTIAL = ISSUER + "/credential"
DEFERRED = ISSUER + "/deferred"
NOTIFICATION = ISSUER + "/notification"
PAR = ISSUER + "/par"
AUTHORIZE = ISSUER + "/authorize"
REDIRECT = "https://wallet.example.org/cb"
CLIENT_ID = "wallet-client"
TX_CODE = "493817"
DPOP_ALGS = 'algs="ES256 ES384 EdDSA"'
PROOF_TYP = "openid4vci-proof+jwt"


class RecordingStore:
    """A :class:`Store` delegating to ``inner`` that records written keys.

    With ``yielding`` every operation first yields to the event loop, so concurrent tasks
    interleave between store calls (a store with real I/O would).
    """

    def __init__(self, inner: Store, *, yielding: bool = False) -> None:
        self.inner = inner
        self.yielding = yielding
        self.written: list[str] = []

    def __repr__(self) -> str:
        return f"RecordingStore({self.inner!r})"

    def __len__(self) -> int:
        return len(self.inner) if isinstance(self.inner, MemoryStore) else 0

    def count(self, prefix: str) -> int:
        """How many writes went to keys starting with ``prefix``."""
        return sum(1 for key in self.written if key.startswith(prefix))

    async def _pause(self) -> None:
        if self.yielding:
            await anyio.lowlevel.checkpoint()

    async def put(self, key: str, value: Any, ttl: float) -> None:
        await self._pause()
        await self.inner.put(key, value, ttl)
        self.written.append(key)

    async def get(self, key: str) -> Any | None:
        await self._pause()
        return await self.inner.get(key)

    async def take(self, key: str) -> Any | None:
        await self._pause()
        return await self.inner.take(key)

    async def add_if_absent(self, key: str, value: Any, ttl: float) -> bool:
        await self._pause()
        added = await self.inner.add_if_absent(key, value, ttl)
        if added:
            self.written.append(key)
        return added

    async def delete(self, key: str) -> None:
        await self._pause()
        await self.inner.delete(key)

    async def increment(self, key: str, ttl: float) -> int:
        await self._pause()
        return await self.inner.increment(key, ttl)


class CountingClaims:
    """The claims source: counts calls (a call means issuance went ahead)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, subject: str, configuration_id: str) -> Mapping[str, Any]:
        self.calls += 1
        return {"given_name": sd("Alice"), "family_name": sd("Liddell")}


async def approve(request: HttpRequest, pending: PendingLogin) -> AuthenticationResult:
    """A user authenticator that logs ``alice`` in at once."""
    return Authenticated(subject="alice")


def make_config(clock: FakeClock, store: Store | None = None, **overrides: Any) -> IssuerConfig:
    """The configuration under test (``overrides`` replace any field)."""
    options: dict[str, Any] = {
        "credential_issuer": ISSUER,
        "credential_signer": LocalSigner.generate("ES256", kid="issuer-key"),
        "credential_configurations": [
            CredentialConfigurationSpec(id="pid", vct="urn:eudi:pid:1", scope="pid")
        ],
        "claims_source": CountingClaims(),
        "store": store if store is not None else MemoryStore(clock=clock),
        "user_authenticator": approve,
        "batch_size": 3,
        "clock": clock,
    }
    options.update(overrides)
    return IssuerConfig(**options)


class Env:
    """An issuer under test plus request builders."""

    def __init__(
        self,
        clock: FakeClock,
        *,
        max_entries: int = 100_000,
        yielding: bool = False,
        **overrides: Any,
    ) -> None:
        self.clock = clock
        self.store = RecordingStore(
            MemoryStore(max_entries=max_entries, clock=clock), yielding=yielding
        )
        self.claims = CountingClaims()
        overrides.setdefault("claims_source", self.claims)
        self.config = make_config(clock, self.store, **overrides)
        self.issuer = Issuer(self.config)

    async def send(self, request: HttpRequest) -> HttpResponse:
        """``Issuer.handle``."""
        return await self.issuer.handle(request)

    def tokens_minted(self) -> int:
        """Access tokens written to the store so far."""
        return self.store.count("at:")

    # -- pre-authorized codes and tokens -------------------------------------------------

    async def pre_auth_code(self, *, tx_code: bool = False) -> str:
        """A fresh pre-authorized code for ``alice`` (tx_code ``TX_CODE`` when asked)."""
        spec = TxCodeSpec(length=len(TX_CODE), value=TX_CODE) if tx_code else None
        created = await self.issuer.create_pre_authorized_offer(
            configuration_ids=["pid"], subject="alice", tx_code=spec
        )
        assert created.pre_authorized_code is not None
        return created.pre_authorized_code

    async def dpop(
        self,
        key: LocalSigner,
        url: str,
        *,
        method: str = "POST",
        access_token: str | None = None,
        nonce: str | None = None,
    ) -> str:
        """A fresh DPoP proof for ``method url``."""
        return await build_dpop_jwt(
            key, method, url, access_token=access_token, nonce=nonce, clock=self.clock
        )

    async def token_request(
        self,
        form: Mapping[str, str],
        key: LocalSigner | None,
        *,
        proof: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        nonce: str | None = None,
    ) -> HttpResponse:
        """POST ``form`` to the token endpoint with a DPoP proof of ``key`` (or ``proof``)."""
        hdrs = Headers(list(headers))
        if proof is None and key is not None:
            proof = await self.dpop(key, TOKEN, nonce=nonce)
        if proof is not None:
            hdrs = hdrs.with_header("DPoP", proof)
        return await self.send(HttpRequest.form("POST", TOKEN, form, hdrs))

    async def redeem(
        self, code: str, key: LocalSigner | None, *, proof: str | None = None, **extra: str
    ) -> HttpResponse:
        """A pre-authorized code token request."""
        form = {"grant_type": PRE_AUTHORIZED_CODE_GRANT, "pre-authorized_code": code, **extra}
        return await self.token_request(form, key, proof=proof)

    async def access_token(self, key: LocalSigner) -> str:
        """A DPoP-bound access token for ``key`` (pre-authorized flow)."""
        response = await self.redeem(await self.pre_auth_code(), key)
        assert response.status == 200, response.body
        return str(response.json_body()["access_token"])

    # -- nonces, proofs, credentials -------------------------------------------------------

    async def c_nonce(self) -> str:
        """A fresh ``c_nonce`` from the nonce endpoint."""
        response = await self.send(HttpRequest(method="POST", url=NONCE))
        assert response.status == 200, response.body
        return str(response.json_body()["c_nonce"])

    async def key_proof(
        self,
        holder: LocalSigner,
        nonce: str | None,
        *,
        header: Mapping[str, Any] | None = None,
        claims: Mapping[str, Any] | None = None,
        drop: Sequence[str] = (),
    ) -> str:
        """A ``jwt`` key proof by ``holder`` (``header``/``claims`` override, ``drop`` removes)."""
        hdr: dict[str, Any] = {"typ": PROOF_TYP, "jwk": holder.public_jwk}
        body: dict[str, Any] = {"aud": ISSUER, "iat": int(self.clock())}
        if nonce is not None:
            body["nonce"] = nonce
        hdr.update(header or {})
        body.update(claims or {})
        for name in drop:
            hdr.pop(name, None)
            body.pop(name, None)
        return await create_jws(holder, body, hdr)

    async def credential(
        self,
        token: str,
        key: LocalSigner,
        body: Mapping[str, Any] | bytes,
        *,
        url: str = CREDENTIAL,
        proof: str | None = None,
        headers: Sequence[tuple[str, str]] = (),
        scheme: str = "DPoP",
        content_type: str = "application/json",
        dpop_nonce: str | None = None,
    ) -> HttpResponse:
        """POST ``body`` to a protected endpoint with ``token`` and a DPoP proof of ``key``."""
        if proof is None:
            proof = await self.dpop(key, url, access_token=token, nonce=dpop_nonce)
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        hdrs = Headers(
            [
                ("Content-Type", content_type),
                ("Authorization", f"{scheme} {token}"),
                ("DPoP", proof),
                *headers,
            ]
        )
        return await self.send(HttpRequest(method="POST", url=url, headers=hdrs, body=raw))

    async def issue(self, token: str, key: LocalSigner, proofs: Sequence[str]) -> HttpResponse:
        """A V1 credential request for ``pid`` with ``proofs``."""
        body = {"credential_configuration_id": "pid", "proofs": {"jwt": list(proofs)}}
        return await self.credential(token, key, body)

    async def nonce_works(self, nonce: str, token: str, key: LocalSigner) -> bool:
        """True when a fresh, valid credential request with ``nonce`` is answered 200."""
        holder = LocalSigner.generate()
        response = await self.issue(token, key, [await self.key_proof(holder, nonce)])
        return response.status == 200

    # -- authorization code flow -----------------------------------------------------------

    def authorization_params(
        self, verifier: str, *, dpop_jkt: str | None = None, **extra: str
    ) -> dict[str, str]:
        """The parameters of an authorization request for ``pid``."""
        params = {
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT,
            "scope": "pid",
            "state": "st-1",
            "code_challenge": code_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if dpop_jkt is not None:
            params["dpop_jkt"] = dpop_jkt
        params.update(extra)
        return params

    async def authorize(self, params: Mapping[str, str]) -> HttpResponse:
        """GET the authorization endpoint with ``params``."""
        return await self.send(HttpRequest(method="GET", url=f"{AUTHORIZE}?{urlencode(params)}"))

    async def authorization_code(
        self, verifier: str | None = None, *, dpop_jkt: str | None = None
    ) -> tuple[str, str]:
        """Run the front channel; returns ``(code, verifier)``."""
        verifier = verifier or generate_code_verifier()
        response = await self.authorize(self.authorization_params(verifier, dpop_jkt=dpop_jkt))
        assert response.status == 303, response.body
        return redirect_query(response)["code"], verifier

    async def redeem_code(
        self,
        code: str,
        verifier: str,
        key: LocalSigner | None,
        /,
        **overrides: str,
    ) -> HttpResponse:
        """An authorization code token request."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": REDIRECT,
            "client_id": CLIENT_ID,
            **overrides,
        }
        return await self.token_request(form, key)

    async def par(
        self, params: Mapping[str, str], *, headers: Sequence[tuple[str, str]] = ()
    ) -> HttpResponse:
        """POST ``params`` to the PAR endpoint."""
        return await self.send(HttpRequest.form("POST", PAR, params, Headers(list(headers))))


def redirect_query(response: HttpResponse) -> dict[str, str]:
    """The query parameters of a redirect's ``Location``."""
    location = response.headers.get("Location")
    assert location is not None
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def assert_error(
    response: HttpResponse,
    status: int,
    error: str,
    *,
    www_authenticate: bool = False,
    dpop_nonce: bool = False,
) -> dict[str, Any]:
    """Check an error response exactly: status, JSON ``error``, ``no-store`` and headers.

    ``www_authenticate`` expects ``WWW-Authenticate: DPoP error="…", error_description="…",
    algs="ES256 ES384 EdDSA"`` (otherwise the header must be absent); ``dpop_nonce`` expects a
    ``DPoP-Nonce`` header (otherwise it must be absent).
    """
    assert response.status == status, (response.status, response.body)
    assert response.headers.get("Cache-Control") == "no-store"
    assert response.media_type == "application/json"
    body = response.json_body()
    assert body["error"] == error, body
    assert "access_token" not in body
    assert "credentials" not in body and "credential" not in body
    challenge = response.headers.get("WWW-Authenticate")
    if www_authenticate:
        description = body.get("error_description")
        expected = f'DPoP error="{error}"'
        if description:
            expected += f', error_description="{description}"'
        assert challenge == f"{expected}, {DPOP_ALGS}", challenge
    else:
        assert challenge is None, challenge
    if dpop_nonce:
        assert response.headers.get("DPoP-Nonce")
    else:
        assert response.headers.get("DPoP-Nonce") is None
    return body


def unsigned_jws(header: Mapping[str, Any], payload: Mapping[str, Any], signature: bytes) -> str:
    """A compact JWS with the given parts (no real signing)."""
    h = b64url_encode(json.dumps(dict(header)).encode())
    p = b64url_encode(json.dumps(dict(payload)).encode())
    return f"{h}.{p}.{b64url_encode(signature)}"


def hs256_jws(header: Mapping[str, Any], payload: Mapping[str, Any], secret: bytes) -> str:
    """A compact JWS MACed with HS256 under ``secret``."""
    hdr = {**header, "alg": "HS256"}
    h = b64url_encode(json.dumps(hdr).encode())
    p = b64url_encode(json.dumps(dict(payload)).encode())
    mac = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64url_encode(mac)}"


__all__ = [
    "AUTHORIZE",
    "CLIENT_ID",
    "CREDENTIAL",
    "DEFERRED",
    "DPOP_ALGS",
    "FORM_CONTENT_TYPE",
    "ISSUER",
    "NONCE",
    "NOTIFICATION",
    "PAR",
    "PROOF_TYP",
    "REDIRECT",
    "TOKEN",
    "TX_CODE",
    "CountingClaims",
    "Env",
    "RecordingStore",
    "approve",
    "assert_error",
    "hs256_jws",
    "make_config",
    "redirect_query",
    "unsigned_jws",
]
