"""``GET /deals/{deal_id}``: one deal explained, as ``dealcast explain DEAL_ID`` explains it.

The explanation itself is :func:`serving.explain_deal.explain_deal`'s, the one the CLI
prints (the scorer calls it with the champion and the feature settings the CLI uses:
``pipelines.explaining.explain_loaded``); this module only writes that
:class:`~serving.explain_deal.DealExplanation` as JSON, with the API's timestamps. No web
stack here: :mod:`serving.api` routes the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from serving.api_times import iso_utc, uniform_times
from serving.explain_deal import DealExplanation

#: A demo deal's explanation, cut to a few drivers and snapshots (the example at /docs).
DEAL_EXAMPLE: dict[str, Any] = {
    "deal_id": "D005743",
    "as_of": "2026-06-29T23:54:12Z",
    "deal_name": "Cedarport GmbH – enterprise suite",
    "account_name": "Cedarport GmbH",
    "owner_name": "Yara Tanaka",
    "stage": "proposal",
    "p_win": 0.505,
    "p_win_stage_table": 0.504,
    "next_stage": [
        {"state": "negotiation", "probability": 0.833},
        {"state": "lost", "probability": 0.107},
        {"state": "won", "probability": 0.044},
    ],
    "drivers_up": [
        {
            "rank": 1,
            "feature": "stage__days_in_current",
            "value": 4.751,
            "contribution": 0.526,
            "phrase": "4 days in proposal",
        },
        {
            "rank": 2,
            "feature": "stage__position",
            "value": 3.0,
            "contribution": 0.415,
            "phrase": "at stage proposal (4 of 5)",
        },
    ],  # fmt: skip
    "drivers_down": [
        {
            "rank": 1,
            "feature": "deal__log_amount",
            "value": 12.657,
            "contribution": -0.269,
            "phrase": "deal size 314,000",
        },
        {
            "rank": 2,
            "feature": "tp__inbound_share",
            "value": 0.289,
            "contribution": -0.219,
            "phrase": "buyer started 29 % of touches",
        },
    ],  # fmt: skip
    "history": [
        {
            "as_of": "2026-06-22T23:54:12Z",
            "stage": "meeting",
            "p_win": 0.409,
            "p_win_stage_table": 0.318,
            "next_stage": "proposal",
            "p_next_stage": 0.855,
        },
        {
            "as_of": "2026-06-29T23:54:12Z",
            "stage": "proposal",
            "p_win": 0.505,
            "p_win_stage_table": 0.504,
            "next_stage": "negotiation",
            "p_next_stage": 0.833,
        },
    ],  # fmt: skip
    "model_versions": {
        "close": "dealcast-close-probability v1",
        "next_stage": "dealcast-next-stage v1",
    },  # fmt: skip
}


class NextState(BaseModel):
    state: str = Field(description="A stage, or won / lost")
    probability: float


class Driver(BaseModel):
    """One feature pushing p_win, in plain language, with the value the phrase is about."""

    rank: int = Field(description="1 = the strongest push this way")
    feature: str = Field(description="The feature's column (`<family>__<measure>`)")
    value: float | str | None = Field(description="The deal's value of that feature")
    contribution: float = Field(description="Its push on p_win, in log-odds")
    phrase: str = Field(description="What it means, in plain language")


class HistoryPoint(BaseModel):
    """What the model says of the deal at a past snapshot, with only what was known then."""

    as_of: str
    stage: str | None
    p_win: float
    p_win_stage_table: float
    next_stage: str | None
    p_next_stage: float | None


class DealExplained(BaseModel):
    """One open deal explained: the same content as ``dealcast explain DEAL_ID``."""

    model_config = ConfigDict(json_schema_extra={"examples": [DEAL_EXAMPLE]})

    deal_id: str
    as_of: str = Field(description="The API's scoring moment")
    deal_name: str | None = None
    account_name: str | None = None
    owner_name: str | None = None
    stage: str | None
    p_win: float = Field(description="P(won within the horizon), calibrated, as in /deals")
    p_win_stage_table: float = Field(description="The stage-table baseline's p_win")
    next_stage: list[NextState] = Field(description="Next states, most likely first")
    drivers_up: list[Driver] = Field(description="Every driver raising p_win, strongest first")
    drivers_down: list[Driver] = Field(description="Every driver lowering p_win, strongest first")
    history: list[HistoryPoint] = Field(
        description="Past snapshots (params score.explain_step_days apart, at most "
        "score.explain_points, while the deal was open), oldest first; the last is now"
    )
    model_versions: dict[str, str]


def explanation_body(explained: DealExplanation, *, model_versions: Mapping[str, str]) -> dict:
    """``explained`` as the :class:`DealExplained` JSON body."""
    names = explained.names
    return {
        "deal_id": explained.deal_id,
        "as_of": iso_utc(explained.as_of),
        "deal_name": names.get("deal"),
        "account_name": names.get("account"),
        "owner_name": names.get("owner"),
        "stage": explained.stage,
        "p_win": float(explained.p_win),
        "p_win_stage_table": float(explained.p_win_stage_table),
        "next_stage": [
            {"state": str(s), "probability": float(p)} for s, p in explained.next_stage.items()
        ],
        "drivers_up": _drivers(explained.drivers, "up"),
        "drivers_down": _drivers(explained.drivers, "down"),
        "history": [_point(r) for r in explained.history.to_dict("records")],
        "model_versions": {k: str(v) for k, v in model_versions.items()},
    }


def _drivers(drivers: pd.DataFrame, direction: str) -> list[dict]:
    rows = drivers[drivers["direction"] == direction].sort_values("rank", kind="stable")
    return [
        {
            "rank": int(r["rank"]),
            "feature": str(r["feature"]),
            "value": _value(r["value"]),
            "contribution": float(r["contribution"]),
            "phrase": uniform_times(str(r["phrase"])),
        }
        for r in rows.to_dict("records")
    ]


def _value(value: Any) -> float | str | None:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    return value if isinstance(value, str) else float(value)


def _point(row: dict) -> dict:
    p_next = row.get("p_next_stage")
    return {
        "as_of": iso_utc(row["as_of"]),
        "stage": row.get("stage"),
        "p_win": float(row["p_win"]),
        "p_win_stage_table": float(row["p_win_stage_table"]),
        "next_stage": row.get("next_stage"),
        "p_next_stage": None if p_next is None or pd.isna(p_next) else float(p_next),
    }
