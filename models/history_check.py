"""What a model was trained on, and whether a later training saw the same past.

A gate that scores two models on the challenger's own labels is fooled when those labels
were rewritten: shuffle the past outcomes and the challenger "wins" on its own corrupted
truth. So each registered model carries a :class:`HistoryRecord` of its training data (row
counts per table, outcome counts, and per closed deal a hash of its outcome and a hash of
its close time), and :func:`compare_history` tells, before promotion, how many deals that
were already closed at the champion's data end changed outcome or close time, or vanished.

New deals, new closes and new rows are normal growth and are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import TABLES

EXAMPLES = 3
COLUMNS = ("deal_id", "outcome_hash", "closed_hash")


@dataclass(frozen=True)
class HistoryRecord:
    """The training data of one model. ``closed`` has one row per deal closed at
    ``data_end``: ``deal_id`` (str), ``outcome_hash`` and ``closed_hash`` (int64)."""

    data_end: pd.Timestamp
    rows: dict[str, int]
    outcomes: dict[str, int]
    closed: pd.DataFrame

    def summary(self) -> dict[str, object]:
        """The small part (an MLflow tag / JSON): end, rows per table, outcome counts."""
        return {"data_end": str(self.data_end), "rows": self.rows, "outcomes": self.outcomes}

    @classmethod
    def from_parts(cls, summary: dict, closed: pd.DataFrame) -> HistoryRecord:
        """The record written as :meth:`summary` plus the ``closed`` table."""
        return cls(
            data_end=pd.Timestamp(summary["data_end"]),
            rows={str(k): int(v) for k, v in summary["rows"].items()},
            outcomes={str(k): int(v) for k, v in summary["outcomes"].items()},
            closed=closed.loc[:, list(COLUMNS)].astype(
                {"deal_id": "str", "outcome_hash": "int64", "closed_hash": "int64"}
            ),
        )


def record_history(data: CRMData, *, data_end: pd.Timestamp) -> HistoryRecord:
    """The record of ``data`` as known at ``data_end`` (deals closed later count as open)."""
    deals = data.deals
    closed_at = deals["closed_at"] if "closed_at" in deals else pd.Series(pd.NaT, deals.index)
    outcome = deals["outcome"] if "outcome" in deals else pd.Series(pd.NA, deals.index)
    closed = (closed_at <= data_end).fillna(False).to_numpy(bool)
    known = outcome.where(closed)
    frame = pd.DataFrame(
        {
            "deal_id": deals.loc[closed, "deal_id"].astype("str").to_numpy(),
            "outcome_hash": _hash(known[closed].astype("str")),
            "closed_hash": _hash(closed_at[closed].astype("str")),
        }
    )
    counts = known.astype("str").where(closed, "open").value_counts()
    return HistoryRecord(
        data_end=pd.Timestamp(data_end),
        rows={t: len(data.table(t)) for t in TABLES if data.table(t) is not None},
        outcomes={str(k): int(v) for k, v in counts.items()},
        closed=frame,
    )


def _hash(values: pd.Series) -> np.ndarray:
    hashed = pd.util.hash_pandas_object(values.reset_index(drop=True), index=False)
    return hashed.to_numpy().view(np.int64)


@dataclass(frozen=True)
class HistoryCheck:
    """How the challenger's past differs from the champion's. ``share`` is
    ``rewritten / champion_closed`` (0 when the champion had no closed deal)."""

    champion_closed: int
    outcome_changed: int
    close_changed: int
    disappeared: int
    examples: tuple[str, ...]
    data_end: pd.Timestamp
    champion_data_end: pd.Timestamp
    clock: pd.Timestamp

    @property
    def rewritten(self) -> int:
        return self.outcome_changed + self.close_changed + self.disappeared

    @property
    def share(self) -> float:
        return self.rewritten / self.champion_closed if self.champion_closed else 0.0

    def beyond_clock(self) -> bool:
        return self.data_end > self.clock

    def describe(self) -> str:
        """What changed, in counts, with example deal ids."""
        parts = []
        if self.rewritten:
            parts.append(
                f"{self.rewritten:,} of the {self.champion_closed:,} deals closed by the "
                f"champion's data end {self.champion_data_end.date()} were rewritten "
                f"({self.share:.1%}): {self.outcome_changed:,} changed outcome, "
                f"{self.close_changed:,} changed close date only, {self.disappeared:,} "
                f"disappeared (e.g. {', '.join(self.examples)})"
            )
        if self.beyond_clock():
            parts.append(f"the data's end {self.data_end} is after the clock {self.clock}")
        return "; ".join(parts) or "the past is unchanged"


def compare_history(
    champion: HistoryRecord, challenger: HistoryRecord, *, clock: pd.Timestamp
) -> HistoryCheck:
    """Compare the deals the champion knew as closed with the challenger's version of them."""
    old = champion.closed.set_index("deal_id")
    new = challenger.closed.drop_duplicates("deal_id").set_index("deal_id").astype("Int64")
    new = new.reindex(old.index)  # exact int64 hashes, NA where the deal is gone
    gone = new["outcome_hash"].isna().to_numpy(bool)
    outcome = ~gone & _differs(new["outcome_hash"], old["outcome_hash"])
    close = ~gone & ~outcome & _differs(new["closed_hash"], old["closed_hash"])
    changed = old.index[outcome | close | gone]
    return HistoryCheck(
        champion_closed=len(old),
        outcome_changed=int(outcome.sum()),
        close_changed=int(close.sum()),
        disappeared=int(gone.sum()),
        examples=tuple(sorted(map(str, changed))[:EXAMPLES]),
        data_end=challenger.data_end,
        champion_data_end=champion.data_end,
        clock=clock,
    )


def _differs(new: pd.Series, old: pd.Series) -> np.ndarray:
    return (new != old.astype("Int64")).fillna(False).to_numpy(bool)
