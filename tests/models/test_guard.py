"""The small-data guard: a gain must clear deal-clustered noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.guard import binary_row_loss, choose_weight, gain_z


def test_gain_z_by_hand_with_one_row_per_deal():
    base = np.array([1.0, 1.0, 1.0, 1.0])
    model = np.array([0.0, 1.0, 0.0, 1.0])  # gains 1, 0, 1, 0: mean 0.5
    # residuals +-0.5, 4 clusters: se = sqrt(4/3 * 4 * 0.25) / 4
    expected = 0.5 / (math.sqrt(4 / 3 * 1.0) / 4)
    assert gain_z(base, model, np.array(["a", "b", "c", "d"])) == pytest.approx(expected)


def test_clustering_by_deal_widens_the_error():
    rng = np.random.default_rng(0)
    gain = np.repeat(rng.normal(0.05, 1.0, 50), 10)  # 50 deals, 10 identical snapshots each
    base, model = gain, np.zeros_like(gain)
    rows = gain_z(base, model, np.arange(len(gain)))
    deals = gain_z(base, model, np.repeat(np.arange(50), 10))
    assert deals < rows / 2


def test_ties_and_small_gains_choose_the_baseline():
    base = np.full(100, 0.5)
    noisy = base + np.random.default_rng(1).normal(0, 0.3, 100) - 0.01
    assert choose_weight({0.0: base, 1.0: base.copy()}, np.arange(100), z=2.0) == (0.0, 0.0)
    weight, z = choose_weight({0.0: base, 1.0: noisy}, np.arange(100), z=2.0)
    assert weight == 0.0 and z < 2.0
    weight, z = choose_weight({0.0: base, 0.5: base - 0.1}, np.arange(100), z=2.0)
    assert weight == 0.5 and z > 1e6  # a constant gain: zero variance


def test_binary_row_loss():
    assert binary_row_loss(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(
        [math.log(2), math.log(2)]
    )
