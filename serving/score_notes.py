"""What the user must know about a scored list: a moment after the data's end, features
of the champion that drifted, owners picked who have no open deal; and the text the CLI
prints."""

from __future__ import annotations

import pandas as pd

from models.drift import describe
from serving.score import for_owners


class NoOwnerDealsError(ValueError):
    """None of the owners asked for has an open deal: nothing to export."""


def as_of_messages(when: pd.Timestamp, data_end: pd.Timestamp) -> list[str]:
    """A warning when ``when`` is after the data's latest event (deals age as if idle)."""
    if when <= data_end:
        return []
    days = (when - data_end) / pd.Timedelta(days=1)
    return [
        f"--as-of is {days:.0f} days after the data's latest event {data_end}: "
        "days since the last touch and in stage keep growing as if nothing happened since"
    ]


def drift_messages(drift: list[dict]) -> list[str]:
    """What the user must know when the champion's features drifted (stage table served);
    ``drift`` is the scored frame's ``attrs["drift"]``."""
    if not drift:
        return []
    return [
        f"features of the champion drifted since training: {describe(drift)}. Every p_win "
        "is the stage table's today; `dealcast train` refits without the drifted features"
    ]


def owners_only(
    leads: pd.DataFrame, owners: tuple[str, ...], *, when: pd.Timestamp
) -> tuple[pd.DataFrame, list[str]]:
    """The leads of ``owners`` (ranks kept) and the owners asked for who have none;
    :class:`NoOwnerDealsError` when none of them has an open deal."""
    picked = for_owners(leads, owners)
    if picked.empty:
        raise NoOwnerDealsError(
            f"no open deal at {when} belongs to owner(s) {', '.join(owners)}: nothing to export"
        )
    return picked, sorted(set(owners) - set(picked["owner_id"].dropna()))


def leads_text(
    leads: pd.DataFrame, *, as_of: pd.Timestamp, open_deals: int, seconds: float,
    messages: list[str], top: int = 10,
) -> str:  # fmt: skip
    """How many deals were scored (of ``open_deals``), how long it took, ``messages``, and
    the top ``top`` rows of the ranked list."""
    named = "deal_name" in leads and leads["deal_name"].notna().any()
    who = (
        "owner_name" if "owner_name" in leads and leads["owner_name"].notna().any() else "owner_id"
    )
    lines = [
        f"scored {open_deals:,} deals open at {as_of} in {seconds:.1f} s"
        + (f"; exporting {len(leads):,}" if len(leads) != open_deals else ""),
        *messages,
        f"{'rank':>5}  {'deal_id':<14}"
        + (f"{'deal':<31}" if named else "")
        + f"{'owner':<18}{'stage':<13}{'amount':>12}{'p_win':>7}{'exp. value':>12}",
    ]
    for row in leads.head(top).to_dict("records"):
        amount = "" if pd.isna(row["amount"]) else f"{row['amount']:,.0f}"
        value = "" if pd.isna(row["expected_value"]) else f"{row['expected_value']:,.0f}"
        name = f"{_cut(row.get('deal_name'), 29):<31}" if named else ""
        lines.append(
            f"{row['rank']:>5}  {row['deal_id']:<14}{name}{_cut(row[who], 16):<18}"
            f"{str(row['stage']):<13}{amount:>12}{row['p_win']:>7.3f}{value:>12}"
        )
    return "\n".join(lines)


def _cut(text, width: int) -> str:
    """``text`` (missing: empty) shortened to ``width`` characters with an ellipsis."""
    text = "" if text is None or (not isinstance(text, str) and pd.isna(text)) else str(text)
    return text if len(text) <= width else text[: width - 1] + "…"
