"""The feature catalogue, generated from the code so it cannot drift.

Each family module declares a ``CATALOG`` tuple of :class:`Feature` next to the function
that computes those columns; this module only collects them. Names may hold placeholders
that expand with the data and the params: ``{window}`` (each of ``windows_days``),
``{horizon}`` (each of ``horizons_days``), ``{stage}`` (each open funnel stage),
``{channel}`` (each touch channel), ``{attribute}`` (each custom CRM column).
A test checks that every built column matches exactly one entry and every entry is built.
"""

from __future__ import annotations

import textwrap

import pandas as pd

from features.entry import Feature, Kind, column_name  # noqa: F401 - re-exported


def feature_entries() -> tuple[Feature, ...]:
    """Every feature entry, family by family, in column order."""
    from features import accounts, calendar, deals, owners, stage_history, touchpoints

    modules = (deals, stage_history, touchpoints, accounts, owners, calendar)
    return tuple(entry for module in modules for entry in module.CATALOG)


def label_entries() -> tuple[Feature, ...]:
    """Every label column (kept in the labels frame, never among the features)."""
    from features import labels

    return labels.CATALOG


def feature_catalog(*, include_labels: bool) -> pd.DataFrame:
    """The catalogue as a table: name, family, kind, meaning."""
    entries = feature_entries() + (label_entries() if include_labels else ())
    return pd.DataFrame(
        [(e.name, e.family, e.kind, e.meaning) for e in entries],
        columns=["name", "family", "kind", "meaning"],
    )


def entry_for(column: str, entries: tuple[Feature, ...]) -> list[Feature]:
    """The catalogue entries a built column name matches (exactly one when in sync)."""
    exact = [e for e in entries if e.name == column]
    return exact or [e for e in entries if "{" in e.name and e.pattern().match(column)]


PLACEHOLDERS = (
    ("{window}", "each of params features.windows_days (e.g. 7, 30, 90)"),
    ("{horizon}", "each of params features.horizons_days (e.g. 30, 90, 180)"),
    ("{stage}", "each open stage of the funnel config"),
    ("{channel}", "a contract channel (email, call, ...), or other"),
    ("{attribute}", "each custom column of the CRM table"),
)
RULES = (
    "One row per deal open at as_of (created at or before it, not closed by then), keyed "
    "by deal_id and as_of.",
    "Every value uses only rows stamped at or before as_of; an event exactly at as_of "
    "counts. History-based rates use only deals closed at or before as_of.",
    "A {window}-day window is (as_of - window, as_of]. Empty = not known or not "
    "applicable (e.g. days since the last touch of a deal never touched).",
    "Labels are a separate table and never features; what the data cannot know yet is "
    "empty, never 'lost' or False.",
)


def format_catalog(catalog: pd.DataFrame) -> str:
    """The catalogue as plain text for a terminal: one block per family, meanings wrapped."""
    lines = ["dealcast feature catalogue", ""]
    lines += [
        textwrap.fill(rule, 96, initial_indent="- ", subsequent_indent="  ") for rule in RULES
    ]
    lines += ["", "Placeholders:"] + [f"  {p:<12} {text}" for p, text in PLACEHOLDERS] + [""]
    width = int(catalog["name"].str.len().max()) if len(catalog) else 0
    kind_width = int(catalog["kind"].str.len().max()) if len(catalog) else 0
    indent = " " * (width + kind_width + 6)
    for family, rows in catalog.groupby("family", sort=False):
        lines.append(f"[{family}]")
        for row in rows.itertuples():
            head = f"  {row.name:<{width}}  {row.kind:<{kind_width}}  "
            lines.append(
                textwrap.fill(row.meaning, 100, initial_indent=head, subsequent_indent=indent)
            )
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def catalog_markdown(catalog: pd.DataFrame) -> str:
    """The catalogue as the Markdown page ``docs/features.md`` (a test keeps them equal)."""
    lines = [
        "# Feature catalogue",
        "",
        "Generated from the code (`features/*.py`, each family's `CATALOG`); do not edit by "
        "hand. Regenerate with `dealcast features --list --markdown > docs/features.md`.",
        "",
        *[f"- {rule}" for rule in RULES],
        "",
        "Placeholders in names: " + "; ".join(f"`{p}` = {text}" for p, text in PLACEHOLDERS) + ".",
        "",
    ]
    for family, rows in catalog.groupby("family", sort=False):
        lines += [f"## {family}", "", "| name | kind | meaning |", "|---|---|---|"]
        lines += [f"| `{r.name}` | {r.kind} | {r.meaning} |" for r in rows.itertuples()]
        lines.append("")
    return "\n".join(lines)
