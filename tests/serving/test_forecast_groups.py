"""The forecast per owner and per segment (``serving.forecast_groups``), the grouped draws
(``serving.forecast_simulate.simulate_open_by``) and the forecast workbook
(``serving.forecast_xlsx``): hand-made frames, each test well under a second."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from crm.data import CRMData
from serving.forecast_groups import (
    NOT_YET_CREATED,
    OTHER,
    UNKNOWN,
    UnknownGroupingError,
    group_text,
    segment_columns,
)
from serving.forecast_groups import grouping_of as _grouping_of
from serving.forecast_simulate import revenue_forecast, revenue_forecast_by, simulate_open_by
from serving.forecast_xlsx import forecast_about, forecast_xlsx_bytes, sheet_name

AS_OF = pd.Timestamp("2025-06-10", tz="UTC")


def grouping_of(data, by, max_groups=40):
    return _grouping_of(data, by, max_groups=max_groups)


def crm() -> CRMData:
    """Twelve months of monthly wins (for the timing and new deals) by owners U1/U2, and
    six open deals: U1 (named), U2 (named), one with no owner; accounts with an industry
    (one account unknown to the accounts table, one deal without an account)."""
    rows = []
    for m in range(1, 13):
        month = f"2024-{m:02d}"
        rows.append((f"W{m}", f"{month}-02", f"{month}-20", "won", 100.0 * m, "U1", "A1"))
    for i, (owner, account) in enumerate(
        [("U1", "A1"), ("U1", "A2"), ("U2", "A2"), ("U2", "A3"), (None, "A9"), ("U2", None)]
    ):
        rows.append((f"O{i}", "2025-05-01", None, None, 1000.0 * (i + 1), owner, account))
    rows.append(("WJ", "2025-05-02", "2025-06-03", "won", 500.0, "U2", "A3"))  # won in June
    ids, created, closed, outcome, amount, owner, account = zip(*rows, strict=True)
    deals = pd.DataFrame(
        {
            "deal_id": pd.array(ids, dtype="str"),
            "created_at": pd.to_datetime(list(created), utc=True),
            "closed_at": pd.to_datetime(list(closed), utc=True),
            "outcome": pd.array(outcome, dtype="str"),
            "amount": np.asarray(amount, float),
            "owner_id": pd.array(owner, dtype="str"),
            "owner_name": pd.array(
                ["Jürgen Müller" if o == "U1" else "Ana Silva" if o else None for o in owner],
                dtype="str",
            ),
            "account_id": pd.array(account, dtype="str"),
            "source": pd.Categorical(["inbound", "partner"] * (len(ids) // 2) + ["inbound"]),
            "competitor_present": np.zeros(len(ids)),  # numeric: no segment
        }
    )
    accounts = pd.DataFrame(
        {
            "account_id": pd.array(["A1", "A2", "A3"], dtype="str"),
            "industry": pd.Categorical(["software", "retail", "software"]),
            "employees": [10.0, 20.0, 30.0],
            "tier": pd.array(["gold", "silver", "gold"], dtype="str"),  # a text attribute
        }
    )
    return CRMData(deals=deals, accounts=accounts)


def forecast_kwargs(data: CRMData, **overrides) -> dict:
    deals = data.deals
    open_deals = deals[deals["closed_at"].isna()].assign(stage="proposal", p_win=0.4)
    wins = pd.DataFrame({"stage": ["proposal"] * 6, "days": [5.0, 10, 20, 35, 50, 70]})
    return {
        "deals": deals, "open_deals": open_deals.reset_index(drop=True), "wins": wins,
        "as_of": AS_OF, "months": 3, "quarters": 2, "horizon_days": 90, "won_label": "won",
        "sigmas": {"month": 0.4, "quarter": 0.3}, "draws": 4000, "seed": 7,
        "min_stage_wins": 0, "new_deal_origins": 3, "calendar_prior_days": 30,
    } | overrides  # fmt: skip


def test_the_choices_are_owner_and_the_text_segments_of_deals_and_accounts():
    assert list(segment_columns(crm())) == ["owner", "source", "industry", "tier"]
    owner = grouping_of(crm(), "owner")
    assert owner.column == "owner_id" and owner.keys == ("U1", "U2", UNKNOWN)
    assert owner.names == ("Jürgen Müller", "Ana Silva", UNKNOWN)
    assert grouping_of(crm(), "owner_id").keys == owner.keys  # the column's own name works
    assert grouping_of(crm(), "Industry").by == "industry"  # and any capitalisation
    industry = grouping_of(crm(), "industry")
    assert industry.keys == ("retail", "software", UNKNOWN)
    codes = {deal: industry.keys[code] for deal, code in industry.of_deal.items()}
    assert codes["O0"] == "software" and codes["O1"] == "retail"
    assert codes["O4"] == UNKNOWN and codes["O5"] == UNKNOWN  # account not in accounts / none


def test_an_unknown_column_names_itself_and_the_valid_choices():
    for bad in ("colour", "amount", "competitor_present", "deal_id"):
        with pytest.raises(UnknownGroupingError) as error:
            grouping_of(crm(), bad)
        assert f"{bad!r}" in str(error.value)
        assert "choose one of: owner, source, industry, tier" in str(error.value)


def test_the_groups_add_up_to_the_total_draw_by_draw():
    rng = np.random.default_rng(1)
    n, g = 30, 4
    p, amount = rng.uniform(0.1, 0.9, n), rng.uniform(10, 100, n)
    shares = rng.dirichlet(np.ones(g + 1), n)[:, :g]
    code = rng.integers(0, 3, n)
    alone = simulate_open_by(p, amount, shares, sigma=0.5, draws=3000,
                             rng=np.random.default_rng(2), chunk=700)[0]  # fmt: skip
    total, (grouped,) = simulate_open_by(
        p, amount, shares, sigma=0.5, draws=3000, rng=np.random.default_rng(2), chunk=700,
        codes=[(code, 3)],
    )  # fmt: skip
    assert np.array_equal(alone, total)  # grouping draws no random number of its own
    assert grouped.shape == (3000, 3, g)
    assert np.allclose(grouped.sum(axis=1), total)
    fold = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], float)
    _, (folded,) = simulate_open_by(
        p, amount, shares, sigma=0.5, draws=3000, rng=np.random.default_rng(2), chunk=700,
        codes=[(code, 3)], fold=fold,
    )  # fmt: skip
    assert np.allclose(folded, grouped @ fold)


def test_group_means_add_up_to_the_total_mean_and_the_total_is_unchanged():
    data = crm()
    kwargs = forecast_kwargs(data)
    groupings = [grouping_of(data, "owner"), grouping_of(data, "industry")]
    total, by = revenue_forecast_by(groupings=groupings, **kwargs)
    pd.testing.assert_frame_equal(total, revenue_forecast(**kwargs), check_exact=True)
    assert set(by) == {"owner", "industry"}
    for table in by.values():
        money = ["already_won", "open_expected", "new_expected", "forecast"]
        sums = table.groupby("period", sort=False)[money].sum()
        assert np.allclose(sums.to_numpy(), total.set_index("period")[money].to_numpy())
        assert (table["p10"] <= table["p50"]).all() and (table["p50"] <= table["p90"]).all()
    owners = by["owner"]
    june = owners[owners["period"] == "2025-06"].set_index("group")
    assert june.loc["U2", "already_won"] == 500.0 and june.loc["U1", "already_won"] == 0.0
    assert list(june["open_deals"]) == [2, 3, 1, 0]  # U1, U2, (unknown), not yet created
    assert june.loc[NOT_YET_CREATED, "forecast"] == total.loc[0, "new_expected"]
    assert june.loc[UNKNOWN, "name"] == UNKNOWN and june.loc["U1", "name"] == "Jürgen Müller"
    # the P50s do not add up (quantiles are not additive), the means do
    assert june["p50"].sum() != pytest.approx(total.loc[0, "p50"])


def test_one_group_has_the_total_s_own_open_pipeline_range():
    data = crm()
    kwargs = forecast_kwargs(data, new_deal_origins=1)
    everyone = grouping_of(data.with_table("deals", data.deals.assign(owner_id="U1")), "owner")
    total, by = revenue_forecast_by(groupings=[everyone], **kwargs)
    rows = by["owner"][by["owner"]["group"] == "U1"].reset_index(drop=True)
    new = total["new_expected"]
    # no new-deal spread here (one origin): the group's range is the total's minus it
    assert np.allclose(rows["p50"], total["p50"] - new)
    assert np.allclose(rows["p90"], total["p90"] - new)


def test_the_short_table_lists_groups_largest_first_then_the_total():
    data = crm()
    total, by = revenue_forecast_by(groupings=[grouping_of(data, "owner")],
                                    **forecast_kwargs(data))  # fmt: skip
    # Q2 ends 21 days after as_of: the next quarter is shown, and the heading says why
    lines = group_text(by["owner"], total, as_of=AS_OF).splitlines()
    assert lines[0] == "forecast by owner, 2025-Q3 (2025-Q2 ends in 21 days):"
    assert lines[1].split()[:3] == ["owner", "open", "deals"]
    assert lines[-2].startswith(NOT_YET_CREATED) and lines[-1].startswith("total")
    assert any(line.startswith("Jürgen Müller ") for line in lines)  # the owner's name
    means = [float(line[26:].split()[4].replace(",", "")) for line in lines[2:-2]]
    assert means == sorted(means, reverse=True)
    q3 = total.set_index("period").loc["2025-Q3"]
    assert lines[-1].split()[-4:] == [f"{v:,.0f}" for v in q3[["forecast", "p10", "p50", "p90"]]]
    early = group_text(by["owner"], total, as_of=AS_OF - pd.Timedelta(days=30))
    assert early.startswith("forecast by owner, 2025-Q2:")


def test_the_workbook_has_its_sheets_whole_money_currency_and_dates():
    from openpyxl import load_workbook

    data = crm()
    total, by = revenue_forecast_by(groupings=[grouping_of(data, "owner")],
                                    **forecast_kwargs(data))  # fmt: skip
    by["owner"].loc[by["owner"]["group"] == "U1", "name"] = "=cmd|' /C calc'!A0"
    about = forecast_about(
        as_of=AS_OF, horizon_days=90, draws=4000, sigma={"month": 0.4, "quarter": 0.3},
        open_deals=6, currency="EUR", metrics={}, messages=["no backtest shown: none in x"],
        model_version="close/3", data_fingerprint="abc", by=("owner",),
    )  # fmt: skip
    raw = forecast_xlsx_bytes(total, about=about, as_of=AS_OF, currency="EUR", groups=by)
    assert raw == forecast_xlsx_bytes(total, about=about, as_of=AS_OF, currency="EUR",
                                      groups=by)  # deterministic  # fmt: skip
    wb = load_workbook(io.BytesIO(raw))
    assert wb.sheetnames == ["months", "quarters", "by owner", "about"]
    quarters = wb["quarters"]
    assert [c.value for c in quarters["A"][1:]] == ["2025-Q2", "2025-Q3"]
    assert quarters["B2"].value == datetime(2025, 4, 1) and quarters["C2"].value == datetime(
        2025, 6, 30
    )
    assert quarters["B2"].number_format == "yyyy-mm-dd" and quarters.freeze_panes == "B2"
    for row in quarters.iter_rows(min_row=2, min_col=4):
        for cell in row:
            assert isinstance(cell.value, int) and cell.number_format == '#,##0 "EUR"'
    assert quarters["G2"].value == round(total.loc[3, "forecast"])  # mean (expected)
    owners = wb["by owner"]
    names = {c.value: c for c in owners["B"][1:]}
    assert names["=cmd|' /C calc'!A0"].data_type == "s"  # text, never a formula
    about_rows = {r[0].value: r[1].value for r in wb["about"].iter_rows(min_row=2)}
    assert about_rows["as of (UTC)"] == datetime(2025, 6, 10)
    assert about_rows["backtest"] == "no backtest shown: none in x"
    assert sheet_name("by a/b:c[d]*e?" + "x" * 40) == "by a_b_c_d__e_" + "x" * 17


def test_the_about_sheet_carries_the_backtest_shown():
    metrics = {
        "cutoff": "2025-01-01 00:00:00+00:00",
        "methods": {
            "stage_weighted": {"periods": 5, "wape": 0.7, "bias": 0.1, "coverage_p10_p90": 0.4},
            "dealcast": {"periods": 5, "wape": 0.2, "bias": -0.05, "coverage_p10_p90": 0.8,
                         "by_horizon": {"quarter_at_start": {"periods": 2, "wape": 0.1,
                                        "bias": 0.02, "coverage_p10_p90": 1.0}}},
        },
    }  # fmt: skip
    about = forecast_about(as_of=AS_OF, horizon_days=90, draws=100, sigma={}, open_deals=1,
                           currency=None, metrics=metrics, messages=[])  # fmt: skip
    keys = [k for k in about if k.startswith("backtest: ")]
    assert keys == [
        "backtest: dealcast, months forecast at their first day",
        "backtest: dealcast, quarters forecast at their first day",
        "backtest: stage-weighted (amount x stage win rate), months forecast at their first day",
    ]
    assert about["backtest: dealcast, months forecast at their first day"] == (
        "WAPE 0.200, bias -5.0%, 80% of 5 periods inside P10-P90"
    )
    assert "2025-01-01" in about["backtest"] and "the deal currency" in about["money"]


def test_values_beyond_max_groups_are_one_other_group():
    data = crm()
    full = grouping_of(data, "owner")
    assert full.keys == ("U1", "U2", UNKNOWN)
    counts = data.deals["owner_id"].value_counts()
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    capped = grouping_of(data, "owner", max_groups=1)
    assert capped.keys == (top, OTHER, UNKNOWN) and capped.names[1] == OTHER
    codes = capped.codes(data.deals["deal_id"])
    other = data.deals["owner_id"].notna() & (data.deals["owner_id"] != top)
    assert (codes == 1).sum() == other.sum() > 0
    assert grouping_of(data, "owner", max_groups=2).keys == full.keys  # room for all: as is
