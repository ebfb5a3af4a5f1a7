"""Data-health checks on blanks: ``missing_by_outcome`` and ``fill_rate_change``.

Both look at every deal column but the id, the timestamps and the outcome, by creation
month (UTC) and status (won, lost, open). Each one controls for what the other detects:
``missing_by_outcome`` compares the statuses within the same creation months (a column
that stopped being filled is blank for recent deals, which are mostly open, but not more
often for open than for closed deals of the same month); ``fill_rate_change`` compares
before and after a month within each status (a column blank for open deals is blank more
often in recent months, but not more often for the recent open deals than for older
open deals). Differences are Mantel-Haenszel-style weighted means of share differences.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm.provenance import Scope
from crm.schemas import LOST, WON, attribute_columns

#: missing_by_outcome: within the same creation months, the blank share of one status
#: exceeds another's by this much, each status having >= MIN_STATUS_DEALS such deals.
MISSING_GAP, MIN_STATUS_DEALS = 0.5, 30
#: fill_rate_change: the blank share changes by this much (within statuses and overall)
#: at a creation month, with >= MIN_SIDE_DEALS deals and >= MIN_SIDE_MONTHS months each side.
FILL_SHIFT, MIN_SIDE_DEALS, MIN_SIDE_MONTHS = 0.5, 50, 2
#: Deal columns never checked: they are blank or not by definition.
NOT_CHECKED = ("deal_id", "created_at", "closed_at", "outcome")
STATUSES = (WON, LOST, "open")


def check_missingness(deals: pd.DataFrame, scope: Scope) -> None:
    """``missing_by_outcome`` and ``fill_rate_change`` for every checked deal column."""
    status = _status_codes(deals)
    created = deals["created_at"].dt.tz_convert("UTC").dt.tz_localize(None)
    month = created.dt.year.to_numpy() * 12 + created.dt.month.to_numpy() - 1
    first_month = created.min().to_period("M")
    month = month - month.min()
    cell = month * len(STATUSES) + status
    size = (month.max() + 1) * len(STATUSES)
    totals = np.bincount(cell, minlength=size).reshape(-1, len(STATUSES)).astype(np.float64)
    attributes = set(attribute_columns(deals, "deals"))
    for column in (c for c in deals.columns if c not in NOT_CHECKED):
        blank = deals[column].isna().to_numpy()
        if blank.all() or not blank.any():
            continue
        blanks = np.bincount(cell, weights=blank, minlength=size).reshape(totals.shape)
        _missing_by_outcome(column, blank, status, totals, blanks, scope, column in attributes)
        _fill_rate_change(column, blank, month, first_month, created, totals, blanks, scope)


def _status_codes(deals: pd.DataFrame) -> np.ndarray:
    """0 won, 1 lost, 2 open (no outcome) per deal."""
    if "outcome" not in deals:
        return np.full(len(deals), 2, dtype=np.int64)
    outcome = deals["outcome"]
    won = (outcome == WON).fillna(False).to_numpy(dtype=bool)
    lost = (outcome == LOST).fillna(False).to_numpy(dtype=bool)
    return np.where(won, 0, np.where(lost, 1, 2))


def _weighted_gap(n_a, m_a, n_b, m_b) -> tuple[float, float]:
    """Weighted mean of (share_a - share_b) over strata with both, and the total weight."""
    both = (n_a > 0) & (n_b > 0)
    if not both.any():
        return 0.0, 0.0
    n_a, m_a, n_b, m_b = n_a[both], m_a[both], n_b[both], m_b[both]
    weight = n_a * n_b / (n_a + n_b)
    return float((weight * (m_a / n_a - m_b / n_b)).sum() / weight.sum()), float(weight.sum())


def _missing_by_outcome(
    column: str,
    blank: np.ndarray,
    status: np.ndarray,
    totals: np.ndarray,
    blanks: np.ndarray,
    scope: Scope,
    attribute: bool,
) -> None:
    """Warn when, month by month, one status is blank far more often than another."""
    best = None
    for a in range(len(STATUSES)):
        for b in range(a + 1, len(STATUSES)):
            both = (totals[:, a] > 0) & (totals[:, b] > 0)
            if min(totals[both, a].sum(), totals[both, b].sum()) < MIN_STATUS_DEALS:
                continue
            gap, _ = _weighted_gap(totals[:, a], blanks[:, a], totals[:, b], blanks[:, b])
            if best is None or abs(gap) > abs(best[0]):
                best = (gap, a, b) if gap >= 0 else (-gap, b, a)
    if best is None or best[0] < MISSING_GAP:
        return
    gap, high, low = best
    n, m = totals.sum(axis=0), blanks.sum(axis=0)
    shares = ", ".join(
        f"{int(m[s])} of {int(n[s])} {STATUSES[s]} ({m[s] / n[s]:.0%})"
        for s in (high, *(s for s in range(len(STATUSES)) if s != high))
        if n[s] > 0
    )
    scope.warning(
        "missing_by_outcome",
        f"blank for {shares} deals; within the same creation months {STATUSES[high]} "
        f"deals are blank {gap * 100:.0f} percentage points more often than {STATUSES[low]} "
        "ones: missingness may encode the outcome",
        mask=blank & (status == high),
        column=column,
        hint=_outcome_hint(column, attribute),
    )


def _outcome_hint(column: str, attribute: bool) -> str:
    why = (
        "find out why it is blank (filled only once a deal closes? cleared when it is "
        "lost?); a model would learn the outcome from the blank"
    )
    if attribute:
        return why + f"; fix the export or list {column!r} in funnel.exclude_attributes"
    return why + "; fill it in the export for every deal, or leave the column out"


def _fill_rate_change(
    column: str,
    blank: np.ndarray,
    month: np.ndarray,
    first_month: pd.Period,
    created: pd.Series,
    totals: np.ndarray,
    blanks: np.ndarray,
    scope: Scope,
) -> None:
    """Warn when, within statuses, the blank share jumps at some creation month."""
    n_months = totals.shape[0]
    if n_months < 2 * MIN_SIDE_MONTHS:
        return
    before_n, before_m = np.cumsum(totals, axis=0)[:-1], np.cumsum(blanks, axis=0)[:-1]
    after_n, after_m = totals.sum(axis=0) - before_n, blanks.sum(axis=0) - before_m
    with np.errstate(divide="ignore", invalid="ignore"):
        weight = np.where(
            (before_n > 0) & (after_n > 0), before_n * after_n / (before_n + after_n), 0
        )
        diff = np.nan_to_num(after_m / after_n - before_m / before_n)
        within = (weight * diff).sum(axis=1) / weight.sum(axis=1)
        overall = after_m.sum(axis=1) / after_n.sum(axis=1) - before_m.sum(axis=1) / before_n.sum(
            axis=1
        )
    split = np.arange(1, n_months)
    ok = (before_n.sum(axis=1) >= MIN_SIDE_DEALS) & (after_n.sum(axis=1) >= MIN_SIDE_DEALS)
    ok &= (split >= MIN_SIDE_MONTHS) & (n_months - split >= MIN_SIDE_MONTHS)
    ok &= (np.abs(np.nan_to_num(within)) >= FILL_SHIFT) & (np.abs(overall) >= FILL_SHIFT)
    ok &= np.sign(np.nan_to_num(within)) == np.sign(overall)
    if not ok.any():
        return
    k = int(np.argmax(np.where(ok, np.abs(np.nan_to_num(within)), -1.0)))
    nb, mb = before_n[k].sum(), before_m[k].sum()
    na, ma = after_n[k].sum(), after_m[k].sum()
    when = first_month + split[k]
    stops = overall[k] > 0
    filled = created[~blank]
    edge = (
        f"; the last deal with a value was created on {filled.max().date()}"
        if stops
        else f"; the first deal with a value was created on {filled.min().date()}"
    )
    scope.warning(
        "fill_rate_change",
        f"{'stops' if stops else 'starts'} being filled from {when} on: blank for "
        f"{int(mb)} of the {int(nb)} deals created before {when} ({mb / nb:.0%}) and "
        f"{int(ma)} of the {int(na)} created since ({ma / na:.0%}){edge}",
        mask=blank & ((month >= split[k]) if stops else (month < split[k])),
        column=column,
        hint="a model fitted on one side of the change reads the blank as something it no "
        "longer means on the other; fix the source of the column"
        + (" (e.g. the report that fed it)" if stops else "")
        + " or leave it out of the model (funnel.exclude_attributes for custom columns)",
    )
