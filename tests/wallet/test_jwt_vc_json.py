"""Our wallet receiving ``jwt_vc_json`` credentials from our issuer, in every version.

The issuer of ``tests/issuer/test_jwt_vc_json.py`` (one SD-JWT VC and one ``jwt_vc_json``
configuration) over :class:`InMemoryTransport`; each published version, single and batches;
the wallet's own checks (issuer, types, holder binding) by :func:`verify_credential`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs
import pytest

from oid4vci.errors import CredentialVerificationError
from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.issuer import Issuer, IssuerConfig
from oid4vci.issuer.metadata import credential_key_id
from oid4vci.jose import LocalSigner, Signer, decode_jws, jwk_thumbprint
from oid4vci.jwtvc import JwtVcReason, did_jwk, issue_jwt_vc_json
from oid4vci.sdjwt import SdJwtReason
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.versions import SpecVersion
from oid4vci.wallet import FlowState, Oid4vciClient, WalletPolicy
from oid4vci.wallet.verify import IssuerKeyResolver, verify_credential
from tests.conftest import FakeClock
from tests.issuer.test_jwt_vc_json import DEGREE_SUBJECT, TYPES, make_config
from tests.issuer.test_service import ISSUER, VCT

ALL_VERSIONS = list(SpecVersion)


class RecordingTransport:
    """Sends through ``inner`` and keeps every request."""

    def __init__(self, inner: InMemoryTransport) -> None:
        self.inner = inner
        self.requests: list[HttpRequest] = []

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        return await self.inner.send(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def __aenter__(self) -> RecordingTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def credential_requests(self) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        for request in self.requests:
            if request.url == ISSUER + "/credential":
                body = json.loads(request.body)
                assert isinstance(body, dict)
                bodies.append(body)
        return bodies


def setup(
    clock: FakeClock, version: SpecVersion
) -> tuple[Issuer, IssuerConfig, RecordingTransport, Oid4vciClient]:
    config = make_config(clock, version=version)
    issuer = Issuer(config)
    transport = RecordingTransport(InMemoryTransport(routes={ISSUER: issuer.handle}))
    client = Oid4vciClient(transport, client_id="wallet-app", clock=clock)
    return issuer, config, transport, client


async def _offer(issuer: Issuer, ids: Sequence[str]) -> str:
    created = await issuer.create_pre_authorized_offer(configuration_ids=ids, subject="alice")
    return created.offer_uri


def _bound_to(credential: str, key: Signer) -> None:
    payload = decode_jws(credential).payload
    assert payload["sub"] == did_jwk(key.public_jwk)
    assert jwk_thumbprint(payload["cnf"]["jwk"]) == jwk_thumbprint(key.public_jwk)


@pytest.mark.parametrize("count", [1, 3])
@pytest.mark.parametrize("version", ALL_VERSIONS, ids=lambda v: v.value)
async def test_pre_authorized_flow_in_every_version(
    clock: FakeClock, version: SpecVersion, count: int
) -> None:
    issuer, _, transport, client = setup(clock, version)
    offer = await client.parse_offer(await _offer(issuer, ["degree"]))
    result = await client.accept_offer(offer, count=count)
    assert result.state is FlowState.DONE
    assert result.spec_version is version
    assert len(result.credentials) == count
    for cred in result.credentials:
        assert cred.verified
        assert cred.format == "jwt_vc_json"
        assert cred.vct is None
        assert cred.types == TYPES
        assert cred.claims == DEGREE_SUBJECT
        assert cred.configuration_id == "degree" and cred.issuer == ISSUER
        assert cred.holder_key is not None
        assert isinstance(cred.credential, str)
        _bound_to(cred.credential, cred.holder_key)
        assert "Alice" not in repr(cred) and "jwt_vc_json" in repr(cred)
    assert len({c.holder_jkt for c in result.credentials}) == count
    # each version's request shape
    bodies = transport.credential_requests()
    if version in (SpecVersion.DRAFT_13, SpecVersion.DRAFT_14):
        for body in bodies:
            assert body["format"] == "jwt_vc_json"
            # the type only: the metadata's credentialSubject display map is no claims request
            assert body["credential_definition"] == {"type": list(TYPES)}
            assert "credential_configuration_id" not in body
    else:
        # the token's credential_identifiers (pre-authorized offers come with them here)
        for body in bodies:
            assert "format" not in body and "credential_definition" not in body
            assert body.get("credential_configuration_id", "degree") == "degree"
            assert "credential_identifier" in body or "credential_configuration_id" in body
    expected_requests = count if version is SpecVersion.DRAFT_13 else 1
    assert len(bodies) == expected_requests
    # Draft 14 sends a notification_id only beside a single ``credential``
    if result.notification_ids:
        await client.notify(result, "credential_accepted")
    else:
        assert version is SpecVersion.DRAFT_14 and count > 1


@pytest.mark.parametrize("version", ALL_VERSIONS, ids=lambda v: v.value)
async def test_both_formats_in_one_offer(clock: FakeClock, version: SpecVersion) -> None:
    issuer, _, _, client = setup(clock, version)
    offer = await client.parse_offer(await _offer(issuer, ["identity", "degree"]))
    result = await client.accept_offer(offer)
    by_id = {c.configuration_id: c for c in result.credentials}
    assert by_id["identity"].format == version.sd_jwt_format
    assert by_id["identity"].vct == VCT and by_id["identity"].types is None
    assert by_id["identity"].claims["given_name"] == "Alice"
    assert by_id["degree"].format == "jwt_vc_json" and by_id["degree"].vct is None
    assert by_id["degree"].types == TYPES
    assert all(c.verified for c in result.credentials)


# -- the wallet's checks -----------------------------------------------------------------------


async def _verify(
    config: IssuerConfig,
    transport: RecordingTransport,
    credential: str,
    holder_keys: Sequence[Signer],
    clock: FakeClock,
    *,
    expected_types: Sequence[str] | None = TYPES,
) -> Any:
    policy = WalletPolicy()
    return await verify_credential(
        credential,
        format="jwt_vc_json",
        credential_issuer=ISSUER,
        expected_vct=None,
        holder_keys=holder_keys,
        used_keys=set(),
        resolver=IssuerKeyResolver(transport, policy=policy),
        policy=policy,
        clock=clock,
        expected_types=expected_types,
    )


async def _mint(
    config: IssuerConfig,
    holder: Signer | None,
    clock: FakeClock,
    *,
    issuer: str = ISSUER,
    types: Sequence[str] = TYPES,
    signer: Signer | None = None,
) -> str:
    return await issue_jwt_vc_json(
        signer or config.credential_signer,
        issuer=issuer,
        types=types,
        credential_subject={"given_name": "Alice"},
        holder_jwk=None if holder is None else holder.public_jwk,
        kid=credential_key_id(config),
        clock=clock,
    )


async def test_wallet_checks(clock: FakeClock) -> None:
    _, config, transport, _ = setup(clock, SpecVersion.V1)
    holder = LocalSigner.generate()
    good = await _mint(config, holder, clock)
    outcome = await _verify(config, transport, good, [holder], clock)
    assert outcome.verified and outcome.holder_key is holder and outcome.types == TYPES

    async def reason(credential: Any, keys: Sequence[Signer] = (holder,), **kw: Any) -> str:
        with pytest.raises(CredentialVerificationError) as info:
            await _verify(config, transport, credential, keys, clock, **kw)
        value = getattr(info.value, "reason", None)
        assert isinstance(value, str)
        return value

    # iss must be the Credential Issuer the wallet talked to
    other_iss = await _mint(config, holder, clock, issuer="https://other.example")
    assert await reason(other_iss) == SdJwtReason.ISSUER_MISMATCH
    # the configuration's types must be in vc.type
    assert await reason(good, expected_types=[*TYPES, "Extra"]) == JwtVcReason.TYPE_MISMATCH
    # bound to a key of this request
    assert await reason(good, keys=[LocalSigner.generate()]) == JwtVcReason.CNF_MISMATCH
    unbound = await _mint(config, None, clock)
    assert await reason(unbound) == JwtVcReason.HOLDER_MISMATCH
    # signed by a key the issuer does not publish
    forged = await _mint(config, holder, clock, signer=LocalSigner.generate())
    assert await reason(forged) == JwtVcReason.SIGNATURE
    # not a JWT, not a string
    assert await reason("nope") == JwtVcReason.MALFORMED
    assert await reason({"vc": {}}) == JwtVcReason.MALFORMED
    # expired
    old = await issue_jwt_vc_json(
        config.credential_signer, issuer=ISSUER, types=TYPES, credential_subject={},
        holder_jwk=holder.public_jwk, exp=int(clock()) - 3600, kid=credential_key_id(config),
        clock=clock,
    )  # fmt: skip
    assert await reason(old) == JwtVcReason.EXPIRED


async def test_each_holder_key_binds_one_credential(clock: FakeClock) -> None:
    _, config, transport, _ = setup(clock, SpecVersion.V1)
    holder = LocalSigner.generate()
    first = await _mint(config, holder, clock)
    second = await _mint(config, holder, clock)
    policy = WalletPolicy()
    resolver = IssuerKeyResolver(transport, policy=policy)
    used: set[str] = set()
    for index, credential in enumerate((first, second)):
        call = verify_credential(
            credential, format="jwt_vc_json", credential_issuer=ISSUER, expected_vct=None,
            holder_keys=[holder], used_keys=used, resolver=resolver, policy=policy, clock=clock,
            expected_types=TYPES,
        )  # fmt: skip
        if index == 0:
            assert (await call).holder_key is holder
        else:
            with pytest.raises(CredentialVerificationError) as info:
                await call
            assert getattr(info.value, "reason", None) == JwtVcReason.CNF_MISMATCH


async def test_x5c_signed_jwt_vc_json(clock: FakeClock) -> None:
    """With ``credential_signer_chain`` both formats carry ``x5c`` (no ``kid``); a wallet
    trusting the root takes the key from it (HAIP 1.0 §6.1.1) and says so."""
    from oid4vci.issuer_certificates import create_issuer_signing_certificates

    config = make_config(clock, version=SpecVersion.V1)
    certificates = create_issuer_signing_certificates(
        config.credential_signer, issuer_uri=ISSUER, clock=clock
    )
    issuer = Issuer(attrs.evolve(config, credential_signer_chain=certificates.chain))
    policy = WalletPolicy(trusted_x5c_roots=[certificates.root])
    transport = RecordingTransport(InMemoryTransport(routes={ISSUER: issuer.handle}))
    client = Oid4vciClient(transport, client_id="wallet-app", clock=clock, policy=policy)
    result = await client.accept_offer(await _offer(issuer, ["degree", "identity"]))
    assert sorted(c.format for c in result.credentials) == ["dc+sd-jwt", "jwt_vc_json"]
    for cred in result.credentials:
        assert cred.verified and cred.x5c_verified
        header = decode_jws(cred.credential.split("~")[0]).header
        assert "kid" not in header and len(header["x5c"]) == 1
    assert not [r for r in transport.requests if "jwt-vc-issuer" in r.url]
