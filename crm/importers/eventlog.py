"""Stage history, touchpoints and deals from an event log.

An event log has one row per event: a deal (a "case"), an activity name and a timestamp
(process-mining logs, marketing-automation activity exports, audit trails). A map from
activity names says what each activity means: entering a funnel stage, reaching an
outcome (``won``/``lost``, a stage row like any other), a touchpoint on a channel, or
both a stage and a touchpoint (a meeting held moves the deal to ``meeting``). Activities
mapped to ``null`` are ignored; activities not in the map are left out and listed in the
summary so they can be added.

Without a deals section, the log also gives the deals: one per case, created at its first
event (of any activity). Outcomes then come from the stage history (last row won/lost).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from crm.importers.common import LINE, NOWHERE, SRC, ImportInputError, ImportSummary
from crm.importers.mapping import Activity
from crm.importers.names import NameMap
from crm.importers.parsing import norm
from crm.schemas import Funnel

TOUCH_COLUMNS = ("touchpoint_id", "account_id", "contact_id", "contact_role", "direction")


def split_events(
    events: pd.DataFrame,
    activities: Mapping[str, Activity | None],
    *,
    stages: NameMap,
    funnel: Funnel,
    summary: ImportSummary,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``events`` has deal_id, activity, timestamp (UTC), optional touchpoint columns and
    SRC/LINE. Returns (stage rows, touchpoint rows)."""
    meaning = {norm(name): spec for name, spec in activities.items()}
    for name, spec in activities.items():
        if spec is not None and spec.stage is not None:
            target = stages.target(spec.stage)
            if target not in funnel.states:
                raise ImportInputError(
                    f"events.activities: {name!r} enters stage {spec.stage!r}, which is not a "
                    f"funnel stage ({', '.join(funnel.states)}) nor mapped under stages:"
                )
    missing = events["deal_id"].isna() | events["timestamp"].isna() | events["activity"].isna()
    summary.leave_out(NOWHERE, events[missing], "no deal_id, activity or timestamp")
    events = events[~missing]
    keys = events["activity"].map(norm)
    known = keys.isin(meaning.keys()).to_numpy()
    if (~known).any():
        counts = events.loc[~known, "activity"].value_counts()
        summary.count_unmapped("activity", counts.to_dict())
        summary.leave_out(NOWHERE, events[~known], "activity not in events.activities")
    ignored = known & keys.map(lambda k: meaning.get(k) is None).to_numpy(dtype=bool)
    summary.leave_out(NOWHERE, events[ignored], "activity mapped to null (ignored)")
    used = events[known & ~ignored]
    specs = used["activity"].map(lambda a: meaning[norm(a)])
    stage_rows = _stage_rows(used, specs, stages)
    touch_rows = _touch_rows(used, specs)
    return stage_rows, touch_rows


def _stage_rows(used: pd.DataFrame, specs: pd.Series, stages: NameMap) -> pd.DataFrame:
    has = specs.map(lambda s: s.stage is not None).to_numpy(dtype=bool)
    rows = used[has]
    stage = specs[has].map(lambda s: stages.target(s.stage))
    return pd.DataFrame(
        {
            "deal_id": rows["deal_id"].to_numpy(),
            "stage": stage.to_numpy(dtype=object),
            "entered_at": rows["timestamp"].to_numpy(),
            SRC: rows[SRC].to_numpy(),
            LINE: rows[LINE].to_numpy(),
        }
    ).astype({"stage": "str"})


def _touch_rows(used: pd.DataFrame, specs: pd.Series) -> pd.DataFrame:
    has = specs.map(lambda s: s.touchpoint is not None).to_numpy(dtype=bool)
    rows = used[has]
    out = pd.DataFrame(
        {
            "deal_id": rows["deal_id"].to_numpy(),
            "occurred_at": rows["timestamp"].to_numpy(),
            "channel": specs[has].map(lambda s: s.touchpoint).to_numpy(dtype=object),
        }
    ).astype({"channel": "str"})
    default_direction = specs[has].map(lambda s: s.direction).to_numpy(dtype=object)
    for column in TOUCH_COLUMNS:
        if column in rows.columns:
            out[column] = rows[column].to_numpy()
    if "direction" in out.columns:
        out["direction"] = out["direction"].fillna(pd.Series(default_direction)).astype("str")
    else:
        out["direction"] = pd.Series(default_direction, dtype="str")
    out[SRC] = rows[SRC].to_numpy()
    out[LINE] = rows[LINE].to_numpy()
    return out


def deals_from_events(events: pd.DataFrame) -> pd.DataFrame:
    """One candidate deal row per event (assemble combines them: earliest = created_at)."""
    out = pd.DataFrame(
        {
            "deal_id": events["deal_id"].to_numpy(),
            "created_at": events["timestamp"].to_numpy(),
            SRC: events[SRC].to_numpy(),
            LINE: events[LINE].to_numpy(np.int64),
        }
    )
    if "account_id" in events.columns:
        out["account_id"] = events["account_id"].to_numpy()
    return out
