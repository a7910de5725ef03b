"""X.509 ``x5c`` chains (:mod:`oid4vci.x509`), and the issuer's ``jwk_from_x5c`` through it.

Every chain is built here with ``cryptography``: a root CA, an intermediate CA and an
end-entity (leaf) certificate with a ``dNSName`` SAN, all EC P-256 unless a case says otherwise.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from oid4vci.errors import CredentialRequestError, ErrorCode, JoseError
from oid4vci.issuer.proof import ProofOptions, jwk_from_x5c, verify_proof_jwt
from oid4vci.jose import LocalSigner, create_jws
from oid4vci.x509 import (
    MAX_CERTIFICATE_SIZE,
    MAX_CERTIFICATES,
    CertificateError,
    CertificateReason,
    is_self_signed,
    leaf_public_jwk,
    load_der_certificate,
    load_trust_anchors,
    verify_certificate_chain,
    verify_issuer_x5c,
    verify_x5c_chain,
    x5c_entry_is_self_signed,
)
from tests.conftest import FakeClock
from tests.x509_support import (
    DAY,
    HOST,
    Pki,
    b64,
    make_certificate,
    make_pki,
)


@pytest.fixture(scope="module")
def pki() -> Pki:
    """One PKI shared by the tests of this module (key generation is the slow part)."""
    return make_pki()


def expect(reason: str, x5c: Any, anchors: Sequence[Any], clock: FakeClock, **kw: Any) -> None:
    with pytest.raises(CertificateError) as info:
        verify_x5c_chain(x5c, trust_anchors=anchors, clock=clock, **kw)
    assert info.value.reason == reason


# --------------------------------------------------------------------------------------------
# verify_x5c_chain


def test_good_chain(pki: Pki, clock: FakeClock) -> None:
    jwk = verify_x5c_chain(pki.x5c, trust_anchors=[pki.root], clock=clock)
    assert jwk == pki.signer.public_jwk
    named = verify_x5c_chain(pki.x5c, trust_anchors=[pki.root], clock=clock, expected_dns_name=HOST)
    assert named == jwk
    # the host is compared case-insensitively, as DNS names are
    assert verify_x5c_chain(
        pki.x5c, trust_anchors=[pki.root], clock=clock, expected_dns_name="ISSUER.example"
    )


def test_anchor_forms(pki: Pki, clock: FakeClock) -> None:
    der = pki.root.public_bytes(serialization.Encoding.DER)
    pem = pki.root.public_bytes(serialization.Encoding.PEM)
    for anchor in (pki.root, der, pem, pem.decode(), base64.b64encode(der).decode()):
        assert verify_x5c_chain(pki.x5c, trust_anchors=[anchor], clock=clock)
    # a PEM bundle holding several certificates, the right one last
    other = make_pki(root_name="Other Root")
    bundle = other.root.public_bytes(serialization.Encoding.PEM) + pem
    assert load_trust_anchors([bundle]) == (other.root, pki.root)
    assert verify_x5c_chain(pki.x5c, trust_anchors=[bundle], clock=clock)
    with pytest.raises(CertificateError) as info:
        load_trust_anchors(["not a certificate"])
    assert info.value.reason == CertificateReason.MALFORMED
    with pytest.raises(TypeError):
        load_trust_anchors(pem)  # type: ignore[arg-type]


def test_intermediate_as_anchor(pki: Pki, clock: FakeClock) -> None:
    assert verify_x5c_chain([b64(pki.leaf)], trust_anchors=[pki.intermediate], clock=clock)


def test_leaf_only_fails(pki: Pki, clock: FakeClock) -> None:
    expect(CertificateReason.UNTRUSTED, [b64(pki.leaf)], [pki.root], clock)


def test_root_in_x5c_is_not_trusted(pki: Pki, clock: FakeClock) -> None:
    """Sending the root along does not make it an anchor."""
    other = make_pki(root_name="Other Root")
    x5c = [*pki.x5c, b64(pki.root)]
    expect(CertificateReason.UNTRUSTED, x5c, [other.root], clock)
    assert verify_x5c_chain(x5c, trust_anchors=[pki.root], clock=clock)


def test_untrusted_root(pki: Pki, clock: FakeClock) -> None:
    other = make_pki(root_name="Test Root CA")  # same name, different key
    expect(CertificateReason.UNTRUSTED, pki.x5c, [other.root], clock)
    expect(CertificateReason.UNTRUSTED, pki.x5c, [other.root], clock, expected_dns_name=HOST)


def test_no_trust_anchors(pki: Pki, clock: FakeClock) -> None:
    expect(CertificateReason.NO_TRUST_ANCHORS, pki.x5c, [], clock)
    expect(CertificateReason.NO_TRUST_ANCHORS, pki.x5c, (), clock, expected_dns_name=HOST)


def test_expired_leaf(pki: Pki, clock: FakeClock) -> None:
    clock.advance(366 * DAY)
    expect(CertificateReason.EXPIRED, pki.x5c, [pki.root], clock)


def test_not_yet_valid_leaf(pki: Pki, clock: FakeClock) -> None:
    clock.advance(-31 * DAY)
    expect(CertificateReason.NOT_YET_VALID, pki.x5c, [pki.root], clock)


def test_expired_intermediate(clock: FakeClock) -> None:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = make_certificate(key=root_key, subject="root", ca=True)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = make_certificate(
        key=inter_key,
        subject="expired CA",
        issuer=root,
        issuer_key=root_key,
        ca=True,
        valid_until_days=-1,
    )
    leaf = make_certificate(
        key=ec.generate_private_key(ec.SECP256R1()),
        subject="leaf",
        issuer=inter,
        issuer_key=inter_key,
        dns_names=[HOST],
    )
    expect(CertificateReason.EXPIRED, [b64(leaf), b64(inter)], [root], clock)


def test_wrong_san(pki: Pki, clock: FakeClock) -> None:
    expect(
        CertificateReason.NAME_MISMATCH,
        pki.x5c,
        [pki.root],
        clock,
        expected_dns_name="evil.example",
    )
    expect(CertificateReason.NAME_MISMATCH, pki.x5c, [pki.root], clock, expected_dns_name="")
    expect(
        CertificateReason.NAME_MISMATCH,
        pki.x5c,
        [pki.root],
        clock,
        expected_dns_name="bücher.example",
    )
    # only a URI SAN: no dNSName to match
    uri_only = pki.leaf_for(
        ec.generate_private_key(ec.SECP256R1()), dns_names=[], uris=[f"https://{HOST}"]
    )
    x5c = [b64(uri_only), b64(pki.intermediate)]
    expect(CertificateReason.NAME_MISMATCH, x5c, [pki.root], clock, expected_dns_name=HOST)
    # the client profile matches no name but still needs some SAN
    assert verify_x5c_chain(x5c, trust_anchors=[pki.root], clock=clock)


def test_extended_key_usage(pki: Pki, clock: FakeClock) -> None:
    """serverAuth is needed for a named (server) check, clientAuth for an unnamed one."""
    server = pki.leaf_for(
        ec.generate_private_key(ec.SECP256R1()), eku=[ExtendedKeyUsageOID.SERVER_AUTH]
    )
    x5c = [b64(server), b64(pki.intermediate)]
    assert verify_x5c_chain(x5c, trust_anchors=[pki.root], clock=clock, expected_dns_name=HOST)
    expect(CertificateReason.UNTRUSTED, x5c, [pki.root], clock)


def test_end_entity_cannot_act_as_ca(pki: Pki, clock: FakeClock) -> None:
    """A leaf issued under the anchor must not mint certificates (basicConstraints)."""
    forged_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = pki.signer._private_key
    forged = make_certificate(
        key=forged_key, subject="forged", issuer=pki.leaf, issuer_key=leaf_key, dns_names=[HOST]
    )
    x5c = [b64(forged), b64(pki.leaf), b64(pki.intermediate)]
    expect(CertificateReason.UNTRUSTED, x5c, [pki.root], clock)
    expect(CertificateReason.UNTRUSTED, x5c, [pki.root], clock, expected_dns_name=HOST)


@pytest.mark.parametrize(
    "entry",
    [
        "!!!",
        "AAAA",  # base64, not a certificate
        "not base64 at all",
        "é",
    ],
)
def test_malformed_entries(pki: Pki, clock: FakeClock, entry: str) -> None:
    expect(CertificateReason.MALFORMED, [entry], [pki.root], clock)
    expect(CertificateReason.MALFORMED, [b64(pki.leaf), entry], [pki.root], clock)
    with pytest.raises(CertificateError):
        leaf_public_jwk([entry])


def _with_version(certificate: x509.Certificate, version: int) -> bytes:
    """``certificate``'s DER with its version field (``[0] EXPLICIT INTEGER 2``) set to
    ``version``: RFC 5280 §4.1.2.1 knows v1–v3 only (0–2)."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    at = der.index(bytes.fromhex("a003020102"))
    return der[: at + 4] + bytes([version]) + der[at + 5 :]


def _with_bad_utf8_subject(certificate: x509.Certificate) -> bytes:
    """``certificate``'s DER with one byte of its subject's CN made invalid UTF-8 (it still
    loads: ``cryptography`` parses names only when they are read)."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    start = der.rindex(certificate.subject.public_bytes())  # the issuer name comes first
    common_name = certificate.subject.rfc4514_string().split("=", 1)[1].split(",")[0]
    at = der.index(common_name.encode(), start)
    return der[:at] + b"\xb6" + der[at + 1 :]


@pytest.mark.parametrize("version", [3, 5, 0x7F])
def test_an_unknown_certificate_version_is_malformed(
    pki: Pki, clock: FakeClock, version: int
) -> None:
    # cryptography reports it with x509.InvalidVersion, which is not a ValueError
    bad = _with_version(pki.leaf, version)
    with pytest.raises(CertificateError) as info:
        load_der_certificate(bad)
    assert info.value.reason == CertificateReason.MALFORMED
    entry = base64.b64encode(bad).decode()
    expect(CertificateReason.MALFORMED, [entry, b64(pki.intermediate)], [pki.root], clock)
    with pytest.raises(CertificateError) as info:
        verify_issuer_x5c([entry, b64(pki.intermediate)], trust_anchors=[pki.root], clock=clock)
    assert info.value.reason == CertificateReason.MALFORMED
    with pytest.raises(CertificateError):
        leaf_public_jwk([entry])
    with pytest.raises(CertificateError):
        load_trust_anchors([bad])
    assert x5c_entry_is_self_signed(entry) is False


def test_a_subject_that_is_not_utf8_is_refused(pki: Pki, clock: FakeClock) -> None:
    bad = _with_bad_utf8_subject(pki.leaf)
    x509.load_der_x509_certificate(bad)  # loads: the name is parsed later
    x5c = [base64.b64encode(bad).decode(), b64(pki.intermediate)]
    checks: list[Callable[[], object]] = [
        lambda: verify_issuer_x5c(x5c, trust_anchors=[pki.root], clock=clock),
        lambda: verify_x5c_chain(x5c, trust_anchors=[pki.root], clock=clock),
        lambda: verify_x5c_chain(
            x5c, trust_anchors=[pki.root], clock=clock, expected_dns_name=HOST
        ),
    ]
    for verify in checks:
        with pytest.raises(CertificateError):
            verify()


def test_x5c_entry_is_self_signed(pki: Pki) -> None:
    assert x5c_entry_is_self_signed(b64(pki.root)) is True
    assert x5c_entry_is_self_signed(b64(pki.leaf)) is False
    for entry in ("!!!", "AAAA", 5, None, "A" * (8 * MAX_CERTIFICATE_SIZE)):
        assert x5c_entry_is_self_signed(entry) is False


def test_base64url_and_whitespace_refused(pki: Pki, clock: FakeClock) -> None:
    """RFC 7515 §4.1.6: base64, not base64url, and nothing around it."""
    der = pki.leaf.public_bytes(serialization.Encoding.DER)
    url_form = base64.urlsafe_b64encode(der).decode()
    assert url_form != b64(pki.leaf)  # this DER has '+' or '/' in its base64
    for entry in (url_form, url_form.rstrip("="), " " + b64(pki.leaf), b64(pki.leaf) + "\n"):
        expect(CertificateReason.MALFORMED, [entry, b64(pki.intermediate)], [pki.root], clock)


@pytest.mark.parametrize("x5c", [[], "abc", None, {"0": "abc"}, [1], [b"AAAA"]])
def test_malformed_shapes(pki: Pki, clock: FakeClock, x5c: Any) -> None:
    expect(CertificateReason.MALFORMED, x5c, [pki.root], clock)


def test_too_many_certificates(pki: Pki, clock: FakeClock) -> None:
    x5c = [b64(pki.leaf)] + [b64(pki.intermediate)] * MAX_CERTIFICATES
    assert len(x5c) == MAX_CERTIFICATES + 1
    expect(CertificateReason.TOO_LARGE, x5c, [pki.root], clock)
    with pytest.raises(CertificateError):
        leaf_public_jwk(x5c)
    # exactly the limit is fine
    assert verify_x5c_chain(x5c[:MAX_CERTIFICATES], trust_anchors=[pki.root], clock=clock)


def test_oversized_certificate(pki: Pki, clock: FakeClock) -> None:
    huge = "A" * (4 * (MAX_CERTIFICATE_SIZE // 3) + 8)
    expect(CertificateReason.TOO_LARGE, [b64(pki.leaf), huge], [pki.root], clock)


def test_rsa_1024_leaf_refused(pki: Pki, clock: FakeClock) -> None:
    weak = pki.leaf_for(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    x5c = [b64(weak), b64(pki.intermediate)]
    expect(CertificateReason.UNSUPPORTED_KEY, x5c, [pki.root], clock)
    expect(CertificateReason.UNSUPPORTED_KEY, x5c, [pki.root], clock, expected_dns_name=HOST)
    with pytest.raises(CertificateError) as info:
        leaf_public_jwk(x5c)
    assert info.value.reason == CertificateReason.UNSUPPORTED_KEY


def test_unsupported_curve_refused(pki: Pki, clock: FakeClock) -> None:
    odd = pki.leaf_for(ec.generate_private_key(ec.SECP256K1()))
    expect(CertificateReason.UNSUPPORTED_KEY, [b64(odd), b64(pki.intermediate)], [pki.root], clock)


# --------------------------------------------------------------------------------------------
# leaf_public_jwk


def test_leaf_public_jwk_key_types(pki: Pki) -> None:
    assert leaf_public_jwk(pki.x5c) == pki.signer.public_jwk
    p384 = LocalSigner.generate("ES384")
    assert leaf_public_jwk([b64(pki.leaf_for(p384._private_key))]) == p384.public_jwk
    p521 = LocalSigner.generate("ES512")
    assert leaf_public_jwk([b64(pki.leaf_for(p521._private_key))]) == p521.public_jwk
    ed = LocalSigner.generate("EdDSA")
    assert leaf_public_jwk([b64(pki.leaf_for(ed._private_key))]) == ed.public_jwk
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = leaf_public_jwk([b64(pki.leaf_for(rsa_key))])
    assert jwk["kty"] == "RSA" and jwk["e"] == "AQAB" and "d" not in jwk


def test_certificate_error_is_a_jose_error() -> None:
    error = CertificateError(CertificateReason.UNTRUSTED, "x")
    assert isinstance(error, JoseError)
    assert error.reason == "untrusted"


# --------------------------------------------------------------------------------------------
# the issuer's key proofs through this module


def test_jwk_from_x5c_with_anchors(pki: Pki, clock: FakeClock) -> None:
    assert jwk_from_x5c(pki.x5c, trust_anchors=[pki.root], clock=clock) == pki.signer.public_jwk
    other = make_pki(root_name="Other Root")
    with pytest.raises(CertificateError) as info:
        jwk_from_x5c(pki.x5c, trust_anchors=[other.root], clock=clock)
    assert info.value.reason == CertificateReason.UNTRUSTED
    clock.advance(366 * DAY)
    with pytest.raises(CertificateError) as info:
        jwk_from_x5c(pki.x5c, trust_anchors=[pki.root], clock=clock)
    assert info.value.reason == CertificateReason.EXPIRED


def test_jwk_from_x5c_without_anchors_only_binds(pki: Pki, clock: FakeClock) -> None:
    """No anchors configured: the leaf key is read, the chain is not checked (as before)."""
    other = make_pki(root_name="Other Root")
    assert jwk_from_x5c([b64(other.leaf)], clock=clock) == other.signer.public_jwk
    assert jwk_from_x5c([b64(other.leaf)], trust_anchors=[], clock=clock)
    for bad in ("abc", ["!!!"], [], None):
        with pytest.raises(JoseError):
            jwk_from_x5c(bad, clock=clock)


async def _proof(signer: LocalSigner, x5c: list[str], clock: FakeClock) -> str:
    header = {"typ": "openid4vci-proof+jwt", "x5c": x5c}
    claims = {"aud": "https://issuer.example", "iat": int(clock()), "nonce": "n-1"}
    return await create_jws(signer, claims, header)


async def test_proof_with_x5c_and_anchors(pki: Pki, clock: FakeClock) -> None:
    jwt = await _proof(pki.signer, pki.x5c, clock)

    def options(root: x509.Certificate) -> ProofOptions:
        return ProofOptions(
            audience="https://issuer.example",
            algorithms=["ES256"],
            clock=clock,
            trust_anchors=[root],
        )

    proof = await verify_proof_jwt(jwt, options(pki.root))
    assert proof.jwk == pki.signer.public_jwk
    other = make_pki(root_name="Other Root")
    with pytest.raises(CredentialRequestError) as info:
        await verify_proof_jwt(jwt, options(other.root))
    assert info.value.error == ErrorCode.INVALID_PROOF
    # a proof signed by another key than the certified one
    stranger = await _proof(LocalSigner.generate(), pki.x5c, clock)
    with pytest.raises(CredentialRequestError) as info:
        await verify_proof_jwt(stranger, options(pki.root))
    assert info.value.error == ErrorCode.INVALID_PROOF


# --------------------------------------------------------------------------------------------
# verify_certificate_chain (a purpose of its own, no host: e.g. an mdoc document signer)

PURPOSE = x509.ObjectIdentifier("1.0.18013.5.1.2")


def purpose_leaf(pki: Pki, **options: Any) -> tuple[x509.Certificate, LocalSigner]:
    key = ec.generate_private_key(ec.SECP256R1())
    options.setdefault("eku", [PURPOSE])
    options.setdefault("dns_names", [])
    return pki.leaf_for(key, **options), LocalSigner("ES256", key)


def expect_chain(reason: str, chain: Any, anchors: Sequence[Any], clock: FakeClock) -> None:
    with pytest.raises(CertificateError) as info:
        verify_certificate_chain(
            chain, trust_anchors=anchors, extended_key_usage=PURPOSE, clock=clock
        )
    assert info.value.reason == reason


def test_purpose_chain_without_san(pki: Pki, clock: FakeClock) -> None:
    leaf, signer = purpose_leaf(pki)
    jwk = verify_certificate_chain(
        [leaf, pki.intermediate],
        trust_anchors=[pki.root],
        extended_key_usage=PURPOSE,
        clock=clock,
    )
    assert jwk == signer.public_jwk
    # the web PKI client profile refuses the same leaf (no SAN, no clientAuth)
    expect(CertificateReason.UNTRUSTED, [b64(leaf), b64(pki.intermediate)], [pki.root], clock)


def test_purpose_chain_refusals(pki: Pki, clock: FakeClock) -> None:
    chain = [pki.intermediate]
    no_eku, _ = purpose_leaf(pki, eku=[])
    server, _ = purpose_leaf(pki, eku=[ExtendedKeyUsageOID.SERVER_AUTH])
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = make_certificate(
        key=ca_key,
        subject="a CA as leaf",
        issuer=pki.intermediate,
        issuer_key=pki.intermediate_key,
        ca=True,
        eku=[PURPOSE],
    )
    for leaf in (no_eku, server, ca):
        expect_chain(CertificateReason.UNTRUSTED, [leaf, *chain], [pki.root], clock)
    good, _ = purpose_leaf(pki)
    other = make_pki(root_name="Other Root")
    expect_chain(CertificateReason.UNTRUSTED, [good, *chain], [other.root], clock)
    expect_chain(CertificateReason.UNTRUSTED, [good], [pki.root], clock)  # intermediate missing
    expect_chain(CertificateReason.NO_TRUST_ANCHORS, [good, *chain], [], clock)
    expect_chain(CertificateReason.MALFORMED, [], [pki.root], clock)
    expect_chain(CertificateReason.MALFORMED, good, [pki.root], clock)
    expect_chain(CertificateReason.TOO_LARGE, [good] * 11, [pki.root], clock)
    late = FakeClock(clock() + 400 * DAY)
    expect_chain(CertificateReason.EXPIRED, [good, *chain], [pki.root], late)
    early = FakeClock(clock() - 40 * DAY)
    expect_chain(CertificateReason.NOT_YET_VALID, [good, *chain], [pki.root], early)


def test_a_signing_ca_is_never_an_end_entity(pki: Pki, clock: FakeClock) -> None:
    # A CA leaf whose keyUsage also allows digitalSignature: only the not-a-CA check refuses
    # it (RFC 5280 §4.2.1.9), in both end-entity policies.
    chain = [pki.intermediate]
    signing_ca, _ = purpose_leaf(pki, ca=True, digital_signature=True, dns_names=[HOST])
    signing_ee, _ = purpose_leaf(pki, digital_signature=True, dns_names=[HOST])
    expect_chain(CertificateReason.UNTRUSTED, [signing_ca, *chain], [pki.root], clock)
    verify_certificate_chain(
        [signing_ee, *chain], trust_anchors=[pki.root], extended_key_usage=PURPOSE, clock=clock
    )
    x5c = [b64(signing_ca), b64(pki.intermediate)]
    with pytest.raises(CertificateError) as info:
        verify_issuer_x5c(x5c, trust_anchors=[pki.root], clock=clock)
    assert info.value.reason == CertificateReason.UNTRUSTED
    x5c = [b64(signing_ee), b64(pki.intermediate)]
    assert verify_issuer_x5c(x5c, trust_anchors=[pki.root], clock=clock)["kty"] == "EC"


# --------------------------------------------------------------------------------------------
# verify_issuer_x5c (draft-ietf-oauth-sd-jwt-vc-13 §3.5, HAIP 1.0 §6.1.1)


def test_issuer_x5c_needs_no_name_but_a_signing_end_entity(pki: Pki, clock: FakeClock) -> None:
    anchors = [pki.root]
    assert verify_issuer_x5c(pki.x5c, trust_anchors=anchors, clock=clock)["kty"] == "EC"
    key = ec.generate_private_key(ec.SECP256R1())
    nameless = pki.leaf_for(key, dns_names=[], eku=[ExtendedKeyUsageOID.CODE_SIGNING])
    chain = [b64(nameless), b64(pki.intermediate)]
    assert verify_issuer_x5c(chain, trust_anchors=anchors, clock=clock)["kty"] == "EC"
    ca_leaf = pki.leaf_for(key, ca=True)  # a CA certificate is no signer
    with pytest.raises(CertificateError) as info:
        verify_issuer_x5c([b64(ca_leaf), b64(pki.intermediate)], trust_anchors=anchors, clock=clock)
    assert info.value.reason == CertificateReason.UNTRUSTED
    assert is_self_signed(pki.root) and not is_self_signed(pki.leaf)
    with pytest.raises(CertificateError) as info:
        verify_issuer_x5c([b64(pki.root)], trust_anchors=anchors, clock=clock)
    assert info.value.reason == CertificateReason.SELF_SIGNED
    with pytest.raises(CertificateError) as info:
        verify_issuer_x5c(pki.x5c, trust_anchors=[make_pki().root], clock=clock)
    assert info.value.reason == CertificateReason.UNTRUSTED
