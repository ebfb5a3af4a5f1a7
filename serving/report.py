"""The funnel report: one self-contained HTML page from a CRM and the pipeline's outputs.

Pure: frames, dicts and bytes in, one HTML string out (``pipelines.reporting`` reads the
files and writes the page). Every optional input may be missing; its section then says
which command produces it. Sections: overview, funnel, transition matrix, time in stage,
bottlenecks, conversion by source / industry / owner, model quality, forecast, priorities.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from serving import report_charts as charts
from serving import report_html as h
from serving.funnel import funnel_summary
from serving.report_tables import (
    bottlenecks,
    conversion_by,
    forecast_scores,
    known_at,
    move_kind,
    stay_quantiles,
    transition_matrix,
    with_industry,
)

#: (anchor, title) of every section, in page order.
SECTIONS = (
    ("funnel", "Funnel"),
    ("transitions", "Stage transitions"),
    ("time", "Time in stage"),
    ("bottlenecks", "Bottlenecks"),
    ("conversion", "Conversion by source, industry and owner"),
    ("model", "Model quality"),
    ("forecast", "Revenue forecast"),
    ("priorities", "Top of the prioritised list"),
)
#: Columns the forecast backtest must have.
FORECAST_BACKTEST = ("period", "method", "p10", "p50", "p90", "actual")
#: Columns of the forecast table shown, when present (else every column).
FORECAST_COLUMNS = ("period", "kind", "already_won", "open_expected", "new_expected",
                    "forecast", "p10", "p50", "p90")  # fmt: skip
TOP_OWNERS = 15
TOP_LEADS = 20
MODELS = {
    "p_win": "served model",
    "p_win_lightgbm": "LightGBM alone (before the stage-rate blend)",
    "p_win_logreg": "baseline: logistic regression",
    "p_win_stage_rate": "baseline: stage win rate",
    "p_win_base_rate": "baseline: overall rate",
}


@dataclass(frozen=True)
class ReportInputs:
    """What the report draws; everything after ``as_of`` is optional (None = not there).

    ``metrics``/``predictions``: the backtest's ``metrics.json`` and test predictions;
    ``forecast_backtest``: columns period, method, forecast, p10, p50, p90, actual;
    ``forecast``: the latest forecast table as written; ``fan_chart``: its PNG bytes;
    ``leads``: the latest prioritised-leads export; ``sources``: name -> file shown.
    """

    data: CRMData
    funnel: Funnel
    as_of: pd.Timestamp
    metrics: dict | None = None
    predictions: pd.DataFrame | None = None
    forecast_backtest: pd.DataFrame | None = None
    forecast: pd.DataFrame | None = None
    fan_chart: bytes | None = None
    leads: pd.DataFrame | None = None
    sources: dict[str, str] | None = None
    ece_bins: int = 10


def build_report(inputs: ReportInputs) -> str:
    """The whole report as one HTML document."""
    data = known_at(inputs.data, inputs.as_of)
    funnel = inputs.funnel
    summary = funnel_summary(data, funnel=funnel)
    times = stay_quantiles(data, funnel=funnel)
    body = [
        _header(inputs, summary),
        _funnel(summary),
        _transitions(data, funnel),
        _time(times, data),
        _bottlenecks(summary.stages, times),
        _conversion(data),
        _model(inputs),
        _forecast(inputs),
        _priorities(inputs.leads),
    ]
    return h.page(f"dealcast funnel report {inputs.as_of.date()}", body)


def _header(inputs: ReportInputs, s) -> str:
    closed = s.n_won + s.n_lost
    nav = "".join(f'<a href="#{a}">{h.esc(t)}</a>' for a, t in SECTIONS)
    tables = ", ".join(inputs.data.present())
    lines = [
        "<header>",
        f"<h1>Funnel report, data as of {h.esc(inputs.as_of.strftime('%Y-%m-%d %H:%M UTC'))}</h1>",
        h.para(
            f"CRM tables: {tables}. Deals created after the as-of date are left out; "
            "deals closed after it count as open.",
            "note",
        ),  # fmt: skip
        h.kpis(
            [
                ("deals", f"{s.n_deals:,}"),
                ("open", f"{s.n_open:,}"),
                ("won", f"{s.n_won:,}"),
                ("lost", f"{s.n_lost:,}"),
                ("win rate (closed deals)", h.fmt(s.win_rate, "pct") + f" of {closed:,}"),
            ]
        ),  # fmt: skip
        f"<nav>{nav}</nav>",
    ]
    if inputs.sources:
        used = "; ".join(f"{k}: {v}" for k, v in inputs.sources.items())
        lines.append(h.para(f"Inputs: {used}", "note"))
    return "\n".join([*lines, "</header>"])


def _no_history(what: str) -> str:
    return h.missing(f"No stage history in this CRM: {what} needs a stage_history table.")


def _funnel(s) -> str:
    if s.stages.empty:
        return h.section("funnel", "Funnel", [_no_history("the funnel")])
    table = s.stages.rename(columns={"conversion_to_next": "to next stage",
                                     "win_rate": "win rate from here"})  # fmt: skip
    return h.section("funnel", "Funnel", [
        h.para("A deal reached a stage when it entered it or any later one (skips pass "
               "through). 'To next stage' = reached(next) / reached(this), with won after "
               "the last stage; 'win rate from here' counts closed deals only.", "note"),
        h.image(charts.png(charts.funnel_chart(s.stages)), "deals reaching each stage"),
        h.table(table.drop(columns="median_days"),
                {"entered": "count", "reached": "count", "to next stage": "pct",
                 "win rate from here": "pct"}),
    ])  # fmt: skip


def _transitions(data: CRMData, funnel: Funnel) -> str:
    title = "Stage transitions"
    if data.stage_history is None or data.stage_history.empty:
        return h.section("transitions", title, [_no_history("the transition matrix")])
    counts = transition_matrix(data, funnel=funnel)
    kinds = pd.DataFrame(
        [[move_kind(funnel, r, c) for c in counts.columns] for r in counts.index],
        index=counts.index, columns=counts.columns,
    )  # fmt: skip
    return h.section("transitions", title, [
        h.para("Every stage entry (row) and the next state the same deal entered (column): "
               "count and share of the row. '(still there)' = no later move by the as-of "
               "date.", "note"),
        h.matrix_table(counts, kinds),
    ])  # fmt: skip


def _time(times: pd.DataFrame, data: CRMData) -> str:
    title = "Time in stage"
    if data.stage_history is None or data.stage_history.empty:
        return h.section("time", title, [_no_history("time in stage")])
    parts = [
        h.para(
            "Days from entering a stage to the next move or the close; stays still "
            "running at the as-of date are counted but not timed (censored).",
            "note",
        )
    ]
    if times["finished"].sum():
        parts.append(h.image(charts.png(charts.stay_chart(times)), "days in stage"))
    parts.append(
        h.table(
            times.rename(columns={"finished": "finished stays", "running": "still running"}),
            {
                "finished stays": "count",
                "still running": "count",
                "median_days": "days",
                "p75_days": "days",
                "p90_days": "days",
            },
        )
    )
    return h.section("time", title, parts)  # fmt: skip


def _bottlenecks(stages: pd.DataFrame, times: pd.DataFrame) -> str:
    title = "Bottlenecks"
    table = bottlenecks(stages, times)
    if table.empty:
        return h.section(
            "bottlenecks",
            title,
            [h.missing("No stage history in this CRM: bottlenecks need a stage_history table.")],
        )
    worst = table.iloc[0]
    slow = table.sort_values("median_days", ascending=False, kind="stable").iloc[0]
    lines = [
        h.para("Rule: stages are ranked by drop-off, the share of deals that reached the "
               "stage but not the next one (won after the last stage), largest first; ties "
               "by median days in stage. Deals still open at the stage count as not (yet) "
               "further. rank_time ranks the stages by median days alone.", "note"),
        h.para(f"Biggest drop-off: {worst['stage']} ({h.fmt(worst['drop_off'], 'pct')} of "
               f"{int(worst['reached']):,} deals go no further). Slowest: {slow['stage']} "
               f"(median {h.fmt(slow['median_days'], 'days')} days)."),
        h.table(table, {"reached": "count", "not_further": "count", "drop_off": "pct",
                        "median_days": "days", "rank_drop": "count", "rank_time": "count"}),
    ]  # fmt: skip
    return h.section("bottlenecks", title, lines)


def _conversion(data: CRMData) -> str:
    spec = {"deals": "count", "open": "count", "won": "count", "lost": "count",
            "win_rate": "pct"}  # fmt: skip
    blocks = []
    for column, label, deals, top in (
        ("source", "By lead source", data.deals, None),
        ("industry", "By industry (accounts table)", with_industry(data), None),
        ("owner_id", f"By owner (top {TOP_OWNERS} by deals)", data.deals, TOP_OWNERS),
    ):
        if deals is None or column not in deals.columns:
            shown = h.para(f"no {column} in this CRM", "note")
        else:
            shown = h.table(conversion_by(deals, column, top=top), spec)
        blocks.append(f"<div><h3>{h.esc(label)}</h3>{shown}</div>")
    return h.section("conversion", "Conversion by source, industry and owner", [
        h.para("Win rate = won / (won + lost): open deals have no outcome yet.", "note"),
        '<div class="cols">' + "".join(blocks) + "</div>",
    ])  # fmt: skip


def _model(inputs: ReportInputs) -> str:
    title = "Model quality"
    m = inputs.metrics
    if not m:
        return h.section("model", title, [h.missing(
            "No backtest yet: run `dealcast train` (or `dealcast evaluate`) to measure the "
            "model against the baselines.")])  # fmt: skip
    w, overall = m.get("test_window", {}), m.get("close_probability", {}).get("overall", {})
    order = [k for k in MODELS if k in overall] + [k for k in overall if k not in MODELS]
    rows = [{"model": MODELS.get(k, k), **overall[k]} for k in order]
    cols = ["model", "n", "roc_auc", "pr_auc", "log_loss", "brier", "ece", "top_decile_lift"]
    parts = [
        h.para(f"Time-ordered backtest: trained up to {str(m.get('cutoff', '?'))[:10]}, "
               f"tested on {w.get('rows_with_known_outcome', 0):,} snapshots with a known "
               f"outcome from {str(w.get('first_as_of', '?'))[:10]} to "
               f"{str(w.get('last_as_of', '?'))[:10]}. p_win = P(won within "
               f"{m.get('horizon_days', '?')} days). Lower log loss, Brier and ECE are "
               "better; higher AUC and lift are better.", "note"),
        h.table(pd.DataFrame(rows, columns=cols),
                {c: "prob" for c in cols[2:]} | {"n": "count"}),
    ]  # fmt: skip
    pred = inputs.predictions
    if pred is not None and "won" in pred and pred["won"].notna().any():
        figs = charts.quality_charts(pred, n_bins=inputs.ece_bins)
        parts.append('<div class="grid">' + "".join(
            h.image(charts.png(f), name) for name, f in figs.items()) + "</div>")  # fmt: skip
    else:
        parts.append(h.para("no test predictions with known outcomes: no charts", "note"))
    return h.section("model", title, parts)


def _forecast(inputs: ReportInputs) -> str:
    title = "Revenue forecast"
    bt, fc = inputs.forecast_backtest, inputs.forecast
    if bt is None and fc is None:
        return h.section(
            "forecast", title, [h.missing("No forecast yet: run `dealcast forecast`.")]
        )
    parts = []
    if inputs.fan_chart:
        parts.append(h.image(inputs.fan_chart, "forecast fan chart"))
    if fc is not None:
        shown = [c for c in FORECAST_COLUMNS if c in fc.columns] or list(fc.columns)
        parts += ["<h3>Forecast of won revenue (deal currency)</h3>",
                  h.table(fc[shown].head(36), _money_columns(fc[shown]))]  # fmt: skip
    lacking = sorted(set(FORECAST_BACKTEST) - set(bt.columns)) if bt is not None else []
    if lacking:
        parts.append(h.missing(f"The forecast backtest lacks {', '.join(lacking)}: not shown."))
    elif bt is not None and not bt.empty:
        parts += ["<h3>Backtest on past periods</h3>",
                  h.image(charts.png(charts.forecast_backtest_chart(bt)), "forecast backtest"),
                  h.para("Coverage = share of past periods whose actual fell inside P10-P90 "
                         "(about 80% is right); WAPE = sum |forecast - actual| / sum actual; "
                         "bias = sum (forecast - actual) / sum actual.", "note"),
                  h.table(forecast_scores(bt), {"periods": "count", "coverage_p10_p90": "pct",
                                                "wape": "pct", "bias": "pct"})]  # fmt: skip
    return h.section("forecast", title, parts)


def _money_columns(frame: pd.DataFrame) -> dict[str, str]:
    return {c: "money" for c in frame.columns if pd.api.types.is_float_dtype(frame[c])}


def _priorities(leads: pd.DataFrame | None) -> str:
    title = "Top of the prioritised list"
    if leads is None:
        return h.section("priorities", title, [h.missing(
            "No prioritised-leads export yet: run `dealcast score`.")])  # fmt: skip
    cols = [c for c in ("rank", "deal_id", "owner_id", "stage", "amount", "p_win",
                        "expected_value", "reasons_up", "reasons_down") if c in leads]  # fmt: skip
    as_of = leads["as_of"].iloc[0] if "as_of" in leads and len(leads) else None
    note = f"{len(leads):,} open deals ranked" + (f" as of {as_of}" if as_of is not None else "")
    return h.section("priorities", title, [
        h.para(note + "; p_win = P(won within the model's horizon), expected value = "
               "p_win × amount.", "note"),
        h.table(leads[cols].head(TOP_LEADS),
                {"rank": "count", "amount": "money", "p_win": "prob", "expected_value": "money"}),
    ])  # fmt: skip
