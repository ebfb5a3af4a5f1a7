"""The last step of every importer: tidy the four tables into a consistent ``CRMData``.

Input frames use contract column names (plus attributes) and carry SRC/LINE. Every rule
that drops or merges rows records it in the summary:

- rows without their key or required timestamp are left out;
- several rows with one ``deal_id`` (or ``account_id``) are combined into one, per column
  by its rule (:mod:`crm.importers.combine`: the earliest ``created_at``, the latest
  outcome and ``closed_at``, otherwise the first non-blank value in time order);
- stage rows of deals that were not imported are left out; consecutive rows in the same
  stage are one stay (a renamed stage, an amount edit), so the repeats are left out;
- a closed deal's ``closed_at`` is the last time its stage history entered its outcome,
  where the history has that row (a typed close date is often a date without a time, or
  backdated; the history says when it was known); otherwise the mapped close date;
- a deal with no outcome takes it from its stage history when the history ends in
  ``won``/``lost``; ``closed_at`` on an open deal is dropped (with a note); a close date
  before the creation (or before a later stage row) is handled by
  :mod:`crm.importers.close_dates`;
- negative amounts, employees or revenues become blank (with a note);
- a closed deal whose history does not end in its outcome gets one derived row
  (``won``/``lost`` at ``closed_at``), so the stage history and the outcome agree;
- touchpoints must point at an imported deal, or (account-level) an imported account.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.importers.close_dates import close_after_creation, close_after_last_stage
from crm.importers.combine import combine_rows
from crm.importers.common import DERIVED, LINE, SRC, ImportSummary, untracked
from crm.provenance import plural
from crm.schemas import CONTRACT, OUTCOMES, TIMESTAMP_DTYPE, dtype_of

NOT_IMPORTED_DEAL = "its deal was not imported (left out above, deleted, or not in the deals input)"


def assemble(
    summary: ImportSummary,
    deals: pd.DataFrame,
    *,
    accounts: pd.DataFrame | None = None,
    stage_history: pd.DataFrame | None = None,
    touchpoints: pd.DataFrame | None = None,
    combine: Mapping[str, str] | None = None,
    closed_before_created: str = "keep",
) -> CRMData:
    """Finish the tables (see module docstring), count what landed, drop SRC/LINE.

    ``combine``: rules for the deal columns (:mod:`crm.importers.combine`);
    ``closed_before_created``: what to do with a close more than a day before creation
    (:func:`crm.importers.close_dates.close_after_creation`).
    """
    deals = _finish_keyed(summary, "deals", deals, "deal_id", ("created_at",), combine)
    deals = _no_negatives(summary, "deals", deals, ("amount",))
    if accounts is not None:
        accounts = _finish_keyed(summary, "accounts", accounts, "account_id", required=())
        accounts = _no_negatives(summary, "accounts", accounts, ("employees", "annual_revenue"))
    if stage_history is not None:
        stage_history = _finish_history(summary, stage_history, deals)
        deals = recorded_close_times(deals, stage_history)
        deals = _outcomes_from_history(summary, deals, stage_history)
    deals = _closed_at_needs_outcome(summary, deals)
    if stage_history is not None:
        deals = close_after_last_stage(summary, deals, stage_history)
    deals = close_after_creation(summary, deals, closed_before_created)
    if stage_history is not None:
        gone = ~stage_history["deal_id"].isin(deals["deal_id"])
        summary.leave_out("stage_history", stage_history[gone], NOT_IMPORTED_DEAL)
        stage_history = _terminal_rows(summary, deals, stage_history[~gone])
    if touchpoints is not None:
        touchpoints = _finish_touchpoints(summary, touchpoints, deals, accounts)
    tables = {
        "deals": deals,
        "accounts": accounts,
        "stage_history": stage_history,
        "touchpoints": touchpoints,
    }
    for name in ("accounts", "stage_history", "touchpoints"):
        if tables[name] is not None and tables[name].empty:
            summary.note(f"no {name} rows landed: the table is not written (no such data)")
            tables[name] = None
    for name in ("accounts", "deals", "stage_history", "touchpoints"):
        summary.landed(name, tables[name])
    typed = {n: None if f is None else typed_table(n, f) for n, f in tables.items()}
    return CRMData(**typed)


# --------------------------------------------------------------------------- keyed tables


def _finish_keyed(
    summary: ImportSummary,
    table: str,
    frame: pd.DataFrame,
    key: str,
    required: tuple[str, ...],
    rules: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    for column in (key, *required):
        missing = frame[column].isna() if column in frame else pd.Series(True, index=frame.index)
        summary.leave_out(table, frame[missing], f"no {column} (blank or unreadable)")
        frame = frame[~missing]
    return combine_rows(summary, table, frame, key, rules)


def _no_negatives(
    summary: ImportSummary, table: str, frame: pd.DataFrame, columns: tuple[str, ...]
) -> pd.DataFrame:
    """The contract wants these >= 0: negative values (credit notes...) become blank."""
    for column in columns:
        if column not in frame:
            continue
        negative = pd.to_numeric(frame[column], errors="coerce") < 0
        if negative.any():
            lines = ", ".join(map(str, frame.loc[negative, LINE].head(5)))
            summary.note(
                f"{table}.{column}: {int(negative.sum())} negative values left blank (the "
                f"contract needs >= 0); lines {lines}"
            )
            frame = frame.copy()
            frame.loc[negative, column] = np.nan
    return frame


# --------------------------------------------------------------------------- stage history


def _finish_history(
    summary: ImportSummary, history: pd.DataFrame, deals: pd.DataFrame
) -> pd.DataFrame:
    table = "stage_history"
    for column in ("deal_id", "stage", "entered_at"):
        missing = history[column].isna()
        summary.leave_out(table, history[missing], f"no {column} (blank or unreadable)")
        history = history[~missing]
    orphan = ~history["deal_id"].isin(deals["deal_id"])
    summary.leave_out(table, history[orphan], NOT_IMPORTED_DEAL)
    history = history[~orphan].sort_values(["deal_id", "entered_at", LINE], kind="stable")
    same = history["stage"].eq(history.groupby("deal_id")["stage"].shift())
    summary.leave_out(
        table,
        history[same],
        "no stage change (same stage as the deal's previous row: a repeat, a renamed "
        "stage or another field's edit)",
    )
    return history[~same].reset_index(drop=True)


def _last_rows(history: pd.DataFrame) -> pd.DataFrame:
    return history.drop_duplicates("deal_id", keep="last").set_index("deal_id")


def _outcomes_from_history(
    summary: ImportSummary, deals: pd.DataFrame, history: pd.DataFrame
) -> pd.DataFrame:
    deals = _ensure(deals, ("outcome", "closed_at"))
    last = _last_rows(history)
    last = last[last["stage"].isin(OUTCOMES)]
    open_ = deals["outcome"].isna() & deals["deal_id"].isin(last.index)
    if open_.any():
        ids = deals.loc[open_, "deal_id"]
        deals.loc[open_, "outcome"] = ids.map(last["stage"]).to_numpy()
        deals.loc[open_, "closed_at"] = ids.map(last["entered_at"]).to_numpy()
        summary.note(
            f"{plural(int(open_.sum()), 'deal')} took their outcome and closed_at from a stage "
            "history that ends in won/lost"
        )
    no_date = deals["outcome"].notna() & deals["closed_at"].isna()
    if no_date.any():
        entered = history[history["stage"].isin(OUTCOMES)].drop_duplicates(
            ["deal_id", "stage"], keep="last"
        )
        when = entered.set_index(["deal_id", "stage"])["entered_at"]
        keys = pd.MultiIndex.from_frame(deals.loc[no_date, ["deal_id", "outcome"]])
        deals.loc[no_date, "closed_at"] = when.reindex(keys).to_numpy()
    return deals


def _closed_at_needs_outcome(summary: ImportSummary, deals: pd.DataFrame) -> pd.DataFrame:
    deals = _ensure(deals, ("outcome", "closed_at"))
    stray = deals["outcome"].isna() & deals["closed_at"].notna()
    if stray.any():
        deals.loc[stray, "closed_at"] = pd.NaT
        summary.note(
            f"closed_at dropped for {plural(int(stray.sum()), 'deal')} still open (no "
            "outcome); if that column is the planned close date, map it to "
            "expected_close_date instead"
        )
    undated = deals["outcome"].notna() & deals["closed_at"].isna()
    if undated.any():
        summary.note(
            f"{int(undated.sum())} closed deals have no closed_at (no close date and no "
            "won/lost stage row): map a close-date column to closed_at"
        )
    return deals


def _terminal_rows(
    summary: ImportSummary, deals: pd.DataFrame, history: pd.DataFrame
) -> pd.DataFrame:
    closed = deals[deals["outcome"].notna() & deals["closed_at"].notna()]
    last = _last_rows(history)["stage"]
    ends_there = closed["deal_id"].map(last).eq(closed["outcome"])
    todo = closed[~ends_there.to_numpy()]
    if todo.empty:
        return history
    rows = pd.DataFrame(
        {
            "deal_id": todo["deal_id"].to_numpy(),
            "stage": todo["outcome"].to_numpy(),
            "entered_at": todo["closed_at"].to_numpy(),
            SRC: DERIVED,
            LINE: 0,
        }
    )
    summary.note(
        f"{plural(len(rows), 'stage_history row')} derived: won/lost at closed_at for closed deals "
        "whose stage history did not end in their outcome"
    )
    out = pd.concat([history, rows], ignore_index=True)
    return out.sort_values(["deal_id", "entered_at", LINE], kind="stable").reset_index(drop=True)


def recorded_close_times(deals: pd.DataFrame, history: pd.DataFrame | None) -> pd.DataFrame:
    """closed_at = the last time the history entered the deal's outcome, where it did.

    The CRM's close-date field is often a date the rep typed (or backdated); the stage
    history records when the deal was actually closed, which is what was known when.
    """
    if history is None or "outcome" not in deals:
        return deals
    terminal = history[history["stage"].isin(OUTCOMES)].dropna(subset=["entered_at"])
    if terminal.empty:
        return deals
    entered = (
        terminal.sort_values("entered_at")
        .drop_duplicates(["deal_id", "stage"], keep="last")
        .set_index(["deal_id", "stage"])["entered_at"]
    )
    keys = pd.MultiIndex.from_arrays([deals["deal_id"], deals["outcome"]])
    recorded = pd.Series(entered.reindex(keys).to_numpy(), index=deals.index)
    recorded = pd.to_datetime(recorded, utc=True).astype(TIMESTAMP_DTYPE)
    deals = deals.copy()
    if "closed_at" in deals:
        recorded = recorded.fillna(pd.to_datetime(deals["closed_at"], utc=True))
    deals["closed_at"] = recorded.astype(TIMESTAMP_DTYPE)
    return deals


# --------------------------------------------------------------------------- touchpoints


def _finish_touchpoints(
    summary: ImportSummary,
    touches: pd.DataFrame,
    deals: pd.DataFrame,
    accounts: pd.DataFrame | None,
) -> pd.DataFrame:
    table = "touchpoints"
    touches = _ensure(touches, ("deal_id", "account_id", "touchpoint_id"))
    for column in ("occurred_at", "channel"):
        missing = touches[column].isna()
        summary.leave_out(table, touches[missing], f"no {column} (blank, unreadable or unmapped)")
        touches = touches[~missing]
    unlinked = touches["deal_id"].isna() & touches["account_id"].isna()
    summary.leave_out(table, touches[unlinked], "not linked to a deal or an account")
    touches = touches[~unlinked]
    orphan = touches["deal_id"].notna() & ~touches["deal_id"].isin(deals["deal_id"])
    summary.leave_out(table, touches[orphan], NOT_IMPORTED_DEAL)
    touches = touches[~orphan]
    known = accounts["account_id"] if accounts is not None else deals.get("account_id")
    known = known if known is not None else pd.Series([], dtype="str")
    stray = touches["deal_id"].isna() & ~touches["account_id"].isin(known)
    summary.leave_out(
        table, touches[stray], "account-level touch of an account that was not imported"
    )
    touches = touches[~stray]
    repeat = touches["touchpoint_id"].notna() & touches.duplicated("touchpoint_id")
    summary.leave_out(table, touches[repeat], "duplicate touchpoint_id (first row kept)")
    touches = touches[~repeat]
    return touches.sort_values(["occurred_at", LINE], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- typing


def _ensure(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    frame = frame.copy()
    for column in columns:
        if column not in frame.columns:
            kind = CONTRACT_KINDS.get(column, "string")
            frame[column] = pd.Series(np.nan, index=frame.index).astype(dtype_of(kind))
    return frame


CONTRACT_KINDS = {c.name: c.kind for t in CONTRACT.values() for c in t.columns}


def typed_table(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Contract columns first (in contract order, contract dtypes), then attributes."""
    frame = untracked(frame)
    spec = CONTRACT[table]
    contract = [c for c in spec.column_names if c in frame.columns]
    extra = [c for c in frame.columns if c not in spec.column_names]
    out = {}
    for name in contract:
        kind = spec.column(name).kind
        values = frame[name]
        if kind in ("timestamp", "date"):
            values = pd.to_datetime(values, utc=True).astype(TIMESTAMP_DTYPE)
        elif kind in ("number", "integer"):
            values = pd.to_numeric(values).astype("float64")
        else:
            values = values.astype("str").astype(dtype_of(kind))
        out[name] = values.reset_index(drop=True)
    for name in extra:
        out[name] = frame[name].reset_index(drop=True)
    return pd.DataFrame(out, index=pd.RangeIndex(len(frame)))
