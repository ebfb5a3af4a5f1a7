"""``dealcast score`` end to end on small generated data with a temporary MLflow store:
no champion -> exit 2; train; score -> three files, byte-identical CSV on a rerun; owner
filter; a date with no open deal -> exit 2."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
import yaml
from openpyxl import load_workbook
from typer.testing import CliRunner

from crm.schemas import Funnel
from crm.synthetic import generate_crm
from crm.write import write_crm
from features.snapshots import open_deals_at
from pipelines.cli import app
from serving.score import COLUMNS

ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2026-03-02"
STEM = f"prioritised_leads_{AS_OF}"


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory, mlflow_db):
    """A folder with a small CRM, fast params and its own (empty) MLflow store."""
    folder = tmp_path_factory.mktemp("scoring")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["paths"] = {k: str(folder / v) for k, v in params["paths"].items()}
    params["train"]["close"] |= {"n_estimators": 40, "learning_rate": 0.1}
    params["train"]["next_stage"] |= {"n_estimators": 25, "learning_rate": 0.15}
    params["forecast"] |= {"draws": 2000, "backtest_months": 6, "backtest_refit_months": 6}
    params["features"]["freq"] = "2W-MON"  # half the snapshots: a faster train
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    funnel = Funnel(stages=tuple(params["funnel"]["stages"]), won_label="won", lost_label="lost")
    crm = generate_crm(
        n_deals=800, seed=5, start=pd.Timestamp("2024-01-01", tz="UTC"),
        as_of=pd.Timestamp("2026-06-30", tz="UTC"), funnel=funnel, messy=False,
    )  # fmt: skip
    write_crm(crm.data, folder / "raw", fmt="parquet")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_db(folder))
        yield folder, crm.data


def _score(folder: Path, *extra):
    return invoke(
        "score", "--data", folder / "raw", "--as-of", AS_OF, "--params", folder / "params.yaml",
        *extra,
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(project):
    """The project after ``dealcast train`` and a first ``dealcast score``."""
    folder, data = project
    trained = invoke(
        "train", "--data", folder / "raw", "--as-of", AS_OF, "--params", folder / "params.yaml"
    )
    assert trained.exit_code == 0, trained.output
    result = _score(folder)
    assert result.exit_code == 0, result.output
    return folder, data


def test_score_before_any_training_says_to_train_first(project, tmp_path, monkeypatch, mlflow_db):
    folder, _ = project
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_db(tmp_path))
    result = _score(folder, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "no champion model yet: run `dealcast train` (or `make demo`) first" in result.output
    assert not (tmp_path / "out").exists()


def test_score_writes_a_reproducible_ranked_export(trained):
    folder, data = trained
    exports = folder / "data/exports"
    files = {fmt: exports / STEM / f"{STEM}.{fmt}" for fmt in ("csv", "xlsx", "parquet")}
    assert all(p.exists() for p in files.values())
    first = files["csv"].read_bytes()
    leads = pd.read_csv(files["csv"])
    assert list(leads.columns) == list(COLUMNS)
    as_of = pd.DatetimeIndex([pd.Timestamp(AS_OF, tz="UTC")])
    assert sorted(leads["deal_id"]) == sorted(open_deals_at(data.deals, as_of)["deal_id"])
    assert leads["rank"].tolist() == list(range(1, len(leads) + 1))
    assert leads["model_version"].eq("dealcast-close-probability v1").all()
    assert leads["data_fingerprint"].nunique() == 1
    assert pd.read_parquet(files["parquet"])["deal_id"].tolist() == leads["deal_id"].tolist()
    sheet = load_workbook(io.BytesIO(files["xlsx"].read_bytes()))["leads"]
    assert sheet.max_row == len(leads) + 1

    again = _score(folder)
    assert again.exit_code == 0, again.output
    assert files["csv"].read_bytes() == first
    assert sorted(p.name for p in exports.iterdir()) == [".sets", STEM]  # no temp files left
    assert len(list((exports / ".sets").iterdir())) == 1  # the replaced set is gone


def test_scoring_leaves_the_champions_model_folder_alone(trained):
    folder, _ = trained
    models = folder / "mlruns"
    before = {p: p.stat().st_mtime_ns for p in models.rglob("*")}
    assert _score(folder, "--out", folder / "again").exit_code == 0
    assert {p: p.stat().st_mtime_ns for p in models.rglob("*")} == before
    assert not list(models.rglob("registered_model_meta"))


def test_owner_filter_exports_only_their_deals_with_team_ranks(trained):
    folder, _ = trained
    full = pd.read_csv(folder / f"data/exports/{STEM}/{STEM}.csv")
    owners = full["owner_id"].value_counts().index[:2].tolist()
    result = _score(folder, "--owner", owners[0], "--owner", owners[1], "--out", folder / "mine")
    assert result.exit_code == 0, result.output
    name = f"{STEM}_owner-{min(owners)}_owner-{max(owners)}"
    mine = pd.read_csv(folder / "mine" / name / f"{name}.csv")
    assert set(mine["owner_id"]) == set(owners)
    expected = full[full["owner_id"].isin(owners)].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, expected)


def test_unknown_owner_and_a_date_without_open_deals_exit_2(trained):
    folder, _ = trained
    result = _score(folder, "--owner", "nobody", "--out", folder / "none")
    assert result.exit_code == 2 and "owner(s) nobody" in result.output
    result = invoke(
        "score", "--data", folder / "raw", "--as-of", "2023-06-01",
        "--params", folder / "params.yaml", "--out", folder / "none",
    )  # fmt: skip
    assert result.exit_code == 2 and "no deal open at 2023-06-01" in result.output
    assert not (folder / "none").exists()


def test_hostile_ids_reach_the_spreadsheets_as_text(trained, tmp_path):
    """Issue 16 items 1 and 11 end to end: formula-like deal and owner ids are scored, the
    CSV cells are quote-prefixed, the XLSX holds no formula, the Parquet the raw ids; owners
    ``a/b`` and ``a-b`` get their own files."""
    import zipfile

    folder, data = trained
    payloads = ['=HYPERLINK("http://x","x")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3"]
    as_of = pd.DatetimeIndex([pd.Timestamp(AS_OF, tz="UTC")])
    open_ids = open_deals_at(data.deals, as_of)["deal_id"].tolist()[: len(payloads)]
    rename = dict(zip(open_ids, payloads, strict=True))
    deals = data.deals.assign(deal_id=data.deals["deal_id"].replace(rename))
    deals.loc[deals["deal_id"] == payloads[0], "owner_id"] = "a/b"
    deals.loc[deals["deal_id"] == payloads[1], "owner_id"] = "a-b"
    history = data.stage_history.assign(deal_id=data.stage_history["deal_id"].replace(rename))
    touches = data.touchpoints.assign(deal_id=data.touchpoints["deal_id"].replace(rename))
    crm = data.with_table("deals", deals).with_table("stage_history", history)
    write_crm(crm.with_table("touchpoints", touches), tmp_path / "raw", fmt="csv")
    run = invoke(
        "score", "--data", tmp_path / "raw", "--as-of", AS_OF, "--out", tmp_path / "x",
        "--params", folder / "params.yaml",
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    base = tmp_path / "x" / STEM / STEM
    csv_ids = pd.read_csv(f"{base}.csv", dtype=str)["deal_id"]
    assert {"'" + p for p in payloads} <= set(csv_ids)
    assert set(payloads) <= set(pd.read_parquet(f"{base}.parquet")["deal_id"])
    with zipfile.ZipFile(f"{base}.xlsx") as archive:
        assert "<f>" not in archive.read("xl/worksheets/sheet1.xml").decode("utf-8")
    names = []
    for owner in ("a/b", "a-b"):
        result = invoke(
            "score", "--data", tmp_path / "raw", "--as-of", AS_OF, "--out", tmp_path / "o",
            "--owner", owner, "--params", folder / "params.yaml",
        )  # fmt: skip
        assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "o").iterdir() if not p.name.startswith("."))
    assert names == [f"{STEM}_owner-a%2Fb", f"{STEM}_owner-a-b"]


def test_the_next_days_export_lists_what_changed_and_explain_agrees(trained, tmp_path):
    """Day 1 then day 2 into one folder: day 2's workbook has a ``changes`` sheet (new
    deals, stage moves, closed deals since day 1), the CLI says so, and ``explain`` on a
    deal repeats its exported p_win with every driver."""
    folder, _ = trained
    out = tmp_path / "exports"
    first = invoke("score", "--data", folder / "raw", "--as-of", "2026-02-23", "--out", out,
                   "--params", folder / "params.yaml")  # fmt: skip
    assert first.exit_code == 0, first.output
    assert "since the export of" not in first.output
    second = _score(folder, "--out", out)
    assert second.exit_code == 0, second.output
    assert "since the export of 2026-02-23" in second.output
    book = load_workbook(io.BytesIO((out / STEM / f"{STEM}.xlsx").read_bytes()))
    assert book.sheetnames == ["leads", "changes", "about"]
    rows = list(book["changes"].iter_rows(values_only=True))
    kinds = {r[rows[0].index("change")] for r in rows[1:]}
    assert {"new", "stage moved"} <= kinds and kinds & {"won", "lost"}
    leads = pd.read_parquet(out / STEM / f"{STEM}.parquet")
    top = leads.iloc[0]
    explained = invoke("explain", top["deal_id"], "--data", folder / "raw", "--as-of", AS_OF,
                       "--params", folder / "params.yaml")  # fmt: skip
    assert explained.exit_code == 0, explained.output
    assert f"p_win {top['p_win']:.3f}" in explained.output
    assert "raising p_win (log-odds):" in explained.output and "history" in explained.output
    missing = invoke("explain", "NO-SUCH-DEAL", "--data", folder / "raw",
                     "--params", folder / "params.yaml")  # fmt: skip
    assert missing.exit_code == 2 and "not in the CRM" in missing.output
