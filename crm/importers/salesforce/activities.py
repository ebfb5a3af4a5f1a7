"""Salesforce accounts, and tasks, events and contact roles -> touchpoints."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm.importers.common import ImportInputError
from crm.importers.extract import Extractor, normalise_direction
from crm.importers.mapping import Column
from crm.importers.names import channel_map, role_map
from crm.importers.parsing import norm, parse_bool
from crm.importers.reading import require_columns
from crm.importers.salesforce.export import Export
from crm.importers.salesforce.tables import DEFAULT_CHANNELS, DEFAULT_ROLES
from crm.importers.vendor import apply_channels, first_of, optional_columns, repoint


def _has(frame: pd.DataFrame, column: str) -> str | None:
    return column if column in frame.columns else None


def _occurred_at(rows: pd.DataFrame, ex: Extractor, kind: str, name: str) -> pd.Series:
    """The first date column filled in: completion (tasks) or start (events), else due
    date, else creation."""
    times = (
        ("CompletedDateTime", "ActivityDate", "CreatedDate")
        if kind == "task"
        else ("StartDateTime", "ActivityDateTime", "ActivityDate", "CreatedDate")
    )
    present = [c for c in times if c in rows.columns]
    if not present:
        raise ImportInputError(f"{name}: no date column (one of {', '.join(times)})")
    when = None
    for column in present:
        value = ex.timestamps(Column(column=column), "occurred_at", required=False)
        when = value if when is None else when.fillna(value)
    return when


class ActivitiesMixin(Export):
    def _accounts(self) -> pd.DataFrame | None:
        self.merged_into = {}
        self.account_ids = set()
        if self.files["account"] is None:
            return None
        rows = self._read("account")
        require_columns(rows, ["Id"], source=self._name("account"), purpose="account ids")
        self.account_ids = set(rows["Id"].dropna())
        if "MasterRecordId" in rows.columns:
            merged = rows.dropna(subset=["MasterRecordId"])
            self.merged_into = dict(zip(merged["Id"], merged["MasterRecordId"], strict=True))
        rows = self._drop_removed(rows, "accounts")
        ex = self._extractor(rows, "account", "accounts")
        cols: dict[str, pd.Series] = {"account_id": rows["Id"]}
        country = first_of(rows, "BillingCountry", "ShippingCountry", "Country")
        cols |= optional_columns(
            ex,
            text=[
                ("name", first_of(rows, "Name", "AccountName")),
                ("industry", first_of(rows, "Industry")),
                ("country", country),
            ],
            numbers=[
                ("employees", _has(rows, "NumberOfEmployees")),
                ("annual_revenue", _has(rows, "AnnualRevenue")),
            ],
            timestamps=[("created_at", _has(rows, "CreatedDate"))],
        )
        for column in [c for c in rows.columns if c.endswith("__c")]:
            cols[column] = rows[column]
        return ex.finish(cols)

    def _repoint(self, ids: pd.Series, what: str) -> pd.Series:
        moved = ids.isin(self.merged_into.keys())
        if moved.any():
            self.summary.note(
                f"{what}: {int(moved.sum())} re-pointed from a merged account to the account "
                "it was merged into"
            )
        return repoint(ids, self.merged_into)

    def _touchpoints(self, deals: pd.DataFrame, accounts: pd.DataFrame | None):
        if "account_id" in deals:
            deals["account_id"] = self._repoint(deals["account_id"], "deals.account_id")
        self.channels = channel_map(self.options.channels, defaults=DEFAULT_CHANNELS)
        parts = [self._activities(kind) for kind in ("task", "event") if self.files[kind]]
        if not parts:
            return None
        touches = pd.concat(parts, ignore_index=True)
        if self.files["contact_role"] is not None:
            touches = self._contact_roles(touches)
        return touches

    def _activities(self, kind: str) -> pd.DataFrame:
        rows = self._read(kind)
        name = self._name(kind)
        rows = self._drop_removed(rows, "touchpoints")
        if kind == "task":
            rows = self._completed(rows)
        ex = self._extractor(rows, kind, "touchpoints")
        when = _occurred_at(rows, ex, kind, name)
        what = rows["WhatId"] if "WhatId" in rows else pd.Series(np.nan, index=rows.index)
        cols = {
            "touchpoint_id": rows.get("Id"),
            **self._links(rows, what, name),
            "occurred_at": when,
            "channel": self._channel(rows, kind),
            "contact_id": rows.get("WhoId"),
        }
        if "CallType" in rows.columns:
            cols["direction"] = normalise_direction(rows["CallType"], self.summary, name)
        out = ex.finish({k: v for k, v in cols.items() if v is not None})
        reason = "channel mapped to null under channels: (ignored)"
        return apply_channels(self.channels, out, self.summary, reason)

    def _links(self, rows: pd.DataFrame, what: pd.Series, name: str) -> dict[str, pd.Series]:
        """deal_id and account_id from WhatId (by known ids or id prefix), else AccountId."""
        is_deal = what.isin(self.opportunity_ids) | what.str.startswith("006").fillna(False)
        is_account = ~is_deal & (
            what.isin(self.account_ids) | what.str.startswith("001").fillna(False)
        )
        account = what.where(is_account)
        if "AccountId" in rows.columns:
            account = account.fillna(rows["AccountId"].where(~is_deal))
        return {
            "deal_id": what.where(is_deal),
            "account_id": self._repoint(account.astype("str"), f"{name} account ids"),
        }

    def _completed(self, rows: pd.DataFrame) -> pd.DataFrame:
        if "IsClosed" in rows.columns:
            done = parse_bool(rows["IsClosed"]).fillna(True).to_numpy(dtype=bool)
        elif "Status" in rows.columns:
            status = rows["Status"]
            done = status.isna() | status.map(norm).isin({"completed", "closed", "done"})
            done = done.to_numpy(dtype=bool)
        else:
            return rows
        self.summary.leave_out("touchpoints", rows[~done], "open task (not done yet)")
        return rows[done].reset_index(drop=True)

    def _channel(self, rows: pd.DataFrame, kind: str) -> pd.Series:
        """The subtype when it names a channel, else the Type picklist; events default to
        meeting, plain tasks keep their subtype (so the summary can ask for a map)."""
        subtype_col = "TaskSubtype" if kind == "task" else "EventSubtype"
        blank = pd.Series(np.nan, index=rows.index, dtype="str")
        subtype = rows.get(subtype_col, blank)
        typ = rows.get("Type", blank)
        useful = subtype.notna() & subtype.map(norm).isin({"task", "event"}).eq(False)
        channel = subtype.where(useful).fillna(typ)
        if kind == "event":
            channel = channel.where(~channel.map(norm).eq("event").fillna(False)).fillna("Meeting")
        return channel.fillna(subtype).fillna("Task").astype("str")

    def _contact_roles(self, touches: pd.DataFrame) -> pd.DataFrame:
        roles = self._read("contact_role")
        require_columns(
            roles,
            ["OpportunityId", "ContactId", "Role"],
            source=self._name("contact_role"),
            purpose="contact roles",
        )
        roles = self._drop_removed(roles, "touchpoints")
        roles_map = role_map(self.options.roles, defaults=DEFAULT_ROLES)
        mapped, _ = roles_map.apply(roles["Role"], self.summary)
        lookup = pd.Series(
            mapped.to_numpy(),
            index=pd.MultiIndex.from_arrays([roles["OpportunityId"], roles["ContactId"]]),
        )
        lookup = lookup[~lookup.index.duplicated()]
        if "contact_id" not in touches:
            return touches
        keys = pd.MultiIndex.from_arrays([touches["deal_id"], touches["contact_id"]])
        touches = touches.copy()
        touches["contact_role"] = pd.Series(lookup.reindex(keys).to_numpy(), dtype="str")
        used = pd.MultiIndex.from_arrays([roles["OpportunityId"], roles["ContactId"]]).isin(keys)
        self.summary.joined(roles, "touchpoints", used)
        return touches
