"""The funnel at a glance: how many deals reach each stage, how long they sit, who converts.

Pure functions over a loaded :class:`crm.data.CRMData`; the CLI prints the result and the
funnel report (a later step) draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import LOST, WON, Funnel

_DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class FunnelSummary:
    """``stages``: one row per open stage; ``sources``: one row per lead source."""

    n_deals: int
    n_open: int
    n_won: int
    n_lost: int
    stages: pd.DataFrame
    sources: pd.DataFrame

    @property
    def win_rate(self) -> float:
        """Won share of closed deals (open deals have no outcome yet)."""
        closed = self.n_won + self.n_lost
        return self.n_won / closed if closed else float("nan")


def funnel_summary(data: CRMData, *, funnel: Funnel) -> FunnelSummary:
    """Deals and conversion per stage, median days in stage, and win rate by source."""
    deals = data.deals
    outcome = deals["outcome"]
    return FunnelSummary(
        n_deals=len(deals),
        n_open=int(outcome.isna().sum()),
        n_won=int((outcome == WON).sum()),
        n_lost=int((outcome == LOST).sum()),
        stages=stage_table(data, funnel=funnel),
        sources=source_table(deals),
    )


def stage_table(data: CRMData, *, funnel: Funnel) -> pd.DataFrame:
    """Per open stage: deals that entered it, reached it or beyond, conversion, dwell.

    ``reached`` counts a deal at a stage when it entered that stage or any later one
    (skips pass through); ``conversion_to_next`` is reached(next) / reached(this), with
    ``won`` as the step after the last stage. ``median_days`` covers finished stays only:
    the stay a deal is still in at the end of the data is censored and left out.
    """
    history = data.stage_history
    columns = ["stage", "entered", "reached", "conversion_to_next", "win_rate", "median_days"]
    if history is None or history.empty:
        return pd.DataFrame(columns=columns)
    pos = history["stage"].map({s: i for i, s in enumerate(funnel.states)})
    furthest = pos.groupby(history["deal_id"]).max()
    won_pos = funnel.position(WON)
    furthest = furthest.where(
        furthest != funnel.position(LOST), _last_open_position(history, funnel)
    )
    rows = []
    outcome = data.deals.set_index("deal_id")["outcome"]
    stays = stage_stays(data)
    for i, stage in enumerate(funnel.stages):
        reached_ids = furthest.index[furthest >= i]
        reached_next = (
            int((furthest >= i + 1).sum())
            if i + 1 < won_pos
            else int((outcome.reindex(reached_ids) == WON).sum())
        )
        closed = outcome.reindex(reached_ids).dropna()
        done = stays.loc[(stays["stage"] == stage) & stays["finished"], "days"]
        rows.append(
            {
                "stage": stage,
                "entered": int(history.loc[history["stage"] == stage, "deal_id"].nunique()),
                "reached": len(reached_ids),
                "conversion_to_next": _ratio(reached_next, len(reached_ids)),
                "win_rate": _ratio(int((closed == WON).sum()), len(closed)),
                "median_days": float(done.median()) if len(done) else float("nan"),
            }
        )
    return pd.DataFrame(rows, columns=columns)


def stage_stays(data: CRMData) -> pd.DataFrame:
    """One row per stage entry: how many days the deal stayed, and whether the stay ended.

    A stay ends at the deal's next stage row, else at its close; a stay with neither is
    still running at the end of the data (``finished`` False, ``days`` NaN).
    """
    history = data.stage_history
    if history is None:
        return pd.DataFrame(columns=["deal_id", "stage", "entered_at", "days", "finished"])
    h = history.sort_values(["deal_id", "entered_at"], kind="stable")
    closed_at = h["deal_id"].map(
        data.deals.drop_duplicates("deal_id").set_index("deal_id")["closed_at"]
    )
    left_at = h.groupby("deal_id", sort=False)["entered_at"].shift(-1).fillna(closed_at)
    days = (left_at - h["entered_at"]) / _DAY
    out = h[["deal_id", "stage", "entered_at"]].assign(days=days, finished=left_at.notna())
    return out[~out["stage"].isin([WON, LOST])].reset_index(drop=True)


def source_table(deals: pd.DataFrame) -> pd.DataFrame:
    """Per lead source: deals, open, won, lost, and win rate among closed deals."""
    columns = ["source", "deals", "open", "won", "lost", "win_rate"]
    if "source" not in deals.columns:
        return pd.DataFrame(columns=columns)
    source = deals["source"].astype("str").fillna("(none)")
    g = pd.DataFrame(
        {
            "source": source,
            "open": deals["outcome"].isna(),
            "won": deals["outcome"] == WON,
            "lost": deals["outcome"] == LOST,
        }
    ).groupby("source", sort=True)
    table = g.sum().astype(int)
    table.insert(0, "deals", g.size())
    table["win_rate"] = table["won"] / (table["won"] + table["lost"]).replace(0, np.nan)
    return table.reset_index().sort_values("deals", ascending=False, kind="stable")[columns]


def _last_open_position(history: pd.DataFrame, funnel: Funnel) -> pd.Series:
    """For lost deals: the furthest open stage they reached before being lost."""
    open_pos = history["stage"].map({s: i for i, s in enumerate(funnel.stages)})
    return open_pos.groupby(history["deal_id"]).max().fillna(-1)


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def format_summary(summary: FunnelSummary) -> str:
    """The funnel summary as fixed-width text for a terminal."""
    closed = summary.n_won + summary.n_lost
    lines = [
        f"{summary.n_deals:,} deals: {summary.n_open:,} open, {summary.n_won:,} won, "
        f"{summary.n_lost:,} lost (win rate {_pct(summary.win_rate)} of {closed:,} closed)",
        "",
        f"{'stage':<16}{'entered':>9}{'reached':>9}{'-> next':>9}{'win rate':>10}"
        f"{'median days':>13}",
    ]
    for r in summary.stages.itertuples(index=False):
        lines.append(
            f"{r.stage:<16}{r.entered:>9,}{r.reached:>9,}{_pct(r.conversion_to_next):>9}"
            f"{_pct(r.win_rate):>10}{_num(r.median_days):>13}"
        )
    if summary.stages.empty:
        lines.append("(no stage history)")
    lines += ["", f"{'source':<20}{'deals':>8}{'open':>7}{'won':>7}{'lost':>7}{'win rate':>10}"]
    for r in summary.sources.itertuples(index=False):
        lines.append(
            f"{str(r.source)[:19]:<20}{r.deals:>8,}{r.open:>7,}{r.won:>7,}{r.lost:>7,}"
            f"{_pct(r.win_rate):>10}"
        )
    if summary.sources.empty:
        lines.append("(no source column)")
    return "\n".join(lines)


def _pct(x: float) -> str:
    return "-" if pd.isna(x) else f"{100 * x:.1f}%"


def _num(x: float) -> str:
    return "-" if pd.isna(x) else f"{x:.1f}"
