"""The spine of the feature table: one row per (deal, as_of) for every deal open at as_of.

A deal is open at t when ``created_at <= t`` and it has no ``closed_at`` or
``closed_at > t`` (the contract's point-in-time rule). A deal that closes later than t is
open at t; only *whether* it is still open at t is used, never when or how it closes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import LOST, WON
from features.point_in_time import NAT, NEVER, At, index_in, to_us

MAX_SNAPSHOTS = 5_000
"""No plan may hold more snapshot dates: 96 years of weeks, 13 years of days. More means a
wrong start or end (a date typed as 9999-12-31), and would exhaust memory long before it
finished, so it is an error, not a slow run."""


class TooManySnapshotsError(ValueError):
    """The planned snapshot series is longer than :data:`MAX_SNAPSHOTS`."""


def snapshot_dates(start: pd.Timestamp, end: pd.Timestamp, freq: str) -> pd.DatetimeIndex:
    """Snapshot times from ``start`` to ``end`` (both inclusive) at pandas frequency ``freq``.

    Times are midnights UTC (``start`` is floored to its day; ``W-MON`` gives Mondays 00:00,
    i.e. everything that happened up to the end of Sunday). Naive inputs are read as UTC.
    Raises :class:`TooManySnapshotsError` (naming freq, start and end) when there would be
    more than :data:`MAX_SNAPSHOTS`; the check allocates at most that many dates.
    """
    start, end = _utc(start).normalize().as_unit("us"), _utc(end).as_unit("us")
    try:
        probe = pd.date_range(start, periods=MAX_SNAPSHOTS + 1, freq=freq, unit="us")
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        probe = None  # the bound lies beyond the calendar: end is surely before it
    if probe is not None and probe[-1] <= end:
        raise TooManySnapshotsError(
            f"snapshots every {freq!r} from {start.date()} to {end.date()} would be more than "
            f"{MAX_SNAPSHOTS:,}: check features.freq, features.start and the data's end "
            "(features.data_end, or the latest event; a date such as 9999-12-31 in the data?)"
        )
    dates = pd.date_range(start, end, freq=freq, unit="us")
    return pd.DatetimeIndex(dates, name="as_of").as_unit("us")


def as_of_index(times: pd.DatetimeIndex | list[pd.Timestamp]) -> pd.DatetimeIndex:
    """Given as-of times as a sorted, de-duplicated ``datetime64[us, UTC]`` index."""
    index = pd.DatetimeIndex(pd.to_datetime(list(times), utc=True))
    return pd.DatetimeIndex(index.unique().sort_values(), name="as_of").as_unit("us")


EVENT_COLUMNS = (
    ("deals", "created_at"),
    ("deals", "closed_at"),
    ("stage_history", "entered_at"),
    ("touchpoints", "occurred_at"),
)
"""The event times of the contract: what happened, as opposed to plans."""


def _utc(t: pd.Timestamp) -> pd.Timestamp:
    t = pd.Timestamp(t)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


@dataclass(frozen=True)
class Deals:
    """The deals table with what every family needs as arrays, indexed by deal position.

    ``closed`` is :data:`NEVER` for open deals; ``won``/``lost`` say how a deal closed and
    are only ever used together with ``closed <= t``.
    """

    frame: pd.DataFrame
    created: np.ndarray
    closed: np.ndarray
    won: np.ndarray
    lost: np.ndarray
    _ids: pd.Index

    @classmethod
    def of(cls, deals: pd.DataFrame) -> Deals:
        """Deals sorted by ``deal_id``, so positions follow the output order of ids."""
        ids = deals["deal_id"].astype("str").to_numpy()
        frame = deals.iloc[np.argsort(ids, kind="stable")].reset_index(drop=True)
        closed = to_us(frame["closed_at"]) if "closed_at" in frame else _nat(len(frame))
        outcome = frame["outcome"] if "outcome" in frame else pd.Series(pd.NA, index=frame.index)
        return cls(
            frame=frame,
            created=to_us(frame["created_at"]),
            closed=np.where(closed == NAT, NEVER, closed),
            won=(outcome == WON).fillna(False).to_numpy(dtype=bool),
            lost=(outcome == LOST).fillna(False).to_numpy(dtype=bool),
            _ids=pd.Index(frame["deal_id"].astype("str")),
        )

    def __len__(self) -> int:
        return len(self.frame)

    def codes(self, deal_ids: pd.Series) -> np.ndarray:
        """Deal position of each id, -1 for missing or unknown ids."""
        return index_in(deal_ids, self._ids)

    def close_time(self, which: np.ndarray) -> np.ndarray:
        """Close times for deals selected by the boolean mask ``which``, else :data:`NAT`."""
        return np.where(which & (self.closed != NEVER), self.closed, NAT)


def _nat(n: int) -> np.ndarray:
    return np.full(n, NAT, dtype=np.int64)


@dataclass(frozen=True)
class Spine:
    """The (deal, as_of) rows, computed in deal-major order (as-of lookups then sweep each
    sorted event table once) and output in (as_of, deal_id) order via :meth:`output_order`.

    ``deal`` is the deal position in :class:`Deals`; ``at`` the row's as_of; ``dates`` the
    requested as-of times (``at.values`` are their int64 microseconds).
    """

    deal: np.ndarray
    at: At
    dates: pd.DatetimeIndex

    def __len__(self) -> int:
        return len(self.deal)

    @classmethod
    def build(cls, deals: Deals, dates: pd.DatetimeIndex) -> Spine:
        """Every deal open at every date, without a loop: per deal, the open dates form one
        contiguous run of the sorted dates, found by two binary searches."""
        d = to_us(dates)
        first = np.searchsorted(d, deals.created, "left")
        stop = np.searchsorted(d, deals.closed, "left")
        n = np.where(deals.created == NAT, 0, np.maximum(stop - first, 0))
        deal = np.repeat(np.arange(len(deals), dtype=np.int64), n)
        offset = np.arange(len(deal), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n)
        return cls(deal=deal, at=At(d, np.repeat(first, n) + offset), dates=dates)

    def only(self, deal_positions: np.ndarray) -> Spine:
        """The rows of these deal positions (unknown ones, -1, are ignored)."""
        keep = np.isin(self.deal, deal_positions[deal_positions >= 0])
        at = At(self.at.values, self.at.index[keep])
        return Spine(deal=self.deal[keep], at=at, dates=self.dates)

    def output_order(self) -> np.ndarray:
        """Positions that sort the rows by (as_of, deal_id): deal positions follow ids."""
        return np.lexsort((self.deal, self.at.index))

    def keys(self, deals: Deals, order: np.ndarray) -> pd.DataFrame:
        """``deal_id`` (str) and ``as_of`` (UTC) of the rows at positions ``order``."""
        ids = deals.frame["deal_id"].astype("str").to_numpy()
        return pd.DataFrame(
            {
                "deal_id": pd.array(ids[self.deal[order]], dtype="str"),
                "as_of": self.dates[self.at.index[order]],
            }
        )


def latest_timestamp(data: CRMData, *, not_after: pd.Timestamp | None = None) -> pd.Timestamp:
    """The latest event in the data: a safe stand-in for when it was extracted.

    Event times only (creations, closes, stage entries, touches); the rep's
    ``expected_close_date`` is a plan and may lie in the future. Using it as ``data_end``
    is conservative: the real extraction was at or after it, so no label is claimed known
    that is not. With ``not_after`` (the clock), later times are implausible and ignored.
    """
    times = []
    for table, column in EVENT_COLUMNS:
        frame = data.table(table)
        if frame is not None and column in frame and len(frame):
            values = frame[column]
            if not_after is not None:
                values = values[(values <= not_after).fillna(False).to_numpy(bool)]
            times.append(values.max())
    known = [t for t in times if not pd.isna(t)]
    if not known:
        raise ValueError("the data has no timestamps, so it has no as-of")
    return max(known)


def open_deals_at(deals: pd.DataFrame, as_of_dates: pd.DatetimeIndex) -> pd.DataFrame:
    """``deal_id`` and ``as_of`` of every deal open at each date, sorted by (as_of, deal_id)."""
    table = Deals.of(deals)
    spine = Spine.build(table, as_of_index(as_of_dates))
    return spine.keys(table, spine.output_order())
