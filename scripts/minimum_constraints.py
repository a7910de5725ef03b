"""Print pip constraints pinning every core dependency to its declared lower bound.

``make test-minimum`` installs the project with these constraints into ``.venv-min`` and runs
the core tests there, so the ``>=`` bounds in ``pyproject.toml`` stay true. Every core
dependency must have a ``>=`` bound; exit code 2 (with one line saying which) otherwise.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
_LOWER_BOUND = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*$")


def main() -> int:
    """Print ``name==version`` for each core dependency's ``>=`` bound."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    lines = []
    for requirement in project["dependencies"]:
        match = _LOWER_BOUND.match(requirement)
        if match is None:
            print(
                f"minimum_constraints: {requirement!r} has no plain '>=' lower bound; "
                "write it as name>=version",
                file=sys.stderr,
            )
            return 2
        lines.append(f"{match.group(1)}=={match.group(2)}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
