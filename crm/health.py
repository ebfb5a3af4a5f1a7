"""Data-health checks: contract-valid data that would still mislead a model (warnings only).

Run by ``dealcast validate`` once the data has no errors. Each check names the column,
counts and an example row, and says what to do; ``docs/data-contract.md`` lists them:

* ``missing_by_outcome``: a deal column blank far more often for won, lost or open deals
  (compared within the same creation months, so a column that stopped being filled is not
  mistaken for one): the blank may encode the outcome;
* ``fill_rate_change``: a deal column that stops (or starts) being filled from a creation
  month on (compared within won, lost and open deals, for the same reason the other way);
* ``left_truncation``: many deals created on the first day (or week) of the data;
* ``short_history``: less history than the default backtest needs;
* ``fixed_close_delay``: many deals closed exactly the same number of days after creation;
* ``late_win_records``: almost no wins recorded before some month, many after.

The thresholds are the constants below (documented in the contract); they are meant to
fire on the failures seen on real exports and stay quiet on ordinary data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.health_missing import check_missingness
from crm.provenance import Provenance, Scope, plural
from crm.report import ValidationReport
from crm.schemas import LOST, WON

#: left_truncation: the first day holds >= this many deals and this many times an average day.
FIRST_DAY_MIN, FIRST_DAY_RATIO = 20, 5.0
#: ... or the first 7 days hold >= this many deals and this many times an average week.
FIRST_WEEK_MIN, FIRST_WEEK_RATIO = 30, 3.0
#: short_history: the history before the default backtest cutoff must be this long.
MIN_TRAINING_DAYS = 90
#: left_truncation's tip: start snapshots when this share of the truncated deals closed.
SETTLED_SHARE = 0.8
#: fixed_close_delay: one whole-day delay (of at least MIN_DELAY_DAYS) holds >= this share
#: and this many of the won or of the lost deals.
DELAY_SHARE, DELAY_MIN_DEALS, MIN_DELAY_DAYS = 0.25, 20, 7
#: late_win_records: before some close month at most this share of the later win share,
#: with >= LATE_MIN_CLOSED closed deals over >= LATE_MIN_MONTHS months before it and
#: >= LATE_MIN_WINS wins from it on.
LATE_RATIO, LATE_MIN_CLOSED, LATE_MIN_MONTHS, LATE_MIN_WINS = 0.25, 50, 3, 20


@dataclass(frozen=True)
class HealthSettings:
    """What the health checks need from the user's params.

    ``horizon_days`` is ``train.horizon_days``, ``test_days`` is ``evaluate.test_days``.
    """

    horizon_days: int
    test_days: int


def check_health(
    tables: Mapping[str, pd.DataFrame],
    *,
    settings: HealthSettings,
    report: ValidationReport,
    provenance: Mapping[str, Provenance] | None = None,
    as_of: pd.Timestamp | None = None,
) -> ValidationReport:
    """Add the data-health warnings for contract-valid typed ``tables`` to ``report``.

    ``as_of`` (UTC): events after it do not count as the data's end (they are
    ``future_timestamp`` warnings already). Returns ``report``.
    """
    deals = tables.get("deals")
    if deals is None or len(deals) == 0 or "created_at" not in deals:
        return report
    deals = deals.reset_index(drop=True)
    prov = (provenance or {}).get("deals", Provenance())
    scope = Scope(
        report,
        "deals",
        prov if prov.rows is None or len(prov.rows) == len(deals) else Provenance(file=prov.file),
    )
    check_missingness(deals, scope)
    closed_at = deals.get("closed_at")
    _left_truncation(
        deals["created_at"], closed_at, data_span(tables, deals["created_at"], as_of)[1], scope
    )
    _short_history(tables, deals["created_at"], settings, scope, as_of)
    if {"closed_at", "outcome"} <= set(deals.columns):
        _fixed_close_delay(deals, scope)
        _late_win_records(deals, scope)
    return report


def _left_truncation(
    created: pd.Series, closed_at: pd.Series | None, end: pd.Timestamp, scope: Scope
) -> None:
    """Many deals on the first day (or week): the export probably starts mid-stream."""
    day = created.dt.floor("D")
    first, last = day.min(), day.max()
    span = (last - first).days + 1
    for width, minimum, ratio in (
        (1, FIRST_DAY_MIN, FIRST_DAY_RATIO),
        (7, FIRST_WEEK_MIN, FIRST_WEEK_RATIO),
    ):
        if span < 4 * width:
            return
        head = (day < first + pd.Timedelta(days=width)).to_numpy()
        n_head = int(head.sum())
        usual = (len(day) - n_head) / (span - width) * width
        if n_head >= minimum and n_head >= ratio * max(usual, 1e-9):
            when = f"on {first.date()}" if width == 1 else f"in the week from {first.date()}"
            period = "day" if width == 1 else "week"
            scope.warning(
                "left_truncation",
                f"{plural(n_head, 'deal', 'were')} created {when}, the first "
                f"{period} of the data ({n_head / len(day):.0%} of all deals), against "
                f"{usual:.1f} on an average {period} after it: the export probably starts "
                "mid-stream, and these deals' created_at (and earlier history) are the "
                "export's, not the real ones",
                mask=head,
                column="created_at",
                hint="export the full history if you can" + _settle_tip(closed_at, head, end),
            )
            return


def _settle_tip(closed_at: pd.Series | None, head: np.ndarray, end: pd.Timestamp) -> str:
    """Where to start training snapshots so that most of the truncated deals are gone."""
    if closed_at is None:
        return ""
    settle = closed_at[head].fillna(end).quantile(SETTLED_SHARE)
    if settle >= end - pd.Timedelta(days=MIN_TRAINING_DAYS):
        return " (most of these deals are still open at the data's end)"
    return (
        f"; else start the training snapshots later (features.start: {settle.date()}, by "
        f"when {SETTLED_SHARE:.0%} of these deals had closed), so they do not look brand new"
    )


def data_span(
    tables: Mapping[str, pd.DataFrame], created: pd.Series, as_of: pd.Timestamp | None
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The first deal's creation and the latest event (not after ``as_of``)."""
    stamps = [created]
    for table, column in (
        ("deals", "closed_at"),
        ("stage_history", "entered_at"),
        ("touchpoints", "occurred_at"),
    ):
        frame = tables.get(table)
        if frame is not None and column in frame:
            stamps.append(frame[column])
    ends = [(s[s <= as_of] if as_of is not None else s).max() for s in stamps]
    ends = [end for end in ends if pd.notna(end)]
    return created.min(), max(ends) if ends else created.max()


def _short_history(
    tables: Mapping[str, pd.DataFrame],
    created: pd.Series,
    settings: HealthSettings,
    scope: Scope,
    as_of: pd.Timestamp | None,
) -> None:
    """Less history than the default backtest (and some training before its cutoff) needs."""
    first, end = data_span(tables, created, as_of)
    span = (end - first) / pd.Timedelta(days=1)
    h, t = settings.horizon_days, settings.test_days
    if span >= h + t + MIN_TRAINING_DAYS:
        return
    cutoff = end - pd.Timedelta(days=h + t)
    scope.warning(
        "short_history",
        f"the data covers {span:.0f} days ({first.date()} to {end.date()}); a backtest "
        f"cut at train.horizon_days ({h}) + evaluate.test_days ({t}) = {h + t} days before "
        f"the data's end ({cutoff.date()}) would leave {max(0, (cutoff - first).days)} days "
        f"to train on (at least {MIN_TRAINING_DAYS} are wanted), so dealcast evaluate moves "
        "its cutoff later and tests on a shorter window, or refuses when no test snapshot "
        f"can have {h} days of follow-up",
        count=int(len(created)),
        column="created_at",
        hint=_short_history_tip(first, end, h),
    )


def _short_history_tip(first: pd.Timestamp, end: pd.Timestamp, horizon: int) -> str:
    """What to change: test_days, horizon_days, or an explicit evaluate --as-of cutoff."""
    budget = int((end - first) / pd.Timedelta(days=1)) - MIN_TRAINING_DAYS
    if budget < 14:
        return "the history is too short for any backtest: export more of it"
    earliest = first + pd.Timedelta(days=MIN_TRAINING_DAYS)
    if horizon <= budget - 7:
        return (
            f"lower evaluate.test_days to at most {budget - horizon}, or pass "
            f"dealcast evaluate --as-of a cutoff between {earliest.date()} and "
            f"{(end - pd.Timedelta(days=horizon)).date()}"
        )
    example = max(7, budget // 2 // 7 * 7)
    return (
        f"lower train.horizon_days (e.g. to {example}; list it in features.horizons_days) "
        f"and evaluate.test_days (e.g. to {budget - example}): together at most {budget} "
        f"days here; with that horizon, dealcast evaluate --as-of also takes a cutoff "
        f"between {earliest.date()} and {(end - pd.Timedelta(days=example)).date()}"
    )


def _fixed_close_delay(deals: pd.DataFrame, scope: Scope) -> None:
    """Many won (or lost) deals closed exactly N days after creation: an automatic rule."""
    delay = (deals["closed_at"] - deals["created_at"]) / pd.Timedelta(days=1)
    for label in (LOST, WON):
        rows = (deals["outcome"] == label).fillna(False).to_numpy(dtype=bool)
        whole = delay[rows].round(6)
        whole = whole[(whole == np.floor(whole)) & (whole >= MIN_DELAY_DAYS)]
        if whole.empty:
            continue
        days, n = whole.value_counts().index[0], int(whole.value_counts().iloc[0])
        if n >= DELAY_MIN_DEALS and n >= DELAY_SHARE * rows.sum():
            mask = rows & (delay.round(6) == days).to_numpy()
            scope.warning(
                "fixed_close_delay",
                f"{n} of {int(rows.sum())} {label} deals ({n / rows.sum():.0%}) were closed "
                f"exactly {days:.0f} days after created_at: closed_at looks set by an "
                "automatic rule (e.g. stale deals closed after a fixed wait), not when the "
                "deal was decided",
                mask=mask,
                column="closed_at",
                hint="a model then learns the rule's timing, not the buyer's; if you can, "
                "export when the deal really ended (last activity or stage change)",
            )


@dataclass(frozen=True)
class LateWins:
    """Wins seem logged only from ``first_month`` on: ``wins_before`` of ``closed_before``
    deals closed before it were won, ``wins_after`` of ``closed_after`` since."""

    first_month: pd.Timestamp
    closed_before: int
    wins_before: int
    closed_after: int
    wins_after: int
    late: np.ndarray  # mask over the deals: wins recorded from first_month on


def late_win_logging(deals: pd.DataFrame) -> LateWins | None:
    """Almost no wins recorded before a close month, many after: wins logged late (the
    latest such month), or None. Pure; used by ``validate`` and by training, which then
    starts the history after that month (``features.start_after_late_wins``)."""
    closed = deals["closed_at"].notna().to_numpy() & deals["outcome"].notna().to_numpy()
    if closed.sum() < LATE_MIN_CLOSED:
        return None
    when = deals["closed_at"][closed].dt.tz_convert("UTC").dt.tz_localize(None)
    month = when.dt.year.to_numpy() * 12 + when.dt.month.to_numpy() - 1
    month = month - month.min()
    won = (deals["outcome"][closed] == WON).to_numpy()
    n = np.bincount(month)
    w = np.bincount(month, weights=won.astype(np.float64))
    n_before, w_before = np.cumsum(n)[:-1], np.cumsum(w)[:-1]
    n_after, w_after = n.sum() - n_before, w.sum() - w_before
    months_before = np.arange(1, len(n))
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (n_before >= LATE_MIN_CLOSED) & (months_before >= LATE_MIN_MONTHS)
        ok &= (w_after >= LATE_MIN_WINS) & (w_before / n_before <= LATE_RATIO * w_after / n_after)
    if not ok.any():
        return None
    k = int(np.flatnonzero(ok)[-1]) + 1  # the latest month that still qualifies
    first_month = (when.min().to_period("M") + k).start_time.tz_localize("UTC")
    mask = np.zeros(len(deals), dtype=bool)
    mask[np.flatnonzero(closed)[won & (month >= k)]] = True
    counts = (int(n_before[k - 1]), int(w_before[k - 1]), int(n_after[k - 1]), int(w_after[k - 1]))
    return LateWins(first_month, *counts, late=mask)


def _late_win_records(deals: pd.DataFrame, scope: Scope) -> None:
    """Almost no wins recorded before a close month, many after: wins logged late."""
    found = late_win_logging(deals)
    if found is None:
        return
    first_month, mask = found.first_month.strftime("%Y-%m"), found.late
    nb, wb, na, wa = found.closed_before, found.wins_before, found.closed_after, found.wins_after
    scope.warning(
        "late_win_records",
        f"{wb} of the {nb} deals closed before {first_month} were won ({wb / nb:.0%}) "
        f"against {wa} of the {na} closed since ({wa / na:.0%}): wins seem to be recorded "
        f"late (the CRM may have logged won deals only from {first_month} on)",
        mask=mask,
        column="closed_at",
        hint="a model trained on the earlier months learns that deals rarely win, so "
        "training starts a month after that (features.start_after_late_wins; the first "
        "month holds back-filled wins); better: fix closed_at of earlier wins, or choose "
        "the start yourself (features.start)",
    )
