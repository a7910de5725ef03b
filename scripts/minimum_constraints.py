"""Print pip constraints pinning every runtime dependency to its declared lower bound.

``make test-minimum`` installs the project with these constraints into ``.venv-min`` and runs
the tests there, so the ``>=`` bounds in ``pyproject.toml`` stay true. Pinned: the core
``dependencies`` and the runtime extras (every extra but the tools ``test`` and ``dev``);
an environment marker is kept. Every such requirement must have a plain ``>=`` bound; exit
code 2 (with one line saying which) otherwise.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
#: Extras that hold tools, not what the library runs on.
TOOL_EXTRAS = frozenset({"test", "dev"})
_LOWER_BOUND = re.compile(
    r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*>=\s*([0-9][0-9A-Za-z.]*)\s*(;\s*(?P<marker>.+?))?\s*$"
)


def main() -> int:
    """Print ``name==version`` (``; marker``) for each runtime requirement's ``>=`` bound."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    requirements = list(project["dependencies"])
    for extra, listed in project.get("optional-dependencies", {}).items():
        if extra not in TOOL_EXTRAS:
            requirements += listed
    pins: dict[str, str] = {}
    for requirement in requirements:
        match = _LOWER_BOUND.match(requirement)
        if match is None:
            print(
                f"minimum_constraints: {requirement!r} has no plain '>=' lower bound; "
                "write it as name>=version",
                file=sys.stderr,
            )
            return 2
        name, version, marker = match.group(1), match.group(2), match.group("marker")
        pin = f"{name}=={version}" + (f"; {marker}" if marker else "")
        if pins.setdefault(name.lower(), pin) != pin:
            print(
                f"minimum_constraints: {name} has two different lower bounds; make them one",
                file=sys.stderr,
            )
            return 2
    print("\n".join(pins.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
