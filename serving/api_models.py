"""The scoring API's request and response bodies, as pydantic models.

The body's row models are generated from ``crm.schemas`` (JSON types and required
columns); :mod:`serving.api_validation` then types and checks the rows with ``crm``'s own
coercion and validator. No web stack here: :mod:`serving.api` is the only module that
imports it.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model

from crm.schemas import CONTRACT

_TYPES: dict[str, type] = {
    "id": str,
    "string": str,
    "category": str,
    "timestamp": str,
    "date": str,
    "number": float,
    "integer": int,
}
_EXAMPLES = {"timestamp": "2026-06-01T09:30:00Z", "date": "2026-09-30", "number": 25000.0}


def _scalar(value: Any) -> Any:
    if not isinstance(value, str | int | float | bool | type(None)):
        raise ValueError("a custom attribute must be a string, number, boolean or null")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("a number must be finite (NaN and Infinity are not numbers in JSON)")
    return value


def _not_bool(value: Any) -> Any:
    """JSON ``true``/``false`` where a number belongs is an error, not 1/0."""
    if isinstance(value, bool):
        raise ValueError("a number is needed, not true/false")
    return value


def _id(value: Any) -> Any:
    """An id is never empty: "" or spaces are refused (omit the field or send null)."""
    if isinstance(value, str) and not value.strip():
        raise ValueError("an id cannot be empty or blank; omit it or send null")
    return value


#: Contract kind -> extra checks of a posted value (before pydantic's own type check).
_CHECKS: dict[str, list[Any]] = {
    "id": [BeforeValidator(_id)],
    "number": [BeforeValidator(_not_bool), Field(allow_inf_nan=False)],
    "integer": [BeforeValidator(_not_bool)],
}


Scalar = Annotated[Any, AfterValidator(_scalar)]


class _Row(BaseModel):
    """A contract row; extra keys are the CRM's custom attributes and must be scalars."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)
    __pydantic_extra__: dict[str, Scalar] = Field(init=False)


def row_model(table: str, *, name: str, optional: tuple[str, ...] = ()) -> type[BaseModel]:
    """A pydantic model of one row of ``table``, generated from its contract columns."""
    fields: dict[str, Any] = {}
    for col in CONTRACT[table].columns:
        required = col.required and col.name not in optional
        kind = _TYPES[col.kind]
        info = Field(
            ... if required else None,
            json_schema_extra=None if col.minimum is None else {"minimum": col.minimum},
            description=f"{col.kind}{', required' if required else ''}. {col.meaning}".strip(),
            examples=[_EXAMPLES[col.kind]] if col.kind in _EXAMPLES else None,
        )
        kind = Annotated[kind, *_CHECKS[col.kind]] if col.kind in _CHECKS else kind
        fields[col.name] = (kind if required else kind | None, info)
    return create_model(name, __base__=_Row, __doc__=CONTRACT[table].meaning, **fields)


DealIn = row_model("deals", name="DealIn")
StageRowIn = row_model("stage_history", name="StageRowIn", optional=("deal_id",))
TouchpointIn = row_model("touchpoints", name="TouchpointIn")

SCORE_EXAMPLE = {
    "deal": {
        "deal_id": "D-NEW-1",
        "created_at": "2026-05-04T10:00:00Z",
        "account_id": "A00012",
        "owner_id": "rep_07",
        "amount": 42000,
        "source": "inbound",
    },
    "stage_history": [
        {"stage": "lead", "entered_at": "2026-05-04T10:00:00Z"},
        {"stage": "qualified", "entered_at": "2026-05-20T15:00:00Z"},
    ],
    "touchpoints": [
        {
            "deal_id": "D-NEW-1",
            "occurred_at": "2026-05-21T09:00:00Z",
            "channel": "meeting",
            "direction": "outbound",
        }
    ],
}


class ScoreRequest(BaseModel):
    """One open deal with its own rows, as the data contract describes them."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [SCORE_EXAMPLE]})

    deal: DealIn = Field(description="The deal (a `deals` row); it must still be open.")
    stage_history: list[StageRowIn] = Field(
        default_factory=list,
        description="Stages the deal entered; `deal_id` defaults to the deal's.",
    )
    touchpoints: list[TouchpointIn] = Field(
        default_factory=list,
        description="Touches of this deal (`deal_id`) or of its account (`account_id`).",
    )

    def n_rows(self) -> int:
        return 1 + len(self.stage_history) + len(self.touchpoints)


class Problem(BaseModel):
    table: str | None = Field(None, description="deal, stage_history, touchpoints or query")
    field: str | None = None
    row: int | None = Field(None, description="1-based position in its array")
    rule: str
    message: str
    hint: str | None = None


class ErrorBody(BaseModel):
    error: str
    message: str
    problems: list[Problem] = []


class RankedDeal(BaseModel):
    """One row of the ranked list (more columns may follow)."""

    model_config = ConfigDict(extra="allow")
    rank: int
    deal_id: str
    deal_name: str | None = None
    account_id: str | None
    account_name: str | None = None
    owner_id: str | None
    owner_name: str | None = None
    stage: str | None
    days_in_stage: int | None
    amount: float | None
    p_win: float = Field(description="P(won within the horizon), calibrated")
    expected_value: float | None = Field(description="p_win * amount")
    next_stage: str | None
    p_next_stage: float | None
    reasons_up: str | list[str] | None
    reasons_down: str | list[str] | None
    model_version: str | None
    data_fingerprint: str | None


class DealsResponse(BaseModel):
    as_of: str
    total: int = Field(description="rows matching the filters before the limit")
    count: int
    deals: list[RankedDeal]
    warnings: list[Problem] = []


class Health(BaseModel):
    status: str
    as_of: str
    model_versions: dict[str, str]
    n_open_deals: int
