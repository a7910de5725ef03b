"""Token Status List (draft-ietf-oauth-status-list-20): the draft's vectors, round trips, and
every refusal with its reason — including hostile ``lst`` values (zip bombs)."""

from __future__ import annotations

import hashlib
import json
import os
import tracemalloc
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oid4vci.errors import CredentialVerificationError
from oid4vci.jose import b64url_decode, b64url_encode
from oid4vci.status import (
    DEFAULT_MAX_ENTRIES,
    INVALID,
    SUSPENDED,
    VALID,
    StatusList,
    StatusListError,
    StatusListReason,
    StatusListVerificationError,
    status_name,
)

VECTOR_NAMES = [
    "1-bit, 16 entries",
    "2-bit, 12 entries",
    "1-bit, 2^20 entries",
    "2-bit, 2^20 entries",
    "4-bit, 2^20 entries",
    "8-bit, 2^20 entries",
]
BITS = [1, 2, 4, 8]


@pytest.fixture(scope="session")
def status_vectors(spec_dir: Path) -> dict[str, Any]:
    """``spec/status-list-vectors.json``; missing fails under CI (as ``spec_dir`` does)."""
    path = spec_dir / "status-list-vectors.json"
    if not path.is_file():
        message = f"status list vectors not found at {path} (set OID4VCI_SPEC_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _vector(status_vectors: Mapping[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [v for v in status_vectors["vectors"] if v["name"] == name]
    assert len(found) == 1, f"vector {name!r} not in status-list-vectors.json"
    return found[0]


def _pairs(vector: Mapping[str, Any]) -> list[tuple[int, int]]:
    if "statuses" in vector:
        return list(enumerate(vector["statuses"]))
    return [(int(i), int(s)) for i, s in vector["set"]]


def _oracle_bytes(bits: int, size: int, pairs: list[tuple[int, int]]) -> bytes:
    """The byte array written straight from the rule of draft-ietf-oauth-status-list-20 §4.1.

    Independent of StatusList, so a symmetric bug in it cannot hide here.
    """
    per_byte = 8 // bits
    out = bytearray(size * bits // 8)
    for idx, value in pairs:
        shift = (idx % per_byte) * bits
        out[idx // per_byte] &= ~(((1 << bits) - 1) << shift) & 0xFF
        out[idx // per_byte] |= value << shift
    return bytes(out)


def _reason(info: pytest.ExceptionInfo[Any], reason: str) -> None:
    assert isinstance(info.value, StatusListError), repr(info.value)
    assert info.value.reason == reason, str(info.value)


# ---------------------------------------------------------------------------- vectors


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_decodes_exactly(status_vectors: dict[str, Any], name: str) -> None:
    vector = _vector(status_vectors, name)
    decoded = StatusList.decode(vector["lst"], vector["bits"])
    assert decoded.bits == vector["bits"]
    assert decoded.size == len(decoded) == vector["size"]
    for idx, value in _pairs(vector):
        assert decoded.get(idx) == value, idx
    # every entry not listed is VALID: the whole array equals the one written by the rule
    assert decoded.to_bytes() == _oracle_bytes(vector["bits"], vector["size"], _pairs(vector))
    if "byte_array_hex" in vector:
        assert decoded.to_bytes() == bytes.fromhex(vector["byte_array_hex"])


@pytest.mark.parametrize("name", VECTOR_NAMES)
def test_vector_encodes_exactly(status_vectors: dict[str, Any], name: str) -> None:
    vector = _vector(status_vectors, name)
    built = StatusList(vector["bits"], vector["size"])
    for idx, value in _pairs(vector):
        built.set(idx, value)
    assert built.to_bytes() == _oracle_bytes(vector["bits"], vector["size"], _pairs(vector))
    lst = built.encode()
    compressed = b64url_decode(lst)
    # the zlib container at the highest level (draft-ietf-oauth-status-list-20 §4.1)
    assert compressed[:2] == b"\x78\xda"
    assert zlib.decompress(compressed) == built.to_bytes()
    # Python's zlib at level 9 reproduces the draft's strings (spec/status-list.md §12)
    assert lst == vector["lst"]
    assert "=" not in lst
    if "compressed_hex" in vector:
        assert compressed == bytes.fromhex(vector["compressed_hex"])
    # the CBOR form (draft-ietf-oauth-status-list-20 §4.3) carries the same zlib bytes at its end
    assert bytes.fromhex(vector["cbor_hex"]).endswith(compressed)
    assert StatusList.decode(lst, vector["bits"]) == built


def test_bit_order_is_least_significant_first() -> None:
    # draft-ietf-oauth-status-list-20 §4.1: index 0 in bits 0-1, index 3 in bits 6-7 of byte 0
    two = StatusList(2, 8)
    two.set(0, 1)
    two.set(3, 3)
    two.set(4, 2)
    assert two.to_bytes() == bytes([0b11000001, 0b00000010])
    one = StatusList.from_bytes(b"\x01\x80", 1)
    assert [one.get(i) for i in range(16)] == [1] + [0] * 14 + [1]
    eight = StatusList.from_bytes(b"\x00\xff\x07", 8)
    assert [eight.get(i) for i in range(3)] == [0, 255, 7]
    four = StatusList.from_bytes(b"\x21", 4)
    assert [four.get(0), four.get(1)] == [1, 2]


# ---------------------------------------------------------------------------- the list


def _values(bits: int) -> st.SearchStrategy[list[int]]:
    per_byte = 8 // bits
    return st.integers(min_value=1, max_value=64).flatmap(
        lambda n: st.lists(
            st.integers(min_value=0, max_value=(1 << bits) - 1),
            min_size=n * per_byte,
            max_size=n * per_byte,
        )
    )


@pytest.mark.parametrize("bits", BITS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip_every_width(bits: int, data: st.DataObject) -> None:
    values = data.draw(_values(bits))
    status_list = StatusList(bits, len(values))
    for idx, value in enumerate(values):
        status_list.set(idx, value)
    assert [status_list.get(i) for i in range(len(values))] == values
    assert status_list.to_bytes() == _oracle_bytes(bits, len(values), list(enumerate(values)))
    decoded = StatusList.decode(status_list.encode(), bits)
    assert decoded == status_list
    assert [decoded.get(i) for i in range(len(values))] == values
    assert StatusList.from_bytes(status_list.to_bytes(), bits) == status_list


@pytest.mark.parametrize("bits", BITS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_set_touches_only_its_entry(bits: int, data: st.DataObject) -> None:
    size = 8 * data.draw(st.integers(min_value=1, max_value=8))
    status_list = StatusList(bits, size)
    model = [0] * size
    writes = st.tuples(
        st.integers(min_value=0, max_value=size - 1),
        st.integers(min_value=0, max_value=(1 << bits) - 1),
    )
    for idx, value in data.draw(st.lists(writes, max_size=40)):
        status_list.set(idx, value)
        model[idx] = value
        assert [status_list.get(i) for i in range(size)] == model


def test_new_list_is_all_valid_and_copy_is_independent() -> None:
    status_list = StatusList(2, 1 << 17)
    assert status_list.to_bytes() == bytes((1 << 17) // 4)
    copy = status_list.copy()
    status_list.set(5, SUSPENDED)
    assert copy.get(5) == VALID
    assert status_list.get(5) == SUSPENDED
    assert copy != status_list
    copy.set(5, SUSPENDED)
    assert copy == status_list
    assert StatusList(1, 8) != StatusList(2, 4)  # same bytes, other width
    assert StatusList(1, 8) != "StatusList"
    assert repr(status_list) == "StatusList(bits=2, size=131072)"
    with pytest.raises(TypeError):
        hash(status_list)


@pytest.mark.parametrize("bits", [0, 3, 5, 16, -1, True, 1.0, "1", None])
def test_constructor_refuses_bits(bits: Any) -> None:
    with pytest.raises(StatusListError) as info:
        StatusList(bits, 8)
    _reason(info, StatusListReason.BITS)
    assert not isinstance(info.value, CredentialVerificationError)  # the caller's mistake
    with pytest.raises(StatusListError) as info:
        StatusList.from_bytes(b"\x00", bits)
    _reason(info, StatusListReason.BITS)


@pytest.mark.parametrize(("bits", "size"), [(1, 0), (1, -8), (1, 10), (2, 6), (4, 3), (1, True)])
def test_constructor_refuses_size(bits: int, size: Any) -> None:
    with pytest.raises(StatusListError) as info:
        StatusList(bits, size)
    _reason(info, StatusListReason.SIZE)


def test_from_bytes_refuses_empty_and_non_bytes() -> None:
    with pytest.raises(StatusListError) as info:
        StatusList.from_bytes(b"", 1)
    _reason(info, StatusListReason.SIZE)
    with pytest.raises(StatusListError) as info:
        StatusList.from_bytes("00", 1)  # type: ignore[arg-type]
    _reason(info, StatusListReason.MALFORMED)


@pytest.mark.parametrize(("bits", "value"), [(1, 2), (2, 4), (4, 16), (8, 256), (8, -1), (2, True)])
def test_set_refuses_value_out_of_range(bits: int, value: Any) -> None:
    status_list = StatusList(bits, 8)
    with pytest.raises(StatusListError) as info:
        status_list.set(0, value)
    _reason(info, StatusListReason.VALUE_OUT_OF_RANGE)
    assert status_list.to_bytes() == bytes(bits)  # unchanged


@pytest.mark.parametrize("idx", [16, 17, 1 << 40, -1, True, 1.0, "0"])
def test_get_and_set_refuse_index_beyond_the_list(idx: Any) -> None:
    status_list = StatusList(1, 16)
    with pytest.raises(StatusListError) as info:
        status_list.get(idx)
    _reason(info, StatusListReason.INDEX_OUT_OF_RANGE)
    with pytest.raises(StatusListError) as info:
        status_list.set(idx, 1)
    _reason(info, StatusListReason.INDEX_OUT_OF_RANGE)
    assert status_list.get(15) == 0


# ---------------------------------------------------------------------------- hostile lst


def _zlib(data: bytes, wbits: int = 15) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    return compressor.compress(data) + compressor.flush()


GOOD = _zlib(b"\xb9\xa3")


@pytest.mark.parametrize(
    "lst",
    [
        "***",  # not the base64url alphabet
        "eNrbuRgAAhcBXQ==",  # padding
        "eNrbuRgAAhcBX+/",  # base64, not base64url
        "A",  # impossible length
        b64url_encode(b"\x00" * 16),  # not zlib
        b64url_encode(_zlib(b"\xb9\xa3", -15)),  # raw DEFLATE without the zlib header
        b64url_encode(_zlib(b"\xb9\xa3", 31)),  # gzip container
        b64url_encode(GOOD[:-3]),  # truncated (Adler-32 cut)
        b64url_encode(GOOD[:4]),  # truncated inside the data
        b64url_encode(GOOD + b"\x00"),  # trailing data
        b64url_encode(GOOD + GOOD),  # two streams
        b64url_encode(GOOD[:-1] + bytes([GOOD[-1] ^ 1])),  # bad checksum
        "",
    ],
)
def test_decode_refuses_malformed(lst: str) -> None:
    with pytest.raises(StatusListVerificationError) as info:
        StatusList.decode(lst, 1)
    _reason(info, StatusListReason.MALFORMED)
    assert isinstance(info.value, CredentialVerificationError)


def test_decode_refuses_non_string_and_empty_list() -> None:
    with pytest.raises(StatusListVerificationError) as info:
        StatusList.decode(GOOD, 1)  # type: ignore[arg-type]
    _reason(info, StatusListReason.MALFORMED)
    with pytest.raises(StatusListVerificationError) as info:
        StatusList.decode(b64url_encode(_zlib(b"")), 1)
    _reason(info, StatusListReason.SIZE)


@pytest.mark.parametrize("bits", [3, 0, 16, True, "1", None])
def test_decode_refuses_bits(bits: Any) -> None:
    with pytest.raises(StatusListVerificationError) as info:
        StatusList.decode("eNrbuRgAAhcBXQ", bits)
    _reason(info, StatusListReason.BITS)


@pytest.mark.parametrize("max_entries", [0, -1, True, 1.5])
def test_decode_refuses_a_bad_cap(max_entries: Any) -> None:
    with pytest.raises(StatusListError) as info:
        StatusList.decode("eNrbuRgAAhcBXQ", 1, max_entries=max_entries)
    _reason(info, StatusListReason.SIZE)


def test_decode_cap_is_exact() -> None:
    lst = StatusList(2, 1 << 12).encode()
    assert StatusList.decode(lst, 2, max_entries=1 << 12).size == 1 << 12
    with pytest.raises(StatusListVerificationError) as info:
        StatusList.decode(lst, 2, max_entries=(1 << 12) - 4)
    _reason(info, StatusListReason.TOO_LARGE)
    assert DEFAULT_MAX_ENTRIES >= 1 << 20  # the draft's Appendix C lists decode by default


def test_decode_refuses_huge_lst_before_decoding() -> None:
    # far longer than any encoding of 1024 one-bit entries (128 bytes) could be
    with pytest.raises(StatusListVerificationError) as info:
        StatusList.decode("A" * 1_000_000, 1, max_entries=1024)
    _reason(info, StatusListReason.TOO_LARGE)
    # incompressible input that is short enough to try but inflates past the cap
    noise = hashlib.shake_256(b"noise").digest(4096)
    with pytest.raises(StatusListVerificationError) as info:
        StatusList.decode(b64url_encode(_zlib(noise)), 8, max_entries=4000)
    _reason(info, StatusListReason.TOO_LARGE)


@pytest.fixture(scope="module")
def zip_bomb() -> str:
    """100 MiB of zeros in the zlib container (about 100 KB), built without holding 100 MiB."""
    compressor = zlib.compressobj(9)
    block = bytes(1 << 20)
    parts = [compressor.compress(block) for _ in range(100)]
    parts.append(compressor.flush())
    return b64url_encode(b"".join(parts))


@pytest.mark.parametrize(("bits", "max_entries"), [(1, DEFAULT_MAX_ENTRIES), (8, 1 << 20)])
def test_zip_bomb_is_refused_with_bounded_memory(
    zip_bomb: str, bits: int, max_entries: int
) -> None:
    cap = max_entries * bits // 8
    assert len(zip_bomb) < cap  # small input: only the cap during inflation can stop it
    tracemalloc.start()
    try:
        with pytest.raises(StatusListVerificationError) as info:
            StatusList.decode(zip_bomb, bits, max_entries=max_entries)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _reason(info, StatusListReason.TOO_LARGE)
    assert peak < cap + 2 * (1 << 20), f"peak {peak} bytes for a cap of {cap}"


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=256), bits=st.sampled_from(BITS))
def test_decode_of_arbitrary_bytes_raises_only_its_error(data: bytes, bits: int) -> None:
    for candidate in (data, _zlib(data)):
        try:
            decoded = StatusList.decode(b64url_encode(candidate), bits, max_entries=1 << 12)
        except StatusListVerificationError:
            continue
        assert decoded.to_bytes() == zlib.decompress(candidate)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=64))
def test_decode_of_arbitrary_text_raises_only_its_error(text: str) -> None:
    try:
        StatusList.decode(text, 1)
    except StatusListVerificationError as exc:
        assert exc.reason in {StatusListReason.MALFORMED, StatusListReason.SIZE}


# ---------------------------------------------------------------------------- status values


def test_status_names() -> None:
    assert (VALID, INVALID, SUSPENDED) == (0, 1, 2)
    assert [status_name(v) for v in (0, 1, 2)] == ["valid", "invalid", "suspended"]
    assert [status_name(v) for v in (3, 0x0B, 0x0C, 0x0F, 0x10, 255)] == [3, 11, 12, 15, 16, 255]
    for bad in (-1, 256, True, 1.0, "1", None):
        with pytest.raises(StatusListError) as info:
            status_name(bad)  # type: ignore[arg-type]
        _reason(info, StatusListReason.VALUE_OUT_OF_RANGE)
