"""Touchpoint family: how much, how recently and with whom the buyer engaged up to as_of.

A touch counts at as_of when ``occurred_at <= as_of`` (a touch stamped exactly at as_of
is known then); a ``{window}``-day window is ``(as_of - window, as_of]``. Touches with a
``deal_id`` belong to that deal. Touches with only an ``account_id`` are account-level
(web visits, webinars, ...): they count for every deal of that account and are kept in
their own ``tp__account_*`` columns rather than folded into the deal's counts, so the
model can weigh account intent and deal activity separately.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.schemas import KNOWN_CHANNELS
from features.entry import Feature, column_name
from features.point_in_time import NAT, US_PER_DAY, EventIndex, days_since, index_in, to_us
from features.snapshots import Deals, Spine

DECISION_MAKER = "decision_maker"
OTHER = "other"
#: One count column per contract channel, plus ``other`` for any channel the contract does
#: not name: the columns never depend on the data, so training and scoring always agree.
CHANNEL_COLUMNS = (*KNOWN_CHANNELS, OTHER)

CATALOG = (
    Feature(
        "tp__channel_{channel}_{window}d",
        "touchpoints",
        "number",
        "Touches of this channel on the deal in the last {window} days (as_of included): "
        "one column per contract channel (email, call, meeting, demo, webinar, web_visit, "
        "content_download, ad_click, event, social; case and spaces ignored) and 'other' "
        "for any channel the contract does not name.",
    ),
    Feature(
        "tp__touches_{window}d", "touchpoints", "number", "All deal touches, last {window} days."
    ),
    Feature("tp__touches_total", "touchpoints", "number", "All deal touches up to as_of."),
    Feature(
        "tp__days_since_last",
        "touchpoints",
        "number",
        "Days since the deal's latest touch (empty if it has none yet).",
    ),
    Feature(
        "tp__days_since_last_{channel}",
        "touchpoints",
        "number",
        "Days since the deal's latest touch of this channel (params: recency_channels, "
        "e.g. meeting, demo); empty if none yet.",
    ),
    Feature(
        "tp__inbound_share",
        "touchpoints",
        "number",
        "Share of the deal's touches with a known direction that the buyer started.",
    ),
    Feature("tp__distinct_contacts", "touchpoints", "number", "Buyer-side people touched so far."),
    Feature(
        "tp__distinct_roles",
        "touchpoints",
        "number",
        "Distinct buyer roles touched so far (decision maker, champion, finance, ...).",
    ),
    Feature(
        "tp__decision_maker_engaged",
        "touchpoints",
        "flag",
        "1 if a contact in the decision_maker role has been touched, else 0.",
    ),
    Feature(
        "tp__trend",
        "touchpoints",
        "number",
        "log2((touches in the last trend_days + 1) / (touches in the trend_days before + 1)):"
        " 0 = steady, +1 = doubled, -1 = halved.",
    ),
    Feature(
        "tp__account_touches_{window}d",
        "touchpoints",
        "number",
        "Account-level touches (no deal named) of the deal's account, last {window} days.",
    ),
    Feature(
        "tp__account_days_since_last",
        "touchpoints",
        "number",
        "Days since the account's latest account-level touch (empty if none).",
    ),
)


def touch_features(
    touches: pd.DataFrame,
    deals: Deals,
    spine: Spine,
    *,
    windows_days: tuple[int, ...],
    trend_days: int,
    recency_channels: tuple[str, ...],
) -> dict[str, object]:
    """Touchpoint columns for every spine row (see ``CATALOG``).

    Deal-level touches are sorted once by (deal, time); each spine row gets its position
    at as_of and at each look-back (as_of - N days), and every count is a difference of
    running totals between two positions.
    """
    time = to_us(touches["occurred_at"])
    latest = int(spine.at.values.max(initial=NAT))
    deal = _deal_codes(touches, deals)
    keep = relevant_rows(touches, deal, time, deals, spine, latest=latest)
    kept, deal, time = _Subset(touches, keep), deal[keep], time[keep]
    index = EventIndex(deal, time, n_groups=len(deals))
    backs = sorted({0, *windows_days, trend_days, 2 * trend_days})
    view = _Window(index, spine, backs)
    channel = Channels.of(kept.column("channel"), index.rows)
    out = _channel_counts(view, channel, windows_days)
    out.update(_totals(view, windows_days, trend_days))
    out.update(_recency(view, channel, recency_channels))
    out["tp__inbound_share"] = _inbound_share(kept, view)
    out.update(_people(kept, view))
    out.update(_account_level(kept, deal, time, deals, spine, windows_days))
    return out


class _Subset:
    """The touch rows that matter, taken one column at a time when asked for (a copy of
    the whole multi-million-row frame would double the memory for nothing)."""

    def __init__(self, frame: pd.DataFrame, rows: np.ndarray) -> None:
        self._frame, self._rows = frame, rows
        self._all = len(rows) == len(frame)

    def __contains__(self, name: str) -> bool:
        return name in self._frame

    def column(self, name: str) -> pd.Series:
        values = self._frame[name]
        return values if self._all else values.iloc[self._rows]

    def isna(self, name: str) -> np.ndarray:
        """Missing values of a column at the selected rows; all missing if it is absent."""
        if name not in self._frame:
            return np.ones(len(self._rows), dtype=bool)
        return self._frame[name].isna().to_numpy()[self._rows]

    def codes(self, name: str) -> np.ndarray:
        """Integer codes of a column's values (-1 = missing). Factorising the whole column
        and then selecting is cheaper than copying most of a string column first."""
        if len(self._rows) * 4 < len(self._frame):
            return pd.factorize(self.column(name))[0].astype(np.int64)
        return pd.factorize(self._frame[name])[0].astype(np.int64)[self._rows]

    def at(self, name: str, mask: np.ndarray) -> pd.Series:
        """The column at the selected rows where ``mask`` is true."""
        return self._frame[name].iloc[self._rows[mask]]


def relevant_rows(
    touches: pd.DataFrame,
    deal: np.ndarray,
    time: np.ndarray,
    deals: Deals,
    spine: Spine,
    *,
    latest: int,
) -> np.ndarray:
    """Rows that can count for some spine row: stamped by the last as_of, on a deal of the
    spine or (account-level) on one of their accounts. A scoring-day snapshot then
    indexes only its open deals' touches instead of the whole history."""
    in_spine = np.zeros(len(deals), dtype=bool)
    in_spine[spine.deal] = True
    by_deal = (deal >= 0) & in_spine[np.maximum(deal, 0)]
    level = _Subset(touches, np.arange(len(touches))).isna("deal_id")
    if "account_id" in touches and "account_id" in deals.frame and level.any():
        accounts = deals.frame["account_id"].iloc[np.flatnonzero(in_spine)].dropna().unique()
        level[level] = index_in(touches["account_id"][level], pd.Index(accounts)) >= 0
    else:
        level[:] = False
    return np.flatnonzero((by_deal | level) & (time != NAT) & (time <= latest))


def _deal_codes(touches: pd.DataFrame, deals: Deals) -> np.ndarray:
    """Deal position of each touch; -1 for account-level touches and unknown deals."""
    if "deal_id" not in touches:
        return np.full(len(touches), -1, dtype=np.int64)
    return deals.codes(touches["deal_id"])


class _Window:
    """Sorted deal-level touches and, per spine row, its positions at as_of - back days."""

    def __init__(self, index: EventIndex, spine: Spine, backs: list[int]) -> None:
        self.index, self.spine = index, spine
        self.start = index.start[spine.deal]
        self.pos = {b: index.position(spine.deal, spine.at.shift(-b * US_PER_DAY)) for b in backs}

    def count(self, sorted_weights: np.ndarray | None, back: int | None) -> np.ndarray:
        """Weighted touches in (as_of - back days, as_of]; ``back=None`` = since the start."""
        return self.counts(sorted_weights, [back])[0]

    def counts(
        self, sorted_weights: np.ndarray | None, backs: list[int | None]
    ) -> list[np.ndarray]:
        """:meth:`count` for several look-backs, sharing one running total."""
        if sorted_weights is None:
            prefix = None
        else:
            prefix = np.zeros(len(sorted_weights) + 1, dtype=np.int64)
            np.cumsum(sorted_weights, out=prefix[1:])
        out = []
        for back in backs:
            lo = self.start if back is None else self.pos[back]
            n = self.pos[0] - lo if prefix is None else prefix[self.pos[0]] - prefix[lo]
            out.append(n.astype(np.float64))
        return out

    def days_since_last(self, sorted_mask: np.ndarray | None) -> np.ndarray:
        """Days since the latest touch at or before as_of (of those in ``sorted_mask``)."""
        last = self.pos[0] - 1
        if sorted_mask is not None and len(sorted_mask):
            latest = np.maximum.accumulate(np.where(sorted_mask, np.arange(len(sorted_mask)), -1))
            last = np.where(last >= 0, latest[np.maximum(last, 0)], -1)
        last = np.where(last >= self.start, last, -1)
        return days_since(self.spine.at, self.index.time_at(last))


@dataclass(frozen=True)
class Channels:
    """Each sorted touch's channel, as a position in ``names`` (cleaned, lower-case snake
    case: "Web Visit" is ``web_visit``); -1 where missing."""

    code: np.ndarray
    names: list[str]

    @classmethod
    def of(cls, values: pd.Series, order: np.ndarray) -> Channels:
        codes, uniques = pd.factorize(values)
        return cls(codes.astype(np.int64)[order], [column_name(u) for u in uniques])

    def is_(self, wanted: np.ndarray) -> np.ndarray:
        """Per touch, whether its channel's name is flagged in ``wanted`` (one per name)."""
        return np.append(np.asarray(wanted, dtype=bool), False)[self.code]

    def column(self) -> np.ndarray:
        """Per touch, its count column: a contract channel, else ``other``; -1 if missing."""
        slot = [
            CHANNEL_COLUMNS.index(n) if n in KNOWN_CHANNELS else len(KNOWN_CHANNELS)
            for n in self.names
        ]
        return np.append(np.asarray(slot, dtype=np.int64), -1)[self.code]


def _channel_counts(
    view: _Window, channel: Channels, windows_days: tuple[int, ...]
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    column = channel.column()
    for c, name in enumerate(CHANNEL_COLUMNS):
        counts = view.counts(column == c, list(windows_days))
        for w, n in zip(windows_days, counts, strict=True):
            out[f"tp__channel_{name}_{w}d"] = n
    return out


def _totals(view: _Window, windows_days: tuple[int, ...], trend_days: int) -> dict[str, np.ndarray]:
    out = {f"tp__touches_{w}d": view.count(None, w) for w in windows_days}
    out["tp__touches_total"] = view.count(None, None)
    out["tp__days_since_last"] = view.days_since_last(None)
    recent = view.count(None, trend_days)
    earlier = view.count(None, 2 * trend_days) - recent
    out["tp__trend"] = np.log2((recent + 1.0) / (earlier + 1.0))
    return out


def _recency(
    view: _Window, channel: Channels, recency_channels: tuple[str, ...]
) -> dict[str, np.ndarray]:
    out = {}
    for wanted in recency_channels:
        name = column_name(wanted)
        is_it = channel.is_([n == name for n in channel.names])
        out[f"tp__days_since_last_{name}"] = view.days_since_last(is_it)
    return out


def _inbound_share(touches: _Subset, view: _Window) -> np.ndarray:
    if "direction" not in touches:
        return np.full(len(view.spine), np.nan)
    direction = index_in(touches.column("direction"), ["inbound", "outbound"])[view.index.rows]
    inbound = view.count(direction == 0, None)
    both = view.count(direction >= 0, None)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(both > 0, inbound / both, np.nan)


def _people(touches: _Subset, view: _Window) -> dict[str, np.ndarray]:
    """Distinct contacts and roles: each (deal, person) pair counts from its first touch."""
    out: dict[str, np.ndarray] = {}
    deal = view.index.groups
    for column, name in (("contact_id", "contacts"), ("contact_role", "roles")):
        if column in touches:
            code = touches.codes(column)[view.index.rows]
            first = ~pd.Series(deal * np.int64(code.max(initial=0) + 1) + code).duplicated()
            out[f"tp__distinct_{name}"] = view.count(first.to_numpy() & (code >= 0), None)
    if "contact_role" in touches:
        is_dm = index_in(touches.column("contact_role"), [DECISION_MAKER])[view.index.rows] == 0
        out["tp__decision_maker_engaged"] = (view.count(is_dm, None) > 0).astype(np.float64)
    return out


def _account_level(
    touches: _Subset,
    deal: np.ndarray,
    time: np.ndarray,
    deals: Deals,
    spine: Spine,
    windows_days: tuple[int, ...],
) -> dict[str, np.ndarray]:
    """Counts and recency of touches naming only an account, for each of its deals."""
    if "account_id" in deals.frame:
        accounts = pd.Index(deals.frame["account_id"].dropna().astype("str").unique())
        of_deal = index_in(deals.frame["account_id"], accounts)
    else:
        accounts, of_deal = pd.Index([], dtype="str"), np.full(len(deals), -1)
    level = touches.isna("deal_id")
    code = np.full(len(level), -1, dtype=np.int64)
    if "account_id" in touches and level.any():
        code[level] = index_in(touches.at("account_id", level), accounts)
    index = EventIndex(code, time, n_groups=len(accounts))
    group = of_deal[spine.deal].astype(np.int64)
    now = index.count_le(group, spine.at)
    out = {
        f"tp__account_touches_{w}d": (
            now - index.count_le(group, spine.at.shift(-w * US_PER_DAY))
        ).astype(np.float64)
        for w in windows_days
    }
    out["tp__account_days_since_last"] = days_since(
        spine.at, index.time_at(index.last_le(group, spine.at))
    )
    return out
