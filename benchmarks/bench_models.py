"""Benchmark: the close model against every baseline on the default synthetic CRM and on each
failure scenario of real CRM exports (``dealcast generate --scenario``).

Each CRM is backtested exactly as ``dealcast evaluate`` does it (settings from
``params.yaml``; the cutoff chosen from the data; only ``train.horizon_days`` changes for
the ``short`` history): train at the cutoff, score every later snapshot, compare with what
happened. All columns are scored on the same rows. Then the targets of issue #10 with
PASS/MISS. The test window is only measured, never used to choose anything.

    .venv/bin/python benchmarks/bench_models.py [--deals N] [--seed S] [--scenario NAME ...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scenarios import parse, scenario_crm, scenario_train

from pipelines.modelling import run_evaluate
from pipelines.params import load_params
from pipelines.steps import StepError

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = {
    "p_win": "dealcast",
    "p_win_fixed_horizon": "fixed-horizon",
    "p_win_stage_rate": "stage table",
    "p_win_base_rate": "base rate",
    "p_win_logreg": "logistic",
}


def main(argv: list[str]) -> int:
    args = parse(argv, __doc__.splitlines()[0])
    p = load_params(ROOT / "params.yaml")
    rows = []
    for name in args.scenario:
        t = time.perf_counter()
        try:
            run = _backtest(p, name, deals=args.deals, seed=args.seed)
        except StepError as exc:
            print(f"\n== {name}: evaluate refused: {exc}")
            rows.append(
                {"scenario": name, "table": {}, "checks": {"evaluate ran": False}, "pass": False}
            )
            continue
        rows.append(_summary(name, run, p.train.probability_floor))
        rows[-1]["seconds"] = time.perf_counter() - t
        _print_one(rows[-1])
    _print_table(rows)
    return 0 if all(r["pass"] for r in rows) else 1


def _backtest(p, name: str, *, deals: int, seed: int):
    crm = scenario_crm(p, name, deals=deals, seed=seed)
    with tempfile.TemporaryDirectory() as tmp:
        return run_evaluate(
            folder=Path(tmp), funnel=p.funnel.to_funnel(), features=p.features,
            train=scenario_train(p, name), seed=p.base.seed, artifacts=Path(tmp), as_of=None,
            test_days=p.evaluate.test_days, out=None, ece_bins=p.evaluate.ece_bins,
            data=crm.data,
        )  # fmt: skip


def _summary(name: str, run, floor: float) -> dict:
    table = run.metrics["close_probability"]["overall"]
    pred = run.predictions
    served = pred["p_win"].to_numpy(float)
    nxt = run.metrics.get("next_stage", {}).get("overall", {})
    m = table["p_win"]
    beats = [m["log_loss"] < table[c]["log_loss"] for c in ("p_win_stage_rate", "p_win_base_rate")
             if c in table]  # fmt: skip
    checks = {
        "log loss below stage table and base rate": all(beats) and len(beats) == 2,
        "served p in [floor, 1 - floor]": bool(
            (served >= floor - 1e-12).all() and (served <= 1 - floor + 1e-12).all()
        ),
        "ECE <= 0.05": m["ece"] <= 0.05,
    }
    if name == "default":
        checks["AUC >= 0.91"] = m["roc_auc"] >= 0.91
        checks["log loss <= 0.35"] = m["log_loss"] <= 0.35
        if nxt:
            gain = 1 - nxt["next_stage_model"]["log_loss"] / nxt["transition_matrix"]["log_loss"]
            checks["next stage >= 10 % below matrix"] = gain >= 0.10
    return {
        "scenario": name,
        "cutoff": run.summary["cutoff"][:10],
        "horizon": run.summary["horizon_days"],
        "n": m["n"],
        "table": table,
        "next": nxt,
        "decision": run.models.close.guard_["decision"],
        "drift": [d["feature"] for d in run.models.close.drift_],
        "level": run.models.close.level_,
        "p_range": (float(np.min(served)), float(np.max(served))),
        "checks": checks,
        "pass": all(checks.values()),
    }


def _f(x: float, d: int = 3) -> str:
    return "  n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.{d}f}"


def _print_one(r: dict) -> None:
    print(f"\n== {r['scenario']}: cutoff {r['cutoff']}, horizon {r['horizon']} d, "
          f"{r['n']:,} test rows with a known outcome, {r['seconds']:.0f} s")  # fmt: skip
    print(f"   close model: {r['decision']}; level shift {np.round(r['level'], 3).tolist()}; "
          f"drifted features left out: {r['drift'] or 'none'}")  # fmt: skip
    print(f"   served p in [{r['p_range'][0]:.4f}, {r['p_range'][1]:.4f}]")
    for col, label in COLUMNS.items():
        t = r["table"].get(col)
        if t:
            print(f"   {label:<14} AUC {_f(t['roc_auc'])}  log loss {_f(t['log_loss'], 4)}"
                  f"  ECE {_f(t['ece'])}")  # fmt: skip
    for name, t in r["next"].items():
        print(f"   {name:<18} log loss {_f(t['log_loss'], 4)}  accuracy {_f(t['accuracy'])}")
    for check, ok in r["checks"].items():
        print(f"   {'PASS' if ok else 'MISS'}  {check}")


def _print_table(rows: list[dict]) -> None:
    print("\n| scenario | " + " | ".join(COLUMNS.values()) + " | targets |")
    print("|---|" + "---|" * (len(COLUMNS) + 1))
    for r in rows:
        cells = []
        for col in COLUMNS:
            t = r["table"].get(col)
            cells.append(f"{_f(t['roc_auc'])} / {_f(t['log_loss'])} / {_f(t['ece'])}" if t else "—")
        ok = (
            "PASS"
            if r["pass"]
            else "MISS: " + ", ".join(k for k, v in r["checks"].items() if not v)
        )
        print(f"| {r['scenario']} | " + " | ".join(cells) + f" | {ok} |")
    print("(each cell: AUC / log loss / ECE on the same test rows)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
