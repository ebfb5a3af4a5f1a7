"""Scoring the open deals: one ranked row per deal, scores the models give, reasons a rep
reads, the stage-table fallback, and a clear error when nothing is open."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm.data import CRMData
from crm.synthetic import generate_crm
from features.build import build_feature_set
from features.snapshots import open_deals_at, snapshot_dates
from models.hazard import HazardCloseModel
from models.next_stage import NextStageModel, consistent_with_close
from models.splits import time_split
from serving.score import (
    COLUMNS,
    NO_SIGNAL,
    FeatureMismatchError,
    NoOpenDealsError,
    for_owners,
    rank,
    score_open_deals,
)
from tests.shared import FUNNEL

SETTINGS = {
    "windows_days": (7, 30, 90),
    "trend_days": 30,
    "recency_channels": ("meeting", "demo"),
    "prior_strength": 20.0,
}
CUTOFF = pd.Timestamp("2025-12-01", tz="UTC")
AS_OF = pd.Timestamp("2026-03-02", tz="UTC")
HORIZON = 180


def _close(**overrides) -> HazardCloseModel:
    settings = {
        "horizon_days": HORIZON, "edges_days": (14, 56, 180), "folds": 2,
        "n_estimators": 40, "learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 40,
        "reg_lambda": 1.0, "colsample_bytree": 0.8, "early_stopping_rounds": 10,
        "stage_prior_strength": 20.0, "blend_weights": (0.0, 0.5, 1.0), "guard_z": 0.0,
        "recalibration_days": 91, "recalibration_prior": 100.0, "probability_floor": 0.005,
        "drift_max": 0.25, "n_jobs": 1, "random_state": 0,
    }  # fmt: skip
    return HazardCloseModel(**(settings | overrides))


def _next() -> NextStageModel:
    return NextStageModel(
        states=FUNNEL.states, n_estimators=25, learning_rate=0.15, num_leaves=15,
        min_child_samples=40, reg_lambda=1.0, early_stopping_rounds=10,
        calibration_fraction=0.2, alpha=1.0, blend_weights=(0.0, 0.5, 1.0), guard_z=0.0,
        floor=1e-4, random_state=0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained():
    """900 generated deals; the close model fitted on every snapshot up to CUTOFF, the next
    stage on those whose label is known then."""
    data = generate_crm(
        n_deals=900, seed=3, start=pd.Timestamp("2024-01-01", tz="UTC"),
        as_of=pd.Timestamp("2026-06-30", tz="UTC"), funnel=FUNNEL, messy=False,
    ).data  # fmt: skip
    dates = snapshot_dates(data.deals["created_at"].min(), CUTOFF, "W-MON")
    split = time_split(dates, cutoff=CUTOFF, horizon_days=HORIZON, calibration_fraction=0.2)
    built = build_feature_set(
        data, as_of_dates=split.training, funnel=FUNNEL, data_end=CUTOFF,
        horizons_days=(HORIZON,), **SETTINGS,
    )  # fmt: skip
    every = build_feature_set(
        data, as_of_dates=dates, funnel=FUNNEL, data_end=CUTOFF, horizons_days=(HORIZON,),
        **SETTINGS,
    )  # fmt: skip
    close = _close().fit(every.features, every.labels)
    moved = built.labels["next_stage"].notna().to_numpy()
    nxt = _next().fit(built.features[moved].reset_index(drop=True),
                      built.labels["next_stage"][moved].astype(str).to_numpy())  # fmt: skip
    fallback = _close(blend_weights=(0.0,)).fit(every.features, every.labels)
    return data, close, nxt, fallback


def _score(data: CRMData, close, nxt, **overrides) -> pd.DataFrame:
    kwargs = {
        "close": close, "next_stage": nxt, "funnel": FUNNEL, "as_of": AS_OF,
        "horizon_days": HORIZON, "priority": "expected_value", "top_reasons": 3,
        "model_version": "close v1", "next_stage_model_version": "next v1",
        "data_fingerprint": "abc123",
    } | SETTINGS  # fmt: skip
    return score_open_deals(data, **(kwargs | overrides))


def test_one_ranked_row_per_open_deal_with_the_models_scores(trained):
    data, close, nxt, _ = trained
    leads = _score(data, close, nxt)
    assert list(leads.columns) == list(COLUMNS)
    open_ids = open_deals_at(data.deals, pd.DatetimeIndex([AS_OF]))["deal_id"]
    assert sorted(leads["deal_id"]) == sorted(open_ids)
    assert leads["rank"].tolist() == list(range(1, len(leads) + 1))
    ev = leads["expected_value"].to_numpy()
    assert np.all(np.diff(ev[~np.isnan(ev)]) <= 0)
    np.testing.assert_allclose(ev, leads["p_win"] * leads["amount"])
    assert leads["p_win"].between(0, 1).all()
    assert set(leads["next_stage"]) <= set(FUNNEL.states)
    assert leads["stage"].isin(FUNNEL.stages).all()
    assert (leads["days_in_stage"] >= 0).all()
    amounts = data.deals.set_index("deal_id")["amount"]
    np.testing.assert_allclose(leads["amount"], amounts.loc[leads["deal_id"]].to_numpy())
    assert set(leads["model_version"]) == {"close v1"} and set(leads["horizon_days"]) == {180}


def test_p_next_stage_is_the_largest_next_stage_probability(trained):
    data, close, nxt, _ = trained
    leads = _score(data, close, nxt)
    features = build_feature_set(
        data, as_of_dates=pd.DatetimeIndex([AS_OF]), funnel=FUNNEL, data_end=AS_OF,
        horizons_days=(HORIZON,), **SETTINGS,
    ).features  # fmt: skip
    proba = nxt.predict_proba(features).set_axis(features["deal_id"].to_numpy())
    # as served: made consistent with p_win (no p_win above 1 - P(next = lost))
    expected = consistent_with_close(
        proba.loc[leads["deal_id"]].reset_index(drop=True), leads["p_win"].to_numpy(float)
    )
    np.testing.assert_allclose(leads["p_next_stage"], expected.max(axis=1))
    assert (leads["next_stage"].to_numpy() == expected.idxmax(axis=1).to_numpy()).all()


def test_reasons_are_at_most_top_n_phrases_each_way(trained):
    data, close, nxt, _ = trained
    assert close.weight_ > 0, "the fixture should serve the trees"
    leads = _score(data, close, nxt, top_reasons=2)
    ups = leads["reasons_up"].str.split("; ")
    assert leads["reasons_up"].str.len().gt(0).all()
    assert ups.map(len).le(2).all()
    assert leads["reasons_down"].str.split("; ").map(len).le(2).all()


def test_ranking_by_p_win(trained):
    data, close, nxt, _ = trained
    leads = _score(data, close, nxt, priority="p_win")
    assert leads["p_win"].is_monotonic_decreasing


def test_stage_table_fallback_still_exports_and_says_so(trained):
    data, _, _, fallback = trained
    assert fallback.weight_ == 0.0
    leads = _score(data, fallback, None, next_stage_model_version=None)
    assert (leads["reasons_up"] == NO_SIGNAL).all() and (leads["reasons_down"] == "").all()
    assert leads["next_stage"].isna().all() and leads["p_next_stage"].isna().all()
    # one probability per stage: the table's rate
    assert (leads.groupby("stage")["p_win"].nunique() == 1).all()


def test_renaming_an_owner_changes_no_score(trained):
    data, close, nxt, _ = trained
    deals = data.deals.copy()
    deals["owner_id"] = deals["owner_id"].astype("str").replace({"U001": "someone-else"})
    a = _score(data, close, nxt).set_index("deal_id")["p_win"]
    b = _score(data.with_table("deals", deals), close, nxt).set_index("deal_id")["p_win"]
    pd.testing.assert_series_equal(a.sort_index(), b.sort_index())


def test_no_open_deal_is_a_clear_error(trained):
    data, close, nxt, _ = trained
    with pytest.raises(NoOpenDealsError, match="no deal is open"):
        _score(data, close, nxt, as_of=pd.Timestamp("2023-01-01", tz="UTC"))


def test_other_feature_settings_than_training_are_a_clear_error(trained):
    data, close, nxt, _ = trained
    with pytest.raises(FeatureMismatchError) as caught:
        _score(data, close, nxt, windows_days=(7, 30))  # trained with (7, 30, 90)
    message = str(caught.value)
    missing = [c for c in close.matrix_.columns_ if c.endswith("_90d")]
    assert message.startswith(f"{len(missing)} feature column(s)")
    assert ", ".join(missing[:5]) in message and f"and {len(missing) - 5} more" in message
    assert "params.yaml features:" in message and "dealcast train" in message


def test_extra_built_columns_are_ignored(trained):
    data, close, nxt, _ = trained
    leads = _score(data, close, nxt, windows_days=(7, 14, 30, 90))
    base = _score(data, close, nxt)
    pd.testing.assert_series_equal(
        leads.set_index("deal_id")["p_win"].sort_index(),
        base.set_index("deal_id")["p_win"].sort_index(),
    )


def _literal() -> pd.DataFrame:
    """Four deals: D2/D3 tie on expected value, D4 has no amount."""
    frame = pd.DataFrame(
        {
            "deal_id": ["D1", "D2", "D3", "D4"],
            "owner_id": ["U1", "U2", "U1", "U1"],
            "amount": [100.0, 200.0, 400.0, np.nan],
            "p_win": [0.9, 0.5, 0.25, 0.99],
        }
    )
    frame["expected_value"] = frame["p_win"] * frame["amount"]
    for column in set(COLUMNS) - set(frame.columns) - {"rank", "owner_rank"}:
        frame[column] = None
    return frame


def test_rank_orders_ties_and_missing_amounts_by_hand():
    ranked = rank(_literal(), priority="expected_value")
    # EV: D1 90, D2 100, D3 100, D4 none -> D2 (tie, higher p_win), D3, D1, D4 last
    assert ranked["deal_id"].tolist() == ["D2", "D3", "D1", "D4"]
    assert ranked["rank"].tolist() == [1, 2, 3, 4]
    assert ranked["owner_rank"].tolist() == [1, 1, 2, 3]
    by_p = rank(_literal(), priority="p_win")
    assert by_p["deal_id"].tolist() == ["D4", "D1", "D2", "D3"]


def test_owner_filter_keeps_team_wide_ranks():
    ranked = rank(_literal(), priority="expected_value")
    mine = for_owners(ranked, ("U1",))
    assert mine["deal_id"].tolist() == ["D3", "D1", "D4"]
    assert mine["rank"].tolist() == [2, 3, 4] and mine["owner_rank"].tolist() == [1, 2, 3]


def test_rows_carry_the_crms_names_beside_the_ids(trained):
    data, close, nxt, _ = trained
    leads = _score(data, close, nxt).set_index("deal_id")
    deals = data.deals.set_index("deal_id").loc[leads.index]
    assert (leads["deal_name"] == deals["name"]).all()
    assert (leads["owner_name"] == deals["owner_name"]).all()
    accounts = data.accounts.set_index("account_id")["name"]
    with_account = leads["account_id"].notna()
    expected = accounts.loc[leads.loc[with_account, "account_id"]].to_numpy()
    assert (leads.loc[with_account, "account_name"].to_numpy() == expected).all()
    nameless = CRMData(
        deals=data.deals.drop(columns=["name", "owner_name"]),
        accounts=data.accounts.drop(columns=["name"]),
        stage_history=data.stage_history,
        touchpoints=data.touchpoints,
    )
    bare = _score(nameless, close, nxt)
    assert bare[["deal_name", "account_name", "owner_name"]].isna().all().all()
