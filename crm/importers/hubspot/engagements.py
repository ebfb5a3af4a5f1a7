"""HubSpot engagements (calls, emails, meetings, notes, tasks) -> touchpoints."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crm.importers.common import ImportInputError
from crm.importers.extract import normalise_direction
from crm.importers.hubspot.columns import (
    DEAL_COLUMNS,
    EMAIL_DIRECTION,
    ENGAGEMENT_COLUMNS,
    FILE_KINDS,
)
from crm.importers.hubspot.export import Export, first_listed, listed
from crm.importers.mapping import Column
from crm.importers.parsing import norm
from crm.importers.vendor import apply_channels, repoint, squash
from crm.provenance import plural


class EngagementsMixin(Export):
    def _engagements(self, deals_raw: pd.DataFrame) -> pd.DataFrame | None:
        names = self._deal_names(deals_raw)
        parts = [self._engagement_file(path, frame, names) for path, frame in self.engagement_files]
        return pd.concat(parts, ignore_index=True) if parts else None

    def _deal_names(self, raw: pd.DataFrame) -> dict[str, str]:
        column = self._col(raw, DEAL_COLUMNS, "name")
        if column is None:
            return {}
        names = raw[column].map(norm, na_action="ignore")
        unique = ~names.duplicated(keep=False) & names.notna()
        ids = raw[self._col(raw, DEAL_COLUMNS, "deal_id")]
        return dict(zip(names[unique], ids[unique], strict=True))

    def _engagement_file(self, path: Path, frame: pd.DataFrame, deal_names: dict) -> pd.DataFrame:
        col = lambda key: self._col(frame, ENGAGEMENT_COLUMNS, key)  # noqa: E731
        ex = self._extractor(frame, path.name, "touchpoints")
        cols: dict[str, pd.Series] = {
            "touchpoint_id": frame[col("id")] if col("id") else None,
            "occurred_at": ex.timestamps(Column(column=col("time")), "occurred_at", required=True),
            "deal_id": frame[col("deal")] if col("deal") else None,
            "account_id": first_listed(frame[col("company")]) if col("company") else None,
            "contact_id": first_listed(frame[col("contact")]) if col("contact") else None,
            "channel": self._engagement_type(frame, path),
        }
        if col("direction"):
            raw = frame[col("direction")]
            email = raw.map(lambda v: EMAIL_DIRECTION.get(norm(v)), na_action="ignore")
            cols["direction"] = normalise_direction(email.fillna(raw), self.summary, path.name)
        out = ex.finish({k: v for k, v in cols.items() if v is not None})
        out = self._explode_deals(out, deal_names)
        if "account_id" in out:
            out["account_id"] = repoint(out["account_id"], self.company_merged)
        reason = "channel mapped to null (ignored; tasks are to-dos, not touches)"
        return apply_channels(self.channels, out, self.summary, reason)

    def _engagement_type(self, frame: pd.DataFrame, path: Path) -> pd.Series:
        column = self._col(frame, ENGAGEMENT_COLUMNS, "type")
        kind = next((k for k in FILE_KINDS if k.rstrip("s") in squash(path.stem)), None)
        if column is not None:
            values = frame[column]
            return values.fillna(kind) if kind else values
        if kind is None:
            raise ImportInputError(
                f"{path.name}: cannot tell the channel: no activity type column "
                f"({', '.join(ENGAGEMENT_COLUMNS['type'][:3])}) and the file name does not "
                "say calls, emails, meetings, notes or tasks"
            )
        return pd.Series(kind, index=frame.index, dtype="str")

    def _explode_deals(self, out: pd.DataFrame, deal_names: dict[str, str]) -> pd.DataFrame:
        """One touchpoint per associated deal; names and merged ids resolved to deal ids."""
        if "deal_id" not in out:
            return out
        out = self._one_row_per_deal(out)
        return self._resolve_deal_ids(out, deal_names)

    def _one_row_per_deal(self, out: pd.DataFrame) -> pd.DataFrame:
        lists = out["deal_id"].map(listed, na_action="ignore")
        several = lists.map(lambda v: isinstance(v, list) and len(v) > 1)
        out = out.assign(deal_id=lists).explode("deal_id")
        if several.any():
            self.summary.note(
                f"{plural(int(several.sum()), 'engagement', 'name')} several deals: one "
                "touchpoint per deal (touchpoint_id gets '-<deal id>')"
            )
            if "touchpoint_id" in out:
                repeated = out.index.duplicated(keep=False)
                out.loc[repeated, "touchpoint_id"] = (
                    out.loc[repeated, "touchpoint_id"].astype("str")
                    + "-"
                    + out.loc[repeated, "deal_id"].astype("str")
                )
        return out

    def _resolve_deal_ids(self, out: pd.DataFrame, deal_names: dict[str, str]) -> pd.DataFrame:
        known = set(self.deal_ids.dropna())
        ids = out["deal_id"].map(lambda v: self.deal_merged.get(v, v), na_action="ignore")
        by_name = ids.map(
            lambda v: deal_names.get(norm(v)) if v not in known else None, na_action="ignore"
        )
        ids = by_name.astype("str").fillna(ids)
        moved = (out["deal_id"] != ids) & out["deal_id"].notna()
        if moved.any():
            self.summary.note(
                f"{plural(int(moved.sum()), 'engagement')} re-pointed to a deal id (from "
                "a deal name or a merged deal)"
            )
        return out.assign(deal_id=ids.astype("str")).reset_index(drop=True)
