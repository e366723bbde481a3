"""The sharded run (distributed/sharded.py) on a Dask cluster.

Imported only when a run asks for a cluster, so that Dask stays an optional extra and a
plain run never pays for importing it. Every step is a pure function of its inputs: when
a worker dies, Dask runs the steps it held again elsewhere, from the file, and the answer
is the same. When it cannot (every try of a step failed, the scheduler is lost, or the
cluster has had no worker for the stall timeout), the run fails with a ClusterError and
no output. A run never waits without end: connecting has a deadline of its own
(Dask's handshake has none), and so has a cluster left without workers.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import struct
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._version import __version__
from ..engine.parser import DEFAULT_BATCH_SIZE
from ..engine.result import Result
from ..errors import ClusterError, UsageError
from ..io.source import is_url
from ..io.writers import TableWriter
from . import CONNECT_TIMEOUT, STALL_TIMEOUT
from .sharded import DEFAULT_CHUNK_BYTES, process_sharded

try:
    from distributed import WorkerPlugin
except ImportError:  # connect() says what to install
    WorkerPlugin = object  # type: ignore[assignment,misc]

if TYPE_CHECKING:
    import distributed

LOCAL = "local:"

# How often a run waiting for its steps looks at the cluster: often enough to keep to
# the stall timeout closely, rarely enough to cost the scheduler nothing.
POLL_SECONDS = 1.0

# A Dask scheduler's first message on a new TCP connection is its handshake, a few
# hundred bytes after their count as 8 bytes. A peer whose first 8 bytes claim more is
# something else (b"HTTP/1.1" reads as 3.5e18): refused before Dask would try to
# allocate that much.
MAX_HANDSHAKE_BYTES = 1 << 20

# Loggers whose records a quiet run drops: Dask's own and those of its event loop.
DASK_LOGGERS = ("distributed", "tornado", "asyncio")
SILENT = logging.CRITICAL + 1


class DaskExecutor:
    """sharded.Executor on a distributed.Client: steps become tasks, handles futures.

    `gather` waits for the futures, and gives up (ClusterError) when the scheduler is
    lost, when a step failed on every try, or when for `stall_timeout` seconds the
    cluster had no worker and none of the futures finished.
    """

    def __init__(self, client: distributed.Client, stall_timeout: float = STALL_TIMEOUT) -> None:
        self.client = client
        self.stall_timeout = stall_timeout

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        return self.client.submit(fn, *args, pure=False)

    def gather(self, handles: list[Any]) -> list[Any]:
        from distributed import KilledWorker

        try:
            self._wait(handles)
            return self.client.gather(handles)
        except KilledWorker as e:
            raise ClusterError(
                f"a Dask worker died each time it ran a step of the run ({e}); nothing was written"
            ) from None
        except CancelledError as e:
            # Dask cancels every future of a client that lost its scheduler.
            raise ClusterError(
                f"lost the Dask scheduler during the run ({_one_line(e)}); nothing was written"
            ) from None
        except (OSError, TimeoutError) as e:
            raise ClusterError(f"lost the Dask cluster during the run: {e}") from None

    def _wait(self, futures: list[Any]) -> None:
        """Return once every future is done (finished, failed or cancelled)."""
        import distributed

        poll = min(POLL_SECONDS, self.stall_timeout / 4)
        finished, idle_since = -1, None
        while True:
            try:
                with self.client.as_current():
                    distributed.wait(futures, timeout=poll)
                return
            except TimeoutError:
                pass
            done = sum(f.done() for f in futures)
            if done > finished or self.client.nthreads():
                finished, idle_since = done, None
                continue
            now = time.monotonic()
            if idle_since is None:
                idle_since = now
            elif now - idle_since >= self.stall_timeout:
                raise ClusterError(
                    f"the Dask cluster has had no worker for {self.stall_timeout:g} s "
                    "(--cluster-stall-timeout) and the run made no progress; nothing was "
                    "written"
                )


class LocalWorkerSetup(WorkerPlugin):
    """Set up each `local:N` worker process as it starts (or restarts, after a death).

    Parameters
    ----------
    threads : int
        Numba threads for the worker's kernels: its share of this machine's cores.
    quiet : bool
        Silence Dask's log records and all warnings in the worker: its stderr is ours.
    """

    def __init__(self, threads: int, quiet: bool) -> None:
        self.threads = threads
        self.quiet = quiet

    def setup(self, worker: Any) -> None:
        # The worker process imported numba before its nanny set its environment
        # (multiprocessing's spawn imports the main module first, and with it this
        # package), so numba's thread count is still the machine's. Numba reads its
        # settings again before each compilation and refuses a new NUMBA_NUM_THREADS
        # once its threads run: a worker that ran a cached parallel kernel, then
        # compiled another, failed the run. Set and read it now, before any kernel runs.
        from numba.core import config

        os.environ["NUMBA_NUM_THREADS"] = str(self.threads)
        config.reload_config()
        if self.quiet:
            _silence()  # for the process's life: it is the run's, and ends with it
            warnings.simplefilter("ignore")


@contextlib.contextmanager
def connect(
    spec: str,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    stall_timeout: float = STALL_TIMEOUT,
    quiet: bool = False,
) -> Iterator[tuple[DaskExecutor, int]]:
    """(executor, number of workers) for `spec`: `local:N` starts N worker processes on
    this machine for the run; anything else is a scheduler address (tcp://HOST:PORT),
    which must answer as a Dask scheduler within `connect_timeout` seconds. With `quiet`,
    Dask logs nothing and warns nothing in this process (and in local workers) until the
    cluster is closed; the previous settings come back after."""
    try:
        import distributed
    except ImportError:
        raise UsageError("--cluster needs Dask: pip install 'accounts-job[distributed]'") from None
    _check_seconds("--cluster-connect-timeout", connect_timeout)
    _check_seconds("--cluster-stall-timeout", stall_timeout)
    with contextlib.ExitStack() as stack:
        if quiet:
            stack.enter_context(quiet_dask())
        if spec.startswith(LOCAL):
            workers = _local_workers(spec)
            # One task at a time per worker process; its kernels share the cores.
            threads = max(1, (os.cpu_count() or 1) // workers)
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    # Workers warm their kernels as they start, taking turns: one compiles.
                    preload=["accounts_job.warmup"],
                    n_workers=workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    plugins={LocalWorkerSetup(threads, quiet)},
                    # Read by the preload (warmup.dask_setup) before it runs a kernel.
                    env={"NUMBA_NUM_THREADS": str(threads)},
                )
            )
            client = stack.enter_context(distributed.Client(cluster))
        else:
            deadline = time.monotonic() + connect_timeout
            _probe(spec, connect_timeout)
            client = stack.enter_context(_client(spec, deadline, connect_timeout))
            workers = len(client.scheduler_info().get("workers", {}))
            if workers == 0:
                raise ClusterError(f"the Dask scheduler at {spec} has no workers")
            check_workers(client)
        yield DaskExecutor(client, stall_timeout), workers


@contextlib.contextmanager
def quiet_dask() -> Iterator[None]:
    """Dask's loggers silenced and warnings ignored in this process; as before after."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restore = _silence()
        try:
            yield
        finally:
            restore()


def _silence() -> Callable[[], None]:
    """Silence DASK_LOGGERS and every logger below them; returns what undoes it."""
    names = [
        name
        for name in list(logging.root.manager.loggerDict)
        if name.split(".", 1)[0] in DASK_LOGGERS
    ]
    loggers = [logging.getLogger(name) for name in {*DASK_LOGGERS, *names}]
    levels = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.setLevel(SILENT)

    def restore() -> None:
        for lg, level in levels:
            lg.setLevel(level)

    return restore


def _check_seconds(option: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise UsageError(f"{option} {value}: expected a number of seconds above 0")


def _probe(spec: str, seconds: float) -> None:
    """Refuse, within `seconds`, a TCP address whose service does not begin as a Dask
    scheduler does: one that accepts and says nothing (Dask would wait for it forever),
    or one that answers something else (Dask would read its first bytes as a length).
    Nothing listening is left to the client, which retries until its timeout."""
    from distributed.comm import parse_address, parse_host_port

    try:
        scheme, location = parse_address(spec)
        host, port = parse_host_port(location)
    except ValueError:
        return  # the client says what is wrong with the address
    if scheme != "tcp":
        return  # tls:// and the like: the deadline on connecting covers them
    try:
        sock = socket.create_connection((host, port), timeout=seconds)
    except OSError:
        return
    try:
        with sock:
            sock.settimeout(seconds)
            head = b""
            while len(head) < 8:
                more = sock.recv(8 - len(head))
                if not more:
                    break
                head += more
    except TimeoutError:
        raise ClusterError(
            f"{spec} accepted the connection but sent no Dask handshake within {seconds:g} s "
            "(--cluster-connect-timeout): is it a Dask scheduler?"
        ) from None
    except OSError as e:
        raise ClusterError(f"cannot reach the Dask scheduler at {spec}: {e}") from None
    if len(head) < 8:
        raise ClusterError(f"{spec} closed the connection without a Dask handshake")
    (size,) = struct.unpack("Q", head)  # the byte order Dask's TCP frames use
    if not 0 < size <= MAX_HANDSHAKE_BYTES:
        raise ClusterError(
            f"{spec} is not a Dask scheduler: it answered with bytes that do not begin a "
            f"Dask handshake ({head!r})"
        )


def _client(spec: str, deadline: float, timeout: float) -> distributed.Client:
    """A Client of the scheduler at `spec`, connected by `deadline` (time.monotonic) or
    ClusterError; `timeout` is the option's value, for the message.

    Client's own timeout does not cover the whole handshake, so it is made in a thread
    that is left behind at the deadline (it closes its client if it ever gets one).
    """
    import distributed

    seconds = max(0.1, round(deadline - time.monotonic(), 1))
    lock = threading.Lock()
    outcome: list[tuple[bool, Any]] = []
    abandoned = threading.Event()

    def make() -> None:
        try:
            made: tuple[bool, Any] = (True, distributed.Client(spec, timeout=seconds))
        except Exception as e:
            made = (False, e)
        with lock:
            if not abandoned.is_set():
                outcome.append(made)
                return
        if made[0]:
            made[1].close()

    thread = threading.Thread(target=make, name="accounts-job-connect", daemon=True)
    thread.start()
    thread.join(seconds + 0.5)  # Client's own timeout gets to speak first
    with lock:
        if not outcome:
            abandoned.set()
            raise ClusterError(
                f"cannot reach the Dask scheduler at {spec}: no Dask handshake within "
                f"{timeout:g} s (--cluster-connect-timeout)"
            )
    ok, value = outcome[0]
    if ok:
        return value
    if isinstance(value, (OSError, TimeoutError, ValueError)):
        raise ClusterError(f"cannot reach the Dask scheduler at {spec}: {_one_line(value)}")
    raise ClusterError(
        f"{spec} did not answer as a Dask scheduler: {type(value).__name__}: {_one_line(value)}"
    )


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


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
    connect_timeout: float = CONNECT_TIMEOUT,
    stall_timeout: float = STALL_TIMEOUT,
    quiet: bool = False,
) -> Result:
    """The run on the Dask cluster `cluster`, sharded by client over its workers (or
    `shards`). The input must be a path every worker can read: a shared folder. The
    timeouts and `quiet` are connect()'s."""
    # Workers resolve paths against their own working folders: give them an absolute one.
    if not is_url(path):
        path = Path(path).absolute()
    with connect(
        cluster, connect_timeout=connect_timeout, stall_timeout=stall_timeout, quiet=quiet
    ) as (executor, workers):
        return process_sharded(
            path,
            executor,
            shards or workers,
            chunk_bytes=chunk_bytes,
            batch_size=batch_size,
            rejects_to=rejects_to,
            keep_rejects=keep_rejects,
        )
