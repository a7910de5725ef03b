"""``scripts/minimum_constraints.py``: the pins ``make test-minimum`` installs are exactly the
lower bounds ``pyproject.toml`` declares (core and runtime extras), and a bound it cannot pin
is a one-line error."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "minimum_constraints.py"


def test_every_runtime_dependency_is_pinned_at_its_lower_bound() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True, timeout=30
    )
    pins = {}
    for line in done.stdout.splitlines():
        requirement, _, marker = line.partition("; ")
        name, version = requirement.split("==")
        pins[name] = (version, marker)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = list(project["dependencies"])
    for extra, listed in project["optional-dependencies"].items():
        if extra not in ("test", "dev"):
            declared += listed
    assert {"anyio", "joserfc", "aiohttp", "httpx", "cbor2", "coredis"} <= set(pins)
    for requirement in declared:
        bound, _, marker = requirement.partition(";")
        name, version = bound.split(">=")
        assert pins[name.strip()] == (version.strip(), marker.strip())


def test_a_dependency_without_a_lower_bound_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "scripts").mkdir(parents=True)
    (project / "scripts" / "minimum_constraints.py").write_text(SCRIPT.read_text())
    (project / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["anyio>=4.11", "attrs"]\n'
    )
    done = subprocess.run(
        [sys.executable, str(project / "scripts" / "minimum_constraints.py")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and not done.stdout
    assert done.stderr.count("\n") == 1 and "'attrs'" in done.stderr


def test_two_lower_bounds_of_one_package_are_refused(tmp_path: Path) -> None:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "minimum_constraints.py").write_text(SCRIPT.read_text())
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["anyio>=4.11"]\n'
        '[project.optional-dependencies]\nfast = ["anyio>=4.12"]\ntest = ["pytest"]\n'
    )
    done = subprocess.run(
        [sys.executable, str(tmp_path / "scripts" / "minimum_constraints.py")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and "anyio has two different lower bounds" in done.stderr
