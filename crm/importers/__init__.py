"""Importers: from what a CRM exports to the four tables of the data contract.

Each importer reads export files, maps names and values, and returns an
:class:`~crm.importers.common.ImportResult`: the :class:`~crm.data.CRMData` and an
:class:`~crm.importers.common.ImportSummary` that accounts for every input row (landed,
combined, or left out with a reason). Writing and validating the result is the caller's
job (``crm.write.write_crm``, ``crm.load.load_crm``); ``dealcast import ...`` does both.
"""

from __future__ import annotations

from crm.importers.common import ImportInputError, ImportResult, ImportSummary

__all__ = ["ImportInputError", "ImportResult", "ImportSummary"]
