"""The funnel as survival data: one row per episode with its length in days and how it ended.

Pure functions over a loaded :class:`crm.data.CRMData`. ``data_end`` is when the data was
extracted: deals still open then are censored there (their outcome is not known yet; they
are never counted as failures). Cause codes follow :mod:`serving.survival`: 0 censored,
then 1, 2 for the two competing events.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import LOST, WON, Funnel

_DAY = pd.Timedelta(days=1)
#: Cause codes of a deal's outcome.
OPEN, WON_CODE, LOST_CODE = 0, 1, 2
#: Cause codes of a stage episode "did the deal get past this stage?".
ADVANCED, LOST_HERE = 1, 2


def deal_outcomes(data: CRMData, *, data_end: pd.Timestamp) -> pd.DataFrame:
    """Per deal: ``created_at``, ``days`` from creation to close (or to ``data_end`` while
    open) and ``cause`` (1 won, 2 lost, 0 still open)."""
    deals = data.deals.drop_duplicates("deal_id")
    cause = _outcome_code(deals["outcome"])
    closed_at = pd.to_datetime(deals["closed_at"], utc=True)
    until = closed_at.where(cause != OPEN, data_end).fillna(data_end)
    days = ((until - deals["created_at"]) / _DAY).clip(lower=0)
    return pd.DataFrame(
        {
            "deal_id": deals["deal_id"].to_numpy(),
            "created_at": deals["created_at"].to_numpy(),
            "days": days.to_numpy(float),
            "cause": cause.to_numpy(int),
        }
    )


def stage_entries(data: CRMData, *, funnel: Funnel, data_end: pd.Timestamp) -> pd.DataFrame:
    """Per (deal, open stage it entered): the first entry and two competing-risk episodes
    measured from it.

    * ``close_days``/``close_cause``: to the deal's close (1 won, 2 lost) or to
      ``data_end`` while open (0);
    * ``next_days``/``next_cause``: to the first later entry of any further stage or
      ``won`` (1, "went to the next stage", skips included), or to a loss before that
      (2, "lost from this stage"), or to ``data_end`` while open (0). A deal that moved
      back and is still open stays censored: it may still go on.
    """
    columns = ["deal_id", "stage", "entered_at", "close_days", "close_cause",
               "next_days", "next_cause"]  # fmt: skip
    history = data.stage_history
    if history is None or history.empty:
        return pd.DataFrame(columns=columns)
    pos = {s: i for i, s in enumerate(funnel.states)}
    rows = history.assign(pos=history["stage"].map(pos))
    first = (
        rows[rows["stage"].isin(funnel.stages)]
        .groupby(["deal_id", "pos"], as_index=False, sort=True)["entered_at"]
        .min()
    )
    deals = data.deals.drop_duplicates("deal_id").set_index("deal_id")
    ids = first["deal_id"]
    cause = _outcome_code(deals["outcome"]).reindex(ids).fillna(OPEN).astype(int).to_numpy()
    closed_at = deals["closed_at"].reindex(ids).reset_index(drop=True)
    advance = _first_advance(first, rows, won_pos=pos[WON])
    advance = advance.fillna(closed_at.where(cause == WON_CODE))
    close_at = closed_at.where(cause != OPEN, data_end).fillna(data_end)
    next_at = advance.fillna(close_at)
    next_cause = np.where(advance.notna(), ADVANCED, np.where(cause == LOST_CODE, LOST_HERE, OPEN))
    entered = first["entered_at"]
    return pd.DataFrame(
        {
            "deal_id": ids.to_numpy(),
            "stage": first["pos"].map(dict(enumerate(funnel.states))).to_numpy(),
            "entered_at": entered.to_numpy(),
            "close_days": _days(close_at, entered),
            "close_cause": cause,
            "next_days": _days(next_at, entered),
            "next_cause": next_cause.astype(int),
        }
    )[columns]


def stage_stays(data: CRMData, *, data_end: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per stage entry: how many days the deal stayed, and whether the stay ended.

    A stay ends at the deal's next stage row, else at its close; a stay with neither is
    still running at the end of the data (``finished`` False). Its ``days`` is then the
    time so far, up to ``data_end`` (NaN without ``data_end``): a censored length.
    """
    history = data.stage_history
    if history is None:
        return pd.DataFrame(columns=["deal_id", "stage", "entered_at", "days", "finished"])
    h = history.sort_values(["deal_id", "entered_at"], kind="stable")
    closed_at = h["deal_id"].map(
        data.deals.drop_duplicates("deal_id").set_index("deal_id")["closed_at"]
    )
    left_at = h.groupby("deal_id", sort=False)["entered_at"].shift(-1).fillna(closed_at)
    finished = left_at.notna()
    if data_end is not None:
        left_at = left_at.fillna(data_end)
    days = ((left_at - h["entered_at"]) / _DAY).clip(lower=0)
    out = h[["deal_id", "stage", "entered_at"]].assign(days=days, finished=finished)
    return out[~out["stage"].isin([WON, LOST])].reset_index(drop=True)


def _first_advance(first: pd.DataFrame, rows: pd.DataFrame, *, won_pos: int) -> pd.Series:
    """For each first entry: the earliest later row of the same deal at a further open
    stage or ``won`` (NaT when there is none)."""
    later = first.reset_index(names="i").merge(
        rows[["deal_id", "pos", "entered_at"]], on="deal_id", suffixes=("", "_to")
    )
    later = later[
        (later["pos_to"] > later["pos"])
        & (later["pos_to"] <= won_pos)
        & (later["entered_at_to"] >= later["entered_at"])
    ]
    when = later.groupby("i")["entered_at_to"].min()
    return when.reindex(first.index)


def _outcome_code(outcome: pd.Series) -> pd.Series:
    return outcome.map({WON: WON_CODE, LOST: LOST_CODE}).fillna(OPEN).astype(int)


def _days(until: pd.Series, since: pd.Series) -> np.ndarray:
    return ((until - since) / _DAY).clip(lower=0).to_numpy(float)
