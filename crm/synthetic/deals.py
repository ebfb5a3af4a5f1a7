"""Deals at creation: when, for whom, by whom, what, how much, and their hidden quality.

The hidden quality ``q`` (logit scale) that drives the whole stage process is

    q = account fit + source quality + owner skill (with ramp-up) + product effect
        + amount effect (big deals win less) + competitor effect + expansion bonus
        + quarter shock (shared by all deals created in a quarter) + noise
        + decision-maker bonus,

where the decision maker is engaged with a probability that rises with the rest of q.
The observable columns (industry, country, source, owner, product, amount, segment,
competitor_present, deal_type) carry part of it; the fit's hidden part, the shock and the
noise stay hidden. ``legacy_score`` is pure noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm.synthetic.accounts import Accounts, assign_accounts
from crm.synthetic.owners import Owners, assign_owners, effective_skill
from crm.synthetic.progression import typical_cycle_days
from crm.synthetic.timeline import Timeline, creation_day_weights

#: Lead sources: (share at start, share at the end of the period, quality effect).
#: Paid acquisition grows over time, which slowly drags the overall win rate down.
SOURCES = {
    "referral": (0.11, 0.09, 0.9),
    "partner": (0.12, 0.11, 0.55),
    "inbound": (0.30, 0.27, 0.25),
    "event": (0.10, 0.09, -0.1),
    "outbound": (0.25, 0.22, -0.5),
    "paid": (0.12, 0.22, -0.75),
}
#: Products: (share of new business, share of expansion, median amount, quality effect).
PRODUCTS = {
    "platform": (0.45, 0.25, 24_000.0, 0.0),
    "analytics": (0.25, 0.20, 12_000.0, 0.15),
    "enterprise_suite": (0.15, 0.10, 90_000.0, -0.1),
    "add_on": (0.15, 0.45, 5_000.0, 0.45),
}
SEGMENTS = ("smb", "mid_market", "enterprise")
DEAL_TYPES = ("new_business", "expansion")
AMOUNT_SIGMA, AMOUNT_SIZE_ELASTICITY = 0.6, 0.35
#: Quality lost per unit of log(amount) above a 20k deal.
AMOUNT_EFFECT, AMOUNT_PIVOT = 0.3, 20_000.0
COMPETITOR_EFFECT, EXPANSION_EFFECT, DM_EFFECT = -0.55, 0.5, 0.6
NOISE_SD, QUARTER_SHOCK_SD = 0.65, 0.2
#: Subtracted so that quality is centred near 0 for the default mixes.
QUALITY_CENTER = 0.6
#: Share of deals entering the funnel at the 2nd / 3rd open stage (before source boost).
MID_ENTRY = (0.06, 0.035)
MID_ENTRY_BOOST = {"referral": 1.6, "partner": 1.6, "inbound": 1.2}


@dataclass(frozen=True)
class Deals:
    """Per-deal arrays in creation order (deal number = position)."""

    created: np.ndarray
    account: np.ndarray
    owner: np.ndarray
    source: np.ndarray
    product: np.ndarray
    segment: np.ndarray
    expansion: np.ndarray
    amount: np.ndarray
    competitor: np.ndarray
    legacy_score: np.ndarray
    entry: np.ndarray
    expected_close: np.ndarray
    dwell_scale: np.ndarray
    parts: dict[str, np.ndarray]  # the hidden components of quality (see module doc)
    quality: np.ndarray
    dm_engaged: np.ndarray


def draw_sources(rng: np.random.Generator, created: np.ndarray, horizon: float) -> np.ndarray:
    """Source codes (into SOURCES), with the mix drifting linearly over the period."""
    frac = np.clip(created / horizon, 0.0, 1.0)[:, None]
    table = np.array([v[:2] for v in SOURCES.values()])
    probs = (1 - frac) * table[:, 0] + frac * table[:, 1]
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    return (rng.random(len(created))[:, None] > cum[:, :-1]).sum(axis=1)


def expansion_flags(account: np.ndarray, created: np.ndarray) -> np.ndarray:
    """True for deals whose account already had an earlier deal."""
    order = np.lexsort((created, account))
    first = np.ones(len(account), dtype=bool)
    first[1:] = account[order][1:] != account[order][:-1]
    flags = np.empty(len(account), dtype=bool)
    flags[order] = ~first
    return flags


def draw_products(rng: np.random.Generator, expansion: np.ndarray) -> np.ndarray:
    """Product codes (into PRODUCTS); expansion deals are mostly add-ons."""
    table = np.array([v[:2] for v in PRODUCTS.values()])
    probs = np.where(expansion[:, None], table[:, 1], table[:, 0])
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    return (rng.random(len(expansion))[:, None] > cum[:, :-1]).sum(axis=1)


def segment_codes(employees: np.ndarray) -> np.ndarray:
    """0 smb (< 100 staff), 1 mid_market (< 1000), 2 enterprise."""
    return np.searchsorted([100.0, 1000.0], employees, side="right")


def draw_amounts(
    rng: np.random.Generator, product: np.ndarray, employees: np.ndarray
) -> np.ndarray:
    """Lognormal amounts scaled by product and account size, rounded to 100 (min 500)."""
    median = np.array([v[2] for v in PRODUCTS.values()])[product]
    size = (employees / 180.0) ** AMOUNT_SIZE_ELASTICITY
    raw = median * size * rng.lognormal(0.0, AMOUNT_SIGMA, len(product))
    return np.maximum(500.0, np.round(raw, -2))


def draw_entry(rng: np.random.Generator, source: np.ndarray, n_stages: int) -> np.ndarray:
    """Entry stage (0-based): most deals start at the first open stage, some mid-funnel."""
    if n_stages == 1:
        return np.zeros(len(source), dtype=np.int64)
    boost = np.array([MID_ENTRY_BOOST.get(s, 0.7) for s in SOURCES])[source]
    u = rng.random(len(source)) / boost
    second, third = MID_ENTRY
    entry = np.where(u < second, 1, np.where(u < second + third, 2, 0))
    return np.minimum(entry, n_stages - 1)


def quarter_shock(rng: np.random.Generator, created: np.ndarray) -> np.ndarray:
    """A shared quality shock per 91-day creation period (economy, pricing, competition)."""
    period = np.floor(created / 91.3).astype(np.int64)
    shocks = rng.normal(0.0, QUARTER_SHOCK_SD, period.max() + 1)
    return shocks[period]


def dwell_scale_of(amount: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """Dwell-time multiplier: bigger deals are slower, better ones a little faster."""
    return np.clip(amount / AMOUNT_PIVOT, 0.05, 50.0) ** 0.15 * np.exp(-0.12 * quality)


def expected_close_days(
    rng: np.random.Generator,
    timeline: Timeline,
    created: np.ndarray,
    entry: np.ndarray,
    amount: np.ndarray,
    optimism: np.ndarray,
    n_stages: int,
) -> np.ndarray:
    """The rep's close date set at creation, in days since origin (a midnight, UTC).

    The typical cycle of a won deal from the entry stage, shrunk by the rep's optimism and
    noise; reps like month ends, so half of the dates snap to the last day of the month.
    It never depends on the deal's real fate, so it leaks nothing; deals past their date
    are late, which (as in real CRMs) is a sign of trouble.
    """
    typical = typical_cycle_days(entry, n_stages) * np.clip(amount / AMOUNT_PIVOT, 0.05, 50) ** 0.15
    factor = np.exp(rng.normal(-optimism, 0.4))
    dates = timeline.dates(created + np.maximum(typical * factor, 1.0))
    to_month_end = (dates.dt.days_in_month - dates.dt.day).to_numpy(dtype=np.float64)
    dates = dates + pd.to_timedelta(
        np.where(rng.random(len(created)) < 0.5, to_month_end, 0.0), unit="D"
    )
    return ((dates - timeline.origin) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64)


def draw_created(rng: np.random.Generator, timeline: Timeline, n: int) -> np.ndarray:
    """Sorted creation times (days since origin): trend, seasons, office hours."""
    days, weights = creation_day_weights(timeline)
    day = rng.choice(days, size=n, p=weights / weights.sum())
    time_of_day = np.clip(rng.normal(0.56, 0.1, n), 0.3, 0.8)
    return np.sort(np.minimum(day + time_of_day, timeline.horizon - 1e-5))


def make_deals(
    rng: np.random.Generator,
    timeline: Timeline,
    accounts: Accounts,
    owners: Owners,
    n_deals: int,
    n_stages: int,
) -> Deals:
    """Draw ``n_deals`` deals with their observable fields and hidden quality."""
    created = draw_created(rng, timeline, n_deals)
    account = assign_accounts(rng, accounts, n_deals)
    owner = assign_owners(rng, owners, created, timeline.horizon)
    source = draw_sources(rng, created, timeline.horizon)
    expansion = expansion_flags(account, created)
    product = draw_products(rng, expansion)
    employees = accounts.employees[account]
    segment = segment_codes(employees)
    amount = draw_amounts(rng, product, employees)
    competitor = rng.random(n_deals) < 0.25 + 0.1 * segment
    parts = {
        "account_fit": accounts.fit[account],
        "source_quality": np.array([v[2] for v in SOURCES.values()])[source],
        "owner_skill": effective_skill(owners, owner, created),
        "product_effect": np.array([v[3] for v in PRODUCTS.values()])[product],
        "amount_effect": -AMOUNT_EFFECT * np.log(amount / AMOUNT_PIVOT),
        "competitor_effect": np.where(competitor, COMPETITOR_EFFECT, 0.0),
        "expansion_effect": np.where(expansion, EXPANSION_EFFECT, 0.0),
        "quarter_shock": quarter_shock(rng, created),
        "noise": rng.normal(0.0, NOISE_SD, n_deals),
    }
    before_dm = sum(parts.values()) - QUALITY_CENTER
    dm_engaged = rng.random(n_deals) < 1.0 / (1.0 + np.exp(0.1 - 0.9 * before_dm))
    parts["dm_effect"] = np.where(dm_engaged, DM_EFFECT, 0.0)
    quality = before_dm + parts["dm_effect"]
    entry = draw_entry(rng, source, n_stages)
    expected = expected_close_days(
        rng, timeline, created, entry, amount, owners.optimism[owner], n_stages
    )
    return Deals(
        created=created,
        account=account,
        owner=owner,
        source=source,
        product=product,
        segment=segment,
        expansion=expansion,
        amount=amount,
        competitor=competitor,
        legacy_score=rng.integers(0, 101, n_deals).astype(np.float64),
        entry=entry,
        expected_close=expected,
        dwell_scale=dwell_scale_of(amount, quality),
        parts=parts,
        quality=quality,
        dm_engaged=dm_engaged,
    )
