"""The quota purposes the settings accept (``flood_settings.DEFAULT_QUOTAS``) are the ones the
checks know a window for (``flood_limits.QUOTA_PURPOSES``)."""

from __future__ import annotations

import pytest

from oid4vci.errors import UsageError
from oid4vci.issuer.flood_limits import QUOTA_PURPOSES
from oid4vci.issuer.flood_settings import DEFAULT_QUOTAS, FloodLimits


def test_every_quota_purpose_has_a_window_and_a_default() -> None:
    assert set(QUOTA_PURPOSES) == set(DEFAULT_QUOTAS)


def test_an_unknown_purpose_is_refused() -> None:
    with pytest.raises(UsageError, match="no quota purpose 'login'"):
        FloodLimits(quotas={"login": 5})
