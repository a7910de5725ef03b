"""``scripts/minimum_constraints.py``: the pins ``make test-minimum`` installs are exactly the
lower bounds ``pyproject.toml`` declares, and a bound it cannot pin is a one-line error."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "minimum_constraints.py"


def test_every_core_dependency_is_pinned_at_its_lower_bound() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, check=True, timeout=30
    )
    pins = dict(line.split("==") for line in done.stdout.split())
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert len(pins) == len(declared)
    for requirement in declared:
        name, bound = requirement.split(">=")
        assert pins[name.strip()] == bound.strip()


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
