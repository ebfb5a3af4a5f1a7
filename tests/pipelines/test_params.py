from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from pipelines.params import ParamsError, load_params

ROOT = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, mutate) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    mutate(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_project_params_parse_into_frozen_models():
    p = load_params(ROOT / "params.yaml")
    assert p.funnel.to_funnel().states[-2:] == ("won", "lost")
    with pytest.raises(ValidationError):  # frozen: no accidental mutation downstream
        p.base.seed = 1  # type: ignore[misc]


def test_unknown_key_is_an_error_naming_it(tmp_path):
    path = _write(tmp_path, lambda r: r["generate"].update(dealz=5))
    with pytest.raises(ParamsError, match=r"generate\.dealz"):
        load_params(path)


def test_outcome_names_cannot_be_open_stages(tmp_path):
    path = _write(tmp_path, lambda r: r["funnel"].update(stages=["lead", "won"]))
    with pytest.raises(ParamsError, match="outcomes"):
        load_params(path)


def test_duplicate_stages_rejected(tmp_path):
    path = _write(tmp_path, lambda r: r["funnel"].update(stages=["lead", "lead"]))
    with pytest.raises(ParamsError, match="distinct"):
        load_params(path)


def test_missing_and_malformed_files_give_readable_errors(tmp_path):
    with pytest.raises(ParamsError, match="no such params file"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: [unclosed\n")
    with pytest.raises(ParamsError, match="cannot read"):
        load_params(bad)
