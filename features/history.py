"""History-based rates and shared column helpers.

A rate at t counts only deals whose ``closed_at <= t`` (their outcome was known then):
won / closed, shrunk towards the overall win rate at t with a prior worth
``prior_strength`` closed deals (Bayesian / additive smoothing). Nothing about a deal
still open at t, nor any deal closing later, enters the rate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.point_in_time import NAT, At, EventIndex
from features.snapshots import Deals


@dataclass(frozen=True)
class ClosedCounts:
    """Won and lost deals per group (owner, source, account, ...) as of each query time."""

    won: EventIndex
    lost: EventIndex

    @classmethod
    def of(cls, deals: Deals, group_of_deal: np.ndarray, n_groups: int) -> ClosedCounts:
        """``group_of_deal[i]`` is deal i's group (-1 for none)."""
        return cls(
            won=EventIndex(group_of_deal, deals.close_time(deals.won), n_groups=n_groups),
            lost=EventIndex(group_of_deal, deals.close_time(deals.lost), n_groups=n_groups),
        )

    def at(self, groups: np.ndarray, at: At) -> tuple[np.ndarray, np.ndarray]:
        """(won, lost) counts per query, as float64."""
        won = self.won.count_le(groups, at).astype(np.float64)
        lost = self.lost.count_le(groups, at).astype(np.float64)
        return won, lost


def overall_win_rate(deals: Deals, at: At) -> np.ndarray:
    """Won share of all deals closed at or before each query time; NaN before any close."""
    counts = ClosedCounts.of(deals, np.zeros(len(deals), dtype=np.int64), 1)
    won, lost = counts.at(np.zeros(len(at), dtype=np.int64), at)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(won + lost > 0, won / (won + lost), np.nan)


def smoothed_rate(
    won: np.ndarray, lost: np.ndarray, prior: np.ndarray, *, prior_strength: float
) -> np.ndarray:
    """(won + k * prior) / (won + lost + k): the group's rate, shrunk towards ``prior``."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return (won + prior_strength * prior) / (won + lost + prior_strength)


def group_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes of a key column (NA -> -1) and the number of distinct keys."""
    codes, uniques = pd.factorize(values.astype("str"), use_na_sentinel=True)
    return codes.astype(np.int64), len(uniques)


def categorical(values: pd.Series | pd.Categorical) -> pd.Categorical:
    """Values as a pandas categorical whose categories are the values present, sorted.

    Categories therefore depend only on the rows of the feature table (all known at their
    as_of), never on later data; models map them to their training categories.
    """
    cat = pd.Categorical(values)
    present = cat.remove_unused_categories()
    return present.reorder_categories(sorted(present.categories, key=str))


def take_column(frame: pd.DataFrame, column: str, rows: np.ndarray) -> pd.Series:
    """``frame[column]`` at positions ``rows`` (-1 = missing), positionally indexed."""
    return pd.Series(frame[column].array.take(rows, allow_fill=True))


def as_float(values: pd.Series) -> np.ndarray:
    """A numeric column as float64 (NA -> NaN)."""
    return pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def known_time(*times: np.ndarray) -> np.ndarray:
    """The time a fact combining several events is known: the latest of them (NaT wins)."""
    out = np.maximum.reduce(times)
    missing = np.logical_or.reduce([t == NAT for t in times])
    return np.where(missing, NAT, out)
