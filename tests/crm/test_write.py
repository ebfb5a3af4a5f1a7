"""Writing CRM tables: CSV text format, Parquet round trip, determinism, atomicity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import crm.write as write_module
from crm.data import CRMData
from crm.schemas import TIMESTAMP_DTYPE
from crm.write import write_crm, write_frame


def deals_frame() -> pd.DataFrame:
    ts = pd.Series(
        pd.to_datetime(["2025-03-04T09:15:00Z", None, "2025-12-31T23:59:59Z"], utc=True)
    ).astype(TIMESTAMP_DTYPE)
    return pd.DataFrame(
        {
            "deal_id": pd.Series(["D1", "D2", "D3"], dtype="str"),
            "created_at": ts.fillna(pd.Timestamp("2025-01-01", tz="UTC")),
            "amount": [1000.0, np.nan, -0.0],
            "source": pd.Series(["inbound", None, "paid"], dtype="category"),
            "expected_close_date": pd.Series(
                pd.to_datetime(["2025-04-30", "2025-05-31", None], utc=True)
            ).astype(TIMESTAMP_DTYPE),
            "closed_at": ts,
            "outcome": pd.Series(["won", None, "lost"], dtype="str"),
            "score": [0.25, 1.5, np.nan],
        }
    )


def test_csv_text_follows_the_contract(tmp_path: Path):
    path = tmp_path / "deals.csv"
    write_frame(deals_frame(), path)
    assert path.read_text(encoding="utf-8") == (
        "deal_id,created_at,amount,source,expected_close_date,closed_at,outcome,score\n"
        "D1,2025-03-04T09:15:00Z,1000,inbound,2025-04-30,2025-03-04T09:15:00Z,won,0.25\n"
        "D2,2025-01-01T00:00:00Z,,,2025-05-31,,,1.5\n"
        "D3,2025-12-31T23:59:59Z,0,paid,,2025-12-31T23:59:59Z,lost,\n"
    )
    assert not path.read_bytes().startswith(b"\xef\xbb\xbf")


def test_csv_quotes_only_when_needed_and_keeps_sub_seconds(tmp_path: Path):
    frame = pd.DataFrame(
        {
            "name": pd.Series(["Acme, Inc.", 'say "hi"', None], dtype="str"),
            "at": pd.Series(
                pd.to_datetime(
                    ["2025-01-01T00:00:00.250Z", "2025-01-02T00:00:00Z", None],
                    utc=True,
                    format="ISO8601",
                )
            ).astype(TIMESTAMP_DTYPE),
            "naive": pd.to_datetime(["2025-01-01 10:00", "2025-01-02 00:00", "2025-01-03 00:00"]),
            "flag": [True, False, True],
        }
    )
    path = tmp_path / "x.csv"
    write_frame(frame, path)
    lines = path.read_text().splitlines()
    assert lines[0] == "name,at,naive,flag"
    assert lines[1] == '"Acme, Inc.","2025-01-01T00:00:00.250000Z","2025-01-01T10:00:00",true'
    assert lines[2] == '"say ""hi""","2025-01-02T00:00:00.000000Z","2025-01-02T00:00:00",false'
    assert lines[3] == ',,"2025-01-03T00:00:00",true'
    back = pd.read_csv(path)
    assert back["name"].tolist()[:2] == ["Acme, Inc.", 'say "hi"']


def test_csv_round_trips_through_pandas(tmp_path: Path):
    frame = deals_frame()
    write_frame(frame, tmp_path / "deals.csv")
    back = pd.read_csv(tmp_path / "deals.csv", dtype={"deal_id": "str"})
    created = pd.to_datetime(back["created_at"], utc=True).astype(TIMESTAMP_DTYPE)
    pd.testing.assert_series_equal(created, frame["created_at"])
    assert back["amount"].tolist()[0] == 1000 and np.isnan(back["amount"][1])


def test_parquet_round_trip_keeps_dtypes(tmp_path: Path):
    frame = deals_frame()
    write_frame(frame, tmp_path / "deals.parquet")
    back = pd.read_parquet(tmp_path / "deals.parquet")
    pd.testing.assert_frame_equal(back, frame)
    assert pq.read_metadata(tmp_path / "deals.parquet").num_rows == 3


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_same_frame_gives_same_bytes(tmp_path: Path, suffix: str):
    write_frame(deals_frame(), tmp_path / f"a{suffix}")
    write_frame(deals_frame(), tmp_path / f"b{suffix}")
    assert (tmp_path / f"a{suffix}").read_bytes() == (tmp_path / f"b{suffix}").read_bytes()


def test_empty_frame_writes_a_header(tmp_path: Path):
    write_frame(deals_frame().iloc[:0], tmp_path / "deals.csv")
    assert (tmp_path / "deals.csv").read_text().count("\n") == 1


def test_write_frame_creates_folders_and_rejects_other_suffixes(tmp_path: Path):
    write_frame(deals_frame(), tmp_path / "deep" / "er" / "truth.parquet")
    assert (tmp_path / "deep" / "er" / "truth.parquet").exists()
    with pytest.raises(ValueError, match="csv or .parquet"):
        write_frame(deals_frame(), tmp_path / "deals.xlsx")


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_crash_leaves_the_old_file_intact(tmp_path: Path, monkeypatch, suffix: str):
    path = tmp_path / f"deals{suffix}"
    write_frame(deals_frame(), path)
    before = path.read_bytes()

    def half_written(data, handle, **kwargs):
        handle.write(b"garbage")
        raise RuntimeError("disk on fire")

    if suffix == ".csv":
        monkeypatch.setattr(write_module, "_write_csv", half_written)
    else:
        monkeypatch.setattr(write_module.pq, "write_table", half_written)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_frame(deals_frame().iloc[:1], path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp file left


def test_write_crm_writes_present_tables_and_removes_stale_ones(tmp_path: Path):
    deals = deals_frame()
    history = pd.DataFrame(
        {
            "deal_id": pd.Series(["D1"], dtype="str"),
            "stage": pd.Series(["won"], dtype="str"),
            "entered_at": deals["created_at"].iloc[:1],
        }
    )
    data = CRMData(deals=deals, stage_history=history)
    (tmp_path / "touchpoints.csv").write_text("stale")
    (tmp_path / "deals.parquet").write_text("stale")
    (tmp_path / "notes.txt").write_text("mine")
    paths = write_crm(data, tmp_path, fmt="csv")
    assert paths == {
        "deals": tmp_path / "deals.csv",
        "stage_history": tmp_path / "stage_history.csv",
    }
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["deals.csv", "notes.txt", "stage_history.csv"]
    paths = write_crm(data, tmp_path / "pq", fmt="parquet")
    assert sorted(p.name for p in (tmp_path / "pq").iterdir()) == [
        "deals.parquet",
        "stage_history.parquet",
    ]
    with pytest.raises(ValueError, match="fmt"):
        write_crm(data, tmp_path, fmt="xlsx")  # type: ignore[arg-type]
