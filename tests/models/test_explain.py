"""Drivers: contributions turned into phrases a rep understands."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.explain import catalogue_meanings, phrase, top_drivers

ROW = pd.Series({"stage__current": "proposal"})


def test_template_phrases():
    assert phrase("tp__days_since_last_meeting", 41.0, ROW, {}) == "no meeting in 41 days"
    assert phrase("tp__decision_maker_engaged", 1.0, ROW, {}) == "decision maker engaged"
    older = phrase("stage__days_older_than_typical", 21.0, ROW, {})
    assert older == "3 weeks longer in proposal than usual"
    assert phrase("tp__channel_demo_30d", 0.0, ROW, {}) == "no demos in the last 30 days"
    assert phrase("owner__win_rate", 0.42, ROW, {}) == "rep's win rate 42%"


def test_fallback_uses_the_catalogue_meaning():
    meanings = catalogue_meanings(["account__industry", "account__log_employees"])
    industry = phrase("account__industry", "Retail", ROW, meanings)
    assert industry == "The buying company's sector: Retail"
    assert phrase("account__log_employees", np.log1p(250.0), ROW, meanings) == "employees 250"
    assert phrase("made__up", 2.0, ROW, {}) == "up: 2"
    assert phrase("account__log_employees", None, ROW, meanings).endswith("unknown")


def test_top_drivers_point_up_and_down(small_backtest, fitted_close):
    rows = small_backtest.test.features.head(5)
    matrix = fitted_close.matrix_.transform(rows)
    meanings = catalogue_meanings(list(matrix.columns))
    drivers = top_drivers(fitted_close.lgbm_, matrix, top_n=3, meanings=meanings)
    assert set(drivers["row"]) <= set(range(5)) and len(drivers) > 0
    ups = drivers[drivers["direction"] == "up"]
    downs = drivers[drivers["direction"] == "down"]
    assert (ups["contribution"] > 0).all() and (downs["contribution"] < 0).all()
    assert drivers["phrase"].str.len().gt(0).all()
    assert drivers.groupby(["row", "direction"]).size().max() <= 3
    assert np.isfinite(drivers["contribution"]).all()


def test_custom_attributes_and_rep_history_read_naturally():
    meanings = catalogue_meanings(["deal__attr_legacy_score", "deal__source"])
    assert phrase("deal__attr_legacy_score", 95.0, ROW, meanings) == "legacy score: 95"
    assert phrase("deal__source", "event", ROW, meanings) == "Lead source: event"
    assert phrase("owner__n_closed", 141.0, ROW, {}) == "rep has closed 141 deals"
