"""Issue 16 item 4: the CSV, XLSX and Parquet of one export are replaced as a set. A crash
(an exception, or kill -9) while writing leaves the previous set complete; what a crashed
run left is removed by the next run; ``report`` reads the published set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from leads_fixtures import AS_OF, leads

import serving.export
from pipelines.io import SETS
from pipelines.reporting import latest_dated
from pipelines.scoring import write_export

ROOT = Path(__file__).resolve().parents[2]
STEM = "prioritised_leads_2026-06-29"


def _write(out: Path, ids: list[str]) -> dict[str, Path]:
    return write_export(leads(ids), out, as_of=AS_OF, horizon_days=180, priority="p_win")


def _set_ids(out: Path) -> dict[str, list[str]]:
    """The deal ids each file of the published set holds."""
    folder = out / STEM
    return {
        "csv": pd.read_csv(folder / f"{STEM}.csv")["deal_id"].tolist(),
        "xlsx": pd.read_excel(folder / f"{STEM}.xlsx", sheet_name="leads")["deal_id"].tolist(),
        "parquet": pd.read_parquet(folder / f"{STEM}.parquet")["deal_id"].tolist(),
    }


def _litter(out: Path) -> list[str]:
    hidden = [p.name for p in out.iterdir() if p.name.startswith(".") and p.name != SETS]
    sets = out / SETS
    live = {os.path.basename(os.readlink(p)) for p in out.iterdir() if p.is_symlink()}
    stale = [p.name for p in sets.iterdir() if p.name not in live] if sets.is_dir() else []
    return hidden + stale


def test_the_set_is_published_under_one_folder(tmp_path):
    files = _write(tmp_path, ["D1", "D2"])
    assert {p.parent for p in files.values()} == {tmp_path / STEM}
    assert (tmp_path / STEM).is_symlink()
    assert _set_ids(tmp_path) == {k: ["D1", "D2"] for k in ("csv", "xlsx", "parquet")}
    assert _litter(tmp_path) == []


def test_an_exception_mid_write_leaves_the_old_set_whole(tmp_path, monkeypatch):
    _write(tmp_path, ["D1", "D2"])

    def crash(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(serving.export, "xlsx_bytes", crash)  # after the new CSV is written
    with pytest.raises(OSError):
        _write(tmp_path, ["N1", "N2", "N3"])
    assert _set_ids(tmp_path) == {k: ["D1", "D2"] for k in ("csv", "xlsx", "parquet")}
    assert _litter(tmp_path) == []


def test_kill_9_mid_write_keeps_the_old_set_and_the_next_run_cleans_up(tmp_path):
    _write(tmp_path, ["D1", "D2"])
    started = tmp_path / "started"
    script = f"""
import sys, time
from pathlib import Path
sys.path.insert(0, {str(Path(__file__).parent)!r})
import serving.export
from leads_fixtures import AS_OF, leads
from pipelines.scoring import write_export
def slow(*a, **k):
    Path({str(started)!r}).write_text("x")
    time.sleep(60)
serving.export.xlsx_bytes = slow
write_export(leads(["N1"]), Path({str(tmp_path)!r}), as_of=AS_OF, horizon_days=180,
             priority="p_win")
"""
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT)
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert started.exists(), "the writer never started"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _set_ids(tmp_path) == {k: ["D1", "D2"] for k in ("csv", "xlsx", "parquet")}
    assert _litter(tmp_path)  # the killed run's staging folder is there ...
    (tmp_path / f".{STEM}.csv.a1b2c3").write_text("old layout temp")  # ... and older litter
    (tmp_path / f".{STEM}.parquet.0123456789ab.tmp").write_text("old layout temp")
    _write(tmp_path, ["N1", "N2"])
    assert _set_ids(tmp_path) == {k: ["N1", "N2"] for k in ("csv", "xlsx", "parquet")}
    assert _litter(tmp_path) == []  # ... and gone after the next successful run


def test_a_rerun_replaces_the_set_and_the_old_flat_files(tmp_path):
    for fmt in ("csv", "xlsx", "parquet"):
        (tmp_path / f"{STEM}.{fmt}").write_text("the layout before sets")
    _write(tmp_path, ["D1"])
    _write(tmp_path, ["D2"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [SETS, STEM]
    assert len(list((tmp_path / SETS).iterdir())) == 1
    assert _set_ids(tmp_path)["parquet"] == ["D2"]


def test_report_reads_the_latest_set_and_still_the_flat_layout(tmp_path):
    when = pd.Timestamp("2026-07-31", tz="UTC")
    old = tmp_path / "prioritised_leads_2026-05-31.parquet"
    leads(["OLD"]).to_parquet(old)
    assert latest_dated(tmp_path, "prioritised_leads", ".parquet", when) == old
    files = _write(tmp_path, ["D1"])
    assert latest_dated(tmp_path, "prioritised_leads", ".parquet", when) == files["parquet"]
    owner = write_export(
        leads(["D9"]), tmp_path, as_of=AS_OF + pd.Timedelta(days=1), horizon_days=180,
        priority="p_win", owners=("U1",),
    )  # fmt: skip
    assert owner["parquet"].parent.name.endswith("_owner-U1")
    assert latest_dated(tmp_path, "prioritised_leads", ".parquet", when) == files["parquet"]


def test_a_real_folder_in_place_of_the_link_is_replaced(tmp_path):
    """``cp -rL`` or a restore from a backup turns the link into a real folder."""
    (tmp_path / STEM).mkdir()
    (tmp_path / STEM / f"{STEM}.csv").write_text("deal_id\nOLD\n")
    _write(tmp_path, ["D1"])
    assert (tmp_path / STEM).is_symlink()
    assert _set_ids(tmp_path)["csv"] == ["D1"]
    assert _litter(tmp_path) == []
