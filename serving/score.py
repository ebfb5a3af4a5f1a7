"""Score every deal open at one moment: the prioritised-leads table sales ops work from.

Pure: a loaded CRM, the fitted champion estimators and explicit feature settings in; one
ranked frame out (one row per deal open at ``as_of``). Features are built exactly as in
training (``features.build.build_features`` at the single date ``as_of``), and the models'
own fitted ``FeatureMatrix`` turns them into model input, so serving reuses training's
preprocessing unchanged.

``p_win`` is P(won within ``horizon_days`` of as_of); ``expected_value = p_win * amount``.
Ranking: by ``priority`` (``expected_value`` or ``p_win``) descending, ties by the other
one, then by ``deal_id``, so the order is total and reproducible. ``rank`` is the rank
among all rows given; ``owner_rank`` the rank within the deal's owner. A deal without an
amount has no expected value and sorts after every deal that has one (``expected_value``).
Reasons are LightGBM's per-row contributions (:mod:`models.explain`) as "; "-joined
phrases; when the close model serves the stage-rate table (too little signal in training),
the reasons say so instead.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from features.build import build_features
from models.baselines import stage_of
from models.explain import model_drivers
from models.next_stage import consistent_with_close

Priority = Literal["expected_value", "p_win"]
PRIORITIES: tuple[str, ...] = ("expected_value", "p_win")
NO_SIGNAL = "stage-rate table: no model signal"
DRIFT_NOTE = "stage table served, model paused: its features drifted since training"
REASON_SEPARATOR = "; "

COLUMNS: tuple[str, ...] = (
    "rank",
    "owner_rank",
    "deal_id",
    "deal_name",
    "account_id",
    "account_name",
    "owner_id",
    "owner_name",
    "stage",
    "days_in_stage",
    "amount",
    "p_win",
    "expected_value",
    "next_stage",
    "p_next_stage",
    "reasons_up",
    "reasons_down",
    "horizon_days",
    "as_of",
    "model_version",
    "next_stage_model_version",
    "data_fingerprint",
)


class NoOpenDealsError(ValueError):
    """No deal is open at the scoring moment, so there is nothing to rank."""


class FeatureMismatchError(ValueError):
    """The features built now lack columns the champion was trained on (other settings)."""


def check_feature_columns(
    models,
    built: pd.Index | list[str],
    *,
    shown: int = 5,
    absent_tables: tuple[str, ...] = (),
) -> None:
    """Raise :class:`FeatureMismatchError` when a training column is not among ``built``.

    The training columns are each model's fitted ``FeatureMatrix.columns_``; extra built
    columns are fine (the matrix ignores them), but a missing one would silently become
    empty and score every deal as if nothing were known about it. ``absent_tables`` (the
    optional tables the data lacks) makes the message say so: a missing table, not other
    feature settings, is then the likely cause.
    """
    have = set(built)
    missing: list[str] = []
    for model in models:
        matrix = getattr(model, "matrix_", None) if model is not None else None
        for c in getattr(matrix, "columns_", None) or []:
            if c not in have and c not in missing:
                missing.append(c)
    if missing and absent_tables:
        more = f" and {len(missing) - shown} more" if len(missing) > shown else ""
        raise FeatureMismatchError(
            f"the data has no {' / '.join(absent_tables)} table, which the champion was "
            f"trained with: {len(missing)} of its feature column(s) cannot be built "
            f"({', '.join(missing[:shown])}{more}). Add the table back, or retrain on this "
            "data with `dealcast train`"
        )
    if missing:
        more = f" and {len(missing) - shown} more" if len(missing) > shown else ""
        raise FeatureMismatchError(
            f"{len(missing)} feature column(s) the champion was trained on are not built "
            f"now: {', '.join(missing[:shown])}{more}. The champion was trained with other "
            "feature settings (params.yaml features:); retrain with `dealcast train` or "
            "restore the settings"
        )


def score_open_deals(
    data: CRMData,
    *,
    close,
    next_stage,
    funnel: Funnel,
    as_of: pd.Timestamp,
    windows_days: tuple[int, ...],
    trend_days: int,
    recency_channels: tuple[str, ...],
    prior_strength: float,
    horizon_days: int,
    priority: Priority,
    top_reasons: int,
    model_version: str,
    next_stage_model_version: str | None,
    data_fingerprint: str,
    deal_ids: tuple[str, ...] | None = None,
    day_drift: list | None = None,
    features: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The ranked table of every deal open at ``as_of`` (columns :data:`COLUMNS`).

    ``deal_ids`` scores only those of them (features still use all of ``data``): their
    rows are the full table's rows, ranked among themselves only. The drift check is a
    verdict on a whole day's deals, so scoring a few of them takes the day's verdict as
    ``day_drift`` (the full table's ``attrs["drift"]``) instead of judging the few.
    ``features`` given (the rows ``build_features`` would give, e.g. from
    ``serving.deal_features``) are scored as they are instead of built from ``data``.

    ``close`` is a fitted :class:`~models.close_probability.CloseProbabilityModel`,
    ``next_stage`` a fitted :class:`~models.next_stage.NextStageModel` or None (then the
    next-stage columns are empty). Raises :class:`NoOpenDealsError` when no deal is open
    and :class:`FeatureMismatchError` when the feature settings lack a training column.
    """
    if priority not in PRIORITIES:
        raise ValueError(f"priority must be one of {PRIORITIES}, not {priority!r}")
    if features is None:
        features = build_features(
            data,
            as_of_dates=pd.DatetimeIndex([as_of]),
            funnel=funnel,
            windows_days=windows_days,
            trend_days=trend_days,
            recency_channels=recency_channels,
            prior_strength=prior_strength,
            deal_ids=deal_ids,
        )
    if features.empty:
        raise NoOpenDealsError(f"no deal is open at {as_of}: nothing to score")
    absent = tuple(t for t in ("accounts", "stage_history", "touchpoints") if data.table(t) is None)
    check_feature_columns((close, next_stage), features.columns, absent_tables=absent)
    out = _deal_columns(data, features)
    if day_drift is None:
        out["p_win"], drift = close.predict_checked(features)
    else:
        drift = [{"drift": day_drift}] if day_drift else []
        drifted = bool(drift) and close.weight_ != 0.0
        rows = features.reset_index(drop=True)
        out["p_win"] = close.predict_baseline(rows) if drifted else close.predict_proba(rows)[:, 1]
    out["expected_value"] = out["p_win"] * out["amount"]
    out = pd.concat([out, _next_stage_columns(next_stage, features, out["p_win"])], axis=1)
    if drift:
        out = pd.concat([out, _drift_reasons(drift, len(features))], axis=1)
    else:
        out = pd.concat([out, reasons(close, features, top_n=top_reasons)], axis=1)
    out["horizon_days"] = int(horizon_days)
    out["as_of"] = features["as_of"].to_numpy()
    out["model_version"] = model_version
    out["next_stage_model_version"] = next_stage_model_version
    out["data_fingerprint"] = data_fingerprint
    ranked = rank(out, priority=priority)
    ranked.attrs["drift"] = drift[0]["drift"] if drift else []
    return ranked


def _deal_columns(data: CRMData, features: pd.DataFrame) -> pd.DataFrame:
    """Ids, names, stage, whole days in stage and amount of the scored rows, in their order.
    Names come from the contract's ``name`` / ``owner_name`` columns (empty without them)."""
    deals = data.deals
    info = deals.set_index(deals["deal_id"].astype("str"))
    ids = features["deal_id"].astype("str")

    def column(name: str, dtype: str) -> pd.array:
        if name not in info:
            return pd.array([None] * len(ids), dtype=dtype)
        return pd.array(info[name].reindex(ids).to_numpy(), dtype=dtype)

    stage = stage_of(features)
    days = (
        np.floor(features["stage__days_in_current"].to_numpy(float))
        if "stage__days_in_current" in features
        else np.full(len(features), np.nan)
    )
    return pd.DataFrame(
        {
            "deal_id": pd.array(ids.to_numpy(), dtype="str"),
            "deal_name": column("name", "str"),
            "account_id": column("account_id", "str"),
            "account_name": _account_names(data.accounts, column("account_id", "str")),
            "owner_id": column("owner_id", "str"),
            "owner_name": column("owner_name", "str"),
            "stage": pd.array(np.where(stage == "(all)", None, stage), dtype="str"),
            "days_in_stage": pd.array(np.where(np.isnan(days), None, days), dtype="Int64"),
            "amount": _amounts(info, ids),
        }
    )


def _account_names(accounts: pd.DataFrame | None, account_ids: pd.array) -> pd.array:
    if accounts is None or "name" not in accounts:
        return pd.array([None] * len(account_ids), dtype="str")
    unique = accounts.drop_duplicates("account_id")
    names = pd.Series(unique["name"].to_numpy(), index=unique["account_id"].astype("str"))
    return pd.array(names.reindex(pd.Series(account_ids, dtype="str")).to_numpy(), dtype="str")


def _amounts(info: pd.DataFrame, ids: pd.Series) -> np.ndarray:
    if "amount" not in info:
        return np.full(len(ids), np.nan)
    values = pd.to_numeric(info["amount"].reindex(ids), errors="coerce")
    return values.to_numpy(dtype="float64", na_value=np.nan)


def _drift_reasons(drift: list[dict], n: int) -> pd.DataFrame:
    """Every row says why the stage table scored it: the model's features drifted."""
    from models.drift import describe

    note = f"{DRIFT_NOTE}: {describe(drift[0]['drift'], limit=3)}"
    return pd.DataFrame(
        {"reasons_up": pd.array([note] * n, dtype="str"), "reasons_down": pd.array([""] * n)}
    ).astype({"reasons_down": "str"})


def _next_stage_columns(model, features: pd.DataFrame, p_win: pd.Series) -> pd.DataFrame:
    if model is None:
        return pd.DataFrame(
            {
                "next_stage": pd.array([None] * len(features), dtype="str"),
                "p_next_stage": np.full(len(features), np.nan),
            }
        )
    proba = consistent_with_close(
        model.predict_proba(features).reset_index(drop=True), p_win.to_numpy(float)
    )
    values = proba.to_numpy(float)
    best = values.argmax(axis=1)  # first of equal maxima: the earlier state
    return pd.DataFrame(
        {
            "next_stage": pd.array(np.asarray(proba.columns, dtype=object)[best], dtype="str"),
            "p_next_stage": values[np.arange(len(values)), best],
        }
    )


def reasons(close, features: pd.DataFrame, *, top_n: int) -> pd.DataFrame:
    """``reasons_up`` / ``reasons_down``: the top ``top_n`` drivers each way, as phrases.

    When the served probability is the stage-rate table alone (no trees, or model weight
    0), contributions of the trees would explain a score nobody sees, so every row says
    :data:`NO_SIGNAL` instead.
    """
    n = len(features)
    drivers = model_drivers(close, features, top_n=top_n)
    if drivers is None:
        return pd.DataFrame(
            {
                "reasons_up": pd.array([NO_SIGNAL] * n, dtype="str"),
                "reasons_down": pd.array([""] * n, dtype="str"),
            }
        )
    drivers = drivers.sort_values(["row", "direction", "rank"], kind="stable")
    joined = drivers.groupby(["direction", "row"])["phrase"].agg(REASON_SEPARATOR.join)
    out = {}
    for direction in ("up", "down"):
        text = joined.get(direction, pd.Series(dtype="str")).reindex(range(n), fill_value="")
        out[f"reasons_{direction}"] = pd.array(text.to_numpy(), dtype="str")
    return pd.DataFrame(out)


def rank(frame: pd.DataFrame, *, priority: Priority) -> pd.DataFrame:
    """Sort by priority (ties: the other score, then deal_id) and number the rows.

    Returns a new frame with ``rank`` (1..n over all rows) and ``owner_rank`` (1..k within
    each owner; deals without an owner rank among themselves), columns in :data:`COLUMNS`.
    """
    other = "p_win" if priority == "expected_value" else "expected_value"
    ordered = frame.sort_values(
        [priority, other, "deal_id"],
        ascending=[False, False, True],
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)
    ordered["rank"] = np.arange(1, len(ordered) + 1)
    owners = ordered["owner_id"].astype("object").fillna("\0")
    ordered["owner_rank"] = owners.groupby(owners, sort=False).cumcount().to_numpy() + 1
    return ordered[list(COLUMNS)]


def for_owners(frame: pd.DataFrame, owners: tuple[str, ...]) -> pd.DataFrame:
    """Only the rows of these owners, keeping ``rank`` (the team-wide rank) as it was."""
    keep = frame["owner_id"].isin(list(owners)).to_numpy(bool)
    return frame[keep].reset_index(drop=True)
