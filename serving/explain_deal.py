"""One deal explained: what a rep or a manager asks about a single deal.

Pure: a loaded CRM, the champion's two estimators and explicit feature settings in; a
:class:`DealExplanation` out. It holds

- the deal's p_win (same meaning as the export: P(won within ``horizon_days``)), the
  stage-table baseline's p_win for the same deal, and the next-state probabilities
  (made consistent with p_win as in the export);
- **every** driver of p_win, up and down, with the feature value behind its phrase and its
  contribution in log-odds (the export shows only the top few);
- the history: p_win, the baseline and the most likely next state at past snapshots
  (every ``step_days`` back from ``as_of`` while the deal was open, at most ``points``),
  each computed with only what was known at that snapshot, by today's model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from features.build import build_features
from models.explain import catalogue_meanings, drivers_from
from models.next_stage import consistent_with_close

#: Drivers below this |log-odds| are counted, not listed, in the text explanation.
SHOWN_EFFECT = 0.005


class UnknownDealError(ValueError):
    """The deal id is not in the CRM, or the deal was not open at the moment asked."""


class DealNotInCRMError(UnknownDealError):
    """The deal id is not in the CRM at all (the API's 404)."""


class DealClosedError(UnknownDealError):
    """The deal closed at or before the moment asked (an earlier moment explains it)."""


@dataclass(frozen=True)
class DealExplanation:
    """See the module docstring; frames are empty when there is nothing to show."""

    deal_id: str
    as_of: pd.Timestamp
    stage: str | None
    p_win: float
    p_win_stage_table: float
    next_stage: pd.Series  # state -> probability, highest first
    drivers: pd.DataFrame  # direction, rank, feature, value, contribution, phrase
    history: pd.DataFrame  # as_of, stage, p_win, p_win_stage_table, next_stage, p_next_stage
    names: dict[str, str] = field(default_factory=dict)  # deal, account, owner (when known)

    def lines(self, *, min_effect: float = SHOWN_EFFECT) -> list[str]:
        """The explanation as plain text lines (the CLI prints these); drivers moving the
        log-odds by less than ``min_effect`` are counted, not listed."""
        named = "; ".join(f"{k} {v}" for k, v in self.names.items())
        out = [
            f"deal {self.deal_id}"
            + (f" ({named})" if named else "")
            + f" as of {self.as_of}: stage {self.stage or 'unknown'}",
            f"p_win {self.p_win:.3f}  (stage table alone: {self.p_win_stage_table:.3f})",
        ]
        if len(self.next_stage):
            nxt = ", ".join(f"{s} {p:.0%}" for s, p in self.next_stage.head(3).items())
            out.append(f"next state: {nxt}")
        for direction, title in (("up", "raising p_win"), ("down", "lowering p_win")):
            rows = self.drivers[self.drivers["direction"] == direction]
            big = rows[rows["contribution"].abs() >= min_effect]
            out.append(f"{title} (log-odds):" if len(rows) else f"{title}: none")
            out += [f"  {r.phrase}  ({r.contribution:+.2f})" for r in big.itertuples()]
            if len(rows) > len(big):
                out.append(f"  and {len(rows) - len(big)} more with little effect")
        if len(self.history):
            out.append("history (p_win / stage table / next state):")
            for r in self.history.itertuples():
                out.append(
                    f"  {pd.Timestamp(r.as_of).date()}  {r.stage or '-':<12} {r.p_win:.3f} / "
                    f"{r.p_win_stage_table:.3f} / {r.next_stage or '-'}"
                )
        return out


def explain_deal(
    data: CRMData,
    deal_id: str,
    *,
    close,
    next_stage,
    funnel: Funnel,
    as_of: pd.Timestamp,
    windows_days: tuple[int, ...],
    trend_days: int,
    recency_channels: tuple[str, ...],
    prior_strength: float,
    step_days: int,
    points: int,
) -> DealExplanation:
    """Explain ``deal_id`` at ``as_of`` (see the module docstring).

    Raises :class:`UnknownDealError` when the deal is not in the CRM or not open at
    ``as_of`` (the message says which, with the deal's dates).
    """
    dates = _history_dates(data, deal_id, as_of=as_of, step_days=step_days, points=points)
    settings = dict(funnel=funnel, windows_days=windows_days, trend_days=trend_days,
                    recency_channels=recency_channels, prior_strength=prior_strength)  # fmt: skip
    rows = build_features(
        data, as_of_dates=pd.DatetimeIndex(dates), deal_ids=(deal_id,), **settings
    ).reset_index(drop=True)
    rows = rows.sort_values("as_of", kind="stable").reset_index(drop=True)
    if rows.empty or pd.Timestamp(rows["as_of"].iloc[-1]) != as_of:
        raise UnknownDealError(f"deal {deal_id!r} is not open at {as_of}")
    p = np.asarray(close.predict_proba(rows)[:, 1], float)
    base = np.asarray(close.predict_baseline(rows), float)
    nxt = _next(next_stage, rows, p)
    now = rows.iloc[[-1]].reset_index(drop=True)
    return DealExplanation(
        deal_id=deal_id,
        as_of=as_of,
        stage=_stage(now),
        p_win=float(p[-1]),
        p_win_stage_table=float(base[-1]),
        next_stage=(
            nxt.iloc[-1].sort_values(ascending=False) if nxt is not None else pd.Series(dtype=float)
        ),  # fmt: skip
        drivers=_all_drivers(close, now),
        history=pd.DataFrame(
            {
                "as_of": rows["as_of"].to_numpy(),
                "stage": [_stage(rows.iloc[[i]]) for i in range(len(rows))],
                "p_win": p,
                "p_win_stage_table": base,
                "next_stage": (
                    nxt.idxmax(axis=1).to_numpy() if nxt is not None else [None] * len(rows)
                ),  # fmt: skip
                "p_next_stage": nxt.max(axis=1).to_numpy() if nxt is not None else np.nan,
            }
        ),
        names=_names(data, deal_id),
    )


def _history_dates(
    data: CRMData, deal_id: str, *, as_of: pd.Timestamp, step_days: int, points: int
) -> list[pd.Timestamp]:
    deals = data.deals
    match = deals[deals["deal_id"].astype("str") == str(deal_id)]
    if match.empty:
        raise DealNotInCRMError(f"deal {deal_id!r} is not in the CRM's deals table")
    created = pd.Timestamp(match["created_at"].iloc[0])
    closed = match["closed_at"].iloc[0] if "closed_at" in match else None
    if as_of < created:
        raise UnknownDealError(f"deal {deal_id!r} was created at {created}, after {as_of}")
    if closed is not None and pd.notna(closed) and pd.Timestamp(closed) <= as_of:
        raise DealClosedError(
            f"deal {deal_id!r} closed at {closed} ({match['outcome'].iloc[0]}), before "
            f"{as_of}: it can be explained only at a moment while it was open"
        )
    dates = [as_of - pd.Timedelta(days=step_days * k) for k in range(points)]
    return sorted(d for d in dates if d >= created)


def _names(data: CRMData, deal_id: str) -> dict[str, str]:
    """The deal's, its account's and its owner's names, where the CRM has them."""
    deal = data.deals[data.deals["deal_id"].astype("str") == str(deal_id)].iloc[0]
    out = {"deal": deal.get("name"), "account": None, "owner": deal.get("owner_name")}
    accounts = data.accounts
    if accounts is not None and "name" in accounts and pd.notna(deal.get("account_id")):
        hit = accounts.loc[accounts["account_id"].astype("str") == str(deal["account_id"]), "name"]
        out["account"] = hit.iloc[0] if len(hit) else None
    return {k: str(v) for k, v in out.items() if v is not None and not pd.isna(v)}


def _next(model, rows: pd.DataFrame, p_win: np.ndarray) -> pd.DataFrame | None:
    if model is None:
        return None
    return consistent_with_close(model.predict_proba(rows).reset_index(drop=True), p_win)


def _stage(row: pd.DataFrame) -> str | None:
    if "stage__current" not in row:
        return None
    value = row["stage__current"].iloc[0]
    return None if pd.isna(value) else str(value)


def _all_drivers(close, row: pd.DataFrame) -> pd.DataFrame:
    """Every feature pushing this deal's score, each way, with its phrase."""
    columns = ["direction", "rank", "feature", "value", "contribution", "phrase"]
    if not close.explainable:
        return pd.DataFrame(columns=columns)
    contrib, matrix = close.contributions(row)
    meanings = catalogue_meanings(list(matrix.columns))
    drivers = drivers_from(contrib, matrix, top_n=matrix.shape[1], meanings=meanings)
    return drivers[columns].reset_index(drop=True)
