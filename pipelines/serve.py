"""The ``serve`` step: the champion + the CRM folder -> a :class:`~serving.api.Scorer` -> HTTP.

:class:`CRMScorer` is the real scorer: at start it ranks every deal open at ``as_of`` (the
ranked list is then served from memory), indexes the CRM (``serving.single_deal``) and
computes the day's CRM-wide aggregates (``serving.deal_features.Day``: win rates, open
counts, stage entry ages). A posted deal is scored by :mod:`serving.posted`: its own rows
in place of any rows that deal had in the CRM, its features from those rows and the day's
aggregates, so its row is the one the daily export would give it were it in the CRM, at a
few milliseconds per deal instead of a rebuild of the CRM; its ``rank`` is the rank it
takes among today's ranked deals.

Auth policy (:func:`resolve_token`): the token comes from the environment variable
``serve.token_env`` (``DEALCAST_API_TOKEN``); without it the server refuses to start, unless
``--no-auth`` is given, which is allowed only on a loopback host.
"""

from __future__ import annotations

import gc
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
from serving.deal_features import Day, posted_features
from serving.explain_deal import DealExplanation
from serving.posted import repost_notes, score_many
from serving.single_deal import DealIndex, Note, contiguous

log = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 32


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
    index: DealIndex | None = field(default=None, repr=False)
    day: Day | None = field(default=None, repr=False)

    @property
    def model_versions(self) -> Mapping[str, str]:
        versions = {"close": self.champion.close_version}
        if self.champion.next_stage_version:
            versions["next_stage"] = self.champion.next_stage_version
        return versions

    def ranked(self) -> pd.DataFrame:
        return self.leads

    def score_deals(
        self, histories: list[CRMData]
    ) -> list[tuple[pd.DataFrame, list[Note]] | ValueError]:
        """Each posted deal's row, ranked among today's open deals, with notes on how its
        rows met the CRM's; a ``ValueError`` in its place if it is not open at ``as_of``.
        Each result is what the deal would get if posted alone."""
        if self.index is None or self.day is None:
            raise RuntimeError("a CRMScorer comes from build_scorer")
        day = self.day
        results = score_many(
            self.index, histories, day=day, leads=self.leads, priority=self.score.priority,
            score=lambda data, ids: score_crm(data, scorer=self, deal_ids=ids),
            score_alone=lambda mini, ids: score_crm(
                mini, scorer=self, deal_ids=ids, features=posted_features(mini, day=day)
            ),
        )  # fmt: skip
        return [
            r if isinstance(r, ValueError) else (r[0], r[1] + self._left_out(h))
            for h, r in zip(histories, results, strict=True)
        ]

    def _left_out(self, history: CRMData) -> list[Note]:
        """A repost's notes (:func:`serving.posted.repost_notes`); none for a new deal."""
        posted = history.deals
        rows = self.index.crm_rows("deals", str(posted["deal_id"].iloc[0]))
        if not len(rows):
            return []
        return repost_notes(self.data.deals.iloc[int(rows[0])].to_dict(), posted.iloc[0].to_dict())

    def explain(self, deal_id: str, *, step_days: int, points: int) -> DealExplanation:
        """``deal_id`` explained at ``as_of``, exactly as ``dealcast explain`` does it."""
        from pipelines.explaining import explain_loaded

        return explain_loaded(
            self.data, self.champion, deal_id=deal_id, funnel=self.funnel,
            features=self.features, as_of=self.as_of, step_days=step_days, points=points,
        )  # fmt: skip


def score_crm(
    data: CRMData,
    *,
    scorer: CRMScorer,
    deal_ids: tuple[str, ...] | None = None,
    features: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every deal of ``data`` open at the scorer's ``as_of`` (or only ``deal_ids``), ranked
    by its champion; ``features`` given are scored instead of built from ``data``."""
    from serving.score import score_open_deals

    s, f, champion = scorer, scorer.features, scorer.champion
    return score_open_deals(
        data, close=champion.close, next_stage=champion.next_stage, funnel=s.funnel,
        as_of=s.as_of, windows_days=f.windows_days, trend_days=f.trend_days,
        recency_channels=f.recency_channels, prior_strength=f.prior_strength,
        horizon_days=s.horizon_days, priority=s.score.priority,
        top_reasons=s.score.top_reasons, model_version=champion.close_version,
        next_stage_model_version=champion.next_stage_version, data_fingerprint=s.fingerprint,
        deal_ids=deal_ids, features=features,
        day_drift=None if deal_ids is None else scorer.leads.attrs.get("drift", []),
    )  # fmt: skip


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
    """Rank the open deals once and index the CRM for single deals; ``as_of`` defaults to
    the data's end, as ``dealcast score``."""
    from pipelines.modelling_artifacts import fingerprint

    if as_of is None:
        as_of = data_end_of(data, data_end=features.data_end)
    data = contiguous(data)
    partial = CRMScorer(
        data=data, champion=champion, funnel=funnel, features=features, score=score,
        horizon_days=horizon_days, as_of=as_of, fingerprint=fingerprint(data),
        leads=pd.DataFrame(),
    )  # fmt: skip
    index = DealIndex(data, funnel=funnel, as_of=as_of)
    day = Day.of(
        data, as_of=as_of, funnel=funnel, windows_days=features.windows_days,
        trend_days=features.trend_days, recency_channels=features.recency_channels,
        prior_strength=features.prior_strength,
    )  # fmt: skip
    return replace(partial, leads=score_crm(data, scorer=partial), index=index, day=day)


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
        raise StepError(
            f"the API token in {token_env} has {len(token)} characters; at least "
            f"{MIN_TOKEN_CHARS} are needed (make one with `openssl rand -hex 32`)"
        )
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
    """Check the auth policy and the host/port (cheap checks first), load the CRM and
    champion, rank, and serve until stopped."""
    from pipelines.serve_http import ListenError, bare_host, listen, serve, url_of
    from pipelines.steps import StepError

    host = bare_host(host)
    token = resolve_token(host=host, token_env=params.serve.token_env, no_auth=no_auth,
                          environ=environ)  # fmt: skip
    try:
        sock = listen(host, port)
    except ListenError as exc:
        raise StepError(str(exc)) from None
    workers = params.serve.workers
    if workers > 1:  # each worker loads for itself (spawned: nothing shared but the socket)
        app = WorkerApp(folder=folder, params=params, as_of=as_of, token=token,
                        verbose=logging.getLogger().isEnabledFor(logging.DEBUG))  # fmt: skip
    else:
        try:
            app = _load_app(folder, params=params, as_of=as_of, token=token)
        except BaseException:
            sock.close()
            raise
    log.info(
        "serving on %s with %d worker process(es)%s (docs at %s/docs)", url_of(host, port),
        workers, ", each loading the CRM and the champion" if workers > 1 else "",
        url_of(host, port),
    )  # fmt: skip
    code = serve(app, sock, read_timeout_s=params.serve.read_timeout_seconds, workers=workers)
    if code:
        raise StepError(f"{folder}: the server's workers could not start (see the messages above)")


@dataclass(frozen=True)
class WorkerApp:
    """The app of one worker process of ``serve.workers > 1``: picklable (what to load, not
    what was loaded), it loads the CRM and the champion (:func:`_load_app`) when its worker
    starts (ASGI lifespan startup), before the worker accepts connections. Each worker
    holds its own copy, read only: no state is shared between workers but the socket."""

    folder: Path
    params: Params
    as_of: pd.Timestamp | None
    token: str | None = field(repr=False)
    verbose: bool = False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        await self.__dict__["_app"](scope, receive, send)

    async def _lifespan(self, receive, send) -> None:
        from pipelines.env import configure
        from pipelines.steps import StepError

        await receive()  # lifespan.startup
        configure(Path.cwd(), verbose=self.verbose)  # logging, in this (spawned) process
        try:
            app = _load_app(self.folder, params=self.params, as_of=self.as_of, token=self.token)
            object.__setattr__(self, "_app", app)  # loaded here, never pickled
        except StepError as exc:  # uvicorn logs the message, and the worker exits
            return await send({"type": "lifespan.startup.failed", "message": str(exc)})
        log.info("worker process ready")
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})


def _load_app(folder: Path, *, params: Params, as_of: pd.Timestamp | None, token: str | None):
    """Load the champion and the CRM, rank, and build the app (the slow part of start)."""
    from pipelines.serve_http import swagger_ui_files
    from pipelines.steps import StepError, clock_of, load_and_validate, spec_of
    from pipelines.tracking import load_champion
    from serving.api import create_app

    funnel = params.funnel.to_funnel()
    champion = load_champion(
        close_model_name=params.evaluate.close_model_name,
        next_stage_model_name=params.evaluate.next_stage_model_name,
        spec=spec_of(params.features),
    )
    result = load_and_validate(folder, funnel=funnel, as_of=None,
                               data_end=params.features.data_end,
                               clock=clock_of(params.validate_.as_of))  # fmt: skip
    if result.data is None:
        raise StepError(f"{folder}: the CRM data is not usable\n{result.report.to_text()}")
    scorer = build_scorer(
        result.data, champion=champion, funnel=funnel, features=params.features,
        score=params.score, horizon_days=champion.horizon_days or params.train.horizon_days,
        as_of=as_of,
    )  # fmt: skip
    log.info("%d open deals at %s ranked", len(scorer.leads), scorer.as_of)
    app = create_app(
        scorer=scorer, token=token, max_body_bytes=params.serve.max_body_bytes,
        max_rows=params.serve.max_rows, funnel=funnel,
        read_timeout_s=params.serve.read_timeout_seconds,
        score_threads=params.serve.score_threads, batch_max=params.serve.batch_max,
        explain_step_days=params.score.explain_step_days,
        explain_points=params.score.explain_points, docs_assets=swagger_ui_files(),
    )  # fmt: skip
    _freeze_loaded()
    return app


def _freeze_loaded() -> None:
    """Keep what was loaded (the CRM, its index, the champion: millions of objects, read
    only from now on) out of the garbage collector's full passes: otherwise every full
    pass, triggered by the allocations of scoring, walks all of it (0.5-0.7 s each)."""
    gc.collect()
    gc.freeze()
