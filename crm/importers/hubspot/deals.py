"""HubSpot deals: ids, owners, amounts, won/lost, the company each deal belongs to."""

from __future__ import annotations

import pandas as pd

from crm.importers.common import LINE, SRC, ImportInputError
from crm.importers.extract import Extractor
from crm.importers.hubspot.columns import DEAL_COLUMNS, STAGE_DATE
from crm.importers.hubspot.export import Export, first_listed, merged_ids
from crm.importers.mapping import Column
from crm.importers.names import outcome_from_stage
from crm.importers.parsing import norm, parse_bool
from crm.importers.vendor import optional_columns, repoint, with_currency_column, won_lost
from crm.schemas import WON


class DealsMixin(Export):
    def _deals(self, raw: pd.DataFrame, accounts: pd.DataFrame | None) -> pd.DataFrame:
        raw = self._drop_archived(raw, "deals")
        self._require_deal_columns(raw)
        ex = self._extractor(raw, "deals", "deals")
        col = lambda key: self._col(raw, DEAL_COLUMNS, key)  # noqa: E731
        cols: dict[str, pd.Series] = {
            "deal_id": ex.text(Column(column=col("deal_id")), "deal_id"),
            "created_at": ex.timestamps(Column(column=col("created")), "created_at", required=True),
        }
        self.deal_ids = cols["deal_id"]
        cols["account_id"] = self._deal_accounts(raw, accounts)
        names = {"name": "name", "owner_id": "owner", "source": "source",
                 "pipeline": "pipeline", "type": "type"}  # fmt: skip
        cols |= optional_columns(ex, text=[(name, col(key)) for name, key in names.items()])
        if col("owner") and col("owner") != "hubspot_owner_id":  # a UI export: the owner's name
            cols["owner_name"] = cols.get("owner_id")
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

    def _require_deal_columns(self, raw: pd.DataFrame) -> None:
        for key in ("deal_id", "created"):
            if self._col(raw, DEAL_COLUMNS, key) is None:
                raise ImportInputError(
                    f"{', '.join(dict.fromkeys(raw[SRC]))}: no {DEAL_COLUMNS[key][0]!r} column "
                    f"(also accepted: {', '.join(DEAL_COLUMNS[key][1:])})"
                )

    def _note_unused(self, raw: pd.DataFrame) -> None:
        used = {self._col(raw, DEAL_COLUMNS, key) for key in DEAL_COLUMNS}
        unused = [
            c
            for c in raw.columns
            if c not in used and c not in (SRC, LINE) and not STAGE_DATE.match(c)
        ]
        if unused:
            self.summary.note(
                f"deals export: columns not imported: {', '.join(unused)} (to keep one as a "
                "feature, use a mapping file; only fields known when a deal is created)"
            )

    def _amount(self, raw: pd.DataFrame, ex: Extractor) -> pd.Series | None:
        home = self._col(raw, DEAL_COLUMNS, "amount_home")
        if home:
            return ex.numbers(Column(column=home), "amount")
        column = self._col(raw, DEAL_COLUMNS, "amount")
        if column is None:
            return None
        code = self._col(raw, DEAL_COLUMNS, "currency")
        currency = with_currency_column(self.options.currency, code)
        return ex.numbers(Column(column=column), "amount", currency=currency)

    def _outcome(self, raw: pd.DataFrame) -> pd.Series:
        won_col = self._col(raw, DEAL_COLUMNS, "is_won")
        closed_col = self._col(raw, DEAL_COLUMNS, "is_closed")
        if won_col and closed_col:
            return won_lost(parse_bool(raw[won_col]), parse_bool(raw[closed_col]))
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
            return repoint(first_listed(raw[by_id]), self.company_merged)
        by_name = self._col(raw, DEAL_COLUMNS, "company_name")
        if by_name is None:
            return None
        names = first_listed(raw[by_name])
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
        if column is not None:
            self.deal_merged |= merged_ids(ids, raw[column])
