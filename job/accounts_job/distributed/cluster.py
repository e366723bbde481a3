"""The sharded run (distributed/sharded.py) on a Dask cluster.

Imported only when a run asks for a cluster, so that Dask stays an optional extra and a
plain run never pays for importing it. Every step is a pure function of its inputs: when
a worker dies, Dask runs the steps it held again elsewhere, from the file, and the answer
is the same. When it cannot (every try of a step failed), the run fails with a
ClusterError and no output.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..engine.parser import DEFAULT_BATCH_SIZE
from ..engine.result import Result
from ..errors import ClusterError, UsageError
from ..io.source import is_url
from ..io.writers import TableWriter
from .sharded import DEFAULT_CHUNK_BYTES, process_sharded

if TYPE_CHECKING:
    import distributed

LOCAL = "local:"
CONNECT_TIMEOUT = "20s"


class DaskExecutor:
    """sharded.Executor on a distributed.Client: steps become tasks, handles futures."""

    def __init__(self, client: distributed.Client) -> None:
        self.client = client

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def gather(self, handles: list[Any]) -> list[Any]:
        from distributed import KilledWorker

        try:
            return self.client.gather(handles)
        except KilledWorker as e:
            raise ClusterError(
                f"a Dask worker died each time it ran a step of the run ({e}); nothing was written"
            ) from None
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"lost the Dask cluster during the run: {e}") from None


@contextlib.contextmanager
def connect(spec: str) -> Iterator[tuple[DaskExecutor, int]]:
    """(executor, number of workers) for `spec`: `local:N` starts N worker processes on
    this machine for the run; anything else is a scheduler address (tcp://HOST:PORT)."""
    try:
        import distributed
    except ImportError:
        raise UsageError("--cluster needs Dask: pip install 'accounts-job[distributed]'") from None
    with contextlib.ExitStack() as stack:
        if spec.startswith(LOCAL):
            workers = _local_workers(spec)
            # One task at a time per worker process; its kernels share the cores.
            threads = str(max(1, (os.cpu_count() or 1) // workers))
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    # Workers warm their kernels as they start, taking turns: one compiles.
                    preload=["accounts_job.warmup"],
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    env={"NUMBA_NUM_THREADS": threads},
                )
            )
            client = stack.enter_context(distributed.Client(cluster))
        else:
            try:
                client = stack.enter_context(distributed.Client(spec, timeout=CONNECT_TIMEOUT))
            except (OSError, TimeoutError, ValueError) as e:
                raise ClusterError(f"cannot reach the Dask scheduler at {spec}: {e}") from None
            workers = len(client.scheduler_info().get("workers", {}))
            if workers == 0:
                raise ClusterError(f"the Dask scheduler at {spec} has no workers")
            check_workers(client)
        yield DaskExecutor(client), workers


def worker_version() -> str:
    """This package's version, where it runs (on a worker)."""
    return __version__


def check_workers(client: distributed.Client) -> None:
    """Every worker must run this version of the package: the steps are its functions,
    and another version could compute another answer."""
    try:
        versions: dict[str, str] = client.run(worker_version)
    except Exception as e:  # a worker cannot even load the package
        raise ClusterError(
            f"a Dask worker cannot run accounts-job ({type(e).__name__}: {e}); install "
            f"accounts-job {__version__} on every worker"
        ) from None
    other = {w: v for w, v in versions.items() if v != __version__}
    if other:
        listed = ", ".join(f"{w} has {v}" for w, v in sorted(other.items()))
        raise ClusterError(f"Dask workers run another accounts-job than {__version__}: {listed}")


def _local_workers(spec: str) -> int:
    text = spec.removeprefix(LOCAL)
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--cluster {spec}: expected local:N with N >= 1 workers")
    return int(text)


def process_on_cluster(
    path: str | Path,
    cluster: str,
    *,
    shards: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    batch_size: int = DEFAULT_BATCH_SIZE,
    rejects_to: TableWriter | None = None,
    keep_rejects: bool = True,
) -> Result:
    """The run on the Dask cluster `cluster`, sharded by client over its workers (or
    `shards`). The input must be a path every worker can read: a shared folder."""
    # Workers resolve paths against their own working folders: give them an absolute one.
    if not is_url(path):
        path = Path(path).absolute()
    with connect(cluster) as (executor, workers):
        return process_sharded(
            path,
            executor,
            shards or workers,
            chunk_bytes=chunk_bytes,
            batch_size=batch_size,
            rejects_to=rejects_to,
            keep_rejects=keep_rejects,
        )
