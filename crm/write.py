"""Writing CRM tables to disk: one atomic file per table, deterministic bytes.

CSV files are UTF-8 (no BOM), comma separated, with a header row and no index column.
Timestamps are ISO 8601 in UTC with a ``Z`` suffix (``2025-03-04T09:15:00Z``; fractional
seconds only when a column has them); columns the contract types as dates are written as
``YYYY-MM-DD`` when every value is a midnight. Missing values are empty cells; floats that
are all whole numbers are written without ``.0``; strings are quoted only when some value
in the table contains a comma, quote or line break (then every string cell is quoted).
Columns that are not datetimes (e.g. the string timestamps of messy synthetic data) are
written as they are.

Parquet files keep the pandas dtypes (categories, ``str``, ``datetime64[us, UTC]``) and
contain nothing that changes from run to run, so writing the same frame twice gives the
same bytes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from crm.data import CRMData
from crm.schemas import CONTRACT, TABLES

FORMATS = ("csv", "parquet")
_SPECIAL_BYTES = tuple(b',"\r\n')


def write_crm(data: CRMData, folder: Path, *, fmt: Literal["csv", "parquet"]) -> dict[str, Path]:
    """Write the present tables of ``data`` as ``folder/<table>.<fmt>``; return their paths.

    Each file is replaced atomically. Afterwards the folder holds exactly these tables:
    contract-named files that would contradict ``data`` (the other format's copy of a
    written table, or a file of a table ``data`` does not have) are removed, so a reader
    never mixes old and new tables. Other files in the folder are left alone.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, not {fmt!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name in data.present():
        path = folder / f"{name}.{fmt}"
        write_frame(data.table(name), path)
        written[name] = path
    _remove_stale(folder, written)
    return written


def move_crm(staging: Path, folder: Path) -> dict[str, Path]:
    """Move the contract tables of ``staging`` (written by :func:`write_crm`) into
    ``folder``; return their new paths.

    For an import that validates what it wrote before replacing the user's folder:
    ``staging`` must be on the same file system (a sibling). Each table is renamed over its
    old file (atomic per file); afterwards the folder holds exactly these tables, as
    :func:`write_crm` leaves it. Other files in ``folder`` are left alone.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    moved: dict[str, Path] = {}
    for name in TABLES:
        for suffix in FORMATS:
            source = Path(staging) / f"{name}.{suffix}"
            if source.is_file():
                os.replace(source, folder / source.name)
                moved[name] = folder / source.name
    _remove_stale(folder, moved)
    return moved


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write one frame to ``path`` (.csv or .parquet) atomically.

    The bytes go to a hidden temporary file in the same folder, are flushed to disk and
    then renamed over ``path``; a crash leaves the old file (if any) intact. Parent folders
    are created. The index is not written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"{path}: can only write .csv or .parquet files")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "xb") as handle:
            if suffix == ".csv":
                _write_csv(frame, handle, table=path.stem)
            else:
                pq.write_table(_arrow_table(frame), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    """``frame`` as an Arrow table with pandas metadata (dtypes survive a round trip).

    pyarrow (<= 25) converts tz-aware columns through ``Series.values``, which pandas 3.1
    deprecates with a Pandas4Warning; the conversion itself is right, so that one warning
    is silenced here.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        return pa.Table.from_pandas(frame, preserve_index=False, nthreads=1)


def _write_csv(frame: pd.DataFrame, handle, *, table: str) -> None:
    """The CSV bytes of ``frame`` (see module docstring) into an open binary file."""
    date_columns = _date_columns(table)
    columns = [_csv_column(frame[c], date_only=c in date_columns) for c in frame.columns]
    body = pa.table(columns, names=[str(c) for c in frame.columns])
    quote = any(_needs_quotes(col) for col in body.columns)
    handle.write((",".join(_header_cell(str(c)) for c in frame.columns) + "\n").encode("utf-8"))
    if len(frame):
        options = pacsv.WriteOptions(
            include_header=False, quoting_style="needed" if quote else "none"
        )
        pacsv.write_csv(body, handle, write_options=options)


def _csv_column(series: pd.Series, *, date_only: bool) -> pa.Array | pa.ChunkedArray:
    """One column as an Arrow array whose CSV text is what the contract wants."""
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        return _timestamp_text(series, date_only=date_only)
    if isinstance(dtype, pd.CategoricalDtype):
        labels = pa.array(series.cat.categories.astype("str"), type=pa.string())
        codes = series.cat.codes.to_numpy()
        return pc.take(labels, pa.array(codes, mask=codes < 0))
    if pd.api.types.is_float_dtype(dtype):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan) + 0.0  # no "-0"
        finite = values[np.isfinite(values)]
        if np.all(finite == np.round(finite)) and np.all(np.abs(finite) < 2**53):
            missing = np.isnan(values)
            return pa.array(np.where(missing, 0, values).astype(np.int64), mask=missing)
        return pa.array(values, from_pandas=True)
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        return pa.array(series, from_pandas=True)
    return pa.array(series.astype("str"), type=pa.string(), from_pandas=True)


def _timestamp_text(series: pd.Series, *, date_only: bool) -> pa.Array:
    """ISO 8601 text: UTC with Z (aware), no zone (naive), or a date when asked and exact."""
    aware = isinstance(series.dtype, pd.DatetimeTZDtype)
    values = series.dt.tz_convert("UTC").dt.tz_localize(None) if aware else series
    values = values.astype("datetime64[us]")
    arr = pa.array(values, type=pa.timestamp("us"), from_pandas=True)
    zone = "Z" if aware else ""
    present = values.dropna()
    if date_only and (present == present.dt.normalize()).all():
        return pc.cast(pc.cast(arr, pa.date32()), pa.string())
    with contextlib.suppress(pa.ArrowInvalid):
        arr = pc.cast(arr, pa.timestamp("s"))  # whole seconds: no fraction in the text
    text = pc.replace_substring(pc.cast(arr, pa.string()), " ", "T", max_replacements=1)
    return pc.binary_join_element_wise(text, zone, "") if zone else text


def _needs_quotes(column: pa.Array | pa.ChunkedArray) -> bool:
    """True if a string column holds a comma, quote or line break anywhere.

    Scans the character bytes the column spans directly (much faster than a regex).
    """
    if pa.types.is_string(column.type):
        offset_type = np.int32
    elif pa.types.is_large_string(column.type):
        offset_type = np.int64
    else:
        return False
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    for chunk in chunks:
        _, offsets, data = chunk.buffers()
        if len(chunk) == 0 or data is None:
            continue
        bounds = np.frombuffer(offsets, dtype=offset_type)[
            chunk.offset : chunk.offset + len(chunk) + 1
        ]
        text = np.frombuffer(data, dtype=np.uint8)[bounds[0] : bounds[-1]]
        if any((text == byte).any() for byte in _SPECIAL_BYTES):
            return True
    return False


def _date_columns(table: str) -> set[str]:
    spec = CONTRACT.get(table)
    return {c.name for c in spec.columns if c.kind == "date"} if spec else set()


def _header_cell(name: str) -> str:
    if any(ch in name for ch in ',"\r\n'):
        return '"' + name.replace('"', '""') + '"'
    return name


def _remove_stale(folder: Path, kept: dict[str, Path]) -> None:
    """Delete every contract-named table file in ``folder`` but the ``kept`` ones: the other
    format's copy of a kept table, and the files of tables not kept."""
    for name in TABLES:
        for suffix in FORMATS:
            stale = folder / f"{name}.{suffix}"
            if kept.get(name) != stale:
                stale.unlink(missing_ok=True)
