"""Small in-memory fake issuers (issuer + AS in one origin) speaking one spec version each.

Deliberately independent from ``oid4vci.issuer``: the wallet is tested against these fakes,
whose behaviour each test can bend (inject answers, require DPoP nonces, mint bad credentials).

* D13: appended metadata URL, ``vc+sd-jwt``, ``c_nonce`` in token/credential responses,
  singular ``proof``, ``credential`` response, ``issuance_pending`` for deferred.
* D14: like D13 with ``batch_credential_issuance``, ``proofs`` and ``credentials`` of strings.
* D15: nonce endpoint, ``dc+sd-jwt``, ``credentials`` of objects.
* V1: inserted metadata URL, nonce endpoint, ``proofs`` only, 202 + ``interval`` deferred.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import attrs

from oid4vci.dpop import verify_dpop_jwt
from oid4vci.errors import DpopError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.jose import LocalSigner, decode_jws, jwk_thumbprint, verify_jws
from oid4vci.models import (
    CredentialResponse,
    IssuedCredential,
    credential_response_to_json,
    parse_credential_request_json,
)
from oid4vci.pkce import code_challenge
from oid4vci.sdjwt import issue_sd_jwt_vc, make_disclosure, sd
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.urls import append_well_known, insert_well_known
from oid4vci.versions import SpecVersion

ISSUER = "https://issuer.example"
VCT = "https://credentials.example.com/identity_credential"
CONFIG_ID = "IdentityCredential"
PRE_AUTH_CODE = "pre-auth-code-123"
CLIENT_ID = "wallet-client"
REDIRECT_URI = "https://wallet.example.org/cb"

D13, D14, D15, V1 = (
    SpecVersion.DRAFT_13,
    SpecVersion.DRAFT_14,
    SpecVersion.DRAFT_15,
    SpecVersion.V1,
)
ALL_VERSIONS = (D13, D14, D15, V1)


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> HttpResponse:
    """A JSON answer with ``Cache-Control: no-store``."""
    return HttpResponse.json(status, body, headers={"Cache-Control": "no-store", **(headers or {})})


def error(
    status: int, code: str, headers: dict[str, str] | None = None, **extra: Any
) -> HttpResponse:
    """An OAuth-style error answer."""
    return json_response(status, {"error": code, **extra}, headers)


@attrs.define
class FakeIssuer:
    """A configurable fake Credential Issuer that is also its own authorization server."""

    version: SpecVersion = V1
    issuer: str = ISSUER
    clock: Callable[[], float] | None = None
    dpop: bool = True
    batch_size: int | None = None
    nonce_endpoint: bool | None = None
    deferred_polls: int | None = None  # None: immediate; n: pending n times before delivery
    tx_code: dict[str, Any] | None = None
    expected_tx_code: str | None = None
    par: bool = True
    require_par: bool = False
    iss_parameter: bool = True
    require_dpop_nonce_as: bool = False
    require_dpop_nonce_rs: bool = False
    always_use_dpop_nonce: bool = False
    metadata_at: str = "auto"  # "auto" | "inserted" | "appended"
    datasets: int = 1  # credential_identifiers returned per authorized configuration
    as_metadata_at: str = "oauth"  # "oauth" | "openid"
    credential_mode: str = "good"  # good|bad_signature|stray_disclosure|wrong_cnf|wrong_vct|expired
    metadata_overrides: dict[str, Any] = attrs.field(factory=dict)
    as_overrides: dict[str, Any] = attrs.field(factory=dict)
    # state
    key: LocalSigner = attrs.field(factory=lambda: LocalSigner.generate("ES256", kid="issuer-key"))
    requests: list[HttpRequest] = attrs.field(factory=list)
    inject: dict[str, list[HttpResponse]] = attrs.field(factory=dict)
    c_nonces: set[str] = attrs.field(factory=set)
    dpop_nonces: set[str] = attrs.field(factory=set)
    tokens: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    codes: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    par_requests: dict[str, dict[str, str]] = attrs.field(factory=dict)
    transactions: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    notifications: list[dict[str, Any]] = attrs.field(factory=list)
    pre_auth_used: bool = False

    # --- helpers ------------------------------------------------------------------------------

    def now(self) -> float:
        import time

        return self.clock() if self.clock is not None else time.time()

    @property
    def has_nonce_endpoint(self) -> bool:
        if self.nonce_endpoint is not None:
            return self.nonce_endpoint
        return self.version.has_nonce_endpoint

    def url(self, path: str) -> str:
        return self.issuer.rstrip("/") + path

    def transport(self) -> InMemoryTransport:
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(self.issuer))
        return InMemoryTransport(routes={origin: self.handle})

    def paths(self, suffix: str) -> list[str]:
        return [r.url for r in self.requests if urlsplit(r.url).path.endswith(suffix)]

    def count(self, suffix: str) -> int:
        return len(self.paths(suffix))

    def offer(
        self, *, pre_authorized: bool = True, issuer_state: str | None = None
    ) -> dict[str, Any]:
        grants: dict[str, Any] = {}
        if pre_authorized:
            grant: dict[str, Any] = {"pre-authorized_code": PRE_AUTH_CODE}
            if self.tx_code is not None:
                grant["tx_code"] = self.tx_code
            grants["urn:ietf:params:oauth:grant-type:pre-authorized_code"] = grant
        else:
            grants["authorization_code"] = {"issuer_state": issuer_state or "issuer-state-1"}
        return {
            "credential_issuer": self.issuer,
            "credential_configuration_ids": [CONFIG_ID],
            "grants": grants,
        }

    def issuer_metadata(self) -> dict[str, Any]:
        v = self.version
        config: dict[str, Any] = {
            "format": v.sd_jwt_format,
            "vct": VCT,
            "scope": "identity",
            "cryptographic_binding_methods_supported": ["jwk"],
            "credential_signing_alg_values_supported": ["ES256"],
            "proof_types_supported": {"jwt": {"proof_signing_alg_values_supported": ["ES256"]}},
        }
        if v in (D13, D14):
            config["claims"] = {"given_name": {}, "family_name": {}}
        elif v is D15:
            config["claims"] = [{"path": ["given_name"]}, {"path": ["family_name"]}]
        else:
            config["credential_metadata"] = {
                "claims": [{"path": ["given_name"]}, {"path": ["family_name"]}]
            }
        meta: dict[str, Any] = {
            "credential_issuer": self.issuer,
            "credential_endpoint": self.url("/credential"),
            "deferred_credential_endpoint": self.url("/deferred"),
            "notification_endpoint": self.url("/notification"),
            "credential_configurations_supported": {CONFIG_ID: config},
        }
        if self.has_nonce_endpoint:
            meta["nonce_endpoint"] = self.url("/nonce")
        if self.batch_size is not None:
            meta["batch_credential_issuance"] = {"batch_size": self.batch_size}
        if v is D13:
            meta["credential_identifiers_supported"] = False
        meta.update(self.metadata_overrides)
        return meta

    def as_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "issuer": self.issuer,
            "authorization_endpoint": self.url("/authorize"),
            "token_endpoint": self.url("/token"),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": [
                "authorization_code",
                "urn:ietf:params:oauth:grant-type:pre-authorized_code",
            ],
            "pre-authorized_grant_anonymous_access_supported": True,
            "authorization_response_iss_parameter_supported": self.iss_parameter,
        }
        if self.par:
            meta["pushed_authorization_request_endpoint"] = self.url("/par")
            meta["require_pushed_authorization_requests"] = self.require_par
        if self.dpop:
            meta["dpop_signing_alg_values_supported"] = ["ES256"]
        meta.update(self.as_overrides)
        return meta

    # --- routing ------------------------------------------------------------------------------

    async def handle(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        parts = urlsplit(request.url)
        path = parts.path
        queue = self.inject.get(path)
        if queue:
            return queue.pop(0)
        issuer_inserted = urlsplit(insert_well_known(self.issuer, "openid-credential-issuer")).path
        issuer_appended = urlsplit(append_well_known(self.issuer, "openid-credential-issuer")).path
        where = self.metadata_at
        if where == "auto":
            where = "inserted" if self.version is V1 else "appended"
        if request.method == "GET":
            if (where == "inserted" and path == issuer_inserted) or (
                where == "appended" and path == issuer_appended
            ):
                return json_response(200, self.issuer_metadata())
            if (
                self.as_metadata_at == "oauth"
                and path
                == urlsplit(insert_well_known(self.issuer, "oauth-authorization-server")).path
            ):
                return json_response(200, self.as_metadata())
            if (
                self.as_metadata_at == "openid"
                and path == urlsplit(append_well_known(self.issuer, "openid-configuration")).path
            ):
                return json_response(200, self.as_metadata())
            if path == urlsplit(insert_well_known(self.issuer, "jwt-vc-issuer")).path:
                return json_response(
                    200, {"issuer": self.issuer, "jwks": {"keys": [self.key.public_jwk]}}
                )
            return json_response(404, {"error": "not_found"})
        base = urlsplit(self.issuer).path.rstrip("/")
        route = path[len(base) :] if path.startswith(base) else path
        handlers = {
            "/token": self._token,
            "/par": self._par,
            "/nonce": self._nonce,
            "/credential": self._credential,
            "/deferred": self._deferred,
            "/notification": self._notification,
        }
        handler = handlers.get(route)
        if handler is None:
            return json_response(404, {"error": "not_found"})
        return await handler(request)

    # --- DPoP ---------------------------------------------------------------------------------

    def _new_dpop_nonce(self) -> str:
        nonce = secrets.token_urlsafe(8)
        self.dpop_nonces.add(nonce)
        return nonce

    async def _check_dpop(
        self,
        request: HttpRequest,
        *,
        resource: bool,
        access_token: str | None = None,
        expected_jkt: str | None = None,
    ) -> str | HttpResponse | None:
        """The proof's jkt, None without a proof, or the error answer."""
        if request.headers.get("DPoP") is None:
            return None
        need_nonce = self.require_dpop_nonce_rs if resource else self.require_dpop_nonce_as

        async def check(nonce: str) -> bool:
            return nonce in self.dpop_nonces and not self.always_use_dpop_nonce

        async def new() -> str:
            return self._new_dpop_nonce()

        try:
            proof = await verify_dpop_jwt(
                request,
                access_token=access_token,
                expected_jkt=expected_jkt,
                nonce_required=need_nonce,
                check_nonce=check,
                new_nonce=new,
                clock=self.now,
            )
        except DpopError as err:
            headers = {"DPoP-Nonce": err.dpop_nonce} if err.dpop_nonce else {}
            if resource:
                headers["WWW-Authenticate"] = f'DPoP error="{err.error}", algs="ES256"'
                return (
                    json_response(401, {}, headers)
                    if err.dpop_nonce
                    else error(401, err.error, headers)
                )
            return error(400, err.error, headers)
        return proof.jkt

    # --- endpoints ----------------------------------------------------------------------------

    async def _par(self, request: HttpRequest) -> HttpResponse:
        params = request.form_body()
        jkt = await self._check_dpop(request, resource=False)
        if isinstance(jkt, HttpResponse):
            return jkt
        if jkt is not None and params.get("dpop_jkt") not in (None, jkt):
            return error(400, "invalid_request")
        if jkt is not None:
            params["dpop_jkt"] = jkt
        uri = "urn:ietf:params:oauth:request_uri:" + secrets.token_urlsafe(8)
        self.par_requests[uri] = params
        return json_response(201, {"request_uri": uri, "expires_in": 60})

    def approve(self, authorization_url: str, *, with_iss: bool | None = None) -> str:
        """Play user + AS front channel: return the redirect URL with code and state."""
        query = dict(parse_qsl(urlsplit(authorization_url).query))
        if "request_uri" in query:
            params = self.par_requests.pop(query["request_uri"])
        else:
            if self.require_par:
                raise AssertionError("PAR required")
            params = query
        code = "code-" + secrets.token_urlsafe(8)
        self.codes[code] = params
        out = {"code": code, "state": params["state"]}
        if with_iss if with_iss is not None else self.iss_parameter:
            out["iss"] = self.issuer
        return f"{params['redirect_uri']}?{urlencode(out)}"

    async def _token(self, request: HttpRequest) -> HttpResponse:
        form = request.form_body()
        grant = form.get("grant_type")
        expected_jkt: str | None = None
        details: Any = None
        if grant == "authorization_code":
            params = self.codes.pop(form.get("code", ""), None)
            if params is None:
                return error(400, "invalid_grant")
            if form.get("code_verifier") is None or code_challenge(
                form["code_verifier"]
            ) != params.get("code_challenge"):
                return error(400, "invalid_grant", error_description="PKCE")
            if form.get("redirect_uri") != params.get("redirect_uri"):
                return error(400, "invalid_grant")
            expected_jkt = params.get("dpop_jkt")
            if "authorization_details" in params:
                details = json.loads(params["authorization_details"])
        elif grant == "urn:ietf:params:oauth:grant-type:pre-authorized_code":
            if form.get("pre-authorized_code") != PRE_AUTH_CODE or self.pre_auth_used:
                return error(400, "invalid_grant")
            if self.tx_code is not None and form.get("tx_code") != self.expected_tx_code:
                return error(400, "invalid_grant")
        else:
            return error(400, "unsupported_grant_type")
        jkt = await self._check_dpop(request, resource=False, expected_jkt=expected_jkt)
        if isinstance(jkt, HttpResponse):
            return jkt
        if expected_jkt is not None and jkt is None:
            return error(400, "invalid_dpop_proof")
        if grant != "authorization_code":
            self.pre_auth_used = True
        token = "at-" + secrets.token_urlsafe(12)
        self.tokens[token] = {"jkt": jkt, "client_id": form.get("client_id")}
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "DPoP" if jkt else "Bearer",
            "expires_in": 300,
        }
        if details is not None:
            body["authorization_details"] = [
                {
                    **d,
                    "credential_identifiers": [
                        f"{d['credential_configuration_id']}-ds{n}"
                        for n in range(1, self.datasets + 1)
                    ],
                }
                for d in details
            ]
        if self.version in (D13, D14):
            nonce = secrets.token_urlsafe(8)
            self.c_nonces.add(nonce)
            body["c_nonce"] = nonce
            body["c_nonce_expires_in"] = 300
        headers = {}
        if self.dpop and jkt:
            headers["DPoP-Nonce"] = self._new_dpop_nonce()
        return json_response(200, body, headers)

    async def _nonce(self, request: HttpRequest) -> HttpResponse:
        if not self.has_nonce_endpoint:
            return json_response(404, {})
        nonce = secrets.token_urlsafe(8)
        self.c_nonces.add(nonce)
        return json_response(200, {"c_nonce": nonce})

    async def _authenticate(
        self, request: HttpRequest
    ) -> tuple[str, dict[str, Any]] | HttpResponse:
        auth = request.headers.get("Authorization") or ""
        scheme, _, token = auth.partition(" ")
        info = self.tokens.get(token)
        if info is None:
            return error(401, "invalid_token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if info["jkt"] is not None:
            if scheme != "DPoP":
                return error(401, "invalid_token")
            jkt = await self._check_dpop(
                request, resource=True, access_token=token, expected_jkt=info["jkt"]
            )
            if isinstance(jkt, HttpResponse):
                return jkt
            if jkt is None:
                return error(401, "invalid_dpop_proof")
        elif scheme != "Bearer":
            return error(401, "invalid_token")
        return token, info

    def _nonce_error(self, code: str) -> HttpResponse:
        if self.version in (D13, D14):
            nonce = secrets.token_urlsafe(8)
            self.c_nonces.add(nonce)
            return error(400, "invalid_proof", c_nonce=nonce, c_nonce_expires_in=300)
        return error(400, code)

    async def _credential(self, request: HttpRequest) -> HttpResponse:
        auth = await self._authenticate(request)
        if isinstance(auth, HttpResponse):
            return auth
        body = request.json_body()
        try:
            req, _version = parse_credential_request_json(body, version=self.version)
        except Exception:
            return error(400, "invalid_credential_request")
        if self.version is D13 and "proof" not in body:
            return error(400, "invalid_credential_request", error_description="D13 needs proof")
        if self.version is V1 and "proof" in body:
            return error(400, "invalid_credential_request")
        if (
            self.version in (D13, D14)
            and "format" not in body
            and "credential_identifier" not in body
        ):
            return error(400, "invalid_credential_request")
        proofs = req.proof_values
        if not proofs:
            return error(400, "invalid_proof")
        limit = self.batch_size or 1
        if len(proofs) > limit:
            return error(400, "invalid_credential_request", error_description="too many proofs")
        holder_jwks: list[dict[str, Any]] = []
        nonce_used: set[str] = set()
        for proof in proofs:
            decoded = decode_jws(proof)
            jwk = decoded.header.get("jwk")
            if not isinstance(jwk, dict):
                return error(400, "invalid_proof")
            try:
                verify_jws(decoded, jwk, algorithms=["ES256"])
            except Exception:
                return error(400, "invalid_proof")
            if decoded.header.get("typ") != "openid4vci-proof+jwt":
                return error(400, "invalid_proof")
            if decoded.payload.get("aud") != self.issuer:
                return error(400, "invalid_proof")
            nonce = decoded.payload.get("nonce")
            if self.has_nonce_endpoint or self.version in (D13, D14):
                if nonce not in self.c_nonces:
                    return self._nonce_error("invalid_nonce")
                nonce_used.add(nonce)
            holder_jwks.append(jwk)
        if len({jwk_thumbprint(j) for j in holder_jwks}) != len(holder_jwks):
            return error(400, "invalid_proof")
        for n in nonce_used:
            self.c_nonces.discard(n)
        if self.deferred_polls is not None:
            tx = "tx-" + secrets.token_urlsafe(8)
            self.transactions[tx] = {"left": self.deferred_polls, "jwks": holder_jwks}
            out: dict[str, Any] = {"transaction_id": tx}
            if self.version is V1:
                out["interval"] = 3
            return json_response(202, out)
        creds = await self.mint(holder_jwks)
        return self._credential_answer(creds)

    def _credential_answer(self, creds: list[str]) -> HttpResponse:
        resp = CredentialResponse(
            credentials=tuple(IssuedCredential(credential=c) for c in creds),
            notification_id="notif-1",
        )
        body = credential_response_to_json(resp, self.version)
        if self.version in (D13, D14):
            nonce = secrets.token_urlsafe(8)
            self.c_nonces.add(nonce)
            body["c_nonce"] = nonce
        return json_response(200, body)

    async def mint(self, holder_jwks: list[dict[str, Any]]) -> list[str]:
        out = []
        mode = self.credential_mode
        for jwk in holder_jwks:
            signer = self.key if mode != "bad_signature" else LocalSigner.generate(kid="issuer-key")
            holder = jwk if mode != "wrong_cnf" else LocalSigner.generate().public_jwk
            now = int(self.now())
            cred = await issue_sd_jwt_vc(
                signer,
                vct=VCT if mode != "wrong_vct" else "urn:other:type",
                claims={"given_name": sd("Erika"), "family_name": sd("Mustermann")},
                holder_jwk=holder,
                issuer=self.issuer,
                typ=self.version.sd_jwt_typ,
                kid="issuer-key",
                iat=now - 10,
                exp=now - 3600 if mode == "expired" else now + 3600,
                clock=self.now,
            )
            if mode == "stray_disclosure":
                disclosure, _ = make_disclosure("c2FsdHNhbHRzYWx0", "extra", "x")
                cred = cred + disclosure + "~"
            out.append(cred)
        return out

    async def _deferred(self, request: HttpRequest) -> HttpResponse:
        auth = await self._authenticate(request)
        if isinstance(auth, HttpResponse):
            return auth
        tx = request.json_body().get("transaction_id")
        entry = self.transactions.get(str(tx))
        if entry is None:
            return error(400, "invalid_transaction_id")
        if entry["left"] > 0:
            entry["left"] -= 1
            if self.version is V1:
                return json_response(202, {"transaction_id": tx, "interval": 2})
            return error(400, "issuance_pending", interval=2)
        del self.transactions[str(tx)]
        return self._credential_answer(await self.mint(entry["jwks"]))

    async def _notification(self, request: HttpRequest) -> HttpResponse:
        auth = await self._authenticate(request)
        if isinstance(auth, HttpResponse):
            return auth
        self.notifications.append(request.json_body())
        return HttpResponse(status=204)
