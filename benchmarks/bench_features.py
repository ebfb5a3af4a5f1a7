"""Benchmark: the whole feature build on a 100,000-deal, two-year synthetic CRM.

The CRM (about 5 million touchpoints) is generated in a child process and handed over as
Parquet, so this process's peak memory is the feature build's own (plus the loaded
tables) and the generator's time is excluded. Then, timed separately: features for
weekly snapshots over the two years, their labels, and one scoring-day snapshot of every
deal open at the data's as-of. Prints rows, rows/s and peak resident memory
(``resource.getrusage`` maxrss). Target on a 2-core machine: under 30 s and under 4 GB
for the whole build; a few seconds for the scoring day.

    .venv/bin/python benchmarks/bench_features.py [--deals N] [--seed S] [--cache DIR]

``--cache DIR`` keeps the generated Parquet there and reuses it on the next run.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from crm.data import CRMData
from crm.schemas import Funnel
from features.build import build_features, build_labels
from features.snapshots import snapshot_dates

FUNNEL = Funnel(
    stages=("lead", "qualified", "meeting", "proposal", "negotiation"),
    won_label="won",
    lost_label="lost",
)
START, AS_OF = pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2026-01-01", tz="UTC")
#: The feature settings of params.yaml's ``features:`` section.
SETTINGS = {
    "windows_days": (7, 30, 90),
    "trend_days": 30,
    "recency_channels": ("meeting", "demo"),
    "prior_strength": 20.0,
}
HORIZONS = (30, 90, 180)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def generate(folder: Path, deals: int, seed: int) -> None:
    """Generate the CRM and write it as Parquet into ``folder`` (run in a child process)."""
    from crm.synthetic import generate_crm
    from crm.write import write_crm

    crm = generate_crm(
        n_deals=deals, seed=seed, start=START, as_of=AS_OF, funnel=FUNNEL, messy=False
    )
    write_crm(crm.data, folder, fmt="parquet")


def load(folder: Path) -> CRMData:
    """The Parquet tables as typed frames (the Parquet files keep the pandas dtypes)."""
    tables = {p.stem: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}
    return CRMData(**tables)


def timed(label: str, rows_of, fn):
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    rows = rows_of(out)
    print(
        f"{label:<26} {seconds:6.2f} s  {rows:>10,} rows  {rows / seconds:>10,.0f} rows/s  "
        f"peak RSS {peak_rss_mb():>6,.0f} MB"
    )
    return out, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--generate-into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_into is not None:
        generate(args.generate_into, args.deals, args.seed)
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.cache or Path(tmp)
        if not (folder / "deals.parquet").exists():
            t0 = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--deals",
                    str(args.deals),
                    "--seed",
                    str(args.seed),
                    "--generate-into",
                    str(folder),
                ],
                check=True,
            )
            print(f"generate (child process, not timed below): {time.perf_counter() - t0:.1f} s")
        data = load(folder)
    for name in data.present():
        print(f"  {name:<14} {len(data.table(name)):>12,} rows")
    print(f"loaded tables: peak RSS {peak_rss_mb():,.0f} MB")

    dates = snapshot_dates(START, AS_OF, "W-MON")
    print(f"{len(dates)} weekly snapshots {dates[0].date()} .. {dates[-1].date()}")
    features, t_feat = timed(
        "features (all snapshots)",
        len,
        lambda: build_features(data, as_of_dates=dates, funnel=FUNNEL, **SETTINGS),
    )
    size_mb = features.memory_usage(deep=True).sum() / 2**20
    print(f"  {features.shape[1] - 2} feature columns, {size_mb:,.0f} MB in memory")
    del features
    _, t_lab = timed(
        "labels (all snapshots)",
        len,
        lambda: build_labels(
            data, as_of_dates=dates, funnel=FUNNEL, horizons_days=HORIZONS, data_end=AS_OF
        ),
    )
    _, t_score = timed(
        "scoring day (one as_of)",
        len,
        lambda: build_features(
            data, as_of_dates=pd.DatetimeIndex([AS_OF]), funnel=FUNNEL, **SETTINGS
        ),
    )
    total = t_feat + t_lab
    verdict = "OK" if total < 30 and peak_rss_mb() < 4096 else "OVER TARGET"
    print(
        f"whole build {total:.1f} s (target < 30 s), peak RSS {peak_rss_mb():,.0f} MB "
        f"(target < 4096 MB), scoring day {t_score:.2f} s: {verdict}"
    )


if __name__ == "__main__":
    main()
