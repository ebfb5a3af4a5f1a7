"""The mapping file of ``dealcast import mapped``, as frozen pydantic models.

Unknown keys are errors (``extra="forbid"``), so a typo fails with a message naming the
key and its place. Shorthands keep files short: a column given as a plain string is
``{column: ...}``; an input given as a string is ``{file: ...}``; an activity given as a
string is ``{stage: ...}``; ``stage_history`` and ``touchpoints`` take one section or a
list of them. ``docs/importers/mapped.md`` is the reference.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError, field_validator, model_validator

from crm.importers.common import ImportInputError
from crm.importers.mapping_sections import (
    AccountColumn,
    AccountsMapping,
    Activity,
    DealColumn,
    DealsMapping,
    EventColumn,
    EventsMapping,
    FunnelSpec,
    HistoryColumn,
    Outcome,
    StageHistoryMapping,
    TouchColumn,
    TouchpointsMapping,
    WonList,
    _Table,
)
from crm.importers.mapping_sources import (
    Column,
    Currency,
    InputSpec,
    Join,
    Parsing,
    Rule,
    Scalar,
    Source,
    _column_shorthand,
    _columns_shorthand,
    _keys_as_text,
    _Model,
    _text,
)

__all__ = [
    "AccountColumn",
    "AccountsMapping",
    "Activity",
    "Column",
    "Currency",
    "DealColumn",
    "DealsMapping",
    "EventColumn",
    "EventsMapping",
    "FunnelSpec",
    "HistoryColumn",
    "InputSpec",
    "Join",
    "Mapping",
    "Outcome",
    "Parsing",
    "Rule",
    "Scalar",
    "Source",
    "StageHistoryMapping",
    "TouchColumn",
    "TouchpointsMapping",
    "WonList",
    "_Model",
    "_Table",
    "_column_shorthand",
    "_columns_shorthand",
    "_keys_as_text",
    "_problem",
    "_text",
    "load_mapping",
    "parse_mapping",
    "read_yaml",
]


class Mapping(_Model):
    """A whole mapping file."""

    funnel: FunnelSpec | None = None
    defaults: Parsing = Parsing()
    inputs: dict[str, InputSpec] = {}
    stages: dict[str, str | None] = {}
    channels: dict[str, str | None] = {}
    roles: dict[str, str | None] = {}
    deals: DealsMapping | None = None
    accounts: AccountsMapping | None = None
    stage_history: list[StageHistoryMapping] = []
    touchpoints: list[TouchpointsMapping] = []
    events: EventsMapping | None = None

    _names = field_validator("stages", "channels", "roles", mode="before")(_keys_as_text)

    @field_validator("inputs", mode="before")
    @classmethod
    def _input_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"file": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("stage_history", "touchpoints", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _has_deals(self) -> Mapping:
        if self.deals is None and self.events is None:
            raise ValueError(
                "the mapping needs a deals section (or an events section to build the deals from)"
            )
        return self


# --------------------------------------------------------------------------- loading


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. In YAML 1.1 ``on``, ``yes``, ``no`` and ``off``
    are booleans, which would turn ``on: key`` into ``True: key`` and ``IsDeleted: yes``
    into a bool."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


def read_yaml(text: str):
    """Parse YAML with YAML 1.2 booleans (see :class:`_Loader`)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file; raise ImportInputError with readable messages."""
    path = Path(path)
    try:
        raw = read_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ImportInputError(f"{path}: no such mapping file") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ImportInputError(f"{path}: cannot read the mapping file: {exc}") from None
    return parse_mapping(raw, where=str(path))


def parse_mapping(raw: Any, *, where: str = "mapping") -> Mapping:
    if not isinstance(raw, dict):
        raise ImportInputError(f"{where}: expected a mapping of sections (deals:, stages:, ...)")
    try:
        return Mapping.model_validate(raw)
    except ValidationError as exc:
        problems = [_problem(e) for e in exc.errors()]
        raise ImportInputError(f"{where}: " + "; ".join(dict.fromkeys(problems))) from None


def _problem(error: dict) -> str:
    loc = [str(p) for p in error["loc"] if not str(p).startswith(("function-", "tagged-"))]
    place = ".".join(loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(loc[-1], sorted(_ALL_KEYS), n=1, cutoff=0.7)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"{place}: unknown key{hint}"
    if error["type"] == "literal_error" and loc and loc[-1] == "[key]":
        return f"{'.'.join(loc[:-1])}: {error['msg']}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{place}: {message}"


_MODELS = (
    Parsing,
    InputSpec,
    Column,
    Join,
    Source,
    Currency,
    WonList,
    Outcome,
    DealsMapping,
    AccountsMapping,
    StageHistoryMapping,
    TouchpointsMapping,
    Activity,
    EventsMapping,
    FunnelSpec,
    Mapping,
)
_ALL_KEYS = {name for model in _MODELS for name in model.model_fields}
