"""Where the kernels' machine code is cached on disk, and for which CPU it is compiled.

numba compiles a kernel on its first call and caches the machine code (`cache=True`),
keyed on a stamp of its source, its bytecode, numba's version and the CPU target.
`install()` runs before the first kernel module is imported (kernels/__init__.py calls
it) and makes that cache serve deployments:

- The stamp. numba's own is the SHA-256 of the kernel's file alone, yet a kernel's
  machine code holds the kernels of other files it calls (rules.py's calls bitmaps.py's):
  after a change to bitmaps.py, numba would load the rules' old code. Ours is one SHA-256
  of every source the kernels are compiled from (`sources_stamp`), so a change to any of
  them makes every cached kernel stale, and none can load code of another version. Like
  numba's, it ignores modification times.
- Compiled code shipped with the package. `kernels/_compiled` holds the cache of every
  kernel `accounts-job warmup` compiles, built for x86-64-v3 with the numba and the
  Python that uv.lock names (`python tools/refresh_compiled.py` rebuilds it). The first
  time a cache folder is used with this version of the sources, its fresh entries are
  copied in, so that a new install's first run loads instead of compiling for half a
  minute. Entries for another version of the sources, another numba or another CPU level
  are never copied or never match: the kernel then compiles, as it would have anyway.
- Loading without numba's compiler. Before it loads a cached kernel, numba refreshes its
  whole target context: it imports and registers every implementation it could ever
  compile (numpy's ufuncs, typed dicts and lists, random, linalg...), about 0.2 s of every
  run, for code it is not going to compile. Loading needs none of it, only the C symbols
  the machine code calls: Python's own, numba's helpers and exception classes (registered
  when numba's target context is made), its threads (each parallel kernel's cache entry
  starts them itself) and its memory manager, NRT. So our kernels' loads start NRT and
  load (`_load_overload`); other numba functions in the process load as numba does, and
  a kernel that has to be compiled after all gets the full refresh from numba's
  compiler, as before. tests/job/test_warmup.py loads every kernel this way in new
  processes, and checks that the compiler's implementations stay unimported.

- The CPU target. numba compiles for this very CPU by default, its model name and every
  feature flag in the cache's key, so a cache built on one model of CPU (an image build,
  a CI runner) is of no use on any other. We compile for a level of the x86-64
  architecture instead: x86-64-v3 (AVX2, BMI2, FMA: Intel since 2013, AMD since 2015), or
  x86-64-v2 on an older CPU. Every CPU of a level shares the key, so a cache built on one
  serves all of them; a CPU below the cache's level gets another key and compiles, rather
  than load code it cannot run. A NUMBA_CPU_NAME set by the user wins, and
  NUMBA_CPU_NAME=host asks for numba's default (this CPU, every feature).
- A package folder that cannot be written. numba caches beside the sources, in
  `__pycache__`; when that is not writable (site-packages owned by root in a container,
  a read-only mount) it falls back to an empty folder in the user's home and compiles
  every kernel on every run. `PackageLocator`, which numba asks first, uses
  `__pycache__` when it can write there. When it cannot, or when NUMBA_CACHE_DIR names
  another folder, it caches in that folder (NUMBA_CACHE_DIR, else the user's cache
  folder, else a private folder in the temp folder), after copying into it, once, what
  `__pycache__` holds for the kernel and the folder lacks. So a read-only install that
  was warmed (`accounts-job warmup`) loads every kernel, and a kernel it must compile
  after all is still saved.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import pickle
import platform
import stat
import sys
import tempfile
import uuid
from collections.abc import Iterator

import numba
from numba.core import config
from numba.core.caching import Cache, CacheImpl, _CacheLocator, _SourceFileBackedLocatorMixin
from numba.core.runtime import nrt
from numba.core.serialize import dumps
from numba.misc.appdirs import AppDirs

# The accounts_job package folder: the locator serves only its source files.
PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KERNELS = os.path.dirname(os.path.abspath(__file__))
# The compiled code the package ships (see the module docstring).
SHIPPED = os.path.join(KERNELS, "_compiled")

# The x86-64 micro-architecture levels (the psABI's), highest first, by the LLVM feature
# names a CPU must have for each. v4 (AVX-512) is left out: many current CPUs lack it.
_V2 = {"cx16", "sahf", "popcnt", "sse3", "sse4.1", "sse4.2", "ssse3"}
_V3 = _V2 | {"avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave"}
LEVELS = (("x86-64-v3", _V3), ("x86-64-v2", _V2))


def install() -> None:
    """Choose the CPU target, register `PackageLocator` with numba and have our kernels
    load without the compiler's set-up (idempotent)."""
    choose_cpu_target()
    if PackageLocator not in CacheImpl._locator_classes:
        CacheImpl._locator_classes.insert(0, PackageLocator)
    if Cache.load_overload is not _load_overload:
        Cache.load_overload = _load_overload  # type: ignore[method-assign]


# numba's own Cache.load_overload, for every function but our kernels.
_numba_load_overload = Cache.load_overload


def _load_overload(self: Cache, sig: object, target_context: object) -> object:
    """numba's Cache.load_overload, but for our kernels without its refresh of the whole
    target context first (see the module docstring): NRT is all a load needs."""
    if not isinstance(getattr(getattr(self, "_impl", None), "locator", None), PackageLocator):
        return _numba_load_overload(self, sig, target_context)
    nrt.rtsys.initialize(target_context)
    with self._guard_against_spurious_io_errors():
        return self._load_overload(sig, target_context)


def choose_cpu_target() -> str | None:
    """Compile for the highest x86-64 level this CPU has (see the module docstring);
    returns the CPU name chosen, or None when numba's own choice stands."""
    import llvmlite.binding as ll

    if config.CPU_NAME is not None:  # NUMBA_CPU_NAME or .numba_config.yaml: theirs
        if config.CPU_NAME == "host":  # numba's default, this CPU, by its name
            _set(ll.get_host_cpu_name(), config.CPU_FEATURES)
        return None
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None
    have = {name for name, on in ll.get_host_cpu_features().items() if on}
    for name, needs in LEVELS:
        if needs <= have:
            # Features "": those of the named CPU, not this machine's.
            _set(name, "")
            return name
    return None


def _set(name: str, features: str | None) -> None:
    """Make numba compile for CPU `name` with `features` (None: this machine's).

    numba reads both when it creates its code generator, which happens when the first
    kernel is defined: install() runs before that. They also go into the environment,
    because numba re-reads its settings from there whenever a NUMBA_ variable changed
    (a Dask nanny sets NUMBA_NUM_THREADS in a worker after the import, say), which would
    otherwise undo the choice half-way: the code compiled for one target, the cache's key
    naming another. Processes started from here inherit the choice, as they should.
    """
    os.environ["NUMBA_CPU_NAME"] = name
    config.CPU_NAME = name
    if features is None:
        os.environ.pop("NUMBA_CPU_FEATURES", None)
    else:
        os.environ["NUMBA_CPU_FEATURES"] = features
    config.CPU_FEATURES = features


# Cache folders found writable in this process.
_WRITABLE: set[str] = set()


class PackageLocator(_SourceFileBackedLocatorMixin, _CacheLocator):
    """numba's cache locator for this package's kernels: `__pycache__` when writable,
    else a writable folder seeded from `__pycache__` (see the module docstring)."""

    def __init__(self, py_func: object, py_file: str, cache_path: str) -> None:
        self._py_func = py_func
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno  # type: ignore[attr-defined]
        self._cache_path = cache_path

    def get_cache_path(self) -> str:
        return self._cache_path

    def get_source_stamp(self) -> bytes:
        return sources_stamp()

    @classmethod
    def from_function(cls, py_func: object, py_file: str) -> PackageLocator | None:
        path = os.path.abspath(py_file)
        if not path.startswith(PACKAGE + os.sep) or not os.path.exists(path):
            return None  # not ours: numba's locators decide
        in_tree = os.path.join(os.path.dirname(path), "__pycache__")
        for folder in _folders(path, in_tree):
            self = cls(py_func, path, folder)
            if folder not in _WRITABLE:
                try:
                    self.ensure_cache_path()  # creates it and checks that it can be written
                except OSError:
                    continue
                # Once per folder, not once per kernel: the check writes a file.
                _WRITABLE.add(folder)
            # Seeding only saves compiling: whatever goes wrong (an unreadable or
            # foreign file), the kernel compiles, as it would have anyway.
            with contextlib.suppress(Exception):
                _seed_folder(folder, in_tree)
            if folder != in_tree:
                with contextlib.suppress(Exception):
                    self.seed(in_tree)
            return self
        return None  # no writable folder at all: numba's own fallbacks decide

    def stem(self) -> str:
        """The kernel's file names without suffix, as numba's CacheImpl makes them."""
        func = self._py_func
        modname = os.path.splitext(os.path.basename(self._py_file))[0]
        qualname = func.__qualname__.replace("<", "").replace(">", "")  # type: ignore[attr-defined]
        return f"{modname}.{qualname}-{self._lineno}.{_python_tag()}"

    def seed(self, source: str) -> None:
        """Copy into this cache folder the entries of `source`'s index for this kernel
        that this folder's index lacks (see `seed`)."""
        seed(self.stem(), source, self._cache_path, self.get_source_stamp())


def seed(stem: str, source: str, target: str, stamp: bytes) -> None:
    """Copy into the cache folder `target` the entries of `source`'s index for the kernel
    `stem` that are fresh (made from sources of this `stamp`, by this numba) and that
    `target`'s index lacks, then merge the indexes.

    Data files are copied under names `target`'s index does not use, and the index is
    replaced last, atomically: a process loading from there meanwhile sees the old index
    and the files it names, or the new one and all of its files.
    """
    index = f"{stem}.nbi"
    source_index = os.path.join(source, index)
    target_index = os.path.join(target, index)
    if not os.path.exists(source_index) or _same_bytes(source_index, target_index):
        return
    theirs = _fresh_entries(source_index, stamp)
    ours = _fresh_entries(target_index, stamp)
    missing = {key: name for key, name in theirs.items() if key not in ours}
    if not missing:
        return
    used = set(ours.values())
    numbers = itertools.count(1)
    for key, name in missing.items():
        new = next(
            n
            for n in (f"{stem}.{i}.nbc" for i in numbers)
            if n not in used and not os.path.exists(os.path.join(target, n))
        )
        with open(os.path.join(source, name), "rb") as f:
            _write_atomically(os.path.join(target, new), f.read())
        ours[key] = new
        used.add(new)
    # numba's index format (caching.IndexDataCacheFile): its version, then the source
    # stamp and the entries, serialized as numba does.
    _write_atomically(
        target_index,
        pickle.dumps(numba.__version__, protocol=-1) + dumps((stamp, ours)),
    )


@functools.cache
def sources_stamp() -> bytes:
    """The SHA-256 of every source the kernels are compiled from: this package's modules
    (but this one and __init__.py, which compile nothing) and the codes they share with
    the rest of the job. Read once per process."""
    digest = hashlib.sha256()
    skip = ("_cache.py", "__init__.py")
    names = sorted(n for n in os.listdir(KERNELS) if n.endswith(".py") and n not in skip)
    for path in [os.path.join(KERNELS, n) for n in names] + [os.path.join(PACKAGE, "codes.py")]:
        with open(path, "rb") as f:
            data = f.read()
        digest.update(f"{os.path.basename(path)} {len(data)}\n".encode())
        digest.update(data)
    return digest.digest()


# Cache folders that `_seed_folder` has seen in this process.
_SEEDED: set[str] = set()


def _seed_folder(folder: str, in_tree: str) -> None:
    """Seed `folder` for every kernel at once, from `in_tree` (the kernels' `__pycache__`,
    when `folder` is another) and then from the shipped compiled code, once per version of
    the sources: a marker file named after the stamp says it was done (so that a later
    run, or a kernel compiled in `folder` since, costs one look, not a copy).

    Every kernel, not only those this process imports: a kernel imported by a later
    process then finds all it can use already there, and nothing is copied twice."""
    if folder in _SEEDED:
        return
    _SEEDED.add(folder)
    stamp = sources_stamp()
    marker = os.path.join(folder, f"accounts-job-seeded-{stamp.hex()[:16]}")
    if os.path.exists(marker):
        return
    suffix = f".{_python_tag()}.nbi"
    for source in ([in_tree] if folder != in_tree else []) + [SHIPPED]:
        with contextlib.suppress(FileNotFoundError):  # no cache there, no compiled code
            for name in sorted(os.listdir(source)):
                if name.endswith(suffix):
                    seed(name.removesuffix(".nbi"), source, folder, stamp)
    for name in os.listdir(folder):  # the markers of earlier versions
        if name.startswith("accounts-job-seeded-"):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(folder, name))
    _write_atomically(marker, b"")


def _python_tag() -> str:
    """`py311` and the like, as numba ends its cache files' names."""
    major, minor = sys.version_info[:2]
    return f"py{major}{minor}{getattr(sys, 'abiflags', '')}"


def _folders(py_file: str, in_tree: str) -> Iterator[str]:
    """Where a kernel of `py_file` may be cached, in order of preference (lazily: the
    temp folder is made only when it comes to that)."""
    # numba's own name for a source folder under a cache root: its name and a hash of
    # its path, so that two installs of the package never share a folder.
    sub = _CacheLocator.get_suitable_cache_subpath(py_file)
    if config.CACHE_DIR:  # NUMBA_CACHE_DIR: the user's choice, and the only one
        yield os.path.join(config.CACHE_DIR, sub)
        return
    yield in_tree
    yield os.path.join(AppDirs(appname="numba", appauthor=False).user_cache_dir, sub)
    private = _private_temp_folder()
    if private is not None:
        yield os.path.join(private, sub)


def _private_temp_folder() -> str | None:
    """A folder of this user's in the temp folder that no one else can write to (cached
    code is loaded and run, so it must not come from a folder others can write)."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return None
    path = os.path.join(tempfile.gettempdir(), f"accounts-job-numba-cache-{getuid()}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    # Not a link (its target could be anyone's), ours, and writable by no one else.
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != getuid() or st.st_mode & 0o022:
        return None
    return path


def _fresh_entries(index: str, stamp: object) -> dict:
    """The entries (key -> data file name) of a numba index file that are valid for this
    numba and this version of the source; {} when none are."""
    try:
        with open(index, "rb") as f:
            version = pickle.load(f)
            rest = f.read()
    except FileNotFoundError:
        return {}
    if version != numba.__version__:
        return {}
    index_stamp, entries = pickle.loads(rest)
    return dict(entries) if index_stamp == stamp else {}


def _same_bytes(a: str, b: str) -> bool:
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            return fa.read() == fb.read()
    except OSError:
        return False


def _write_atomically(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp.{uuid.uuid4().hex[:16]}"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
