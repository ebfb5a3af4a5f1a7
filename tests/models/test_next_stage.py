"""Next-stage model: probabilities over every state, guard against the matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.metrics import multiclass_metrics
from tests.models.conftest import FUNNEL, next_model


def _fit(bt):
    labels = bt.train.labels
    moved = labels["next_stage"].notna().to_numpy()
    X = bt.train.features[moved].reset_index(drop=True)
    return next_model().fit(X, labels["next_stage"][moved].astype(str))


def test_probabilities_cover_every_state_and_sum_to_one(small_backtest):
    model = _fit(small_backtest)
    p = model.predict_proba(small_backtest.test.features)
    assert list(p.columns) == list(FUNNEL.states)
    assert np.allclose(p.sum(axis=1), 1.0) and (p.to_numpy() > 0).all()


def test_beats_the_transition_matrix_on_generated_data(small_backtest):
    model = _fit(small_backtest)
    assert model.weight_ > 0
    labels = small_backtest.test.labels
    known = labels["next_stage"].notna().to_numpy()
    X, truth = small_backtest.test.features[known], labels["next_stage"][known].astype(str)
    ours = multiclass_metrics(truth, model.predict_proba(X))["log_loss"]
    matrix = multiclass_metrics(truth, model.predict_matrix_baseline(X))["log_loss"]
    assert ours < matrix


def test_a_state_never_seen_in_training_still_gets_probability(small_backtest):
    labels = small_backtest.train.labels
    moved = labels["next_stage"].notna() & labels["next_stage"].astype(str).ne("lead")
    X = small_backtest.train.features[moved.to_numpy()].reset_index(drop=True)
    model = next_model().fit(X, labels["next_stage"][moved.to_numpy()].astype(str))
    assert "lead" not in set(model.seen_)
    p = model.predict_proba(small_backtest.test.features.head(20))
    assert (p["lead"] > 0).all()


def test_too_few_rows_serve_the_matrix():
    X = pd.DataFrame(
        {
            "deal_id": ["a", "b"],
            "as_of": pd.to_datetime(["2025-01-06", "2025-01-13"], utc=True),
            "stage__current": pd.Categorical(["lead", "lead"]),
        }
    )
    model = next_model().fit(X, ["qualified", "lost"])
    assert model.too_little_signal
    p = model.predict_proba(X)
    assert p.loc[0, "qualified"] > p.loc[0, "won"]
