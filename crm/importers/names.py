"""Mapping a CRM's own names (stages, channels, roles, activities) onto dealcast's.

Names are compared case-insensitively with spaces collapsed (``parsing.norm``), so
``Closed Won``, ``closed won`` and ``Closed  Won`` are one name. Several source names may
map to one target: that is how a stage renamed mid-history ("Demo Scheduled" became
"Demo booked") keeps one meaning. A target of ``null`` means "ignore": such rows are left
out with that reason. A name no map covers is kept as written and counted in
``ImportSummary.unmapped``, so the summary can say which names to map and where.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from crm.importers.common import ImportInputError, ImportSummary
from crm.importers.parsing import norm
from crm.schemas import KNOWN_CHANNELS, KNOWN_ROLES, LOST, WON, Funnel


class NameMap:
    """Source name -> target name, with optional defaults and identity for known targets.

    Resolution order: the explicit map, then ``defaults`` (only entries whose target is
    allowed), then a source name that already *is* an allowed target. ``allowed=None``
    accepts any target (channels: unknown ones only draw a validation warning).
    """

    def __init__(
        self,
        kind: str,
        explicit: Mapping[str, str | None] | None = None,
        *,
        allowed: Sequence[str] | None = None,
        aliases: Mapping[str, str] | None = None,
        defaults: Mapping[str, str | None] | None = None,
        where: str = "map",
    ) -> None:
        self.kind = kind
        canon = {norm(a): a for a in allowed or ()}
        canon |= {norm(k): v for k, v in (aliases or {}).items()}
        self._allowed = canon if allowed is not None else None
        lookup: dict[str, str | None] = {}
        for source, target in (defaults or {}).items():
            resolved = self._resolve_target(target)
            if target is None or resolved is not None:
                lookup[norm(source)] = resolved
        for target in canon:
            lookup.setdefault(target, canon[target])
        for source, target in (explicit or {}).items():
            resolved = self._resolve_target(target)
            if target is not None and resolved is None:
                raise ImportInputError(
                    f"{where}: {source!r} maps to {target!r}, which is not one of "
                    f"{', '.join(allowed or ())} (or null to ignore it)"
                )
            lookup[norm(source)] = resolved
        self._lookup = lookup

    def _resolve_target(self, target: str | None) -> str | None:
        if target is None:
            return None
        if self._allowed is None:
            return str(target)
        return self._allowed.get(norm(target))

    def covers(self, name: str) -> bool:
        return norm(name) in self._lookup

    def target(self, name: str) -> str | None:
        return self._lookup.get(norm(name), name)

    def apply(self, values: pd.Series, summary: ImportSummary) -> tuple[pd.Series, np.ndarray]:
        """Mapped values and the mask of rows mapped to ``null`` (to be left out).

        Unmapped names are kept as written and counted in ``summary.unmapped[kind]``.
        """
        codes, uniques = pd.factorize(values)
        targets: list[object] = []
        ignored_codes: list[int] = []
        unmapped: dict[str, int] = {}
        counts = np.bincount(codes[codes >= 0], minlength=len(uniques))
        for i, name in enumerate(uniques):
            key = norm(name)
            if key in self._lookup:
                target = self._lookup[key]
                if target is None:
                    ignored_codes.append(i)
                targets.append(np.nan if target is None else target)
            else:
                targets.append(str(name))
                unmapped[str(name)] = int(counts[i])
        if unmapped:
            summary.count_unmapped(self.kind, unmapped)
        mapped = np.asarray([*targets, np.nan], dtype=object)[codes]
        ignored = np.isin(codes, ignored_codes)
        return pd.Series(mapped, index=values.index, dtype="str"), ignored


def stage_map(
    funnel: Funnel,
    explicit: Mapping[str, str | None] | None = None,
    *,
    defaults: Mapping[str, str | None] | None = None,
    where: str = "stages",
) -> NameMap:
    """Stage names onto the funnel's open stages or ``won``/``lost``.

    The funnel's own ``won_label``/``lost_label`` are accepted as targets and as source
    names for the outcomes.
    """
    aliases = {funnel.won_label: WON, funnel.lost_label: LOST}
    return NameMap(
        "stage",
        explicit,
        allowed=funnel.states,
        aliases=aliases,
        defaults=defaults,
        where=where,
    )


def outcome_from_stage(
    stages: NameMap, values: pd.Series, summary: ImportSummary, *, where: str
) -> pd.Series:
    """won/lost where a deal's *current* stage maps to an outcome, else NaN (open).

    Unmapped names are named in a note of their own (their deals count as open), not in
    ``summary.unmapped``, which counts the stage-history rows the validation will see.
    """
    before = dict(summary.unmapped.get("stage", {}))
    mapped, _ = stages.apply(values, summary)
    after = summary.unmapped.get("stage", {})
    new = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    if "stage" in summary.unmapped:
        summary.unmapped["stage"] = before
    if new:
        listed = ", ".join(f"{k!r} ({n})" for k, n in sorted(new.items(), key=lambda kv: -kv[1]))
        summary.note(
            f"{where}: stage names not mapped, so their deals count as open unless the stage "
            f"history closes them: {listed}; map closing stages to won/lost under stages:"
        )
    return mapped.where(mapped.isin((WON, LOST))).astype("str")


def channel_map(
    explicit: Mapping[str, str | None] | None = None,
    *,
    defaults: Mapping[str, str | None] | None = None,
) -> NameMap:
    """Channel names; the contract's known channels map to themselves."""
    known = {c: c for c in KNOWN_CHANNELS}
    return NameMap("channel", explicit, defaults=known | dict(defaults or {}))


def role_map(
    explicit: Mapping[str, str | None] | None = None,
    *,
    defaults: Mapping[str, str | None] | None = None,
) -> NameMap:
    """Contact roles; the contract's example roles map to themselves."""
    known = {r: r for r in KNOWN_ROLES}
    return NameMap("role", explicit, defaults=known | dict(defaults or {}))


def unmapped_notes(summary: ImportSummary, funnel: Funnel, *, where: str) -> None:
    """Add a note per kind of unmapped name, with a ready-to-paste map snippet."""
    for kind, names in summary.unmapped.items():
        if not names:
            continue
        ordered = sorted(names.items(), key=lambda kv: -kv[1])
        listed = ", ".join(f"{n!r} ({c} row{'s' if c != 1 else ''})" for n, c in ordered[:8])
        more = f" and {len(ordered) - 8} more" if len(ordered) > 8 else ""
        section = {
            "stage": "stages",
            "channel": "channels",
            "role": "roles",
            "activity": "events: activities",
        }.get(kind, kind)
        target = {
            "stage": f"one of {', '.join(funnel.states)}, or null to ignore",
            "channel": "e.g. email, call, meeting, demo, or null to ignore",
            "role": "e.g. decision_maker, champion, influencer, or null",
            "activity": "a stage, won, lost, {touchpoint: CHANNEL}, or null to ignore",
        }.get(kind, "a target name")
        example = ordered[0][0]
        fate = {
            "stage": "They were kept as written and the validation will flag them",
            "activity": "Their rows were left out",
        }.get(kind, "They were kept as written")
        summary.note(
            f"{kind} names not mapped: {listed}{more}. {fate}. Map them {where} under "
            f"`{section}:` ({target}), e.g.\n" + _snippet(section, example)
        )


def _snippet(section: str, example: str) -> str:
    lines = []
    for depth, key in enumerate(section.split(": ")):
        lines.append("  " * (depth + 4) + f"{key}:")
    lines.append("  " * (len(section.split(": ")) + 4) + f"{example!r}: ...")
    return "\n".join(lines)
