"""The funnel at a glance: win rates, conversion, loss and time per stage, censoring-aware.

Pure functions over a loaded :class:`crm.data.CRMData`; ``dealcast validate``, the demo,
the funnel report and the exploration notebook all call :func:`funnel_summary`.

Deals still open at the data's end are *censored*, never counted as failures: win rate,
stage-to-next conversion and "lost from this stage" are Aalen–Johansen cumulative
incidences (competing risks won / lost, or went on / lost), read at the longest time since
entry the data covers, with a 90 % interval; days in stage are Kaplan–Meier quantiles over
every stay, running ones included (see :mod:`serving.survival`, ``docs/funnel.md``). The
naive numbers most CRMs show sit beside them as ``naive_*`` columns.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import LOST, WON, Funnel
from features.snapshots import latest_timestamp
from serving.cohorts import cohort_table, pick_freq
from serving.funnel_events import deal_outcomes, stage_entries, stage_stays
from serving.survival import cumulative_incidence, kaplan_meier, km_quantile

__all__ = ["FunnelSummary", "funnel_summary", "stage_stays", "stage_table", "source_table",
           "stage_curves", "time_in_stage", "format_summary"]  # fmt: skip

#: Why the naive numbers differ, in one sentence (the report, notebook and CLI print it).
WHY_NAIVE = (
    "Naive = among closed deals or finished stays only, as most CRMs count: deals still "
    "open are left out (or counted as not converted), so fast closers are over-represented, "
    "long stays are dropped and young cohorts look worse; the censoring-aware numbers keep "
    "every open deal in the risk set until the data's end."
)
STAGE_COLUMNS = [
    "stage", "entered", "open", "win_rate", "win_rate_lo", "win_rate_hi",
    "to_next", "to_next_lo", "to_next_hi", "lost_here", "lost_here_lo", "lost_here_hi",
    "stays", "running", "median_days", "median_days_lo", "median_days_hi", "p75_days",
    "p90_days", "reached", "naive_win_rate", "naive_to_next", "naive_median_days",
]  # fmt: skip


@dataclass(frozen=True)
class FunnelSummary:
    """Counts, the censoring-aware overall win rate and the per-stage / per-source tables.

    ``win_rate`` (``win_rate_lo``/``_hi``: its 90 % interval) is the cumulative incidence
    of a win ``horizon_days`` after creation, the longest follow-up in the data; ``stages``
    has :data:`STAGE_COLUMNS`; ``sources`` one row per lead source; ``cohorts`` one row
    per creation ``cohort_freq`` (month or quarter, :func:`serving.cohorts.cohort_table`).
    """

    n_deals: int
    n_open: int
    n_won: int
    n_lost: int
    data_end: pd.Timestamp
    win_rate: float
    win_rate_lo: float
    win_rate_hi: float
    horizon_days: float
    stages: pd.DataFrame
    sources: pd.DataFrame
    cohorts: pd.DataFrame
    cohort_freq: str

    @property
    def naive_win_rate(self) -> float:
        """Won share of closed deals: what most CRMs show, biased while deals are open."""
        closed = self.n_won + self.n_lost
        return self.n_won / closed if closed else float("nan")

    @property
    def biggest_loss(self) -> pd.Series | None:
        """The stage row with the largest cumulative incidence of loss from the stage."""
        return _row_max(self.stages, "lost_here")

    @property
    def slowest(self) -> pd.Series | None:
        """The stage row where deals stall: the longest Kaplan–Meier median days."""
        return _row_max(self.stages, "median_days")


def funnel_summary(
    data: CRMData, *, funnel: Funnel, data_end: pd.Timestamp | None
) -> FunnelSummary:
    """Everything the funnel summary shows; ``data_end`` is when the data was extracted
    (open deals are censored there), None = the latest event in the data."""
    end = latest_timestamp(data) if data_end is None else data_end
    outcomes = deal_outcomes(data, data_end=end)
    won = cumulative_incidence(outcomes["days"], outcomes["cause"], n_causes=2)[1]
    value, lo, hi = won.final()
    cause = outcomes["cause"]
    freq = pick_freq(data.deals["created_at"])
    return FunnelSummary(
        n_deals=len(outcomes),
        n_open=int((cause == 0).sum()),
        n_won=int((cause == 1).sum()),
        n_lost=int((cause == 2).sum()),
        data_end=end,
        win_rate=value,
        win_rate_lo=lo,
        win_rate_hi=hi,
        horizon_days=float(won.days[-1]) if len(won.days) else float("nan"),
        stages=stage_table(data, funnel=funnel, data_end=end),
        sources=source_table(data.deals, data_end=end),
        cohorts=cohort_table(data, freq=freq, data_end=end),
        cohort_freq=freq,
    )


def stage_table(data: CRMData, *, funnel: Funnel, data_end: pd.Timestamp) -> pd.DataFrame:
    """Per open stage, honest and naive side by side (:data:`STAGE_COLUMNS`).

    From each deal's first entry into the stage: ``win_rate`` = cumulative incidence of a
    win, ``to_next`` = of reaching any further stage or won, ``lost_here`` = of a loss
    before that, each at the longest time since entry observed (``open`` deals censored),
    ``_lo``/``_hi`` the 90 % interval. Over every stay (``stays``, ``running`` still in
    it): Kaplan–Meier ``median_days`` (interval), ``p75_days``, ``p90_days`` (NaN = not
    reached within the data). ``naive_*``: closed deals only, reached(next)/reached with
    open deals as not converted, median of finished stays only.
    """
    entries = stage_entries(data, funnel=funnel, data_end=data_end)
    if entries.empty:
        return pd.DataFrame(columns=STAGE_COLUMNS)
    stays = stage_stays(data, data_end=data_end)
    naive = _naive_stages(data, funnel=funnel, stays=stays).set_index("stage")
    rows = []
    for stage in funnel.stages:
        e = entries[entries["stage"] == stage]
        row = {"stage": stage, "entered": len(e), "open": int((e["close_cause"] == 0).sum())}
        row |= _incidences(e)
        row |= time_in_stage(stays[stays["stage"] == stage])
        rows.append(row | naive.loc[stage].to_dict())
    return pd.DataFrame(rows, columns=STAGE_COLUMNS)


def stage_curves(data: CRMData, *, funnel: Funnel, data_end: pd.Timestamp) -> pd.DataFrame:
    """The curves behind :func:`stage_table`, long format for charts: ``stage``,
    ``measure`` (``won``, ``lost``, ``to_next``, ``lost_here``), ``days`` since first
    entry, ``value``, ``lower``, ``upper`` (step functions, one row per distinct time)."""
    entries = stage_entries(data, funnel=funnel, data_end=data_end)
    parts = []
    for stage in funnel.stages:
        e = entries[entries["stage"] == stage]
        if e.empty:
            continue
        close = cumulative_incidence(e["close_days"], e["close_cause"], n_causes=2)
        nxt = cumulative_incidence(e["next_days"], e["next_cause"], n_causes=2)
        named = {"won": close[1], "lost": close[2], "to_next": nxt[1], "lost_here": nxt[2]}
        parts += [curve_frame(c, stage=stage, measure=m) for m, c in named.items()]
    cols = ["stage", "measure", "days", "value", "lower", "upper"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)


def curve_frame(curve, **labels: str) -> pd.DataFrame:
    """One :class:`serving.survival.Curve` as rows, starting at day 0, with ``labels``."""
    days = np.r_[0.0, curve.days]
    head = [curve.start]
    return pd.DataFrame(
        {
            **{k: v for k, v in labels.items()},
            "days": days,
            "value": np.r_[head, curve.value],
            "lower": np.r_[head, curve.lower],
            "upper": np.r_[head, curve.upper],
        }
    )


def _incidences(e: pd.DataFrame) -> dict[str, float]:
    close = cumulative_incidence(e["close_days"], e["close_cause"], n_causes=2)
    nxt = cumulative_incidence(e["next_days"], e["next_cause"], n_causes=2)
    out: dict[str, float] = {}
    for name, curve in (("win_rate", close[1]), ("to_next", nxt[1]), ("lost_here", nxt[2])):
        out[name], out[f"{name}_lo"], out[f"{name}_hi"] = curve.final()
    return out


def time_in_stage(stays: pd.DataFrame) -> dict[str, float]:
    """Kaplan–Meier days in stage over ``stays`` (rows of :func:`stage_stays` with a
    ``data_end``, one stage): ``stays``, ``running``, ``median_days`` with its interval
    (``_lo``/``_hi``), ``p75_days``, ``p90_days``; NaN where the curve never gets there."""
    row: dict[str, float] = {"stays": len(stays), "running": int((~stays["finished"]).sum())}
    if stays.empty:
        return row | dict.fromkeys(["median_days", "median_days_lo", "median_days_hi",
                                    "p75_days", "p90_days"], np.nan)  # fmt: skip
    km = kaplan_meier(stays["days"].to_numpy(float), stays["finished"].to_numpy(bool))
    row["median_days"], row["median_days_lo"], row["median_days_hi"] = km_quantile(km, 0.5)
    row["p75_days"] = km_quantile(km, 0.75)[0]
    row["p90_days"] = km_quantile(km, 0.9)[0]
    return row


def _naive_stages(data: CRMData, *, funnel: Funnel, stays: pd.DataFrame) -> pd.DataFrame:
    """The CRM way: ``reached`` (entered it or a later stage), closed deals' win share,
    reached(next)/reached with open deals as not converted, median of finished stays."""
    history = data.stage_history
    pos = history["stage"].map({s: i for i, s in enumerate(funnel.states)})
    furthest = pos.groupby(history["deal_id"]).max()
    furthest = furthest.where(
        furthest != funnel.position(LOST), _last_open_position(history, funnel)
    )
    outcome = data.deals.drop_duplicates("deal_id").set_index("deal_id")["outcome"]
    won_pos, rows = funnel.position(WON), []
    for i, stage in enumerate(funnel.stages):
        reached = furthest.index[furthest >= i]
        closed = outcome.reindex(reached).dropna()
        if i + 1 < won_pos:
            went_on = int((furthest >= i + 1).sum())
        else:
            went_on = int((outcome.reindex(reached) == WON).sum())
        done = stays.loc[(stays["stage"] == stage) & stays["finished"], "days"]
        rows.append({
            "stage": stage,
            "reached": len(reached),
            "naive_win_rate": _ratio(int((closed == WON).sum()), len(closed)),
            "naive_to_next": _ratio(went_on, len(reached)),
            "naive_median_days": float(done.median()) if len(done) else np.nan,
        })  # fmt: skip
    return pd.DataFrame(rows)


def source_table(deals: pd.DataFrame, *, data_end: pd.Timestamp) -> pd.DataFrame:
    """:func:`win_rates_by` lead source (``source`` column renamed as such)."""
    return win_rates_by(deals, "source", data_end=data_end)


def win_rates_by(deals: pd.DataFrame, column: str, *, data_end: pd.Timestamp) -> pd.DataFrame:
    """Per value of ``column`` (missing = ``(none)``), most deals first: deals, open, won,
    lost, the censoring-aware win rate from creation by the data's end with its 90 %
    interval (as :func:`funnel_summary`), and the naive won share of closed deals."""
    columns = [column, "deals", "open", "won", "lost", "win_rate", "win_rate_lo",
               "win_rate_hi", "naive_win_rate"]  # fmt: skip
    if column not in deals.columns or deals.empty:
        return pd.DataFrame(columns=columns)
    deals = deals.drop_duplicates("deal_id")
    outcomes = deal_outcomes(CRMData(deals=deals), data_end=data_end)
    key = deals[column].astype("str").fillna("(none)").to_numpy()
    rows = []
    for name, o in outcomes.groupby(key, sort=True):
        won = cumulative_incidence(o["days"], o["cause"], n_causes=2)[1]
        n = o["cause"].value_counts().reindex([0, 1, 2], fill_value=0).tolist()
        rows.append([name, len(o), *n, *won.final(), _ratio(n[1], n[1] + n[2])])
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values("deals", ascending=False, kind="stable").reset_index(drop=True)


def _last_open_position(history: pd.DataFrame, funnel: Funnel) -> pd.Series:
    """For lost deals: the furthest open stage they reached before being lost."""
    open_pos = history["stage"].map({s: i for i, s in enumerate(funnel.stages)})
    return open_pos.groupby(history["deal_id"]).max().fillna(-1)


def _row_max(stages: pd.DataFrame, column: str) -> pd.Series | None:
    values = pd.to_numeric(stages.get(column), errors="coerce") if len(stages) else None
    if values is None or values.isna().all():
        return None
    return stages.loc[values.idxmax()]


def _ratio(num: int, den: int) -> float:
    return num / den if den else float("nan")


def format_summary(summary: FunnelSummary) -> str:
    """The funnel summary as fixed-width text for a terminal (honest, then naive)."""
    s, closed = summary, summary.n_won + summary.n_lost
    lines = [
        f"{s.n_deals:,} deals: {s.n_open:,} open, {s.n_won:,} won, {s.n_lost:,} lost "
        f"(data end {s.data_end:%Y-%m-%d})",
        f"win rate {_ci(s.win_rate, s.win_rate_lo, s.win_rate_hi)} by day "
        f"{_num(s.horizon_days, 0)} after creation (open deals censored; 90% interval); "
        f"naive {_pct(s.naive_win_rate)} of {closed:,} closed",
        "",
        f"{'stage':<14}{'entered':>8}{'open':>6}  {'win rate':<22}{'-> next stage':<22}"
        f"{'lost here':>10}  {'median days':<19}{'p90':>6}",
    ]
    for r in s.stages.itertuples(index=False):
        lines.append(
            f"{r.stage[:13]:<14}{r.entered:>8,}{r.open:>6,}  "
            f"{_ci(r.win_rate, r.win_rate_lo, r.win_rate_hi):<22}"
            f"{_ci(r.to_next, r.to_next_lo, r.to_next_hi):<22}{_pct(r.lost_here):>10}  "
            f"{_days_ci(r.median_days, r.median_days_lo, r.median_days_hi):<19}"
            f"{_num(r.p90_days, 0):>6}"
        )
    if s.stages.empty:
        return "\n".join([*lines, "(no stage history)", "", *_source_lines(s.sources)])
    lines += ["", f"naive: {'stage':<14}{'win rate':>10}{'-> next':>10}{'median days':>13}"]
    lines += [
        f"       {r.stage[:13]:<14}{_pct(r.naive_win_rate):>10}{_pct(r.naive_to_next):>10}"
        f"{_num(r.naive_median_days):>13}"
        for r in s.stages.itertuples(index=False)
    ]
    return "\n".join(
        [*lines, *_drop_off_lines(s), *textwrap.wrap(WHY_NAIVE, 100), "", *_source_lines(s.sources)]
    )


def _drop_off_lines(s: FunnelSummary) -> list[str]:
    loss, slow = s.biggest_loss, s.slowest
    out = [""]
    if loss is not None:
        out.append(f"most lost from: {loss['stage']} ({_pct(loss['lost_here'])} of deals "
                   "entering it are lost before going on)")  # fmt: skip
    if slow is not None:
        out.append(f"deals stall in: {slow['stage']} (median {_num(slow['median_days'])} "
                   "days, running stays included)")  # fmt: skip
    judged = s.cohorts[s.cohorts["below_previous"].notna()]
    below = judged.loc[judged["below_previous"].eq(True), "cohort"].tolist()
    out.append(f"cohorts by {s.cohort_freq} of creation: {len(judged)} judged, below the "
               f"previous ones: {', '.join(below) if below else 'none'}")  # fmt: skip
    return out


def _source_lines(sources: pd.DataFrame) -> list[str]:
    lines = [f"{'source':<20}{'deals':>8}{'open':>7}{'won':>7}{'lost':>7}  {'win rate':<20}"
             f"{'naive':>7}"]  # fmt: skip
    for r in sources.itertuples(index=False):
        lines.append(
            f"{str(r.source)[:19]:<20}{r.deals:>8,}{r.open:>7,}{r.won:>7,}{r.lost:>7,}  "
            f"{_ci(r.win_rate, r.win_rate_lo, r.win_rate_hi):<20}{_pct(r.naive_win_rate):>7}"
        )
    return lines if len(sources) else [*lines, "(no source column)"]


def _pct(x: float) -> str:
    return "-" if pd.isna(x) else f"{100 * x:.1f}%"


def _ci(x: float, lo: float, hi: float) -> str:
    if pd.isna(x):
        return "-"
    return f"{100 * x:.1f}% [{100 * lo:.1f}-{100 * hi:.1f}]"


def _days_ci(x: float, lo: float, hi: float) -> str:
    if pd.isna(x):
        return "not reached"
    return f"{x:.1f} [{_num(lo)}-{'…' if pd.isna(hi) else f'{hi:.1f}'}]"


def _num(x: float, digits: int = 1) -> str:
    return "-" if pd.isna(x) else f"{x:.{digits}f}"
