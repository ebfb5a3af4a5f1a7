"""The typed feature spec: the settings that define the feature columns and their values.

A model is only valid on features built with the spec it was trained with: a different
``prior_strength`` changes every smoothed win rate without changing a column name, so a
column check alone cannot see it. The spec is saved with every model and compared
field by field before scoring (:meth:`FeatureSpec.differences`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class FeatureSpec:
    """What :func:`features.build.build_features` needs besides the data and the funnel,
    plus ``freq``, the spacing of the training snapshots (``params.yaml`` ``features:``)."""

    freq: str
    windows_days: tuple[int, ...]
    trend_days: int
    recency_channels: tuple[str, ...]
    prior_strength: float

    def __post_init__(self) -> None:
        # tuples and floats whatever the caller passed, so equal settings compare equal
        object.__setattr__(self, "windows_days", tuple(int(d) for d in self.windows_days))
        object.__setattr__(self, "recency_channels", tuple(str(c) for c in self.recency_channels))
        object.__setattr__(self, "trend_days", int(self.trend_days))
        object.__setattr__(self, "prior_strength", float(self.prior_strength))

    def build_kwargs(self) -> dict[str, object]:
        """The keyword arguments of ``build_features`` this spec fixes."""
        return {
            "windows_days": self.windows_days,
            "trend_days": self.trend_days,
            "recency_channels": self.recency_channels,
            "prior_strength": self.prior_strength,
        }

    def to_json(self) -> str:
        """Compact, key-sorted JSON (an MLflow tag or a model metadata value)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> FeatureSpec:
        """The spec written by :meth:`to_json`; ``ValueError`` if it is not one."""
        try:
            raw = json.loads(text)
            return cls(**{f.name: raw[f.name] for f in fields(cls)})
        except (TypeError, KeyError, ValueError) as exc:
            raise ValueError(f"not a feature spec: {text[:200]!r} ({exc})") from None

    def differences(self, other: FeatureSpec) -> list[tuple[str, object, object]]:
        """``(setting, self's value, other's value)`` for every setting that differs."""
        return [
            (f.name, getattr(self, f.name), getattr(other, f.name))
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


def describe_differences(
    diffs: list[tuple[str, object, object]], *, ours: str, theirs: str, section: str = "features"
) -> str:
    """``features.prior_strength: <ours> 20.0, <theirs> 1000.0; ...`` for a message."""
    return "; ".join(
        f"{section}.{name}: {ours} {_show(a)}, {theirs} {_show(b)}" for name, a, b in diffs
    )


def _show(value: object) -> str:
    return str(list(value)) if isinstance(value, tuple) else str(value)
