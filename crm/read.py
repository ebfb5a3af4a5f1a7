"""Reading a CRM folder: the only disk I/O of the ``crm`` package.

Every table is ``<name>.csv`` or ``<name>.parquet``. CSV files are read entirely as text
(fast, multi-threaded pyarrow parser) so that typing can quote unparseable values with
their line numbers; Parquet files keep their stored types. Problems never raise: they
become findings (``empty_file``, ``not_utf8``, ``wrong_separator``, ``malformed_csv``,
``duplicate_column``, ``unreadable_file`` ...) and the table is then skipped.

Row numbers: a CSV data row is quoted by the line it starts on (header = line 1, quoted
values may span lines); a Parquet row by its 1-based position.
"""

from __future__ import annotations

import csv
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from crm.csvfile import (
    UnusableFile,
    check_duplicates,
    check_separator,
    line_numbers,
    parse_csv,
    read_header,
    scan_bytes,
)
from crm.provenance import plural
from crm.report import ValidationReport
from crm.schemas import TABLES

SUFFIXES = (".csv", ".parquet")
#: Suffixes of files that look like a table export and deserve a word when not read.
DATA_LIKE = (".csv", ".parquet", ".pq", ".tsv", ".xlsx", ".xls")
#: A variable-width last column needs this many values before a short last one is flagged.
CUT_OFF_MIN_ROWS = 20


@dataclass(frozen=True)
class RawTable:
    """One table as read from disk, before typing.

    CSV frames hold stripped text with missing values (empty or blank cells) as NaN;
    Parquet frames hold whatever types the file stored. ``rows[i]`` is the row number a
    user sees for frame position ``i``.
    """

    name: str
    path: Path
    frame: pd.DataFrame
    rows: np.ndarray


# --------------------------------------------------------------------------- the folder


def locate_tables(folder: Path, report: ValidationReport) -> dict[str, Path]:
    """Find each contract table's file in ``folder``; report missing or ambiguous ones."""
    folder = Path(folder)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        report.error(
            "missing_folder",
            "deals",
            f"the CRM folder {what}",
            file=str(folder),
            hint="pass the folder that holds deals.csv (or deals.parquet)",
        )
        return {}
    found: dict[str, Path] = {}
    for name in TABLES:
        candidates = [folder / f"{name}{s}" for s in SUFFIXES]
        candidates = [p for p in candidates if _regular(p, name, report)]
        if len(candidates) > 1:
            report.error(
                "ambiguous_table",
                name,
                f"both {candidates[0].name} and {candidates[1].name} exist",
                file=str(folder),
                hint="keep only one of the two files",
            )
        elif candidates:
            found[name] = candidates[0]
    _report_missing_deals(folder, found, report)
    _report_unexpected_files(folder, report)
    return found


def _regular(path: Path, name: str, report: ValidationReport) -> Path | None:
    """``path`` if it is a regular file (or a link to one); None if absent; an error
    finding if it exists but is a folder, device, FIFO, socket or broken link (reading it
    could hang or pass an empty table off as a missing one)."""
    if not os.path.lexists(path):
        return None
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        what = "a broken link" if path.is_symlink() else f"unreadable ({exc.strerror})"
    else:
        if stat.S_ISREG(mode):
            return path
        what = _kind(mode)
        if path.is_symlink():
            what = f"a link to {what} ({os.readlink(path)})"
    report.error(
        "not_a_file",
        name,
        f"{path.name} is {what}, not a regular file",
        file=path.name,
        hint=f"replace {path.name} by the exported table (a regular file), or remove it",
    )
    return None


def _kind(mode: int) -> str:
    for test, what in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return what
    return "a special file"


def _report_missing_deals(folder: Path, found: dict[str, Path], report: ValidationReport) -> None:
    if "deals" in found or any(
        f.rule in ("ambiguous_table", "not_a_file") and f.table == "deals" for f in report.findings
    ):
        return
    near = sorted(p.name for p in folder.iterdir() if p.stem.lower().startswith("deal"))
    hint = "export your opportunities as deals.csv (comma separated, UTF-8) or deals.parquet"
    if near:
        hint = f"found {', '.join(near)}: rename or export it as deals.csv or deals.parquet"
    report.error(
        "missing_table", "deals", "the required deals table is missing", hint=hint, file=str(folder)
    )


def _report_unexpected_files(folder: Path, report: ValidationReport) -> None:
    expected = {f"{t}{s}" for t in TABLES for s in SUFFIXES}
    ignored = sorted(
        p.name
        for p in folder.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and p.name not in expected
        and (p.suffix.lower() in DATA_LIKE or p.name.split(".")[0].lower() in TABLES)
    )
    if ignored:
        report.warning(
            "unexpected_file",
            "deals",
            f"not read: {', '.join(ignored[:10])}" + (" ..." if len(ignored) > 10 else ""),
            file=str(folder),
            hint=f"tables are named {', '.join(TABLES)} with suffix .csv or .parquet "
            "(lower case); rename a file if it holds one of them",
        )


# --------------------------------------------------------------------------- one table


def read_table(name: str, path: Path, report: ValidationReport) -> RawTable | None:
    """Read one table; on any problem add an error finding and return None."""
    try:
        if path.suffix == ".parquet":
            return _read_parquet(name, path)
        return _read_csv(name, path, report)
    except UnusableFile as problem:
        report.error(
            problem.rule,
            name,
            problem.message,
            hint=problem.hint,
            rows=problem.rows,
            file=path.name,
        )
    except (OSError, pa.ArrowException, csv.Error, UnicodeError, ValueError) as exc:
        report.error("unreadable_file", name, f"cannot read the file: {exc}", file=path.name)
    return None


def _read_parquet(name: str, path: Path) -> RawTable:
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise UnusableFile(
            "unreadable_file",
            f"not a readable Parquet file ({exc})",
            hint="write it again with pandas.DataFrame.to_parquet or export CSV instead",
        ) from exc
    names = [str(c).strip() for c in table.column_names]
    check_duplicates(names)
    if table.num_rows == 0:
        raise UnusableFile("empty_file", "the file has no rows", hint="export the table with data")
    frame = table.rename_columns([f"c{i}" for i in range(len(names))]).to_pandas()
    frame.columns = names
    frame = frame.reset_index(drop=True)
    for column in frame.columns[_is_text(frame)]:
        frame[column] = clean_text(frame[column])
    return RawTable(name, path, frame, np.arange(1, len(frame) + 1, dtype=np.int64))


def _read_csv(name: str, path: Path, report: ValidationReport) -> RawTable:
    header = read_header(path)
    check_separator(name, header)
    check_duplicates(header)
    lines = scan_bytes(path)
    frame = parse_csv(path, len(header))
    if len(frame) == 0:
        raise UnusableFile(
            "empty_file",
            "the file has a header but no data rows",
            hint="export the table with its data rows",
            rows=(1,),
        )
    rows = line_numbers(path, len(frame), len(header), lines)
    frame.columns = header
    if not lines[1]:
        _check_cut_off(name, path, frame, rows, report)
    frame, rows = _drop_unnamed(name, path, frame, rows, report)
    return _drop_blank_rows(name, path, frame, rows, report)


def _check_cut_off(
    name: str, path: Path, frame: pd.DataFrame, rows: np.ndarray, report: ValidationReport
) -> None:
    """A file without a final line end whose last value is shorter than every other value
    of its column was probably cut off mid-row (an interrupted copy or export): an error
    when the column has one fixed width (dates, ids: the value cannot be complete), else a
    warning once the column has :data:`CUT_OFF_MIN_ROWS` values to compare with."""
    last = frame.iloc[-1, -1]
    others = frame.iloc[:-1, -1].dropna().astype(str).str.len()
    if pd.isna(last) or len(others) < 3 or len(str(last)) >= others.min():
        return
    column, line = frame.columns[-1], int(rows[-1])
    fixed = others.min() == others.max()
    detail = (
        "the file has no line end after its last row, whose last value "
        f"{str(last)!r} in column {column!r} is shorter than every other value of that column"
    )
    if fixed:
        raise UnusableFile(
            "truncated_file",
            f"{detail} (all {others.min()} characters long): the file was cut off mid-row",
            rows=(line,),
            hint="export or copy the file again: its end is missing",
        )
    if len(others) >= CUT_OFF_MIN_ROWS:
        report.warning(
            "truncated_file",
            name,
            f"{detail}: the file may have been cut off mid-row; check its last line",
            rows=(line,),
            file=path.name,
        )


def _is_text(frame: pd.DataFrame) -> np.ndarray:
    return np.array(
        [pd.api.types.is_string_dtype(t) or pd.api.types.is_object_dtype(t) for t in frame.dtypes],
        dtype=bool,
    )


def clean_text(column: pd.Series) -> pd.Series:
    """Strip surrounding whitespace; empty or blank cells become missing (NaN)."""
    text = column.astype("str").str.strip()
    return text.mask(text == "")


def _drop_unnamed(
    name: str, path: Path, frame: pd.DataFrame, rows: np.ndarray, report: ValidationReport
) -> tuple[pd.DataFrame, np.ndarray]:
    """Drop columns without a header name when empty; an error when they hold data."""
    unnamed = [i for i, c in enumerate(frame.columns) if c == ""]
    if not unnamed:
        return frame, rows
    filled = [i for i in unnamed if frame.iloc[:, i].notna().any()]
    positions = ", ".join(str(i + 1) for i in unnamed)
    if filled:
        raise UnusableFile(
            "unnamed_column",
            f"column(s) at position {', '.join(str(i + 1) for i in filled)} have data but "
            "no header name",
            rows=(1,),
            hint="give every column a name in the header row",
        )
    report.warning(
        "unnamed_column",
        name,
        f"empty column(s) without a name at position {positions} ignored (trailing commas?)",
        rows=(1,),
        file=path.name,
    )
    keep = [i for i in range(frame.shape[1]) if i not in unnamed]
    return frame.iloc[:, keep], rows


def _drop_blank_rows(
    name: str, path: Path, frame: pd.DataFrame, rows: np.ndarray, report: ValidationReport
) -> RawTable:
    blank = frame.isna().all(axis=1).to_numpy()
    if blank.all():
        raise UnusableFile(
            "empty_file",
            "the file has a header but only blank rows",
            hint="export the table with its data rows",
        )
    if blank.any():
        report.warning(
            "blank_rows",
            name,
            f"{plural(int(blank.sum()), 'row')} with no values ignored",
            rows=rows[blank][:5].tolist(),
            count=int(blank.sum()),
            file=path.name,
        )
        frame, rows = frame.loc[~blank].reset_index(drop=True), rows[~blank]
    return RawTable(name, path, frame, rows)
