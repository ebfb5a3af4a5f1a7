# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Model review
#
# Which models serve (the MLflow `@champion`), how well their settings did on the
# time-ordered backtest against the baselines — calibration, lift, by stage — and which
# drivers the explanations lean on. Run `make demo` (or `dealcast train`) first: this
# notebook reads the MLflow registry and `data/reports/backtest/`, it trains nothing.

# %%
# %matplotlib inline
import os
from pathlib import Path

import pandas as pd

from models.evaluate import close_metric_table, next_stage_metric_table
from models.plots import lift_chart, reliability_diagram
from pipelines.catalog import find_params
from pipelines.env import configure
from pipelines.params import load_params
from pipelines.tracking import load_champion

# params.yaml: $DEALCAST_PARAMS, else here or the nearest folder above (Jupyter starts in
# notebooks/); its paths are relative to the project folder, so work from there
params_file = find_params(Path.cwd())
os.chdir(params_file.parent)
configure(params_file.parent, verbose=False)  # the project's MLflow store
params = load_params(params_file)
backtest = params.paths.reports / "backtest"

# %% [markdown]
# ## The champion

# %%
champion = load_champion(
    close_model_name=params.evaluate.close_model_name,
    next_stage_model_name=params.evaluate.next_stage_model_name,
    spec=None,  # model review: the params' feature settings are not checked here
)
print(
    f"close probability: {champion.close_version} (p_win = won within {champion.horizon_days} days)"
)
print(f"next stage:        {champion.next_stage_version}")
print(f"MLflow run:        {champion.run_id}")

# %% [markdown]
# ## Backtest: the model against the baselines
# Trained before the cutoff, tested on every deal open at each later weekly snapshot whose
# outcome is known. Rows with an unknown outcome are kept in the file but not scored.

# %%
pred = pd.read_parquet(backtest / "test_predictions.parquet")
close = close_metric_table(pred)
pd.DataFrame(close["overall"]).T[["roc_auc", "log_loss", "brier", "ece", "top_decile_lift", "n"]]

# %%
by_stage = {
    stage: {name: m["log_loss"] for name, m in table.items()}
    for stage, table in close["by_stage"].items()
}
pd.DataFrame(by_stage).T.round(3)

# %% [markdown]
# ## Calibration and lift
# A probability must be a probability: points on the diagonal mean that of the deals given
# 30 %, about 30 % were won.

# %%
known = pred[pred["won"].notna()]
y = known["won"].astype(bool).to_numpy()
scores = {c: known[c].to_numpy(float) for c in ("p_win", "p_win_stage_rate", "p_win_logreg")}
reliability_diagram(y, scores, n_bins=params.evaluate.ece_bins)

# %%
lift_chart(y, scores, n_bins=10)

# %% [markdown]
# ## Next stage

# %%
pd.DataFrame(next_stage_metric_table(pred)["overall"]).T

# %% [markdown]
# ## What the explanations say
# The phrases most often shown as reasons, up and down, for the deals open at the cutoff.

# %%
if (backtest / "drivers.parquet").exists():
    drivers = pd.read_parquet(backtest / "drivers.parquet")
    shown = drivers.groupby("direction")["phrase"].value_counts().groupby(level=0).head(8)
else:  # the backtest's close model served the stage table: no tree explains anything
    shown = "no drivers: the backtest model serves the stage table (too little signal)"
shown
