"""Shared fixtures: anyio backends, the spec vectors, a controllable clock."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

SPEC_DIR = Path(
    os.environ.get("OID4VCI_SPEC_DIR", Path(__file__).resolve().parents[2] / "shared" / "spec")
)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Core tests run on both asyncio and trio; aiohttp modules override this to asyncio."""
    return str(request.param)


@pytest.fixture(scope="session")
def spec_dir() -> Path:
    """The shared spec folder (``../shared/spec`` beside the repository)."""
    if not (SPEC_DIR / "vectors.json").is_file():
        message = f"spec vectors not found at {SPEC_DIR} (set OID4VCI_SPEC_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI lays shared/ beside the clone: never skip vectors there
        pytest.skip(message)
    return SPEC_DIR


@pytest.fixture(scope="session")
def vectors(spec_dir: Path) -> dict[str, Any]:
    """``spec/vectors.json`` as a dict."""
    data: dict[str, Any] = json.loads((spec_dir / "vectors.json").read_text())
    return data


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A :class:`FakeClock` starting at a fixed instant."""
    return FakeClock()
