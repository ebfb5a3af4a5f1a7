"""The funnel report on a five-deal CRM small enough to check by hand: the transition
matrix, time in stage, the bottleneck rule, conversion tables, and a page that is
self-contained and says what to run for every missing input."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from crm.data import CRMData
from crm.schemas import Funnel
from serving.report import SECTIONS, ReportInputs, build_report
from serving.report_tables import (
    STILL_THERE,
    bottlenecks,
    conversion_by,
    forecast_scores,
    known_at,
    move_kind,
    stay_quantiles,
    transition_matrix,
    with_industry,
)

FUNNEL = Funnel(stages=("lead", "qualified", "proposal"), won_label="won", lost_label="lost")
END = pd.Timestamp("2024-03-01", tz="UTC")


def ts(day: str) -> pd.Timestamp:
    return pd.Timestamp(f"2024-{day}", tz="UTC")


@pytest.fixture
def crm() -> CRMData:
    deals = pd.DataFrame(
        {
            "deal_id": ["d1", "d2", "d3", "d4", "d5"],
            "created_at": [ts("01-01")] * 5,
            "account_id": ["a1", "a1", "a2", "a2", "a3"],
            "owner_id": ["u1", "u1", "u2", "u2", "u1"],
            "source": pd.Categorical(["referral", "outbound", "referral", "outbound", "event"]),
            "closed_at": [ts("02-01"), ts("01-10"), pd.NaT, ts("01-02"), ts("01-20")],
            "outcome": ["won", "lost", None, "lost", "won"],
        }
    )
    rows = [
        ("d1", "lead", "01-01"),
        ("d1", "qualified", "01-11"),
        ("d1", "proposal", "01-21"),
        ("d1", "won", "02-01"),
        ("d2", "lead", "01-01"),
        ("d2", "qualified", "01-05"),
        ("d2", "lead", "01-08"),  # back a stage
        ("d2", "lost", "01-10"),
        ("d3", "lead", "01-01"),
        ("d3", "proposal", "01-03"),  # skipped qualified, still open
        ("d4", "lead", "01-01"),
        ("d4", "lost", "01-02"),
        ("d5", "qualified", "01-02"),  # won, but the history lacks its closing row
    ]
    history = pd.DataFrame(rows, columns=["deal_id", "stage", "entered_at"])
    history["entered_at"] = history["entered_at"].map(ts)
    accounts = pd.DataFrame(
        {
            "account_id": ["a1", "a2", "a3"],
            "industry": pd.Categorical(["software", "retail", "software"]),
        }
    )
    return CRMData(deals=deals, accounts=accounts, stage_history=history)


def test_transition_matrix_by_hand(crm):
    m = transition_matrix(crm, funnel=FUNNEL)
    assert list(m.index) == ["lead", "qualified", "proposal"]  # no move out of won/lost
    assert list(m.columns) == ["lead", "qualified", "proposal", "won", "lost", STILL_THERE]
    assert m.loc["lead"].tolist() == [0, 2, 1, 0, 2, 0]  # d1 d2 on; d3 skips; d2 d4 lost
    assert m.loc["qualified"].tolist() == [1, 0, 1, 1, 0, 0]  # d2 back; d1 on; d5 won
    assert m.loc["proposal"].tolist() == [0, 0, 0, 1, 0, 1]  # d1 won; d3 still there
    assert int(m.to_numpy().sum()) == 10  # every non-terminal history row is one move


def test_move_kinds():
    assert move_kind(FUNNEL, "lead", "qualified") == "next"
    assert move_kind(FUNNEL, "lead", "proposal") == "skip"
    assert move_kind(FUNNEL, "qualified", "lead") == "back"
    assert move_kind(FUNNEL, "proposal", "won") == "won"
    assert move_kind(FUNNEL, "proposal", STILL_THERE) == "open"


def test_transition_matrix_without_history_is_all_zero(crm):
    m = transition_matrix(crm.with_table("stage_history", None), funnel=FUNNEL)
    assert list(m.index) == list(FUNNEL.stages) and m.to_numpy().sum() == 0


def test_time_in_stage_by_hand(crm):
    t = stay_quantiles(crm, funnel=FUNNEL).set_index("stage")
    # lead stays: d1 10, d2 4 and 2 (after going back), d3 2, d4 1 days -> sorted 1 2 2 4 10
    # Kaplan-Meier: S = .8 .4 .2 0 after 1 2 4 10 days; a quantile is where S first drops
    assert t.loc["lead", ["finished", "running"]].tolist() == [5, 0]
    assert t.loc["lead", ["median_days", "p75_days", "p90_days"]].tolist() == pytest.approx(
        [2.0, 4.0, 10.0]
    )
    # proposal: d1 11 days; d3 still there after 39 days (censored: at least that long)
    assert t.loc["proposal", ["finished", "running", "median_days"]].tolist() == [1, 1, 11.0]
    assert np.isnan(t.loc["proposal", "p75_days"])  # not reached within the data


def test_bottleneck_rule_ranks_by_loss_incidence_then_time():
    stages = pd.DataFrame(
        {
            "stage": ["a", "b", "c"],
            "entered": [100, 50, 40],
            "open": [10, 5, 4],
            "lost_here": [0.5, 0.2, 0.5],
            "lost_here_lo": [0.4, 0.1, 0.4],
            "lost_here_hi": [0.6, 0.3, 0.6],
            "median_days": [1.0, 5.0, 3.0],
            "naive_to_next": [0.4, 0.7, 0.45],
        }
    )
    t = bottlenecks(stages)
    assert t["stage"].tolist() == ["c", "a", "b"]  # a and c tie on loss; c is slower
    assert t["rank_loss"].tolist() == [1, 1, 3]
    assert t["rank_time"].tolist() == [2, 3, 1]
    assert t["naive_drop_off"].tolist() == pytest.approx([0.55, 0.6, 0.3])


def test_conversion_by_owner_and_industry(crm):
    owners = conversion_by(crm.deals, "owner_id").set_index("owner_id")
    assert owners.loc["u1", ["deals", "open", "won", "lost"]].tolist() == [3, 0, 2, 1]
    assert owners.loc["u2", "win_rate"] == 0.0  # d3 open, d4 lost
    assert len(conversion_by(crm.deals, "owner_id", top=1)) == 1
    industry = conversion_by(with_industry(crm), "industry").set_index("industry")
    assert industry.loc["software", ["deals", "won", "lost"]].tolist() == [3, 2, 1]
    assert with_industry(crm.with_table("accounts", None)) is None


def test_known_at_reopens_later_closes_and_drops_later_moves(crm):
    early = known_at(crm, ts("01-15"))
    deals = early.deals.set_index("deal_id")
    assert pd.isna(deals.loc["d1", "outcome"]) and pd.isna(deals.loc["d1", "closed_at"])
    assert deals.loc["d2", "outcome"] == "lost"
    assert early.stage_history["entered_at"].max() <= ts("01-15")
    assert crm.deals.loc[0, "outcome"] == "won"  # the input is not mutated


def test_forecast_scores_by_hand():
    bt = pd.DataFrame(
        {
            "period": ["2024-01", "2024-02", "2024-01", "2024-02"],
            "method": ["model", "model", "naive", "naive"],
            "forecast": [110.0, 90.0, 150.0, 150.0],
            "p10": [90.0, 105.0, 140.0, 140.0],
            "p50": [110.0, 90.0, 150.0, 150.0],
            "p90": [130.0, 120.0, 160.0, 160.0],
            "actual": [100.0, 100.0, 100.0, 100.0],
        }
    )
    s = forecast_scores(bt).set_index("method")
    assert s.loc["model", "coverage_p10_p90"] == 0.5  # 90 <= 100 <= 130, but 100 < 105
    assert s.loc["model", ["wape", "bias"]].tolist() == pytest.approx([0.1, 0.0])
    assert s.loc["naive", ["coverage_p10_p90", "wape", "bias"]].tolist() == pytest.approx(
        [0.0, 0.5, 0.5]
    )


def _external_references(page: str) -> list[str]:
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page)
    return [r for r in refs if not (r.startswith("data:") or r.startswith("#"))]


def test_page_has_every_section_and_no_external_reference(crm):
    page = build_report(ReportInputs(data=crm, funnel=FUNNEL, as_of=END))
    for anchor, title in SECTIONS:
        assert f'<section id="{anchor}">' in page and f"<h2>{title}</h2>" in page
    assert _external_references(page) == []
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "url(" not in page
    # funnel, its incidence curves, time in stage, cohort curves
    assert page.count('src="data:image/png;base64,') == 4


def test_missing_inputs_say_what_to_run(crm):
    bare = CRMData(deals=crm.deals.drop(columns=["source", "account_id"]))
    page = build_report(ReportInputs(data=bare, funnel=FUNNEL, as_of=END))
    assert "needs a stage_history table" in page
    assert "no source in this CRM" in page and "no industry in this CRM" in page
    assert "run `dealcast train`" in page
    assert "No forecast yet: run `dealcast forecast`." in page
    assert "run `dealcast score --as-of 2024-03-01`" in page
    assert page.count("<img") == 1  # the cohort curves: they need the deals table only


def test_optional_inputs_are_drawn_and_escaped(crm):
    rng = np.random.default_rng(0)
    p = rng.uniform(size=200)
    predictions = pd.DataFrame(
        {"won": rng.uniform(size=200) < p, "p_win": p, "p_win_base_rate": np.full(200, 0.5)}
    )
    metrics = {
        "cutoff": "2024-01-01",
        "horizon_days": 90,
        "test_window": {"rows_with_known_outcome": 200},
        "close_probability": {"overall": {"p_win": {"n": 200, "roc_auc": 0.81}}},
    }
    backtest = pd.DataFrame(
        {
            "period": ["2024-01", "2024-02"],
            "method": ["model", "model"],
            "forecast": [1.0, 2.0],
            "p10": [0.5, 1.0],
            "p50": [1.0, 2.0],
            "p90": [1.5, 3.0],
            "actual": [1.2, 2.5],
        }
    )
    leads = pd.DataFrame(
        {"rank": [1], "deal_id": ["<b>d9</b>"], "amount": [1000.0], "p_win": [0.25]}
    )
    page = build_report(
        ReportInputs(
            data=crm, funnel=FUNNEL, as_of=END, metrics=metrics, predictions=predictions,
            forecast_backtest=backtest, fan_chart=b"\x89PNG fake", leads=leads,
        )
    )  # fmt: skip
    assert "served model" in page and "0.810" in page
    assert page.count('src="data:image/png;base64,') == 4 + 2 + 2  # + quality + fan, backtest
    assert "&lt;b&gt;d9&lt;/b&gt;" in page and "<b>d9</b>" not in page
    assert "dealcast forecast" not in page and "dealcast score" not in page
    assert _external_references(page) == []


def test_forecast_backtest_without_its_columns_is_named_not_drawn(crm):
    bad = pd.DataFrame({"period": ["2024-01"], "value": [1.0]})
    page = build_report(ReportInputs(data=crm, funnel=FUNNEL, as_of=END, forecast_backtest=bad))
    assert "lacks actual, method, p10, p50, p90" in page


def test_changes_since_the_last_export_are_counted_and_listed(crm):
    from serving.changes import export_changes

    before = pd.DataFrame({"deal_id": ["D1", "D2"], "owner_id": ["U1", "U2"],
                           "stage": ["lead", "proposal"], "p_win": [0.1, 0.5],
                           "amount": [10.0, 20.0], "rank": [2, 1],
                           "as_of": pd.Timestamp("2024-02-26", tz="UTC")})  # fmt: skip
    now = before.assign(stage=["qualified", "proposal"], p_win=[0.1, 0.8], as_of=END)
    deals = pd.DataFrame({"deal_id": ["D1", "D2"], "outcome": [None, None]})
    changes = export_changes(now, before, deals=deals, won_label="won", lost_label="lost",
                             threshold=0.1)  # fmt: skip
    page = build_report(ReportInputs(data=crm, funnel=FUNNEL, as_of=END, changes=changes))
    assert "Changes since the last export" in page and "previous export: 2024-02-26" in page
    assert "stage moved" in page and "p_win up" in page
    assert "No earlier export to compare with" in build_report(
        ReportInputs(data=crm, funnel=FUNNEL, as_of=END)
    )
