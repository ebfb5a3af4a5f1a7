"""Model history as pure decisions: version records in, a table, a choice or a verdict out.

The registry (MLflow) is read and written by :mod:`pipelines.model_history`; this module
only turns what it read into what ``dealcast models`` prints and decides:

- :func:`format_history`: one row per close-model version with its next-stage partner,
  training window, backtest metrics, data fingerprint and whether it serves or ever served;
- :func:`served_label`: "yes"/"no"/"unknown" from the tags written when the champion
  alias moves (versions from before that record began are "unknown", not "no");
- :func:`previous_champion`: the version a rollback returns to by default;
- :func:`settings_differences`: what differs between a training's settings and the
  champion's (none: a retrain would repeat the champion, so it registers nothing);
- :func:`compare_scores`: two models' scores on the same rows, and the difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from models.headline import HEADLINE
from models.metrics import calibration_scores, multiclass_metrics

#: Backtest metric name -> its MLflow metric key (the backtest metrics tree, flattened).
BACKTEST_METRICS = {
    name: ".".join(HEADLINE[name][1:]) for name in ("log_loss", "auc", "ece", "next_stage_log_loss")
}
UNKNOWN = "unknown"
SHORT_FINGERPRINT = 8


@dataclass(frozen=True)
class VersionRecord:
    """One registered close-model version as ``dealcast models`` shows it.

    ``served_from``/``served_until``: when the champion alias moved to/away from it (None
    when not recorded); ``tracked_since``: when the registry began recording that (None:
    not yet), so an older version without a record is "unknown" rather than "never".
    """

    version: str
    partner: str
    created: pd.Timestamp
    cutoff: str
    data_end: str
    backtest_cutoff: str
    fingerprint: str
    champion: bool
    note: str
    metrics: dict[str, float] = field(default_factory=dict)
    served_from: str | None = None
    served_until: str | None = None
    tracked_since: pd.Timestamp | None = None
    promoted_at_train: bool = False


def served_label(record: VersionRecord) -> str:
    """``now``, ``yes`` (served before), ``no`` or ``unknown`` (no record: registered
    before ``dealcast`` recorded alias moves, and not promoted by its training)."""
    if record.champion:
        return "now"
    if record.served_from or record.promoted_at_train:
        return "yes"
    tracked = record.tracked_since
    if tracked is not None and record.created >= tracked:
        return "no"
    return UNKNOWN


def _day(text: str) -> str:
    """The date of a timestamp text (``-`` when missing)."""
    stamp = pd.Timestamp(text) if text else pd.NaT
    return "-" if pd.isna(stamp) else stamp.strftime("%Y-%m-%d")


def _number(value: float | None) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.4f}"


def _served(r: VersionRecord) -> str:
    """The ``served`` column: :func:`served_label`, with the recorded days when known."""
    label = served_label(r)
    if not r.served_from:
        return label
    since = _day(r.served_from)
    if label == "now":
        return f"now, since {since}"
    return f"{since}..{_day(r.served_until) if r.served_until else ''}"


def history_table(records: list[VersionRecord]) -> pd.DataFrame:
    """The rows of :func:`format_history`, newest version first."""
    rows = [
        {
            "version": f"v{r.version}" + (" *" if r.champion else ""),
            "next_stage": r.partner if r.partner in ("-", "none") else f"v{r.partner}",
            "created": r.created.strftime("%Y-%m-%d %H:%M"),
            "trained_to": _day(r.cutoff),
            "backtest_cut": _day(r.backtest_cutoff),
            "log_loss": _number(r.metrics.get("log_loss")),
            "auc": _number(r.metrics.get("auc")),
            "ece": _number(r.metrics.get("ece")),
            "data": (r.fingerprint or "-")[:SHORT_FINGERPRINT],
            "served": _served(r),
            "note": r.note or "-",
        }
        for r in sorted(records, key=lambda r: int(r.version), reverse=True)
    ]
    return pd.DataFrame(rows)


def format_history(records: list[VersionRecord], *, model_name: str) -> str:
    """The table ``dealcast models`` prints (``*``: the champion), with a legend."""
    if not records:
        return f"no registered versions of {model_name} yet: run `dealcast train`"
    table = history_table(records).to_string(index=False, justify="left")
    return (
        f"{model_name}: {len(records)} version(s), newest first (* champion)\n{table}\n"
        "log_loss, auc, ece: the close model's backtest, each version on its own test "
        "window\n(`dealcast models compare A B` scores two on the same rows); data: the "
        "CRM fingerprint it was trained on"
    )


def previous_champion(records: list[VersionRecord], *, current: str | None) -> str | None:
    """The version a rollback returns to: the one the champion alias left last (its
    ``served_until``), else the newest older version that served or was promoted by its
    training; None when there is none."""
    others = [r for r in records if r.version != current]
    left = [r for r in others if r.served_until]
    if left:
        return max(left, key=lambda r: pd.Timestamp(r.served_until)).version
    below = [
        r
        for r in others
        if (r.served_from or r.promoted_at_train)
        and (current is None or int(r.version) < int(current))
    ]
    return max(below, key=lambda r: int(r.version)).version if below else None


def settings_differences(ours: dict[str, str], theirs: dict[str, str]) -> list[str]:
    """The keys whose values differ between two flattened settings (values compared as
    text, as MLflow keeps params; a key only one side has counts as a difference)."""
    keys = sorted(set(ours) | set(theirs))
    return [k for k in keys if str(ours.get(k, "<absent>")) != str(theirs.get(k, "<absent>"))]


def compare_scores(
    truth: pd.Series,
    scores: dict[str, pd.Series],
    *,
    ece_bins: int,
) -> pd.DataFrame:
    """Log loss, AUC and ECE of each model's ``p_win`` on the rows whose outcome is known
    (``truth``: won, NA unknown), one row per model, then ``difference`` (second minus
    first). Every series is aligned row by row; ``n`` is the number of known rows."""
    known = truth.notna().to_numpy(bool)
    y = truth[known].astype(bool).to_numpy()
    rows = {}
    for label, p in scores.items():
        m = calibration_scores(y, np.asarray(p, float)[known], n_bins=ece_bins)
        rows[label] = {"n": int(known.sum()), "log_loss": m["log_loss"], "auc": m["auc"],
                       "ece": m["ece"]}  # fmt: skip
    table = pd.DataFrame(rows).T
    first, second = list(rows)[:2]
    table.loc["difference"] = table.loc[second] - table.loc[first]
    table.loc["difference", "n"] = table.loc[first, "n"]
    return table


def compare_next_stage(truth: pd.Series, scores: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Next-stage log loss and accuracy of each model on the rows whose next state is
    known (``truth``; NA unknown), then ``difference`` (second minus first)."""
    known = truth.notna().to_numpy(bool)
    rows = {}
    for label, proba in scores.items():
        m = multiclass_metrics(truth[known].reset_index(drop=True),
                               proba[known].reset_index(drop=True))  # fmt: skip
        rows[label] = {"n": m["n"], "log_loss": m["log_loss"], "accuracy": m["accuracy"]}
    table = pd.DataFrame(rows).T
    first, second = list(rows)[:2]
    table.loc["difference"] = table.loc[second] - table.loc[first]
    table.loc["difference", "n"] = table.loc[first, "n"]
    return table
