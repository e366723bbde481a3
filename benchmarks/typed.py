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
    python3 -m uv run python benchmarks/typed.py --floor   # what no Parquet run can go below

`--floor` then measures, in the same run, what any Parquet run of this design must pay
whatever its own code does, each part as its own process or timed inside one: the
imports (Python, numba, Polars, pyarrow, the job), numba's set-up when it loads the first
compiled kernel, Polars' decoding of the file into Arrow batches, and the rules kernel
over its rows (the same kernel as the CSV run's); it prints each as seconds and as a
share of the CSV run, and their sum.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl
from run import BIN, ensure_file, label, mib, parse_size, timed


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


# Children for --floor: each prints its seconds.
_NUMBA_SETUP = """
import time, numpy as np
import accounts_job.cli
from accounts_job.kernels.lines import last_line_end
a = np.zeros(16, np.uint8)
t = time.perf_counter(); last_line_end(a); print(time.perf_counter() - t)
"""
_DECODE = """
import sys, time, polars as pl
t = time.perf_counter()
for batch in pl.scan_parquet(sys.argv[1]).collect_batches(maintain_order=True):
    batch.to_arrow()
print(time.perf_counter() - t)
"""
_RULES = """
import sys, time, accounts_job
import accounts_job.engine.ledger as ledger
spent = [0.0]
kernel = ledger.apply_batch
def timed(*args):
    t = time.perf_counter(); out = kernel(*args); spent[0] += time.perf_counter() - t
    return out
ledger.apply_batch = timed
accounts_job.process(sys.argv[1], keep_rejects=False)  # loads every kernel first
spent[0] = 0.0
accounts_job.process(sys.argv[1], keep_rejects=False)
print(spent[0])
"""


def floor(csv: Path, parquet: Path, repeat: int) -> None:
    """Print what a Parquet run cannot go below, against the CSV run (see --floor)."""
    python = str(BIN / "python")
    job = [str(BIN / "accounts-job"), "run", str(csv), "--quiet"]
    out = Path(tempfile.mkdtemp()) / "accounts.parquet"
    parts: dict[str, list[float]] = {
        "CSV run (whole process)": [],
        "imports: Python, numba, Polars, pyarrow, the job": [],
        "numba's set-up, at the first kernel it loads": [],
        "Polars decoding the file into Arrow batches": [],
        "the rules kernel over its rows (timed in a CSV run)": [],
    }

    def child(code: str, *args: str) -> float:
        done = subprocess.run(
            [python, "-c", code, *args], capture_output=True, text=True, check=True
        )
        return float(done.stdout.strip().splitlines()[-1])

    for _ in range(repeat):
        values = (
            timed([*job, "--out", str(out)])[0],
            timed([python, "-c", "import accounts_job.cli, polars"])[0],
            child(_NUMBA_SETUP),
            child(_DECODE, str(parquet)),
            # In a CSV run nothing runs beside the kernel: in a Parquet run Polars decodes
            # the next batches meanwhile, which slows it down (the floor is what it costs).
            child(_RULES, str(csv)),
        )
        for name, value in zip(parts, values, strict=True):
            parts[name].append(value)
    medians = {name: statistics.median(values) for name, values in parts.items()}
    base = medians.pop("CSV run (whole process)")
    print(f"\nwhat a Parquet run of {parquet.name} pays at least, against the CSV run", end="")
    print(f" ({base:.2f} s):\n")
    print("| part | seconds | / CSV run |")
    print("|---|---:|---:|")
    for name, value in medians.items():
        print(f"| {name} | {value:.2f} | {value / base:.2f} |")
    total = sum(medians.values())
    print(f"| **sum: the floor** | **{total:.2f}** | **{total / base:.2f}** |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10m", help="row counts, e.g. 10m,100m")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each, median taken")
    parser.add_argument("--clients", type=int, default=65_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--floor",
        action="store_true",
        help="also measure what any Parquet run of this design pays (see above)",
    )
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
    if args.floor:
        for size in args.sizes.split(","):
            csv = ensure_file(parse_size(size), min(args.clients, parse_size(size)), args.seed)
            floor(csv, ensure_parquet(csv), args.repeat)


if __name__ == "__main__":
    main()
