"""Cross-table rules (all warnings): references, event times against the deal, history.

Each rule runs only when the tables and columns it needs are present. Rows are joined to
their deal (or account) once, by position (:class:`Links`); a repeated id joins to its
first row (repeats are already ``duplicate_id`` errors). Everything is vectorised.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from crm.provenance import Scope, examples, plural
from crm.schemas import LOST, WON

#: (table, column) -> (referenced table, key) for every reference of the contract.
REFERENCES: dict[tuple[str, str], tuple[str, str]] = {
    ("deals", "account_id"): ("accounts", "account_id"),
    ("stage_history", "deal_id"): ("deals", "deal_id"),
    ("touchpoints", "deal_id"): ("deals", "deal_id"),
    ("touchpoints", "account_id"): ("accounts", "account_id"),
}


class Links:
    """Row positions of referenced rows, computed once per reference."""

    def __init__(self, tables: Mapping[str, pd.DataFrame]) -> None:
        self.tables = tables
        self._cache: dict[tuple[str, str], np.ndarray | None] = {}

    def positions(self, table: str, column: str) -> np.ndarray | None:
        """For each row of ``table``, the position of the row its ``column`` references.

        -1 where the id is missing or unknown; None when either side is absent.
        """
        if (table, column) not in self._cache:
            target, key = REFERENCES[(table, column)]
            frame, other = self.tables.get(table), self.tables.get(target)
            present = frame is not None and other is not None
            ok = present and column in frame and key in other
            self._cache[(table, column)] = (
                first_positions(frame[column], other[key]) if ok else None
            )
        return self._cache[(table, column)]

    def take(self, table: str, column: str, target_column: str) -> pd.Series | None:
        """``target_column`` of the referenced row for each row of ``table`` (NA if none)."""
        pos = self.positions(table, column)
        if pos is None:
            return None
        target = self.tables[REFERENCES[(table, column)][0]]
        if target_column not in target:
            return None
        if len(target) == 0:
            return pd.Series(np.nan, index=range(len(pos))).astype(target[target_column].dtype)
        values = target[target_column].iloc[np.maximum(pos, 0)].reset_index(drop=True)
        return values.where(pos >= 0)


def first_positions(keys: pd.Series, target: pd.Series) -> np.ndarray:
    """Position in ``target`` of the first row equal to each key; -1 if none or missing."""
    first = (target.notna() & ~target.duplicated()).to_numpy()
    where = np.flatnonzero(first)
    given = keys.notna().to_numpy()
    out = np.full(len(keys), -1, dtype=np.int64)
    if given.any() and len(where):
        hit = pd.Index(target[first]).get_indexer(keys[given])
        out[given] = np.where(hit >= 0, where[np.maximum(hit, 0)], -1)
    return out


def check_relations(tables: Mapping[str, pd.DataFrame], scopes: Mapping[str, Scope]) -> None:
    """Run every cross-table rule on the typed, single-table-checked frames."""
    links = Links(tables)
    for (table, column), (target, _) in REFERENCES.items():
        pos = links.positions(table, column)
        if pos is not None:
            _unknown_reference(tables[table][column], pos, target, scopes[table])
    for name, time in (("stage_history", "entered_at"), ("touchpoints", "occurred_at")):
        if name in tables and time in tables[name]:
            _after_close(tables[name], time, links.take(name, "deal_id", "closed_at"), scopes)
    history, deals = tables.get("stage_history"), tables.get("deals")
    if history is not None and deals is not None and "deal_id" in history and "deal_id" in deals:
        _no_history(history, deals, scopes["deals"])
        _before_created(history, links.take("stage_history", "deal_id", "created_at"), scopes)
        if {"stage", "entered_at"} <= set(history.columns):
            _outcome_mismatch(history, deals, scopes["deals"])
            _reopened(history, deals, scopes["deals"])
    if "touchpoints" in tables and "account_id" in tables["touchpoints"]:
        expected = links.take("touchpoints", "deal_id", "account_id")
        _account_mismatch(tables["touchpoints"]["account_id"], expected, scopes)


def _unknown_reference(values: pd.Series, pos: np.ndarray, target: str, scope: Scope) -> None:
    unknown = values.notna().to_numpy() & (pos < 0)
    if unknown.any():
        scope.warning(
            "unknown_reference",
            f"{plural(int(unknown.sum()), 'row', 'name')} a {values.name} that {target} does "
            f"not have, e.g. {examples(values[unknown])}",
            mask=unknown,
            column=str(values.name),
            hint=f"export the matching {target} rows, or fix the ids (they are compared "
            "exactly, case and leading zeros included)",
        )


def _after_close(
    frame: pd.DataFrame, time: str, closed: pd.Series | None, scopes: Mapping[str, Scope]
) -> None:
    if closed is None:
        return
    late = (frame[time].reset_index(drop=True) > closed).to_numpy()
    if late.any():
        first = int(np.flatnonzero(late)[0])
        scopes["stage_history" if time == "entered_at" else "touchpoints"].warning(
            "event_after_close",
            f"{plural(int(late.sum()), 'row', 'are')} stamped after their deal's closed_at, "
            f"e.g. deal {frame['deal_id'].iloc[first]!r} at {frame[time].iloc[first]} (closed "
            f"{closed.iloc[first]})",
            mask=late,
            column=time,
            hint="check the timestamps or the deal's closed_at; features as of a time "
            "use only what was known then",
        )


def _no_history(history: pd.DataFrame, deals: pd.DataFrame, scope: Scope) -> None:
    seen = deals["deal_id"].isin(history["deal_id"].dropna().unique()).to_numpy()
    bare = ~seen & deals["deal_id"].notna().to_numpy()
    if bare.any():
        scope.warning(
            "no_stage_history",
            f"{plural(int(bare.sum()), 'deal', 'have')} no stage_history rows, so their "
            "stage over time is unknown",
            mask=bare,
            column="deal_id",
            hint="export the stage history of those deals, or expect stage features to be "
            "missing for them",
        )


def _before_created(
    history: pd.DataFrame, created: pd.Series | None, scopes: Mapping[str, Scope]
) -> None:
    if created is None or "entered_at" not in history:
        return
    early = (history["entered_at"].reset_index(drop=True) < created).to_numpy()
    if early.any():
        scopes["stage_history"].warning(
            "stage_before_created",
            f"{plural(int(early.sum()), 'row', 'enter')} a stage before their deal's created_at",
            mask=early,
            column="entered_at",
            hint="check entered_at and the deal's created_at",
        )


def _outcome_mismatch(history: pd.DataFrame, deals: pd.DataFrame, scope: Scope) -> None:
    """Closed deals whose last stage is not their outcome; open deals ending won/lost."""
    ordered = history.dropna(subset=["deal_id", "entered_at"]).sort_values(
        ["deal_id", "entered_at"], kind="stable"
    )
    last = ordered.drop_duplicates(subset=["deal_id"], keep="last").set_index("deal_id")
    last_stage = deals["deal_id"].map(last["stage"]).reset_index(drop=True)
    outcome = deals["outcome"] if "outcome" in deals else pd.Series(np.nan, index=deals.index)
    closed = deals["closed_at"].notna() if "closed_at" in deals else outcome.notna()
    known = outcome.isin((WON, LOST)).to_numpy()
    has_last = last_stage.notna().to_numpy()
    wrong_end = known & has_last & (last_stage.to_numpy() != outcome.to_numpy())
    reopened = (~closed & outcome.isna()).to_numpy() & last_stage.isin((WON, LOST)).to_numpy()
    mismatch = wrong_end | reopened
    if mismatch.any():
        first = int(np.flatnonzero(mismatch)[0])
        state = outcome.iloc[first] if wrong_end[first] else "open"
        scope.warning(
            "outcome_stage_mismatch",
            f"{plural(int(mismatch.sum()), 'deal', 'disagree')} with their last stage row, "
            f"e.g. deal {deals['deal_id'].iloc[first]!r} is {state} but last entered "
            f"{last_stage.iloc[first]!r}",
            mask=mismatch,
            column="outcome",
            hint="a closed deal's last stage row should be its outcome (won/lost); an open "
            "deal's should be an open stage",
        )


def _reopened(history: pd.DataFrame, deals: pd.DataFrame, scope: Scope) -> None:
    """Deals whose stage history leaves won/lost for a later stage (docs/data-contract.md,
    "Reopened deals"): counted, with how many are closed again and how many are open."""
    ordered = history.dropna(subset=["deal_id", "entered_at"]).sort_values(
        ["deal_id", "entered_at"], kind="stable"
    )
    following = ordered.groupby("deal_id", sort=False)["stage"].shift(-1)
    left = ordered[ordered["stage"].isin((WON, LOST)).to_numpy() & following.notna().to_numpy()]
    if left.empty:
        return
    mask = deals["deal_id"].isin(left["deal_id"].unique()).to_numpy()
    if not mask.any():
        return
    first = left.iloc[0]
    again = ordered[ordered["deal_id"] == first["deal_id"]]
    reopen = again[again["entered_at"] > first["entered_at"]].iloc[0]
    outcome = deals["outcome"] if "outcome" in deals else pd.Series(np.nan, index=deals.index)
    closed_again = int(outcome[mask].isin((WON, LOST)).sum())
    scope.warning(
        "reopened_deal",
        f"{int(mask.sum())} deal{' was' if mask.sum() == 1 else 's were'} reopened after a close: "
        f"{closed_again} closed again, {int(mask.sum()) - closed_again} open now; e.g. deal "
        f"{first['deal_id']!r} {first['stage']} {first['entered_at']:%Y-%m-%d}, reopened "
        f"{reopen['entered_at']:%Y-%m-%d} ({reopen['stage']!r})",
        mask=mask,
        column="deal_id",
        hint="a reopened deal keeps its id; its outcome and closed_at are the final ones; "
        "between a close and the reopening its stage is won/lost (its stage rows say so); "
        "see docs/data-contract.md, Reopened deals",
    )


def _account_mismatch(
    given: pd.Series, expected: pd.Series | None, scopes: Mapping[str, Scope]
) -> None:
    if expected is None:
        return
    both = given.notna().to_numpy() & expected.notna().to_numpy()
    differ = both.copy()
    differ[both] = given.to_numpy(object)[both] != expected.to_numpy(object)[both]
    if differ.any():
        scopes["touchpoints"].warning(
            "account_mismatch",
            f"{plural(int(differ.sum()), 'touchpoint', 'name')} an account_id other than their "
            f"deal's, e.g. {examples(given[differ])}",
            mask=differ,
            column="account_id",
            hint="check the touchpoint's account_id against deals.account_id",
        )
