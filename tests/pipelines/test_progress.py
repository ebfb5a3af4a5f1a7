"""One line per finished step with its timing: on stderr under a command, else a log line."""

from __future__ import annotations

import logging

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.progress import duration, shown, step


def test_a_step_shows_one_line_with_its_timing_and_detail_when_it_ends():
    lines: list[str] = []
    with shown(lines.append), step("loaded data/raw") as done:
        assert lines == []  # nothing while it runs
        done.detail = "6,000 deals"
    (line,) = lines
    assert line.endswith("s  loaded data/raw: 6,000 deals") and line.lstrip()[0].isdigit()


def test_a_failing_step_shows_nothing():
    lines: list[str] = []
    with shown(lines.append), pytest.raises(ValueError), step("fitted"):
        raise ValueError("no data")
    assert lines == []


def test_outside_a_command_a_step_is_an_info_log_line(caplog):
    with caplog.at_level(logging.INFO, logger="pipelines.progress"), step("scored"):
        pass
    assert [r.getMessage().strip().endswith("scored") for r in caplog.records] == [True]


def test_the_innermost_sink_gets_the_line():
    outer: list[str] = []
    inner: list[str] = []
    with shown(outer.append), shown(inner.append), step("x"):
        pass
    assert outer == [] and len(inner) == 1


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.04, "0.0 s"), (12.34, "12.3 s"), (59.9, "59.9 s"), (215, "3 min 35 s")]
)
def test_durations_read_like_a_clock(seconds, text):
    assert duration(seconds) == text


def test_a_command_prints_its_steps_on_stderr_not_stdout(tmp_path, params_file):
    result = CliRunner().invoke(
        app, ["generate", "--out", str(tmp_path / "crm"), "--deals", "150",
              "--params", str(params_file)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "generated 150 synthetic deals" in result.stderr
    assert "generated" not in result.stdout and "wrote" in result.stdout
    assert "INFO" not in result.stderr  # the log line that said the same is DEBUG now
