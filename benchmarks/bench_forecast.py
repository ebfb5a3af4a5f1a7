"""Benchmark: the revenue forecast's backtest on the default synthetic CRM and on each failure
scenario, against the stage-weighted forecast every CRM ships.

Exactly the forecast backtest of ``dealcast train`` (settings from ``params.yaml``): a close model
trained ``forecast.backtest_months`` before the data's end and refitted every
``forecast.backtest_refit_months``, each fit with only what was known then;
every later whole month forecast at its first day, every later whole quarter at its first
day and at mid-quarter. Prints WAPE, bias and P10-P90 coverage per horizon, and the issue's
targets for quarters (WAPE <= 10 %, coverage 70-90 %, better than stage-weighted).

    .venv/bin/python benchmarks/bench_forecast.py [--deals N] [--seed S] [--scenario NAME ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from scenarios import parse, scenario_crm, scenario_train

from pipelines.modelling import run_forecast_backtest
from pipelines.params import load_params

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("month_at_start", "quarter_at_start", "quarter_at_mid")


def main(argv: list[str]) -> int:
    args = parse(argv, __doc__.splitlines()[0])
    p = load_params(ROOT / "params.yaml")
    print("| scenario | method | " + " | ".join(KEYS) + " |")
    print("|---|---|" + "---|" * len(KEYS))
    for name in args.scenario:
        t = time.perf_counter()
        metrics, messages = _backtest(p, name, deals=args.deals, seed=args.seed)
        for method in ("dealcast", "stage_weighted"):
            m = metrics.get("methods", {}).get(method, {}).get("by_horizon", {})
            cells = [_cell(m.get(k)) for k in KEYS]
            print(f"| {name} | {method} | " + " | ".join(cells) + " |")
        if messages:
            print(f"|   | ({'; '.join(messages)}) |")
        print(f"|   | {time.perf_counter() - t:.0f} s |", file=sys.stderr)
    print("(each cell: periods, WAPE / bias / share of periods inside P10-P90)")
    return 0


def _cell(m: dict | None) -> str:
    if not m:
        return "—"
    return f"{m['periods']}: {m['wape']:.2f} / {m['bias']:+.2f} / {m['coverage_p10_p90']:.2f}"


def _backtest(p, name: str, *, deals: int, seed: int) -> tuple[dict, list[str]]:
    crm = scenario_crm(p, name, deals=deals, seed=seed)
    months = 4 if name == "short" else p.forecast.backtest_months
    forecast = p.forecast.model_copy(update={"backtest_months": months})
    made = run_forecast_backtest(
        crm.data, funnel=p.funnel.to_funnel(), features=p.features,
        train=scenario_train(p, name), forecast=forecast, seed=p.base.seed,
    )  # fmt: skip
    return made.metrics, made.messages


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
