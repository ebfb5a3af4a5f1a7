"""Row keys: what tells a reposted deal's rows from the CRM's without comparing frames.

A row's key is the hash of the set of its (column, value) pairs with a value, so two
rows have equal keys when they hold the same values in the same columns whatever the
columns' dtypes or order, and a column one side lacks counts as empty (a CRM without an
optional contract column the API's body always carries; a column the body leaves empty).
Timestamps are compared as microseconds since the epoch (UTC), categories and text as
their text, numbers as floats, booleans apart from 0 / 1.

:class:`PostedData` carries a posted deal's keys computed from the posted values
(:mod:`serving.quick_check`), so the check for an unchanged repost
(:meth:`serving.single_deal.DealIndex.same_rows_many`) needs no frame operation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from crm.data import CRMData


@dataclass(frozen=True)
class PostedData(CRMData):
    """A posted deal's typed tables, with each table's :func:`row_keys` when known."""

    keys: Mapping[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def with_table(self, name: str, frame: pd.DataFrame | None) -> PostedData:
        """A copy with one table replaced, and without that table's keys."""
        keys = {table: k for table, k in self.keys.items() if table != name}
        return replace(self, **{name: frame}, keys=keys)


def key_of(row: Iterable[tuple[str, object]]) -> int:
    """The key of one row given as (column, canonical value) pairs; None is empty."""
    return hash(frozenset((c, v) for c, v in row if v is not None))


def row_keys(frame: pd.DataFrame) -> np.ndarray:
    """One key per row of ``frame`` (int64), see the module docstring."""
    columns = [(name, cells(frame[name])) for name in frame.columns]
    pairs = [[None if v is None else (name, v) for v in values] for name, values in columns]
    keys = (hash(frozenset(p for p in row if p is not None)) for row in zip(*pairs, strict=True))
    return np.fromiter(keys, dtype=np.int64, count=len(frame))


def cells(values: pd.Series) -> list:
    """A column's values in the keys' canonical form, None where missing."""
    missing = values.isna().to_numpy(bool)
    kind = values.dtype
    if isinstance(kind, pd.CategoricalDtype):
        names = kind.categories.tolist()
        out = [names[c] if c >= 0 else None for c in values.cat.codes.tolist()]
    elif pd.api.types.is_datetime64_any_dtype(kind):
        stamps = values.dt.tz_convert("UTC") if values.dt.tz is not None else values
        out = stamps.dt.as_unit("us").array.asi8.tolist()
    elif pd.api.types.is_bool_dtype(kind):
        flags = values.to_numpy(object)
        out = [None if m else ("bool", bool(v)) for v, m in zip(flags, missing, strict=True)]
    elif pd.api.types.is_float_dtype(kind) or pd.api.types.is_integer_dtype(kind):
        out = values.to_numpy(np.float64, na_value=np.nan).tolist()
    else:
        out = values.tolist()
    if missing.any():
        out = [None if m else v for v, m in zip(out, missing.tolist(), strict=True)]
    return out
