"""The revenue headline: this quarter's P50 and range, its three sources, which figure to
commit, and the move since the previous forecast of the same quarter."""

from __future__ import annotations

import pandas as pd

from serving.report_headline import quarter_row, revenue_headline


def _forecast(p50: float, won: float, as_of: str, period: str = "2026-Q3") -> pd.DataFrame:
    rows = [
        ("2026-07", "month", 10.0, 20.0, 5.0, 35.0, 20.0, 33.0, 50.0),
        (period, "quarter", won, 900_000.0, 300_000.0, won + 1.2e6, 0.8e6, p50, 2.0e6),
        ("2026-Q4", "quarter", 0.0, 1.0, 1.0, 2.0, 1.0, 2.0, 3.0),
    ]
    cols = ["period", "kind", "already_won", "open_expected", "new_expected", "forecast",
            "p10", "p50", "p90"]  # fmt: skip
    return pd.DataFrame(rows, columns=cols).assign(as_of=pd.Timestamp(as_of, tz="UTC"))


def test_the_headline_shows_this_quarter_and_where_it_comes_from():
    page = revenue_headline(
        _forecast(1_300_000.0, 250_000.0, "2026-07-06"), backtest_coverage=0.8, currency="EUR"
    )
    assert "Won revenue by quarter (EUR, forecast as of 2026-07-06)" in page
    assert "2026-Q3, this quarter" in page and "2026-Q4, next quarter" in page
    assert "won revenue, P50" in page and "1,300,000" in page
    assert "800,000 – 2,000,000" in page
    assert "already won" in page and "250,000" in page
    assert "900,000" in page and "300,000" in page
    assert "Commit the P50 (1,300,000)" in page and "mean (1,450,000)" in page
    assert "is above the P50 because a few large wins" in page
    assert "80.0% of past periods" in page


def test_the_change_since_the_previous_forecast_of_the_same_quarter():
    now = _forecast(1_300_000.0, 250_000.0, "2026-07-06")
    before = _forecast(1_250_000.0, 100_000.0, "2026-06-29")
    page = revenue_headline(now, previous=before)
    assert "Since the forecast of 2026-06-29: P50 up 50,000" in page
    assert "already won 100,000 → 250,000" in page
    other_quarter = _forecast(1.0, 1.0, "2026-06-29", period="2026-Q2")
    assert "Since the forecast" not in revenue_headline(now, previous=other_quarter)


def test_no_forecast_no_headline():
    assert revenue_headline(None) == ""
    assert quarter_row(_forecast(1.0, 1.0, "2026-07-06").drop(columns="p50")) is None
