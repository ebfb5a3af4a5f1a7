"""Did it come true? What the archive said (:mod:`serving.archive`) against what happened by
the data's end (frames in, frames out).

Each archived (deal, scoring day) row is labelled by :func:`features.labels.label_columns`,
the code that labels training snapshots, so the censoring is the same: ``won`` is 1 when
the deal was won within ``horizon_days`` of the scoring moment, 0 when it was lost, won
later, or still open once the horizon had passed, and unknown (NaN: left out of every
metric and counted) while it is open and its horizon has not passed. A deal no longer in
the CRM is left out and counted too. ``next_stage_true`` is the first move after the
scoring moment (an open stage, won or lost), unknown when none happened yet.

A scoring month is ``mature`` when every row's horizon has passed; the known rows of a
younger month over-represent the deals that closed fast, so read its numbers with care.
The baseline is the champion's own stage table (``p_win_stage_rate``, archived beside
``p_win``), scored on the same rows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from crm.schemas import Funnel
from features.labels import label_columns
from features.point_in_time import At, to_us
from features.snapshots import Deals, Spine
from models.metrics import ECE_BINS, calibration_scores
from serving.forecast import amounts, won_mask

BASELINE = "p_win_stage_rate"


def label_said(
    said: pd.DataFrame,
    deals: pd.DataFrame,
    history: pd.DataFrame | None,
    *,
    funnel: Funnel,
    data_end: pd.Timestamp,
) -> pd.DataFrame:
    """The archived rows scored at or before ``data_end`` whose deal is still in the CRM,
    with ``won`` (1.0 / 0.0 / NaN), ``next_stage_true`` and ``mature`` (see the module
    docstring). ``said`` needs ``deal_id``, ``as_of`` and ``horizon_days``."""
    said = said[pd.to_datetime(said["as_of"], utc=True) <= data_end].reset_index(drop=True)
    table = Deals.of(deals)
    codes = table.codes(said["deal_id"].astype("str"))
    rows = said[codes >= 0].reset_index(drop=True)
    at = At.of(to_us(rows["as_of"]))
    spine = Spine(deal=codes[codes >= 0], at=at, dates=pd.DatetimeIndex(at.values, tz="UTC"))
    horizon = rows["horizon_days"].astype(int).to_numpy()
    labels = label_columns(history, table, spine, funnel=funnel, data_end=data_end,
                           horizons_days=tuple(sorted(set(horizon.tolist()))))  # fmt: skip
    won = np.full(len(rows), np.nan)
    for h in set(horizon.tolist()):
        known = labels[f"won_within_{h}d"]
        value = np.where(known.isna(), np.nan, known.fillna(False).astype(float))
        won = np.where(horizon == h, value, won)
    out = rows.assign(won=won, mature=pd.to_datetime(rows["as_of"], utc=True)
                      + pd.to_timedelta(horizon, unit="D") <= data_end)  # fmt: skip
    nxt = labels.get("next_stage")
    out["next_stage_true"] = pd.array(
        [None] * len(out) if nxt is None else pd.Series(nxt).astype("object"), dtype="str"
    )
    out["month"] = pd.to_datetime(out["as_of"], utc=True).dt.strftime("%Y-%m")
    return out


def counts(said: pd.DataFrame, labelled: pd.DataFrame) -> dict[str, int]:
    """Rows archived, labelled (outcome known), unknown (open, horizon not passed) and
    left out (scored after the data's end or deal no longer in the CRM)."""
    known = int(labelled["won"].notna().sum())
    return {
        "archived_rows": int(len(said)),
        "scoring_days": int(said["scoring_day"].nunique()) if len(said) else 0,
        "known": known,
        "unknown_open": int(len(labelled) - known),
        "left_out": int(len(said) - len(labelled)),
    }


def _known(labelled: pd.DataFrame) -> pd.DataFrame:
    return labelled[labelled["won"].notna()].reset_index(drop=True)


def _baseline(frame: pd.DataFrame) -> np.ndarray:
    if BASELINE not in frame:
        return np.full(len(frame), np.nan)
    return frame[BASELINE].to_numpy(float)


def decile_table(labelled: pd.DataFrame, *, n_bins: int = 10) -> pd.DataFrame:
    """Reliability by p_win decile (equal-mass bins of the known rows, lowest p first):
    rows, p range, mean p_win, realised win rate, mean stage-table p."""
    known = _known(labelled)
    order = np.argsort(known["p_win"].to_numpy(float), kind="stable")
    rows = []
    for i, chunk in enumerate(np.array_split(order, min(n_bins, len(known)) or 1)):
        part = known.iloc[chunk]
        p = part["p_win"].to_numpy(float)
        rows.append({"decile": i + 1, "n": len(part), "p_min": _agg(p, np.min),
                     "p_max": _agg(p, np.max), "mean_p_win": _agg(p, np.mean),
                     "realised": _agg(part["won"].to_numpy(float), np.mean),
                     "mean_stage_rate": _agg(_baseline(part), np.mean)})  # fmt: skip
    return pd.DataFrame(rows)


def _agg(values: np.ndarray, how) -> float:
    return float(how(values)) if len(values) else math.nan


def group_table(labelled: pd.DataFrame, by: str, *, n_bins: int = ECE_BINS) -> pd.DataFrame:
    """Per value of ``by`` (``stage``, ``month``) and ``(all)``: rows, known, unknown,
    mature, mean p_win, realised rate, and log loss / AUC / ECE / Brier of the model
    and of the stage table on the same known rows."""
    groups = [(str(k), g) for k, g in labelled.groupby(by, sort=True, dropna=False)]
    rows = [_group_row(name, g, n_bins=n_bins) for name, g in [*groups, ("(all)", labelled)]]
    return pd.DataFrame(rows).rename(columns={"group": by})


def _group_row(name: str, part: pd.DataFrame, *, n_bins: int) -> dict:
    known = _known(part)
    y = known["won"].to_numpy(float)
    model = calibration_scores(y, known["p_win"].to_numpy(float), n_bins=n_bins)
    base = calibration_scores(y, _baseline(known), n_bins=n_bins)
    return {
        "group": name, "rows": len(part), "known": len(known),
        "unknown_open": len(part) - len(known), "mature": bool(part["mature"].all()),
        "mean_p_win": _agg(known["p_win"].to_numpy(float), np.mean),
        "realised": _agg(y, np.mean),
        **{f"model_{k}": v for k, v in model.items()},
        **{f"stage_table_{k}": v for k, v in base.items()},
    }  # fmt: skip


def next_stage_table(labelled: pd.DataFrame) -> pd.DataFrame:
    """Next-stage hit rate per stage and ``(all)``, over rows whose next move is known and
    for which a next stage was predicted."""
    if "next_stage" not in labelled:
        return pd.DataFrame(columns=["stage", "known", "hits", "hit_rate"])
    said, true = labelled["next_stage"].astype("object"), labelled["next_stage_true"]
    known = labelled[said.notna().to_numpy() & true.notna().to_numpy()]
    hit = (known["next_stage"].astype(str) == known["next_stage_true"].astype(str)).to_numpy()
    rows = [
        {"stage": s, "known": int(m.sum()), "hits": int(hit[m].sum()),
         "hit_rate": float(hit[m].mean()) if m.any() else math.nan}
        for s, m in [*((str(s), (known["stage"] == s).to_numpy())
                       for s in sorted(known["stage"].dropna().unique())),
                     ("(all)", np.ones(len(known), bool))]
    ]  # fmt: skip
    return pd.DataFrame(rows)


def forecast_table(
    forecasts: pd.DataFrame, deals: pd.DataFrame, *, won_label: str, data_end: pd.Timestamp
) -> pd.DataFrame:
    """Each archived forecast period that has ended by ``data_end``: the revenue actually
    won in it (deals won with ``closed_at`` in [start, end)) against P10 / P50 / P90 and the
    mean; ``inside`` says whether it fell in the P10-P90 band."""
    if forecasts.empty:
        return pd.DataFrame(columns=["scoring_day", "period", "kind", "actual", "inside"])
    ends = pd.to_datetime(forecasts["end"], utc=True)
    done = forecasts[(ends <= data_end).to_numpy()].reset_index(drop=True)
    won = won_mask(deals, won_label) & (pd.to_datetime(deals["closed_at"], utc=True)
                                         <= data_end).to_numpy(bool)  # fmt: skip
    closed = pd.to_datetime(deals["closed_at"], utc=True).to_numpy()
    amount, starts, stops = amounts(deals), _times(done["start"]), _times(done["end"])
    actual = [float(amount[won & (closed >= s) & (closed < e)].sum())
              for s, e in zip(starts, stops, strict=True)]  # fmt: skip
    out = done[["scoring_day", "period", "kind", "forecast", "p10", "p50", "p90"]].copy()
    out["actual"] = actual
    out["inside"] = (out["p10"] <= out["actual"]) & (out["actual"] <= out["p90"])
    out["error_p50"] = out["actual"] - out["p50"]
    return out


def _times(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values, utc=True).to_numpy()


def forecast_summary(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per period kind: periods judged, P10-P90 coverage (share inside the band, 0.8 if
    the band is right) and WAPE of the P50 and of the mean (sum |actual - forecast| over
    sum actual)."""
    out = {}
    for kind, part in table.groupby("kind", sort=True) if len(table) else []:
        total = float(part["actual"].sum())
        out[str(kind)] = {
            "periods": int(len(part)),
            "coverage_p10_p90": float(part["inside"].mean()),
            "wape_p50": float((part["actual"] - part["p50"]).abs().sum() / total)
            if total
            else math.nan,
            "wape_mean": float((part["actual"] - part["forecast"]).abs().sum() / total)
            if total
            else math.nan,
        }
    return out
