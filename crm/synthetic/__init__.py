"""The built-in synthetic CRM: realistic B2B funnel data with known hidden truth.

``generate_crm`` simulates accounts, reps and deals over ``[start, as_of)``, runs every
deal through the funnel (a semi-Markov process driven by a hidden deal quality, see
``progression``), adds the touchpoints around them, and censors everything at ``as_of``:
deals whose simulated close lies later are open in the data, and no row of the data has a
timestamp after ``as_of`` (only ``deals.expected_close_date``, the rep's plan, may point
past it, as it does in a real CRM). The truth frame holds what the data hides, including
the eventual outcome of deals that are still open.

The modules: ``timeline`` (time and calendars), ``accounts``, ``owners``, ``deals``
(attributes and hidden quality), ``progression`` (stage process, exact win probability),
``touchpoints``, ``frames`` (typed tables), ``messy`` (dirt of real exports),
``scenarios`` and ``recording`` (failure scenarios of real exports), ``truth`` (reading
the hidden truth).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from crm.synthetic import frames
from crm.synthetic.accounts import account_created_days, make_accounts, n_accounts_for
from crm.synthetic.deals import SOURCES, make_deals
from crm.synthetic.messy import make_messy
from crm.synthetic.names import with_names
from crm.synthetic.owners import make_owners, n_owners_for
from crm.synthetic.progression import simulate, win_probability
from crm.synthetic.recording import transform_frames
from crm.synthetic.scenarios import (
    SCENARIOS,
    UnknownScenarioError,
    adjust_deals,
    scenario_order,
    scenario_start,
)
from crm.synthetic.timeline import Timeline
from crm.synthetic.touchpoints import account_touches, combine, deal_touches, make_contacts
from crm.synthetic.truth import truth_won_within

__all__ = [
    "SCENARIOS",
    "SyntheticCRM",
    "UnknownScenarioError",
    "generate_crm",
    "truth_won_within",
    "win_probability",
]


@dataclass(frozen=True)
class SyntheticCRM:
    """Generated CRM data and the hidden truth behind it.

    ``data`` is typed as ``crm.schemas`` says, except with ``messy=True``, where it is what
    a dirty export looks like (see ``crm.synthetic.messy``; its timestamp columns of deals
    and stage_history are ISO strings in mixed zones). ``truth`` has one row per deal
    (``deal_id`` unique) with the hidden variables:

    * ``quality`` (logit scale) and its parts: ``account_fit``, ``source_quality``,
      ``owner_skill`` (at creation, ramp-up included), ``product_effect``,
      ``amount_effect``, ``competitor_effect``, ``expansion_effect``, ``quarter_shock``,
      ``noise``, ``dm_effect``; flags ``dm_engaged``, ``expansion``;
    * ``entry_stage`` and ``dwell_scale`` (what ``win_probability`` needs with
      ``days_in_stage``);
    * ``p_win_true``: the exact P(eventually won | quality, entry stage) at creation;
    * ``eventual_outcome``, ``eventual_closed_at`` (simulated beyond as_of for open deals)
      and ``open_at_as_of``: the real, uncut outcome, close time and state at as_of, also
      where a scenario makes the CRM record them late or cut them (see
      :func:`truth_won_within`);
    * with scenarios only: ``created_at_true`` (the real creation, before
      ``left-truncated`` moves it) and, with ``level-shift``, the quality part
      ``level_shift``. ``left-truncated`` leaves out the rows of the deals it leaves out.

    ``dirt`` counts the rows of each kind of injected dirt (empty when clean);
    ``scenarios`` says what each applied scenario did (empty without scenarios).
    """

    data: CRMData
    truth: pd.DataFrame
    dirt: dict[str, int] = field(default_factory=dict)
    scenarios: dict[str, str] = field(default_factory=dict)


def generate_crm(
    *,
    n_deals: int,
    seed: int,
    start: pd.Timestamp,
    as_of: pd.Timestamp,
    funnel: Funnel,
    messy: bool,
    scenarios: Sequence[str] = (),
) -> SyntheticCRM:
    """Simulate a CRM of ``n_deals`` deals created in ``[start, as_of)``, censored at as_of.

    Naive ``start``/``as_of`` are UTC. The same arguments always give identical frames (one
    seeded generator, split into independent streams per step). Needs at least one open
    stage and a period of more than 30 days; two years or more gives the seasonality and
    trend room to show. ``scenarios`` names failure scenarios of real exports to apply
    (:data:`SCENARIOS`, see ``crm.synthetic.scenarios``; an unknown name raises
    :class:`UnknownScenarioError`); without them the output is the plain generator's.
    """
    if n_deals < 1:
        raise ValueError(f"n_deals must be >= 1, not {n_deals}")
    if not funnel.stages:
        raise ValueError("the funnel needs at least one open stage")
    names = scenario_order(scenarios)
    timeline = Timeline.between(scenario_start(names, start, as_of), as_of)
    k = len(funnel.stages)
    # spawn(8) gives the same first seven streams as spawn(7): scenarios use the eighth
    streams = np.random.default_rng(seed).spawn(8)
    rng_acc, rng_own, rng_deal, rng_path, rng_cont, rng_touch, rng_mess, rng_scen = streams
    accounts = make_accounts(rng_acc, n_accounts_for(n_deals))
    owners = make_owners(rng_own, n_owners_for(n_deals), timeline.horizon)
    deals = make_deals(rng_deal, timeline, accounts, owners, n_deals, k)
    deals, notes = adjust_deals(names, deals, timeline=timeline, n_stages=k)
    first_deal = np.full(len(accounts), np.nan)
    buyers, first = np.unique(deals.account, return_index=True)
    first_deal[buyers] = deals.created[first]
    account_created = account_created_days(rng_acc, len(accounts), first_deal, timeline.horizon)
    quarter_starts = timeline.quarter_starts()
    paths = simulate(
        rng_path,
        quality=deals.quality,
        entry=deals.entry,
        created=deals.created,
        dwell_scale=deals.dwell_scale,
        n_stages=k,
        quarter_starts=quarter_starts,
    )
    contacts = make_contacts(rng_cont, accounts.employees[deals.account], deals.dm_engaged)
    touches = combine(
        deal_touches(
            rng_touch,
            paths,
            quality=deals.quality,
            amount=deals.amount,
            contacts=contacts,
            n_stages=k,
            horizon=timeline.horizon,
            origin=timeline.origin,
            quarter_starts=quarter_starts,
        ),
        account_touches(
            rng_touch,
            created=deals.created,
            deal_account=deals.account,
            deal_source=deals.source,
            source_names=tuple(SOURCES),
            quality=deals.quality,
            account_created=account_created,
            contacts=contacts,
            horizon=timeline.horizon,
            origin=timeline.origin,
        ),
    )
    account_frame = frames.accounts_frame(accounts, account_created, timeline)
    numbers = frames.account_numbers(account_created)
    account_ids = frames.take_ids(account_frame["account_id"], numbers - 1)
    deal_frame = frames.deals_frame(deals, paths, account_ids, timeline)
    account_frame, deal_frame = with_names(account_frame, deal_frame)
    data = CRMData(
        deals=deal_frame,
        accounts=account_frame,
        stage_history=frames.stage_history_frame(paths, deal_frame["deal_id"], funnel, timeline),
        touchpoints=frames.touchpoints_frame(
            touches, deal_frame["deal_id"], account_ids, int(contacts.count.sum()), timeline
        ),
    )
    p_win = win_probability(deals.quality, deals.entry, k, days_in_stage=None, dwell_scale=None)
    truth = frames.truth_frame(deals, paths, deal_frame, p_win, funnel, timeline)
    if names:
        data, truth, recorded = transform_frames(
            names, data, truth, timeline=timeline, rng=rng_scen
        )
        notes = {name: {**notes, **recorded}[name] for name in names}
    if not messy:
        return SyntheticCRM(data=data, truth=truth, scenarios=notes)
    dirty, dirt = make_messy(rng_mess, data)
    return SyntheticCRM(data=dirty, truth=truth, dirt=dirt, scenarios=notes)
