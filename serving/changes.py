"""What changed since the last export: the first thing sales ops read each morning.

Pure: today's ranked deals, the previous export's and the CRM's deals table in; one row per
change out (:data:`COLUMNS`). A deal may have several changes (moved a stage *and* its p_win
rose); each is its own row so a spreadsheet filter on ``change`` shows one kind.

Kinds, in the order rows are listed:

- ``won`` / ``lost``: in the previous export, closed with that outcome by today's as_of;
- ``no longer open``: in the previous export, neither open today nor closed as won or lost
  (a deal deleted from the CRM, or one whose outcome the CRM does not record);
- ``new``: open today, not in the previous export;
- ``stage moved``: both exports, another stage;
- ``p_win up`` / ``p_win down``: both exports, p_win moved by at least ``threshold``
  (absolute, e.g. 0.10 = ten points).

Within a kind, rows follow today's rank (``rank_now``; closed and gone deals have none and
follow their previous rank).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS: tuple[str, ...] = (
    "change",
    "deal_id",
    "deal_name",
    "owner_id",
    "stage_before",
    "stage_now",
    "p_win_before",
    "p_win_now",
    "p_win_change",
    "amount",
    "rank_now",
    "previous_as_of",
)
KINDS: tuple[str, ...] = (
    "won",
    "lost",
    "no longer open",
    "new",
    "stage moved",
    "p_win up",
    "p_win down",
)
#: Least share of a previous export's deals the CRM must still hold for that export to be
#: of this CRM (below it, it is another CRM's and nothing is compared).
SAME_CRM_SHARE = 0.5


def of_this_crm(previous: pd.DataFrame, deals: pd.DataFrame) -> bool:
    """Whether a previous export is of the CRM whose ``deals`` table is given: at least
    :data:`SAME_CRM_SHARE` of its deal ids are in it. An empty export is of any CRM."""
    if previous.empty:
        return True
    known = previous["deal_id"].astype("str").isin(deals["deal_id"].astype("str"))
    return bool(known.mean() >= SAME_CRM_SHARE)


def export_changes(
    current: pd.DataFrame,
    previous: pd.DataFrame,
    *,
    deals: pd.DataFrame,
    won_label: str,
    lost_label: str,
    threshold: float,
) -> pd.DataFrame:
    """The changes from ``previous`` to ``current`` (both prioritised-leads tables with
    ``deal_id``, ``owner_id``, ``stage``, ``p_win``, ``amount``, ``rank`` and ``as_of``).

    ``deals`` is the CRM's deals table as of today (``deal_id``, ``outcome``): it tells a
    deal that left the open pipeline because it was won from one that was lost. The
    frame's ``attrs["threshold"]`` keeps ``threshold`` (for whoever shows the list).
    """
    now = _keyed(current)
    before = _keyed(previous)
    since = _as_of(previous)
    both = now.index.intersection(before.index)
    rows = [
        _gone(before, now, deals, won_label=won_label, lost_label=lost_label),
        _frame("new", now.loc[now.index.difference(before.index, sort=False)], None),
        _moved(before.loc[both], now.loc[both]),
        _p_win(before.loc[both], now.loc[both], threshold=threshold),
    ]
    out = pd.concat([r for r in rows if len(r)], ignore_index=True) if any(map(len, rows)) else None
    if out is None:
        empty = _empty()
        empty.attrs["threshold"] = threshold
        return empty
    out["previous_as_of"] = since
    order = out["change"].map({k: i for i, k in enumerate(KINDS)})
    out = out.assign(_k=order).sort_values(["_k", "_order", "deal_id"], kind="stable")
    out = out.reset_index(drop=True)[list(COLUMNS)]
    out.attrs["threshold"] = threshold
    return out


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    cols = ["deal_id", "deal_name", "owner_id", "stage", "p_win", "amount", "rank"]
    out = frame.reindex(columns=cols).copy()
    out["deal_id"] = out["deal_id"].astype("str")
    return out.drop_duplicates("deal_id").set_index("deal_id")


def _as_of(frame: pd.DataFrame):
    if "as_of" in frame and len(frame):
        return pd.Timestamp(frame["as_of"].iloc[0])
    return pd.NaT


def _frame(kind: str, now: pd.DataFrame | None, before: pd.DataFrame | None) -> pd.DataFrame:
    """Rows of one kind from the deals' rows today (``now``) and/or in the previous export."""
    base = now if now is not None else before
    ids = base.index
    n = len(ids)

    def col(frame, name):
        if frame is None:
            return np.full(n, np.nan) if name in ("p_win", "rank") else [None] * n
        return frame.loc[ids, name].to_numpy()

    p_before = np.asarray(col(before, "p_win"), float)
    p_now = np.asarray(col(now, "p_win"), float)
    return pd.DataFrame(
        {
            "change": [kind] * n,
            "deal_id": ids.to_numpy(dtype=object),
            "deal_name": base["deal_name"].to_numpy(),
            "owner_id": base["owner_id"].to_numpy(),
            "stage_before": col(before, "stage"),
            "stage_now": col(now, "stage"),
            "p_win_before": p_before,
            "p_win_now": p_now,
            "p_win_change": p_now - p_before,
            "amount": base["amount"].to_numpy(float),
            "rank_now": np.asarray(col(now, "rank"), float),
            "_order": np.asarray(col(now if now is not None else before, "rank"), float),
        }
    )


def _gone(before, now, deals: pd.DataFrame, *, won_label: str, lost_label: str) -> pd.DataFrame:
    left = before.loc[before.index.difference(now.index, sort=False)]
    if left.empty:
        return _frame("won", left, None)
    outcome = deals.assign(deal_id=deals["deal_id"].astype("str")).drop_duplicates("deal_id")
    outcome = outcome.set_index("deal_id")["outcome"].reindex(left.index).astype("object")
    kinds = {won_label: "won", lost_label: "lost"}
    parts = []
    for label in (won_label, lost_label, None):
        mask = outcome.isin([label]) if label else ~outcome.isin([won_label, lost_label])
        kind = kinds.get(label, "no longer open")
        frame = _frame(kind, None, left.loc[mask.to_numpy()])
        frame["stage_now"] = kind if label else None
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def _moved(before: pd.DataFrame, now: pd.DataFrame) -> pd.DataFrame:
    a, b = before["stage"].astype("object"), now["stage"].astype("object")
    differs = (a != b) & ~(a.isna() & b.isna())
    ids = now.index[differs.to_numpy()]
    return _frame("stage moved", now.loc[ids], before.loc[ids])


def _p_win(before: pd.DataFrame, now: pd.DataFrame, *, threshold: float) -> pd.DataFrame:
    # rounded as the export prints p_win (0.7 - 0.5 is 0.19999999999999996 in floats)
    delta = np.round(now["p_win"].to_numpy(float) - before["p_win"].to_numpy(float), 6)
    up = now.index[delta >= threshold]
    down = now.index[delta <= -threshold]
    return pd.concat(
        [
            _frame("p_win up", now.loc[up], before.loc[up]),
            _frame("p_win down", now.loc[down], before.loc[down]),
        ],
        ignore_index=True,
    )


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in COLUMNS})


def change_counts(changes: pd.DataFrame) -> dict[str, int]:
    """Rows per kind, every kind listed (0 when none), in :data:`KINDS` order."""
    counts = changes["change"].value_counts() if len(changes) else pd.Series(dtype=int)
    return {k: int(counts.get(k, 0)) for k in KINDS}
