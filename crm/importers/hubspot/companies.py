"""HubSpot companies -> accounts, and what deals and engagements need to find them
(companies by name, merged companies)."""

from __future__ import annotations

import pandas as pd

from crm.importers.hubspot.columns import COMPANY_COLUMNS
from crm.importers.hubspot.export import Export, merged_ids
from crm.importers.mapping import Column
from crm.importers.parsing import norm
from crm.importers.vendor import optional_columns


class CompaniesMixin(Export):
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
            self.company_merged |= merged_ids(ids, raw[col("merged")])
        cols: dict[str, pd.Series] = {"account_id": ids}
        cols |= optional_columns(
            ex,
            text=[
                ("name", col("name")),
                ("industry", col("industry")),
                ("country", col("country")),
            ],
            numbers=[("employees", col("employees")), ("annual_revenue", col("revenue"))],
            timestamps=[("created_at", col("created"))],
        )
        return ex.finish(cols)
