"""The issuer's ``jwt_vc_json`` configurations: spec checks, metadata per version, raw requests.

An issuer with two configurations — ``identity`` (SD-JWT VC) and ``degree`` (``jwt_vc_json``) —
answered by hand-written requests of every version's shape; credentials checked with
:func:`oid4vci.jwtvc.verify_jwt_vc_json` and the keys of ``/.well-known/jwt-vc-issuer``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from oid4vci.errors import AuthorizationError, ErrorCode
from oid4vci.issuer import (
    CredentialConfigurationSpec,
    DeferIssuance,
    Issuer,
    IssuerConfig,
    MemoryStore,
    create_issuer_metadata,
)
from oid4vci.issuer.authorization import verify_authorization_details
from oid4vci.issuer.credential import UnissuableClaimsError, create_credentials
from oid4vci.issuer.deferred import complete_deferred
from oid4vci.jose import LocalSigner, decode_jws
from oid4vci.jwtvc import did_jwk, verify_jwt_vc_json
from oid4vci.models import parse_issuer_metadata
from oid4vci.sdjwt import sd
from oid4vci.versions import SpecVersion
from tests.conftest import FakeClock
from tests.issuer.test_service import (
    ISSUER,
    VCT,
    LoginAll,
    Session,
    check_sd_jwt_vc,
    credentials_of,
    fetch_jwks,
    pre_authorized_session,
    transport_for,
)

TYPES = ("VerifiableCredential", "UniversityDegreeCredential")
DEGREE_CLAIMS = [
    {"path": ["given_name"], "display": [{"name": "Given Name", "locale": "en-US"}]},
    {"path": ["credentialSubject", "degree"]},
    {"path": ["gpa"], "mandatory": True, "display": [{"name": "GPA"}]},
]


class TwoFormatClaims:
    """Claims for ``identity`` (SD-JWT VC) and ``degree`` (jwt_vc_json), with sd() marks."""

    def __init__(self) -> None:
        self.defer: int | None = None

    async def __call__(self, subject: str, configuration_id: str) -> Mapping[str, Any]:
        if self.defer is not None:
            raise DeferIssuance(self.defer)
        if configuration_id == "degree":
            return {
                "given_name": sd("Alice"),
                "degree": {"type": "BachelorDegree", "name": sd("Bachelor of Science")},
                "gpa": "4.0",
                "honours": [sd("cum laude")],
            }
        return {"given_name": sd("Alice"), "family_name": "Liddell"}


DEGREE_SUBJECT = {
    "given_name": "Alice",
    "degree": {"type": "BachelorDegree", "name": "Bachelor of Science"},
    "gpa": "4.0",
    "honours": ["cum laude"],
}


def degree_spec(**kwargs: Any) -> CredentialConfigurationSpec:
    options: dict[str, Any] = {
        "id": "degree",
        "format": "jwt_vc_json",
        "credential_definition_types": TYPES,
        "scope": "degree",
        "display": [{"name": "University Credential", "locale": "en-US"}],
        "claims": DEGREE_CLAIMS,
    }
    options.update(kwargs)
    return CredentialConfigurationSpec(**options)


def make_config(
    clock: FakeClock, *, version: SpecVersion = SpecVersion.V1, **kwargs: Any
) -> IssuerConfig:
    """An issuer offering ``identity`` (SD-JWT VC) and ``degree`` (jwt_vc_json)."""
    options: dict[str, Any] = {
        "credential_issuer": ISSUER,
        "credential_signer": LocalSigner.generate(kid="issuer-key-1"),
        "credential_configurations": [
            CredentialConfigurationSpec(id="identity", vct=VCT, scope="identity"),
            degree_spec(),
        ],
        "claims_source": TwoFormatClaims(),
        "store": MemoryStore(clock=clock),
        "user_authenticator": LoginAll(),
        "published_version": version,
        "clock": clock,
    }
    options.update(kwargs)
    return IssuerConfig(**options)


# -- the configuration spec ------------------------------------------------------------------


def test_spec_validation() -> None:
    spec = degree_spec(credential_definition_types=["VerifiableCredential", "X"])
    assert spec.credential_definition_types == ("VerifiableCredential", "X")
    assert spec.vct is None and not spec.is_sd_jwt_vc
    assert CredentialConfigurationSpec(id="a", vct="urn:a").is_sd_jwt_vc
    assert (
        CredentialConfigurationSpec(id="a", vct="urn:a", format="vc+sd-jwt").format == "vc+sd-jwt"
    )
    bad: list[dict[str, Any]] = [
        {"id": "a"},  # SD-JWT VC without vct
        {"id": "a", "vct": ""},
        {"id": "a", "vct": "urn:a", "credential_definition_types": TYPES},
        {"id": "a", "format": "jwt_vc_json"},  # no types
        {"id": "a", "format": "jwt_vc_json", "credential_definition_types": ["Degree"]},
        {
            "id": "a",
            "format": "jwt_vc_json",
            "credential_definition_types": ["VerifiableCredential", "VerifiableCredential"],
        },
        {"id": "a", "format": "jwt_vc_json", "credential_definition_types": TYPES, "vct": "urn:a"},
        {"id": "a", "format": "mso_mdoc", "vct": "urn:a"},
    ]
    for options in bad:
        with pytest.raises(ValueError):
            CredentialConfigurationSpec(**options)


# -- metadata --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", list(SpecVersion), ids=lambda v: v.value)
def test_metadata_per_version(clock: FakeClock, version: SpecVersion) -> None:
    doc = create_issuer_metadata(make_config(clock), version=version)
    configs = doc["credential_configurations_supported"]
    identity, degree = configs["identity"], configs["degree"]
    assert identity["format"] == version.sd_jwt_format and identity["vct"] == VCT
    assert degree["format"] == "jwt_vc_json"
    assert "vct" not in degree
    assert degree["credential_definition"]["type"] == list(TYPES)
    assert degree["cryptographic_binding_methods_supported"] == ["jwk"]
    assert degree["proof_types_supported"]["jwt"]["proof_signing_alg_values_supported"]
    expected_paths = [
        ["credentialSubject", "given_name"],
        ["credentialSubject", "degree"],
        ["credentialSubject", "gpa"],
    ]
    if version in (SpecVersion.DRAFT_13, SpecVersion.DRAFT_14):
        assert degree["credential_definition"]["credentialSubject"] == {
            "given_name": {"display": [{"name": "Given Name", "locale": "en-US"}]},
            "degree": {},
            "gpa": {"mandatory": True, "display": [{"name": "GPA"}]},
        }
        assert "claims" not in degree
        assert degree["display"] == [{"name": "University Credential", "locale": "en-US"}]
    else:
        assert set(degree["credential_definition"]) == {"type"}
        holder = degree if version is SpecVersion.DRAFT_15 else degree["credential_metadata"]
        assert [c["path"] for c in holder["claims"]] == expected_paths
        assert holder["claims"][2]["mandatory"] is True
        assert holder["display"] == [{"name": "University Credential", "locale": "en-US"}]
    # our reader reads it back, in the version it was written in
    parsed, detected = parse_issuer_metadata(doc)
    assert detected is version
    assert parsed.configuration("degree").credential_definition is not None
    assert parsed.configuration("degree").format == "jwt_vc_json"


async def test_jwt_vc_issuer_metadata_serves_the_signing_key(clock: FakeClock) -> None:
    config = make_config(clock)
    transport = transport_for(Issuer(config))
    keys = await fetch_jwks(transport)
    assert keys[0]["kid"] == "issuer-key-1"


# -- credential requests of every version ------------------------------------------------------


def degree_request(version: SpecVersion, proofs: list[str], types: Any = TYPES) -> dict[str, Any]:
    """The request a wallet of ``version`` sends for ``degree``."""
    if version is SpecVersion.DRAFT_13:
        return {
            "format": "jwt_vc_json",
            "credential_definition": {"type": list(types)},
            "proof": {"proof_type": "jwt", "jwt": proofs[0]},
        }
    if version is SpecVersion.DRAFT_14:
        return {
            "format": "jwt_vc_json",
            "credential_definition": {"type": list(types)},
            "proofs": {"jwt": proofs},
        }
    if version is SpecVersion.DRAFT_15:
        return {
            "credential_configuration_id": "degree",
            "proof": {"proof_type": "jwt", "jwt": proofs[0]},
        }
    return {"credential_configuration_id": "degree", "proofs": {"jwt": proofs}}  # fmt: skip


async def _nonce(session: Session, version: SpecVersion) -> str:
    if version.c_nonce_in_responses:
        value = session.token_body["c_nonce"]
        assert isinstance(value, str)
        return value
    return await session.nonce()


def check_degree(
    credential: str, jwks: list[dict[str, Any]], holder: LocalSigner, clock: FakeClock
) -> None:
    verified = verify_jwt_vc_json(
        credential,
        issuer_keys=jwks,
        expected_issuer=ISSUER,
        expected_types=TYPES,
        expected_holder_jwk=holder.public_jwk,
        clock=clock,
    )
    assert verified.claims == DEGREE_SUBJECT  # sd() marks unwrapped: no selective disclosure
    assert verified.types == TYPES
    header, payload = verified.header, verified.payload
    assert header["typ"] == "JWT" and header["kid"] == "issuer-key-1"
    assert payload["sub"] == did_jwk(holder.public_jwk)
    assert payload["cnf"] == {"jwk": holder.public_jwk}
    assert payload["exp"] - payload["iat"] == 365 * 24 * 3600
    assert "~" not in credential


@pytest.mark.parametrize("version", list(SpecVersion), ids=lambda v: v.value)
async def test_raw_requests_of_every_version(clock: FakeClock, version: SpecVersion) -> None:
    issuer = Issuer(make_config(clock, version=version))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock, ids=("identity", "degree"))
    nonce = await _nonce(session, version)
    single = version in (SpecVersion.DRAFT_13, SpecVersion.DRAFT_15)
    keys = [LocalSigner.generate() for _ in range(1 if single else 3)]
    proofs = [await session.proof(k, nonce) for k in keys]
    response = await session.post("/credential", degree_request(version, proofs))
    assert response.status == 200, response.body
    body = response.json_body()
    assert ("c_nonce" in body) is version.c_nonce_in_responses
    credentials = credentials_of(version, body)
    assert len(credentials) == len(keys)
    jwks = await fetch_jwks(transport)
    for credential, key in zip(credentials, keys, strict=True):
        check_degree(credential, jwks, key, clock)
    # the SD-JWT VC configuration of the same issuer still works alongside
    nonce = await _nonce_after(session, version, body)
    key = LocalSigner.generate()
    proof = await session.proof(key, nonce)
    sd_request = (
        {"format": "vc+sd-jwt", "vct": VCT, "proof": {"proof_type": "jwt", "jwt": proof}}
        if version is SpecVersion.DRAFT_13
        else {"credential_configuration_id": "identity", "proofs": {"jwt": [proof]}}
        if version is not SpecVersion.DRAFT_14
        else {"format": "vc+sd-jwt", "vct": VCT, "proofs": {"jwt": [proof]}}
    )
    response = await session.post("/credential", sd_request)
    assert response.status == 200, response.body
    answer = response.json_body()
    # one credential: ``credential`` (Draft 13/14) or ``credentials: [{credential}]`` (15, 1.0)
    sd_jwt = (
        answer["credential"] if "credential" in answer else answer["credentials"][0]["credential"]
    )
    claims = check_sd_jwt_vc(sd_jwt, jwks=jwks, holder_jwk=key.public_jwk, typ=version.sd_jwt_typ)
    assert claims["given_name"] == "Alice"


async def _nonce_after(session: Session, version: SpecVersion, body: Mapping[str, Any]) -> str:
    if version.c_nonce_in_responses:
        value = body["c_nonce"]
        assert isinstance(value, str)
        return value
    return await session.nonce()


async def test_d13_request_with_claims_by_hand(clock: FakeClock) -> None:
    """The spec's Draft 13 ``credential_request_jwt_vc_json_with_claims`` shape, our proof."""
    issuer = Issuer(make_config(clock, version=SpecVersion.DRAFT_13))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock, ids=("degree",))
    key = LocalSigner.generate()
    proof = await session.proof(key, session.token_body["c_nonce"])
    body = {
        "format": "jwt_vc_json",
        "credential_definition": {
            "type": ["UniversityDegreeCredential", "VerifiableCredential"],  # order is free
            "credentialSubject": {"given_name": {}, "family_name": {}, "degree": {}},
        },
        "proof": {"proof_type": "jwt", "jwt": proof},
    }
    response = await session.post("/credential", body)
    assert response.status == 200, response.body
    answer = response.json_body()
    assert set(answer) == {"credential", "c_nonce", "c_nonce_expires_in", "notification_id"}
    check_degree(answer["credential"], await fetch_jwks(transport), key, clock)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (
            {
                "format": "jwt_vc_json",
                "credential_definition": {"type": ["VerifiableCredential", "OtherCredential"]},
            },
            ErrorCode.UNSUPPORTED_CREDENTIAL_TYPE,
        ),
        (
            {"format": "jwt_vc_json", "credential_definition": {"type": ["VerifiableCredential"]}},
            ErrorCode.UNSUPPORTED_CREDENTIAL_TYPE,
        ),
        ({"format": "jwt_vc_json"}, ErrorCode.INVALID_CREDENTIAL_REQUEST),
        (
            {"format": "jwt_vc_json", "credential_definition": {"type": "VerifiableCredential"}},
            ErrorCode.INVALID_CREDENTIAL_REQUEST,
        ),
        (
            {"format": "jwt_vc_json", "credential_definition": {"type": []}},
            ErrorCode.INVALID_CREDENTIAL_REQUEST,
        ),
        (
            {"format": "ldp_vc", "credential_definition": {"type": list(TYPES)}},
            ErrorCode.UNSUPPORTED_CREDENTIAL_FORMAT,
        ),
    ],
)
async def test_d13_request_errors(clock: FakeClock, body: dict[str, Any], code: str) -> None:
    issuer = Issuer(make_config(clock, version=SpecVersion.DRAFT_13))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock, ids=("degree",))
    proof = await session.proof(LocalSigner.generate(), session.token_body["c_nonce"])
    response = await session.post(
        "/credential", {**body, "proof": {"proof_type": "jwt", "jwt": proof}}
    )
    assert response.status == 400
    assert response.json_body()["error"] == code


async def test_token_must_cover_the_jwt_vc_json_configuration(clock: FakeClock) -> None:
    issuer = Issuer(make_config(clock, version=SpecVersion.DRAFT_14))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock, ids=("identity",))
    proof = await session.proof(LocalSigner.generate(), session.token_body["c_nonce"])
    response = await session.post("/credential", degree_request(SpecVersion.DRAFT_14, [proof]))
    assert response.status == 400
    assert response.json_body()["error"] == ErrorCode.CREDENTIAL_REQUEST_DENIED


async def test_deferred_jwt_vc_json(clock: FakeClock) -> None:
    hook = TwoFormatClaims()
    hook.defer = 5
    config = make_config(clock, claims_source=hook)
    issuer = Issuer(config)
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock, ids=("degree",))
    key = LocalSigner.generate()
    proof = await session.proof(key, await session.nonce())
    response = await session.post("/credential", degree_request(SpecVersion.V1, [proof]))
    assert response.status == 202, response.body
    transaction_id = response.json_body()["transaction_id"]
    hook.defer = None
    await complete_deferred(transaction_id, config, await hook("alice", "degree"))
    response = await session.post("/deferred", {"transaction_id": transaction_id})
    assert response.status == 200, response.body
    (credential,) = credentials_of(SpecVersion.V1, response.json_body())
    check_degree(credential, await fetch_jwks(transport), key, clock)


async def test_mint_refuses_a_subject_id_from_the_claims_source(clock: FakeClock) -> None:
    config = make_config(clock)
    spec = config.credential_configurations["degree"]
    holder = LocalSigner.generate().public_jwk
    v1 = SpecVersion.V1
    minted = await create_credentials(
        spec, config, claims={"a": sd(1)}, holder_jwks=[holder], version=v1
    )
    assert decode_jws(minted[0]).payload["vc"]["credentialSubject"]["a"] == 1
    with pytest.raises(UnissuableClaimsError, match="degree"):
        await create_credentials(
            spec, config, claims={"id": "did:example:x"}, holder_jwks=[holder], version=v1
        )
    with pytest.raises(UnissuableClaimsError):
        await create_credentials(spec, config, claims={"a": 1}, holder_jwks=[], version=v1)


def test_d13_authorization_details_by_format(clock: FakeClock) -> None:
    config = make_config(clock)
    ids, entries = verify_authorization_details(
        '[{"type":"openid_credential","format":"jwt_vc_json",'
        '"credential_definition":{"type":["VerifiableCredential","UniversityDegreeCredential"]}}]',
        config,
    )
    assert ids == ("degree",)
    assert entries[0]["credential_configuration_id"] == "degree"
    with pytest.raises(AuthorizationError) as info:
        verify_authorization_details(
            '[{"type":"openid_credential","format":"jwt_vc_json",'
            '"credential_definition":{"type":["VerifiableCredential"]}}]',
            config,
        )
    assert info.value.error == ErrorCode.INVALID_AUTHORIZATION_DETAILS
