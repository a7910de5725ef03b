"""Saving a flow whose keys cannot be exported: ``WalletPolicy(key_references=...)``.

The holder keys come from a stand-in secure element: a :class:`~oid4vci.jose.Signer` that is
not a ``LocalSigner`` and never shows its private key. A deferred issuance is saved while it
waits, resumed in a "new process" (a fresh flow from the text) and finished against the
in-process issuer; the resumed flow signs nothing new, but hands the caller the element's own
key objects for the credentials, found again by reference.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from oid4vci.errors import UsageError
from oid4vci.jose import LocalSigner, Signer, jwk_thumbprint
from oid4vci.versions import SpecVersion
from oid4vci.wallet import FlowState, IssuanceFlow, KeyReferences, Wait, WalletPolicy
from tests.conftest import FakeClock
from tests.e2e.conftest import DeferringClaims, build_e2e_issuer
from tests.wallet.test_issuance_flow import assert_on_table, drive


class ElementKey:
    """A key inside the element: it signs, and exports only its public JWK."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self._inner = LocalSigner.generate("ES256")

    @property
    def alg(self) -> str:
        return self._inner.alg

    @property
    def public_jwk(self) -> dict[str, Any]:
        return self._inner.public_jwk

    async def sign(self, signing_input: bytes) -> bytes:
        return await self._inner.sign(signing_input)


class SecureElement:
    """Makes holder keys (a ``HolderKeyProvider``) and names them (``KeyReferences``)."""

    def __init__(self) -> None:
        self.keys: dict[str, ElementKey] = {}

    async def __call__(self, *, configuration_id: str, algorithms: Any) -> Signer:
        key = ElementKey(f"element-key-{secrets.token_hex(4)}")
        self.keys[key.key_id] = key
        return key

    def reference_of(self, key: Signer) -> str | None:
        return key.key_id if isinstance(key, ElementKey) and key.key_id in self.keys else None

    def key_for(self, reference: str) -> Signer:
        return self.keys[reference]


def _policy(element: SecureElement, *, references: KeyReferences | None = None) -> WalletPolicy:
    return WalletPolicy(holder_key_provider=element, key_references=references)


async def _waiting_flow(
    clock: FakeClock, element: SecureElement, *, named: bool = True
) -> tuple[Any, IssuanceFlow]:
    """A deferred issuance of two credentials bound to ``element``'s keys, waiting to poll;
    its policy names the keys when ``named``."""
    claims = DeferringClaims(interval=5)
    e2e = build_e2e_issuer(SpecVersion.V1, clock, claims_source=claims)
    policy = _policy(element, references=element if named else None)
    flow = IssuanceFlow.from_offer(e2e.offer_links["pre_auth"], count=2, clock=clock, policy=policy)
    wait = await drive(flow, e2e.handle, [flow.state], clock=clock, stop_at=Wait)
    assert isinstance(wait, Wait) and flow.state is FlowState.WAITING_FOR_DEFERRED
    return (e2e, claims), flow


async def test_without_references_such_keys_cannot_be_saved(clock: FakeClock) -> None:
    _, flow = await _waiting_flow(clock, SecureElement(), named=False)
    with pytest.raises(UsageError, match="key_references"):
        flow.to_json()


async def test_keys_of_a_secure_element_are_saved_by_reference(clock: FakeClock) -> None:
    element = SecureElement()
    (e2e, claims), flow = await _waiting_flow(clock, element)
    text = flow.to_json()
    (deferred,) = json.loads(text)["deferred"]
    assert [set(k) for k in deferred["holder_keys"]] == [{"key_reference", "public_jwk"}] * 2
    assert {k["key_reference"] for k in deferred["holder_keys"]} == set(element.keys)
    assert all("d" not in k["public_jwk"] for k in deferred["holder_keys"])
    del flow

    resumed = IssuanceFlow.from_json(text, policy=_policy(element, references=element), clock=clock)
    claims.ready = True
    clock.advance(5)
    seen = [resumed.state]
    result = await drive(resumed, e2e.handle, seen, clock=clock)
    assert result.state is FlowState.DONE and len(result.credentials) == 2
    assert all(c.verified for c in result.credentials)
    # the caller gets the element's own key objects back, bound into the credentials
    assert {id(c.holder_key) for c in result.credentials} == {id(k) for k in element.keys.values()}
    assert {c.holder_jkt for c in result.credentials} == {
        jwk_thumbprint(k.public_jwk) for k in element.keys.values()
    }
    assert_on_table(resumed, seen)


async def test_resuming_needs_the_references(clock: FakeClock) -> None:
    element = SecureElement()
    _, flow = await _waiting_flow(clock, element)
    text = flow.to_json()

    with pytest.raises(UsageError, match="pass a policy with key_references"):
        IssuanceFlow.from_json(text, policy=_policy(element), clock=clock)

    forgetful = SecureElement()  # another element: it holds none of these keys
    with pytest.raises(UsageError, match="no key for a reference") as caught:
        IssuanceFlow.from_json(text, policy=_policy(forgetful, references=forgetful), clock=clock)
    assert "element-key-" not in str(caught.value)

    class Swapping(SecureElement):
        def key_for(self, reference: str) -> Signer:
            return ElementKey(reference)  # same name, another key

    swapping = Swapping()
    with pytest.raises(UsageError, match="another key"):
        IssuanceFlow.from_json(text, policy=_policy(swapping, references=swapping), clock=clock)


@pytest.mark.parametrize(
    "entry",
    [
        {"key_reference": 7, "public_jwk": {}},
        {"key_reference": "k"},
        {"key_reference": "k", "public_jwk": {}, "d": "x"},
    ],
    ids=["not-a-string", "no-public-key", "extra-member"],
)
async def test_a_malformed_reference_is_malformed(clock: FakeClock, entry: dict[str, Any]) -> None:
    element = SecureElement()
    _, flow = await _waiting_flow(clock, element)
    data = json.loads(flow.to_json())
    data["deferred"][0]["holder_keys"][0] = entry
    with pytest.raises(UsageError, match="malformed"):
        IssuanceFlow.from_json(
            json.dumps(data), policy=_policy(element, references=element), clock=clock
        )


async def test_a_reference_must_be_a_non_empty_string(clock: FakeClock) -> None:
    class Blank(SecureElement):
        def reference_of(self, key: Signer) -> str | None:
            return ""

    _, flow = await _waiting_flow(clock, Blank())
    with pytest.raises(UsageError, match="non-empty string"):
        flow.to_json()
