"""A Dask cluster on loopback for the cluster tests, and the files and runs they share.

The scheduler and workers are started as the `dask` command starts them, each in a
process group of its own, and every one of them is killed when the block ends, also
when a test fails. Nothing here listens anywhere but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from accounts_gen import generate

from support.helpers import run_script

DASK = Path(sys.executable).with_name("dask")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Loopback:
    """A running scheduler and its workers."""

    address: str
    scheduler: subprocess.Popen | None = None
    workers: list[subprocess.Popen] = field(default_factory=list)


def kill(process: subprocess.Popen) -> None:
    """SIGKILL a process started here and everything it started (its process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def dask_cluster(
    tmp: Path,
    workers: int = 2,
    worker_env: dict[str, str] | None = None,
    nanny: bool = True,
    **scheduler_env: str,
) -> Iterator[Loopback]:
    """A scheduler and `workers` workers on loopback, each with a nanny unless not
    `nanny` (then a worker that dies stays dead)."""
    import distributed

    cluster = Loopback(f"tcp://127.0.0.1:{free_port()}")
    env = {**os.environ, "NUMBA_NUM_THREADS": "1", **scheduler_env}
    procs: list[subprocess.Popen] = []

    def start(*args: str, extra: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(tmp / f"dask-{len(procs)}.log", "wb")  # noqa: SIM115 (closed with the process)
        procs.append(
            subprocess.Popen(
                [str(DASK), *args],
                env={**env, **(extra or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped as one
            )
        )
        return procs[-1]

    try:
        port = cluster.address.rsplit(":", 1)[1]
        cluster.scheduler = start(
            "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"
        )
        for n in range(workers):
            cluster.workers.append(
                start(
                    "worker",
                    cluster.address,
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--nanny" if nanny else "--no-nanny",
                    "--name",
                    f"w{n}",
                    "--local-directory",
                    str(tmp / f"w{n}"),
                    extra=worker_env,
                )
            )
        with distributed.Client(cluster.address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)
        yield cluster
    finally:
        for p in procs:
            kill(p)
        for p in procs:
            p.wait(timeout=30)


def hostile(folder: Path, seed: int, transactions: int = 6000) -> Path:
    """A generated hostile file (accounts_gen): what sharding must settle between shards."""
    text = io.StringIO()
    generate(text, clients=50, transactions=transactions, seed=seed, hostile=True)
    path = folder / f"hostile-{seed}.csv"
    path.write_text(text.getvalue())
    return path


def outputs(folder: Path, suffix: str = "csv") -> dict[str, Path]:
    """--out, --rejects and --summary paths in `folder` (made if missing)."""
    folder.mkdir(exist_ok=True)
    return {
        "--out": folder / f"accounts.{suffix}",
        "--rejects": folder / f"rejects.{suffix}",
        "--summary": folder / "summary.json",
    }


def run_job(path: Path | str, out: dict[str, Path], *extra: str) -> subprocess.CompletedProcess:
    """`accounts-job run PATH --quiet` with the outputs `out`, as a real process."""
    args = [a for pair in out.items() for a in map(str, pair)]
    return run_script("run", path, *args, "--quiet", *extra)
