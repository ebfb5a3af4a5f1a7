"""Realised calibration (serving.monitor) on tiny hand-made archives: the training labels'
censoring, and every number equal to a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crm.schemas import Funnel
from serving.monitor import (
    decile_table,
    forecast_summary,
    forecast_table,
    group_table,
    label_said,
    next_stage_table,
)

FUNNEL = Funnel(stages=("lead", "proposal"), won_label="won", lost_label="lost")
END = pd.Timestamp("2026-06-30", tz="UTC")


def ts(day: str | None) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC") if day else pd.NaT


#: deal, created, closed, outcome, amount
DEALS = [
    ("A", "2025-12-01", "2026-02-01", "won", 100.0),  # won inside 90 days -> 1
    ("B", "2025-12-01", "2026-05-01", "won", 200.0),  # won after the horizon -> 0
    ("C", "2025-12-01", "2026-01-20", "lost", 50.0),  # lost -> 0
    ("D", "2025-12-01", None, None, 10.0),  # open, horizon passed -> 0
    ("E", "2026-04-01", None, None, 10.0),  # open, horizon not passed -> unknown
    ("F", "2026-04-01", "2026-06-01", "won", 300.0),  # won fast, young day -> 1
    ("G", "2026-04-01", "2026-07-10", "lost", 10.0),  # lost after data_end -> unknown
]
#: deal, scoring day, p_win, stage
SAID = [
    ("A", "2026-01-05", 0.8, "proposal"),
    ("B", "2026-01-05", 0.4, "proposal"),
    ("C", "2026-01-05", 0.3, "lead"),
    ("D", "2026-01-05", 0.2, "lead"),
    ("E", "2026-05-04", 0.5, "lead"),
    ("F", "2026-05-04", 0.6, "proposal"),
    ("G", "2026-05-04", 0.1, "lead"),
    ("gone", "2026-05-04", 0.9, "lead"),  # deal no longer in the CRM -> left out
    ("A", "2026-07-06", 0.9, "lead"),  # scored after the data's end -> left out
]


@pytest.fixture
def deals() -> pd.DataFrame:
    frame = pd.DataFrame(DEALS, columns=["deal_id", "created_at", "closed_at", "outcome", "amount"])
    for column in ("created_at", "closed_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
    frame.loc[frame["closed_at"] > END, ["closed_at", "outcome"]] = [pd.NaT, None]  # not yet
    return frame


@pytest.fixture
def said() -> pd.DataFrame:
    frame = pd.DataFrame(SAID, columns=["deal_id", "scoring_day", "p_win", "stage"])
    frame["as_of"] = pd.to_datetime(frame["scoring_day"], utc=True)
    return frame.assign(horizon_days=90, p_win_stage_rate=0.25)


def test_censoring_matches_training_labels(said, deals):
    out = label_said(said, deals, None, funnel=FUNNEL, data_end=END)
    won = dict(zip(out["deal_id"], out["won"], strict=True))
    assert won["A"] == 1.0 and won["F"] == 1.0
    assert won["B"] == 0.0, "a deal won after the horizon is a 0"
    assert won["C"] == 0.0 and won["D"] == 0.0
    assert math.isnan(won["E"]), "open with the horizon not passed: unknown, never a loss"
    assert math.isnan(won["G"]), "lost only after the data's end: unknown"
    assert "gone" not in won and len(out) == 7  # the deal gone and the later day left out
    assert out.set_index("deal_id")["mature"].to_dict() == {
        "A": True, "B": True, "C": True, "D": True, "E": False, "F": False, "G": False
    }  # fmt: skip


def test_month_metrics_equal_a_hand_computation(said, deals):
    month = group_table(label_said(said, deals, None, funnel=FUNNEL, data_end=END), "month",
                        n_bins=2).set_index("month")  # fmt: skip
    jan = month.loc["2026-01"]
    assert (jan["known"], jan["unknown_open"], jan["mature"]) == (4, 0, True)
    assert jan["model_log_loss"] == pytest.approx(-np.mean(np.log([0.8, 0.6, 0.7, 0.8])))
    assert jan["model_auc"] == pytest.approx(1.0)
    # p sorted .2 .3 | .4 .8 -> |0 - .25| / 2 + |.5 - .6| / 2
    assert jan["model_ece"] == pytest.approx(0.175)
    assert jan["stage_table_log_loss"] == pytest.approx(-np.mean(np.log([0.25, 0.75, 0.75, 0.75])))
    assert jan["stage_table_auc"] == pytest.approx(0.5)
    may = month.loc["2026-05"]
    assert (may["known"], may["unknown_open"], may["mature"]) == (1, 2, False)
    assert math.isnan(may["model_auc"])  # one class only
    assert month.loc["(all)", "known"] == 5 and month.loc["(all)", "realised"] == 0.4


def test_deciles_and_stages_by_hand(said, deals):
    labelled = label_said(said, deals, None, funnel=FUNNEL, data_end=END)
    deciles = decile_table(labelled, n_bins=2)  # known p: .2 .3 | .4 .6 .8
    assert deciles["n"].tolist() == [3, 2]
    assert deciles["mean_p_win"].iloc[0] == pytest.approx(np.mean([0.2, 0.3, 0.4]))
    assert deciles["realised"].tolist() == pytest.approx([0.0, 1.0])
    stage = group_table(labelled, "stage").set_index("stage")
    assert stage.loc["proposal", "realised"] == pytest.approx(2 / 3)  # A, F won; B not
    assert stage.loc["lead", "known"] == 2 and stage.loc["lead", "unknown_open"] == 2


def test_next_stage_hits_only_where_the_move_is_known():
    labelled = pd.DataFrame({
        "stage": ["lead", "lead", "proposal", "proposal"],
        "next_stage": ["proposal", "proposal", "won", "lost"],
        "next_stage_true": pd.array(["proposal", "lost", None, "lost"], dtype="str"),
    })  # fmt: skip
    table = next_stage_table(labelled).set_index("stage")
    assert table.loc["lead", "hit_rate"] == 0.5 and table.loc["proposal", "known"] == 1
    assert table.loc["(all)", "known"] == 3 and table.loc["(all)", "hits"] == 2


def test_forecast_coverage_and_wape_by_hand(deals):
    forecasts = pd.DataFrame({
        "scoring_day": ["2026-01-05"] * 3, "period": ["2026-01", "2026-02", "2026-07"],
        "kind": ["month"] * 3,
        "start": [ts("2026-01-01"), ts("2026-02-01"), ts("2026-07-01")],
        "end": [ts("2026-02-01"), ts("2026-03-01"), ts("2026-08-01")],
        "forecast": [20.0, 150.0, 5.0], "p10": [0.0, 120.0, 0.0], "p50": [10.0, 140.0, 5.0],
        "p90": [30.0, 160.0, 9.0],
    })  # fmt: skip
    table = forecast_table(forecasts, deals, won_label="won", data_end=END)
    assert table["period"].tolist() == ["2026-01", "2026-02"]  # July has not ended
    assert table["actual"].tolist() == [0.0, 100.0]  # C was lost in January; A won 1 Feb
    assert table["inside"].tolist() == [True, False]
    month = forecast_summary(table)["month"]
    assert month["coverage_p10_p90"] == 0.5
    assert month["wape_p50"] == pytest.approx((10 + 40) / 100)
    assert month["wape_mean"] == pytest.approx((20 + 50) / 100)
