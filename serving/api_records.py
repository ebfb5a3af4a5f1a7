"""The scoring API's JSON bodies from frames: ranked rows as records, a listing, a note.

No web stack here: :mod:`serving.api` sends what these return. Every timestamp is written
by :func:`serving.api_times.iso_utc`, every message through
:func:`serving.api_times.uniform_times`.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from serving.api_times import iso_utc, uniform_times


def note_record(note: Any) -> dict:
    """``Problem(table=note.table, rule=note.rule, message=note.message).model_dump()``,
    without pydantic's per-object cost (a few per scored deal)."""
    return {"table": note.table, "field": None, "row": None, "rule": note.rule,
            "message": uniform_times(note.message), "hint": None}  # fmt: skip


def listing(as_of: pd.Timestamp, frame: pd.DataFrame, *, limit: int) -> dict:
    """Today's ranked list (or a part) as the ``GET /deals`` body, ``limit`` rows at most."""
    (frame,) = (f for _, f, _ in ranked([(0, frame, None)]))
    (records,) = records_many([head(frame, limit)])
    return {"as_of": iso_utc(as_of), "total": len(frame), "count": len(records), "deals": records}


def head(frame: pd.DataFrame, limit: int) -> pd.DataFrame:
    """``frame.head(limit)``, without its per-call cost when nothing is cut (a posted
    deal's one row)."""
    return frame if len(frame) <= limit else frame.head(limit)


def ranked(items: list[tuple]) -> list[tuple]:
    """``(key, frame, extra)`` items with each frame in ``rank`` order."""
    return [
        (k, f.sort_values("rank", kind="stable") if "rank" in f and len(f) > 1 else f, x)
        for k, f, x in items
    ]


def records_many(pages: list[pd.DataFrame]) -> list[list[dict]]:
    """Each page's rows as JSON records (timestamps in :func:`iso_utc`), serialised in one
    pass for all pages: the per-call cost of ``to_json`` is paid once per batch."""
    sizes = [len(p) for p in pages]
    if not sum(sizes):
        return [[] for _ in pages]
    if len({tuple(p.columns) for p in pages if len(p)}) > 1:  # unlike pages: one by one
        return [records_many([p])[0] for p in pages]
    page = pd.concat([p for p in pages if len(p)], ignore_index=True)
    for column in page.columns:
        if pd.api.types.is_datetime64_any_dtype(page[column]):
            page[column] = page[column].map(iso_utc, na_action="ignore").astype("object")
    records = json.loads(page.to_json(orient="records"))
    ends = np.cumsum(sizes)
    return [records[end - n : end] for n, end in zip(sizes, ends, strict=True)]


def stage_warnings(frame: pd.DataFrame, *, stages: tuple[str, ...], as_of: pd.Timestamp) -> list:
    """Warnings on a scored deal's stage (``stages``: the funnel's open stages): none known
    at ``as_of`` (no stage_history row at or before it, posted or kept from the CRM), or a
    closed one (e.g. the CRM's rows of a closed deal kept for the deal posted open). The
    model still scores such a deal, as what it is."""
    if "stage" not in frame:
        return []
    out = []
    for stage in frame["stage"].tolist():
        if stage is None or pd.isna(stage):
            message = (
                f"the deal has no stage at {iso_utc(as_of)}: no stage_history row of it at or "
                "before then (posted, or kept from the loaded CRM); it is scored as a deal of "
                "unknown stage (post its stage_history)"
            )
            out.append(_warning("stage_history", "stage_unknown", message))
        elif str(stage) not in stages:
            message = (
                f"the deal's stage at {iso_utc(as_of)} is {stage!r}, a closed state, although "
                "the posted deal is open (its stage_history, posted or kept from the loaded "
                "CRM, ends there); it is scored as an open deal in that stage (post the "
                "stage_history of its open stages)"
            )
            out.append(_warning("stage_history", "stage_not_open", message))
    return out


def _warning(table: str, rule: str, message: str) -> dict:
    return {"table": table, "field": "stage", "row": None, "rule": rule, "message": message,
            "hint": None}  # fmt: skip
