"""The revenue forecast per owner or per segment (``dealcast forecast --by owner``).

A *grouping* splits the deals by one column: ``owner`` (the deals' ``owner_id``, shown
with the CRM's ``owner_name`` when it has one), a deal segment (``source``, ``product``
or a text attribute of the deals) or an account segment (``industry``, ``country`` or a
text attribute of the accounts, through the deal's ``account_id``). Deals with no value
there (or no account) form the group :data:`UNKNOWN`.

Per group and period (:func:`group_rows`): already won, open pipeline and their mean
(``forecast``, the same exact expectation as the total's) and P10/P50/P90 of the group's
own revenue **in the very draws of the total** (each draw's won deals summed within the
group, :func:`serving.forecast_simulate.simulate_open_by`). Revenue from deals not created
yet is not split: the simulation draws it for the whole CRM only (no group has a creation
history of its own in it, and an owner's future deals depend on who is still there), so
it is a row of its own, :data:`NOT_YET_CREATED`. The groups' means plus that row add up to
the total's mean; their P50s do not (a quantile of a sum is not the sum of quantiles).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import CONTRACT
from serving.forecast import QUANTILES, Period, amounts, won_so_far

UNKNOWN = "(unknown)"
#: The group of the values beyond ``max_groups`` (:func:`grouping_of`).
OTHER = "(other values)"
NOT_YET_CREATED = "(not yet created)"
#: ``--by`` names of a column with another name.
ALIASES = {"owner": "owner_id"}
COLUMNS = ("by", "group", "name", "period", "kind", "start", "end", "open_deals",
           "already_won", "open_expected", "new_expected", "forecast", "p10", "p50",
           "p90")  # fmt: skip
#: Said once wherever group figures are shown.
NOT_ADDITIVE = (
    "the groups' means (and the not-yet-created row) add up to the total; their P10/P50/P90 "
    "do not (a quantile of a sum is not the sum of the quantiles)"
)


class UnknownGroupingError(ValueError):
    """A ``--by`` name that is no segment column of this CRM (the message lists the valid)."""


@dataclass(frozen=True)
class Grouping:
    """One split of the deals: ``keys[k]`` (shown as ``names[k]``) is group ``k``;
    ``of_deal`` maps every CRM deal id to its group number."""

    by: str
    column: str
    keys: tuple[str, ...]
    names: tuple[str, ...]
    of_deal: pd.Series

    @property
    def size(self) -> int:
        return len(self.keys)

    def codes(self, deal_ids: Iterable) -> np.ndarray:
        """The group number of each deal id; ``KeyError`` for an id not in the CRM."""
        ids = pd.Index(pd.Series(deal_ids, dtype="object").to_numpy())
        found = self.of_deal.reindex(ids)
        if found.isna().any():
            raise KeyError(f"deals not in the CRM: {list(ids[found.isna().to_numpy()][:5])}")
        return found.to_numpy(np.int64)


def segment_columns(data: CRMData) -> dict[str, tuple[str, str]]:
    """``--by`` name -> (table, column) of every segment column this CRM has: ``owner``
    (``owner_id``), then the contract's category columns and the text attributes of the
    deals, then of the accounts (a name in both tables is the deals')."""
    out: dict[str, tuple[str, str]] = {}
    if "owner_id" in data.deals:
        out["owner"] = ("deals", "owner_id")
    for table in ("deals", "accounts"):
        frame = data.table(table)
        for column in frame.columns if frame is not None else ():
            if column not in out and _is_segment(frame[column], table, column):
                out[column] = (table, column)
    return out


def _is_segment(values: pd.Series, table: str, column: str) -> bool:
    spec = CONTRACT[table]
    if column in spec.column_names:
        return spec.column(column).kind == "category"
    return not (
        pd.api.types.is_numeric_dtype(values)
        or pd.api.types.is_bool_dtype(values)
        or pd.api.types.is_datetime64_any_dtype(values)
    )


def grouping_of(data: CRMData, by: str, *, max_groups: int) -> Grouping:
    """The grouping of the CRM's deals by ``by`` (see :func:`segment_columns`);
    :class:`UnknownGroupingError` naming the valid choices for any other name. Only the
    ``max_groups`` values most deals have are groups of their own; the rest form one group
    :data:`OTHER` (the simulation keeps every draw of every group: memory grows with
    their number)."""
    choices = segment_columns(data)
    column_of = {column.casefold(): k for k, (_, column) in choices.items()}
    column_of |= {k.casefold(): k for k in choices}
    name = column_of.get(ALIASES.get(by, by).casefold(), by)
    if name not in choices:
        valid = ", ".join(choices) or "none (no owner_id, source, product, industry, ...)"
        raise UnknownGroupingError(
            f"no deal or account segment column {by!r} in this CRM; choose one of: {valid}"
        )
    table, column = choices[name]
    values = _capped(_deal_values(data, table, column), max_groups)
    present = set(values.dropna())
    keys = sorted(present - {OTHER}) + [OTHER] * (OTHER in present)
    if values.isna().any():
        keys.append(UNKNOWN)
    number = {key: k for k, key in enumerate(keys)}
    of_deal = pd.Series(values.fillna(UNKNOWN).map(number).to_numpy(np.int64),
                        index=data.deals["deal_id"].astype("object").to_numpy())  # fmt: skip
    names = _owner_names(data, keys) if column == "owner_id" else tuple(keys)
    return Grouping(name, column, tuple(keys), names, of_deal)


def _capped(values: pd.Series, max_groups: int) -> pd.Series:
    """``values`` with all but the ``max_groups`` most common (ties: in text order) replaced
    by :data:`OTHER`; missing stays missing."""
    counts = values.value_counts()
    if len(counts) <= max_groups:
        return values
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    kept = {key for key, _ in order[:max_groups]}
    return values.where(values.isna() | values.isin(kept), OTHER)


def _deal_values(data: CRMData, table: str, column: str) -> pd.Series:
    """Each deal's value of ``column`` as text; missing or blank: NaN."""
    deals = data.deals
    if table == "deals":
        raw = deals[column]
    else:
        accounts = data.accounts
        lookup = accounts.drop_duplicates("account_id").set_index("account_id")[column]
        raw = lookup.reindex(deals["account_id"].astype("object").to_numpy()) \
            if "account_id" in deals else pd.Series(np.nan, index=deals.index)  # fmt: skip
    text = pd.Series(raw.astype("object").to_numpy(), index=deals.index)
    text = text.map(lambda v: v if pd.isna(v) else str(v).strip())
    return text.mask(text == "")


def _owner_names(data: CRMData, keys: list[str]) -> tuple[str, ...]:
    """The CRM's name of each owner id (of its latest deal that has one), else the id."""
    deals = data.deals
    if "owner_name" not in deals:
        return tuple(keys)
    named = deals.dropna(subset=["owner_id", "owner_name"]).sort_values("created_at")
    latest = dict(zip(named["owner_id"].astype(str).str.strip(),
                      named["owner_name"].astype(str).str.strip(), strict=True))  # fmt: skip
    return tuple(latest.get(k) or k for k in keys)


def group_rows(
    grouping: Grouping,
    period: Period,
    *,
    won: np.ndarray,
    open_expected: np.ndarray,
    open_draws: np.ndarray,
    open_deals: np.ndarray,
    new_draw: np.ndarray,
    new_mean: float,
) -> list[dict]:
    """The rows of one period: every group with an open deal or revenue, then the
    not-yet-created row. ``won``, ``open_expected``, ``open_deals``: per group;
    ``open_draws``: draws x groups; ``new_draw``: the total's not-yet-created draws."""
    q = np.quantile(won[None, :] + open_draws, QUANTILES, axis=0) if len(won) else None
    rows = [
        _row(grouping, period, key, name, open_deals[k], won[k], open_expected[k], 0.0, q[:, k])
        for k, (key, name) in enumerate(zip(grouping.keys, grouping.names, strict=True))
        if open_deals[k] or won[k] or open_expected[k]
    ]
    q_new = np.quantile(new_draw, QUANTILES)
    rows.append(_row(grouping, period, NOT_YET_CREATED, NOT_YET_CREATED, 0, 0.0, 0.0,
                     new_mean, q_new))  # fmt: skip
    return rows


def _row(grouping, period, key, name, n, won, opn, new, q) -> dict:
    return {
        "by": grouping.by, "group": key, "name": name, "period": period.label,
        "kind": period.kind, "start": period.start, "end": period.end, "open_deals": int(n),
        "already_won": float(won), "open_expected": float(opn), "new_expected": float(new),
        "forecast": float(won + opn + new),
        "p10": float(q[0]), "p50": float(q[1]), "p90": float(q[2]),
    }  # fmt: skip


def won_by_group(
    deals: pd.DataFrame, periods: Sequence[Period], codes: np.ndarray, size: int, *,
    as_of: pd.Timestamp, won_label: str,
) -> np.ndarray:  # fmt: skip
    """Already won per period (rows) and group (columns); ``codes``: each deal's group
    (:func:`serving.forecast.already_won`, split by group)."""
    amount = amounts(deals)
    return np.array([
        np.bincount(codes, weights=amount * won_so_far(deals, p, as_of=as_of,
                                                       won_label=won_label), minlength=size)
        for p in periods
    ]).reshape(len(periods), size)  # fmt: skip


def group_text(
    table: pd.DataFrame, total: pd.DataFrame, *, as_of: pd.Timestamp, limit: int = 12
) -> str:
    """The CLI's short table of one period per group, largest mean first (at most
    ``limit``), then the not-yet-created row and the total (the caller says
    :data:`NOT_ADDITIVE` once). The period is the quarter containing ``as_of`` or, when
    that one ends within :data:`SHORT_DAYS` days, the next (else the first month)."""
    period, why = _shown_period(table, as_of)
    rows = table[table["period"] == period]
    new = rows["group"] == NOT_YET_CREATED
    groups = rows[~new].sort_values("forecast", ascending=False)
    by = str(rows["by"].iloc[0])
    header = ("open deals", "won", "open", "new", "mean", "P10", "P50", "P90")
    lines = [f"forecast by {by}, {period}{why}:",
             f"{by[:LABEL - 1]:<{LABEL}}" + "".join(f"{h:>11}" for h in header)]  # fmt: skip
    labels = _labels(groups)
    for r in [*groups.head(limit).itertuples(), *rows[new].itertuples()]:
        lines.append(_line(labels.get(r.group, r.group), r.open_deals, r))
    if len(groups) > limit:
        lines.insert(-1, f"  ... and {len(groups) - limit} more groups (CSV and XLSX)")
    t = total[total["period"] == period].iloc[0]
    lines.append(_line("total", int(rows["open_deals"].sum()), t))
    return "\n".join(lines)


#: Width of the group column of :func:`group_text`; a quarter ending within this many
#: days of as_of is too far gone to show (the next one is shown).
LABEL, SHORT_DAYS = 26, 30


def _shown_period(table: pd.DataFrame, as_of: pd.Timestamp) -> tuple[str, str]:
    """(period label, why it was chosen when it is not the current one)."""
    quarters = table[table["kind"] == "quarter"].drop_duplicates("period")
    if quarters.empty:
        return str(table["period"].iloc[0]), ""
    first = quarters.iloc[0]
    left = (pd.Timestamp(first["end"]) - as_of) / pd.Timedelta(days=1)
    if left >= SHORT_DAYS or len(quarters) == 1:
        return str(first["period"]), ""
    days = f"{left:.0f} day{'s' if round(left) != 1 else ''}"
    return str(quarters.iloc[1]["period"]), f" ({first['period']} ends in {days})"


def _labels(groups: pd.DataFrame) -> dict[str, str]:
    """Each group's label: its name, with the key when the name is not the key's alone
    (two owners of one name), cut to fit :data:`LABEL`."""
    counts = groups["name"].value_counts()
    out = {}
    for key, name in zip(groups["group"], groups["name"], strict=True):
        label = name if name == key or counts[name] == 1 else f"{name} ({key})"
        out[key] = label if len(label) < LABEL else label[: LABEL - 2] + "…"
    return out


def _line(label: str, deals: int, r) -> str:
    money = (r.already_won, r.open_expected, r.new_expected, r.forecast, r.p10, r.p50, r.p90)
    return f"{label:<{LABEL}}{deals:>11,}" + "".join(f"{v:>11,.0f}" for v in money)
