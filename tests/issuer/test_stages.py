"""One contract per stage (issue 9): every endpoint is parse → verify → create, composed by a
``handle_*`` that answers errors and never raises them; names, argument order and the public
namespace follow one rule; every store key goes through :mod:`oid4vci.issuer.store_keys`.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oid4vci.issuer
import oid4vci.wallet
from oid4vci.errors import StoreFullError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import (
    ExternalAuthorizationServer,
    Issuer,
    IssuerConfig,
    MemoryStore,
    handle_as_metadata,
    handle_authorization,
    handle_credential,
    handle_deferred_credential,
    handle_issuer_metadata,
    handle_jwt_vc_issuer_metadata,
    handle_nonce,
    handle_notification,
    handle_offer,
    handle_par,
    handle_token,
)
from oid4vci.issuer.store_keys import KEY_SCHEMA
from oid4vci.jose import LocalSigner
from oid4vci.models import PRE_AUTHORIZED_CODE_GRANT
from oid4vci.versions import SpecVersion
from tests.conftest import FakeClock
from tests.issuer import (
    test_authorization,
    test_client_attestation,
    test_deferred_notification,
    test_flood_limits,
    test_offers,
    test_par,
    test_refresh_token,
    test_service,
    test_status_list,
    test_token,
)
from tests.issuer.test_service import (
    ISSUER,
    Session,
    make_config,
    pre_authorized_session,
    send,
    transport_for,
)

Handler = Callable[[HttpRequest, IssuerConfig], Awaitable[HttpResponse]]

# -- (a) every handle_* answers, never raises ----------------------------------------------

#: Every endpoint handler, with the URL it is served at.
HANDLERS: dict[str, tuple[Handler, str]] = {
    "token": (handle_token, ISSUER + "/token"),
    "par": (handle_par, ISSUER + "/par"),
    "authorization": (handle_authorization, ISSUER + "/authorize"),
    "nonce": (handle_nonce, ISSUER + "/nonce"),
    "credential": (handle_credential, ISSUER + "/credential"),
    "deferred": (handle_deferred_credential, ISSUER + "/deferred"),
    "notification": (handle_notification, ISSUER + "/notification"),
    "offer": (handle_offer, ISSUER + "/offers/abc"),
    "metadata": (handle_issuer_metadata, ISSUER + "/.well-known/openid-credential-issuer"),
    "jwt_vc_issuer": (handle_jwt_vc_issuer_metadata, ISSUER + "/.well-known/jwt-vc-issuer"),
    "as_metadata": (handle_as_metadata, ISSUER + "/.well-known/oauth-authorization-server"),
}

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
DPOP_ALGS = 'algs="ES256 ES384 EdDSA"'


def _request(method: str, url: str, headers: dict[str, str], body: bytes | str) -> HttpRequest:
    data = body.encode() if isinstance(body, str) else body
    return HttpRequest(method=method, url=url, headers=headers, body=data)


def _assert_answer(response: HttpResponse, status: int, error: str | None) -> None:
    assert isinstance(response, HttpResponse)
    assert response.status == status, response.body
    assert response.headers.get("Cache-Control") == "no-store"
    if error is None:
        return
    if response.media_type == "application/json":
        assert response.json_body()["error"] == error
    else:  # the authorization endpoint's HTML error page
        assert error in response.body.decode()


# (endpoint, method, headers, body, status, error, Allow header)
MALFORMED: list[tuple[str, str, dict[str, str], str, int, str | None, str | None]] = [
    # wrong method
    ("token", "GET", {}, "", 405, "invalid_request", "POST"),
    ("par", "PUT", {}, "", 405, "invalid_request", "POST"),
    ("authorization", "DELETE", {}, "", 405, "invalid_request", None),
    ("nonce", "GET", {}, "", 405, "invalid_request", "POST"),
    ("credential", "GET", {}, "", 405, "invalid_credential_request", "POST"),
    ("deferred", "PUT", {}, "", 405, "invalid_credential_request", "POST"),
    ("notification", "GET", {}, "", 405, "invalid_request", "POST"),
    ("offer", "POST", {}, "", 405, "invalid_request", "GET"),
    ("metadata", "POST", {}, "", 405, "invalid_request", "GET, HEAD"),
    ("jwt_vc_issuer", "DELETE", {}, "", 405, "invalid_request", "GET, HEAD"),
    ("as_metadata", "POST", {}, "", 405, "invalid_request", "GET"),
    # too large (checked before anything is parsed)
    ("token", "POST", FORM, "a=" + "x" * 5000, 413, "invalid_request", None),
    ("par", "POST", FORM, "a=" + "x" * 5000, 413, "invalid_request", None),
    ("authorization", "POST", FORM, "a=" + "x" * 5000, 413, "invalid_request", None),
    ("nonce", "POST", JSON, "x" * 5000, 413, "invalid_request", None),
    ("credential", "POST", JSON, "x" * 5000, 413, "invalid_credential_request", None),
    ("deferred", "POST", JSON, "x" * 5000, 413, "invalid_credential_request", None),
    ("notification", "POST", JSON, "x" * 5000, 413, "invalid_request", None),
    # wrong content type or malformed body
    ("token", "POST", JSON, "{}", 400, "invalid_request", None),
    ("token", "POST", FORM, "grant_type=x&grant_type=y", 400, "invalid_request", None),
    ("token", "POST", FORM, "", 400, "invalid_request", None),
    ("token", "POST", FORM, "grant_type=password", 400, "unsupported_grant_type", None),
    ("par", "POST", JSON, "{}", 400, "invalid_request", None),
    ("par", "POST", FORM, "response_type=code", 400, "invalid_request", None),
    ("par", "POST", FORM, "client_id=c&request_uri=urn:x", 400, "invalid_request", None),
    ("authorization", "POST", JSON, "{}", 400, "invalid_request", None),
    ("authorization", "GET", {}, "", 400, "invalid_request", None),
    # offers that do not exist
    ("offer", "GET", {}, "", 404, "invalid_request", None),
]


@pytest.mark.parametrize(
    ("endpoint", "method", "headers", "body", "status", "error", "allow"),
    MALFORMED,
    ids=[f"{c[0]}-{c[1]}-{c[4]}-{i}" for i, c in enumerate(MALFORMED)],
)
async def test_handlers_answer_malformed_requests(
    clock: FakeClock,
    endpoint: str,
    method: str,
    headers: dict[str, str],
    body: str,
    status: int,
    error: str | None,
    allow: str | None,
) -> None:
    handler, url = HANDLERS[endpoint]
    config = make_config(clock, max_body_size=4096)
    response = await handler(_request(method, url, headers, body), config)
    _assert_answer(response, status, error)
    if allow is not None:
        assert response.headers.get("Allow") == allow


@pytest.mark.parametrize("endpoint", ["credential", "deferred", "notification"])
async def test_protected_handlers_answer_token_problems_with_a_challenge(
    clock: FakeClock, endpoint: str
) -> None:
    handler, url = HANDLERS[endpoint]
    config = make_config(clock)
    # no credentials at all: 401, a bare challenge, an empty body (RFC 6750 §3.1)
    bare = await handler(_request("POST", url, JSON, "{}"), config)
    assert bare.status == 401 and bare.body == b""
    assert bare.headers.get("WWW-Authenticate") == f"DPoP {DPOP_ALGS}"
    assert bare.headers.get("Cache-Control") == "no-store"
    # Bearer where DPoP is required, an unknown token, a malformed token (RFC 9449 §7.1)
    for authorization in ("Bearer abc", "DPoP unknown-token", "DPoP a b c"):
        headers = {**JSON, "Authorization": authorization}
        response = await handler(_request("POST", url, headers, "{}"), config)
        _assert_answer(response, 401, "invalid_token")
        challenge = response.headers.get("WWW-Authenticate") or ""
        assert challenge.startswith('DPoP error="invalid_token"')
        assert DPOP_ALGS in challenge


async def _authorized(
    clock: FakeClock, endpoint: str, body: bytes | str, content_type: str = "application/json"
) -> HttpResponse:
    """``body`` sent to ``endpoint``'s handler with a valid DPoP-bound access token."""
    issuer = Issuer(make_config(clock))
    session = await pre_authorized_session(issuer, transport_for(issuer), clock)
    handler, url = HANDLERS[endpoint]
    headers = await session.dpop_header("POST", url, ath=True)
    headers.update({"Authorization": f"DPoP {session.token}", "Content-Type": content_type})
    return await handler(_request("POST", url, headers, body), issuer.config)


# (endpoint, body, content type, status, error)
AUTHORIZED_MALFORMED: list[tuple[str, str, str, int, str]] = [
    ("credential", "{not json", "application/json", 400, "invalid_credential_request"),
    ("credential", "[]", "application/json", 400, "invalid_credential_request"),
    ("credential", "{}", "text/plain", 415, "invalid_credential_request"),
    (
        "credential",
        json.dumps({"credential_configuration_id": "nope", "proofs": {"jwt": ["a.b.c"]}}),
        "application/json",
        400,
        "unknown_credential_configuration",
    ),
    (
        "credential",
        json.dumps({"credential_configuration_id": "identity", "proofs": {"jwt": ["a.b.c"]}}),
        "application/json",
        400,
        "invalid_proof",
    ),
    ("deferred", "{not json", "application/json", 400, "invalid_credential_request"),
    ("deferred", "{}", "application/json", 400, "invalid_credential_request"),
    ("deferred", '{"transaction_id": 1}', "application/json", 400, "invalid_credential_request"),
    ("deferred", '{"transaction_id": "nope"}', "application/json", 400, "invalid_transaction_id"),
    ("notification", "{not json", "application/json", 400, "invalid_notification_request"),
    ("notification", "{}", "text/plain", 400, "invalid_notification_request"),
    (
        "notification",
        '{"notification_id": "x", "event": "lost"}',
        "application/json",
        400,
        "invalid_notification_request",
    ),
    (
        "notification",
        '{"notification_id": "nope", "event": "credential_accepted"}',
        "application/json",
        400,
        "invalid_notification_id",
    ),
]


@pytest.mark.parametrize(
    ("endpoint", "body", "content_type", "status", "error"),
    AUTHORIZED_MALFORMED,
    ids=[f"{c[0]}-{c[4]}-{i}" for i, c in enumerate(AUTHORIZED_MALFORMED)],
)
async def test_protected_handlers_answer_malformed_bodies(
    clock: FakeClock, endpoint: str, body: str, content_type: str, status: int, error: str
) -> None:
    response = await _authorized(clock, endpoint, body, content_type)
    _assert_answer(response, status, error)
    assert response.headers.get("WWW-Authenticate") is None


async def test_token_and_par_answer_dpop_problems(clock: FakeClock) -> None:
    config = make_config(clock)
    form = f"grant_type={PRE_AUTHORIZED_CODE_GRANT}&pre-authorized_code=nope"
    # no proof where DPoP is required
    response = await handle_token(_request("POST", ISSUER + "/token", FORM, form), config)
    _assert_answer(response, 400, "invalid_request")
    # a malformed proof (RFC 9449 §5)
    headers = {**FORM, "DPoP": "not-a-jwt"}
    response = await handle_token(_request("POST", ISSUER + "/token", headers, form), config)
    _assert_answer(response, 400, "invalid_dpop_proof")
    response = await handle_par(
        _request("POST", ISSUER + "/par", headers, "client_id=c&response_type=code"), config
    )
    _assert_answer(response, 400, "invalid_dpop_proof")
    # a well-formed request for an unknown code (RFC 6749 §5.2)
    session = Session(transport=transport_for(Issuer(config)), clock=clock)
    headers = {**FORM, **await session.dpop_header("POST", ISSUER + "/token", ath=False)}
    response = await handle_token(_request("POST", ISSUER + "/token", headers, form), config)
    _assert_answer(response, 400, "invalid_grant")


async def test_external_authorization_server_endpoints_answer_404(clock: FakeClock) -> None:
    key = LocalSigner.generate()
    external = ExternalAuthorizationServer(issuer="https://as.example", jwks=[key.public_jwk])
    config = make_config(clock, external_authorization_server=external)
    for endpoint in ("token", "par", "as_metadata"):
        handler, url = HANDLERS[endpoint]
        method = "GET" if endpoint == "as_metadata" else "POST"
        response = await handler(_request(method, url, FORM, "a=b"), config)
        _assert_answer(response, 404, "invalid_request")


class _FullStore(MemoryStore):
    async def put(self, key: str, value: Any, ttl: float) -> None:
        raise StoreFullError("full")

    async def add_if_absent(self, key: str, value: Any, ttl: float) -> bool:
        raise StoreFullError("full")


async def test_handlers_answer_a_full_store_with_503(clock: FakeClock) -> None:
    config = make_config(clock, store=_FullStore(clock=clock))
    issuer = Issuer(config)
    from oid4vci.issuer.offers import OfferTemplate

    template = OfferTemplate(name="t", configuration_ids=["identity"], subject="alice")
    cases: list[tuple[Handler | None, HttpRequest]] = [
        (None, _request("GET", ISSUER + "/offers/templates/t", {}, "")),
    ]
    for handler, request in cases:
        if handler is None:
            response = await handle_offer(request, config, templates={"t": template})
        else:
            response = await handler(request, config)
        _assert_answer(response, 503, "temporarily_unavailable")
        assert response.headers.get("Retry-After") == "5"
    # The nonce endpoint writes nothing (stateless nonces), so a full store does not stop it.
    _assert_answer(
        await handle_nonce(_request("POST", ISSUER + "/nonce", {}, ""), config), 200, None
    )
    assert issuer.config is config


_METHODS = st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"])
_CONTENT_TYPES = st.sampled_from(
    ["application/json", "application/x-www-form-urlencoded", "text/plain", "", "json; x=y"]
)
_HEADER_VALUES = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=0, max_size=40
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    endpoint=st.sampled_from(sorted(HANDLERS)),
    method=_METHODS,
    content_type=_CONTENT_TYPES,
    authorization=st.none() | _HEADER_VALUES.map(lambda v: "DPoP " + v),
    dpop=st.none() | _HEADER_VALUES,
    body=st.binary(max_size=200)
    | st.dictionaries(st.text(max_size=8), st.text(max_size=8)).map(json.dumps),
    path=st.sampled_from(["", "/x", "?a=1&a=2", "?client_id=%ff", "/../x"]),
)
def test_handlers_never_raise(
    clock: FakeClock,
    endpoint: str,
    method: str,
    content_type: str,
    authorization: str | None,
    dpop: str | None,
    body: bytes | str,
    path: str,
) -> None:
    import anyio

    handler, url = HANDLERS[endpoint]
    headers = {"Content-Type": content_type} if content_type else {}
    if authorization is not None:
        headers["Authorization"] = authorization
    if dpop is not None:
        headers["DPoP"] = dpop
    request = _request(method, url + path, headers, body)
    config = make_config(clock)

    async def run() -> HttpResponse:
        return await handler(request, config)

    response = anyio.run(run)
    assert isinstance(response, HttpResponse)
    assert 200 <= response.status < 600 and response.status != 500
    assert response.headers.get("Cache-Control") == "no-store"


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=8,
)
_REQUEST_MEMBERS = st.fixed_dictionaries(
    {},
    optional={
        "credential_configuration_id": st.sampled_from(["identity", "other", "x"]) | _JSON_VALUES,
        "credential_identifier": st.sampled_from(["identity", "x"]) | _JSON_VALUES,
        "format": st.sampled_from(["dc+sd-jwt", "vc+sd-jwt", "jwt_vc_json"]) | _JSON_VALUES,
        "vct": _JSON_VALUES,
        "proof": _JSON_VALUES | st.just({"proof_type": "jwt", "jwt": "a.b.c"}),
        "proofs": _JSON_VALUES | st.just({"jwt": ["a.b.c"]}),
        "transaction_id": _JSON_VALUES,
        "notification_id": _JSON_VALUES,
        "event": st.sampled_from(["credential_accepted", "credential_deleted"]) | _JSON_VALUES,
        "credential_response_encryption": _JSON_VALUES,
    },
)


def test_protected_handlers_never_raise_with_a_valid_token(clock: FakeClock) -> None:
    import anyio

    async def setup() -> tuple[Issuer, Session]:
        issuer = Issuer(make_config(clock))
        return issuer, await pre_authorized_session(issuer, transport_for(issuer), clock)

    issuer, session = anyio.run(setup)

    @settings(max_examples=60, deadline=None)
    @given(
        endpoint=st.sampled_from(["credential", "deferred", "notification"]),
        body=_REQUEST_MEMBERS | _JSON_VALUES,
    )
    def check(endpoint: str, body: Any) -> None:
        handler, url = HANDLERS[endpoint]

        async def run() -> HttpResponse:
            headers = await session.dpop_header("POST", url, ath=True)
            headers.update({"Authorization": f"DPoP {session.token}", **JSON})
            return await handler(_request("POST", url, headers, json.dumps(body)), issuer.config)

        response = anyio.run(run)
        assert 200 <= response.status < 500, response.body
        assert response.headers.get("Cache-Control") == "no-store"

    check()


# -- (b) the public namespace ---------------------------------------------------------------


def test_issuer_namespace_is_curated() -> None:
    names = oid4vci.issuer.__all__
    assert len(names) <= 60, len(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(oid4vci.issuer, name) is not None
    # demo constants and internal records stay in their modules
    for hidden in ("DEMO_PASSWORD", "DEMO_TX_CODE", "TokenContext", "PreAuthorizedCodeRecord"):
        assert hidden not in names
    assert importlib.import_module("oid4vci.issuer.demo").DEMO_PASSWORD


def test_no_issuer_name_means_another_wallet_class() -> None:
    wallet = set(oid4vci.wallet.__all__)
    for name in oid4vci.issuer.__all__:
        if name in wallet:
            assert getattr(oid4vci.issuer, name) is getattr(oid4vci.wallet, name), name
    assert "PendingAuthorization" not in oid4vci.issuer.__all__
    assert "PendingLogin" not in wallet


def _issuer_modules() -> list[Any]:
    modules = []
    for info in pkgutil.iter_modules(oid4vci.issuer.__path__):
        if not info.name.startswith("_"):
            modules.append(importlib.import_module(f"oid4vci.issuer.{info.name}"))
    return modules


def test_every_issuer_module_name_resolves() -> None:
    for module in _issuer_modules():
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


# -- (c) one verb per meaning, request first, config second ----------------------------------

STAGE_VERBS = ("parse_", "verify_", "create_", "handle_")
RETIRED_VERBS = (
    "validate_",
    "read_",
    "redeem_",
    "mint_",
    "new_",
    "issue_",
    "authenticate_",
    "check_",
    "consume_",
    "register_",
    "resolve_",
)


def _stage_functions() -> list[tuple[str, Callable[..., Any]]]:
    found: dict[str, Callable[..., Any]] = {}
    for module in [oid4vci.issuer, *_issuer_modules()]:
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isfunction(value) and name.startswith(STAGE_VERBS):
                found[f"{value.__module__}.{name}"] = value
    return sorted(found.items())


STAGES = _stage_functions()


def test_every_endpoint_has_its_stages() -> None:
    names = set(oid4vci.issuer.__all__)
    for endpoint in (
        "token",
        "par",
        "authorization",
        "credential",
        "deferred_credential",
        "notification",
        "offer",
    ):
        for stage in (f"parse_{endpoint}_request", f"create_{endpoint}_response"):
            assert stage in names, stage
        assert f"verify_{endpoint}_request" in names, endpoint
        assert f"handle_{endpoint}" in names, endpoint
    for stage in ("parse_nonce_request", "create_nonce_response", "handle_nonce"):
        assert stage in names


@pytest.mark.parametrize(("name", "function"), STAGES, ids=[n for n, _ in STAGES])
def test_stage_signatures(name: str, function: Callable[..., Any]) -> None:
    params = list(inspect.signature(function).parameters.values())
    positional = [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    short = name.rsplit(".", 1)[1]
    if short.startswith(("parse_", "handle_")):
        assert positional[:2] == ["request", "config"], positional
    if "config" in positional:
        # config second, unless it is what the function acts on alone (documents, nonces)
        assert positional.index("config") == 1 or positional == ["config"], positional
    if short.startswith("parse_"):
        assert not inspect.iscoroutinefunction(function), "parse is pure and sync"
    if short.startswith("handle_"):
        assert inspect.iscoroutinefunction(function)


def test_no_retired_verbs_in_the_issuer_api() -> None:
    for module in [oid4vci.issuer, *_issuer_modules()]:
        for name in module.__all__:
            assert not name.startswith(RETIRED_VERBS), f"{module.__name__}.{name}"


def test_every_handler_is_async_and_takes_request_then_config() -> None:
    for name in oid4vci.issuer.__all__:
        if name.startswith("handle_"):
            function = getattr(oid4vci.issuer, name)
            assert inspect.iscoroutinefunction(function), name
            params = list(inspect.signature(function).parameters)
            assert params[:2] == ["request", "config"], name


# -- (d) the store key schema ---------------------------------------------------------------

ISSUER_DIR = Path(oid4vci.issuer.__file__).parent
STORE_METHODS = {"put", "get", "take", "add_if_absent", "delete", "increment"}


def _literal_key(node: ast.expr) -> bool:
    """True for a key written in place: a string, an f-string or ``"…" + x``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp):
        return _literal_key(node.left) or _literal_key(node.right)
    return False


def _is_store(node: ast.expr) -> bool:
    """``store``, ``config.store``, ``self._store``: a Store, not a dict or headers."""
    if isinstance(node, ast.Name):
        return node.id == "store"
    return isinstance(node, ast.Attribute) and node.attr in ("store", "_store")


def test_no_issuer_module_writes_a_key_of_its_own() -> None:
    offenders: list[str] = []
    for path in sorted(ISSUER_DIR.glob("*.py")):
        if path.name in ("store_keys.py", "store.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in STORE_METHODS
                and _is_store(node.func.value)
                and node.args
                and _literal_key(node.args[0])
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_key_schema_rows() -> None:
    for prefix, row in KEY_SCHEMA.items():
        assert row.prefix == prefix and prefix.endswith(":")
        assert row.owner and row.holds
        assert row.ttl(make_config(FakeClock())) > 0


async def test_every_key_the_issuer_uses_is_in_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    # Run whole flows of the other test modules with every MemoryStore recording its keys.
    recorded: set[str] = set()

    def recording(name: str) -> Callable[..., Awaitable[Any]]:
        original = getattr(MemoryStore, name)

        async def method(self: MemoryStore, key: str, *args: Any) -> Any:
            recorded.add(key)
            return await original(self, key, *args)

        return method

    for name in ("put", "add_if_absent", "increment", "get", "take", "delete", "take_token"):
        monkeypatch.setattr(MemoryStore, name, recording(name))

    async def whole_issuance(clock: FakeClock) -> None:
        await test_service.test_whole_issuance_by_raw_requests(
            clock, SpecVersion.V1, SpecVersion.V1
        )

    flows: list[Callable[[FakeClock], Awaitable[None]]] = [
        whole_issuance,
        test_service.test_authorization_code_flow_by_raw_requests,
        test_service.test_server_dpop_nonces_through_the_flow,
        test_token.test_four_wrong_tx_codes_then_right_succeeds,
        test_token.test_authorization_code_reuse_revokes_tokens,
        test_authorization.test_issuer_state_from_offer,
        test_offers.test_offer_by_reference_single_use_and_reusable,
        test_par.test_par_happy_path_and_single_use,
        test_deferred_notification.test_v1_deferred_pending_then_ready,
        test_deferred_notification.test_notification_flow,
        test_status_list.status_flow,
        test_flood_limits.test_over_the_limit_is_429_with_retry_after,
        test_client_attestation.attested_token_flow,
        test_refresh_token.test_rotation_flow,
    ]
    for flow in flows:
        await flow(FakeClock())
    seen: set[str] = set()
    for key in recorded:
        prefix = next((p for p in KEY_SCHEMA if key.startswith(p)), None)
        assert prefix is not None, f"a key outside the schema: {key.split(':')[0]}:…"
        seen.add(prefix)
        # A secret (code, token, nonce, handle...) is keyed by its SHA-256 only.
        if KEY_SCHEMA[prefix].hashed:
            assert re.fullmatch("[0-9a-f]{64}", key[len(prefix) :]), f"{prefix} not hashed"
    # and the table has no stale rows
    assert seen == set(KEY_SCHEMA)


_MALFORMED_RECORDS: list[Any] = [
    "junk",
    [],
    {},
    {"grant_id": 1},
    {"subject": None, "configuration_ids": "abc"},
]


@pytest.mark.parametrize("junk", _MALFORMED_RECORDS, ids=repr)
async def test_malformed_stored_records_fail_closed(clock: FakeClock, junk: Any) -> None:
    from oid4vci.issuer.store_keys import (
        access_token_key,
        deferred_key,
        notification_key,
        offer_key,
        par_key,
        pending_login_key,
        pre_authorized_code_key,
    )

    issuer = Issuer(make_config(clock))
    config = issuer.config
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock)
    # a corrupted access token record: the token is refused
    assert session.token is not None
    await config.store.put(access_token_key(session.token), junk, 60)
    response = await session.post("/credential", {"credential_configuration_id": "identity"})
    _assert_answer(response, 401, "invalid_token")
    # a corrupted pre-authorized code
    await config.store.put(pre_authorized_code_key("code-1"), junk, 60)
    fresh = Session(transport=transport, clock=clock)
    _assert_answer(await fresh.redeem("code-1"), 400, "invalid_grant")
    # a corrupted offer, PAR request, pending login
    await config.store.put(offer_key("offer-1"), junk, 60)
    _assert_answer(await send(transport, "GET", ISSUER + "/offers/offer-1"), 404, None)
    request_uri = "urn:ietf:params:oauth:request_uri:abc"
    await config.store.put(par_key(request_uri), junk, 60)
    url = f"{ISSUER}/authorize?client_id=c&request_uri={request_uri}"
    _assert_answer(await send(transport, "GET", url), 400, "invalid_request_uri")
    await config.store.put(pending_login_key("h"), junk, 60)
    _assert_answer(await send(transport, "GET", ISSUER + "/authorize?handle=h"), 400, None)
    # a corrupted deferred transaction and notification record (with a valid token)
    valid = await pre_authorized_session(issuer, transport, clock)
    await config.store.put(deferred_key("t-1"), junk, 60)
    response = await valid.post("/deferred", {"transaction_id": "t-1"})
    _assert_answer(response, 400, "invalid_transaction_id")
    await config.store.put(notification_key("n-1"), junk, 60)
    body = {"notification_id": "n-1", "event": "credential_accepted"}
    _assert_answer(await valid.post("/notification", body), 400, "invalid_notification_id")


# -- (e) OID4VCI 1.0 §8.2: a 1.0 request ignores the members it does not know ---------------


@pytest.mark.parametrize(
    "members",
    [
        {"format": "dc+sd-jwt"},
        {"proof": {"proof_type": "jwt", "jwt": "x.y.z"}},
        {"format": "vc+sd-jwt", "vct": "urn:other", "proof": {"proof_type": "jwt", "jwt": "x"}},
    ],
    ids=["format", "proof", "both"],
)
async def test_v1_request_with_draft_members_is_answered_as_v1(
    clock: FakeClock, members: dict[str, Any]
) -> None:
    issuer = Issuer(make_config(clock))
    session = await pre_authorized_session(issuer, transport_for(issuer), clock)
    nonce = await session.nonce()
    keys = [LocalSigner.generate(), LocalSigner.generate()]
    proofs = [await session.proof(key, nonce) for key in keys]
    body = {"credential_configuration_id": "identity", "proofs": {"jwt": proofs}, **members}
    response = await session.post("/credential", body)
    assert response.status == 200, response.body
    answer = response.json_body()
    # the 1.0 shape: credentials as objects, no c_nonce
    assert [set(c) for c in answer["credentials"]] == [{"credential"}, {"credential"}]
    assert "c_nonce" not in answer
