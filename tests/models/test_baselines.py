"""Baselines on tiny data a person can check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.baselines import BaseRate, LogisticBaseline, StageRateTable, TransitionMatrix

X = pd.DataFrame(
    {
        "stage__current": pd.Categorical(["lead", "lead", "lead", "lead", "proposal", "proposal"]),
        "x": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0],
    }
)
Y = np.array([False, False, False, True, True, True])  # base rate 0.5


def test_base_rate():
    p = BaseRate().fit(X, Y).predict_proba(X)[:, 1]
    assert np.allclose(p, 0.5)


def test_stage_rate_is_shrunk_towards_base_rate():
    table = StageRateTable(prior_strength=2.0).fit(X, Y)
    # lead: (1 + 2 * 0.5) / (4 + 2) = 1/3; proposal: (2 + 1) / (2 + 2) = 0.75
    assert table.table_["lead"] == pytest.approx(1 / 3)
    assert table.table_["proposal"] == pytest.approx(0.75)
    unseen = pd.DataFrame({"stage__current": pd.Categorical(["meeting"])})
    assert table.predict_proba(unseen)[0, 1] == pytest.approx(0.5)


def test_stage_rate_without_stage_column_is_the_base_rate():
    table = StageRateTable(prior_strength=2.0).fit(X[["x"]], Y)
    assert np.allclose(table.predict_proba(X[["x"]])[:, 1], 0.5)


def test_transition_matrix_counts_skips_and_regressions_with_smoothing():
    states = ("lead", "proposal", "won", "lost")
    nxt = ["proposal", "proposal", "lost", "won", "lead", "won"]  # a skip and a regression
    m = TransitionMatrix(classes=states, alpha=1.0).fit(X, nxt)
    p = pd.DataFrame(m.predict_proba(X.iloc[[0, 4]]), columns=states)
    # lead row: counts proposal 2, lost 1, won 1, lead 0 -> (+1 each) / 8
    assert p.iloc[0].tolist() == pytest.approx([1 / 8, 3 / 8, 2 / 8, 2 / 8])
    # proposal row: lead 1, won 1 -> (+1 each) / 6
    assert p.iloc[1].tolist() == pytest.approx([2 / 6, 1 / 6, 2 / 6, 1 / 6])
    unseen = pd.DataFrame({"stage__current": pd.Categorical(["meeting"])})
    assert m.predict_proba(unseen).sum() == pytest.approx(1.0)


def test_logistic_baseline_ranks_a_clear_signal():
    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "as_of": pd.Timestamp("2025-01-06", tz="UTC"),
            "deal_id": [f"D{i}" for i in range(n)],
            "x": rng.normal(size=n),
            "color": pd.Categorical(rng.choice(["red", "blue"], n)),
        }
    )
    y = frame["x"].to_numpy() + rng.normal(scale=0.5, size=n) > 0
    p = LogisticBaseline(C=1.0, random_state=0).fit(frame, y).predict_proba(frame)[:, 1]
    assert p[y].mean() > p[~y].mean() + 0.3
