"""``dealcast serve``: the real scorer behind the API on a quickly trained model, and the
auth policy that decides whether the server may start."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from crm.data import CRMData
from crm.synthetic import generate_crm
from crm.write import write_crm
from pipelines import serve as serve_module
from pipelines.cli import app as cli
from pipelines.explaining import explain_loaded
from pipelines.modelling import run_train
from pipelines.params import Params
from pipelines.serve import build_scorer, is_loopback, resolve_token, score_crm
from pipelines.serve_http import swagger_ui_files
from pipelines.steps import StepError, load_and_validate
from pipelines.tracking import Champion
from serving.api import create_app
from serving.api_deal import explanation_body
from serving.deal_groups import groups
from serving.single_deal import rank_among
from tests.serving.test_api import assert_one_time_format

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "integration-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _params() -> Params:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["train"]["close"] |= {"n_estimators": 30, "learning_rate": 0.1}
    raw["train"]["next_stage"] |= {"n_estimators": 20, "learning_rate": 0.15}
    return Params.model_validate(raw)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """600 generated deals, models trained at the data's end, the real scorer and the app."""
    folder = tmp_path_factory.mktemp("serve")
    p = _params()
    funnel = p.funnel.to_funnel()
    crm = generate_crm(
        n_deals=600, seed=11, start=pd.Timestamp("2024-06-01", tz="UTC"),
        as_of=pd.Timestamp("2026-06-30", tz="UTC"), funnel=funnel, messy=False,
    )  # fmt: skip
    write_crm(crm.data, folder / "raw", fmt="parquet")
    run = run_train(
        folder=folder / "raw", funnel=funnel, features=p.features, train=p.train, seed=1,
        artifacts=folder / "artifacts", as_of=None,
    )  # fmt: skip
    champion = Champion(
        close=run.models.close, next_stage=run.models.next_stage, close_version="close v1",
        next_stage_version="next v1", run_id="test", horizon_days=p.train.horizon_days,
    )  # fmt: skip
    data = load_and_validate(folder / "raw", funnel=funnel, as_of=None).data
    scorer = build_scorer(
        data, champion=champion, funnel=funnel, features=p.features, score=p.score,
        horizon_days=p.train.horizon_days, as_of=None,
    )  # fmt: skip
    app = create_app(scorer=scorer, token=TOKEN, max_body_bytes=p.serve.max_body_bytes,
                     max_rows=p.serve.max_rows, funnel=funnel,
                     read_timeout_s=p.serve.read_timeout_seconds,
                     score_threads=p.serve.score_threads,
                     batch_max=p.serve.batch_max, explain_step_days=7, explain_points=4,
                     docs_assets=swagger_ui_files())  # fmt: skip
    return scorer, data, TestClient(app)


def _records(frame: pd.DataFrame) -> list[dict]:
    rows = json.loads(frame.to_json(orient="records", date_format="iso"))
    return [{k: v for k, v in row.items() if v is not None} for row in rows]


def _body(data, deal_id: str) -> dict:
    """The CRM's own rows of one deal, as a POST /score body."""
    history = data.stage_history[data.stage_history["deal_id"] == deal_id]
    touches = data.touchpoints[data.touchpoints["deal_id"] == deal_id]
    return {
        "deal": _records(data.deals[data.deals["deal_id"] == deal_id])[0],
        "stage_history": _records(history),
        "touchpoints": _records(touches),
    }


def test_health_and_ranked_list_come_from_the_real_scorer(served):
    scorer, _, client = served
    health = client.get("/health").json()
    assert health["n_open_deals"] == len(scorer.leads) > 0
    assert health["model_versions"] == {"close": "close v1", "next_stage": "next v1"}
    listing = client.get("/deals?limit=5", headers=AUTH).json()
    assert [d["rank"] for d in listing["deals"]] == [1, 2, 3, 4, 5]
    assert [d["deal_id"] for d in listing["deals"]] == scorer.leads["deal_id"].head(5).tolist()


def test_posting_a_deal_s_own_rows_reproduces_its_batch_score(served):
    scorer, data, client = served
    top = scorer.leads.iloc[0]
    response = client.post("/score", json=_body(data, top["deal_id"]), headers=AUTH)
    assert response.status_code == 200, response.text
    (row,) = response.json()["deals"]
    assert row["deal_id"] == top["deal_id"] and row["rank"] == 1
    assert row["p_win"] == pytest.approx(top["p_win"], abs=1e-9)


def test_a_new_deal_is_scored_in_context_and_a_late_one_is_422(served):
    scorer, data, client = served
    body = _body(data, scorer.leads.iloc[-1]["deal_id"])
    body["deal"]["deal_id"] = "API-NEW-1"
    body["stage_history"] = [{k: v for k, v in r.items() if k != "deal_id"}
                             for r in body["stage_history"]]  # fmt: skip
    body["touchpoints"] = [r | {"deal_id": "API-NEW-1"} for r in body["touchpoints"]]
    response = client.post("/score", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["deals"][0]["deal_id"] == "API-NEW-1"
    late = scorer.as_of + pd.Timedelta(days=3)
    body["deal"]["created_at"] = late.isoformat()
    body["stage_history"] = [{"stage": "lead", "entered_at": late.isoformat()}]
    body["touchpoints"] = []
    response = client.post("/score", json=body, headers=AUTH)
    assert response.status_code == 422
    assert "not open" in response.json()["problems"][0]["message"]


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("10.1.2.3", False), ("example.com", False)],
)  # fmt: skip
def test_loopback_hosts(host, expected):
    assert is_loopback(host) is expected


def test_the_server_refuses_to_start_without_a_token_unless_no_auth_on_loopback():
    env = {"DEALCAST_API_TOKEN": TOKEN}
    kw = {"token_env": "DEALCAST_API_TOKEN"}
    assert resolve_token(host="0.0.0.0", no_auth=False, environ=env, **kw) == TOKEN
    assert resolve_token(host="127.0.0.1", no_auth=True, environ={}, **kw) is None
    with pytest.raises(StepError, match="DEALCAST_API_TOKEN"):
        resolve_token(host="127.0.0.1", no_auth=False, environ={"DEALCAST_API_TOKEN": " "}, **kw)
    with pytest.raises(StepError, match="loopback"):
        resolve_token(host="0.0.0.0", no_auth=True, environ=env, **kw)


def test_cli_refuses_no_auth_off_loopback_and_a_missing_token(monkeypatch):
    monkeypatch.delenv("DEALCAST_API_TOKEN", raising=False)
    params = str(ROOT / "params.yaml")
    exposed = CliRunner().invoke(
        cli, ["serve", "--host", "0.0.0.0", "--no-auth", "--params", params]
    )
    assert exposed.exit_code == 2 and "loopback" in exposed.output
    missing = CliRunner().invoke(cli, ["serve", "--params", params])
    assert missing.exit_code == 2 and "DEALCAST_API_TOKEN" in missing.output


def _as_new(body: dict, deal_id: str) -> dict:
    out = {**body, "deal": body["deal"] | {"deal_id": deal_id}}
    out["stage_history"] = [r | {"deal_id": deal_id} for r in body["stage_history"]]
    out["touchpoints"] = [r | {"deal_id": deal_id} for r in body["touchpoints"]]
    return out


def _history(data, deal_id: str, new_id: str):
    """The CRM's own rows of one deal under a new id, typed (a posted one-deal CRM)."""
    tables = {}
    for name in ("deals", "stage_history", "touchpoints"):
        frame = data.table(name)
        tables[name] = frame[frame["deal_id"] == deal_id].assign(deal_id=new_id)
        tables[name] = tables[name].reset_index(drop=True)
    return CRMData(**tables)


def test_a_posted_new_deal_gets_exactly_the_row_the_export_would_give_it(served):
    """The full export's way (the deal appended to the CRM, everything re-scored) against
    the API's (the cached day, features of that deal alone)."""
    scorer, data, client = served
    for k, deal_id in enumerate(scorer.leads["deal_id"].iloc[[0, 7, 40, -1]]):
        new = f"API-EXACT-{k}"
        response = client.post("/score", json=_as_new(_body(data, deal_id), new), headers=AUTH)
        assert response.status_code == 200, response.text
        (row,) = response.json()["deals"]
        posted = _history(data, deal_id, new)
        full = data
        for name in ("deals", "stage_history", "touchpoints"):
            both = pd.concat([data.table(name), posted.table(name)], ignore_index=True)
            full = full.with_table(name, both)
        export = score_crm(full, scorer=scorer)
        expected = _records(export[export["deal_id"] == new])[0]
        for column, value in expected.items():
            if column not in ("rank", "owner_rank", "as_of"):
                assert row[column] == pytest.approx(value, abs=1e-12), column


def test_reposting_a_crm_deal_without_rows_keeps_its_stage_and_says_so(served):
    scorer, data, client = served
    top = scorer.leads.iloc[3]
    body = {"deal": _body(data, top["deal_id"])["deal"]}
    response = client.post("/score", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    (row,) = response.json()["deals"]
    assert row["stage"] == top["stage"] is not None
    assert row["p_win"] == pytest.approx(top["p_win"], abs=1e-9)
    rules = [w["rule"] for w in response.json()["warnings"]]
    assert rules[0] == "replaces_crm_deal" and "crm_rows_kept" in rules


def test_deals_posted_together_get_what_each_gets_alone(served):
    """Batches group deals that cannot change each other's features (shared owners and
    accounts land in different groups); every result equals the deal scored alone."""
    scorer, data, _ = served
    ids = scorer.leads["deal_id"].iloc[:30].tolist()
    histories = [_history(data, d, f"BATCH-{i}") for i, d in enumerate(ids)]
    histories += [_history(data, d, d) for d in ids[:6]]  # reposts, identical rows
    together = scorer.score_deals(histories)
    assert len(groups(scorer.index, histories)) < len(histories)
    for history, result in zip(histories, together, strict=True):
        (alone,) = scorer.score_deals([history])
        pd.testing.assert_frame_equal(result[0], alone[0])
        assert [n.message for n in result[1]] == [n.message for n in alone[1]]


def test_short_tokens_are_refused_with_how_to_make_one(monkeypatch):
    monkeypatch.setenv("DEALCAST_API_TOKEN", "x" * 31)
    result = CliRunner().invoke(cli, ["serve", "--params", str(ROOT / "params.yaml")])
    assert result.exit_code == 2
    assert "31 characters" in result.output and "openssl rand -hex 32" in result.output


def test_host_and_port_are_checked_before_anything_is_loaded(monkeypatch, tmp_path):
    """A missing CRM folder would fail the load: these fail first, on the cheap checks."""
    monkeypatch.setenv("DEALCAST_API_TOKEN", TOKEN)
    base = ["serve", "--params", str(ROOT / "params.yaml"), "--data", str(tmp_path / "none")]
    unknown = CliRunner().invoke(cli, [*base, "--host", "no-such-host.invalid"])
    assert unknown.exit_code == 2 and "not a known host" in unknown.output
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        taken = CliRunner().invoke(cli, [*base, "--port", port])
    assert taken.exit_code == 2 and "cannot listen on http://127.0.0.1:" in taken.output


def test_bracketed_ipv6_loopback_passes_the_checks_then_loads(monkeypatch):
    monkeypatch.delenv("DEALCAST_API_TOKEN", raising=False)
    loaded = []

    def fake_load(folder, **kw):
        loaded.append(folder)
        raise StepError("stop here")

    monkeypatch.setattr(serve_module, "_load_app", fake_load)
    params = _params()
    params = params.model_copy(update={"serve": params.serve.model_copy(update={"workers": 1})})
    with pytest.raises(StepError, match="stop here"):
        serve_module.run_serve(
            folder=Path("raw"), params=params, host="[::1]", port=0, as_of=None,
            no_auth=True, environ={},
        )  # fmt: skip
    assert loaded == [Path("raw")]


def test_a_client_that_never_finishes_its_request_head_is_disconnected():
    """uvicorn alone waits for a request head forever; the served protocol does not."""
    import threading
    import time

    import uvicorn

    from pipelines.serve_http import head_timeout_protocol, listen

    sock = listen("127.0.0.1", 0)
    config = uvicorn.Config(
        create_app_for_head_test(), log_level="warning", http=head_timeout_protocol(0.5)
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        for sent in (b"", b"GET /health HTTP/1.1\r\nHost: x\r\n"):  # nothing, half a head
            with socket.create_connection(sock.getsockname()) as conn:
                conn.settimeout(5)
                started = time.monotonic()
                conn.sendall(sent)
                assert conn.recv(100) == b""  # closed by the server
                assert time.monotonic() - started < 3
    finally:
        server.should_exit = True
        thread.join(5)


def create_app_for_head_test():
    async def app(scope, receive, send):  # never reached: no complete head arrives
        raise AssertionError("no request should reach the app")

    return app


def _in_place(data: CRMData, history: CRMData) -> CRMData:
    """The whole CRM with a posted deal in place: its deal row replaced or added, its stage
    rows and touches replaced when some are posted (else the CRM's kept)."""
    deal_id = history.deals["deal_id"].iloc[0]
    out = data
    for name in ("deals", "stage_history", "touchpoints"):
        posted, crm = history.table(name), data.table(name)
        if posted is None or posted.empty:
            continue
        keep = crm[(crm["deal_id"] != deal_id).fillna(True).to_numpy(bool)]
        out = out.with_table(name, pd.concat([keep, posted], ignore_index=True))
    return out


def test_posted_together_each_deal_gets_the_full_re_score_s_row(served):
    """The fast path (the deal's own rows, the day's cached aggregates, one feature build
    and one model pass for the batch) against the slow, obvious way: the CRM with that
    deal alone in place, every deal re-scored. Same p_win, next stage, reasons, rank."""
    scorer, data, _ = served
    leads = scorer.leads["deal_id"]
    changed = _history(data, leads.iloc[3], leads.iloc[3])
    changed = CRMData(deals=changed.deals.assign(amount=changed.deals["amount"] * 2),
                      stage_history=changed.stage_history,
                      touchpoints=changed.touchpoints.head(2))  # fmt: skip
    stranger = _history(data, leads.iloc[9], "FAST-3")
    stranger = CRMData(
        deals=stranger.deals.assign(account_id="ACC-NEW", owner_id="OWNER-NEW"),
        stage_history=stranger.stage_history,
        touchpoints=stranger.touchpoints.assign(account_id="ACC-NEW"),
    )
    posted = [_history(data, leads.iloc[0], "FAST-1"), _history(data, leads.iloc[5], "FAST-2"),
              _history(data, leads.iloc[0], "FAST-4"), changed, stranger,
              CRMData(deals=_history(data, leads.iloc[12], leads.iloc[12]).deals)]  # fmt: skip
    results = scorer.score_deals(posted)
    columns = ["p_win", "expected_value", "next_stage", "p_next_stage", "reasons_up",
               "reasons_down", "stage", "days_in_stage", "rank", "owner_rank"]  # fmt: skip
    for history, (row, _) in zip(posted, results, strict=True):
        deal_id = str(history.deals["deal_id"].iloc[0])
        full = score_crm(_in_place(data, history), scorer=scorer)
        expected = rank_among(scorer.leads, full[full["deal_id"] == deal_id],
                              priority=scorer.score.priority)  # fmt: skip
        got, want = _records(row[columns])[0], _records(expected[columns])[0]
        assert got.keys() == want.keys(), deal_id
        for column, value in want.items():
            assert got[column] == pytest.approx(value, abs=1e-12), (deal_id, column)


# --------------------------------------------------------------------------- one deal explained


def test_the_deal_route_says_what_dealcast_explain_says(served):
    """Route and CLI share one explanation (``explain_loaded``): the route's body is that
    explanation, and it agrees with today's ranked row."""
    scorer, data, client = served
    top = scorer.leads.iloc[2]
    response = client.get(f"/deals/{top['deal_id']}", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    cli = explain_loaded(
        data, scorer.champion, deal_id=top["deal_id"], funnel=scorer.funnel,
        features=_params().features, as_of=scorer.as_of, step_days=7, points=4,
    )  # fmt: skip
    assert body == explanation_body(cli, model_versions=scorer.model_versions)
    assert body["p_win"] == pytest.approx(top["p_win"], abs=1e-9) and body["stage"] == top["stage"]
    assert body["next_stage"][0]["state"] == top["next_stage"]
    shown = [p for p in top["reasons_up"].split("; ") if p]
    assert [d["phrase"] for d in body["drivers_up"]][: len(shown)] == shown
    assert len(body["drivers_up"]) + len(body["drivers_down"]) > 6
    assert 1 < len(body["history"]) <= 4 and body["history"][-1]["p_win"] == body["p_win"]
    assert 0 < body["p_win_stage_table"] < 1


def test_the_deal_route_refuses_unknown_and_closed_deals_with_their_dates(served):
    scorer, data, client = served
    unknown = client.get("/deals/NO-SUCH-DEAL", headers=AUTH)
    assert unknown.status_code == 404 and "'NO-SUCH-DEAL'" in unknown.json()["message"]
    closed = data.deals[data.deals["closed_at"] < scorer.as_of].iloc[0]
    response = client.get(f"/deals/{closed['deal_id']}", headers=AUTH)
    assert response.status_code == 409, response.text
    message = response.json()["message"]
    assert f"closed at {closed['closed_at'].strftime('%Y-%m-%dT%H:%M:%SZ')}" in message
    assert str(closed["outcome"]) in message


# --------------------------------------------------------------------------- reposts, times


def test_reposting_a_crm_deal_as_the_readme_does_says_what_it_changed(served):
    """The README's body (a few deal fields, one stage row) under an open CRM deal's id:
    its posted stage, and warnings for each CRM value the partial row leaves out."""
    scorer, data, client = served
    deal_id = scorer.leads["deal_id"].iloc[5]
    body = {"deal": {"deal_id": deal_id, "created_at": "2026-05-04T10:00:00Z",
                     "owner_id": "U005", "amount": 42000},
            "stage_history": [{"stage": "lead", "entered_at": "2026-05-04T10:00:00Z"}]}  # fmt: skip
    answer = client.post("/score", json=body, headers=AUTH).json()
    assert answer["deals"][0]["stage"] == "lead"
    rules = {w["rule"]: w["message"] for w in answer["warnings"]}
    assert {"replaces_crm_deal", "replaces_crm_rows", "crm_values_dropped"} <= set(rules)
    assert "account_id" in rules["crm_values_dropped"]


def test_a_deal_without_a_stage_or_in_a_closed_one_is_said_so(served):
    scorer, data, client = served
    new = {"deal": {"deal_id": "NO-STAGE-1", "created_at": "2026-05-04T10:00:00Z",
                    "amount": 42000}}  # fmt: skip
    answer = client.post("/score", json=new, headers=AUTH).json()
    assert answer["deals"][0]["stage"] is None
    assert [w["rule"] for w in answer["warnings"]] == ["stage_unknown"]
    closed = data.deals[data.deals["closed_at"] < scorer.as_of].iloc[0]
    reopened = {"deal": {"deal_id": closed["deal_id"], "created_at": "2026-05-04T10:00:00Z",
                         "amount": 42000}}  # fmt: skip
    answer = client.post("/score", json=reopened, headers=AUTH).json()
    row, rules = answer["deals"][0], [w["rule"] for w in answer["warnings"]]
    assert row["stage"] not in scorer.funnel.stages and "stage_not_open" in rules
    assert "reopens_crm_deal" in rules and "crm_rows_kept" in rules


def test_every_timestamp_the_real_api_sends_is_iso_utc_with_z(served):
    scorer, data, client = served
    open_id = scorer.leads["deal_id"].iloc[0]
    closed = data.deals[data.deals["closed_at"] < scorer.as_of].iloc[0]["deal_id"]
    late = (scorer.as_of + pd.Timedelta(days=2)).isoformat()
    bodies = [
        client.get("/health").json(),
        client.get("/deals?limit=20", headers=AUTH).json(),
        client.get(f"/deals/{open_id}", headers=AUTH).json(),
        client.get(f"/deals/{closed}", headers=AUTH).json(),
        client.post("/score", json={"deal": {"deal_id": closed, "created_at": late}},
                    headers=AUTH).json(),
        client.post("/score", json=_body(data, open_id) | {"stage_history": [
            {"stage": "lead", "entered_at": late}]}, headers=AUTH).json(),
        client.post("/score", json={"deal": {"deal_id": closed, "created_at": "2025-01-01"}},
                    headers=AUTH).json(),
    ]  # fmt: skip
    assert assert_one_time_format(bodies) > 30
