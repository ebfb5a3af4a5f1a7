"""``dealcast import salesforce``: standard objects as Data Loader or a report exports them.

Files in the folder (CSV or Excel; names compared loosely, ``Opportunity.csv`` or
``opportunities.csv``): ``Opportunity`` (required), ``OpportunityHistory`` or
``OpportunityFieldHistory`` (stage history), ``Account``, ``Task``, ``Event``,
``OpportunityContactRole``. Columns use Salesforce's API names (``CreatedDate``) or the
report labels (``Created Date``).

Decisions (see ``docs/importers/salesforce.md``):

- won/lost from ``IsClosed``/``IsWon``; ``closed_at`` is when the history recorded the
  closing stage, else ``CloseDate``;
- ``IsDeleted = true`` and merged records (``MasterRecordId`` set) are left out; deals
  and activities pointing at a merged account are re-pointed to the surviving account;
- 15-character record ids (reports) are converted to the 18-character form (Data
  Loader), so files from both sources join;
- stage names: the ``stages`` map, then the standard picklist (onto the default funnel),
  then names that closed deals end in (taken as won/lost per ``IsWon``);
- only fields known when a deal is created are kept (``Type``, ``CampaignId`` and
  custom ``__c`` fields); system and after-the-fact fields (``Probability``,
  ``ForecastCategory``, ``FiscalQuarter``...) are not imported, and the summary lists them.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from crm.importers.assemble import assemble
from crm.importers.common import (
    DERIVED,
    LINE,
    SRC,
    ImportInputError,
    ImportResult,
    ImportSummary,
)
from crm.importers.extract import Extractor, normalise_direction
from crm.importers.mapping import Column
from crm.importers.names import (
    NameMap,
    channel_map,
    outcome_from_stage,
    role_map,
    stage_map,
    unmapped_notes,
)
from crm.importers.parsing import norm, parse_bool
from crm.importers.reading import read_export, require_columns
from crm.importers.vendor import VendorMap, find_export, first_of, rename_aliases
from crm.schemas import LOST, WON, Funnel

FILES = {
    "opportunity": ("Opportunity", "Opportunities"),
    "history": ("OpportunityHistory", "OpportunityHistories"),
    "field_history": ("OpportunityFieldHistory", "OpportunityFieldHistories"),
    "account": ("Account", "Accounts"),
    "task": ("Task", "Tasks"),
    "event": ("Event", "Events"),
    "contact_role": ("OpportunityContactRole", "OpportunityContactRoles"),
}
#: Report labels -> API names (compared after squashing case, spaces and punctuation).
ALIASES = {
    "Account ID": "AccountId",
    "Owner ID": "OwnerId",
    "Opportunity Owner ID": "OwnerId",
    "Opportunity Owner": "OwnerName",
    "Account Name": "AccountName",
    "Created Date": "CreatedDate",
    "Stage": "StageName",
    "Close Date": "CloseDate",
    "Closed": "IsClosed",
    "Won": "IsWon",
    "Lead Source": "LeadSource",
    "Opportunity Type": "Type",
    "Deleted": "IsDeleted",
    "Opportunity Currency": "CurrencyIsoCode",
    "Currency": "CurrencyIsoCode",
    "Master Record ID": "MasterRecordId",
    "Campaign ID": "CampaignId",
    "Opportunity": "OpportunityId",
    "Opportunity ID": "OpportunityId",
    "Field / Event": "Field",
    "Old Value": "OldValue",
    "New Value": "NewValue",
    "Edit Date": "CreatedDate",
    "Last Modified": "CreatedDate",
    "Employees": "NumberOfEmployees",
    "Annual Revenue": "AnnualRevenue",
    "Billing Country": "BillingCountry",
    "Related To ID": "WhatId",
    "Name ID": "WhoId",
    "Contact ID": "ContactId",
    "Due Date": "ActivityDate",
    "Date": "ActivityDate",
    "Task Subtype": "TaskSubtype",
    "Call Type": "CallType",
    "Completed Date/Time": "CompletedDateTime",
    "Start": "StartDateTime",
    "Start Date/Time": "StartDateTime",
    "Event Subtype": "EventSubtype",
    "Role": "Role",
}
#: Labels that mean the record's own id in that object's export.
OWN_ID = {
    "opportunity": "Opportunity ID",
    "account": "Account ID",
    "task": "Activity ID",
    "event": "Activity ID",
}
#: The standard StageName picklist onto the default funnel (lead ... negotiation).
DEFAULT_STAGES = {
    "Prospecting": "lead",
    "Qualification": "qualified",
    "Needs Analysis": "qualified",
    "Value Proposition": "meeting",
    "Id. Decision Makers": "meeting",
    "Perception Analysis": "meeting",
    "Proposal/Price Quote": "proposal",
    "Negotiation/Review": "negotiation",
    "Closed Won": WON,
    "Closed Lost": LOST,
}
DEFAULT_CHANNELS = {
    "Email": "email",
    "ListEmail": "email",
    "Call": "call",
    "LinkedIn": "social",
    "Meeting": "meeting",
    "Demo": "demo",
    "Webinar": "webinar",
    "Event": "event",
}
DEFAULT_ROLES = {
    "Decision Maker": "decision_maker",
    "Economic Buyer": "decision_maker",
    "Economic Decision Maker": "decision_maker",
    "Executive Sponsor": "champion",
    "Influencer": "influencer",
    "Evaluator": "influencer",
    "Technical Buyer": "influencer",
    "Business User": "user",
}
#: Opportunity fields kept as attributes besides custom ``__c`` fields.
KEEP_FIELDS = {"Type": "type", "CampaignId": "campaign_id"}
USED_FIELDS = {
    "Id",
    "AccountId",
    "AccountName",
    "OwnerId",
    "OwnerName",
    "CreatedDate",
    "Amount",
    "StageName",
    "CloseDate",
    "IsClosed",
    "IsWon",
    "LeadSource",
    "IsDeleted",
    "MasterRecordId",
    "CurrencyIsoCode",
}
_ID15 = re.compile(r"^[A-Za-z0-9]{15}$")
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_DELETED = "deleted in Salesforce (IsDeleted = true)"
_MERGED = "merged into another record (MasterRecordId set)"


def import_salesforce(
    folder: Path, *, funnel: Funnel, options: VendorMap | None = None
) -> ImportResult:
    """Import a folder of Salesforce exports (see module docstring)."""
    return _Salesforce(Path(folder), funnel, options or VendorMap()).run()


def id18(values: pd.Series) -> pd.Series:
    """15-character (case-sensitive) record ids in their 18-character form; others as is."""

    def convert(value: str) -> str:
        if not _ID15.match(value):
            return value
        suffix = ""
        for chunk in (value[0:5], value[5:10], value[10:15]):
            bits = sum(1 << i for i, ch in enumerate(chunk) if "A" <= ch <= "Z")
            suffix += _ID_CHARS[bits]
        return value + suffix

    return values.map(convert, na_action="ignore").astype("str")


class _Salesforce:
    def __init__(self, folder: Path, funnel: Funnel, options: VendorMap) -> None:
        if not folder.is_dir():
            raise ImportInputError(f"{folder}: no such folder of Salesforce exports")
        self.folder, self.funnel, self.options = folder, funnel, options
        self.summary = ImportSummary("salesforce")
        self._first_close_dates: pd.Series | None = None
        self.files = {k: find_export(folder, stems) for k, stems in FILES.items()}
        if self.files["opportunity"] is None:
            raise ImportInputError(
                f"{folder}: no Opportunity export (Opportunity.csv or .xlsx); the folder "
                "should hold the Opportunity object as Data Loader or a report exports it"
            )

    def run(self) -> ImportResult:
        opps = self._read("opportunity")
        require_columns(
            opps,
            ["Id", "CreatedDate"],
            source=self._name("opportunity"),
            purpose="every opportunity needs its Id and CreatedDate",
        )
        self.opportunity_ids = set(opps["Id"].dropna())
        accounts = self._accounts()
        opps = self._drop_removed(opps, "deals")
        self.stages = self._stage_map(opps)
        deals = self._deals(opps)
        history = self._history(opps)
        deals = self._close_times(deals, history)
        touches = self._touchpoints(deals, accounts)
        data = assemble(
            self.summary, deals, accounts=accounts, stage_history=history, touchpoints=touches
        )
        unmapped_notes(self.summary, self.funnel, where="in a --map file")
        return ImportResult(data=data, summary=self.summary)

    # ----------------------------------------------------------------- reading

    def _name(self, kind: str) -> str:
        path = self.files[kind]
        return path.name if path else kind

    def _read(self, kind: str) -> pd.DataFrame:
        path = self.files[kind]
        assert path is not None
        aliases = dict(ALIASES)
        if kind in OWN_ID:
            aliases[OWN_ID[kind]] = "Id"
        frame = rename_aliases(read_export(path, self.summary), aliases)
        for column in frame.columns:
            if column in ("Id", "MasterRecordId") or column.endswith("Id"):
                frame[column] = id18(frame[column])
        return frame

    def _extractor(self, frame: pd.DataFrame, kind: str, table: str) -> Extractor:
        return Extractor(
            frame,
            parsing=self.options.parsing(),
            display=self._name(kind),
            where=kind,
            table=table,
            summary=self.summary,
        )

    def _drop_removed(self, frame: pd.DataFrame, table: str) -> pd.DataFrame:
        """Leave out merged records (Salesforce also flags them deleted) and deleted ones."""
        if "MasterRecordId" in frame.columns:
            merged = frame["MasterRecordId"].notna().to_numpy()
            self.summary.leave_out(table, frame[merged], _MERGED)
            frame = frame[~merged]
        if "IsDeleted" in frame.columns:
            deleted = parse_bool(frame["IsDeleted"]).fillna(False).to_numpy(dtype=bool)
            self.summary.leave_out(table, frame[deleted], _DELETED)
            frame = frame[~deleted]
        return frame.reset_index(drop=True)

    # ----------------------------------------------------------------- stages

    def _stage_map(self, opps: pd.DataFrame) -> NameMap:
        explicit = dict(self.options.stages)
        base = stage_map(self.funnel, explicit, defaults=DEFAULT_STAGES, where="--map stages")
        if "StageName" not in opps.columns:
            return base
        outcome = self._flags(opps)
        inferred = {}
        for name, group in outcome.groupby(opps["StageName"]):
            final = set(group.dropna())
            if not base.covers(str(name)) and len(final) == 1:
                inferred[str(name)] = final.pop()
        for name, target in inferred.items():
            self.summary.note(
                f"stage {name!r} taken as {target}: the closed deals that end in it are all "
                f"{target} (IsWon); map it under stages: to override"
            )
        return stage_map(
            self.funnel, inferred | explicit, defaults=DEFAULT_STAGES, where="--map stages"
        )

    def _flags(self, opps: pd.DataFrame) -> pd.Series:
        """won/lost from IsClosed/IsWon (NaN while open or unknown)."""
        out = pd.Series(np.nan, index=opps.index, dtype="str")
        if "IsWon" not in opps.columns:
            return out
        won = parse_bool(opps["IsWon"])
        closed = parse_bool(opps["IsClosed"]) if "IsClosed" in opps.columns else won
        out = out.mask((closed & won).fillna(False).to_numpy(dtype=bool), WON)
        return out.mask((closed & ~won).fillna(False).to_numpy(dtype=bool), LOST)

    # ----------------------------------------------------------------- deals

    def _deals(self, opps: pd.DataFrame) -> pd.DataFrame:
        ex = self._extractor(opps, "opportunity", "deals")
        cols: dict[str, pd.Series] = {
            "deal_id": ex.text(Column(column="Id"), "deal_id"),
            "created_at": ex.timestamps(Column(column="CreatedDate"), "created_at", required=True),
        }
        for name, candidates in (
            ("account_id", ("AccountId", "AccountName")),
            ("owner_id", ("OwnerId", "OwnerName")),
            ("source", ("LeadSource",)),
        ):
            column = first_of(opps, *candidates)
            if column:
                cols[name] = ex.text(Column(column=column), name)
        if "Amount" in opps.columns:
            currency = self.options.currency
            if currency is not None and currency.column is None and "CurrencyIsoCode" in opps:
                currency = currency.model_copy(update={"column": "CurrencyIsoCode"})
            cols["amount"] = ex.numbers(Column(column="Amount"), "amount", currency=currency)
        outcome = self._flags(opps)
        if outcome.isna().all() and "StageName" in opps.columns:
            outcome = outcome_from_stage(
                self.stages, opps["StageName"], self.summary, where="Opportunity.StageName"
            )
        cols["outcome"] = outcome.astype("str")
        if "CloseDate" in opps.columns:
            close = ex.timestamps(Column(column="CloseDate"), "closed_at", required=False)
            cols["closed_at"] = close.where(outcome.notna())
            cols["_close_date"] = close
        for field, attribute in KEEP_FIELDS.items():
            if field in opps.columns:
                cols[attribute] = ex.text(Column(column=field), attribute)
        custom = [c for c in opps.columns if c.endswith("__c")]
        for column in custom:
            cols[column] = opps[column]
        self._note_fields(opps, custom)
        return ex.finish(cols)

    def _note_fields(self, opps: pd.DataFrame, custom: list[str]) -> None:
        skipped = [
            c
            for c in opps.columns
            if c not in (SRC, LINE)
            and c not in USED_FIELDS
            and c not in KEEP_FIELDS
            and c not in custom
        ]
        if skipped:
            self.summary.note(
                f"{self._name('opportunity')}: not imported (system fields, or known only "
                f"after the fact): {', '.join(skipped)}"
            )
        if custom:
            self.summary.note(
                f"custom fields kept as deal attributes: {', '.join(custom)}; list any that "
                "is filled in after the fact in params funnel.exclude_attributes"
            )

    def _close_times(self, deals: pd.DataFrame, history: pd.DataFrame | None) -> pd.DataFrame:
        """expected_close_date = the CloseDate of the deal's first history row (the rep's
        first estimate), else the current CloseDate of open deals. (closed_at: CloseDate
        here; ``assemble`` prefers the time the history recorded the closing stage.)"""
        if self._first_close_dates is not None:
            deals["expected_close_date"] = deals["deal_id"].map(self._first_close_dates)
        elif "_close_date" in deals:
            deals["expected_close_date"] = deals["_close_date"].where(deals["outcome"].isna())
        return deals.drop(columns=["_close_date"], errors="ignore")

    # ----------------------------------------------------------------- history

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

    # ----------------------------------------------------------------- accounts

    def _accounts(self) -> pd.DataFrame | None:
        self.merged_into: dict[str, str] = {}
        self.account_ids: set[str] = set()
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
        for name, candidates in (
            ("industry", ("Industry",)),
            ("country", ("BillingCountry", "ShippingCountry", "Country")),
        ):
            column = first_of(rows, *candidates)
            if column:
                cols[name] = ex.text(Column(column=column), name)
        for name, column in (
            ("employees", "NumberOfEmployees"),
            ("annual_revenue", "AnnualRevenue"),
        ):
            if column in rows.columns:
                cols[name] = ex.numbers(Column(column=column), name)
        if "CreatedDate" in rows.columns:
            cols["created_at"] = ex.timestamps(
                Column(column="CreatedDate"), "created_at", required=False
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
        return ids.map(lambda v: self.merged_into.get(v, v), na_action="ignore").astype("str")

    # ----------------------------------------------------------------- activities

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
        what = rows["WhatId"] if "WhatId" in rows else pd.Series(np.nan, index=rows.index)
        is_deal = what.isin(self.opportunity_ids) | what.str.startswith("006").fillna(False)
        is_account = ~is_deal & (
            what.isin(self.account_ids) | what.str.startswith("001").fillna(False)
        )
        account = what.where(is_account)
        if "AccountId" in rows.columns:
            account = account.fillna(rows["AccountId"].where(~is_deal))
        cols = {
            "touchpoint_id": rows.get("Id"),
            "deal_id": what.where(is_deal),
            "account_id": self._repoint(account.astype("str"), f"{name} account ids"),
            "occurred_at": when,
            "channel": self._channel(rows, kind),
            "contact_id": rows.get("WhoId"),
        }
        if "CallType" in rows.columns:
            cols["direction"] = normalise_direction(rows["CallType"], self.summary, name)
        out = ex.finish({k: v for k, v in cols.items() if v is not None})
        channel, ignored = self.channels.apply(out["channel"], self.summary)
        self.summary.leave_out(
            "touchpoints", out[ignored], "channel mapped to null under channels: (ignored)"
        )
        return out.assign(channel=channel)[~ignored]

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
