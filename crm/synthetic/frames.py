"""Turning the simulation's arrays into the contract's typed frames (and the truth frame).

Everything at or before the horizon (``as_of``) is written; a deal whose simulated close
lies after it is open (no closed_at/outcome), its stage rows and touches after as_of are
dropped. The truth frame keeps what the data must not show.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crm.schemas import DIRECTIONS, KNOWN_CHANNELS, KNOWN_ROLES, LOST, WON, Funnel
from crm.synthetic.accounts import COUNTRIES, INDUSTRIES, Accounts
from crm.synthetic.deals import DEAL_TYPES, PRODUCTS, SEGMENTS, SOURCES, Deals
from crm.synthetic.progression import Paths
from crm.synthetic.timeline import Timeline
from crm.synthetic.touchpoints import Touches


def make_ids(prefix: str, numbers: np.ndarray, width: int) -> pd.Series:
    """``prefix`` + zero-padded ``numbers`` as a ``str`` Series; negative numbers are NaN."""
    numbers = np.asarray(numbers, dtype=np.int64)
    text = pc.utf8_lpad(pc.cast(pa.array(numbers, mask=numbers < 0), pa.string()), width, "0")
    return pc.binary_join_element_wise(prefix, text, "").to_pandas()


def take_ids(ids: pd.Series, index: np.ndarray) -> pd.Series:
    """``ids`` at positions ``index`` as a ``str`` Series; negative positions are NaN."""
    index = np.asarray(index, dtype=np.int64)
    taken = pc.take(pa.array(ids, type=pa.large_string()), pa.array(index, mask=index < 0))
    return taken.to_pandas()


def id_width(n: int, minimum: int) -> int:
    """Digits for ids numbered 1..n: at least ``minimum``."""
    return max(minimum, len(str(n)))


def categorical(codes: np.ndarray, names: Sequence[str]) -> pd.Series:
    """Codes into ``names`` (-1 = missing) as a category Series with sorted categories."""
    names = list(names)
    order = sorted(range(len(names)), key=names.__getitem__)
    remap = np.empty(len(names) + 1, dtype=np.int64)
    remap[np.array(order)] = np.arange(len(names))
    remap[-1] = -1
    codes = remap[np.asarray(codes, dtype=np.int64)]
    cats = pd.Index(sorted(names), dtype="str")
    return pd.Series(pd.Categorical.from_codes(codes, categories=cats))


def account_numbers(created: np.ndarray) -> np.ndarray:
    """1-based account numbers in order of entering the CRM (ties by index)."""
    rank = np.empty(len(created), dtype=np.int64)
    rank[np.lexsort((np.arange(len(created)), created))] = np.arange(len(created))
    return rank + 1


def accounts_frame(accounts: Accounts, created: np.ndarray, timeline: Timeline) -> pd.DataFrame:
    """The accounts table, sorted by account_id."""
    numbers = account_numbers(created)
    frame = pd.DataFrame(
        {
            "account_id": make_ids("A", numbers, id_width(len(numbers), 6)),
            "industry": categorical(accounts.industry, list(INDUSTRIES)),
            "employees": accounts.employees.astype(np.float64),
            "annual_revenue": accounts.revenue.astype(np.float64),
            "country": categorical(accounts.country, list(COUNTRIES)),
            "created_at": timeline.timestamps(created),
        }
    )
    return frame.iloc[np.argsort(numbers)].reset_index(drop=True)


def deals_frame(
    deals: Deals,
    paths: Paths,
    account_ids: pd.Series,
    timeline: Timeline,
) -> pd.DataFrame:
    """The deals table in creation order; open deals at the horizon have no close."""
    n = len(deals.created)
    closed = np.where(paths.closed <= timeline.horizon, paths.closed, np.nan)
    outcome = np.where(np.isnan(closed), None, np.where(paths.won, WON, LOST))
    n_owners = int(deals.owner.max()) + 1
    return pd.DataFrame(
        {
            "deal_id": make_ids("D", np.arange(1, n + 1), id_width(n, 6)),
            "created_at": timeline.timestamps(deals.created),
            "account_id": account_ids.iloc[deals.account].reset_index(drop=True),
            "owner_id": make_ids("U", deals.owner + 1, id_width(n_owners, 3)),
            "amount": deals.amount.astype(np.float64),
            "source": categorical(deals.source, list(SOURCES)),
            "product": categorical(deals.product, list(PRODUCTS)),
            "expected_close_date": timeline.timestamps(deals.expected_close),
            "closed_at": timeline.timestamps(closed),
            "outcome": pd.Series(outcome, dtype="str"),
            "segment": categorical(deals.segment, SEGMENTS),
            "deal_type": categorical(deals.expansion.astype(np.int64), DEAL_TYPES),
            "competitor_present": deals.competitor.astype(np.float64),
            "legacy_score": deals.legacy_score,
        }
    )


def stage_history_frame(
    paths: Paths, deal_ids: pd.Series, funnel: Funnel, timeline: Timeline
) -> pd.DataFrame:
    """One row per stage entered at or before the horizon, sorted by deal and time."""
    seen = paths.time <= timeline.horizon
    names = np.array([*funnel.stages, WON, LOST], dtype=object)
    return pd.DataFrame(
        {
            "deal_id": deal_ids.iloc[paths.deal[seen]].reset_index(drop=True),
            "stage": pd.Series(names[paths.state[seen]], dtype="str"),
            "entered_at": timeline.timestamps(paths.time[seen]),
        }
    )


def touchpoints_frame(
    touches: Touches,
    deal_ids: pd.Series,
    account_ids: pd.Series,
    n_contacts: int,
    timeline: Timeline,
) -> pd.DataFrame:
    """The touchpoints table, ids T... in time order.

    ``deal_ids``/``account_ids`` are the ids of deal/account numbers 0..n-1; contacts are
    numbered 0..n_contacts-1 and become C0000001...
    """
    n = len(touches.time)
    contact_ids = make_ids("C", np.arange(1, n_contacts + 1), id_width(n_contacts, 7))
    return pd.DataFrame(
        {
            "touchpoint_id": make_ids("T", np.arange(1, n + 1), id_width(n, 8)),
            "deal_id": take_ids(deal_ids, touches.deal),
            "account_id": take_ids(account_ids, touches.account),
            "occurred_at": timeline.timestamps(touches.time),
            "channel": categorical(touches.channel, KNOWN_CHANNELS),
            "direction": categorical(touches.direction, DIRECTIONS),
            "contact_id": take_ids(contact_ids, touches.contact),
            "contact_role": categorical(touches.role, KNOWN_ROLES),
        }
    )


def truth_frame(
    deals: Deals,
    paths: Paths,
    deal_frame: pd.DataFrame,
    p_win: np.ndarray,
    funnel: Funnel,
    timeline: Timeline,
) -> pd.DataFrame:
    """One row per deal: the hidden variables and the eventual (possibly future) outcome."""
    hidden = {name: values.astype(np.float64) for name, values in deals.parts.items()}
    return pd.DataFrame(
        {
            "deal_id": deal_frame["deal_id"],
            "account_id": deal_frame["account_id"],
            "owner_id": deal_frame["owner_id"],
            "quality": deals.quality,
            **hidden,
            "dm_engaged": deals.dm_engaged,
            "expansion": deals.expansion,
            "entry_stage": pd.Series(
                np.array(funnel.stages, dtype=object)[deals.entry], dtype="str"
            ),
            "dwell_scale": deals.dwell_scale,
            "p_win_true": p_win,
            "eventual_outcome": pd.Series(np.where(paths.won, WON, LOST), dtype="str"),
            "eventual_closed_at": timeline.timestamps(paths.closed),
            "open_at_as_of": paths.closed > timeline.horizon,
        }
    )
