"""Which posted deals can be scored in one pass without changing each other's features.

:func:`serving.single_deal.score_many` scores deals posted together in one feature build
per group. Posted deals are open, so they move no win rate; they can move another
posted deal's features only through (a) the owner's and the account's deal counts, (b)
the account's account-level touches and (c) the median age at which deals entered a
stage (``stage__days_older_than_typical``, over every deal's entries). A group therefore
holds deals of distinct owners and accounts whose changed stage entries stay within the
medians' slack (:func:`median_slack`); a deal replacing a *closed* CRM deal (which would
move every rate) stands alone. Each deal's result is then exactly its result alone.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from features.history import known_time
from features.point_in_time import US_PER_DAY, to_us
from features.snapshots import Deals
from features.stage_history import _MAX_AGE_DAYS, StageRows


class DealIndex(Protocol):
    """What the grouping reads of :class:`serving.single_deal.DealIndex` (a protocol, so
    this module does not import the one that imports it)."""

    data: CRMData
    stages: tuple[str, ...]
    slack: np.ndarray

    def crm_rows(self, table: str, deal_id: str) -> np.ndarray: ...


def _deal_id(posted: CRMData) -> str:
    return str(posted.deals["deal_id"].iloc[0])


def median_slack(data: CRMData, *, funnel: Funnel, as_of: pd.Timestamp) -> np.ndarray:
    """How many stage entries may change in all without moving the median entry age of
    any open stage at ``as_of`` (``stage__days_older_than_typical``, computed by
    :func:`features.stage_history.typical_entry_age` over every deal's entries).

    With ``n`` entries, ``below`` of them under the median day and ``upto`` at or under
    it, the median stays after ``s`` changes (adds or removals, anywhere) when
    ``below + s <= (n - s - 1) // 2`` and ``upto - s > (n + s - 1) // 2``. One value per
    open stage (an entry changes only its stage's median); large without stage history.
    """
    if data.stage_history is None:
        return np.full(len(funnel.stages), 1 << 30)
    deals = Deals.of(data.deals)
    rows = StageRows.of(data.stage_history, deals, funnel)
    n_open, bins = len(funnel.stages), _MAX_AGE_DAYS + 1
    entry = rows.pos < n_open
    created = deals.created[rows.deal[entry]]
    age = np.clip((rows.entered[entry] - created) // US_PER_DAY, 0, _MAX_AGE_DAYS)
    known = known_time(rows.entered[entry], created) <= to_us(pd.DatetimeIndex([as_of]))[0]
    flat = rows.pos[entry][known] * bins + age[known]
    counts = np.bincount(flat, minlength=n_open * bins).reshape(n_open, bins).cumsum(axis=1)
    slack = np.zeros(n_open, dtype=np.int64)
    for stage, upto_day in enumerate(counts):
        n = int(upto_day[-1])
        median = int(np.argmax(upto_day > (n - 1) // 2)) if n else 0
        below = int(upto_day[median - 1]) if median else 0
        upto = int(upto_day[median])
        s = 0
        while n and below + s + 1 <= (n - s - 2) // 2 and upto - s - 1 > (n + s) // 2:
            s += 1
        slack[stage] = s
    return slack


def weight(index: DealIndex, posted: CRMData) -> tuple[np.ndarray, np.ndarray] | None:
    """Per open stage: the entries a posted deal changes for other deals (its posted rows,
    and the CRM's rows of the deal it replaces), and whether it may be in that stage at
    ``as_of`` (the only deals that read the stage's median). None when it must be scored
    alone: it replaces a CRM deal that is closed, which would move every win rate."""
    deal_id = _deal_id(posted)
    old = index.crm_rows("deals", deal_id)
    if len(old):
        crm = index.data.deals.iloc[old]
        if any(crm[c].notna().any() for c in ("closed_at", "outcome") if c in crm):
            return None
    crm_rows = None
    if index.data.stage_history is not None:
        crm_rows = index.data.stage_history.iloc[index.crm_rows("stage_history", deal_id)]
    mine = posted.stage_history
    changed = _stage_counts(index.stages, mine) + _stage_counts(index.stages, crm_rows)
    own = mine if mine is not None and len(mine) else crm_rows
    return changed, _stage_counts(index.stages, own) > 0


def _stage_counts(stages: tuple[str, ...], rows: pd.DataFrame | None) -> np.ndarray:
    if rows is None or "stage" not in rows or not len(rows):
        return np.zeros(len(stages), dtype=np.int64)
    pos = pd.Index(stages).get_indexer(rows["stage"].astype("str"))
    return np.bincount(pos[pos >= 0], minlength=len(stages))


def groups(index: DealIndex, posted: list[CRMData]) -> list[list[int]]:
    """Positions of ``posted`` in groups whose deals cannot change each other's features:
    distinct deal ids, owners and accounts (the posted and the replaced CRM values); for
    every stage a member may be in, the members' entries into it changed by no more than
    the stage's :attr:`DealIndex.slack`; a deal replacing a closed CRM deal alone."""
    out: list[tuple[list[int], set[str], list]] = []
    for i, p in enumerate(posted):
        keys, w = _keys(index, p), weight(index, p)
        for members, taken, load in out:
            if w is None or load[0] is None or keys & taken:
                continue
            changed, read = load[0][0] + w[0], load[0][1] | w[1]
            if np.all(~read | (changed <= index.slack)):
                members.append(i)
                taken |= keys
                load[0] = (changed, read)
                break
        else:
            out.append(([i], set(keys), [w]))
    return [members for members, _, _ in out]


def _keys(index: DealIndex, posted: CRMData) -> set[str]:
    """The deal id, owners and accounts a posted deal touches (posted and replaced)."""
    frames = [posted.deals, index.data.deals.iloc[index.crm_rows("deals", _deal_id(posted))]]
    keys = {f"deal:{_deal_id(posted)}"}
    for frame in frames:
        for column in ("owner_id", "account_id"):
            if column in frame:
                keys |= {f"{column}:{v}" for v in frame[column].dropna().astype("str")}
    return keys
