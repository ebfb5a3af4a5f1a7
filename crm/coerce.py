"""Typing raw tables into the contract's dtypes (pure: frames in, frames and findings out).

Contract columns get ``crm.schemas.dtype_of(kind)``; a cell whose text cannot be typed
becomes missing, is reported (``unparseable_value``, ``ambiguous_date_format``,
``not_integer``) and is remembered in :class:`~crm.provenance.Provenance` ``invalid`` so
the validator does not report it again as missing. Columns the contract does not name are
attributes: numeric when every non-empty value is a number, otherwise categorical.

Name mapping (documented decision): outcomes and stage names are matched
case-insensitively after stripping spaces. ``deals.outcome`` maps the funnel's
``won_label``/``lost_label`` (and the canonical ``won``/``lost``) to :data:`WON`/:data:`LOST`;
``stage_history.stage`` does the same and also maps the configured open stages to their
configured spelling. Unknown names are kept as written so the validator can quote them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm.provenance import Provenance, Scope, examples, plural
from crm.read import RawTable, clean_text
from crm.report import ValidationReport
from crm.schemas import CONTRACT, LOST, TIMESTAMP_DTYPE, WON, ColumnSpec, Funnel, dtype_of

_DMY = r"^(\d{1,2})([/.\-])(\d{1,2})[/.\-](\d{2}|\d{4})(?:[ T].*)?$"
_EXCEL_SERIAL = r"^\d{5}(\.\d+)?$"
_MISSING_TOKENS = {"null", "none", "nan", "nat", "n/a", "na", "-", "--", "?", "#n/a"}
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
ISO_HINT = (
    "write timestamps as ISO 8601, e.g. 2024-04-25 or 2024-04-25T14:30:00+02:00 (no zone = UTC)"
)
DATE_ORDER_HINT = (
    "convert the column to ISO 8601 YYYY-MM-DD (e.g. 2024-04-25) before export, or load it "
    "through an importer that takes an explicit date_format"
)
NUMBER_HINT = (
    "export plain numbers such as 1234.50: no currency symbols, thousands separators "
    "or decimal commas"
)


def coerce_table(
    raw: RawTable, funnel: Funnel, report: ValidationReport
) -> tuple[pd.DataFrame, Provenance]:
    """Type every column of ``raw``; report untypeable cells.

    Attributes named in ``funnel.exclude_attributes`` are dropped. Returns the typed frame
    (positional index, same rows as ``raw``) and its provenance.
    """
    spec = CONTRACT[raw.name]
    scope = Scope(report, raw.name, Provenance(rows=raw.rows, file=raw.path.name))
    excluded = set(funnel.exclude_attributes) - set(spec.column_names)
    columns: dict[str, pd.Series] = {}
    invalid: dict[str, np.ndarray] = {}
    for name in raw.frame.columns:
        if name in excluded:
            continue
        values = raw.frame[name].reset_index(drop=True)
        if name in spec.column_names:
            typed, bad = coerce_column(values, spec.column(name), scope)
            if bad.any():
                invalid[name] = bad
            columns[name] = typed
        else:
            columns[name] = coerce_attribute(values)
    frame = pd.DataFrame(columns, index=pd.RangeIndex(len(raw.frame)))
    frame = canonical_names(frame, raw.name, funnel)
    return frame, Provenance(rows=raw.rows, file=raw.path.name, invalid=invalid)


def canonical_names(frame: pd.DataFrame, table: str, funnel: Funnel) -> pd.DataFrame:
    """Map the CRM's outcome and stage names to dealcast's (see module docstring)."""
    names = {WON: WON, LOST: LOST, funnel.won_label: WON, funnel.lost_label: LOST}
    if table == "deals" and "outcome" in frame:
        return frame.assign(outcome=_rename_values(frame["outcome"], names))
    if table == "stage_history" and "stage" in frame:
        stages = {s: s for s in funnel.stages} | names
        return frame.assign(stage=_rename_values(frame["stage"], stages))
    return frame


def _rename_values(values: pd.Series, names: dict[str, str]) -> pd.Series:
    """Replace values matching a key of ``names`` (case-insensitive, stripped)."""
    lookup = {k.strip().casefold(): v for k, v in names.items()}
    codes, uniques = pd.factorize(values)
    renamed = [lookup.get(str(u).strip().casefold(), u) for u in uniques]
    mapped = np.asarray([*renamed, np.nan], dtype=object)[codes]  # code -1 (missing) -> NaN
    return pd.Series(mapped, index=values.index, dtype="str")


# --------------------------------------------------------------------------- one column


def coerce_column(
    values: pd.Series, spec: ColumnSpec, scope: Scope
) -> tuple[pd.Series, np.ndarray]:
    """Type one contract column; returns the typed series and the mask of bad cells."""
    if spec.kind in ("timestamp", "date"):
        return _timestamps(values, spec.name, scope)
    if spec.kind in ("number", "integer"):
        return _numbers(values, spec, scope)
    text = as_text(values)
    no_bad = np.zeros(len(values), dtype=bool)
    if spec.kind == "category":
        return text.astype("category"), no_bad
    return text, no_bad


def as_text(values: pd.Series) -> pd.Series:
    """Values as stripped text (``str`` dtype); whole floats lose their ``.0``."""
    if pd.api.types.is_float_dtype(values.dtype):
        present = values.dropna()
        if np.isfinite(present).all() and (present == np.floor(present)).all():
            return present.astype("int64").astype("str").reindex(values.index)
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.na_value is np.nan:
        return values
    return clean_text(values)


def _timestamps(values: pd.Series, column: str, scope: Scope) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        typed = values if values.dt.tz is not None else values.dt.tz_localize("UTC")
        return typed.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE), np.zeros(len(values), bool)
    if pd.api.types.is_numeric_dtype(values.dtype):
        bad = values.notna().to_numpy()
        if bad.any():
            scope.error(
                "unparseable_value",
                f"holds numbers, not timestamps, e.g. {examples(values[bad])}",
                mask=bad,
                column=column,
                hint=ISO_HINT,
            )
        return pd.Series(pd.NaT, index=values.index, dtype=TIMESTAMP_DTYPE), bad
    text = as_text(values)
    typed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    bad = (text.notna() & typed.isna()).to_numpy()
    if bad.any():
        _report_bad_timestamps(text, bad, column, scope)
    return typed.astype(TIMESTAMP_DTYPE), bad


def _numbers(values: pd.Series, spec: ColumnSpec, scope: Scope) -> tuple[pd.Series, np.ndarray]:
    if pd.api.types.is_bool_dtype(values.dtype) or not (
        pd.api.types.is_numeric_dtype(values.dtype)
    ):
        text = as_text(values)
        typed = pd.to_numeric(text, errors="coerce").astype("float64")
    else:
        text, typed = None, values.astype("float64")
    given = text.notna() if text is not None else values.notna()
    bad = (given & ~np.isfinite(typed)).to_numpy()
    if bad.any():
        shown = (text if text is not None else values)[bad]
        scope.error(
            "unparseable_value",
            f"{plural(int(bad.sum()), 'value', 'are')} not plain "
            f"numbers{_number_reasons(shown)}, e.g. {examples(shown)}",
            mask=bad,
            column=spec.name,
            hint=NUMBER_HINT,
        )
        typed = typed.mask(bad)
    if spec.kind == "integer":
        fraction = (typed.notna() & (typed != np.floor(typed))).to_numpy()
        if fraction.any():
            scope.error(
                "not_integer",
                f"{plural(int(fraction.sum()), 'value')} must be whole "
                f"numbers, e.g. {examples(typed[fraction])}",
                mask=fraction,
                column=spec.name,
                hint="round the values or leave the cells empty",
            )
            typed, bad = typed.mask(fraction), bad | fraction
    return typed.astype("float64"), bad


def coerce_attribute(values: pd.Series) -> pd.Series:
    """An attribute column: float64 if every non-empty value is a number, else category."""
    if pd.api.types.is_bool_dtype(values.dtype) or pd.api.types.is_numeric_dtype(values.dtype):
        return values.astype("float64")
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return values.dt.strftime("%Y-%m-%dT%H:%M:%S").astype("category")
    text = as_text(values)
    numbers = pd.to_numeric(text, errors="coerce")
    if (text.notna() == np.isfinite(numbers)).all():
        return numbers.astype("float64")
    return text.astype("category")


# --------------------------------------------------------------------------- messages


def _report_bad_timestamps(text: pd.Series, bad: np.ndarray, column: str, scope: Scope) -> None:
    shown = text[bad]
    parts = shown.str.extract(_DMY)
    dmy = parts[0].notna().to_numpy()
    if dmy.any():
        mask = bad.copy()
        mask[np.flatnonzero(bad)[~dmy]] = False
        _report_date_order(shown[dmy], parts[dmy], mask, column, scope)
    if (~dmy).any():
        others = shown[~dmy]
        mask = bad.copy()
        mask[np.flatnonzero(bad)[dmy]] = False
        scope.error(
            "unparseable_value",
            f"{plural(len(others), 'value', 'are')} not ISO 8601 "
            f"dates or timestamps, e.g. {examples(others)}{_timestamp_reasons(others)}",
            mask=mask,
            column=column,
            hint=ISO_HINT,
        )


def _report_date_order(
    shown: pd.Series, parts: pd.DataFrame, mask: np.ndarray, column: str, scope: Scope
) -> None:
    first, second = parts[0].astype(int), parts[2].astype(int)
    day_first = shown[(first > 12) & (second <= 12)]
    month_first = shown[(second > 12) & (first <= 12)]
    n = plural(len(shown), "value", "are")
    if len(day_first) and len(month_first):
        message = (
            f"{n} not ISO 8601 and mix day-first and month-first orders (e.g. "
            f"{day_first.iloc[0]!r} and {month_first.iloc[0]!r})"
        )
    elif len(day_first):
        message = (
            f"{n} not ISO 8601; the column looks like DD{_sep(parts)}MM{_sep(parts)}YYYY "
            f"from values like {examples(day_first, 2)}"
        )
    elif len(month_first):
        message = (
            f"{n} not ISO 8601; the column looks like MM{_sep(parts)}DD{_sep(parts)}YYYY "
            f"from values like {examples(month_first, 2)}"
        )
    else:
        message = f"{n} not ISO 8601 and the day/month order cannot be told: " + (
            _both_readings(shown.iloc[0], int(first.iloc[0]), int(second.iloc[0]))
        )
    scope.error("ambiguous_date_format", message, mask=mask, column=column, hint=DATE_ORDER_HINT)


def _sep(parts: pd.DataFrame) -> str:
    return str(parts[1].iloc[0])


def _both_readings(value: str, first: int, second: int) -> str:
    if not (1 <= first <= 12 and 1 <= second <= 12):
        return f"e.g. {value!r}"
    return (
        f"{value.split()[0]} could be {first} {_MONTHS[second - 1]} or "
        f"{second} {_MONTHS[first - 1]}"
    )


def _timestamp_reasons(values: pd.Series) -> str:
    if values.str.fullmatch(_EXCEL_SERIAL).all():
        return " (the column looks like Excel serial day numbers: format the cells as dates)"
    if values.str.casefold().isin(_MISSING_TOKENS).any():
        return " (leave a cell empty for a missing value)"
    return ""


def _number_reasons(values: pd.Series) -> str:
    text = values.astype("str")
    reasons = []
    if text.str.contains(",", regex=False).any():
        reasons.append("thousands separators or decimal commas")
    if text.str.contains(r"[€$£¥]|[A-Za-z]{3}", regex=True).any():
        reasons.append("currency symbols or words")
    if text.str.contains("%", regex=False).any():
        reasons.append("percent signs")
    if text.str.casefold().isin(_MISSING_TOKENS).any():
        reasons.append("placeholders for missing values (leave the cell empty)")
    return f" ({', '.join(reasons)})" if reasons else ""


def dtype_matches(series: pd.Series, spec: ColumnSpec) -> bool:
    """Whether ``series`` already has the dtype the contract gives ``spec``."""
    return str(series.dtype) == dtype_of(spec.kind)
