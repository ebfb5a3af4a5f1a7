from __future__ import annotations

import os

import pytest

from pipelines.io import write_bytes_atomic, write_json_atomic, write_text_atomic


def test_writes_replace_atomically_with_normal_permissions(tmp_path):
    path = tmp_path / "sub" / "report.html"
    write_text_atomic(path, "old")
    write_text_atomic(path, "new ✓")
    assert path.read_text(encoding="utf-8") == "new ✓"
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temp left


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_bytes_atomic(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
