"""Issuer benchmark: credentials per CPU-second of the credential endpoint.

One measured request is a real ``POST <issuer>/credential`` answered by
:meth:`oid4vci.issuer.Issuer.handle` (called directly, as a web framework's adapter calls it: the
in-memory transport's yield to the event loop, 26 k instructions, is not the issuer's work):
a DPoP proof, a DPoP-bound access token, ``N`` key proofs (each with its own fresh holder key)
and ``N`` SD-JWT VCs of :data:`benchmarks.floor.DISCLOSURES` selectively disclosable claims each.

Everything the protocol lets a client prepare is prepared before the clock starts: the access
token (token endpoint, once), one fresh ``c_nonce`` per request (minted in bulk through the
issuer's store), the holder keys, the key proofs and the DPoP proofs (fresh ``jti`` each) and
the request objects. Only the ``send`` calls are timed, with :func:`time.process_time`.

The floor (:mod:`benchmarks.floor`) does the same cryptographic work directly on
``cryptography``; the ratio ``ours / floor`` says how much of the endpoint's CPU time is
cryptography the library cannot avoid.

Run alone: ``.venv/bin/python benchmarks/issuer_credential_endpoint.py [--profile]``.
"""

from __future__ import annotations

import cProfile
import gc
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._cli import run_cli
from benchmarks.floor import DECOYS, DISCLOSURES, FloorPipeline
from oid4vci import jose
from oid4vci.dpop import build_dpop_jwt
from oid4vci.http import HttpRequest
from oid4vci.issuer import Issuer
from oid4vci.issuer.config import CredentialConfigurationSpec, IssuerConfig
from oid4vci.issuer.nonce import create_c_nonce
from oid4vci.issuer.store import MemoryStore
from oid4vci.jose import LocalSigner
from oid4vci.sdjwt import sd
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet.steps import build_key_proof

__all__ = [
    "EndpointResult",
    "IssuerComparison",
    "compare",
    "run_issuer_benchmark",
]

ISSUER_URL = "https://issuer.bench.example"
CONFIGURATION_ID = "bench_credential"
PRE_AUTH_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"


@attrs.frozen(kw_only=True)
class EndpointResult:
    """One measurement: ``requests`` requests of ``n`` credentials in ``cpu_seconds``."""

    n: int
    requests: int
    cpu_seconds: float

    @property
    def credentials(self) -> int:
        """Credentials minted in the measured region."""
        return self.n * self.requests

    @property
    def credentials_per_cpu_second(self) -> float:
        """Throughput: credentials per CPU-second."""
        return self.credentials / self.cpu_seconds if self.cpu_seconds > 0 else float("inf")

    @property
    def ms_per_request(self) -> float:
        """CPU milliseconds per request."""
        return 1000 * self.cpu_seconds / self.requests


@attrs.frozen(kw_only=True)
class IssuerComparison:
    """Ours against the floor for one ``n`` (best round of each)."""

    n: int
    ours: EndpointResult
    floor: EndpointResult

    @property
    def ratio(self) -> float:
        """``ours / floor`` in credentials per CPU-second (1.0 = as fast as the floor)."""
        return self.ours.credentials_per_cpu_second / self.floor.credentials_per_cpu_second

    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {
            "n": self.n,
            "disclosures": DISCLOSURES,
            "ours_credentials_per_cpu_s": round(self.ours.credentials_per_cpu_second, 1),
            "floor_credentials_per_cpu_s": round(self.floor.credentials_per_cpu_second, 1),
            "ratio": round(self.ratio, 3),
            "ours_ms_per_request": round(self.ours.ms_per_request, 3),
            "floor_ms_per_request": round(self.floor.ms_per_request, 3),
            "requests_per_round": self.ours.requests,
        }


class BenchClaims:
    """:data:`DISCLOSURES` flat, selectively disclosable claims (as the floor mints).

    Built once, as the floor's claims are: the claims source is the application's code, and
    what it costs to look claims up is no part of the library's overhead. The issuer only
    reads the mapping (a fresh one is not needed: nothing writes to it).
    """

    def __init__(self) -> None:
        self._claims = {f"claim_{i}": sd(f"value {i}") for i in range(DISCLOSURES)}

    async def __call__(self, subject: str, configuration_id: str) -> Mapping[str, Any]:
        """The same claims for everybody."""
        return self._claims


def make_issuer(batch_size: int = 10) -> Issuer:
    """An issuer of one SD-JWT VC configuration, ES256 everywhere."""
    config = IssuerConfig(
        credential_issuer=ISSUER_URL,
        credential_signer=LocalSigner.generate("ES256", kid="bench-key"),
        credential_configurations=[
            CredentialConfigurationSpec(id=CONFIGURATION_ID, vct=ISSUER_URL + "/bench")
        ],
        claims_source=BenchClaims(),
        store=MemoryStore(max_entries=1_000_000),
        batch_size=batch_size,
        decoy_digests=(DECOYS, DECOYS),
    )
    return Issuer(config)


@attrs.frozen(kw_only=True)
class _Prepared:
    issuer: Issuer
    transport: InMemoryTransport
    requests: list[HttpRequest]


async def _access_token(issuer: Issuer, transport: InMemoryTransport, dpop: LocalSigner) -> str:
    created = await issuer.create_pre_authorized_offer(
        configuration_ids=[CONFIGURATION_ID], subject="alice"
    )
    assert created.pre_authorized_code is not None
    token_url = issuer.config.endpoint("token")
    proof = await build_dpop_jwt(dpop, "POST", token_url)
    response = await transport.send(
        HttpRequest.form(
            "POST",
            token_url,
            {"grant_type": PRE_AUTH_GRANT, "pre-authorized_code": created.pre_authorized_code},
            headers={"DPoP": proof},
        )
    )
    body = response.json_body()
    if response.status != 200 or body.get("token_type") != "DPoP":
        raise RuntimeError(f"token request failed: {response.status} {body}")
    token = body["access_token"]
    assert isinstance(token, str)
    return token


async def _prepare(issuer: Issuer, n: int, count: int) -> _Prepared:
    """``count`` ready credential requests of ``n`` proofs each (all fresh, none sent)."""
    transport = InMemoryTransport(routes={ISSUER_URL: issuer.handle})
    config = issuer.config
    dpop = LocalSigner.generate("ES256")
    token = await _access_token(issuer, transport, dpop)
    url = config.endpoint("credential")
    requests: list[HttpRequest] = []
    for _ in range(count):
        nonce = await create_c_nonce(config)
        holders = [LocalSigner.generate("ES256") for _ in range(n)]
        proofs = [await build_key_proof(key, audience=ISSUER_URL, nonce=nonce) for key in holders]
        dpop_proof = await build_dpop_jwt(dpop, "POST", url, access_token=token)
        body = {"credential_configuration_id": CONFIGURATION_ID, "proofs": {"jwt": proofs}}
        requests.append(
            HttpRequest.json(
                "POST",
                url,
                body,
                headers={"Authorization": f"DPoP {token}", "DPoP": dpop_proof},
            )
        )
    return _Prepared(issuer=issuer, transport=transport, requests=requests)


def _check(responses: Sequence[Any], n: int) -> None:
    for response in responses:
        if response.status != 200:
            raise RuntimeError(f"credential request failed: {response.status} {response.body!r}")
        credentials = response.json_body()["credentials"]
        if len(credentials) != n:
            raise RuntimeError(f"expected {n} credentials, got {len(credentials)}")
        first = credentials[0]["credential"]
        if first.count("~") != DISCLOSURES + 1:
            raise RuntimeError("unexpected number of disclosures")


async def _measure_once(
    issuer: Issuer, n: int, count: int, profiler: cProfile.Profile | None
) -> EndpointResult:
    prepared = await _prepare(issuer, n, count)
    # Building the proofs here put the holder keys into the library's parsed-key cache; a real
    # issuer has never seen a wallet's fresh holder keys, so forget them.
    jose.clear_key_cache()
    send = prepared.issuer.handle
    responses = []
    gc.collect()
    if profiler is not None:
        profiler.enable()
    start = time.process_time()
    for request in prepared.requests:
        responses.append(await send(request))
    elapsed = time.process_time() - start
    if profiler is not None:
        profiler.disable()
    _check(responses, n)
    return EndpointResult(n=n, requests=count, cpu_seconds=elapsed)


def _time_floor(pipeline: FloorPipeline, n: int, count: int) -> EndpointResult:
    gc.collect()
    start = time.process_time()
    for _ in range(count):
        pipeline.run()
    return EndpointResult(n=n, requests=count, cpu_seconds=time.process_time() - start)


def compare(
    n: int, requests: int, *, rounds: int = 3, profiler: cProfile.Profile | None = None
) -> IssuerComparison:
    """Ours and the floor for ``n``, best of ``rounds`` rounds of ``requests`` requests each.

    Rounds of ours and of the floor alternate so both see the same machine conditions.
    """
    issuer = make_issuer(batch_size=max(10, n))
    pipeline = FloorPipeline(n)

    async def main() -> IssuerComparison:
        # warm-up: first-call costs (imports, caches) are not measured
        await _measure_once(issuer, n, 2, None)
        pipeline.run()
        ours: list[EndpointResult] = []
        floor: list[EndpointResult] = []
        for _ in range(rounds):
            ours.append(await _measure_once(issuer, n, requests, profiler))
            floor.append(_time_floor(pipeline, n, requests))
        return IssuerComparison(
            n=n,
            ours=min(ours, key=lambda r: r.cpu_seconds),
            floor=min(floor, key=lambda r: r.cpu_seconds),
        )

    return anyio.run(main)


def default_requests(n: int, scale: float = 1.0) -> int:
    """Requests per round: about 600 credentials per round (at least 20 requests)."""
    return max(20, int(scale * 600 / n))


def run_issuer_benchmark(
    ns: Sequence[int] = (1, 10), *, scale: float = 1.0, rounds: int = 5
) -> list[IssuerComparison]:
    """Ours and the floor for every ``n`` in ``ns``."""
    return [compare(n, default_requests(n, scale), rounds=rounds) for n in ns]


def format_issuer_table(results: Sequence[IssuerComparison]) -> str:
    """A plain-text table of :func:`run_issuer_benchmark` results."""
    lines = [
        f"Issuer credential endpoint ({DISCLOSURES} disclosures per credential, ES256)",
        f"{'N':>4} {'ours cred/CPU-s':>16} {'floor cred/CPU-s':>17} {'ours/floor':>11}"
        f" {'ours ms/req':>12} {'floor ms/req':>13}",
    ]
    for r in results:
        lines.append(
            f"{r.n:>4} {r.ours.credentials_per_cpu_second:>16.0f}"
            f" {r.floor.credentials_per_cpu_second:>17.0f} {r.ratio:>11.2f}"
            f" {r.ours.ms_per_request:>12.2f} {r.floor.ms_per_request:>13.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the table (or JSON), or a cProfile of the measured region."""
    return run_cli(
        argv,
        description=__doc__.splitlines()[0] if __doc__ else None,
        unit="request",
        profile_once=lambda n, scale, profiler: compare(
            n, default_requests(n, scale), rounds=1, profiler=profiler
        ),
        run=lambda ns, scale, rounds: run_issuer_benchmark(ns, scale=scale, rounds=rounds),
        table=format_issuer_table,
        sort_keys=("tottime", "cumulative"),
    )


if __name__ == "__main__":
    raise SystemExit(main())
