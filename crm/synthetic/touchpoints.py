"""Touchpoints: the seller-buyer interactions around deals and accounts.

Deal-level touches (email, call, meeting, demo, social; ``deal_id`` set, no ``account_id``)
arrive as a Poisson process inside each stage spell. Their rate grows with the stage
position and the deal's quality, is boosted in the last two weeks of a quarter and fades
over the last weeks before a loss (the deal "goes dark"). The channel mix moves from
email/call early to meetings and demos later; good deals get more meetings and more
inbound touches. Each deal has a few buyer-side contacts; finance and procurement appear
late, and the decision maker (present only in deals where it is engaged, see
``crm.synthetic.deals``) mostly from the middle of the funnel on.

Account-level touches (webinar, web_visit, content_download, ad_click, event; ``account_id``
set, no ``deal_id``) come from research around each deal's start (45 days before to 3
weeks after creation, more for inbound/paid sources and better deals) and a thin
background over the account's life. Form fills carry the deal's first contact.

Candidate times are drawn uniformly and thinned (office hours, weekends, quarter end,
going dark), so no time ever leaves its window; nothing is kept after the horizon.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.schemas import KNOWN_CHANNELS, KNOWN_ROLES
from crm.synthetic.progression import Paths, positions
from crm.synthetic.timeline import office_hours_weight, quarter_end_boost

CHANNEL = {name: code for code, name in enumerate(KNOWN_CHANNELS)}
ROLE = {name: code for code, name in enumerate(KNOWN_ROLES)}
INBOUND, OUTBOUND = 0, 1

#: Deal-level touches per day at the first stage for quality 0 (x3 at the last stage).
DEAL_TOUCH_RATE = 0.55
#: Mean of office_hours_weight over a week: candidates are drawn at rate / this.
OFFICE_MEAN = (10 * 1.0 + 5 * 0.3 + 9 * 0.04) / 24 * (5 + 2 * 0.12) / 7
QUARTER_END_WINDOW, QUARTER_END_BOOST = 14.0, 1.5
DARK_DAYS, DARK_FLOOR = 35.0, 0.06
#: Deal channels: (logit at r=0, slope in r, mid-funnel bump, quality effect, inbound logit).
DEAL_CHANNELS = {
    "email": (1.2, -0.4, 0.0, -0.1, -0.3),
    "call": (0.9, -0.6, 0.0, 0.0, -1.3),
    "meeting": (-1.3, 1.8, 0.0, 0.3, -0.2),
    "demo": (-2.0, 0.8, 1.8, 0.2, -0.6),
    "social": (-0.8, -0.8, 0.0, 0.0, -0.5),
}
INBOUND_QUALITY = 0.45
#: Account-level research: touches per day, window around creation, source multipliers.
RESEARCH_RATE, RESEARCH_BEFORE, RESEARCH_AFTER = 0.16, 45.0, 21.0
RESEARCH_BOOST = {"inbound": 1.8, "paid": 1.6, "event": 1.3, "outbound": 0.6}
BACKGROUND_RATE = 0.003
#: Account channels: (share, probability of a known contact, probability inbound).
ACCOUNT_CHANNELS = {
    "web_visit": (0.40, 0.15, 1.0),
    "content_download": (0.15, 0.9, 1.0),
    "webinar": (0.12, 0.9, 1.0),
    "ad_click": (0.20, 0.1, 1.0),
    "event": (0.13, 0.8, 0.5),
}
MAX_CONTACTS = 8
#: Roles of a deal's first contact, and of the others.
FIRST_ROLES = {"champion": 0.45, "user": 0.3, "influencer": 0.25}
OTHER_ROLES = {
    "influencer": 0.3,
    "user": 0.25,
    "finance": 0.2,
    "procurement": 0.15,
    "champion": 0.1,
}
CHUNK = 200_000


@dataclass(frozen=True)
class Touches:
    """Touchpoint arrays sorted by time; -1 marks a missing deal/account/contact/role."""

    time: np.ndarray
    deal: np.ndarray
    account: np.ndarray
    channel: np.ndarray
    direction: np.ndarray
    contact: np.ndarray
    role: np.ndarray


@dataclass(frozen=True)
class Contacts:
    """Buyer-side contacts of each deal: ``roles[d, slot]`` (-1 unused) and global ids."""

    roles: np.ndarray
    count: np.ndarray
    first_id: np.ndarray


def make_contacts(
    rng: np.random.Generator, employees: np.ndarray, dm_engaged: np.ndarray
) -> Contacts:
    """A few contacts per deal (more at big accounts); a decision maker iff engaged."""
    n = len(employees)
    extra = rng.poisson(0.9 + 0.35 * np.log(np.maximum(employees, 50) / 50))
    count = np.clip(1 + extra, 1, MAX_CONTACTS)
    count = np.where(dm_engaged & (count == 1), 2, count)
    roles = np.full((n, MAX_CONTACTS), -1, dtype=np.int8)
    roles[:, 0] = _draw_roles(rng, FIRST_ROLES, n)
    others = _draw_roles(rng, OTHER_ROLES, n * (MAX_CONTACTS - 1)).reshape(n, -1)
    roles[:, 1:] = np.where(np.arange(1, MAX_CONTACTS) < count[:, None], others, -1)
    dm_slot = 1 + np.floor(rng.random(n) * (count - 1)).astype(np.int64)
    rows = np.flatnonzero(dm_engaged)
    roles[rows, dm_slot[rows]] = ROLE["decision_maker"]
    first_id = np.concatenate([[0], np.cumsum(count)[:-1]])
    return Contacts(roles=roles, count=count, first_id=first_id)


def deal_touches(
    rng: np.random.Generator,
    paths: Paths,
    *,
    quality: np.ndarray,
    amount: np.ndarray,
    contacts: Contacts,
    n_stages: int,
    horizon: float,
    origin: pd.Timestamp,
    quarter_starts: np.ndarray,
) -> Touches:
    """Touches inside every open-stage spell up to the horizon (see module docstring)."""
    is_open = paths.state[:-1] < n_stages
    spell = np.flatnonzero(is_open & (paths.time[:-1] < horizon))
    deal, stage = paths.deal[spell], paths.state[spell].astype(np.int64)
    start, end = paths.time[spell], np.minimum(paths.time[spell + 1], horizon)
    r = positions(n_stages)[stage] if n_stages > 1 else np.full(len(stage), 0.5)
    size = np.clip(amount[deal] / 20_000.0, 0.05, 50.0) ** 0.1
    rate = DEAL_TOUCH_RATE * (1.0 + 2.0 * r) * np.exp(0.25 * quality[deal]) * size
    lost = ~paths.won[deal]
    parts = []
    for lo in range(0, len(spell), CHUNK):
        sl = slice(lo, lo + CHUNK)
        cand_rate = rate[sl] * QUARTER_END_BOOST / OFFICE_MEAN
        idx, t = _uniform_events(rng, start[sl], end[sl], cand_rate)
        keep = office_hours_weight(t, origin)
        keep *= np.where(
            quarter_end_boost(t, quarter_starts, QUARTER_END_WINDOW), 1.0, 1.0 / QUARTER_END_BOOST
        )
        to_close = paths.closed[deal[sl][idx]] - t
        dark = np.clip(to_close / DARK_DAYS, DARK_FLOOR, 1.0)
        keep *= np.where(lost[sl][idx], dark, 1.0)
        ok = rng.random(len(t)) < keep
        parts.append((idx[ok] + lo, t[ok]))
    which = np.concatenate([p[0] for p in parts])
    time = np.concatenate([p[1] for p in parts])
    d, rr = deal[which], r[which]
    channel, direction = _deal_channels(rng, rr, quality[d])
    slot = _contact_slots(rng, rr, d, contacts)
    return Touches(
        time=time,
        deal=d,
        account=np.full(len(d), -1),
        channel=channel,
        direction=direction,
        contact=contacts.first_id[d] + slot,
        role=contacts.roles[d, slot],
    )


def account_touches(
    rng: np.random.Generator,
    *,
    created: np.ndarray,
    deal_account: np.ndarray,
    deal_source: np.ndarray,
    source_names: tuple[str, ...],
    quality: np.ndarray,
    account_created: np.ndarray,
    contacts: Contacts,
    horizon: float,
    origin: pd.Timestamp,
) -> Touches:
    """Research touches around each deal's start plus a thin background per account."""
    boost = np.array([RESEARCH_BOOST.get(s, 0.8) for s in source_names])[deal_source]
    lo = np.maximum(created - RESEARCH_BEFORE, account_created[deal_account])
    hi = np.minimum(created + RESEARCH_AFTER, horizon)
    rate = RESEARCH_RATE * boost * np.exp(0.3 * quality) / OFFICE_MEAN
    d_idx, d_t = _uniform_events(rng, lo, np.maximum(hi, lo), rate)
    b_lo = np.clip(account_created, 0.0, horizon)
    b_rate = np.full(len(account_created), BACKGROUND_RATE / OFFICE_MEAN)
    a_idx, a_t = _uniform_events(rng, b_lo, np.full(len(b_lo), horizon), b_rate)
    time = np.concatenate([d_t, a_t])
    deal = np.concatenate([d_idx, np.full(len(a_idx), -1)])
    account = np.concatenate([deal_account[d_idx], a_idx])
    keep = rng.random(len(time)) < office_hours_weight(time, origin)
    time, deal, account = time[keep], deal[keep], account[keep]
    shares, known, inbound = (np.array(col) for col in zip(*ACCOUNT_CHANNELS.values(), strict=True))
    code = _draw_codes(rng, shares, len(time))
    names = np.array([CHANNEL[c] for c in ACCOUNT_CHANNELS], dtype=np.int8)
    has_contact = (deal >= 0) & (rng.random(len(time)) < known[code])
    first = contacts.first_id[np.maximum(deal, 0)]
    role0 = contacts.roles[np.maximum(deal, 0), 0]
    return Touches(
        time=time,
        deal=np.full(len(time), -1),
        account=account,
        channel=names[code],
        direction=np.where(rng.random(len(time)) < inbound[code], INBOUND, OUTBOUND).astype(
            np.int8
        ),
        contact=np.where(has_contact, first, -1),
        role=np.where(has_contact, role0, -1).astype(np.int8),
    )


def combine(*parts: Touches) -> Touches:
    """All touches in one set, sorted by time (stable: ties keep the order of ``parts``)."""
    cat = {f: np.concatenate([getattr(p, f) for p in parts]) for f in Touches.__dataclass_fields__}
    order = np.argsort(cat["time"], kind="stable")
    return Touches(**{f: v[order] for f, v in cat.items()})


def _uniform_events(
    rng: np.random.Generator, start: np.ndarray, end: np.ndarray, rate: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A Poisson process of ``rate`` on each window: (window index, time) per event."""
    counts = rng.poisson(rate * np.maximum(end - start, 0.0))
    idx = np.repeat(np.arange(len(start)), counts)
    t = start[idx] + rng.random(len(idx)) * (end[idx] - start[idx])
    return idx, t


def _deal_channels(
    rng: np.random.Generator, r: np.ndarray, quality: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Channel and direction codes of deal-level touches at positions r."""
    table = np.array(list(DEAL_CHANNELS.values()))
    logits = (
        table[:, 0]
        + table[:, 1] * r[:, None]
        + table[:, 2] * 4.0 * (r * (1 - r))[:, None]
        + table[:, 3] * quality[:, None]
    )
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    code = (rng.random(len(r))[:, None] > cum[:, :-1]).sum(axis=1)
    inbound_logit = table[code, 4] + INBOUND_QUALITY * quality
    inbound = rng.random(len(r)) < 1.0 / (1.0 + np.exp(-inbound_logit))
    names = np.array([CHANNEL[c] for c in DEAL_CHANNELS], dtype=np.int8)
    return names[code], np.where(inbound, INBOUND, OUTBOUND).astype(np.int8)


def _contact_slots(
    rng: np.random.Generator, r: np.ndarray, deal: np.ndarray, contacts: Contacts
) -> np.ndarray:
    """Which of its deal's contacts each touch reaches (0 = the first contact)."""
    count = contacts.count[deal]
    other = 1 + np.floor(rng.random(len(r)) * np.maximum(count - 1, 1)).astype(np.int64)
    slot = np.where((rng.random(len(r)) < 0.75 - 0.4 * r) | (count == 1), 0, other)
    role = contacts.roles[deal, slot]
    late_role = np.isin(role, [ROLE["finance"], ROLE["procurement"]]) & (r < 0.5)
    early_dm = (role == ROLE["decision_maker"]) & (r < 0.25) & (rng.random(len(r)) < 0.6)
    return np.where(late_role | early_dm, 0, slot)


def _draw_roles(rng: np.random.Generator, table: dict[str, float], n: int) -> np.ndarray:
    codes = np.array([ROLE[k] for k in table], dtype=np.int8)
    return codes[_draw_codes(rng, np.array(list(table.values())), n)]


def _draw_codes(rng: np.random.Generator, shares: np.ndarray, n: int) -> np.ndarray:
    cum = np.cumsum(shares / shares.sum())
    return np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(shares) - 1)
