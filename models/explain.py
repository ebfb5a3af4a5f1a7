"""Per-deal drivers: LightGBM's per-row contributions turned into phrases a rep reads.

Contributions (``pred_contrib=True``, log-odds of the uncalibrated trees) are about 150x
slower than a prediction: call this only for the rows you show. Every feature family of
the catalogue (``docs/features.md``) has a rule in :mod:`models.phrases` that writes a
short phrase ("no meeting in 41 days", "rep wins 31 % of closed deals", "source:
referral"); a rule returns None when its phrase would carry no direction ("about the usual
age for this stage"), and :func:`top_drivers` then lists the next driver instead. Any other
feature falls back to "<catalogue meaning>: <value>".
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd

from models.phrase_format import CHANNEL_NOUNS, Gap, Value, _text
from models.phrases import CATEGORICAL, NEUTRAL_DAYS, NEUTRAL_TREND, RULES, Missing, Rule

__all__ = [
    "CATEGORICAL",
    "CHANNEL_NOUNS",
    "NEUTRAL_DAYS",
    "NEUTRAL_TREND",
    "RULES",
    "Missing",
    "Rule",
    "Value",
    "catalogue_meanings",
    "phrase",
    "drivers_from",
    "model_drivers",
    "top_drivers",
]


def phrase(feature: str, value, row: pd.Series, meanings: dict[str, str]) -> str | None:
    """A short phrase for one feature value of one deal; None when it has no direction."""
    missing = value is None or (not isinstance(value, str) and pd.isna(value))
    for pattern, rule, if_missing in RULES:
        m = re.fullmatch(pattern, feature)
        if not m:
            continue
        if missing:
            if if_missing is None:
                return Gap(f"{_label(feature, meanings)}: unknown")
            return if_missing if isinstance(if_missing, str) else if_missing(m, row)
        if pattern in CATEGORICAL:
            return rule(m, value if isinstance(value, str) else float(value), row)
        try:
            number = float(value)
        except (TypeError, ValueError):
            return f"{_label(feature, meanings)}: {value}"
        return rule(m, number, row)
    label = _label(feature, meanings)
    return Gap(f"{label}: unknown") if missing else f"{label}: {_text(value)}"


def _label(feature: str, meanings: dict[str, str]) -> str:
    meaning = meanings.get(feature)
    if meaning:
        return re.split(r"[.;(]| / ", meaning)[0].strip().rstrip(":")
    return feature.split("__", 1)[-1].replace("_", " ")


def top_drivers(
    lgbm, matrix: pd.DataFrame, *, top_n: int, meanings: dict[str, str]
) -> pd.DataFrame:
    """:func:`drivers_from` the contributions of a fitted binary LGBMClassifier."""
    contrib = np.asarray(lgbm.predict(matrix, pred_contrib=True))[:, :-1]
    return drivers_from(contrib, matrix, top_n=top_n, meanings=meanings)


def model_drivers(close, features: pd.DataFrame, *, top_n: int) -> pd.DataFrame | None:
    """Drivers of a close model's score for every row of ``features``; None when the
    served score is its baseline alone (trees that serve nobody explain nothing)."""
    if not close.explainable or features.empty:
        return None
    contrib, matrix = close.contributions(features.reset_index(drop=True))
    meanings = catalogue_meanings(list(matrix.columns))
    return drivers_from(contrib, matrix, top_n=top_n, meanings=meanings)


def drivers_from(
    contrib: np.ndarray, matrix: pd.DataFrame, *, top_n: int, meanings: dict[str, str]
) -> pd.DataFrame:
    """The ``top_n`` features pushing each row's score up and down.

    ``contrib`` holds one log-odds contribution per (row, column of ``matrix``). Returns one
    row per (input row, direction, rank): ``row`` (position), ``direction`` (up/down),
    ``feature``, ``value``, ``contribution`` (log-odds) and ``phrase``. A driver whose
    phrase carries no direction (e.g. "about the usual age for this stage") is skipped and
    the next one of that direction takes its place.
    """
    names = list(matrix.columns)
    out = []
    for i in range(len(matrix)):
        row = matrix.iloc[i]
        order = np.argsort(contrib[i], kind="stable")
        for direction, candidates in (("up", order[::-1]), ("down", order)):
            rank = 0
            for j in candidates:
                c = float(contrib[i, j])
                if rank >= top_n or (c <= 0 if direction == "up" else c >= 0):
                    break
                value = row.iloc[j]
                value = (
                    None if pd.isna(value) else (value if isinstance(value, str) else float(value))
                )
                text = phrase(names[j], value, row, meanings)
                if not text or (direction == "up" and isinstance(text, Gap)):
                    continue
                rank += 1
                out.append(
                    {
                        "row": i,
                        "direction": direction,
                        "rank": rank,
                        "feature": names[j],
                        "value": value,
                        "contribution": c,
                        "phrase": text,
                    }
                )
    return pd.DataFrame(
        out, columns=["row", "direction", "rank", "feature", "value", "contribution", "phrase"]
    )


def catalogue_meanings(columns: list[str]) -> dict[str, str]:
    """Feature name -> catalogue meaning for the given columns (placeholders matched).
    Matched once per set of columns (a model's columns do not change between calls)."""
    return dict(_meanings(tuple(columns)))


@functools.lru_cache(maxsize=16)
def _meanings(columns: tuple[str, ...]) -> dict[str, str]:
    from features.catalog import feature_entries

    entries = feature_entries()
    out = {}
    for c in columns:
        for e in entries:
            if e.pattern().match(c):
                out[c] = e.meaning
                break
    return out
