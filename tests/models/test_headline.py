"""The headline numbers ``dvc metrics show`` prints, picked from the backtests' trees."""

from __future__ import annotations

from models.headline import HEADLINE, format_metrics, headline


def test_headline_picks_the_numbers_and_nulls_what_is_missing():
    close = {
        "close_probability": {"overall": {"p_win": {"roc_auc": 0.81234, "log_loss": 0.4,
                                                    "ece": float("nan")}}},
        "next_stage": {"overall": {"next_stage_model": {"log_loss": 1.23456}}},
    }  # fmt: skip
    numbers = headline(close, None)
    assert list(numbers) == list(HEADLINE)
    assert numbers["auc"] == 0.8123 and numbers["log_loss"] == 0.4
    assert numbers["next_stage_log_loss"] == 1.2346
    assert numbers["ece"] is None and numbers["forecast_wape"] is None
    wape = headline(None, {"methods": {"dealcast": {"wape": 0.25}}})["forecast_wape"]
    assert wape == 0.25
    assert format_metrics(numbers).startswith("auc 0.812  log_loss 0.400  ece n/a")
