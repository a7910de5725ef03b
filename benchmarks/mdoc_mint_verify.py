"""mdoc benchmark: mint and verify ``N`` ISO mdocs (``mso_mdoc``), against a floor.

Ours, per round: ``N`` × :func:`oid4vci.mdoc.issue_mdoc` (an mDL of 7 elements of
``org.iso.18013.5.1``, one fresh holder key each, ES256, SHA-256, the Document Signer
certificate in ``x5chain``), then ``N`` × :func:`oid4vci.mdoc.verify_mdoc` of those bytes
(the CBOR scan, X.509 path validation to the IACA root with the mdlDS extended key usage, the
``issuerAuth`` signature, every digest, validity, holder key).

The floor (:class:`MdocFloor`) is the same cryptographic and CBOR work written directly on
``cryptography`` + ``cbor2``: per mdoc, encode the items (32-byte salts) and their SHA-256
digests, the MSO, the COSE ``Sig_structure`` and an ES256 signature (DER to ``r‖s``); to
verify, decode it, check the Document Signer certificate's signature with the IACA key (the
cryptographic part of path validation), the ``issuerAuth`` signature and every digest. No
input checks, no limits, no error reporting: the least work any implementation must do.
``ours/floor`` is our throughput over the floor's (1.0 = no overhead).

Run alone: ``.venv/bin/python benchmarks/mdoc_mint_verify.py [-n 10] [--profile]``.
"""

from __future__ import annotations

import cProfile
import datetime
import gc
import hashlib
import secrets
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import attrs
import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._cli import run_cli
from oid4vci.jose import LocalSigner
from oid4vci.mdoc import issue_mdoc, verify_mdoc
from oid4vci.mdoc_certificates import MdocIssuerCertificates, create_iaca_and_document_signer

__all__ = ["MdocComparison", "MdocFloor", "compare", "run_mdoc_benchmark"]

DOCTYPE = "org.iso.18013.5.1.mDL"
NAMESPACE = "org.iso.18013.5.1"
ELEMENTS: dict[str, Any] = {
    "family_name": "Liddell",
    "given_name": "Alice",
    "birth_date": datetime.date(2000, 5, 4),
    "issue_date": datetime.date(2026, 1, 1),
    "expiry_date": datetime.date(2031, 1, 1),
    "issuing_country": "UT",
    "document_number": "DL-0001-ALICE",
}


@attrs.frozen(kw_only=True)
class MdocComparison:
    """Ours against the floor for ``n`` mdocs minted and verified (best round of each)."""

    n: int
    ours_seconds: float
    floor_seconds: float

    @property
    def ratio(self) -> float:
        """``ours / floor`` in mdocs per CPU-second (1.0 = as fast as the floor)."""
        return self.floor_seconds / self.ours_seconds if self.ours_seconds > 0 else float("inf")

    def to_json(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {
            "n": self.n,
            "ours_mdocs_per_cpu_s": round(self.n / self.ours_seconds, 1),
            "floor_mdocs_per_cpu_s": round(self.n / self.floor_seconds, 1),
            "ratio": round(self.ratio, 3),
            "ours_ms_per_mdoc": round(1000 * self.ours_seconds / self.n, 3),
            "floor_ms_per_mdoc": round(1000 * self.floor_seconds / self.n, 3),
        }


def _raw_signature(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


class MdocFloor:
    """The floor: mint and verify mdocs on ``cryptography`` + ``cbor2`` with no checks."""

    def __init__(self, certs: MdocIssuerCertificates, holders: Sequence[LocalSigner]) -> None:
        private = serialization.load_pem_private_key(_private_pem(certs), password=None)
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        self.key = private
        self.ds = certs.document_signer
        self.ds_der = self.ds.public_bytes(serialization.Encoding.DER)
        iaca_public = certs.iaca.public_key()
        assert isinstance(iaca_public, ec.EllipticCurvePublicKey)
        self.iaca_public = iaca_public
        self.device_keys = [_cose_key(h.public_jwk) for h in holders]

    def mint(self, device_key: dict[int, Any]) -> bytes:
        """One ``IssuerSigned``: items, digests, MSO, COSE_Sign1."""
        items, digests = [], {}
        for digest_id, (name, value) in enumerate(ELEMENTS.items()):
            element = (
                cbor2.CBORTag(1004, value.isoformat())
                if isinstance(value, datetime.date)
                else value
            )
            item = cbor2.CBORTag(24, cbor2.dumps({
                "digestID": digest_id, "random": secrets.token_bytes(32),
                "elementIdentifier": name, "elementValue": element,
            }))  # fmt: skip
            items.append(item)
            digests[digest_id] = hashlib.sha256(cbor2.dumps(item)).digest()
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        tdate = cbor2.CBORTag(0, now.strftime("%Y-%m-%dT%H:%M:%SZ"))
        later = cbor2.CBORTag(
            0, (now + datetime.timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        mso = {
            "version": "1.0", "digestAlgorithm": "SHA-256", "valueDigests": {NAMESPACE: digests},
            "deviceKeyInfo": {"deviceKey": device_key}, "docType": DOCTYPE,
            "validityInfo": {"signed": tdate, "validFrom": tdate, "validUntil": later},
        }  # fmt: skip
        payload = cbor2.dumps(cbor2.CBORTag(24, cbor2.dumps(mso)))
        protected = cbor2.dumps({1: -7})
        to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
        signature = _raw_signature(self.key.sign(to_sign, ec.ECDSA(hashes.SHA256())))
        issuer_auth = [protected, {33: self.ds_der}, payload, signature]
        return bytes(cbor2.dumps({"nameSpaces": {NAMESPACE: items}, "issuerAuth": issuer_auth}))

    def verify(self, data: bytes) -> None:
        """Certificate signature, issuerAuth signature, every digest (raises on a mismatch)."""
        document = cbor2.loads(data)
        protected, unprotected, payload, signature = document["issuerAuth"]
        ds = self.ds  # a parsed certificate per document would cost more; the floor is lenient
        assert unprotected[33] == self.ds_der
        hash_algorithm = ds.signature_hash_algorithm
        assert hash_algorithm is not None
        self.iaca_public.verify(ds.signature, ds.tbs_certificate_bytes, ec.ECDSA(hash_algorithm))
        public = ds.public_key()
        assert isinstance(public, ec.EllipticCurvePublicKey)
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
        public.verify(der, to_sign, ec.ECDSA(hashes.SHA256()))
        mso = cbor2.loads(cbor2.loads(payload).value)
        expected = mso["valueDigests"][NAMESPACE]
        for item in document["nameSpaces"][NAMESPACE]:
            digest_id = cbor2.loads(item.value)["digestID"]
            if hashlib.sha256(cbor2.dumps(item)).digest() != expected[digest_id]:
                raise ValueError("digest mismatch")


def _private_pem(certs: MdocIssuerCertificates) -> bytes:
    jwk = certs.signer.private_jwk()
    d = int.from_bytes(_b64(jwk["d"]), "big")
    key = ec.derive_private_key(d, ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _b64(text: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _cose_key(jwk: dict[str, Any]) -> dict[int, Any]:
    return {1: 2, -1: 1, -2: _b64(jwk["x"]), -3: _b64(jwk["y"])}


async def _ours_once(
    certs: MdocIssuerCertificates, holders: Sequence[LocalSigner], profiler: cProfile.Profile | None
) -> float:
    now = datetime.datetime.now(datetime.UTC)
    until = now + datetime.timedelta(days=365)
    gc.collect()
    if profiler is not None:
        profiler.enable()
    start = time.process_time()
    minted = [
        await issue_mdoc(
            certs.signer,
            doctype=DOCTYPE,
            namespaces={NAMESPACE: ELEMENTS},
            device_key=holder.public_jwk,
            certificate_chain=certs.certificate_chain,
            valid_from=now,
            valid_until=until,
        )
        for holder in holders
    ]
    for data, holder in zip(minted, holders, strict=True):
        verify_mdoc(
            data,
            trust_anchors=[certs.iaca],
            expected_doctype=DOCTYPE,
            holder_keys=[holder.public_jwk],
        )
    elapsed = time.process_time() - start
    if profiler is not None:
        profiler.disable()
    return elapsed


def _floor_once(floor: MdocFloor) -> float:
    gc.collect()
    start = time.process_time()
    minted = [floor.mint(key) for key in floor.device_keys]
    for data in minted:
        floor.verify(data)
    return time.process_time() - start


def compare(n: int, *, rounds: int = 5, profiler: cProfile.Profile | None = None) -> MdocComparison:
    """Ours and the floor minting and verifying ``n`` mdocs, best of ``rounds`` each
    (alternating, so both see the same machine conditions)."""
    certs = create_iaca_and_document_signer(country="UT")
    holders = [LocalSigner.generate("ES256") for _ in range(n)]
    floor = MdocFloor(certs, holders)

    async def main() -> MdocComparison:
        await _ours_once(certs, holders[:1], None)  # warm-up (imports, caches)
        _floor_once(floor)
        ours, floors = [], []
        for _ in range(rounds):
            ours.append(await _ours_once(certs, holders, profiler))
            floors.append(_floor_once(floor))
        return MdocComparison(n=n, ours_seconds=min(ours), floor_seconds=min(floors))

    return anyio.run(main)


def run_mdoc_benchmark(
    ns: Sequence[int] = (10,), *, scale: float = 1.0, rounds: int = 5
) -> list[MdocComparison]:
    """Ours and the floor for every ``n`` in ``ns`` (``scale`` multiplies ``n``)."""
    return [compare(max(1, int(n * scale)), rounds=rounds) for n in ns]


def format_mdoc_table(results: Sequence[MdocComparison]) -> str:
    """A plain-text table of :func:`run_mdoc_benchmark` results."""
    lines = [
        "ISO mdoc: mint + verify (mDL, 7 elements, ES256, SHA-256, chain to the IACA)",
        f"{'N':>4} {'ours mdoc/CPU-s':>16} {'floor mdoc/CPU-s':>17} {'ours/floor':>11}"
        f" {'ours ms/mdoc':>13} {'floor ms/mdoc':>14}",
    ]
    for r in results:
        j = r.to_json()
        lines.append(
            f"{r.n:>4} {j['ours_mdocs_per_cpu_s']:>16.0f} {j['floor_mdocs_per_cpu_s']:>17.0f}"
            f" {r.ratio:>11.2f} {j['ours_ms_per_mdoc']:>13.2f} {j['floor_ms_per_mdoc']:>14.2f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: print the table (or JSON), or a cProfile of the measured region."""
    return run_cli(
        argv,
        description=__doc__.splitlines()[0] if __doc__ else None,
        unit="round (mdocs minted and verified)",
        profile_once=lambda n, scale, profiler: compare(
            max(1, int(n * scale)), rounds=1, profiler=profiler
        ),
        run=lambda ns, scale, rounds: run_mdoc_benchmark(ns, scale=scale, rounds=rounds),
        table=format_mdoc_table,
        sort_keys=("tottime", "cumulative"),
        default_ns=(10,),
    )


if __name__ == "__main__":
    raise SystemExit(main())
