"""JSON from bytes: exactly what :func:`json.loads` does, with less work per call.

``json.loads(data)`` on bytes first detects UTF-8, -16 or -32 from the leading bytes (Python's
reading of RFC 8259 §8.1) in Python code, then decodes the text with ``surrogatepass`` and
parses it with the default decoder. Bytes that start with ``{`` or ``[`` followed by a
non-zero byte are UTF-8 by that same detection, so :func:`loads_bytes` decodes them directly;
anything else goes to ``json.loads``. Same results, same exceptions.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["loads_bytes"]

# json.loads without keyword arguments parses with a default JSONDecoder; so does this one.
_decode = json.JSONDecoder().decode
_OPENERS = (0x7B, 0x5B)  # "{" and "["


def loads_bytes(data: bytes) -> Any:
    """``json.loads(data)`` for ``bytes`` (same value, same ``ValueError``/``UnicodeDecodeError``)."""
    if len(data) >= 4 and data[0] in _OPENERS and data[1]:
        return _decode(data.decode("utf-8", "surrogatepass"))
    return json.loads(data)
