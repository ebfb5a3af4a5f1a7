"""Small generated CRMs, params files and a CLI runner for the gate / consumer probes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from typer.testing import CliRunner

from crm.data import CRMData
from crm.schemas import Funnel
from crm.synthetic import generate_crm
from crm.write import write_crm
from pipelines.cli import app

ROOT = Path(__file__).resolve().parents[2]
FUNNEL = Funnel(stages=("lead", "qualified", "meeting", "proposal", "negotiation"),
                won_label="won", lost_label="lost")  # fmt: skip
AS_OF = pd.Timestamp("2026-06-30", tz="UTC")


def generated(n_deals: int, *, seed: int = 5) -> CRMData:
    return generate_crm(
        n_deals=n_deals, seed=seed, start=pd.Timestamp("2024-01-01", tz="UTC"), as_of=AS_OF,
        funnel=FUNNEL, messy=False,
    ).data  # fmt: skip


def write(data: CRMData, folder: Path) -> Path:
    write_crm(data, folder, fmt="parquet")
    return folder


def shuffled_outcomes(data: CRMData, *, seed: int = 0) -> CRMData:
    """The same CRM with the outcomes of its closed deals permuted (a corrupted history)."""
    deals = data.deals.copy()
    closed = deals["outcome"].notna()
    rng = np.random.default_rng(seed)
    deals.loc[closed, "outcome"] = rng.permutation(deals.loc[closed, "outcome"].to_numpy())
    return data.with_table("deals", deals)


def params_file(folder: Path, **features) -> Path:
    """The project's params with paths in ``folder``, quick models, a fixed clock."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["paths"] = {k: str(folder / v) for k, v in params["paths"].items()}
    params["train"]["close"] |= {"n_estimators": 40, "learning_rate": 0.1}
    params["train"]["next_stage"] |= {"n_estimators": 25, "learning_rate": 0.15}
    params["validate"]["as_of"] = "2026-07-01"  # the clock
    params["forecast"] |= {"draws": 200, "backtest_refit_months": 18}  # one backtest fit
    params["features"] |= {"freq": "2W-MON"} | features  # half the snapshots: faster trains
    path = folder / f"params{'-' + '-'.join(map(str, features.values())) if features else ''}.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def invoke(*args):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
