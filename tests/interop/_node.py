"""Process helpers for the interop tests: find Node and the pinned npm packages, start a server
that announces itself with one JSON line, run the Node wallet with a time limit."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
NODE_MODULES = HERE / "node_modules"
PACKAGES = (
    "@openid4vc/openid4vci",
    "@openid4vc/oauth2",
    "@openid4vc/utils",
    "@sd-jwt/jwt-status-list",
    "@animo-id/mdoc",
    "jose",
)
INSTALL_HINT = "run `npm ci --prefix tests/interop`"


def node_executable() -> str | None:
    """The ``node`` on PATH, or None."""
    return shutil.which("node")


def skip_reason() -> str | None:
    """Why the interop tests cannot run here (None when they can)."""
    if node_executable() is None:
        return "node is not installed (the oid4vc-ts and mdoc interop tests need Node.js >= 20)"
    missing = [p for p in PACKAGES if not (NODE_MODULES / p / "package.json").is_file()]
    if missing:
        return f"tests/interop/node_modules lacks {', '.join(missing)}: {INSTALL_HINT}"
    return None


def pinned_versions() -> dict[str, str]:
    """The exact versions ``package.json`` pins."""
    manifest: dict[str, Any] = json.loads((HERE / "package.json").read_text())
    deps: dict[str, str] = manifest["dependencies"]
    return {name: deps[name] for name in PACKAGES}


def installed_versions() -> dict[str, str]:
    """The versions present in ``node_modules``."""
    out: dict[str, str] = {}
    for name in PACKAGES:
        manifest: dict[str, Any] = json.loads((NODE_MODULES / name / "package.json").read_text())
        out[name] = str(manifest["version"])
    return out


def locked_versions() -> dict[str, str]:
    """The versions ``package-lock.json`` records."""
    lock: dict[str, Any] = json.loads((HERE / "package-lock.json").read_text())
    packages: dict[str, Any] = lock["packages"]
    return {name: str(packages[f"node_modules/{name}"]["version"]) for name in PACKAGES}


def _drain(stream: IO[str], sink: list[str], first: queue.Queue[str] | None) -> None:
    for line in stream:
        if first is not None:
            first.put(line)
            first = None
        else:
            sink.append(line)
    if first is not None:
        first.put("")


class BackgroundServer:
    """A server process started in its own session, stopped (TERM, then KILL) by :meth:`stop`.

    The process must print one JSON object on a line of stdout when it is ready; that object is
    :attr:`ready`. Output is drained by threads so the pipes never fill.
    """

    def __init__(self, argv: Sequence[str], *, cwd: Path, ready_timeout: float) -> None:
        self.argv = list(argv)
        self.stderr_lines: list[str] = []
        self.stdout_lines: list[str] = []
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            self.argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        first: queue.Queue[str] = queue.Queue()
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(
            target=_drain, args=(self.proc.stdout, self.stdout_lines, first), daemon=True
        ).start()
        threading.Thread(
            target=_drain, args=(self.proc.stderr, self.stderr_lines, None), daemon=True
        ).start()
        try:
            line = first.get(timeout=ready_timeout)
        except queue.Empty:
            self.stop()
            message = f"{self.argv[:3]} not ready in {ready_timeout}s: {self.log()}"
            raise RuntimeError(message) from None
        if not line.strip():
            self.stop()
            raise RuntimeError(f"{self.argv[:3]} exited before it was ready: {self.log()}")
        try:
            ready = json.loads(line)
        except json.JSONDecodeError:
            self.stop()
            raise RuntimeError(f"{self.argv[:3]} printed no JSON ready line: {line!r}") from None
        self.ready: dict[str, Any] = ready

    def log(self) -> str:
        """The process's stderr so far (for assertion messages)."""
        return "".join(self.stderr_lines[-200:])

    def stop(self) -> None:
        """Terminate the process group we started, then kill it if it lingers."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


def start_node_script(
    script: str, args: Sequence[str] = (), *, ready_timeout: float = 30
) -> BackgroundServer:
    """Start ``node tests/interop/<script> ...`` as a :class:`BackgroundServer`."""
    node = node_executable()
    if node is None:
        raise RuntimeError("node is not installed")
    return BackgroundServer(
        [node, str(HERE / script), *args], cwd=HERE, ready_timeout=ready_timeout
    )


def run_node_json(script: str, request: Any, *, timeout: float = 60) -> dict[str, Any]:
    """Run ``node tests/interop/<script>`` with ``request`` as JSON on stdin; its JSON line."""
    node = node_executable()
    if node is None:
        raise RuntimeError("node is not installed")
    done = subprocess.run(
        [node, str(HERE / script)],
        cwd=HERE,
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise AssertionError(f"{script} printed nothing (status {done.returncode}): {done.stderr}")
    out: dict[str, Any] = json.loads(lines[-1])
    return out


def run_node_wallet(args: Sequence[str], *, timeout: float = 60) -> dict[str, Any]:
    """Run ``node wallet.mjs ARGS`` and return its JSON line (plus ``_stderr`` and ``_status``).

    The child is killed when ``timeout`` passes (``subprocess.run`` does that before raising).
    """
    node = node_executable()
    if node is None:
        raise RuntimeError("node is not installed")
    done = subprocess.run(
        [node, str(HERE / "wallet.mjs"), *args],
        cwd=HERE,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if not lines:
        raise AssertionError(
            f"wallet.mjs printed nothing (status {done.returncode}): {done.stderr}"
        )
    out: dict[str, Any] = json.loads(lines[-1])
    out["_stderr"] = done.stderr
    out["_status"] = done.returncode
    return out
