"""Turning export text into typed values: timestamps, amounts, booleans, names.

Every parser returns the typed values and a mask of the cells that held text but could
not be typed, so the caller decides whether such a row is left out (a deal without a
creation date) or keeps a blank (an unreadable amount). A column where *no* value can be
read raises :class:`ImportInputError` with the fix (declare ``date_format``, ``decimal``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from crm.importers.common import ImportInputError
from crm.schemas import TIMESTAMP_DTYPE

#: ``date_format`` keywords besides strftime patterns.
DATE_KEYWORDS = ("iso", "epoch_s", "epoch_ms", "excel")
_NUMERIC_DATE = re.compile(
    r"^\s*(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?!\d)"  # day/month/year in some order
    r"(?:[ ,T]+(\d{1,2}):(\d{2})(:\d{2})?\s*([AaPp][Mm])?)?"  # an optional clock time
)
_OFFSET = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$")
_UTC_WORD = re.compile(r"(?<=\d)\s*(?:UTC|GMT)$")
_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}")
_EXCEL_EPOCH = pd.Timestamp("1899-12-30")
CURRENCY_SYMBOLS = {
    "US$": "USD",
    "R$": "BRL",
    "C$": "CAD",
    "A$": "AUD",
    "$": "USD",
    "€": "EUR",
    "£": "GBP",
    "¥": "JPY",
    "₹": "INR",
    "₩": "KRW",
    "₽": "RUB",
    "Fr.": "CHF",
}
_SYMBOLS = (
    "(" + "|".join(re.escape(s) for s in sorted(CURRENCY_SYMBOLS, key=len, reverse=True)) + ")"
)
_CODE = re.compile(r"(?:^([A-Z]{3})\b\s*)|(?:\s*\b([A-Z]{3})$)")
#: Cells that mean "no value" in a date or number column.
MISSING_TOKENS = {"-", "--", "n/a", "na", "null", "none", "nan", "nat", "#n/a", "?"}
_TRUE = {"true", "1", "yes", "y", "t", "x", "1.0"}
_FALSE = {"false", "0", "no", "n", "f", "0.0"}


def norm(name: object) -> str:
    """How source names are compared: case-insensitive, spaces collapsed."""
    return " ".join(str(name).split()).casefold()


# --------------------------------------------------------------------------- timestamps


def parse_timestamps(
    text: pd.Series,
    *,
    formats: Sequence[str] | str | None,
    timezone: str | None,
    where: str,
) -> tuple[pd.Series, np.ndarray]:
    """Parse text into UTC timestamps; returns (values, mask of unreadable cells).

    ``formats``: strftime patterns tried in order, or one of :data:`DATE_KEYWORDS`
    (``None`` = ISO 8601). Values with a UTC offset are converted; values without one are
    read in ``timezone`` (default UTC). ISO values are always accepted as a fallback (an
    Excel sheet mixes typed dates with text). ``where`` names the file and column in errors.
    """
    values = _as_text(text)
    values = values.mask(values.str.casefold().isin(MISSING_TOKENS))
    values = values.str.replace(_UTC_WORD, "Z", regex=True)  # "... 10:00:00 UTC" (SQL exports)
    given = values.notna().to_numpy()
    out = pd.Series(pd.NaT, index=values.index, dtype=TIMESTAMP_DTYPE)
    if not given.any():
        return out, np.zeros(len(values), dtype=bool)
    fmts = [formats] if isinstance(formats, str) else list(formats or ["iso"])
    zone = _zone(timezone, where)
    for fmt in [*fmts, "iso"]:
        todo = given & out.isna().to_numpy()
        if not todo.any():
            break
        out.iloc[np.flatnonzero(todo)] = _parse_with(values[todo], fmt, zone)
    bad = given & out.isna().to_numpy()
    if bad.any() and bad.sum() == given.sum():
        raise ImportInputError(_no_dates_message(values[bad], formats, where))
    if bad.any() and formats is None:
        sample = values[bad]
        if sample.str.match(_NUMERIC_DATE).any():
            raise ImportInputError(_no_dates_message(sample, formats, where))
    return out, bad


def _parse_with(values: pd.Series, fmt: str, zone: ZoneInfo) -> pd.Series:
    if fmt in ("epoch_s", "epoch_ms"):
        numbers = pd.to_numeric(values, errors="coerce")
        unit = "s" if fmt == "epoch_s" else "ms"
        return pd.to_datetime(numbers, unit=unit, utc=True, errors="coerce").astype(TIMESTAMP_DTYPE)
    if fmt == "excel":
        days = pd.to_numeric(values, errors="coerce")
        # serial days carry float noise (45280.395833 is 09:29:59.97): nearest second
        naive = (_EXCEL_EPOCH + pd.to_timedelta(days, unit="D")).dt.round("s")
        return _localise(pd.Series(naive, index=values.index), zone)
    if "%z" in fmt or "%Z" in fmt:
        aware = np.ones(len(values), dtype=bool)
    elif fmt == "iso":
        aware = values.str.contains(_OFFSET).to_numpy(dtype=bool)
    else:
        aware = np.zeros(len(values), dtype=bool)
    out = pd.Series(pd.NaT, index=values.index, dtype=TIMESTAMP_DTYPE)
    pd_fmt = "ISO8601" if fmt == "iso" else fmt
    if aware.any():
        parsed = pd.to_datetime(values[aware], format=pd_fmt, utc=True, errors="coerce")
        out.iloc[np.flatnonzero(aware)] = parsed.astype(TIMESTAMP_DTYPE).to_numpy()
    if (~aware).any():
        if fmt == "iso":
            ok = values[~aware].str.match(_ISO_START)
            naive = pd.to_datetime(values[~aware].where(ok), format=pd_fmt, errors="coerce")
        else:
            naive = pd.to_datetime(values[~aware], format=pd_fmt, errors="coerce")
        out.iloc[np.flatnonzero(~aware)] = _localise(naive, zone).to_numpy()
    return out


def _localise(naive: pd.Series, zone: ZoneInfo) -> pd.Series:
    naive = pd.to_datetime(naive, errors="coerce")
    if naive.dt.tz is not None:
        return naive.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE)
    flags = np.ones(len(naive), dtype=bool)  # an ambiguous wall time is read as summer time
    local = naive.dt.tz_localize(zone, ambiguous=flags, nonexistent="shift_forward")
    return local.dt.tz_convert("UTC").astype(TIMESTAMP_DTYPE)


def _zone(timezone: str | None, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ImportInputError(
            f"{where}: unknown time zone {timezone!r}; use an IANA name such as "
            "'Europe/Berlin', 'America/New_York' or 'UTC'"
        ) from None


def _no_dates_message(bad: pd.Series, formats: object, where: str) -> str:
    example = str(bad.iloc[0])
    candidates = date_format_candidates(bad)
    if formats is None:
        head = f"{where}: dates such as {example!r} are not ISO 8601 and no date_format is declared"
    else:
        head = f"{where}: no value could be read with date_format {formats!r} (e.g. {example!r})"
    if len(candidates) == 1:
        return (
            f"{head}; they look like {candidates[0]!r}: declare date_format: "
            f"{candidates[0]!r} (on the command line: --date-format '{candidates[0]}')"
        )
    if len(candidates) == 2:
        return (
            f"{head}; day and month order cannot be told from the values: declare "
            f"date_format: {candidates[0]!r} (day first) or {candidates[1]!r} (month first)"
        )
    return (
        f"{head}; declare the format as a strftime pattern, e.g. date_format: '%d.%m.%Y' "
        "or '%m/%d/%Y %I:%M %p' (or iso, epoch_s, epoch_ms, excel)"
    )


def date_format_candidates(values: pd.Series) -> list[str]:
    """strftime patterns that fit day/month/year-looking values: one if the order is
    clear from the values (a day above 12), the day-first and month-first readings if not.
    """
    parts = values.astype("str").str.extract(_NUMERIC_DATE)
    parts = parts[parts[0].notna()]
    if parts.empty:
        return []
    first, second = parts[0].astype(int), parts[2].astype(int)
    day_first, month_first = bool((first > 12).any()), bool((second > 12).any())
    if day_first and month_first:
        return []
    sep = parts[1].iloc[0]
    year = "%Y" if parts[3].str.len().max() == 4 else "%y"
    clock = ""
    if parts[4].notna().any():
        ampm = parts[7].notna().any()
        clock = " " + ("%I" if ampm else "%H") + ":%M" + (":%S" if parts[6].notna().any() else "")
        clock += " %p" if ampm else ""
    dmy, mdy = sep.join(["%d", "%m", year]) + clock, sep.join(["%m", "%d", year]) + clock
    if day_first:
        return [dmy]
    if month_first:
        return [mdy]
    return [dmy, mdy]


# --------------------------------------------------------------------------- numbers


def parse_numbers(
    text: pd.Series, *, decimal: str = ".", thousands: str | None = None, where: str
) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """Parse amounts like ``€1.234,50``, ``$1,234.50``, ``1 234,50 EUR``, ``(300)``.

    Returns (float values, currency code found in the text or NaN, mask of unreadable
    cells). ``thousands`` defaults to ``,`` when ``decimal`` is ``.`` and to ``.`` when it
    is ``,``; a thousands separator must be followed by groups of three digits, so
    ``1,5`` is not silently read as 15.
    """
    if pd.api.types.is_numeric_dtype(text.dtype) and not pd.api.types.is_bool_dtype(text.dtype):
        values = text.astype("float64")
        return values, pd.Series(np.nan, index=text.index, dtype="str"), np.zeros(len(text), bool)
    values = _as_text(text)
    values = values.mask(values.str.casefold().isin(MISSING_TOKENS))
    thousands = thousands if thousands is not None else ("," if decimal == "." else ".")
    codes = _currency_codes(values)
    cleaned = _strip_money(values)
    parenthesised = cleaned.str.match(r"^\(.*\)$").fillna(False)
    trailing_minus = (cleaned.str.endswith("-") & ~cleaned.str.startswith("-")).fillna(False)
    negative = parenthesised | trailing_minus
    cleaned = cleaned.str.strip("()").str.rstrip("-")
    t, d = re.escape(thousands), re.escape(decimal)
    grouped = rf"^-?\d{{1,3}}({t}\d{{3}})+({d}\d+)?$"
    plain = rf"^-?\d*({d}\d+)?$|^-?\d+{d}?$"
    ok = cleaned.str.match(grouped) | cleaned.str.match(plain)
    ok = ok.fillna(False) & cleaned.str.contains(r"\d").fillna(False)
    canonical = cleaned.where(ok).str.replace(thousands, "", regex=False)
    canonical = canonical.str.replace(decimal, ".", regex=False)
    numbers = pd.to_numeric(canonical, errors="coerce").astype("float64")
    numbers = numbers.mask(negative.fillna(False).to_numpy(), -numbers)
    given = values.notna().to_numpy()
    bad = given & numbers.isna().to_numpy()
    if bad.any() and bad.sum() == given.sum():
        example = values[bad].iloc[0]
        other = "," if decimal == "." else "."
        raise ImportInputError(
            f"{where}: no value is a number with decimal separator {decimal!r} (e.g. "
            f"{example!r}); if the file writes 1.234,50 declare decimal: ',' (and "
            f"thousands: '.'); for 1,234.50 declare decimal: '.' ({other!r} is the other choice)"
        )
    return numbers, codes, bad


def _strip_money(values: pd.Series) -> pd.Series:
    out = values.str.replace(_SYMBOLS, "", regex=True).str.replace(_CODE, "", regex=True)
    return out.str.replace(r"[\s\u00a0\u202f'’]", "", regex=True)


def _currency_codes(values: pd.Series) -> pd.Series:
    symbol = values.str.extract(_SYMBOLS, expand=False).map(CURRENCY_SYMBOLS, na_action="ignore")
    found = values.str.extract(_CODE)
    named = found[0].fillna(found[1])
    return named.where(named.notna(), symbol).astype("str")


def convert_currency(
    amounts: pd.Series,
    codes: pd.Series,
    *,
    rates: dict[str, float],
    default: str | None,
) -> tuple[pd.Series, pd.Series]:
    """Multiply each amount by the rate of its currency; returns (converted, unknown codes).

    A missing code falls back to ``default``; an amount whose currency has no rate becomes
    blank, and its code is returned so the summary can name it.
    """
    table = {k.upper(): float(v) for k, v in rates.items()}
    code = codes.astype("str").str.strip().str.upper()
    if default:
        code = code.fillna(default.upper())
    rate = code.map(table).astype("float64")
    unknown = amounts.notna() & rate.isna()
    return (amounts * rate).astype("float64"), code.where(unknown)


# --------------------------------------------------------------------------- others


def parse_bool(text: pd.Series) -> pd.Series:
    """``true/false``, ``1/0``, ``yes/no`` (any case) -> nullable boolean; others NA."""
    if pd.api.types.is_bool_dtype(text.dtype):
        return text.astype("boolean")
    values = _as_text(text).str.casefold()
    out = pd.Series(pd.NA, index=text.index, dtype="boolean")
    out = out.mask(values.isin(_TRUE).to_numpy(), True)
    return out.mask(values.isin(_FALSE).to_numpy(), False)


def _as_text(values: pd.Series) -> pd.Series:
    """Stripped text with blanks as NaN (``str`` dtype)."""
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        if values.dt.tz is not None:
            utc = values.dt.tz_convert("UTC")
            return (utc.dt.strftime("%Y-%m-%dT%H:%M:%S.%f") + "+00:00").astype("str")
        return values.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").astype("str")
    if pd.api.types.is_float_dtype(values.dtype):
        present = values.dropna()
        if (present == np.floor(present)).all():
            return present.astype("int64").astype("str").reindex(values.index)
    text = values.astype("str").str.strip()
    return text.mask(text == "")
