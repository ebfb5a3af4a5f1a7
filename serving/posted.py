"""Score a batch of posted deals in the context of the loaded CRM, each as if posted alone.

The API's fast path (:func:`score_many`). Per posted deal, the cheapest exact way:

1. a repost whose rows are exactly the CRM's gets today's ranked row (nothing changed);
2. otherwise its features are built from its own rows and the day's cached CRM-wide
   aggregates (:mod:`serving.deal_features`), all such deals of a batch in one feature
   build and one model pass (:func:`passes` keeps apart only what would mix);
3. a deal replacing a *closed* CRM deal (which moves every win rate) is scored the full
   way: the CRM with the deal in place, features built over all of it
   (:meth:`serving.single_deal.DealIndex.merged`, grouped by :func:`serving.deal_groups.groups`).

Its ``rank`` is the rank it takes among today's ranked deals (:class:`Ranking`, the same
order as :func:`serving.score.rank`, without re-sorting the day's list).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from crm.data import CRMData
from serving.deal_features import Day, needs_full_build
from serving.deal_groups import groups
from serving.score import COLUMNS, NoOpenDealsError, Priority
from serving.single_deal import DealIndex, Note, _account, _deal_id, row_at, unchanged_many

Result = tuple[pd.DataFrame, list[Note]] | ValueError
Scorer = Callable[[CRMData, tuple[str, ...]], pd.DataFrame]


class Ranking:
    """Today's ranked list as arrays: the rank one re-scored deal takes among the other
    deals (:func:`serving.single_deal.rank_among`'s result, in O(deals) without a sort).

    The order is :func:`serving.score.rank`'s: ``priority`` descending, then the other
    score descending (missing values last), then ``deal_id``; ``owner_rank`` counts the
    deals of the same owner (deals without one rank among themselves).
    """

    def __init__(self, leads: pd.DataFrame, *, priority: Priority) -> None:
        self.leads, self.priority = leads, priority
        other = "p_win" if priority == "expected_value" else "expected_value"
        self.keys = (priority, other)
        self._a = leads[priority].to_numpy(np.float64, na_value=np.nan)
        self._b = leads[other].to_numpy(np.float64, na_value=np.nan)
        self._ids = leads["deal_id"].astype("str").to_numpy(dtype=str)
        self._owners = leads["owner_id"].astype("object").fillna("\0").to_numpy(dtype=str)
        self.where = {d: i for i, d in enumerate(self._ids.tolist())}

    def place(self, scored: pd.DataFrame) -> pd.DataFrame:
        """``scored``'s rows, each with the ``rank`` / ``owner_rank`` it takes among today's
        deals if it alone were re-scored (its own old row left out)."""
        a = scored[self.keys[0]].to_numpy(np.float64, na_value=np.nan)[:, None]
        b = scored[self.keys[1]].to_numpy(np.float64, na_value=np.nan)[:, None]
        ids = scored["deal_id"].astype("str").to_numpy(dtype=str)[:, None]
        owners = scored["owner_id"].astype("object").fillna("\0").to_numpy(dtype=str)[:, None]
        before = _ahead(self._a, a) | (
            _tied(self._a, a) & (_ahead(self._b, b) | (_tied(self._b, b) & (self._ids < ids)))
        )
        before &= self._ids != ids
        out = scored.reset_index(drop=True).copy()
        out["rank"] = before.sum(axis=1).astype(np.int64) + 1
        out["owner_rank"] = (before & (self._owners == owners)).sum(axis=1).astype(np.int64) + 1
        return out[list(COLUMNS)]


def _ahead(values: np.ndarray, value: np.ndarray) -> np.ndarray:
    """Per row of ``value`` (a column): which ``values`` sort before it, descending with
    missing values last."""
    missing = np.isnan(value)
    return np.where(missing, ~np.isnan(values), values > np.where(missing, 0.0, value))


def _tied(values: np.ndarray, value: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(value), np.isnan(values), values == value)


def passes(posted: list[CRMData]) -> list[list[int]]:
    """Positions of ``posted`` in feature builds whose deals cannot mix: distinct deal ids,
    and a deal posting account-level touches shares its account with no other member."""
    out: list[tuple[list[int], set[str], set[str], set[str]]] = []
    for i, p in enumerate(posted):
        deal_id, account = _deal_id(p), _account(p) or ""
        touches = p.touchpoints
        level = touches is not None and "deal_id" in touches and touches["deal_id"].isna().any()
        for members, ids, accounts, levels in out:
            if deal_id in ids or account in levels or (level and account in accounts):
                continue
            members.append(i)
            ids.add(deal_id)
            accounts.add(account)
            if level:
                levels.add(account)
            break
        else:
            out.append(([i], {deal_id}, {account}, {account} if level else set()))
    return [members for members, *_ in out]


def score_many(
    index: DealIndex,
    posted: list[CRMData],
    *,
    day: Day,
    score: Scorer,
    score_alone: Scorer,
    leads: pd.DataFrame,
    priority: Priority,
) -> list[Result]:
    """Each posted deal's ranked row and notes, exactly as if it alone were posted (its
    rank among today's leads); ``ValueError`` for a deal that cannot be scored.

    ``score(data, deal_ids)`` scores deals of a full CRM (``serving.score.score_open_deals``
    with the champion); ``score_alone(mini, deal_ids)`` scores posted deals from their own
    rows (:meth:`DealIndex.alone`) with features from ``day``
    (:func:`serving.deal_features.posted_features`).
    """
    ranking = Ranking(leads, priority=priority)
    out: list[Result] = [ValueError()] * len(posted)
    fast, full = [], []
    unchanged = unchanged_many(index, posted, leads, ranking.where)
    for i, (p, cached) in enumerate(zip(posted, unchanged, strict=True)):
        if cached is not None:  # nothing changed: today's row, rank and all
            out[i] = (cached, index.notes(p))
        else:
            (full if needs_full_build(day, _deal_id(p)) else fast).append(i)
    for members in passes([posted[i] for i in fast]):
        _score_alone(index, posted, [fast[k] for k in members], score_alone, ranking, out)
    for group in groups(index, [posted[i] for i in full]):
        _score_merged(index, posted, [full[k] for k in group], score, ranking, out)
    return out


def _score_alone(index, posted, members, score_alone, ranking, out) -> None:
    def build(ms):
        return index.alone([posted[i] for i in ms]), [index.notes(posted[i]) for i in ms]

    _score_group(build, score_alone, posted, members, ranking, out)


def _score_merged(index, posted, members, score, ranking, out) -> None:
    def build(ms):
        return index.merged([posted[i] for i in ms])

    _score_group(build, score, posted, members, ranking, out)


def _score_group(build, score, posted, members, ranking, out) -> None:
    """Score ``members`` together from ``build(members)`` (data, notes); when the group
    cannot be built, one by one, so only the deal whose value does not fit gets the error."""
    try:
        data, notes = build(members)
    except ValueError as exc:
        if len(members) > 1:
            for i in members:
                _score_group(build, score, posted, [i], ranking, out)
            return
        out[members[0]] = exc
        return
    ids = tuple(_deal_id(posted[i]) for i in members)
    _fill(out, members, ids, _scored(score, data, ids), ranking, notes)


def _scored(score: Scorer, data: CRMData, ids: tuple[str, ...]) -> pd.DataFrame:
    try:
        return score(data, ids)
    except NoOpenDealsError:
        return pd.DataFrame({"deal_id": pd.Series([], dtype="str")})


def _fill(out, members, ids, scored, ranking: Ranking, notes) -> None:
    placed = ranking.place(scored) if len(scored) else scored
    where = {d: k for k, d in enumerate(placed["deal_id"].astype("str"))}
    for i, deal_id, own in zip(members, ids, notes, strict=True):
        if deal_id not in where:
            out[i] = ValueError(
                f"deal {deal_id!r} is not open at the scoring moment (created later, or "
                "its last stage is won/lost): nothing to score"
            )
        else:
            out[i] = (row_at(placed, where[deal_id]), own)


#: Deal columns a repost may leave empty without a note: a posted deal is open.
REOPENED = frozenset({"closed_at", "outcome"})


def repost_notes(crm_row: Mapping[str, object], posted_row: Mapping[str, object]) -> list[Note]:
    """What a caller must know when a posted deal row replaces the loaded CRM's row of the
    same deal (it replaces it whole): the values the CRM has and the post leaves empty (the
    deal is scored without them), and a CRM deal that is closed (the post has it open)."""
    empty = [c for c, v in crm_row.items()
             if c not in REOPENED and pd.notna(v) and pd.isna(posted_row.get(c))]  # fmt: skip
    notes = []
    if empty:
        message = (
            f"the loaded CRM's deal row has {', '.join(empty)}, which the posted row leaves "
            "empty: the deal is scored without them (post them to keep them)"
        )
        notes.append(Note("deal", "crm_values_dropped", message))
    if pd.notna(crm_row.get("closed_at")) or pd.notna(crm_row.get("outcome")):
        message = (
            f"the loaded CRM has this deal closed ({crm_row.get('outcome')} at "
            f"{crm_row.get('closed_at')}); the posted row has it open: it is scored as open"
        )
        notes.append(Note("deal", "reopens_crm_deal", message))
    return notes
