"""Dirt of real CRM exports, injected into clean synthetic data (``messy=True``).

What is injected (shares of rows; at least a few rows each):

* deals: duplicate rows (same ``deal_id`` twice; some copies carry an edited amount),
  blank ``amount`` (optional column: models must cope), blank ``created_at`` (a required
  value: the validator must report an error);
* touchpoints: unknown channel names (``linkedin_inmail``, ``Phone``, ``zoom_call``; the
  validator warns);
* mixed time zones: ``deals.created_at``/``closed_at`` and ``stage_history.entered_at``
  become ISO 8601 strings, most in UTC with ``Z``, some with a UTC offset (``+05:30``,
  ``-08:00``, ...; local wall time, same instant) and some without a zone (UTC by the
  contract). This is the one kind of dirt a typed frame cannot hold, so these columns are
  ``str`` in the messy frames; the writer writes them verbatim and a correct reader gets
  the clean instants back.

Everything else stays typed as in clean data, and the truth frame is unchanged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from crm.data import CRMData

UNKNOWN_CHANNELS = ("linkedin_inmail", "Phone", "zoom_call")
#: (share of rows, minimum rows)
DUPLICATES, BLANK_AMOUNT, BLANK_CREATED, UNKNOWN_CHANNEL = (
    (0.005, 3),
    (0.03, 3),
    (0.002, 2),
    (0.01, 3),
)
OFFSETS = ("+01:00", "+02:00", "-05:00", "-08:00", "+05:30", "+09:00")
#: Shares of timestamps written with Z, with an offset, without a zone.
ZONE_SHARES = (0.6, 0.25, 0.15)
Z, OFFSET, NAIVE = range(3)


def make_messy(rng: np.random.Generator, data: CRMData) -> tuple[CRMData, dict[str, int]]:
    """``data`` with the dirt above, and how many rows got each kind of dirt."""
    deals, dirt = _dirty_deals(rng, data.deals)
    messy = data.with_table("deals", deals)
    if data.stage_history is not None:
        history = data.stage_history.copy()
        zones = _zones(rng, len(history))
        history["entered_at"] = zoned_text(
            history["entered_at"], zones, _offsets(rng, len(history))
        )
        messy = messy.with_table("stage_history", history)
        dirt["offset_timestamps"] += int((zones == OFFSET).sum())
        dirt["naive_timestamps"] += int((zones == NAIVE).sum())
    if data.touchpoints is not None:
        touches, n_unknown = _unknown_channels(rng, data.touchpoints)
        messy = messy.with_table("touchpoints", touches)
        dirt["unknown_channel"] = n_unknown
    return messy, dirt


def zoned_text(ts: pd.Series, zones: np.ndarray, offsets: np.ndarray) -> pd.Series:
    """UTC timestamps as ISO 8601 text: with Z, at a UTC offset, or naive (by ``zones``).

    ``offsets`` gives the offset string of each row used where ``zones == OFFSET``.
    Missing timestamps stay missing.
    """
    out = ts.dt.strftime("%Y-%m-%dT%H:%M:%SZ").astype("str")
    naive = zones == NAIVE
    out[naive] = ts[naive].dt.strftime("%Y-%m-%d %H:%M:%S")
    for offset in np.unique(offsets[zones == OFFSET]):
        rows = (zones == OFFSET) & (offsets == offset)
        local = ts[rows] + _offset_delta(offset)
        out[rows] = local.dt.strftime("%Y-%m-%dT%H:%M:%S") + offset
    out[ts.isna().to_numpy()] = np.nan
    return out.astype("str")


def _dirty_deals(rng: np.random.Generator, deals: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    n = len(deals)
    out = deals.copy()
    blank_amount = _pick(rng, n, *BLANK_AMOUNT)
    out.loc[blank_amount, "amount"] = np.nan
    zones, offsets = _zones(rng, n), _offsets(rng, n)
    out["created_at"] = zoned_text(deals["created_at"], zones, offsets)
    out["closed_at"] = zoned_text(deals["closed_at"], zones, offsets)
    blank_created = _pick(rng, n, *BLANK_CREATED)
    out.loc[blank_created, "created_at"] = np.nan
    dup = _pick(rng, n, *DUPLICATES)
    copies = out.iloc[dup].copy()
    edited = rng.random(len(dup)) < 0.4
    copies.loc[copies.index[edited], "amount"] = np.round(copies["amount"][edited] * 1.1, -2)
    key = np.concatenate([np.arange(n, dtype=np.float64), dup + rng.uniform(0.5, 50.0, len(dup))])
    both = pd.concat([out, copies], ignore_index=True)
    both = both.iloc[np.argsort(key, kind="stable")].reset_index(drop=True)
    dirt = {
        "duplicate_deal_rows": len(dup),
        "blank_amount": len(blank_amount),
        "blank_created_at": len(blank_created),
        "offset_timestamps": int((zones == OFFSET).sum()),
        "naive_timestamps": int((zones == NAIVE).sum()),
    }
    return both, dirt


def _unknown_channels(rng: np.random.Generator, touches: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    out = touches.copy()
    rows = _pick(rng, len(out), *UNKNOWN_CHANNEL)
    channel = out["channel"].cat.add_categories(list(UNKNOWN_CHANNELS))
    names = np.array(UNKNOWN_CHANNELS, dtype=object)[
        rng.integers(0, len(UNKNOWN_CHANNELS), len(rows))
    ]
    channel.iloc[rows] = names
    out["channel"] = channel
    return out, len(rows)


def _pick(rng: np.random.Generator, n: int, share: float, minimum: int) -> np.ndarray:
    """Sorted distinct row positions: ``share`` of ``n`` rows, at least ``minimum``."""
    k = min(n, max(minimum, round(share * n)))
    return np.sort(rng.choice(n, size=k, replace=False))


def _zones(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.choice(3, size=n, p=ZONE_SHARES)


def _offsets(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array(OFFSETS, dtype=object)[rng.integers(0, len(OFFSETS), n)]


def _offset_delta(offset: str) -> pd.Timedelta:
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = (int(x) for x in offset[1:].split(":"))
    return sign * pd.Timedelta(hours=hours, minutes=minutes)
