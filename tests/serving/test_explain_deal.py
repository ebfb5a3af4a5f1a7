"""One deal explained: the export's p_win, every driver with its value, the stage table
beside it, and the history of what was said at past snapshots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serving.explain_deal import UnknownDealError, explain_deal
from serving.score import score_open_deals
from tests.serving.test_score import AS_OF, HORIZON, SETTINGS, trained  # noqa: F401
from tests.shared import FUNNEL


def _explain(data, close, nxt, deal_id, **overrides):
    kwargs = dict(close=close, next_stage=nxt, funnel=FUNNEL, as_of=AS_OF, step_days=7,
                  points=6) | SETTINGS  # fmt: skip
    return explain_deal(data, deal_id, **(kwargs | overrides))


@pytest.fixture(scope="module")
def leads(trained):  # noqa: F811
    data, close, nxt, _ = trained
    return score_open_deals(
        data, close=close, next_stage=nxt, funnel=FUNNEL, as_of=AS_OF, horizon_days=HORIZON,
        priority="expected_value", top_reasons=3, model_version="v1",
        next_stage_model_version="v1", data_fingerprint="x", **SETTINGS,
    )  # fmt: skip


def test_the_explanation_agrees_with_the_export(trained, leads):  # noqa: F811
    data, close, nxt, _ = trained
    for row in leads.head(3).itertuples():
        got = _explain(data, close, nxt, row.deal_id)
        assert got.p_win == pytest.approx(row.p_win)
        assert got.stage == row.stage
        assert got.next_stage.index[0] == row.next_stage
        assert got.next_stage.iloc[0] == pytest.approx(row.p_next_stage)
        assert 0 < got.p_win_stage_table < 1
        # the export's top reasons are the first of every driver, in order
        for direction in ("up", "down"):
            shown = [p for p in getattr(row, f"reasons_{direction}").split("; ") if p]
            every = got.drivers.loc[got.drivers["direction"] == direction, "phrase"].tolist()
            assert every[: len(shown)] == shown
        assert len(got.drivers) > 6 and got.drivers["value"].notna().any()


def test_history_is_what_each_past_snapshot_knew(trained, leads):  # noqa: F811
    data, close, nxt, _ = trained
    deal = leads["deal_id"].iloc[0]
    got = _explain(data, close, nxt, deal)
    h = got.history
    assert h["as_of"].is_monotonic_increasing and pd.Timestamp(h["as_of"].iloc[-1]) == AS_OF
    assert len(h) <= 6 and np.diff(h["as_of"].to_numpy()).astype("timedelta64[D]").max() <= 7
    assert h["p_win"].iloc[-1] == pytest.approx(got.p_win)
    earlier = _explain(data, close, nxt, deal, as_of=pd.Timestamp(h["as_of"].iloc[0]), points=1)
    assert earlier.p_win == pytest.approx(h["p_win"].iloc[0])
    text = "\n".join(got.lines())
    assert f"deal {deal}" in text and "raising p_win" in text and "history" in text


def test_unknown_closed_and_future_deals_are_refused_with_their_dates(trained):  # noqa: F811
    data, close, nxt, _ = trained
    with pytest.raises(UnknownDealError, match="not in the CRM"):
        _explain(data, close, nxt, "NOPE")
    closed = data.deals[data.deals["closed_at"] < AS_OF].iloc[0]
    with pytest.raises(UnknownDealError, match="closed at .*only at a moment while it was open"):
        _explain(data, close, nxt, closed["deal_id"])
    later = data.deals[data.deals["created_at"] > AS_OF].iloc[0]
    with pytest.raises(UnknownDealError, match="was created at"):
        _explain(data, close, nxt, later["deal_id"])
