"""Data-health warnings: each fires on the scenario that reproduces its failure, with the
column, the counts and example rows, and none fires on the plain synthetic CRM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm.health import HealthSettings, check_health
from crm.load import load_crm
from crm.report import ValidationReport
from crm.schemas import LOST, WON
from crm.synthetic import generate_crm
from crm.synthetic.scenarios import BLANK_WHEN_OPEN_COLUMN, LOSS_WAIT_DAYS, STOPPED_COLUMNS
from crm.write import write_crm
from tests.shared import FUNNEL

START = pd.Timestamp("2024-01-01")
AS_OF = pd.Timestamp("2026-06-30", tz="UTC")
DEFAULTS = HealthSettings(horizon_days=180, test_days=182)
HEALTH_RULES = {
    "missing_by_outcome",
    "fill_rate_change",
    "left_truncation",
    "short_history",
    "fixed_close_delay",
    "late_win_records",
}


def make(*scenarios: str, n_deals: int = 1200, seed: int = 8):
    return generate_crm(
        n_deals=n_deals,
        seed=seed,
        start=START,
        as_of=AS_OF,
        funnel=FUNNEL,
        messy=False,
        scenarios=scenarios,
    )


def health(data, settings: HealthSettings = DEFAULTS) -> ValidationReport:
    tables = {name: data.table(name) for name in data.present()}
    return check_health(tables, settings=settings, report=ValidationReport(), as_of=AS_OF)


def by_rule(report: ValidationReport, rule: str) -> dict[str | None, object]:
    return {f.column: f for f in report.findings if f.rule == rule}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("n_deals", [300, 2000])
def test_nothing_fires_on_the_plain_synthetic_crm(seed, n_deals):
    report = health(make(n_deals=n_deals, seed=seed).data)
    assert report.findings == [], report.to_text()


def test_field_stops_fires_fill_rate_change_per_column(tmp_path):
    crm = make("field-stops")
    write_crm(crm.data, tmp_path, fmt="csv")
    result = load_crm(tmp_path, funnel=FUNNEL, as_of=AS_OF, health=DEFAULTS)
    assert result.report.ok
    found = by_rule(result.report, "fill_rate_change")
    assert set(found) == set(STOPPED_COLUMNS)
    deals = crm.data.deals
    month = pd.Timestamp("2025-09-01", tz="UTC")  # the stop (at 65 % of the period) + 1 month
    blank_after = deals["amount"].isna() & (deals["created_at"] >= month)
    finding = found["amount"]
    assert finding.count == blank_after.sum()
    assert "stops being filled from 2025-09 on" in finding.message
    assert f"{blank_after.sum()} of the {blank_after.sum()} created since (100%)" in (
        finding.message
    )
    first_line = int(np.flatnonzero(blank_after.to_numpy())[0]) + 2  # header is line 1
    assert finding.rows[0] == first_line and finding.file.endswith("deals.csv")
    # the blank is about time, not outcome: no missing_by_outcome
    assert not by_rule(result.report, "missing_by_outcome")


def test_blank_when_open_fires_missing_by_outcome():
    crm = make("blank-when-open")
    report = health(crm.data)
    found = by_rule(report, "missing_by_outcome")
    assert set(found) == {BLANK_WHEN_OPEN_COLUMN}
    n_open = int(crm.data.deals["outcome"].isna().sum())
    finding = found[BLANK_WHEN_OPEN_COLUMN]
    assert finding.count == n_open
    assert f"blank for {n_open} of {n_open} open (100%)" in finding.message
    assert "missingness may encode the outcome" in finding.message
    assert "funnel.exclude_attributes" in finding.hint
    # the blank is about outcome, not time: no fill_rate_change
    assert not by_rule(report, "fill_rate_change")


def test_left_truncated_fires_left_truncation():
    crm = make("left-truncated")
    report = health(crm.data)
    (finding,) = [f for f in report.findings if f.rule in HEALTH_RULES]
    assert finding.rule == "left_truncation" and finding.column == "created_at"
    deals = crm.data.deals
    first = deals["created_at"].min()
    assert finding.count == (deals["created_at"].dt.floor("D") == first).sum() > 20
    assert f"created on {first.date()}, the first day of the data" in finding.message
    assert "features.start" in finding.hint


def test_short_fires_short_history_saying_what_to_change():
    crm = make("short")
    report = health(crm.data)
    (finding,) = [f for f in report.findings if f.rule in HEALTH_RULES]
    assert finding.rule == "short_history"
    assert "train.horizon_days (180) + evaluate.test_days (182)" in finding.message
    for words in ("train.horizon_days", "evaluate.test_days", "--as-of"):
        assert words in finding.hint
    assert health(crm.data, HealthSettings(horizon_days=30, test_days=28)).findings == []


def test_late_wins_fires_fixed_close_delay_and_late_win_records():
    crm = make("late-wins")
    report = health(crm.data)
    assert {f.rule for f in report.findings} == {"fixed_close_delay", "late_win_records"}
    (delay,) = by_rule(report, "fixed_close_delay").values()
    deals = crm.data.deals
    waited = (deals["outcome"] == LOST) & (
        deals["closed_at"] - deals["created_at"] == pd.Timedelta(days=LOSS_WAIT_DAYS)
    )
    assert delay.count == waited.sum()
    assert f"exactly {LOSS_WAIT_DAYS} days after created_at" in delay.message
    (late,) = by_rule(report, "late_win_records").values()
    assert (
        late.count
        == (
            (deals["outcome"] == WON) & (deals["closed_at"] >= pd.Timestamp("2026-04-01", tz="UTC"))
        ).sum()
    )
    assert "from 2026-04 on" in late.message


def test_level_shift_alone_raises_no_health_warning():
    assert health(make("level-shift").data).findings == []


def test_a_column_filled_only_for_won_deals_is_flagged():
    deals = make(n_deals=800).data.deals.copy()
    deals["win_note"] = np.where(deals["outcome"] == WON, 1.0, np.nan)
    report = check_health({"deals": deals}, settings=DEFAULTS, report=ValidationReport())
    (finding,) = by_rule(report, "missing_by_outcome").values()
    assert finding.column == "win_note"
    assert "lost" in finding.message and "won ones" in finding.message


def test_a_column_that_starts_being_filled_is_flagged():
    deals = make(n_deals=800).data.deals.copy()
    later = deals["created_at"] >= pd.Timestamp("2025-10-01", tz="UTC")
    deals["new_field"] = np.where(later, 5.0, np.nan)
    report = check_health({"deals": deals}, settings=DEFAULTS, report=ValidationReport())
    (finding,) = by_rule(report, "fill_rate_change").values()
    assert finding.column == "new_field"
    assert "starts being filled from 2025-10 on" in finding.message
    assert finding.count == (~later).sum()


def test_health_runs_only_when_asked_and_only_on_usable_data(tmp_path):
    crm = make("blank-when-open", n_deals=600)
    write_crm(crm.data, tmp_path, fmt="csv")
    plain = load_crm(tmp_path, funnel=FUNNEL, as_of=AS_OF)
    assert not HEALTH_RULES & plain.report.rules()
    deals = (tmp_path / "deals.csv").read_text().splitlines()
    deals[1] = deals[1].replace(",won,", ",maybe,").replace(",lost,", ",maybe,")
    (tmp_path / "deals.csv").write_text("\n".join(deals) + "\n")
    broken = load_crm(tmp_path, funnel=FUNNEL, as_of=AS_OF, health=DEFAULTS)
    assert not broken.report.ok
    assert not HEALTH_RULES & broken.report.rules()
