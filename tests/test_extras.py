"""Optional dependencies: the core needs none of them, and a missing extra is named in one line.

In the test environment every extra is installed, so a missing one is simulated by putting
``None`` in ``sys.modules`` (which makes ``import`` fail like a missing package). The last test
installs the project with plain ``pip install .`` into a clean virtual environment and checks
the real thing.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from oid4vci.cli import main
from oid4vci.errors import MissingDependencyError

ROOT = Path(__file__).resolve().parents[1]
CORE = {"anyio", "attrs", "cattrs", "joserfc", "cryptography"}


def _requirement_name(requirement: str) -> str:
    for stop in "<>=!~[; ":
        requirement = requirement.split(stop, 1)[0]
    return requirement.lower()


def test_core_dependencies_and_extras() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {_requirement_name(r) for r in project["dependencies"]} == CORE
    extras = {
        name: {_requirement_name(r) for r in requirements}
        for name, requirements in project["optional-dependencies"].items()
    }
    assert extras["aiohttp"] == {"aiohttp"}
    assert extras["httpx"] == {"httpx"}
    assert "aiohttp" in extras["cli"]
    # `make test` installs .[test,dev]: that must bring every extra the tests import
    assert {"aiohttp", "httpx", "uvicorn", "starlette", "trio"} <= extras["test"]


@pytest.mark.parametrize(
    ("module", "needs", "extra"),
    [
        ("oid4vci.transports.httpx", "httpx", "httpx"),
        ("oid4vci.transports.aiohttp", "aiohttp", "aiohttp"),
        ("oid4vci.transports.aiohttp", "multidict", "aiohttp"),
    ],
)
def test_transport_without_its_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, needs: str, extra: str
) -> None:
    monkeypatch.setitem(sys.modules, needs, None)
    monkeypatch.delitem(sys.modules, module, raising=False)
    with pytest.raises(MissingDependencyError) as info:
        importlib.import_module(module)
    message = str(info.value)
    assert message == f"{module} needs the '{extra}' extra: pip install 'oid4vci[{extra}]'"
    assert isinstance(info.value, ImportError)


@pytest.mark.parametrize("argv", [["--help"], ["demo"], []])
def test_cli_without_its_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    monkeypatch.setitem(sys.modules, "aiohttp", None)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert "pip install 'oid4vci[cli]'" in err
    assert "aiohttp" in err


def test_cli_with_its_extra(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "oid4vci[cli]" not in capsys.readouterr().out


CLEAN_CHECK = """
import importlib, importlib.util, anyio
for name in ("aiohttp", "httpx", "multidict", "yarl"):
    assert importlib.util.find_spec(name) is None, name
import oid4vci
from oid4vci.errors import MissingDependencyError
from oid4vci.issuer import build_demo_issuer
from oid4vci.transports.memory import InMemoryTransport
from oid4vci.wallet import Oid4vciClient

for module in ("oid4vci.transports.httpx", "oid4vci.transports.aiohttp"):
    try:
        importlib.import_module(module)
    except MissingDependencyError as exc:
        print(exc)
    else:
        raise SystemExit(module + " imported without its extra")

async def main():
    demo = build_demo_issuer("https://issuer.example")
    async with InMemoryTransport(demo.issuer.handle) as transport:
        client = Oid4vciClient(transport)
        offer = await client.parse_offer(demo.offer_links["pre_auth_tx_code"])
        result = await client.accept_offer(offer, tx_code=demo.tx_code, count=2)
    assert [c.verified for c in result.credentials] == [True, True], result
    print("flow", result.flow)

anyio.run(main)
"""


def test_plain_install_has_a_working_core(tmp_path: Path) -> None:
    """``pip install .`` with no extras: the core works, each extra is named when missing.

    Takes a few seconds (the package index is local), so it runs with every ``make test``.
    """
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"

    def run(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(a) for a in args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=tmp_path,
            check=False,
        )

    made = run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert made.returncode == 0, made.stderr
    # this environment's pip installs into the clean one (faster than bootstrapping its own)
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "-q", ROOT)
    assert installed.returncode == 0, installed.stderr[-3000:]

    checked = run(python, "-c", CLEAN_CHECK)
    assert checked.returncode == 0, checked.stderr[-3000:]
    assert checked.stdout.splitlines() == [
        "oid4vci.transports.httpx needs the 'httpx' extra: pip install 'oid4vci[httpx]'",
        "oid4vci.transports.aiohttp needs the 'aiohttp' extra: pip install 'oid4vci[aiohttp]'",
        "flow pre-authorized_code",
    ]

    commands: list[list[str | Path]] = [
        [python, "-m", "oid4vci", "--help"],
        [venv / "bin" / "oid4vci", "demo"],
    ]
    for command in commands:
        done = run(*command, timeout=60)
        assert done.returncode == 2, done
        assert done.stdout == ""
        assert "Traceback" not in done.stderr
        assert len(done.stderr.splitlines()) == 1, done.stderr
        assert "pip install 'oid4vci[cli]'" in done.stderr
