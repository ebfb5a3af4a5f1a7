"""``dealcast features``: the snapshot series, the scoring snapshot, the catalogue."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from feature_fixtures import generated
from typer.testing import CliRunner

from crm.write import write_crm
from features.catalog import catalog_markdown, feature_catalog
from pipelines.cli import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_series_then_scoring_snapshot(tmp_path, params_file):
    raw = tmp_path / "crm"
    write_crm(generated(7), raw, fmt="parquet")
    result = invoke(
        "features", "--data", str(raw), "--out", str(tmp_path / "f"), "--params", str(params_file)
    )
    assert result.exit_code == 0, result.output
    features = pd.read_parquet(tmp_path / "f" / "features.parquet")
    labels = pd.read_parquet(tmp_path / "f" / "labels.parquet")
    assert len(features) > 100 and features["as_of"].nunique() > 20  # a year, every 2 weeks
    assert (features["as_of"].dt.day_of_week == 0).all()  # 2W-MON (the suite's params)
    assert (features["as_of"].drop_duplicates().diff().dropna() == pd.Timedelta(days=14)).all()
    pd.testing.assert_frame_equal(features[["deal_id", "as_of"]], labels[["deal_id", "as_of"]])
    assert str(labels["won_within_30d"].dtype) == "boolean"

    result = invoke(
        "features",
        "--data",
        str(raw),
        "--out",
        str(tmp_path / "s"),
        "--as-of",
        "2024-10-01",
        "--params",
        str(params_file),
    )
    assert result.exit_code == 0, result.output
    one = pd.read_parquet(tmp_path / "s" / "features.parquet")
    assert set(one["as_of"]) == {pd.Timestamp("2024-10-01", tz="UTC")}
    assert "1 snapshot(s)" in result.output


def test_unusable_data_exits_2_with_the_report(tmp_path, params_file):
    (tmp_path / "crm").mkdir()
    result = invoke(
        "features",
        "--data",
        str(tmp_path / "crm"),
        "--out",
        str(tmp_path / "f"),
        "--params",
        str(params_file),
    )
    assert result.exit_code == 2
    assert not (tmp_path / "f" / "features.parquet").exists()


def test_list_prints_the_catalogue_without_data():
    result = invoke("features", "--list")
    assert result.exit_code == 0
    assert (
        "tp__decision_maker_engaged" in result.output and "won_within_{horizon}d" in result.output
    )


def test_docs_page_is_the_generated_catalogue():
    page = (ROOT / "docs" / "features.md").read_text(encoding="utf-8")
    assert page == catalog_markdown(feature_catalog(include_labels=True)), (
        "docs/features.md is stale: dealcast features --list --markdown > docs/features.md"
    )
