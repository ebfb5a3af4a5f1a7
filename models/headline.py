"""The headline metrics: the handful of numbers ``dvc metrics show`` and ``dvc exp show``
print, taken from the metrics trees of the two backtests ``train`` runs: the close
model's and the revenue forecast's.

``auc``, ``log_loss`` and ``ece`` are the served close model's (``p_win``) on the backtest's
test rows with a known outcome; ``next_stage_log_loss`` the next-stage model's on the rows
with a known next state; ``forecast_wape`` the revenue forecast's WAPE over the backtest
months forecast at their start (``dealcast`` method). A number that cannot be computed (no
backtest: a short history) is null.
"""

from __future__ import annotations

#: Name -> where in the backtest metrics tree (first key: which tree).
HEADLINE = {
    "auc": ("close", "close_probability", "overall", "p_win", "roc_auc"),
    "log_loss": ("close", "close_probability", "overall", "p_win", "log_loss"),
    "ece": ("close", "close_probability", "overall", "p_win", "ece"),
    "next_stage_log_loss": ("close", "next_stage", "overall", "next_stage_model", "log_loss"),
    "forecast_wape": ("forecast", "methods", "dealcast", "wape"),
}
DIGITS = 4


def headline(close: dict | None, forecast: dict | None) -> dict[str, float | None]:
    """The headline numbers of the two backtests' metrics trees (rounded; null if absent)."""
    trees = {"close": close or {}, "forecast": forecast or {}}
    out: dict[str, float | None] = {}
    for name, (tree, *keys) in HEADLINE.items():
        value = trees[tree]
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        ok = isinstance(value, int | float) and value == value  # not NaN
        out[name] = round(float(value), DIGITS) if ok else None
    return out


def format_metrics(numbers: dict[str, float | None]) -> str:
    """One line: ``auc 0.812  log_loss 0.401 ...``."""
    return "  ".join(f"{k} {'n/a' if v is None else f'{v:.3f}'}" for k, v in numbers.items())
