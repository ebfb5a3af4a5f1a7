"""The champion gate compares like with like: the champion's next-stage scores are made as
the challenger's backtest predictions are (agreeing with the close model's p_win, as served)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from crm.schemas import LOST, WON
from models.next_stage import consistent_with_close
from pipelines import tracking

NAMES = {"close": "close-model", "next_stage": "next-model"}


@pytest.fixture
def champion(monkeypatch):
    """A champion pair whose backtest models return fixed scores."""
    raw = pd.DataFrame({LOST: [0.9, 0.2], WON: [0.05, 0.5], "proposal": [0.05, 0.3]})
    p_win = pd.DataFrame({"p_win": [0.6, 0.1]})
    models = {"uri-close-model": p_win, "uri-next-model": raw}
    version = lambda client, name: SimpleNamespace(  # noqa: E731
        version="1", tags={"backtest_model_uri": f"uri-{name}"})  # fmt: skip
    monkeypatch.setattr(tracking, "champion_version", version)
    monkeypatch.setattr(tracking, "load_pyfunc", lambda uri: SimpleNamespace(
        predict=lambda frame: models[uri]))  # fmt: skip
    monkeypatch.setattr(tracking, "model_frame", lambda features: features)
    return raw, p_win


def test_the_champion_s_next_stage_is_scored_as_served(champion):
    raw, p_win = champion
    backtest = SimpleNamespace(test_features=pd.DataFrame({"x": [1, 2]}))
    got = tracking._champion_scores(None, backtest, "next_stage", NAMES)
    assert got[LOST].iloc[0] == pytest.approx(1 - 0.6)  # no more lost than 1 - p_win
    assert got.sum(axis=1).to_numpy() == pytest.approx([1.0, 1.0])
    pd.testing.assert_frame_equal(got, consistent_with_close(raw, np.array([0.6, 0.1])))
    assert tracking._champion_scores(None, backtest, "close", NAMES) is p_win
