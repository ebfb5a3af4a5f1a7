"""The as-of lookup engine against a brute-force reference, plus hand-checked cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from features.point_in_time import NAT, At, EventIndex, days_since, index_in, to_us

events = st.lists(
    st.tuples(st.integers(-1, 3), st.integers(0, 20) | st.just(int(NAT))), max_size=40
)
queries = st.lists(st.tuples(st.integers(-1, 4), st.integers(-2, 22)), min_size=1, max_size=20)


def _brute(ev, g, t):
    known = [i for i, (eg, et) in enumerate(ev) if eg == g and et != NAT and et <= t and eg >= 0]
    later = [i for i, (eg, et) in enumerate(ev) if eg == g and et != NAT and et > t and eg >= 0]
    return known, later


@settings(max_examples=200, deadline=None)
@given(events, queries)
def test_event_index_matches_brute_force(ev, qs):
    groups = np.array([e[0] for e in ev], dtype=np.int64)
    times = np.array([e[1] for e in ev], dtype=np.int64)
    index = EventIndex(groups, times, n_groups=4)
    qg = np.array([q[0] for q in qs], dtype=np.int64)
    at = At.of(np.array([q[1] for q in qs], dtype=np.int64))
    count, last, first = index.count_le(qg, at), index.last_le(qg, at), index.first_gt(qg, at)
    for i, (g, t) in enumerate(qs):
        known, later = _brute(ev, g, t)
        assert count[i] == len(known)
        if known:
            assert index.times[last[i]] == max(ev[k][1] for k in known)
            assert index.rows[last[i]] in known
        else:
            assert last[i] == -1
        if later:
            assert index.times[first[i]] == min(ev[k][1] for k in later)
        else:
            assert first[i] == -1


def test_ties_keep_input_order_and_exact_time_is_known():
    index = EventIndex(np.array([0, 0, 0]), np.array([5, 5, 9]), n_groups=1)
    at = At.of(np.array([5, 4, 9]))
    assert index.count_le(np.zeros(3, dtype=np.int64), at).tolist() == [2, 0, 3]
    # the latest of two events at the same time is the later input row
    assert index.rows[index.last_le(np.zeros(1, dtype=np.int64), At.of(np.array([5])))[0]] == 1


def test_prefix_sums_weights_in_sorted_order():
    index = EventIndex(np.array([1, 0, 1, 0]), np.array([3, 2, 1, 4]), n_groups=2)
    prefix = index.prefix(np.array([10, 20, 30, 40]))
    # sorted: (0,2)=20, (0,4)=40, (1,1)=30, (1,3)=10
    assert prefix.tolist() == [0, 20, 60, 90, 100]


def test_at_shift_moves_every_query():
    at = At.of(np.array([10, 30, 10]))
    assert at.shift(-5).times().tolist() == [5, 25, 5]
    assert len(at) == 3


def test_to_us_converts_zones_and_naive_is_utc():
    aware = pd.Series(pd.to_datetime(["2024-03-01T00:30:00+01:00"]))
    naive = pd.Series(pd.to_datetime(["2024-02-29T23:30:00"]))
    assert to_us(aware)[0] == to_us(naive)[0]
    assert to_us(pd.Series([pd.NaT], dtype="datetime64[us, UTC]"))[0] == NAT


def test_days_since_is_nan_without_event():
    at = At.of(np.array([86_400_000_000 * 3]))
    assert days_since(at, np.array([86_400_000_000]))[0] == 2.0
    assert np.isnan(days_since(at, np.array([NAT]))[0])


def test_index_in_handles_strings_categoricals_and_missing():
    names = ["b", "a"]
    assert index_in(pd.Series(["a", None, "z"], dtype="str"), names).tolist() == [1, -1, -1]
    cat = pd.Series(["b", None, "c"], dtype="category")
    assert index_in(cat, names).tolist() == [0, -1, -1]
