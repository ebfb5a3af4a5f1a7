"""Calibration of a fitted classifier on a later slice, Platt or isotonic by data size.

Isotonic regression overfits below about 1,000 calibration rows (Niculescu-Mizil & Caruana,
2005), so it is used only from ``min_isotonic_rows`` rows on; below that, Platt scaling
(a sigmoid on the score). The classifier is frozen: calibration never refits it.
"""

from __future__ import annotations

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator


def calibration_method(n_rows: int, *, min_isotonic_rows: int) -> str:
    """``isotonic`` from ``min_isotonic_rows`` rows on, else ``sigmoid`` (Platt)."""
    return "isotonic" if n_rows >= min_isotonic_rows else "sigmoid"


def calibrate(estimator, X, y, *, min_isotonic_rows: int) -> CalibratedClassifierCV:
    """``estimator`` (already fitted) calibrated on (X, y), which must hold both classes."""
    y = np.asarray(y, bool)
    if y.all() or not y.any():
        raise ValueError("calibration rows hold only one class")
    method = calibration_method(len(y), min_isotonic_rows=min_isotonic_rows)
    return CalibratedClassifierCV(FrozenEstimator(estimator), method=method).fit(X, y)
