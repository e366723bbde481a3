"""Nightly runs that carry state: does a night cost the same on the tenth night as on the first?

Cuts a generated file (accounts-gen's default mix, made once into `benchmarks/data/`)
into N nights of equal size, makes a new state folder (`accounts-job state init`), then
applies the nights to it one after another with `accounts-job run DAY --state STATE
--out accounts.parquet --quiet`, each a whole process. Prints, per night: seconds, the
ratio to the first night, peak resident memory, and the state's size on disk afterwards.

    python3 -m uv run python benchmarks/nightly.py                      # 10 nights of 10M
    python3 -m uv run python benchmarks/nightly.py --nights 5 --rows 1m
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from run import BIN, DATA, ensure_file, label, mib, parse_size, timed


def cut_into_nights(source: Path, nights: int, rows: int) -> list[Path]:
    """`nights` files of `rows` data rows each, from `source`, made once."""
    folder = DATA / f"{source.stem}-{nights}x{label(rows).lower()}"
    paths = [folder / f"day-{k + 1:02d}.csv" for k in range(nights)]
    if all(p.exists() for p in paths):
        return paths
    print(f"cutting {source.name} into {nights} nights ...", file=sys.stderr)
    folder.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as f:
        header = f.readline()
        for path in paths:
            tmp = path.with_suffix(".tmp")
            with open(tmp, "wb") as out:
                out.write(header)
                for _ in range(rows):
                    out.write(f.readline())
            os.replace(tmp, path)
    return paths


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=10)
    parser.add_argument("--rows", default="10m", help="rows per night, e.g. 1m, 10m")
    parser.add_argument("--clients", type=int, default=65_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rows = parse_size(args.rows)
    source = ensure_file(rows * args.nights, args.clients, args.seed)
    days = cut_into_nights(source, args.nights, rows)

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; {args.nights} nights of {label(rows)} rows\n"
    )
    print("| night | seconds | ratio to night 1 | peak RSS | state on disk |")
    print("|---:|---:|---:|---:|---:|")
    work = Path(tempfile.mkdtemp())
    state, out = work / "state", work / "accounts.parquet"
    job = [str(BIN / "accounts-job"), "run"]
    # One warm-up run without state: page cache and compiled-code cache.
    timed([*job, str(days[0]), "--out", str(out), "--quiet"])
    subprocess.run([str(BIN / "accounts-job"), "state", "init", str(state)], check=True)
    first = None
    for n, day in enumerate(days, 1):
        seconds, rss = timed([*job, str(day), "--state", str(state), "--out", str(out), "-q"])
        first = first or seconds
        print(
            f"| {n} | {seconds:.2f} | {seconds / first:.2f} | {mib(rss)} "
            f"| {mib(folder_bytes(state))} |",
            flush=True,
        )
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
