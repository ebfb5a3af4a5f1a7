"""A missing account or owner history reads as such, never as catalogue text + "unknown"
(a deal posted without account_id showed "The account's win rate over deals closed on or
before as_of, shrunk towards the overall win rate then: unknown")."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.explain import catalogue_meanings, phrase

FEATURES = {
    "account__win_rate": "no account on the deal",
    "account__n_won": "no account on the deal",
    "account__n_lost": "no account on the deal",
    "account__other_open_deals": "no account on the deal",
    "owner__win_rate": "no rep on the deal",
    "owner__n_closed": "no rep on the deal",
    "owner__open_deals": "no rep on the deal",
}


@pytest.mark.parametrize(("feature", "expected"), FEATURES.items())
def test_missing_history_phrases(feature, expected):
    meanings = catalogue_meanings(list(FEATURES))
    assert phrase(feature, np.nan, pd.Series(dtype=object), meanings) == expected
