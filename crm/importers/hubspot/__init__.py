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

from crm.importers.hubspot.importer import import_hubspot

__all__ = ["import_hubspot"]
