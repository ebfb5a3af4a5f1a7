"""Every phrase a rep may read is true of the deal it sits on.

Each feature of every deal open in a generated CRM's scoring snapshot is phrased, and every
claim a phrase makes (a number of days, a count in a window, a rate, an amount, a stage) is
checked against the feature value it came from. The numbers a phrase prints are whole days
elapsed (as the export's ``days_in_stage``), counts as counted, rates rounded to a percent.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from models.explain import catalogue_meanings, phrase


def _n(text: str) -> float:
    return float(text.replace(",", ""))


def _days_claim(text: str, value: float) -> bool:
    """``41 days`` is floor(value); months and years are a person's rounding of it."""
    m = re.search(r"(\d[\d,]*(?:\.\d)?) (day|days|week|weeks|month|months|years?)\b", text)
    if m is None:
        return True
    n, unit = _n(m.group(1)), m.group(2)
    d = abs(value)
    if unit.startswith("day"):
        return n == math.floor(d)
    if unit.startswith("week"):
        return abs(n - d / 7) <= 0.5
    if unit.startswith("month"):
        return abs(n - d / 30.44) <= 0.5
    return abs(n - d / 365.25) <= 0.05


def _check(feature: str, value, text: str, row: pd.Series) -> str | None:
    """None when the phrase's claims hold for ``value``, else what is wrong."""
    stage = row.get("stage__current")
    if feature == "stage__days_in_current":
        ok = _days_claim(text, value) and text.endswith(f" in {stage}")
    elif feature == "stage__days_older_than_typical":
        older = "older" in text
        ok = _days_claim(text, value) and older == (value > 0) and "longer in" not in text
        ok = ok and text.endswith(f"on entering {stage}")
    elif feature.startswith("tp__days_since_last") or feature == "deal__age_days":
        ok = _days_claim(text, value)
    elif m := re.fullmatch(r"tp__(?:channel_\w+?|touches|account_touches)_(\d+)d", feature):
        count = 0 if text.startswith("no ") else _n(text.split(" ")[0])
        ok = count == round(value) and text.endswith(f"in the last {m.group(1)} days")
    elif feature.endswith("win_rate") or feature == "tp__inbound_share":
        pct = re.search(r"(\d+) %", text)
        ok = pct is not None and int(pct.group(1)) == round(value * 100)
        if feature == "stage__win_rate":
            ok = ok and f"in {stage} " in text
    elif feature.endswith("__log_amount") or feature.endswith("__log_annual_revenue"):
        ok = _n(text.split(" ")[-1]) == round(math.expm1(value))
    elif feature in ("stage__current", "stage__position"):
        ok = f"at stage {stage}" in text
    else:
        return None
    return None if ok else f"{feature}={value!r} -> {text!r}"


def test_every_phrase_of_every_open_deal_is_true(small_backtest):
    features = small_backtest.now.features
    columns = [c for c in features.columns if "__" in c]
    meanings = catalogue_meanings(columns)
    wrong, checked = [], set()
    for _, row in features[columns].iterrows():
        for c in columns:
            value = row[c]
            if value is None or (not isinstance(value, str) and pd.isna(value)):
                continue
            text = phrase(c, value if isinstance(value, str) else float(value), row, meanings)
            if not text:
                continue
            problem = _check(c, value, text, row)
            checked.add(c)
            if problem:
                wrong.append(problem)
    assert not wrong, wrong[:10]
    families = {"stage__days_in_current", "stage__days_older_than_typical", "owner__win_rate",
                "deal__log_amount", "tp__days_since_last", "stage__win_rate"}  # fmt: skip
    assert families <= checked


def test_the_calendar_is_never_a_reason(small_backtest):
    row = small_backtest.now.features.iloc[0]
    assert phrase("cal__days_to_quarter_end", 1.0, row, {}) is None
