"""Model history people can use (issue 13, item 4): ``dealcast models`` lists the versions,
``compare`` scores two on the same rows, ``promote``/``rollback`` move both aliases with a
recorded reason and refuse a pair that cannot serve, and a retrain on unchanged data and
params registers nothing (and still leaves the outputs DVC tracks).

One project for the module, three fits: v1 on the CRM as it stood in March; the same
again after DVC-like removal of train's outputs (fits, registers nothing, rewrites them);
the same again with the outputs in place (stops before fitting); v2 on the grown CRM.
"""

from __future__ import annotations

import re

import pandas as pd
import pytest
from gate_fixtures import generated, invoke, params_file, write

from features.data_end import exclude_after
from pipelines.catalog import Catalog
from pipelines.params import load_params

pytestmark = pytest.mark.slow
CLOSE, NEXT = "dealcast-close-probability", "dealcast-next-stage"
NOTHING = "nothing changed since champion v1 (same data fingerprint and params): no new version"


@pytest.fixture(scope="module")
def project(tmp_path_factory, mlflow_db):
    """(folder, raws, params, train outputs by name) after the four trains."""
    folder = tmp_path_factory.mktemp("history")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_db(folder))
        data = generated(900)
        march, _ = exclude_after(data, pd.Timestamp("2026-03-31", tz="UTC"))
        raws = {"march": write(march, folder / "march"), "grown": write(data, folder / "grown")}
        params = params_file(folder)
        outputs = {"v1": _train(raws["march"], params)}
        lineage = Catalog(load_params(params).paths).trained
        lineage.unlink()  # what `dvc repro` does to train's outputs before running it
        outputs["refit"] = _train(raws["march"], params)
        outputs["lineage_rewritten"] = lineage.exists()
        outputs["same"] = _train(raws["march"], params)
        outputs["v2"] = _train(raws["grown"], params)
        yield folder, raws, params, outputs


def _train(raw, params) -> str:
    result = invoke("train", "--data", raw, "--params", params)
    assert result.exit_code == 0, result.output
    return result.output


def _client():
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def _champion(name: str) -> str:
    return str(_client().get_model_version_by_alias(name, "champion").version)


def _versions(name: str) -> list[str]:
    return sorted(str(v.version) for v in _client().search_model_versions(f"name='{name}'"))


def test_a_retrain_on_unchanged_data_and_params_registers_nothing(project):
    folder, _, _, outputs = project
    assert "v1: promoted to champion: first model" in outputs["v1"]
    assert NOTHING in outputs["refit"] and "model to serve:" in outputs["refit"]
    assert outputs["lineage_rewritten"]  # the outputs DVC tracks are written again
    assert NOTHING in outputs["same"] and "model to serve:" not in outputs["same"]
    assert f"{CLOSE} v2:" in outputs["v2"]  # new data: a new version
    assert _versions(CLOSE) == ["1", "2"] and _versions(NEXT) == ["1", "2"]


def test_listing_shows_versions_metrics_and_the_champion(project):
    folder, _, params, _ = project
    result = invoke("models", "--params", params)
    assert result.exit_code == 0, result.output
    out = result.output
    champion = _champion(CLOSE)
    assert re.search(rf"v{champion} \*\s+v{_champion(NEXT)}\s", out), out
    assert "now" in out and "log_loss" in out and "0." in out  # metrics shown
    fingerprint = (
        _client()
        .get_run(_client().get_model_version(CLOSE, "1").run_id)
        .data.tags["data_fingerprint"]
    )
    assert fingerprint[:8] in out


def test_compare_scores_both_versions_on_the_same_rows(project):
    folder, raws, params, _ = project
    result = invoke("models", "compare", "1", "v2", "--data", raws["grown"], "--params", params)
    assert result.exit_code == 0, result.output
    out = result.output
    rows = re.search(r"on the same ([\d,]+) rows", out)
    assert rows and int(rows.group(1).replace(",", "")) > 0, out
    close = [line.split() for line in out.splitlines() if re.match(r"\s+v[12]\s+\d", line)]
    assert len(close) >= 2 and close[0][1] == close[1][1]  # the same number of known rows
    assert "v2 - v1" in out and "next-stage model" in out


def test_promote_and_rollback_move_both_aliases_with_the_reason(project):
    folder, _, params, _ = project
    before = _champion(CLOSE)
    other = "1" if before == "2" else "2"
    result = invoke("models", "promote", other, "--reason", "sales asked", "--params", params)
    assert result.exit_code == 0, result.output
    assert _champion(CLOSE) == other and _champion(NEXT) == other  # the pair, together
    tag = _client().get_model_version(CLOSE, other).tags["champion.move"]
    assert "promote" in tag and "sales asked" in tag
    assert _client().get_model_version(CLOSE, other).tags["served_from"]

    back = invoke("models", "rollback", "--reason", "wrong call", "--params", params)
    assert back.exit_code == 0, back.output
    assert _champion(CLOSE) == before and _champion(NEXT) == before
    assert f"champion is now {CLOSE} v{before}" in back.output
    runs = _client().search_runs(
        [_client().get_experiment_by_name("dealcast").experiment_id],
        filter_string="tags.command = 'rollback'",
    )
    assert runs and runs[0].data.tags["reason"] == "wrong call"
    listing = invoke("models", "--params", params).output
    assert "wrong call" in listing or "rollback" in listing


def test_a_version_with_other_feature_settings_is_refused(project):
    folder, _, _, _ = project
    other = params_file(folder, prior_strength=7)
    before = _champion(CLOSE)
    target = "1" if before == "2" else "2"
    result = invoke("models", "promote", target, "--reason", "x", "--params", other)
    assert result.exit_code == 2
    assert "other feature settings" in result.output and "prior_strength" in result.output
    assert _champion(CLOSE) == before  # nothing moved
    missing = invoke("models", "promote", "9", "--reason", "x", "--params", project[2])
    assert missing.exit_code == 2 and "not in the registry" in missing.output
