"""What the model and forecast benchmarks share: one generated CRM per failure scenario, the
horizon each scenario is measured at, and the command line."""

from __future__ import annotations

import argparse

import pandas as pd

from crm.synthetic import generate_crm
from crm.synthetic.scenarios import SCENARIOS

# a 5-month history and wins logged only in the last 3 months leave no test window with a
# known 180-day outcome (evaluate says so and names train.horizon_days): 30 days there
HORIZON = {"short": 30, "late-wins": 30}
NAMES = ("default", *SCENARIOS)


def scenario_crm(p, name: str, *, deals: int, seed: int):
    """The generated CRM of scenario ``name`` (``default``: none), params ``p``'s funnel."""
    return generate_crm(
        n_deals=deals,
        seed=seed,
        start=pd.Timestamp("2024-01-01", tz="UTC"),
        as_of=pd.Timestamp("2026-06-30", tz="UTC"),
        funnel=p.funnel.to_funnel(),
        messy=False,
        scenarios=() if name == "default" else (name,),
    )


def scenario_train(p, name: str):
    """``p.train`` with the scenario's horizon."""
    return p.train.model_copy(update={"horizon_days": HORIZON.get(name, p.train.horizon_days)})


def parse(argv: list[str], description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--deals", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--scenario", nargs="+", default=list(NAMES), choices=list(NAMES))
    return parser.parse_args(argv)
