"""A posted deal's rows against a loaded CRM: which rows it replaces, and the data to score.

The CRM is indexed once (:class:`DealIndex`: every deal's row positions, row keys to
tell an unchanged repost). For a posted deal it gives either only the deal's own rows as
the CRM would hold them with the deal in place (:meth:`DealIndex.alone`, the fast path of
:mod:`serving.posted`, with the CRM-wide aggregates from :mod:`serving.deal_features`), or
the CRM with the deal's rows swapped in (:meth:`DealIndex.merged`, for the full build),
and the notes that say what was replaced or kept.

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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from serving.deal_groups import median_slack
from serving.row_keys import row_keys
from serving.score import Priority, rank

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
        accounts = data.accounts
        self._accounts = (
            _groups(accounts["account_id"])
            if accounts is not None and "account_id" in accounts
            else {}
        )
        self._keys = {
            name: row_keys(frame)
            for name in ("deals", *DEAL_TABLES)
            if (frame := data.table(name)) is not None
        }
        self.stages = tuple(funnel.stages)
        self.slack = median_slack(data, funnel=funnel, as_of=as_of)

    def crm_rows(self, table: str, deal_id: str) -> np.ndarray:
        return self._rows.get(table, {}).get(deal_id, np.empty(0, np.int64))

    def same_rows(self, table: str, deal_id: str, posted: pd.DataFrame) -> bool:
        """Whether ``posted`` holds exactly the CRM's rows of the deal in ``table`` (any
        order; a column only one side has must be empty on it, e.g. an optional contract
        column the API's body always carries: :mod:`serving.row_keys`)."""
        return self.same_rows_many(table, [(deal_id, posted)])[0]

    def same_rows_many(
        self, table: str, items: list[tuple[str, pd.DataFrame]], keys: list | None = None
    ) -> list[bool]:
        """:meth:`same_rows` of each ``(deal_id, posted)``. ``keys``: the posted rows'
        :func:`~serving.row_keys.row_keys` where known (None: computed here, the frames of
        the same columns and dtypes in one pass, as the cost is mostly per call)."""
        out, known = [False] * len(items), list(keys or [None] * len(items))
        alike: dict[tuple, list[int]] = {}
        for k, (deal_id, posted) in enumerate(items):
            if known[k] is None and len(self.crm_rows(table, deal_id)) == len(posted):
                key = (tuple(posted.columns), tuple(map(str, posted.dtypes)))
                alike.setdefault(key, []).append(k)
        for members in alike.values():
            frames = [items[k][1] for k in members]
            both = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
            ends = np.cumsum([len(f) for f in frames])
            every = row_keys(both)
            for k, end, frame in zip(members, ends, frames, strict=True):
                known[k] = every[end - len(frame) : end]
        for k, (deal_id, _) in enumerate(items):
            rows = self.crm_rows(table, deal_id)
            if known[k] is not None and len(known[k]) == len(rows):
                theirs = np.sort(self._keys[table][rows])
                out[k] = bool(np.array_equal(np.sort(known[k]), theirs))
        return out

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

    def alone(self, posted: list[CRMData]) -> CRMData:
        """Only the posted deals' rows, as :meth:`merged` holds them (typed as the CRM's
        columns; stage rows and touches posted, or the CRM's when none are posted; their
        accounts' rows and account-level touches): the input of
        :func:`serving.deal_features.posted_features`. ``ValueError`` as :meth:`merged`."""
        ids = [_deal_id(p) for p in posted]
        out = CRMData(deals=_concat(self.data.deals.iloc[:0], *(p.deals for p in posted)))
        history = self.data.stage_history
        if history is not None:
            kept, added = [], []
            for deal_id, p in zip(ids, posted, strict=True):
                rows = self.crm_rows("stage_history", deal_id)
                new = _replace("stage_history", deal_id, p.stage_history, rows, [])
                kept.append(rows if new is None else np.empty(0, np.int64))
                added.append(new)
            out = out.with_table("stage_history", _concat(history.iloc[_cat(kept)], *added))
        if self.data.touchpoints is not None:
            out = out.with_table("touchpoints", self._touches(ids, posted, [[] for _ in ids]))
        if self.data.accounts is not None:
            none = np.empty(0, np.int64)
            rows = [self._accounts.get(_account(p) or "", none) for p in posted]
            out = out.with_table("accounts", self.data.accounts.iloc[np.unique(_cat(rows))])
        return out

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
                account_level = extra["deal_id"].isna().to_numpy(bool)
                if account_level.any():
                    added.append(_new_rows(extra[account_level], touches.iloc[level]))
        crm = touches.iloc[np.unique(_cat(crm_rows))]
        return _concat(crm, *added)


def _replaces_deal(deal_id: str) -> Note:
    message = f"deal {deal_id!r} is in the loaded CRM: the posted deal row replaces it"
    return Note("deal", "replaces_crm_deal", message)


def _deal_id(posted: CRMData) -> str:
    return str(posted.deals["deal_id"].array[0])


def _account(posted: CRMData) -> str | None:
    account = posted.deals["account_id"].array[0] if "account_id" in posted.deals else None
    return None if account is None or pd.isna(account) else str(account)


def _cat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.empty(0, np.int64), *arrays]).astype(np.int64)


def _replace(
    table: str, deal_id: str, posted: pd.DataFrame | None, rows: np.ndarray, notes: list[Note]
) -> pd.DataFrame | None:
    """The posted rows of the deal, or None to keep the CRM's ``rows`` as they are."""
    deal_rows = posted
    if posted is not None and "deal_id" in posted:
        mine = _is(posted["deal_id"], deal_id)
        deal_rows = posted if mine.all() else posted[mine]
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


def _is(values: pd.Series, deal_id: str) -> np.ndarray:
    """Which ``values`` are ``deal_id`` as text (missing ones are not); a loop in Python,
    as a posted deal has a few rows and pandas' per-call cost is most of the cost."""
    return np.fromiter(
        (v == deal_id if type(v) is str else not pd.isna(v) and str(v) == deal_id
         for v in values.tolist()),
        dtype=bool,
        count=len(values),
    )  # fmt: skip


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
    dropped: no model knows them; categorical columns gain the new categories).

    ``others`` are posted rows (a few): their columns are typed one by one in Python
    rather than through pandas' per-call machinery, which costs more than the rows."""
    parts = [o for o in others if o is not None and len(o)]
    if not parts:
        return base.reset_index(drop=True)
    new = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    n, columns, grown = len(new), {}, {}
    for column, kind in zip(base.columns, base.dtypes.tolist(), strict=True):
        values = new[column] if column in new else pd.Series(np.nan, index=pd.RangeIndex(n))
        if isinstance(kind, pd.CategoricalDtype):
            texts = _texts(values)
            known = set(kind.categories.tolist())
            extra = list(dict.fromkeys(t for t in texts if t is not None and t not in known))
            categories = kind.categories
            if extra:
                grown[column] = base[column].cat.add_categories(extra)
                categories = grown[column].cat.categories
            codes = categories.get_indexer(pd.Index(texts, dtype="object"))
            columns[column] = pd.Categorical.from_codes(
                codes, dtype=pd.CategoricalDtype(categories, ordered=False)
            )
        elif values.dtype != kind:
            columns[column] = _cast(values.reset_index(drop=True), kind, column).array
        else:
            columns[column] = values.array
    added = pd.DataFrame(columns, copy=False)
    if not len(base):  # the columns are typed as base's: nothing to append to
        return added
    if grown:
        base = base.assign(**grown)
    return pd.concat([base, added], ignore_index=True)


def _texts(values: pd.Series) -> list[str | None]:
    """``values.astype("str")`` with missing values as None, as a list."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        names = [str(c) for c in values.cat.categories.tolist()]
        return [names[c] if c >= 0 else None for c in values.cat.codes.tolist()]
    text = values.astype("str").astype("object").tolist()
    missing = values.isna().tolist()
    return [None if m else t for t, m in zip(text, missing, strict=True)]


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


def _unchanged(
    index: DealIndex, posted: CRMData, leads: pd.DataFrame, where: dict[str, int] | None = None
) -> pd.DataFrame | None:
    """Today's ranked row of a reposted deal whose posted rows are exactly the CRM's (the
    CRM does not change, so neither does its row), else None. ``where`` maps ``leads``'
    deal ids to positions (built here when not given)."""
    if where is None:
        where = {d: i for i, d in enumerate(leads["deal_id"].astype("str"))}
    return unchanged_many(index, [posted], leads, where)[0]


def unchanged_many(
    index: DealIndex, posted: list[CRMData], leads: pd.DataFrame, where: dict[str, int]
) -> list[pd.DataFrame | None]:
    """:func:`_unchanged` of each posted deal, each table's rows compared for all of
    them at once (:meth:`DealIndex.same_rows_many`)."""
    ids = [_deal_id(p) for p in posted]
    compare: dict[int, list[str]] = {}
    for i, p in enumerate(posted):
        tables = _tables_to_compare(index, p, ids[i] in where)
        if tables is not None:
            compare[i] = tables
    for table in ("deals", *DEAL_TABLES):
        members = [i for i, tables in compare.items() if table in tables]
        items = [(ids[i], posted[i].table(table)) for i in members]
        keys = [getattr(posted[i], "keys", {}).get(table) for i in members]
        for i, same in zip(members, index.same_rows_many(table, items, keys), strict=True):
            if not same:
                del compare[i]
    out: list[pd.DataFrame | None] = [None] * len(posted)
    for i in compare:
        out[i] = row_at(leads, where[ids[i]])
    return out


def row_at(frame: pd.DataFrame, position: int) -> pd.DataFrame:
    """Row ``position`` of ``frame`` as a one-row frame indexed from 0 (a slice, relabelled:
    several times cheaper than ``iloc[[position]]`` or ``reset_index`` on text columns)."""
    return rows_between(frame, position, position + 1)


def rows_between(frame: pd.DataFrame, start: int, stop: int) -> pd.DataFrame:
    """``frame.iloc[start:stop].reset_index(drop=True)``, cheaper."""
    part = frame.iloc[start:stop]
    part.index = pd.RangeIndex(len(part))
    return part


def _tables_to_compare(index: DealIndex, posted: CRMData, listed: bool) -> list | None:
    """The tables whose posted rows must equal the CRM's for the repost to be unchanged;
    None when it cannot be unchanged whatever the rows (not in today's list, rows for a
    table the CRM lacks, account-level touches)."""
    if not listed:
        return None
    if posted.touchpoints is not None and posted.touchpoints["deal_id"].isna().any():
        return None
    tables = []
    for table in ("deals", *DEAL_TABLES):
        crm, new = index.data.table(table), posted.table(table)
        if crm is None or new is None or new.empty:
            if table == "deals" or (new is not None and not new.empty):
                return None
            continue
        tables.append(table)
    return tables


def contiguous(data: CRMData) -> CRMData:
    """The same tables with every Arrow-backed column in one chunk (a CSV is read in
    chunks; taking a deal's few rows from a chunked column is several times slower)."""
    out = data
    for name in data.present():
        frame = data.table(name)
        columns = {}
        for column in frame.columns:
            arrow = getattr(frame[column].array, "_pa_array", None)
            if arrow is not None and getattr(arrow, "num_chunks", 1) > 1:
                columns[column] = pd.array(arrow.combine_chunks(), dtype=frame[column].dtype)
        if columns:
            out = out.with_table(name, frame.assign(**columns))
    return out
