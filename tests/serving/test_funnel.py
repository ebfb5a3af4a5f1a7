"""The funnel summary on a four-deal CRM small enough to check by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from crm.data import CRMData
from crm.schemas import Funnel
from serving.funnel import format_summary, funnel_summary, stage_stays

FUNNEL = Funnel(stages=("lead", "qualified", "proposal"), won_label="won", lost_label="lost")


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


def test_counts_and_win_rate(crm):
    s = funnel_summary(crm, funnel=FUNNEL)
    assert (s.n_deals, s.n_open, s.n_won, s.n_lost) == (4, 1, 1, 2)
    assert s.win_rate == pytest.approx(1 / 3)


def test_stage_table_by_hand(crm):
    t = funnel_summary(crm, funnel=FUNNEL).stages.set_index("stage")
    assert t["entered"].tolist() == [4, 2, 2]
    assert t["reached"].tolist() == [4, 3, 2]  # d3 skipped qualified but passed it
    assert t["conversion_to_next"].tolist() == pytest.approx([3 / 4, 2 / 3, 1 / 2])
    assert t["win_rate"].tolist() == pytest.approx([1 / 3, 1 / 2, 1.0])
    assert t["median_days"].tolist() == pytest.approx([3.0, 7.5, 11.0])


def test_the_running_stay_is_censored_not_counted(crm):
    stays = stage_stays(crm)
    running = stays[~stays["finished"]]
    assert running[["deal_id", "stage"]].values.tolist() == [["d3", "proposal"]]
    assert running["days"].isna().all()


def test_sources(crm):
    t = funnel_summary(crm, funnel=FUNNEL).sources.set_index("source")
    assert t.loc["referral", ["deals", "open", "won", "lost"]].tolist() == [2, 1, 1, 0]
    assert t.loc["outbound", "win_rate"] == 0.0


def test_without_stage_history_or_source():
    deals = pd.DataFrame(
        {"deal_id": ["a"], "created_at": [ts("01-01")], "closed_at": [pd.NaT], "outcome": [None]}
    )
    s = funnel_summary(CRMData(deals=deals), funnel=FUNNEL)
    text = format_summary(s)
    assert "(no stage history)" in text and "(no source column)" in text
