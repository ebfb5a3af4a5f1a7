from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from pipelines.params import DEFAULTS, ParamsError, load_params

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


def _partial(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


def test_a_file_with_only_the_funnel_takes_the_rest_from_the_defaults(tmp_path):
    path = _partial(tmp_path, "funnel:\n  stages: [new, demo, trial, contract]\n")
    p, defaults = load_params(path), load_params(ROOT / "params.yaml")
    assert p.funnel.stages == ("new", "demo", "trial", "contract")
    assert p.funnel.won_label == defaults.funnel.won_label  # the section's other keys too
    for section in type(p).model_fields:
        if section != "funnel":
            assert getattr(p, section) == getattr(defaults, section), section


def test_nested_keys_merge_one_by_one_and_lists_replace(tmp_path):
    path = _partial(tmp_path, "train:\n  close:\n    num_leaves: 31\n  blend_weights: [0, 1]\n")
    p, defaults = load_params(path), load_params(ROOT / "params.yaml")
    assert p.train.close.num_leaves == 31
    assert p.train.close.learning_rate == defaults.train.close.learning_rate
    assert p.train.blend_weights == (0.0, 1.0)
    assert p.train.hazard == defaults.train.hazard


def test_an_empty_file_or_section_means_the_defaults(tmp_path):
    defaults = load_params(ROOT / "params.yaml")
    assert load_params(_partial(tmp_path, "")) == defaults
    assert load_params(_partial(tmp_path, "funnel:\n")) == defaults


def test_a_null_value_still_replaces_its_default(tmp_path):
    p = load_params(_partial(tmp_path, "funnel:\n  currency: null\n"))
    assert p.funnel.currency is None


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("funnel:\n  stagez: [a, b]\n", r"funnel\.stagez: Extra inputs are not permitted"),
        ("funel:\n  stages: [a, b]\n", r"funel: Extra inputs are not permitted"),
        ("train:\n  close:\n    num_leafs: 31\n", r"train\.close\.num_leafs"),
        ("funnel: [a, b]\n", r"funnel: Input should be a valid dictionary"),
    ],
)
def test_a_typo_in_a_partial_file_is_still_refused_naming_the_key(tmp_path, text, named):
    with pytest.raises(ParamsError, match=named):
        load_params(_partial(tmp_path, text))


def test_the_packaged_defaults_are_the_projects_params_yaml():
    """The package ships the defaults (pipelines/params.yaml) for installs without the
    repository; after editing params.yaml: cp params.yaml pipelines/params.yaml"""
    assert DEFAULTS.read_bytes() == (ROOT / "params.yaml").read_bytes(), (
        "pipelines/params.yaml differs from params.yaml: cp params.yaml pipelines/params.yaml"
    )


def test_the_packaged_defaults_are_package_data():
    import tomllib

    setup = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]
    assert DEFAULTS.name in setup["setuptools"]["package-data"]["pipelines"]
    assert DEFAULTS.parent == ROOT / "pipelines"


def test_a_notebook_finds_the_projects_params_from_its_folder(tmp_path):
    from pipelines.catalog import find_params

    (tmp_path / "params.yaml").write_text("funnel: {}\n")
    (tmp_path / "notebooks").mkdir()
    assert find_params(tmp_path / "notebooks", environ={}) == (tmp_path / "params.yaml").resolve()
    chosen = tmp_path / "other.yaml"
    assert find_params(tmp_path, environ={"DEALCAST_PARAMS": str(chosen)}) == chosen.resolve()
