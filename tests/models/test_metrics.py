"""Metrics against scikit-learn and hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
    top_k_accuracy_score,
)

from models.metrics import (
    binary_metrics,
    expected_calibration_error,
    multiclass_metrics,
    top_decile_lift,
)


def test_ece_by_hand_equal_mass_bins():
    # two bins of two rows: (0.1, 0.2 | y 0, 1) and (0.7, 0.9 | y 1, 1)
    y = np.array([0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.7, 0.9])
    expected = 0.5 * abs(0.5 - 0.15) + 0.5 * abs(1.0 - 0.8)
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(expected)


def test_ece_is_zero_when_each_bin_is_calibrated():
    y = np.array([0, 1, 0, 1])
    p = np.array([0.5, 0.5, 0.5, 0.5])
    assert expected_calibration_error(y, p, n_bins=2) == pytest.approx(0.0)


def test_top_decile_lift_by_hand():
    # 20 rows, top 10 % = 2 rows, both positive; overall rate 4/20
    y = np.zeros(20)
    y[[0, 1, 5, 9]] = 1
    p = np.linspace(1, 0, 20)
    assert top_decile_lift(y, p) == pytest.approx(1.0 / 0.2)


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.99, 500)
    y = (rng.uniform(size=500) < p).astype(int)
    m = binary_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert m["log_loss"] == pytest.approx(log_loss(y, p))
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))
    assert m["n"] == 500


def test_binary_metrics_with_one_class_are_nan_not_errors():
    m = binary_metrics(np.ones(5), np.full(5, 0.7))
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"])
    assert m["log_loss"] == pytest.approx(-math.log(0.7))


def test_multiclass_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    classes = ["a", "b", "c", "d"]
    raw = rng.uniform(size=(300, 4))
    proba = pd.DataFrame(raw / raw.sum(axis=1, keepdims=True), columns=classes)
    true = pd.Series(rng.choice(classes, 300))
    m = multiclass_metrics(true, proba)
    assert m["log_loss"] == pytest.approx(log_loss(true, proba.to_numpy(), labels=classes))
    assert m["accuracy"] == pytest.approx(np.mean(proba.idxmax(axis=1) == true))
    top2 = top_k_accuracy_score(true, proba.to_numpy(), k=2, labels=classes)
    assert m["top2_accuracy"] == pytest.approx(top2)


def test_multiclass_true_class_missing_from_columns_gets_tiny_probability():
    proba = pd.DataFrame({"a": [1.0]})
    m = multiclass_metrics(pd.Series(["z"]), proba)
    assert m["log_loss"] > 13 and m["accuracy"] == 0.0
