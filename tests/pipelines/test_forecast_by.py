"""``dealcast forecast --by``: per owner and per segment, the XLSX beside the CSV, and a clear
error for a column that is no segment. No training: the champion is a constant close model
(what is tested is the step and its files, not the model), so each run takes seconds."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from crm.synthetic import generate_crm
from crm.write import write_crm
from pipelines.cli import app
from tests.shared import FUNNEL

ROOT = Path(__file__).resolve().parents[2]


class ConstantClose:
    """Every open deal is won with probability 0.3 within the horizon (no win curve)."""

    horizon_days = 180

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.column_stack([np.full(len(X), 0.7), np.full(len(X), 0.3)])


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """(params file, CRM folder) of a small generated CRM: a few deals without a source,
    one owner whose name looks like a formula."""
    folder = tmp_path_factory.mktemp("forecast_by")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["paths"] = {k: str(folder / v) for k, v in params["paths"].items()}
    params["forecast"] |= {"draws": 2000, "months": 3, "quarters": 2}
    params["funnel"]["currency"] = "EUR"
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    data = generate_crm(
        n_deals=600, seed=11, start=pd.Timestamp("2024-01-01", tz="UTC"),
        as_of=pd.Timestamp("2026-06-30", tz="UTC"), funnel=FUNNEL, messy=False,
    ).data  # fmt: skip
    deals = data.deals.copy()
    deals["source"] = deals["source"].astype("object")
    deals.loc[deals.index[::7], "source"] = None
    first = deals["owner_id"].iloc[0]
    deals.loc[deals["owner_id"] == first, "owner_name"] = "=HYPERLINK(evil)"
    write_crm(data.with_table("deals", deals), folder / "raw", fmt="parquet")
    return folder / "params.yaml", folder / "raw"


@pytest.fixture
def champion(monkeypatch):
    import pipelines.tracking_champion

    fake = SimpleNamespace(close=ConstantClose(), horizon_days=180, close_version="const/1")
    monkeypatch.setattr(pipelines.tracking_champion, "champion_of", lambda p: fake)


def forecast(project, out: Path, *by: str):
    params, raw = project
    args = ["forecast", "--data", raw, "--out", out, "--params", params, "--no-track"]
    for name in by:
        args += ["--by", name]
    return CliRunner().invoke(app, [str(a) for a in args])


def test_by_owner_and_segments_add_up_to_the_total(project, champion, tmp_path):
    result = forecast(project, tmp_path, "owner", "source", "industry")
    assert result.exit_code == 0, result.output
    total = pd.read_csv(next(tmp_path.glob("forecast_2*.csv"))).set_index("period")
    deals = pd.read_parquet(project[1] / "deals.parquet")
    for by, column in (("owner", "owner_id"), ("source", "source"), ("industry", None)):
        (csv,) = tmp_path.glob(f"forecast_by_{by}_*.csv")
        table = pd.read_csv(csv, encoding="utf-8-sig", keep_default_na=False)
        sums = table.groupby("period")[["already_won", "open_expected", "new_expected",
                                         "forecast"]].sum()  # fmt: skip
        assert np.allclose(sums, total.loc[sums.index, sums.columns], rtol=1e-9)
        assert (table["p10"] <= table["p50"]).all() and (table["p50"] <= table["p90"]).all()
        groups = set(table["group"]) - {"(not yet created)"}
        if column:  # the groups are the column's values (and "(unknown)" when one is missing)
            values = set(deals[column].dropna().astype(str))
            assert groups - {"(unknown)"} <= values
            assert ("(unknown)" in groups) == deals[column].isna().any()
    owners = pd.read_csv(next(tmp_path.glob("forecast_by_owner_*.csv")), encoding="utf-8-sig")
    names = dict(zip(deals["owner_id"], deals["owner_name"], strict=True))
    named = owners[owners["group"] != "(not yet created)"]
    shown = named["name"].str.removeprefix("'")  # a formula-looking name is quoted
    assert (shown == named["group"].map(names)).all()
    assert "'=HYPERLINK(evil)" in set(named["name"])
    # the CLI's short tables, and the note said once
    assert "forecast by owner, 2026-Q3 (2026-Q2 ends in" in result.output
    assert "forecast by industry, 2026-Q3" in result.output
    assert result.output.count("do not (a quantile of a sum") == 1
    assert "(not yet created)" in result.output


def test_an_unknown_by_column_is_a_clear_error(project, champion, tmp_path):
    result = forecast(project, tmp_path, "colour")
    assert result.exit_code == 2
    assert "'colour'" in result.output and "owner, source, product" in result.output
    assert "industry" in result.output and "Traceback" not in result.output
    assert not list(tmp_path.glob("*"))  # nothing written


def test_the_xlsx_beside_the_csv(project, champion, tmp_path):
    from openpyxl import load_workbook

    assert forecast(project, tmp_path, "owner").exit_code == 0
    (xlsx,) = tmp_path.glob("forecast_2*.xlsx")
    assert xlsx.stem == next(tmp_path.glob("forecast_2*.csv")).stem  # the same dated name
    wb = load_workbook(xlsx)
    assert wb.sheetnames == ["months", "quarters", "by owner", "about"]
    months = wb["months"]
    header = [c.value for c in months[1]]
    assert header[:3] == ["period", "first day", "last day"] and "P50" in header
    assert months.freeze_panes == "B2"
    first = [c for c in months[2]]
    assert isinstance(first[1].value, datetime) and first[1].value == datetime(2026, 6, 1)
    assert first[2].value == datetime(2026, 6, 30)  # the last day, not the next month's first
    money = first[header.index("mean (expected)")]
    assert isinstance(money.value, int) and money.number_format == '#,##0 "EUR"'
    total = pd.read_csv(next(tmp_path.glob("forecast_2*.csv")))
    assert money.value == round(total["forecast"].iloc[0])
    owners = wb["by owner"]
    assert [c.value for c in owners[1]][:3] == ["owner", "name", "period"]
    assert owners.freeze_panes == "C2"
    evil = [r[1] for r in owners.iter_rows(min_row=2) if r[1].value == "=HYPERLINK(evil)"]
    assert evil and all(c.data_type == "s" for c in evil)  # text, never a formula
    about = {r[0].value: r[1].value for r in wb["about"].iter_rows(min_row=2)}
    assert isinstance(about["as of (UTC)"], datetime)
    assert "EUR" in about["money"] and "(not yet created)" in about["by owner"]
    assert about["close model"] == "const/1"
