"""Property tests: model → JSON text → model is the identity, per version."""

from __future__ import annotations

import json
from typing import Any

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from oid4vci.models import (
    AuthorizationCodeGrant,
    AuthorizationDetail,
    CredentialOffer,
    CredentialRequest,
    CredentialResponse,
    IssuedCredential,
    PreAuthorizedCodeGrant,
    ProofSet,
    TokenResponse,
    TxCode,
    build_credential_offer_uri,
    credential_offer_to_json,
    credential_request_to_json,
    credential_response_to_json,
    parse_credential_offer_json,
    parse_credential_offer_uri,
    parse_credential_request_json,
    parse_credential_response_json,
    parse_token_response,
    token_response_to_json,
)
from oid4vci.versions import SpecVersion

SETTINGS = settings(max_examples=60, deadline=None)

text = st.text(min_size=1, max_size=12)
json_scalar = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8)
json_value = st.recursive(
    json_scalar,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def extras(reserved: set[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(
        st.text(min_size=1, max_size=8).map(lambda s: "x_" + s).filter(lambda k: k not in reserved),
        json_value.filter(lambda v: v is not None),
        max_size=2,
    )


def _json_trip(data: Any) -> Any:
    return json.loads(json.dumps(data))


tx_codes = st.builds(
    TxCode,
    input_mode=st.none() | st.sampled_from(["numeric", "text"]),
    length=st.none() | st.integers(1, 12),
    description=st.none() | st.text(max_size=300),
    extra=extras(set()),
)
pre_grants = st.builds(
    PreAuthorizedCodeGrant,
    pre_authorized_code=text,
    tx_code=st.none() | tx_codes,
    authorization_server=st.none() | text,
    interval=st.none() | st.integers(1, 60),
    extra=extras(set()),
)
auth_grants = st.builds(
    AuthorizationCodeGrant,
    issuer_state=st.none() | text,
    authorization_server=st.none() | text,
    extra=extras(set()),
)
offers = st.builds(
    CredentialOffer,
    credential_issuer=text,
    credential_configuration_ids=st.lists(text, min_size=1, max_size=4, unique=True).map(tuple),
    pre_authorized_code=st.none() | pre_grants,
    authorization_code=st.none() | auth_grants,
    extra=extras({"credentials"}),
)


@SETTINGS
@given(offers)
def test_offer_round_trip(offer: CredentialOffer) -> None:
    assert parse_credential_offer_json(_json_trip(credential_offer_to_json(offer))) == offer
    assert parse_credential_offer_uri(build_credential_offer_uri(offer)) == offer


proof_values = st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=3).map(tuple)


@st.composite
def requests_for(draw: st.DrawFn, version: SpecVersion) -> CredentialRequest:
    by_identifier = draw(st.booleans())
    n_max = 1 if version is SpecVersion.DRAFT_13 else 3
    values = draw(st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=n_max))
    ptype = draw(st.sampled_from(["jwt", "attestation", "di_vp"]))
    proofs = draw(st.none() | st.just(ProofSet(proof_type=ptype, values=tuple(values))))
    if version is SpecVersion.DRAFT_13:
        single = proofs is not None
    elif version is SpecVersion.V1:
        single = False
    else:
        single = proofs is not None and len(values) == 1 and draw(st.booleans())
    extra = draw(extras(set()))
    enc = draw(st.none() | st.just({"jwk": {"kty": "EC"}, "enc": "A128GCM"}))
    if by_identifier:
        return CredentialRequest(
            credential_identifier=draw(text),
            proofs=proofs,
            single_proof=single,
            credential_response_encryption=enc,
            extra=extra,
        )
    if version in (SpecVersion.DRAFT_13, SpecVersion.DRAFT_14):
        return CredentialRequest(
            format=draw(st.sampled_from(["vc+sd-jwt", "mso_mdoc", "jwt_vc_json"])),
            vct=draw(st.none() | text),
            doctype=draw(st.none() | text),
            credential_definition=draw(st.none() | st.just({"type": ["VerifiableCredential"]})),
            claims=draw(st.none() | st.just({"given_name": {}})),
            proofs=proofs,
            single_proof=single,
            credential_response_encryption=enc,
            extra=extra,
        )
    return CredentialRequest(
        credential_configuration_id=draw(text),
        proofs=proofs,
        single_proof=single,
        credential_response_encryption=enc,
        extra=extra,
    )


def _check_request(req: CredentialRequest, version: SpecVersion) -> None:
    data = _json_trip(credential_request_to_json(req, version))
    again, detected = parse_credential_request_json(data, version=version)
    assert detected is version
    assert again == req
    auto, _ = parse_credential_request_json(data)
    assert auto == req


@SETTINGS
@given(requests_for(SpecVersion.DRAFT_13))
def test_request_round_trip_d13(req: CredentialRequest) -> None:
    _check_request(req, SpecVersion.DRAFT_13)


@SETTINGS
@given(requests_for(SpecVersion.DRAFT_14))
def test_request_round_trip_d14(req: CredentialRequest) -> None:
    _check_request(req, SpecVersion.DRAFT_14)


@SETTINGS
@given(requests_for(SpecVersion.DRAFT_15))
def test_request_round_trip_d15(req: CredentialRequest) -> None:
    _check_request(req, SpecVersion.DRAFT_15)


@SETTINGS
@given(requests_for(SpecVersion.V1))
def test_request_round_trip_v1(req: CredentialRequest) -> None:
    _check_request(req, SpecVersion.V1)


credential_values = st.text(min_size=1, max_size=20) | st.dictionaries(
    st.text(min_size=1, max_size=5).filter(lambda k: k != "credential"),
    json_scalar,
    min_size=1,
    max_size=3,
)


@st.composite
def responses_for(draw: st.DrawFn, version: SpecVersion) -> CredentialResponse:
    deferred = draw(st.booleans())
    drafts = version in (SpecVersion.DRAFT_13, SpecVersion.DRAFT_14)
    c_nonce = draw(st.none() | text) if drafts else None
    c_exp = draw(st.none() | st.integers(0, 10**6)) if drafts else None
    extra = draw(extras(set()))
    if deferred:
        return CredentialResponse(
            transaction_id=draw(text),
            interval=draw(st.none() | st.integers(1, 10**5)) if version is SpecVersion.V1 else None,
            c_nonce=c_nonce,
            c_nonce_expires_in=c_exp,
            extra=extra,
        )
    n = 1 if version is SpecVersion.DRAFT_13 else draw(st.integers(1, 3))
    items = []
    for _ in range(n):
        value = draw(credential_values)
        if version in (SpecVersion.DRAFT_15, SpecVersion.V1):
            items.append(IssuedCredential(credential=value, extra=draw(extras({"credential"}))))
        else:
            if isinstance(value, dict):
                value = {**value, "id": "x"}
            items.append(IssuedCredential(credential=value))
    # Draft 14 allows notification_id only beside a single ``credential``.
    several_in_d14 = version is SpecVersion.DRAFT_14 and n > 1
    return CredentialResponse(
        credentials=tuple(items),
        notification_id=None if several_in_d14 else draw(st.none() | text),
        c_nonce=c_nonce,
        c_nonce_expires_in=c_exp,
        extra=extra,
    )


@SETTINGS
@given(st.data())
def test_response_round_trip(data: st.DataObject) -> None:
    version = data.draw(st.sampled_from(list(SpecVersion)))
    resp = data.draw(responses_for(version))
    wire = _json_trip(credential_response_to_json(resp, version))
    assert parse_credential_response_json(wire) == resp


details = st.builds(
    AuthorizationDetail,
    credential_configuration_id=st.none() | text,
    credential_identifiers=st.none() | st.lists(text, min_size=1, max_size=3).map(tuple),
    locations=st.none() | st.lists(text, max_size=2).map(tuple),
    extra=extras(set()),
)
tokens = st.builds(
    TokenResponse,
    access_token=text,
    token_type=st.sampled_from(["Bearer", "bearer", "DPoP"]),
    expires_in=st.none() | st.integers(0, 10**6),
    refresh_token=st.none() | text,
    scope=st.none() | text,
    c_nonce=st.none() | text,
    c_nonce_expires_in=st.none() | st.integers(0, 10**6),
    authorization_details=st.none() | st.lists(details, max_size=2).map(tuple),
    extra=extras(set()),
)


@SETTINGS
@given(tokens)
def test_token_response_round_trip(resp: TokenResponse) -> None:
    assert parse_token_response(_json_trip(token_response_to_json(resp))) == resp
    v1 = parse_token_response(_json_trip(token_response_to_json(resp, SpecVersion.V1)))
    assert v1.c_nonce is None and v1.c_nonce_expires_in is None
    assert v1.access_token == resp.access_token
    marked = attrs.evolve(resp, access_token="AT-SECRET-MARK", refresh_token="RT-SECRET-MARK")
    assert "SECRET-MARK" not in repr(marked)
