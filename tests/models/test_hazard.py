"""The time-to-event close model: interval rows, probabilities that are probabilities, a guard
that memorising trees cannot fool, drift handling, and the truth recovered when follow-up is
cut short."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm.synthetic import truth_won_within
from models.baselines import BaseRate, StageRateTable
from models.intervals import (
    LOST,
    OPEN,
    WON,
    StageHazardTable,
    cumulative_incidence,
    interval_edges,
    interval_rows,
)
from models.next_stage import consistent_with_close
from tests.models.conftest import CUTOFF, HORIZON, close_model, hazard_model
from tests.models.conftest import labels_frame as labels

FLOOR = 0.005


def test_interval_rows_by_hand():
    edges = interval_edges((7, 14, 28), 14)
    assert edges.tolist() == [7.0, 14.0, 28.0]
    rows = interval_rows(
        labels(
            ["won", "lost", None, None],  # won on day 10, lost on day 3, open, open
            [10, 3, np.nan, np.nan],
            [40, 40, 20, 5],  # watched 40, 40, 20 and 5 days after as_of
        ),
        edges,
    )
    got = sorted(zip(rows.row.tolist(), rows.k.tolist(), rows.event.tolist(), strict=True))
    assert got == [
        (0, 0, OPEN),  # open through (0, 7], won in (7, 14], not at risk after
        (0, 1, WON),
        (1, 0, LOST),
        (2, 0, OPEN),  # watched 20 days: (0, 7] and (7, 14] known, (14, 28] not yet
        (2, 1, OPEN),
    ]  # row 3, watched 5 days: no interval fully observed, no row


def test_cumulative_incidence_by_hand():
    h = np.array([[[0.5, 0.25, 0.25], [0.0, 1.0, 0.0]]])  # half close in k=0, the rest win
    won, lost = cumulative_incidence(h)
    assert won[0].tolist() == [0.25, 0.75] and lost[0].tolist() == [0.25, 0.25]


def test_no_table_serves_zero_from_zero_wins():
    stages = np.array(["lead"] * 50 + ["proposal"] * 50, dtype=object)
    k = np.zeros(100, int)
    event = np.where(np.arange(100) % 2 == 0, LOST, OPEN)  # no win at all
    table = StageHazardTable(prior_strength=20, n_intervals=1).fit(stages, k, event)
    p = table.predict(stages, k)
    assert (p[:, WON] > 0).all() and np.allclose(p.sum(axis=1), 1)
    assert 0 < BaseRate().fit(None, np.zeros(40, bool)).rate_ < 0.02
    X = pd.DataFrame({"stage__current": ["lead"] * 40})
    assert StageRateTable(prior_strength=20).fit(X, np.zeros(40, bool)).table_["lead"] > 0


@pytest.fixture(scope="module")
def fitted_hazard(small_backtest):
    bt = small_backtest
    return hazard_model().fit(bt.train_all.features, bt.train_all.labels, score_X=bt.now.features)


def test_served_probabilities_stay_inside_the_floor(fitted_hazard, small_backtest):
    X = pd.concat([small_backtest.test.features, small_backtest.train_all.features])
    p = fitted_hazard.predict_proba(X)[:, 1]
    assert p.min() >= FLOOR and p.max() <= 1 - FLOOR
    curve = fitted_hazard.predict_curve(X.head(200))
    assert curve.to_numpy().min() >= FLOOR and curve.to_numpy().max() <= 1 - FLOOR
    won = curve.filter(like="won_").to_numpy()
    assert (np.diff(won, axis=1) >= -1e-12).all()  # P(won by d) never falls as d grows
    assert (
        len(np.unique(p.round(6))) > len(p) // 4
    )  # no isotonic steps: the ranking has no big ties


def test_the_model_beats_the_fixed_horizon_model_on_the_test_window(fitted_models, small_backtest):
    from models.evaluate import close_metric_table, prediction_frame

    test = small_backtest.test
    pred = prediction_frame(
        test.features, test.labels, fitted_models, horizon_days=HORIZON,
        data_end=small_backtest.data_end,
    )  # fmt: skip
    overall = close_metric_table(pred)["overall"]
    assert overall["p_win"]["log_loss"] < overall["p_win_stage_rate"]["log_loss"]
    assert overall["p_win"]["log_loss"] < overall["p_win_fixed_horizon"]["log_loss"] + 0.01
    assert overall["p_win"]["ece"] <= 0.05


def memorisable(n_deals: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Weekly snapshots of deals whose outcome and close day are random per deal (nothing
    predicts them) and an ID-like column that lets trees memorise every deal."""
    rng = np.random.default_rng(seed)
    deal = np.repeat(np.arange(n_deals), 8)
    week = np.tile(np.arange(8), n_deals)
    close_day = rng.integers(1, 120, n_deals)[deal] - 7 * week
    won = (rng.random(n_deals) < 0.3)[deal]
    start = pd.Timestamp("2025-01-06", tz="UTC") + pd.to_timedelta(
        rng.integers(0, 200, n_deals), "D"
    )
    as_of = start[deal] + pd.to_timedelta(7 * week, "D")
    cutoff = pd.Timestamp("2025-10-06", tz="UTC")
    keep = (close_day > 0) & (as_of <= cutoff)
    observed = (cutoff - as_of) / pd.Timedelta(days=1)
    closed = close_day <= observed
    X = pd.DataFrame(
        {
            "deal_id": pd.array([f"D{d}" for d in deal], dtype="str"),
            "as_of": as_of,
            "stage__current": pd.array(["lead"] * len(deal), dtype="str"),
            "deal__ticket_number": deal.astype(float),  # an identity in disguise
            "deal__noise": rng.normal(size=len(deal)),
        }
    )[keep].reset_index(drop=True)
    y = labels(
        np.where(closed, np.where(won, "won", "lost"), None)[keep],
        np.where(closed, close_day, np.nan)[keep],
        np.asarray(observed)[keep],
    )
    return X, y.assign(as_of=X["as_of"])


def test_the_guard_judges_on_deals_the_trees_never_saw():
    """Outcomes constant per deal and random, plus an ID-like column: trees that memorise
    deals fit them perfectly, but cross-fitted by deal they learn nothing, so the guard
    serves the stage table."""
    X, y = memorisable(1500, seed=3)
    model = hazard_model().fit(X, y)
    assert model.too_little_signal, model.guard_
    assert model.guard_["unseen_deal_rows"] == len(interval_rows(y, model.edges_).row)
    assert "stage table" in model.guard_["decision"]


def test_a_feature_whose_missing_share_jumps_is_dropped_and_said(small_backtest):
    bt = small_backtest
    now = bt.now.features.copy()
    now["deal__log_amount"] = np.nan  # the field stopped being filled
    model = hazard_model().fit(bt.train_all.features, bt.train_all.labels, score_X=now)
    drifted = [d["feature"] for d in model.drift_]
    assert drifted == ["deal__log_amount"], model.drift_
    assert "deal__log_amount" not in model.matrix_.columns_
    assert "missing in 100% of rows to score" in model.drift_[0]["reason"]


def test_drift_at_scoring_falls_back_to_the_baseline_and_says_when(fitted_hazard, small_backtest):
    test = small_backtest.test.features
    dates = sorted(test["as_of"].unique())
    late = (test["as_of"] >= dates[len(dates) // 2]).to_numpy()
    X = test.copy()
    X.loc[late, "deal__log_amount"] = np.nan
    p, events = fitted_hazard.predict_checked(X)
    assert {e["as_of"] for e in events} == {str(d) for d in X.loc[late, "as_of"].unique()}
    assert events[0]["drift"][0]["feature"] == "deal__log_amount"
    assert np.allclose(p[late], fitted_hazard.predict_baseline(X[late]))
    assert np.allclose(p[~late], fitted_hazard.predict_proba(X[~late])[:, 1])


def test_a_backtest_refits_without_the_drifted_feature(fitted_hazard, small_backtest):
    from models.evaluate import FittedModels, prediction_frame
    from models.train import refit_for_drift

    bt = small_backtest
    test = bt.test.features.copy()
    dates = sorted(test["as_of"].unique())
    late = (test["as_of"] >= dates[len(dates) // 2]).to_numpy()
    test.loc[late, "deal__log_amount"] = np.nan
    refit = refit_for_drift(fitted_hazard, bt.train_all.features, bt.train_all.labels, test)
    assert refit is not None and "deal__log_amount" not in refit.matrix_.columns_
    assert [d["feature"] for d in refit.drift_] == ["deal__log_amount"]
    assert refit_for_drift(fitted_hazard, bt.train_all.features, bt.train_all.labels,
                           bt.test.features) is None  # fmt: skip
    none = dict.fromkeys(("fixed_horizon", "stage_rate", "base_rate", "logreg", "next_stage"))
    models = FittedModels(close=fitted_hazard, close_refit=refit, **none)
    pred = prediction_frame(test, bt.test.labels, models, horizon_days=HORIZON,
                            data_end=bt.data_end)  # fmt: skip
    assert pred["drift_refit"].to_numpy().tolist() == late.tolist()
    assert not pred["drift_fallback"].any()  # the refit does not meet the drift
    assert np.allclose(pred["p_win"][late], refit.predict_proba(test[late])[:, 1])
    assert np.allclose(pred["p_win"][~late], fitted_hazard.predict_proba(test[~late])[:, 1])


def test_recovers_the_truth_when_follow_up_is_cut_short(fitted_hazard, small_backtest):
    """Snapshots of the last H days before the cutoff have no known H-day outcome at the
    cutoff (a fixed-horizon model cannot learn from them); scored by the hazard model, their
    P(won within H) matches what really happened (the generator's uncut truth)."""
    bt = small_backtest
    feats = bt.train_all.features
    recent = (feats["as_of"] > CUTOFF - pd.Timedelta(days=HORIZON)).to_numpy()
    X = feats[recent].reset_index(drop=True)
    truth = truth_won_within(bt.truth, X["deal_id"], X["as_of"], HORIZON).astype(float)
    p = fitted_hazard.predict_proba(X)[:, 1]
    frame = pd.DataFrame({"stage": X["stage__current"].astype(str), "p": p, "t": truth})
    by_stage = frame.groupby("stage").agg(p=("p", "mean"), t=("t", "mean"), n=("p", "size"))
    weighted_mae = float((abs(by_stage["p"] - by_stage["t"]) * by_stage["n"]).sum() / len(X))
    assert abs(p.mean() - truth.mean()) <= 0.02, (p.mean(), truth.mean())
    assert weighted_mae <= 0.03, by_stage


def test_next_stage_never_contradicts_the_close_model():
    proba = pd.DataFrame(
        {"proposal": [0.1, 0.5], "won": [0.1, 0.3], "lost": [0.8, 0.2]}
    )  # row 0 says "lost" at 80 % while p_win is 0.4
    p_win = np.array([0.4, 0.1])
    out = consistent_with_close(proba, p_win)
    assert (out["lost"] <= 1 - p_win + 1e-12).all()
    assert np.allclose(out.sum(axis=1), 1)
    assert out.loc[0, "lost"] == pytest.approx(0.6)
    assert out.loc[1].tolist() == proba.loc[1].tolist()  # already consistent: untouched


def test_fixed_horizon_calibration_never_says_zero_or_one(small_backtest):
    bt = small_backtest
    target = bt.train.labels[f"won_within_{HORIZON}d"]
    known = target.notna().to_numpy()
    X = bt.train.features[known].reset_index(drop=True)
    y = target[known].to_numpy(bool)
    for method in ("sigmoid", "isotonic"):
        model = close_model(calibration=method, min_isotonic_rows=10).fit(X, y)
        p = model.predict_proba(bt.test.features)[:, 1]
        assert p.min() >= FLOOR and p.max() <= 1 - FLOOR, method
        q = model.predict_lightgbm(bt.test.features)
        assert q.min() >= FLOOR and q.max() <= 1 - FLOOR, method
