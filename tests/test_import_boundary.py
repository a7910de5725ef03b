"""Import boundaries: the sans-IO core never imports aiohttp, httpx or the transports.

Checked by parsing source with :mod:`ast` (nothing is imported), so lazy imports inside
functions, ``TYPE_CHECKING`` blocks and relative imports count too.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Collection, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "oid4vci"
# Modules allowed to do I/O: the transports themselves and the command line (a module or a
# package).
CORE_EXCLUDED = {
    PACKAGE / "transports",
    PACKAGE / "cli.py",
    PACKAGE / "cli",
    PACKAGE / "__main__.py",
}
# Where any Python source of the project lives.
PROJECT_DIRS = ["oid4vci", "transports", "tests", "examples", "benchmarks"]


def module_name(path: Path, root: Path) -> str:
    """The dotted module name of ``path`` relative to ``root`` (``pkg/__init__.py`` -> ``pkg``)."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> Iterator[str]:
    """Every absolute module name ``source`` (the module ``module``) imports.

    Relative imports are resolved against ``module``; ``from x import y`` yields both ``x``
    and ``x.y`` (``y`` may be a submodule). ``importlib.import_module("...")`` and
    ``__import__("...")`` with a literal name count as imports.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".") if package else []
                keep = len(base_parts) - (node.level - 1)
                base = ".".join(base_parts[: max(keep, 0)])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            yield target
            for alias in node.names:
                yield f"{target}.{alias.name}" if target else alias.name
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if (
                name in {"import_module", "__import__"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                yield node.args[0].value


def is_within(name: str, top: str) -> bool:
    return name == top or name.startswith(top + ".")


def core_violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Imports a core module must not make."""
    return sorted(
        {
            name
            for name in imported_modules(source, module, is_package=is_package)
            if is_within(name, "aiohttp")
            or is_within(name, "httpx")
            or is_within(name, "oid4vci.transports")
            or is_within(name, "transports")
        }
    )


def top_level_transports_imports(
    source: str, module: str, *, is_package: bool = False
) -> list[str]:
    return sorted(
        {
            name
            for name in imported_modules(source, module, is_package=is_package)
            if is_within(name, "transports")
        }
    )


def python_files(directory: Path, *, exclude: Collection[Path] = ()) -> Iterator[Path]:
    """``*.py`` under ``directory``, not following symlinked folders, skipping ``exclude``."""
    for dirpath, dirnames, filenames in os.walk(directory):
        current = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if current / d not in exclude and d != "__pycache__" and not d.startswith(".")
        )
        for filename in sorted(filenames):
            path = current / filename
            if filename.endswith(".py") and path not in exclude:
                yield path


def core_modules() -> list[Path]:
    return list(python_files(PACKAGE, exclude=CORE_EXCLUDED))


def test_core_modules_are_found() -> None:
    found = {module_name(p, ROOT) for p in core_modules()}
    assert {"oid4vci", "oid4vci.http", "oid4vci.errors", "oid4vci.urls"} <= found
    assert not any(is_within(name, "oid4vci.transports") for name in found)
    assert not any(is_within(name, "oid4vci.cli") for name in found)


def test_core_never_imports_network_libraries_or_transports() -> None:
    problems = {}
    for path in core_modules():
        bad = core_violations(
            path.read_text(encoding="utf-8"),
            module_name(path, ROOT),
            is_package=path.name == "__init__.py",
        )
        if bad:
            problems[str(path.relative_to(ROOT))] = bad
    assert problems == {}


def test_nothing_imports_the_top_level_transports_package() -> None:
    problems = {}
    for directory in PROJECT_DIRS:
        for path in python_files(ROOT / directory, exclude={PACKAGE / "transports"}):
            # modules under transports/ are really oid4vci.transports.*
            root_name = (
                "oid4vci." + module_name(path, ROOT)
                if directory == "transports"
                else module_name(path, ROOT)
            )
            bad = top_level_transports_imports(
                path.read_text(encoding="utf-8"),
                root_name,
                is_package=path.name == "__init__.py",
            )
            if bad:
                problems[str(path.relative_to(ROOT))] = bad
    assert problems == {}


def test_transports_is_a_relative_symlink() -> None:
    link = PACKAGE / "transports"
    assert link.is_symlink()
    assert os.readlink(link) == "../transports"
    assert link.resolve() == (ROOT / "transports").resolve()
    assert (link / "__init__.py").is_file()


@pytest.mark.parametrize(
    ("source", "module", "is_package", "expected"),
    [
        ("import aiohttp", "oid4vci.jose", False, ["aiohttp"]),
        ("import httpx", "oid4vci.jose", False, ["httpx"]),
        ("import aiohttp.web as w", "oid4vci.jose", False, ["aiohttp.web"]),
        ("from aiohttp import web", "oid4vci.jose", False, ["aiohttp", "aiohttp.web"]),
        (
            "def f():\n    from aiohttp import ClientSession\n",
            "oid4vci.jose",
            False,
            ["aiohttp", "aiohttp.ClientSession"],
        ),
        (
            "from .transports import memory",
            "oid4vci.http",
            False,
            ["oid4vci.transports", "oid4vci.transports.memory"],
        ),
        ("from . import transports", "oid4vci", True, ["oid4vci.transports"]),
        (
            "from ..transports.aiohttp import serve",
            "oid4vci.wallet.driver",
            False,
            ["oid4vci.transports.aiohttp", "oid4vci.transports.aiohttp.serve"],
        ),
        ("import oid4vci.transports.memory", "oid4vci.wallet", True, ["oid4vci.transports.memory"]),
        ("import transports", "oid4vci.http", False, ["transports"]),
        (
            "from transports import memory",
            "oid4vci.http",
            False,
            ["transports", "transports.memory"],
        ),
        (
            "import importlib\nimportlib.import_module('aiohttp')",
            "oid4vci.http",
            False,
            ["aiohttp"],
        ),
        ("__import__('transports.memory')", "oid4vci.http", False, ["transports.memory"]),
        ("import aiohttpx\nfrom . import transports_x", "oid4vci.http", False, []),
        ("from .errors import ConnectError", "oid4vci.http", False, []),
        ("from . import http", "oid4vci.wallet", True, []),
    ],
)
def test_checker_flags_forbidden_imports(
    source: str, module: str, is_package: bool, expected: list[str]
) -> None:
    assert core_violations(source, module, is_package=is_package) == expected


def test_checker_tells_top_level_from_package_transports() -> None:
    # inside transports/ (really oid4vci.transports) a relative import is fine ...
    assert (
        top_level_transports_imports("from . import memory", "oid4vci.transports", is_package=True)
        == []
    )
    assert top_level_transports_imports("from oid4vci.transports import memory", "tests.x") == []
    # ... an absolute one to the top-level folder is not
    assert top_level_transports_imports("from transports.memory import X", "tests.x") == [
        "transports.memory",
        "transports.memory.X",
    ]
