"""What a fresh install pays to compile the job's kernels, kernel by kernel.

Runs `accounts_job.warmup.warm()` in a new process on a copy of the package without any
compiled code (neither a cache nor the compiled kernels the package ships, as an install
on another CPU level, numba or Python has it), records numba's compile events, and
prints a Markdown table: each kernel and signature, the seconds its compile took
including the kernels it compiled on the way (inclusive) and without them (own), and the
whole warm-up's wall time. Then the same again with the cache now full, which should
compile nothing. `--shipped` keeps the shipped kernels, as a new install here has them.

    python3 -m uv run python benchmarks/compile.py [--first-run] [--shipped]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time
from numba.core import event
from accounts_job.warmup import warm

recorder = event.RecordingListener()
started = time.perf_counter()
with event.install_listener("numba:compile", recorder):
    import accounts_job.cli  # what every run imports
    if len(sys.argv) > 1:  # one plain run only, as the Quickstart's first
        from accounts_job import process
        process(sys.argv[1], accounts_to=sys.argv[1] + ".accounts.csv")
    else:
        warm()
wall = time.perf_counter() - started
from accounts_job.warmup import _cache_counts, cache_dirs, cpu_target
compiled, loaded = _cache_counts()
stack, rows = [], []
for ts, ev in recorder.buffer:
    if ev.is_start:
        stack.append([ev.data["dispatcher"].py_func.__qualname__,
                      ev.data["dispatcher"].py_func.__module__,
                      str(ev.data["args"]), ts, 0.0])
    else:
        name, module, args, t0, children = stack.pop()
        inclusive = ts - t0
        if stack:
            stack[-1][4] += inclusive
        rows.append((module, name, args, inclusive, inclusive - children))
print(json.dumps({"wall": wall, "rows": rows, "compiled": compiled,
                  "loaded": loaded, "cache": cache_dirs(), "cpu": cpu_target()}))
"""


# Rows of every kind, accepted and rejected, in the Quickstart's header.
SAMPLE = b"""type,client,tx,amount
deposit,1,1,10.5
deposit,2,2,3
withdrawal,1,3,2.25
dispute,1,1,
resolve,1,1,
dispute,1,1,
chargeback,1,1,
withdrawal,2,4,9
deposit,2,2,1
bogus,2,5,1
"""


def run(site: str, sample: str | None = None) -> dict:
    # The copy first on the path; no NUMBA_CACHE_DIR, which the job would seed from the
    # installed package's cache: the copy's own __pycache__, empty at first, is the cache.
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = site
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *([sample] if sample else [])],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import argparse

    import accounts_job

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--first-run",
        action="store_true",
        help="one plain run of a small CSV (what the Quickstart's first run compiles) "
        "instead of the whole warm-up",
    )
    parser.add_argument(
        "--package",
        type=Path,
        default=Path(accounts_job.__file__).parent,
        help="the accounts_job package folder to compile (default: the installed one), "
        "for a table of another version in the same run",
    )
    parser.add_argument(
        "--shipped",
        action="store_true",
        help="keep the compiled kernels the package ships (kernels/_compiled): what a new "
        "install on this machine pays",
    )
    args = parser.parse_args()
    first_run = args.first_run
    left_out = ["__pycache__"] if args.shipped else ["__pycache__", "_compiled"]
    with tempfile.TemporaryDirectory(prefix="accounts-job-fresh-") as site:
        shutil.copytree(
            args.package,
            Path(site) / "accounts_job",
            ignore=shutil.ignore_patterns(*left_out),
        )
        sample = None
        if first_run:
            sample = str(Path(site) / "sample.csv")
            Path(sample).write_bytes(SAMPLE)
        cold = run(site, sample)
        warm = run(site, sample)
    rows = sorted(cold["rows"], key=lambda r: -r[4])
    what = "first run" if first_run else "warm-up"
    if args.shipped:
        what += " with the shipped kernels"
    print(
        f"cold {what} for {cold['cpu']}: {cold['wall']:.1f} s wall, {cold['compiled']} "
        f"kernel signatures compiled; then warm: {warm['wall']:.2f} s, {warm['compiled']} "
        f"compiled, {warm['loaded']} loaded\n"
    )
    print("| kernel | signature | own s | inclusive s |")
    print("|---|---|---:|---:|")
    for module, name, args, inclusive, own in rows:
        short = module.removeprefix("accounts_job.")
        sig = args if len(args) < 70 else args[:67] + "..."
        print(f"| {short}.{name} | `{sig}` | {own:.2f} | {inclusive:.2f} |")
    total_own = sum(r[4] for r in rows)
    print(f"| **all** | | **{total_own:.1f}** | |")


if __name__ == "__main__":
    main()
