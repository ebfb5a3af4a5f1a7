"""The funnel summary: by hand on a four-deal CRM, and against the truth on a synthetic CRM
cut where many deals are open (censoring-aware numbers match the uncut history, naive ones
do not)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm.data import CRMData
from crm.schemas import Funnel
from crm.synthetic import generate_crm
from serving.cohorts import cohort_curves, cohort_table
from serving.funnel import format_summary, funnel_summary, stage_curves, stage_stays
from serving.funnel_events import deal_outcomes, stage_entries
from serving.report_tables import known_at

FUNNEL = Funnel(stages=("lead", "qualified", "proposal"), won_label="won", lost_label="lost")
END = pd.Timestamp("2024-03-01", tz="UTC")


def ts(day: str) -> pd.Timestamp:
    return pd.Timestamp(f"2024-{day}", tz="UTC")


@pytest.fixture
def crm() -> CRMData:
    deals = pd.DataFrame(
        {
            "deal_id": ["d1", "d2", "d3", "d4"],
            "created_at": [ts("01-01")] * 4,
            "source": pd.Categorical(["referral", "outbound", "referral", "outbound"]),
            "closed_at": [ts("02-01"), ts("01-10"), pd.NaT, ts("01-02")],
            "outcome": ["won", "lost", None, "lost"],
        }
    )
    rows = [
        ("d1", "lead", "01-01"),
        ("d1", "qualified", "01-11"),
        ("d1", "proposal", "01-21"),
        ("d1", "won", "02-01"),
        ("d2", "lead", "01-01"),
        ("d2", "qualified", "01-05"),
        ("d2", "lost", "01-10"),
        ("d3", "lead", "01-01"),
        ("d3", "proposal", "01-03"),  # skipped qualified, still open
        ("d4", "lead", "01-01"),
        ("d4", "lost", "01-02"),
    ]
    history = pd.DataFrame(rows, columns=["deal_id", "stage", "entered_at"])
    history["entered_at"] = history["entered_at"].map(ts)
    return CRMData(deals=deals, stage_history=history)


def test_counts_and_win_rates_by_hand(crm):
    s = funnel_summary(crm, funnel=FUNNEL, data_end=END)
    assert (s.n_deals, s.n_open, s.n_won, s.n_lost) == (4, 1, 1, 2)
    # days to close: d4 lost 1, d2 lost 9, d1 won 31, d3 open for 60 (censored):
    # S = 3/4 after day 1, 1/2 after day 9; the win at day 31 adds 1/2 * 1/2
    assert s.win_rate == pytest.approx(1 / 4) and s.horizon_days == 60
    assert s.naive_win_rate == pytest.approx(1 / 3)
    assert s.win_rate_lo <= s.win_rate <= s.win_rate_hi


def test_stage_table_by_hand(crm):
    t = funnel_summary(crm, funnel=FUNNEL, data_end=END).stages.set_index("stage")
    assert t["entered"].tolist() == [4, 2, 2] and t["open"].tolist() == [1, 0, 1]
    # lead -> next: d4 lost at day 1, d3 on at 2, d2 at 4, d1 at 10: nobody censored
    assert t.loc["lead", ["to_next", "lost_here"]].tolist() == pytest.approx([3 / 4, 1 / 4])
    # qualified: d2 lost before going on, d1 on to proposal
    assert t.loc["qualified", ["to_next", "lost_here"]].tolist() == pytest.approx([0.5, 0.5])
    # proposal: d1 won after 11 days, d3 still there after 58: 1/2 won, 1/2 still open
    assert t.loc["proposal", ["win_rate", "to_next", "lost_here"]].tolist() == pytest.approx(
        [0.5, 0.5, 0.0]
    )
    assert t.loc["proposal", "naive_win_rate"] == 1.0  # closed deals only: d1
    # time in stage, Kaplan-Meier: lead stays 1 2 4 10 -> S(2) = 1/2; proposal 11 and a
    # running 58 -> S(11) = 1/2; the naive median averages finished stays only
    assert t["median_days"].tolist() == pytest.approx([2.0, 5.0, 11.0])
    assert t["naive_median_days"].tolist() == pytest.approx([3.0, 7.5, 11.0])
    assert t["reached"].tolist() == [4, 3, 2]  # d3 skipped qualified but passed it
    assert t["naive_to_next"].tolist() == pytest.approx([3 / 4, 2 / 3, 1 / 2])


def test_stage_entries_censor_open_deals(crm):
    e = stage_entries(crm, funnel=FUNNEL, data_end=END).set_index(["deal_id", "stage"])
    assert e.loc[("d3", "proposal"), ["next_days", "next_cause", "close_cause"]].tolist() == [
        58.0,
        0,
        0,
    ]
    assert e.loc[("d3", "lead"), ["next_days", "next_cause"]].tolist() == [2.0, 1]  # a skip


def test_the_running_stay_is_censored_not_dropped(crm):
    stays = stage_stays(crm, data_end=END)
    running = stays[~stays["finished"]]
    assert running[["deal_id", "stage", "days"]].values.tolist() == [["d3", "proposal", 58.0]]
    assert stage_stays(crm)["days"].isna().sum() == 1  # without data_end: length unknown


def test_sources_and_drop_off(crm):
    s = funnel_summary(crm, funnel=FUNNEL, data_end=END)
    t = s.sources.set_index("source")
    assert t.loc["referral", ["deals", "open", "won", "lost"]].tolist() == [2, 1, 1, 0]
    assert t.loc["outbound", ["win_rate", "naive_win_rate"]].tolist() == [0.0, 0.0]
    assert s.biggest_loss["stage"] == "qualified" and s.slowest["stage"] == "proposal"
    text = format_summary(s)
    assert "most lost from: qualified" in text and "deals stall in: proposal" in text
    assert "naive" in text and "25.0%" in text


def test_curves_start_at_zero_and_end_at_the_table_value(crm):
    s = funnel_summary(crm, funnel=FUNNEL, data_end=END)
    c = stage_curves(crm, funnel=FUNNEL, data_end=END)
    lead = c[(c["stage"] == "lead") & (c["measure"] == "to_next")]
    assert lead["value"].iloc[0] == 0 and lead["value"].iloc[-1] == pytest.approx(0.75)
    assert set(c["measure"]) == {"won", "lost", "to_next", "lost_here"}
    assert s.stages.loc[0, "to_next"] == pytest.approx(lead["value"].iloc[-1])


def test_without_stage_history_or_source():
    deals = pd.DataFrame(
        {"deal_id": ["a"], "created_at": [ts("01-01")], "closed_at": [pd.NaT], "outcome": [None]}
    )
    s = funnel_summary(CRMData(deals=deals), funnel=FUNNEL, data_end=None)
    text = format_summary(s)
    assert "(no stage history)" in text and "(no source column)" in text
    assert s.win_rate == 0.0 and s.biggest_loss is None


# --- the truth test: a synthetic CRM cut where many deals are open ---------------------

SYNTH = Funnel(
    stages=("lead", "qualified", "meeting", "proposal", "negotiation"),
    won_label="won",
    lost_label="lost",
)
FULL_END = pd.Timestamp("2025-06-30", tz="UTC")
CUT = pd.Timestamp("2024-06-25", tz="UTC")  # six months in, a growing pipeline, 22 % open


@pytest.fixture(scope="module")
def synthetic():
    """(the full history, its summary as known at CUT, the truth for the same deals)."""
    full = generate_crm(
        n_deals=8000, seed=7, start=pd.Timestamp("2024-01-01"), as_of=FULL_END,
        funnel=SYNTH, messy=False,
    )  # fmt: skip
    at_cut = known_at(full.data, CUT)
    return full.data, at_cut, funnel_summary(at_cut, funnel=SYNTH, data_end=CUT)


def truth_by_stage(full: CRMData, summary) -> pd.DataFrame:
    """From the uncut history, for the stage entries known at CUT: the share won / gone on
    within the horizon the cut data covers, and the median of their (finished) stays."""
    entries = stage_entries(full, funnel=SYNTH, data_end=FULL_END)
    entries = entries[entries["entered_at"] <= CUT]
    stays = stage_stays(full, data_end=FULL_END)
    stays = stays[stays["entered_at"] <= CUT]
    rows = []
    for stage, e in entries.groupby("stage"):
        h = (CUT - e["entered_at"].min()) / pd.Timedelta(days=1)
        s = stays[stays["stage"] == stage]
        assert s["finished"].mean() > 0.99  # the full history has seen (nearly) all end
        rows.append({
            "stage": stage,
            "win_rate": ((e["close_cause"] == 1) & (e["close_days"] <= h)).mean(),
            "to_next": ((e["next_cause"] == 1) & (e["next_days"] <= h)).mean(),
            "median_days": s["days"].median(),
        })  # fmt: skip
    return pd.DataFrame(rows).set_index("stage").loc[list(SYNTH.stages)]


def inside(value: float, lo: float, hi: float) -> bool:
    return bool(lo <= value <= hi)


def test_censoring_aware_numbers_match_the_uncut_history(synthetic):
    full, at_cut, s = synthetic
    assert s.n_open / s.n_deals > 0.2  # the cut is where many deals are open
    o = deal_outcomes(full, data_end=FULL_END)
    o = o[o["deal_id"].isin(at_cut.deals["deal_id"])]
    truth = ((o["cause"] == 1) & (o["days"] <= s.horizon_days)).mean()
    assert inside(truth, s.win_rate_lo, s.win_rate_hi), (s.win_rate, truth)
    t, table = truth_by_stage(full, s), s.stages.set_index("stage")
    for stage in SYNTH.stages:
        r = table.loc[stage]
        for col in ("win_rate", "to_next", "median_days"):
            lo, hi = r[f"{col}_lo"], r[f"{col}_hi"]
            assert inside(t.loc[stage, col], lo, hi), (stage, col, r[col], t.loc[stage, col])


def test_naive_numbers_do_not(synthetic):
    full, _, s = synthetic
    t, table = truth_by_stage(full, s), s.stages.set_index("stage")
    naive_out = {"median_days": 0, "win_rate": 0, "to_next": 0}
    for stage in SYNTH.stages:
        r = table.loc[stage]
        # finished stays only: long stays are dropped, every stage looks faster than it is
        assert r["naive_median_days"] < t.loc[stage, "median_days"]
        for col in naive_out:
            naive_out[col] += not inside(r[f"naive_{col}"], r[f"{col}_lo"], r[f"{col}_hi"])
    # the naive numbers miss the truth's interval for most stages, on each measure
    assert naive_out["median_days"] >= 4 and naive_out["to_next"] >= 3
    assert naive_out["win_rate"] >= 2
    err = lambda col: np.abs(table[col] - t[col]).mean()  # noqa: E731
    naive_err = lambda col: np.abs(table[f"naive_{col}"] - t[col]).mean()  # noqa: E731
    for col in naive_out:
        assert naive_err(col) > 2 * err(col), (col, naive_err(col), err(col))


def test_cohorts_flag_a_cohort_below_the_previous_ones(synthetic):
    _, at_cut, _ = synthetic
    table = cohort_table(at_cut, freq="month", data_end=CUT)
    assert table["cohort"].tolist()[:2] == ["Jan 2024", "Feb 2024"]
    assert table["below_previous"].iloc[0] is None  # nothing before it to compare with
    young = table.iloc[-1]  # June 2024: days 0-24 only, too young to judge
    assert young["below_previous"] is None and young["compare_days"] < 21
    # a cohort is flagged exactly when its z is below -1.645
    judged = table[table["below_previous"].notna()]
    assert (judged["below_previous"] == (judged["z"] < -1.6449)).all()
    # make the latest judged cohort lose every deal it closed: it must be flagged
    month = judged.iloc[-1]["start"]
    deals = at_cut.deals.copy()
    mine = (deals["created_at"] >= month) & (deals["created_at"] < month + pd.DateOffset(months=1))
    deals.loc[mine & deals["outcome"].notna(), "outcome"] = "lost"
    worse = cohort_table(at_cut.with_table("deals", deals), freq="month", data_end=CUT)
    assert worse.set_index("start").loc[month, "below_previous"] is True
    curves = cohort_curves(at_cut, freq="month", data_end=CUT)
    assert set(curves["cohort"]) == set(table["cohort"])


def test_the_report_shows_honest_and_naive_side_by_side(crm):
    from serving.report import ReportInputs, build_report

    page = build_report(ReportInputs(data=crm, funnel=FUNNEL, as_of=END))
    assert "win rate, open deals censored [90%]" in page and "naive win rate" in page
    assert "Naive = among closed deals or finished stays only" in page
    assert "Most deals are lost from qualified" in page
    assert "Deals stall longest in proposal" in page
    assert '<section id="cohorts">' in page and "Deals by month of creation" in page
