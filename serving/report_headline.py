"""The report's first lines for a revenue leader: this quarter's number, its range, where it
comes from, which figure to commit, and how it moved since the previous forecast.

Pure: the forecast table as written by ``dealcast forecast`` (and optionally the previous
one and the forecast backtest) in, HTML out. Figures are the forecast's own (deal currency);
nothing is recomputed here.
"""

from __future__ import annotations

import pandas as pd

from serving import report_html as h

#: Columns the headline needs in the forecast table.
NEEDED = ("period", "kind", "already_won", "open_expected", "new_expected", "forecast",
          "p10", "p50", "p90")  # fmt: skip


def quarter_rows(forecast: pd.DataFrame | None, n: int = 2) -> list[pd.Series]:
    """The first ``n`` quarters of a forecast table (the first contains its as-of)."""
    if forecast is None or any(c not in forecast for c in NEEDED):
        return []
    quarters = forecast[forecast["kind"].astype("str") == "quarter"]
    return [quarters.iloc[i] for i in range(min(n, len(quarters)))]


def quarter_row(forecast: pd.DataFrame | None) -> pd.Series | None:
    """The first quarter of a forecast table (the one containing its as-of), else None."""
    rows = quarter_rows(forecast, 1)
    return rows[0] if rows else None


def revenue_headline(
    forecast: pd.DataFrame | None,
    *,
    previous: pd.DataFrame | None = None,
    backtest_coverage: float | None = None,
    currency: str | None = None,
) -> str:
    """The headline block: this quarter and the next (empty when there is no forecast
    with a quarter row); ``currency`` names the money (else "deal currency")."""
    rows = quarter_rows(forecast)
    if not rows:
        return ""
    lines = []
    for label, q in zip(("this quarter", "next quarter"), rows, strict=False):
        lines += [f"<h3>{h.esc(q['period'])}, {label}</h3>", h.kpis(_items(q)),
                  h.para(_commit_line(q, backtest_coverage), "note")]  # fmt: skip
    moved = _change_line(rows[0], previous)
    if moved:
        lines.append(h.para(moved, "note"))
    as_of = _as_of(forecast)
    money = currency or "deal currency"
    when = f" ({money}, forecast as of {as_of})" if as_of else f" ({money})"
    return "\n".join([f"<h2>Won revenue by quarter{h.esc(when)}</h2>", *lines])


def _items(q: pd.Series) -> list[tuple[str, str]]:
    def money(v) -> str:
        return h.fmt(float(v), "money")

    return [
        ("won revenue, P50", money(q["p50"])),
        ("P10 – P90", f"{money(q['p10'])} – {money(q['p90'])}"),
        ("already won", money(q["already_won"])),
        ("expected from open deals", money(q["open_expected"])),
        ("expected from deals not yet created", money(q["new_expected"])),
    ]


def _as_of(forecast: pd.DataFrame) -> str:
    if "as_of" not in forecast or forecast.empty:
        return ""
    return str(pd.Timestamp(forecast["as_of"].iloc[0]).date())


def _commit_line(q: pd.Series, coverage: float | None) -> str:
    """Which number to commit, and why (P50 unless the mean is the one that adds up)."""
    p10, p50, mean = float(q["p10"]), float(q["p50"]), float(q["forecast"])
    why = (
        "a few large wins could lift the quarter well above it"
        if mean > p50
        else "a shortfall is likelier than a windfall"
    )
    text = (
        f"Commit the P50 ({h.fmt(p50, 'money')}): the quarter is as likely to land above it "
        f"as below. The mean ({h.fmt(mean, 'money')}) is what adds up across quarters and "
        f"teams; it is {'above' if mean > p50 else 'below'} the P50 because {why}. Plan the "
        f"downside on the P10 ({h.fmt(p10, 'money')}): 9 outcomes in 10 land above it"
    )
    if coverage is not None:
        text += f" (in the backtest, {h.fmt(coverage, 'pct')} of past periods fell inside P10–P90)"
    return text + "."


def _change_line(q: pd.Series, previous: pd.DataFrame | None) -> str:
    """How this quarter's P50 moved since the previous forecast of the same quarter."""
    before = quarter_row(previous)
    if before is None or str(before["period"]) != str(q["period"]):
        return ""
    delta = float(q["p50"]) - float(before["p50"])
    sign = "up" if delta > 0 else "down" if delta < 0 else "unchanged"
    amount = "" if sign == "unchanged" else f" {h.fmt(abs(delta), 'money')}"
    return (
        f"Since the forecast of {_as_of(previous) or 'the previous run'}: P50 {sign}{amount}; "
        f"already won {h.fmt(float(before['already_won']), 'money')} → "
        f"{h.fmt(float(q['already_won']), 'money')}."
    )
