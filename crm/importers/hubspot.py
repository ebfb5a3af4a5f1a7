"""``dealcast import hubspot``: a HubSpot deals export, companies and engagements.

Files are recognised by their columns, not their names (HubSpot names exports like
``hubspot-crm-exports-all-deals-2024-05-01.csv``):

- deals: a ``Deal Stage`` column (several deal files, e.g. one per pipeline, are read
  together). Columns: ``Record ID``/``Deal ID``, ``Create Date``, ``Close Date``,
  ``Amount`` (``Amount in company currency`` when present), ``Pipeline``, ``Deal owner``,
  ``Deal Type``, ``Original Source Type``, ``Associated Company IDs`` (or names), and
  the per-stage ``Date entered "<stage> (<pipeline>)"`` columns, which become the stage
  history. ``Is Closed Won``/``Is Deal Closed?`` give the outcome where exported, else
  the mapped ``Deal Stage``;
- companies: a ``Company name`` column with ``Record ID``/``Company ID``;
- engagements (calls, emails, meetings, notes, tasks): an activity date column and an
  association column (``Associated Deal IDs``...); the channel comes from an activity
  type column or, failing that, from the file name (``calls.csv`` -> call).

HubSpot keeps one "Date entered" per stage (the latest entry), so a deal that left a
stage and came back shows only its last entry: regressions are partly visible.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from crm.importers.assemble import assemble
from crm.importers.common import LINE, NOWHERE, SRC, ImportInputError, ImportResult, ImportSummary
from crm.importers.extract import Extractor, normalise_direction
from crm.importers.mapping import Column
from crm.importers.names import channel_map, outcome_from_stage, stage_map, unmapped_notes
from crm.importers.parsing import norm, parse_bool
from crm.importers.reading import read_export
from crm.importers.vendor import VendorMap, export_files, first_of, squash
from crm.provenance import plural
from crm.schemas import LOST, WON, Funnel

DEAL_COLUMNS = {
    "deal_id": ("Record ID", "Deal ID", "hs_object_id", "dealId"),
    "created": ("Create Date", "Created Date", "createdate"),
    "close": ("Close Date", "closedate"),
    "stage": ("Deal Stage", "dealstage"),
    "amount_home": ("Amount in company currency", "amount_in_home_currency"),
    "amount": ("Amount", "amount"),
    "currency": ("Currency", "deal_currency_code"),
    "pipeline": ("Pipeline", "pipeline"),
    "owner": ("Deal owner", "Deal Owner", "hubspot_owner_id", "Owner"),
    "type": ("Deal Type", "dealtype"),
    "source": (
        "Original Source Type",
        "Original Source",
        "Deal source",
        "hs_analytics_source",
        "Original Traffic Source",
    ),
    "name": ("Deal Name", "dealname"),
    "is_won": ("Is Closed Won", "hs_is_closed_won", "Is closed won"),
    "is_closed": ("Is Deal Closed?", "Is Closed", "hs_is_closed", "Is Deal Closed"),
    "archived": ("Archived", "Is Deleted", "archived"),
    "merged": ("Merged Deal IDs", "hs_merged_object_ids"),
    "company_id": (
        "Associated Company IDs (Primary)",
        "Associated Company IDs",
        "Associated Company ID",
        "Company ID",
        "associatedcompanyid",
    ),
    "company_name": (
        "Associated Company (Primary)",
        "Associated Company",
        "Company name",
        "Company",
    ),
}
COMPANY_COLUMNS = {
    "id": ("Record ID", "Company ID", "hs_object_id", "companyId"),
    "name": ("Company name", "Name", "Company Name"),
    "industry": ("Industry",),
    "employees": ("Number of Employees", "numberofemployees", "Employees"),
    "revenue": ("Annual Revenue", "annualrevenue"),
    "country": ("Country/Region", "Country", "country"),
    "created": ("Create Date", "createdate", "Created Date"),
    "merged": ("Merged Company IDs", "hs_merged_object_ids"),
}
ENGAGEMENT_COLUMNS = {
    "id": ("Record ID", "Activity ID", "Engagement ID", "hs_object_id", "ID"),
    "time": (
        "Activity date",
        "Activity Date",
        "Timestamp",
        "hs_timestamp",
        "Meeting start time",
        "Call date",
        "Email send date",
        "Create date",
        "Create Date",
        "Created at",
    ),
    "deal": (
        "Associated Deal IDs",
        "Associated Deal ID",
        "Deal IDs",
        "Deal ID",
        "Associated Deals",
        "Associated Deal",
    ),
    "company": (
        "Associated Company IDs",
        "Associated Company ID",
        "Company ID",
        "Associated Company",
    ),
    "contact": (
        "Associated Contact IDs",
        "Associated Contact ID",
        "Contact ID",
        "Associated Contact",
    ),
    "type": (
        "Activity type",
        "Activity Type",
        "Engagement type",
        "Engagement Type",
        "Type",
        "hs_engagement_type",
    ),
    "direction": (
        "Call direction",
        "Email direction",
        "Direction",
        "hs_call_direction",
        "hs_email_direction",
    ),
}
_STAGE_DATE = re.compile(r"^(?:date entered|hs_date_entered_)\s*[\"“']?(.+?)[\"”']?\s*$", re.I)
_PIPELINE_SUFFIX = re.compile(r"\s*\([^()]*\)\s*$")
#: HubSpot's default sales pipeline onto the default funnel (labels and internal ids).
DEFAULT_STAGES = {
    "Appointment Scheduled": "lead",
    "appointmentscheduled": "lead",
    "Qualified To Buy": "qualified",
    "qualifiedtobuy": "qualified",
    "Presentation Scheduled": "meeting",
    "presentationscheduled": "meeting",
    "Decision Maker Bought-In": "proposal",
    "decisionmakerboughtin": "proposal",
    "Contract Sent": "negotiation",
    "contractsent": "negotiation",
    "Closed Won": WON,
    "closedwon": WON,
    "Closed Lost": LOST,
    "closedlost": LOST,
}
DEFAULT_CHANNELS = {
    "CALL": "call",
    "EMAIL": "email",
    "INCOMING_EMAIL": "email",
    "FORWARDED_EMAIL": "email",
    "MEETING": "meeting",
    "NOTE": "note",
    "TASK": None,
    "calls": "call",
    "emails": "email",
    "meetings": "meeting",
    "notes": "note",
    "tasks": None,
}
_FILE_KINDS = ("calls", "emails", "meetings", "notes", "tasks")
_EMAIL_DIRECTION = {"incoming_email": "inbound", "email": "outbound", "forwarded_email": "outbound"}


def import_hubspot(
    folder: Path, *, funnel: Funnel, options: VendorMap | None = None
) -> ImportResult:
    """Import a folder of HubSpot exports (see module docstring)."""
    return _HubSpot(Path(folder), funnel, options or VendorMap()).run()


class _HubSpot:
    def __init__(self, folder: Path, funnel: Funnel, options: VendorMap) -> None:
        if not folder.is_dir():
            raise ImportInputError(f"{folder}: no such folder of HubSpot exports")
        self.folder, self.funnel, self.options = folder, funnel, options
        self.summary = ImportSummary("hubspot")
        self.stages = stage_map(
            funnel, options.stages, defaults=DEFAULT_STAGES, where="--map stages"
        )
        self.channels = channel_map(options.channels, defaults=DEFAULT_CHANNELS)
        self.company_names: dict[str, str] = {}
        self.company_merged: dict[str, str] = {}
        self.deal_merged: dict[str, str] = {}
        self.deal_files: list[pd.DataFrame] = []
        self.company_files: list[pd.DataFrame] = []
        self.engagement_files: list[tuple[Path, pd.DataFrame]] = []
        for path in export_files(folder):
            self._classify(path)
        if not self.deal_files:
            raise ImportInputError(
                f"{folder}: no deals export (a CSV or Excel file with a 'Deal Stage' column); "
                "export the deals view with all properties"
            )

    def _classify(self, path: Path) -> None:
        frame = read_export(path, self.summary)
        if first_of(frame, *DEAL_COLUMNS["stage"]):
            self.deal_files.append(frame)
        elif first_of(frame, *COMPANY_COLUMNS["name"]) and first_of(frame, *COMPANY_COLUMNS["id"]):
            self.company_files.append(frame)
        elif first_of(frame, *ENGAGEMENT_COLUMNS["time"]) and (
            first_of(frame, *ENGAGEMENT_COLUMNS["deal"])
            or first_of(frame, *ENGAGEMENT_COLUMNS["company"])
        ):
            self.engagement_files.append((path, frame))
        else:
            self.summary.leave_out(
                NOWHERE,
                frame,
                "file not recognised as deals, companies "
                "or engagements (no Deal Stage, Company name or activity "
                "date + association columns)",
            )

    def run(self) -> ImportResult:
        deals_raw = pd.concat(self.deal_files, ignore_index=True)
        accounts = self._companies() if self.company_files else None
        deals = self._deals(deals_raw, accounts)
        history = self._history(deals_raw)
        touches = self._engagements(deals_raw) if self.engagement_files else None
        data = assemble(
            self.summary, deals, accounts=accounts, stage_history=history, touchpoints=touches
        )
        unmapped_notes(self.summary, self.funnel, where="in a --map file")
        return ImportResult(data=data, summary=self.summary)

    def _col(self, frame: pd.DataFrame, table: dict, key: str) -> str | None:
        return first_of(frame, *table[key])

    def _extractor(self, frame: pd.DataFrame, where: str, table: str) -> Extractor:
        display = ", ".join(dict.fromkeys(frame[SRC].astype("str"))) if len(frame) else where
        return Extractor(
            frame,
            parsing=self.options.parsing(),
            display=display,
            where=where,
            table=table,
            summary=self.summary,
        )

    # ----------------------------------------------------------------- deals

    def _deals(self, raw: pd.DataFrame, accounts: pd.DataFrame | None) -> pd.DataFrame:
        raw = self._drop_archived(raw, "deals")
        for key in ("deal_id", "created"):
            if self._col(raw, DEAL_COLUMNS, key) is None:
                raise ImportInputError(
                    f"{', '.join(dict.fromkeys(raw[SRC]))}: no {DEAL_COLUMNS[key][0]!r} column "
                    f"(also accepted: {', '.join(DEAL_COLUMNS[key][1:])})"
                )
        ex = self._extractor(raw, "deals", "deals")
        col = lambda key: self._col(raw, DEAL_COLUMNS, key)  # noqa: E731
        cols: dict[str, pd.Series] = {
            "deal_id": ex.text(Column(column=col("deal_id")), "deal_id"),
            "created_at": ex.timestamps(Column(column=col("created")), "created_at", required=True),
        }
        self.deal_ids = cols["deal_id"]
        cols["account_id"] = self._deal_accounts(raw, accounts)
        for name, key in (
            ("owner_id", "owner"),
            ("source", "source"),
            ("pipeline", "pipeline"),
            ("type", "type"),
        ):
            if col(key):
                cols[name] = ex.text(Column(column=col(key)), name)
        cols["amount"] = self._amount(raw, ex)
        outcome = self._outcome(raw)
        cols["outcome"] = outcome
        if col("close"):
            close = ex.timestamps(Column(column=col("close")), "closed_at", required=False)
            cols["closed_at"] = close.where(outcome.notna())
            cols["expected_close_date"] = close.where(outcome.isna())
        self._merged_deals(raw, cols["deal_id"])
        self._note_unused(raw)
        return ex.finish({k: v for k, v in cols.items() if v is not None})

    def _note_unused(self, raw: pd.DataFrame) -> None:
        used = {self._col(raw, DEAL_COLUMNS, key) for key in DEAL_COLUMNS}
        unused = [
            c
            for c in raw.columns
            if c not in used and c not in (SRC, LINE) and not _STAGE_DATE.match(c)
        ]
        if unused:
            self.summary.note(
                f"deals export: columns not imported: {', '.join(unused)} (to keep one as a "
                "feature, use a mapping file; only fields known when a deal is created)"
            )

    def _drop_archived(self, raw: pd.DataFrame, table: str) -> pd.DataFrame:
        column = self._col(raw, DEAL_COLUMNS, "archived")
        if column is None:
            return raw
        gone = parse_bool(raw[column]).fillna(False).to_numpy(dtype=bool)
        self.summary.leave_out(
            table, raw[gone], f"archived or deleted in HubSpot ({column} = true)"
        )
        return raw[~gone].reset_index(drop=True)

    def _amount(self, raw: pd.DataFrame, ex: Extractor) -> pd.Series | None:
        home = self._col(raw, DEAL_COLUMNS, "amount_home")
        if home:
            return ex.numbers(Column(column=home), "amount")
        column = self._col(raw, DEAL_COLUMNS, "amount")
        if column is None:
            return None
        currency = self.options.currency
        code = self._col(raw, DEAL_COLUMNS, "currency")
        if currency is not None and currency.column is None and code:
            currency = currency.model_copy(update={"column": code})
        return ex.numbers(Column(column=column), "amount", currency=currency)

    def _outcome(self, raw: pd.DataFrame) -> pd.Series:
        won_col = self._col(raw, DEAL_COLUMNS, "is_won")
        closed_col = self._col(raw, DEAL_COLUMNS, "is_closed")
        out = pd.Series(np.nan, index=raw.index, dtype="str")
        if won_col and closed_col:
            won, closed = parse_bool(raw[won_col]), parse_bool(raw[closed_col])
            out = out.mask((closed & won).fillna(False).to_numpy(dtype=bool), WON)
            return out.mask((closed & ~won).fillna(False).to_numpy(dtype=bool), LOST)
        outcome = outcome_from_stage(
            self.stages,
            raw[self._col(raw, DEAL_COLUMNS, "stage")],
            self.summary,
            where="deals export, Deal Stage",
        )
        if won_col:
            won = parse_bool(raw[won_col]).fillna(False).to_numpy(dtype=bool)
            outcome = outcome.mask(won, WON)
        return outcome.astype("str")

    def _deal_accounts(self, raw: pd.DataFrame, accounts: pd.DataFrame | None) -> pd.Series | None:
        by_id = self._col(raw, DEAL_COLUMNS, "company_id")
        if by_id:
            return (
                _first_listed(raw[by_id])
                .map(lambda v: self.company_merged.get(v, v), na_action="ignore")
                .astype("str")
            )
        by_name = self._col(raw, DEAL_COLUMNS, "company_name")
        if by_name is None:
            return None
        names = _first_listed(raw[by_name])
        if accounts is not None and self.company_names:
            ids = names.map(norm, na_action="ignore").map(self.company_names)
            self.summary.note(
                f"deals linked to companies by name: {int(ids.notna().sum())} of "
                f"{int(names.notna().sum())} names found in the companies export"
            )
            return ids.fillna(names).astype("str")
        return names

    def _merged_deals(self, raw: pd.DataFrame, ids: pd.Series) -> None:
        column = self._col(raw, DEAL_COLUMNS, "merged")
        if column is None:
            return
        for survivor, merged in zip(ids, raw[column], strict=True):
            if isinstance(merged, str):
                for old in re.split(r";", merged):
                    if old.strip():
                        self.deal_merged[old.strip()] = survivor

    # ----------------------------------------------------------------- stage history

    def _history(self, raw: pd.DataFrame) -> pd.DataFrame | None:
        columns = [c for c in raw.columns if c not in (SRC, LINE) and _STAGE_DATE.match(c)]
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
            label = _STAGE_DATE.match(column).group(1)
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
        return _PIPELINE_SUFFIX.sub("", label)

    # ----------------------------------------------------------------- companies

    def _companies(self) -> pd.DataFrame:
        raw = pd.concat(self.company_files, ignore_index=True)
        col = lambda key: self._col(raw, COMPANY_COLUMNS, key)  # noqa: E731
        ex = self._extractor(raw, "companies", "accounts")
        ids = ex.text(Column(column=col("id")), "account_id")
        if col("name"):
            names = raw[col("name")].map(norm, na_action="ignore")
            unique = names[~names.duplicated(keep=False)]
            self.company_names = dict(zip(unique, ids[unique.index], strict=True))
        if col("merged"):
            for survivor, merged in zip(ids, raw[col("merged")], strict=True):
                if isinstance(merged, str):
                    self.company_merged |= {
                        o.strip(): survivor for o in re.split(r";", merged) if o.strip()
                    }
        cols: dict[str, pd.Series] = {"account_id": ids}
        for name, key in (("industry", "industry"), ("country", "country")):
            if col(key):
                cols[name] = ex.text(Column(column=col(key)), name)
        for name, key in (("employees", "employees"), ("annual_revenue", "revenue")):
            if col(key):
                cols[name] = ex.numbers(Column(column=col(key)), name)
        if col("created"):
            cols["created_at"] = ex.timestamps(
                Column(column=col("created")), "created_at", required=False
            )
        return ex.finish(cols)

    # ----------------------------------------------------------------- engagements

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
            "account_id": _first_listed(frame[col("company")]) if col("company") else None,
            "contact_id": _first_listed(frame[col("contact")]) if col("contact") else None,
            "channel": self._engagement_type(frame, path),
        }
        if col("direction"):
            raw = frame[col("direction")]
            email = raw.map(lambda v: _EMAIL_DIRECTION.get(norm(v)), na_action="ignore")
            cols["direction"] = normalise_direction(email.fillna(raw), self.summary, path.name)
        out = ex.finish({k: v for k, v in cols.items() if v is not None})
        out = self._explode_deals(out, deal_names)
        if "account_id" in out:
            out["account_id"] = (
                out["account_id"]
                .map(lambda v: self.company_merged.get(v, v), na_action="ignore")
                .astype("str")
            )
        channel, ignored = self.channels.apply(out["channel"], self.summary)
        self.summary.leave_out(
            "touchpoints",
            out[ignored],
            "channel mapped to null (ignored; tasks are to-dos, not touches)",
        )
        return out.assign(channel=channel)[~ignored]

    def _engagement_type(self, frame: pd.DataFrame, path: Path) -> pd.Series:
        column = self._col(frame, ENGAGEMENT_COLUMNS, "type")
        kind = next((k for k in _FILE_KINDS if k.rstrip("s") in squash(path.stem)), None)
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
        lists = out["deal_id"].map(
            lambda v: [x.strip() for x in re.split(r";", v) if x.strip()], na_action="ignore"
        )
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


def _first_listed(values: pd.Series) -> pd.Series:
    """The first of ``a;b;c`` lists (HubSpot writes several associations that way)."""
    return values.map(lambda v: re.split(r";", v)[0].strip(), na_action="ignore").astype("str")
