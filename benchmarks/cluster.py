"""The job on a Dask cluster against the job alone, on the same file.

Generates (or reuses) a file with accounts-gen's default mix, then runs, alternating,
N times each, every run a whole process writing the accounts as CSV:

- single:   `accounts-job run FILE --out accounts.csv --quiet`;
- local:N:  the same with `--cluster local:N` (starts N worker processes for the run);
- running:  the same with `--cluster tcp://...`, against a scheduler and 2 workers
            started once beforehand (`dask scheduler`, `dask worker`): what a run costs
            when the cluster is already up, as in production.

Prints a Markdown table: seconds (median), the ratio to the single process (the
overhead of sharding), rows/s, and the peak resident memory of the largest process of
the run (the workers included). Each run's accounts are checked to be byte-identical to
the single process's.

    python3 -m uv run --extra distributed python benchmarks/cluster.py            # 10M rows
    python3 -m uv run --extra distributed python benchmarks/cluster.py --rows 1m --repeat 5
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from run import BIN, ensure_file, label, mib, parse_size, timed


def peak_rss(group: int) -> int:
    """The largest peak resident memory (VmHWM) among the processes of a process group."""
    peak = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != group:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except (OSError, ProcessLookupError):
            continue
    return peak


@contextlib.contextmanager
def running_cluster(workers: int, folder: Path) -> Iterator[tuple[str, list[int]]]:
    """A scheduler and `workers` one-thread workers on loopback: (address, groups)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    env = {**os.environ, "NUMBA_NUM_THREADS": threads}
    dask = str(BIN / "dask")
    commands = [[dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]]
    commands += [
        [
            dask,
            "worker",
            address,
            "--nthreads",
            "1",
            "--no-dashboard",
            "--local-directory",
            str(folder / f"w{n}"),
        ]
        for n in range(workers)
    ]
    procs = []
    try:
        for cmd in commands:
            procs.append(
                subprocess.Popen(
                    cmd,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        import distributed

        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)
            # Warm the workers as a night's first run would find them after the first.
            client.run(lambda: __import__("accounts_job.distributed.sharded"))
        yield address, [p.pid for p in procs[1:]]
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10m", help="data rows of the file, e.g. 1m, 10m")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, median taken")
    parser.add_argument("--clients", type=int, default=65_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rows = parse_size(args.rows)
    path = ensure_file(rows, min(args.clients, rows), args.seed)
    folder = Path(tempfile.mkdtemp())
    job = [str(BIN / "accounts-job"), "run", str(path), "--quiet", "--out"]

    def command(mode: str, n: int) -> list[str]:
        return [*job, str(folder / f"{mode.replace(':', '-')}-{n}.csv")]

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; {label(rows)} rows ({path.stat().st_size / 1e6:,.0f} MB); "
        f"medians of {args.repeat} runs\n"
    )
    seconds: dict[str, list[float]] = {}
    rss: dict[str, int] = {}
    modes = ["single", "local:1", "local:2"]
    timed(command("single", -1))  # warm-up: page cache and compiled code
    with running_cluster(2, folder) as (address, groups):
        modes.append("running")
        for n in range(args.repeat):
            for mode in modes:
                cmd = command(mode, n)
                if mode.startswith("local"):
                    cmd += ["--cluster", mode]
                elif mode == "running":
                    cmd += ["--cluster", address]
                s, m = timed(cmd)
                if mode == "running":
                    m = max(m, *(peak_rss(g) for g in groups))
                seconds.setdefault(mode, []).append(s)
                rss[mode] = max(rss.get(mode, 0), m)
                same = Path(cmd[len(job)]).read_bytes() == (folder / "single-0.csv").read_bytes()
                if n > 0 or mode != "single":
                    assert same, f"{mode}: the accounts differ from the single process's"
    base = statistics.median(seconds["single"])
    names = {
        "single": "single process",
        "local:1": "`--cluster local:1`",
        "local:2": "`--cluster local:2`",
        "running": "`--cluster tcp://…` (2 workers up)",
    }
    print("| run | seconds | ratio to single | rows/s | peak RSS (largest process) |")
    print("|---|---:|---:|---:|---:|")
    for mode in modes:
        s = statistics.median(seconds[mode])
        print(
            f"| {names[mode]} | {s:.2f} | {s / base:.2f} | {rows / s:,.0f} | {mib(rss[mode])} |",
            flush=True,
        )


if __name__ == "__main__":
    sys.exit(main())
