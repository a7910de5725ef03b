"""Client credentials of a method this server does not support are refused, never ignored.

The token and PAR endpoints authenticate clients by wallet attestation or not at all (public
clients). A request carrying ``client_secret``, a ``client_assertion`` or an ``Authorization``
header must not pass as if those had been checked: ``invalid_client`` (RFC 6749 §5.2), 401 with
a challenge of the scheme used when the ``Authorization`` header carried them, else 400; and the
code it carried is not spent.
"""

from __future__ import annotations

import base64

import pytest

from oid4vci.http import HttpResponse
from oid4vci.jose import LocalSigner
from oid4vci.models import PRE_AUTHORIZED_CODE_GRANT
from oid4vci.pkce import generate_code_verifier
from tests.conftest import FakeClock
from tests.security.support import CLIENT_ID, REDIRECT, Env

BASIC = "Basic " + base64.b64encode(b"other-client:secret").decode()
CREDENTIALS = [
    ({"client_secret": "secret"}, (), 400, None),
    (
        {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": "not.a.jwt",
        },
        (),
        400,
        None,
    ),
    ({}, (("Authorization", BASIC),), 401, "Basic"),
    ({}, (("Authorization", "Bearer abc"),), 401, "Bearer"),
    ({}, (("Authorization", '"no scheme"'),), 401, "Basic"),
]


def _refused(response: HttpResponse, status: int, scheme: str | None) -> None:
    assert response.status == status, response.body
    assert response.json_body()["error"] == "invalid_client"
    challenge = response.headers.get("WWW-Authenticate")
    if scheme is None:
        assert challenge is None
    else:
        assert challenge is not None and challenge.startswith(f"{scheme} ")
        assert 'error="invalid_client"' in challenge
        if scheme == "Basic":  # RFC 7617 §2: realm is required
            assert challenge.startswith('Basic realm="')


@pytest.mark.parametrize(("extra", "headers", "status", "scheme"), CREDENTIALS)
async def test_token_endpoint_pre_authorized(
    clock: FakeClock,
    extra: dict[str, str],
    headers: tuple[tuple[str, str], ...],
    status: int,
    scheme: str | None,
) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code = await env.pre_auth_code()
    form = {"grant_type": PRE_AUTHORIZED_CODE_GRANT, "pre-authorized_code": code, **extra}
    _refused(await env.token_request(form, key, headers=headers), status, scheme)
    # the code was not spent by the refused request
    assert (await env.redeem(code, LocalSigner.generate())).status == 200


@pytest.mark.parametrize(("extra", "headers", "status", "scheme"), CREDENTIALS)
async def test_token_endpoint_authorization_code(
    clock: FakeClock,
    extra: dict[str, str],
    headers: tuple[tuple[str, str], ...],
    status: int,
    scheme: str | None,
) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    code, verifier = await env.authorization_code()
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": REDIRECT,
        "client_id": CLIENT_ID,
        **extra,
    }
    _refused(await env.token_request(form, key, headers=headers), status, scheme)


@pytest.mark.parametrize(("extra", "headers", "status", "scheme"), CREDENTIALS)
async def test_par_endpoint(
    clock: FakeClock,
    extra: dict[str, str],
    headers: tuple[tuple[str, str], ...],
    status: int,
    scheme: str | None,
) -> None:
    env = Env(clock)
    params = {**env.authorization_params(generate_code_verifier()), **extra}
    _refused(await env.par(params, headers=headers), status, scheme)
    assert (await env.par(env.authorization_params(generate_code_verifier()))).status == 201
