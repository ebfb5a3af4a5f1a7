"""CSV files at the byte level: header, encoding, separators, ragged rows, line numbers.

Used by :mod:`crm.read`. Every problem is raised as :class:`UnusableFile`, already
phrased for the user (rule id, message, hint, line numbers); nothing here reports.

A cell holds at most :data:`MAX_CELL_BYTES` (1 MiB): a larger one is a dump, not a CRM
field, and is reported as ``cell_too_large`` with its line. NUL bytes (UTF-16 without a
byte order mark, a binary file) are ``not_utf8`` / ``binary_file``, not ragged rows.
"""

from __future__ import annotations

import codecs
import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from crm.provenance import plural
from crm.schemas import CONTRACT

_CHUNK = 1 << 24
#: Largest cell, in bytes; also the parser's block size (a record must fit in a block).
MAX_CELL_BYTES = 1 << 20
_SEPARATORS = ((";", "semicolon"), ("\t", "tab"), ("|", "pipe"))
UTF8_HINT = "re-save the file as UTF-8 (in Excel: 'CSV UTF-8 (comma delimited)')"


class UnusableFile(Exception):
    """A problem that makes a file unreadable; already phrased for the user."""

    def __init__(self, rule: str, message: str, *, hint: str | None = None, rows=()) -> None:
        super().__init__(message)
        self.rule, self.message, self.hint, self.rows = rule, message, hint, tuple(rows)


def read_header(path: Path) -> list[str]:
    """The stripped column names of line 1; raises for empty or non-UTF-8 files."""
    with path.open("rb") as fh:
        first = fh.readline(1 << 20)
        rest_blank = not first.strip(b"\xef\xbb\xbf \t\r\n") and not fh.read(_CHUNK).strip()
    if rest_blank:
        raise UnusableFile("empty_file", "the file is empty", hint="export the table with a header")
    check_nul_bytes(path)
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _not_utf8(path) from exc
    if not text.strip():
        raise UnusableFile(
            "malformed_csv",
            "line 1 is empty; the header must be the first line",
            rows=(1,),
            hint="delete the blank lines above the header",
        )
    return [c.strip() for c in next(csv.reader([text.rstrip("\r\n")]), [])]


def check_nul_bytes(path: Path) -> None:
    """Raise for NUL bytes in the first block: UTF-16 without a byte order mark (every
    other byte NUL), else a binary file. Valid UTF-8 text never holds NUL bytes."""
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    if b"\x00" not in head or head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return  # no NUL, or UTF-16 with a BOM (reported by _not_utf8)
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.1 * len(even):
        order = "little-endian"
    elif even.count(0) > 0.4 * len(even) and odd.count(0) < 0.1 * len(odd):
        order = "big-endian"
    else:
        line = head.count(b"\n", 0, head.index(b"\x00")) + 1
        raise UnusableFile(
            "binary_file",
            f"the file holds NUL bytes (first on line {line}): it is not a text CSV file",
            rows=(line,),
            hint="export the table as CSV (comma separated, UTF-8) or Parquet",
        )
    raise UnusableFile(
        "not_utf8",
        f"the file is UTF-16 ({order}, without a byte order mark), not UTF-8",
        rows=(1,),
        hint=UTF8_HINT,
    )


def check_separator(name: str, header: list[str]) -> None:
    """Raise ``wrong_separator`` when a one-column header splits on ``;``, tab or ``|``."""
    if len(header) != 1:
        return
    known = set(CONTRACT[name].column_names)
    for sep, label in _SEPARATORS:
        parts = [p.strip().strip('"') for p in header[0].split(sep)]
        if len(parts) >= 2:
            matched = [p for p in parts if p in known]
            seen = f" (it names {', '.join(matched[:4])})" if matched else ""
            raise UnusableFile(
                "wrong_separator",
                f"the header is {label}-separated{seen}; the contract needs commas",
                rows=(1,),
                hint="re-export the file comma-separated (in Excel: 'CSV UTF-8 (comma "
                "delimited)'; pandas: to_csv(sep=',')), or pass it through an importer",
            )


def check_duplicates(names: list[str]) -> None:
    """Raise ``duplicate_column`` when a (stripped) column name appears twice."""
    dups = [n for n, k in Counter(names).items() if k > 1 and n]  # unnamed: see read.py
    if dups:
        raise UnusableFile(
            "duplicate_column",
            f"column name(s) appear more than once: {', '.join(sorted(set(dups)))}",
            rows=(1,),
            hint="rename or delete the repeated columns (names are compared after "
            "stripping spaces)",
        )


def parse_csv(path: Path, ncols: int) -> pd.DataFrame:
    """All cells as text, positional column names; raises on ragged rows or bad bytes."""
    ragged: list[int] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        ragged.append(row.actual_columns)
        return "skip"

    names = [f"c{i}" for i in range(ncols)]
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, block_size=4 * MAX_CELL_BYTES
            ),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if "UTF8" in str(exc) or "UTF-8" in str(exc):
            raise _not_utf8(path) from exc
        raise _malformed(path, ncols, str(exc)) from exc
    if ragged:
        raise _malformed(path, ncols, "")
    _check_cell_sizes(path, table, ncols)
    return pa.table([_clean_arrow(c) for c in table.columns], names=names).to_pandas()


def _check_cell_sizes(path: Path, table: pa.Table, ncols: int) -> None:
    """Raise ``cell_too_large`` (with its line) for a cell over :data:`MAX_CELL_BYTES`."""
    for column in table.columns:
        if len(column) and (pc.max(pc.binary_length(column)).as_py() or 0) > MAX_CELL_BYTES:
            _scan_records(path, ncols)  # raises with the line when the parser sees it
            raise _too_large(None)


def _clean_arrow(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Strip surrounding whitespace; empty cells become null (vectorised in Arrow)."""
    trimmed = pc.utf8_trim_whitespace(column)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def line_numbers(path: Path, nrows: int, ncols: int, newlines: tuple[int, bool]) -> np.ndarray:
    """The line each data record starts on (header = line 1).

    One record per line is checked with a fast newline count; only files whose quoted
    values span lines are walked record by record.
    """
    lines = newlines[0] + (0 if newlines[1] else 1)
    if lines == nrows + 1:
        return np.arange(2, nrows + 2, dtype=np.int64)
    starts, bad = _scan_records(path, ncols)
    if bad or len(starts) != nrows:
        return np.arange(2, nrows + 2, dtype=np.int64)  # best effort; parsers disagree
    return np.asarray(starts, dtype=np.int64)


def scan_bytes(path: Path) -> tuple[int, bool]:
    """Check the file is UTF-8 (raises ``not_utf8``); count its newlines in the same pass.

    Returns the number of newline bytes and whether the file ends with one.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    count, last = 0, b""
    with path.open("rb") as fh:
        try:
            while chunk := fh.read(_CHUNK):
                decoder.decode(chunk)
                count += chunk.count(b"\n")
                last = chunk[-1:]
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise _not_utf8(path) from exc
    return count, last == b"\n"


def _scan_records(path: Path, ncols: int) -> tuple[list[int], list[tuple[int, int]]]:
    """Start line of every data record, and (line, fields) of records of the wrong width.

    Raises ``UnusableFile`` for a quote that is never closed.
    """
    starts: list[int] = []
    bad: list[tuple[int, int]] = []
    previous = 0
    limit = csv.field_size_limit()
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, strict=True)
        try:
            csv.field_size_limit(MAX_CELL_BYTES)
            next(reader, None)
            previous = reader.line_num
            for record in reader:
                starts.append(previous + 1)
                if record and len(record) != ncols:
                    bad.append((previous + 1, len(record)))
                previous = reader.line_num
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise _too_large(previous + 1) from exc
            what = "a quote opened" if "end of data" in str(exc) else f"broken quoting ({exc})"
            raise UnusableFile(
                "malformed_csv",
                f"{what} in the record starting on line {previous + 1}"
                + (" is never closed" if "end of data" in str(exc) else ""),
                rows=(previous + 1,),
                hint="check the quotes on that line: a value with commas or line breaks "
                'must be wrapped in double quotes, and quotes inside it doubled ("")',
            ) from exc
        finally:
            csv.field_size_limit(limit)
    return starts, bad


def _too_large(line: int | None) -> UnusableFile:
    where = f" in the record starting on line {line}" if line else ""
    return UnusableFile(
        "cell_too_large",
        f"a value{where} is larger than {MAX_CELL_BYTES // (1 << 20)} MiB, the contract's "
        "limit for one cell",
        rows=(line,) if line else (),
        hint="leave long texts (notes, e-mail bodies) out of the export, or check that a "
        "quote opened on that line is closed",
    )


def _malformed(path: Path, ncols: int, detail: str) -> UnusableFile:
    """The ``malformed_csv`` problem, with every line whose width differs from the header."""
    starts, bad = _scan_records(path, ncols)
    if not bad:
        return UnusableFile(
            "malformed_csv",
            f"the file is not valid CSV ({detail})",
            hint="re-export the table as comma-separated CSV",
        )
    line, fields = bad[0]
    return UnusableFile(
        "malformed_csv",
        f"{plural(len(bad), 'row')} with the wrong number of values: the header has "
        f"{ncols} columns, line {line} has {fields}",
        rows=[b[0] for b in bad],
        hint="a value containing a comma must be wrapped in double quotes; check those "
        "lines for extra or missing commas",
    )


def _not_utf8(path: Path) -> UnusableFile:
    """The ``not_utf8`` problem: the line of the first bad byte and a guess at the encoding."""
    data = path.read_bytes()
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return UnusableFile(
            "not_utf8", "the file is UTF-16 encoded, not UTF-8", rows=(1,), hint=UTF8_HINT
        )
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start]
        return UnusableFile(
            "not_utf8",
            f"byte 0x{byte:02X} on line {line} is not valid UTF-8{_guess_encoding(data, exc)}",
            rows=(line,),
            hint=UTF8_HINT,
        )
    return UnusableFile("not_utf8", "the file is not valid UTF-8", hint=UTF8_HINT)


def _guess_encoding(data: bytes, exc: UnicodeDecodeError) -> str:
    start = data.rfind(b"\n", 0, exc.start) + 1
    end = data.find(b"\n", exc.start)
    snippet = data[start : end if end >= 0 else len(data)][:80]
    try:
        text = snippet.decode("cp1252").strip()
    except UnicodeDecodeError:
        return ""
    if not text.isprintable():
        return ""
    return f"; it looks like Windows-1252/Latin-1 (the line reads {text!r} in that encoding)"
