"""Revenue forecast library: hand-checkable expectations, quantiles, timing, already won,
new deals, the shared shock and the backtest metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serving.forecast import (
    ALL,
    already_won,
    month_periods,
    new_deal_history,
    past_wins,
    quarter_periods,
    shared_shock_sigma,
    timing_shares,
    windows_of,
)
from serving.forecast_backtest import backtest_metrics, stage_win_rates
from serving.forecast_simulate import revenue_forecast, simulate_open

UTC = "UTC"


def ts(value: str) -> pd.Timestamp:
    return pd.Timestamp(value, tz=UTC)


def deals_frame(rows: list[tuple]) -> pd.DataFrame:
    """(deal_id, created_at, closed_at or None, outcome or None, amount)."""
    ids, created, closed, outcome, amount = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "deal_id": pd.array(ids, dtype="str"),
            "created_at": pd.to_datetime(list(created), utc=True),
            "closed_at": pd.to_datetime(list(closed), utc=True),
            "outcome": pd.array(outcome, dtype="str"),
            "amount": np.asarray(amount, float),
        }
    )


def test_periods_are_calendar_months_and_quarters_containing_as_of():
    months = month_periods(ts("2026-02-14 10:00"), 3)
    assert [m.label for m in months] == ["2026-02", "2026-03", "2026-04"]
    assert months[0].start == ts("2026-02-01") and months[-1].end == ts("2026-05-01")
    quarters = quarter_periods(ts("2026-02-14"), 2)
    assert [(q.label, q.start, q.end) for q in quarters] == [
        ("2026-Q1", ts("2026-01-01"), ts("2026-04-01")),
        ("2026-Q2", ts("2026-04-01"), ts("2026-07-01")),
    ]
    # windows in days after as_of, clipped to [0, H]
    w = windows_of(month_periods(ts("2026-01-11"), 2), ts("2026-01-11"), horizon_days=30)
    assert w.tolist() == [[0.0, 21.0], [21.0, pytest.approx(30.0)]]  # a win on day H counts


def test_two_deals_exact_expectation_and_poisson_binomial_quantiles():
    rng = np.random.default_rng(0)
    p, amount = np.array([0.6, 0.3]), np.array([100.0, 50.0])
    draws = simulate_open(p, amount, np.ones((2, 1)), sigma=0.0, draws=20000, rng=rng)[:, 0]
    # outcomes 0 (0.28), 50 (0.12), 100 (0.42), 150 (0.18): cdf 0.28, 0.40, 0.82, 1
    assert set(np.unique(draws)) == {0.0, 50.0, 100.0, 150.0}
    assert np.mean(draws == 0) == pytest.approx(0.28, abs=0.015)
    assert np.mean(draws == 150) == pytest.approx(0.18, abs=0.015)
    assert draws.mean() == pytest.approx(0.6 * 100 + 0.3 * 50, abs=1.5)
    assert np.quantile(draws, [0.1, 0.5, 0.9]).tolist() == [0.0, 100.0, 150.0]


def test_timing_shares_split_the_win_across_windows():
    rng = np.random.default_rng(1)
    p, amount = np.array([1.0]), np.array([10.0])
    shares = np.array([[0.25, 0.5]])  # 25 % in window 0, 50 % in 1, 25 % after both
    draws = simulate_open(p, amount, shares, sigma=0.0, draws=40000, rng=rng)
    assert (draws.sum(axis=1) <= 10).all()
    assert (draws[:, 0] > 0).mean() == pytest.approx(0.25, abs=0.01)
    assert (draws[:, 1] > 0).mean() == pytest.approx(0.5, abs=0.01)


def test_stage_timing_is_shrunk_to_all_stages():
    wins = pd.DataFrame({"stage": ["a"] * 10 + ["b"] * 30, "days": [5.0] * 10 + [40.0] * 30})
    windows = np.array([[0.0, 30.0], [30.0, 60.0]])
    shares = timing_shares(wins, windows, min_stage_wins=10)
    assert shares[ALL].tolist() == [0.25, 0.75]
    # a: (10 * [1, 0] + 10 * [0.25, 0.75]) / 20
    assert shares["a"].tolist() == pytest.approx([0.625, 0.375])
    assert timing_shares(wins, windows, min_stage_wins=0)["b"].tolist() == [0.0, 1.0]
    with pytest.raises(ValueError):
        timing_shares(wins.iloc[:0], windows, min_stage_wins=1)


def test_timing_is_weighted_by_amount():
    # one small quick win and one big slow one: 90 % of the revenue closes late
    wins = pd.DataFrame({"stage": ["a", "a"], "days": [5.0, 40.0], "amount": [10.0, 90.0]})
    shares = timing_shares(wins, np.array([[0.0, 30.0], [30.0, 60.0]]), min_stage_wins=0)
    assert shares["a"].tolist() == pytest.approx([0.1, 0.9])


def test_past_wins_only_use_snapshots_whose_outcome_is_known():
    deals = deals_frame(
        [
            ("D1", "2025-01-01", "2025-01-20", "won", 10),
            ("D2", "2025-01-01", "2025-03-01", "lost", 10),
            ("D3", "2025-01-01", "2025-06-20", "won", 10),  # won after the 30-day horizons
        ]
    )
    history = pd.DataFrame(
        {
            "deal_id": ["D1", "D1", "D2", "D3"],
            "stage": ["lead", "proposal", "lead", "lead"],
            "entered_at": pd.to_datetime(
                ["2025-01-01", "2025-01-10", "2025-01-01", "2025-01-01"], utc=True
            ),
        }
    )
    wins = past_wins(deals, history, as_of=ts("2025-02-15"), horizon_days=30, won_label="won")
    # weekly snapshots from 2025-01-01 to as_of - 30 d: D1 open at 01-01 (lead, 19 d) and
    # 01-08 (lead, 12 d), 01-15 (proposal, 5 d); D3 never wins within 30 days of one
    assert sorted(zip(wins["stage"], wins["days"], strict=True)) == [
        ("lead", 12.0), ("lead", 19.0), ("proposal", 5.0),
    ]  # fmt: skip


def test_already_won_counts_wins_from_period_start_to_as_of():
    deals = deals_frame(
        [
            ("W1", "2025-12-01", "2026-01-05", "won", 100),
            ("W2", "2025-12-01", "2025-12-31", "won", 40),  # before the period
            ("L1", "2025-12-01", "2026-01-06", "lost", 70),
            ("W3", "2025-12-01", "2026-01-20", "won", 900),  # after as_of
        ]
    )
    periods = month_periods(ts("2026-01-10"), 2) + quarter_periods(ts("2026-01-10"), 1)
    won = already_won(deals, periods, as_of=ts("2026-01-10"), won_label="won")
    assert won.tolist() == [100.0, 0.0, 100.0]


def test_new_deals_average_what_later_created_deals_won():
    # every month a deal created on the 3rd is won on the 20th for 10, plus one old deal
    rows = [("OLD", "2024-12-01", "2025-03-25", "won", 1000)]
    for m in range(1, 13):
        month = f"2025-{m:02d}"
        rows.append((f"N{m}", f"{month}-03", f"{month}-20", "won", 10 * m))
    deals = deals_frame(rows)
    as_of = ts("2026-01-01")
    (period,) = month_periods(as_of, 1)
    new = new_deal_history(deals, [period], as_of=as_of, won_label="won", origins=3)
    # origins 2025-12-01, 11-01, 10-01: won in the month by deals created after the origin
    assert new["new_mean"][0] == pytest.approx((120 + 110 + 100) / 3)
    assert new["new_sd"][0] == pytest.approx(10.0)
    assert new["new_origins"][0] == 3


def test_shared_shock_widens_the_interval_but_not_the_expectation():
    n = 200
    open_deals = pd.DataFrame(
        {"stage": ["lead"] * n, "amount": np.full(n, 100.0), "p_win": np.full(n, 0.3)}
    )
    deals = deals_frame([("X", "2025-01-01", "2025-01-05", "lost", 1)])
    wins = pd.DataFrame({"stage": ["lead"] * 4, "days": [1.0, 2.0, 3.0, 4.0]})
    kwargs = dict(
        deals=deals, open_deals=open_deals, wins=wins, as_of=ts("2025-06-01"), months=1,
        quarters=0, horizon_days=30, won_label="won", draws=20000, seed=3,
        min_stage_wins=0, new_deal_origins=1, calendar_prior_days=30,
    )  # fmt: skip
    calm = revenue_forecast(sigmas={"month": 0.0}, **kwargs).iloc[0]
    shaken = revenue_forecast(sigmas={"month": 0.5}, **kwargs).iloc[0]
    assert calm["forecast"] == shaken["forecast"] == pytest.approx(n * 0.3 * 100)
    assert calm["p50"] == pytest.approx(6000, abs=200)
    # independent: sd = 100 * sqrt(200 * 0.21) ~ 648, P10..P90 ~ +-1.28 sd
    assert calm["p90"] - calm["p10"] == pytest.approx(2 * 1.2816 * 648, rel=0.08)
    assert shaken["p90"] - shaken["p10"] > 1.8 * (calm["p90"] - calm["p10"])
    # each period kind is drawn with its own sigma (here a quarter = its first month + 0)
    both = revenue_forecast(
        sigmas={"month": 0.0, "quarter": 0.5}, **(kwargs | {"quarters": 1})
    ).set_index("kind")
    assert both.loc["month", "p90"] - both.loc["month", "p10"] == pytest.approx(
        calm["p90"] - calm["p10"], rel=0.05
    )
    assert both.loc["quarter", "p90"] - both.loc["quarter", "p10"] > 1.8 * (
        calm["p90"] - calm["p10"]
    )


def test_shared_shock_sigma_is_zero_without_extra_spread_and_grows_with_it():
    rng = np.random.default_rng(4)
    rows = []
    for m in range(1, 25):
        rate = 0.3 if m % 2 else 0.7  # alternating months: a strong common component
        for i in range(60):
            closed = f"{2024 + (m - 1) // 12}-{(m - 1) % 12 + 1:02d}-15"
            won = rng.random() < rate
            rows.append((f"D{m}-{i}", "2023-12-01", closed, "won" if won else "lost", 1))
    deals = deals_frame(rows)
    sigma = shared_shock_sigma(deals, as_of=ts("2026-01-05"), won_label="won", kind="month")
    assert 0.6 < sigma < 1.2  # logit(0.7) = 0.85 = sd of the alternating logit
    flat = deals.assign(outcome=pd.array(["won", "lost"] * (len(deals) // 2), dtype="str"))
    assert shared_shock_sigma(flat, as_of=ts("2026-01-05"), won_label="won", kind="month") == 0.0
    # alternating months average out within a quarter (3 months: 2 of one rate, 1 of the
    # other, alternating quarter by quarter): far less spread between quarters
    quarterly = shared_shock_sigma(deals, as_of=ts("2026-01-05"), won_label="won", kind="quarter")
    assert quarterly < 0.5 * sigma


def test_quarter_sigma_falls_back_to_months_without_three_whole_quarters():
    rng = np.random.default_rng(5)
    rows = [
        (f"D{m}-{i}", "2025-01-01", f"2025-{m:02d}-15", "won" if rng.random() < r else "lost", 1)
        for m, r in ((1, 0.2), (2, 0.8), (3, 0.2), (4, 0.8), (5, 0.2))
        for i in range(60)
    ]  # fmt: skip
    deals = deals_frame(rows)
    at = ts("2025-06-10")  # whole quarters before it: only 2025-Q1
    month = shared_shock_sigma(deals, as_of=at, won_label="won", kind="month")
    assert month > 0.8
    assert shared_shock_sigma(deals, as_of=at, won_label="won", kind="quarter") == month


def test_stage_win_rates_use_deals_closed_by_then_and_shrink():
    deals = deals_frame(
        [
            ("A", "2025-01-01", "2025-02-01", "won", 1),
            ("B", "2025-01-01", "2025-02-01", "lost", 1),
            ("C", "2025-01-01", "2025-09-01", "won", 1),  # closed later: unknown at as_of
        ]
    )
    history = pd.DataFrame(
        {
            "deal_id": ["A", "A", "B", "C"],
            "stage": ["lead", "proposal", "lead", "proposal"],
            "entered_at": pd.to_datetime(
                ["2025-01-01", "2025-01-15", "2025-01-01", "2025-01-15"], utc=True
            ),  # fmt: skip
        }
    )
    rates = stage_win_rates(deals, history, as_of=ts("2025-03-01"), won_label="won",
                            prior_strength=2)  # fmt: skip
    assert rates[ALL] == 0.5
    assert rates["lead"] == pytest.approx((1 + 2 * 0.5) / (2 + 2))
    assert rates["proposal"] == pytest.approx((1 + 2 * 0.5) / (1 + 2))


def test_backtest_metrics_wape_bias_and_coverage():
    frame = pd.DataFrame(
        {
            "method": ["m"] * 5,
            "kind": ["month"] * 4 + ["quarter"],
            "origin_at": ["start"] * 4 + ["mid"],
            "forecast": [110.0, 90.0, 100.0, 140.0, 300.0],
            "actual": [100.0, 100.0, 100.0, 100.0, 310.0],
            "p10": [80.0, 95.0, 100.0, 120.0, 290.0],
            "p90": [120.0, 130.0, 100.0, 160.0, 320.0],
        }
    )
    m = backtest_metrics(frame)["m"]
    assert m["periods"] == 4  # the headline: months forecast at their first day
    quarter = m["by_horizon"]["quarter_at_mid"]
    assert quarter["periods"] == 1 and quarter["wape"] == pytest.approx(10 / 310)
    assert m["wape"] == pytest.approx((10 + 10 + 0 + 40) / 400)
    assert m["bias"] == pytest.approx((10 - 10 + 0 + 40) / 400)
    assert m["coverage_p10_p90"] == 0.75  # the interval bounds count as inside


def test_backtest_periods_months_from_their_start_quarters_from_start_and_mid():
    from serving.forecast_backtest import backtest_periods

    got = backtest_periods(
        pd.Timestamp("2025-08-01", tz="UTC"), pd.Timestamp("2026-01-20", tz="UTC")
    )
    months = [(p.label, o.date().isoformat()) for p, o, _ in got if p.kind == "month"]
    assert months[0] == ("2025-08", "2025-08-01") and months[-1] == ("2025-12", "2025-12-01")
    quarters = [(p.label, o.date().isoformat(), at) for p, o, at in got if p.kind == "quarter"]
    assert quarters == [("2025-Q4", "2025-10-01", "start"), ("2025-Q4", "2025-11-15", "mid")]


def test_curve_probabilities_are_the_increments_of_the_model_curve():
    from serving.forecast import curve_probabilities

    curves = pd.DataFrame({"won_10d": [0.2], "won_30d": [0.5]})
    windows = np.array([[0.0, 5.0], [5.0, 20.0], [20.0, 40.0]])
    got = curve_probabilities(curves, windows)[0]
    assert got == pytest.approx([0.1, 0.25, 0.15])  # linear in between, flat after day 30
