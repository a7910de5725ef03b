"""The speed-ups of issue 16 keep the bytes and the checks of the straightforward code.

Disclosures built from a per-batch JSON tail and pooled salts, EC keys imported by their
coordinates and thumbprints built from the required members must give exactly what the JSON
encoder, joserfc and RFC 7638 give, and refuse exactly what they refuse.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import re
from typing import Any

import pytest
from joserfc.jwk import ECKey, OKPKey, RSAKey

from oid4vci._json import dumps_compact, loads_bytes, loads_text, text_parser
from oid4vci.errors import JoseError, ValidationError
from oid4vci.jose import (
    LocalSigner,
    b64url_decode,
    b64url_encode,
    clear_key_cache,
    create_jws,
    jwk_thumbprint,
    public_jwk,
    signer_public_jwk,
    verify_jws,
)
from oid4vci.sdjwt import (
    SdJwtVerificationError,
    disclosure_digest,
    issue_batch,
    issue_sd_jwt_vc,
    parse_sd_jwt,
    sd,
    verify_sd_jwt_vc,
)

ISSUER = "https://issuer.example"
VCT = "https://issuer.example/vct"

LEAVES: list[Any] = [
    "plain",
    'Möbius "quoted" \\ back\nslash \u2028 \x00',
    "",
    0,
    -17,
    10**40,
    True,
    False,
    None,
    1.5,
    [1, "two", None],
    {"nested": "object"},
]


def _decoded_disclosures(compact: str) -> list[list[Any]]:
    return [json.loads(b64url_decode(d)) for d in compact.split("~")[1:-1]]


@pytest.mark.anyio
async def test_disclosures_are_the_json_encoders_bytes_with_fresh_salts() -> None:
    signer = LocalSigner.generate()
    holders = [LocalSigner.generate().public_jwk for _ in range(3)]
    claims = {f"c{i}": sd(value) for i, value in enumerate(LEAVES)}
    claims["list"] = [sd(value) for value in LEAVES]  # type: ignore[assignment]
    minted = await issue_batch(signer, holder_jwks=holders, vct=VCT, claims=claims, issuer=ISSUER)
    salts: set[str] = set()
    for compact in minted:
        for raw in compact.split("~")[1:-1]:
            array = json.loads(b64url_decode(raw))
            encoded = json.dumps(array, separators=(",", ":"), ensure_ascii=False)
            assert b64url_decode(raw) == encoded.encode("utf-8")
            assert len(b64url_decode(array[0])) == 16  # 128-bit salt
            salts.add(array[0])
        parsed = parse_sd_jwt(compact)
        digests = set(parsed.jws.payload["_sd"])
        for raw in compact.split("~")[1:-1]:
            array = json.loads(b64url_decode(raw))
            if len(array) == 3:
                assert disclosure_digest(raw) in digests
    per_credential = 2 * len(LEAVES)
    assert len(salts) == 3 * per_credential  # no salt is ever reused, across the batch either


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "value"), [("a", "\ud800"), ("\udfff", "x"), ("a", ["\ud800"])])
async def test_lone_surrogates_are_refused_as_before(name: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        await issue_sd_jwt_vc(
            LocalSigner.generate(), vct=VCT, claims={name: sd(value)}, holder_jwk=None, issuer=None
        )


@pytest.mark.anyio
async def test_batch_statuses_go_one_per_credential() -> None:
    holders = [LocalSigner.generate().public_jwk for _ in range(2)]
    statuses = [{"status_list": {"idx": i, "uri": ISSUER + "/sl"}} for i in range(2)]
    minted = await issue_batch(
        LocalSigner.generate(),
        holder_jwks=holders,
        vct=VCT,
        claims={"a": sd("b")},
        issuer=ISSUER,
        statuses=statuses,
    )
    assert [parse_sd_jwt(c).jws.payload["status"] for c in minted] == statuses
    with pytest.raises(ValidationError):
        await issue_batch(
            LocalSigner.generate(),
            holder_jwks=holders,
            vct=VCT,
            claims={},
            issuer=ISSUER,
            statuses=statuses[:1],
        )


def _rfc7638(jwk: dict[str, Any], members: tuple[str, ...]) -> str:
    subset = {name: jwk[name] for name in members}
    data = json.dumps(subset, separators=(",", ":"), sort_keys=True).encode()
    return b64url_encode(hashlib.sha256(data).digest())


def test_thumbprints_match_the_sorting_encoder_and_rfc7638_vector() -> None:
    # RFC 7638 §3.1 example key and thumbprint.
    rsa = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGj"
        "QR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-b"
        "FTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(rsa) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    keys: list[dict[str, Any]] = [
        ECKey.generate_key("P-256").as_dict(private=False),
        ECKey.generate_key("P-521").as_dict(private=False),
        OKPKey.generate_key("Ed25519").as_dict(private=False),
        {"kty": "EC", "crv": "P-256", "x": 'é"\\', "y": "\u2028"},  # escaping, not a key
    ]
    members = {"EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}
    for jwk in keys:
        assert jwk_thumbprint(jwk) == _rfc7638(jwk, members[jwk["kty"]])
    with pytest.raises(JoseError):
        jwk_thumbprint({"kty": "EC", "crv": "P-256", "x": 1, "y": "y"})


def test_ec_keys_imported_by_coordinates_refuse_what_joserfc_refuses() -> None:
    clear_key_cache()
    good: dict[str, Any] = dict(ECKey.generate_key("P-256").as_dict(private=False))
    assert public_jwk(good) == good
    # A cached key is not a pass for a changed key: each variant is checked again.
    off_curve = dict(good, y=b64url_encode(b"\x01" * 32))
    bad_b64 = dict(good, x=str(good["x"]) + "=")
    empty = dict(good, x="")
    wrong_curve = dict(good, crv="P-384")
    private = ECKey.generate_key("P-256").as_dict(private=True)
    for jwk in (off_curve, bad_b64, empty, wrong_curve, private):
        for _ in range(2):  # the second try goes through the cache path
            with pytest.raises(JoseError):
                public_jwk(jwk)
    rsa = RSAKey.generate_key(2048).as_dict(private=False)
    assert public_jwk(rsa) == rsa


def _joserfc_accepts(jwk: dict[str, Any]) -> bool:
    try:
        ECKey.import_key(dict(jwk))
    except Exception:
        return False
    return True


def test_full_size_ec_points_and_other_shapes_accept_what_joserfc_accepts() -> None:
    # Full-size strict base64url coordinates are imported as a SEC 1 point, every other shape
    # as joserfc reads it; a differential check over valid and corrupted keys of each curve.
    rng = random.Random(16)
    for i in range(300):
        crv = ("P-256", "P-384", "P-521")[i % 3]
        good: dict[str, Any] = dict(ECKey.generate_key(crv).as_dict(private=False))
        x = b64url_decode(good["x"])
        variants = [
            good,
            dict(good, x=b64url_encode(rng.randbytes(len(x)))),  # off the curve
            dict(good, x=b64url_encode(x.lstrip(b"\0") or b"\0")),  # shorter when it can be
            dict(good, x=b64url_encode(b"\0" + x)),  # one byte too long
            dict(good, x=good["x"][:-1] + rng.choice("+/=*.")),  # not strict base64url
            dict(good, x=good["x"][:-2]),
            dict(good, y=b64url_encode(b"\xff" * len(x))),  # not below the field prime
        ]
        for jwk in variants:
            clear_key_cache()
            try:
                public_jwk(jwk)
                ours = True
            except JoseError:
                ours = False
            assert ours == _joserfc_accepts(jwk), jwk
            if ours:
                members = ("crv", "kty", "x", "y")
                assert jwk_thumbprint(dict(jwk)) == _rfc7638(jwk, members)


@pytest.mark.anyio
async def test_cached_key_still_verifies_every_signature() -> None:
    signer, other = LocalSigner.generate(), LocalSigner.generate()
    token = await create_jws(signer, {"a": 1})
    verify_jws(token, signer.public_jwk, algorithms=["ES256"])
    with pytest.raises(JoseError):
        verify_jws(token, other.public_jwk, algorithms=["ES256"])
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    with pytest.raises(JoseError):
        verify_jws(tampered, signer.public_jwk, algorithms=["ES256"])


@pytest.mark.parametrize("alg", ["ES256", "ES384", "ES512"])
def test_local_signer_jwk_is_joserfcs(alg: str) -> None:
    for _ in range(20):  # coordinates with leading zero bytes come up too
        signer = LocalSigner.generate(alg)
        expected = ECKey.import_key(signer._private_key).as_dict(private=False)
        assert list(signer.public_jwk.items()) == list(expected.items())
        assert signer_public_jwk(signer) == public_jwk(signer.public_jwk)


@pytest.mark.anyio
async def test_verifying_with_the_parsed_form_checks_the_same() -> None:
    signer = LocalSigner.generate()
    holder = LocalSigner.generate()
    compact = await issue_sd_jwt_vc(
        signer, vct=VCT, claims={"a": sd("b")}, holder_jwk=holder.public_jwk, issuer=ISSUER
    )
    keys = [signer.public_jwk]
    plain = verify_sd_jwt_vc(compact, issuer_keys=keys)
    reused = verify_sd_jwt_vc(compact, issuer_keys=keys, parsed=parse_sd_jwt(compact))
    assert reused == plain
    forged = compact[: compact.index("~")] + "~" + b64url_encode(b'["s","a","c"]') + "~"
    with pytest.raises(SdJwtVerificationError):
        verify_sd_jwt_vc(forged, issuer_keys=keys, parsed=parse_sd_jwt(forged))
    with pytest.raises(SdJwtVerificationError):
        verify_sd_jwt_vc(compact, issuer_keys=[holder.public_jwk], parsed=parse_sd_jwt(compact))


def _b64url_by_regex(text: str) -> bytes:
    """The straightforward definition: the alphabet by a regular expression, then decode."""
    if re.fullmatch(r"[A-Za-z0-9_-]*", text) is None:
        raise JoseError("invalid base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise JoseError("invalid base64url") from exc


def test_b64url_decode_accepts_and_refuses_what_the_regex_definition_does() -> None:
    rng = random.Random(16)
    alphabet = "AZaz09-_+/= \n\t.é\x00"
    cases = ["", "A", "AA", "AAA", "AAAA", "A===", "AA==", "-_-_", "+/+/"]
    cases += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9))) for _ in range(5000)]
    cases += [b64url_encode(rng.randbytes(rng.randint(0, 40))) for _ in range(500)]
    for text in cases:
        try:
            expected: bytes | None = _b64url_by_regex(text)
        except JoseError:
            expected = None
        try:
            got: bytes | None = b64url_decode(text)
        except JoseError:
            got = None
        assert got == expected, text


def test_jwks_with_string_members_are_cached_but_still_checked() -> None:
    clear_key_cache()
    jwk = dict(LocalSigner.generate().public_jwk, kid="k1", alg="ES256", use="sig")
    assert public_jwk(jwk) == jwk
    assert public_jwk(dict(jwk)) == jwk  # from the cache
    for bad in (dict(jwk, use="nonsense"), dict(jwk, x=jwk["x"][:-2] + "AA"), dict(jwk, d="x")):
        for _ in range(2):
            with pytest.raises(JoseError):
                public_jwk(bad)


def test_a_local_signers_own_key_is_known_without_import_and_others_still_checked() -> None:
    clear_key_cache()
    signer = LocalSigner.generate()
    jwk = signer.public_jwk
    # the remembered key object is the signer's own public key: signatures verify with it
    assert public_jwk(jwk) == jwk
    # a forged point with the same curve but other coordinates is not a cache hit
    with pytest.raises(JoseError):
        public_jwk(dict(jwk, y=b64url_encode(b"\x02" * 32)))


def _json_outcome(loads: Any, data: bytes) -> tuple[Any, ...]:
    try:
        return ("value", loads(data))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        return (type(exc).__name__,)


def test_loads_bytes_gives_what_json_loads_gives() -> None:
    """The UTF-8 shortcut agrees with json.loads's own encoding detection, byte for byte."""
    seeds = [
        b"",
        b"{",
        b"{}",
        b"[]",
        b"[1]",
        b"{\x00\x00\x00",
        b'{"a":1}',
        b'{"a":[1,2,{"b":null}]}',
        b'{"a":"\xc3\xa9"}',
        b'{"a":"\xed\xa0\x80"}',  # a lone surrogate: surrogatepass, as json.loads decodes
        b'{"a":"\xff"}',
        b'{"a":NaN}',
        b"[1,2] x",
        b'  {"a":1}',
        b'\xef\xbb\xbf{"a":1}',
        '{"a":"\u00e9"}'.encode("utf-16-le"),
        '{"a":"\u00e9"}'.encode("utf-16-be"),
        '{"a":"\u00e9"}'.encode("utf-16"),
        '{"a":"\u00e9"}'.encode("utf-32"),
        '["x"]'.encode("utf-32-le"),
    ]
    rnd = random.Random(16)
    samples = list(seeds)
    for _ in range(4000):
        mutated = bytearray(rnd.choice(seeds[6:]))
        for _ in range(rnd.randint(1, 3)):
            mutated[rnd.randrange(len(mutated))] = rnd.randrange(256)
        samples.append(bytes(mutated))
    for data in samples:
        assert _json_outcome(loads_bytes, data) == _json_outcome(json.loads, data), data


def test_loads_text_gives_what_the_decoder_gives() -> None:
    """The scanner called directly: same values, same errors with the same message and place."""
    decode = json.JSONDecoder().decode
    seeds = [
        "",
        " ",
        "1",
        " 1 ",
        "{}",
        '  {"a": [1, 2.5, -3e2, true, false, null, "x"]}\n',
        '{"a":1} x',
        '{"a":1}  ',
        "[1,]",
        '{"a" 1}',
        "NaN",
        "[1, Infinity]",
        '"\\ud800"',
        "[" * 50 + "]" * 50,
    ]
    rnd = random.Random(16)
    samples = list(seeds)
    for _ in range(3000):
        mutated = list(rnd.choice(seeds[4:8]))
        for _ in range(rnd.randint(1, 3)):
            mutated[rnd.randrange(len(mutated))] = rnd.choice(' \t{}[]",:1aex\\')
        samples.append("".join(mutated))

    def outcome(loads: Any, text: str) -> tuple[Any, ...]:
        try:
            return ("value", loads(text))
        except json.JSONDecodeError as exc:
            return ("JSONDecodeError", exc.msg, exc.pos)
        except ValueError as exc:
            return ("ValueError", str(exc))

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    strict = json.JSONDecoder(parse_constant=no_constants)  # as SD-JWT disclosures are read
    for text in samples:
        assert outcome(loads_text, text) == outcome(decode, text), text
        assert outcome(text_parser(strict), text) == outcome(strict.decode, text), text


def _encode_outcome(encode: Any, value: Any) -> tuple[Any, ...]:
    try:
        return ("ok", encode(value))
    except (TypeError, ValueError) as exc:
        kind = "TypeError" if isinstance(exc, TypeError) else "ValueError"
        return (kind, str(exc))


@pytest.mark.parametrize("allow_nan", [True, False])
def test_dumps_compact_gives_what_the_compact_encoder_gives(allow_nan: bool) -> None:
    encoder = json.JSONEncoder(separators=(",", ":"), allow_nan=allow_nan)
    values: list[Any] = [
        "plain",
        'quote " back \\ ctl \x01 é \u2028 😀',
        {"a": 1, "b": [True, False, None], "c": {"d": 1.5, "e": "é"}},
        [1, -2, 3.25, 1e300, "x" * 300],
        {"z": 1, "a": 2},  # order kept, not sorted
        {3: "int key", True: "bool key", None: "none key", 2.5: "float key"},
        (1, 2),
        float("nan"),
        [float("inf")],
        {"k": -float("inf")},
        {"bad": object()},
        {"bad": b"bytes"},
        {("tuple",): "key"},
        [],
        {},
        0,
        None,
    ]
    rng = random.Random(7)
    for _ in range(200):
        values.append(
            {
                f"k{rng.randrange(50)}": rng.choice(
                    [rng.random(), "s" * rng.randrange(5), [rng.randrange(9)]]
                )
                for _ in range(rng.randrange(6))
            }
        )
    for value in values:
        assert _encode_outcome(lambda v: dumps_compact(v, allow_nan=allow_nan), value) == (
            _encode_outcome(encoder.encode, value)
        ), value


def test_ec_keys_with_a_kid_refuse_what_joserfc_refuses() -> None:
    """An issuer's key (plain EC + ``kid``) takes the coordinate import; same decisions."""
    good: dict[str, Any] = dict(ECKey.generate_key("P-256").as_dict(private=False), kid="k1")
    variants = [
        good,
        dict(good, y=b64url_encode(b"\x01" * 32)),  # off the curve
        dict(good, x=str(good["x"]) + "="),  # padded base64url
        dict(good, x=""),
        dict(good, crv="P-384"),
        dict(good, kid=""),
        dict(good, kty="OKP"),
    ]
    for jwk in variants:
        clear_key_cache()
        try:
            ECKey.import_key(dict(jwk)) if jwk.get("kty") == "EC" else OKPKey.import_key(dict(jwk))
            expected = True
        except Exception:  # joserfc refuses with several exception types
            expected = False
        for _ in range(2):  # the second try goes through the cache
            try:
                public_jwk(jwk)
                accepted = True
            except JoseError:
                accepted = False
            assert accepted == expected, jwk
