"""The mapping file's building blocks: parsing options, inputs, columns, joins, sources.

A column given as a plain string is ``{column: ...}`` (see :func:`_column_shorthand`).
:mod:`crm.importers.mapping` is the whole file; ``docs/importers/mapped.md`` the reference.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Scalar = str | int | float | bool
#: How several rows become one value: per deal (``deals.combine``) or per join key
#: (``join.agg``). first/last: the first/last non-blank value in time order.
Rule = Literal["first", "last", "min", "max", "sum", "count"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _keys_as_text(value: Any) -> Any:
    """YAML reads ``true:``/``1:`` keys as bool/int; names are text."""
    if isinstance(value, dict):
        return {_text(k): v for k, v in value.items()}
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --------------------------------------------------------------------------- parsing


class Parsing(_Model):
    """How to read files and values; set in ``defaults``, an input, or a column."""

    delimiter: str | None = None
    encoding: str | None = None
    date_format: str | list[str] | None = None
    timezone: str | None = None
    decimal: Literal[".", ","] | None = None
    thousands: str | None = None
    sheet: str | int | None = None
    skip_rows: int | None = Field(default=None, ge=0)


class InputSpec(Parsing):
    file: str


class Column(_Model):
    """Where a contract column's values come from: a column (or the first non-blank of
    several), the earliest / latest of several date columns, or a constant ``value``;
    optionally a value ``map`` and parsing overrides."""

    column: str | list[str] | None = None
    value: Scalar | None = None
    earliest_of: list[str] | None = Field(default=None, min_length=1)
    latest_of: list[str] | None = Field(default=None, min_length=1)
    map: dict[str, str | None] | None = None
    date_format: str | list[str] | None = None
    timezone: str | None = None
    decimal: Literal[".", ","] | None = None
    thousands: str | None = None
    type: Literal["text", "number", "timestamp"] | None = None

    _map_keys = field_validator("map", mode="before")(_keys_as_text)

    @model_validator(mode="after")
    def _one_source(self) -> Column:
        given = [self.column, self.value, self.earliest_of, self.latest_of]
        if sum(v is not None for v in given) != 1:
            raise ValueError(
                "give exactly one of 'column' (a source column, or a list: the first "
                "non-blank), 'earliest_of' / 'latest_of' (a list of date columns) or "
                "'value' (a constant)"
            )
        return self

    @property
    def pick(self) -> Literal["first", "earliest", "latest"]:
        """How several columns become one value: the first non-blank, or the earliest /
        latest date."""
        if self.earliest_of is not None:
            return "earliest"
        return "latest" if self.latest_of is not None else "first"

    @property
    def columns(self) -> list[str]:
        for several in (self.earliest_of, self.latest_of):
            if several is not None:
                return list(several)
        if self.column is None:
            return []
        return [self.column] if isinstance(self.column, str) else list(self.column)


def _column_shorthand(value: Any) -> Any:
    if isinstance(value, str | list):
        return {"column": value}
    return value


def _columns_shorthand(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _column_shorthand(v) for k, v in value.items()}
    return value


class Join(_Model):
    """Add the columns of another input, matched on key columns (a left join).

    ``map`` rewrites this side's key values before matching (``GTXPro: GTX Pro``), for
    exports whose lookup tables spell a key differently; it changes only the matching, not
    the column's value. ``agg`` combines the other input's rows per key (product lines
    summed into one amount); without it the first row of a repeated key is used."""

    input: str
    on: str | list[str] | dict[str, str]
    map: dict[str, str] = {}
    agg: dict[str, Rule] = {}

    _map_keys = field_validator("map", mode="before")(_keys_as_text)
    _agg_keys = field_validator("agg", mode="before")(_keys_as_text)

    def pairs(self) -> list[tuple[str, str]]:
        if isinstance(self.on, str):
            return [(self.on, self.on)]
        if isinstance(self.on, list):
            return [(k, k) for k in self.on]
        return list(self.on.items())


class Source(_Model):
    """Rows of one input (plus joined inputs), filtered by ``where``/``exclude``."""

    input: str
    join: list[Join] = []
    where: dict[str, Scalar | None | list[Scalar | None]] = {}
    exclude: dict[str, Scalar | None | list[Scalar | None]] = {}

    @field_validator("join", mode="before")
    @classmethod
    def _one_join(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value


class Currency(_Model):
    """Convert amounts into one currency with fixed rates (amount x rate)."""

    column: str | None = None
    rates: dict[str, float]
    default: str | None = None
