"""The ``serve`` step: the champion + the CRM folder -> a :class:`~serving.api.Scorer` -> HTTP.

:class:`CRMScorer` is the real scorer: it ranks every deal open at ``as_of`` once, at start
(the ranked list is then served from memory), and scores a posted deal by putting its rows
into the loaded CRM in place of any rows that deal had and ranking again, so the deal's
features (owner and account win rates, touch counts, ...) are computed exactly as the daily
export computes them, and its ``rank`` is the rank it would have among today's deals.

Auth policy (:func:`resolve_token`): the token comes from the environment variable
``serve.token_env`` (``DEALCAST_API_TOKEN``); without it the server refuses to start, unless
``--no-auth`` is given, which is allowed only on a loopback host.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from pipelines.params import FeaturesParams, Params, ScoreParams
from pipelines.steps import data_end_of

log = logging.getLogger(__name__)

#: Tables whose rows of the posted deal replace the CRM's rows of that deal.
DEAL_TABLES = ("deals", "stage_history", "touchpoints")
MIN_TOKEN_CHARS = 16


@dataclass(frozen=True)
class CRMScorer:
    """The champion scoring one loaded CRM at ``as_of`` (see the module docstring)."""

    data: CRMData
    champion: object
    funnel: Funnel
    features: FeaturesParams
    score: ScoreParams
    horizon_days: int
    as_of: pd.Timestamp
    fingerprint: str
    leads: pd.DataFrame = field(repr=False)

    @property
    def model_versions(self) -> Mapping[str, str]:
        versions = {"close": self.champion.close_version}
        if self.champion.next_stage_version:
            versions["next_stage"] = self.champion.next_stage_version
        return versions

    def ranked(self) -> pd.DataFrame:
        return self.leads

    def score_deal(self, history: CRMData) -> pd.DataFrame:
        """The posted deal's row, ranked among the CRM's open deals; ``ValueError`` if it
        is not open at ``as_of``."""
        deal_id = str(history.deals["deal_id"].iloc[0])
        scored = score_crm(with_deal(self.data, history), scorer=self)
        row = scored[scored["deal_id"] == deal_id].reset_index(drop=True)
        if row.empty:
            raise ValueError(
                f"deal {deal_id!r} is not open at {self.as_of} (created later, or its last "
                "stage is won/lost): nothing to score"
            )
        return row


def score_crm(data: CRMData, *, scorer: CRMScorer) -> pd.DataFrame:
    """Every deal of ``data`` open at the scorer's ``as_of``, ranked by its champion."""
    from serving.score import score_open_deals

    s, f, champion = scorer, scorer.features, scorer.champion
    return score_open_deals(
        data, close=champion.close, next_stage=champion.next_stage, funnel=s.funnel,
        as_of=s.as_of, windows_days=f.windows_days, trend_days=f.trend_days,
        recency_channels=f.recency_channels, prior_strength=f.prior_strength,
        horizon_days=s.horizon_days, priority=s.score.priority,
        top_reasons=s.score.top_reasons, model_version=champion.close_version,
        next_stage_model_version=champion.next_stage_version, data_fingerprint=s.fingerprint,
    )  # fmt: skip


def with_deal(data: CRMData, history: CRMData) -> CRMData:
    """``data`` with the posted deal's rows in place of that deal's rows (a new CRM).

    Columns the CRM does not have are dropped (no model knows them); categorical columns
    stay categorical. Posted account-level touchpoints are added as they are.
    """
    deal_id = str(history.deals["deal_id"].iloc[0])
    out = data
    for name in DEAL_TABLES:
        old, new = data.table(name), history.table(name)
        if old is None:
            if new is not None and name != "deals":
                log.info("the CRM has no %s table: the posted %s rows are ignored", name, name)
            continue
        keep = old[old["deal_id"].astype("str") != deal_id] if "deal_id" in old else old
        out = out.with_table(name, _append(keep, new))
    return out


def _append(old: pd.DataFrame, new: pd.DataFrame | None) -> pd.DataFrame:
    if new is None or new.empty:
        return old.reset_index(drop=True)
    new = new.reindex(columns=old.columns)
    both = pd.concat([old, new], ignore_index=True)
    for column in old.columns:
        if isinstance(old[column].dtype, pd.CategoricalDtype):
            both[column] = both[column].astype("str").where(both[column].notna()).astype("category")
        elif both[column].dtype != old[column].dtype:
            both[column] = both[column].astype(old[column].dtype)
    return both


def build_scorer(
    data: CRMData,
    *,
    champion,
    funnel: Funnel,
    features: FeaturesParams,
    score: ScoreParams,
    horizon_days: int,
    as_of: pd.Timestamp | None,
) -> CRMScorer:
    """Rank the open deals once; ``as_of`` defaults to the data's end, as ``dealcast score``."""
    from pipelines.modelling_artifacts import fingerprint

    if as_of is None:
        as_of = data_end_of(data, data_end=features.data_end)
    partial = CRMScorer(
        data=data, champion=champion, funnel=funnel, features=features, score=score,
        horizon_days=horizon_days, as_of=as_of, fingerprint=fingerprint(data),
        leads=pd.DataFrame(),
    )  # fmt: skip
    return replace(partial, leads=score_crm(data, scorer=partial))


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable only from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(
    *, host: str, token_env: str, no_auth: bool, environ: Mapping[str, str]
) -> str | None:
    """The API token, or None for ``--no-auth`` on loopback; ``StepError`` otherwise."""
    from pipelines.steps import StepError

    token = environ.get(token_env, "").strip() or None
    if no_auth:
        if not is_loopback(host):
            raise StepError(
                f"--no-auth is allowed only on a loopback host (127.0.0.1, ::1), not {host!r}"
            )
        log.warning("serving WITHOUT authentication on %s (--no-auth)", host)
        return None
    if token is None:
        raise StepError(
            f"set the API token in the environment variable {token_env} (e.g. "
            f"`export {token_env}=$(openssl rand -hex 32)`), or pass --no-auth to serve "
            "without authentication on 127.0.0.1"
        )
    if len(token) < MIN_TOKEN_CHARS:
        log.warning("the API token in %s is shorter than %d characters", token_env, MIN_TOKEN_CHARS)
    return token


def run_serve(
    *,
    folder: Path,
    params: Params,
    host: str,
    port: int,
    as_of: pd.Timestamp | None,
    no_auth: bool,
    environ: Mapping[str, str],
) -> None:
    """Check the auth policy, load the CRM and champion, rank, and serve until stopped."""
    import uvicorn

    from pipelines.steps import StepError, load_and_validate
    from pipelines.tracking import load_champion
    from serving.api import create_app

    token = resolve_token(host=host, token_env=params.serve.token_env, no_auth=no_auth,
                          environ=environ)  # fmt: skip
    funnel = params.funnel.to_funnel()
    champion = load_champion(
        close_model_name=params.evaluate.close_model_name,
        next_stage_model_name=params.evaluate.next_stage_model_name,
    )
    result = load_and_validate(folder, funnel=funnel, as_of=None)
    if result.data is None:
        raise StepError(f"{folder}: the CRM data is not usable\n{result.report.to_text()}")
    scorer = build_scorer(
        result.data, champion=champion, funnel=funnel, features=params.features,
        score=params.score, horizon_days=champion.horizon_days or params.train.horizon_days,
        as_of=as_of,
    )  # fmt: skip
    log.info("%d open deals at %s ranked; serving on http://%s:%d", len(scorer.leads),
             scorer.as_of, host, port)  # fmt: skip
    app = create_app(
        scorer=scorer, token=token, max_body_bytes=params.serve.max_body_bytes,
        max_rows=params.serve.max_rows, funnel=funnel,
    )  # fmt: skip
    uvicorn.run(app, host=host, port=port, log_level="info", server_header=False)
