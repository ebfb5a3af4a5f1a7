"""The funnel report's censoring-aware sections: funnel, time in stage, drop-off, cohorts.

Each function returns one ``<section>``; the numbers come from :mod:`serving.funnel` and
:mod:`serving.cohorts`, the same functions ``dealcast validate``, the demo and the
exploration notebook print. Naive numbers sit beside the honest ones, labelled.
"""

from __future__ import annotations

import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from serving import cohorts as co
from serving import report_charts as charts
from serving import report_html as h
from serving.funnel import WHY_NAIVE, FunnelSummary, stage_curves
from serving.report_tables import bottlenecks

#: Cohort panels drawn (the latest ones); the table lists every cohort.
COHORT_PANELS = 8


def missing_history(what: str) -> str:
    return h.missing(f"No stage history in this CRM: {what} needs a stage_history table.")


def ci_text(frame: pd.DataFrame, col: str, kind: str = "pct") -> pd.Series:
    """``value [lo–hi]`` text of ``col`` and its ``_lo``/``_hi`` columns."""
    return frame.apply(
        lambda r: (
            h.fmt(r[col], kind)
            if pd.isna(r[col])
            else f"{h.fmt(r[col], kind)} [{h.fmt(r[f'{col}_lo'], kind)}–"
            f"{_bound(r[f'{col}_hi'], kind)}]"
        ),
        axis=1,
    )


def _bound(value: float, kind: str) -> str:
    """An interval end; "…" where it lies beyond the data (a quantile not reached)."""
    return "…" if pd.isna(value) else h.fmt(value, kind)


def funnel_section(s: FunnelSummary, data: CRMData, funnel: Funnel) -> str:
    """Per stage: entered, open, win rate, to next, lost here (90 % intervals), naive."""
    if s.stages.empty:
        return h.section("funnel", "Funnel", [missing_history("the funnel")])
    t = s.stages
    table = pd.DataFrame({
        "stage": t["stage"], "entered": t["entered"], "still open": t["open"],
        "win rate": ci_text(t, "win_rate"), "to a later stage": ci_text(t, "to_next"),
        "lost from here": ci_text(t, "lost_here"),
        "naive win rate": t["naive_win_rate"], "naive to next": t["naive_to_next"],
    })  # fmt: skip
    curves = stage_curves(data, funnel=funnel, data_end=s.data_end)
    return h.section("funnel", "Funnel", [
        h.para(f"From each deal's first entry into a stage: the share won, gone on to a "
               f"later stage (skips count) or lost from the stage, as cumulative "
               f"incidence (Aalen–Johansen, competing risks) by the data's end "
               f"({s.data_end:%Y-%m-%d}); deals still open are censored, never counted as "
               "lost. [90% interval]. " + WHY_NAIVE, "note"),
        h.image(charts.png(charts.funnel_chart(t)), "deals entering each stage"),
        h.table(table, {"entered": "count", "still open": "count", "win rate": "ci",
                        "to a later stage": "ci", "lost from here": "ci",
                        "naive win rate": "pct", "naive to next": "pct"}),
        "<h3>Over days since entering the stage</h3>",
        h.wide_image(charts.png(charts.incidence_chart(curves, list(t["stage"]))),
                     "cumulative incidence per stage"),
    ])  # fmt: skip


def time_section(times: pd.DataFrame, data: CRMData) -> str:
    title = "Time in stage"
    if data.stage_history is None or data.stage_history.empty:
        return h.section("time", title, [missing_history("time in stage")])
    table = times.assign(median=ci_text(times, "median_days", "days")).rename(
        columns={"finished": "finished stays", "running": "still running",
                 "naive_median_days": "naive median (finished only)"})  # fmt: skip
    table = table[["stage", "finished stays", "still running", "median", "p75_days",
                   "p90_days", "naive median (finished only)"]]  # fmt: skip
    parts = [h.para(
        "Days from entering a stage to the next move or the close. Kaplan–Meier over every "
        "stay: stays still running at the data's end count as 'at least this long' "
        "(censored), so long stays are not dropped. Median [90% interval]; – or … = not "
        "reached within the data. The naive median uses finished stays only and runs short.",
        "note")]  # fmt: skip
    if times["median_days"].notna().any():
        parts.append(h.image(charts.png(charts.stay_chart(times)), "days in stage"))
    parts.append(h.table(table, {"finished stays": "count", "still running": "count",
                                 "median": "ci", "p75_days": "days", "p90_days": "days",
                                 "naive median (finished only)": "days"}))  # fmt: skip
    return h.section("time", title, parts)


def bottleneck_section(s: FunnelSummary) -> str:
    title = "Bottlenecks"
    table = bottlenecks(s.stages)
    if table.empty:
        return h.section("bottlenecks", title, [missing_history("bottlenecks")])
    loss, slow = s.biggest_loss, s.slowest
    said = []
    if loss is not None:
        said.append(f"Most deals are lost from {loss['stage']}: {h.fmt(loss['lost_here'], 'pct')}"
                    f" of the deals entering it are lost before going on.")  # fmt: skip
    if slow is not None:
        said.append(f"Deals stall longest in {slow['stage']} (median "
                    f"{h.fmt(slow['median_days'], 'days')} days).")  # fmt: skip
    shown = table.assign(lost_from_here=ci_text(table, "lost_here"))
    shown = shown[["stage", "entered", "open", "lost_from_here", "median_days", "rank_loss",
                   "rank_time", "naive_drop_off"]]  # fmt: skip
    return h.section("bottlenecks", title, [
        h.para("Rule: stages ranked by the cumulative incidence of a loss before going past "
               "the stage (open deals censored), largest first; ties by Kaplan–Meier median "
               "days. rank_time ranks by median days alone. The naive drop-off (1 - reached "
               "next / reached) counts deals still in the stage as dropped.", "note"),
        h.para(" ".join(said)),
        h.table(shown, {"entered": "count", "open": "count", "lost_from_here": "ci",
                        "median_days": "days", "rank_loss": "count", "rank_time": "count",
                        "naive_drop_off": "pct"}),
    ])  # fmt: skip


def cohort_section(s: FunnelSummary, data: CRMData) -> str:
    title = "Cohorts"
    freq, table = s.cohort_freq, s.cohorts
    if table.empty:
        return h.section("cohorts", title, [h.missing("No deals before the as-of date.")])
    flagged = table.loc[table["below_previous"].eq(True), "cohort"].tolist()
    verdict = (f"Below the previous cohorts: {', '.join(flagged)}." if flagged else
               "No cohort is significantly below the previous ones.")  # fmt: skip
    curves = co.cohort_curves(data, freq=freq, data_end=s.data_end)
    panels = table.tail(COHORT_PANELS)
    shown = pd.DataFrame({
        "cohort": table["cohort"], "deals": table["deals"], "still open": table["open"],
        "won [90%]": ci_text(table, "win_rate"), "after days": table["horizon_days"],
        "naive": table["naive_win_rate"], "day compared": table["compare_days"],
        "won by that day": table["win_by_compare_day"],
        "previous": table["previous_by_compare_day"],
        "below": table["below_previous"].map({True: "yes ▼", False: "no"}),
    })  # fmt: skip
    return h.section("cohorts", title, [
        h.para(f"Deals by {freq} of creation. Win rate = cumulative incidence of a win since "
               "creation with open deals censored, so a young cohort is judged on the days "
               f"it has lived. Rule: a cohort is flagged when, at day min({co.MAX_COMPARE_DAYS},"
               " days from its middle to the data's end), its win incidence is below that of "
               f"the {co.PREVIOUS} cohorts before it (pooled) by more than 1.645 standard "
               f"errors (one-sided, 90% level); cohorts younger than {co.MIN_COMPARE_DAYS} days "
               "there are not judged (blank). 'won by that day' vs 'previous': the two "
               "incidences compared.", "note"),
        h.para(verdict),
        h.wide_image(charts.png(charts.cohort_chart(curves, panels)), "cohort win curves"),
        h.table(shown, {"deals": "count", "still open": "count", "won [90%]": "ci",
                        "after days": "days", "naive": "pct", "day compared": "days",
                        "won by that day": "pct", "previous": "pct"}),
    ])  # fmt: skip
