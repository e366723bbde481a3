"""The job over Parquet against the job over the same rows as CSV, side by side.

For each size, generates (or reuses) a CSV with accounts-gen's default mix, converts it
once to Parquet with typed columns (type string, client uint16, tx uint32, amount
decimal(38, 4)), then runs, alternating, N times each:

- csv:     `accounts-job run FILE.csv --out accounts.parquet --quiet`, end to end;
- parquet: `accounts-job run FILE.parquet --out accounts.parquet --quiet`, the same.

Both are whole processes in the same run, so start-up counts for both and the machine's
noise falls on both alike. Prints a Markdown table: rows, file sizes, median seconds of
each, the ratio (Parquet over CSV), rows/s, and the peak resident memory of each. The
two runs' accounts are compared: a table from runs that disagree is not printed.

    python3 -m uv run python benchmarks/typed.py                   # 10M rows
    python3 -m uv run python benchmarks/typed.py --sizes 10m,100m --repeat 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl
from run import BIN, ensure_file, label, mib, parse_size


def ensure_parquet(csv: Path) -> Path:
    """The rows of `csv` as a Parquet file with typed columns, made once and reused."""
    path = csv.with_suffix(".parquet")
    if not path.exists():
        print(f"converting {csv.name} to Parquet ...", file=sys.stderr)
        schema = {"type": pl.String, "client": pl.UInt16, "tx": pl.UInt32, "amount": pl.String}
        tmp = path.with_suffix(".parquet.tmp")
        (
            pl.scan_csv(csv, schema=schema)
            .with_columns(pl.col("amount").cast(pl.Decimal(38, 4)))
            .sink_parquet(tmp)
        )
        tmp.rename(path)
    return path


def timed(cmd: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}")
    return elapsed, usage.ru_maxrss * 1024


def measure(csv: Path, parquet: Path, repeat: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp())
    outs = {"csv": folder / "csv.parquet", "parquet": folder / "parquet.parquet"}
    runs = {
        name: [str(BIN / "accounts-job"), "run", str(src), "--out", str(outs[name]), "--quiet"]
        for name, src in (("csv", csv), ("parquet", parquet))
    }
    # One warm-up of each: page cache and compiled-code cache, as on a nightly machine.
    for cmd in runs.values():
        timed(cmd)
    seconds: dict[str, list[float]] = {"csv": [], "parquet": []}
    peak: dict[str, int] = {"csv": 0, "parquet": 0}
    for _ in range(repeat):
        for name, cmd in runs.items():
            s, m = timed(cmd)
            seconds[name].append(s)
            peak[name] = max(peak[name], m)
    if not pl.read_parquet(outs["csv"]).equals(pl.read_parquet(outs["parquet"])):
        raise SystemExit(f"the CSV and the Parquet runs of {csv.name} disagree")
    return {
        "csv": statistics.median(seconds["csv"]),
        "parquet": statistics.median(seconds["parquet"]),
        "csv_rss": peak["csv"],
        "parquet_rss": peak["parquet"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10m", help="row counts, e.g. 10m,100m")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each, median taken")
    parser.add_argument("--clients", type=int, default=65_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; medians of {args.repeat} runs\n"
    )
    print(
        "| rows | CSV | Parquet | CSV run s | Parquet run s | Parquet / CSV | Parquet rows/s "
        "| CSV peak RSS | Parquet peak RSS |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes.split(","):
        rows = parse_size(size)
        csv = ensure_file(rows, min(args.clients, rows), args.seed)
        parquet = ensure_parquet(csv)
        m = measure(csv, parquet, args.repeat)
        print(
            f"| {label(rows)} | {csv.stat().st_size / 1e6:,.0f} MB "
            f"| {parquet.stat().st_size / 1e6:,.0f} MB | {m['csv']:.2f} | {m['parquet']:.2f} "
            f"| {m['parquet'] / m['csv']:.2f} | {rows / m['parquet']:,.0f} "
            f"| {mib(m['csv_rss'])} | {mib(m['parquet_rss'])} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
