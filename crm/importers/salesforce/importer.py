"""``import_salesforce``: the steps of a Salesforce import, in order."""

from __future__ import annotations

from pathlib import Path

from crm.importers.assemble import assemble
from crm.importers.common import ImportResult
from crm.importers.names import unmapped_notes
from crm.importers.reading import require_columns
from crm.importers.salesforce.activities import ActivitiesMixin
from crm.importers.salesforce.deals import DealsMixin
from crm.importers.salesforce.history import HistoryMixin
from crm.importers.vendor import VendorMap
from crm.schemas import Funnel


def import_salesforce(
    folder: Path, *, funnel: Funnel, options: VendorMap | None = None
) -> ImportResult:
    """Import a folder of Salesforce exports (see ``crm.importers.salesforce``)."""
    return _Salesforce(Path(folder), funnel, options or VendorMap()).run()


class _Salesforce(DealsMixin, HistoryMixin, ActivitiesMixin):
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
