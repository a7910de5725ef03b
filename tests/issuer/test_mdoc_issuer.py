"""The issuer's ``mso_mdoc`` configurations: spec checks, metadata per version, raw requests
of every version's shape, batch issuance (one MSO per holder key), refusals.

Every minted mdoc is checked with :func:`oid4vci.mdoc.verify_mdoc` against the IACA root of
the test's certificates, with the holder key of its proof as the expected ``deviceKey``.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

import pytest

from oid4vci.errors import AuthorizationError, ErrorCode, UsageError
from oid4vci.issuer import (
    CredentialConfigurationSpec,
    Issuer,
    IssuerConfig,
    MemoryStore,
    create_issuer_metadata,
)
from oid4vci.issuer.authorization import verify_authorization_details
from oid4vci.issuer.config import DocumentSigner
from oid4vci.issuer.credential import UnissuableClaimsError, create_credentials
from oid4vci.jose import LocalSigner, jwk_thumbprint
from oid4vci.mdoc import verify_mdoc
from oid4vci.mdoc_certificates import MdocIssuerCertificates, create_iaca_and_document_signer
from oid4vci.models import parse_issuer_metadata
from oid4vci.sdjwt import sd
from oid4vci.versions import SpecVersion
from tests.conftest import FakeClock
from tests.issuer.test_service import (
    ISSUER,
    VCT,
    LoginAll,
    Session,
    credentials_of,
    pre_authorized_session,
    transport_for,
)

MDL = "org.iso.18013.5.1"
DOCTYPE = "org.iso.18013.5.1.mDL"
ELEMENTS: dict[str, Any] = {
    "family_name": "Liddell",
    "given_name": "Alice",
    "birth_date": datetime.date(2000, 5, 4),
    "issuing_country": "UT",
    "document_number": "X1",
}
MDL_CLAIMS: list[dict[str, Any]] = [
    {"path": [MDL, "given_name"], "display": [{"name": "Given name", "locale": "en-US"}]},
    {"path": [MDL, "birth_date"], "mandatory": True},
    {"path": ["org.iso.18013.5.1.aamva", "organ_donor"]},
]


class MdlClaims:
    """mDL elements by namespace (an ``sd()`` mark is dropped), or SD-JWT claims."""

    def __init__(self, elements: Mapping[str, Any] | None = None) -> None:
        self.elements = dict(ELEMENTS if elements is None else elements)

    async def __call__(self, subject: str, configuration_id: str) -> Mapping[str, Any]:
        if configuration_id == "mdl":
            return {MDL: self.elements, "org.iso.18013.5.1.aamva": {"organ_donor": sd(True)}}
        return {"given_name": sd("Alice")}


def mdl_spec(**kwargs: Any) -> CredentialConfigurationSpec:
    options: dict[str, Any] = {
        "id": "mdl",
        "format": "mso_mdoc",
        "doctype": DOCTYPE,
        "scope": "mdl",
        "display": [{"name": "mDL", "locale": "en-US"}],
        "claims": MDL_CLAIMS,
    }
    options.update(kwargs)
    return CredentialConfigurationSpec(**options)


@pytest.fixture
def certificates(clock: FakeClock) -> MdocIssuerCertificates:
    return create_iaca_and_document_signer(country="UT", clock=clock)


def make_config(
    clock: FakeClock,
    certificates: MdocIssuerCertificates,
    *,
    version: SpecVersion = SpecVersion.V1,
    **kwargs: Any,
) -> IssuerConfig:
    options: dict[str, Any] = {
        "credential_issuer": ISSUER,
        "credential_signer": LocalSigner.generate(kid="issuer-key-1"),
        "credential_configurations": [
            CredentialConfigurationSpec(id="identity", vct=VCT, scope="identity"),
            mdl_spec(),
        ],
        "document_signer": DocumentSigner(
            signer=certificates.signer, certificate_chain=certificates.certificate_chain
        ),
        "claims_source": MdlClaims(),
        "store": MemoryStore(clock=clock),
        "user_authenticator": LoginAll(),
        "published_version": version,
        "clock": clock,
    }
    options.update(kwargs)
    return IssuerConfig(**options)


# -- configuration ----------------------------------------------------------------------------


def test_spec_validation(clock: FakeClock, certificates: MdocIssuerCertificates) -> None:
    spec = mdl_spec()
    assert spec.is_mdoc and not spec.is_sd_jwt_vc and spec.doctype == DOCTYPE
    bad: list[dict[str, Any]] = [
        {"doctype": None},
        {"doctype": ""},
        {"vct": "urn:x"},
        {"credential_definition_types": ["VerifiableCredential"]},
        {"claims": [{"path": [MDL]}]},  # a path is [namespace, element]
        {"claims": [{"path": [MDL, "a", "b"]}]},
        {"claims": [{"path": [MDL, 0]}]},
        {"credential_signing_alg": "RS256"},
    ]
    for options in bad:
        with pytest.raises(UsageError):
            mdl_spec(**options)
    with pytest.raises(UsageError, match="doctype is only for mso_mdoc"):
        CredentialConfigurationSpec(id="a", vct="urn:a", doctype=DOCTYPE)
    with pytest.raises(UsageError, match="document_signer"):
        make_config(clock, certificates, document_signer=None)
    other = create_iaca_and_document_signer(clock=clock)
    with pytest.raises(UsageError, match="key"):
        DocumentSigner(signer=other.signer, certificate_chain=certificates.certificate_chain)
    signer = DocumentSigner(
        signer=certificates.signer, certificate_chain=certificates.document_signer
    )
    assert signer.certificate_chain == (certificates.document_signer,)
    assert signer.country == "UT"
    assert "PRIVATE" not in repr(signer) and "signer=" not in repr(signer)


@pytest.mark.parametrize("version", list(SpecVersion), ids=lambda v: v.value)
def test_metadata_per_version(
    clock: FakeClock, certificates: MdocIssuerCertificates, version: SpecVersion
) -> None:
    doc = create_issuer_metadata(make_config(clock, certificates), version=version)
    mdl = doc["credential_configurations_supported"]["mdl"]
    assert mdl["format"] == "mso_mdoc" and mdl["doctype"] == DOCTYPE
    assert "vct" not in mdl and "credential_definition" not in mdl
    assert mdl["cryptographic_binding_methods_supported"] == ["cose_key"]
    assert mdl["proof_types_supported"]["jwt"]["proof_signing_alg_values_supported"]
    if version is SpecVersion.V1:
        # OID4VCI 1.0 Appendix A.2.2: COSE algorithm identifiers (ES256 = -7)
        assert mdl["credential_signing_alg_values_supported"] == [-7]
        holder: dict[str, Any] = mdl["credential_metadata"]
    else:
        # Draft 13-15 Appendix A.2.2: names as ISO/IEC 18013-5 spells them
        assert mdl["credential_signing_alg_values_supported"] == ["ES256"]
        holder = mdl
    assert holder["display"] == [{"name": "mDL", "locale": "en-US"}]
    if version in (SpecVersion.DRAFT_13, SpecVersion.DRAFT_14):
        # Draft 13/14 Appendix A.2.2: claims map namespace -> element -> description
        assert mdl["claims"] == {
            MDL: {
                "given_name": {"display": [{"name": "Given name", "locale": "en-US"}]},
                "birth_date": {"mandatory": True},
            },
            "org.iso.18013.5.1.aamva": {"organ_donor": {}},
        }
    else:
        assert [c["path"] for c in holder["claims"]] == [c["path"] for c in MDL_CLAIMS]
        assert holder["claims"][1]["mandatory"] is True
    parsed, detected = parse_issuer_metadata(doc)
    assert detected is version
    assert parsed.configuration("mdl").doctype == DOCTYPE


# -- requests of every version ------------------------------------------------------------------


def mdl_request(version: SpecVersion, proofs: list[str], doctype: str = DOCTYPE) -> dict[str, Any]:
    """The request a wallet of ``version`` sends for the mDL."""
    if version is SpecVersion.DRAFT_13:
        return {
            "format": "mso_mdoc",
            "doctype": doctype,
            "proof": {"proof_type": "jwt", "jwt": proofs[0]},
        }
    if version is SpecVersion.DRAFT_14:
        return {"format": "mso_mdoc", "doctype": doctype, "proofs": {"jwt": proofs}}
    return {"credential_configuration_id": "mdl", "proofs": {"jwt": proofs}}


async def _nonce(session: Session, version: SpecVersion) -> str:
    if version.c_nonce_in_responses:
        value = session.token_body["c_nonce"]
        assert isinstance(value, str)
        return value
    return await session.nonce()


@pytest.mark.parametrize("version", list(SpecVersion), ids=lambda v: v.value)
async def test_raw_requests_of_every_version_batch(
    clock: FakeClock, certificates: MdocIssuerCertificates, version: SpecVersion
) -> None:
    issuer = Issuer(make_config(clock, certificates, version=version))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock, ids=("identity", "mdl"))
    nonce = await _nonce(session, version)
    keys = [LocalSigner.generate() for _ in range(1 if version is SpecVersion.DRAFT_13 else 3)]
    proofs = [await session.proof(k, nonce) for k in keys]
    response = await session.post("/credential", mdl_request(version, proofs))
    assert response.status == 200, response.body
    credentials = credentials_of(version, response.json_body())
    assert len(credentials) == len(keys)
    device_keys = set()
    for credential, key in zip(credentials, keys, strict=True):
        verified = verify_mdoc(
            credential,
            trust_anchors=[certificates.iaca],
            expected_doctype=DOCTYPE,
            holder_keys=[key.public_jwk],
            clock=clock,
        )
        assert verified.claims[MDL] == ELEMENTS
        assert verified.claims["org.iso.18013.5.1.aamva"] == {"organ_donor": True}
        assert verified.validity.valid_until - verified.validity.valid_from == datetime.timedelta(
            days=365
        )
        assert verified.certificate_chain == certificates.certificate_chain
        device_keys.add(jwk_thumbprint(verified.device_key))
    assert len(device_keys) == len(keys), "one MSO per holder key"


@pytest.mark.parametrize("version", [SpecVersion.DRAFT_13, SpecVersion.DRAFT_14])
@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"doctype": "org.example.other"}, ErrorCode.UNSUPPORTED_CREDENTIAL_TYPE),
        ({"doctype": None}, ErrorCode.INVALID_CREDENTIAL_REQUEST),
    ],
)
async def test_draft_requests_by_doctype_are_checked(
    clock: FakeClock,
    certificates: MdocIssuerCertificates,
    version: SpecVersion,
    change: dict[str, Any],
    code: str,
) -> None:
    issuer = Issuer(make_config(clock, certificates, version=version))
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock, ids=("mdl",))
    proof = await session.proof(LocalSigner.generate(), await _nonce(session, version))
    body = {**mdl_request(version, [proof]), **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = await session.post("/credential", body)
    assert response.status == 400
    assert response.json_body()["error"] == code


async def test_an_issuer_without_mdoc_says_unsupported_format(clock: FakeClock) -> None:
    config = IssuerConfig(
        credential_issuer=ISSUER,
        credential_signer=LocalSigner.generate(),
        credential_configurations=[CredentialConfigurationSpec(id="identity", vct=VCT)],
        claims_source=MdlClaims(),
        store=MemoryStore(clock=clock),
        published_version=SpecVersion.DRAFT_13,
        clock=clock,
    )
    issuer = Issuer(config)
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock, ids=("identity",))
    proof = await session.proof(LocalSigner.generate(), session.token_body["c_nonce"])
    response = await session.post("/credential", mdl_request(SpecVersion.DRAFT_13, [proof]))
    assert response.status == 400
    assert response.json_body()["error"] == ErrorCode.UNSUPPORTED_CREDENTIAL_FORMAT


# -- claims the configuration cannot carry --------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "match"),
    [
        ({MDL: {"issuing_country": "FR"}}, "issuing_country"),
        ({MDL: {"portrait": object()}}, "cannot be issued"),
        ({MDL: "not a map"}, "namespaces"),
        ({}, "cannot be issued"),
    ],
)
async def test_unissuable_claims_are_a_typed_server_fault(
    clock: FakeClock, certificates: MdocIssuerCertificates, claims: Any, match: str
) -> None:
    config = make_config(clock, certificates)
    holder = LocalSigner.generate().public_jwk
    with pytest.raises(UnissuableClaimsError, match=match) as info:
        await create_credentials(
            config.credential_configurations["mdl"],
            config,
            claims=claims,
            holder_jwks=[holder],
            version=SpecVersion.V1,
        )
    assert "FR" not in str(info.value)  # no claim value in the message


async def test_unissuable_claims_answer_500_server_error(
    clock: FakeClock, certificates: MdocIssuerCertificates
) -> None:
    config = make_config(clock, certificates, claims_source=MdlClaims({"issuing_country": "FR"}))
    issuer = Issuer(config)
    transport = transport_for(issuer)
    session = await pre_authorized_session(issuer, transport, clock, ids=("mdl",))
    proof = await session.proof(LocalSigner.generate(), await session.nonce())
    response = await session.post("/credential", mdl_request(SpecVersion.V1, [proof]))
    assert response.status == 500
    assert response.json_body() == {"error": "server_error"}


def test_d13_authorization_details_by_format_and_doctype(
    clock: FakeClock, certificates: MdocIssuerCertificates
) -> None:
    """Draft 13/14 Appendix A.2.3: ``format`` ``mso_mdoc`` with ``doctype`` names the mDL."""
    config = make_config(clock, certificates)
    ids, entries = verify_authorization_details(
        f'[{{"type":"openid_credential","format":"mso_mdoc","doctype":"{DOCTYPE}"}}]', config
    )
    assert ids == ("mdl",)
    assert entries[0]["credential_configuration_id"] == "mdl"
    for other in ('"doctype":"org.example.other"', '"vct":"urn:x"'):
        with pytest.raises(AuthorizationError) as info:
            verify_authorization_details(
                f'[{{"type":"openid_credential","format":"mso_mdoc",{other}}}]', config
            )
        assert info.value.error == ErrorCode.INVALID_AUTHORIZATION_DETAILS
