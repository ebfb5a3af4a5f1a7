"""Per-deal drivers: LightGBM's per-row contributions turned into phrases a rep reads.

Contributions (``pred_contrib=True``, log-odds of the uncalibrated trees) are about 150x
slower than a prediction: call this only for the rows you show. Phrases come from a small
template table keyed by feature-name patterns; any other feature falls back to its
catalogue meaning and value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

Template = Callable[[float, pd.Series], str | None]


def _days(v: float) -> str:
    return f"{v:.0f} day{'s' if round(v) != 1 else ''}"


def _stage(row: pd.Series) -> str:
    stage = row.get("stage__current")
    return str(stage) if isinstance(stage, str) else "this stage"


def _older(v: float, row: pd.Series) -> str:
    if v >= 14:
        return f"{v / 7:.0f} weeks longer in {_stage(row)} than usual"
    if v <= -14:
        return f"{-v / 7:.0f} weeks younger than usual for {_stage(row)}"
    return f"about the usual age for {_stage(row)}"


def _since(what: str) -> Template:
    return lambda v, row: f"last {what} {_days(v)} ago" if v < 14 else f"no {what} in {_days(v)}"


def _count(what: str) -> Template:
    def phrase(v: float, row: pd.Series) -> str:
        return f"no {what}" if v == 0 else f"{v:.0f} {what}"

    return phrase


def _rate(what: str) -> Template:
    return lambda v, row: f"{what} win rate {v:.0%}"


LOG_PATTERN = r"\w+?__log_(\w+)"
TEMPLATES: tuple[tuple[str, Template], ...] = (
    (r"tp__days_since_last_(\w+)", None),  # filled in by _since with the channel name
    (r"tp__days_since_last", lambda v, r: _since("touch")(v, r)),
    (
        r"tp__decision_maker_engaged",
        lambda v, r: "decision maker engaged" if v >= 1 else "no decision maker engaged yet",
    ),
    (r"stage__days_older_than_typical", _older),
    (r"stage__days_in_current", lambda v, r: f"{_days(v)} in {_stage(r)}"),
    (
        r"stage__n_regressions",
        lambda v, r: "moved back a stage before" if v >= 1 else "never moved back a stage",
    ),
    (r"tp__touches_(\d+)d", None),
    (r"tp__channel_(\w+)_(\d+)d", None),
    (
        r"tp__trend",
        lambda v, r: (
            "activity picking up"
            if v > 0
            else "activity slowing down"
            if v < 0
            else "steady activity"
        ),
    ),
    (r"tp__distinct_contacts", lambda v, r: f"{v:.0f} contact{'s' if v != 1 else ''} involved"),
    (
        r"cal__days_past_expected_close",
        lambda v, r: (
            f"{_days(v)} past the expected close date"
            if v > 0
            else f"expected close in {_days(-v)}"
        ),
    ),
    (r"cal__days_to_quarter_end", lambda v, r: f"{_days(v)} to quarter end"),
    (r"deal__log_amount", lambda v, r: f"deal size {math.exp(v):,.0f}"),
    (r"deal__age_days", lambda v, r: f"deal open for {_days(v)}"),
    (r"owner__win_rate", _rate("rep's")),
    (r"account__win_rate", _rate("account")),
    (r"deal__source_win_rate", _rate("lead source")),
    (r"stage__win_rate", lambda v, r: f"{_stage(r)} win rate {v:.0%}"),
    (r"owner__n_closed", lambda v, r: f"rep has closed {v:.0f} deals"),
    (r"account__age_days", lambda v, r: f"account known for {_days(v)}"),
    (r"tp__account_days_since_last", lambda v, r: _since("touch with the account")(v, r)),
    (
        r"deal__attr_competitor_present",
        lambda v, r: "competitor involved" if v >= 1 else "no competitor",
    ),
    (LOG_PATTERN, None),
)


def phrase(feature: str, value, row: pd.Series, meanings: dict[str, str]) -> str:
    """A short phrase for one feature value of one deal."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{_label(feature, meanings)}: unknown"
    for pattern, template in TEMPLATES:
        m = re.fullmatch(pattern, feature)
        if not m:
            continue
        if pattern.startswith("tp__days_since_last_("):
            return _since(m.group(1).replace("_", " "))(float(value), row)
        if pattern.startswith("tp__touches_"):
            return _count(f"touches in the last {m.group(1)} days")(float(value), row)
        if pattern == LOG_PATTERN:
            return f"{m.group(1).replace('_', ' ')} {math.expm1(float(value)):,.0f}"
        if pattern.startswith("tp__channel_"):
            what = f"{m.group(1).replace('_', ' ')}s in the last {m.group(2)} days"
            return _count(what)(float(value), row)
        return template(float(value), row)
    attr = re.fullmatch(r"\w+?__attr_(\w+)", feature)
    label = attr.group(1).replace("_", " ") if attr else _label(feature, meanings)
    if isinstance(value, str):
        return f"{label}: {value}"
    return f"{label}: {float(value):.3g}"


def _label(feature: str, meanings: dict[str, str]) -> str:
    meaning = meanings.get(feature)
    if meaning:
        return re.split(r"[.;(]| / ", meaning)[0].strip().rstrip(":")
    return feature.split("__", 1)[-1].replace("_", " ")


def top_drivers(
    lgbm, matrix: pd.DataFrame, *, top_n: int, meanings: dict[str, str]
) -> pd.DataFrame:
    """The ``top_n`` features pushing each row's score up and down.

    ``lgbm`` is a fitted LGBMClassifier (binary) and ``matrix`` its input rows. Returns one
    row per (input row, direction, rank): ``row`` (position), ``direction`` (up/down),
    ``feature``, ``value``, ``contribution`` (log-odds) and ``phrase``.
    """
    contrib = np.asarray(lgbm.predict(matrix, pred_contrib=True))[:, :-1]
    names = list(matrix.columns)
    out = []
    for i in range(len(matrix)):
        row = matrix.iloc[i]
        order = np.argsort(contrib[i], kind="stable")
        ups = [j for j in order[::-1][:top_n] if contrib[i, j] > 0]
        downs = [j for j in order[:top_n] if contrib[i, j] < 0]
        for direction, picks in (("up", ups), ("down", downs)):
            for rank, j in enumerate(picks, 1):
                value = row.iloc[j]
                out.append(
                    {
                        "row": i,
                        "direction": direction,
                        "rank": rank,
                        "feature": names[j],
                        "value": None
                        if pd.isna(value)
                        else (value if isinstance(value, str) else float(value)),
                        "contribution": float(contrib[i, j]),
                        "phrase": phrase(
                            names[j], value if not pd.isna(value) else None, row, meanings
                        ),
                    }
                )
    return pd.DataFrame(
        out, columns=["row", "direction", "rank", "feature", "value", "contribution", "phrase"]
    )


def catalogue_meanings(columns: list[str]) -> dict[str, str]:
    """Feature name -> catalogue meaning for the given columns (placeholders matched)."""
    from features.catalog import feature_entries

    entries = feature_entries()
    out = {}
    for c in columns:
        for e in entries:
            if e.pattern().match(c):
                out[c] = e.meaning
                break
    return out
