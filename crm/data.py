"""The in-memory CRM: the four typed tables that every later step consumes."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import pandas as pd

from crm.schemas import TABLES


@dataclass(frozen=True)
class CRMData:
    """A company's CRM history, typed as ``crm.schemas`` says.

    Only ``deals`` is required; an absent table is ``None`` ("no such data"), never an
    empty stand-in, so feature families can tell "no touchpoints table" from "no touches".
    Timestamps are ``datetime64[us, UTC]``; outcomes and terminal stages use the canonical
    ``won``/``lost`` whatever the CRM calls them. Columns the contract does not name are
    kept as attributes.
    """

    deals: pd.DataFrame
    accounts: pd.DataFrame | None = None
    stage_history: pd.DataFrame | None = None
    touchpoints: pd.DataFrame | None = None

    def table(self, name: str) -> pd.DataFrame | None:
        """The table called ``name`` (one of ``crm.schemas.TABLES``), or None if absent."""
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}; the contract has {', '.join(TABLES)}")
        return getattr(self, name)

    def present(self) -> tuple[str, ...]:
        """Names of the tables this CRM has, in contract order."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name) is not None)

    def with_table(self, name: str, frame: pd.DataFrame | None) -> CRMData:
        """A copy with one table replaced (frames are shared, never mutated)."""
        return replace(self, **{name: frame})
