"""Issue 16 item 11: owner file names that collide or overflow, amounts that overflow the
forecast, and messages that named the wrong problem."""

from __future__ import annotations

import codecs

import pandas as pd
import pytest
from leads_fixtures import AS_OF, TINY_CRM, assert_clean_exit_2, invoke, leads, tiny_crm

from crm.schemas import MAX_AMOUNT
from pipelines.scoring import export_stem, write_export
from serving.score import FeatureMismatchError, check_feature_columns


def _owner_export(tmp_path, owner: str):
    frame = leads(["D1"])
    frame["owner_id"] = pd.array([owner], dtype="str")
    return write_export(frame, tmp_path, as_of=AS_OF, horizon_days=180, priority="p_win",
                        owners=(owner,))  # fmt: skip


@pytest.mark.parametrize(
    "owners",
    [("a/b", "a-b"), ("a_b", "a-b", "a%5Fb"), ("x", "x_owner-y"), ("Ann", "Änn"), ("..", "%2E")],
)
def test_different_owners_never_share_a_file_name(owners):
    stems = {export_stem(AS_OF, (o,)) for o in owners}
    assert len(stems) == len(owners)
    assert all("/" not in s and "\\" not in s for s in stems)


def test_owner_file_names_keep_letters_and_are_safe():
    assert export_stem(AS_OF, ("José Müller",)).endswith("_owner-José%20Müller")
    assert export_stem(AS_OF, ("a/b",)).endswith("_owner-a%2Fb")
    assert export_stem(AS_OF, ("U2", "U1")) == export_stem(AS_OF, ("U1", "U2", "U1"))


def test_a_300_character_owner_is_written_under_a_short_name(tmp_path):
    owner = "U" * 300
    files = _owner_export(tmp_path, owner)
    assert files["csv"].is_file()
    assert all(len(part.encode()) < 255 for p in files.values() for part in p.parts)
    other = export_stem(AS_OF, ("U" * 299 + "V",))
    assert other != files["csv"].parent.name
    assert pd.read_parquet(files["parquet"])["owner_id"].tolist() == [owner]


def test_owners_a_slash_b_and_a_dash_b_get_their_own_exports(tmp_path):
    first = _owner_export(tmp_path, "a/b")
    second = _owner_export(tmp_path, "a-b")
    assert first["csv"] != second["csv"]
    assert first["csv"].parent.parent == tmp_path  # "a/b" made no subfolder
    assert pd.read_csv(first["csv"])["owner_id"].tolist() == ["a/b"]


def test_an_amount_above_the_bound_is_an_error(tmp_path, params_file):
    deals = TINY_CRM["deals.csv"].replace("U1,8000,,", "U1,1e308,,")
    crm = tiny_crm(tmp_path / "crm", deals_csv=deals)
    result = invoke("validate", crm, "--params", params_file, "--as-of", "2025-01-01")
    assert_clean_exit_2(result, "[too_large]", "line 4", f"{MAX_AMOUNT:,.0f}")


def test_an_amount_at_the_bound_is_accepted(tmp_path, params_file):
    deals = TINY_CRM["deals.csv"].replace("U1,8000,,", f"U1,{MAX_AMOUNT:.0f},,")
    crm = tiny_crm(tmp_path / "crm", deals_csv=deals)
    result = invoke("validate", crm, "--params", params_file, "--as-of", "2025-01-01")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(("codec", "order"), [("utf-16-le", "little"), ("utf-16-be", "big")])
def test_utf16_without_bom_is_named_as_such(tmp_path, params_file, codec, order):
    data = TINY_CRM["touchpoints.csv"].encode(codec)
    assert not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    crm = tiny_crm(tmp_path / "crm", touchpoints_csv=data)
    result = invoke("validate", crm, "--params", params_file)
    assert_clean_exit_2(result, "[not_utf8]", f"UTF-16 ({order}-endian, without a byte order")
    assert "wrong number of values" not in result.output


def test_nul_bytes_in_a_text_file_are_named(tmp_path, params_file):
    data = TINY_CRM["touchpoints.csv"].encode() + b"T3,D1,A1,\x00\x00\x07,call,inbound\n"
    crm = tiny_crm(tmp_path / "crm", touchpoints_csv=data)
    result = invoke("validate", crm, "--params", params_file)
    assert_clean_exit_2(result, "[binary_file]", "NUL bytes (first on line 4)")


@pytest.mark.parametrize("newline_inside", [False, True])
def test_a_5_mb_cell_is_called_too_large_not_broken_quoting(tmp_path, params_file, newline_inside):
    body = "x" * 2_500_000 + ("\n" if newline_inside else "") + "x" * 2_500_000
    data = TINY_CRM["touchpoints.csv"] + f'T3,D1,A1,2024-01-07T09:00:00Z,call,"{body}"\n'
    crm = tiny_crm(tmp_path / "crm", touchpoints_csv=data)
    result = invoke("validate", crm, "--params", params_file)
    assert_clean_exit_2(result, "[cell_too_large]", "line 4", "larger than 1 MiB")
    assert "broken quoting" not in result.output


def test_a_missing_table_is_named_when_scoring_cannot_build_its_features():
    class Model:
        class matrix_:  # noqa: N801 - mimics the fitted attribute
            columns_ = ["stage__days_in_stage", "deal__amount"]

    with pytest.raises(FeatureMismatchError, match="no stage_history table") as caught:
        check_feature_columns((Model,), ["deal__amount"], absent_tables=("stage_history",))
    assert "feature settings" not in str(caught.value)
    with pytest.raises(FeatureMismatchError, match="other feature settings"):
        check_feature_columns((Model,), ["deal__amount"])
