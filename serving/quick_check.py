"""The API's fast path for posted deals that plainly meet the contract: checked in plain
Python and typed as ``crm``'s coercion types them, without its per-call machinery.

``crm``'s coercion and validator (pandera, the cross-table rules) cost ~100 ms per call
whatever the number of rows, and most posted deals raise no finding at all.
:func:`quick_many` tells those apart: every check here is a *sufficient* condition for
"no rule of the contract fires" (stricter than the rules themselves: :func:`_check`,
:func:`_typed`), so a body it passes would get no error and no warning from
:func:`serving.api_validation.check_history`, and its tables equal the ones that
function gives (dtypes and values; a test compares them on varied bodies).
A body it is not sure about (anything unusual: blank or padded text, a closed deal,
rows of another deal, timestamps after ``as_of``, unknown channels, ...) is left to the
full check, which reports every problem and warning with its message.

What each rule becomes here (``crm.checks`` / ``crm.relations`` / ``crm.coerce``):

- typing: text without surrounding whitespace and not empty (``""`` and padded text are
  typed differently depending on the column, so they take the full way); timestamps
  that parse as ISO 8601 (one parse for the whole batch); numbers from JSON; custom
  attributes numeric when all their values are numbers, categorical when one is text
  without a digit (otherwise the exact rule, :func:`crm.coerce.coerce_attribute`);
- required values present; amounts within the contract's bounds; allowed values;
- the deal open (no ``closed_at`` nor ``outcome``); stage rows in open stages only
  (won/lost rows would raise the outcome rules), distinct ``entered_at`` (duplicates and
  simultaneous stages), none before ``created_at``; touchpoints of the deal or of its
  account, with a known channel, distinct ids, no two alike without an id;
- every timestamp at or before ``as_of`` (``future_timestamp``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crm.coerce import coerce_attribute
from crm.schemas import (
    CONTRACT,
    KNOWN_CHANNELS,
    LOST,
    TIMESTAMP_DTYPE,
    WON,
    Funnel,
)
from serving.api_models import ScoreRequest
from serving.row_keys import PostedData, key_of
from serving.single_deal import rows_between

#: Body part -> contract table (in the order the rows are typed).
TABLES = ("deals", "stage_history", "touchpoints")
#: Largest exactly representable integer: bigger JSON integers take the full way.
_EXACT_INT = 2**53
_KNOWN_CHANNELS = frozenset(KNOWN_CHANNELS)


class _Doubt(Exception):
    """The body may raise a finding: it takes the full check."""


def quick_many(
    bodies: list[ScoreRequest], *, funnel: Funnel, as_of: pd.Timestamp | None
) -> list[PostedData | None]:
    """Per body: its typed one-deal CRM when it surely meets the contract without a
    finding (see the module docstring), else None (check it the full way); with its
    rows' keys (:mod:`serving.row_keys`), from the posted values."""
    rows = [rows_of(b) for b in bodies]
    times = _Times(rows)
    cutoff = None if as_of is None else _us(as_of)
    stages = _stage_names(funnel)
    excluded = {t: set(funnel.exclude_attributes) - set(CONTRACT[t].column_names) for t in TABLES}
    out: list[PostedData | None] = [None] * len(bodies)
    checked: list[_Body] = []
    for i, body_rows in enumerate(rows):
        try:
            values = _check(body_rows, times, cutoff=cutoff, stages=stages)
            attributes = {t: _attributes(t, body_rows[t], excluded[t]) for t in TABLES}
        except _Doubt:
            continue
        checked.append(_Body(i, body_rows, values, attributes))
    for body, data in zip(checked, _frames(checked, times, stages), strict=True):
        out[body.position] = data
    return out


@dataclass(frozen=True)
class _Body:
    """A body that passed :func:`_check`: its rows as posted, their typed values (the
    keys' canonical form: :mod:`serving.row_keys`) and its custom attributes."""

    position: int
    rows: dict[str, list[dict]]
    values: dict[str, list[dict]]
    attributes: dict[str, dict[str, tuple[str, list]]]


def rows_of(body: ScoreRequest) -> dict[str, list[dict]]:
    """The body's rows per contract table, every contract column present (None when
    not posted), custom attributes after them; stage rows default to the posted deal's
    ``deal_id``. (``model_dump`` without its per-call cost: the models are flat.)"""
    deal_id = body.deal.deal_id
    return {
        "deals": [_dump(body.deal)],
        "stage_history": [
            {**_dump(r), "deal_id": r.deal_id or deal_id} for r in body.stage_history
        ],
        "touchpoints": [_dump(r) for r in body.touchpoints],
    }


def _dump(row: Any) -> dict:
    values = row.__dict__
    return {**{name: values[name] for name in type(row).model_fields}, **row.model_extra}


# --------------------------------------------------------------------------- checks


def _check(rows: dict[str, list[dict]], times: _Times, *, cutoff, stages) -> dict[str, list[dict]]:
    """The body's typed contract values per table; :class:`_Doubt` unless the body
    surely raises no finding."""
    (deal,) = values = [_typed("deals", rows["deals"][0], times)]
    if deal["closed_at"] is not None or deal["outcome"] is not None:
        raise _Doubt
    created = deal["created_at"]
    _not_after(created, cutoff)
    deal_id, account = deal["deal_id"], deal["account_id"]
    out, entered = {"deals": values, "stage_history": []}, set()
    for row in rows["stage_history"]:
        typed = _typed("stage_history", row, times)
        typed["stage"] = stages.get(_fold(row["stage"]))
        at = typed["entered_at"]
        if typed["deal_id"] != deal_id or typed["stage"] is None:
            raise _Doubt
        _not_after(at, cutoff)
        if at in entered or at < created:
            raise _Doubt  # a duplicate or simultaneous stage, or one before the deal
        entered.add(at)
        out["stage_history"].append(typed)
    out["touchpoints"], ids, alike = [], set(), set()
    for row in rows["touchpoints"]:
        typed = _typed("touchpoints", row, times)
        _not_after(typed["occurred_at"], cutoff)
        if typed["deal_id"] not in (None, deal_id) or typed["channel"] not in _KNOWN_CHANNELS:
            raise _Doubt
        if typed["account_id"] is not None and typed["account_id"] != account:
            raise _Doubt  # another account (an error or a warning), or a stray one
        if typed["deal_id"] is None and typed["account_id"] is None:
            raise _Doubt
        key, seen = (typed["touchpoint_id"], ids)
        if key is None:
            key, seen = tuple(typed.values()), alike
        if key in seen:
            raise _Doubt  # a duplicate id, or a copy of another touch
        seen.add(key)
        out["touchpoints"].append(typed)
    return out


def _typed(table: str, row: dict, times: _Times) -> dict:
    """Each contract value of ``row`` typed as the keys compare it (module docstring of
    :mod:`serving.row_keys`); :class:`_Doubt` for one that could raise a finding."""
    out = {}
    for name, kind, required, low, high, allowed in _SPECS[table]:
        value = row[name]
        if value is None:
            if required:
                raise _Doubt
        elif kind == "number" or kind == "integer":
            if type(value) not in (int, float) or not math.isfinite(value):
                raise _Doubt
            if abs(value) > _EXACT_INT or (low is not None and value < low):
                raise _Doubt
            if (high is not None and value > high) or (kind == "integer" and value % 1):
                raise _Doubt
            value = float(value)
        elif not _plain(value):
            raise _Doubt
        elif kind == "time":
            value = times.at(value)
        elif allowed is not None and value not in allowed:
            raise _Doubt
        out[name] = value
    return out


def _specs(table: str) -> tuple[tuple, ...]:
    kinds = {"id": "text", "string": "text", "category": "text", "timestamp": "time",
             "date": "time", "number": "number", "integer": "integer"}  # fmt: skip
    return tuple(
        (c.name, kinds[c.kind], c.required, c.minimum, c.maximum, c.allowed)
        for c in CONTRACT[table].columns
    )


#: Per table: (column, text | time | number | integer, required, minimum, maximum, allowed).
_SPECS = {t: _specs(t) for t in TABLES}


def _plain(value: Any) -> bool:
    """Text that every typing of ``crm`` keeps as it is: not empty, not padded."""
    return type(value) is str and value != "" and not (value[0].isspace() or value[-1].isspace())


def _not_after(at: int, cutoff: int | None) -> None:
    if cutoff is not None and at > cutoff:
        raise _Doubt


def _fold(name: str) -> str:
    return str(name).strip().casefold()


def _stage_names(funnel: Funnel) -> dict[str, str | None]:
    """Posted stage name (folded) -> its open stage; won/lost map to None (full way),
    as ``crm.coerce.canonical_names`` maps them."""
    names = {WON: WON, LOST: LOST, funnel.won_label: WON, funnel.lost_label: LOST}
    names = {s: s for s in funnel.stages} | names
    return {_fold(k): (v if v in funnel.stages else None) for k, v in names.items()}


# --------------------------------------------------------------------------- timestamps


class _Times:
    """Every timestamp text of the batch parsed once, as ``crm.coerce`` parses a column
    (ISO 8601, naive = UTC); :meth:`at` raises :class:`_Doubt` for one that does not."""

    def __init__(self, rows: list[dict[str, list[dict]]]) -> None:
        texts: dict[str, int] = {}
        for body_rows in rows:
            for table in TABLES:
                kinds = [name for name, kind, *_ in _SPECS[table] if kind == "time"]
                for row in body_rows[table]:
                    for name in kinds:
                        value = row[name]
                        if type(value) is str and value not in texts:
                            texts[value] = len(texts)
        parsed = pd.to_datetime(
            pd.Series(list(texts), dtype="str"), utc=True, format="ISO8601", errors="coerce"
        ).astype(TIMESTAMP_DTYPE)
        self.array = parsed.array
        self.where = texts
        missing = parsed.isna().tolist()
        self.us = [
            None if m else us for us, m in zip(parsed.array.asi8.tolist(), missing, strict=True)
        ]

    def at(self, text: str) -> int:
        """Microseconds since the epoch (UTC) of a parsed text."""
        us = self.us[self.where[text]]
        if us is None:
            raise _Doubt
        return us

    def column(self, texts: list[str | None]) -> pd.api.extensions.ExtensionArray:
        """A ``datetime64[us, UTC]`` array of the texts (None -> NaT)."""
        where = np.array([-1 if t is None else self.where[t] for t in texts], dtype=np.int64)
        return self.array.take(where, allow_fill=True)


def _us(moment: pd.Timestamp) -> int:
    stamp = pd.Timestamp(moment)
    stamp = stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
    return int(stamp.as_unit("us").asm8.astype(np.int64))


# --------------------------------------------------------------------------- attributes


def _attributes(table: str, rows: list[dict], excluded: set[str]) -> dict[str, tuple[str, list]]:
    """The body's custom attributes of one table: name -> (``float64`` | ``category``,
    values per row, None where missing), as ``crm.coerce.coerce_attribute`` types the
    column ``pd.DataFrame(rows)`` gives."""
    known = CONTRACT_NAMES[table]
    names = [k for k in dict.fromkeys(k for r in rows for k in r) if k not in known]
    out = {}
    for name in names:
        if name in excluded:
            continue
        values = [r.get(name) for r in rows]
        kind = _attribute_kind(values)
        if kind == "exact":  # texts that may all be numbers: the rule itself decides
            typed = coerce_attribute(pd.Series(values))
            kind = "float64" if typed.dtype == np.float64 else "category"
            values = [None if pd.isna(v) else v for v in typed.astype("object").tolist()]
        out[name] = (kind, values)
    return out


def _attribute_kind(values: list) -> str:
    present = [v for v in values if v is not None]
    if all(type(v) in (int, float) for v in present):
        if any(not math.isfinite(v) or abs(v) > _EXACT_INT for v in present):
            raise _Doubt
        return "float64"
    if all(type(v) is str for v in present):
        if not all(map(_plain, present)):
            raise _Doubt
        if any(not any(ch.isdigit() for ch in v) for v in present):
            return "category"  # a text no number parser reads as a finite number
        return "exact"
    raise _Doubt  # booleans, or text and numbers mixed


CONTRACT_NAMES = {t: frozenset(CONTRACT[t].column_names) for t in TABLES}


# --------------------------------------------------------------------------- frames


def _frames(bodies: list[_Body], times: _Times, stages: dict[str, str | None]) -> list[PostedData]:
    """The checked bodies' tables, typed as ``crm.coerce`` types them: one frame per
    table for all bodies with the same custom attributes (names and kinds), split back
    by rows (a body's rows alone would cost a frame's per-call cost each)."""
    out: list[dict[str, pd.DataFrame]] = [{} for _ in bodies]
    for table in TABLES:
        alike: dict[tuple, list[int]] = {}
        for k, body in enumerate(bodies):
            if body.rows[table]:
                kinds = tuple((name, kind) for name, (kind, _) in body.attributes[table].items())
                alike.setdefault(kinds, []).append(k)
        for kinds, members in alike.items():
            rows = [r for k in members for r in bodies[k].rows[table]]
            columns = _contract_columns(table, rows, times, stages)
            for name, kind in kinds:
                values = [v for k in members for v in bodies[k].attributes[table][name][1]]
                columns[name] = _TYPERS[kind](values, times)
            frame = pd.DataFrame(columns, index=pd.RangeIndex(len(rows)), copy=False)
            start = 0
            for k in members:
                stop = start + len(bodies[k].rows[table])
                out[k][table] = rows_between(frame, start, stop)
                start = stop
    return [
        PostedData(**tables, keys={t: _keys(body, t) for t in tables})
        for body, tables in zip(bodies, out, strict=True)
    ]


def _keys(body: _Body, table: str) -> np.ndarray:
    """The :func:`serving.row_keys.row_keys` of a table's typed rows, from the values."""
    attributes = [
        (name, [None if v is None else float(v) if kind == "float64" else v for v in values])
        for name, (kind, values) in body.attributes[table].items()
    ]
    keys = [
        key_of([*row.items(), *((name, values[i]) for name, values in attributes)])
        for i, row in enumerate(body.values[table])
    ]
    return np.array(keys, dtype=np.int64)


def _contract_columns(
    table: str, rows: list[dict], times: _Times, stages: dict[str, str | None]
) -> dict[str, Any]:
    """Typed arrays of the contract columns of ``rows``."""
    columns: dict[str, Any] = {}
    for spec in CONTRACT[table].columns:
        values = [r[spec.name] for r in rows]
        if table == "stage_history" and spec.name == "stage":
            values = [stages[_fold(v)] for v in values]
        columns[spec.name] = _TYPERS[spec.kind](values, times)
    return columns


def _text(values: list, times: _Times) -> pd.api.extensions.ExtensionArray:
    return pd.array(values, dtype="str")


def _category(values: list, times: _Times) -> pd.Categorical:
    return pd.Categorical(pd.array(values, dtype="str"))


def _float(values: list, times: _Times) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _time(values: list, times: _Times) -> pd.api.extensions.ExtensionArray:
    return times.column(values)


_TYPERS: dict[str, Callable[[list, _Times], Any]] = {
    "id": _text,
    "string": _text,
    "category": _category,
    "timestamp": _time,
    "date": _time,
    "number": _float,
    "integer": _float,
    "float64": _float,
}
