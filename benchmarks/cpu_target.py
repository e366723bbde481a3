"""What compiling for a level of x86-64 costs, against compiling for this very CPU.

The kernels are compiled for x86-64-v3 (or -v2) so that one cache serves every machine of
that level (job/accounts_job/kernels/_cache.py). This times the 10M-row file with each
target, the cache warm for each: the run in-process (`process()`, best of N after one
untimed run; wall time, and the CPU time of all the process's threads, which a shared
machine disturbs less), each target in its own process, the targets alternating round by
round.

    python3 -m uv run python benchmarks/cpu_target.py --rounds 3 --repeat 5
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FILE = HERE / "data" / "tx-10m-c65000-s7.csv"

TARGETS = {
    "host (numba's default)": {"NUMBA_CPU_NAME": "host"},
    "x86-64-v3 (the default here)": {},
    "x86-64-v2": {"NUMBA_CPU_NAME": "x86-64-v2", "NUMBA_CPU_FEATURES": ""},
}

CHILD = r"""
import resource, sys, time
from accounts_job import process
from accounts_job.warmup import cpu_target

def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)  # every thread of the process
    return r.ru_utime + r.ru_stime

path, repeat = sys.argv[1], int(sys.argv[2])
process(path, keep_rejects=False)  # loads the kernels, fills the page cache
wall = used = float("inf")
for _ in range(repeat):
    t, c = time.perf_counter(), cpu()
    process(path, keep_rejects=False)
    wall, used = min(wall, time.perf_counter() - t), min(used, cpu() - c)
print(cpu_target(), wall, used)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not FILE.exists():
        raise SystemExit(f"{FILE} is missing: run benchmarks/run.py --sizes 10m once")
    base = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_CPU")}
    wall: dict[str, float] = {}
    used: dict[str, float] = {}
    cpu: dict[str, str] = {}
    for _ in range(args.rounds):
        for label, env in TARGETS.items():
            out = subprocess.run(
                [sys.executable, "-c", CHILD, str(FILE), str(args.repeat)],
                env={**base, **env},
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            cpu[label] = out[0]
            wall[label] = min(wall.get(label, float("inf")), float(out[1]))
            used[label] = min(used.get(label, float("inf")), float(out[2]))
    host = next(iter(TARGETS))
    print(f"in-process, best of {args.rounds} x {args.repeat} runs of 10M rows\n")
    print("| target | CPU name | best wall s | vs host | best CPU s (user+sys) | vs host |")
    print("|---|---|---:|---:|---:|---:|")
    for label in TARGETS:
        print(
            f"| {label} | {cpu[label]} | {wall[label]:.3f} | {wall[label] / wall[host]:.2f} "
            f"| {used[label]:.3f} | {used[label] / used[host]:.2f} |"
        )


if __name__ == "__main__":
    main()
