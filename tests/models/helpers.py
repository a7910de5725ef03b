"""Loading the spec's example files (some carry HTTP preambles or wrapped strings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from oid4vci.versions import SpecVersion

EXAMPLE_DIRS: dict[str, SpecVersion] = {
    "draft-13": SpecVersion.DRAFT_13,
    "draft-14": SpecVersion.DRAFT_14,
    "draft-15": SpecVersion.DRAFT_15,
    "1.0-final": SpecVersion.V1,
}


def extract_json_text(text: str) -> str:
    """The JSON part of an example: everything from the first ``{`` or ``[`` on."""
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        raise ValueError("no JSON in example")
    return text[min(starts) :]


def load_example(path: Path) -> Any:
    """Parse an example file. Strings wrapped over several lines (a rendering artefact of the
    spec examples) are accepted (``strict=False`` allows raw newlines inside strings)."""
    return json.loads(extract_json_text(path.read_text(encoding="utf-8")), strict=False)


def examples(spec_dir: Path, folder: str, prefix: str) -> list[Path]:
    """Example files of ``folder`` whose name starts with ``prefix``."""
    return sorted(
        p for p in (spec_dir / "raw" / "examples" / folder).iterdir() if p.name.startswith(prefix)
    )
