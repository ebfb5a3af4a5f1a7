"""Helpers for the feature tests: tiny literal CRMs, typed exactly as ``crm.load`` types them.

``crm(deals=..., stages=..., touches=..., accounts=...)`` takes rows as tuples or dicts
and returns a :class:`CRMData`; timestamps are ISO strings (naive = UTC, zones
converted), so each test's data reads like the CSV a person could check by hand.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd

from crm.data import CRMData
from crm.schemas import CONTRACT, TIMESTAMP_DTYPE, dtype_of
from features.build import build_features, build_labels
from tests.shared import FUNNEL

#: Feature settings the tests use unless they say otherwise (params.yaml has the real ones).
SETTINGS = {
    "windows_days": (7, 30, 90),
    "trend_days": 30,
    "recency_channels": ("meeting", "demo"),
    "prior_strength": 10.0,
}
DEAL_COLUMNS = ("deal_id", "created_at", "account_id", "owner_id", "amount", "source")


def ts(text: str | None) -> pd.Timestamp:
    """An ISO string as a UTC timestamp (naive = UTC)."""
    if text is None:
        return pd.NaT
    t = pd.Timestamp(text)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def table(name: str, rows: list[dict], **extra_dtypes: str) -> pd.DataFrame:
    """A frame of contract table ``name`` from row dicts; absent contract columns are empty."""
    spec = CONTRACT[name]
    frame = pd.DataFrame(rows)
    out = {}
    for column in spec.columns:
        values = frame[column.name] if column.name in frame else pd.Series([None] * len(frame))
        out[column.name] = _typed(values, dtype_of(column.kind))
    for column in frame.columns:
        if column not in out:
            out[column] = _typed(frame[column], extra_dtypes.get(column, "float64"))
    return pd.DataFrame(out)


def _typed(values: pd.Series, dtype: str) -> pd.Series:
    if dtype == TIMESTAMP_DTYPE:
        return pd.Series([ts(v) for v in values], dtype=TIMESTAMP_DTYPE)
    if dtype == "float64":
        return pd.to_numeric(values, errors="coerce").astype("float64")
    if dtype == "category":
        return pd.Series(values, dtype="str").astype("category")
    return pd.Series(values, dtype="str")


def crm(
    deals: list[dict],
    *,
    stages: list[tuple[str, str, str]] | None = None,
    touches: list[dict] | None = None,
    accounts: list[dict] | None = None,
) -> CRMData:
    """A CRM from literal rows; ``stages`` are (deal_id, stage, entered_at) tuples."""
    names = ("deal_id", "stage", "entered_at")
    history = None if stages is None else [dict(zip(names, s, strict=True)) for s in stages]
    return CRMData(
        deals=table("deals", deals),
        stage_history=None if history is None else table("stage_history", history),
        touchpoints=None if touches is None else table("touchpoints", touches),
        accounts=None if accounts is None else table("accounts", accounts),
    )


def features_at(data: CRMData, *times: str, **overrides) -> pd.DataFrame:
    """Features at the given as-of times with the test settings."""
    return build_features(
        data,
        as_of_dates=pd.DatetimeIndex([ts(t) for t in times]),
        funnel=overrides.pop("funnel", FUNNEL),
        **{**SETTINGS, **overrides},
    )


def labels_at(data: CRMData, *times: str, data_end: str, horizons=(30, 90)) -> pd.DataFrame:
    return build_labels(
        data,
        as_of_dates=pd.DatetimeIndex([ts(t) for t in times]),
        funnel=FUNNEL,
        horizons_days=horizons,
        data_end=ts(data_end),
    )


def row(frame: pd.DataFrame, deal_id: str, as_of: str) -> pd.Series:
    """The one row of ``frame`` for (deal_id, as_of)."""
    hit = frame[(frame["deal_id"] == deal_id) & (frame["as_of"] == ts(as_of))]
    assert len(hit) == 1, f"expected one row for {deal_id} at {as_of}, got {len(hit)}"
    return hit.iloc[0]


@lru_cache(maxsize=4)
def generated(seed: int, n_deals: int = 150) -> CRMData:
    """A small clean synthetic CRM (one year), cached across tests."""
    from crm.synthetic import generate_crm

    return generate_crm(
        n_deals=n_deals,
        seed=seed,
        start=pd.Timestamp("2024-01-01", tz="UTC"),
        as_of=pd.Timestamp("2024-12-31", tz="UTC"),
        funnel=FUNNEL,
        messy=False,
    ).data
