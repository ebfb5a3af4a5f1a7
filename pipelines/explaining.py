"""The ``explain`` step: load the CRM -> explain one deal with the champion -> the text a
rep reads (:mod:`serving.explain_deal`). Writes nothing. :func:`explain_loaded` is the one
way a deal is explained: ``dealcast explain`` and the API's ``GET /deals/{id}`` call it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from pipelines.params import FeaturesParams, Params
from pipelines.steps import StepError, data_end_of, load_for, spec_of
from serving.explain_deal import (
    DealClosedError,
    DealExplanation,
    UnknownDealError,
    explain_deal,
)


def run_explain(
    p: Params, champion, *, folder: Path, deal_id: str, as_of: pd.Timestamp | None
) -> DealExplanation:
    """Explain ``deal_id`` at ``as_of`` (default: the data's end, as ``score``); a deal
    that is unknown or not open then is a ``StepError`` naming the deal's dates."""
    data = load_for(p, folder)
    when = as_of if as_of is not None else data_end_of(data, data_end=p.features.data_end)
    try:
        return explain_loaded(
            data, champion, deal_id=deal_id, funnel=p.funnel.to_funnel(),
            features=p.features, as_of=when, step_days=p.score.explain_step_days,
            points=p.score.explain_points,
        )  # fmt: skip
    except UnknownDealError as error:
        hint = " (choose an earlier --as-of)" if isinstance(error, DealClosedError) else ""
        raise StepError(f"{error}{hint}") from None


def explain_loaded(
    data: CRMData,
    champion,
    *,
    deal_id: str,
    funnel: Funnel,
    features: FeaturesParams,
    as_of: pd.Timestamp,
    step_days: int,
    points: int,
) -> DealExplanation:
    """``deal_id`` of the loaded ``data`` explained by ``champion`` at ``as_of`` with the
    feature settings of ``features``; ``UnknownDealError`` as ``explain_deal``."""
    return explain_deal(
        data, deal_id, close=champion.close, next_stage=champion.next_stage, funnel=funnel,
        as_of=as_of, **spec_of(features).build_kwargs(), step_days=step_days, points=points,
    )  # fmt: skip
