"""The README's wallet examples run as written (their code blocks are executed here)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block_after(heading: str) -> str:
    """The first ```python block after ``heading`` in the README."""
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    match = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert match is not None, f"no python block after {heading!r}"
    return match.group(1)


@pytest.mark.parametrize(
    "heading", ["## Quickstart: a wallet", "### Driving an `IssuanceFlow` by hand"]
)
def test_wallet_examples_run(heading: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = python_block_after(heading)
    assert "anyio.run(main)" in code
    exec(compile(code, f"README {heading}", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert out.count("Alice") == 2, out
