"""What a fresh install pays to compile the job's kernels, kernel by kernel.

Runs `accounts_job.warmup.warm()` in a new process with an empty numba cache (a private
NUMBA_CACHE_DIR), records numba's compile events, and prints a Markdown table: each
kernel and signature, the seconds its compile took including the kernels it compiled
on the way (inclusive) and without them (own), and the whole warm-up's wall time. Then
the same again with the cache now full, which should compile nothing.

    python3 -m uv run python benchmarks/compile.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

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
                  "loaded": warmed.loaded, "cache": warmed.cache_dirs}))
"""


def run(cache: str) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    out = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
        cold = run(cache)
        warm = run(cache)
    rows = sorted(cold["rows"], key=lambda r: -r[4])
    print(f"cold warm-up: {cold['wall']:.1f} s wall, {cold['compiled']} kernel signatures")
    print(f"compiled; then warm: {warm['wall']:.2f} s, {warm['compiled']} compiled, ")
    print(f"{warm['loaded']} loaded\n")
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
