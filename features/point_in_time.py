"""As-of lookups over whole tables at once: "how many events of this group happened at or
before t", "which was the latest", "which comes first after t".

Every lookup is a binary search over one sorted int64 key per event, so a million
(deal, as_of) queries against millions of events cost a few ``np.searchsorted`` calls and
no Python loop. Times are int64 microseconds since the epoch (the loaded
``datetime64[us, UTC]`` values); an event is known at t when its time is ``<= t``
(inclusive: a touch stamped exactly at as_of is known at as_of).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm.schemas import TIMESTAMP_DTYPE

#: Stand-in for a missing time (NaT) in int64 microseconds.
NAT = np.iinfo(np.int64).min
#: Stand-in for "never" (e.g. the close time of a deal still open).
NEVER = np.iinfo(np.int64).max
US_PER_DAY = 86_400 * 1_000_000


def to_us(values: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Timestamps as int64 microseconds since the epoch, UTC; NaT becomes :data:`NAT`."""
    series = pd.Series(values)
    if series.dtype != TIMESTAMP_DTYPE:
        series = pd.to_datetime(series, utc=True).astype(TIMESTAMP_DTYPE)
    return series.to_numpy(dtype="datetime64[us]", na_value=np.datetime64("NaT")).view(np.int64)


def days(delta_us: np.ndarray) -> np.ndarray:
    """Microsecond differences as float days."""
    return delta_us.astype(np.float64) / US_PER_DAY


@dataclass(frozen=True)
class At:
    """Query times, stored as a few distinct ``values`` and each query's ``index`` into them.

    Snapshot queries repeat a handful of dates over millions of rows; ranking the distinct
    dates once and gathering is far cheaper than ranking every row.
    """

    values: np.ndarray
    index: np.ndarray

    @classmethod
    def of(cls, times: np.ndarray) -> At:
        """Query times given row by row."""
        values, index = np.unique(np.asarray(times, dtype=np.int64), return_inverse=True)
        return cls(values, index.astype(np.int64))

    def shift(self, delta_us: int) -> At:
        """The same queries moved by ``delta_us`` microseconds (e.g. ``t - 30 days``)."""
        return At(self.values + np.int64(delta_us), self.index)

    def times(self) -> np.ndarray:
        """One time per query row."""
        return self.values[self.index]

    def __len__(self) -> int:
        return len(self.index)


class EventIndex:
    """Events keyed by an integer group (e.g. a deal), sorted by (group, time).

    Events with a negative group or a missing time are ignored. Among events with equal
    group and time the input order is kept, so callers that care about ties pre-sort.
    ``rows[i]`` is the input row of the i-th event in sorted order, ``times[i]`` its time.

    The sort key is ``group * n + rank``, where ``rank`` is the event's position in time
    order: a query (g, t) becomes ``g * n + (number of events at or before t)``, one binary
    search, exact to the microsecond. Queries run fastest sorted by group.
    """

    def __init__(self, groups: np.ndarray, times: np.ndarray, *, n_groups: int) -> None:
        groups = np.asarray(groups, dtype=np.int64)
        times = np.asarray(times, dtype=np.int64)
        keep = np.flatnonzero((groups >= 0) & (times != NAT) & (groups < n_groups))
        g, t = groups[keep], times[keep]
        by_time = np.argsort(t, kind="stable")
        self._sorted_times = t[by_time]
        rank = np.empty(len(t), dtype=np.int64)
        rank[by_time] = np.arange(len(t), dtype=np.int64)
        self._n = np.int64(max(len(t), 1))
        key = g * self._n + rank
        order = np.argsort(key)
        self._keys = key[order]
        self.rows = keep[order]
        self.times = t[order]
        self.groups = g[order]
        # at least one group's bounds, so invalid queries (mapped to group 0) stay in range
        bounds = np.searchsorted(
            self._keys, np.arange(max(n_groups, 1) + 1, dtype=np.int64) * self._n
        )
        self.start, self.end = bounds[:-1], bounds[1:]
        self._n_groups = n_groups

    def __len__(self) -> int:
        return len(self._keys)

    def _valid(self, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        g = np.asarray(groups, dtype=np.int64)
        ok = (g >= 0) & (g < self._n_groups)
        return np.where(ok, g, 0), ok

    def position(self, groups: np.ndarray, at: At) -> np.ndarray:
        """Sorted position just after the group's last event at or before t.

        Events of group g at or before t are exactly ``start[g]:position`` (empty for an
        invalid group, whose position is ``start[0]``).
        """
        g, ok = self._valid(groups)
        known = np.searchsorted(self._sorted_times, at.values, "right")[at.index]
        pos = np.searchsorted(self._keys, g * self._n + known, "left")
        return np.where(ok, pos, self.start[g])

    def count_le(self, groups: np.ndarray, at: At) -> np.ndarray:
        """Number of events of each query's group with time <= the query's time."""
        g, _ = self._valid(groups)
        return self.position(groups, at) - self.start[g]

    def last_le(self, groups: np.ndarray, at: At) -> np.ndarray:
        """Sorted position of the latest event of the group at or before t, or -1."""
        g, _ = self._valid(groups)
        pos = self.position(groups, at)
        return np.where(pos > self.start[g], pos - 1, -1)

    def first_gt(self, groups: np.ndarray, at: At) -> np.ndarray:
        """Sorted position of the earliest event of the group strictly after t, or -1."""
        g, ok = self._valid(groups)
        pos = self.position(groups, at)
        return np.where(ok & (pos < self.end[g]), pos, -1)

    def time_at(self, pos: np.ndarray) -> np.ndarray:
        """Event time at sorted positions, :data:`NAT` where ``pos`` is -1."""
        if len(self.times) == 0:
            return np.full(len(pos), NAT, dtype=np.int64)
        return np.where(pos >= 0, self.times[np.maximum(pos, 0)], NAT)

    def prefix(self, weights: np.ndarray) -> np.ndarray:
        """Running totals of per-row ``weights`` (input order) along the sorted events.

        ``prefix[b] - prefix[a]`` sums the weights of sorted events ``a:b``; with
        :meth:`position` that is a windowed count per group without any loop.
        """
        w = np.asarray(weights)[self.rows]
        out = np.zeros(len(w) + 1, dtype=np.int64)
        np.cumsum(w, out=out[1:])
        return out


def take(values: np.ndarray, pos: np.ndarray, fill: float = np.nan) -> np.ndarray:
    """``values[pos]`` as float64 with ``fill`` where ``pos`` is -1 (no event)."""
    out = np.full(len(pos), fill, dtype=np.float64)
    hit = pos >= 0
    out[hit] = values[pos[hit]]
    return out


def days_since(at: At, event_time: np.ndarray) -> np.ndarray:
    """Days from ``event_time`` to the query time; NaN where there was no event."""
    missing = event_time == NAT
    out = days(at.times() - np.where(missing, 0, event_time))
    out[missing] = np.nan
    return out


def index_in(values: pd.Series, names: pd.Index | list[str]) -> np.ndarray:
    """Position of each value in ``names`` (-1 if missing or absent), as int64.

    Strings are matched by Arrow's hash lookup (several times faster than pandas on
    millions of rows); categoricals through their categories, never value by value.
    """
    names = pd.Index(names, dtype="str")
    if isinstance(values.dtype, pd.CategoricalDtype):
        per_category = index_in(pd.Series(values.cat.categories.astype("str")), names)
        return np.append(per_category, -1)[values.cat.codes.to_numpy()]  # code -1 -> -1
    if len(values) == 0 or len(names) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    arr = pa.array(values.astype("str"), from_pandas=True)
    found = pc.index_in(arr, value_set=pa.array(names.to_numpy(dtype=object), type=arr.type))
    return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
