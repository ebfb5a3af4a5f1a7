"""The archive of what was said (pipelines.archive) and ``dealcast monitor`` on a small
generated CRM with a hand-built archive: no model is trained."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crm.synthetic import generate_crm
from crm.write import write_crm
from features.snapshots import open_deals_at
from pipelines.archive import NOT_ARCHIVED, archive_leads, read_archive
from pipelines.catalog import ARCHIVE_LEADS, Catalog, archive_partitions, monitor_files
from pipelines.cli import app
from pipelines.params import load_params
from pipelines.scoring import _archive

DAY = pd.Timestamp("2026-01-05", tz="UTC")


class StageTable:
    """A stand-in close model: its stage table says 0.3 for every stage."""

    def predict_baseline(self, X: pd.DataFrame) -> np.ndarray:
        return np.full(len(X), 0.3)


def leads(n: int = 5, *, as_of: pd.Timestamp = DAY, seed: int = 0) -> pd.DataFrame:
    """An export-like frame (the columns the archive keeps, plus one it drops)."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "rank": np.arange(1, n + 1), "deal_id": [f"D{i}" for i in range(n)],
        "owner_id": ["o1", "o2"] * (n // 2) + ["o1"] * (n % 2), "stage": "lead",
        "amount": rng.uniform(1, 100, n), "p_win": rng.uniform(0, 1, n),
        "next_stage": "proposal", "p_next_stage": 0.5, "horizon_days": 180,
        "as_of": as_of, "model_version": "3", "next_stage_model_version": "2",
        "data_fingerprint": "abc", "reasons_up": "x",
    })  # fmt: skip


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_the_same_day_twice_gives_the_same_rows_and_bytes(tmp_path):
    first = archive_leads(tmp_path, leads(), as_of=DAY, close=StageTable())
    before = first.read_bytes()
    shuffled = leads().sample(frac=1, random_state=1)  # another rank order, same deals
    again = archive_leads(tmp_path, shuffled, as_of=DAY + pd.Timedelta(hours=6),
                          close=StageTable())  # fmt: skip
    assert again == first and list(archive_partitions(tmp_path, ARCHIVE_LEADS)) == ["2026-01-05"]
    rows = read_archive(tmp_path, ARCHIVE_LEADS)
    assert len(rows) == 5 and rows["deal_id"].is_unique
    assert "reasons_up" not in rows and (rows["p_win_stage_rate"] == 0.3).all()
    archive_leads(tmp_path, leads(), as_of=DAY, close=StageTable())
    assert first.read_bytes() == before  # idempotent, byte for byte
    assert not [p for p in first.parent.iterdir() if p.name.startswith(".")]  # no temporaries


def test_days_are_partitions_and_read_until(tmp_path):
    later = DAY + pd.Timedelta(days=7)
    archive_leads(tmp_path, leads(), as_of=DAY, close=None)  # no stage table: NaN baseline
    archive_leads(tmp_path, leads(3, as_of=later), as_of=later, close=None)
    assert len(read_archive(tmp_path, ARCHIVE_LEADS)) == 8
    assert len(read_archive(tmp_path, ARCHIVE_LEADS, until=DAY)) == 5
    assert read_archive(tmp_path, ARCHIVE_LEADS)["p_win_stage_rate"].isna().all()
    assert read_archive(tmp_path / "none", ARCHIVE_LEADS).empty


def test_an_owner_run_is_not_archived(params_file):
    p = load_params(params_file)
    root, messages = Catalog(p.paths).archive, []
    _archive(p, leads(), as_of=DAY, close=StageTable(), owners=(), messages=messages)
    team = archive_partitions(root, ARCHIVE_LEADS)["2026-01-05"].read_bytes()
    mine = leads().query("owner_id == 'o1'")
    _archive(p, mine, as_of=DAY, close=StageTable(), owners=("o1",), messages=messages)
    assert messages == [NOT_ARCHIVED]
    assert archive_partitions(root, ARCHIVE_LEADS)["2026-01-05"].read_bytes() == team


def test_an_archive_that_cannot_be_written_is_a_message_not_a_failure(params_file):
    p = load_params(params_file)
    root, messages = Catalog(p.paths).archive, []
    root.parent.mkdir(parents=True, exist_ok=True)
    root.write_text("a file where the archive folder should be")
    _archive(p, leads(), as_of=DAY, close=StageTable(), owners=(), messages=messages)
    assert len(messages) == 1 and messages[0].startswith("not archived: ")


def test_monitor_without_an_archive_exits_2_with_a_clear_message(params_file):
    result = invoke("monitor", "--params", params_file)
    assert result.exit_code == 2
    assert "no archive yet" in result.output and "dealcast score" in result.output


@pytest.fixture
def crm_project(params_file):
    """A small generated CRM and an archive of two past days of it (random p_win)."""
    p = load_params(params_file)
    funnel = p.funnel.to_funnel()
    made = generate_crm(n_deals=300, seed=1, start=pd.Timestamp("2025-01-01", tz="UTC"),
                        as_of=pd.Timestamp("2026-06-30", tz="UTC"), funnel=funnel,
                        messy=False)  # fmt: skip
    write_crm(made.data, p.paths.raw, fmt="csv")
    for day in ("2025-09-01", "2026-03-02"):
        when = pd.Timestamp(day, tz="UTC")
        open_now = open_deals_at(made.data.deals, pd.DatetimeIndex([when]))
        frame = leads(len(open_now), as_of=when).assign(deal_id=open_now["deal_id"].to_numpy())
        archive_leads(Catalog(p.paths).archive, frame, as_of=when, close=StageTable())
    return params_file, p


def test_monitor_writes_its_tables_and_summary(crm_project):
    params_file, p = crm_project
    result = invoke("monitor", "--params", params_file)
    assert result.exit_code == 0, result.output
    assert "realised by scoring month" in result.output and "2025-09" in result.output
    written = [line.split()[-1] for line in result.output.splitlines() if line.startswith("wrote")]
    day = Path(written[0]).stem.rsplit("_", 1)[-1]
    files = monitor_files(Catalog(p.paths).monitor, pd.Timestamp(day))
    assert sorted(written) == sorted(str(f) for f in files.values())
    assert all(path.is_file() for path in files.values())
    early = invoke("monitor", "--params", params_file, "--as-of", "2025-06-01")
    assert early.exit_code == 2 and "no archived scoring day up to 2025-06-01" in early.output
