"""Salesforce opportunities -> deals: stage names, won/lost, close dates, kept fields."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm.importers.common import LINE, SRC
from crm.importers.mapping import Column
from crm.importers.names import NameMap, outcome_from_stage, stage_map
from crm.importers.parsing import parse_bool
from crm.importers.salesforce.export import Export
from crm.importers.salesforce.tables import DEFAULT_STAGES, KEEP_FIELDS, USED_FIELDS
from crm.importers.vendor import first_of, optional_columns, with_currency_column, won_lost


class DealsMixin(Export):
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
        if "IsWon" not in opps.columns:
            return pd.Series(np.nan, index=opps.index, dtype="str")
        won = parse_bool(opps["IsWon"])
        closed = parse_bool(opps["IsClosed"]) if "IsClosed" in opps.columns else won
        return won_lost(won, closed)

    def _deals(self, opps: pd.DataFrame) -> pd.DataFrame:
        ex = self._extractor(opps, "opportunity", "deals")
        cols: dict[str, pd.Series] = {
            "deal_id": ex.text(Column(column="Id"), "deal_id"),
            "created_at": ex.timestamps(Column(column="CreatedDate"), "created_at", required=True),
        }
        links = {
            "name": ("Name", "OpportunityName"),
            "account_id": ("AccountId", "AccountName"),
            "owner_id": ("OwnerId", "OwnerName"),
            "owner_name": ("OwnerName",),
            "source": ("LeadSource",),
        }
        cols |= optional_columns(ex, text=[(k, first_of(opps, *c)) for k, c in links.items()])
        if "Amount" in opps.columns:
            code = "CurrencyIsoCode" if "CurrencyIsoCode" in opps else None
            currency = with_currency_column(self.options.currency, code)
            cols["amount"] = ex.numbers(Column(column="Amount"), "amount", currency=currency)
        outcome = self._outcome(opps)
        cols["outcome"] = outcome.astype("str")
        if "CloseDate" in opps.columns:
            close = ex.timestamps(Column(column="CloseDate"), "closed_at", required=False)
            cols["closed_at"] = close.where(outcome.notna())
            cols["_close_date"] = close
        kept = [(a, f if f in opps.columns else None) for f, a in KEEP_FIELDS.items()]
        cols |= optional_columns(ex, text=kept)
        custom = [c for c in opps.columns if c.endswith("__c")]
        for column in custom:
            cols[column] = opps[column]
        self._note_fields(opps, custom)
        return ex.finish(cols)

    def _outcome(self, opps: pd.DataFrame) -> pd.Series:
        """IsClosed/IsWon, else the outcome the mapped StageName implies."""
        outcome = self._flags(opps)
        if outcome.isna().all() and "StageName" in opps.columns:
            outcome = outcome_from_stage(
                self.stages, opps["StageName"], self.summary, where="Opportunity.StageName"
            )
        return outcome

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
