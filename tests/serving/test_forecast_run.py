"""The forecast backtest run (``serving.forecast_run``): the plan, the refits, the
orchestration with the caller's fit function, and its text."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm.synthetic import generate_crm
from features.spec import FeatureSpec
from serving.forecast_backtest import COLUMNS
from serving.forecast_run import backtest_lines, backtest_plan, forecast_backtest, refit_dates
from tests.shared import FUNNEL

SPEC = FeatureSpec(freq="W-MON", windows_days=(7, 30, 90), trend_days=30,
                   recency_channels=("meeting", "demo"), prior_strength=20.0)  # fmt: skip


class ConstantClose:
    """A "fitted" close model without curves: every open deal gets ``p`` (and nothing to
    fit: the orchestration must not try; fitting is the caller's ``fit_close``)."""

    horizon_days = 180

    def __init__(self, p: float = 0.3) -> None:
        self.p = p
        self.scored: set[pd.Timestamp] = set()  # the as_of dates it was asked to score

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        self.scored |= set(pd.to_datetime(X["as_of"], utc=True))
        return np.column_stack([np.full(len(X), 1 - self.p), np.full(len(X), self.p)])

    def fit(self, *args, **kwargs):
        raise AssertionError("the backtest must not fit")


class Fits:
    """A ``fit_close`` that records the dates it was asked to fit at and the models made."""

    def __init__(self) -> None:
        self.dates: list[pd.Timestamp] = []
        self.models: list[ConstantClose] = []

    def __call__(self, at: pd.Timestamp) -> ConstantClose:
        self.dates.append(at)
        self.models.append(ConstantClose())
        return self.models[-1]


def test_the_plan_starts_at_the_first_month_start_after_the_backtest_months():
    end = pd.Timestamp("2026-06-29 23:00", tz="UTC")
    cutoff, plan = backtest_plan(end, months=4)
    assert cutoff == pd.Timestamp("2026-03-01", tz="UTC")  # 2026-02-29 -> next month start
    months = [p.label for p, _, at in plan if p.kind == "month"]
    assert months == ["2026-03", "2026-04", "2026-05"]  # June is not whole by the end
    assert all(origin >= cutoff for _, origin, _ in plan)
    assert backtest_plan(end, months=0)[1] == []


def test_refits_every_few_months_up_to_the_last_origin():
    cutoff = pd.Timestamp("2025-01-01", tz="UTC")
    origins = [cutoff + pd.DateOffset(months=m) for m in range(8)]  # 2025-01 .. 2025-08
    assert [str(d.date()) for d in refit_dates(cutoff, origins, every_months=3)] == [
        "2025-01-01", "2025-04-01", "2025-07-01",
    ]  # fmt: skip
    assert refit_dates(cutoff, origins, every_months=12) == [cutoff]


@pytest.fixture(scope="module")
def crm():
    return generate_crm(
        n_deals=500, seed=3, start=pd.Timestamp("2024-01-01", tz="UTC"),
        as_of=pd.Timestamp("2026-06-30", tz="UTC"), funnel=FUNNEL, messy=False,
    ).data  # fmt: skip


def test_each_origin_is_scored_by_the_latest_model_fitted_by_then(crm):
    end = crm.deals["created_at"].max()
    cutoff, plan = backtest_plan(end, months=5)
    fits = Fits()
    rows, metrics = forecast_backtest(
        crm, fit_close=fits, cutoff=cutoff, refit_months=3, plan=plan, funnel=FUNNEL,
        spec=SPEC, horizon_days=180, draws=500, seed=1, min_stage_wins=30,
        new_deal_origins=6, stage_prior_strength=20, calendar_prior_days=30,
    )  # fmt: skip
    refit = cutoff + pd.DateOffset(months=3)
    assert fits.dates == [cutoff, refit]
    assert metrics["refits"] == [str(cutoff.date()), str(refit.date())]
    origins = {origin for _, origin, _ in plan}
    first, second = (model.scored for model in fits.models)
    assert first == {o for o in origins if o < refit} and first
    assert second == {o for o in origins if o >= refit} and second
    assert list(rows.columns) == list(COLUMNS)
    assert len(rows) == 3 * len(plan)  # each method once per (period, origin)
    assert metrics["cutoff"] == str(cutoff)
    assert set(metrics["methods"]) == {"dealcast", "stage_weighted", "rep_close_dates"}
    assert metrics["periods"]["months"] == sum(p.kind == "month" for p, _, _ in plan)
    again, _ = forecast_backtest(
        crm, fit_close=Fits(), cutoff=cutoff, refit_months=3, plan=plan, funnel=FUNNEL,
        spec=SPEC, horizon_days=180, draws=500, seed=1, min_stage_wins=30,
        new_deal_origins=6, stage_prior_strength=20, calendar_prior_days=30,
    )  # fmt: skip
    pd.testing.assert_frame_equal(rows, again)  # seeded
    text = "\n".join(backtest_lines(metrics))
    assert text.startswith(f"backtest on {metrics['methods']['dealcast']['periods']} past months")
    assert "quarter_at_mid" in text or metrics["periods"]["quarters"] == 0


def test_no_methods_no_lines():
    assert backtest_lines({}) == []
