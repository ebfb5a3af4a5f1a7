"""The funnel a mapping file carries, written beside the imported data as a params snippet.

``dealcast import mapped`` validates with the mapping's ``funnel:`` when it has one; the
commands after it (features, train, evaluate, score) read the funnel from ``params.yaml``.
:func:`write_funnel_snippet` writes ``funnel.yaml`` into the CRM folder (a YAML file, which
the loader does not read as a table) so the user can paste it into ``params.yaml``;
:func:`funnel_difference` says whether that is needed.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from crm.schemas import Funnel

SNIPPET = "funnel.yaml"


def funnel_snippet(funnel: Funnel, *, source: str) -> str:
    """The ``funnel:`` section of params.yaml for ``funnel``, with a comment on its use."""
    stages = ", ".join(funnel.stages)
    excluded = ", ".join(funnel.exclude_attributes)
    return (
        f"# The funnel of {source} (written by `dealcast import mapped`).\n"
        "# dealcast features / train / evaluate / score read the funnel from params.yaml:\n"
        "# replace the funnel: section of your params.yaml with this one.\n"
        "funnel:\n"
        f"  stages: [{stages}]\n"
        f"  won_label: {funnel.won_label}\n"
        f"  lost_label: {funnel.lost_label}\n"
        f"  exclude_attributes: [{excluded}]\n"
    )


def write_funnel_snippet(folder: Path, funnel: Funnel, *, source: str) -> Path:
    """Write :func:`funnel_snippet` to ``folder/funnel.yaml`` atomically; returns the path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SNIPPET
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".funnel-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(funnel_snippet(funnel, source=source))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def funnel_difference(mapping: Funnel, params: Funnel) -> str | None:
    """What differs between the mapping's funnel and the params file's, or None."""
    parts = []
    for key in ("stages", "won_label", "lost_label"):
        ours, theirs = getattr(mapping, key), getattr(params, key)
        if ours != theirs:
            show = (lambda v: f"[{', '.join(v)}]") if key == "stages" else repr
            parts.append(f"{key} {show(theirs)} instead of {show(ours)}")
    return "; ".join(parts) or None
