"""The survival estimators against scikit-survival (the reference, a dev dependency only):
Kaplan–Meier with Greenwood log-log intervals, Aalen–Johansen cumulative incidence with
Aalen's variance, on random data with ties and censoring; and quantiles by hand."""

from __future__ import annotations

import numpy as np
import pytest

from serving.survival import LEVEL, cumulative_incidence, kaplan_meier, km_quantile

sksurv = pytest.importorskip("sksurv.nonparametric")


def sample(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Days on a coarse grid (many ties), about a third censored, two competing causes."""
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 40, n) + rng.choice([0.0, 0.5], n)
    cause = rng.choice([0, 1, 2], n, p=[0.35, 0.25, 0.40])
    return days, cause


@pytest.mark.parametrize("seed, n", [(0, 30), (1, 250), (2, 1500)])
def test_kaplan_meier_matches_sksurv(seed, n):
    days, cause = sample(seed, n)
    t, s, ci = sksurv.kaplan_meier_estimator(cause > 0, days, conf_type="log-log", conf_level=LEVEL)
    km = kaplan_meier(days, cause > 0)
    np.testing.assert_allclose(km.days, t)
    np.testing.assert_allclose(km.value, s, atol=1e-9)
    np.testing.assert_allclose(km.lower, ci[0], atol=1e-9)
    np.testing.assert_allclose(km.upper, ci[1], atol=1e-9)


@pytest.mark.parametrize("seed, n", [(3, 40), (4, 300), (5, 1500)])
def test_cumulative_incidence_matches_sksurv(seed, n):
    days, cause = sample(seed, n)
    t, cif, ci = sksurv.cumulative_incidence_competing_risks(
        cause, days, conf_type="log-log", conf_level=LEVEL, var_type="Aalen"
    )
    curves = cumulative_incidence(days, cause, n_causes=2)
    np.testing.assert_allclose(curves[0].days, t)
    for k in (1, 2):  # each cause: value and interval (after its first event, see below)
        seen = np.cumsum(cif[k] > 0) > 0
        np.testing.assert_allclose(curves[k].value, cif[k], atol=1e-9)
        np.testing.assert_allclose(curves[k].lower, ci[k, 0], atol=1e-9)
        np.testing.assert_allclose(curves[k].upper[seen], ci[k, 1][seen], atol=1e-9)
    # any cause = 1 - KM of all causes (sksurv builds its band at 95 % whatever the level)
    np.testing.assert_allclose(curves[0].value, cif[0], atol=1e-9)
    km = kaplan_meier(days, cause > 0)
    np.testing.assert_allclose(curves[0].lower, 1 - km.upper, atol=1e-12)


def test_incidences_and_survival_add_up():
    days, cause = sample(6, 500)
    any_, won, lost = cumulative_incidence(days, cause, n_causes=2)
    np.testing.assert_allclose(won.value + lost.value, any_.value, atol=1e-12)
    assert np.all(np.diff(won.value) >= -1e-15) and np.all(won.lower <= won.value)
    assert np.all(won.value <= won.upper)


def test_no_censoring_gives_plain_shares():
    days = np.array([1.0, 2.0, 2.0, 3.0, 5.0])
    cause = np.array([1, 2, 1, 2, 1])
    _, won, lost = cumulative_incidence(days, cause, n_causes=2)
    assert won.final()[0] == pytest.approx(3 / 5) and lost.final()[0] == pytest.approx(2 / 5)
    assert won.at(2.0)[0] == pytest.approx(2 / 5) and won.at(0.5) == (0.0, 0.0, 0.0)


def test_censored_deal_is_not_a_failure():
    # won at day 2 and 6, lost at day 4, one still open after 10 days. By hand: won 1/4
    # at day 2; lost 3/4 * 1/3 at day 4; won 1/2 * 1/2 more at day 6. The open deal is
    # neither a loss (as "conversion" counts it) nor left out (as "closed deals" do, 2/3)
    _, won, lost = cumulative_incidence(
        np.array([2.0, 4.0, 6.0, 10.0]), np.array([1, 2, 1, 0]), n_causes=2
    )
    assert lost.final()[0] == pytest.approx(1 / 4)
    assert won.final()[0] == pytest.approx(1 / 2)


def test_km_quantiles_by_hand():
    # stays 1 2 2 4 10 (all ended) and 3, 20 still running
    days = np.array([1, 2, 2, 4, 10, 3, 20], dtype=float)
    ended = np.array([1, 1, 1, 1, 1, 0, 0], dtype=bool)
    km = kaplan_meier(days, ended)
    # S: 6/7 after 1, 4/7 after 2, 4/7*2/3=8/21 after 4, 8/21*1/2=4/21 after 10
    assert km_quantile(km, 0.5)[0] == 4.0
    assert km_quantile(km, 0.75)[0] == 10.0
    assert np.isnan(km_quantile(km, 0.9)[0])  # never drops to 0.1 within the data
    median, lo, hi = km_quantile(km, 0.5)
    assert lo <= median and (np.isnan(hi) or hi >= median)


def test_empty_and_bad_input():
    km = kaplan_meier(np.array([]), np.array([], dtype=bool))
    assert np.isnan(km.final()[0])
    with pytest.raises(ValueError, match="cause codes"):
        cumulative_incidence(np.array([1.0]), np.array([3]), n_causes=2)
    with pytest.raises(ValueError, match=">= 0"):
        kaplan_meier(np.array([-1.0]), np.array([True]))


def test_no_event_yet_has_an_upper_bound_not_a_zero_width_interval():
    # 20 deals, none won yet, 5 lost, 15 still open after 30 days: 0 % won, but with
    # 20 known statuses the 90 % upper bound is 1 - 0.05 ** (1 / 20) (Clopper-Pearson)
    days = np.r_[np.arange(1.0, 6.0), np.full(15, 30.0)]
    cause = np.r_[np.full(5, 2), np.zeros(15, int)]
    _, won, _ = cumulative_incidence(days, cause, n_causes=2)
    assert won.final() == pytest.approx((0.0, 0.0, 1 - 0.05 ** (1 / 20)))
