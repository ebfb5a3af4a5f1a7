"""The champion gate, as pure decisions: scores and history in, a decision and its reason out.

A challenger (the model just trained) replaces the champion (the serving model) only when

1. its training data tells the same past as the champion's: no more than
   ``max_rewrite_share`` of the deals closed by the champion's data end changed outcome or
   close date or vanished, and the data does not end after the clock (see
   :mod:`models.history_check`), unless the user accepts the rewritten history;
2. on the same backtest rows, which neither model saw the outcome of, its log loss is
   lower than the champion's by more than ``min_gain``.

The close and next-stage models serve as a pair, so the pair is promoted only when every
model of it passes (:func:`decide_pair`). Loading models and moving aliases is the
shell's job (:mod:`pipelines.tracking`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from models.history_check import HistoryCheck
from models.metrics import binary_log_loss, multiclass_metrics

ACCEPT_FLAG = "--accept-rewritten-history"


@dataclass(frozen=True)
class Decision:
    """Whether to promote, why, and the two log losses when they were compared."""

    promote: bool
    reason: str
    challenger_loss: float | None = None
    champion_loss: float | None = None


def first_model() -> Decision:
    return Decision(True, "first model: no champion yet")


def fair_window(champion_cutoff: pd.Timestamp, challenger_cutoff: pd.Timestamp) -> bool:
    """Whether the champion's backtest model was trained no later than ours: only then did
    neither model see the outcomes of our test rows."""
    return not pd.isna(champion_cutoff) and champion_cutoff <= challenger_cutoff


def history_verdict(
    check: HistoryCheck | None, *, max_rewrite_share: float, accept: bool
) -> tuple[Decision | None, str]:
    """A refusal when the past was rewritten or the data ends after the clock, else None;
    and a note for the reason (the rewrite that was accepted, or that none was recorded)."""
    if check is None:
        return None, "champion has no training-data record, history not compared"
    if check.beyond_clock():
        return Decision(False, f"not promoted: {check.describe()}; set features.data_end "
                        "or fix the far-future rows"), ""  # fmt: skip
    if check.share <= max_rewrite_share:
        return None, ""
    if accept:
        return None, f"rewritten history accepted ({ACCEPT_FLAG}): {check.describe()}"
    return (
        Decision(
            False,
            f"not promoted: the training history was rewritten: {check.describe()}, more "
            f"than evaluate.max_history_rewrite_share {max_rewrite_share:.1%}; the backtest "
            "would judge both models on the rewritten labels. If the new history is right "
            f"(a CRM migration, corrected outcomes), run `dealcast train {ACCEPT_FLAG}`",
        ),
        "",
    )


def log_losses(
    kind: str, truth: pd.Series, challenger: pd.DataFrame, champion: pd.DataFrame
) -> tuple[float, float] | None:
    """Log loss of each model on the rows whose truth is known (None if there are none).

    ``close``: ``truth`` is won (bool, NA unknown), the frames have ``p_win``.
    ``next_stage``: ``truth`` is the next state (NA unknown), the frames one probability
    column per state. All three are aligned row by row.
    """
    known = truth.notna().to_numpy(bool)
    if not known.any():
        return None
    y = truth[known].reset_index(drop=True)
    ours = challenger[known].reset_index(drop=True)
    theirs = champion[known].reset_index(drop=True)
    if kind == "close":
        y = y.astype(bool).to_numpy()
        return binary_log_loss(y, ours["p_win"]), binary_log_loss(y, theirs["p_win"])
    return multiclass_metrics(y, ours)["log_loss"], multiclass_metrics(y, theirs)["log_loss"]


def decide(
    *,
    kind: str,
    truth: pd.Series,
    challenger: pd.DataFrame,
    champion: pd.DataFrame,
    champion_label: str,
    min_gain: float,
) -> Decision:
    """Promote when the challenger's log loss beats the champion's by more than ``min_gain``
    on the same rows (see :func:`log_losses` for the frames)."""
    losses = log_losses(kind, truth, challenger, champion)
    if losses is None:
        return Decision(False, "not promoted: no known outcomes in the window")
    ours, theirs = losses
    if ours < theirs - min_gain:
        reason = f"log loss {ours:.4f} beats champion {champion_label} {theirs:.4f} by more "
        return Decision(True, reason + f"than {min_gain}", ours, theirs)
    return Decision(
        False,
        f"not promoted: log loss {ours:.4f} vs champion {champion_label} {theirs:.4f} "
        f"(needs a gain above {min_gain})",
        ours,
        theirs,
    )


def decide_pair(decisions: dict[str, Decision]) -> dict[str, Decision]:
    """The pair moves together: if any model is refused, none is promoted, and the others'
    reasons say which one held the pair back."""
    refused = [kind for kind, d in decisions.items() if not d.promote]
    if not refused:
        return decisions
    blame = ", ".join(f"{kind} model" for kind in refused)
    return {
        kind: d if not d.promote else Decision(
            False, f"not promoted: passed its gate ({d.reason}) but the {blame} did not, and "
            "the pair is promoted together", d.challenger_loss, d.champion_loss)
        for kind, d in decisions.items()
    }  # fmt: skip


def refuse_pair(refusal: Decision, kinds) -> dict[str, Decision]:
    """``refusal`` for the close model, a pointer to it for the others (said once)."""
    short = Decision(False, "not promoted: the pair is refused for its training data (see "
                     "the close model)")  # fmt: skip
    return {kind: refusal if kind == "close" else short for kind in kinds}


def with_note(decision: Decision, note: str) -> Decision:
    """``decision`` with ``note`` appended to its reason (if any)."""
    if not note:
        return decision
    reason = f"{decision.reason} ({note})"
    return Decision(decision.promote, reason, decision.challenger_loss, decision.champion_loss)


NO_BACKTEST = Decision(False, "not promoted: no backtest to compare with the champion")


def decide_models(
    kinds: list[str],
    *,
    history: Callable[[], HistoryCheck | None] | None,
    max_rewrite_share: float,
    accept: bool,
    decide_one: Callable[[str], Decision],
) -> dict[str, Decision]:
    """Every model's decision, the pair decided as one (:func:`decide_pair`).

    ``history`` compares the challenger's training data with the close champion's (None:
    no close champion yet, so the first model is promoted); only when the history passes
    is ``decide_one(kind)`` (the backtest comparison, :func:`judge`) asked for each model.
    """
    if history is None:
        return {kind: first_model() for kind in kinds}
    refusal, note = history_verdict(history(), max_rewrite_share=max_rewrite_share,
                                    accept=accept)  # fmt: skip
    if refusal is not None:
        return refuse_pair(refusal, kinds)
    return decide_pair({kind: with_note(decide_one(kind), note) for kind in kinds})


def judge(
    kind: str,
    *,
    predictions: pd.DataFrame | None,
    challenger_cutoff: pd.Timestamp,
    champion_version: str,
    champion_cutoff: pd.Timestamp,
    champion_scores: Callable[[], pd.DataFrame],
    min_gain: float,
) -> Decision:
    """One model against the champion's backtest model, on the challenger's backtest rows.

    ``predictions`` are the backtest's test predictions (None: no backtest); the champion
    is judged only when its backtest model was trained no later than ours
    (:func:`fair_window`), and only then is ``champion_scores()`` (its scores on the same
    rows, the frame :func:`log_losses` takes) computed.
    """
    if predictions is None:
        return NO_BACKTEST
    if not fair_window(champion_cutoff, challenger_cutoff):
        return Decision(False, f"not promoted: champion v{champion_version} was trained after "
                        "this backtest window began; no fair comparison")  # fmt: skip
    truth, ours = challenger_frames(predictions, kind)
    return decide(kind=kind, truth=truth, challenger=ours, champion=champion_scores(),
                  champion_label=f"v{champion_version}", min_gain=min_gain)  # fmt: skip


def challenger_frames(predictions: pd.DataFrame, kind: str) -> tuple[pd.Series, pd.DataFrame]:
    """Truth and the challenger's scores of ``kind`` from a backtest's test predictions."""
    pred = predictions.reset_index(drop=True)
    if kind == "close":
        return pred["won"], pred[["p_win"]]
    ours = pred[[c for c in pred if c.startswith("p_next__")]]
    return pred["next_stage_true"], ours.rename(columns=lambda c: c.removeprefix("p_next__"))
