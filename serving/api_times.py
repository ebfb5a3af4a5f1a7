"""The scoring API's one timestamp format: ISO 8601 in UTC with a ``Z``, whole seconds
(``2026-06-30T00:00:00Z``), in fields and inside messages alike.

Fields are formatted by :func:`iso_utc` (the exports' own, :func:`serving.export.iso_utc`)
where the API writes them; messages that come from
the layers below (the contract's validator, the scorer, the explanation) print pandas'
``2026-06-30 00:00:00+00:00`` and are rewritten by :func:`uniform_times` before they are
sent. A bare date (``2026-09-30``) in a message is a day, not a moment, and stays a date.
"""

from __future__ import annotations

import re

from serving.export import iso_utc  # the exports' format too: one format everywhere

#: A date with a time of day, optional seconds, fraction and offset (``Z``, ``+02:00``).
_MOMENT = re.compile(
    r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2}\b)?"
)


def uniform_times(text: str) -> str:
    """``text`` with every moment in it (pandas', ISO with an offset, ...) in the API's one
    format; anything that does not parse as a moment is left as it is."""
    if not isinstance(text, str) or not _MOMENT.search(text):
        return text
    return _MOMENT.sub(_one, text)


def _one(match: re.Match) -> str:
    try:
        return iso_utc(match.group(0))
    except ValueError:
        return match.group(0)
