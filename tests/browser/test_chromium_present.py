"""Under ``CI`` the browser tests must run: a missing Chromium fails here instead of the login
tests skipping quietly."""

from __future__ import annotations

import os

import pytest

from tests.browser.test_login_browser import CHROMIUM


def test_chromium_is_installed() -> None:
    if CHROMIUM is not None:
        return
    reason = "no chromium binary on PATH (run scripts/install-chromium.sh)"
    if os.environ.get("CI"):
        pytest.fail(f"Chromium is missing under CI: {reason}")
    pytest.skip(reason)
