"""The funnel report: one self-contained HTML page from a CRM and the pipeline's outputs.

Pure: frames, dicts and bytes in, one HTML string out (``pipelines.reporting`` reads the
files and writes the page). Every optional input may be missing; its section then says
which command produces it. Sections: overview, funnel, transition matrix, time in stage,
bottlenecks, conversion by source / industry / owner, model quality, forecast, priorities.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath

import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from features.snapshots import latest_timestamp
from serving import report_charts as charts
from serving import report_html as h
from serving.changes import change_counts
from serving.funnel import funnel_summary
from serving.report_funnel import (
    bottleneck_section,
    ci_text,
    cohort_section,
    funnel_section,
    missing_history,
    time_section,
)
from serving.report_headline import revenue_headline
from serving.report_tables import (
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
    ("cohorts", "Cohorts"),
    ("conversion", "Conversion by source, industry and owner"),
    ("model", "Model quality"),
    ("forecast", "Revenue forecast"),
    ("priorities", "Top of the prioritised list"),
    ("changes", "Changes since the last export"),
)
#: Columns the forecast backtest must have.
FORECAST_BACKTEST = ("period", "method", "p10", "p50", "p90", "actual")
#: Columns of the forecast table shown, when present (else every column).
FORECAST_COLUMNS = ("period", "kind", "already_won", "open_expected", "new_expected",
                    "forecast", "p10", "p50", "p90")  # fmt: skip
TOP_OWNERS = 15
TOP_LEADS = 20
TOP_CHANGES = 40
MODELS = {
    "p_win": "served model",
    "p_win_lightgbm": "LightGBM alone (before the stage-table blend)",
    "p_win_fixed_horizon": "previous model: fixed 180-day horizon",
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
    ``leads``: the latest prioritised-leads export; ``sources``: name -> file shown;
    ``previous_forecast``: the forecast before ``forecast`` (the headline's change line);
    ``changes``: :func:`serving.changes.export_changes` of ``leads`` against the export
    before it; ``currency``: of the amounts (labels only; None: "deal currency").
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
    previous_forecast: pd.DataFrame | None = None
    changes: pd.DataFrame | None = None
    currency: str | None = None


def build_report(inputs: ReportInputs) -> str:
    """The whole report as one HTML document."""
    data = known_at(inputs.data, inputs.as_of)
    funnel = inputs.funnel
    # open deals are censored at the as-of date, or at the data's last event when earlier
    end = min(inputs.as_of, latest_timestamp(inputs.data))
    summary = funnel_summary(data, funnel=funnel, data_end=end)
    times = stay_quantiles(data, funnel=funnel, data_end=end)
    body = [
        _header(inputs, summary),
        funnel_section(summary, data, funnel),
        _transitions(data, funnel),
        time_section(times, data),
        bottleneck_section(summary),
        cohort_section(summary, data),
        _conversion(data, end),
        _model(inputs),
        _forecast(inputs),
        _priorities(inputs.leads, inputs.as_of),
        _changes(inputs.changes),
    ]
    return h.page(f"dealcast funnel report {inputs.as_of.date()}", body)


def _header(inputs: ReportInputs, s) -> str:
    closed = s.n_won + s.n_lost
    nav = " ".join(f'<a href="#{a}">{h.esc(t)}</a>' for a, t in SECTIONS)
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
                (
                    "win rate, open deals censored [90%]",
                    f"{h.fmt(s.win_rate, 'pct')} [{h.fmt(s.win_rate_lo, 'pct')}–"
                    f"{h.fmt(s.win_rate_hi, 'pct')}]",
                ),
                (
                    "naive win rate (closed deals)",
                    h.fmt(s.naive_win_rate, "pct") + f" of {closed:,}",
                ),
            ]
        ),  # fmt: skip
        _headline(inputs),
        f"<nav>{nav}</nav>",
    ]
    if inputs.sources:
        # file names, not the machine's paths: the page is mailed to people without them
        used = "; ".join(f"{k}: {PurePath(v).name}" for k, v in inputs.sources.items())
        lines.append(h.para(f"Inputs: {used}", "note"))
    return "\n".join([*lines, "</header>"])


def _headline(inputs: ReportInputs) -> str:
    """This quarter's revenue (:mod:`serving.report_headline`), with the backtest's
    P10-P90 coverage of dealcast's own past forecasts when there is one."""
    coverage = None
    bt = inputs.forecast_backtest
    if bt is not None and not bt.empty and set(FORECAST_BACKTEST) <= set(bt.columns):
        scores = forecast_scores(bt).set_index("method")
        if "dealcast" in scores.index:
            coverage = float(scores.loc["dealcast", "coverage_p10_p90"])
    return revenue_headline(
        inputs.forecast,
        previous=inputs.previous_forecast,
        backtest_coverage=coverage,
        currency=inputs.currency,
    )


def _transitions(data: CRMData, funnel: Funnel) -> str:
    title = "Stage transitions"
    if data.stage_history is None or data.stage_history.empty:
        return h.section("transitions", title, [missing_history("the transition matrix")])
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


def _conversion(data: CRMData, data_end: pd.Timestamp) -> str:
    spec = {"deals": "count", "open": "count", "won": "count", "lost": "count",
            "win rate [90%]": "ci", "naive": "pct"}  # fmt: skip
    blocks = []
    for column, label, deals, top in (
        ("source", "By lead source", data.deals, None),
        ("industry", "By industry (accounts table)", with_industry(data), None),
        ("owner_id", f"By owner (top {TOP_OWNERS} by deals)", data.deals, TOP_OWNERS),
    ):
        if deals is None or column not in deals.columns:
            shown = h.para(f"no {column} in this CRM", "note")
        else:
            table = conversion_by(deals, column, top=top, data_end=data_end)
            table.insert(5, "win rate [90%]", ci_text(table, "win_rate"))
            table = table.rename(columns={"naive_win_rate": "naive"})
            shown = h.table(table.drop(columns=["win_rate", "win_rate_lo", "win_rate_hi"]), spec)
        blocks.append(f"<div><h3>{h.esc(label)}</h3>{shown}</div>")
    return h.section("conversion", "Conversion by source, industry and owner", [
        h.para("Win rate = cumulative incidence of a win since creation by the data's end, "
               "open deals censored; naive win rate = won / (won + lost) among closed deals "
               "only, which over-represents the deals that close fast.", "note"),
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
        *_model_notes(m),
    ]  # fmt: skip
    pred = inputs.predictions
    if pred is not None and "won" in pred and pred["won"].notna().any():
        figs = charts.quality_charts(pred, n_bins=inputs.ece_bins)
        parts.append('<div class="grid">' + "".join(
            h.image(charts.png(f), name) for name, f in figs.items()) + "</div>")  # fmt: skip
    else:
        parts.append(h.para("no test predictions with known outcomes: no charts", "note"))
    return h.section("model", title, parts)


def _model_notes(m: dict) -> list[str]:
    """The guard's decision, features left out for drift, and drift at scoring."""
    notes = []
    guard = m.get("close_guard") or {}
    if guard.get("decision"):
        notes.append(h.para(f"Close model: {guard['decision']}.", "note"))
    for d in m.get("drift") or []:
        notes.append(h.para(f"Left out, drifted: {d['feature']} ({d['reason']}).", "missing"))
    refit = (m.get("test_window") or {}).get("rows_scored_by_the_drift_refit", 0)
    if refit:
        notes.append(h.para(
            f"{refit:,} test snapshots were scored by the model refitted without the "
            "features that had drifted at their date.", "missing"))  # fmt: skip
    fallback = (m.get("test_window") or {}).get("rows_scored_by_the_drift_fallback", 0)
    if fallback:
        notes.append(h.para(
            f"{fallback:,} test snapshots were scored by the stage table because features "
            "the model uses had drifted at their date.", "missing"))  # fmt: skip
    return notes


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
        parts += [f"<h3>Forecast of won revenue ({h.esc(inputs.currency or 'deal currency')})</h3>",
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
                  h.table(_readable_scores(forecast_scores(bt)),
                          {"periods": "count", "inside P10–P90": "pct", "WAPE": "pct",
                           "bias": "pct"})]  # fmt: skip
    return h.section("forecast", title, parts)


def _readable_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """The forecast scores with the names a revenue leader reads (no code names)."""
    names = {m: label for m, (label, _) in charts.METHODS.items()}
    return scores.assign(method=scores["method"].map(lambda m: names.get(m, m))).rename(
        columns={"coverage_p10_p90": "inside P10–P90", "wape": "WAPE"}
    )


def _money_columns(frame: pd.DataFrame) -> dict[str, str]:
    return {c: "money" for c in frame.columns if pd.api.types.is_float_dtype(frame[c])}


def _priorities(leads: pd.DataFrame | None, as_of: pd.Timestamp) -> str:
    """The latest export dated on or before ``as_of`` (a back-dated report never shows a
    later one, so "none" means none of that date or before)."""
    title = "Top of the prioritised list"
    if leads is None:
        day = as_of.date().isoformat()
        return h.section("priorities", title, [h.missing(
            f"No prioritised-leads export dated {day} or earlier: run `dealcast score "
            f"--as-of {day}` to rank the deals open then.")])  # fmt: skip
    names = [c for c in ("deal_name", "account_name", "owner_name")
             if c in leads and leads[c].notna().any()]  # fmt: skip
    owner = [] if "owner_name" in names else ["owner_id"]
    cols = [c for c in ("rank", "deal_id", *names, *owner, "stage", "amount", "p_win",
                        "expected_value", "reasons_up", "reasons_down") if c in leads]  # fmt: skip
    as_of = leads["as_of"].iloc[0] if "as_of" in leads and len(leads) else None
    note = f"{len(leads):,} open deals ranked" + (f" as of {as_of}" if as_of is not None else "")
    return h.section("priorities", title, [
        h.para(note + "; p_win = P(won within the model's horizon), expected value = "
               "p_win × amount.", "note"),
        h.table(leads[cols].head(TOP_LEADS),
                {"rank": "count", "amount": "money", "p_win": "prob", "expected_value": "money"}),
    ])  # fmt: skip


def _changes(changes: pd.DataFrame | None) -> str:
    title = "Changes since the last export"
    if changes is None:
        return h.section("changes", title, [h.missing(
            "No earlier export to compare with: the next scoring day lists new deals, "
            "stage moves, p_win moves and deals closed since this one.")])  # fmt: skip
    counts = change_counts(changes)
    since = changes["previous_as_of"].dropna()
    when = f" (previous export: {pd.Timestamp(since.iloc[0]).date()})" if len(since) else ""
    columns = ("change", "deal_id", "deal_name", "owner_id", "stage_before", "stage_now",
               "p_win_before", "p_win_now", "amount")  # fmt: skip
    shown = [c for c in columns if c in changes]
    return h.section("changes", title, [
        h.kpis([(kind, f"{n:,}") for kind, n in counts.items()]),
        h.para(f"Each change is a row; p_win moves are listed from "
               f"{100 * changes.attrs.get('threshold', float('nan')):.0f} points "
               f"(score.change_threshold){when}.", "note"),
        h.table(changes[shown].head(TOP_CHANGES),
                {"p_win_before": "prob", "p_win_now": "prob", "amount": "money"}),
    ])  # fmt: skip
