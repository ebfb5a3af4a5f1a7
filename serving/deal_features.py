"""Features of posted deals in the context of the loaded CRM, without rebuilding the CRM's.

A posted deal's features are of two kinds. Most depend only on its own rows (its deal
row, stage history and touches), its account's row and its account's account-level
touches: :func:`posted_features` builds those with the export's own code
(``features.build.build_features``) on a small CRM of just the posted deals' rows
(``serving.single_deal.DealIndex.alone``). The others are CRM-wide aggregates at
``as_of``: win rates by source, owner, account and stage, the owner's and account's open
deals, and the median age at which deals entered each stage. :class:`Day` computes those
once from the loaded CRM (the same arithmetic as the families), and each posted deal's
values are the day's, adjusted for the deal itself and for the CRM deal it replaces, so
every column equals the one a full build of the CRM with the deal in place would give.

Exact only for deals that are open and replace no *closed* CRM deal (which would move the
win rates): :func:`needs_full_build` says so, and those go the full way. A test compares
the two ways column by column.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from features.build import build_features
from features.history import ClosedCounts, known_time, overall_win_rate, smoothed_rate
from features.point_in_time import NAT, NEVER, US_PER_DAY, At, EventIndex, to_us
from features.snapshots import Deals
from features.stage_history import _MAX_AGE_DAYS, StageRows

BINS = _MAX_AGE_DAYS + 1


@dataclass(frozen=True)
class Counts:
    """Per key of one deal column (source, owner, account) at ``as_of``: deals won and lost
    on or before it, and ``open`` = deals created by then minus deals closed by then (the
    families' own count, which includes the deal being scored)."""

    names: dict[str, int]
    won: np.ndarray
    lost: np.ndarray
    open: np.ndarray

    @classmethod
    def of(cls, deals: Deals, column: str, at: At) -> Counts:
        codes, uniques = pd.factorize(deals.frame[column].astype("str"), use_na_sentinel=True)
        codes, n = codes.astype(np.int64), len(uniques)
        groups, query = np.arange(n, dtype=np.int64), At(at.values, np.zeros(n, np.int64))
        won, lost = ClosedCounts.of(deals, codes, n).at(groups, query)
        closed_all = deals.close_time(np.ones(len(deals), dtype=bool))
        created = EventIndex(codes, deals.created, n_groups=n).count_le(groups, query)
        closed = EventIndex(codes, closed_all, n_groups=n).count_le(groups, query)
        names = {str(u): i for i, u in enumerate(uniques)}
        return cls(names, won, lost, (created - closed).astype(np.float64))

    def at(self, keys: list[str | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(won, lost, open) per key; zeros for a key the CRM does not have (or None)."""
        pos = np.array([self.names.get(k, -1) if k is not None else -1 for k in keys], np.int64)
        hit = pos >= 0

        def pick(values: np.ndarray) -> np.ndarray:
            return np.where(hit, values[np.maximum(pos, 0)] if len(values) else 0.0, 0.0)

        return pick(self.won), pick(self.lost), pick(self.open)


@dataclass(frozen=True)
class Day:
    """The loaded CRM's aggregates at ``as_of`` and the feature settings (see the module
    docstring); built once when the API starts."""

    as_of: pd.Timestamp
    funnel: Funnel
    settings: dict[str, object]
    overall: float
    counts: dict[str, Counts]
    stage_won: np.ndarray
    stage_lost: np.ndarray
    entry_hist: np.ndarray
    entries: dict[str, np.ndarray]
    crm: pd.DataFrame

    @classmethod
    def of(
        cls,
        data: CRMData,
        *,
        as_of: pd.Timestamp,
        funnel: Funnel,
        windows_days: tuple[int, ...],
        trend_days: int,
        recency_channels: tuple[str, ...],
        prior_strength: float,
    ) -> Day:
        deals = Deals.of(data.deals)
        t = int(to_us(pd.DatetimeIndex([as_of]))[0])
        at = At(np.array([t], dtype=np.int64), np.zeros(1, dtype=np.int64))
        columns = [c for c in ("source", "owner_id", "account_id") if c in deals.frame]
        won = lost = np.zeros(len(funnel.states))
        hist, entries = np.zeros((len(funnel.stages), BINS), np.int64), {}
        if data.stage_history is not None:
            rows = StageRows.of(data.stage_history, deals, funnel)
            won, lost = _stage_counts(rows, deals, at, funnel)
            hist, entries = _entry_ages(rows, deals, t, funnel)
        settings = {"windows_days": tuple(windows_days), "trend_days": trend_days,
                    "recency_channels": tuple(recency_channels),
                    "prior_strength": prior_strength}  # fmt: skip
        return cls(
            as_of=as_of, funnel=funnel, settings=settings,
            overall=float(overall_win_rate(deals, at)[0]),
            counts={c: Counts.of(deals, c, at) for c in columns},
            stage_won=won, stage_lost=lost, entry_hist=hist, entries=entries,
            crm=_crm_deals(deals),
        )  # fmt: skip

    @property
    def t(self) -> int:
        return int(to_us(pd.DatetimeIndex([self.as_of]))[0])


def _crm_deals(deals: Deals) -> pd.DataFrame:
    """Per CRM deal id: owner, account, created and closed (int64 us; closed NEVER if open)."""
    frame = deals.frame
    out = pd.DataFrame(
        {
            "owner_id": _keys(frame, "owner_id"),
            "account_id": _keys(frame, "account_id"),
            "created": deals.created,
            "closed": deals.closed,
        },
        index=frame["deal_id"].astype("str").to_numpy(),
    )
    return out[~out.index.duplicated()]


def _keys(frame: pd.DataFrame, column: str) -> list[str | None]:
    if column not in frame:
        return [None] * len(frame)
    values = frame[column]
    return [None if pd.isna(v) else str(v) for v in values.astype("object").tolist()]


def _stage_counts(
    rows: StageRows, deals: Deals, at: At, funnel: Funnel
) -> tuple[np.ndarray, np.ndarray]:
    """Won and lost (deal, stage) pairs per funnel state known at as_of, as
    ``features.stage_history._stage_win_rate`` counts them."""
    n = len(funnel.states)
    _, first = np.unique(rows.deal * np.int64(n) + rows.pos, return_index=True)
    d, p, e = rows.deal[first], rows.pos[first], rows.entered[first]
    closed = deals.close_time(np.ones(len(deals), dtype=bool))[d]
    known = known_time(closed, e, deals.created[d])
    states, query = np.arange(n, dtype=np.int64), At(at.values, np.zeros(n, np.int64))
    won = EventIndex(p, np.where(deals.won[d], known, NAT), n_groups=n).count_le(states, query)
    lost = EventIndex(p, np.where(deals.lost[d], known, NAT), n_groups=n).count_le(states, query)
    return won.astype(np.float64), lost.astype(np.float64)


def _entry_ages(
    rows: StageRows, deals: Deals, t: int, funnel: Funnel
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Entries into open stages known at ``t``, as ``typical_entry_age`` bins them: the
    (open stage x age-day) histogram, and each deal's entries as flat bin numbers."""
    n_open = len(funnel.stages)
    entry = rows.pos < n_open
    created = deals.created[rows.deal[entry]]
    age = np.clip((rows.entered[entry] - created) // US_PER_DAY, 0, _MAX_AGE_DAYS)
    known = known_time(rows.entered[entry], created) <= t
    flat = (rows.pos[entry] * BINS + age)[known]
    hist = np.bincount(flat, minlength=n_open * BINS).reshape(n_open, BINS)
    ids = deals.frame["deal_id"].astype("str").to_numpy()[rows.deal[entry][known]]
    if not len(ids):
        return hist, {}
    order = np.argsort(ids, kind="stable")
    ids, flat = ids[order], flat[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    return hist, dict(zip(ids[starts], np.split(flat, starts[1:]), strict=True))


def needs_full_build(day: Day, deal_id: str) -> bool:
    """Whether a posted deal replaces a CRM deal that is closed (or has an outcome): that
    moves every win rate, which only a full build of the CRM gets right."""
    if deal_id not in day.crm.index:
        return False
    return bool(day.crm.at[deal_id, "closed"] != NEVER)


def posted_features(mini: CRMData, *, day: Day) -> pd.DataFrame:
    """Features of the posted deals in ``mini`` (their rows alone, see the module
    docstring) open at the day's ``as_of``: what a full build of the CRM with each deal in
    place (alone) gives it. ``mini`` must not hold two deals of one account when either
    posted account-level touches (they would count for both)."""
    features = build_features(
        mini, as_of_dates=pd.DatetimeIndex([day.as_of]), funnel=day.funnel, **day.settings
    )
    if features.empty:
        return features
    own = mini.deals.set_index(mini.deals["deal_id"].astype("str"))
    ids = features["deal_id"].astype("str").tolist()
    own = own[~own.index.duplicated()].reindex(ids)
    replaced = day.crm.index.get_indexer(pd.Index(ids, dtype="str"))
    k, overall = float(day.settings["prior_strength"]), np.full(len(ids), day.overall)

    def rate(won: np.ndarray, lost: np.ndarray) -> np.ndarray:
        return smoothed_rate(won, lost, overall, prior_strength=k)

    if "deal__source_win_rate" in features:
        won, lost, _ = day.counts["source"].at(_keys(own, "source"))
        features["deal__source_win_rate"] = rate(won, lost)
    for column, prefix in (("owner_id", "owner"), ("account_id", "account")):
        if column in day.counts and f"{prefix}__win_rate" in features:
            keys = _keys(own, column)
            won, lost, n_open = day.counts[column].at(keys)
            n_open = n_open - _replaced_open(day.crm, replaced, column, keys, day.t) + 1
            has = np.array([key is not None for key in keys])
            _set(features, prefix, has, won, lost, n_open, rate(won, lost))
    if "stage__win_rate" in features:
        _stage_overrides(features, mini, day, rate)
    # one block per dtype: the frame is read column by column by the three model matrices,
    # the drift check and the reasons, each paying per block (a column each until now)
    return features.copy()


def _replaced_open(crm: pd.DataFrame, replaced: np.ndarray, column: str, keys: list, t: int):
    """What the replaced CRM deal (position in ``crm``, -1 for none) adds to its owner's /
    account's open count, where that is the posted deal's owner / account; else 0."""
    if not len(crm):
        return np.zeros(len(keys))
    at = np.maximum(replaced, 0)
    same = (replaced >= 0) & (crm[column].to_numpy(object)[at] == np.asarray(keys, dtype=object))
    created, closed = crm["created"].to_numpy(np.int64)[at], crm["closed"].to_numpy(np.int64)[at]
    counted = (created != NAT) & (created <= t)
    gone = (closed != NEVER) & (closed <= t)
    return np.where(same, counted.astype(np.float64) - gone, 0.0)


def _set(features, prefix, has, won, lost, n_open, rate) -> None:
    nan = np.nan
    features[f"{prefix}__win_rate"] = np.where(has, rate, nan)
    if prefix == "owner":
        features["owner__n_closed"] = np.where(has, won + lost, nan)
        features["owner__open_deals"] = np.where(has, n_open, nan)
    else:
        features["account__other_open_deals"] = np.where(has, n_open - 1, nan)
        features["account__n_won"] = np.where(has, won, nan)
        features["account__n_lost"] = np.where(has, lost, nan)


def _stage_overrides(features: pd.DataFrame, mini: CRMData, day: Day, rate) -> None:
    """``stage__win_rate`` from the day's counts; ``stage__days_older_than_typical`` from
    the day's entry ages with the deal's own entries in place of the replaced deal's."""
    pos = features["stage__position"].to_numpy(np.float64)
    at = np.where(np.isnan(pos), 0, pos).astype(np.int64)
    has = ~np.isnan(pos)
    features["stage__win_rate"] = np.where(has, rate(day.stage_won[at], day.stage_lost[at]), np.nan)
    deals = Deals.of(mini.deals)
    _, own = _entry_ages(StageRows.of(mini.stage_history, deals, day.funnel), deals, day.t,
                         day.funnel)  # fmt: skip
    n_open, ages = len(day.funnel.stages), features["deal__age_days"].to_numpy(np.float64)
    out = np.full(len(features), np.nan)
    for i, deal_id in enumerate(features["deal_id"].astype("str")):
        if not has[i] or at[i] >= n_open:
            continue
        stage = at[i]
        counts = day.entry_hist[stage].copy()
        for flat, sign in ((own.get(deal_id), 1), (day.entries.get(deal_id), -1)):
            if flat is not None:
                mine = flat[flat // BINS == stage] % BINS
                np.add.at(counts, mine, sign)
        cum = np.cumsum(counts)
        if cum[-1] > 0:
            out[i] = ages[i] - float(np.argmax(cum > (cum[-1] - 1) // 2))
    features["stage__days_older_than_typical"] = out
