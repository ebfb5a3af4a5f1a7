"""``dealcast serve``: the real scorer behind the API on a quickly trained model, and the
auth policy that decides whether the server may start."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from crm.synthetic import generate_crm
from crm.write import write_crm
from pipelines.cli import app as cli
from pipelines.modelling import run_train
from pipelines.params import Params
from pipelines.serve import build_scorer, is_loopback, resolve_token
from pipelines.steps import StepError, load_and_validate
from pipelines.tracking import Champion
from serving.api import create_app

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
                     max_rows=p.serve.max_rows, funnel=funnel)  # fmt: skip
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
