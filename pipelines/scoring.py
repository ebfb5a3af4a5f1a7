"""The ``score`` step: load the CRM -> score every open deal with the champion -> write the
prioritised-leads export (``prioritised_leads_<DATE>.csv``, ``.xlsx`` and ``.parquet``).

``as_of`` defaults to the data's end (``features.data_end``, else its latest event), not
the wall clock: an extract from last night scored "now" would age every deal by the hours
since, and a stale demo extract by months. With ``owners`` only their deals are written
(names get ``_owner-<id>`` suffixes, so the team-wide export is never overwritten);
``rank`` stays the team-wide rank and ``owner_rank`` is the rank within each owner.

The three files are one set, published together (:func:`pipelines.io.write_set`):
``<out>/prioritised_leads_<DATE>/`` is a link to the latest complete set, switched with one
rename, so a reader never sees a new CSV beside an old XLSX and a crash leaves the old set
whole. The CSV and XLSX bytes depend only on the data, the models and the params.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from models.drift import describe
from pipelines.catalog import LEADS_STEM, leads_files, leads_stem
from pipelines.io import writable_folder, write_set
from pipelines.params import FeaturesParams, ScoreParams
from pipelines.steps import StepError, clock_of, data_end_of, fingerprint, load_usable, spec_of
from serving.score import FeatureMismatchError, NoOpenDealsError, for_owners, score_open_deals

log = logging.getLogger(__name__)

#: Longest ``_owner-...`` part of a name in bytes (file names hold at most 255 bytes).
MAX_OWNER_PART = 120


@dataclass(frozen=True)
class ScoringRun:
    """What ``run_score`` scored and wrote; ``messages`` are for the user."""

    leads: pd.DataFrame
    as_of: pd.Timestamp
    open_deals: int
    seconds: float
    files: dict[str, Path]
    messages: list[str] = field(default_factory=list)


def run_score(
    *,
    folder: Path,
    out: Path,
    funnel: Funnel,
    features: FeaturesParams,
    score: ScoreParams,
    champion,
    horizon_days: int,
    as_of: pd.Timestamp | None,
    owners: tuple[str, ...] = (),
    clock: pd.Timestamp | None = None,
    data: CRMData | None = None,
) -> ScoringRun:
    """Score and write; raise ``StepError`` on unusable data or nothing to export.

    ``champion`` is a :class:`pipelines.tracking.Champion` (or anything with its fields);
    ``horizon_days`` what ``p_win`` means (the champion's training horizon). ``data`` is
    the already validated CRM of ``folder`` (the daily flow's; not read again); without it
    rows after the data's end (``clock``: validate.as_of, else now) are left out.
    """
    writable_folder(Path(out), what="--out")  # fail now, not after scoring
    if data is None:
        data = load_usable(folder, funnel=funnel, data_end=features.data_end,
                           clock=clock or clock_of(None))  # fmt: skip
    data_end = data_end_of(data, data_end=features.data_end)
    when = data_end if as_of is None else as_of
    messages = _as_of_messages(when, data_end)
    started = time.perf_counter()
    leads = _score(data, when=when, champion=champion, funnel=funnel, features=features,
                   score=score, horizon_days=horizon_days)  # fmt: skip
    seconds, open_deals = time.perf_counter() - started, len(leads)
    messages += _drift_messages(leads.attrs.get("drift", []))
    if owners:
        leads = _only(leads, owners, when)
    files = write_export(leads, Path(out), as_of=when, horizon_days=horizon_days,
                         priority=score.priority, owners=owners)  # fmt: skip
    log.info("scored %d open deals in %.1f s", open_deals, seconds)
    return ScoringRun(leads, when, open_deals, seconds, files, messages)


def _score(data: CRMData, *, when, champion, funnel, features, score, horizon_days: int):
    """Every deal open at ``when``, ranked (:func:`serving.score.score_open_deals`)."""
    try:
        return score_open_deals(
            data, close=champion.close, next_stage=champion.next_stage, funnel=funnel,
            as_of=when, **spec_of(features).build_kwargs(), horizon_days=horizon_days,
            priority=score.priority, top_reasons=score.top_reasons,
            model_version=champion.close_version,
            next_stage_model_version=champion.next_stage_version,
            data_fingerprint=fingerprint(data),
        )  # fmt: skip
    except NoOpenDealsError:
        raise StepError(
            f"the data has no deal open at {when}: nothing to score (choose another --as-of)"
        ) from None
    except FeatureMismatchError as error:
        raise StepError(str(error)) from None


def _drift_messages(drift: list[dict]) -> list[str]:
    """What the user must know when the champion's features drifted (stage table served)."""
    if not drift:
        return []
    text = (
        f"features of the champion drifted since training: {describe(drift)}. Every p_win "
        "is the stage table's today; `dealcast train` refits without the drifted features"
    )
    log.warning(text)
    return [text]


def _as_of_messages(when: pd.Timestamp, data_end: pd.Timestamp) -> list[str]:
    if when <= data_end:
        return []
    days = (when - data_end) / pd.Timedelta(days=1)
    return [
        f"--as-of is {days:.0f} days after the data's latest event {data_end}: "
        "days since the last touch and in stage keep growing as if nothing happened since"
    ]


def _only(leads: pd.DataFrame, owners: tuple[str, ...], when) -> pd.DataFrame:
    picked = for_owners(leads, owners)
    if picked.empty:
        raise StepError(
            f"no open deal at {when} belongs to owner(s) {', '.join(owners)}: nothing to export"
        )
    unknown = sorted(set(owners) - set(picked["owner_id"].dropna()))
    if unknown:
        log.warning("no open deals for owner(s) %s", ", ".join(unknown))
    return picked


def export_stem(as_of: pd.Timestamp, owners: tuple[str, ...] = ()) -> str:
    """``prioritised_leads_<YYYY-MM-DD>`` plus ``_owner-<id>`` per owner (sorted).

    Owner ids are written so that two different ids never give the same name and no id can
    reach outside the folder: letters (any alphabet), digits, ``-`` and ``.`` are kept,
    every other character becomes ``%XX`` (its UTF-8 bytes: ``a/b`` -> ``a%2Fb``, ``a_b``
    -> ``a%5Fb``). When the owner part would exceed :data:`MAX_OWNER_PART` bytes it becomes
    ``_owner-<start of the first id>~<hash of all ids>`` (``~`` never appears otherwise).
    """
    stem = leads_stem(as_of)
    names = sorted(set(owners))
    part = "".join("_owner-" + _safe_name(o) for o in names)
    if len(part.encode("utf-8")) > MAX_OWNER_PART:
        digest = hashlib.sha256("\0".join(names).encode("utf-8", "surrogatepass")).hexdigest()
        more = f"-and-{len(names) - 1}-more" if len(names) > 1 else ""
        part = f"_owner-{_safe_name(names[0], limit=40)}{more}~{digest[:16]}"
    return stem + part


def _safe_name(owner: str, *, limit: int | None = None) -> str:
    """``owner`` as an injective, file-name-safe text of at most ``limit`` bytes."""
    out, size = [], 0
    for ch in owner:
        keep = ch.isalnum() or ch in "-."
        piece = ch if keep else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        size += len(piece.encode("utf-8", "surrogatepass"))
        if limit is not None and size > limit:
            break
        out.append(piece)
    return "".join(out)


def write_export(
    leads: pd.DataFrame,
    out: Path,
    *,
    as_of: pd.Timestamp,
    horizon_days: int,
    priority: str,
    owners: tuple[str, ...] = (),
) -> dict[str, Path]:
    """Publish the CSV, XLSX and Parquet files as one set; return their paths.

    They land in ``<out>/<stem>/`` (see the module docstring); files of the layout before
    sets and temporaries its crashed runs left are removed.
    """
    from crm.write import write_frame
    from serving.export import about_table, csv_bytes, xlsx_bytes

    stem = export_stem(as_of, owners)
    first = leads.iloc[0] if len(leads) else None
    about = about_table(
        as_of=as_of, horizon_days=horizon_days, priority=priority, rows=len(leads),
        model_version=str(first["model_version"]) if first is not None else "",
        next_stage_model_version=None if first is None or pd.isna(
            first["next_stage_model_version"]) else str(first["next_stage_model_version"]),
        data_fingerprint=str(first["data_fingerprint"]) if first is not None else "",
        owners=owners,
    )  # fmt: skip
    names = leads_files(stem)
    writers = {
        names["csv"]: lambda path: path.write_bytes(csv_bytes(leads)),
        names["xlsx"]: lambda path: path.write_bytes(xlsx_bytes(leads, about=about, as_of=as_of)),
        names["parquet"]: lambda path: write_frame(leads, path),
    }
    written = write_set(out, stem, writers)
    _remove_old_layout(out, stem)
    return {fmt: written[name] for fmt, name in names.items()}


def _remove_old_layout(out: Path, stem: str) -> None:
    """Remove ``<stem>.csv|xlsx|parquet`` beside the set (the superseded one-file-at-a-time
    layout) and the hidden ``.prioritised_leads_*`` temporaries its crashed runs left."""
    for name in leads_files(stem).values():
        (out / name).unlink(missing_ok=True)
    for path in out.glob(f".{LEADS_STEM}_*"):
        if path.is_file() and not path.is_symlink():
            path.unlink(missing_ok=True)


def format_score(run: ScoringRun, *, top: int = 10) -> str:
    """What the CLI prints: how many deals, how long, and the top of the list."""
    leads = run.leads
    lines = [
        f"scored {run.open_deals:,} deals open at {run.as_of} in {run.seconds:.1f} s"
        + (f"; exporting {len(leads):,}" if len(leads) != run.open_deals else ""),
        *run.messages,
        f"{'rank':>5}  {'deal_id':<14}{'owner_id':<12}{'stage':<13}{'amount':>12}"
        f"{'p_win':>7}{'exp. value':>12}",
    ]
    for row in leads.head(top).itertuples(index=False):
        amount = "" if pd.isna(row.amount) else f"{row.amount:,.0f}"
        value = "" if pd.isna(row.expected_value) else f"{row.expected_value:,.0f}"
        lines.append(
            f"{row.rank:>5}  {row.deal_id:<14}{str(row.owner_id):<12}{str(row.stage):<13}"
            f"{amount:>12}{row.p_win:>7.3f}{value:>12}"
        )
    return "\n".join(lines)
