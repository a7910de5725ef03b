"""Shared pieces of the hostile-issuer tests: hypothesis profiles and a misbehaving issuer.

Hypothesis: ``oid4vci-hostile`` (the default, small ``max_examples``) and, when the
environment has ``OID4VCI_FUZZ=long``, ``oid4vci-hostile-long``. The profiles are only
registered here; the fuzz tests apply :data:`FUZZ_SETTINGS` themselves so other hypothesis
tests of the session keep their own settings.

:class:`HostileIssuer` is the wallet tests' :class:`~tests.wallet.fakes.FakeIssuer` with more
ways to mint bad credentials (``credential_mode``) and a hook to replace any answer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from hypothesis import HealthCheck, settings

from oid4vci.http import HttpRequest, HttpResponse
from oid4vci.jose import LocalSigner, b64url_encode, create_jws
from oid4vci.sdjwt import issue_sd_jwt_vc, sd
from oid4vci.wallet import Oid4vciClient, WalletPolicy
from tests.conftest import FakeClock
from tests.wallet.fakes import VCT, FakeIssuer, json_response

settings.register_profile(
    "oid4vci-hostile",
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "oid4vci-hostile-long",
    max_examples=1500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: The profile the fuzz tests use (``OID4VCI_FUZZ=long`` selects the long one).
FUZZ_PROFILE = (
    "oid4vci-hostile-long" if os.environ.get("OID4VCI_FUZZ") == "long" else "oid4vci-hostile"
)
FUZZ_SETTINGS = settings.get_profile(FUZZ_PROFILE)

#: ``credential_mode`` values added by :class:`HostileIssuer` (FakeIssuer has good,
#: bad_signature, stray_disclosure, wrong_cnf, wrong_vct, expired).
EXTRA_MODES = (
    "none_alg",
    "hs256",
    "kb_jwt",
    "iss_mismatch",
    "no_iss",
    "duplicate_disclosure",
    "wrong_typ",
    "unknown_kid",
    "future_iat",
    "not_yet_valid",
    "no_cnf",
    "same_key_twice",
    "extra_credential",
    "last_wrong_vct",
    "not_a_string",
    "garbage",
    "deep_payload",
)


def _segment(data: dict[str, Any]) -> str:
    return b64url_encode(json.dumps(data, separators=(",", ":")).encode())


Answer = Callable[[HttpRequest], Awaitable[HttpResponse | None]]


@attrs.define
class HostileIssuer(FakeIssuer):
    """A :class:`FakeIssuer` with more bad credentials and an ``override`` hook.

    ``override(request)`` runs before routing; a non-None answer replaces the real one (it sees
    every request, so a test can answer forever, e.g. ``use_dpop_nonce`` on every call).
    """

    override: Answer | None = None

    async def handle(self, request: HttpRequest) -> HttpResponse:
        if self.override is not None:
            answer = await self.override(request)
            if answer is not None:
                self.requests.append(request)
                return answer
        return await super().handle(request)

    async def _issue(
        self, jwk: dict[str, Any] | None, *, signer: LocalSigner | None = None, **kw: Any
    ) -> str:
        now = int(self.now())
        args: dict[str, Any] = {
            "vct": VCT,
            "claims": {"given_name": sd("Erika"), "family_name": sd("Mustermann")},
            "holder_jwk": jwk,
            "issuer": self.issuer,
            "typ": self.version.sd_jwt_typ,
            "kid": "issuer-key",
            "iat": now - 10,
            "exp": now + 3600,
        }
        args.update(kw)
        return await issue_sd_jwt_vc(signer or self.key, clock=self.now, **args)

    async def mint(self, holder_jwks: list[dict[str, Any]]) -> list[str]:
        mode = self.credential_mode
        if mode not in EXTRA_MODES:
            return await super().mint(holder_jwks)
        out: list[Any] = []
        for jwk in holder_jwks:
            out.append(await self._bad(mode, jwk))
        if mode == "same_key_twice":
            out = [out[0], out[0]]
        if mode == "extra_credential":
            out.append(await self._issue(LocalSigner.generate().public_jwk))
        if mode == "last_wrong_vct":
            out[-1] = await self._issue(holder_jwks[-1], vct="urn:other:type")
        return out

    async def _bad(self, mode: str, jwk: dict[str, Any]) -> Any:
        now = int(self.now())
        if mode in ("none_alg", "hs256"):
            good = await self._issue(jwk)
            jwt, _, rest = good.partition("~")
            payload = jwt.split(".")[1]
            header = {"alg": "none" if mode == "none_alg" else "HS256", "typ": "dc+sd-jwt"}
            header["kid"] = "issuer-key"
            signature = "" if mode == "none_alg" else b64url_encode(b"\x00" * 32)
            return f"{_segment(header)}.{payload}.{signature}~{rest}"
        if mode == "kb_jwt":
            good = await self._issue(jwk)
            kb = await create_jws(
                LocalSigner.generate(),
                {"iat": now, "aud": "https://verifier.example", "nonce": "n", "sd_hash": "x"},
                {"typ": "kb+jwt"},
            )
            return good + kb
        if mode == "iss_mismatch":
            return await self._issue(jwk, issuer="https://evil.example")
        if mode == "no_iss":
            return await self._issue(jwk, issuer=None)
        if mode == "duplicate_disclosure":
            good = await self._issue(jwk)
            parts = good.split("~")
            return "~".join([*parts[:-1], parts[1], ""])
        if mode == "wrong_typ":
            return await self._issue(jwk, typ="JWT")
        if mode == "unknown_kid":
            return await self._issue(jwk, kid="someone-else", signer=LocalSigner.generate())
        if mode == "future_iat":
            return await self._issue(jwk, iat=now + 86_400)
        if mode == "not_yet_valid":
            return await self._issue(jwk, nbf=now + 86_400)
        if mode == "no_cnf":
            return await self._issue(None)
        if mode == "not_a_string":
            return {"sd_jwt": await self._issue(jwk)}
        if mode == "garbage":
            return "not-an-sd-jwt"
        if mode == "deep_payload":
            nested = "[" * 5000 + "]" * 5000
            payload = b64url_encode(('{"iss":"' + self.issuer + '","x":' + nested + "}").encode())
            head = _segment({"alg": "ES256", "typ": "dc+sd-jwt", "kid": "issuer-key"})
            return f"{head}.{payload}.{b64url_encode(bytes(64))}~"
        return await self._issue(jwk)


class FakeSleep:
    """Records sleeps instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)

    @property
    def total(self) -> float:
        return sum(self.calls)


def make_client(
    fake: FakeIssuer, clock: FakeClock, **policy: Any
) -> tuple[Oid4vciClient, FakeSleep]:
    """A wallet talking to ``fake`` in memory, with a fake clock and sleep."""
    fake.clock = clock
    sleep = FakeSleep()
    client = Oid4vciClient(
        fake.transport(), policy=WalletPolicy(**policy), clock=clock, sleep=sleep
    )
    return client, sleep


def raw_response(status: int, body: bytes, content_type: str = "application/json") -> HttpResponse:
    """An answer with an arbitrary body."""
    return HttpResponse(
        status=status,
        headers={"Content-Type": content_type, "Cache-Control": "no-store"},
        body=body,
    )


__all__ = [
    "EXTRA_MODES",
    "FUZZ_PROFILE",
    "FUZZ_SETTINGS",
    "FakeSleep",
    "HostileIssuer",
    "json_response",
    "make_client",
    "raw_response",
]
