"""``dealcast import mapped``: any export, described by a mapping file.

:func:`import_mapped` reads the inputs the mapping names, builds each contract table the
mapping describes and finishes them with :func:`crm.importers.assemble.assemble`. The
mapping file reference is ``docs/importers/mapped.md``; the models are in
:mod:`crm.importers.mapping`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from crm.importers.assemble import assemble
from crm.importers.combine import open_marker
from crm.importers.common import (
    DERIVED,
    LINE,
    NOWHERE,
    ORDER,
    SRC,
    ImportInputError,
    ImportResult,
    ImportSummary,
)
from crm.importers.eventlog import deals_from_events, split_events
from crm.importers.extract import (
    Extractor,
    Inputs,
    listed_counts,
    normalise_direction,
)
from crm.importers.mapping import (
    AccountsMapping,
    Column,
    DealsMapping,
    EventsMapping,
    Mapping,
    Outcome,
    StageHistoryMapping,
    TouchpointsMapping,
    load_mapping,
)
from crm.importers.names import (
    channel_map,
    outcome_from_stage,
    role_map,
    stage_map,
    unmapped_notes,
)
from crm.importers.parsing import norm
from crm.importers.rows import source_rows
from crm.importers.snapshots import history_from_snapshots
from crm.provenance import plural
from crm.schemas import LOST, TIMESTAMP_DTYPE, WON, Funnel


def import_mapped(
    mapping: Path | Mapping, *, funnel: Funnel | None = None, base: Path | None = None
) -> ImportResult:
    """Import the exports a mapping file describes.

    ``mapping`` is a file (inputs are relative to its folder unless ``base`` is given)
    or an already parsed :class:`Mapping` (then ``base`` is required). The mapping's own
    ``funnel:`` wins over ``funnel`` (then returned as ``ImportResult.funnel``); one of the
    two is required. Raises :class:`ImportInputError` for unusable input; bad rows are left
    out and counted.
    """
    if isinstance(mapping, Mapping):
        if base is None:
            raise ValueError("base is required with a parsed mapping")
        m = mapping
    else:
        m = load_mapping(Path(mapping))
        base = base if base is not None else Path(mapping).parent
    own = mapping_funnel(m)
    funnel = own if own is not None else funnel
    if funnel is None:
        raise ImportInputError(
            "the funnel is unknown: add funnel: {stages: [...]} to the mapping file, or pass "
            "the params file whose funnel: section the stage names must match"
        )
    summary = ImportSummary("mapped")
    run = _Run(m, Inputs(m, base, summary), funnel, summary)
    data = run.tables()
    unmapped_notes(summary, funnel, where="in the mapping file")
    return ImportResult(data=data, summary=summary, funnel=own)


def mapping_funnel(m: Mapping) -> Funnel | None:
    """The funnel a mapping file carries (its ``funnel:`` section), if any."""
    if m.funnel is None:
        return None
    return Funnel(
        stages=tuple(m.funnel.stages),
        won_label=m.funnel.won_label,
        lost_label=m.funnel.lost_label,
        exclude_attributes=tuple(m.funnel.exclude_attributes),
    )


class _Run:
    def __init__(self, m: Mapping, inputs: Inputs, funnel: Funnel, summary: ImportSummary):
        self.m, self.inputs, self.funnel, self.summary = m, inputs, funnel, summary
        self.stages = stage_map(funnel, m.stages, where="stages")
        self.channels = channel_map(m.channels)
        self.roles = role_map(m.roles)

    def tables(self):
        deals = self._deals(self.m.deals) if self.m.deals is not None else None
        accounts = self._accounts(self.m.accounts) if self.m.accounts is not None else None
        history = [self._history(h, i, deals) for i, h in enumerate(self.m.stage_history)]
        touches = [self._touchpoints(t, i) for i, t in enumerate(self.m.touchpoints)]
        if self.m.events is not None:
            event_stages, event_touches, events = self._events(self.m.events)
            history.append(event_stages)
            touches.append(event_touches)
            if deals is None:
                deals = deals_from_events(events)
        assert deals is not None
        d = self.m.deals
        return assemble(
            self.summary,
            deals,
            accounts=accounts,
            stage_history=_concat(history),
            touchpoints=_concat(touches),
            combine=d.combine if d is not None else None,
            closed_before_created=d.closed_before_created if d is not None else "keep",
        )

    def _extractor(self, section, table: str, where: str) -> Extractor:
        rows = source_rows(self.inputs, section, table, where)
        return Extractor(
            rows,
            parsing=self.inputs.parsing(section.input),
            display=self.inputs.display(section.input),
            where=where,
            table=table,
            summary=self.summary,
        )

    # ----------------------------------------------------------------- deals

    def _deals(self, d: DealsMapping) -> pd.DataFrame:
        ex = self._extractor(d, "deals", "deals")
        cols: dict[str, pd.Series] = {}
        for name, spec in d.columns.items():
            required = name in ("deal_id", "created_at")
            if name == "amount":
                cols[name] = ex.numbers(spec, name, currency=d.currency)
            else:
                cols[name] = ex.typed(spec, name, required=required)
        for name, spec in d.attribute_columns().items():
            cols[name] = ex.typed(spec, name)
        outcome = self._outcome(ex, d)
        if outcome is not None:
            cols["outcome"] = outcome
        if d.order_by is not None:
            cols[ORDER] = ex.timestamps(d.order_by, "order_by", required=False)
        deals = ex.finish(cols)
        if d.outcome is not None and d.outcome.won_list is not None:
            deals = self._won_list(deals, d.outcome)
        if d.outcome is not None and d.outcome.not_won == "lost":
            deals = _lost_after(deals, d.outcome, self.summary)
        return deals

    def _outcome(self, ex: Extractor, d: DealsMapping) -> pd.Series | None:
        if d.outcome is not None and d.outcome.column is not None:
            raw = ex.raw(d.outcome.column, "outcome")
            values = {norm(k): v for k, v in d.outcome.values.items()}
            defaults = {
                norm(WON): WON,
                norm(LOST): LOST,
                norm(self.funnel.won_label): WON,
                norm(self.funnel.lost_label): LOST,
            }
            mapped = raw.map(
                lambda v: values.get(norm(v), defaults.get(norm(v), "?")), na_action="ignore"
            )
            odd = raw[mapped.eq("?")]
            if len(odd):
                listed = listed_counts(odd.value_counts().to_dict())
                self.summary.note(
                    f"deals.outcome: values not under outcome.values: {listed}; treated as "
                    "open (map them to won, lost or open)"
                )
            outcome = mapped.where(mapped.isin([WON, LOST])).astype("str")
            return open_marker(outcome, raw.where(mapped.notna()))
        if d.stage is not None:
            raw = ex.raw(d.stage, "stage")
            outcome = outcome_from_stage(self.stages, raw, self.summary, where="deals.stage")
            return open_marker(outcome, raw)
        return None

    def _won_list(self, deals: pd.DataFrame, outcome: Outcome) -> pd.DataFrame:
        spec = outcome.won_list
        assert spec is not None
        rows = self.inputs.frame(spec.input)
        ex = Extractor(
            rows,
            parsing=self.inputs.parsing(spec.input),
            display=self.inputs.display(spec.input),
            where="deals.outcome.won_list",
            table="deals",
            summary=self.summary,
        )
        key = ex.text(Column(column=spec.key), "key")
        won_at = (
            ex.timestamps(spec.closed_at, "closed_at", required=False)
            if spec.closed_at is not None
            else pd.Series(pd.NaT, index=rows.index, dtype=TIMESTAMP_DTYPE)
        )
        listed = pd.DataFrame({"deal_id": key, "won_at": won_at, SRC: rows[SRC], LINE: rows[LINE]})
        known = listed["deal_id"].isin(deals["deal_id"]).to_numpy()
        self.summary.joined(listed, "deals", known)
        listed = listed[known]
        first_win = listed.dropna(subset=["won_at"]).groupby("deal_id")["won_at"].min()
        deals = deals.copy()
        won = deals["deal_id"].isin(listed["deal_id"])
        deals["outcome"] = pd.Series(pd.NA, index=deals.index, dtype="str").mask(won, WON)
        closed = deals.get("closed_at", pd.Series(pd.NaT, index=deals.index, dtype=TIMESTAMP_DTYPE))
        win_time = pd.to_datetime(first_win.reindex(deals["deal_id"]).to_numpy(), utc=True)
        win_time = pd.Series(win_time, index=deals.index).astype(TIMESTAMP_DTYPE)
        deals["closed_at"] = win_time.fillna(closed).where(won)
        if outcome.not_won == "open":
            self.summary.note(
                f"{plural(int((~won).sum()), 'deal')} not on the won list kept open (censored); "
                "set not_won: lost with lost_after_days to close them after a horizon"
            )
        return deals

    # ----------------------------------------------------------------- other tables

    def _accounts(self, a: AccountsMapping) -> pd.DataFrame:
        ex = self._extractor(a, "accounts", "accounts")
        cols = {}
        for name, spec in a.columns.items():
            if name == "annual_revenue":
                cols[name] = ex.numbers(spec, name, currency=a.currency)
            else:
                cols[name] = ex.typed(spec, name, required=name == "account_id")
        for name, spec in a.attribute_columns().items():
            cols[name] = ex.typed(spec, name)
        return ex.finish(cols)

    def _history(self, h: StageHistoryMapping, i: int, deals: pd.DataFrame | None) -> pd.DataFrame:
        where = "stage_history" if len(self.m.stage_history) == 1 else f"stage_history[{i}]"
        ex = self._extractor(h, "stage_history", where)
        deal_id = ex.text(h.columns["deal_id"], "deal_id")
        if h.format == "stage_dates":
            return self._stage_dates(ex, h, deal_id, where)
        time_col = "entered_at" if h.format == "rows" else "snapshot_at"
        when = ex.timestamps(h.columns[time_col], time_col, required=True)
        stage, ignored = self.stages.apply(ex.raw(h.columns["stage"], "stage"), self.summary)
        cols = {"deal_id": deal_id, "stage": stage, time_col: when, "_ign": ignored}
        if "previous_stage" in h.columns:
            cols["_prev"] = ex.raw(h.columns["previous_stage"], "previous_stage")
        rows = ex.finish(cols)
        self.summary.leave_out(
            "stage_history", rows[rows["_ign"]], "stage mapped to null under stages: (ignored)"
        )
        rows = rows[~rows.pop("_ign")]
        if h.format == "snapshots":
            return history_from_snapshots(
                rows,
                self.summary,
                vanished=h.vanished,
                every=h.snapshot_every,
                timezone=ex.timezone(h.columns["snapshot_at"]),
                partial_below=h.partial_below,
            )
        if "_prev" in rows:
            initial = self._initial_stages(rows, deals)
            rows = pd.concat([initial, rows.drop(columns=["_prev"])], ignore_index=True)
        return rows

    def _initial_stages(self, rows: pd.DataFrame, deals: pd.DataFrame | None) -> pd.DataFrame:
        """A change log misses the stage a deal was created in: it is the previous stage
        of the deal's first change, entered at the deal's created_at."""
        first = rows.sort_values(["entered_at", LINE]).drop_duplicates("deal_id")
        first = first.dropna(subset=["_prev"])
        created = (
            deals.dropna(subset=["deal_id"]).drop_duplicates("deal_id").set_index("deal_id")
            if deals is not None
            else pd.DataFrame(columns=["created_at"])
        )["created_at"]
        stage, ignored = self.stages.apply(first["_prev"], self.summary)
        out = pd.DataFrame(
            {
                "deal_id": first["deal_id"].to_numpy(),
                "stage": stage.to_numpy(),
                "entered_at": first["deal_id"].map(created).to_numpy(),
                SRC: DERIVED,
                LINE: 0,
            }
        )[~ignored]
        out = out.dropna(subset=["entered_at"])
        self.summary.note(
            f"{plural(len(out), 'stage_history row')} derived: the stage each deal was created "
            "in (previous_stage of its first change, at created_at)"
        )
        return out

    def _stage_dates(
        self, ex: Extractor, h: StageHistoryMapping, deal_id: pd.Series, where: str
    ) -> pd.DataFrame:
        parts = []
        for column, stage_name in h.stage_dates.items():
            if stage_name is None:
                continue
            stage = self.stages.target(stage_name)
            if stage not in self.funnel.states:
                raise ImportInputError(
                    f"{where}.stage_dates: {column!r} maps to {stage_name!r}, which is neither a "
                    f"funnel stage ({', '.join(self.funnel.states)}) nor mapped under stages:"
                )
            when = ex.timestamps(Column(column=column), f"stage_dates[{column}]", required=False)
            parts.append(
                pd.DataFrame(
                    {
                        "deal_id": deal_id,
                        "stage": stage,
                        "entered_at": when,
                        SRC: ex.frame[SRC],
                        LINE: ex.frame[LINE],
                    }
                )
            )
        if not parts:
            return pd.DataFrame(columns=["deal_id", "stage", "entered_at", SRC, LINE])
        rows = pd.concat(parts, ignore_index=True)
        return rows[rows["entered_at"].notna()].reset_index(drop=True)

    def _touchpoints(self, t: TouchpointsMapping, i: int) -> pd.DataFrame:
        where = "touchpoints" if len(self.m.touchpoints) == 1 else f"touchpoints[{i}]"
        ex = self._extractor(t, "touchpoints", where)
        cols = {}
        for name, spec in t.columns.items():
            cols[name] = ex.typed(spec, name, required=name == "occurred_at")
        for name, spec in t.attribute_columns().items():
            cols[name] = ex.typed(spec, name)
        return self._touch_names(ex.finish(cols), where)

    def _touch_names(self, rows: pd.DataFrame, where: str) -> pd.DataFrame:
        rows = rows.copy()
        channel, ignored = self.channels.apply(rows["channel"], self.summary)
        rows["channel"] = channel
        self.summary.leave_out(
            "touchpoints", rows[ignored], "channel mapped to null under channels: (ignored)"
        )
        rows = rows[~ignored]
        if "contact_role" in rows.columns:
            role, _ = self.roles.apply(rows["contact_role"], self.summary)
            rows["contact_role"] = role
        if "direction" in rows.columns:
            rows["direction"] = normalise_direction(rows["direction"], self.summary, where)
        return rows

    def _events(self, e: EventsMapping) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        ex = self._extractor(e, NOWHERE, "events")
        cols = {}
        for name, spec in e.columns.items():
            cols[name] = ex.typed(spec, name, required=name == "timestamp")
        events = ex.finish(cols)
        stage_rows, touch_rows = split_events(
            events, e.activities, stages=self.stages, funnel=self.funnel, summary=self.summary
        )
        return stage_rows, self._touch_names(touch_rows, "events"), events


def _lost_after(deals: pd.DataFrame, outcome: Outcome, summary: ImportSummary) -> pd.DataFrame:
    """Deals without an outcome ``lost_after_days`` after created_at are lost then,
    provided that moment is on or before the export date; younger deals stay open."""
    horizon = pd.Timedelta(days=float(outcome.lost_after_days or 0))
    deals = deals.copy()
    if "closed_at" not in deals:
        deals["closed_at"] = pd.Series(pd.NaT, index=deals.index, dtype=TIMESTAMP_DTYPE)
    if outcome.export_date is not None:
        export = pd.Timestamp(outcome.export_date, tz="UTC")
    else:
        export = pd.concat([deals["created_at"], deals["closed_at"]]).max()
    deadline = deals["created_at"] + horizon
    undecided = ~deals["outcome"].isin([WON, LOST])
    lost = undecided & (deadline <= export)
    deals.loc[lost, "outcome"] = LOST
    deals.loc[lost, "closed_at"] = deadline[lost]
    young = ~deals["outcome"].isin([WON, LOST]) & deals["created_at"].notna()
    summary.note(
        f"{plural(int(lost.sum()), 'deal')} without an outcome closed as lost "
        f"{outcome.lost_after_days:g} days after created_at; {int(young.sum())} younger than "
        f"that at the export date ({export.date()}) kept open"
    )
    return deals


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame | None:
    frames = [f for f in frames if f is not None]
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True)
