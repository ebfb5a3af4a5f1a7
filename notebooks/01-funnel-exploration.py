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
# How many deals reach each stage, where they drop out, how long they sit, and which lead
# sources convert. Reads the CRM folder of `params.yaml` (`paths.raw`, written by
# `make demo`); without it, generates a small synthetic CRM in memory. All logic lives in
# the packages; this notebook only calls and draws.
#
# Open it with `jupytext --to notebook notebooks/01-funnel-exploration.py`, or run it as a
# script. `DEALCAST_NOTEBOOK_DEALS` sets the size of the in-memory CRM (tests use it).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from crm.load import load_crm
from crm.synthetic import generate_crm
from pipelines.params import load_params
from serving.funnel import funnel_summary, stage_stays

params = load_params(Path(os.environ.get("DEALCAST_PARAMS", "params.yaml")))
funnel = params.funnel.to_funnel()
folder = Path(os.environ.get("DEALCAST_NOTEBOOK_DATA", params.paths.raw))

# %%
result = load_crm(folder, funnel=funnel, as_of=None) if folder.exists() else None
if result is not None and result.data is not None:
    data = result.data
    source = f"{folder}/"
else:
    n_deals = int(os.environ.get("DEALCAST_NOTEBOOK_DEALS", "3000"))
    data = generate_crm(
        n_deals=n_deals,
        seed=params.base.seed,
        start=pd.Timestamp(params.generate.start, tz="UTC"),
        as_of=pd.Timestamp(params.generate.as_of, tz="UTC"),
        funnel=funnel,
        messy=False,
    ).data
    source = f"a synthetic CRM of {n_deals:,} deals"
summary = funnel_summary(data, funnel=funnel)
print(f"{source}: {summary.n_deals:,} deals, {summary.n_open:,} open")
print(f"win rate {summary.win_rate:.1%} of closed deals")

# %% [markdown]
# ## The funnel: reach and conversion
# `reached` counts deals that entered a stage or any later one (skips pass through);
# `conversion_to_next` is the share of those that went further.

# %%
summary.stages

# %%
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.barh(summary.stages["stage"][::-1], summary.stages["reached"][::-1], color="#4472c4")
for y, (reached, conv) in enumerate(
    zip(summary.stages["reached"][::-1], summary.stages["conversion_to_next"][::-1], strict=True)
):
    ax.text(reached, y, f"  {reached:,}  ({conv:.0%} go on)", va="center")
ax.set_xlabel("deals that reached the stage")
ax.set_title("Funnel reach by stage")
fig.tight_layout()

# %% [markdown]
# ## Where deals drop out
# The stage a lost deal was in when it was lost.

# %%
stays = stage_stays(data)
lost_ids = data.deals.loc[data.deals["outcome"] == "lost", "deal_id"]
last_stay = stays.sort_values("entered_at").groupby("deal_id").tail(1)
drop_off = (
    last_stay[last_stay["deal_id"].isin(lost_ids)]["stage"]
    .value_counts()
    .reindex(list(funnel.stages), fill_value=0)
    .rename("lost from this stage")
)
drop_off.to_frame()

# %% [markdown]
# ## Time in stage
# Finished stays only: the stay a deal is still in is censored, not counted.

# %%
finished = stays[stays["finished"]]
fig, ax = plt.subplots(figsize=(8, 3.5))
ax.boxplot(
    [finished.loc[finished["stage"] == s, "days"] for s in funnel.stages],
    tick_labels=list(funnel.stages),
    showfliers=False,
)
ax.set_ylabel("days in stage")
ax.set_title("Time in stage (finished stays, outliers hidden)")
fig.tight_layout()

# %% [markdown]
# ## Win rate by lead source (closed deals)

# %%
summary.sources

# %%
created = data.deals.set_index("created_at").resample("MS")["deal_id"].count()
fig, ax = plt.subplots(figsize=(8, 3))
created.plot(ax=ax, color="#4472c4")
ax.set_ylabel("deals created per month")
ax.set_title("New deals per month")
fig.tight_layout()
