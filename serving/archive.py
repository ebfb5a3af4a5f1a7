"""What the archive keeps of each scoring day: the rows of the prioritised-leads export and
of the revenue forecast, as they were said (frames in, frames out; the shell writes them).

A record is a plain, sorted frame: the same export gives the same rows in the same order,
so rewriting a day gives the same Parquet bytes. ``scoring_day`` (``YYYY-MM-DD``, the day of
``as_of`` in UTC) is the partition key; ``as_of`` the exact moment scored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.baselines import ALL, STAGE

#: The export columns kept per deal (those the export has; the rest are left out).
LEADS_COLUMNS: tuple[str, ...] = (
    "deal_id",
    "owner_id",
    "stage",
    "amount",
    "p_win",
    "p_win_stage_rate",
    "expected_close",
    "next_stage",
    "p_next_stage",
    "horizon_days",
    "model_version",
    "next_stage_model_version",
    "data_fingerprint",
)
#: The forecast columns kept per period.
FORECAST_COLUMNS: tuple[str, ...] = (
    "period",
    "kind",
    "start",
    "end",
    "already_won",
    "forecast",
    "p10",
    "p50",
    "p90",
)


def scoring_day(as_of: pd.Timestamp) -> str:
    """The partition key of a run scored at ``as_of``: its UTC day as ``YYYY-MM-DD``."""
    return pd.Timestamp(as_of).date().isoformat()


def stage_rate(close, stages: pd.Series) -> np.ndarray:
    """P(won within H) of the champion's own stage table (its drift fallback: the stage
    hazard table with the level recalibration) for deals at ``stages``; NaN for every
    row when ``close`` has no stage table. Only the stage is read."""
    baseline = getattr(close, "predict_baseline", None)
    if baseline is None or not len(stages):
        return np.full(len(stages), np.nan)
    stage = pd.Series(stages, dtype="object").reset_index(drop=True)
    return np.asarray(baseline(pd.DataFrame({STAGE: stage.where(stage.notna(), ALL)})), float)


def leads_record(leads: pd.DataFrame, *, as_of: pd.Timestamp) -> pd.DataFrame:
    """The archived rows of one export: :data:`LEADS_COLUMNS` it has, ``scoring_day`` and
    ``as_of`` first, sorted by ``deal_id``."""
    kept = [c for c in LEADS_COLUMNS if c in leads]
    out = leads[kept].copy()
    out.insert(0, "as_of", pd.Timestamp(as_of))
    out.insert(0, "scoring_day", scoring_day(as_of))
    out["deal_id"] = out["deal_id"].astype("str")
    return out.sort_values("deal_id", kind="stable").reset_index(drop=True)


def forecast_record(
    forecast: pd.DataFrame,
    *,
    as_of: pd.Timestamp,
    horizon_days: int,
    model_version: str | None,
    data_fingerprint: str,
) -> pd.DataFrame:
    """The archived rows of one forecast: :data:`FORECAST_COLUMNS` per period (``forecast``
    is the mean of the draws), with the day, model version and data fingerprint."""
    out = forecast[[c for c in FORECAST_COLUMNS if c in forecast]].copy()
    out.insert(0, "as_of", pd.Timestamp(as_of))
    out.insert(0, "scoring_day", scoring_day(as_of))
    out["horizon_days"] = int(horizon_days)
    out["model_version"] = pd.array([model_version] * len(out), dtype="str")
    out["data_fingerprint"] = data_fingerprint
    return out.reset_index(drop=True)
