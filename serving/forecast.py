"""Revenue forecast per month and quarter with a P10/P50/P90 range (pure: frames in, frames out).

Revenue won in a period = **already won** (won deals closed in [period start, as_of]) +
**open pipeline** + **new deals** (not yet created at as_of), each shown separately.

- *Open pipeline*: P(deal won in period k) comes from the close model's own curve of P(won
  by day d after as_of) (:func:`curve_probabilities`: ``won_<d>d`` columns, linear between
  the model's interval ends, nothing after the last), so forecast and export agree. For a
  close model without curves the older rule applies: ``p_win`` x the share of
  within-H won revenue (amount-weighted: big deals close slower) that closed in period k's
  window, taken from the empirical days-to-win of past snapshots **in the deal's current
  stage** whose H-day outcome is known at as_of
  (``t + H <= as_of``), shrunk to the all-stage distribution with weight ``min_stage_wins``
  wins: ``(n_s * share_s + m * share_all) / (n_s + m)``. Periods (or parts of them) more than
  H days after as_of get nothing from open deals: ``p_win`` says nothing about them.
- *New deals*: the mean, over the ``new_deal_origins`` latest past origins ``as_of - j
  months`` whose window is fully known, of the revenue won in the same window (same offsets
  from the origin) by deals created after that origin; its sd from the same origins.
- *Distribution*: Monte Carlo. Each draw has one shared shock z ~ N(0, sigma^2) added to
  every deal's logit(p_win) (the common quarter/economy component), then deals are
  independent Bernoulli given z, amounts exact, the closing month drawn from the stage's
  timing shares. New-deal revenue is an independent lognormal draw with the historical mean
  and sd. ``forecast`` is the exact expectation without the shock (the shock leaves the
  median of each deal's logit unchanged); P10/P50/P90 are the quantiles of the draws.
- *sigma* (:func:`shared_shock_sigma`): the between-period spread of logit(win rate among
  deals closed in the period), minus its binomial sampling part (method of moments); months
  are drawn with the between-month sigma, quarters with the between-quarter one.

Deals without an amount count as 0. Months are calendar months (UTC), quarters calendar
quarters; the first of each contains as_of.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd

from serving.calendar_clock import warp

ALL = "(all)"
DAY = pd.Timedelta(days=1)
QUANTILES = (0.1, 0.5, 0.9)
#: New-deal revenue follows the number of deals created in this many days (growth).
VOLUME_DAYS = 91


@dataclass(frozen=True)
class Period:
    """A forecast period ``[start, end)``; ``kind`` is ``month`` or ``quarter``."""

    label: str
    kind: str
    start: pd.Timestamp
    end: pd.Timestamp


def month_periods(as_of: pd.Timestamp, n: int) -> list[Period]:
    """``n`` calendar months, the first containing ``as_of``."""
    first = as_of.normalize().replace(day=1)
    starts = [first + pd.DateOffset(months=k) for k in range(n + 1)]
    return [Period(s.strftime("%Y-%m"), "month", s, e) for s, e in pairwise(starts)]


def quarter_periods(as_of: pd.Timestamp, n: int) -> list[Period]:
    """``n`` calendar quarters, the first containing ``as_of``."""
    first = quarter_start(as_of)
    starts = [first + pd.DateOffset(months=3 * k) for k in range(n + 1)]
    return [
        Period(f"{s.year}-Q{(s.month - 1) // 3 + 1}", "quarter", s, e) for s, e in pairwise(starts)
    ]


def grid_for(periods: list[Period], as_of: pd.Timestamp) -> list[Period]:
    """The calendar months covering every period (open-pipeline draws live on this grid)."""
    last = max(p.end for p in periods)
    n = 0
    while month_periods(as_of, n + 1)[-1].end <= last:
        n += 1
    return month_periods(as_of, max(n, 1))


def stage_at(
    deal_ids: np.ndarray, times: pd.DatetimeIndex, history: pd.DataFrame | None
) -> np.ndarray:
    """The last stage each deal entered at or before each time; ``(all)`` if unknown."""
    out = np.full(len(deal_ids), ALL, dtype=object)
    if history is None or history.empty or len(deal_ids) == 0:
        return out
    left = pd.DataFrame({"deal_id": np.asarray(deal_ids, dtype=object), "t": times, "i": 0})
    left["i"] = np.arange(len(left))
    right = pd.DataFrame(
        {
            "deal_id": history["deal_id"].astype("object").to_numpy(),
            "t": history["entered_at"].to_numpy(),
            "stage": history["stage"].astype("object").to_numpy(),
        }
    ).dropna(subset=["t"])
    right["t"] = right["t"].astype(left["t"].dtype)
    merged = pd.merge_asof(
        left.sort_values("t"), right.sort_values("t"), on="t", by="deal_id", direction="backward"
    )
    merged = merged.sort_values("i")
    stage = merged["stage"].to_numpy(dtype=object)
    return np.where(pd.isna(stage), ALL, stage).astype(object)


def open_at(deals: pd.DataFrame, t: pd.Timestamp) -> np.ndarray:
    """Boolean mask of deals created at or before ``t`` and not closed by then."""
    closed = deals["closed_at"]
    return ((deals["created_at"] <= t) & (closed.isna() | (closed > t))).to_numpy(bool)


def won_mask(deals: pd.DataFrame, won_label: str) -> np.ndarray:
    return (deals["outcome"].astype("object") == won_label).to_numpy(bool) & deals[
        "closed_at"
    ].notna().to_numpy(bool)


def amounts(deals: pd.DataFrame) -> np.ndarray:
    """Deal amounts as floats, missing as 0."""
    return np.nan_to_num(pd.to_numeric(deals["amount"], errors="coerce").to_numpy(float))


def past_wins(
    deals: pd.DataFrame,
    history: pd.DataFrame | None,
    *,
    as_of: pd.Timestamp,
    horizon_days: int,
    won_label: str,
    freq_days: int = 7,
) -> pd.DataFrame:
    """Days from snapshot to win, with the stage at the snapshot, of every within-H win.

    Snapshots every ``freq_days`` from the first creation up to ``as_of - H``, so each
    snapshot's H-day outcome is known at as_of; only wins within H days are kept.
    """
    last = as_of - horizon_days * DAY
    first = deals["created_at"].min()
    if pd.isna(first) or first > last:
        return pd.DataFrame({"stage": pd.Series(dtype=object), "days": pd.Series(dtype=float)})
    won = won_mask(deals, won_label)
    ids_all = deals["deal_id"].astype("object").to_numpy()
    closed = deals["closed_at"]
    ids, times, days, amount = [], [], [], []
    amount_all = amounts(deals)
    for t in pd.date_range(first.normalize(), last, freq=f"{freq_days}D"):
        hit = open_at(deals, t) & won & (closed <= t + horizon_days * DAY).to_numpy(bool)
        ids.append(ids_all[hit])
        times.append(np.full(hit.sum(), t.value, dtype="int64"))
        days.append(((closed[hit] - t) / DAY).to_numpy(float))
        amount.append(amount_all[hit])
    if not ids:
        return pd.DataFrame({"stage": pd.Series(dtype=object), "days": pd.Series(dtype=float)})
    at = pd.DatetimeIndex(np.concatenate(times).astype("datetime64[ns]")).tz_localize("UTC")
    stage = stage_at(np.concatenate(ids), at, history)
    return pd.DataFrame(
        {"stage": stage, "days": np.concatenate(days), "amount": np.concatenate(amount)}
    )


def timing_shares(
    wins: pd.DataFrame,
    windows: np.ndarray,
    *,
    min_stage_wins: float,
) -> dict[str, np.ndarray]:
    """Stage -> share of within-H won revenue closing in each window ``[a, b)`` days from as_of.

    Shares are weighted by amount when ``wins`` has an ``amount`` column (big deals close
    slower, and it is revenue that is forecast; all-zero amounts fall back to counts).
    Every stage's shares are shrunk to the all-stage shares (``ALL``) with weight
    ``min_stage_wins`` wins. Raises ``ValueError`` when there is no past win at all.
    """
    if wins.empty:
        raise ValueError("no past within-horizon win to learn when deals close")
    weight = wins["amount"].to_numpy(float) if "amount" in wins else np.ones(len(wins))
    if weight.sum() <= 0:
        weight = np.ones(len(wins))

    def shares(d: np.ndarray, w: np.ndarray) -> np.ndarray:
        w = w if w.sum() > 0 else np.ones(len(w))
        return np.array([np.sum(w * ((d >= a) & (d < b))) / w.sum() for a, b in windows])

    days = wins["days"].to_numpy(float)
    overall = shares(days, weight)
    out = {ALL: overall}
    for stage in sorted(set(wins["stage"].astype("object")) - {ALL}):
        pick = (wins["stage"].astype("object") == stage).to_numpy(bool)
        n = pick.sum()
        out[str(stage)] = (n * shares(days[pick], weight[pick]) + min_stage_wins * overall) / (
            n + min_stage_wins
        )
    return out


def windows_of(periods: list[Period], as_of: pd.Timestamp, horizon_days: int) -> np.ndarray:
    """Each period as ``[a, b)`` days after as_of, clipped to ``[0, H]``."""
    a = np.array([max((p.start - as_of) / DAY, 0.0) for p in periods])
    b = np.array([(p.end - as_of) / DAY for p in periods])
    return np.column_stack([np.minimum(a, horizon_days), np.clip(b, 0, horizon_days + 1e-9)])


def already_won(
    deals: pd.DataFrame, periods: list[Period], *, as_of: pd.Timestamp, won_label: str
) -> np.ndarray:
    """Revenue of won deals closed in [period start, as_of] per period."""
    amount = amounts(deals)
    return np.array([amount[won_so_far(deals, p, as_of=as_of, won_label=won_label)].sum()
                     for p in periods])  # fmt: skip


def won_so_far(
    deals: pd.DataFrame, period: Period, *, as_of: pd.Timestamp, won_label: str
) -> np.ndarray:
    """Boolean mask of the deals won in [period start, as_of] (and inside the period)."""
    closed = deals["closed_at"]
    inside = (closed >= period.start) & (closed <= min(as_of, period.end - DAY * 1e-9))
    return won_mask(deals, won_label) & inside.to_numpy(bool)


def new_deal_history(
    deals: pd.DataFrame,
    periods: list[Period],
    *,
    as_of: pd.Timestamp,
    won_label: str,
    origins: int,
) -> pd.DataFrame:
    """Mean, sd and count over past origins of what deals created after them won.

    For each period the window is taken relative to as_of (``[max(start, as_of), end)``);
    past origins are ``as_of - j`` months (j = 1, 2, ...) whose window ended by as_of and
    that are not before the first deal; the ``origins`` latest are used. Each origin's
    revenue is scaled by how many more (or fewer) deals were created in the
    :data:`VOLUME_DAYS` before as_of than before that origin (bounded to [0.5, 2]): a
    growing CRM would otherwise be forecast at last year's size.
    """
    won = won_mask(deals, won_label)
    created, closed, amount = deals["created_at"], deals["closed_at"], amounts(deals)
    first = created.min()
    now = _created_before(created, as_of)
    rows = []
    for p in periods:
        a, b = max(p.start, as_of) - as_of, p.end - as_of
        values = []
        j = 1
        while len(values) < origins:
            o = as_of - pd.DateOffset(months=j)
            j += 1
            if o < first:
                break
            if o + b > as_of:
                continue
            hit = won & (created > o).to_numpy() & (closed >= o + a).to_numpy()
            hit &= (closed < o + b).to_numpy(bool)
            then = _created_before(created, o)
            growth = np.clip(now / then, 0.5, 2.0) if then > 0 and now > 0 else 1.0
            values.append(amount[hit].sum() * growth)
        v = np.asarray(values, float)
        rows.append(
            {
                "new_mean": float(v.mean()) if len(v) else 0.0,
                "new_sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                "new_origins": len(v),
            }
        )
    return pd.DataFrame(rows)


def _created_before(created: pd.Series, t: pd.Timestamp) -> int:
    """Deals created in the :data:`VOLUME_DAYS` days up to ``t``."""
    return int(((created > t - VOLUME_DAYS * DAY) & (created <= t)).sum())


def shared_shock_sigma(
    deals: pd.DataFrame, *, as_of: pd.Timestamp, won_label: str, kind: str, min_closed: int = 10
) -> float:
    """sd of the shared logit shock from the spread of win rates between calendar periods.

    ``kind`` ``month``: whole months before as_of's month; ``quarter``: whole quarters
    before as_of's quarter (a quarter's forecast shares one quarter's shock: monthly win
    rates also swing with the quarter-end rhythm, which the timing already models, and
    would make quarter ranges too wide). Periods with at least ``min_closed`` closed deals:
    the variance of logit(won / closed) minus the mean binomial variance 1 / (n r (1 - r)),
    floored at 0. Fewer than 3 such quarters: the month estimate (wider, not narrower).
    """
    month_start = as_of.normalize().replace(day=1)
    start = month_start if kind == "month" else quarter_start(as_of)
    closed = deals["closed_at"]
    done = closed.notna().to_numpy(bool) & (closed < start).to_numpy(bool)
    when = closed[done].dt
    key = when.year * 10 + when.quarter if kind == "quarter" else when.year * 100 + when.month
    key = key.to_numpy()
    won = won_mask(deals, won_label)[done]
    table = pd.DataFrame({"k": key, "w": won}).groupby("k")["w"].agg(["sum", "count"])
    table = table[table["count"] >= min_closed]
    if len(table) < 3:
        if kind == "quarter":
            return shared_shock_sigma(
                deals, as_of=as_of, won_label=won_label, kind="month", min_closed=min_closed
            )
        return 0.0
    n = table["count"].to_numpy(float)
    r = np.clip(table["sum"].to_numpy(float) / n, 0.5 / n, 1 - 0.5 / n)
    between = np.var(np.log(r / (1 - r)), ddof=1) - np.mean(1 / (n * r * (1 - r)))
    return float(np.sqrt(max(between, 0.0)))


def quarter_start(t: pd.Timestamp) -> pd.Timestamp:
    """The first day (00:00) of ``t``'s calendar quarter."""
    return t.normalize().replace(day=1, month=3 * ((t.month - 1) // 3) + 1)


CURVE_PREFIX = "won_"


def curve_days(frame: pd.DataFrame) -> tuple[list[str], np.ndarray]:
    """The ``won_<d>d`` curve columns of ``frame`` and their days, in day order."""
    cols = [c for c in frame.columns if c.startswith(CURVE_PREFIX) and c.endswith("d")]
    days = np.array([float(c[len(CURVE_PREFIX) : -1]) for c in cols])
    order = np.argsort(days)
    return [cols[i] for i in order], days[order]


def curve_probabilities(
    curves: pd.DataFrame, windows: np.ndarray, w: np.ndarray | None = None
) -> np.ndarray:
    """P(won in ``[a, b)`` days after as_of) per deal (rows) and window (columns).

    From P(won by d) at the curve's days: 0 at day 0, flat after the last day (the model
    says nothing beyond it, so nothing is counted there). In between, each interval's
    probability is shared between its days in proportion to the calendar clock ``w``
    (:func:`serving.calendar_clock.clock`: wins bunch at quarter ends), evenly without it.
    """
    cols, days = curve_days(curves)
    xs = np.r_[0.0, days]
    F = np.column_stack([np.zeros(len(curves)), curves[cols].to_numpy(float)])
    F = np.maximum.accumulate(F, axis=1)
    clock_at = warp(xs, w)

    def at(t: float) -> np.ndarray:
        if t >= xs[-1]:
            return F[:, -1]
        i = int(np.searchsorted(xs, t, side="right"))
        span = clock_at[i] - clock_at[i - 1]
        share = (warp(t, w) - clock_at[i - 1]) / span if span > 0 else 0.0
        return F[:, i - 1] + float(share) * (F[:, i] - F[:, i - 1])

    out = np.column_stack([at(b) - at(a) for a, b in windows]) if len(windows) else None
    return np.clip(out, 0.0, 1.0) if out is not None else np.zeros((len(curves), 0))


def open_pipeline(
    open_deals: pd.DataFrame,
    windows_for,
    stage_shares=None,
    w: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(P(won by the last window), per-window shares of it) of every open deal.

    With curve columns (:func:`curve_days`) the windows are ``windows_for(last curve day)``
    and the model's curve decides, timed inside its intervals by the calendar clock ``w``
    (:func:`curve_probabilities`); otherwise
    ``p_win`` x ``stage_shares(windows_for(H))``.
    """
    cols, days = curve_days(open_deals)
    if cols:
        per = curve_probabilities(open_deals, windows_for(days[-1]), w)
        total = per.sum(axis=1)
        shares = np.divide(per, total[:, None], out=np.zeros_like(per), where=total[:, None] > 0)
        return total, shares
    return open_deals["p_win"].to_numpy(float), stage_shares()
