"""Disk I/O of the shell: atomic writes of reports and JSON, output folders checked before
a long run, and file *sets* published with one rename. CRM folders are read and written by
``crm.load`` / ``crm.write``.

A set (:func:`write_set`) is a folder ``<folder>/<name>`` that is a symbolic link to
``<folder>/.sets/<name>.<digest>``: the files are written into a staging folder
``.sets/<name>.<pid>.<token>``, flushed, renamed after their content (the same files always
land under the same name, so DVC records the same hash for the same export), and the link
is switched with one ``os.replace``. A reader following ``<folder>/<name>`` sees the old
set or the new one, never a mix; a crash at any moment leaves the old set complete.
Staging folders and links of crashed runs (their process is gone) and sets no link points
to any more are removed at the next write.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SETS = ".sets"
_STAGING: set[Path] = set()  # this process's sets not yet published


def write_bytes_atomic(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that a crash leaves either the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a report is for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(path: Path, text: str) -> None:
    """UTF-8 text with ``\n`` line endings, written atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, payload: Any) -> None:
    """Pretty, key-sorted JSON (stable diffs for DVC metrics), written atomically."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def writable_folder(path: Path, *, what: str) -> Path:
    """Check that ``path`` is, or can be created as, a folder files can be written in.

    Raises ``StepError`` naming ``what`` (e.g. ``--out``) when the path is a file, lies
    under a file, or cannot be written, so a command fails before its long work, not after.
    Creates nothing: the nearest existing folder is probed with a temporary file.
    """
    from pipelines.steps import StepError

    path = Path(path)
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        if existing == path:
            raise StepError(f"{what} {path} is a file, not a folder")
        raise StepError(f"{what} {path}: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StepError(f"{what} {path} cannot be written: {exc.strerror or exc}") from None
    return path


def writable_file(path: Path, *, what: str) -> Path:
    """Like :func:`writable_folder` for a file to be (re)written: not a folder, and its
    folder writable."""
    from pipelines.steps import StepError

    path = Path(path)
    if path.is_dir():
        raise StepError(f"{what} {path} is a folder; give a file name")
    writable_folder(path.parent, what=what)
    return path


def write_set(
    folder: Path, name: str, writers: Mapping[str, Callable[[Path], None]]
) -> dict[str, Path]:
    """Write a set of files as ``folder/name/<file>`` and publish them together.

    ``writers`` maps each file name to a function writing that file at the path it is
    given. Returns the published paths (through the link). See the module docstring.
    """
    from pipelines.steps import StepError

    folder = Path(folder)
    target = folder / name
    if target.exists() and not target.is_symlink() and not target.is_dir():
        raise StepError(
            f"{target} is a file; dealcast publishes {name} as a folder (a link to the "
            "latest complete set): move the file away"
        )
    clean_stale_sets(folder)
    tag = f"{os.getpid()}.{secrets.token_hex(4)}"
    staging, link = folder / SETS / f"{name}.{tag}", folder / f".{name}.{tag}.link"
    _STAGING.update((staging, link))  # a cleanup meanwhile keeps both and the link's target
    try:
        staging.mkdir(parents=True)
        for file_name, write in writers.items():
            write(staging / file_name)
            _fsync(staging / file_name)
        _fsync(staging)
        _publish(staging, link, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        link.unlink(missing_ok=True)
        raise
    finally:
        _STAGING.difference_update((staging, link))
    clean_stale_sets(folder)
    return {file_name: target / file_name for file_name in writers}


def _publish(staging: Path, link: Path, target: Path) -> None:
    """Name the written set after its content, point ``link`` at it, switch ``target``."""
    sets = staging.parent
    final = sets / f"{target.name}.{_digest(staging)}"
    os.symlink(os.path.join(SETS, final.name), link, target_is_directory=True)
    _settle(staging, final)
    if target.is_dir() and not target.is_symlink():  # a copy that dereferenced the link
        os.replace(target, sets / f"{target.name}.replaced.{secrets.token_hex(4)}")
    os.replace(link, target)
    _fsync(target.parent)


def _digest(folder: Path) -> str:
    """16 hex digits of SHA-256 over the files' names and bytes (in name order)."""
    digest = hashlib.sha256()
    for path in sorted(folder.iterdir()):
        digest.update(path.name.encode("utf-8", "surrogatepass") + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _settle(staging: Path, final: Path) -> None:
    """Rename the written set to its content name; if that set exists already (the same
    files, published before), it is the one kept."""
    try:
        os.rename(staging, final)
    except OSError:
        if not final.is_dir():
            raise
        shutil.rmtree(staging, ignore_errors=True)
        _fsync(final.parent)


def clean_stale_sets(folder: Path) -> list[Path]:
    """Remove what crashed or superseded set writes left in ``folder``; return it.

    Removed: ``.sets/*`` folders no link in ``folder`` points to, and ``.<name>.link``
    temporaries, unless a live process (other than an already finished write of this one)
    may still be writing them.
    """
    folder, removed = Path(folder), []
    sets = folder / SETS
    if not sets.is_dir():
        return removed
    used = {
        os.path.normpath(os.path.join(folder, os.readlink(p)))
        for p in folder.iterdir()
        if p.is_symlink() and (not p.name.startswith(".") or p in _STAGING or writer_alive(p))
    }  # the published sets, and the targets of links a live write is about to publish
    candidates = [*sets.iterdir(), *folder.glob(".*.link")]
    for path in candidates:
        if os.path.normpath(path) in used or path in _STAGING or writer_alive(path):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    if removed:
        log.info("removed %d stale export folder(s)/link(s) in %s", len(removed), folder)
    return removed


def writer_alive(path: Path) -> bool:
    """Whether the process named in ``<name>.<pid>.<token>[.link]`` still runs (not us)."""
    parts = path.name.removesuffix(".link").rsplit(".", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False  # ours and not in _STAGING: a finished or failed write
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _fsync(path: Path) -> None:
    """Flush a file or folder entry to disk (best effort for folders)."""
    flags = os.O_RDONLY | (os.O_DIRECTORY if Path(path).is_dir() else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def staging_folder(target: Path, tag: str) -> Path:
    """A new empty hidden folder beside ``target`` (same file system, so its files can be
    renamed into ``target``): ``.<target name>.<tag>.<pid>.<token>``. Leftovers of crashed
    runs (their process is gone) are removed first."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for old in target.parent.glob(f".{target.name}.{tag}.*"):
        if old.is_dir() and not old.is_symlink() and not writer_alive(old):
            shutil.rmtree(old, ignore_errors=True)
            log.info("removed %s, left by a crashed run", old)
    folder = target.parent / f".{target.name}.{tag}.{os.getpid()}.{secrets.token_hex(4)}"
    folder.mkdir()
    return folder
