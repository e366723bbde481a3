"""Compiling every kernel the job can use, ahead of the first real run.

numba compiles a kernel on its first call and caches the machine code on disk; a fresh
install (a new container, a new Dask worker node, CI) pays for that once. `warm()` pays it
on purpose, at image-build or worker-start time: it runs the job over small sample files
that take every path a real run can take (both parsers, every reject, the nightly state,
the sharded run), so that each kernel is compiled, or loaded from the cache, for every
signature a run will ask for. Running it again only loads.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

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
        Kernel signatures compiled now (0 when the cache already held them all).
    loaded : int
        Kernel signatures loaded from the cache.
    cache_dirs : list of str
        The folders the kernels' machine code is cached in.
    """

    seconds: float
    compiled: int
    loaded: int
    cache_dirs: list[str]


def warm() -> Warmed:
    """Compile, or load from the cache, every kernel a run of this package can use."""
    from .distributed.sharded import InProcess, process_sharded
    from .job import process
    from .state.folder import StateDir

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="accounts-job-warmup-") as tmp:
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
            # Small batches and blocks: several of each, as a large file has.
            process(
                files[name],
                rejects_to=folder / f"{name}.rejects.parquet",
                events_to=folder / f"{name}.events.parquet",
                batch_size=4,
                block_bytes=64,
            )
            process_sharded(files[name], InProcess(), 2, chunk_bytes=64, batch_size=4)
        state = StateDir(folder / "state")
        _init_state(state)
        for name in ("night-1.csv", "night-2.csv"):
            process(files[name], state=state, accounts_to=folder / f"{name}.accounts.csv")
    compiled, loaded, dirs = _cache_counts()
    return Warmed(time.perf_counter() - started, compiled, loaded, dirs)


def _init_state(state: object) -> None:
    """A fresh state folder, as `accounts-job state init` makes it."""
    init = getattr(state, "init", None)
    if init is not None:
        init()


def kernels() -> list[object]:
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


def _cache_counts() -> tuple[int, int, list[str]]:
    compiled = loaded = 0
    dirs = set()
    for kernel in kernels():
        compiled += sum(kernel._cache_misses.values())  # type: ignore[attr-defined]
        loaded += sum(kernel._cache_hits.values())  # type: ignore[attr-defined]
        cache = getattr(kernel, "_cache", None)
        if cache is not None and hasattr(cache, "cache_path"):
            dirs.add(cache.cache_path)
    return compiled, loaded, sorted(dirs)
