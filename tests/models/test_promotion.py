"""The champion gate's pure decisions and the training-history comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm.data import CRMData
from models.history_check import HistoryRecord, compare_history, record_history
from models.promotion import (
    ACCEPT_FLAG,
    NO_BACKTEST,
    Decision,
    challenger_frames,
    decide,
    decide_models,
    decide_pair,
    fair_window,
    history_verdict,
    judge,
)

END = pd.Timestamp("2025-01-01", tz="UTC")


def _deals(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    created = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 200, n), "D")
    closed = created + pd.to_timedelta(rng.integers(10, 100, n), "D")
    closed = closed.where(rng.random(n) < 0.8)
    outcome = pd.Series(np.where(rng.random(n) < 0.3, "won", "lost"), dtype="str")
    return pd.DataFrame(
        {
            "deal_id": pd.array([f"D{i:04d}" for i in range(n)], dtype="str"),
            "created_at": created,
            "closed_at": closed,
            "outcome": outcome.where(pd.Series(closed).notna().to_numpy()),
        }
    )


def _record(deals: pd.DataFrame, end=END) -> HistoryRecord:
    return record_history(CRMData(deals=deals), data_end=end)


def test_the_same_history_and_normal_growth_are_not_a_rewrite():
    old = _deals()
    grown = pd.concat([old, _deals(50, seed=1).assign(deal_id=lambda d: "N" + d["deal_id"])])
    check = compare_history(_record(old), _record(grown), clock=END)
    assert check.rewritten == 0 and check.share == 0.0
    refusal, note = history_verdict(check, max_rewrite_share=0.02, accept=False)
    assert refusal is None and note == ""


def test_shuffled_outcomes_are_counted_named_and_refused():
    old = _deals()
    shuffled = old.copy()
    closed = shuffled["outcome"].notna()
    rng = np.random.default_rng(3)
    shuffled.loc[closed, "outcome"] = rng.permutation(shuffled.loc[closed, "outcome"].to_numpy())
    shuffled = shuffled.drop(index=[0, 1])  # and two deals vanish
    check = compare_history(_record(old), _record(shuffled), clock=END)
    n_closed = int(closed.sum())
    assert check.champion_closed == n_closed
    assert check.outcome_changed > 0.2 * n_closed
    assert check.disappeared == (closed.iloc[:2]).sum()
    assert len(check.examples) == 3
    refusal, _ = history_verdict(check, max_rewrite_share=0.02, accept=False)
    assert refusal is not None and not refusal.promote
    for text in ("rewritten", "changed outcome", check.examples[0], ACCEPT_FLAG):
        assert text in refusal.reason
    accepted, note = history_verdict(check, max_rewrite_share=0.02, accept=True)
    assert accepted is None and "accepted" in note


def test_a_changed_close_date_counts_and_a_small_share_is_tolerated():
    old = _deals()
    moved = old.copy()
    first_closed = moved.index[moved["closed_at"].notna()][0]
    moved.loc[first_closed, "closed_at"] += pd.Timedelta(days=3)
    check = compare_history(_record(old), _record(moved), clock=END)
    assert (check.close_changed, check.outcome_changed, check.disappeared) == (1, 0, 0)
    assert history_verdict(check, max_rewrite_share=0.02, accept=False)[0] is None
    assert history_verdict(check, max_rewrite_share=0.0, accept=False)[0] is not None


def test_data_ending_after_the_clock_is_refused_even_when_accepted():
    old = _deals()
    check = compare_history(_record(old), _record(old, end=END + pd.Timedelta(days=30)), clock=END)
    refusal, _ = history_verdict(check, max_rewrite_share=0.02, accept=True)
    assert refusal is not None and "after the clock" in refusal.reason


def test_a_record_survives_its_round_trip():
    record = _record(_deals())
    again = HistoryRecord.from_parts(record.summary(), record.closed.copy())
    assert compare_history(record, again, clock=END).rewritten == 0
    assert again.outcomes == record.outcomes and again.rows == {"deals": 200}


def test_no_record_means_no_comparison_but_says_so():
    refusal, note = history_verdict(None, max_rewrite_share=0.02, accept=False)
    assert refusal is None and "no training-data record" in note


def test_decide_compares_log_losses_on_known_rows_only():
    truth = pd.Series([True, False, True, pd.NA, False], dtype="boolean")
    good = pd.DataFrame({"p_win": [0.9, 0.1, 0.8, 0.5, 0.2]})
    bad = pd.DataFrame({"p_win": [0.5, 0.5, 0.5, 0.0, 0.5]})
    win = decide(kind="close", truth=truth, challenger=good, champion=bad,
                 champion_label="v1", min_gain=0.0)  # fmt: skip
    assert win.promote and "beats champion v1" in win.reason
    assert win.challenger_loss < win.champion_loss
    lose = decide(kind="close", truth=truth, challenger=bad, champion=good,
                  champion_label="v1", min_gain=0.0)  # fmt: skip
    assert not lose.promote and "needs a gain" in lose.reason
    unknown = pd.Series([pd.NA] * 5, dtype="boolean")
    none = decide(kind="close", truth=unknown, challenger=good, champion=bad,
                  champion_label="v1", min_gain=0.0)  # fmt: skip
    assert not none.promote and "no known outcomes" in none.reason


def test_next_stage_frames_are_class_probabilities():
    truth = pd.Series(["won", "lost", None])
    sure = pd.DataFrame({"won": [0.9, 0.1, 0.5], "lost": [0.1, 0.9, 0.5]})
    flat = pd.DataFrame({"won": [0.5, 0.5, 0.5], "lost": [0.5, 0.5, 0.5]})
    d = decide(kind="next_stage", truth=truth, challenger=sure, champion=flat,
               champion_label="v3", min_gain=0.01)  # fmt: skip
    assert d.promote and d.challenger_loss == pytest.approx(-np.log(0.9))


def test_the_pair_moves_together():
    ok, no = Decision(True, "log loss better"), Decision(False, "not promoted: worse")
    both = decide_pair({"close": ok, "next_stage": ok})
    assert all(d.promote for d in both.values())
    held = decide_pair({"close": ok, "next_stage": no})
    assert not any(d.promote for d in held.values())
    assert "next_stage model did not" in held["close"].reason


def test_a_champion_trained_after_the_window_is_not_a_fair_comparison():
    t = pd.Timestamp("2025-01-01", tz="UTC")
    assert fair_window(t, t) and not fair_window(t + pd.Timedelta(days=1), t)
    assert not fair_window(pd.NaT, t)


def _predictions() -> pd.DataFrame:
    return pd.DataFrame({
        "won": pd.array([True, False, True, None], dtype="boolean"),
        "p_win": [0.9, 0.1, 0.8, 0.5],
        "next_stage_true": ["won", "lost", None, "won"],
        "p_next__won": [0.9, 0.1, 0.5, 0.8],
        "p_next__lost": [0.1, 0.9, 0.5, 0.2],
    })  # fmt: skip


def test_judge_scores_the_champion_only_on_a_fair_window():
    t = pd.Timestamp("2025-01-01", tz="UTC")
    asked = []

    def champion_scores():
        asked.append(1)
        return pd.DataFrame({"p_win": [0.5] * 4})

    common = {"challenger_cutoff": t, "champion_version": "4", "min_gain": 0.0,
              "champion_scores": champion_scores}  # fmt: skip
    late = judge("close", predictions=_predictions(), champion_cutoff=t + pd.Timedelta(days=1),
                 **common)  # fmt: skip
    assert not late.promote and "champion v4 was trained after" in late.reason and not asked
    assert judge("close", predictions=None, champion_cutoff=t, **common) == NO_BACKTEST
    fair = judge("close", predictions=_predictions(), champion_cutoff=t, **common)
    assert fair.promote and "beats champion v4" in fair.reason and asked == [1]


def test_challenger_frames_of_the_next_stage_model_are_its_class_probabilities():
    truth, ours = challenger_frames(_predictions(), "next_stage")
    assert list(ours.columns) == ["won", "lost"] and truth.iloc[1] == "lost"
    truth, ours = challenger_frames(_predictions(), "close")
    assert list(ours.columns) == ["p_win"] and truth.isna().sum() == 1


def test_decide_models_asks_for_no_more_than_it_needs():
    kinds = ["close", "next_stage"]
    asked = []

    def one(kind):
        asked.append(kind)
        return Decision(kind == "close", f"{kind} judged")

    first = decide_models(kinds, history=None, max_rewrite_share=0.02, accept=False,
                          decide_one=one)  # fmt: skip
    assert all(d.reason == "first model: no champion yet" for d in first.values()) and not asked
    old = _deals()
    future = compare_history(_record(old), _record(old, end=END + pd.Timedelta(days=30)),
                             clock=END)  # fmt: skip
    refused = decide_models(kinds, history=lambda: future, max_rewrite_share=0.02,
                            accept=False, decide_one=one)  # fmt: skip
    assert "after the clock" in refused["close"].reason and not asked
    assert "see the close model" in refused["next_stage"].reason
    judged = decide_models(kinds, history=lambda: None, max_rewrite_share=0.02, accept=False,
                           decide_one=one)  # fmt: skip
    assert asked == kinds and not judged["close"].promote
    assert "next_stage model did not" in judged["close"].reason
    assert "no training-data record" in judged["close"].reason
