"""A section's input rows: joins (with ``agg``), ``where`` and ``exclude`` filters.

:func:`source_rows` gives the rows a section reads: its input, the columns of the inputs it
joins (a left join; a joined input's repeated keys use the first row, or are combined per
key by ``agg``), minus the rows ``where``/``exclude`` filter out (each counted with the
reason). :func:`combine_values` is the one implementation of the combine rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm.importers.common import LINE, SRC, ImportInputError
from crm.importers.extract import Inputs, Resolved, _visible
from crm.importers.mapping import Join, Source
from crm.importers.parsing import norm, parse_numbers, parse_timestamps
from crm.importers.reading import missing_column_message


def source_rows(inputs: Inputs, section: Source, table: str, where: str) -> pd.DataFrame:
    """The section's input rows, with joined columns, after ``where``/``exclude``."""
    frame = inputs.frame(section.input)
    display = inputs.display(section.input)
    for join in section.join:
        frame = _join(inputs, frame, join, display, where)
    for column, wanted in section.where.items():
        values = _filter_values(frame, column, display, f"{where}.where")
        keep = values.isin(_norm_set(wanted)) | (values.isna() & (None in _listed(wanted)))
        inputs.summary.leave_out(
            table,
            frame[~keep.to_numpy()],
            f"filtered out by where: {column} not in {_show(wanted)}",
        )
        frame = frame[keep.to_numpy()]
    for column, unwanted in section.exclude.items():
        values = _filter_values(frame, column, display, f"{where}.exclude")
        drop = values.isin(_norm_set(unwanted)) | (values.isna() & (None in _listed(unwanted)))
        inputs.summary.leave_out(
            table, frame[drop.to_numpy()], f"excluded: {column} in {_show(unwanted)}"
        )
        frame = frame[~drop.to_numpy()]
    return frame.reset_index(drop=True)


def _listed(value: object) -> list:
    return list(value) if isinstance(value, list) else [value]


def _norm_set(value: object) -> set[str]:
    out = set()
    for v in _listed(value):
        if v is None:
            continue
        if isinstance(v, bool):
            v = "true" if v else "false"
        out.add(norm(v))
        if isinstance(v, float) and v.is_integer():
            out.add(norm(int(v)))
    return out


def _show(value: object) -> str:
    return "[" + ", ".join("blank" if v is None else str(v) for v in _listed(value)) + "]"


def _filter_values(frame: pd.DataFrame, column: str, display: str, where: str) -> pd.Series:
    if column not in frame.columns:
        raise ImportInputError(missing_column_message(column, _visible(frame), display, where))
    return frame[column].map(norm, na_action="ignore").astype("str")


def _join(
    inputs: Inputs, frame: pd.DataFrame, join: Join, left_display: str, where: str
) -> pd.DataFrame:
    name, pairs, key_map = join.input, join.pairs(), join.map
    original = inputs.frame(name)
    right = original.drop(columns=[SRC, LINE])
    right_display = inputs.display(name)
    for left_key, right_key in pairs:
        if left_key not in frame.columns:
            raise ImportInputError(
                missing_column_message(left_key, _visible(frame), left_display, f"{where}.join key")
            )
        if right_key not in right.columns:
            raise ImportInputError(
                missing_column_message(
                    right_key, list(right.columns), right_display, f"{where}.join key"
                )
            )
    right_keys = [r for _, r in pairs]
    if join.agg:
        right = _aggregate(right, right_keys, join, inputs, f"{where}.join[{name}].agg")
        dupes = np.zeros(len(original), dtype=bool)
    else:
        dupes = right.duplicated(right_keys).to_numpy()
        right = right[~dupes]
    rename = {}
    for column in right.columns:
        if column in right_keys:
            continue
        rename[column] = f"{name}.{column}" if column in frame.columns else column
    right = right.rename(columns=rename)
    keyed = {r: f"__key{i}" for i, (_, r) in enumerate(pairs)}
    right = right.rename(columns=keyed)
    lookup = {norm(k): v for k, v in (key_map or {}).items()}

    def key(column: str) -> pd.Series:
        values = frame[column]
        if not lookup:
            return values
        return values.map(lambda v: lookup.get(norm(v), v), na_action="ignore").astype("str")

    left = frame.assign(**{f"__key{i}": key(lk) for i, (lk, _) in enumerate(pairs)})
    out = left.merge(right, how="left", on=list(keyed.values()), sort=False, indicator="__merge")
    matched = out.pop("__merge").eq("both")
    used = pd.MultiIndex.from_frame(original[right_keys]).isin(
        pd.MultiIndex.from_frame(left[[f"__key{i}" for i in range(len(pairs))]])
    )
    inputs.summary.leave_out(
        f"joined into {left_display}",
        original[dupes],
        "repeats a join key (the first row with that key was used)",
    )
    inputs.summary.joined(original[~dupes], left_display, used[~dupes])
    unmatched = int((~matched).sum())
    if unmatched:
        inputs.summary.note(
            f"{unmatched} of {len(out)} rows of {left_display} found no row of {right_display} "
            f"on {', '.join(f'{lk} = {rk}' for lk, rk in pairs)} (their joined columns are blank)"
        )
    return out.drop(columns=list(keyed.values()))


def _aggregate(
    right: pd.DataFrame, keys: list[str], join: Join, inputs: Inputs, where: str
) -> pd.DataFrame:
    """One row per key of the joined input: ``join.agg`` columns by their rule (sum, count,
    min, max: numbers read with the input's parsing options; min/max of dates when the
    values are dates), every other column its first non-blank value."""
    display = inputs.display(join.input)
    missing = [c for c in join.agg if c not in right.columns]
    if missing:
        raise ImportInputError(
            missing_column_message(missing[0], list(right.columns), display, where)
        )
    parsing = inputs.parsing(join.input)
    right = right.copy()
    for column, rule in join.agg.items():
        if rule in ("sum", "min", "max"):
            right[column] = _comparable(right[column], rule, parsing, f"{display}, {where}")
    grouped = right.groupby(keys, sort=False, dropna=True)
    out = grouped.first()
    for column, rule in join.agg.items():
        out[column] = combine_values(grouped[column], rule)
    return out.reset_index()


def _comparable(values: pd.Series, rule: str, parsing: Resolved, where: str) -> pd.Series:
    """Numbers (or, for min/max, dates when the values are not numbers)."""
    try:
        numbers, _, bad = parse_numbers(
            values, decimal=parsing.decimal, thousands=parsing.thousands, where=where
        )
    except ImportInputError:
        if rule == "sum":
            example = values.dropna().iloc[0]
            raise ImportInputError(
                f"{where}: sum needs numbers; column {values.name!r} has none (e.g. "
                f"{example!r}; for amounts written 1.234,50 declare decimal: ','). To count "
                "rows, use count"
            ) from None
        dates, _ = parse_timestamps(
            values, formats=parsing.date_format, timezone=parsing.timezone, where=where
        )
        return dates
    return numbers


def combine_values(grouped, rule: str) -> pd.Series:
    """One value per group by ``rule``: first/last non-blank (in the frame's order), min,
    max, sum (blank when every value is blank), count (non-blank values)."""
    if rule == "sum":
        return grouped.sum(min_count=1)
    if rule == "count":
        return grouped.count().astype("float64")
    return getattr(grouped, rule)()
