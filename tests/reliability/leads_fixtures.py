"""A small prioritised-leads frame whose text cells can be filled with hostile values (for
the export tests of issue 16)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

AS_OF = pd.Timestamp("2026-06-29 23:54:12", tz="UTC")
#: The text columns of the export (everything that is not a number or the as_of stamp).
TEXT_COLUMNS = (
    "deal_id",
    "deal_name",
    "account_id",
    "account_name",
    "owner_id",
    "owner_name",
    "stage",
    "next_stage",
    "reasons_up",
    "reasons_down",
    "model_version",
    "next_stage_model_version",
    "data_fingerprint",
)


def leads(texts: list[str] | None = None) -> pd.DataFrame:
    """Export rows (one per text in ``texts``; every text column holds that text)."""
    texts = texts or ["D1", "D2"]
    n = len(texts)
    frame = pd.DataFrame(
        {
            "rank": range(1, n + 1),
            "owner_rank": [1] * n,
            "days_in_stage": pd.array([3] * n, dtype="Int64"),
            "amount": [-1250.5] + [1000.0] * (n - 1),
            "p_win": [0.25] * n,
            "expected_value": [-312.625] + [250.0] * (n - 1),
            "p_next_stage": [0.5] * n,
            "horizon_days": [180] * n,
            "as_of": pd.Series([AS_OF] * n).astype("datetime64[us, UTC]"),
        }
    )
    for column in TEXT_COLUMNS:
        frame[column] = pd.array(texts, dtype="str")
    return frame


TINY_CRM = {
    "deals.csv": """\
deal_id,created_at,account_id,owner_id,amount,closed_at,outcome
D1,2024-01-05T10:00:00Z,A1,U1,12000,2024-02-20T16:00:00Z,won
D2,2024-01-10T09:00:00Z,A1,U2,3500.50,2024-03-15T12:00:00Z,lost
D3,2024-02-01T14:00:00Z,A1,U1,8000,,
""",
    "stage_history.csv": """\
deal_id,stage,entered_at
D1,lead,2024-01-05T10:00:00Z
D1,qualified,2024-01-12T10:00:00Z
D1,won,2024-02-20T16:00:00Z
D2,lead,2024-01-10T09:00:00Z
D2,lost,2024-03-15T12:00:00Z
D3,lead,2024-02-01T14:00:00Z
D3,proposal,2024-02-20T10:00:00Z
""",
    "touchpoints.csv": """\
touchpoint_id,deal_id,account_id,occurred_at,channel,direction
T1,D1,A1,2024-01-06T09:00:00Z,email,outbound
T2,D3,A1,2024-02-05T10:00:00Z,call,outbound
""",
}


def tiny_crm(folder: Path, **replace: str | bytes | None) -> Path:
    """A small valid CRM folder; ``replace`` maps a file name (``deals_csv`` for
    ``deals.csv``) to other content, or None to leave the file out."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str | bytes | None] = dict(TINY_CRM)
    files |= {k.replace("_csv", ".csv"): v for k, v in replace.items()}
    for name, content in files.items():
        if content is None:
            continue
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            (folder / name).write_text(content, encoding="utf-8")
    return folder


def invoke(*args):
    """``dealcast ARGS`` in-process; exceptions are caught so a traceback shows as one."""
    from typer.testing import CliRunner

    from pipelines.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def assert_clean_exit_2(result, *needles: str) -> None:
    """Exit 2, one ``dealcast: error`` message holding ``needles``, no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output
