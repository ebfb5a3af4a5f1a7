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
# # Funnel exploration
#
# Win rates, conversion, where deals are lost, how long they sit, and whether the latest
# cohorts convert worse — counting open deals right. Reads the CRM folder of `params.yaml`
# (`paths.raw`, written by `make demo`); without it, generates a small synthetic CRM in
# memory. All logic lives in the packages (the same functions as `dealcast validate`, the
# demo and the funnel report); this notebook only calls and draws. The method is in
# `docs/funnel.md`.
#
# Open it in Jupyter: `.venv/bin/jupyter lab notebooks/`, then right-click the file → Open
# With → Notebook (jupytext is installed). It finds `params.yaml` from this folder.
# `DEALCAST_NOTEBOOK_DEALS` sets the size of the in-memory CRM (tests use it).

# %%
# %matplotlib inline
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from crm.load import load_crm
from crm.synthetic import generate_crm
from pipelines.catalog import find_params
from pipelines.params import load_params
from serving.cohorts import cohort_curves
from serving.funnel import WHY_NAIVE, format_summary, funnel_summary, stage_curves
from serving.report_charts import cohort_chart, funnel_chart, incidence_chart, stay_chart

# params.yaml: $DEALCAST_PARAMS, else here or the nearest folder above (Jupyter starts in
# notebooks/); its paths are relative to the project folder, so work from there
params_file = find_params(Path.cwd())
os.chdir(params_file.parent)
params = load_params(params_file)
funnel = params.funnel.to_funnel()
folder = Path(os.environ.get("DEALCAST_NOTEBOOK_DATA", params.paths.raw))

# %%
result = load_crm(folder, funnel=funnel, as_of=None) if folder.exists() else None
if result is not None and result.data is not None:
    data, data_end = result.data, None  # None: open deals censored at the latest event
    source = f"{folder}/"
else:
    n_deals = int(os.environ.get("DEALCAST_NOTEBOOK_DEALS", "3000"))
    data_end = pd.Timestamp(params.generate.as_of, tz="UTC")
    data = generate_crm(
        n_deals=n_deals,
        seed=params.base.seed,
        start=pd.Timestamp(params.generate.start, tz="UTC"),
        as_of=data_end,
        funnel=funnel,
        messy=False,
    ).data
    source = f"a synthetic CRM of {n_deals:,} deals"
summary = funnel_summary(data, funnel=funnel, data_end=data_end)
print(source)
print(format_summary(summary))

# %% [markdown]
# ## Per stage: honest and naive side by side
# `win_rate`, `to_next`, `lost_here`: cumulative incidence from the first entry into the
# stage, open deals censored, with 90 % intervals (`_lo`, `_hi`); `median_days` etc.:
# Kaplan–Meier over every stay, running ones included. `naive_*`: the way most CRMs count.

# %%
print(WHY_NAIVE)
summary.stages

# %%
funnel_chart(summary.stages)

# %% [markdown]
# ## Over days since entering the stage
# Each panel: the share won, lost, gone on to a later stage and lost from this stage, as
# curves with 90 % bands. The value at the right end is the table's number.

# %%
curves = stage_curves(data, funnel=funnel, data_end=summary.data_end)
incidence_chart(curves, list(funnel.stages))

# %% [markdown]
# ## Where deals drop out and where they stall

# %%
loss, slow = summary.biggest_loss, summary.slowest
if loss is not None and slow is not None:
    print(f"most lost from {loss['stage']}: {loss['lost_here']:.1%} of entries")
    print(f"slowest: {slow['stage']}, median {slow['median_days']:.1f} days")
stay_chart(summary.stages)

# %% [markdown]
# ## Cohorts: is the latest pipeline converting worse?
# Win incidence since creation per creation cohort, against the pooled previous cohorts;
# `below_previous` applies the rule of `serving.cohorts` (z < -1.645 at a common day).

# %%
summary.cohorts

# %%
cohort_chart(
    cohort_curves(data, freq=summary.cohort_freq, data_end=summary.data_end),
    summary.cohorts.tail(8),
)

# %% [markdown]
# ## Win rate by lead source

# %%
summary.sources

# %%
created = data.deals.set_index("created_at").resample("MS")["deal_id"].count()
fig, ax = plt.subplots(figsize=(8, 3))
created.plot(ax=ax, color="#3b6ea8")
ax.set_ylabel("deals created per month")
ax.set_title("New deals per month")
fig.tight_layout()
