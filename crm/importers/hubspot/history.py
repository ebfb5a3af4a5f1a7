"""HubSpot stage history: the deals export's ``Date entered "<stage> (<pipeline>)"``
columns, one row per stage a deal has a date for."""

from __future__ import annotations

import pandas as pd

from crm.importers.common import LINE, SRC
from crm.importers.hubspot.columns import DEAL_COLUMNS, PIPELINE_SUFFIX, STAGE_DATE
from crm.importers.hubspot.export import Export
from crm.importers.mapping import Column


class HistoryMixin(Export):
    def _history(self, raw: pd.DataFrame) -> pd.DataFrame | None:
        columns = [c for c in raw.columns if c not in (SRC, LINE) and STAGE_DATE.match(c)]
        if not columns:
            self.summary.note(
                "the deals export has no 'Date entered <stage>' columns: no "
                "stage_history table (add those properties to the export)"
            )
            return None
        raw = self._drop_archived(raw, "stage_history")
        ex = self._extractor(raw, "stage dates", "stage_history")
        deal_id = raw[self._col(raw, DEAL_COLUMNS, "deal_id")]
        parts = []
        for column in columns:
            label = STAGE_DATE.match(column).group(1)
            when = ex.timestamps(Column(column=column), "entered_at", required=False)
            has = when.notna().to_numpy()
            parts.append(
                pd.DataFrame(
                    {
                        "deal_id": deal_id[has].to_numpy(),
                        "label": self._stage_label(label),
                        "entered_at": when[has].to_numpy(),
                        SRC: raw[SRC][has].to_numpy(),
                        LINE: raw[LINE][has].to_numpy(),
                    }
                )
            )
        rows = pd.concat(parts, ignore_index=True)
        stage, ignored = self.stages.apply(rows.pop("label"), self.summary)
        rows["stage"] = stage
        self.summary.leave_out("stage_history", rows[ignored], "stage mapped to null (ignored)")
        return rows[~ignored].reset_index(drop=True)

    def _stage_label(self, label: str) -> str:
        """The column's stage as the map knows it: with or without "(Pipeline)"."""
        if self.stages.covers(label):
            return label
        return PIPELINE_SUFFIX.sub("", label)
