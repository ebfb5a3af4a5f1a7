"""Benchmark: close-probability and next-stage models on a 20,000-deal synthetic CRM.

Trains at a cutoff exactly as ``dealcast evaluate`` does (settings from ``params.yaml``),
scores the later snapshots and prints the metric table of the model against every
baseline and against an oracle: the same model that also sees the generator's hidden
variables (deal quality, account fit, owner skill, ... from the truth frame; never the
outcome columns). Then the quality bars of issue #4 with pass/fail, and fit times. The
test window is only measured, never used to choose anything.

    .venv/bin/python benchmarks/bench_models.py [--deals N] [--seed S] [--cutoff DATE]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

from crm.synthetic import generate_crm
from features.build import build_feature_set
from features.snapshots import latest_timestamp, snapshot_dates
from models.evaluate import (
    censoring_bias,
    close_metric_table,
    next_stage_metric_table,
    prediction_frame,
)
from models.metrics import binary_metrics
from models.splits import time_split
from models.train import fit_models, next_stage_coverage
from pipelines.modelling import estimators
from pipelines.params import load_params

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = (
    "quality", "account_fit", "source_quality", "owner_skill", "product_effect",
    "amount_effect", "competitor_effect", "expansion_effect", "quarter_shock", "noise",
    "dm_effect", "dm_engaged", "expansion", "dwell_scale", "p_win_true",
)  # fmt: skip


def main(argv: list[str]) -> int:
    args = _parse(argv)
    p = load_params(ROOT / "params.yaml")
    funnel, f, train = p.funnel.to_funnel(), p.features, p.train
    t0 = time.perf_counter()
    crm = generate_crm(
        n_deals=args.deals,
        seed=args.seed,
        start=pd.Timestamp("2024-01-01", tz="UTC"),
        as_of=pd.Timestamp("2026-06-30", tz="UTC"),
        funnel=funnel,
        messy=False,
    )
    data, truth = crm.data, crm.truth
    data_end, cutoff = latest_timestamp(data), pd.Timestamp(args.cutoff, tz="UTC")
    dates = snapshot_dates(data.deals["created_at"].min(), data_end, f.freq)
    split = time_split(
        dates,
        cutoff=cutoff,
        horizon_days=train.horizon_days,
        calibration_fraction=train.calibration_fraction,
    )
    kw = {
        "funnel": funnel,
        "windows_days": f.windows_days,
        "trend_days": f.trend_days,
        "recency_channels": f.recency_channels,
        "prior_strength": f.prior_strength,
        "horizons_days": f.horizons_days,
    }
    tr = build_feature_set(data, as_of_dates=split.training, data_end=cutoff, **kw)
    te = build_feature_set(data, as_of_dates=split.test, data_end=data_end, **kw)
    print(f"{args.deals:,} deals, cutoff {cutoff.date()}, data_end {data_end.date()}")
    print(f"data + features: {time.perf_counter() - t0:.1f} s; training rows {len(tr.features):,}"
          f", test rows {len(te.features):,}")  # fmt: skip

    times = {}
    t = time.perf_counter()
    est = estimators(train, states=funnel.states, seed=p.base.seed)
    models = fit_models(tr.features, tr.labels, horizon_days=train.horizon_days, **est)
    times["all models + baselines"] = time.perf_counter() - t
    pred = prediction_frame(
        te.features, te.labels, models, horizon_days=train.horizon_days, data_end=data_end
    )
    t = time.perf_counter()
    oracle = _oracle(tr, te, truth, train, funnel, p.base.seed)
    times["oracle"] = time.perf_counter() - t
    pred["p_win_oracle"] = oracle

    close = close_metric_table(pred)["overall"]
    known = pred[pred["won"].notna()]
    close["p_win_oracle"] = binary_metrics(known["won"].astype(bool), known["p_win_oracle"])
    nxt = next_stage_metric_table(pred)["overall"]
    _print_tables(close, nxt, models)
    _print_bars(close, nxt)
    print(f"horizon cost (censoring choice): {censoring_bias(pred)}")
    print(f"next-stage training rows dropped (no move by cutoff): "
          f"{next_stage_coverage(tr.labels)}")  # fmt: skip
    for name, seconds in times.items():
        print(f"fit time {name}: {seconds:.1f} s")
    return 0


def _oracle(tr, te, truth, train, funnel, seed):
    hidden = truth[["deal_id", *[c for c in HIDDEN if c in truth]]].copy()
    hidden = hidden.rename(columns={c: f"oracle__{c}" for c in HIDDEN})

    def add(frame):
        return frame.merge(hidden, on="deal_id", how="left", validate="many_to_one")

    target = tr.labels[f"won_within_{train.horizon_days}d"]
    ok = target.notna().to_numpy()
    model = estimators(train, states=funnel.states, seed=seed)["close"]
    model.fit(add(tr.features[ok].reset_index(drop=True)), target[ok].to_numpy(bool))
    return model.predict_proba(add(te.features))[:, 1]


def _print_tables(close: dict, nxt: dict, models) -> None:
    print(f"\nguard: {models.close.guard_['decision']} "
          f"(calibration: {models.close.calibration_method_})")  # fmt: skip
    head = f"{'close probability':<18}{'AUC':>7}{'PR AUC':>8}{'logloss':>9}{'Brier':>8}"
    print(head + f"{'ECE':>7}{'lift@10':>9}{'n':>8}")
    for name, r in close.items():
        scores = f"{r['roc_auc']:>7.3f}{r['pr_auc']:>8.3f}{r['log_loss']:>9.4f}{r['brier']:>8.4f}"
        print(f"{name:<18}{scores}{r['ece']:>7.3f}{r['top_decile_lift']:>9.2f}{r['n']:>8,}")
    if nxt:
        print(f"\n{'next stage':<18}{'logloss':>9}{'acc':>7}{'top2':>7}{'n':>8}")
        for name, r in nxt.items():
            print(f"{name:<18}{r['log_loss']:>9.4f}{r['accuracy']:>7.3f}"
                  f"{r['top2_accuracy']:>7.3f}{r['n']:>8,}")  # fmt: skip


def _print_bars(close: dict, nxt: dict) -> None:
    m, stage, lr, orc = (close[k] for k in ("p_win", "p_win_stage_rate", "p_win_logreg",
                                            "p_win_oracle"))  # fmt: skip
    auc_gain = m["roc_auc"] - stage["roc_auc"]
    bars = [
        ("AUC >= stage-rate AUC + 0.05", auc_gain, auc_gain >= 0.05),
        (
            "log loss < stage-rate",
            stage["log_loss"] - m["log_loss"],
            m["log_loss"] < stage["log_loss"],
        ),
        (
            "log loss < logistic regression",
            lr["log_loss"] - m["log_loss"],
            m["log_loss"] < lr["log_loss"],
        ),
        ("ECE <= 0.03", m["ece"], m["ece"] <= 0.03),
    ]
    if nxt:
        gain = 1 - nxt["next_stage_model"]["log_loss"] / nxt["transition_matrix"]["log_loss"]
        bars.append(("next-stage log loss >= 10 % below matrix", gain, gain >= 0.10))
    print("\nquality bars")
    for name, value, ok in bars:
        print(f"  {'PASS' if ok else 'MISS'}  {name:<44} {value:+.4f}")
    print(f"  gap to oracle: AUC {orc['roc_auc'] - m['roc_auc']:+.4f}, "
          f"log loss {m['log_loss'] - orc['log_loss']:+.4f}")  # fmt: skip


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--cutoff", default="2025-10-06")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
