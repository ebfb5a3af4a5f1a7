"""Failure scenarios of the synthetic CRM: each does what it claims, stays contract-valid,
leaves what it does not touch alone, and the truth keeps the real, uncut outcome."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crm.schemas import LOST, WON
from crm.synthetic import SCENARIOS, UnknownScenarioError, generate_crm, truth_won_within
from crm.synthetic.progression import win_probability
from crm.synthetic.scenarios import (
    BLANK_WHEN_OPEN_COLUMN,
    LOG_DAYS,
    LOSS_WAIT_DAYS,
    SHIFT_DROP,
    STOPPED_COLUMNS,
)
from crm.validate import validate_crm
from tests.shared import FUNNEL

START = pd.Timestamp("2024-01-01")
AS_OF = pd.Timestamp("2026-06-30", tz="UTC")
N_DEALS, SEED = 1200, 21


def make(*scenarios: str, n_deals: int = N_DEALS, seed: int = SEED):
    return generate_crm(
        n_deals=n_deals,
        seed=seed,
        start=START,
        as_of=AS_OF,
        funnel=FUNNEL,
        messy=False,
        scenarios=scenarios,
    )


@pytest.fixture(scope="module")
def plain():
    return make()


@pytest.fixture(scope="module")
def each():
    return {name: make(name) for name in SCENARIOS}


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


def test_unknown_names_fail_with_the_list():
    with pytest.raises(UnknownScenarioError, match="choose from: short, level-shift"):
        make("field-stop")


def test_no_scenario_is_the_plain_generator(plain):
    again = make()
    assert again.scenarios == {}
    for name in plain.data.present():
        assert_same(plain.data.table(name), again.data.table(name))
    assert list(plain.truth.columns) == list(again.truth.columns)
    assert "created_at_true" not in plain.truth


def test_order_given_does_not_matter():
    a = make("blank-when-open", "field-stops", "late-wins")
    b = make("late-wins", "field-stops", "blank-when-open", "late-wins")
    assert list(a.scenarios) == ["late-wins", "field-stops", "blank-when-open"]
    for name in a.data.present():
        assert_same(a.data.table(name), b.data.table(name))


@pytest.mark.parametrize("names", [[n] for n in SCENARIOS] + [list(SCENARIOS)])
def test_every_scenario_is_contract_valid(names):
    crm = make(*names, n_deals=600)
    report = validate_crm(crm.data, funnel=FUNNEL, as_of=AS_OF)
    assert report.findings == [], report.to_text()
    assert crm.truth["deal_id"].tolist() == crm.data.deals["deal_id"].tolist()
    assert set(crm.scenarios) == set(names)


def test_field_stops_blanks_later_deals_only(plain, each):
    deals, base = each["field-stops"].data.deals, plain.data.deals
    created = deals["created_at"]
    stop = created[deals["amount"].isna()].min()
    assert START.tz_localize("UTC") + 0.6 * (AS_OF - START.tz_localize("UTC")) < stop
    for column in STOPPED_COLUMNS:
        assert deals.loc[created >= stop, column].isna().all()
        assert_same(deals.loc[created < stop, [column]], base.loc[created < stop, [column]])
    others = [c for c in deals.columns if c not in STOPPED_COLUMNS]
    assert_same(deals[others], base[others])
    for name in ("stage_history", "touchpoints", "accounts"):
        assert_same(each["field-stops"].data.table(name), plain.data.table(name))
    assert_same(each["field-stops"].truth.drop(columns="created_at_true"), plain.truth)


def test_level_shift_cuts_the_true_win_rate_by_a_third(plain, each):
    truth = each["level-shift"].truth
    after = truth["level_shift"].to_numpy() < 0
    assert 0.45 < after.mean() < 0.7  # deal creation grows over time
    stage = np.array([FUNNEL.stages.index(s) for s in truth["entry_stage"]])
    unshifted = win_probability(
        truth["quality"] - truth["level_shift"], stage, 5, days_in_stage=None, dwell_scale=None
    )
    ratio = truth["p_win_true"][after].mean() / unshifted[after].mean()
    assert ratio == pytest.approx(1 - SHIFT_DROP, abs=0.01)
    before_rate = (truth["eventual_outcome"][~after] == WON).mean()
    after_rate = (truth["eventual_outcome"][after] == WON).mean()
    base_rate = (plain.truth["eventual_outcome"][after] == WON).mean()
    assert after_rate / base_rate == pytest.approx(1 - SHIFT_DROP, abs=0.12)
    assert after_rate < 0.8 * before_rate


def test_late_wins_records_wins_late_and_losses_after_the_wait(plain, each):
    crm = each["late-wins"]
    deals, truth = crm.data.deals, crm.truth
    log_start = (AS_OF - pd.Timedelta(days=LOG_DAYS)).normalize()
    won, lost = deals["outcome"] == WON, deals["outcome"] == LOST
    assert (deals.loc[won, "closed_at"] >= log_start).all()
    assert (deals.loc[lost, "closed_at"] - deals.loc[lost, "created_at"]).min() >= pd.Timedelta(
        days=LOSS_WAIT_DAYS
    )
    assert (
        (deals["closed_at"] >= truth["eventual_closed_at"])
        .where(deals["closed_at"].notna(), True)
        .all()
    )
    # the truth is the real history, not what the CRM recorded
    assert_same(truth.drop(columns="created_at_true"), plain.truth)
    backfilled = won & (truth["eventual_closed_at"] < log_start)
    assert backfilled.sum() > 50
    history = crm.data.stage_history
    last = history.groupby("deal_id", sort=False).tail(1).set_index("deal_id")
    closed = deals.dropna(subset=["closed_at"]).set_index("deal_id")
    assert (last.loc[closed.index, "entered_at"] == closed["closed_at"]).all()


def test_short_has_five_months_of_fast_deals(each):
    crm = each["short"]
    created = crm.data.deals["created_at"]
    assert created.min() >= AS_OF - pd.DateOffset(months=5) - pd.Timedelta(days=1)
    cycle = (crm.truth["eventual_closed_at"] - crm.truth["created_at_true"]) / pd.Timedelta(days=1)
    assert 20 < cycle.mean() < 40 and 12 < cycle.median() < 30
    assert (
        crm.data.deals["expected_close_date"]
        .dt.floor("D")
        .eq(crm.data.deals["expected_close_date"])
        .all()
    )


def test_left_truncated_starts_mid_stream(plain, each):
    crm = each["left-truncated"]
    deals, truth = crm.data.deals, crm.truth
    start = deals["created_at"].min()
    clamped = deals["created_at"] == start
    assert clamped.sum() > 20
    assert (truth.loc[clamped, "created_at_true"] < start).all()
    assert (truth.loc[clamped, "eventual_closed_at"] > start).all()  # open at the start
    assert (crm.data.stage_history["entered_at"] >= start).all()
    assert (crm.data.touchpoints["occurred_at"] >= start).all()
    dropped = set(plain.data.deals["deal_id"]) - set(deals["deal_id"])
    early = plain.data.deals.set_index("deal_id").loc[sorted(dropped)]
    assert (early["closed_at"] <= start).all()
    entry = crm.data.stage_history.groupby("deal_id").head(1).set_index("deal_id")["entered_at"]
    assert (entry.loc[deals.loc[clamped, "deal_id"]] == start).all()


def test_blank_when_open_blanks_exactly_the_open_deals(each):
    deals = each["blank-when-open"].data.deals
    assert (deals[BLANK_WHEN_OPEN_COLUMN].isna() == deals["outcome"].isna()).all()
    assert deals["outcome"].isna().sum() > 20


def test_truth_won_within_matches_what_complete_data_shows(plain):
    deals, truth = plain.data.deals, plain.truth
    as_of = AS_OF - pd.Timedelta(days=400)
    open_then = (deals["created_at"] <= as_of) & (deals["closed_at"] > as_of)
    ids = deals.loc[open_then, "deal_id"]
    got = truth_won_within(truth, ids, as_of, 180)
    rows = deals[open_then]
    seen = (rows["outcome"] == WON) & (rows["closed_at"] <= as_of + pd.Timedelta(days=180))
    np.testing.assert_array_equal(got, seen.to_numpy())
    assert got.any() and not got.all()
    per_row = truth_won_within(truth, ids, [as_of] * len(ids), 180)
    np.testing.assert_array_equal(per_row, got)


def test_truth_won_within_sees_past_late_records(each):
    crm = each["late-wins"]
    deals, truth = crm.data.deals, crm.truth
    as_of = AS_OF - pd.Timedelta(days=250)
    open_in_data = (deals["created_at"] <= as_of) & ~(deals["closed_at"] <= as_of)
    ids = deals.loc[open_in_data, "deal_id"]
    real = truth_won_within(truth, ids, as_of, 60)
    recorded = (deals.loc[open_in_data, "outcome"] == WON) & (
        deals.loc[open_in_data, "closed_at"] <= as_of + pd.Timedelta(days=60)
    )
    assert real.sum() > 10 and recorded.sum() == 0  # no win is logged that early


def test_truth_won_within_rejects_unknown_ids(plain):
    with pytest.raises(KeyError, match="not in the truth"):
        truth_won_within(plain.truth, ["D999999"], AS_OF, 30)


def test_cli_scenarios_combine_and_unknown_names_exit_2(tmp_path, params_file):
    from pipelines.cli import app

    runner = CliRunner()
    out = tmp_path / "crm"
    args = ["generate", "--out", str(out), "--deals", "300", "--params", str(params_file)]
    result = runner.invoke(
        app, [*args, "--scenario", "field-stops", "--scenario", "level-shift"],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "scenario level-shift:" in result.output and "scenario field-stops:" in result.output
    bad = runner.invoke(app, [*args, "--scenario", "nope"], catch_exceptions=False)
    assert bad.exit_code == 2
    assert "unknown scenario 'nope'" in bad.output and "blank-when-open" in bad.output


def test_generate_help_lists_every_scenario():
    from pipelines.cli import app

    result = CliRunner().invoke(app, ["generate", "--help"], terminal_width=200)
    for name in SCENARIOS:
        assert name in result.output
