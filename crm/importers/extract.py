"""From input files to typed contract columns: the machinery behind the mapping file.

:class:`Inputs` reads each input once (with its parsing options);
:func:`crm.importers.rows.source_rows` applies a section's joins and ``where``/``exclude``
filters; :class:`Extractor` turns the columns a section names into typed contract columns,
leaving out (with a reason) the rows whose *required* value cannot be read and blanking
(with a note) unreadable optional ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crm.importers.common import LINE, SRC, ImportInputError, ImportSummary
from crm.importers.mapping import Column, Currency, Mapping, Parsing
from crm.importers.names import NameMap
from crm.importers.parsing import convert_currency, norm, parse_numbers, parse_timestamps
from crm.importers.reading import missing_column_message, read_export
from crm.schemas import CONTRACT, TIMESTAMP_DTYPE

#: Kinds of the non-contract columns a mapping may name.
EXTRA_KINDS = {"snapshot_at": "timestamp", "timestamp": "timestamp", "activity": "string"}
_DIRECTIONS = {
    "inbound": "inbound",
    "in": "inbound",
    "incoming": "inbound",
    "incoming_email": "inbound",
    "received": "inbound",
    "outbound": "outbound",
    "out": "outbound",
    "outgoing": "outbound",
    "outgoing_email": "outbound",
    "sent": "outbound",
}


@dataclass(frozen=True)
class Resolved:
    """Parsing options after defaults -> input -> column overrides."""

    date_format: str | list[str] | None
    timezone: str | None
    decimal: str
    thousands: str | None


def resolve(*layers: Parsing | Column | None) -> Resolved:
    values: dict[str, object] = {}
    for layer in layers:
        if layer is None:
            continue
        for key in ("date_format", "timezone", "decimal", "thousands"):
            value = getattr(layer, key, None)
            if value is not None:
                values[key] = value
    return Resolved(
        date_format=values.get("date_format"),  # type: ignore[arg-type]
        timezone=values.get("timezone"),  # type: ignore[arg-type]
        decimal=str(values.get("decimal", ".")),
        thousands=values.get("thousands"),  # type: ignore[arg-type]
    )


class Inputs:
    """The mapping's input files, read once each, relative to ``base``."""

    def __init__(self, mapping: Mapping, base: Path, summary: ImportSummary) -> None:
        self.mapping, self.base, self.summary = mapping, Path(base), summary
        self._frames: dict[str, pd.DataFrame] = {}

    def path(self, name: str) -> Path:
        spec = self.mapping.inputs.get(name)
        path = Path(spec.file if spec else name)
        return path if path.is_absolute() else self.base / path

    def display(self, name: str) -> str:
        return self.path(name).name

    def parsing(self, name: str) -> Resolved:
        return resolve(self.mapping.defaults, self.mapping.inputs.get(name))

    def _option(self, name: str, key: str):
        spec = self.mapping.inputs.get(name)
        value = getattr(spec, key) if spec is not None else None
        return value if value is not None else getattr(self.mapping.defaults, key)

    def frame(self, name: str) -> pd.DataFrame:
        if name not in self._frames:
            path = self.path(name)
            if name not in self.mapping.inputs and not path.is_file():
                known = ", ".join(self.mapping.inputs) or "none"
                raise ImportInputError(
                    f"input {name!r} is neither a name under inputs: ({known}) nor a file "
                    f"in {self.base}"
                )
            self._frames[name] = read_export(
                path,
                self.summary,
                delimiter=self._option(name, "delimiter"),
                encoding=self._option(name, "encoding"),
                sheet=self._option(name, "sheet"),
                skip_rows=self._option(name, "skip_rows") or 0,
            )
        return self._frames[name]


def _visible(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in (SRC, LINE)]


# --------------------------------------------------------------------------- columns


class Extractor:
    """Typed contract columns from one section's rows."""

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        parsing: Resolved,
        display: str,
        where: str,
        table: str,
        summary: ImportSummary,
    ) -> None:
        self.frame, self.parsing, self.display = frame, parsing, display
        self.where, self.table, self.summary = where, table, summary
        self.drop = np.zeros(len(frame), dtype=bool)

    def raw(self, spec: Column, name: str) -> pd.Series:
        """The source text for ``spec``: a column, the first non-blank of several, or a
        constant; after the column's own value ``map``."""
        if spec.value is not None:
            value = spec.value
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            return pd.Series(text, index=self.frame.index, dtype="str")
        if spec.pick != "first":
            raise ImportInputError(
                f"{self.where}.{name}: {spec.pick}_of compares dates; {name} is not a date "
                "column (list the columns under column: [a, b] for the first non-blank)"
            )
        out = None
        for column in spec.columns:
            if column not in self.frame.columns:
                raise ImportInputError(
                    missing_column_message(
                        column, _visible(self.frame), self.display, f"{self.where}.{name}"
                    )
                )
            values = self.frame[column]
            out = values if out is None else out.fillna(values)
        assert out is not None
        if spec.map:
            out, ignored = NameMap(f"value of {name}", spec.map).apply(out, self.summary)
            out = out.mask(ignored)
            unmapped = self.summary.unmapped.pop(f"value of {name}", {})
            if unmapped:
                self.summary.note(
                    f"{self.where}.{name}.map does not cover {listed_counts(unmapped)}; kept "
                    "as written"
                )
        return out

    def label(self, spec: Column) -> str:
        if spec.value is not None:
            return f"constant {spec.value!r}"
        labels = self.frame.attrs.get("labels", {})
        return " / ".join(repr(labels.get(c, c)) for c in spec.columns)

    def text(self, spec: Column, name: str) -> pd.Series:
        return self.raw(spec, name).astype("str")

    def timestamps(self, spec: Column, name: str, *, required: bool) -> pd.Series:
        if spec.pick != "first":
            return self._earliest_or_latest(spec, name, required=required)
        p = self._parsing(spec)
        where = f"{self.display}, column {self.label(spec)} ({self.where}.{name})"
        values, bad = parse_timestamps(
            self.raw(spec, name), formats=p.date_format, timezone=p.timezone, where=where
        )
        self._unreadable(spec, name, bad, required=required, what="date")
        return values

    def _earliest_or_latest(self, spec: Column, name: str, *, required: bool) -> pd.Series:
        """Each column parsed on its own, then the earliest (or latest) readable date of the
        row. An unreadable cell is ignored when another column of the row has a date."""
        parsed, bad = [], []
        for column in spec.columns:
            one = spec.model_copy(update={"earliest_of": None, "latest_of": None, "column": column})
            p = self._parsing(one)
            where = f"{self.display}, column {self.label(one)} ({self.where}.{name})"
            values, unreadable = parse_timestamps(
                self.raw(one, name), formats=p.date_format, timezone=p.timezone, where=where
            )
            parsed.append(values)
            bad.append(unreadable)
        table = pd.concat(parsed, axis=1)
        out = table.min(axis=1) if spec.pick == "earliest" else table.max(axis=1)
        out = pd.Series(out, index=self.frame.index).astype(TIMESTAMP_DTYPE)
        any_bad = np.logical_or.reduce(bad)
        self._unreadable(
            spec, name, any_bad & out.isna().to_numpy(), required=required, what="date"
        )
        ignored = any_bad & out.notna().to_numpy()
        if ignored.any():
            lines = self.frame.loc[ignored, LINE].head(5).tolist()
            self.summary.note(
                f"{self.display}, {self.where}.{name} ({spec.pick}_of {self.label(spec)}): "
                f"{int(ignored.sum())} unreadable dates ignored, the other columns gave the "
                f"date (lines {', '.join(map(str, lines))})"
            )
        return out

    def numbers(
        self, spec: Column, name: str, *, required: bool = False, currency: Currency | None = None
    ) -> pd.Series:
        p = self._parsing(spec)
        where = f"{self.display}, column {self.label(spec)} ({self.where}.{name})"
        values, codes, bad = parse_numbers(
            self.raw(spec, name), decimal=p.decimal, thousands=p.thousands, where=where
        )
        self._unreadable(spec, name, bad, required=required, what="number")
        if currency is not None:
            if currency.column:
                codes = self.text(Column(column=currency.column), f"{name} currency").fillna(codes)
            values, unknown = convert_currency(
                values, codes, rates=currency.rates, default=currency.default
            )
            if unknown.notna().any():
                counts = unknown.value_counts()
                listed = ", ".join(f"{k} ({v})" for k, v in counts.items())
                self.summary.note(
                    f"{where}: {int(unknown.notna().sum())} amounts left blank: no rate for "
                    f"currency {listed}; add it under currency.rates"
                )
        else:
            found = codes.dropna().unique()
            if len(found) > 1:
                self.summary.note(
                    f"{where}: amounts in several currencies ({', '.join(sorted(found))}) "
                    "were not converted; add currency: {rates: {...}} to convert them"
                )
        return values

    def timezone(self, spec: Column) -> str:
        """The zone ``spec``'s timestamps without an offset are read in."""
        return self._parsing(spec).timezone or "UTC"

    def _parsing(self, spec: Column) -> Resolved:
        return resolve(
            Parsing(
                date_format=self.parsing.date_format,
                timezone=self.parsing.timezone,
                decimal=self.parsing.decimal,  # type: ignore[arg-type]
                thousands=self.parsing.thousands,
            ),
            spec,
        )

    def _unreadable(self, spec: Column, name: str, bad: np.ndarray, *, required: bool, what: str):
        if not bad.any():
            return
        example = self._example(spec, name, bad)
        if required:
            self.summary.leave_out(
                self.table,
                self.frame[bad & ~self.drop],
                f"{name}: unreadable {what} in column {self.label(spec)} (e.g. {example!r})",
            )
            self.drop |= bad
        else:
            lines = self.frame.loc[bad, LINE].head(5).tolist()
            self.summary.note(
                f"{self.display}, column {self.label(spec)}: {int(bad.sum())} unreadable "
                f"{what}s left blank in {self.table}.{name} (e.g. {example!r}, lines "
                f"{', '.join(map(str, lines))})"
            )

    def _example(self, spec: Column, name: str, bad: np.ndarray) -> str:
        if spec.pick == "first":
            return self.raw(spec, name)[bad].iloc[0]
        row = self.frame.loc[bad, spec.columns].iloc[0]
        return " / ".join(str(v) for v in row.tolist())

    def typed(self, spec: Column, name: str, *, required: bool = False) -> pd.Series:
        """By the contract kind of ``name`` (or ``spec.type`` for attributes)."""
        kind = _kind(self.table, name, spec)
        if kind in ("timestamp", "date"):
            return self.timestamps(spec, name, required=required)
        if kind in ("number", "integer"):
            return self.numbers(spec, name, required=required)
        return self.text(spec, name)

    def finish(self, columns: dict[str, pd.Series]) -> pd.DataFrame:
        """The extracted columns with SRC/LINE, minus rows left out for required values."""
        out = pd.DataFrame(columns, index=self.frame.index)
        out[SRC] = self.frame[SRC]
        out[LINE] = self.frame[LINE]
        return out[~self.drop].reset_index(drop=True)


def _kind(table: str, name: str, spec: Column) -> str:
    if spec.type is not None:
        return {"text": "string", "number": "number", "timestamp": "timestamp"}[spec.type]
    spec_table = CONTRACT.get(table)
    if spec_table is not None and name in spec_table.column_names:
        return spec_table.column(name).kind
    return EXTRA_KINDS.get(name, "string")


def normalise_direction(values: pd.Series, summary: ImportSummary, where: str) -> pd.Series:
    """inbound/outbound from common spellings; anything else is blanked with a note."""
    mapped = values.map(lambda v: _DIRECTIONS.get(norm(v).replace(" ", "_")), na_action="ignore")
    odd = values.notna() & mapped.isna()
    if odd.any():
        listed = listed_counts(values[odd].value_counts().to_dict())
        summary.note(
            f"{where}: {int(odd.sum())} direction values are not inbound/outbound ({listed}); "
            "left blank (map them with direction: {column: ..., map: {...}})"
        )
    return mapped.astype("str")


def listed_counts(counts: dict, *, show: int = 5) -> str:
    """``'a' (3), 'b' (1) and 4 more``: the first ``show`` names with their row counts."""
    items = list(counts.items())
    listed = ", ".join(f"{k!r} ({v})" for k, v in items[:show])
    more = len(items) - show
    return listed + (f" and {more} more" if more > 0 else "")
