"""Reading a folder of Salesforce exports: finding the files, record ids, removed records.

:class:`Export` holds what every step of the import shares (the folder, its files, the
options and the summary); the steps are mixins on it (``deals``, ``history``,
``activities``) that ``importer`` puts together.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from crm.importers.common import ImportInputError, ImportSummary
from crm.importers.extract import Extractor
from crm.importers.names import NameMap
from crm.importers.reading import read_export
from crm.importers.salesforce.tables import ALIASES, FILES, OWN_ID
from crm.importers.vendor import VendorMap, drop_flagged, find_export, rename_aliases
from crm.schemas import Funnel

_ID15 = re.compile(r"^[A-Za-z0-9]{15}$")
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_DELETED = "deleted in Salesforce (IsDeleted = true)"
_MERGED = "merged into another record (MasterRecordId set)"


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


class Export:
    """One folder of Salesforce exports and the state its import builds up."""

    stages: NameMap
    channels: NameMap
    opportunity_ids: set[str]
    account_ids: set[str]
    merged_into: dict[str, str]

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
            frame = drop_flagged(frame, "IsDeleted", self.summary, table, _DELETED)
        return frame.reset_index(drop=True)
