"""Tiny literal CRM fixtures for the reader and validator tests.

``VALID`` is a complete, valid four-table CRM (line numbers are quoted in the tests, so
keep it stable). The ``crm_dir`` fixture writes it, or a variant, into ``tmp_path`` and loads
it; tests edit single cells or lines to trigger exactly one rule.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crm.load import LoadResult, load_crm
from crm.report import Finding, ValidationReport
from crm.schemas import Funnel

FUNNEL = Funnel(stages=("lead", "qualified", "proposal"), won_label="won", lost_label="lost")
AS_OF = pd.Timestamp("2025-01-01", tz="UTC")

VALID: dict[str, str] = {
    "accounts": """\
account_id,industry,employees,annual_revenue,country,created_at
A1,software,120,2500000,DE,2023-01-10
A2,retail,15,,FR,2023-06-01T08:30:00Z
""",
    # D1 line 2 (won), D2 line 3 (lost), D3 line 4 (open)
    "deals": """\
deal_id,created_at,account_id,owner_id,amount,source,product,expected_close_date,closed_at,outcome,lead_score
D1,2024-01-05T10:00:00Z,A1,U1,12000,webinar,core,2024-03-01,2024-02-20T16:00:00Z,won,80
D2,2024-01-10T09:00:00Z,A2,U2,3500.50,ad_click,lite,2024-04-01,2024-03-15T12:00:00Z,lost,35
D3,2024-02-01T14:00:00Z,A1,U1,8000,referral,core,2024-05-01,,,60
""",
    "stage_history": """\
deal_id,stage,entered_at
D1,lead,2024-01-05T10:00:00Z
D1,qualified,2024-01-12T10:00:00Z
D1,won,2024-02-20T16:00:00Z
D2,lead,2024-01-10T09:00:00Z
D2,lost,2024-03-15T12:00:00Z
D3,lead,2024-02-01T14:00:00Z
D3,proposal,2024-02-20T10:00:00Z
""",
    "touchpoints": """\
touchpoint_id,deal_id,account_id,occurred_at,channel,direction,contact_id,contact_role
T1,D1,A1,2024-01-06T09:00:00Z,email,outbound,C1,champion
T2,D1,A1,2024-01-15T15:00:00Z,meeting,outbound,C2,decision_maker
T3,,A2,2024-01-08T11:00:00Z,webinar,inbound,C3,user
T4,D3,A1,2024-02-05T10:00:00Z,call,outbound,C1,champion
""",
}


def set_cell(text: str, line: int, column: str, value: str) -> str:
    """``text`` (a CSV without quoted commas) with one cell replaced; ``line`` is 1-based."""
    lines = text.splitlines()
    header = lines[0].split(",")
    cells = lines[line - 1].split(",")
    cells[header.index(column)] = value
    lines[line - 1] = ",".join(cells)
    return "\n".join(lines) + "\n"


def set_line(text: str, line: int, new: str | None) -> str:
    """``text`` with one line replaced (``None`` deletes it); ``line`` is 1-based."""
    lines = text.splitlines()
    if new is None:
        del lines[line - 1]
    else:
        lines[line - 1] = new
    return "\n".join(lines) + "\n"


def add_line(text: str, new: str) -> str:
    return text + new + "\n"


class CRMFolder:
    """A CRM folder under construction in a temporary directory."""

    valid = VALID
    funnel = FUNNEL
    as_of = AS_OF
    set_cell = staticmethod(set_cell)
    set_line = staticmethod(set_line)
    add_line = staticmethod(add_line)

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, **tables: str | bytes | None) -> Path:
        """Write the valid CRM with ``tables`` replaced (None = leave the table out).

        Keys may be table names (written as ``<name>.csv``) or full file names.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        content: dict[str, str | bytes | None] = {f"{k}.csv": v for k, v in VALID.items()}
        for key, value in tables.items():
            content[key if "." in key else f"{key}.csv"] = value
        for name, value in content.items():
            path = self.root / name
            if value is None:
                path.unlink(missing_ok=True)
            elif isinstance(value, bytes):
                path.write_bytes(value)
            else:
                path.write_text(value, encoding="utf-8")
        return self.root

    def load(self, funnel: Funnel = FUNNEL, as_of: pd.Timestamp | None = AS_OF) -> LoadResult:
        return load_crm(self.root, funnel=funnel, as_of=as_of)

    def run(self, funnel: Funnel = FUNNEL, **tables: str | bytes | None) -> LoadResult:
        """Write the valid CRM with ``tables`` replaced, then load it."""
        self.write(**tables)
        return self.load(funnel=funnel)


def only(report: ValidationReport, rule: str) -> Finding:
    """The single finding of ``rule`` (fails the test with the report otherwise)."""
    found = [f for f in report.findings if f.rule == rule]
    assert len(found) == 1, f"expected one {rule!r} finding, got:\n{report.to_text()}"
    return found[0]


@pytest.fixture
def crm_dir(tmp_path: Path) -> CRMFolder:
    """A writer/loader for a CRM folder in ``tmp_path`` (see :class:`CRMFolder`)."""
    return CRMFolder(tmp_path / "crm")


@pytest.fixture
def finding():
    """``finding(report, rule)``: the single finding of that rule."""
    return only


@pytest.fixture(scope="session")
def valid_tables() -> dict[str, str]:
    """The CSV text of the valid CRM, by table name (a copy; safe to use with hypothesis)."""
    return dict(VALID)


@pytest.fixture(scope="session")
def funnel() -> Funnel:
    """The funnel of the valid CRM."""
    return FUNNEL
