"""A nightly state under faults: kills at every point and at random times, a full disk at
each step of the commit, a read-only folder, planted symbolic links, damaged bytes.

The promise (docs/rules.md §7): the state is its committed manifest. After any fault it
is the state before the run or the state after it, never a mix; files no committed
manifest names are leftovers, removed by the next run; and the same command run again
finishes the job without applying anything twice: the accounts are then those of an
uninterrupted run. Faults on the first night are tested as much as on later ones.

The random-kill loop runs a few kills here and many with ACCOUNTS_JOB_SLOW=1.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import accounts_job
import pyarrow.parquet as pq
import pytest
from accounts_job import AlreadyApplied
from accounts_job.errors import StateError, StateWriteError
from accounts_job.state.folder import LOCK, StateDir
from accounts_job.state.manifest import MANIFEST
from support.helpers import (
    COMMIT_POINTS,
    COMMITTED_AT,
    HEADER,
    console_script,
    crash_env,
    hostile_days,
    new_state,
    process_in_a_child,
    run_script,
    snapshot,
    two_nights,
)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def assert_only_the_manifests_files(state: Path) -> None:
    """No leftovers: the folder holds its manifest, its lock and the files it names."""
    manifest = StateDir(state).manifest()
    assert listing(state) == sorted([MANIFEST, LOCK, *manifest.files])


@pytest.fixture(scope="module")
def days(tmp_path_factory) -> dict:
    """Three nights of generated hostile data, and the accounts CSV an uninterrupted
    run writes after each night (the same bytes whatever writes them)."""
    folder = tmp_path_factory.mktemp("days")
    paths = hostile_days(folder, 3, rows=60_000)
    state = new_state(folder / "clean-state")
    expected = []
    for n, day in enumerate(paths):
        out = folder / f"accounts-{n}.csv"
        accounts_job.process(day, state=state, accounts_to=out)
        expected.append(out.read_bytes())
    return {"paths": paths, "expected": expected}


def state_after(tmp_path: Path, days: dict, nights: int) -> Path:
    """A state with the first `nights` nights applied, uninterrupted."""
    state = new_state(tmp_path / "state")
    for day in days["paths"][:nights]:
        accounts_job.process(day, state=state)
    return state


# ---------------------------------------------------------------------------- kills


@pytest.mark.parametrize("point", COMMIT_POINTS)
def test_a_first_night_killed_at_each_point_of_its_commit(tmp_path, days, point):
    """The first night killed at any point leaves version 0 or 1, never a state the next
    run refuses; running it again finishes it, once."""
    state = new_state(tmp_path / "state")
    out = tmp_path / "accounts.csv"
    first = days["paths"][0]
    killed = process_in_a_child(first, crash_at=point, state=state, accounts_to=out)
    assert killed.returncode == -9, killed.stderr.decode()

    manifest = StateDir(state).manifest()  # readable, whatever the moment
    assert manifest.version == (1 if point in COMMITTED_AT else 0)
    try:
        accounts_job.process(first, state=state, accounts_to=out)
    except AlreadyApplied:
        assert point in COMMITTED_AT
    else:
        assert point not in COMMITTED_AT
    assert StateDir(state).manifest().version == 1
    assert out.read_bytes() == days["expected"][0]
    assert_only_the_manifests_files(state)
    accounts_job.process(days["paths"][1], state=state, accounts_to=out)
    assert out.read_bytes() == days["expected"][1]


@pytest.fixture(scope="module")
def run_seconds(days, tmp_path_factory) -> float:
    """How long an uninterrupted `accounts-job run --state` takes here, start-up
    included: the range the random kills are drawn from."""
    folder = tmp_path_factory.mktemp("timing")
    seconds = []
    for n in range(2):  # the first may compile the kernels: the second is the one
        state = new_state(folder / f"state-{n}")
        started = time.perf_counter()
        done = run_script("run", days["paths"][0], "--state", state, "--out", folder / "a.csv")
        assert done.returncode == 0, done.stderr
        seconds.append(time.perf_counter() - started)
    return seconds[-1]


def kill_at_random(tmp_path: Path, days: dict, nights_before: int, delay: float) -> str:
    """Apply night `nights_before` + 1 from the command line, SIGKILL it from outside after
    `delay` seconds, check the state, run the same command again, and check it finished
    the job once. Returns when the kill landed: "before" the commit, "after" it, or
    "done" (the run had finished)."""
    state = state_after(tmp_path, days, nights_before)
    before = snapshot(state)
    out = tmp_path / "accounts.csv"
    day = days["paths"][nights_before]
    command = [str(console_script()), "run", str(day), "--state", str(state), "--out", str(out)]
    proc = subprocess.Popen(
        [*command, "-q"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=crash_env(),
    )
    time.sleep(delay)
    proc.kill()
    code = proc.wait()

    version = StateDir(state).manifest().version  # readable, whatever the moment
    assert version in (nights_before, nights_before + 1)
    if version == nights_before:
        # The state as before; at most leftovers beside it.
        assert {k: v for k, v in snapshot(state).items() if k in before} == before
    landed = "done" if code == 0 else ("after" if version > nights_before else "before")

    again = run_script(*command[1:], "-q")
    assert again.returncode == 0, again.stderr
    assert ("already applied" in again.stderr.decode()) == (version > nights_before)
    assert StateDir(state).manifest().version == nights_before + 1
    # Applied once: the accounts are those of the uninterrupted nights.
    assert out.read_bytes() == days["expected"][nights_before]
    assert_only_the_manifests_files(state)
    return landed


@pytest.mark.parametrize("nights_before", [0, 2], ids=["night-1", "night-3"])
@pytest.mark.parametrize("seed", [1, 2])
def test_a_night_killed_at_a_random_time(tmp_path, days, run_seconds, nights_before, seed):
    delay = random.Random(seed * 10 + nights_before).uniform(0, run_seconds)
    kill_at_random(tmp_path, days, nights_before, delay)


@pytest.mark.slow
def test_many_nights_killed_at_random_times(tmp_path_factory, days, run_seconds):
    """The long loop: 40 kills, half on a first night, half on a third."""
    rng = random.Random(15)
    landed: dict[str, int] = {}
    for n in range(40):
        nights_before = 0 if n % 2 == 0 else 2
        delay = rng.uniform(0, run_seconds)
        where = kill_at_random(tmp_path_factory.mktemp(f"kill-{n}"), days, nights_before, delay)
        landed[where] = landed.get(where, 0) + 1
    # Reported with -s: how many kills landed before the commit, after it, or too late.
    print(f"\n40 kills, 40 recovered: {landed}")


# ---------------------------------------------------------------------------- disk full


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A small file system of its own (tmpfs, as root): filled up, or made read-only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


PAGE = 4096


def pages(nbytes: int) -> int:
    return -(-nbytes // PAGE)


def fill(mount: Path, free_pages: int) -> Path:
    """Fill the file system at `mount` but for `free_pages` pages."""
    filler = mount / "filler"
    st = os.statvfs(mount)
    assert st.f_frsize == PAGE
    with open(filler, "ab") as f:
        f.write(b"\0" * ((st.f_bavail - free_pages) * PAGE))
    assert os.statvfs(mount).f_bavail == free_pages
    return filler


# Where the disk fills: tonight's ledger (written during the run), then the commit's
# balances, claimed ids and manifest, in that order.
STEPS = ["ledger", "balances", "claimed", "manifest"]
NAMES = {"ledger": "ledger-", "balances": "balances-", "claimed": "claimed-"}
NAMES["manifest"] = f".{MANIFEST}."  # written under a temporary name, then renamed


@pytest.mark.parametrize("nights_before", [0, 1], ids=["night-1", "night-2"])
@pytest.mark.parametrize("step", STEPS)
def test_a_full_disk_at_each_step_of_a_night(tmp_path, tmpfs, days, nights_before, step):
    """The state's disk fills at `step`: the run fails with 73 (cannot write), the state
    is as it was, nothing of the failed commit is left, and once there is room again
    the same run finishes the night, once."""
    day = days["paths"][nights_before]
    # The sizes of what an uninterrupted night writes, on a copy elsewhere.
    clean = state_after(tmp_path / "clean", days, nights_before)
    accounts_job.process(day, state=clean)
    manifest = StateDir(clean).manifest()
    v = manifest.version
    size = {
        "ledger": (clean / f"ledger-{v:06d}.parquet").stat().st_size,
        "balances": (clean / f"balances-{v:06d}.parquet").stat().st_size,
        "claimed": (clean / f"claimed-{v:06d}.parquet").stat().st_size,
        "manifest": (clean / MANIFEST).stat().st_size,
    }
    # Room for every step before `step`, and for less than half of `step`'s file.
    k = STEPS.index(step)
    free = sum(pages(size[s]) for s in STEPS[:k]) + pages(size[step]) // 2

    state = tmpfs / "state"
    new_state(state)
    for earlier in days["paths"][:nights_before]:
        accounts_job.process(earlier, state=state)
    before = snapshot(state)
    filler = fill(tmpfs, free)
    out = tmp_path / "out" / "accounts.csv"
    out.parent.mkdir()
    with pytest.raises(StateWriteError) as failed:
        accounts_job.process(day, state=state, accounts_to=out)
    assert failed.value.exit_code == 73
    # The message names the file that could not be written.
    assert f"/{NAMES[step]}" in str(failed.value)
    assert snapshot(state) == before  # nothing of the failed run is left either
    assert StateDir(state).manifest().version == nights_before
    # The outputs come first: a failed commit leaves them written; a failed run, not.
    assert out.exists() == (step != "ledger")

    filler.unlink()
    accounts_job.process(day, state=state, accounts_to=out)
    assert out.read_bytes() == days["expected"][nights_before]
    assert StateDir(state).manifest().version == nights_before + 1
    with pytest.raises(AlreadyApplied):
        accounts_job.process(day, state=state)
    assert_only_the_manifests_files(state)


def test_a_read_only_state_folder_exits_73_not_65(tmp_path, tmpfs, days):
    state = new_state(tmpfs / "state")
    accounts_job.process(days["paths"][0], state=state)
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    out = tmp_path / "accounts.csv"
    refused = run_script("run", days["paths"][1], "--state", state, "--out", out, "-q")
    assert refused.returncode == 73, refused.stderr
    assert b"cannot" in refused.stderr and b"damaged" not in refused.stderr
    assert not out.exists()
    shown = run_script("state", "show", state)  # reading needs no writing
    assert shown.returncode == 0, shown.stderr
    subprocess.run(["mount", "-o", "remount,rw", str(tmpfs)], check=True)
    assert run_script("run", days["paths"][1], "--state", state, "--out", out).returncode == 0
    assert out.read_bytes() == days["expected"][1]


# ---------------------------------------------------------------------------- symbolic links

KINDS = ["lock", "manifest", "balances", "claimed", "ledger"]


def a_file_of(state: Path, kind: str) -> Path:
    if kind == "lock":
        return state / LOCK
    if kind == "manifest":
        return state / MANIFEST
    return sorted(state.glob(f"{kind}-*.parquet"))[-1]


def tonight(tmp_path: Path, text: str) -> Path:
    day = tmp_path / "tonight.csv"
    day.write_text(HEADER + "\n" + text)
    return day


@pytest.mark.parametrize("kind", KINDS)
def test_a_state_file_replaced_by_a_link_is_refused(tmp_path, kind):
    """A link where a state file should be, even to a faithful copy, is refused (65), and
    nothing is written through it."""
    state = two_nights(tmp_path)
    target = a_file_of(state, kind)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    victim = outside / target.name
    shutil.copy2(target, victim)
    target.unlink()
    target.symlink_to(victim)
    before = (victim.read_bytes(), victim.stat().st_mtime_ns)
    with pytest.raises(StateError, match=r"symbolic link|not a regular file") as refused:
        # Resolving tx 1 reads it from the last ledger.
        accounts_job.process(tonight(tmp_path, "resolve,1,1\n"), state=state)
    assert refused.value.exit_code == 65
    assert (victim.read_bytes(), victim.stat().st_mtime_ns) == before
    assert listing(outside) == [victim.name]


@pytest.mark.parametrize(
    "name", ["balances-000003.parquet", "claimed-000003.parquet", "ledger-000003.parquet"]
)
def test_a_link_planted_where_tonight_writes_is_not_written_through(tmp_path, name):
    """A link at the name of a file tonight's run will write is a leftover, not part of
    the state: it is removed, and the file it points to is left alone."""
    state = two_nights(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("not yours\n")
    (state / name).symlink_to(victim)
    accounts_job.process(tonight(tmp_path, "resolve,1,1\n"), state=state)
    assert victim.read_text() == "not yours\n"
    assert StateDir(state).manifest().version == 3
    assert not (state / name).is_symlink()
    assert_only_the_manifests_files(state)


def test_a_lock_link_does_not_truncate_its_target(tmp_path):
    state = two_nights(tmp_path)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (state / LOCK).unlink()
    (state / LOCK).symlink_to(victim)
    with pytest.raises(StateError, match="symbolic link") as refused:
        accounts_job.process(tonight(tmp_path, "deposit,3,3,1\n"), state=state)
    assert refused.value.exit_code == 65
    assert victim.read_text() == "precious\n"


# ---------------------------------------------------------------------------- damage


def test_a_flipped_byte_in_a_ledgers_footer_length_exits_65(tmp_path):
    """The last 8 bytes of a Parquet file are its footer's length and magic: a damaged
    length is a damaged state (65), not an internal error (70)."""
    state = two_nights(tmp_path)
    ledger = sorted(state.glob("ledger-*.parquet"))[0]
    data = bytearray(ledger.read_bytes())
    data[-5] ^= 0x80  # the length's high byte: a footer longer than the file
    ledger.write_bytes(bytes(data))
    with pytest.raises(StateError, match="damaged") as refused:
        accounts_job.process(tonight(tmp_path, "resolve,1,1\n"), state=state)
    assert refused.value.exit_code == 65


def test_a_damaged_byte_inside_a_ledger_data_page_is_refused(tmp_path):
    """A byte damaged inside a data page of a ledger, not in its footer: the footer's
    checksum still matches, so only the page's CRC catches it. The byte is one whose
    damage, unchecked, decodes quietly to another amount; the run must refuse it."""
    state = new_state(tmp_path / "state")
    first = tmp_path / "night-1.csv"
    first.write_text(
        HEADER + "\n" + "".join(f"deposit,{1 + n % 5},{n},{1 + n % 7}.5\n" for n in range(300))
    )
    accounts_job.process(first, state=state)
    (ledger,) = state.glob("ledger-*.parquet")
    good = pq.read_table(ledger)
    chunk = pq.ParquetFile(ledger).metadata.row_group(0).column(2)  # amount_units
    assert chunk.path_in_schema == "amount_units"
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    end = start + chunk.total_compressed_size
    original = ledger.read_bytes()
    # From the chunk's end backwards (page data, not the page header), the first byte
    # whose flip reads back, without the CRC check, as different amounts and no error.
    for at in range(end - 1, start, -1):
        data = bytearray(original)
        data[at] ^= 0x04
        ledger.write_bytes(bytes(data))
        with contextlib.suppress(Exception):
            unchecked = pq.read_table(ledger, page_checksum_verification=False)
            if unchecked.column("amount_units") != good.column("amount_units"):
                break
    else:
        pytest.fail("no byte of the page decodes quietly to other amounts")
    changed = [
        n
        for n, (a, b) in enumerate(
            zip(unchecked.column("amount_units"), good.column("amount_units"), strict=True)
        )
        if a != b
    ]
    with pytest.raises(StateError, match="damaged") as refused:
        # A dispute of a deposit whose amount the damage changed reads that page.
        tx = good.column("tx")[changed[0]].as_py()
        client = good.column("client")[changed[0]].as_py()
        accounts_job.process(tonight(tmp_path, f"dispute,{client},{tx}\n"), state=state)
    assert refused.value.exit_code == 65
