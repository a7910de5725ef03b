"""``oid4vci.jwtvc``: the spec's jwt_vc_json vector, issue → verify, and every failure reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from oid4vci.errors import CredentialVerificationError, JoseError, ValidationError
from oid4vci.jose import (
    LocalSigner,
    b64url_decode,
    create_jws,
    decode_jws,
    jwk_thumbprint,
    jwk_thumbprint_uri,
)
from oid4vci.jwtvc import (
    VC_BASE_CONTEXT,
    JwtVcReason,
    JwtVcVerificationError,
    did_jwk,
    issue_jwt_vc_json,
    resolve_did_jwk,
    verify_jwt_vc_json,
)
from oid4vci.sdjwt import SdJwtReason, sd
from tests.conftest import FakeClock

SPEC_ISSUER = "https://credential-issuer.example.com"
SPEC_TYPES = ("VerifiableCredential", "UniversityDegreeCredential")
ISSUER = "https://issuer.example"
TYPES = ("VerifiableCredential", "UniversityDegreeCredential")
SUBJECT = {"given_name": "Alice", "degree": {"type": "BachelorDegree", "name": "BSc"}}


# -- the spec vector -------------------------------------------------------------------------


def test_spec_vector_verifies(vectors: dict[str, Any]) -> None:
    oid4vci = vectors["oid4vci"]
    token = oid4vci["jwt_vc_json_credential_v1_0"]
    issuer_jwk = oid4vci["jwt_vc_json_issuer_jwk"]
    holder_did = oid4vci["did_jwk_subject_of_jwt_vc_json"]["did"]
    holder = resolve_did_jwk(holder_did)
    assert jwk_thumbprint(holder) == oid4vci["did_jwk_subject_of_jwt_vc_json"]["thumbprint"]
    verified = verify_jwt_vc_json(
        token,
        issuer_keys=[issuer_jwk],
        expected_issuer=SPEC_ISSUER,
        expected_types=SPEC_TYPES,
        expected_holder_jwk=holder,
        clock=lambda: 1_750_000_000,
    )
    assert verified.header["typ"] == "JWT"
    assert verified.header["kid"] == jwk_thumbprint_uri(issuer_jwk)
    assert verified.types == SPEC_TYPES
    assert verified.issuer == SPEC_ISSUER
    assert verified.claims == {
        "degree": {"type": "BachelorDegree", "name": "Bachelor of Science and Arts"}
    }
    assert verified.holder_jwk is not None
    assert jwk_thumbprint(verified.holder_jwk) == jwk_thumbprint(holder)
    assert verified.payload["sub"] == holder_did
    assert verified.raw == token


def test_spec_vector_is_refused_before_nbf_and_by_another_issuer(vectors: dict[str, Any]) -> None:
    oid4vci = vectors["oid4vci"]
    token = oid4vci["jwt_vc_json_credential_v1_0"]
    keys = [oid4vci["jwt_vc_json_issuer_jwk"]]
    with pytest.raises(JwtVcVerificationError) as info:
        verify_jwt_vc_json(token, issuer_keys=keys, clock=lambda: 1_735_689_600 - 3600)
    assert info.value.reason == JwtVcReason.NOT_YET_VALID
    with pytest.raises(JwtVcVerificationError) as info:
        verify_jwt_vc_json(
            token, issuer_keys=keys, expected_issuer=ISSUER, clock=lambda: 1_750_000_000
        )
    assert info.value.reason == JwtVcReason.ISSUER_MISMATCH


def test_did_jwk_round_trip(vectors: dict[str, Any]) -> None:
    signer = LocalSigner.generate()
    did = did_jwk(signer.public_jwk)
    assert did.startswith("did:jwk:")
    assert json.loads(b64url_decode(did.removeprefix("did:jwk:"))) == signer.public_jwk
    assert resolve_did_jwk(did) == signer.public_jwk
    assert resolve_did_jwk(did + "#0") == signer.public_jwk
    vector = vectors["oid4vci"]["did_jwk_subject_of_jwt_vc_json"]
    assert jwk_thumbprint(resolve_did_jwk(vector["did"])) == vector["thumbprint"]
    for bad in ("did:example:123", "did:jwk:!!", "did:jwk:" + "eyJhIjoxfQ", 5):
        with pytest.raises(JoseError):
            resolve_did_jwk(bad)  # type: ignore[arg-type]
    with pytest.raises(JoseError):
        did_jwk(signer.private_jwk())


def test_reason_codes_shared_with_sd_jwt() -> None:
    assert JwtVcReason.SIGNATURE == SdJwtReason.SIGNATURE
    assert JwtVcReason.CNF_MISMATCH == SdJwtReason.CNF_MISMATCH
    assert JwtVcReason.ISSUER_MISMATCH == SdJwtReason.ISSUER_MISMATCH
    assert issubclass(JwtVcVerificationError, CredentialVerificationError)


# -- issue → verify --------------------------------------------------------------------------


async def test_status_claim(clock: FakeClock) -> None:
    issuer = LocalSigner.generate(kid="issuer-key-1")
    status = {"status_list": {"idx": 7, "uri": "https://issuer.example/status-lists/1"}}
    token = await issue_jwt_vc_json(
        issuer,
        issuer=ISSUER,
        types=TYPES,
        credential_subject=SUBJECT,
        holder_jwk=LocalSigner.generate().public_jwk,
        status=status,
        clock=clock,
    )
    assert decode_jws(token).payload["status"] == status
    verify_jwt_vc_json(token, issuer_keys=[issuer.public_jwk], clock=clock)
    with pytest.raises(ValidationError, match="status"):
        await issue_jwt_vc_json(
            issuer,
            issuer=ISSUER,
            types=TYPES,
            credential_subject=SUBJECT,
            holder_jwk=None,
            status="revoked",  # type: ignore[arg-type]
        )


async def test_issue_and_verify_round_trip(clock: FakeClock) -> None:
    issuer = LocalSigner.generate(kid="issuer-key-1")
    holder = LocalSigner.generate()
    now = int(clock())
    token = await issue_jwt_vc_json(
        issuer,
        issuer=ISSUER,
        types=TYPES,
        credential_subject=SUBJECT,
        holder_jwk=holder.public_jwk,
        exp=now + 3600,
        kid="issuer-key-1",
        clock=clock,
    )
    jws = decode_jws(token)
    assert jws.header == {"typ": "JWT", "kid": "issuer-key-1", "alg": "ES256"}
    payload = jws.payload
    did = did_jwk(holder.public_jwk)
    assert payload["iss"] == ISSUER
    assert payload["iat"] == payload["nbf"] == now
    assert payload["exp"] == now + 3600
    assert payload["jti"].startswith("urn:uuid:")
    assert payload["sub"] == did
    assert payload["cnf"] == {"jwk": holder.public_jwk}
    assert payload["vc"] == {
        "@context": [VC_BASE_CONTEXT],
        "type": list(TYPES),
        "credentialSubject": {"id": did, **SUBJECT},
    }
    verified = verify_jwt_vc_json(
        token,
        issuer_keys=[issuer.public_jwk],
        expected_issuer=ISSUER,
        expected_types=["UniversityDegreeCredential"],
        expected_holder_jwk=holder.public_jwk,
        clock=clock,
    )
    assert verified.claims == SUBJECT
    assert verified.types == TYPES
    assert verified.holder_jwk == holder.public_jwk
    # fresh jti each time
    again = await issue_jwt_vc_json(
        issuer, issuer=ISSUER, types=TYPES, credential_subject=SUBJECT,
        holder_jwk=holder.public_jwk, clock=clock,
    )  # fmt: skip
    assert decode_jws(again).payload["jti"] != payload["jti"]
    assert "exp" not in decode_jws(again).payload
    # secrets and claim values stay out of the repr
    assert "Alice" not in repr(verified) and token not in repr(verified)


async def test_issue_without_holder_key(clock: FakeClock) -> None:
    issuer = LocalSigner.generate()
    token = await issue_jwt_vc_json(
        issuer,
        issuer=ISSUER,
        types=["VerifiableCredential"],
        credential_subject={"id": "did:example:alice", "name": "Alice"},
        holder_jwk=None,
        iat=100,
        nbf=50,
        clock=clock,
    )
    payload = decode_jws(token).payload
    assert payload["sub"] == "did:example:alice"
    assert "cnf" not in payload and (payload["iat"], payload["nbf"]) == (100, 50)
    verified = verify_jwt_vc_json(token, issuer_keys=[issuer.public_jwk], clock=clock)
    assert verified.claims == {"name": "Alice"}
    assert verified.holder_jwk is None  # did:example is not resolved
    with pytest.raises(JwtVcVerificationError) as info:
        verify_jwt_vc_json(
            token,
            issuer_keys=[issuer.public_jwk],
            expected_holder_jwk=LocalSigner.generate().public_jwk,
            clock=clock,
        )
    assert info.value.reason == JwtVcReason.HOLDER_MISMATCH


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"types": ["UniversityDegreeCredential"]}, "VerifiableCredential"),
        ({"types": "VerifiableCredential"}, "sequence"),
        ({"types": []}, "non-empty"),
        ({"types": ["VerifiableCredential", "VerifiableCredential"]}, "repeat"),
        ({"credential_subject": {"name": sd("Alice")}}, "selective disclosure"),
        ({"credential_subject": {"id": "did:example:x"}}, "'id'"),
        ({"credential_subject": {"n": float("nan")}}, "finite"),
        ({"credential_subject": {"n": object()}}, "not JSON"),
        ({"credential_subject": {1: "x"}}, "strings"),
        ({"issuer": ""}, "issuer"),
        ({"exp": "soon"}, "NumericDate"),
        ({"kid": ""}, "kid"),
    ],
)
async def test_issue_refuses_unusable_input(
    kwargs: dict[str, Any], message: str, clock: FakeClock
) -> None:
    signer = LocalSigner.generate()
    options: dict[str, Any] = {
        "issuer": ISSUER,
        "types": TYPES,
        "credential_subject": SUBJECT,
        "holder_jwk": LocalSigner.generate().public_jwk,
        "clock": clock,
    }
    options.update(kwargs)
    with pytest.raises(ValidationError, match=message):
        await issue_jwt_vc_json(signer, **options)


async def test_issue_refuses_a_private_holder_key(clock: FakeClock) -> None:
    with pytest.raises(JoseError):
        await issue_jwt_vc_json(
            LocalSigner.generate(),
            issuer=ISSUER,
            types=TYPES,
            credential_subject=SUBJECT,
            holder_jwk=LocalSigner.generate().private_jwk(),
            clock=clock,
        )


# -- every failure reason --------------------------------------------------------------------

ISSUER_KEY = LocalSigner.generate(kid="k1")
OTHER_KEY = LocalSigner.generate(kid="k1")
HOLDER = LocalSigner.generate()
HOLDER_DID = did_jwk(HOLDER.public_jwk)
NOW = 1_750_000_000


def good_payload() -> dict[str, Any]:
    return {
        "iss": ISSUER,
        "iat": NOW,
        "nbf": NOW,
        "exp": NOW + 3600,
        "jti": "urn:uuid:00000000-0000-4000-8000-000000000000",
        "sub": HOLDER_DID,
        "cnf": {"jwk": HOLDER.public_jwk},
        "vc": {
            "@context": [VC_BASE_CONTEXT],
            "type": list(TYPES),
            "credentialSubject": {"id": HOLDER_DID, "given_name": "Alice"},
        },
    }


Edit = Callable[[dict[str, Any], dict[str, Any]], None]


def _set(path: str, value: Any) -> Edit:
    def edit(header: dict[str, Any], payload: dict[str, Any]) -> None:
        target: dict[str, Any] = header if path.startswith("header.") else payload
        parts = path.removeprefix("header.").split(".")
        for part in parts[:-1]:
            target = target[part]
        target[parts[-1]] = value

    return edit


def _drop(path: str) -> Edit:
    def edit(header: dict[str, Any], payload: dict[str, Any]) -> None:
        target: dict[str, Any] = payload
        parts = path.split(".")
        for part in parts[:-1]:
            target = target[part]
        del target[parts[-1]]

    return edit


OTHER_HOLDER_DID = did_jwk(LocalSigner.generate().public_jwk)

FAILURES: list[tuple[str, Edit, dict[str, Any], str]] = [
    ("no-vc", _drop("vc"), {}, JwtVcReason.MALFORMED),
    ("vc-not-object", _set("vc", "x"), {}, JwtVcReason.MALFORMED),
    ("no-context", _drop("vc.@context"), {}, JwtVcReason.MALFORMED),
    ("wrong-context", _set("vc.@context", ["https://example.com/ctx"]), {}, JwtVcReason.MALFORMED),
    ("no-vc-type", _set("vc.type", ["UniversityDegreeCredential"]), {}, JwtVcReason.MALFORMED),
    ("type-not-strings", _set("vc.type", ["VerifiableCredential", 5]), {}, JwtVcReason.MALFORMED),
    ("subject-array", _set("vc.credentialSubject", [{}]), {}, JwtVcReason.MALFORMED),
    ("no-iss", _drop("iss"), {}, JwtVcReason.MALFORMED),
    ("typ", _set("header.typ", "dc+sd-jwt"), {}, JwtVcReason.TYP),
    ("issuer", _set("iss", "https://evil.example"), {}, JwtVcReason.ISSUER_MISMATCH),
    ("vc-issuer", _set("vc.issuer", "https://evil.example"), {}, JwtVcReason.ISSUER_MISMATCH),
    (
        "vc-issuer-object",
        _set("vc.issuer", {"id": "https://evil.example"}),
        {},
        JwtVcReason.ISSUER_MISMATCH,
    ),
    ("type", _set("vc.type", ["VerifiableCredential"]), {}, JwtVcReason.TYPE_MISMATCH),
    ("expired", _set("exp", NOW - 3600), {}, JwtVcReason.EXPIRED),
    ("not-yet-valid", _set("nbf", NOW + 3600), {}, JwtVcReason.NOT_YET_VALID),
    ("issued-in-future", _set("iat", NOW + 3600), {}, JwtVcReason.ISSUED_IN_FUTURE),
    ("exp-not-number", _set("exp", "tomorrow"), {}, JwtVcReason.CLAIM_TYPE),
    ("exp-beyond-float", _set("exp", 10**400), {}, JwtVcReason.CLAIM_TYPE),
    ("exp-nan", _set("exp", float("nan")), {}, JwtVcReason.CLAIM_TYPE),
    ("nbf-infinite", _set("nbf", float("-inf")), {}, JwtVcReason.CLAIM_TYPE),
    ("cnf-not-object", _set("cnf", "x"), {}, JwtVcReason.CNF_INVALID),
    ("cnf-private", _set("cnf.jwk", HOLDER.private_jwk()), {}, JwtVcReason.CNF_INVALID),
    (
        "cnf-mismatch",
        _set("cnf.jwk", LocalSigner.generate().public_jwk),
        {"drop_did": True},
        JwtVcReason.CNF_MISMATCH,
    ),
    ("sub-differs", _set("sub", OTHER_HOLDER_DID), {}, JwtVcReason.HOLDER_MISMATCH),
    (
        "cnf-and-did-differ",
        _set("cnf.jwk", LocalSigner.generate().public_jwk),
        {},
        JwtVcReason.HOLDER_MISMATCH,
    ),
    ("did-jwk-broken", _set("sub", "did:jwk:eyJhIjoxfQ"), {"drop_subject_id": True}, JwtVcReason.CNF_INVALID),
    ("sub-not-string", _set("sub", 5), {}, JwtVcReason.CLAIM_TYPE),
]  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "options", "reason"),
    [pytest.param(e, o, r, id=i) for i, e, o, r in FAILURES],
)
async def test_failure_reasons(edit: Edit, options: dict[str, Any], reason: str) -> None:
    header: dict[str, Any] = {"typ": "JWT", "kid": "k1"}
    payload = good_payload()
    if options.get("drop_did"):
        del payload["sub"]
        del payload["vc"]["credentialSubject"]["id"]
    if options.get("drop_subject_id"):
        del payload["vc"]["credentialSubject"]["id"]
    edit(header, payload)
    token = await create_jws(ISSUER_KEY, payload, header)
    with pytest.raises(JwtVcVerificationError) as info:
        verify_jwt_vc_json(
            token,
            issuer_keys=[ISSUER_KEY.public_jwk],
            expected_issuer=ISSUER,
            expected_types=TYPES,
            expected_holder_jwk=HOLDER.public_jwk,
            clock=lambda: NOW,
        )
    assert info.value.reason == reason
    assert str(info.value).startswith(reason + ":")


async def test_the_good_payload_verifies() -> None:
    # the baseline of test_failure_reasons
    token = await create_jws(ISSUER_KEY, good_payload(), {"typ": "JWT", "kid": "k1"})
    verified = verify_jwt_vc_json(
        token,
        issuer_keys=[ISSUER_KEY.public_jwk],
        expected_issuer=ISSUER,
        expected_types=TYPES,
        expected_holder_jwk=HOLDER.public_jwk,
        clock=lambda: NOW,
    )
    assert verified.claims == {"given_name": "Alice"}
    # without typ (VCDM 1.1: "if present"), and bound by did:jwk only
    payload = good_payload()
    del payload["cnf"]
    token = await create_jws(ISSUER_KEY, payload, {"kid": "k1"})
    verified = verify_jwt_vc_json(
        token,
        issuer_keys=[ISSUER_KEY.public_jwk],
        expected_holder_jwk=HOLDER.public_jwk,
        clock=lambda: NOW,
    )
    assert verified.holder_jwk == HOLDER.public_jwk
    # did:jwk bound, expecting another holder: holder mismatch
    with pytest.raises(JwtVcVerificationError) as info:
        verify_jwt_vc_json(
            token,
            issuer_keys=[ISSUER_KEY.public_jwk],
            expected_holder_jwk=LocalSigner.generate().public_jwk,
            clock=lambda: NOW,
        )
    assert info.value.reason == JwtVcReason.HOLDER_MISMATCH
    # leeway covers small skews
    verify_jwt_vc_json(
        token, issuer_keys=[ISSUER_KEY.public_jwk], clock=lambda: NOW - 30, leeway=60
    )


async def test_signature_key_and_algorithm_failures() -> None:
    token = await create_jws(ISSUER_KEY, good_payload(), {"typ": "JWT", "kid": "k1"})

    def reason(**kwargs: Any) -> str:
        with pytest.raises(JwtVcVerificationError) as info:
            verify_jwt_vc_json(token, clock=lambda: NOW, **kwargs)
        return info.value.reason

    # same kid, other key: the signature does not verify
    assert reason(issuer_keys=[OTHER_KEY.public_jwk]) == JwtVcReason.SIGNATURE
    # no key with that kid
    other_kid = LocalSigner.generate(kid="k2").public_jwk
    assert reason(issuer_keys=[other_kid]) == JwtVcReason.UNKNOWN_KEY
    # algorithm not in the allow-list
    assert reason(issuer_keys=[ISSUER_KEY.public_jwk], algorithms=["EdDSA"]) == JwtVcReason.ALG
    # tampered payload
    head, _, sig = token.split(".")
    changed = good_payload()
    changed["vc"]["credentialSubject"]["given_name"] = "Mallory"
    forged_payload = await create_jws(OTHER_KEY, changed, {})
    forged = ".".join([head, forged_payload.split(".")[1], sig])
    with pytest.raises(JwtVcVerificationError) as info:
        verify_jwt_vc_json(forged, issuer_keys=[ISSUER_KEY.public_jwk], clock=lambda: NOW)
    assert info.value.reason == JwtVcReason.SIGNATURE


@pytest.mark.parametrize("token", ["", "a.b", "not.a.jws", 5, "x" * 10])
def test_malformed_tokens(token: Any) -> None:
    with pytest.raises(JwtVcVerificationError) as info:
        verify_jwt_vc_json(token, issuer_keys=[ISSUER_KEY.public_jwk])
    assert info.value.reason == JwtVcReason.MALFORMED


async def test_an_sd_jwt_vc_is_not_a_jwt_vc_json(clock: FakeClock) -> None:
    from oid4vci.sdjwt import issue_sd_jwt_vc

    sd_jwt = await issue_sd_jwt_vc(
        ISSUER_KEY, vct="urn:x", claims={"a": 1}, holder_jwk=None, issuer=ISSUER, kid="k1",
        clock=clock,
    )  # fmt: skip
    with pytest.raises(JwtVcVerificationError) as info:
        verify_jwt_vc_json(sd_jwt, issuer_keys=[ISSUER_KEY.public_jwk], clock=clock)
    assert info.value.reason == JwtVcReason.MALFORMED  # the trailing ~ makes it no JWS
    jwt_part = sd_jwt.split("~")[0]
    with pytest.raises(JwtVcVerificationError) as info:
        verify_jwt_vc_json(jwt_part, issuer_keys=[ISSUER_KEY.public_jwk], clock=clock)
    assert info.value.reason == JwtVcReason.TYP
