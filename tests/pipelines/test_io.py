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


def test_a_set_is_named_after_its_content(tmp_path):
    """The same files always land in the same folder, so DVC hashes the same export the
    same (a pid or random token in the path would change ``dvc.lock`` on every run)."""
    from pipelines.io import SETS, write_set

    def publish(folder, text):
        write_set(folder, "s", {"a.csv": lambda p: p.write_text(text)})
        return [p.name for p in (folder / SETS).iterdir()]

    first, again = publish(tmp_path / "one", "x"), publish(tmp_path / "two", "x")
    assert first == again and len(first) == 1
    assert publish(tmp_path / "one", "x") == first  # republished: the same folder
    assert publish(tmp_path / "one", "y") != first  # new content, new folder; old one gone
    assert (tmp_path / "one" / "s" / "a.csv").read_text() == "y"
