"""The forecast backtest run (``serving.forecast_run``): the plan, the orchestration with an
already fitted close model (no fit inside), and its text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm.synthetic import generate_crm
from features.spec import FeatureSpec
from serving.forecast_backtest import COLUMNS
from serving.forecast_run import backtest_lines, backtest_plan, forecast_backtest
from tests.shared import FUNNEL

SPEC = FeatureSpec(freq="W-MON", windows_days=(7, 30, 90), trend_days=30,
                   recency_channels=("meeting", "demo"), prior_strength=20.0)  # fmt: skip


class ConstantClose:
    """A "fitted" close model without curves: every open deal p_win = 0.3 (and nothing
    to fit: the orchestration must not try)."""

    horizon_days = 180

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.column_stack([np.full(len(X), 0.7), np.full(len(X), 0.3)])

    def fit(self, *args, **kwargs):
        raise AssertionError("the backtest must not fit")


def test_the_plan_starts_at_the_first_month_start_after_the_backtest_months():
    end = pd.Timestamp("2026-06-29 23:00", tz="UTC")
    cutoff, plan = backtest_plan(end, months=4)
    assert cutoff == pd.Timestamp("2026-03-01", tz="UTC")  # 2026-02-29 -> next month start
    months = [p.label for p, _, at in plan if p.kind == "month"]
    assert months == ["2026-03", "2026-04", "2026-05"]  # June is not whole by the end
    assert all(origin >= cutoff for _, origin, _ in plan)
    assert backtest_plan(end, months=0)[1] == []


@pytest.fixture(scope="module")
def crm():
    return generate_crm(
        n_deals=500, seed=3, start=pd.Timestamp("2024-01-01", tz="UTC"),
        as_of=pd.Timestamp("2026-06-30", tz="UTC"), funnel=FUNNEL, messy=False,
    ).data  # fmt: skip


def test_a_fitted_model_is_scored_at_every_origin_of_the_plan(crm):
    end = crm.deals["created_at"].max()
    cutoff, plan = backtest_plan(end, months=5)
    rows, metrics = forecast_backtest(
        crm, close=ConstantClose(), cutoff=cutoff, plan=plan, funnel=FUNNEL, spec=SPEC,
        horizon_days=180, draws=500, seed=1, min_stage_wins=30, new_deal_origins=6,
        stage_prior_strength=20, calendar_prior_days=30,
    )  # fmt: skip
    assert list(rows.columns) == list(COLUMNS)
    assert len(rows) == 3 * len(plan)  # each method once per (period, origin)
    assert metrics["cutoff"] == str(cutoff)
    assert set(metrics["methods"]) == {"dealcast", "stage_weighted", "rep_close_dates"}
    assert metrics["periods"]["months"] == sum(p.kind == "month" for p, _, _ in plan)
    again, _ = forecast_backtest(
        crm, close=ConstantClose(), cutoff=cutoff, plan=plan, funnel=FUNNEL, spec=SPEC,
        horizon_days=180, draws=500, seed=1, min_stage_wins=30, new_deal_origins=6,
        stage_prior_strength=20, calendar_prior_days=30,
    )  # fmt: skip
    pd.testing.assert_frame_equal(rows, again)  # seeded
    text = "\n".join(backtest_lines(metrics))
    assert text.startswith(f"backtest on {metrics['methods']['dealcast']['periods']} past months")
    assert "quarter_at_mid" in text or metrics["periods"]["quarters"] == 0


def test_no_methods_no_lines():
    assert backtest_lines({}) == []
