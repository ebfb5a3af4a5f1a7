"""Calibration of a fitted classifier on a later slice: Platt by default, isotonic on request.

Isotonic regression returns exact 0 and 1 at its ends, and on real CRM histories those
blocks carried most of the test log loss (docs/models.md), so Platt scaling (a sigmoid on
the score, never 0 or 1) is the default. Isotonic overfits below about 1,000 calibration
rows (Niculescu-Mizil & Caruana, 2005), so even when asked for it is used only from
``min_isotonic_rows`` rows on; the caller floors its output. The classifier is frozen:
calibration never refits it.
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator


def calibration_method(n_rows: int, *, method: str, min_isotonic_rows: int) -> str:
    """``isotonic`` when asked for and from ``min_isotonic_rows`` rows on, else
    ``sigmoid`` (Platt)."""
    return "isotonic" if method == "isotonic" and n_rows >= min_isotonic_rows else "sigmoid"


def calibrate(estimator, X, y, *, method: str, min_isotonic_rows: int) -> CalibratedClassifierCV:
    """``estimator`` (already fitted) calibrated on (X, y), which must hold both classes."""
    y = np.asarray(y, bool)
    if y.all() or not y.any():
        raise ValueError("calibration rows hold only one class")
    method = calibration_method(len(y), method=method, min_isotonic_rows=min_isotonic_rows)
    return CalibratedClassifierCV(FrozenEstimator(estimator), method=method).fit(X, y)


def cross_calibrated(
    estimator, X, y, groups: np.ndarray, *, method: str, min_isotonic_rows: int
) -> np.ndarray:
    """Out-of-fold calibrated P(positive) of (X, y): calibrated on one half of the groups
    (deals), scored on the other, and back. A guard that judges a calibrated model on the
    rows it was calibrated on flatters it (the calibrator re-fits the slice's own rate);
    this is what the guard compares. Falls back to in-sample where a half holds one class.
    """
    y = np.asarray(y, bool)
    unique = np.unique(np.asarray(groups))
    half = np.isin(groups, unique[::2])
    out = np.empty(len(y))
    for fit, score in ((half, ~half), (~half, half)):
        if not score.any():
            continue
        if y[fit].all() or not y[fit].any():
            fitted = calibrate(estimator, X, y, method=method, min_isotonic_rows=min_isotonic_rows)
        else:
            fitted = calibrate(
                estimator, X[fit], y[fit], method=method, min_isotonic_rows=min_isotonic_rows
            )
        out[score] = fitted.predict_proba(X[score])[:, 1]
    return out
