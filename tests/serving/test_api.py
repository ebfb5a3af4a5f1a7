"""The scoring API in-process, around a fake scorer built from a small literal frame."""

from __future__ import annotations

import copy
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pandas as pd
import pytest
import uvicorn
from fastapi.testclient import TestClient

from crm.data import CRMData
from crm.schemas import Funnel
from pipelines.serve_http import swagger_ui_files
from serving.api import create_app
from serving.api_deal import DealExplained
from serving.api_docs import SWAGGER_FILES, asset_url
from serving.explain_deal import DealExplanation, DealNotInCRMError, UnknownDealError

FUNNEL = Funnel(stages=("lead", "qualified", "proposal"), won_label="Closed Won", lost_label="Lost")
TOKEN = "s3cret-token-for-tests-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AS_OF = pd.Timestamp("2026-06-30", tz="UTC")
DOCS_ASSETS = swagger_ui_files()

RANKED = pd.DataFrame(
    {
        "rank": [1, 2, 3, 4],
        "deal_id": ["D1", "D2", "D3", "D4"],
        "account_id": ["A1", "A2", "A1", None],
        "owner_id": ["ann", "bob", "ann", "ann"],
        "stage": ["proposal", "qualified", "lead", "qualified"],
        "days_in_stage": [3, 10, 40, 1],
        "amount": [50000.0, 20000.0, 30000.0, None],
        "p_win": [0.6, 0.5, 0.1, 0.4],
        "expected_value": [30000.0, 10000.0, 3000.0, None],
        "next_stage": ["won", "proposal", "qualified", "proposal"],
        "p_next_stage": [0.5, 0.4, 0.3, 0.35],
        "reasons_up": ["recent meeting", "", "", ""],
        "reasons_down": ["", "", "no touches in 30 days", ""],
        "as_of": AS_OF,
        "model_version": "3",
        "data_fingerprint": "abc123",
    }
)


class FakeScorer:
    """Ranks the literal frame; scores a posted deal as one row, remembering its input."""

    as_of = AS_OF
    model_versions = {"close": "3", "next_stage": "2"}

    def __init__(self) -> None:
        self.seen: list[CRMData] = []
        self.batches: list[int] = []

    def ranked(self) -> pd.DataFrame:
        return RANKED

    def score_deals(self, histories: list[CRMData]) -> list:
        self.batches.append(len(histories))
        time.sleep(0.05)  # long enough for concurrent requests to queue up
        return [self._one(h) for h in histories]

    def _one(self, history: CRMData):
        self.seen.append(history)
        deal = history.deals.iloc[0]
        if deal["deal_id"] == "NOT-OPEN":
            return ValueError(f"deal NOT-OPEN is not open at {AS_OF}")  # pandas' format
        row = RANKED.iloc[[1]].assign(deal_id=deal["deal_id"], amount=deal["amount"])
        return row.assign(expected_value=row["p_win"] * row["amount"]), []

    def explain(self, deal_id: str, *, step_days: int, points: int) -> DealExplanation:
        self.explained = (deal_id, step_days, points)
        if deal_id == "CLOSED":
            raise UnknownDealError(f"deal 'CLOSED' closed at {AS_OF - pd.Timedelta(days=9)} "
                                   f"(won), before {AS_OF}: it can be explained only at a moment "
                                   "while it was open")  # fmt: skip
        if deal_id not in set(RANKED["deal_id"]):
            raise DealNotInCRMError(f"deal {deal_id!r} is not in the CRM's deals table")
        return EXPLAINED


EXPLAINED = DealExplanation(
    deal_id="D1",
    as_of=AS_OF,
    stage="proposal",
    p_win=0.6,
    p_win_stage_table=0.35,
    next_stage=pd.Series({"won": 0.5, "proposal": 0.3, "lost": 0.2}),
    drivers=pd.DataFrame(
        {
            "direction": ["up", "down", "up"],
            "rank": [1, 1, 2],
            "feature": ["touch__meeting_count_30d", "firmo__industry", "deal__amount"],
            "value": [3.0, None, 50000.0],
            "contribution": [0.4, -0.1, 0.05],
            "phrase": ["3 meetings in the last 30 days", "industry unknown", "amount 50,000"],
        }
    ),  # fmt: skip
    history=pd.DataFrame(
        {
            "as_of": pd.to_datetime(["2026-06-23", "2026-06-30"]).to_numpy(),
            "stage": ["qualified", "proposal"],
            "p_win": [0.4, 0.6],
            "p_win_stage_table": [0.2, 0.35],
            "next_stage": ["proposal", "won"],
            "p_next_stage": [0.45, 0.5],
        }
    ),  # fmt: skip
    names={"deal": "Big renewal", "owner": "Ann Åberg"},
)


BODY = {
    "deal": {
        "deal_id": "NEW1",
        "created_at": "2026-05-04T10:00:00Z",
        "account_id": "A1",
        "owner_id": "ann",
        "amount": 42000,
        "source": "inbound",
        "region": "EMEA",
    },
    "stage_history": [
        {"stage": "lead", "entered_at": "2026-05-04T10:00:00Z"},
        {"stage": "Qualified", "entered_at": "2026-05-20"},
    ],
    "touchpoints": [
        {"deal_id": "NEW1", "occurred_at": "2026-05-21T09:00:00Z", "channel": "meeting"},
        {"account_id": "A1", "occurred_at": "2026-05-22T09:00:00Z", "channel": "email"},
    ],
}


@pytest.fixture
def scorer():
    return FakeScorer()


def _client(
    scorer, *, token: str | None = TOKEN, max_body_bytes=20_000, max_rows=50, read_timeout_s=5.0
):
    app = create_app(
        scorer=scorer, token=token, max_body_bytes=max_body_bytes, max_rows=max_rows,
        funnel=FUNNEL, read_timeout_s=read_timeout_s, score_threads=1, batch_max=8,
        explain_step_days=7, explain_points=12, docs_assets=DOCS_ASSETS,
    )  # fmt: skip
    return TestClient(app)


@pytest.fixture
def client(scorer):
    return _client(scorer)


def _body(**changes) -> dict:
    """BODY with ``changes``: ``{"deal.amount": -1, "touchpoints.1.deal_id": None}``."""
    body = copy.deepcopy(BODY)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        target = body
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(leaf) if leaf.isdigit() else leaf] = value
    return body


def test_health_needs_no_token_and_reports_models_and_data(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "as_of": "2026-06-30T00:00:00Z",
        "model_versions": {"close": "3", "next_stage": "2"},
        "n_open_deals": 4,
    }


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
     {"Authorization": TOKEN}],
)  # fmt: skip
def test_missing_or_wrong_token_is_401(client, headers):
    listing = client.get("/deals", headers=headers)
    for response in (listing, client.post("/score", json=BODY, headers=headers)):
        assert response.status_code == 401
        assert response.json()["error"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"


def test_right_token_lists_every_deal_in_rank_order(client):
    response = client.get("/deals", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["as_of"] == "2026-06-30T00:00:00Z"
    assert (body["total"], body["count"]) == (4, 4)
    assert [d["deal_id"] for d in body["deals"]] == ["D1", "D2", "D3", "D4"]
    assert body["deals"][3]["amount"] is None and body["deals"][0]["p_win"] == 0.6


def test_no_token_configured_means_no_auth_but_an_empty_token_is_refused(scorer):
    assert _client(scorer, token=None).get("/deals").status_code == 200
    with pytest.raises(ValueError, match="empty token"):
        _client(scorer, token=" ")


@pytest.mark.parametrize(
    ("query", "expected", "total"),
    [
        ("owner=ann", ["D1", "D3", "D4"], 3),
        ("stage=qualified", ["D2", "D4"], 2),
        ("owner=ann&stage=qualified", ["D4"], 1),
        ("owner=ann&limit=2", ["D1", "D3"], 3),
        ("owner=nobody", [], 0),
    ],
)
def test_filters_and_limit(client, query, expected, total):
    body = client.get(f"/deals?{query}", headers=AUTH).json()
    assert [d["deal_id"] for d in body["deals"]] == expected
    assert body["total"] == total and body["count"] == len(expected)


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=ten", "stage=won"])
def test_bad_query_is_422_naming_the_parameter(client, query):
    response = client.get(f"/deals?{query}", headers=AUTH)
    assert response.status_code == 422
    problem = response.json()["problems"][0]
    assert (problem["table"], problem["field"]) == ("query", query.split("=")[0])


def test_score_valid_body_returns_one_row_and_passes_typed_tables(client, scorer):
    response = client.post("/score", json=BODY, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 1 and body["deals"][0]["deal_id"] == "NEW1"
    assert body["deals"][0]["expected_value"] == pytest.approx(0.5 * 42000)
    history = scorer.seen[-1]
    assert history.deals["created_at"].dtype == "datetime64[us, UTC]"
    assert history.deals["amount"].tolist() == [42000.0]
    assert history.stage_history["stage"].tolist() == ["lead", "qualified"]
    assert history.stage_history["deal_id"].tolist() == ["NEW1", "NEW1"]
    assert history.touchpoints["deal_id"].isna().tolist() == [False, True]
    assert "region" in history.deals  # a custom attribute is kept


def test_score_returns_warnings_for_rows_after_as_of(client):
    body = _body(**{"touchpoints.0.occurred_at": "2026-07-15T00:00:00Z"})
    response = client.post("/score", json=body, headers=AUTH)
    assert response.status_code == 200
    warning = response.json()["warnings"][0]
    assert (warning["table"], warning["field"], warning["row"], warning["rule"]) == (
        "touchpoints", "occurred_at", 1, "future_timestamp",
    )  # fmt: skip
    assert "2026-06-30T00:00:00Z" in warning["message"] and "+00:00" not in warning["message"]


@pytest.mark.parametrize(
    ("changes", "table", "field", "row"),
    [
        ({"deal.created_at": "yesterday"}, "deal", "created_at", None),
        ({"stage_history.1.entered_at": "31/12/2025"}, "stage_history", "entered_at", 2),
        ({"deal.amount": -5}, "deal", "amount", None),
        ({"deal.amount": "lots"}, "deal", "amount", None),
        ({"stage_history.0.stage": "discovery"}, "stage_history", "stage", 1),
        ({"deal.closed_at": "2026-06-01T00:00:00Z"}, "deal", "outcome", None),
        ({"touchpoints.1.account_id": None}, "touchpoints", "deal_id", 2),
        ({"touchpoints.0.channel": None}, "touchpoints", "channel", 1),
        ({"deal.deal_id": None}, "deal", "deal_id", None),
        ({"deal.nested": {"a": 1}}, "deal", "nested", None),
        ({"touchpoints.0.deal_id": "OTHER"}, "touchpoints", "deal_id", 1),
        ({"stage_history.1.deal_id": "OTHER"}, "stage_history", "deal_id", 2),
    ],
    ids=[
        "bad-timestamp", "day-first-date", "negative-amount", "amount-not-number",
        "unknown-stage", "closed-without-outcome", "touchpoint-without-target",
        "touchpoint-without-channel", "deal-without-id", "nested-attribute",
        "touchpoint-of-other-deal", "stage-row-of-other-deal",
    ],
)  # fmt: skip
def test_invalid_body_is_422_naming_table_field_and_row(client, changes, table, field, row):
    response = client.post("/score", json=_body(**changes), headers=AUTH)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["error"] == "invalid_input"
    located = [(p["table"], p["field"], p["row"]) for p in body["problems"]]
    assert (table, field, row) in located, body


def test_every_contract_problem_is_reported_at_once(client):
    body = _body(**{"deal.created_at": "2026-13-04", "deal.amount": -3,
                    "touchpoints.1.account_id": None})  # fmt: skip
    response = client.post("/score", json=body, headers=AUTH)
    assert response.status_code == 422
    rules = {(p["table"], p["field"], p["rule"]) for p in response.json()["problems"]}
    assert rules >= {
        ("deal", "created_at", "unparseable_value"),
        ("deal", "amount", "negative_value"),
        ("touchpoints", "deal_id", "touchpoint_without_target"),
    }, rules


def test_closed_deal_and_unscorable_deal_are_422(client):
    closed = _body(**{"deal.closed_at": "2026-06-01T00:00:00Z", "deal.outcome": "Closed Won"})
    response = client.post("/score", json=closed, headers=AUTH)
    assert response.status_code == 422 and response.json()["problems"][0]["rule"] == "deal_closed"
    gone = client.post("/score", json=_body(**{"deal.deal_id": "NOT-OPEN"}) | {"touchpoints": []},
                       headers=AUTH)  # fmt: skip
    assert gone.status_code == 422 and "not open" in gone.json()["problems"][0]["message"]


def test_malformed_json_is_422(client):
    headers = AUTH | {"Content-Type": "application/json"}
    response = client.post("/score", content=b"{not json", headers=headers)
    assert response.status_code == 422


def test_oversize_body_is_413_by_header_and_by_bytes_received(scorer):
    client = _client(scorer, max_body_bytes=2_000)
    big = _body(**{"deal.notes": "x" * 3_000})
    assert client.post("/score", json=big, headers=AUTH).status_code == 413
    chunks = iter([b'{"deal": {"notes": "', b"x" * 3_000, b'"}}'])  # no Content-Length
    headers = AUTH | {"Content-Type": "application/json"}
    response = client.post("/score", content=chunks, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"


def test_too_many_rows_is_413(scorer):
    client = _client(scorer, max_rows=4)
    assert client.post("/score", json=BODY, headers=AUTH).status_code == 413  # 1 + 2 + 2 rows


def test_openapi_describes_the_three_paths_with_an_example(client):
    spec = client.get("/openapi.json").json()
    assert {"/health", "/deals", "/score"} <= set(spec["paths"])
    body = spec["components"]["schemas"]["ScoreRequest"]
    assert body["examples"][0]["deal"]["deal_id"] == "D-NEW-1"
    deal = spec["components"]["schemas"]["DealIn"]
    assert set(deal["required"]) == {"deal_id", "created_at"}
    assert deal["properties"]["amount"]["minimum"] == 0
    assert "HTTPBearer" in spec["components"]["securitySchemes"]


def test_timestamps_are_iso_utc_with_z_everywhere(client):
    body = client.get("/deals", headers=AUTH).json()
    assert body["as_of"] == "2026-06-30T00:00:00Z"
    assert {d["as_of"] for d in body["deals"]} == {"2026-06-30T00:00:00Z"}
    scored = client.post("/score", json=BODY, headers=AUTH).json()
    assert scored["as_of"] == scored["deals"][0]["as_of"] == "2026-06-30T00:00:00Z"


@pytest.mark.parametrize(
    ("raw", "field"),
    [('"deal_id": ""', "deal_id"), ('"deal_id": "   "', "deal_id"),
     ('"amount": NaN', "amount"), ('"amount": Infinity', "amount"),
     ('"amount": true', "amount"), ('"region": NaN', "region")],
)  # fmt: skip
def test_blank_ids_nan_and_boolean_amounts_are_refused(client, raw, field):
    deal = '{"deal_id": "X1", "created_at": "2026-05-04T10:00:00Z", ' + raw + "}"
    deal = deal.replace('"deal_id": "X1", ', "") if raw.startswith('"deal_id"') else deal
    headers = AUTH | {"Content-Type": "application/json"}
    response = client.post("/score", content=f'{{"deal": {deal}}}'.encode(), headers=headers)
    assert response.status_code == 422, response.text
    located = [(p["table"], p["field"]) for p in response.json()["problems"]]
    assert ("deal", field) in located


def test_blank_ids_in_rows_are_refused_with_their_row(client):
    body = _body(**{"touchpoints.1.account_id": " "})
    response = client.post("/score", json=body, headers=AUTH)
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert ("touchpoints", "account_id", 2) in [
        (p["table"], p["field"], p["row"]) for p in problems
    ]


def test_docs_is_swagger_ui_served_by_the_app_with_no_other_host(client):
    response = client.get("/docs")  # no token
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "SwaggerUIBundle(" in page and "'/openapi.json'" in page
    assert not re.search(r"(https?:)?//[a-z0-9]", page, re.I), "an external URL in /docs"
    assert re.search(r'"validatorUrl":\s*null', page)  # no badge fetched from swagger.io
    for name, kind in SWAGGER_FILES.items():
        assert asset_url(name) in page
        asset = client.get(asset_url(name))  # no token either
        assert asset.status_code == 200 and asset.headers["content-type"] == kind
        assert asset.content == DOCS_ASSETS[name] and len(asset.content) > 500
    assert "javascript" in SWAGGER_FILES["swagger-ui-bundle.js"]
    assert "text/css" in SWAGGER_FILES["swagger-ui.css"]
    assert client.get("/docs/assets/index.html").status_code == 401  # only those files
    assert client.get("/redoc").status_code in (401, 404)


def test_swagger_authorize_uses_the_bearer_scheme_on_every_guarded_route(client):
    spec = client.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["HTTPBearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    guarded = [(p, m) for p, ops in spec["paths"].items() for m, op in ops.items()
               if op.get("security") == [{"HTTPBearer": []}]]  # fmt: skip
    assert set(guarded) == {("/deals", "get"), ("/deals/{deal_id}", "get"), ("/score", "post")}


def test_a_missing_swagger_file_is_refused_at_creation(scorer):
    with pytest.raises(ValueError, match="swagger-ui.css"):
        create_app(
            scorer=scorer, token=TOKEN, max_body_bytes=1000, max_rows=5, funnel=FUNNEL,
            read_timeout_s=1, score_threads=1, batch_max=1, explain_step_days=7,
            explain_points=3, docs_assets={"swagger-ui-bundle.js": b"x"},
        )  # fmt: skip


# --------------------------------------------------------------------------- one deal


def test_one_deal_explained_with_every_driver_history_and_baseline(client, scorer):
    response = client.get("/deals/D1", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert scorer.explained == ("D1", 7, 12)  # the params given to create_app
    assert (body["deal_id"], body["stage"], body["p_win"], body["p_win_stage_table"]) == (
        "D1", "proposal", 0.6, 0.35,
    )  # fmt: skip
    assert (body["deal_name"], body["owner_name"], body["account_name"]) == (
        "Big renewal", "Ann Åberg", None,
    )  # fmt: skip
    assert body["next_stage"][0] == {"state": "won", "probability": 0.5}
    assert [d["phrase"] for d in body["drivers_up"]] == [
        "3 meetings in the last 30 days", "amount 50,000",
    ]  # fmt: skip
    assert body["drivers_up"][0]["value"] == 3.0 and body["drivers_down"][0]["value"] is None
    assert [h["as_of"] for h in body["history"]] == ["2026-06-23T00:00:00Z", "2026-06-30T00:00:00Z"]
    assert body["history"][-1]["p_win"] == body["p_win"]
    assert body["model_versions"] == {"close": "3", "next_stage": "2"}


def test_one_deal_needs_the_token_and_names_an_unknown_or_closed_id(client):
    assert client.get("/deals/D1").status_code == 401
    unknown = client.get("/deals/NOPE-7", headers=AUTH)
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found" and "'NOPE-7'" in unknown.json()["message"]
    closed = client.get("/deals/CLOSED", headers=AUTH)
    assert closed.status_code == 409 and closed.json()["error"] == "deal_not_open"
    assert (
        "closed at 2026-06-21T00:00:00Z (won), before 2026-06-30T00:00:00Z"
        in (closed.json()["message"])
    )


def test_openapi_types_the_deal_route_with_an_example(client):
    spec = client.get("/openapi.json").json()
    op = spec["paths"]["/deals/{deal_id}"]["get"]
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/DealExplained"}
    assert {"404", "409", "401"} <= set(op["responses"])
    model = spec["components"]["schemas"]["DealExplained"]
    example = model["examples"][0]
    assert set(example) == set(model["properties"])
    DealExplained.model_validate(example)
    assert example["drivers_up"][0]["phrase"] and example["history"][-1]["as_of"].endswith("Z")


# --------------------------------------------------------------------------- one time format

#: A date with a time of day, in any format; a bare date inside a sentence is a day.
MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?(Z|[+-]\d{2}:?\d{2})?")
ISO_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def timestamps_in(value, where="") -> list[tuple[str, str]]:
    """Every timestamp-like string in a JSON value: ``(where, text)`` for each moment
    inside a string, and each string that is a date alone."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in timestamps_in(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in timestamps_in(v, f"{where}[{i}]")]
    if not isinstance(value, str):
        return []
    found = [(where, m.group(0)) for m in MOMENT.finditer(value)]
    return found + ([(where, value)] if DATE_ONLY.fullmatch(value.strip()) else [])


def assert_one_time_format(bodies: list) -> int:
    """Every timestamp in ``bodies`` is ISO 8601 UTC with a Z; how many were checked."""
    found = [t for body in bodies for t in timestamps_in(body)]
    wrong = [(where, text) for where, text in found if not ISO_Z.fullmatch(text)]
    assert not wrong, wrong
    return len(found)


def test_every_timestamp_of_every_response_is_iso_utc_with_z(scorer):
    client = _client(scorer, max_rows=4)
    future = _body(**{"touchpoints.0.occurred_at": "2026-07-15T02:00:00+02:00"})
    bodies = [
        client.get("/health").json(),
        client.get("/deals", headers=AUTH).json(),
        client.get("/deals/D1", headers=AUTH).json(),
        client.get("/deals/CLOSED", headers=AUTH).json(),
        client.get("/deals/NOPE", headers=AUTH).json(),
        client.post("/score", json=_body(**{"stage_history": []}), headers=AUTH).json(),
        _client(scorer).post("/score", json=future, headers=AUTH).json(),
        client.post("/score", json=_body(**{"deal.deal_id": "NOT-OPEN", "touchpoints": [],
                                            "stage_history": []}), headers=AUTH).json(),
        client.post("/score", json=_body(**{"deal.created_at": "2026-13-01"}), headers=AUTH).json(),
        client.post("/score", json=BODY, headers=AUTH).json(),  # 413: too many rows
        client.get("/deals", headers={"Authorization": "Bearer wrong"}).json(),
    ]  # fmt: skip
    assert assert_one_time_format(bodies) >= 15
    assert "2026-06-30T00:00:00Z" in str(bodies[7])  # the scorer's pandas text, rewritten


def test_the_time_check_catches_other_formats():
    for text in ("2026-06-30 00:00:00+00:00", "2026-06-30T00:00:00+00:00",
                 "2026-06-30T00:00:00.123Z", "at 2026-06-30 10:00", "2026-06-30"):  # fmt: skip
        with pytest.raises(AssertionError):
            assert_one_time_format([{"message": text}])
    assert assert_one_time_format([{"a": ["2026-06-30T00:00:00Z"], "b": "due 2026-09-30"}]) == 1


# --------------------------------------------------------------------------- a live server


@pytest.fixture
def live(scorer):
    """The app under uvicorn on a free loopback port (read timeout 0.5 s)."""
    app = create_app(
        scorer=scorer, token=TOKEN, max_body_bytes=20_000, max_rows=50, funnel=FUNNEL,
        read_timeout_s=0.5, score_threads=1, batch_max=8, explain_step_days=7,
        explain_points=12, docs_assets=DOCS_ASSETS,
    )  # fmt: skip
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(5)


def _raw(port: int, head: bytes, body: bytes = b"", wait: float = 5.0) -> tuple[bytes, float]:
    """Send ``head`` + ``body`` and never the rest; what comes back and after how long."""
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.settimeout(wait)
        started = time.monotonic()
        conn.sendall(head + body)
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except TimeoutError:
            pass
        return received, time.monotonic() - started


def _post_head(token: str | None, length: int = 5000) -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return (
        f"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{auth}"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_no_token_is_401_before_the_body_is_read(live):
    reply, seconds = _raw(live, _post_head(None), b'{"deal": {')
    assert reply.startswith(b"HTTP/1.1 401") and b"connection: close" in reply.lower()
    assert seconds < 0.4  # answered at once and closed, not after the read timeout


def test_a_body_that_never_finishes_is_408_after_the_read_timeout(live):
    reply, seconds = _raw(live, _post_head(TOKEN), b'{"deal": {')
    assert reply.startswith(b"HTTP/1.1 408"), reply
    assert b"not complete within 0.5 s" in reply and 0.4 < seconds < 3


def test_concurrent_posts_are_scored_in_batches_each_with_its_own_result(live, scorer):
    def post(i: int) -> dict:
        changes = {"deal.deal_id": f"C{i}", "touchpoints.0.deal_id": f"C{i}"}
        body = _body(**changes, **{"deal.account_id": f"A{i}", "touchpoints.1.account_id": f"A{i}"})
        with httpx.Client(base_url=f"http://127.0.0.1:{live}") as c:
            return c.post("/score", json=body, headers=AUTH, timeout=120).json()

    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(post, range(12)))
    assert [a["deals"][0]["deal_id"] for a in answers] == [f"C{i}" for i in range(12)]
    assert sum(scorer.batches) == 12 and max(scorer.batches) > 1


def test_bodies_arriving_together_are_scored_in_one_batch():
    """The first body waits a moment for those arriving with it: one batch, not a batch
    of one followed by another; each caller gets its own result."""
    import asyncio

    from serving.api_batches import Batches

    sizes = []

    def process(items):
        sizes.append(len(items))
        return [i * 10 for i in items]

    batches = Batches(process, max_batch=64, workers=1)

    async def main():
        async def post(i):
            await asyncio.sleep(0.001 * (i % 3))  # now, 1 ms or 2 ms later
            return await batches.submit(i)

        together = await asyncio.gather(*(post(i) for i in range(20)))
        alone = await batches.submit(99)  # nothing else arrives: scored after one short wait
        return together, alone

    together, alone = asyncio.run(main())
    assert together == [i * 10 for i in range(20)] and alone == 990
    assert sizes == [20, 1]


def test_clients_answered_together_are_not_split_into_turns():
    """Closed-loop clients: those answered by one batch post again a moment later, while
    others wait in the queue. The next batch waits for them (bounded), so two groups do
    not take turns, each waiting for the other's batch."""
    import asyncio
    import time

    from serving.api_batches import Batches

    sizes = []

    def process(items):
        sizes.append(len(items))
        time.sleep(0.05)  # a batch's fixed cost
        return list(items)

    batches = Batches(process, max_batch=64, workers=1)

    async def client(i, start):
        await asyncio.sleep(start)
        for k in range(4):
            assert await batches.submit((i, k)) == (i, k)
            await asyncio.sleep(0.004 * (i % 5))  # the client's own time, 0-16 ms

    async def main():
        await asyncio.gather(*(client(i, 0.0 if i < 15 else 0.02) for i in range(20)))

    asyncio.run(main())
    assert sum(sizes) == 80
    # the 5 late ones join the 15 answered first: 20 together, not small batches in turn
    # (gathering only while the queue grows gave [15, 20, 4, 20, 1, 16, 1, 3])
    assert len(sizes) <= 6 and min(sizes[1:-1], default=20) >= 10, sizes
