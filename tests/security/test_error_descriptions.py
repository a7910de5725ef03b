"""``error_description`` stays within the characters OAuth allows, whatever the client sent.

RFC 6749 §5.2 / §4.1.2.1, RFC 6750 §3 and OID4VCI 1.0 §8.3.1.2: ``error_description`` values
"MUST NOT include characters outside the set %x20-21 / %x23-5B / %x5D-7E". Descriptions that
quote a client-chosen member or parameter name (quotes, backslashes, non-ASCII, 20 kB) used to
echo it as sent.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlsplit

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer.responses import MAX_ERROR_DESCRIPTION, clean_error_description
from oid4vci.jose import LocalSigner
from oid4vci.pkce import generate_code_verifier
from tests.conftest import FakeClock
from tests.security.support import ISSUER, NOTIFICATION, TOKEN, Env

ALLOWED = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")


def _description(response: HttpResponse) -> str:
    assert response.status == 400, response.body
    description = str(response.json_body()["error_description"])
    assert ALLOWED.fullmatch(description), description
    assert len(description) <= MAX_ERROR_DESCRIPTION
    return description


def test_clean_error_description() -> None:
    assert clean_error_description("plain text: ok") == "plain text: ok"
    assert clean_error_description('say "x" \\ \u00e9\u2028\n') == "say 'x' / ???"
    long = clean_error_description("A" * 20_000)
    assert len(long) == MAX_ERROR_DESCRIPTION and long.endswith("...")


async def test_a_hostile_member_name_is_not_echoed_as_sent(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    token = await env.access_token(key)
    for name in ('jwt"\u00e9\\\u2028', "A" * 20_000):
        body = {"credential_configuration_id": "pid", "proofs": {name: "x"}}
        description = _description(await env.credential(token, key, body))
        assert description.startswith("proofs.")


async def test_a_hostile_form_name_and_the_notification_message(clock: FakeClock) -> None:
    env = Env(clock)
    key = LocalSigner.generate()
    proof = await env.dpop(key, TOKEN)
    form = HttpRequest(
        method="POST",
        url=TOKEN,
        headers=[("Content-Type", "application/x-www-form-urlencoded"), ("DPoP", proof)],
        body='n\u00e9"=1&n\u00e9"=2'.encode(),
    )
    assert "repeated" in _description(await env.send(form))
    token = await env.access_token(key)
    body = {"notification_id": "x", "event": "bogus"}
    _description(await env.credential(token, key, body, url=NOTIFICATION))


async def test_the_authorization_error_redirect_is_clean_too(clock: FakeClock) -> None:
    env = Env(clock)
    params = env.authorization_params(generate_code_verifier())
    params["authorization_details"] = (
        '[{"type":"openid_credential","credential_configuration_id":"\\u00e9\\""}]'
    )
    del params["scope"]
    response = await env.send(
        HttpRequest(method="GET", url=f"{ISSUER}/authorize?{urlencode(params)}")
    )
    assert response.status == 303
    query = parse_qs(urlsplit(response.headers.get("Location") or "").query)
    (description,) = query["error_description"]
    assert ALLOWED.fullmatch(description), description
