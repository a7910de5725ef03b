"""Under ``CI`` the interop tests must run: a missing Node peer fails here instead of every
interop test skipping quietly."""

from __future__ import annotations

import os

import pytest

from tests.interop._node import skip_reason


def test_the_node_peer_is_installed() -> None:
    reason = skip_reason()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"the interop peer is missing under CI: {reason}")
    pytest.skip(reason)
