"""Sales reps: how many, how good, when they join and leave, which deals they get.

Team size grows with the CRM: ``n_deals // 1000`` reps, at least 30 once there are 600
deals or more (below that one rep per 20 deals, at least one) and at most 100. Each rep
has a skill (logit effect on deal quality), a ramp-up (new hires are worse for their
first months) and an optimism that biases the close dates they promise. About 70 % are
on the team at the start, the rest are hired during the period, and some leave; a deal
goes to a rep who is on the team when it is created.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_OWNERS, MAX_OWNERS, DEALS_PER_OWNER = 30, 100, 1000
#: Sd of a rep's skill (logit scale) and how much a brand-new hire loses.
SKILL_SD, RAMP_PENALTY, RAMP_DAYS = 0.45, 0.5, 100.0
#: Share of reps already on the team at the start; share who leave during the period.
SHARE_AT_START, SHARE_LEAVING = 0.7, 0.2


@dataclass(frozen=True)
class Owners:
    """Rep-level arrays, indexed by owner number."""

    skill: np.ndarray  # fully ramped skill, logit scale
    optimism: np.ndarray  # > 0 means close dates promised too early
    hired: np.ndarray  # days since origin (negative: before the period)
    left: np.ndarray  # days since origin (inf: still on the team)
    capacity: np.ndarray  # relative share of new deals a rep takes

    def __len__(self) -> int:
        return len(self.skill)


def n_owners_for(n_deals: int) -> int:
    """Team size for a CRM of ``n_deals`` deals (see module docstring)."""
    small = max(1, n_deals // 20)
    return int(min(MAX_OWNERS, max(n_deals // DEALS_PER_OWNER, min(MIN_OWNERS, small))))


def make_owners(rng: np.random.Generator, n: int, horizon: float) -> Owners:
    """Draw ``n`` reps with skill, optimism and a tenure window inside the period."""
    skill = rng.normal(0.0, SKILL_SD, n)
    optimism = rng.normal(0.55, 0.15, n)
    at_start = rng.random(n) < SHARE_AT_START
    at_start[0] = True  # somebody is always there on day one
    hired = np.where(at_start, -rng.uniform(30.0, 1500.0, n), rng.uniform(0.0, 0.85 * horizon, n))
    leaves = rng.random(n) < SHARE_LEAVING
    leaves[0] = False
    stay = 120.0 + rng.random(n) * horizon
    left = np.where(leaves, np.maximum(hired, 0.0) + stay, np.inf)
    capacity = rng.uniform(0.6, 1.4, n)
    return Owners(skill, optimism, hired, left, capacity)


def assign_owners(
    rng: np.random.Generator, owners: Owners, created: np.ndarray, horizon: float
) -> np.ndarray:
    """The owner number of each deal: a rep on the team at creation, by capacity.

    Loops over 30-day periods (not deals): each period's deals are spread over the reps
    active at its middle.
    """
    owner = np.empty(len(created), dtype=np.int64)
    edges = np.arange(0.0, horizon + 30.0, 30.0)
    period = np.searchsorted(edges, created, side="right") - 1
    for p in np.unique(period):
        members = np.flatnonzero(period == p)
        mid = edges[p] + 15.0
        active = np.flatnonzero((owners.hired <= mid) & (owners.left > mid))
        if len(active) == 0:
            active = np.arange(len(owners))
        weights = owners.capacity[active] / owners.capacity[active].sum()
        owner[members] = rng.choice(active, size=len(members), p=weights)
    return owner


def effective_skill(owners: Owners, owner: np.ndarray, created: np.ndarray) -> np.ndarray:
    """Skill of each deal's rep at the deal's creation, ramp-up included."""
    tenure = np.maximum(created - owners.hired[owner], 0.0)
    return owners.skill[owner] - RAMP_PENALTY * np.exp(-tenure / RAMP_DAYS)
