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

from crm.importers.salesforce.export import id18
from crm.importers.salesforce.importer import import_salesforce

__all__ = ["id18", "import_salesforce"]
