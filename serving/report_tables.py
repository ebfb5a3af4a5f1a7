"""The funnel report's tables: pure functions of a loaded CRM (no I/O, no HTML).

The transition matrix, time in stage, the bottleneck ranking and conversion by a deal
attribute; :mod:`serving.report` lays them out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import LOST, WON, Funnel
from features.snapshots import latest_timestamp
from serving.funnel import stage_stays, time_in_stage, win_rates_by

#: Column of the transition matrix for a deal still sitting in the stage at the end of data.
STILL_THERE = "(still there)"


def known_at(data: CRMData, as_of: pd.Timestamp) -> CRMData:
    """The CRM as it stood at ``as_of``: later deals and stage moves dropped, later closes open."""
    deals = data.deals[data.deals["created_at"] <= as_of].copy()
    later = deals["closed_at"] > as_of
    deals.loc[later, "closed_at"] = pd.NaT
    deals.loc[later, "outcome"] = None
    history = data.stage_history
    if history is not None:
        history = history[
            (history["entered_at"] <= as_of) & history["deal_id"].isin(deals["deal_id"])
        ]
    touches = data.touchpoints
    if touches is not None:
        touches = touches[touches["occurred_at"] <= as_of]
    return CRMData(deals=deals, accounts=data.accounts, stage_history=history, touchpoints=touches)


def transition_matrix(data: CRMData, *, funnel: Funnel) -> pd.DataFrame:
    """Counts of moves from each stage (rows) to the next state the deal entered (columns).

    Every stage-history row is one stay; its move is the deal's next row (a skip forward, a
    regression back, ``won`` or ``lost``). A last row without a close goes to the deal's
    outcome when it has one (a history missing its closing row), else to
    :data:`STILL_THERE`. Rows: the open stages, plus ``won``/``lost`` only if a deal moved
    on from them (a reopened deal); columns: every state, then :data:`STILL_THERE`.
    """
    columns = [*funnel.states, STILL_THERE]
    history = data.stage_history
    if history is None or history.empty:
        return pd.DataFrame(0, index=pd.Index(funnel.stages, name="from"), columns=columns)
    h = history.sort_values(["deal_id", "entered_at"], kind="stable")
    nxt = h.groupby("deal_id", sort=False)["stage"].shift(-1)
    outcome = h["deal_id"].map(
        data.deals.drop_duplicates("deal_id").set_index("deal_id")["outcome"]
    )
    last_open = nxt.isna() & ~h["stage"].isin([WON, LOST])
    nxt = nxt.where(~last_open, outcome.where(outcome.notna(), STILL_THERE))
    moves = pd.DataFrame({"from": h["stage"].to_numpy(), "to": nxt.to_numpy()}).dropna()
    counts = pd.crosstab(moves["from"], moves["to"])
    rows = [*funnel.stages, *(s for s in (WON, LOST) if s in counts.index)]
    out = counts.reindex(index=rows, columns=columns, fill_value=0).astype(int)
    out.index.name, out.columns.name = "from", None
    return out


def move_kind(funnel: Funnel, source: str, target: str) -> str:
    """The kind of a move: ``next`` (one stage on), ``skip`` (further on), ``back``,
    ``stay`` (same stage again), ``won``, ``lost`` or ``open`` (still there)."""
    if target in (WON, LOST):
        return target
    if target == STILL_THERE:
        return "open"
    step = funnel.position(target) - funnel.position(source)
    return {1: "next", 0: "stay"}.get(step, "skip" if step > 1 else "back")


def stay_quantiles(
    data: CRMData, *, funnel: Funnel, data_end: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Per open stage, Kaplan–Meier days in stage over every stay, running ones included
    (censored at ``data_end``, default the latest event in the data): ``finished`` and
    ``running`` stays, ``median_days`` (90 % interval ``median_days_lo``/``_hi``),
    ``p75_days``, ``p90_days`` (NaN = not reached within the data), and the naive median
    of finished stays only."""
    columns = ["stage", "finished", "running", "median_days", "median_days_lo",
               "median_days_hi", "p75_days", "p90_days", "naive_median_days"]  # fmt: skip
    end = latest_timestamp(data) if data_end is None else data_end
    stays = stage_stays(data, data_end=end)
    rows = []
    for stage in funnel.stages:
        s = stays[stays["stage"] == stage]
        done = s.loc[s["finished"], "days"].astype(float)
        row = time_in_stage(s)
        row["finished"] = row.pop("stays") - row["running"]
        row["naive_median_days"] = done.median() if len(done) else np.nan
        rows.append({"stage": stage, **row})
    return pd.DataFrame(rows, columns=columns)


def bottlenecks(stages: pd.DataFrame) -> pd.DataFrame:
    """Where deals drop out and where they stall, from the censoring-aware stage table
    (:func:`serving.funnel.stage_table`).

    ``lost_here`` = cumulative incidence of a loss before going past the stage (open
    deals censored); ``median_days`` = Kaplan–Meier median days in the stage. Sorted by
    ``lost_here`` (largest first), ties by ``median_days``; ``rank_loss`` / ``rank_time``
    rank the stages on each measure alone (1 = worst). ``naive_drop_off`` = 1 - the naive
    reached(next)/reached, which counts deals still in the stage as dropped.
    """
    columns = ["stage", "entered", "open", "lost_here", "lost_here_lo", "lost_here_hi",
               "median_days", "rank_loss", "rank_time", "naive_drop_off"]  # fmt: skip
    if stages.empty:
        return pd.DataFrame(columns=columns)
    t = stages.assign(naive_drop_off=1 - stages["naive_to_next"])
    t["rank_loss"] = t["lost_here"].rank(ascending=False, method="min").astype("Int64")
    t["rank_time"] = t["median_days"].rank(ascending=False, method="min").astype("Int64")
    t = t.sort_values(
        ["lost_here", "median_days"], ascending=False, kind="stable", na_position="last"
    )
    return t[columns].reset_index(drop=True)


def conversion_by(
    deals: pd.DataFrame,
    column: str,
    *,
    top: int | None = None,
    data_end: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Per value of ``column``: deals, open, won, lost, the censoring-aware win rate (90 %
    interval; open deals censored at ``data_end``, default the latest creation or close)
    and the naive won share of closed deals (:func:`serving.funnel.win_rates_by`).

    Missing values are grouped as ``(none)``; sorted by deals (most first), the first
    ``top`` kept when given.
    """
    if data_end is None and not deals.empty:
        data_end = max(t for t in (deals["created_at"].max(), deals["closed_at"].max())
                       if pd.notna(t))  # fmt: skip
    table = win_rates_by(deals, column, data_end=data_end)
    return (table.head(top) if top else table).reset_index(drop=True)


def with_industry(data: CRMData) -> pd.DataFrame | None:
    """The deals with their account's ``industry``; None without accounts or industries."""
    accounts = data.accounts
    if accounts is None or "industry" not in accounts or "account_id" not in data.deals:
        return None
    industry = accounts.drop_duplicates("account_id").set_index("account_id")["industry"]
    return data.deals.assign(industry=data.deals["account_id"].map(industry))


def forecast_scores(backtest: pd.DataFrame) -> pd.DataFrame:
    """Per method, over past periods with a known actual: periods, P10-P90 coverage,
    WAPE = sum|forecast - actual| / sum(actual) and bias = sum(forecast - actual) / sum(actual).
    """
    b = backtest[backtest["actual"].notna()]
    point = b["forecast"] if "forecast" in b else b["p50"]
    frame = pd.DataFrame(
        {
            "method": b["method"].astype(str),
            "inside": (b["actual"] >= b["p10"]) & (b["actual"] <= b["p90"]),
            "abs_error": (point - b["actual"]).abs(),
            "error": point - b["actual"],
            "actual": b["actual"],
        }
    )
    g = frame.groupby("method", sort=False)
    total = g["actual"].sum().replace(0, np.nan)
    return pd.DataFrame(
        {
            "periods": g.size(),
            "coverage_p10_p90": g["inside"].mean(),
            "wape": g["abs_error"].sum() / total,
            "bias": g["error"].sum() / total,
        }
    ).reset_index()
