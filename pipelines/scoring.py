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

Each team-wide run is also archived (:mod:`pipelines.archive`; ``--owner`` runs are not).
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from crm.data import CRMData
from crm.schemas import LOST, WON
from pipelines.archive import NOT_ARCHIVED, archive_leads, not_archived
from pipelines.catalog import LEADS_STEM, Catalog, leads_files, leads_stem, previous_leads
from pipelines.io import writable_folder, write_set
from pipelines.params import Params
from pipelines.steps import StepError, data_end_of, fingerprint, load_for, spec_of
from serving.changes import change_counts, export_changes, of_this_crm
from serving.score import FeatureMismatchError, NoOpenDealsError, score_open_deals
from serving.score_notes import (
    NoOwnerDealsError,
    as_of_messages,
    drift_messages,
    leads_text,
    owners_only,
)

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
    p: Params, champion, *, folder: Path, out: Path, as_of: pd.Timestamp | None,
    owners: tuple[str, ...] = (), data: CRMData | None = None,
) -> ScoringRun:  # fmt: skip
    """Score with ``champion`` (a :class:`pipelines.tracking_champion.Champion`) under params
    ``p`` and write; raise ``StepError`` on unusable data or nothing to export. ``data`` is
    the already validated CRM of ``folder`` (the daily flow's), else ``folder`` is loaded."""
    funnel, features, score = p.funnel.to_funnel(), p.features, p.score
    horizon_days = champion.horizon_days or p.train.horizon_days  # what p_win means
    writable_folder(Path(out), what="--out")  # fail now, not after scoring
    data = load_for(p, folder) if data is None else data
    data_end = data_end_of(data, data_end=features.data_end)
    when = data_end if as_of is None else as_of
    messages = as_of_messages(when, data_end)
    started = time.perf_counter()
    leads = _score(data, when=when, champion=champion, funnel=funnel, features=features,
                   score=score, horizon_days=horizon_days)  # fmt: skip
    seconds, open_deals = time.perf_counter() - started, len(leads)
    for text in drift_messages(leads.attrs.get("drift", [])):
        log.warning(text)
        messages.append(text)
    leads = _only(leads, owners, when)
    changes = _changes(p, data, leads, Path(out), when=when, owners=owners, messages=messages)
    files = write_export(leads, Path(out), as_of=when, horizon_days=horizon_days,
                         priority=score.priority, owners=owners, bom=score.csv_bom,
                         currency=p.funnel.currency, changes=changes)  # fmt: skip
    _archive(p, leads, as_of=when, close=champion.close, owners=owners, messages=messages)
    log.debug("scored %d open deals in %.1f s", open_deals, seconds)
    return ScoringRun(leads, when, open_deals, seconds, files, messages)


def _archive(p: Params, leads: pd.DataFrame, *, as_of, close, owners, messages: list[str]):
    """Keep what this run said in the archive (:mod:`pipelines.archive`): team-wide runs
    only, so an owner's run never replaces the team's day. An archive that cannot be
    written is a message and a warning, not a failed run (the export is written)."""
    if owners:
        messages.append(NOT_ARCHIVED)
        return
    try:
        archive_leads(Catalog(p.paths).archive, leads, as_of=as_of, close=close)
    except OSError as error:  # the export is written; say so rather than fail the run
        messages.append(not_archived(error))
        log.warning(messages[-1])


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


def _changes(
    p: Params, data: CRMData, leads: pd.DataFrame, out: Path, *, when: pd.Timestamp,
    owners: tuple[str, ...], messages: list[str],
) -> pd.DataFrame | None:  # fmt: skip
    """What changed since the latest team-wide export dated before ``when`` (limited to
    ``owners``' deals), or None without one; a one-line summary goes to ``messages``. An
    earlier export that shares under half its deals with this CRM is another CRM's: no
    changes, and a note says so."""
    path = previous_leads(out, when)
    if path is None:
        return None
    try:
        before = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        messages.append(f"no changes listed: cannot read the previous export {path}: {error}")
        return None
    if owners:
        before = before[before["owner_id"].isin(owners)]
    if not of_this_crm(before, data.deals):
        messages.append(f"no changes listed: the previous export {path.name} is of another CRM")
        return None
    changes = export_changes(leads, before, deals=data.deals, won_label=WON, lost_label=LOST,
                             threshold=p.score.change_threshold)  # fmt: skip
    counts = ", ".join(f"{n} {k}" for k, n in change_counts(changes).items() if n)
    day = pd.Timestamp(before["as_of"].iloc[0]).date() if len(before) else path.name
    messages.append(f"since the export of {day}: {counts or 'no change'}")
    return changes


def _only(leads: pd.DataFrame, owners: tuple[str, ...], when) -> pd.DataFrame:
    """The leads of ``owners`` (all without owners); ``StepError`` if they have none."""
    if not owners:
        return leads
    try:
        picked, unknown = owners_only(leads, owners, when=when)
    except NoOwnerDealsError as error:
        raise StepError(str(error)) from None
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
    bom: bool = False,
    currency: str | None = None,
    changes: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Publish the CSV, XLSX and Parquet files as one set; return their paths. ``bom``,
    ``currency`` and ``changes`` (the XLSX's ``changes`` sheet) as in
    :mod:`serving.export`; off when not given.

    They land in ``<out>/<stem>/`` (see the module docstring); files of the layout before
    sets and temporaries its crashed runs left are removed.
    """
    from crm.write import write_frame
    from serving.export import csv_bytes, xlsx_bytes

    stem = export_stem(as_of, owners)
    about = _about(leads, as_of=as_of, horizon_days=horizon_days, priority=priority,
                   owners=owners)  # fmt: skip
    names = leads_files(stem)
    writers = {
        names["csv"]: lambda path: path.write_bytes(csv_bytes(leads, bom=bom)),
        names["xlsx"]: lambda path: path.write_bytes(
            xlsx_bytes(leads, about=about, as_of=as_of, changes=changes, currency=currency)
        ),
        names["parquet"]: lambda path: write_frame(leads, path),
    }
    written = write_set(out, stem, writers)
    _remove_old_layout(out, stem)
    return {fmt: written[name] for fmt, name in names.items()}


def _about(leads: pd.DataFrame, *, as_of, horizon_days: int, priority: str, owners) -> dict:
    """The XLSX ``about`` sheet of these leads (:func:`serving.export.about_table`)."""
    from serving.export import about_table

    first = leads.iloc[0] if len(leads) else None
    return about_table(
        as_of=as_of, horizon_days=horizon_days, priority=priority, rows=len(leads),
        model_version=str(first["model_version"]) if first is not None else "",
        next_stage_model_version=None if first is None or pd.isna(
            first["next_stage_model_version"]) else str(first["next_stage_model_version"]),
        data_fingerprint=str(first["data_fingerprint"]) if first is not None else "",
        owners=owners,
    )  # fmt: skip


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
    return leads_text(run.leads, as_of=run.as_of, open_deals=run.open_deals,
                      seconds=run.seconds, messages=run.messages, top=top)  # fmt: skip
