"""Nested metric trees (dicts of dicts) as strict JSON and as flat ``a.b.c`` names."""

from __future__ import annotations

import math

import numpy as np


def clean_json(value):
    """NaN/inf -> None (strict JSON), numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): clean_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def flatten(tree: dict, prefix: str = "") -> dict[str, object]:
    """Nested sections as ``a.b.c`` keys; lists as their text."""
    out: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= flatten(value, f"{name}.")
        else:
            out[name] = str(list(value)) if isinstance(value, list | tuple) else value
    return out


def numeric_metrics(tree: dict) -> dict[str, float]:
    """Every finite number in the metrics tree, keyed by its path (names without spaces
    or parentheses, as experiment trackers take them)."""
    out = {}
    for key, value in flatten(clean_json(tree)).items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if np.isfinite(value):
            out[key.replace(" ", "_").replace("(", "").replace(")", "")] = float(value)
    return out
