"""The API's fast check of posted deals against the full one (``crm``'s coercion and
validator): a body it passes raises no finding the full way and gets the same tables."""

from __future__ import annotations

import copy
import random

import pandas as pd
import pytest

from crm.schemas import Funnel
from serving.api_models import ScoreRequest
from serving.api_validation import Invalid, check_history, check_many
from serving.quick_check import quick_many, rows_of
from serving.row_keys import row_keys

FUNNEL = Funnel(
    stages=("lead", "qualified", "proposal"),
    won_label="Closed Won",
    lost_label="Lost",
    exclude_attributes=("secret",),
)
AS_OF = pd.Timestamp("2026-06-30", tz="UTC")

BODY = {
    "deal": {
        "deal_id": "NEW1",
        "created_at": "2026-05-04T10:00:00Z",
        "account_id": "A1",
        "owner_id": "ann",
        "amount": 42000,
        "source": "inbound",
        "expected_close_date": "2026-08-01",
        "region": "EMEA",
        "score": 12,
    },
    "stage_history": [
        {"stage": "lead", "entered_at": "2026-05-04T10:00:00Z"},
        {"stage": "Qualified", "entered_at": "2026-05-20"},
    ],
    "touchpoints": [
        {
            "deal_id": "NEW1",
            "occurred_at": "2026-05-21T09:00:00Z",
            "channel": "meeting",
            "touchpoint_id": "T1",
            "direction": "inbound",
            "contact_role": "champion",
        },
        {"account_id": "A1", "occurred_at": "2026-05-22T09:00:00+02:00", "channel": "email"},
        {
            "deal_id": "NEW1",
            "occurred_at": "2026-05-23T09:00:00.123456789Z",
            "channel": "call",
            "mood": "good",
        },
    ],
}

#: Values a mutation puts in a field: plain, padded, blank, future, closed, unknown, ...
TEXTS = [
    "x",
    "Lead",
    "LEAD",
    "won",
    "Closed Won",
    "lost",
    "negotiation",
    "",
    " x",
    "x\u00a0",
    "email",
    "Email",
    "carrier pigeon",
    "outbound",
    "Outbound",
    "A1",
    "A2",
    "NEW1",
    "OTHER",
]
TIMES = [
    "2026-05-01T00:00:00Z",
    "2026-05-04T09:00:00Z",
    "2026-05-04T10:00:00Z",
    "2026-06-30",
    "2026-06-30T00:00:01Z",
    "2026-07-15",
    "2026-13-01",
    "31/12/2025",
    "2026-05-10 08:00",
    "2500-01-01",
    "1999-01-01T00:00:00+05:00",
    "2026-05-20T00:00:00.1234567Z",
    "yesterday",
]
NUMBERS = [0, 5, 5.5, -1, 1e12, 1.5e12, 2**60]
ATTRIBUTES = ["EMEA", "12", "1.5", "1e3", "inf", "nan", 3, 2.5, None, True, "", " x", "x1"]
FIELDS = {
    "deal": [
        "deal_id",
        "created_at",
        "account_id",
        "owner_id",
        "amount",
        "source",
        "product",
        "expected_close_date",
        "closed_at",
        "outcome",
        "region",
        "score",
        "secret",
    ],
    "stage_history": ["deal_id", "stage", "entered_at", "note"],
    "touchpoints": [
        "touchpoint_id",
        "deal_id",
        "account_id",
        "occurred_at",
        "channel",
        "direction",
        "contact_id",
        "contact_role",
        "mood",
    ],
}
TIME_FIELDS = {"created_at", "expected_close_date", "closed_at", "entered_at", "occurred_at"}


def _value(rng: random.Random, field: str):
    if field in TIME_FIELDS:
        return rng.choice([*TIMES, None])
    if field == "amount":
        return rng.choice([*NUMBERS, None])
    if field in ("region", "score", "secret", "note", "mood"):
        return rng.choice(ATTRIBUTES)
    return rng.choice([*TEXTS, None])


def mutated(rng: random.Random, n: int) -> dict:
    """BODY with ``n`` random changes: a field set to a pool value, a row copied or dropped."""
    body = copy.deepcopy(BODY)
    for _ in range(n):
        part = rng.choice(list(FIELDS))
        if part == "deal":
            body["deal"][rng.choice(FIELDS["deal"])] = _value(rng, rng.choice(FIELDS["deal"]))
            continue
        rows = body[part]
        action = rng.random()
        if action < 0.15 and rows:
            rows.append(copy.deepcopy(rng.choice(rows)))
        elif action < 0.25 and rows:
            rows.pop(rng.randrange(len(rows)))
        elif rows:
            field = rng.choice(FIELDS[part])
            rng.choice(rows)[field] = _value(rng, field)
    return body


def _parsed(raw: dict) -> ScoreRequest | None:
    try:
        return ScoreRequest.model_validate(raw)
    except ValueError:  # pydantic refuses it before any contract check
        return None


def _full(body: ScoreRequest):
    try:
        return check_history(body, funnel=FUNNEL, as_of=AS_OF)
    except Invalid as exc:
        return exc


def _assert_same_tables(quick, full) -> None:
    for table in ("deals", "accounts", "stage_history", "touchpoints"):
        a, b = quick.table(table), full.table(table)
        assert (a is None) == (b is None), table
        if a is not None:
            pd.testing.assert_frame_equal(a, b, check_categorical=True)


def test_the_plain_body_passes_and_gets_the_full_check_s_tables():
    body = ScoreRequest.model_validate(BODY)
    (quick,) = quick_many([body], funnel=FUNNEL, as_of=AS_OF)
    data, warnings = check_history(body, funnel=FUNNEL, as_of=AS_OF)
    assert quick is not None and warnings == []
    _assert_same_tables(quick, data)
    assert "secret" not in quick.deals and quick.deals["score"].dtype == "float64"


@pytest.mark.parametrize("seed", range(4))
def test_a_body_it_passes_raises_nothing_the_full_way_and_is_typed_alike(seed):
    rng = random.Random(seed)
    bodies = [b for b in (_parsed(mutated(rng, rng.randint(1, 3))) for _ in range(120)) if b]
    quick = quick_many(bodies, funnel=FUNNEL, as_of=AS_OF)
    passed = 0
    for body, fast in zip(bodies, quick, strict=True):
        if fast is None:
            continue
        passed += 1
        full = _full(body)
        assert not isinstance(full, Invalid), (body, full.problems)
        data, warnings = full
        assert warnings == [], (body, warnings)
        _assert_same_tables(quick_many([body], funnel=FUNNEL, as_of=AS_OF)[0], data)
        for table in ("deals", "stage_history", "touchpoints"):  # typed in a batch: values
            a, b = fast.table(table), data.table(table)
            if a is not None:
                pd.testing.assert_frame_equal(a, b, check_categorical=False)
                assert fast.keys[table].tolist() == row_keys(b).tolist()  # from posted values
    assert 10 < passed < len(bodies)  # both ways are exercised


def test_check_many_gives_each_body_what_it_gets_alone():
    rng = random.Random(7)
    bodies = [b for b in (_parsed(mutated(rng, rng.randint(0, 2))) for _ in range(60)) if b]
    together = check_many(bodies, funnel=FUNNEL, as_of=AS_OF)
    for body, got in zip(bodies, together, strict=True):
        alone = _full(body)
        assert isinstance(got, Invalid) == isinstance(alone, Invalid)
        if isinstance(alone, Invalid):
            assert [p.model_dump() for p in got.problems] == [
                p.model_dump() for p in alone.problems
            ]
            continue
        assert got[1] == alone[1]
        for table in ("deals", "stage_history", "touchpoints"):
            a, b = got[0].table(table), alone[0].table(table)
            assert (a is None) == (b is None)
            if a is not None:
                pd.testing.assert_frame_equal(a, b, check_categorical=False)


def test_rows_of_gives_what_model_dump_gives():
    body = ScoreRequest.model_validate(BODY)
    rows = rows_of(body)
    assert rows["deals"] == [body.deal.model_dump()]
    assert rows["touchpoints"] == [r.model_dump() for r in body.touchpoints]
    assert [list(r) for r in rows["stage_history"]] == [
        list(r.model_dump()) for r in body.stage_history
    ]
    assert {r["deal_id"] for r in rows["stage_history"]} == {"NEW1"}
