"""Reading a folder of HubSpot exports: telling deals, companies and engagements apart.

:class:`Export` holds what every step of the import shares (the files by kind, the
options, the name maps and the summary); the steps are mixins on it (``deals``,
``history``, ``companies``, ``engagements``) that ``importer`` puts together.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from crm.importers.common import NOWHERE, SRC, ImportInputError, ImportSummary
from crm.importers.extract import Extractor
from crm.importers.hubspot.columns import (
    COMPANY_COLUMNS,
    DEAL_COLUMNS,
    DEFAULT_CHANNELS,
    DEFAULT_STAGES,
    ENGAGEMENT_COLUMNS,
)
from crm.importers.names import channel_map, stage_map
from crm.importers.reading import read_export
from crm.importers.vendor import VendorMap, drop_flagged, export_files, first_of
from crm.schemas import Funnel


def listed(value: str) -> list[str]:
    """The entries of an ``a;b;c`` list (HubSpot writes several associations that way)."""
    return [x.strip() for x in re.split(r";", value) if x.strip()]


def first_listed(values: pd.Series) -> pd.Series:
    """The first of ``a;b;c`` lists (HubSpot writes several associations that way)."""
    return values.map(lambda v: re.split(r";", v)[0].strip(), na_action="ignore").astype("str")


def merged_ids(survivors: pd.Series, merged: pd.Series) -> dict[str, str]:
    """Merged id -> surviving id, from a column listing the ids merged into each record."""
    out: dict[str, str] = {}
    for survivor, old in zip(survivors, merged, strict=True):
        if isinstance(old, str):
            out |= dict.fromkeys(listed(old), survivor)
    return out


class Export:
    """One folder of HubSpot exports and the state its import builds up."""

    deal_ids: pd.Series

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

    def _drop_archived(self, raw: pd.DataFrame, table: str) -> pd.DataFrame:
        column = self._col(raw, DEAL_COLUMNS, "archived")
        if column is None:
            return raw
        reason = f"archived or deleted in HubSpot ({column} = true)"
        return drop_flagged(raw, column, self.summary, table, reason)
