"""Benchmark: generate a 100,000-deal synthetic CRM and write it as CSV and Parquet.

Prints wall time of generation and of each write, rows per table, file sizes and the
peak resident memory of the process (``resource.getrusage`` maxrss). Target: under 60 s
and under 4 GB on a 2-core machine.

    .venv/bin/python benchmarks/bench_generate.py [--deals N] [--seed S]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from crm.schemas import Funnel
from crm.synthetic import generate_crm
from crm.write import write_crm, write_frame

FUNNEL = Funnel(
    stages=("lead", "qualified", "meeting", "proposal", "negotiation"),
    won_label="won",
    lost_label="lost",
)
START, AS_OF = pd.Timestamp("2024-01-01"), pd.Timestamp("2026-06-30")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    t0 = time.perf_counter()
    crm = generate_crm(
        n_deals=args.deals, seed=args.seed, start=START, as_of=AS_OF, funnel=FUNNEL, messy=False
    )
    t_gen = time.perf_counter() - t0
    print(f"generate: {t_gen:6.1f} s  ({args.deals:,} deals, peak RSS {peak_rss_mb():,.0f} MB)")
    for name in crm.data.present():
        print(f"  {name:<14} {len(crm.data.table(name)):>12,} rows")
    print(f"  {'truth':<14} {len(crm.truth):>12,} rows")

    total = t_gen
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("csv", "parquet"):
            t0 = time.perf_counter()
            paths = write_crm(crm.data, Path(tmp) / fmt, fmt=fmt)
            write_frame(crm.truth, Path(tmp) / f"truth.{fmt}")
            elapsed = time.perf_counter() - t0
            total += elapsed
            size = sum(p.stat().st_size for p in paths.values()) / 1e6
            print(f"write {fmt:<8}: {elapsed:6.1f} s  ({size:,.0f} MB of tables)")
    print(f"total:    {total:6.1f} s  peak RSS {peak_rss_mb():,.0f} MB")


if __name__ == "__main__":
    main()
