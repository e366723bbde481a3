"""Compiling every kernel the job can use, ahead of the first real run.

numba compiles a kernel on its first call and caches the machine code on disk
(kernels/_cache.py says where, and for which CPU); a fresh install (a new container, a new
Dask worker node, CI) pays for that once. `warm()` pays it on purpose, at image-build or
worker-start time: it runs the job over small sample files that take every path a real
run can take (both parsers, every reject, the nightly state, the sharded run), so that
each kernel is compiled, or loaded from the cache, for every signature a run will ask
for. Running it again only loads.

This module is also a Dask preload (`dask worker ... --preload accounts_job.warmup`):
each worker warms itself when it starts, before it takes tasks; workers on one machine
take turns, so the first compiles and the others load. And `compile_notice` says so on
stderr when a run has to compile after all.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from numba.core import config, event

from .faults import suspended

# The samples: every command and every reject reason, both header layouts, quotes,
# padding, CRLF, a NUL byte, bytes that are not UTF-8, blank lines, and a second night
# that reaches back into the first.
_CANONICAL = (
    b"type,client,tx,amount\n"
    b"deposit,1,1,10\n"
    b"deposit,2,2,5.5\n"
    b"withdrawal,1,3,4\n"
    b"dispute,1,1\n"
    b"resolve,1,1,\n"
    b"dispute,1,1\n"
    b"chargeback,1,1\n"
    b"deposit,1,4,1\n"
    b"withdraw,2,5,100\n"
    b"dispute,2,3\n"
    b"dispute,2,9\n"
    b"deposit,2,2,1\n"
    b"resolve,2,2\n"
    b' Deposit , 3 ,"6", 2.50 \r\n'
    b"\n"
    b"DISPUTE,3,6\r\n"
    b"chargeback,3,6,\n"
    b"bogus,1,7,1\n"
    b"deposit,x,8,1\n"
    b"deposit,1,y,1\n"
    b"deposit,1,9,1.00001\n"
    b"deposit,1,10,1,2\n"
    b'deposit,"1,11,1\n'
    b"deposit,1,12,1\x00\n"
    b"deposit,1,13,\xff\xfe\n"
    b"deposit,4,14,922337203685477.5807\n"
    b"deposit,4,15,1\n"
    b"dispute,4,14\n"
)
_OTHER_HEADER = (
    b"\xef\xbb\xbfAmount, TX ,client,Type,note\n"
    b"10,1,1,deposit,a\n"
    b"4,2,1,withdrawal,\n"
    b",1,1,dispute\n"
    b",1,1,resolve\n"
    b'1,3,2,deposit,"x"\n'
    b",3,2,chargeback\n"
    b",3,2,dispute\n"
    b"oops\n"
)
_NIGHT_1 = b"type,client,tx,amount\ndeposit,1,1,10\ndeposit,2,2,3\nwithdrawal,2,3,1\n"
_NIGHT_2 = b"type,client,tx,amount\ndispute,1,1\nresolve,1,1\ndispute,2,3\ndeposit,2,4,1\n"


@dataclass
class Warmed:
    """What `warm` did.

    Attributes
    ----------
    seconds : float
        Wall time of the whole warm-up.
    compiled : int
        Kernel signatures compiled now (0 when the cache already held them all); a
        kernel compiled on the way by another counts too.
    loaded : int
        Kernel signatures loaded from the cache (the kernels a run calls; those they
        call come with them).
    cache_dirs : list of str
        The folders the kernels' machine code is cached in.
    cpu : str
        The CPU the kernels are compiled for (a level such as x86-64-v3, or this CPU's
        model name).
    """

    seconds: float
    compiled: int
    loaded: int
    cache_dirs: list[str]
    cpu: str


def warm(*, sharded_only: bool = False) -> Warmed:
    """Compile, or load from the cache, every kernel a run of this package can use.

    Processes on one machine that warm at the same time take turns (a lock file in the
    cache folder), so that the kernels are compiled once, not once per process.

    Parameters
    ----------
    sharded_only : bool
        Only the kernels of a sharded run (`--cluster`), which is all a Dask worker runs.

    Returns
    -------
    Warmed
        What it compiled and loaded, how long it took, and where the cache is.
    """
    from .distributed.sharded import InProcess, process_sharded
    from .job import init_state, process

    started = time.perf_counter()
    before = _cache_counts()
    with (
        _one_at_a_time(cache_dirs()),
        suspended(),  # the samples are not the run a crash point aims at
        tempfile.TemporaryDirectory(prefix="accounts-job-warmup-") as tmp,
    ):
        folder = Path(tmp)
        files = {}
        for name, data in (
            ("canonical.csv", _CANONICAL),
            ("other.csv", _OTHER_HEADER),
            ("night-1.csv", _NIGHT_1),
            ("night-2.csv", _NIGHT_2),
        ):
            files[name] = folder / name
            files[name].write_bytes(data)
        for name in ("canonical.csv", "other.csv"):
            # Small batches, blocks and chunks: several of each, as a large file has.
            process_sharded(files[name], InProcess(), 2, chunk_bytes=64, batch_size=4)
            if not sharded_only:
                # Rejects in both forms: as CSV, `raw` goes through the escape kernels.
                form = "csv" if name == "other.csv" else "parquet"
                process(
                    files[name],
                    rejects_to=folder / f"{name}.rejects.{form}",
                    events_to=folder / f"{name}.events.{form}",
                    batch_size=4,
                    block_bytes=64,
                )
        if not sharded_only:
            _warm_typed(folder)
            # Reading a rejects CSV back (explore.read_rejects) undoes the escaping.
            import pyarrow as pa

            from .io.rawtext import escape_array, unescape_array

            unescape_array(escape_array(pa.array([b"=1,\xff\\"], pa.binary())))
            state = folder / "state"
            init_state(state)
            for name in ("night-1.csv", "night-2.csv"):
                process(files[name], state=state, accounts_to=folder / f"{name}.accounts.csv")
    after = _cache_counts()
    return Warmed(
        seconds=time.perf_counter() - started,
        compiled=after[0] - before[0],
        loaded=after[1] - before[1],
        cache_dirs=cache_dirs(),
        cpu=cpu_target(),
    )


# Typed rows (docs/rules.md §2.11): text in every layout Arrow has (offsets of 32 and 64
# bits, string views) and typed columns, so that each text kernel's signatures compile.
_TYPED_ROWS = {
    "type": ["deposit", " Withdraw ", "dispute", "resolve", "chargeback", "bogus", None, "x\x00"],
    "client": ["1", "1", "1", "1", "1", "2", "70000", None],
    "tx": ["1", "2", "1", "1", "1", "3", "4", "-5"],
    "amount": ["10", "2.5", None, "", "", "1e3", "1.00001", "\x00"],
}


def _warm_typed(folder: Path) -> None:
    """Typed sources over the typed samples: Arrow tables and Parquet files, text and
    typed columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from .job import process

    text = pa.table(_TYPED_ROWS)
    large = text.cast(pa.schema([(n, pa.large_string()) for n in text.column_names]))
    n = text.num_rows
    typed = pa.table(
        {
            "type": text.column("type"),
            "client": pa.array([1, 1, 1, 1, 1, 2, 70000, -1], pa.int64()),
            "tx": pa.array(range(n), pa.uint32()),
            "amount": pa.array([1000, 25000, 0, 0, 0, 1, 1, 1], pa.int64()).cast(
                pa.decimal128(38, 4)
            ),
        }
    )
    for i, table in enumerate((text, large, typed)):
        pq.write_table(table, folder / f"typed-{i}.parquet")
        process(table, batch_size=4)
        process(
            folder / f"typed-{i}.parquet",
            rejects_to=folder / f"typed-{i}.rejects.parquet",
            events_to=folder / f"typed-{i}.events.parquet",
            batch_size=4,
        )


def kernels() -> list[Any]:
    """Every compiled kernel of the package (numba dispatchers), module by module."""
    import importlib
    import pkgutil

    from numba.core.registry import CPUDispatcher

    from . import kernels as package

    found = []
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__:
                found.append(value)
    return found


def cache_dirs() -> list[str]:
    """The folders the kernels' machine code is cached in (one, unless numba was told
    otherwise for some)."""
    dirs = {getattr(getattr(k, "_cache", None), "cache_path", None) for k in kernels()}
    return sorted(d for d in dirs if d)


def cpu_target() -> str:
    """The CPU the kernels are compiled for: a level such as x86-64-v3, or a model name."""
    if config.CPU_NAME:
        return config.CPU_NAME
    import llvmlite.binding as ll

    return ll.get_host_cpu_name()


def _cache_counts() -> tuple[int, int]:
    compiled = loaded = 0
    for kernel in kernels():
        compiled += sum(kernel._cache_misses.values())
        loaded += sum(kernel._cache_hits.values())
    return compiled, loaded


@contextlib.contextmanager
def _one_at_a_time(folders: list[str]) -> Iterator[None]:
    """Hold an exclusive lock on a file in the first cache folder, where locks exist."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, each process may compile
        yield
        return
    try:
        fd = os.open(os.path.join(folders[0], "accounts-job-warmup.lock"), os.O_RDWR | os.O_CREAT)
    except (OSError, IndexError):
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


# Saying it when a run compiles.

_KERNELS = __name__.rpartition(".")[0] + ".kernels"


class _Notice(event.Listener):
    """On the first compile of one of the package's kernels, one line on `stream`."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self.said = False

    def on_start(self, ev: event.Event) -> None:
        dispatcher = ev.data["dispatcher"]
        if self.said or not dispatcher.py_func.__module__.startswith(_KERNELS + "."):
            return
        self.said = True
        where = getattr(getattr(dispatcher, "_cache", None), "cache_path", None) or "the cache"
        # Looked up now, not when the run started: a progress bar on stderr replaces
        # sys.stderr while it shows, and prints what is written to it above the bar.
        stream = self.stream or sys.stderr
        print(
            f"accounts-job: compiling the job's kernels: {where} holds no compiled code for "
            f"this version and CPU ({cpu_target()}) yet; this takes a while, once "
            "(`accounts-job warmup` does it ahead of time)",
            file=stream,
            flush=True,
        )

    def on_end(self, ev: event.Event) -> None:
        pass


@contextlib.contextmanager
def compile_notice(stream: TextIO | None = None) -> Iterator[None]:
    """While inside, the first kernel that numba has to compile prints one line first,
    saying what is going on and what to do about it.

    numba reports a compile only once its cache missed, so this costs nothing when
    everything loads.

    Parameters
    ----------
    stream : text stream, optional
        Where the line goes; `sys.stderr` (as it is at that moment) when None.
    """
    notice = _Notice(stream)
    with event.install_listener("numba:compile", notice):
        yield


# A Dask preload: `dask worker tcp://SCHEDULER:8786 --preload accounts_job.warmup`.


async def dask_setup(worker: Any) -> None:
    """Warm a Dask worker's kernels as it starts, before it takes tasks.

    Dask calls this for `dask worker ... --preload accounts_job.warmup` (and
    `--cluster local:N` preloads its workers so). It warms the kernels of the sharded
    run, the only ones a worker runs. The warm-up runs in a thread, so that the worker's
    event loop stays free while it compiles; a worker that has to compile says so on its
    stderr.

    Parameters
    ----------
    worker : distributed.Worker
        The worker starting. What the warm-up did is kept as its
        `accounts_job_warmed` attribute (a `Warmed`).
    """

    # The nanny set this worker's environment after numba was imported (a spawned
    # process imports the main module first): read it now, before a kernel starts
    # numba's threads, which fixes their number for the process's life.
    config.reload_config()

    def go() -> Warmed:
        with compile_notice():
            return warm(sharded_only=True)

    import asyncio  # here: every run imports this module, only a worker needs asyncio

    worker.accounts_job_warmed = await asyncio.to_thread(go)
