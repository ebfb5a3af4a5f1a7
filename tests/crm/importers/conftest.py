"""Importer tests: the default funnel as a fixture (helpers live in importer_helpers.py)."""

from __future__ import annotations

import pytest
from importer_helpers import DEFAULT_FUNNEL


@pytest.fixture
def funnel():
    return DEFAULT_FUNNEL
