"""`accounts-job warmup`, and a warmed install that compiles nothing at run time.

numba reports its cache's work when NUMBA_DEBUG_CACHE=1: a line `[cache] data loaded
from '...'` for each kernel loaded, `[cache] index saved to` and `[cache] data saved to`
for each one compiled and saved. The runs here are new processes of the installed script,
on a copy of the package (its compiled code included, since numba keys its cache on
the sources' content, not their paths); the real tree is never changed but for what the
module's first fixture warms in its own cache.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import accounts_job
import pytest
from accounts_job.kernels import _cache
from accounts_job.kernels.claims import settle_piece
from accounts_job.kernels.gather import gather_lines
from accounts_job.kernels.lines import last_line_end
from accounts_job.warmup import compile_notice, cpu_target, kernels, warm
from support.helpers import console_script, hostile_days, run_on_terminal

PACKAGE = Path(accounts_job.__file__).parent
LOADED = re.compile(r"^\[cache\] data loaded from '(.*)'$", re.MULTILINE)
SAVED = re.compile(r"^\[cache\] (?:index|data) saved to '(.*)'$", re.MULTILINE)


@pytest.fixture(scope="module")
def warmed() -> None:
    """The real tree's cache holds every kernel, for this CPU target (it usually does
    already: then this only loads)."""
    warm()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """Two nights of generated hostile data (every reject reason the generator makes), the
    second with a header the fast path does not take."""
    folder = tmp_path_factory.mktemp("inputs")
    first, second, _ = hostile_days(folder)
    other = folder / "night-2.csv"
    _, body = second.read_text().split("\n", 1)
    other.write_text(" Type , CLIENT,tx,Amount\n" + body)
    return {"night-1": first, "night-2": other}


def copy_package(dest: Path) -> Path:
    """A copy of the package, compiled code included, importable with PYTHONPATH=result."""
    site = dest / "site"
    shutil.copytree(PACKAGE, site / "accounts_job", symlinks=True)
    return site


def environment(tmp: Path, site: Path, **extra: str) -> dict[str, str]:
    """A child's environment: the copy first on the path, numba's cache reports on, and
    the user-wide and temp folders private to the test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    (tmp / "xdg-cache").mkdir(exist_ok=True)
    (tmp / "tmp").mkdir(exist_ok=True)
    env.update(
        PYTHONPATH=str(site),
        NUMBA_DEBUG_CACHE="1",
        XDG_CACHE_HOME=str(tmp / "xdg-cache"),
        TMPDIR=str(tmp / "tmp"),
        **extra,
    )
    return env


def script(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(console_script()), *map(str, args)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done


def python(
    *args: object, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """The environment's Python with `args` (`-c CODE ...`, or a script), which must exit 0."""
    done = subprocess.run(
        [os.fspath(Path(console_script()).with_name("python")), *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done


def nights(inputs: dict[str, Path], out: Path, env: dict[str, str]) -> tuple[list, list]:
    """Both nights as two runs on a fresh state folder: (kernel files loaded, saved)."""
    loaded, saved = [], []
    script("state", "init", out / "state", env=env)
    for name in ("night-1", "night-2"):
        done = script(
            "run",
            inputs[name],
            "--state",
            out / "state",
            "--out",
            out / f"{name}.csv",
            "--rejects",
            out / f"{name}.rejects.csv",
            "--quiet",
            env=env,
        )
        loaded += LOADED.findall(done.stdout)
        saved += SAVED.findall(done.stdout)
    return loaded, saved


def kernel_names(paths: list[str]) -> set[str]:
    """`parse.parse_lines` and the like, from cache file paths."""
    return {Path(p).name.split("-")[0] for p in paths}


# What a run of both nights loads: the kernels the job calls from Python.
RUN_KERNELS = {
    "lines.newline_positions",
    "parse.parse_lines",
    "references.referenced_in_block",
    "rules.apply_batch",
    "rules.restore_slots",
    "gather.gather_lines",
}


def test_a_warmed_copy_loads_every_kernel_and_saves_none(warmed, inputs, tmp_path) -> None:
    site = copy_package(tmp_path)
    env = environment(tmp_path, site)
    done = script("warmup", env=env)
    assert re.search("^nothing to compile", done.stdout, re.MULTILINE), done.stdout
    assert f"cache: {site / 'accounts_job' / 'kernels' / '__pycache__'}" in done.stdout
    loaded, saved = nights(inputs, tmp_path, env)
    assert saved == []
    assert kernel_names(loaded) >= RUN_KERNELS
    assert all(p.startswith(str(site)) for p in loaded)


def test_new_modification_times_do_not_matter(warmed, inputs, tmp_path) -> None:
    """numba stamps a source by its content (SHA-256), so an installer or an image layer
    that gives every file a new modification time leaves the cache valid."""
    site = copy_package(tmp_path)
    for path in site.rglob("*.py"):
        os.utime(path, (1_000_000_000, 1_000_000_000))
    loaded, saved = nights(inputs, tmp_path, environment(tmp_path, site))
    assert saved == []
    assert kernel_names(loaded) >= RUN_KERNELS


@contextlib.contextmanager
def read_only_view(source: Path, target: Path) -> Iterator[Path]:
    """`source` also seen at `target`, read-only even for root (a bind mount); skips
    when mounting is not allowed here."""
    target.mkdir(parents=True)
    if subprocess.run(["mount", "--bind", str(source), str(target)]).returncode != 0:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        ro = subprocess.run(["mount", "-o", "remount,bind,ro", str(target)])
        if ro.returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def cache_files(folder: Path) -> dict[Path, float]:
    """numba's index and data files under `folder`, with their modification times."""
    return {p: p.stat().st_mtime for p in folder.rglob("*.nb[ic]")}


def test_a_read_only_package_loads_from_a_seeded_cache(warmed, inputs, tmp_path) -> None:
    """The package folder cannot be written (site-packages owned by root in an image, a
    read-only mount): numba alone would cache in an empty folder and compile every kernel
    on every run; ours seeds a writable folder from the package's own cache."""
    site = copy_package(tmp_path / "rw")
    with read_only_view(site, tmp_path / "ro") as ro:
        with pytest.raises(OSError):
            (ro / "accounts_job" / "kernels" / "__pycache__" / "probe").write_bytes(b"")
        env = environment(tmp_path, ro)
        loaded, saved = nights(inputs, tmp_path, env)
        assert saved == []
        assert kernel_names(loaded) >= RUN_KERNELS
        # Loaded from the user's cache folder, where the package's cache was copied.
        assert all(p.startswith(str(tmp_path / "xdg-cache")) for p in loaded), loaded
        # Later runs find what they need there: what was copied is not copied again
        # (`warmup` copies the kernels the plain runs did not import, the sharded run's).
        before = cache_files(tmp_path / "xdg-cache")
        again = script("warmup", env=env)
        assert re.search("^nothing to compile", again.stdout, re.MULTILINE), again.stdout
        assert SAVED.findall(again.stdout) == []
        after = cache_files(tmp_path / "xdg-cache")
        assert {p: after.get(p) for p in before} == before


def test_a_cache_folder_set_through_the_environment(warmed, inputs, tmp_path) -> None:
    """NUMBA_CACHE_DIR moves the cache: `warmup` fills it (from the package's own cache
    here, without compiling), and runs load from it."""
    site = copy_package(tmp_path)
    folder = tmp_path / "numba-cache"
    env = environment(tmp_path, site, NUMBA_CACHE_DIR=str(folder))
    done = script("warmup", env=env)
    assert SAVED.findall(done.stdout) == []
    assert f"cache: {folder}" in done.stdout
    loaded, saved = nights(inputs, tmp_path, env)
    assert saved == []
    assert kernel_names(loaded) >= RUN_KERNELS
    assert all(p.startswith(str(folder)) for p in loaded)


def test_a_fresh_cache_folder_is_seeded_from_the_package(warmed, inputs, tmp_path) -> None:
    """An empty NUMBA_CACHE_DIR on a warmed install: nothing compiles either."""
    site = copy_package(tmp_path)
    env = environment(tmp_path, site, NUMBA_CACHE_DIR=str(tmp_path / "empty"))
    loaded, saved = nights(inputs, tmp_path, env)
    assert saved == []
    assert kernel_names(loaded) >= RUN_KERNELS


# The compiled code the package ships, and the stamp that keeps it honest.


def test_a_fresh_install_loads_the_shipped_kernels(inputs, tmp_path) -> None:
    """The package ships its kernels compiled (kernels/_compiled): a copy of it without
    any other compiled code, as a new install has it, compiles nothing, neither in a run
    nor in `warmup`, on any x86-64-v3 machine with uv.lock's numba and Python.

    When this fails after a change to the kernels (or to numba's version), rebuild them:
    `python3 -m uv run python tools/refresh_compiled.py`."""
    import numba

    if cpu_target() != "x86-64-v3":
        pytest.skip("the shipped kernels are compiled for x86-64-v3")
    tag = _cache._python_tag()
    shipped = sorted(Path(_cache.SHIPPED).glob(f"*.{tag}.nbi"))
    if not shipped:
        pytest.skip(f"the package ships no compiled kernels for {tag}")
    with open(shipped[0], "rb") as f:
        built_with = pickle.load(f)
    if built_with != numba.__version__:
        # CI installs uv.lock's numba, which the shipped code must match; an environment
        # installed another way may hold another numba, for which it is not meant.
        message = (
            f"the shipped kernels are built with numba {built_with}, this is {numba.__version__}"
        )
        if os.environ.get("CI"):
            pytest.fail(f"{message}: rebuild them with tools/refresh_compiled.py")
        pytest.skip(message)

    site = tmp_path / "site"
    shutil.copytree(PACKAGE, site / "accounts_job", ignore=shutil.ignore_patterns("__pycache__"))
    env = environment(tmp_path, site)
    loaded, saved = nights(inputs, tmp_path, env)
    assert saved == [], "stale: rebuild with tools/refresh_compiled.py"
    assert kernel_names(loaded) >= RUN_KERNELS
    done = script("warmup", env=env)
    assert re.search("^nothing to compile", done.stdout, re.MULTILINE), done.stdout
    assert SAVED.findall(done.stdout) == [], "stale: rebuild with tools/refresh_compiled.py"


LAST_LF = """
import numpy as np
from accounts_job.kernels.lines import last_line_end
print(last_line_end(np.frombuffer(bytearray(b"a;b\\nc"), dtype=np.uint8))[0])
"""


def test_a_change_to_a_file_a_kernel_uses_makes_it_compile_again(warmed, tmp_path) -> None:
    """A kernel's machine code holds what it uses from other files: lines.py's
    last_line_end has bytes.py's LF built in. numba's own stamp covers only the kernel's
    file, so after a change to bytes.py alone it would load the old code; ours covers
    every source of the kernels."""
    site = copy_package(tmp_path)
    env = environment(tmp_path, site)

    def last_lf() -> tuple[str, list[str]]:
        done = python("-c", LAST_LF, env=env)
        return done.stdout.splitlines()[-1], SAVED.findall(done.stdout)

    assert last_lf() == ("3", [])  # loaded from the cache
    constants = site / "accounts_job" / "kernels" / "bytes.py"
    constants.write_text(constants.read_text().replace("\nLF = 10\n", "\nLF = 59  # ;\n"))
    position, saved = last_lf()
    assert position == "1"
    assert "lines.last_line_end" in kernel_names(saved)


def test_the_stamp_covers_every_kernel_source_and_the_codes(tmp_path, monkeypatch) -> None:
    site = copy_package(tmp_path) / "accounts_job"
    monkeypatch.setattr(_cache, "KERNELS", str(site / "kernels"))
    monkeypatch.setattr(_cache, "PACKAGE", str(site))
    stamps = []
    for path in [*sorted((site / "kernels").glob("*.py")), site / "codes.py"]:
        _cache.sources_stamp.cache_clear()
        before = _cache.sources_stamp()
        path.write_bytes(path.read_bytes() + b"\n")
        _cache.sources_stamp.cache_clear()
        stamps.append((path.name, before != _cache.sources_stamp()))
    _cache.sources_stamp.cache_clear()
    # _cache.py and __init__.py compile nothing: a change to them keeps the compiled code.
    assert stamps == [(name, name not in ("_cache.py", "__init__.py")) for name, _ in stamps]


def test_shipped_code_seeds_a_folder_once_per_version_of_the_sources(
    warmed, monkeypatch, tmp_path
) -> None:
    """Only entries made from these sources are copied; a marker named after the stamp
    makes later processes skip the copy; a new version of the sources seeds again and
    leaves one marker."""
    kernel = gather_lines
    stem = kernel._cache._impl.filename_base
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    in_tree = Path(kernel._cache.cache_path)
    for path in in_tree.glob(f"{stem}*"):
        shutil.copyfile(path, shipped / path.name)
    monkeypatch.setattr(_cache, "SHIPPED", str(shipped))
    monkeypatch.setattr(_cache, "_SEEDED", set())
    folder = tmp_path / "cache"
    folder.mkdir()
    _cache._seed_folder(str(folder), str(folder))
    assert (
        index_entries(folder / f"{stem}.nbi").keys()
        == index_entries(shipped / f"{stem}.nbi").keys()
    )
    markers = sorted(p.name for p in folder.glob("accounts-job-seeded-*"))
    assert markers == [f"accounts-job-seeded-{_cache.sources_stamp().hex()[:16]}"]

    # Another process, the marker there: no copy, even of what went missing.
    (folder / f"{stem}.nbi").unlink()
    monkeypatch.setattr(_cache, "_SEEDED", set())
    _cache._seed_folder(str(folder), str(folder))
    assert not (folder / f"{stem}.nbi").exists()

    # Other sources: what is shipped is stale, nothing is copied, one new marker.
    monkeypatch.setattr(_cache, "sources_stamp", lambda: b"other sources")
    monkeypatch.setattr(_cache, "_SEEDED", set())
    _cache._seed_folder(str(folder), str(folder))
    assert not (folder / f"{stem}.nbi").exists()
    assert [p.name for p in folder.glob("accounts-job-seeded-*")] == [
        f"accounts-job-seeded-{b'other sources'.hex()[:16]}"
    ]


# Loading without numba's compiler.

# Modules numba's full refresh of its target context imports, which loading a cached
# kernel does not need.
COMPILER_ONLY = (
    "numba.np.random.generator_methods",
    "numba.np.polynomial.polynomial_core",
    "numba.typed.dictobject",
)
UNSET = f"""
import sys
from accounts_job.cli import app
try:
    app(sys.argv[1:])
except SystemExit as e:
    assert not e.code, e.code
print("compiler:", sorted(m for m in {COMPILER_ONLY!r} if m in sys.modules))
"""


def test_a_run_that_loads_its_kernels_skips_numbas_compiler_set_up(
    warmed, inputs, tmp_path
) -> None:
    """A run whose kernels all load never sets up numba's compiler (about 0.2 s of every
    run): loading runs the machine code with NRT alone. Its answers are the same as a run
    in this process, whose kernels numba set up as it always does."""
    from accounts_job import process

    site = copy_package(tmp_path)
    env = environment(tmp_path, site)
    out = tmp_path / "child.csv"
    done = python("-c", UNSET, "run", inputs["night-1"], "--out", out, "--quiet", env=env)
    assert SAVED.findall(done.stdout) == []
    assert kernel_names(LOADED.findall(done.stdout)) >= {"parse.parse_lines", "rules.apply_batch"}
    assert "compiler: []" in done.stdout
    here = tmp_path / "here.csv"
    process(inputs["night-1"], accounts_to=here)
    assert out.read_bytes() == here.read_bytes()


OTHER = """
import sys
from numba import njit
import accounts_job.kernels  # our load, installed; not for this function

@njit(cache=True)
def double(x):
    return 2 * x

print(double(21), "compiler:", sorted(m for m in {modules!r} if m in sys.modules))
"""


def test_other_numba_functions_load_as_numba_loads_them(tmp_path) -> None:
    """Only our kernels skip the set-up: another cached function, whose needs we do not
    know, loads after numba's full refresh as it always does."""
    (tmp_path / "other.py").write_text(OTHER.format(modules=COMPILER_ONLY))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    env["NUMBA_DEBUG_CACHE"] = "1"
    for what in ("data saved", "data loaded"):
        done = python("other.py", env=env, cwd=tmp_path)
        assert f"[cache] {what}" in done.stdout
        assert f"42 compiler: {sorted(COMPILER_ONLY)}" in done.stdout


# The CPU target.


PRETEND = """
import llvmlite.binding as ll

# Another machine: another CPU model, without AVX-512 (as most x86-64 servers and
# laptops), the same x86-64 level otherwise.
real = ll.get_host_cpu_features()
fake = type(real)()
fake.update({k: v for k, v in real.items() if not k.startswith("avx512")})
ll.get_host_cpu_name = lambda: "pretend-cpu"
ll.get_host_cpu_features = lambda: fake

import sys
from accounts_job.cli import app
from numba.core.registry import cpu_target

print("magic", cpu_target.target_context.codegen().magic_tuple())
app(sys.argv[1:])
"""


def test_a_cache_built_on_one_cpu_model_serves_another(warmed, inputs, tmp_path) -> None:
    """The cache's key names a level of the x86-64 architecture, not the CPU model and
    its every feature, so the cache built here loads on another model of CPU."""
    if not _is_x86_64():
        pytest.skip("the CPU target is chosen on x86-64 only")
    site = copy_package(tmp_path)
    env = environment(tmp_path, site)
    args = ["run", inputs["night-1"], "--out", tmp_path / "a.csv", "--quiet"]
    done = python("-c", PRETEND, *args, env=env)
    magic = done.stdout.splitlines()[0]
    assert "pretend-cpu" not in magic and "x86-64-v" in magic, magic
    assert SAVED.findall(done.stdout) == []
    assert "parse.parse_lines" in kernel_names(LOADED.findall(done.stdout))


def _is_x86_64() -> bool:
    import platform

    return platform.machine().lower() in ("x86_64", "amd64")


CPU = """
import os
import llvmlite.binding as ll
from numba.core import config
import accounts_job
# numba re-reads its settings from the environment when a NUMBA_ variable changes (as a
# Dask nanny's does in a new worker): the choice must survive that.
os.environ["NUMBA_NUM_THREADS"] = "1"
config.reload_config()
print(config.CPU_NAME.replace(ll.get_host_cpu_name(), "HOST"), repr(config.CPU_FEATURES))
"""


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "x86-64-v"),
        ({"NUMBA_CPU_NAME": "x86-64-v2", "NUMBA_CPU_FEATURES": ""}, "x86-64-v2 ''"),
        ({"NUMBA_CPU_NAME": "skylake"}, "skylake None"),
        ({"NUMBA_CPU_NAME": "host"}, "HOST None"),
    ],
)
def test_the_cpu_target_and_the_users_choice(env: dict[str, str], expected: str) -> None:
    if not _is_x86_64():
        pytest.skip("the CPU target is chosen on x86-64 only")
    base = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    done = python("-c", CPU, env={**base, **env})
    assert done.stdout.strip().startswith(expected)
    if not env:
        assert done.stdout.strip().endswith("''")


# The locator, in this process: seeding a cache folder from the package's.


def index_entries(path: Path) -> dict:
    with open(path, "rb") as f:
        pickle.load(f)  # numba's version
        _, entries = pickle.loads(f.read())
    return entries


def test_seeding_copies_what_the_folder_lacks_and_keeps_what_it_has(warmed, tmp_path) -> None:
    kernel = gather_lines
    stem = kernel._cache._impl.filename_base
    source = Path(kernel._cache.cache_path)
    theirs = index_entries(source / f"{stem}.nbi")
    assert theirs
    locator = _cache.PackageLocator(kernel.py_func, kernel.py_func.__code__.co_filename, "")
    assert locator.stem() == stem

    target = tmp_path / "target"
    target.mkdir()
    locator._cache_path = str(target)
    locator.seed(str(source))
    ours = index_entries(target / f"{stem}.nbi")
    assert ours.keys() == theirs.keys()
    for key, name in ours.items():
        assert (target / name).read_bytes() == (source / theirs[key]).read_bytes()

    # An entry only this folder has (a signature compiled here) survives a new seeding,
    # and its data file is not overwritten.
    extra_key = ("another signature", "x86_64", "")
    ours[extra_key] = f"{stem}.1.nbc"
    first = (target / f"{stem}.1.nbc").read_bytes()
    with open(target / f"{stem}.nbi", "wb") as f:
        import numba
        from numba.core.serialize import dumps

        pickle.dump(numba.__version__, f, protocol=-1)
        f.write(dumps((locator.get_source_stamp(), {extra_key: f"{stem}.1.nbc"})))
    locator.seed(str(source))
    merged = index_entries(target / f"{stem}.nbi")
    assert merged.keys() == {*theirs.keys(), extra_key}
    assert merged[extra_key] == f"{stem}.1.nbc"
    assert (target / f"{stem}.1.nbc").read_bytes() == first
    assert len(set(merged.values())) == len(merged)


def test_a_stale_source_cache_is_not_copied(warmed, tmp_path) -> None:
    """The package's cache for another version of the source (another stamp) is of no use:
    nothing is copied."""
    kernel = gather_lines
    locator = _cache.PackageLocator(
        kernel.py_func, kernel.py_func.__code__.co_filename, str(tmp_path)
    )
    locator.get_source_stamp = lambda: b"another source"  # type: ignore[method-assign]
    locator.seed(kernel._cache.cache_path)
    assert list(tmp_path.iterdir()) == []


def test_the_locator_falls_back_to_a_writable_folder_seeded_from_the_package(
    warmed, monkeypatch, tmp_path
) -> None:
    """Where `__pycache__` cannot be written: the user's cache folder, else a private
    folder in the temp folder, each seeded; with NUMBA_CACHE_DIR, that folder only. (The
    read-only mount above shows the same end to end, where mounting is allowed.)"""
    kernel = gather_lines
    stem = kernel._cache._impl.filename_base
    in_tree = kernel._cache.cache_path
    refused = {in_tree}
    real = _cache.PackageLocator.ensure_cache_path

    def ensure(self) -> None:
        if self.get_cache_path() in refused:
            raise PermissionError("read-only")
        real(self)

    monkeypatch.setattr(_cache.PackageLocator, "ensure_cache_path", ensure)
    monkeypatch.setattr(_cache, "_WRITABLE", set())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()

    def locate() -> Path:
        _cache._WRITABLE.clear()  # each look as a new process's: which folder is writable
        source = kernel.py_func.__code__.co_filename
        locator = _cache.PackageLocator.from_function(kernel.py_func, source)
        assert locator is not None
        folder = Path(locator.get_cache_path())
        assert (
            index_entries(folder / f"{stem}.nbi").keys()
            == index_entries(Path(in_tree) / f"{stem}.nbi").keys()
        )
        return folder

    user = locate()
    assert user.is_relative_to(tmp_path / "xdg" / "numba")
    refused.add(str(user))
    private = locate()
    assert private.parent == tmp_path / "tmp" / f"accounts-job-numba-cache-{os.getuid()}"
    assert private.parent.stat().st_mode & 0o777 == 0o700
    monkeypatch.setattr(_cache.config, "CACHE_DIR", str(tmp_path / "env"))
    assert locate().is_relative_to(tmp_path / "env")


def test_the_locator_serves_only_this_package(tmp_path) -> None:
    def f() -> None:
        pass

    assert _cache.PackageLocator.from_function(f, __file__) is None
    assert all(isinstance(k._cache._impl.locator, _cache.PackageLocator) for k in kernels())


# `warmup` and the notice of a run that compiles.


def forget(site: Path, kernel=last_line_end) -> None:
    """Remove one kernel's cache index from a copy of the package: it compiles again.
    (By default a small kernel that every run calls: quick to compile.)"""
    stem = kernel._cache._impl.filename_base
    (site / "accounts_job" / "kernels" / "__pycache__" / f"{stem}.nbi").unlink()


NOTICE = "accounts-job: compiling the job's kernels"


def test_warmup_compiles_what_is_missing_then_nothing(warmed, tmp_path) -> None:
    site = copy_package(tmp_path)
    forget(site)
    env = environment(tmp_path, site)
    first = script("warmup", env=env)
    assert re.search(r"^compiled [1-9]\d* kernel signatures for \S+ in ", first.stdout, re.M)
    assert "lines.last_line_end" in kernel_names(SAVED.findall(first.stdout))
    again = script("warmup", env=env)
    assert re.search("^nothing to compile: loaded ", again.stdout, re.MULTILINE)
    assert SAVED.findall(again.stdout) == []


def test_a_run_that_compiles_says_so_once(warmed, inputs, tmp_path) -> None:
    """One line on stderr when the run has to compile, above the progress bar on a
    terminal; none when it does not, and none with --quiet."""
    site = copy_package(tmp_path)
    forget(site)
    env = environment(tmp_path, site)
    args = ["run", inputs["night-1"], "--out", tmp_path / "a.csv"]
    code, stdout, terminal = run_on_terminal(args, tmp_path, env)
    assert code == 0, terminal
    shown = terminal.decode(errors="replace")
    # It did compile. (numba's report is on stdout, which the bar sends to the terminal.)
    assert "[cache] data saved to" in stdout.decode() + shown
    assert shown.count(NOTICE) == 1, shown
    assert "applying rules" in shown  # the bar was up
    # The line names the cache folder (the terminal may have wrapped it).
    unwrapped = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\s", "", shown)
    assert str(site / "accounts_job" / "kernels" / "__pycache__") in unwrapped
    again = script(*args, env=env)
    assert NOTICE not in again.stderr
    assert "rows read" in again.stderr
    # --quiet says nothing, compiling or not.
    forget(site)
    quiet = script(*args, "--quiet", env=env)
    assert SAVED.findall(quiet.stdout)
    assert quiet.stderr == ""


def test_the_notice_prints_once_per_process_and_only_for_our_kernels(capsys) -> None:
    import numba

    def kernel(x):
        return x + 1

    def other(x):
        return x + 2

    kernel.__module__ = "accounts_job.kernels.example"  # one of ours, as numba sees it
    with compile_notice():
        numba.njit(other)(1)  # not one of ours: nothing said
        assert capsys.readouterr().err == ""
        numba.njit(kernel)(1)
        numba.njit(kernel)(2.5)  # another compile: still one line
    err = capsys.readouterr().err
    assert err.count(NOTICE) == 1, err
    numba.njit(kernel)(3)  # outside: nothing
    assert capsys.readouterr().err == ""


# Dask workers warm themselves.


def test_local_cluster_workers_warm_themselves_and_then_compile_nothing(
    warmed, inputs, tmp_path
) -> None:
    """`--cluster local:N` starts its workers with the preload: each has warmed (loaded,
    here) before its first task, and a sharded run through them compiles nothing more,
    its arrays having crossed between processes."""
    pytest.importorskip("distributed")
    from accounts_job.distributed.cluster import connect
    from accounts_job.distributed.sharded import process_sharded

    with connect("local:2") as (executor, workers):
        client = executor.client
        warmed_up = client.run(
            lambda dask_worker: (
                dask_worker.accounts_job_warmed.compiled,
                dask_worker.accounts_job_warmed.loaded,
            )
        )
        assert len(warmed_up) == workers == 2
        assert all(compiled == 0 and loaded > 0 for compiled, loaded in warmed_up.values())
        result = process_sharded(inputs["night-1"], executor, 2, chunk_bytes=2048)
        assert result.summary.rows_read > 0
        compiled = client.run(_compiled_so_far)
        assert set(compiled.values()) == {0}, compiled


def _compiled_so_far() -> int:
    from accounts_job.warmup import kernels

    return sum(sum(k._cache_misses.values()) for k in kernels())


def test_dask_workers_with_the_preload_compile_once_between_them(warmed, tmp_path) -> None:
    """`dask worker ... --preload accounts_job.warmup`, two workers on one machine with a
    kernel of the sharded run missing from the cache: they take turns, so one compiles it
    and the other loads what the first saved; the one that compiles says so, once."""
    distributed = pytest.importorskip("distributed")
    site = copy_package(tmp_path)
    forget(site, settle_piece)
    env = environment(tmp_path, site, NUMBA_NUM_THREADS="1")
    dask = Path(console_script()).with_name("dask")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs, logs = [], []

    def start(*args: str) -> None:
        log = tmp_path / f"dask-{len(procs)}.log"
        logs.append(log)
        with open(log, "wb") as out:
            procs.append(
                subprocess.Popen(
                    [str(dask), *args],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    try:
        start("scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard")
        for n in range(2):
            start(
                "worker",
                address,
                "--nthreads",
                "1",
                "--no-dashboard",
                "--local-directory",
                str(tmp_path / f"w{n}"),
                "--preload",
                "accounts_job.warmup",
            )
        with distributed.Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=300)
            warmed_up = client.run(
                lambda dask_worker: (
                    dask_worker.accounts_job_warmed.compiled,
                    dask_worker.accounts_job_warmed.cache_dirs,
                )
            )
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
        for p in procs:
            p.wait(timeout=30)
    compiled = sorted(c for c, _ in warmed_up.values())
    assert compiled[0] == 0 and compiled[1] > 0, warmed_up
    assert {d for _, dirs in warmed_up.values() for d in dirs} == {
        str(site / "accounts_job" / "kernels" / "__pycache__")
    }
    text = "".join(log.read_text(errors="replace") for log in logs)
    assert len(re.findall(r"\[cache\] data saved to '.*claims\.settle_piece", text)) == 1
    assert text.count(NOTICE) == 1


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
