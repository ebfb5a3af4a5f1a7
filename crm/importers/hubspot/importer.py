"""``import_hubspot``: the steps of a HubSpot import, in order."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crm.importers.assemble import assemble
from crm.importers.common import ImportResult
from crm.importers.hubspot.companies import CompaniesMixin
from crm.importers.hubspot.deals import DealsMixin
from crm.importers.hubspot.engagements import EngagementsMixin
from crm.importers.hubspot.history import HistoryMixin
from crm.importers.names import unmapped_notes
from crm.importers.vendor import VendorMap
from crm.schemas import Funnel


def import_hubspot(
    folder: Path, *, funnel: Funnel, options: VendorMap | None = None
) -> ImportResult:
    """Import a folder of HubSpot exports (see ``crm.importers.hubspot``)."""
    return _HubSpot(Path(folder), funnel, options or VendorMap()).run()


class _HubSpot(DealsMixin, HistoryMixin, CompaniesMixin, EngagementsMixin):
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
