"""The API's fast path: a posted deal's features from its own rows plus the day's cached
CRM-wide aggregates must equal a full build of the CRM with the deal in place, column by
column, for every kind of posted deal (new id, changed rows, new account / owner /
source, account-level touches, stage entries that move a median, several at once); and
placing a row among today's list must give the rank a full re-rank gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm.data import CRMData
from crm.synthetic import generate_crm
from features.build import build_features
from features.snapshots import open_deals_at
from serving.deal_features import Day, needs_full_build, posted_features
from serving.posted import Ranking, passes
from serving.score import COLUMNS, rank
from serving.single_deal import DealIndex, _unchanged, rank_among, unchanged_many
from tests.serving.test_score import FUNNEL, SETTINGS

AS_OF = pd.Timestamp("2026-06-30", tz="UTC")
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module", params=[40, 300], ids=["tiny", "small"])
def crm(request):
    """A tiny CRM (one posted stage entry moves a stage's median entry age) and a bigger one."""
    data = generate_crm(n_deals=request.param, seed=5, start=pd.Timestamp("2025-01-01", tz="UTC"),
                        as_of=AS_OF, funnel=FUNNEL, messy=False).data  # fmt: skip
    index = DealIndex(data, funnel=FUNNEL, as_of=AS_OF)
    day = Day.of(data, as_of=AS_OF, funnel=FUNNEL, **SETTINGS)
    open_ids = open_deals_at(data.deals, pd.DatetimeIndex([AS_OF]))["deal_id"].tolist()
    return data, index, day, open_ids


def _own(data: CRMData, deal_id: str, new_id: str | None = None) -> CRMData:
    """The CRM's rows of one deal (typed), optionally under a new id."""
    tables = {}
    for name in ("deals", "stage_history", "touchpoints"):
        frame = data.table(name)
        rows = frame[(frame["deal_id"] == deal_id).to_numpy(bool)].reset_index(drop=True)
        tables[name] = rows.assign(deal_id=new_id) if new_id else rows
    return CRMData(**tables)


def _variants(data: CRMData, open_ids: list[str]) -> list[CRMData]:
    """Posted deals of every kind the API sees."""
    a, b, c = open_ids[0], open_ids[1], open_ids[-1]
    out = [_own(data, a, "NEW-1"), _own(data, c, "NEW-2"), _own(data, b)]
    changed = _own(data, a)  # a repost: other amount, owner, one more stage, fewer touches
    deal = changed.deals.assign(amount=changed.deals["amount"] * 3)
    deal["owner_id"] = data.deals["owner_id"].dropna().iloc[-1]
    history = changed.stage_history
    moved = history.tail(1).assign(stage="proposal", entered_at=AS_OF - 2 * DAY)
    out.append(CRMData(deals=deal, stage_history=pd.concat([history, moved], ignore_index=True),
                       touchpoints=changed.touchpoints.head(1)))  # fmt: skip
    stranger = _own(data, c, "NEW-3")  # a new account, owner and source
    stranger = CRMData(
        deals=stranger.deals.assign(account_id="ACC-NEW", owner_id="OWNER-NEW", source="fax"),
        stage_history=stranger.stage_history,
        touchpoints=stranger.touchpoints.assign(account_id="ACC-NEW"),
    )
    out.append(stranger)
    out.append(CRMData(deals=_own(data, b).deals))  # a repost without rows: the CRM's kept
    old = _own(data, a, "NEW-4")  # an old deal whose entries move the medians
    created = AS_OF - 400 * DAY
    entries = pd.concat([old.stage_history.head(1)] * 3, ignore_index=True)
    entries["stage"] = ["lead", "qualified", "meeting"]
    entries["entered_at"] = [created, created + 300 * DAY, created + 390 * DAY]
    out.append(CRMData(deals=old.deals.assign(created_at=created), stage_history=entries,
                       touchpoints=old.touchpoints))  # fmt: skip
    level = _own(data, b, "NEW-5")  # posts an account-level touch
    touch = level.touchpoints.head(1).assign(deal_id=None, occurred_at=AS_OF - DAY)
    out.append(
        CRMData(
            deals=level.deals,
            stage_history=level.stage_history,
            touchpoints=pd.concat([level.touchpoints, touch], ignore_index=True),
        )
    )
    return out


def _full(index: DealIndex, posted: CRMData) -> pd.DataFrame:
    data, _ = index.merged([posted])
    deal_id = str(posted.deals["deal_id"].iloc[0])
    return build_features(data, as_of_dates=pd.DatetimeIndex([AS_OF]), funnel=FUNNEL,
                          deal_ids=(deal_id,), **SETTINGS)  # fmt: skip


def _assert_same_features(fast: pd.DataFrame, full: pd.DataFrame) -> None:
    assert list(fast.columns) == list(full.columns)
    assert fast["deal_id"].tolist() == full["deal_id"].tolist()
    for column in full.columns:
        left, right = fast[column], full[column]
        if isinstance(right.dtype, pd.CategoricalDtype) or column in ("deal_id", "as_of"):
            assert left.astype(object).tolist() == right.astype(object).tolist(), column
        else:
            np.testing.assert_array_equal(left.to_numpy(float), right.to_numpy(float), column)


def test_each_posted_deal_gets_the_full_build_s_features(crm):
    data, index, day, open_ids = crm
    for posted in _variants(data, open_ids):
        deal_id = str(posted.deals["deal_id"].iloc[0])
        assert not needs_full_build(day, deal_id)
        fast = posted_features(index.alone([posted]), day=day)
        _assert_same_features(fast, _full(index, posted))


def test_deals_built_together_each_get_what_they_get_alone(crm):
    data, index, day, open_ids = crm
    posted = _variants(data, open_ids)
    posted.append(_own(data, open_ids[0], "NEW-6"))  # shares the account of NEW-1
    together = passes(posted)
    assert len(together) < len(posted)
    for members in together:
        fast = posted_features(index.alone([posted[i] for i in members]), day=day)
        for i in members:
            deal_id = str(posted[i].deals["deal_id"].iloc[0])
            row = fast[fast["deal_id"] == deal_id].reset_index(drop=True)
            _assert_same_features(row, _full(index, posted[i]))


def test_the_tiny_crm_really_exercises_the_median_adjustment(crm):
    """In the tiny CRM the old deal's own stage entries move its stage's median entry
    age, so the equality above holds only because the fast path adds them."""
    data, index, _, open_ids = crm
    if len(data.deals) > 100:
        pytest.skip("only the tiny CRM's medians move with one deal")
    full = _full(index, _variants(data, open_ids)[6])
    day = Day.of(data, as_of=AS_OF, funnel=FUNNEL, **SETTINGS)
    stage = int(full["stage__position"].iloc[0])
    upto = np.cumsum(day.entry_hist[stage])
    crm_only = full["deal__age_days"].iloc[0] - np.argmax(upto > (upto[-1] - 1) // 2)
    assert full["stage__days_older_than_typical"].iloc[0] != crm_only


def test_a_repost_of_a_closed_deal_takes_the_full_build(crm):
    data, _, day, _ = crm
    closed = data.deals[data.deals["closed_at"].notna()]["deal_id"].iloc[0]
    assert needs_full_build(day, str(closed)) and not needs_full_build(day, "NEW-X")


def test_placing_a_row_gives_the_rank_of_a_full_re_rank():
    rng = np.random.default_rng(3)
    n = 300
    p_win = rng.choice([0.1, 0.2, 0.3, 0.5], n)
    amount = rng.choice([1000.0, 2000.0, np.nan], n)
    leads = pd.DataFrame({
        "deal_id": [f"D{i:03d}" for i in range(n)],
        "owner_id": pd.array(rng.choice(["o1", "o2", None], n), dtype="str"),
        "p_win": p_win, "amount": amount, "expected_value": p_win * amount,
    })  # fmt: skip
    for column in ("account_id", "stage", "next_stage", "reasons_up", "reasons_down"):
        leads[column] = pd.array(["x"] * n, dtype="str")
    for column in ("days_in_stage", "p_next_stage", "horizon_days", "as_of", "model_version",
                   "next_stage_model_version", "data_fingerprint"):  # fmt: skip
        leads[column] = 1.0
    for column in COLUMNS:  # any other column of the ranked list (names, ...): text
        if column not in leads and column not in ("rank", "owner_rank"):
            leads[column] = pd.array(["x"] * n, dtype="str")
    leads["rank"] = leads["owner_rank"] = 0
    for priority in ("expected_value", "p_win"):
        today = rank(leads, priority=priority)
        ranking = Ranking(today, priority=priority)
        unchanged = today.iloc[[3, 200]]
        pd.testing.assert_frame_equal(ranking.place(unchanged), unchanged.reset_index(drop=True))
        several = []
        for k in (0, 5, 77, 150, 299):
            row = today.iloc[[k]].copy()
            for p, a in ((0.3, 2000.0), (0.2, np.nan), (0.5, 1000.0), (0.1, 1000.0)):
                row["p_win"], row["amount"], row["expected_value"] = p, a, p * a
                for deal_id in (row["deal_id"].iloc[0], "D0775", "ZZZ", "A"):
                    row["deal_id"] = deal_id
                    alone = rank_among(today, row, priority=priority)
                    pd.testing.assert_frame_equal(ranking.place(row), alone)
                    several.append((row.copy(), alone))
        together = ranking.place(pd.concat([r for r, _ in several], ignore_index=True))
        expected = pd.concat([a for _, a in several], ignore_index=True)
        pd.testing.assert_frame_equal(together, expected)  # each as if alone


def test_unchanged_reposts_are_told_apart_together_as_one_by_one(crm):
    """The unchanged-repost check of a whole batch (rows hashed together) gives each
    posted deal what the check of it alone gives, and finds exactly the unchanged ones."""
    data, index, _, open_ids = crm
    a, b = open_ids[0], open_ids[1]
    leads = pd.DataFrame({"deal_id": open_ids, "n": np.arange(len(open_ids))})
    where = {d: i for i, d in enumerate(open_ids)}
    same = _own(data, a)
    shuffled = CRMData(
        deals=_own(data, b).deals,
        stage_history=_own(data, b).stage_history.iloc[::-1].reset_index(drop=True),
        touchpoints=_own(data, b).touchpoints.iloc[::-1].reset_index(drop=True),
    )
    touched = _own(data, b)
    touches = touched.touchpoints.copy()
    touches.loc[0, "occurred_at"] = touches.loc[0, "occurred_at"] - DAY
    touched = CRMData(deals=touched.deals, stage_history=touched.stage_history,
                      touchpoints=touches)  # fmt: skip
    posted = [same, *_variants(data, open_ids), shuffled, touched]
    together = unchanged_many(index, posted, leads, where)
    alone = [_unchanged(index, p, leads, where) for p in posted]
    found = [r is not None for r in together]
    assert found == [r is not None for r in alone]
    assert found[0] and found[-2] and not found[-1]  # same, reordered: unchanged; moved touch
    assert sum(found) == 2 + sum(
        1 for p in _variants(data, open_ids) if _unchanged(index, p, leads, where) is not None
    )
    for got, want in zip(together, alone, strict=True):
        if want is not None:
            pd.testing.assert_frame_equal(got, want)


def test_a_repost_carrying_empty_columns_the_crm_lacks_is_unchanged(crm):
    """The API's body always carries every contract column (None when not posted): an
    optional one the loaded CRM lacks is empty there too, so the repost is unchanged; a
    value in such a column is a change."""
    data, index, _, open_ids = crm
    a = open_ids[0]
    leads = pd.DataFrame({"deal_id": open_ids, "n": np.arange(len(open_ids))})
    where = {d: i for i, d in enumerate(open_ids)}
    own = _own(data, a)
    blank = CRMData(deals=own.deals.assign(region=pd.Series([None], dtype="str")),
                    stage_history=own.stage_history, touchpoints=own.touchpoints)  # fmt: skip
    named = CRMData(deals=own.deals.assign(region=pd.Series(["EMEA"], dtype="str")),
                    stage_history=own.stage_history, touchpoints=own.touchpoints)  # fmt: skip
    assert "region" not in data.deals
    found = [r is not None for r in unchanged_many(index, [blank, named], leads, where)]
    assert found == [True, False]
