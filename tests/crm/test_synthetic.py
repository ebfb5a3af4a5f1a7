"""The synthetic CRM: typed like the contract, deterministic, censored at as_of, realistic.

The marginal statistics asserted here are the generator's promises to the rest of
dealcast (demo, tests, benchmarks); "recent" deals are those created in the 180 days
before as_of.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crm.load import load_crm
from crm.schemas import (
    CONTRACT,
    KNOWN_CHANNELS,
    KNOWN_ROLES,
    LOST,
    TIMESTAMP_DTYPE,
    WON,
    Funnel,
    dtype_of,
)
from crm.synthetic import SyntheticCRM, generate_crm, win_probability
from crm.synthetic.owners import n_owners_for
from crm.synthetic.touchpoints import ACCOUNT_CHANNELS, DEAL_CHANNELS
from crm.write import write_crm, write_frame
from tests.shared import FUNNEL

START = pd.Timestamp("2024-01-01")
AS_OF = pd.Timestamp("2026-06-30", tz="UTC")
RECENT_DAYS = 180
EVENT_COLUMNS = {
    "accounts": ("created_at",),
    "deals": ("created_at", "closed_at"),
    "stage_history": ("entered_at",),
    "touchpoints": ("occurred_at",),
}


def make(n_deals: int = 3000, seed: int = 11, funnel: Funnel = FUNNEL, messy: bool = False):
    return generate_crm(
        n_deals=n_deals, seed=seed, start=START, as_of=AS_OF, funnel=funnel, messy=messy
    )


@pytest.fixture(scope="module")
def synth() -> SyntheticCRM:
    return make()


@pytest.fixture(scope="module")
def messy() -> SyntheticCRM:
    return make(n_deals=2000, seed=5, messy=True)


@pytest.fixture(scope="module")
def clean_twin() -> SyntheticCRM:
    """The clean data of the ``messy`` fixture (same seed and size)."""
    return make(n_deals=2000, seed=5)


def uncategorized(frame: pd.DataFrame) -> pd.DataFrame:
    """Category columns as ``str`` (the loader may infer a different category set)."""
    cats = frame.select_dtypes("category").columns
    return frame.astype({c: "str" for c in cats})


def closed(deals: pd.DataFrame) -> pd.DataFrame:
    return deals[deals["outcome"].notna()]


def win_rate(deals: pd.DataFrame) -> float:
    return float((closed(deals)["outcome"] == WON).mean())


def dwell_days(history: pd.DataFrame) -> pd.Series:
    """Days from each stage row to the deal's next row (NaN for the last row)."""
    nxt = history.groupby("deal_id")["entered_at"].shift(-1)
    return (nxt - history["entered_at"]).dt.total_seconds() / 86400


# --- typing and the contract --------------------------------------------------------


def test_tables_are_typed_as_the_contract_says(synth):
    for name in ("accounts", "deals", "stage_history", "touchpoints"):
        frame = synth.data.table(name)
        for column in CONTRACT[name].columns:
            assert column.name in frame.columns, (name, column.name)
            assert frame[column.name].dtype == dtype_of(column.kind), (name, column.name)
    deals = synth.data.deals
    assert deals["deal_id"].is_unique and synth.data.accounts["account_id"].is_unique
    assert set(deals["outcome"].dropna()) == {WON, LOST}
    assert deals["amount"].min() > 0
    # custom attributes: three with signal, one pure noise
    assert deals["segment"].dtype == "category" and deals["deal_type"].dtype == "category"
    assert deals["competitor_present"].dtype == "float64"
    assert deals["legacy_score"].between(0, 100).all()


def test_truth_has_one_row_per_deal_with_hidden_variables(synth):
    truth = synth.truth
    assert truth["deal_id"].tolist() == synth.data.deals["deal_id"].tolist()
    for column in (
        "quality",
        "account_fit",
        "owner_skill",
        "source_quality",
        "p_win_true",
        "eventual_outcome",
        "eventual_closed_at",
        "dwell_scale",
        "entry_stage",
    ):
        assert column in truth.columns
    assert truth["p_win_true"].between(0, 1).all()
    assert truth["eventual_closed_at"].dtype == TIMESTAMP_DTYPE


# --- determinism ----------------------------------------------------------------------


def test_same_seed_gives_identical_frames_and_bytes(tmp_path: Path):
    first, second = make(n_deals=1000, seed=3), make(n_deals=1000, seed=3)
    for name in first.data.present():
        pd.testing.assert_frame_equal(first.data.table(name), second.data.table(name))
    pd.testing.assert_frame_equal(first.truth, second.truth)
    for fmt in ("csv", "parquet"):
        a = write_crm(first.data, tmp_path / f"a_{fmt}", fmt=fmt)
        b = write_crm(second.data, tmp_path / f"b_{fmt}", fmt=fmt)
        assert a.keys() == b.keys() == set(first.data.present())
        for name in a:
            assert a[name].read_bytes() == b[name].read_bytes(), (fmt, name)
        write_frame(first.truth, tmp_path / f"truth_a.{fmt}")
        write_frame(second.truth, tmp_path / f"truth_b.{fmt}")
        truth_a = (tmp_path / f"truth_a.{fmt}").read_bytes()
        assert truth_a == (tmp_path / f"truth_b.{fmt}").read_bytes()


def test_different_seed_gives_different_data():
    a, b = make(n_deals=500, seed=1), make(n_deals=500, seed=2)
    assert not a.data.deals["created_at"].equals(b.data.deals["created_at"])
    assert not a.truth["quality"].equals(b.truth["quality"])


# --- censoring at as_of ---------------------------------------------------------------


def test_nothing_is_timestamped_after_as_of(synth):
    for name, columns in EVENT_COLUMNS.items():
        frame = synth.data.table(name)
        for column in columns:
            assert frame[column].dropna().max() <= AS_OF, (name, column)
    assert synth.data.deals["created_at"].min() >= START.tz_localize("UTC")


def test_open_deals_are_those_closing_after_as_of(synth):
    deals, truth = synth.data.deals, synth.truth
    is_open = deals["closed_at"].isna()
    assert (deals["outcome"].isna() == is_open).all()
    assert (truth["open_at_as_of"] == is_open).all()
    assert (truth.loc[is_open, "eventual_closed_at"] > AS_OF).all()
    done = ~is_open
    assert (deals.loc[done, "outcome"] == truth.loc[done, "eventual_outcome"]).all()
    assert (deals.loc[done, "closed_at"] == truth.loc[done, "eventual_closed_at"]).all()
    assert (deals.loc[done, "closed_at"] >= deals.loc[done, "created_at"]).all()


def test_stage_history_is_consistent_with_deals(synth):
    deals, history = synth.data.deals.set_index("deal_id"), synth.data.stage_history
    assert set(history["stage"]) <= set(FUNNEL.states)
    assert history["deal_id"].isin(deals.index).all()
    assert set(history["deal_id"]) == set(deals.index)
    step = history.groupby("deal_id")["entered_at"].diff().dropna()
    assert (step > pd.Timedelta(0)).all()
    first = history.groupby("deal_id").first()
    assert (first["entered_at"] == deals.loc[first.index, "created_at"]).all()
    assert first["stage"].isin(FUNNEL.stages).all()
    last = history.groupby("deal_id").last()
    terminal = last["stage"].isin([WON, LOST])
    assert (terminal == deals.loc[last.index, "outcome"].notna()).all()
    assert (last.loc[terminal, "stage"] == deals.loc[last.index[terminal], "outcome"]).all()
    assert (last.loc[terminal, "entered_at"] == deals.loc[last.index[terminal], "closed_at"]).all()
    n_terminal = history["stage"].isin([WON, LOST]).groupby(history["deal_id"]).sum()
    assert n_terminal.max() == 1


# --- marginal statistics --------------------------------------------------------------


def test_win_rate_and_open_share(synth):
    deals = synth.data.deals
    assert 0.15 <= win_rate(deals) <= 0.30
    recent = deals[deals["created_at"] > AS_OF - pd.Timedelta(days=RECENT_DAYS)]
    assert 0.15 <= recent["outcome"].isna().mean() <= 0.25
    # the truth agrees with the simulation: p_win_true is calibrated on average
    eventual = (synth.truth["eventual_outcome"] == WON).mean()
    assert abs(synth.truth["p_win_true"].mean() - eventual) < 0.03


def test_funnel_reach_falls_stage_by_stage(synth):
    history, n = synth.data.stage_history, len(synth.data.deals)
    reach = [history.loc[history["stage"] == s, "deal_id"].nunique() / n for s in FUNNEL.stages]
    assert all(a > b for a, b in zip(reach, reach[1:], strict=False)), reach
    assert reach[0] > 0.8 and reach[-1] > 0.15
    entered_mid = history.groupby("deal_id")["stage"].first() != FUNNEL.stages[0]
    assert 0.05 <= entered_mid.mean() <= 0.15


def test_skips_and_regressions_occur_but_are_rare(synth):
    history = synth.data.stage_history
    pos = history["stage"].map({s: i for i, s in enumerate(FUNNEL.stages)})
    move = pos.groupby(history["deal_id"]).diff().dropna()
    assert 0.01 < (move == 2).mean() < 0.15
    assert 0.002 < (move == -1).mean() < 0.08


def test_stage_dwell_times_are_days_to_weeks_with_long_tails(synth):
    history = synth.data.stage_history
    dwell = dwell_days(history).groupby(history["stage"])
    for stage in FUNNEL.stages:
        days = dwell.get_group(stage).dropna()
        assert 3 <= days.median() <= 28, (stage, days.median())
        assert days.quantile(0.9) > 2.5 * days.median(), stage
    medians = [dwell.get_group(s).median() for s in FUNNEL.stages]
    assert medians[-1] > medians[0]  # later stages take longer


def test_stalled_deals_mostly_end_lost(synth):
    history = synth.data.stage_history.assign(days=dwell_days(synth.data.stage_history))
    history["next"] = history.groupby("deal_id")["stage"].shift(-1)
    left = history[history["stage"].isin(FUNNEL.stages) & history["next"].notna()]
    slow = left["days"] > left.groupby("stage")["days"].transform("quantile", 0.8)
    lost_when_slow = (left.loc[slow, "next"] == LOST).mean()
    lost_otherwise = (left.loc[~slow, "next"] == LOST).mean()
    assert lost_when_slow > 0.5 and lost_when_slow > lost_otherwise + 0.15


def test_sources_products_and_size_carry_signal(synth):
    deals = closed(synth.data.deals)
    by_source = deals.groupby("source", observed=True)["outcome"].apply(lambda o: (o == WON).mean())
    assert by_source["referral"] > by_source["partner"] > by_source["paid"]
    assert by_source["referral"] - by_source["paid"] > 0.15
    big = deals["amount"] > deals["amount"].quantile(0.75)
    small = deals["amount"] < deals["amount"].quantile(0.25)
    assert win_rate(deals[big]) < win_rate(deals[small])
    assert win_rate(deals[deals["competitor_present"] == 1]) < win_rate(
        deals[deals["competitor_present"] == 0]
    )
    assert win_rate(deals[deals["deal_type"] == "expansion"]) > win_rate(
        deals[deals["deal_type"] == "new_business"]
    )


def test_accounts_are_heavy_tailed_and_buy_repeatedly(synth):
    accounts, deals = synth.data.accounts, synth.data.deals
    assert accounts["employees"].quantile(0.99) > 20 * accounts["employees"].median()
    assert accounts["annual_revenue"].quantile(0.99) > 20 * accounts["annual_revenue"].median()
    per_account = deals["account_id"].value_counts()
    assert (per_account >= 5).sum() >= 10
    assert 0.2 <= (deals["deal_type"] == "expansion").mean() <= 0.5
    first = deals.groupby("account_id")["created_at"].min()
    created = accounts.set_index("account_id").loc[first.index, "created_at"]
    assert (created <= first).all()
    size = accounts.set_index("account_id").loc[deals["account_id"], "employees"].to_numpy()
    assert np.corrcoef(np.log(size), np.log(deals["amount"]))[0, 1] > 0.2


def test_creation_has_trend_and_seasonality(synth):
    created = synth.data.deals["created_at"]
    year = created.dt.year
    assert (year == 2025).sum() > 1.15 * (year == 2024).sum()
    full_years = created[year < 2026]
    per_month = full_years.dt.month.value_counts()
    assert per_month[8] < 0.8 * per_month[[9, 10, 11]].mean()
    assert per_month[12] < 0.8 * per_month[[9, 10, 11]].mean()
    assert (created.dt.day_of_week >= 5).mean() < 0.05


def test_owners_and_close_dates(synth):
    deals = synth.data.deals
    assert deals["owner_id"].nunique() == 30
    assert (n_owners_for(100_000), n_owners_for(6000), n_owners_for(300)) == (100, 30, 15)
    won = deals[deals["outcome"] == WON]
    late = won["expected_close_date"] < won["closed_at"].dt.floor("D")
    assert late.mean() > 0.55  # reps are optimistic
    assert (deals["expected_close_date"] >= deals["created_at"].dt.floor("D")).all()
    assert (deals["expected_close_date"] == deals["expected_close_date"].dt.floor("D")).all()


def test_quarter_end_push(synth):
    won = synth.data.deals.loc[synth.data.deals["outcome"] == WON, "closed_at"]
    last_two_weeks = won.dt.month.isin([3, 6, 9, 12]) & (won.dt.day > won.dt.days_in_month - 14)
    assert last_two_weeks.mean() > 0.19  # 14 of ~91 days would be 0.15


# --- touchpoints ----------------------------------------------------------------------


def test_touchpoints_shape_and_mix(synth):
    touches, n_deals = synth.data.touchpoints, len(synth.data.deals)
    assert touches["touchpoint_id"].is_unique
    assert 40 <= len(touches) / n_deals <= 60
    has_deal, has_account = touches["deal_id"].notna(), touches["account_id"].notna()
    assert (has_deal ^ has_account).all()
    assert set(touches.loc[has_deal, "channel"]) == set(DEAL_CHANNELS)
    assert set(touches.loc[has_account, "channel"]) == set(ACCOUNT_CHANNELS)
    assert set(touches["channel"].dropna()) <= set(KNOWN_CHANNELS)
    assert set(touches["contact_role"].dropna()) == set(KNOWN_ROLES)
    assert 0.2 <= has_account.mean() <= 0.45
    assert touches["occurred_at"].is_monotonic_increasing
    deal_touches = touches[has_deal]
    assert deal_touches.groupby("deal_id")["contact_id"].nunique().mean() > 1.5
    stage_of = synth.data.deals.set_index("deal_id")
    assert (
        deal_touches["occurred_at"].to_numpy()
        >= stage_of.loc[deal_touches["deal_id"], "created_at"].to_numpy()
    ).all()
    closed_at = stage_of.loc[deal_touches["deal_id"], "closed_at"].to_numpy()
    at = deal_touches["occurred_at"].to_numpy()
    assert not (at > closed_at).any()  # NaT compares False: open deals pass


def test_good_deals_get_more_inbound_and_meetings(synth):
    touches = synth.data.touchpoints.dropna(subset=["deal_id"])
    quality = synth.truth.set_index("deal_id").loc[touches["deal_id"], "quality"].to_numpy()
    high = quality > np.median(quality)
    inbound = (touches["direction"] == "inbound").to_numpy()
    assert inbound[high].mean() > inbound[~high].mean() + 0.1


def test_decision_maker_engagement_raises_the_odds(synth):
    deals, touches = closed(synth.data.deals), synth.data.touchpoints
    engaged = deals["deal_id"].isin(
        touches.loc[touches["contact_role"] == "decision_maker", "deal_id"]
    )
    assert 0.1 < engaged.mean() < 0.6
    assert win_rate(deals[engaged]) > 2 * win_rate(deals[~engaged])


def test_lost_deals_go_dark_and_quarter_ends_are_busy(synth):
    deals = closed(synth.data.deals)
    deals = deals[(deals["closed_at"] - deals["created_at"]).dt.days >= 60]
    touches = synth.data.touchpoints.merge(deals[["deal_id", "closed_at", "outcome"]], on="deal_id")
    before = (touches["closed_at"] - touches["occurred_at"]).dt.days
    for outcome, fades in ((LOST, True), (WON, False)):
        mine = touches["outcome"] == outcome
        last = (mine & (before < 14)).sum() / 14
        earlier = (mine & (before >= 14) & (before < 44)).sum() / 30
        assert bool(last < 0.5 * earlier) is fades, (outcome, last, earlier)
    at = synth.data.touchpoints.loc[synth.data.touchpoints["deal_id"].notna(), "occurred_at"]
    quarter_end = at.dt.month.isin([3, 6, 9, 12]) & (at.dt.day > at.dt.days_in_month - 14)
    assert quarter_end.mean() > 0.18


# --- the truth is usable by an oracle -------------------------------------------------


def test_true_probabilities_rank_and_update_with_time_in_stage(synth):
    truth = synth.truth
    won = truth["eventual_outcome"] == WON
    assert truth.loc[won, "p_win_true"].mean() > truth.loc[~won, "p_win_true"].mean() + 0.25
    q, scale = np.zeros(3), np.ones(3)
    stage = np.array([0, 2, 4])
    fresh = win_probability(q, stage, 5, days_in_stage=None, dwell_scale=None)
    stalled = win_probability(q, stage, 5, days_in_stage=np.full(3, 90.0), dwell_scale=scale)
    assert (np.diff(fresh) > 0).all()
    assert (stalled < fresh).all()


# --- other funnels --------------------------------------------------------------------


@pytest.mark.parametrize("stages", [("open",), ("lead", "demo", "contract")])
def test_other_funnel_lengths(stages):
    funnel = Funnel(stages=stages, won_label="won", lost_label="lost")
    data = make(n_deals=1500, seed=7, funnel=funnel)
    history, deals = data.data.stage_history, data.data.deals
    assert set(history["stage"]) == set(funnel.states)
    last = history.groupby("deal_id").last()
    assert (last["stage"].isin([WON, LOST]) == deals.set_index("deal_id")["outcome"].notna()).all()
    assert 0.15 <= win_rate(deals) <= 0.35
    assert history["entered_at"].max() <= AS_OF
    assert len(data.data.touchpoints) / len(deals) > 20


def test_rejects_impossible_arguments():
    with pytest.raises(ValueError):
        make(n_deals=0)
    with pytest.raises(ValueError):
        make(funnel=Funnel(stages=(), won_label="won", lost_label="lost"))
    with pytest.raises(ValueError):
        generate_crm(n_deals=10, seed=1, start=AS_OF, as_of=START, funnel=FUNNEL, messy=False)


# --- messy data -----------------------------------------------------------------------


def test_messy_data_contains_the_dirt(messy, clean_twin):
    deals, dirt = messy.data.deals, messy.dirt
    assert deals["deal_id"].duplicated().sum() == dirt["duplicate_deal_rows"] >= 3
    assert deals["created_at"].isna().sum() == dirt["blank_created_at"] >= 2
    assert deals["amount"].isna().sum() >= dirt["blank_amount"] >= 3
    channels = messy.data.touchpoints["channel"]
    assert (~channels.isin(KNOWN_CHANNELS)).sum() == dirt["unknown_channel"] >= 3
    text = deals["created_at"].dropna()
    assert text.str.endswith("Z").any()
    assert text.str.contains(r"[+-]\d\d:\d\d$").sum() > 0
    assert text.str.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$").sum() > 0
    # the strings are the clean instants in other clothes
    unique = deals.drop_duplicates("deal_id").set_index("deal_id")["created_at"].dropna()
    parsed = pd.to_datetime(unique, utc=True, format="ISO8601")
    clean = clean_twin.data.deals.set_index("deal_id").loc[parsed.index, "created_at"]
    assert (parsed == clean).all()
    pd.testing.assert_frame_equal(messy.truth, clean_twin.truth)


# --- round trip through the loader and validator --------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_written_data_loads_clean(synth, tmp_path: Path, fmt):
    write_crm(synth.data, tmp_path, fmt=fmt)
    result = load_crm(tmp_path, funnel=FUNNEL, as_of=AS_OF)
    # not even a warning: expected_close_date may lie after as_of (a plan, not an event)
    assert result.report.findings == [], result.report.to_text()
    for name in synth.data.present():
        pd.testing.assert_frame_equal(
            uncategorized(result.data.table(name)), uncategorized(synth.data.table(name))
        )


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_messy_data_gives_the_expected_findings(messy, clean_twin, tmp_path: Path, fmt):
    write_crm(messy.data, tmp_path / "raw", fmt=fmt)
    report = load_crm(tmp_path / "raw", funnel=FUNNEL, as_of=AS_OF).report
    assert {f.rule for f in report.errors} == {"duplicate_id", "missing_value"}
    assert {f.rule for f in report.warnings} == {"unknown_channel"}
    assert next(f for f in report.errors if f.rule == "missing_value").column == "created_at"
    # repaired (deduplicated, created_at filled), it loads and the zones were converted
    deals = messy.data.deals.drop_duplicates("deal_id", keep="first").reset_index(drop=True)
    blank = deals["created_at"].isna()
    clean_deals = clean_twin.data.deals.set_index("deal_id")
    deals.loc[blank, "created_at"] = (
        clean_deals.loc[deals.loc[blank, "deal_id"], "created_at"]
        .dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_numpy()
    )
    write_crm(messy.data.with_table("deals", deals), tmp_path / "fixed", fmt=fmt)
    fixed = load_crm(tmp_path / "fixed", funnel=FUNNEL, as_of=AS_OF)
    assert fixed.report.ok, fixed.report.to_text()
    assert {f.rule for f in fixed.report.findings} == {"unknown_channel"}
    loaded = fixed.data.deals.set_index("deal_id")
    for column in ("created_at", "closed_at"):
        pd.testing.assert_series_equal(loaded[column], clean_deals[column], check_names=False)
    pd.testing.assert_series_equal(
        fixed.data.stage_history["entered_at"], clean_twin.data.stage_history["entered_at"]
    )
