"""Single-table rules: columns, dtypes, missing values, pandera column checks, row rules.

The per-column value checks (unique ids, minimums, allowed values, funnel stages) run as a
pandera schema built from ``crm.schemas``; pandera's failure cases are positions, mapped
back to user row numbers through :class:`~crm.provenance.Provenance`. Rules that combine
columns are plain vectorised pandas.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import pandas as pd
import pandera.pandas as pa

from crm.provenance import Scope, examples, plural, value_counts_text
from crm.schemas import (
    CONTRACT,
    KNOWN_CHANNELS,
    OUTCOMES,
    Funnel,
    TableSpec,
    attribute_columns,
    dtype_of,
)

#: pandera's name for the uniqueness check of a column.
_UNIQUE = "field_uniqueness"


def check_table(
    name: str, frame: pd.DataFrame, scope: Scope, funnel: Funnel, as_of: pd.Timestamp | None
) -> pd.DataFrame:
    """Run every single-table rule on ``frame`` (positional index).

    Returns the frame restricted to the columns later rules may trust: contract columns of
    the wrong dtype are left out (they are reported as ``wrong_dtype``).
    """
    spec = CONTRACT[name]
    _check_columns(frame, spec, scope)
    frame = _check_dtypes(frame, spec, scope)
    _check_missing_values(frame, spec, scope)
    run_pandera(frame, spec, funnel, scope)
    for rule in TABLE_RULES.get(name, ()):
        rule(frame, scope)
    if name == "touchpoints" and "channel" in frame:
        _check_channels(frame["channel"], scope)
    _check_future(frame, spec, scope, as_of)
    return frame


# --------------------------------------------------------------------------- columns


def _squash(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).casefold())


def _check_columns(frame: pd.DataFrame, spec: TableSpec, scope: Scope) -> None:
    """``missing_column`` for required columns, ``misnamed_column`` for near-misses."""
    look_alikes = {_squash(c): c for c in attribute_columns(frame, spec.name)}
    for column in spec.columns:
        if column.name in frame:
            continue
        alike = look_alikes.get(_squash(column.name))
        did_you_mean = f"column {alike!r} — did you mean {column.name!r}? " if alike else ""
        if column.required:
            scope.error(
                "missing_column",
                f"required column {column.name!r} is missing",
                column=column.name,
                hint=did_you_mean + f"{spec.name} needs: {', '.join(spec.required_columns)}",
            )
        elif alike:
            scope.warning(
                "misnamed_column",
                f"column {alike!r} looks like contract column {column.name!r} but is spelled "
                "differently, so it is read as a custom attribute",
                column=alike,
                hint=f"rename it to {column.name!r} if it holds {column.name}",
            )


def _check_dtypes(frame: pd.DataFrame, spec: TableSpec, scope: Scope) -> pd.DataFrame:
    """``wrong_dtype`` for frames built in memory; those columns are left out of later rules."""
    wrong = []
    for column in spec.columns:
        if column.name in frame and str(frame[column.name].dtype) != dtype_of(column.kind):
            wrong.append(column.name)
            scope.error(
                "wrong_dtype",
                f"has dtype {frame[column.name].dtype}, the contract needs {dtype_of(column.kind)}",
                column=column.name,
                hint="type the frame with crm.coerce (or load it with load_crm)",
            )
    for column in attribute_columns(frame, spec.name):
        dtype = frame[column].dtype
        if not (isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_float_dtype(dtype)):
            scope.error(
                "wrong_dtype",
                f"attribute has dtype {dtype}; attributes are float64 or category",
                column=column,
                hint="type the frame with crm.coerce.coerce_attribute",
            )
    return frame.drop(columns=wrong)


def _check_missing_values(frame: pd.DataFrame, spec: TableSpec, scope: Scope) -> None:
    for name in spec.required_columns:
        if name not in frame:
            continue
        missing = frame[name].isna().to_numpy() & ~scope.prov.invalid_mask(name, len(frame))
        if missing.any():
            scope.error(
                "missing_value",
                f"{plural(int(missing.sum()), 'row')} without a {name}, which is required",
                mask=missing,
                column=name,
                hint=f"fill in {name} on those rows or delete them",
            )


# --------------------------------------------------------------------------- pandera


def pandera_schema(
    spec: TableSpec, funnel: Funnel, columns: list[str]
) -> tuple[pa.DataFrameSchema, dict[tuple[str, int], str]]:
    """The single-column value checks of ``spec`` for the given present columns.

    Also returns the rule id each check reports, keyed by (column, check number);
    uniqueness always reports ``duplicate_id``.
    """
    schema: dict[str, pa.Column] = {}
    rules: dict[tuple[str, int], str] = {}
    for column in spec.columns:
        if column.name not in columns:
            continue
        checks: list[tuple[pa.Check, str]] = []
        if column.minimum is not None:
            checks.append((pa.Check.ge(column.minimum), "negative_value"))
        if column.maximum is not None:
            checks.append((pa.Check.le(column.maximum), "too_large"))
        if column.allowed is not None:
            rule = "unknown_outcome" if column.name == "outcome" else "unknown_value"
            checks.append((pa.Check.isin(list(column.allowed)), rule))
        if spec.name == "stage_history" and column.name == "stage":
            checks.append((pa.Check.isin(list(funnel.states)), "unknown_stage"))
        rules |= {(column.name, i): rule for i, (_, rule) in enumerate(checks)}
        schema[column.name] = pa.Column(
            checks=[c for c, _ in checks], unique=column.unique, nullable=True, required=False
        )
    return pa.DataFrameSchema(schema, strict=False), rules


def run_pandera(frame: pd.DataFrame, spec: TableSpec, funnel: Funnel, scope: Scope) -> None:
    """Validate with :func:`pandera_schema`; each failed check becomes one finding."""
    schema, rules = pandera_schema(spec, funnel, list(frame.columns))
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        for (column, check, number), group in cases.groupby(
            ["column", "check", "check_number"], sort=False, dropna=False
        ):
            positions = np.sort(group["index"].dropna().astype("int64").unique())
            if check == _UNIQUE:
                rule = "duplicate_id"
            else:
                rule = rules.get((str(column), int(number)), "invalid_value")
            PANDERA_MESSAGES.get(rule, _generic_failure)(
                frame, str(column), positions, rule, scope, funnel
            )


def _duplicate_ids(frame, column, positions, rule, scope, funnel) -> None:
    ids = frame[column].iloc[positions]
    order = np.lexsort((positions, ids.astype("str").to_numpy()))
    positions, ids = positions[order], ids.iloc[order]
    groups = pd.Series(positions).groupby(ids.to_numpy(), sort=False)
    unit = "line" if (scope.prov.file or "").endswith(".csv") else "row"
    shown = [
        f"{key!r} on {unit}s {', '.join(map(str, scope.prov.user_rows(group.to_numpy())))}"
        for key, group in list(groups)[:3]
    ]
    more = f" and {groups.ngroups - 3} more" if groups.ngroups > 3 else ""
    scope.error(
        rule,
        f"{plural(groups.ngroups, 'id', 'appear')} more than once: {'; '.join(shown)}{more}",
        positions=positions,
        column=column,
        hint=f"each {column} must be unique: merge or renumber the repeated rows",
    )


def _negative(frame, column, positions, rule, scope, funnel) -> None:
    scope.error(
        rule,
        f"{plural(len(positions), 'negative value')}, e.g. "
        f"{examples(frame[column].iloc[positions])}; {column} must be >= 0",
        positions=positions,
        column=column,
        hint=f"fix the sign or leave {column} empty where unknown",
    )


def _too_large(frame, column, positions, rule, scope, funnel) -> None:
    bound = CONTRACT[scope.table].column(column).maximum
    scope.error(
        rule,
        f"{plural(len(positions), 'value', 'are')} above the contract's maximum "
        f"{bound:,.0f}, e.g. {examples(frame[column].iloc[positions])}",
        positions=positions,
        column=column,
        hint=f"check the unit or the export of {column} on those rows (a value this large "
        "is an error, and would make sums and forecasts overflow)",
    )


def _unknown_outcome(frame, column, positions, rule, scope, funnel) -> None:
    scope.error(
        rule,
        f"{plural(len(positions), 'outcome', 'are')} neither won nor lost: "
        f"{value_counts_text(frame[column].iloc[positions])}; the funnel reads won_label "
        f"{funnel.won_label!r} as won and lost_label {funnel.lost_label!r} as lost",
        positions=positions,
        column=column,
        hint="set funnel.won_label / funnel.lost_label in params.yaml to your CRM's words, "
        "and leave outcome empty while a deal is open",
    )


def _unknown_stage(frame, column, positions, rule, scope, funnel) -> None:
    scope.error(
        rule,
        f"{plural(len(positions), 'row', 'name')} stages the funnel does not have: "
        f"{value_counts_text(frame[column].iloc[positions])}; configured stages: "
        f"{', '.join(funnel.states)} (won/lost also as {funnel.won_label!r}/"
        f"{funnel.lost_label!r})",
        positions=positions,
        column=column,
        hint="add them to params.yaml funnel.stages (in funnel order) or map them to a "
        "configured stage before loading",
    )


def _generic_failure(frame, column, positions, rule, scope, funnel) -> None:
    allowed = CONTRACT[scope.table].column(column).allowed or ()
    scope.error(
        rule,
        f"{plural(len(positions), 'value', 'are')} not allowed: "
        f"{value_counts_text(frame[column].iloc[positions])}"
        + (f"; allowed: {', '.join(allowed)}" if allowed else ""),
        positions=positions,
        column=column,
        hint="use one of the allowed values or leave the cell empty",
    )


PANDERA_MESSAGES: dict[str, Callable[..., None]] = {
    "duplicate_id": _duplicate_ids,
    "negative_value": _negative,
    "too_large": _too_large,
    "unknown_outcome": _unknown_outcome,
    "unknown_stage": _unknown_stage,
}


# --------------------------------------------------------------------------- row rules


def _column(frame: pd.DataFrame, name: str, dtype: str) -> pd.Series:
    """``frame[name]``, or an all-missing stand-in when the column is absent."""
    if name in frame:
        return frame[name]
    return pd.Series(np.nan, index=frame.index, dtype=dtype)


def _deal_rules(frame: pd.DataFrame, scope: Scope) -> None:
    closed = _column(frame, "closed_at", dtype_of("timestamp"))
    outcome = _column(frame, "outcome", "str")
    if "closed_at" not in frame and "outcome" not in frame:
        return
    known = outcome.isin(OUTCOMES)  # unknown outcomes are reported once, as unknown_outcome
    closed_invalid = scope.prov.invalid_mask("closed_at", len(frame))
    no_outcome = (closed.notna() & outcome.isna()).to_numpy()
    no_close = (known & closed.isna()).to_numpy() & ~closed_invalid
    if no_outcome.any():
        scope.error(
            "closed_without_outcome",
            f"{plural(int(no_outcome.sum()), 'deal', 'have')} a closed_at but no outcome",
            mask=no_outcome,
            column="outcome",
            hint="set outcome to won or lost (your CRM's labels) on closed deals",
        )
    if no_close.any():
        scope.error(
            "outcome_without_closed",
            f"{plural(int(no_close.sum()), 'deal', 'have')} an outcome but no closed_at",
            mask=no_close,
            column="closed_at",
            hint="fill in closed_at (when the deal was won or lost)",
        )
    if "created_at" in frame:
        early = (closed < frame["created_at"]).to_numpy()
        if early.any():
            scope.error(
                "closed_before_created",
                f"{plural(int(early.sum()), 'deal', 'are')} closed before created_at",
                mask=early,
                column="closed_at",
                hint="check closed_at and created_at on those rows",
            )


def _touchpoint_rules(frame: pd.DataFrame, scope: Scope) -> None:
    deal = _column(frame, "deal_id", "str")
    account = _column(frame, "account_id", "str")
    orphan = (deal.isna() & account.isna()).to_numpy()
    if orphan.any():
        scope.error(
            "touchpoint_without_target",
            f"{plural(int(orphan.sum()), 'touchpoint', 'name')} neither a deal_id nor an "
            "account_id",
            mask=orphan,
            column="deal_id",
            hint="give every touchpoint a deal_id, an account_id or both",
        )
    no_id = _column(frame, "touchpoint_id", "str").isna().to_numpy()
    _duplicate_rows(frame, scope, no_id)


def _stage_rules(frame: pd.DataFrame, scope: Scope) -> None:
    _duplicate_rows(frame, scope, np.ones(len(frame), dtype=bool))
    if not {"deal_id", "entered_at", "stage"} <= set(frame.columns):
        return
    keys = frame[["deal_id", "entered_at"]]
    tied = keys.duplicated(keep=False).to_numpy() & keys.notna().all(axis=1).to_numpy()
    if tied.any():
        distinct = frame[tied].groupby(["deal_id", "entered_at"], observed=True)["stage"]
        clash = np.zeros(len(frame), dtype=bool)
        clash[np.flatnonzero(tied)] = (distinct.transform("nunique") > 1).to_numpy()
        if clash.any():
            scope.warning(
                "simultaneous_stages",
                f"{plural(int(clash.sum()), 'row', 'enter')} "
                "different stages of the same deal at the same instant, so the "
                "deal's stage at that time is ambiguous",
                mask=clash,
                column="entered_at",
                hint="give the rows distinct entered_at times in the order they happened",
            )


def _duplicate_rows(frame: pd.DataFrame, scope: Scope, eligible: np.ndarray) -> None:
    if not eligible.any():
        return
    dup = eligible.copy()
    dup[eligible] = frame[eligible].duplicated(keep=False).to_numpy()
    if dup.any():
        scope.warning(
            "duplicate_row",
            f"{plural(int(dup.sum()), 'row', 'are')} exact copies of "
            "another row and would be counted twice",
            mask=dup,
            hint="remove the repeated rows if they are export duplicates",
        )


TABLE_RULES: dict[str, tuple[Callable[[pd.DataFrame, Scope], None], ...]] = {
    "deals": (_deal_rules,),
    "touchpoints": (_touchpoint_rules,),
    "stage_history": (_stage_rules,),
}


def _check_channels(channel: pd.Series, scope: Scope) -> None:
    unknown = (channel.notna() & ~channel.isin(KNOWN_CHANNELS)).to_numpy()
    if not unknown.any():
        return
    values = channel[unknown].astype("str")
    close = sorted({v for v in values.unique() if v.strip().casefold() in KNOWN_CHANNELS})
    case = f"; case matters ({', '.join(map(repr, close[:3]))})" if close else ""
    scope.warning(
        "unknown_channel",
        f"{plural(int(unknown.sum()), 'touchpoint', 'use')} channels "
        f"the contract does not name: {value_counts_text(values)}{case}",
        mask=unknown,
        column="channel",
        hint=f"known channels: {', '.join(KNOWN_CHANNELS)}; others are kept as their own category",
    )


def _check_future(
    frame: pd.DataFrame, spec: TableSpec, scope: Scope, as_of: pd.Timestamp | None
) -> None:
    if as_of is None:
        return
    for column in spec.columns:
        if column.kind != "timestamp" or column.name not in frame:
            continue
        future = (frame[column.name] > as_of).to_numpy()
        if future.any():
            scope.warning(
                "future_timestamp",
                f"{plural(int(future.sum()), 'value', 'lie')} after "
                f"{as_of.isoformat()}, e.g. {examples(frame[column.name][future])}",
                mask=future,
                column=column.name,
                hint="check the clock/time zone of the export, or the as_of date",
            )
