"""``python -m oid4vci`` runs the ``oid4vci`` command."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
