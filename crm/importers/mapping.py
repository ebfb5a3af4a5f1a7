"""The mapping file of ``dealcast import mapped``, as frozen pydantic models.

Unknown keys are errors (``extra="forbid"``), so a typo fails with a message naming the
key and its place. Shorthands keep files short: a column given as a plain string is
``{column: ...}``; an input given as a string is ``{file: ...}``; an activity given as a
string is ``{stage: ...}``; ``stage_history`` and ``touchpoints`` take one section or a
list of them. ``docs/importers/mapped.md`` is the reference.
"""

from __future__ import annotations

import difflib
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from crm.importers.common import ImportInputError

Scalar = str | int | float | bool


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
    several), or a constant ``value``; optionally a value ``map`` and parsing overrides."""

    column: str | list[str] | None = None
    value: Scalar | None = None
    map: dict[str, str | None] | None = None
    date_format: str | list[str] | None = None
    timezone: str | None = None
    decimal: Literal[".", ","] | None = None
    thousands: str | None = None
    type: Literal["text", "number", "timestamp"] | None = None

    _map_keys = field_validator("map", mode="before")(_keys_as_text)

    @model_validator(mode="after")
    def _one_source(self) -> Column:
        if (self.column is None) == (self.value is None):
            raise ValueError(
                "give exactly one of 'column' (a source column) or 'value' (a constant)"
            )
        return self

    @property
    def columns(self) -> list[str]:
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
    exports whose lookup tables spell a key differently."""

    input: str
    on: str | list[str] | dict[str, str]
    map: dict[str, str] = {}

    _map_keys = field_validator("map", mode="before")(_keys_as_text)

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


DealColumn = Literal[
    "deal_id",
    "created_at",
    "account_id",
    "owner_id",
    "amount",
    "source",
    "product",
    "expected_close_date",
    "closed_at",
]
AccountColumn = Literal[
    "account_id", "industry", "employees", "annual_revenue", "country", "created_at"
]
TouchColumn = Literal[
    "touchpoint_id",
    "deal_id",
    "account_id",
    "occurred_at",
    "channel",
    "direction",
    "contact_id",
    "contact_role",
]
HistoryColumn = Literal["deal_id", "stage", "entered_at", "snapshot_at", "previous_stage"]
EventColumn = Literal[
    "deal_id",
    "activity",
    "timestamp",
    "account_id",
    "contact_id",
    "contact_role",
    "direction",
    "touchpoint_id",
]


class WonList(_Model):
    """An input listing won deals: ``key`` matches ``deal_id``; optional win time."""

    input: str
    key: str
    closed_at: Column | None = None

    _shorthand = field_validator("closed_at", mode="before")(_column_shorthand)


class Outcome(_Model):
    column: Column | None = None
    values: dict[str, Literal["won", "lost", "open"] | None] = {}
    won_list: WonList | None = None
    not_won: Literal["open", "lost"] = "open"
    lost_after_days: float | None = Field(default=None, gt=0)
    export_date: date | None = None

    _shorthand = field_validator("column", mode="before")(_column_shorthand)
    _value_keys = field_validator("values", mode="before")(_keys_as_text)

    @model_validator(mode="after")
    def _consistent(self) -> Outcome:
        if self.column is None and self.won_list is None:
            raise ValueError("give 'column' (with 'values') or 'won_list'")
        if self.column is not None and self.won_list is not None:
            raise ValueError("give either 'column' or 'won_list', not both")
        if self.not_won == "lost" and self.lost_after_days is None:
            raise ValueError(
                "not_won: lost needs lost_after_days (how long after created_at a deal "
                "that has not been won counts as lost)"
            )
        return self


class _Table(Source):
    attributes: list[str] | dict[str, Column] = {}

    @field_validator("attributes", mode="before")
    @classmethod
    def _attribute_shorthand(cls, value: Any) -> Any:
        return _columns_shorthand(value) if isinstance(value, dict) else value

    def attribute_columns(self) -> dict[str, Column]:
        if isinstance(self.attributes, list):
            return {name: Column(column=name) for name in self.attributes}
        return dict(self.attributes)


class DealsMapping(_Table):
    columns: dict[DealColumn, Column]
    stage: Column | None = None
    outcome: Outcome | None = None
    currency: Currency | None = None

    _shorthand = field_validator("columns", mode="before")(_columns_shorthand)
    _stage = field_validator("stage", mode="before")(_column_shorthand)

    @model_validator(mode="after")
    def _required(self) -> DealsMapping:
        missing = [c for c in ("deal_id", "created_at") if c not in self.columns]
        if missing:
            raise ValueError(f"columns must map {' and '.join(missing)}")
        return self


class AccountsMapping(_Table):
    columns: dict[AccountColumn, Column]
    currency: Currency | None = None

    _shorthand = field_validator("columns", mode="before")(_columns_shorthand)

    @model_validator(mode="after")
    def _required(self) -> AccountsMapping:
        if "account_id" not in self.columns:
            raise ValueError("columns must map account_id")
        return self


class StageHistoryMapping(Source):
    format: Literal["rows", "snapshots", "stage_dates"] = "rows"
    columns: dict[HistoryColumn, Column]
    stage_dates: dict[str, str | None] = {}
    vanished: Literal["open", "lost"] = "open"

    _shorthand = field_validator("columns", mode="before")(_columns_shorthand)

    @model_validator(mode="after")
    def _required(self) -> StageHistoryMapping:
        need = {
            "rows": ("deal_id", "stage", "entered_at"),
            "snapshots": ("deal_id", "stage", "snapshot_at"),
            "stage_dates": ("deal_id",),
        }[self.format]
        missing = [c for c in need if c not in self.columns]
        if missing:
            raise ValueError(f"format {self.format} needs columns: {', '.join(missing)}")
        if self.format == "stage_dates" and not self.stage_dates:
            raise ValueError("format stage_dates needs stage_dates: {date column: stage}")
        return self


class TouchpointsMapping(_Table):
    columns: dict[TouchColumn, Column]

    _shorthand = field_validator("columns", mode="before")(_columns_shorthand)

    @model_validator(mode="after")
    def _required(self) -> TouchpointsMapping:
        missing = [c for c in ("occurred_at", "channel") if c not in self.columns]
        if missing:
            raise ValueError(
                f"columns must map {' and '.join(missing)} (channel may be "
                "a constant: channel: {value: call})"
            )
        if "deal_id" not in self.columns and "account_id" not in self.columns:
            raise ValueError("columns must map deal_id or account_id (or both)")
        return self


class Activity(_Model):
    """What one activity of an event log means: a stage entered, a touchpoint, or both."""

    stage: str | None = None
    touchpoint: str | None = None
    direction: Literal["inbound", "outbound"] | None = None

    @model_validator(mode="after")
    def _something(self) -> Activity:
        if self.stage is None and self.touchpoint is None:
            raise ValueError("give 'stage' and/or 'touchpoint' (or map the activity to null)")
        return self


class EventsMapping(Source):
    columns: dict[EventColumn, Column]
    activities: dict[str, Activity | None]

    _shorthand = field_validator("columns", mode="before")(_columns_shorthand)

    @field_validator("activities", mode="before")
    @classmethod
    def _activity_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {_text(k): {"stage": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _required(self) -> EventsMapping:
        missing = [c for c in ("deal_id", "activity", "timestamp") if c not in self.columns]
        if missing:
            raise ValueError(f"columns must map {', '.join(missing)}")
        return self


class Mapping(_Model):
    """A whole mapping file."""

    defaults: Parsing = Parsing()
    inputs: dict[str, InputSpec] = {}
    stages: dict[str, str | None] = {}
    channels: dict[str, str | None] = {}
    roles: dict[str, str | None] = {}
    deals: DealsMapping | None = None
    accounts: AccountsMapping | None = None
    stage_history: list[StageHistoryMapping] = []
    touchpoints: list[TouchpointsMapping] = []
    events: EventsMapping | None = None

    _names = field_validator("stages", "channels", "roles", mode="before")(_keys_as_text)

    @field_validator("inputs", mode="before")
    @classmethod
    def _input_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"file": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("stage_history", "touchpoints", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _has_deals(self) -> Mapping:
        if self.deals is None and self.events is None:
            raise ValueError(
                "the mapping needs a deals section (or an events section to build the deals from)"
            )
        return self


# --------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. In YAML 1.1 ``on``, ``yes``, ``no`` and ``off``
    are booleans, which would turn ``on: key`` into ``True: key`` and ``IsDeleted: yes``
    into a bool."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def read_yaml(text: str):
    """Parse YAML with YAML 1.2 booleans (see :class:`_Loader`)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; raise ImportInputError with readable messages."""
    path = Path(path)
    try:
        raw = read_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImportInputError(f"{path}: no such mapping file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ImportInputError(f"{path}: cannot read the mapping file: {exc}") from None
    return parse_mapping(raw, where=str(path))


def parse_mapping(raw: Any, *, where: str = "mapping") -> Mapping:
    if not isinstance(raw, dict):
        raise ImportInputError(f"{where}: expected a mapping of sections (deals:, stages:, ...)")
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]
        raise ImportInputError(f"{where}: " + "; ".join(dict.fromkeys(problems))) from None


def _problem(error: dict) -> str:
    loc = [str(p) for p in error["loc"] if not str(p).startswith(("function-", "tagged-"))]
    place = ".".join(loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(loc[-1], sorted(_ALL_KEYS), n=1, cutoff=0.7)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{place}: unknown key{hint}"
    if error["type"] == "literal_error" and loc and loc[-1] == "[key]":
        return f"{'.'.join(loc[:-1])}: {error['msg']}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{place}: {message}"


_MODELS = (
    Parsing,
    InputSpec,
    Column,
    Join,
    Source,
    Currency,
    WonList,
    Outcome,
    DealsMapping,
    AccountsMapping,
    StageHistoryMapping,
    TouchpointsMapping,
    Activity,
    EventsMapping,
    Mapping,
)
_ALL_KEYS = {name for model in _MODELS for name in model.model_fields}
