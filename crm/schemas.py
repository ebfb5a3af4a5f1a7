"""The CRM data contract as data: the single home of table names, column names and types.

Everything that needs to know which columns a table has, which are required, and how
they are typed reads it from here: the reader, the validator, the generator and the
feature layer. ``docs/data-contract.md`` is the human-readable copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

ColumnKind = Literal["id", "string", "category", "timestamp", "date", "number", "integer"]

#: dtype of every timestamp after loading: UTC, microsecond resolution.
TIMESTAMP_DTYPE = "datetime64[us, UTC]"
#: Canonical names of the terminal outcomes inside dealcast, whatever the CRM calls them.
WON = "won"
LOST = "lost"
OUTCOMES = (WON, LOST)
#: Largest ``deals.amount`` the contract accepts (a trillion in the CRM's currency): a
#: bigger one is a unit or export error, and sums of such amounts overflow to ``inf``.
MAX_AMOUNT = 1e12
#: Channels the contract names as examples; other channels are accepted with a warning.
KNOWN_CHANNELS = (
    "email",
    "call",
    "meeting",
    "demo",
    "webinar",
    "web_visit",
    "content_download",
    "ad_click",
    "event",
    "social",
)
DIRECTIONS = ("inbound", "outbound")
KNOWN_ROLES = ("decision_maker", "champion", "influencer", "finance", "procurement", "user")


@dataclass(frozen=True)
class ColumnSpec:
    """One column of the contract.

    ``minimum`` / ``maximum`` are inclusive bounds for numbers; ``allowed`` lists the only legal
    values (after the funnel's outcome names are mapped to ``won``/``lost``).
    """

    name: str
    kind: ColumnKind
    required: bool = False
    unique: bool = False
    minimum: float | None = None
    maximum: float | None = None
    allowed: tuple[str, ...] | None = None
    meaning: str = ""


@dataclass(frozen=True)
class TableSpec:
    """One table of the contract; ``key`` is its unique id column, if any."""

    name: str
    columns: tuple[ColumnSpec, ...]
    required: bool
    key: str | None
    meaning: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)


ACCOUNTS = TableSpec(
    name="accounts",
    required=False,
    key="account_id",
    meaning="the buying companies",
    columns=(
        ColumnSpec("account_id", "id", required=True, unique=True, meaning="the buying company"),
        ColumnSpec("name", "string", meaning="the company's name; shown, never a feature"),
        ColumnSpec("industry", "category", meaning="sector"),
        ColumnSpec("employees", "integer", minimum=0, meaning="head count"),
        ColumnSpec("annual_revenue", "number", minimum=0, meaning="in the deal currency"),
        ColumnSpec("country", "category"),
        ColumnSpec("created_at", "timestamp", meaning="when the account entered the CRM"),
    ),
)

DEALS = TableSpec(
    name="deals",
    required=True,
    key="deal_id",
    meaning="opportunities, or leads when the funnel starts at lead",
    columns=(
        ColumnSpec("deal_id", "id", required=True, unique=True),
        ColumnSpec("name", "string", meaning="the deal's name; shown, never a feature"),
        ColumnSpec("created_at", "timestamp", required=True, meaning="entered the funnel"),
        ColumnSpec("account_id", "id", meaning="references accounts.account_id"),
        ColumnSpec("owner_id", "id", meaning="the sales rep"),
        ColumnSpec("owner_name", "string", meaning="the rep's name; shown, never a feature"),
        ColumnSpec(
            "amount",
            "number",
            minimum=0,
            maximum=MAX_AMOUNT,
            meaning="expected deal value, one currency",
        ),
        ColumnSpec("source", "category", meaning="lead source / first channel"),
        ColumnSpec("product", "category"),
        ColumnSpec("expected_close_date", "date", meaning="the rep's own close date"),
        ColumnSpec("closed_at", "timestamp", meaning="empty while the deal is open"),
        ColumnSpec("outcome", "string", allowed=OUTCOMES, meaning="won / lost / empty if open"),
    ),
)

STAGE_HISTORY = TableSpec(
    name="stage_history",
    required=False,
    key=None,
    meaning="one row each time a deal enters a stage",
    columns=(
        ColumnSpec("deal_id", "id", required=True, meaning="references deals.deal_id"),
        ColumnSpec("stage", "string", required=True, meaning="a funnel stage, won or lost"),
        ColumnSpec("entered_at", "timestamp", required=True),
    ),
)

TOUCHPOINTS = TableSpec(
    name="touchpoints",
    required=False,
    key="touchpoint_id",
    meaning="one row per interaction between seller and buyer",
    columns=(
        ColumnSpec("touchpoint_id", "id", unique=True, meaning="unique where given"),
        ColumnSpec("deal_id", "id", meaning="references deals; this or account_id"),
        ColumnSpec("account_id", "id", meaning="account-level touch; this or deal_id"),
        ColumnSpec("occurred_at", "timestamp", required=True),
        ColumnSpec("channel", "category", required=True, meaning="email, call, meeting, ..."),
        ColumnSpec("direction", "category", allowed=DIRECTIONS, meaning="who started it"),
        ColumnSpec("contact_id", "id", meaning="the buyer-side person"),
        ColumnSpec("contact_role", "category", meaning="decision_maker, champion, ..."),
    ),
)

CONTRACT: dict[str, TableSpec] = {t.name: t for t in (ACCOUNTS, DEALS, STAGE_HISTORY, TOUCHPOINTS)}
TABLES: tuple[str, ...] = tuple(CONTRACT)
#: The timestamp each table's rows are "known at" for point-in-time logic.
EVENT_TIME: dict[str, str] = {
    "accounts": "created_at",
    "deals": "created_at",
    "stage_history": "entered_at",
    "touchpoints": "occurred_at",
}


@dataclass(frozen=True)
class Funnel:
    """A company's funnel: ordered open stages and what its CRM calls the two outcomes.

    ``won_label``/``lost_label`` are the CRM's own words; after loading, dealcast always
    uses :data:`WON` and :data:`LOST`. ``exclude_attributes`` names non-contract columns
    that must not become features (fields typed after the fact, e.g. "lead quality").
    """

    stages: tuple[str, ...]
    won_label: str
    lost_label: str
    exclude_attributes: tuple[str, ...] = ()

    @property
    def states(self) -> tuple[str, ...]:
        """Open stages followed by the two outcomes: every legal ``stage_history.stage``."""
        return (*self.stages, WON, LOST)

    def position(self, stage: str) -> int:
        """0-based position of an open stage; outcomes come after every open stage."""
        return self.states.index(stage)


def attribute_columns(frame: pd.DataFrame, table: str) -> list[str]:
    """Columns of ``frame`` that the contract does not name: the CRM's custom fields."""
    known = set(CONTRACT[table].column_names)
    return [c for c in frame.columns if c not in known]


def empty_frame(table: str) -> pd.DataFrame:
    """A zero-row frame with the typed columns of ``table``."""
    spec = CONTRACT[table]
    return pd.DataFrame({c.name: pd.Series([], dtype=dtype_of(c.kind)) for c in spec.columns})


def dtype_of(kind: ColumnKind) -> str:
    """The pandas dtype a loaded column of this kind has."""
    return {
        "id": "str",
        "string": "str",
        "category": "category",
        "timestamp": TIMESTAMP_DTYPE,
        "date": TIMESTAMP_DTYPE,
        "number": "float64",
        "integer": "float64",
    }[kind]
