"""Wallet benchmark: building the credential request and verifying the response, each
against its floor (:mod:`benchmarks.wallet_floor`).

* **request building**: ``N`` fresh holder keys (:class:`~oid4vci.jose.LocalSigner`), ``N``
  key proofs (:func:`~oid4vci.wallet.steps.build_key_proof`), one DPoP proof and the
  credential request (:func:`~oid4vci.wallet.steps.build_credential_request`);
* **response verification**: :func:`~oid4vci.wallet.verify.verify_credential` for each of
  ``N`` SD-JWT VCs of :data:`benchmarks.floor.DISCLOSURES` disclosures and
  :data:`benchmarks.floor.DECOYS` decoys (issuer keys already loaded, as in a flow after the
  JWT VC Issuer Metadata was fetched; before each round the parsed-key cache is cleared and
  fresh holder keys and credentials are minted, so the issuer key is imported again and the
  holder keys in ``cnf.jwk`` are the ones the wallet has just generated, as in a flow).

CPU time by :func:`time.process_time`; ours and the floor take turns; best of ``rounds``.
Run alone: ``.venv/bin/python benchmarks/wallet_parts.py [--profile]``.
"""

from __future__ import annotations

import cProfile
import gc
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._cli import run_cli
from benchmarks.floor import DECOYS, DISCLOSURES
from benchmarks.wallet_floor import WalletFloor
from oid4vci import jose
from oid4vci.dpop import build_dpop_jwt
from oid4vci.jose import LocalSigner
from oid4vci.sdjwt import SdJwtOptions, issue_batch, sd
from oid4vci.wallet.policy import WalletPolicy
from oid4vci.wallet.steps import build_credential_request, build_key_proof
from oid4vci.wallet.verify import verify_credential

__all__ = ["PartComparison", "WalletParts", "run_wallet_parts_benchmark"]

ISSUER = "https://issuer.bench.example"
VCT = ISSUER + "/bench"
CREDENTIAL_URL = ISSUER + "/credential"
TOKEN = "bench-access-token-0123456789abcdef"
NONCE = "bench-c-nonce"


class _Keys:
    """Issuer keys already loaded (what a flow has after fetching JWT VC Issuer Metadata)."""

    def __init__(self, keys: list[dict[str, Any]]) -> None:
        self.keys = keys

    async def keys_for(self, iss: str) -> list[dict[str, Any]]:
        """The loaded keys."""
        return self.keys


class WalletParts:
    """Prepared inputs for ``n`` credentials: ours and the floor, same work."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.issuer = LocalSigner.generate("ES256", kid="bench-key")
        self.dpop = LocalSigner.generate("ES256")
        self.policy = WalletPolicy()
        self.resolver = _Keys([self.issuer.public_jwk])
        self.floor = WalletFloor(n, issuer_public=self.issuer._private_key.public_key())
        self.holders: list[LocalSigner] = []
        self.credentials: list[str] = []

    async def mint(self) -> None:
        """``n`` credentials for ``n`` fresh holder keys (not measured)."""
        self.holders = [LocalSigner.generate() for _ in range(self.n)]
        now = int(time.time())
        self.credentials = await issue_batch(
            self.issuer,
            holder_jwks=[h.public_jwk for h in self.holders],
            vct=VCT,
            claims={f"claim_{i}": sd(f"value {i}") for i in range(DISCLOSURES)},
            issuer=ISSUER,
            options=SdJwtOptions(iat=now, exp=now + 3600, kid="bench-key", decoys=DECOYS),
        )

    async def ours_build(self) -> None:
        """The wallet library building one credential request."""
        holders = [LocalSigner.generate() for _ in range(self.n)]
        proofs = [await build_key_proof(h, audience=ISSUER, nonce=NONCE) for h in holders]
        dpop_proof = await build_dpop_jwt(self.dpop, "POST", CREDENTIAL_URL, access_token=TOKEN)
        build_credential_request(
            CREDENTIAL_URL,
            {"credential_configuration_id": "bench", "proofs": {"jwt": proofs}},
            access_token=TOKEN,
            token_type="DPoP",
            dpop_proof=dpop_proof,
        )

    async def floor_build(self) -> None:
        """The floor building one credential request."""
        self.floor.build_request(audience=ISSUER, nonce=NONCE, url=CREDENTIAL_URL, token=TOKEN)

    async def ours_verify(self) -> None:
        """The wallet library verifying the ``n`` credentials of one response."""
        used: set[str] = set()
        for credential in self.credentials:
            outcome = await verify_credential(
                credential,
                format="dc+sd-jwt",
                credential_issuer=ISSUER,
                expected_vct=VCT,
                holder_keys=self.holders,
                used_keys=used,
                resolver=self.resolver,
                policy=self.policy,
            )
            if not outcome.verified:
                raise RuntimeError("not verified")

    async def floor_verify(self) -> None:
        """The floor verifying the same ``n`` credentials."""
        self.floor.verify(self.credentials, [h.public_jwk for h in self.holders])


@attrs.frozen(kw_only=True)
class PartComparison:
    """Ours against the floor for one part and one ``n`` (best rounds, CPU seconds each)."""

    part: str
    n: int
    repeats: int
    ours_seconds: float
    floor_seconds: float

    @property
    def ratio(self) -> float:
        """Floor time ÷ our time (1.0 = as fast as the floor)."""
        return self.floor_seconds / self.ours_seconds

    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {
            "part": self.part,
            "n": self.n,
            "ours_ms": round(1000 * self.ours_seconds / self.repeats, 3),
            "floor_ms": round(1000 * self.floor_seconds / self.repeats, 3),
            "ratio": round(self.ratio, 3),
        }


async def _timed(step: Callable[[], Awaitable[None]], repeats: int) -> float:
    start = time.process_time()
    for _ in range(repeats):
        await step()
    return time.process_time() - start


def compare_parts(
    n: int, repeats: int, *, rounds: int = 5, profiler: cProfile.Profile | None = None
) -> list[PartComparison]:
    """Both parts for ``n``: best of ``rounds`` rounds of ``repeats`` each, turns taken."""
    parts = WalletParts(n)

    async def main() -> list[PartComparison]:
        await parts.mint()
        out = []
        for name, ours, floor in (
            ("request building", parts.ours_build, parts.floor_build),
            ("response verification", parts.ours_verify, parts.floor_verify),
        ):
            await ours()  # warm-up
            await floor()
            best_ours = best_floor = float("inf")
            for _ in range(rounds):
                jose.clear_key_cache()
                # A wallet verifies credentials for the keys it has just generated (known
                # valid points, remembered by LocalSigner); the issuer keys are imported anew.
                await parts.mint()
                gc.collect()
                if profiler is not None:
                    profiler.enable()
                best_ours = min(best_ours, await _timed(ours, repeats))
                if profiler is not None:
                    profiler.disable()
                gc.collect()
                best_floor = min(best_floor, await _timed(floor, repeats))
            out.append(
                PartComparison(
                    part=name,
                    n=n,
                    repeats=repeats,
                    ours_seconds=best_ours,
                    floor_seconds=best_floor,
                )
            )
        return out

    return anyio.run(main)


def default_repeats(n: int, scale: float = 1.0) -> int:
    """Repeats per round: about 300 credentials (at least 10)."""
    return max(10, int(scale * 300 / n))


def run_wallet_parts_benchmark(
    ns: Sequence[int] = (1, 10), *, scale: float = 1.0, rounds: int = 5
) -> list[PartComparison]:
    """Both parts for every ``n`` in ``ns``."""
    return [c for n in ns for c in compare_parts(n, default_repeats(n, scale), rounds=rounds)]


def format_wallet_parts_table(results: Sequence[PartComparison]) -> str:
    """A plain-text table of :func:`run_wallet_parts_benchmark` results."""
    lines = [
        "Wallet parts against their floors (ES256, "
        f"{DISCLOSURES} disclosures + {DECOYS} decoys per credential)",
        f"{'part':<22} {'N':>4} {'ours ms':>9} {'floor ms':>9} {'floor/ours':>11}",
    ]
    for r in results:
        j = r.to_json()
        lines.append(
            f"{r.part:<22} {r.n:>4} {j['ours_ms']:>9.3f} {j['floor_ms']:>9.3f} {r.ratio:>11.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the table (or JSON), or a cProfile of our side."""
    return run_cli(
        argv,
        description=__doc__.splitlines()[0] if __doc__ else None,
        unit="request",
        profile_once=lambda n, scale, profiler: compare_parts(
            n, default_repeats(n, scale), rounds=1, profiler=profiler
        ),
        run=lambda ns, scale, rounds: run_wallet_parts_benchmark(ns, scale=scale, rounds=rounds),
        table=format_wallet_parts_table,
        sort_keys=("tottime",),
    )


if __name__ == "__main__":
    raise SystemExit(main())
