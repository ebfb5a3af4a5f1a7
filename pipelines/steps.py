"""The pipeline's steps as plain functions: params in, library calls, disk out.

The CLI commands and the Prefect flows both call these, so a step behaves the same
whichever way it is run, and tests can call them without Prefect.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import pandas as pd

from crm.data import CRMData
from crm.health import HealthSettings
from crm.load import LoadResult, load_crm
from crm.schemas import Funnel
from crm.write import write_crm, write_frame
from features.data_end import DataEndError, exclude_after, plausible_end
from features.snapshots import latest_timestamp
from features.spec import FeatureSpec
from pipelines.progress import step

log = logging.getLogger(__name__)
Echo = Callable[[str], None]


class StepError(Exception):
    """A step cannot go on because of its input; the message says what to fix."""


def run_generate(
    *,
    funnel: Funnel,
    out: Path,
    truth: Path | None,
    n_deals: int,
    seed: int,
    start: pd.Timestamp,
    as_of: pd.Timestamp,
    fmt: Literal["csv", "parquet"],
    messy: bool,
    scenarios: tuple[str, ...],
    echo: Echo | None = None,
) -> dict[str, tuple[Path, int]]:
    """Generate a synthetic CRM into ``out`` (and its hidden truth into ``truth``).

    ``scenarios`` are failure scenarios of real exports (``crm.synthetic.scenarios``; an
    unknown name is a ``StepError``); ``echo`` gets one line per scenario saying what it
    did. Returns table name -> (file, rows). The truth file must live outside the data
    folder, so a model pointed at the folder can never read it.
    """
    from crm.synthetic import UnknownScenarioError, generate_crm

    if truth is not None and _is_inside(truth, out):
        raise StepError(f"--truth {truth} is inside the data folder {out}; put it elsewhere")
    if start >= as_of:
        raise StepError(f"start {start.date()} must be before as_of {as_of.date()}")
    log.debug("generating %s deals (seed %s, %s to %s)", n_deals, seed, start.date(), as_of.date())
    try:
        with step(f"generated {n_deals:,} synthetic deals"):
            crm = generate_crm(
                n_deals=n_deals, seed=seed, start=start, as_of=as_of, funnel=funnel,
                messy=messy, scenarios=scenarios,
            )  # fmt: skip
    except UnknownScenarioError as exc:
        raise StepError(str(exc)) from None
    for name, note in crm.scenarios.items():
        (echo or log.info)(f"scenario {name}: {note}")
    return _write_generated(crm, out=out, truth=truth, fmt=fmt)


def _write_generated(crm, *, out: Path, truth: Path | None, fmt: str) -> dict:
    """The CRM's tables into ``out``, its truth into ``truth``: name -> (file, rows)."""

    paths = write_crm(crm.data, out, fmt=fmt)
    written = {name: (path, len(crm.data.table(name))) for name, path in paths.items()}
    if truth is not None:
        write_frame(crm.truth, truth)
        written["truth"] = (truth, len(crm.truth))
    return written


def as_utc(value) -> pd.Timestamp:
    """A date or timestamp (string, date, Timestamp) as a UTC ``pd.Timestamp``; naive = UTC."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def clock_of(validate_as_of: date | None) -> pd.Timestamp:
    """The clock every command judges "future" by: the end of the day ``validate.as_of``
    when set (tests, replaying an old extract), else now (UTC)."""
    if validate_as_of is None:
        return pd.Timestamp(datetime.now(UTC))
    return as_utc(validate_as_of) + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)


def data_end_of(
    data, *, data_end: object | None, clock: pd.Timestamp | None = None
) -> pd.Timestamp:
    """When the data was extracted: ``features.data_end`` if set, else its latest event.

    With ``clock``, events after it are implausible and do not count, and a
    ``features.data_end`` after it is a ``StepError``. Data from :func:`load_and_validate`
    has nothing after the clock any more, so ``clock`` changes nothing for it.
    """

    given = as_utc(data_end) if data_end else None
    if clock is None:
        return given if given is not None else latest_timestamp(data)
    try:
        return plausible_end(data, given=given, clock=clock)
    except DataEndError as exc:
        raise StepError(str(exc)) from None


def spec_of(features) -> FeatureSpec:
    """The feature spec of the ``features:`` section of params (``FeaturesParams``)."""
    return FeatureSpec(**{f.name: getattr(features, f.name) for f in fields(FeatureSpec)})


def load_and_validate(
    folder: Path,
    *,
    funnel: Funnel,
    as_of: pd.Timestamp | None,
    data_end: object | None = None,
    clock: pd.Timestamp | None = None,
    health: HealthSettings | None = None,
) -> LoadResult:
    """Read and check a CRM folder; never raises for bad data (see ``LoadResult.report``).

    ``as_of`` is the instant after which validation warns about future timestamps. When
    the data is usable, what is stamped after its end (``data_end``, i.e.
    ``features.data_end``, else the latest event not after ``clock``; ``clock`` defaults to
    ``as_of``, else now) is taken out, with one warning per table and column: every command
    loads through here, so none can see a 2099 touchpoint. When no end can be set
    (``data_end`` after the clock, no event before it) that is an error in the report and
    ``data`` is None. ``health`` adds the data-health warnings
    (``crm.health``; ``dealcast validate`` does).
    """
    result = load_crm(Path(folder), funnel=funnel, as_of=as_of, health=health)
    if result.data is None:
        return result
    if clock is None:
        clock = as_of if as_of is not None else clock_of(None)
    try:
        data, _ = usable_until(result.data, data_end=data_end, clock=clock, folder=folder)
    except StepError as exc:  # no end: a finding like any other, so validate can show it
        hint = "set features.data_end, or validate.as_of for the clock"
        result.report.error("data_end", "deals", str(exc), hint=hint)
        return replace(result, data=None)
    return replace(result, data=data) if data is not result.data else result


def validate_folder(
    folder: Path, *, funnel: Funnel, as_of: pd.Timestamp, horizon_days: int, test_days: int
) -> LoadResult:
    """What ``dealcast validate`` checks (the demo too, so both write the same report): the
    contract and, for usable data, the data-health warnings judged with ``horizon_days``
    and ``test_days`` (``crm.health``)."""
    health = HealthSettings(horizon_days=horizon_days, test_days=test_days)
    return load_and_validate(folder, funnel=funnel, as_of=as_of, health=health)


def validation_as_of(validate_as_of: date | None) -> pd.Timestamp:
    """The instant ``validate`` judges "future" timestamps by: ``validate.as_of``, else now."""
    if validate_as_of is not None:
        return as_utc(validate_as_of)
    return pd.Timestamp(datetime.now(UTC))


def load_usable(
    folder: Path, *, funnel: Funnel, data_end: object | None, clock: pd.Timestamp
) -> CRMData:
    """The validated CRM of ``folder`` as it stood at its end (see :func:`load_and_validate`);
    ``StepError`` with the validation report when it is not usable."""
    result = load_and_validate(folder, funnel=funnel, as_of=None, data_end=data_end, clock=clock)
    if result.data is None:
        raise StepError(f"{folder}: the CRM data is not usable\n{result.report.to_text()}")
    return result.data


def load_for(p, folder: Path) -> CRMData:
    """:func:`load_usable` with the funnel, data end and clock of params ``p``."""
    with step(f"loaded and validated {folder}") as done:
        data = load_usable(folder, funnel=p.funnel.to_funnel(), data_end=p.features.data_end,
                           clock=clock_of(p.validate_.as_of))  # fmt: skip
        done.detail = f"{len(data.deals):,} deals"
    return data


def usable_until(data, *, data_end: object | None, clock: pd.Timestamp, folder: object = ""):
    """``data`` without what is stamped after its end, and that end (see
    :func:`load_and_validate`); each exclusion is logged as a warning naming ``folder``."""

    end = data_end_of(data, data_end=data_end, clock=clock)
    trimmed, excluded = exclude_after(data, end)
    for item in excluded:
        log.warning("%s: %s", folder, item.message())
    return (trimmed if excluded else data), end


def fingerprint(data: CRMData) -> str:
    """SHA-256 of every table's content (row order included), 16 hex digits."""
    digest = hashlib.sha256()
    for name in ("deals", "accounts", "stage_history", "touchpoints"):
        frame = data.table(name)
        digest.update(name.encode())
        if frame is not None:
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def indent(text: str) -> str:
    """Text shifted under a progress line."""
    return "\n".join(f"      {line}" if line else "" for line in text.splitlines())


def _is_inside(path: Path, folder: Path) -> bool:
    return Path(folder).resolve() in Path(path).resolve().parents
