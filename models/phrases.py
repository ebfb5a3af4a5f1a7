"""Phrase templates of the driver phrases, one rule per feature family of the catalogue
(``docs/features.md``): "no meeting in 41 days", "rep wins 31 % of closed deals",
"source: referral". A rule returns None when its phrase would carry no direction ("about
the usual age for this stage"); :func:`models.explain.phrase` applies them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pandas as pd

from models.phrase_format import (
    Gap,
    Value,
    _amount,
    _channel,
    _count,
    _int,
    _n_stages,
    _pct,
    _plural,
    _since,
    _span,
    _stage,
    _text,
    _words,
)

Rule = Callable[[re.Match, Value, pd.Series], str | None]
Missing = Callable[[re.Match, pd.Series], str | None]

NEUTRAL_DAYS = 7  # |days older than typical| below this: "about usual", not listed
NEUTRAL_TREND = 0.3  # |log2 activity ratio| below this: steady activity, not listed


def _older(m: re.Match, v: float, row: pd.Series) -> str | None:
    """The feature is the deal's age minus the median age at which deals *entered* its
    current stage, not its time in the stage: the phrase says exactly that."""
    stage = _stage(row)
    if abs(v) < NEUTRAL_DAYS:
        return None
    span = _span(v) if abs(v) >= 60 or abs(v) < 14 else _plural(abs(v) / 7, "week")
    if v > 0:
        return f"deal {span} older than deals usually are on entering {stage}"
    return f"deal {span} younger than deals usually are on entering {stage}"


def _trend(m: re.Match, v: float, row: pd.Series) -> str | None:
    if v >= NEUTRAL_TREND:
        return "activity picking up"
    if v <= -NEUTRAL_TREND:
        return "activity slowing down"
    return None


def _position(m: re.Match, v: float, row: pd.Series) -> str:
    n, place = _n_stages(row), round(v) + 1
    where = f"{place} of {n}" if 0 < place <= n else f"position {place}"
    stage = row.get("stage__current")
    if isinstance(stage, str) and stage:
        return f"at stage {stage} ({where})"
    return f"at funnel stage {where}"


def _source_rate(m: re.Match, v: float, row: pd.Series) -> str:
    source = row.get("deal__source")
    who = f"source {source}" if isinstance(source, str) and source else "this lead source"
    return f"{who} wins {_pct(v)}"


def _past_close(m: re.Match, v: float, row: pd.Series) -> str:
    if v > 0:
        return f"{_span(v)} past the expected close date"
    if round(v) == 0:
        return "expected to close today"
    return f"expected close in {_span(-v)}"


def _attribute(m: re.Match, v: Value, row: pd.Series) -> str:
    name = m.group(1)
    if name == "competitor_present" and not isinstance(v, str):
        return "competitor involved" if v >= 1 else "no competitor"
    return f"{_words(name)}: {_text(v)}"


# (pattern, phrase of a value, phrase of a missing value); first full match wins.
RULES: tuple[tuple[str, Rule, Missing | str | None], ...] = (
    # deal
    (r"deal__age_days", lambda m, v, r: f"deal open for {_span(v)}", None),
    (r"deal__log_amount", lambda m, v, r: f"deal size {_amount(v)}", "no deal amount"),
    (r"deal__source", lambda m, v, r: f"source: {_text(v)}", "no lead source"),
    (r"deal__product", lambda m, v, r: f"product: {_text(v)}", "no product"),
    (r"deal__owner_id", lambda m, v, r: f"rep: {_text(v)}", "no rep"),
    (r"deal__source_win_rate", _source_rate, None),
    (r"\w+?__attr_(\w+)", _attribute, lambda m, r: f"no {_words(m.group(1))}"),
    # stage
    (r"stage__current", lambda m, v, r: f"at stage {_text(v)}", Gap("stage unknown")),
    (r"stage__position", _position, Gap("stage unknown")),
    (r"stage__days_in_current", lambda m, v, r: f"{_span(v)} in {_stage(r)}", None),
    (
        r"stage__n_changes",
        lambda m, v, r: "no stage move yet" if round(v) == 0 else _plural(v, "stage move"),
        None,
    ),
    (
        r"stage__n_regressions",
        lambda m, v, r: (
            "never moved back a stage"
            if round(v) == 0
            else "moved back a stage before"
            if round(v) == 1
            else f"moved back a stage {_int(v)} times"
        ),
        None,
    ),
    (
        r"stage__n_skipped",
        lambda m, v, r: "no stage skipped" if round(v) == 0 else f"skipped {_plural(v, 'stage')}",
        None,
    ),
    (
        r"stage__days_spent_(\w+)",
        lambda m, v, r: (
            f"no earlier stay in {_words(m.group(1))}"
            if round(v) == 0
            else f"spent {_span(v)} in {_words(m.group(1))} before"
        ),
        None,
    ),
    (r"stage__days_older_than_typical", _older, None),
    (r"stage__win_rate", lambda m, v, r: f"deals in {_stage(r)} win {_pct(v)}", None),
    # touchpoints
    (
        r"tp__channel_(\w+)_(\d+)d",
        lambda m, v, r: _count(v, *_channel(m.group(1)), f"in the last {m.group(2)} days"),
        None,
    ),
    (
        r"tp__touches_(\d+)d",
        lambda m, v, r: _count(v, "touch", "touches", f"in the last {m.group(1)} days"),
        None,
    ),
    (
        r"tp__touches_total",
        lambda m, v, r: (
            "no touch yet" if round(v) == 0 else f"{_plural(v, 'touch', 'touches')} so far"
        ),
        None,
    ),
    (r"tp__days_since_last", lambda m, v, r: _since(v, "touch"), "no touch yet"),
    (
        r"tp__days_since_last_(\w+)",
        lambda m, v, r: _since(v, _channel(m.group(1))[0]),
        lambda m, r: f"no {_channel(m.group(1))[0]} yet",
    ),
    (
        r"tp__inbound_share",
        lambda m, v, r: f"buyer started {_pct(v)} of touches",
        "no touch with a known direction",
    ),
    (
        r"tp__distinct_contacts",
        lambda m, v, r: (
            "no buyer contact touched yet"
            if round(v) == 0
            else f"{_plural(v, 'buyer contact')} involved"
        ),
        None,
    ),
    (
        r"tp__distinct_roles",
        lambda m, v, r: (
            "no buyer role touched yet" if round(v) == 0 else f"{_plural(v, 'buyer role')} involved"
        ),
        None,
    ),
    (
        r"tp__decision_maker_engaged",
        lambda m, v, r: "decision maker engaged" if v >= 1 else "no decision maker engaged yet",
        None,
    ),
    (r"tp__trend", _trend, None),
    (
        r"tp__account_touches_(\d+)d",
        lambda m, v, r: _count(
            v, "account touch", "account touches", f"in the last {m.group(1)} days"
        ),
        None,
    ),
    (
        r"tp__account_days_since_last",
        lambda m, v, r: _since(v, "account touch"),
        "no account touch yet",
    ),
    # account
    (r"account__industry", lambda m, v, r: f"industry: {_text(v)}", Gap("industry unknown")),
    (r"account__country", lambda m, v, r: f"country: {_text(v)}", Gap("country unknown")),
    (
        r"account__log_employees",
        lambda m, v, r: _plural(math.expm1(v), "employee"),
        Gap("head count unknown"),
    ),
    (
        r"account__log_annual_revenue",
        lambda m, v, r: f"account revenue {_amount(v)}",
        Gap("account revenue unknown"),
    ),
    (r"account__age_days", lambda m, v, r: f"account known for {_span(v)}", None),
    (
        r"account__other_open_deals",
        lambda m, v, r: (
            "no other open deal with the account"
            if round(v) == 0
            else f"account has {_plural(v, 'other open deal')}"
        ),
        "no account on the deal",
    ),
    (
        r"account__n_won",
        lambda m, v, r: (
            "no deal won with the account yet"
            if round(v) == 0
            else f"{_plural(v, 'deal')} won with the account"
        ),
        "no account on the deal",
    ),
    (
        r"account__n_lost",
        lambda m, v, r: (
            "no deal lost with the account yet"
            if round(v) == 0
            else f"{_plural(v, 'deal')} lost with the account"
        ),
        "no account on the deal",
    ),
    (
        r"account__win_rate",
        lambda m, v, r: f"account wins {_pct(v)} of closed deals",
        "no account on the deal",
    ),
    # owner
    (
        r"owner__win_rate",
        lambda m, v, r: f"rep wins {_pct(v)} of closed deals",
        "no rep on the deal",
    ),
    (
        r"owner__n_closed",
        lambda m, v, r: (
            "rep has closed no deal yet"
            if round(v) == 0
            else f"rep has closed {_plural(v, 'deal')}"
        ),
        "no rep on the deal",
    ),
    (
        r"owner__open_deals",
        lambda m, v, r: f"rep has {_plural(v, 'open deal')}",
        "no rep on the deal",
    ),
    # calendar
    # the calendar is true for every deal and nothing a rep can act on: never a reason
    (r"cal__days_to_quarter_end", lambda m, v, r: None, lambda m, r: None),
    (r"cal__days_past_expected_close", _past_close, "no expected close date"),
    # any other natural-log column: the value it stands for
    (r"\w+?__log_(\w+)", lambda m, v, r: f"{_words(m.group(1))} {_amount(v)}", None),
)


CATEGORICAL = {  # rules that take the value as it is (text or number)
    r"deal__source",
    r"deal__product",
    r"deal__owner_id",
    r"\w+?__attr_(\w+)",
    r"stage__current",
    r"account__industry",
    r"account__country",
}
