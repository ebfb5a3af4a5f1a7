"""Proof of honesty: editing the future never changes a feature computed at as_of t.

For a random t (often exactly the timestamp of some event, the inclusive boundary) and a
random set of edits that touch only rows stamped after t (add, drop or change
touchpoints and stage changes; drop or add deals created later; rewrite the close time
and outcome of deals still open at t; edit accounts that enter the CRM later), the
features at t and at an earlier as_of must be exactly identical.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from feature_fixtures import FUNNEL, SETTINGS, generated
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.data import CRMData
from crm.schemas import KNOWN_CHANNELS, TIMESTAMP_DTYPE
from features.build import build_features

DAY = pd.Timedelta(days=1)
SEEDS = (3, 7, 11)


def features(data: CRMData, t: pd.Timestamp) -> pd.DataFrame:
    return build_features(
        data, as_of_dates=pd.DatetimeIndex([t - 10 * DAY, t]), funnel=FUNNEL, **SETTINGS
    )


# ---- edits: each returns a new CRMData and changes only rows stamped after t -------------


def _later(rng: np.random.Generator, t: pd.Timestamp, n: int) -> pd.Series:
    """n random instants strictly after t (microsecond resolution, up to 200 days on)."""
    offsets = rng.integers(1, 200 * 86_400_000_000, n)
    return pd.Series(t + pd.to_timedelta(offsets, unit="us")).astype(TIMESTAMP_DTYPE)


def _append(frame: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """Rows appended; categorical columns get the union of both sides' categories."""
    out = pd.concat([frame, rows.reindex(columns=frame.columns)], ignore_index=True)
    for column in frame.columns:
        if frame[column].dtype == "category":
            values = (
                pd.concat([frame[column].astype("str"), rows[column].astype("str")])
                if (column in rows)
                else frame[column].astype("str")
            )
            cats = sorted(values.dropna().unique())
            out[column] = out[column].astype("str").astype(pd.CategoricalDtype(cats))
        else:
            out[column] = out[column].astype(frame[column].dtype)
    return out


def drop_future_rows(data, t, rng):
    sh, tp = data.stage_history, data.touchpoints
    sh = sh[~((sh["entered_at"] > t) & (rng.random(len(sh)) < 0.5))]
    tp = tp[~((tp["occurred_at"] > t) & (rng.random(len(tp)) < 0.5))]
    return data.with_table("stage_history", sh).with_table("touchpoints", tp)


def add_future_rows(data, t, rng):
    n = 40
    deals = data.deals["deal_id"].to_numpy()
    accounts = data.accounts["account_id"].to_numpy()
    level = rng.random(n) < 0.3
    touches = pd.DataFrame(
        {
            "touchpoint_id": pd.array([f"NEW{i}" for i in range(n)], dtype="str"),
            "deal_id": pd.array(np.where(level, None, rng.choice(deals, n)), dtype="str"),
            "account_id": pd.array(rng.choice(accounts, n), dtype="str"),
            "occurred_at": _later(rng, t, n),
            "channel": rng.choice([*KNOWN_CHANNELS, "fax", "carrier_pigeon"], n),
            "direction": rng.choice(["inbound", "outbound"], n),
            "contact_id": pd.array(rng.choice(["NEWC1", "NEWC2", "C000001"], n), dtype="str"),
            "contact_role": rng.choice(["decision_maker", "champion", "new_role"], n),
        }
    )
    stages = pd.DataFrame(
        {
            "deal_id": pd.array(rng.choice(deals, n), dtype="str"),
            "stage": pd.array(rng.choice([*FUNNEL.states, "limbo"], n), dtype="str"),
            "entered_at": _later(rng, t, n),
        }
    )
    return data.with_table("touchpoints", _append(data.touchpoints, touches)).with_table(
        "stage_history", _append(data.stage_history, stages)
    )


def change_future_rows(data, t, rng):
    tp = data.touchpoints.copy()
    hit = (tp["occurred_at"] > t).to_numpy() & (rng.random(len(tp)) < 0.5)
    tp.loc[hit, "occurred_at"] = _later(rng, t, int(hit.sum())).to_numpy()
    tp.loc[hit, "channel"] = rng.choice(tp["channel"].cat.categories, int(hit.sum()))
    tp.loc[hit, "deal_id"] = rng.choice(data.deals["deal_id"].to_numpy(), int(hit.sum()))
    sh = data.stage_history.copy()
    hit = (sh["entered_at"] > t).to_numpy() & (rng.random(len(sh)) < 0.5)
    sh.loc[hit, "stage"] = rng.choice(FUNNEL.states, int(hit.sum()))
    sh.loc[hit, "entered_at"] = _later(rng, t, int(hit.sum())).to_numpy()
    return data.with_table("touchpoints", tp).with_table("stage_history", sh)


def drop_later_deals(data, t, rng):
    deals = data.deals
    gone = (deals["created_at"] > t).to_numpy() & (rng.random(len(deals)) < 0.7)
    ids = set(deals.loc[gone, "deal_id"])
    out = data.with_table("deals", deals[~gone])
    if rng.random() < 0.5:  # with or without their own rows (orphans must not matter)
        out = out.with_table(
            "stage_history", data.stage_history[~data.stage_history["deal_id"].isin(ids)]
        ).with_table("touchpoints", data.touchpoints[~data.touchpoints["deal_id"].isin(ids)])
    return out


def add_later_deals(data, t, rng):
    n = 15
    created = _later(rng, t, n)
    closes = rng.random(n) < 0.6
    closed = (created + pd.to_timedelta(rng.integers(0, 90, n), unit="D")).where(closes)
    accounts = [*data.deals["account_id"].dropna().unique()[:5], "A_NEW"]
    new = pd.DataFrame(
        {
            "deal_id": pd.array([f"DNEW{i}" for i in range(n)], dtype="str"),
            "created_at": created,
            "account_id": pd.array(rng.choice(accounts, n), dtype="str"),
            "owner_id": pd.array(
                rng.choice([*data.deals["owner_id"].unique()[:3], "U_NEW"], n), dtype="str"
            ),
            "amount": rng.uniform(0, 1e6, n),
            "source": rng.choice(["tiktok", "event"], n),
            "product": rng.choice(["new_product", "platform"], n),
            "expected_close_date": created,
            "closed_at": closed.astype(TIMESTAMP_DTYPE),
            "outcome": pd.array(
                np.where(closes, rng.choice(["won", "lost"], n), None), dtype="str"
            ),
            "segment": rng.choice(["giant", "smb"], n),
            "legacy_score": rng.uniform(0, 100, n),
        }
    )
    return data.with_table("deals", _append(data.deals, new))


def rewrite_open_outcomes(data, t, rng):
    deals = data.deals.copy()
    is_open = (deals["created_at"] <= t) & (deals["closed_at"].isna() | (deals["closed_at"] > t))
    hit = is_open.to_numpy() & (rng.random(len(deals)) < 0.7)
    n = int(hit.sum())
    outcome = rng.choice(["won", "lost", None], n)
    closed = _later(rng, t, n).where(pd.Series(outcome).notna().to_numpy())
    deals.loc[hit, "closed_at"] = closed.to_numpy()
    deals.loc[hit, "outcome"] = outcome
    return data.with_table("deals", deals)


def edit_later_accounts(data, t, rng):
    acc = data.accounts.copy()
    later = (acc["created_at"] > t).to_numpy()
    acc.loc[later, "employees"] = rng.integers(1, 10_000, int(later.sum())).astype(float)
    acc.loc[later, "annual_revenue"] = np.nan
    new = pd.DataFrame(
        {
            "account_id": pd.array(["A_NEW"], dtype="str"),
            "industry": ["space"],
            "employees": [5.0],
            "annual_revenue": [1.0],
            "country": ["MARS"],
            "created_at": _later(rng, t, 1),
        }
    )
    return data.with_table("accounts", _append(acc, new))


EDITS = {
    f.__name__: f
    for f in (
        drop_future_rows,
        add_future_rows,
        change_future_rows,
        drop_later_deals,
        add_later_deals,
        rewrite_open_outcomes,
        edit_later_accounts,
    )
}


@st.composite
def scenarios(draw):
    seed = draw(st.sampled_from(SEEDS))
    data = generated(seed)
    anchor = draw(st.sampled_from(["instant", "touch", "stage", "created", "closed"]))
    if anchor == "instant":
        t = pd.Timestamp("2024-02-01", tz="UTC") + pd.Timedelta(
            microseconds=draw(st.integers(0, 300 * 86_400_000_000))
        )
    else:
        column = {
            "touch": data.touchpoints["occurred_at"],
            "stage": data.stage_history["entered_at"],
            "created": data.deals["created_at"],
            "closed": data.deals["closed_at"],
        }
        times = column[anchor].dropna().sort_values().to_numpy()
        times = times[len(times) // 10 : len(times) * 9 // 10]
        t = pd.Timestamp(times[draw(st.integers(0, len(times) - 1))])
    edits = draw(st.lists(st.sampled_from(sorted(EDITS)), min_size=1, max_size=4, unique=True))
    return seed, t, edits, draw(st.integers(0, 2**32 - 1))


def apply_edits(scenario) -> tuple[CRMData, CRMData, pd.Timestamp]:
    """(the generated CRM, the same with the scenario's future edits, t)."""
    seed, t, edits, edit_seed = scenario
    data = generated(seed)
    rng = np.random.default_rng(edit_seed)
    edited = data
    for name in edits:
        edited = EDITS[name](edited, t, rng)
    return data, edited, t


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_editing_the_future_never_changes_features_at_t(scenario):
    data, edited, t = apply_edits(scenario)
    before = features(data, t)
    assert len(before) > 0
    pd.testing.assert_frame_equal(features(edited, t), before, check_exact=True)


def test_the_leakage_test_can_fail_editing_the_past_changes_features():
    """A control: the same comparison does see an edit stamped at or before t."""
    data = generated(3)
    t = pd.Timestamp("2024-07-01", tz="UTC")
    tp = data.touchpoints
    past = tp[(tp["occurred_at"] <= t) & (tp["occurred_at"] > t - 20 * DAY) & tp["deal_id"].notna()]
    edited = data.with_table("touchpoints", tp.drop(index=past.index[:1]))
    assert not features(edited, t).equals(features(data, t))


def test_row_order_of_every_table_does_not_matter():
    data = generated(7)
    rng = np.random.default_rng(0)
    shuffled = data
    for name in data.present():
        frame = data.table(name)
        shuffled = shuffled.with_table(name, frame.iloc[rng.permutation(len(frame))])
    t = pd.Timestamp("2024-09-02", tz="UTC")
    pd.testing.assert_frame_equal(features(shuffled, t), features(data, t), check_exact=True)


def hazard_training_frame(data: CRMData, t: pd.Timestamp) -> pd.DataFrame:
    """The hazard model's training rows at cutoff t: weekly snapshots up to t, labelled as
    known at t, expanded to (snapshot, interval, event) rows with their features."""
    from features.build import build_feature_set
    from models.intervals import interval_edges, interval_rows, with_interval

    dates = pd.date_range(t - 84 * DAY, t, freq="7D")
    built = build_feature_set(
        data, as_of_dates=dates, funnel=FUNNEL, data_end=t, horizons_days=(30,), **SETTINGS
    )
    edges = interval_edges((7, 14, 28, 56), 30)
    rows = interval_rows(built.labels, edges)
    frame = with_interval(built.features, rows.row, rows.k, edges, built.features["as_of"])
    frame["event"] = rows.event
    return frame


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_editing_the_future_never_changes_the_hazard_training_frame(scenario):
    """Every interval row the hazard model trains on at cutoff t, and its event, is fixed
    by what was known at t: only intervals fully observed by t exist, whatever came later."""
    data, edited, t = apply_edits(scenario)
    before = hazard_training_frame(data, t)
    assert len(before) > 0
    pd.testing.assert_frame_equal(hazard_training_frame(edited, t), before, check_exact=True)
