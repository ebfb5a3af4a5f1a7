"""Censoring-aware stage table and base rate: the baselines of a history too short for the
fixed-horizon ones.

:class:`models.baselines.StageRateTable` and :class:`models.baselines.BaseRate` learn from
snapshots whose whole H-day outcome is known before the cutoff (``as_of + H <= cutoff``).
On a short history (or one trimmed to where wins were logged) there are none, and a close
model compared with nothing proves nothing. These tables learn the same thing from every
snapshot, as the hazard model does (:mod:`models.intervals`): won / lost / still open per
interval after as_of by current stage (or pooled, the base rate), P(won within H) being
the cumulative incidence at H. No trees, no recalibration: what a CRM's stage table would
say if it counted censoring right. Intervals no training row reached are extended as the
hazard model's are (:func:`models.intervals.extend_unobserved`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

from models.baselines import stage_of
from models.intervals import (
    StageHazardTable,
    all_intervals,
    cumulative_incidence,
    extend_unobserved,
    interval_edges,
    interval_rows,
    observed_intervals,
)


class HazardRateTable(ClassifierMixin, BaseEstimator):
    """P(won within ``horizon_days``) from interval hazards by stage (``by_stage``) or
    pooled. ``fit(X, y)``: ``y`` the labels frame (``outcome``, ``days_to_close``,
    ``days_observed``), as for :class:`models.hazard.HazardCloseModel`."""

    def __init__(
        self, *, horizon_days: int, edges_days: tuple[int, ...], prior_strength: float,
        by_stage: bool,
    ) -> None:  # fmt: skip
        self.horizon_days = horizon_days
        self.edges_days = edges_days
        self.prior_strength = prior_strength
        self.by_stage = by_stage

    def fit(self, X: pd.DataFrame, y: pd.DataFrame) -> HazardRateTable:
        self.classes_ = np.array([False, True])
        self.edges_ = interval_edges(self.edges_days, self.horizon_days)
        rows = interval_rows(y.reset_index(drop=True), self.edges_)
        self.observed_ = observed_intervals(rows, len(self.edges_))
        stages = self._stages(X.reset_index(drop=True))[rows.row]
        self.table_ = StageHazardTable(
            prior_strength=self.prior_strength, n_intervals=len(self.edges_)
        ).fit(stages, rows.k, rows.event)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        n, K = len(X), len(self.edges_)
        row, k = all_intervals(n, K)
        hazards = self.table_.predict(self._stages(X.reset_index(drop=True))[row], k)
        hazards = extend_unobserved(
            hazards.reshape(n, K, 3), self.edges_, getattr(self, "observed_", None)
        )
        won, _ = cumulative_incidence(hazards)
        p = won[:, int(np.searchsorted(self.edges_, self.horizon_days))]
        return np.column_stack([1 - p, p])

    def _stages(self, X: pd.DataFrame) -> np.ndarray:
        if self.by_stage:
            return np.asarray(stage_of(X), dtype=object)
        return np.full(len(X), "(all)", dtype=object)
