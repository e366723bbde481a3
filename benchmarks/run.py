"""The job against a plain Polars read of the same file, side by side.

For each size, generates (or reuses) a file with accounts-gen's default mix, then runs,
alternating, N times each:

- job:  `accounts-job run FILE --out accounts.parquet --quiet`, end to end (a process);
- read: a Python process that imports Polars and reads and types the four columns
        (type str, client u16, tx u32, amount f64): the least any tool can do with the file.

Prints a Markdown table: rows, median seconds of each, the ratio, rows/s, the peak
resident memory of each process, and the memory the job's rules held at the end (from its
summary: balances, claimed tx ids, referenced deposits). Both are whole processes, so
start-up counts for both. Below the table, how the job's peak grew from the smallest file
to each larger one, against how much of that the rules needed.

    python3 -m uv run python benchmarks/run.py                 # 1M and 10M rows
    python3 -m uv run python benchmarks/run.py --sizes 1m,10m,100m --repeat 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
BIN = Path(sys.executable).parent

READ = """
import sys, polars as pl
schema = {"type": pl.String, "client": pl.UInt16, "tx": pl.UInt32, "amount": pl.Float64}
pl.scan_csv(sys.argv[1], schema=schema).collect()
"""


def parse_size(text: str) -> int:
    text = text.strip().lower()
    factor = {"k": 1_000, "m": 1_000_000, "b": 1_000_000_000}.get(text[-1], 1)
    return int(float(text.rstrip("kmb")) * factor)


def label(rows: int) -> str:
    for unit, size in (("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if rows >= size and rows % size == 0:
            return f"{rows // size}{unit}"
    return str(rows)


def ensure_file(rows: int, clients: int, seed: int) -> Path:
    """A generated file of `rows` transactions, made once and reused."""
    DATA.mkdir(exist_ok=True)
    path = DATA / f"tx-{label(rows).lower()}-c{clients}-s{seed}.csv"
    if not path.exists():
        print(f"generating {path.name} ...", file=sys.stderr)
        subprocess.run(
            [
                BIN / "accounts-gen",
                "--clients",
                str(clients),
                "--transactions",
                str(rows),
                "--seed",
                str(seed),
                "--out",
                str(path),
                "--quiet",
            ],
            check=True,
        )
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


def measure(path: Path, repeat: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp())
    out, summary = folder / "accounts.parquet", folder / "summary.json"
    job = [str(BIN / "accounts-job"), "run", str(path), "--out", str(out), "--quiet"]
    job += ["--summary", str(summary)]
    read = [sys.executable, "-c", READ, str(path)]
    # One warm-up of each: page cache and compiled-code cache, as on a nightly machine.
    timed(job)
    timed(read)
    job_s, read_s, job_rss, read_rss = [], [], [], []
    for _ in range(repeat):
        s, m = timed(job)
        job_s.append(s)
        job_rss.append(m)
        s, m = timed(read)
        read_s.append(s)
        read_rss.append(m)
    return {
        "job": statistics.median(job_s),
        "read": statistics.median(read_s),
        "job_rss": max(job_rss),
        "read_rss": max(read_rss),
        "state": json.loads(summary.read_text())["state_bytes"],
    }


def mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1m,10m", help="row counts, e.g. 1m,10m,100m")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each, median taken")
    parser.add_argument("--clients", type=int, default=65_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; medians of {args.repeat} runs\n"
    )
    print(
        "| rows | file | job s | Polars read s | ratio | job rows/s | job peak RSS "
        "| read peak RSS | rules state |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    results = []
    for size in args.sizes.split(","):
        rows = parse_size(size)
        path = ensure_file(rows, min(args.clients, rows), args.seed)
        m = measure(path, args.repeat)
        results.append((rows, m))
        print(
            f"| {label(rows)} | {path.stat().st_size / 1e6:,.0f} MB | {m['job']:.2f} "
            f"| {m['read']:.2f} | {m['job'] / m['read']:.2f} | {rows / m['job']:,.0f} "
            f"| {mib(m['job_rss'])} | {mib(m['read_rss'])} | {mib(m['state'])} |",
            flush=True,
        )
    print()
    (small, base), *larger = results
    for rows, m in larger:
        print(
            f"{label(small)} -> {label(rows)}: job peak +{mib(m['job_rss'] - base['job_rss'])}, "
            f"of which the rules need +{mib(m['state'] - base['state'])}"
        )


if __name__ == "__main__":
    main()
