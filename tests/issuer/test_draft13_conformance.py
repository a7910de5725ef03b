"""What a Draft 13 issuer answers where Draft 13 differs from the later versions.

* ``invalid_proof`` always carries a fresh ``c_nonce`` (Draft 13 §7.3.2): also for a request
  without any proof, which is how a Draft 13 wallet may get its first nonce;
* there is no ``credential_request_denied`` (it first appears in Draft 14):
  ``invalid_credential_request`` instead;
* ``credential_identifiers_supported`` is published, because the token endpoint returns
  ``credential_identifiers`` (Draft 13 §11.2.3: absent means false).
"""

from __future__ import annotations

from typing import Any

from oid4vci.errors import CredentialRequestError, ErrorCode
from oid4vci.http import HttpRequest
from oid4vci.issuer import DeferIssuance
from oid4vci.issuer.deferred import deny_deferred
from oid4vci.issuer.metadata import create_issuer_metadata
from oid4vci.jose import LocalSigner
from oid4vci.versions import SpecVersion
from tests.conftest import FakeClock
from tests.security.support import DEFERRED, ISSUER, Env, assert_error

D13 = SpecVersion.DRAFT_13


async def _session(env: Env) -> tuple[str, LocalSigner, str, str]:
    key = LocalSigner.generate()
    answer = await env.redeem(await env.pre_auth_code(), key)
    assert answer.status == 200, answer.body
    body = answer.json_body()
    vct = env.config.credential_configurations["pid"].vct
    assert vct is not None
    return str(body["access_token"]), key, str(body["c_nonce"]), vct


async def test_invalid_proof_without_any_proof_carries_a_c_nonce(clock: FakeClock) -> None:
    env = Env(clock, published_version=D13)
    token, key, nonce, vct = await _session(env)
    for body in (
        {"format": "vc+sd-jwt", "vct": vct},
        {"format": "vc+sd-jwt", "vct": vct, "proof": {"proof_type": "cwt", "cwt": "x"}},
    ):
        refused = assert_error(await env.credential(token, key, body), 400, "invalid_proof")
        fresh = refused["c_nonce"]
        assert isinstance(fresh, str) and fresh != nonce
        assert refused["c_nonce_expires_in"] == env.config.c_nonce_ttl
        # and it is a nonce this issuer takes
        proof = await env.key_proof(LocalSigner.generate(), fresh)
        ok = {"format": "vc+sd-jwt", "vct": vct, "proof": {"proof_type": "jwt", "jwt": proof}}
        assert (await env.credential(token, key, ok)).status == 200


async def test_a_refusal_is_invalid_credential_request(clock: FakeClock) -> None:
    async def refuse(subject: str, configuration_id: str) -> Any:
        raise CredentialRequestError(ErrorCode.CREDENTIAL_REQUEST_DENIED, "no data")

    env = Env(clock, published_version=D13, claims_source=refuse)
    token, key, nonce, vct = await _session(env)
    proof = await env.key_proof(LocalSigner.generate(), nonce)
    body = {"format": "vc+sd-jwt", "vct": vct, "proof": {"proof_type": "jwt", "jwt": proof}}
    assert_error(await env.credential(token, key, body), 400, "invalid_credential_request")


async def test_a_denied_deferred_transaction_is_invalid_credential_request(
    clock: FakeClock,
) -> None:
    async def defer(subject: str, configuration_id: str) -> Any:
        raise DeferIssuance(interval=5)

    env = Env(clock, published_version=D13, claims_source=defer)
    token, key, nonce, vct = await _session(env)
    proof = await env.key_proof(LocalSigner.generate(), nonce)
    body = {"format": "vc+sd-jwt", "vct": vct, "proof": {"proof_type": "jwt", "jwt": proof}}
    started = await env.credential(token, key, body)
    assert started.status == 202, started.body
    transaction_id = started.json_body()["transaction_id"]
    await deny_deferred(transaction_id, env.config)
    answer = await env.credential(token, key, {"transaction_id": transaction_id}, url=DEFERRED)
    assert_error(answer, 400, "invalid_credential_request")


def test_draft_13_metadata_says_credential_identifiers_are_supported(clock: FakeClock) -> None:
    env = Env(clock, published_version=D13)
    assert create_issuer_metadata(env.config)["credential_identifiers_supported"] is True
    later = create_issuer_metadata(env.config, version=SpecVersion.V1)
    assert "credential_identifiers_supported" not in later


async def test_served_metadata(clock: FakeClock) -> None:
    env = Env(clock, published_version=D13)
    url = f"{ISSUER}/.well-known/openid-credential-issuer"
    served = await env.send(HttpRequest(method="GET", url=url))
    assert served.json_body()["credential_identifiers_supported"] is True
