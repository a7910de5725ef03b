"""JSON from bytes: exactly what :func:`json.loads` does, with less work per call.

``json.loads(data)`` on bytes first detects UTF-8, -16 or -32 from the leading bytes (Python's
reading of RFC 8259 §8.1) in Python code, then decodes the text with ``surrogatepass`` and
parses it with the default decoder. Bytes that start with ``{`` or ``[`` followed by a
non-zero byte are UTF-8 by that same detection, so :func:`loads_bytes` decodes them directly;
anything else goes to ``json.loads``. Same results, same exceptions. :func:`loads_text` is
the default decoder's ``decode`` calling its scanner directly (without two Python frames).

:func:`dumps_compact` is ``json.JSONEncoder(separators=(",", ":")).encode`` without the
encoder's per-call Python frames. :func:`dumps_long_strings` is the other direction for bodies that carry a few very long strings
(the credentials of a credential response): the same bytes as a compact
``json.JSONEncoder(separators=(",", ":"))``, with long strings that need no escaping copied
instead of escaped character by character.

:func:`finite_number` reads a JSON number (a NumericDate, RFC 7519 §2) as a finite float.
"""

from __future__ import annotations

import json
import json.scanner
import math
import re
from collections.abc import Callable
from json.encoder import encode_basestring_ascii
from typing import Any

from oid4vci.errors import ArgumentTypeError

__all__ = [
    "dumps_compact",
    "dumps_long_strings",
    "finite_number",
    "loads_bytes",
    "loads_text",
    "text_parser",
]

# json.loads without keyword arguments parses with a default JSONDecoder; so does this one,
# calling its scanner (C) directly instead of through decode and raw_decode (two Python frames).
# json.decoder.WHITESPACE (always matches, maybe nothing):
_whitespace: Any = re.compile(r"[ \t\n\r]*", re.VERBOSE | re.MULTILINE | re.DOTALL).match
_OPENERS = (0x7B, 0x5B)  # "{" and "["
_OPEN_TEXT = frozenset("{[")


def text_parser(decoder: json.JSONDecoder) -> Callable[[str], Any]:
    """``decoder.decode`` calling ``decoder``'s scanner directly: the same value, the same
    ``JSONDecodeError`` (message and position), two Python frames fewer per call."""
    scan_once: Any = json.scanner.make_scanner(decoder)  # type: ignore[arg-type]

    def parse(text: str) -> Any:
        # No leading whitespace to skip in what this library and wallets send: {...} or [...]
        start = 0 if text[:1] in _OPEN_TEXT else _whitespace(text, 0).end()
        try:
            value, end = scan_once(text, start)
        except StopIteration as err:
            raise json.JSONDecodeError("Expecting value", text, err.value) from None
        if end != len(text):
            end = _whitespace(text, end).end()
            if end != len(text):
                raise json.JSONDecodeError("Extra data", text, end)
        return value

    return parse


#: ``json.JSONDecoder().decode`` (what ``json.loads(text)`` parses with), without its frames.
loads_text: Callable[[str], Any] = text_parser(json.JSONDecoder())


def loads_bytes(data: bytes) -> Any:
    """``json.loads(data)`` for ``bytes`` (same value, same ``ValueError``/``UnicodeDecodeError``)."""
    if len(data) >= 4 and data[0] in _OPENERS and data[1]:
        return loads_text(data.decode("utf-8", "surrogatepass"))
    return json.loads(data)


_COMPACT = json.JSONEncoder(separators=(",", ":"))
_COMPACT_NO_NAN = json.JSONEncoder(separators=(",", ":"), allow_nan=False)
# The C encoder behind JSONEncoder's one-shot encode (not in the type stubs).
c_make_encoder: Any = getattr(json.encoder, "c_make_encoder", None)
#: Strings at least this long are checked for a plain copy (shorter ones are escaped at once).
_LONG_STRING = 256
# Every byte that JSONEncoder(ensure_ascii=True) writes as itself maps to itself; every other
# one (controls, '"', '\\', DEL and above) to NUL, which is escaped too.
_PLAIN = bytes(b if 0x20 <= b < 0x7F and b not in b'"\\' else 0 for b in range(256))


def _string(value: str) -> str:
    # One C pass (translate) and one search instead of the escaper's per-character loop.
    if (
        len(value) >= _LONG_STRING
        and value.isascii()
        and b"\x00" not in value.encode("ascii").translate(_PLAIN)
    ):
        return '"' + value + '"'
    return encode_basestring_ascii(value)


def _not_json(value: object) -> Any:
    # A TypeError, as json's own encoder raises.
    raise ArgumentTypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps_compact(obj: Any, *, allow_nan: bool = True) -> str:
    """``json.JSONEncoder(separators=(",", ":"), allow_nan=allow_nan).encode(obj)``: the same
    text (and the same ``TypeError``/``ValueError``), without the encoder's Python frames."""
    if isinstance(obj, str):
        return encode_basestring_ascii(obj)
    if c_make_encoder is None:  # pragma: no cover - CPython always has the C accelerator
        encoder = _COMPACT if allow_nan else _COMPACT_NO_NAN
        return encoder.encode(obj)
    encode = c_make_encoder(
        {}, _not_json, encode_basestring_ascii, None, ":", ",", False, False, allow_nan
    )
    return "".join(encode(obj, 0))


def dumps_long_strings(obj: Any) -> bytes:
    """Compact JSON of ``obj`` as UTF-8 bytes: byte for byte what
    ``json.JSONEncoder(separators=(",", ":")).encode(obj).encode()`` gives, faster when it
    holds long strings (and slower per short string: use it for bodies of a few long ones)."""
    if c_make_encoder is None:  # pragma: no cover - CPython always has the C accelerator
        return _COMPACT.encode(obj).encode()
    encode = c_make_encoder({}, _not_json, _string, None, ":", ",", False, False, True)
    return "".join(encode(obj, 0)).encode()


def finite_number(value: object) -> float | None:
    """``value`` as a float when it is a JSON number with a finite value, else ``None``: not for
    a bool, a string, NaN or ±Infinity (which the parser lets through and which pass or fail
    every comparison), or an integer beyond any float (``float()`` would raise)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
