"""Reading the hidden truth: what really happened to a deal, whatever the CRM recorded.

The truth frame's ``eventual_outcome`` and ``eventual_closed_at`` are the real, uncut
outcome and close time of every deal: simulated beyond as_of for deals still open, and
before any late recording or truncation of a scenario. So the real answer to "was this
deal won within H days of as_of?" is known for any (deal, as_of), also where the data
cannot know it yet.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from crm.schemas import WON


def truth_won_within(
    truth: pd.DataFrame,
    deal_ids: Sequence[str] | pd.Series | np.ndarray,
    as_of: pd.Timestamp | Sequence[pd.Timestamp] | pd.Series,
    horizon_days: float,
) -> np.ndarray:
    """True where the deal was really won in ``(as_of, as_of + horizon_days]``.

    ``as_of`` is one moment or one per deal (naive = UTC). A deal really closed at or
    before ``as_of`` (e.g. a win the CRM recorded late) gives False, like any deal lost or
    won later; the question is meant for deals really open at ``as_of``. Unknown deal ids
    raise ``KeyError``.
    """
    ids = pd.Index(np.asarray(deal_ids, dtype=object))
    pos = pd.Index(truth["deal_id"]).get_indexer(ids)
    if (pos < 0).any():
        missing = ids[pos < 0]
        raise KeyError(f"{len(missing)} deal id(s) not in the truth, e.g. {missing[0]!r}")
    close = pd.DatetimeIndex(truth["eventual_closed_at"]).tz_convert("UTC")[pos]
    won = (truth["eventual_outcome"] == WON).to_numpy()[pos]
    when = _utc(as_of, len(pos))
    return won & (close > when) & (close <= when + pd.Timedelta(days=horizon_days))


def _utc(moment, n: int) -> pd.DatetimeIndex:
    """``moment`` (one or ``n`` values) as a UTC DatetimeIndex of length ``n``."""
    values = pd.DatetimeIndex(np.atleast_1d(pd.to_datetime(moment)))
    values = values.tz_localize("UTC") if values.tz is None else values.tz_convert("UTC")
    if len(values) == 1 and n != 1:
        values = values.repeat(n)
    if len(values) != n:
        raise ValueError(f"as_of has {len(values)} values for {n} deals")
    return values
