"""Salesforce stage history: OpportunityHistory, else OpportunityFieldHistory."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm.importers.common import DERIVED, LINE, SRC
from crm.importers.mapping import Column
from crm.importers.parsing import norm
from crm.importers.reading import require_columns
from crm.importers.salesforce.export import Export


class HistoryMixin(Export):
    def _history(self, opps: pd.DataFrame) -> pd.DataFrame | None:
        if self.files["history"] is not None:
            if self.files["field_history"] is not None:
                self.summary.note(
                    f"{self._name('field_history')} not read: {self._name('history')} "
                    "already gives the stage history"
                )
            return self._opportunity_history()
        if self.files["field_history"] is not None:
            return self._field_history(opps)
        self.summary.note(
            "no OpportunityHistory or OpportunityFieldHistory export: no stage_history "
            "table (export one of them to get stage features)"
        )
        return None

    def _opportunity_history(self) -> pd.DataFrame:
        rows = self._read("history")
        name = self._name("history")
        require_columns(
            rows,
            ["OpportunityId", "StageName", "CreatedDate"],
            source=name,
            purpose="stage history rows",
        )
        rows = self._drop_removed(rows, "stage_history")
        ex = self._extractor(rows, "history", "stage_history")
        when = ex.timestamps(Column(column="CreatedDate"), "entered_at", required=True)
        cols = {
            "deal_id": rows["OpportunityId"],
            "entered_at": when,
            "stage": self._stage(rows["StageName"]),
        }
        if "CloseDate" in rows.columns:
            cols["close"] = ex.timestamps(
                Column(column="CloseDate"), "expected_close_date", required=False
            )
        out = ex.finish(cols)
        if "close" in out:
            first = out.dropna(subset=["entered_at"]).sort_values(["entered_at", LINE])
            self._first_close_dates = first.drop_duplicates("deal_id").set_index("deal_id")["close"]
            out = out.drop(columns=["close"])
        return out

    def _field_history(self, opps: pd.DataFrame) -> pd.DataFrame:
        rows = self._read("field_history")
        name = self._name("field_history")
        require_columns(
            rows,
            ["OpportunityId", "Field", "NewValue", "CreatedDate"],
            source=name,
            purpose="field history rows",
        )
        rows = self._drop_removed(rows, "stage_history")
        is_stage = rows["Field"].map(norm).isin({"stagename", "stage"}).to_numpy()
        self.summary.leave_out(
            "stage_history", rows[~is_stage], "a change of another field (not StageName)"
        )
        rows = rows[is_stage].reset_index(drop=True)
        ex = self._extractor(rows, "field_history", "stage_history")
        when = ex.timestamps(Column(column="CreatedDate"), "entered_at", required=True)
        changes = ex.finish(
            {
                "deal_id": rows["OpportunityId"],
                "entered_at": when,
                "stage": rows["NewValue"],
                "old": rows.get("OldValue"),
            }
        )
        changes = changes.sort_values(["deal_id", "entered_at", LINE], kind="stable")
        first = self._initial_stages(opps, changes)
        out = pd.concat([first, changes.drop(columns=["old"])], ignore_index=True)
        out["stage"] = self._stage(out["stage"])
        return out

    def _initial_stages(self, opps: pd.DataFrame, changes: pd.DataFrame) -> pd.DataFrame:
        """The stage each opportunity was created in: the OldValue of its first StageName
        change, or its current StageName if the stage never changed."""
        first_old = changes.drop_duplicates("deal_id").set_index("deal_id")["old"]
        created = self._extractor(opps, "opportunity", "deals").timestamps(
            Column(column="CreatedDate"), "created_at", required=False
        )
        current = opps["StageName"] if "StageName" in opps else pd.Series(np.nan, index=opps.index)
        stage = opps["Id"].map(first_old).fillna(current)
        rows = pd.DataFrame(
            {"deal_id": opps["Id"], "stage": stage, "entered_at": created, SRC: DERIVED, LINE: 0}
        ).dropna(subset=["stage", "entered_at"])
        self.summary.note(
            f"{len(rows)} stage_history rows derived: the stage each opportunity was created "
            "in (the OldValue of its first StageName change, or its current stage)"
        )
        return rows

    def _stage(self, names: pd.Series) -> pd.Series:
        stage, ignored = self.stages.apply(names, self.summary)
        return stage.mask(ignored)
