"""What a fresh install pays to compile the job's kernels, kernel by kernel.

Runs `accounts_job.warmup.warm()` in a new process on a copy of the package without any
compiled code (as a fresh install has it), records numba's compile events, and prints a
Markdown table: each kernel and signature, the seconds its compile took including the
kernels it compiled on the way (inclusive) and without them (own), and the whole
warm-up's wall time. Then the same again with the cache now full, which should compile
nothing.

    python3 -m uv run python benchmarks/compile.py
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
import json, time
from numba.core import event
from accounts_job.warmup import warm

recorder = event.RecordingListener()
started = time.perf_counter()
with event.install_listener("numba:compile", recorder):
    import accounts_job.cli  # what every run imports
    warmed = warm()
wall = time.perf_counter() - started
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
print(json.dumps({"wall": wall, "rows": rows, "compiled": warmed.compiled,
                  "loaded": warmed.loaded, "cache": warmed.cache_dirs, "cpu": warmed.cpu}))
"""


def run(site: str) -> dict:
    # The copy first on the path; no NUMBA_CACHE_DIR, which the job would seed from the
    # installed package's cache: the copy's own __pycache__, empty at first, is the cache.
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["PYTHONPATH"] = site
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import accounts_job

    with tempfile.TemporaryDirectory(prefix="accounts-job-fresh-") as site:
        shutil.copytree(
            Path(accounts_job.__file__).parent,
            Path(site) / "accounts_job",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        cold = run(site)
        warm = run(site)
    rows = sorted(cold["rows"], key=lambda r: -r[4])
    print(
        f"cold warm-up for {cold['cpu']}: {cold['wall']:.1f} s wall, {cold['compiled']} "
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
