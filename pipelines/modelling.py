"""The ``train`` and ``evaluate`` steps: load -> features -> split -> fit -> evaluate -> write.

``train`` fits the models as if today were the cutoff (``--as-of``, default the data's end):
only snapshots whose H-day label is known at the cutoff are used, labelled with
``data_end = cutoff``, so a deal closed after the cutoff is open for training purposes.
``evaluate`` trains the same way, then scores every deal open at each later snapshot and
compares with what happened (see :mod:`models.evaluate`). Both write model files into
``paths.artifacts``; ``evaluate --out DIR`` writes ``metrics.json``,
``test_predictions.parquet``, ``drivers.parquet`` and the PNG charts.
"""

from __future__ import annotations

import hashlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from pipelines.params import FeaturesParams, TrainParams

log = logging.getLogger(__name__)

MODEL_FILE = "models.joblib"
FEATURE_LIST_FILE = "feature_list.json"


@dataclass(frozen=True)
class Prepared:
    """The CRM, its cutoff and the training snapshots with labels known at the cutoff."""

    data: CRMData
    data_end: pd.Timestamp
    cutoff: pd.Timestamp
    dates: pd.DatetimeIndex
    split: object
    train: object
    fingerprint: str


@dataclass
class ModellingRun:
    """What a step trained, measured and wrote; ``messages`` are for the user."""

    prepared: Prepared
    models: object
    summary: dict
    files: dict[str, Path] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    predictions: pd.DataFrame | None = None
    test_features: pd.DataFrame | None = None
    metrics: dict | None = None


def prepare(
    folder: Path,
    *,
    funnel: Funnel,
    features: FeaturesParams,
    train: TrainParams,
    as_of: pd.Timestamp | None,
    days_before_end: int = 0,
    known_until: pd.Timestamp | None = None,
    data: CRMData | None = None,
) -> Prepared:
    """Load and validate the CRM and build the training snapshots at the cutoff.

    The cutoff is ``as_of`` (capped at the data's end), or without it ``days_before_end``
    days before the data's end (0 for training "today"; a backtest leaves room for a test
    window whose outcomes are known). ``known_until`` pretends the data was extracted then:
    nothing later counts as known, not even for test labels.
    """
    from features.build import build_feature_set
    from features.snapshots import latest_timestamp, snapshot_dates
    from models.splits import time_split
    from pipelines.steps import StepError

    if train.horizon_days not in features.horizons_days:
        raise StepError(
            f"train.horizon_days {train.horizon_days} is not one of features.horizons_days "
            f"{list(features.horizons_days)}"
        )
    if data is None:
        data = load_usable(folder, funnel=funnel)
    data_end = _utc(features.data_end) if features.data_end else latest_timestamp(data)
    if known_until is not None:
        data_end = min(data_end, known_until)
    # nothing after data_end is in the data, so a later --as-of is data_end for labels
    if as_of is None:
        cutoff = data_end - pd.Timedelta(days=days_before_end)
    else:
        cutoff = min(as_of, data_end)
    start = _utc(features.start) if features.start else data.deals["created_at"].min()
    dates = snapshot_dates(start, max(data_end, cutoff), features.freq)
    dates = dates[dates <= data_end]
    split = time_split(
        dates,
        cutoff=cutoff,
        horizon_days=train.horizon_days,
        calibration_fraction=train.calibration_fraction,
    )
    if len(split.training) == 0:
        raise StepError(
            f"no training snapshot: a snapshot needs {train.horizon_days} days of history "
            f"before the cutoff {cutoff.date()} (train.horizon_days)"
        )
    log.info("cutoff %s: %d training snapshot dates", cutoff.date(), len(split.training))
    built = build_feature_set(
        data, as_of_dates=split.training, data_end=cutoff, **_feature_kwargs(funnel, features)
    )
    return Prepared(data, data_end, cutoff, dates, split, built, fingerprint(data))


def load_usable(folder: Path, *, funnel: Funnel) -> CRMData:
    """The validated CRM of ``folder``; ``StepError`` with the report if it is not usable."""
    from pipelines.steps import StepError, load_and_validate

    result = load_and_validate(folder, funnel=funnel, as_of=None)
    if result.data is None:
        raise StepError(f"{folder}: the CRM data is not usable\n{result.report.to_text()}")
    return result.data


def _feature_kwargs(funnel: Funnel, features: FeaturesParams) -> dict:
    return {
        "funnel": funnel,
        "windows_days": features.windows_days,
        "trend_days": features.trend_days,
        "recency_channels": features.recency_channels,
        "prior_strength": features.prior_strength,
        "horizons_days": features.horizons_days,
    }


def estimators(train: TrainParams, *, states: tuple[str, ...], seed: int) -> dict:
    """Unfitted estimators with every setting from ``params.yaml``."""
    from models.baselines import LogisticBaseline
    from models.close_probability import CloseProbabilityModel
    from models.next_stage import NextStageModel

    c, n = train.close, train.next_stage
    return {
        "close": CloseProbabilityModel(
            **c.model_dump(),
            calibration_fraction=train.calibration_fraction,
            min_isotonic_rows=train.min_isotonic_rows,
            stage_prior_strength=train.stage_prior_strength,
            blend_weights=train.blend_weights,
            guard_z=train.guard_z,
            random_state=seed,
        ),
        "logreg": LogisticBaseline(C=train.logreg_c, random_state=seed),
        "next_stage": NextStageModel(
            states=states,
            **n.model_dump(),
            calibration_fraction=train.calibration_fraction,
            blend_weights=train.blend_weights,
            guard_z=train.guard_z,
            random_state=seed,
        ),
    }


def run_train(
    *,
    folder: Path,
    funnel: Funnel,
    features: FeaturesParams,
    train: TrainParams,
    seed: int,
    artifacts: Path,
    as_of: pd.Timestamp | None,
    days_before_end: int = 0,
    known_until: pd.Timestamp | None = None,
    data: CRMData | None = None,
) -> ModellingRun:
    """Fit at the cutoff and write the model file; raise ``StepError`` on unusable data.

    ``data``, when given, is the already validated CRM of ``folder`` (not read again)."""
    from models.train import TrainingError, fit_models, next_stage_coverage
    from pipelines.steps import StepError

    prepared = prepare(
        folder,
        funnel=funnel,
        features=features,
        train=train,
        as_of=as_of,
        days_before_end=days_before_end,
        known_until=known_until,
        data=data,
    )
    try:
        models = fit_models(
            prepared.train.features,
            prepared.train.labels,
            horizon_days=train.horizon_days,
            **estimators(train, states=funnel.states, seed=seed),
        )
    except TrainingError as exc:
        raise StepError(str(exc)) from None
    summary = _summary(prepared, models, train.horizon_days)
    summary["next_stage_coverage"] = next_stage_coverage(prepared.train.labels)
    run = ModellingRun(prepared, models, summary, messages=_guard_messages(models))
    run.files |= _write_models(artifacts, models)
    return run


def run_evaluate(
    *,
    folder: Path,
    funnel: Funnel,
    features: FeaturesParams,
    train: TrainParams,
    seed: int,
    artifacts: Path,
    as_of: pd.Timestamp | None,
    test_days: int,
    out: Path | None,
    ece_bins: int,
    known_until: pd.Timestamp | None = None,
    data: CRMData | None = None,
) -> ModellingRun:
    """Train at ``as_of``, score the later snapshots, measure, and write ``out``.

    Without ``as_of`` the cutoff is ``horizon_days + test_days`` before the data's end, so
    the test window holds ``test_days`` of snapshots whose outcomes are known.
    """
    from features.build import build_feature_set
    from models.evaluate import (
        censoring_bias,
        close_metric_table,
        next_stage_metric_table,
        prediction_frame,
    )
    from pipelines.steps import StepError

    run = run_train(
        folder=folder, funnel=funnel, features=features, train=train, seed=seed,
        artifacts=artifacts, as_of=as_of, days_before_end=train.horizon_days + test_days,
        known_until=known_until, data=data,
    )  # fmt: skip
    p = run.prepared
    if len(p.split.test) == 0:
        raise StepError(f"no snapshot after the cutoff {p.cutoff.date()} to test on")
    test = build_feature_set(
        p.data, as_of_dates=p.split.test, data_end=p.data_end, **_feature_kwargs(funnel, features)
    )
    pred = prediction_frame(
        test.features, test.labels, run.models, horizon_days=train.horizon_days,
        data_end=p.data_end,
    )  # fmt: skip
    run.predictions, run.test_features = pred, test.features
    run.metrics = run.summary | {
        "test_window": _window(p.split.test, pred),
        "close_probability": close_metric_table(pred),
        "next_stage": next_stage_metric_table(pred),
        "censoring": censoring_bias(pred),
        "definitions": DEFINITIONS | {"ece_bins": ece_bins},
    }
    _warn_if_no_labels(run)
    if out is not None:
        run.files |= write_evaluation(Path(out), run, test.features, train, ece_bins=ece_bins)
    return run


def run_train_with_backtest(
    *,
    folder: Path,
    funnel: Funnel,
    features: FeaturesParams,
    train: TrainParams,
    seed: int,
    artifacts: Path,
    as_of: pd.Timestamp | None,
    test_days: int,
    ece_bins: int,
    backtest_out: Path,
    data: CRMData | None = None,
) -> tuple[ModellingRun, ModellingRun | None]:
    """The model to serve, fitted on everything known at ``as_of`` (default: the data's
    end), and the backtest of the same settings that decides whether it may serve.

    The backtest trains ``horizon + test_days`` before ``as_of`` and tests on the snapshots
    after that, with only what was known at ``as_of``. ``None`` when the data is too
    short for a backtest (the reason is in the final run's messages).
    """
    from pipelines.steps import StepError

    if data is None:
        data = load_usable(folder, funnel=funnel)
    backtest, reason = None, ""
    try:
        backtest = run_evaluate(
            folder=folder, funnel=funnel, features=features, train=train, seed=seed,
            artifacts=backtest_out / "model", as_of=None, test_days=test_days,
            out=backtest_out, ece_bins=ece_bins, known_until=as_of, data=data,
        )  # fmt: skip
    except StepError as exc:
        reason = f"no backtest, so no champion gate: {str(exc).splitlines()[0]}"
    final = run_train(
        folder=folder, funnel=funnel, features=features, train=train, seed=seed,
        artifacts=artifacts, as_of=as_of, data=data,
    )  # fmt: skip
    if reason:
        final.messages.append(reason)
    return final, backtest


DEFINITIONS = {
    "p_win": "P(won within horizon_days of as_of), served model (calibrated LightGBM shrunk "
    "towards the stage-rate table)",
    "won": "won within horizon_days of as_of; empty unless as_of + horizon_days <= data_end",
    "next_stage_true": "next state entered after as_of; empty unless known and "
    "as_of + horizon_days <= data_end",
    "ece": "equal-mass bins: rows sorted by p, np.array_split into ece_bins chunks",
    "top_decile_lift": "positive rate of the ceil(10%) highest p over the overall rate",
    "log_loss": "probabilities clipped to [1e-6, 1 - 1e-6]",
    "top2_accuracy": "true state among the two highest p_next__* (p_next_tm__* for the matrix)",
}


def _summary(prepared: Prepared, models, horizon_days: int) -> dict:
    split = prepared.split
    close, nxt = models.close, models.next_stage
    return {
        "cutoff": str(prepared.cutoff),
        "data_end": str(prepared.data_end),
        "horizon_days": horizon_days,
        "data_fingerprint": prepared.fingerprint,
        "training": {
            "rows": len(prepared.train.features),
            "fit_dates": [str(split.fit.min()), str(split.fit.max())] if len(split.fit) else [],
            "calibration_dates": [str(split.calibration.min()), str(split.calibration.max())]
            if len(split.calibration)
            else [],
            "positive_rate": models.base_rate.rate_,
        },
        "close_guard": close.guard_ | {
            "model_weight": close.weight_,
            "calibration_method": close.calibration_method_,
        },
        "next_stage_guard": (nxt.guard_ | {"model_weight": nxt.weight_}) if nxt else None,
    }  # fmt: skip


def _guard_messages(models) -> list[str]:
    msgs = [f"close probability: {models.close.guard_['decision']}"]
    if models.next_stage is None:
        msgs.append("next stage: no stage history with moves; no next-stage model")
    else:
        msgs.append(f"next stage: {models.next_stage.guard_['decision']}")
    return msgs


def _window(dates: pd.DatetimeIndex, pred: pd.DataFrame) -> dict:
    return {
        "first_as_of": str(dates.min()),
        "last_as_of": str(dates.max()),
        "rows": len(pred),
        "rows_with_known_outcome": int(pred["won"].notna().sum()),
        "rows_with_known_next_stage": int(pred["next_stage_true"].notna().sum())
        if "next_stage_true" in pred
        else 0,
    }


def _warn_if_no_labels(run: ModellingRun) -> None:
    if run.metrics["test_window"]["rows_with_known_outcome"] == 0:
        run.messages.append(
            "no test snapshot has a known outcome yet (needs as_of + horizon_days <= data_end): "
            "choose an earlier --as-of"
        )


def write_evaluation(
    out: Path, run: ModellingRun, test_features: pd.DataFrame, train: TrainParams, *, ece_bins
) -> dict[str, Path]:
    """metrics.json, test_predictions.parquet, drivers.parquet and the two PNG charts."""
    from crm.write import write_frame
    from pipelines.io import write_json_atomic

    out.mkdir(parents=True, exist_ok=True)
    files = {"metrics": out / "metrics.json", "predictions": out / "test_predictions.parquet"}
    write_json_atomic(files["metrics"], clean_json(run.metrics))
    write_frame(run.predictions, files["predictions"])
    for name, fig in charts(run.predictions, ece_bins=ece_bins).items():
        files[name] = out / f"{name}.png"
        fig.savefig(files[name], dpi=110)
    drivers = explain_latest(run.models, test_features, top_n=train.explain_top_n)
    if drivers is not None:
        files["drivers"] = out / "drivers.parquet"
        write_frame(drivers, files["drivers"])
    return files


def charts(pred: pd.DataFrame, *, ece_bins: int) -> dict:
    """Reliability diagram and lift chart of the model and the baselines (known rows)."""
    import matplotlib.pyplot as plt

    from models.plots import lift_chart, reliability_diagram

    known = pred[pred["won"].notna()]
    y = known["won"].astype(bool).to_numpy()
    scores = {
        c: known[c].to_numpy(float)
        for c in ("p_win", "p_win_stage_rate", "p_win_logreg", "p_win_base_rate")
        if known[c].notna().all()
    }
    plt.close("all")
    return {
        "reliability": reliability_diagram(y, scores, n_bins=ece_bins),
        "lift": lift_chart(y, scores, n_bins=10),
    }


def explain_latest(models, features: pd.DataFrame, *, top_n: int) -> pd.DataFrame | None:
    """Drivers for the deals of the latest snapshot (the rows a rep would see)."""
    from models.explain import catalogue_meanings, top_drivers

    close = models.close
    if close.lgbm_ is None or features.empty:
        return None
    rows = features[features["as_of"] == features["as_of"].max()].reset_index(drop=True)
    matrix = close.matrix_.transform(rows)
    drivers = top_drivers(
        close.lgbm_, matrix, top_n=top_n, meanings=catalogue_meanings(list(matrix.columns))
    )
    keys = rows[["deal_id", "as_of"]].iloc[drivers["row"].to_numpy()].reset_index(drop=True)
    drivers = pd.concat([keys, drivers.drop(columns="row")], axis=1)
    drivers["value"] = drivers["value"].astype("str")
    return drivers


def _write_models(artifacts: Path, models) -> dict[str, Path]:
    import joblib

    from pipelines.io import write_json_atomic

    artifacts = Path(artifacts)
    artifacts.mkdir(parents=True, exist_ok=True)
    files = {"models": artifacts / MODEL_FILE, "feature_list": artifacts / FEATURE_LIST_FILE}
    tmp = files["models"].with_suffix(".tmp")
    joblib.dump(models, tmp)
    tmp.replace(files["models"])
    write_json_atomic(files["feature_list"], feature_list(models))
    return files


def feature_list(models) -> list[str]:
    return list(models.close.matrix_.columns_)


def fingerprint(data: CRMData) -> str:
    """SHA-256 of every table's content (row order included), 16 hex digits."""
    digest = hashlib.sha256()
    for name in ("deals", "accounts", "stage_history", "touchpoints"):
        frame = data.table(name)
        digest.update(name.encode())
        if frame is not None:
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def clean_json(value):
    """NaN/inf -> None (strict JSON), numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _utc(value) -> pd.Timestamp:
    t = pd.Timestamp(value)
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def format_run(run: ModellingRun) -> str:
    """What the CLI prints: cutoff, training rows, guard decisions and the metric tables."""
    s = run.summary
    t = s["training"]
    lines = [
        f"cutoff {s['cutoff']}, data_end {s['data_end']}, horizon {s['horizon_days']} days",
        f"training: {t['rows']:,} snapshots, won-within-horizon rate {t['positive_rate']:.3f}",
        *run.messages,
    ]
    if run.metrics:
        lines += _metric_lines(run.metrics)
    return "\n".join(lines)


def _metric_lines(m: dict) -> list[str]:
    w = m["test_window"]
    lines = [
        f"test: {w['rows']:,} snapshots {w['first_as_of'][:10]} .. {w['last_as_of'][:10]}, "
        f"{w['rows_with_known_outcome']:,} with a known outcome",
        f"{'close probability':<18}{'AUC':>7}{'PR AUC':>8}{'logloss':>9}{'Brier':>8}"
        f"{'ECE':>7}{'lift@10':>9}",
    ]
    for name, r in m["close_probability"]["overall"].items():
        lines.append(
            f"{name:<18}{_f(r['roc_auc']):>7}{_f(r['pr_auc']):>8}{_f(r['log_loss']):>9}"
            f"{_f(r['brier']):>8}{_f(r['ece']):>7}{_f(r['top_decile_lift'], 2):>9}"
        )
    if m.get("next_stage"):
        lines.append(f"{'next stage':<18}{'logloss':>9}{'acc':>7}{'top2':>7}")
        for name, r in m["next_stage"]["overall"].items():
            lines.append(
                f"{name:<18}{_f(r['log_loss']):>9}{_f(r['accuracy']):>7}{_f(r['top2_accuracy']):>7}"
            )
    c = m["censoring"]
    lines.append(
        f"horizon cost: {c['won_after_horizon']} of {c['eventual_wins']} eventual wins came "
        f"after the horizon (share {_f(c['share_of_positives_lost'])})"
    )
    return lines


def _f(x, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"
