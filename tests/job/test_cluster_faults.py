"""A cluster run always ends, with the right exit status and nothing but fatal errors on
stderr under --quiet (docs/rules.md §6).

Workers that die for good, a scheduler killed mid-run, a port that accepts and says
nothing or answers something other than Dask, a numba cache that holds only the kernels
of a plain run: each ends with exit 69 (or succeeds) within its timeout. Every run here
has a hard limit of its own, so a run that would hang fails the test instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.cluster import dask_cluster, hostile, kill, outputs
from support.helpers import console_script, crash_env, run_script

distributed = pytest.importorskip("distributed")

# Long enough for a busy machine to start the job and its interpreter; far shorter than
# any hang.
MARGIN = 20.0


def job(path: Path, out: dict[str, Path], *extra: str, limit: float, env=None) -> tuple:
    """`accounts-job run PATH --quiet ...` as a real process, killed after `limit`
    seconds (the test then fails: the run hung). Returns (process, seconds taken)."""
    args = [a for pair in out.items() for a in map(str, pair)]
    started = time.monotonic()
    try:
        done = subprocess.run(
            [str(console_script()), "run", str(path), *args, "--quiet", *extra],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=limit,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the run did not end within {limit:g} s")
    return done, time.monotonic() - started


def only_the_error(done: subprocess.CompletedProcess, *words: bytes) -> None:
    """Exit 69, and on stderr one line: the fatal error, naming `words`."""
    assert done.returncode == 69, done.stderr.decode()
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(b"accounts-job: error: "), done.stderr
    for word in words:
        assert word in lines[0]


def nothing_written(out: dict[str, Path]) -> None:
    assert list(out["--out"].parent.iterdir()) == []


@contextlib.contextmanager
def fake_service(answer: bytes | None) -> Iterator[str]:
    """A TCP service on loopback that is not Dask: it accepts every connection and sends
    `answer` (then keeps it open), or closes it at once when `answer` is None."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            if answer is None:
                conn.close()
            else:
                conn.sendall(answer)
                held.append(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


# Not a scheduler on the port: exit 69 within the connect timeout, no huge allocation.


def test_a_port_that_accepts_and_says_nothing(tmp_path):
    path = hostile(tmp_path, 31, transactions=200)
    out = outputs(tmp_path / "out")
    with fake_service(b"") as address:
        done, seconds = job(
            path, out, "--cluster", address, "--cluster-connect-timeout", "2", limit=2 + MARGIN
        )
    only_the_error(done, address.encode(), b"no Dask handshake within 2 s")
    assert seconds < 2 + MARGIN
    nothing_written(out)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        # The first 8 bytes read as a length of 2.8 EiB.
        (b"HTTP/1.1 400 Bad Request\r\n\r\n", b"is not a Dask scheduler"),
        (bytes(range(0xF0, 0xF8)), b"is not a Dask scheduler"),
        # A length that passes, then bytes that are not a Dask message.
        (struct.pack("Q", 100) + b"x" * 100, b"did not answer as a Dask scheduler"),
        (None, b"closed the connection without a Dask handshake"),
    ],
    ids=["http", "random", "garbage-frame", "closes"],
)
def test_a_port_that_answers_something_else(tmp_path, answer, message):
    path = hostile(tmp_path, 32, transactions=200)
    out = outputs(tmp_path / "out")
    with fake_service(answer) as address:
        done, seconds = job(path, out, "--cluster", address, limit=MARGIN)
    only_the_error(done, message)
    assert seconds < MARGIN  # at once: not after the 20 s connect timeout of the default
    assert b"MemoryError" not in done.stderr and b"allocate" not in done.stderr
    nothing_written(out)


# Workers and schedulers lost mid-run.


def test_a_run_whose_last_worker_died_ends_at_the_stall_timeout(tmp_path):
    """The only worker (no nanny to restart it) dies at the shard step: the scheduler
    would wait for a worker forever; the run gives up after --cluster-stall-timeout."""
    path = hostile(tmp_path, 33, transactions=2000)
    out = outputs(tmp_path / "out")
    env = crash_env("shard-step")
    with dask_cluster(tmp_path, workers=1, worker_env=env, nanny=False) as loopback:
        stall = "3"
        done, _ = job(
            path, out, "--cluster", loopback.address, "--cluster-stall-timeout", stall, limit=60
        )
        assert loopback.workers[0].poll() is not None, "the worker did not die"
    only_the_error(done, b"no worker for 3 s", b"--cluster-stall-timeout")
    nothing_written(out)


def test_losing_the_scheduler_mid_run_is_exit_69(tmp_path):
    """The run waits for its only worker, which died at the shard step; then the
    scheduler is killed. The run ends at once with 69, long before its stall timeout."""
    path = hostile(tmp_path, 34, transactions=2000)
    out = outputs(tmp_path / "out")
    env = crash_env("shard-step")
    args = [a for pair in out.items() for a in map(str, pair)]
    with dask_cluster(tmp_path, workers=1, worker_env=env, nanny=False) as loopback:
        argv = [str(console_script()), "run", str(path), *args, "--quiet"]
        run = subprocess.Popen(
            [*argv, "--cluster", loopback.address, "--cluster-stall-timeout", "600"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            loopback.workers[0].wait(timeout=60)  # mid-run: the shard step killed it
            assert run.poll() is None, run.communicate()
            assert loopback.scheduler is not None
            kill(loopback.scheduler)
            lost = time.monotonic()
            _, stderr = run.communicate(timeout=MARGIN)
        finally:
            run.kill()
            run.wait()
    assert time.monotonic() - lost < MARGIN
    only_the_error(subprocess.CompletedProcess([], run.returncode, b"", stderr), b"scheduler")
    nothing_written(out)


def test_local_workers_dying_on_every_try_print_only_the_error(tmp_path):
    """With --quiet, Dask's own account of the deaths (worker restarts, lost tasks) stays
    off stderr: one line, the fatal error."""
    path = hostile(tmp_path, 35, transactions=1000)
    out = outputs(tmp_path / "out")
    done, _ = job(path, out, "--cluster", "local:1", env=crash_env("shard-step"), limit=120)
    only_the_error(done, b"worker died")
    nothing_written(out)


# The numba cache as a fresh install has it after a first plain run.


def plain_run_kernels(cache: Path) -> list[str]:
    """Copy the compiled kernels a plain run uses (its claims kernel never is) into
    `cache`, laid out as numba finds them with NUMBA_CACHE_DIR=cache; their names."""
    from accounts_job.kernels import parse
    from numba.core.caching import _CacheLocator

    source = Path(parse.parse_lines._cache._cache_path)
    target = cache / _CacheLocator.get_suitable_cache_subpath(parse.__file__)
    target.mkdir(parents=True)
    names = []
    for file in sorted(source.glob("*.nb[ic]")):
        if not file.name.startswith("claims."):
            shutil.copy2(file, target / file.name)
            names.append(file.name)
    return names


def test_local_workers_after_a_plain_run_on_a_fresh_install(tmp_path):
    """A worker ran a parallel kernel from the cache, then compiled the claims kernel:
    numba refused, as the worker's NUMBA_NUM_THREADS had changed under it (exit 70)."""
    path = hostile(tmp_path, 36, transactions=2000)
    plain = run_script("run", path, "--quiet")  # also compiles what a plain run needs
    assert plain.returncode == 0, plain.stderr.decode()
    cache = tmp_path / "numba-cache"
    kernels = plain_run_kernels(cache)
    assert any(name.startswith("parse.parse_lines") for name in kernels), kernels
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    done = run_script("run", path, "--quiet", "--cluster", "local:2", env=env)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == plain.stdout
    assert done.stderr == b""
    # The workers did compile the claims kernel, after the plain run's came from the cache.
    assert list(cache.rglob("claims.*.nbi"))


@pytest.mark.slow
def test_local_workers_with_an_empty_kernel_cache(tmp_path):
    """As a fresh install: an empty numba cache, a plain run, then local workers."""
    path = hostile(tmp_path, 37, transactions=2000)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    plain = run_script("run", path, "--quiet", env=env)
    assert plain.returncode == 0, plain.stderr.decode()
    done = run_script("run", path, "--quiet", "--cluster", "local:2", env=env)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == plain.stdout


# From the API: quiet for the run only.


def test_quiet_dask_is_undone_after_the_run():
    from accounts_job.distributed.cluster import quiet_dask

    scheduler = logging.getLogger("distributed.scheduler")
    before = {name: logging.getLogger(name).level for name in ("distributed", "tornado")}
    filters = list(warnings.filters)
    with quiet_dask():
        assert not scheduler.isEnabledFor(logging.CRITICAL)
        assert not logging.getLogger("distributed.not.yet.made").isEnabledFor(logging.CRITICAL)
        with warnings.catch_warnings(record=True) as seen:
            warnings.warn("from Dask", UserWarning, stacklevel=1)
        assert seen == []
    assert {name: logging.getLogger(name).level for name in ("distributed", "tornado")} == before
    assert scheduler.isEnabledFor(logging.ERROR)
    assert warnings.filters == filters
