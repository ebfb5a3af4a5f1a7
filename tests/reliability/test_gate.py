"""The champion gate cannot be fooled by a corrupted history; the champion pair moves as
one; consumers refuse a champion trained with other feature settings (issue 16, 2/5/10).

One project for the module (training is the slow part): v1 on the CRM as it stood in
March, then a copy with shuffled outcomes (refused), then the grown CRM (a normal retrain).
"""

from __future__ import annotations

import pandas as pd
import pytest
from gate_fixtures import generated, invoke, params_file, shuffled_outcomes, write

from features.data_end import exclude_after

pytestmark = pytest.mark.slow
CLOSE, NEXT = "dealcast-close-probability", "dealcast-next-stage"


@pytest.fixture(scope="module")
def project(tmp_path_factory, mlflow_db):
    folder = tmp_path_factory.mktemp("gate")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("MLFLOW_TRACKING_URI", mlflow_db(folder))
        data = generated(900)
        march, _ = exclude_after(data, pd.Timestamp("2026-03-31", tz="UTC"))
        raws = {
            "march": write(march, folder / "march"),
            "shuffled": write(shuffled_outcomes(data), folder / "shuffled"),
            "grown": write(data, folder / "grown"),
        }
        yield folder, raws, params_file(folder)


@pytest.fixture(scope="module")
def trained(project):
    """Output of the three trains, in order."""
    folder, raws, params = project
    outputs = {}
    for name in ("march", "shuffled", "grown"):
        result = invoke("train", "--data", raws[name], "--params", params)
        assert result.exit_code == 0, result.output
        outputs[name] = result.output
    return outputs


def _champion(name: str) -> str:
    from mlflow.tracking import MlflowClient

    return str(MlflowClient().get_model_version_by_alias(name, "champion").version)


def test_shuffled_past_outcomes_are_not_promoted(trained):
    out = trained["shuffled"]
    assert "v1: promoted to champion: first model" in trained["march"]
    assert f"{CLOSE} v2: not promoted: the training history was rewritten" in out
    assert f"{NEXT} v2: not promoted: the pair is refused for its training data" in out
    assert "changed outcome" in out and "e.g. D" in out
    assert "dealcast train --accept-rewritten-history" in out


def test_a_normal_retrain_with_new_data_is_judged_on_its_backtest(trained):
    out = trained["grown"]
    assert "rewritten" not in out
    assert f"{CLOSE} v3:" in out and ("beats champion" in out or "needs a gain" in out)


def test_the_pair_moves_together_and_records_its_partner(trained):
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    close, nxt = _champion(CLOSE), _champion(NEXT)
    assert close != "2" and nxt != "2"  # the refused pair never served
    assert client.get_model_version(CLOSE, close).tags["pair.next_stage_version"] == nxt
    assert client.get_model_version(NEXT, nxt).tags["pair.close_version"] == close


def test_accepting_a_rewritten_history_is_explicit(project, trained):
    folder, raws, params = project
    result = invoke("train", "--data", raws["shuffled"], "--accept-rewritten-history",
                    "--params", params)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "rewritten history accepted (--accept-rewritten-history)" in result.output


def test_a_crash_between_the_alias_moves_is_refused_then_repaired(project, trained):
    from mlflow.tracking import MlflowClient

    from pipelines import tracking

    folder, raws, params = project
    close, nxt = _champion(CLOSE), _champion(NEXT)
    other = next(v for v in ("1", "2", "3", "4") if v != nxt)

    class CrashBeforeClose(MlflowClient):
        def set_registered_model_alias(self, name, alias, version):
            if name == CLOSE:
                raise KeyboardInterrupt("killed between the two alias moves")
            super().set_registered_model_alias(name, alias, version)

    with pytest.raises(KeyboardInterrupt):
        tracking._apply(CrashBeforeClose(), {"close": CLOSE, "next_stage": NEXT},
                        {"close": other, "next_stage": other})  # fmt: skip
    assert (_champion(CLOSE), _champion(NEXT)) == (close, other)  # half applied
    result = invoke("score", "--data", raws["grown"], "--params", params)
    assert result.exit_code == 2
    assert "champion pair is inconsistent" in result.output
    assert f"{CLOSE} v{close} was trained with {NEXT} v{nxt}" in result.output
    notes = tracking.recover(experiment="dealcast", close_model_name=CLOSE,
                             next_stage_model_name=NEXT)  # fmt: skip
    assert any(f"set back to v{nxt}" in n for n in notes)
    assert _champion(NEXT) == nxt
    assert MlflowClient().get_model_version(CLOSE, close).tags["pair.next_stage_version"] == nxt


def test_score_refuses_a_champion_trained_with_other_feature_settings(project, trained):
    folder, raws, _ = project
    changed = params_file(folder, prior_strength=1000)
    result = invoke("score", "--data", raws["grown"], "--params", changed)
    assert result.exit_code == 2
    assert "features.prior_strength: champion 20.0, params.yaml 1000.0" in result.output
    forecast = invoke("forecast", "--data", raws["grown"], "--no-track", "--params", changed)
    assert forecast.exit_code == 2 and "features.prior_strength" in forecast.output


def test_report_leaves_out_another_crms_export(project, trained):
    folder, raws, params = project
    for args in (("score",), ("forecast", "--no-track")):
        result = invoke(*args, "--data", raws["grown"], "--params", params)
        assert result.exit_code == 0, result.output
    other = write(generated(300, seed=11), folder / "other")
    report = invoke("report", "--data", other, "--params", params)
    assert report.exit_code == 0, report.output
    assert "latest export is for another CRM" in report.output
    assert "latest forecast is for another CRM" in report.output
    assert "run `dealcast score`" in report.output and "run `dealcast forecast`" in report.output
    same = invoke("report", "--data", raws["grown"], "--params", params)
    assert "latest export is for another CRM" not in same.output
    assert "latest forecast is for another CRM" not in same.output
    # the forecast's backtest is train's, and the champion was trained on another extract
    assert "forecast_backtest.parquet: data fingerprint" in same.output
    assert "run `dealcast train` on this CRM" in same.output
