"""The table sections of a mapping file: deals (with outcome), accounts, stage_history,
touchpoints and events. :mod:`crm.importers.mapping` is the whole file."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from crm.importers.mapping_sources import (
    Column,
    Currency,
    Rule,
    Source,
    _column_shorthand,
    _columns_shorthand,
    _keys_as_text,
    _Model,
    _text,
)

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
    """The deals table. Several rows of one deal_id are combined into one deal: per column
    by its ``combine`` rule, in the time order of ``order_by`` (see :data:`COMBINE_DEFAULTS`)."""

    columns: dict[DealColumn, Column]
    stage: Column | None = None
    outcome: Outcome | None = None
    currency: Currency | None = None
    combine: dict[str, Rule] = {}
    order_by: Column | None = None
    closed_before_created: Literal["keep", "exclude", "clamp"] = "keep"

    _shorthand = field_validator("columns", mode="before")(_columns_shorthand)
    _stage = field_validator("stage", mode="before")(_column_shorthand)
    _order = field_validator("order_by", mode="before")(_column_shorthand)
    _combine_keys = field_validator("combine", mode="before")(_keys_as_text)

    @model_validator(mode="after")
    def _required(self) -> DealsMapping:
        missing = [c for c in ("deal_id", "created_at") if c not in self.columns]
        if missing:
            raise ValueError(f"columns must map {' and '.join(missing)}")
        known = {*self.columns, *self.attribute_columns(), "outcome"} - {"deal_id"}
        unknown = sorted(set(self.combine) - known)
        if unknown:
            raise ValueError(
                f"combine names {', '.join(map(repr, unknown))}, which is not a mapped column, "
                f"attribute or 'outcome' (combinable: {', '.join(sorted(known))})"
            )
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
    snapshot_every: Literal["day", "week"] | None = None
    partial_below: float = Field(default=0.5, gt=0, lt=1)

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
        snapshot_only = {"snapshot_every", "partial_below", "vanished"} & self.model_fields_set
        if self.format != "snapshots" and snapshot_only:
            raise ValueError(f"{', '.join(sorted(snapshot_only))} only apply to format: snapshots")
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


class FunnelSpec(_Model):
    """The funnel a mapping file was written for (the ``funnel:`` of params.yaml)."""

    stages: list[str] = Field(min_length=1)
    won_label: str = "won"
    lost_label: str = "lost"
    exclude_attributes: list[str] = []

    @field_validator("stages")
    @classmethod
    def _distinct(cls, stages: list[str]) -> list[str]:
        if len(set(stages)) != len(stages):
            raise ValueError(f"funnel stages must be distinct, got {stages}")
        clash = {"won", "lost"} & set(stages)
        if clash:
            raise ValueError(f"{sorted(clash)} are outcomes, not open stages")
        return stages
