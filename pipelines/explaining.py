"""The ``explain`` step: load the CRM -> explain one deal with the champion -> the text a
rep reads (:mod:`serving.explain_deal`). Writes nothing."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipelines.params import Params
from pipelines.steps import StepError, data_end_of, load_for, spec_of
from serving.explain_deal import DealExplanation, UnknownDealError, explain_deal


def run_explain(
    p: Params, champion, *, folder: Path, deal_id: str, as_of: pd.Timestamp | None
) -> DealExplanation:
    """Explain ``deal_id`` at ``as_of`` (default: the data's end, as ``score``); a deal
    that is unknown or not open then is a ``StepError`` naming the deal's dates."""
    data = load_for(p, folder)
    when = as_of if as_of is not None else data_end_of(data, data_end=p.features.data_end)
    try:
        return explain_deal(
            data, deal_id, close=champion.close, next_stage=champion.next_stage,
            funnel=p.funnel.to_funnel(), as_of=when, **spec_of(p.features).build_kwargs(),
            step_days=p.score.explain_step_days, points=p.score.explain_points,
        )  # fmt: skip
    except UnknownDealError as error:
        raise StepError(str(error)) from None
