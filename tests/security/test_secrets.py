"""Secrets stay out of logs, exception messages and reprs.

Full issuances (pre-authorized with a tx_code, authorization code with PAR) and many failures
run with every logger at DEBUG; then no access token, pre-authorized code, authorization
code, tx_code, c_nonce, DPoP nonce or private key material (``"d":`` of a JWK, or its value)
may appear in the captured log text, in ``str``/``repr`` of the exceptions the helpers raise
(and their causes), in the reprs of configuration, results and requests, or in the body and
headers of any error response.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from oid4vci._wire import record_from_json
from oid4vci.errors import Oid4vciError, ProtocolError
from oid4vci.http import Headers, HttpRequest, HttpResponse
from oid4vci.issuer import (
    TxCodeSpec,
    handle_credential,
    parse_credential_request,
    parse_par_request,
    parse_token_request,
    verify_access_token,
    verify_dpop_proof,
)
from oid4vci.issuer.access_token import TokenContext
from oid4vci.issuer.offers import OfferOptions, OfferRecord
from oid4vci.issuer.proof import ProofOptions, verify_proof_jwts
from oid4vci.issuer.store_keys import access_token_key, authorization_code_key
from oid4vci.issuer.token import (
    AUTHORIZATION_CODE_GRANT,
    AuthorizationCodeRecord,
    PreAuthorizedCodeRecord,
    TokenRequest,
    verify_authorization_code,
    verify_pre_authorized_code,
)
from oid4vci.jose import LocalSigner
from oid4vci.models import (
    PRE_AUTHORIZED_CODE_GRANT,
    credential_offer_to_json,
    parse_token_response,
)
from oid4vci.pkce import generate_code_verifier
from tests.conftest import FakeClock
from tests.security.support import (
    AUTHORIZE,
    CLIENT_ID,
    CREDENTIAL,
    ISSUER,
    NONCE,
    TOKEN,
    TX_CODE,
    Env,
    redirect_query,
)


class Secrets:
    """Every secret value seen during a run."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, *values: object) -> None:
        for value in values:
            if isinstance(value, str) and len(value) >= 6:
                self.values.add(value)

    def add_key(self, key: LocalSigner) -> None:
        self.add(str(key.private_jwk()["d"]))

    def found_in(self, text: str) -> list[str]:
        leaks = [value for value in self.values if value in text]
        if '"d":' in text or "'d':" in text:
            leaks.append('"d":')
        return leaks


class Run:
    """Drives an issuer and records every secret, exception, response and repr."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.secrets = Secrets()
        self.exceptions: list[BaseException] = []
        self.error_responses: list[HttpResponse] = []
        self.objects: list[object] = [env.config, env.issuer, env.store, env.config.store]
        self.secrets.add_key(env.config.credential_signer)  # type: ignore[arg-type]
        self.secrets.add(TX_CODE)

    def key(self) -> LocalSigner:
        key = LocalSigner.generate()
        self.secrets.add_key(key)
        self.objects.append(key)
        return key

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.objects.extend([request, request.headers])
        response = await self.env.send(request)
        self.objects.append(response)
        if "Location" not in response.headers:
            # (a redirect's Location carries the code: see test_redirect_headers_repr_*)
            self.objects.append(response.headers)
        if response.status >= 400:
            self.error_responses.append(response)
        if response.media_type == "application/json" and response.body:
            body = response.json_body()
            for name in ("access_token", "c_nonce", "refresh_token"):
                self.secrets.add(body.get(name))
            if "access_token" in body:
                parsed = parse_token_response(body)
                self.objects.append(parsed)
        self.secrets.add(response.headers.get("DPoP-Nonce"))
        location = response.headers.get("Location")
        if location:
            self.secrets.add(redirect_query(response).get("code"))
        return response

    async def expect_raise(self, call: Any) -> None:
        with pytest.raises(Oid4vciError) as info:
            await call
        self.exceptions.append(info.value)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


async def full_run(run: Run, clock: FakeClock) -> None:
    env = run.env
    # -- pre-authorized flow with a tx_code ----------------------------------------------
    created = await env.issuer.create_pre_authorized_offer(
        configuration_ids=["pid"],
        subject="alice",
        tx_code=TxCodeSpec(length=6, value=TX_CODE),
    )
    run.objects.extend([created, created.offer])
    run.secrets.add(created.pre_authorized_code, created.offer_uri)
    code = str(created.pre_authorized_code)
    key = run.key()
    form = {"grant_type": PRE_AUTHORIZED_CODE_GRANT, "pre-authorized_code": code}
    # failures first: wrong tx_code, replayed DPoP, bad form
    proof = await env.dpop(key, TOKEN)
    await run.send(HttpRequest.form("POST", TOKEN, {**form, "tx_code": "000000"}, {"DPoP": proof}))
    await run.send(HttpRequest.form("POST", TOKEN, {**form, "tx_code": TX_CODE}, {"DPoP": proof}))
    await run.send(
        HttpRequest(
            method="POST",
            url=TOKEN,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=f"pre-authorized_code={code}&pre-authorized_code={code}&tx_code={TX_CODE}\xff",
        )
    )
    response = await run.send(
        HttpRequest.form(
            "POST", TOKEN, {**form, "tx_code": TX_CODE}, {"DPoP": await env.dpop(key, TOKEN)}
        )
    )
    assert response.status == 200, response.body
    token = str(response.json_body()["access_token"])
    context = record_from_json(await env.store.get(access_token_key(token)), TokenContext)
    assert context is not None
    run.objects.append(context)
    # redeem again (reuse)
    await run.send(
        HttpRequest.form(
            "POST", TOKEN, {**form, "tx_code": TX_CODE}, {"DPoP": await env.dpop(key, TOKEN)}
        )
    )
    # -- credential: failures then success -------------------------------------------------
    nonce_response = await run.send(HttpRequest(method="POST", url=NONCE))
    nonce = str(nonce_response.json_body()["c_nonce"])
    holder = run.key()
    good = await env.key_proof(holder, nonce)
    body = {"credential_configuration_id": "pid", "proofs": {"jwt": [good]}}
    for bad_headers in (
        {"Authorization": f"Bearer {token}"},
        {"Authorization": f"DPoP {token}", "DPoP": await env.dpop(key, TOKEN)},
        {"Authorization": f"DPoP {token}x", "DPoP": await env.dpop(key, CREDENTIAL)},
        {"Authorization": f"DPoP {token}"},
    ):
        await run.send(HttpRequest.json("POST", CREDENTIAL, body, bad_headers))
    stale = await env.key_proof(holder, nonce, claims={"iat": int(clock()) - 1000})
    bad_body = {"credential_configuration_id": "pid", "proofs": {"jwt": [stale]}}
    headers = {
        "Authorization": f"DPoP {token}",
        "DPoP": await env.dpop(key, CREDENTIAL, access_token=token),
    }
    await run.send(HttpRequest.json("POST", CREDENTIAL, bad_body, headers))
    private = await env.key_proof(holder, nonce, header={"jwk": holder.private_jwk()})
    headers["DPoP"] = await env.dpop(key, CREDENTIAL, access_token=token)
    await run.send(
        HttpRequest.json(
            "POST",
            CREDENTIAL,
            {"credential_configuration_id": "pid", "proofs": {"jwt": [private]}},
            headers,
        )
    )
    headers["DPoP"] = await env.dpop(key, CREDENTIAL, access_token=token)
    request = HttpRequest.json("POST", CREDENTIAL, body, headers)
    run.objects.append(parse_credential_request(request, env.config, context=context))
    response = await run.send(request)
    assert response.status == 200, response.body
    # the c_nonce again
    headers["DPoP"] = await env.dpop(key, CREDENTIAL, access_token=token)
    await run.send(HttpRequest.json("POST", CREDENTIAL, body, headers))

    # -- helpers that raise -----------------------------------------------------------------
    await run.expect_raise(
        verify_pre_authorized_code(_token_request({**form, "tx_code": TX_CODE}), env.config)
    )
    second = await env.pre_auth_code(tx_code=True)
    run.secrets.add(second)
    await run.expect_raise(
        verify_pre_authorized_code(
            _token_request(
                {
                    "grant_type": PRE_AUTHORIZED_CODE_GRANT,
                    "pre-authorized_code": second,
                    "tx_code": "12345678",
                }
            ),
            env.config,
        )
    )
    await run.expect_raise(
        verify_access_token(
            HttpRequest.json(
                "POST",
                CREDENTIAL,
                body,
                {"Authorization": f"DPoP {token}", "DPoP": await env.dpop(key, CREDENTIAL)},
            ),
            env.config,
            htu=CREDENTIAL,
        )
    )
    await run.expect_raise(
        verify_access_token(
            HttpRequest.json("POST", CREDENTIAL, body, {"Authorization": f"Bearer {token}"}),
            env.config,
        )
    )
    replayed = await env.dpop(key, CREDENTIAL, access_token=token)
    headers = {"Authorization": f"DPoP {token}", "DPoP": replayed}
    await verify_access_token(HttpRequest.json("POST", CREDENTIAL, body, headers), env.config)
    await run.expect_raise(
        verify_dpop_proof(
            HttpRequest.json("POST", CREDENTIAL, body, headers),
            env.config,
            access_token=token,
        )
    )
    headers["DPoP"] = await env.dpop(key, CREDENTIAL, access_token=token)
    # handle_* answer errors instead of raising them: the answer is checked for secrets
    answered = await handle_credential(
        HttpRequest.json("POST", CREDENTIAL, body, headers), env.config
    )
    assert answered.status >= 400
    run.error_responses.append(answered)
    await run.expect_raise(
        verify_proof_jwts(
            [good],
            ProofOptions(audience=ISSUER, algorithms=("ES256",), clock=clock),
            consume_nonce=lambda n: _false(n),
        )
    )
    with pytest.raises(ProtocolError) as info:
        parse_token_request(
            HttpRequest(
                method="POST",
                url=TOKEN,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                body=f"pre-authorized_code={code}&pre-authorized_code={code}",
            ),
            env.config,
        )
    run.exceptions.append(info.value)
    run.objects.append(
        parse_token_request(
            HttpRequest.form("POST", TOKEN, {**form, "tx_code": TX_CODE}), env.config
        )
    )
    run.objects.append(
        PreAuthorizedCodeRecord(subject="alice", configuration_ids=("pid",), tx_code=TX_CODE)
    )

    # -- authorization code flow with PAR --------------------------------------------------
    verifier = generate_code_verifier()
    run.secrets.add(verifier)
    params = env.authorization_params(verifier)
    pushed = HttpRequest.form(
        "POST", ISSUER + "/par", params, {"DPoP": await env.dpop(key, ISSUER + "/par")}
    )
    run.objects.append(parse_par_request(pushed, env.config))
    par = await run.send(pushed)
    request_uri = str(par.json_body()["request_uri"])
    run.secrets.add(request_uri)
    redirect = await run.send(
        HttpRequest(
            method="GET",
            url=f"{AUTHORIZE}?{urlencode({'client_id': CLIENT_ID, 'request_uri': request_uri})}",
        )
    )
    auth_code = redirect_query(redirect)["code"]
    grant = record_from_json(
        await env.store.get(authorization_code_key(auth_code)), AuthorizationCodeRecord
    )
    assert grant is not None
    run.objects.append(grant)
    await run.send(
        HttpRequest(
            method="GET",
            url=f"{AUTHORIZE}?{urlencode({'client_id': CLIENT_ID, 'request_uri': request_uri})}",
        )
    )
    wrong = await env.redeem_code(auth_code, "W" * 64, key)
    run.error_responses.append(wrong)
    await run.expect_raise(
        verify_authorization_code(
            _token_request(
                {
                    "code": auth_code,
                    "client_id": CLIENT_ID,
                    "code_verifier": verifier,
                    "redirect_uri": "https://evil.example/cb",
                }
            ),
            env.config,
            None,
        )
    )


def _token_request(params: dict[str, str]) -> TokenRequest:
    return TokenRequest(
        grant_type=params.get("grant_type", AUTHORIZATION_CODE_GRANT),
        params=params,
        request=HttpRequest(method="POST", url=TOKEN),
    )


async def _false(value: str) -> bool:
    return False


def check(run: Run, caplog: pytest.LogCaptureFixture) -> None:
    leaks: list[tuple[str, list[str]]] = []
    log_text = caplog.text + "\n".join(
        f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records
    )
    leaks.append(("logs", run.secrets.found_in(log_text)))
    for exc in run.exceptions:
        for item in _chain(exc):
            text = f"{item!s} {item!r} {item.args!r}"
            if isinstance(item, ProtocolError):
                text += f" {item.error_description}"
            leaks.append((f"exception {type(item).__name__}", run.secrets.found_in(text)))
    for response in run.error_responses:
        headers = Headers([(k, v) for k, v in response.headers.multi_items() if k != "DPoP-Nonce"])
        text = response.body.decode("utf-8", "replace") + repr(headers.to_dict())
        leaks.append((f"error response {response.status}", run.secrets.found_in(text)))
    for obj in run.objects:
        text = f"{obj!r} {obj!s}"
        leaks.append((f"repr of {type(obj).__name__}", run.secrets.found_in(text)))
    found = [(where, what) for where, what in leaks if what]
    assert not found, found
    assert run.exceptions and run.error_responses and caplog.records
    assert len(run.secrets.values) >= 12


async def test_no_secrets_anywhere(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="oid4vci")
    env = Env(clock)
    run = Run(env)
    await full_run(run, clock)

    # A crash inside the issuer: 500 with no details, logged.
    async def crash(subject: str, configuration_id: str) -> Any:
        raise RuntimeError("claims backend down")

    crashing = Env(clock, claims_source=crash)
    run.env = crashing
    key = run.key()
    token_response = await run.send(
        HttpRequest.form(
            "POST",
            TOKEN,
            {
                "grant_type": PRE_AUTHORIZED_CODE_GRANT,
                "pre-authorized_code": await crashing.pre_auth_code(),
            },
            {"DPoP": await crashing.dpop(key, TOKEN)},
        )
    )
    token = str(token_response.json_body()["access_token"])
    nonce = await crashing.c_nonce()
    run.secrets.add(nonce)
    response = await crashing.issue(token, key, [await crashing.key_proof(run.key(), nonce)])
    assert response.status == 500
    assert response.json_body() == {"error": "server_error"}
    run.error_responses.append(response)
    assert any("RuntimeError" in r.getMessage() for r in caplog.records)
    check(run, caplog)


async def test_verified_proof_repr_hides_the_c_nonce(clock: FakeClock) -> None:
    env = Env(clock)
    nonce = await env.c_nonce()
    proof = await env.key_proof(LocalSigner.generate(), nonce)
    options = ProofOptions(audience=ISSUER, algorithms=("ES256",), clock=clock)
    verified = await verify_proof_jwts([proof], options)
    assert nonce not in repr(verified[0])


async def test_redirect_headers_repr_hides_the_code(clock: FakeClock) -> None:
    env = Env(clock)
    verifier = generate_code_verifier()
    response = await env.authorize(env.authorization_params(verifier))
    code = redirect_query(response)["code"]
    assert code not in repr(response)
    assert code not in repr(response.headers)


async def test_offer_record_repr_hides_the_pre_authorized_code(clock: FakeClock) -> None:
    """The record of an offer by reference holds the offer JSON, pre-authorized code included
    (a bearer secret, OID4VCI 1.0 §13.6): its repr names configurations and grants only."""
    env = Env(clock)
    created = await env.issuer.create_pre_authorized_offer(
        configuration_ids=["pid"], subject="alice", options=OfferOptions(by_reference=True)
    )
    code = created.pre_authorized_code
    assert code is not None
    record = OfferRecord(offer=credential_offer_to_json(created.offer))
    assert code not in repr(record)
    assert "pid" in repr(record) and "pre-authorized_code" in repr(record)
