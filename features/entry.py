"""One entry of the feature catalogue (:class:`Feature`) and the column-name rule.

The family modules declare their ``CATALOG`` with these; :mod:`features.catalog` collects
the families (kept apart so that no family imports the module that imports it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["number", "category", "number or category", "flag", "label"]


@dataclass(frozen=True)
class Feature:
    """One column, or one family of columns when ``name`` holds a ``{placeholder}``."""

    name: str
    family: str
    kind: Kind
    meaning: str

    def pattern(self) -> re.Pattern[str]:
        """A regex matching every column name this entry expands to."""
        parts = re.split(r"(\{[a-z]+\})", self.name)
        body = "".join(
            (r"\d+" if p in ("{window}", "{horizon}") else r"[a-z0-9_]+")
            if p.startswith("{")
            else re.escape(p)
            for p in parts
        )
        return re.compile(f"^{body}$")


def column_name(text: object) -> str:
    """A value (channel, attribute, ...) as a lower-case snake-case column-name part."""
    name = re.sub(r"[^a-z0-9]+", "_", str(text).strip().lower()).strip("_")
    return name or "blank"
