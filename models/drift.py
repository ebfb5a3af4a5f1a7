"""Feature drift between the training snapshots and the rows to be scored.

Two symptoms real CRM exports show (``../docs/models.md``): a field that stops (or starts)
being filled, so its missing share at scoring differs from training; and new categories
the model never saw (a new lead source, a renamed product). Each feature gets its missing
share in training and at scoring and, for categorical features, the share of filled
scoring values that training never saw. A feature whose missing share moved by more than
``drift_max`` (absolute), or whose unseen share exceeds it, is *drifted*.
"""

from __future__ import annotations

import pandas as pd

from models.preprocess import FeatureMatrix


def missing_shares(frame: pd.DataFrame, columns: list[str]) -> dict[str, float]:
    """Share of missing values of each column (a column absent from ``frame``: 1.0)."""
    n = max(len(frame), 1)
    return {c: float(frame[c].isna().sum() / n) if c in frame else 1.0 for c in columns}


def unseen_shares(frame: pd.DataFrame, categories: dict[str, list[str]]) -> dict[str, float]:
    """Share of the filled values of each categorical column not among ``categories``."""
    out = {}
    for c, known in categories.items():
        if c not in frame:
            continue
        filled = frame[c].dropna().astype(str)
        out[c] = float((~filled.isin(known)).mean()) if len(filled) else 0.0
    return out


def drift_table(
    reference_missing: dict[str, float],
    categories: dict[str, list[str]],
    score: pd.DataFrame,
    *,
    drift_max: float,
) -> list[dict]:
    """One entry per drifted feature: its shares and why it counts as drifted.

    ``reference_missing`` are the training missing shares (:func:`missing_shares`),
    ``categories`` the training categories (:class:`~models.preprocess.FeatureMatrix`).
    Sorted by the size of the shift, largest first.
    """
    now = missing_shares(score, list(reference_missing))
    unseen = unseen_shares(score, categories)
    out = []
    for c, before in reference_missing.items():
        moved = now[c] - before
        new = unseen.get(c, 0.0)
        if abs(moved) > drift_max or new > drift_max:
            why = (
                f"missing in {now[c]:.0%} of rows to score vs {before:.0%} in training"
                if abs(moved) > drift_max
                else f"{new:.0%} of its values never seen in training"
            )
            out.append(
                {
                    "feature": c,
                    "missing_training": round(before, 4),
                    "missing_scoring": round(now[c], 4),
                    "unseen_share": round(new, 4),
                    "reason": why,
                    "size": max(abs(moved), new),
                }
            )
    return sorted(out, key=lambda d: (-d["size"], d["feature"]))


def drifted_features(
    train: pd.DataFrame, score: pd.DataFrame | None, *, drift_max: float
) -> list[dict]:
    """:func:`drift_table` of the model columns of ``train`` against ``score``."""
    if score is None or not len(score):
        return []
    matrix = FeatureMatrix().fit(train)
    reference = missing_shares(train, matrix.columns_)
    return drift_table(reference, matrix.categories_, score, drift_max=drift_max)


def describe(drift: list[dict], limit: int = 5) -> str:
    """One line naming the drifted features (at most ``limit``) and why."""
    if not drift:
        return ""
    parts = [f"{d['feature']} ({d['reason']})" for d in drift[:limit]]
    more = f" and {len(drift) - limit} more" if len(drift) > limit else ""
    return "; ".join(parts) + more
