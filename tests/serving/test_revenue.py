"""The forecast of one moment as the CLI shows it: the fan chart and the printed table."""

from __future__ import annotations

import pandas as pd

from serving.revenue import fan_chart_png, forecast_text

AS_OF = pd.Timestamp("2025-03-10", tz="UTC")


def _table() -> pd.DataFrame:
    rows = [
        ("2025-03", "month", 1000.0, 2000.0, 300.0, 2500.0, 3300.0, 4200.0),
        ("2025-04", "month", 0.0, 1500.0, 600.0, 1200.0, 2100.0, 3000.0),
        ("2025Q1", "quarter", 1000.0, 2000.0, 300.0, 2500.0, 3300.0, 4200.0),
    ]
    columns = ["period", "kind", "already_won", "open_expected", "new_expected", "p10",
               "p50", "p90"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def test_the_fan_chart_is_a_png_of_the_months():
    png = fan_chart_png(_table(), AS_OF)
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert fan_chart_png(_table(), AS_OF) == png  # no timestamp in the bytes


def test_the_text_lists_every_period_then_the_backtest():
    text = forecast_text(_table(), as_of=AS_OF, open_deals=1234, sigma={"month": 0.1,
                         "quarter": 0.2}, messages=["a note"], metrics={})  # fmt: skip
    lines = text.splitlines()
    assert "1,234 open deals" in lines[0] and "0.100 per month" in lines[0]
    assert lines[1] == "a note" and lines[2].split() == ["period", "won", "open", "new",
                                                         "P10", "P50", "P90"]  # fmt: skip
    assert lines[3].split()[:2] == ["2025-03", "1,000"] and len(lines) >= 6
