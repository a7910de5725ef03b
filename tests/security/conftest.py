"""Hypothesis profiles of the issuer fuzz tests.

``oid4vci-security`` (the default) keeps the fuzz tests fast; ``OID4VCI_FUZZ=long`` selects
``oid4vci-security-long``. The profiles are only registered here (never loaded globally), and
the fuzz tests apply :data:`FUZZ_PROFILE` as their settings, so other hypothesis tests of the
session keep their own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "oid4vci-security",
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.register_profile(
    "oid4vci-security-long",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

#: The profile name the fuzz tests use.
FUZZ_PROFILE = (
    "oid4vci-security-long" if os.environ.get("OID4VCI_FUZZ") == "long" else "oid4vci-security"
)
