"""What the Salesforce and HubSpot importers share: their options file, finding export
files in a folder, renaming a CRM's column labels to one spelling, and the steps both
take on the rows (optional columns, won/lost flags, deleted and merged records, channels).

The options file (``--map FILE``) holds the same sections as a mapping file's top level,
so one vocabulary serves all importers: ``stages``, ``channels``, ``roles``, ``currency``
and the parsing keys ``date_format``, ``timezone``, ``decimal``, ``thousands``. A file
holding only ``source name: stage`` pairs is read as ``stages``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError, field_validator

from crm.importers.common import LINE, SRC, ImportInputError, ImportSummary
from crm.importers.extract import Extractor, Resolved
from crm.importers.mapping import Column, Currency, _keys_as_text, _Model, _problem, read_yaml
from crm.importers.names import NameMap
from crm.importers.parsing import parse_bool
from crm.schemas import LOST, WON

EXPORT_SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".xlsm", ".xls")


class VendorMap(_Model):
    """Options of ``dealcast import salesforce|hubspot --map FILE``."""

    stages: dict[str, str | None] = {}
    channels: dict[str, str | None] = {}
    roles: dict[str, str | None] = {}
    currency: Currency | None = None
    date_format: str | list[str] | None = None
    timezone: str | None = None
    decimal: Literal[".", ","] | None = None
    thousands: str | None = None

    _names = field_validator("stages", "channels", "roles", mode="before")(_keys_as_text)

    def parsing(self) -> Resolved:
        return Resolved(
            date_format=self.date_format,
            timezone=self.timezone,
            decimal=self.decimal or ".",
            thousands=self.thousands,
        )


def load_vendor_map(path: Path | None, **overrides: Any) -> VendorMap:
    """The options file (or none), with command-line ``overrides`` (None = not given)."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = read_yaml(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ImportInputError(f"{path}: no such map file") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ImportInputError(f"{path}: cannot read the map file: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ImportInputError(f"{path}: expected sections such as stages: {{...}}")
        if loaded and not set(map(str, loaded)) & set(VendorMap.model_fields):
            loaded = {"stages": loaded}
        raw = loaded
    raw |= {k: v for k, v in overrides.items() if v is not None}
    try:
        return VendorMap.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(dict.fromkeys(_problem(e) for e in exc.errors()))
        given = {k for k, v in overrides.items() if v is not None}
        where = path or "options"
        if given and all(e["loc"] and str(e["loc"][0]) in given for e in exc.errors()):
            where = "command-line option"
        raise ImportInputError(f"{where}: {problems}") from None


def squash(name: object) -> str:
    """Column labels compared loosely: ``Created Date`` = ``CreatedDate`` = ``created_date``."""
    return re.sub(r"[^0-9a-z]", "", str(name).casefold())


def find_export(folder: Path, stems: Iterable[str]) -> Path | None:
    """The export file in ``folder`` whose squashed name is one of ``stems``."""
    wanted = {squash(s) for s in stems}
    hits = [
        p
        for p in sorted(Path(folder).iterdir())
        if p.suffix.lower() in EXPORT_SUFFIXES and squash(p.stem) in wanted
    ]
    odd = [p for p in hits if not p.is_file()]  # a folder, pipe, device or broken link
    if odd:
        raise ImportInputError(
            f"{odd[0]}: not a regular file (a folder, pipe, device or broken link); "
            "replace it by the exported file"
        )
    if len(hits) > 1:
        names = ", ".join(p.name for p in hits)
        raise ImportInputError(
            f"{folder}: several files could be the same export ({names}); keep one"
        )
    return hits[0] if hits else None


def export_files(folder: Path) -> list[Path]:
    return [
        p
        for p in sorted(Path(folder).iterdir())
        if p.is_file() and p.suffix.lower() in EXPORT_SUFFIXES and not p.name.startswith(".")
    ]


def rename_aliases(frame: pd.DataFrame, aliases: Mapping[str, str]) -> pd.DataFrame:
    """Rename columns whose squashed label is a key of ``aliases`` (first hit wins)."""
    lookup = {squash(k): v for k, v in aliases.items()}
    rename: dict[str, str] = {}
    taken = set(frame.columns)
    targets = set(aliases.values())
    for column in frame.columns:
        if column in (SRC, LINE) or column in targets:
            continue
        target = lookup.get(squash(column))
        if target and target != column and target not in taken and target not in rename.values():
            rename[column] = target
    out = frame.rename(columns=rename)
    out.attrs["labels"] = {new: old for old, new in rename.items()}
    return out


def first_of(frame: pd.DataFrame, *names: str) -> str | None:
    """The first of ``names`` (squashed comparison) that ``frame`` has, as spelled there."""
    present = {squash(c): c for c in frame.columns if c not in (SRC, LINE)}
    for name in names:
        if squash(name) in present:
            return present[squash(name)]
    return None


def optional_columns(
    ex: Extractor,
    *,
    text: Iterable[tuple[str, str | None]] = (),
    numbers: Iterable[tuple[str, str | None]] = (),
    timestamps: Iterable[tuple[str, str | None]] = (),
) -> dict[str, pd.Series]:
    """``name -> values`` for the ``(name, column)`` pairs the export has (column not None)."""
    cols: dict[str, pd.Series] = {}
    for name, column in text:
        if column:
            cols[name] = ex.text(Column(column=column), name)
    for name, column in numbers:
        if column:
            cols[name] = ex.numbers(Column(column=column), name)
    for name, column in timestamps:
        if column:
            cols[name] = ex.timestamps(Column(column=column), name, required=False)
    return cols


def with_currency_column(currency: Currency | None, column: str | None) -> Currency | None:
    """The ``currency`` option, reading the code from ``column`` when it names no column."""
    if currency is not None and currency.column is None and column:
        return currency.model_copy(update={"column": column})
    return currency


def won_lost(won: pd.Series, closed: pd.Series) -> pd.Series:
    """won/lost from parsed "is won" and "is closed" flags (NaN while open or unknown)."""
    out = pd.Series(np.nan, index=won.index, dtype="str")
    out = out.mask((closed & won).fillna(False).to_numpy(dtype=bool), WON)
    return out.mask((closed & ~won).fillna(False).to_numpy(dtype=bool), LOST)


def drop_flagged(
    frame: pd.DataFrame, column: str, summary: ImportSummary, table: str, reason: str
) -> pd.DataFrame:
    """Leave out (under ``reason``) the rows whose yes/no ``column`` says true."""
    gone = parse_bool(frame[column]).fillna(False).to_numpy(dtype=bool)
    summary.leave_out(table, frame[gone], reason)
    return frame[~gone].reset_index(drop=True)


def repoint(ids: pd.Series, merged_into: Mapping[str, str]) -> pd.Series:
    """Ids of merged records replaced by the id of the record they were merged into."""
    return ids.map(lambda v: merged_into.get(v, v), na_action="ignore").astype("str")


def apply_channels(
    channels: NameMap, touches: pd.DataFrame, summary: ImportSummary, reason: str
) -> pd.DataFrame:
    """Touchpoints with their channel mapped; those mapped to null left out under ``reason``."""
    channel, ignored = channels.apply(touches["channel"], summary)
    summary.leave_out("touchpoints", touches[ignored], reason)
    return touches.assign(channel=channel)[~ignored]
