"""``python -m oid4vci`` and the ``oid4vci`` command: :func:`run`."""

from __future__ import annotations

import sys


def run() -> int:
    """The ``oid4vci`` command, guarded from its first moment: a Ctrl-C while the command's
    modules are still being imported ends as one line and exit 130, like one later on."""
    try:
        from .cli import main

        return main()
    except KeyboardInterrupt:  # once the command runs, run_guarded says it ("interrupted")
        print("oid4vci: error: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    raise SystemExit(run())
