"""Score one posted deal fast, in the context of a loaded CRM, as the daily export would.

The API posts one deal with its own rows. Re-scoring the whole CRM for that (the export's
way) costs seconds; here the CRM is indexed once (:class:`DealIndex`), each request swaps
the posted rows in for the deal's rows (:meth:`DealIndex.merged`), and the features are
built for that deal alone with the same code (``features.build.build_features`` with
``deal_ids``; every rate and aggregate still uses all of the CRM), so the deal's row is
exactly the row the export would give it if the deal were in the CRM.

What a posted deal does to the CRM's rows of the same ``deal_id`` (a repost):

- the posted ``deal`` row replaces the CRM's deal row (said in the warnings);
- posted ``stage_history`` rows replace the deal's stage rows; none posted keeps the
  CRM's (so a reposted deal never loses its stage); the same for the deal's touchpoints;
- posted account-level touchpoints (no ``deal_id``) are added to the account's touches,
  except exact copies of a touch the CRM already has.

The touchpoints given to the feature build are only the deal's and its account's: the
touch family counts nothing else for a deal (``features.touchpoints.relevant_rows``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from serving.deal_groups import groups, median_slack
from serving.score import NoOpenDealsError, Priority, rank

#: Per-deal tables whose rows of the posted deal replace the CRM's rows of that deal.
DEAL_TABLES = ("stage_history", "touchpoints")


@dataclass(frozen=True)
class Note:
    """Something the caller should know about how the posted rows were used."""

    table: str
    rule: str
    message: str


def _groups(values: pd.Series) -> dict[str, np.ndarray]:
    """Row positions per non-missing value."""
    present = values.notna().to_numpy(bool)
    keys = values[present].astype("str").to_numpy()
    rows = np.flatnonzero(present)
    if not len(rows):
        return {}
    order = np.argsort(keys, kind="stable")
    keys, rows = keys[order], rows[order]
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    return dict(zip(keys[starts], np.split(rows, starts[1:]), strict=True))


class DealIndex:
    """A loaded CRM with the row positions of every deal (and account-level touches per
    account), so posted deals' rows can be swapped in and out without scanning the tables.

    ``slack`` is how many entries into each open stage may change in all (added, removed
    or re-aged) without moving its median entry age at ``as_of`` (:func:`median_slack`):
    posted deals whose changes stay within it, with distinct owners and accounts, cannot
    change each other's features, so :func:`score_many` scores them in one pass.
    """

    def __init__(self, data: CRMData, *, funnel: Funnel, as_of: pd.Timestamp) -> None:
        self.data = data
        self._rows = {
            name: _groups(frame["deal_id"])
            for name in ("deals", *DEAL_TABLES)
            if (frame := data.table(name)) is not None and "deal_id" in frame
        }
        touches = data.touchpoints
        self._account_touches = (
            _groups(touches["account_id"].where(touches["deal_id"].isna()))
            if touches is not None and "account_id" in touches and "deal_id" in touches
            else {}
        )
        self.stages = tuple(funnel.stages)
        self.slack = median_slack(data, funnel=funnel, as_of=as_of)

    def crm_rows(self, table: str, deal_id: str) -> np.ndarray:
        return self._rows.get(table, {}).get(deal_id, np.empty(0, np.int64))

    def merged(self, posted: list[CRMData]) -> tuple[CRMData, list[list[Note]]]:
        """The CRM with the posted deals' rows in place (see the module docstring), its
        touchpoints cut to those deals' and their accounts'; and notes per posted deal on
        what replaced what. The deals must have distinct ids (and, for exact features,
        distinct owners and accounts: :func:`groups`).

        Raises ``ValueError`` when a posted value does not fit the CRM's column type.
        """
        notes: list[list[Note]] = [[] for _ in posted]
        ids = [_deal_id(p) for p in posted]
        gone = [self.crm_rows("deals", i) for i in ids]
        for deal_id, rows, own in zip(ids, gone, notes, strict=True):
            if len(rows):
                own.append(_replaces_deal(deal_id))
        deals = _concat(_without(self.data.deals, _cat(gone)), *(p.deals for p in posted))
        out = self.data.with_table("deals", deals)
        history = self.data.stage_history
        if history is not None:
            removed, added = [], []
            for deal_id, p, own in zip(ids, posted, notes, strict=True):
                rows = self.crm_rows("stage_history", deal_id)
                new = _replace("stage_history", deal_id, p.stage_history, rows, own)
                if new is not None:
                    removed.append(rows)
                    added.append(new)
            if added:
                out = out.with_table(
                    "stage_history", _concat(_without(history, _cat(removed)), *added)
                )
        if self.data.touchpoints is not None:
            out = out.with_table("touchpoints", self._touches(ids, posted, notes))
        for p, own in zip(posted, notes, strict=True):
            own.extend(
                _ignored(t)
                for t in DEAL_TABLES
                if self.data.table(t) is None and p.table(t) is not None
            )
        return out, notes

    def notes(self, posted: CRMData) -> list[Note]:
        """The notes :meth:`merged` gives a posted deal, without merging anything."""
        deal_id = _deal_id(posted)
        notes = [_replaces_deal(deal_id)] if len(self.crm_rows("deals", deal_id)) else []
        for table in DEAL_TABLES:
            if self.data.table(table) is not None:
                rows = self.crm_rows(table, deal_id)
                _replace(table, deal_id, posted.table(table), rows, notes)
        missing = (t for t in DEAL_TABLES if self.data.table(t) is None)
        return notes + [_ignored(t) for t in missing if posted.table(t) is not None]

    def _touches(
        self, ids: list[str], posted: list[CRMData], notes: list[list[Note]]
    ) -> pd.DataFrame:
        """The deals' touches (posted or the CRM's) and their accounts' account-level ones."""
        touches = self.data.touchpoints
        crm_rows, added = [], []
        for deal_id, p, own in zip(ids, posted, notes, strict=True):
            rows = self.crm_rows("touchpoints", deal_id)
            new = _replace("touchpoints", deal_id, p.touchpoints, rows, own)
            level = self._account_touches.get(_account(p) or "", np.empty(0, np.int64))
            crm_rows += [level, rows] if new is None else [level]
            added.append(new)
            extra = p.touchpoints
            if extra is not None and "deal_id" in extra:
                added.append(_new_rows(extra[extra["deal_id"].isna()], touches.iloc[level]))
        crm = touches.iloc[np.unique(_cat(crm_rows))]
        return _concat(crm, *added)


def _replaces_deal(deal_id: str) -> Note:
    message = f"deal {deal_id!r} is in the loaded CRM: the posted deal row replaces it"
    return Note("deal", "replaces_crm_deal", message)


def _deal_id(posted: CRMData) -> str:
    return str(posted.deals["deal_id"].iloc[0])


def _account(posted: CRMData) -> str | None:
    account = posted.deals["account_id"].iloc[0] if "account_id" in posted.deals else None
    return None if account is None or pd.isna(account) else str(account)


def _cat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.empty(0, np.int64), *arrays]).astype(np.int64)


def _replace(
    table: str, deal_id: str, posted: pd.DataFrame | None, rows: np.ndarray, notes: list[Note]
) -> pd.DataFrame | None:
    """The posted rows of the deal, or None to keep the CRM's ``rows`` as they are."""
    deal_rows = posted
    if posted is not None and "deal_id" in posted:
        deal_rows = posted[posted["deal_id"].astype("str") == deal_id]
    if deal_rows is None or deal_rows.empty:
        if len(rows):
            message = f"none posted: the deal's {len(rows)} {table} row(s) of the CRM are kept"
            notes.append(Note(table, "crm_rows_kept", message))
        return None
    if len(rows):
        message = (
            f"the {len(deal_rows)} posted {table} row(s) replace the deal's "
            f"{len(rows)} row(s) of the CRM"
        )
        notes.append(Note(table, "replaces_crm_rows", message))
    return deal_rows


def _ignored(table: str) -> Note:
    message = f"the loaded CRM has no {table} table: the posted {table} rows are ignored"
    return Note(table, "table_not_in_crm", message)


def _without(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    if not len(rows):
        return frame
    keep = np.ones(len(frame), dtype=bool)
    keep[rows] = False
    return frame.iloc[np.flatnonzero(keep)]


def _new_rows(posted: pd.DataFrame, existing: pd.DataFrame) -> pd.DataFrame:
    """Posted rows that are not exact copies of an existing row (on the posted columns)."""
    if posted.empty or existing.empty:
        return posted
    columns = [c for c in posted.columns if c in existing.columns]
    seen = set(map(tuple, _as_text(existing[columns]).to_numpy().tolist()))
    fresh = [t not in seen for t in map(tuple, _as_text(posted[columns]).to_numpy().tolist())]
    return posted[np.asarray(fresh, dtype=bool)]


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype("str").where(frame.notna(), "")


def _concat(base: pd.DataFrame, *others: pd.DataFrame | None) -> pd.DataFrame:
    """``base`` with ``others`` appended, in ``base``'s columns and dtypes (extra columns
    dropped: no model knows them; categorical columns gain the new categories)."""
    parts = [o for o in others if o is not None and len(o)]
    if not parts:
        return base.reset_index(drop=True)
    new = pd.concat([p.reindex(columns=base.columns) for p in parts], ignore_index=True)
    base = base.copy(deep=False)
    for column in base.columns:
        kind = base[column].dtype
        if isinstance(kind, pd.CategoricalDtype):
            values = new[column].astype("str").where(new[column].notna())
            extra = [v for v in pd.unique(values.dropna()) if v not in kind.categories]
            if extra:
                base[column] = base[column].cat.add_categories(extra)
            new[column] = pd.Categorical(values, categories=base[column].cat.categories)
        elif new[column].dtype != kind:
            new[column] = _cast(new[column], kind, column)
    return pd.concat([base, new], ignore_index=True)


def _cast(values: pd.Series, kind, column: str) -> pd.Series:
    try:
        return values.astype(kind)
    except (TypeError, ValueError):
        raise ValueError(
            f"{column}: the posted value(s) {values.dropna().unique()[:3].tolist()} do not fit "
            f"the loaded CRM's column type ({kind})"
        ) from None


def rank_among(leads: pd.DataFrame, scored: pd.DataFrame, *, priority: Priority) -> pd.DataFrame:
    """``scored``'s rows with the rank they take among ``leads`` (today's ranked list, the
    same deals' old rows left out); the other deals keep today's scores."""
    ids = set(scored["deal_id"].astype("str"))
    others = leads[~leads["deal_id"].astype("str").isin(ids)]
    ranked = rank(pd.concat([others, scored], ignore_index=True), priority=priority)
    return ranked[ranked["deal_id"].astype("str").isin(ids)].reset_index(drop=True)


def _unchanged(index: DealIndex, posted: CRMData, leads: pd.DataFrame) -> pd.DataFrame | None:
    """Today's ranked row of a reposted deal whose posted rows are exactly the CRM's (the
    CRM does not change, so neither does its row), else None."""
    deal_id = _deal_id(posted)
    row = leads[(leads["deal_id"].astype("str") == deal_id).to_numpy()]
    if row.empty or posted.touchpoints is not None and posted.touchpoints["deal_id"].isna().any():
        return None
    for table in ("deals", *DEAL_TABLES):
        crm, new = index.data.table(table), posted.table(table)
        if crm is None or new is None or new.empty:
            if table == "deals" or (new is not None and not new.empty):
                return None
            continue
        if not _same_rows(crm.iloc[index.crm_rows(table, deal_id)], new):
            return None
    return row


def _same_rows(crm: pd.DataFrame, posted: pd.DataFrame) -> bool:
    """Whether ``posted``, typed as the CRM's columns, holds exactly the ``crm`` rows."""
    if len(crm) != len(posted) or set(posted.columns) - set(crm.columns):
        return False
    try:
        aligned = _concat(crm.iloc[:0], posted)
    except ValueError:
        return False
    left, right = _as_text(crm.reset_index(drop=True)), _as_text(aligned)
    columns = list(left.columns)
    left = left.sort_values(columns).reset_index(drop=True)
    return left.equals(right.sort_values(columns).reset_index(drop=True))


def score_many(
    index: DealIndex,
    posted: list[CRMData],
    *,
    score: Callable[[CRMData, tuple[str, ...]], pd.DataFrame],
    leads: pd.DataFrame,
    priority: Priority,
) -> list[tuple[pd.DataFrame, list[Note]] | ValueError]:
    """Each posted deal's ranked row and notes, exactly as if it alone were posted (its
    rank among today's leads); ``ValueError`` for a deal that cannot be scored.

    ``score(data, deal_ids)`` scores the given deals of ``data``
    (``serving.score.score_open_deals`` with the champion). Deals are scored group by
    group (:func:`groups`), one feature build and one model pass per group; a repost
    whose rows are exactly the CRM's gets today's ranked row (nothing changed).
    """
    out: list[tuple[pd.DataFrame, list[Note]] | ValueError] = [ValueError()] * len(posted)
    todo = []
    for i, p in enumerate(posted):
        cached = _unchanged(index, p, leads)
        if cached is None:
            todo.append(i)
        else:
            out[i] = (rank_among(leads, cached, priority=priority), index.notes(p))
    for group in groups(index, [posted[i] for i in todo]):
        members = [todo[k] for k in group]
        try:
            data, notes = index.merged([posted[i] for i in members])
        except ValueError as exc:
            if len(members) > 1:  # find whose value does not fit: one by one
                for i in members:
                    out[i] = score_many(index, [posted[i]], score=score, leads=leads,
                                        priority=priority)[0]  # fmt: skip
                continue
            out[members[0]] = exc
            continue
        ids = tuple(_deal_id(posted[i]) for i in members)
        try:
            scored = score(data, ids)
        except NoOpenDealsError:
            scored = pd.DataFrame({"deal_id": pd.Series([], dtype="str")})
        by_id = scored["deal_id"].astype("str")
        for i, deal_id, own in zip(members, ids, notes, strict=True):
            row = scored[(by_id == deal_id).to_numpy()]
            if row.empty:
                out[i] = ValueError(
                    f"deal {deal_id!r} is not open at the scoring moment (created later, or "
                    "its last stage is won/lost): nothing to score"
                )
            else:
                out[i] = (rank_among(leads, row, priority=priority), own)
    return out
