"""Outputs under faults: what they point at, paths that collide, signals, kills, a full
disk, and what is synced before the state commits (docs/rules.md §6.1).

Never the machine's own /dev/null or /dev/stdout: a device here is a private node made
with mknod in the test's folder, stdout a private symlink to /proc/self/fd/1, so that a
wrong engine replaces nothing outside the test's folder.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import accounts_job
import accounts_job.io.writers
import accounts_job.state.night
import pyarrow.parquet as pq
import pytest
from accounts_job.errors import OutputError, UsageError
from accounts_job.io.writers import TEMP_MARK, AtomicFile, remove_stale
from support.example import WORKED_EXAMPLE, WORKED_EXAMPLE_CSV, WORKED_EXAMPLE_REJECTS_RAW
from support.helpers import console_script, run_script

OUTPUTS = ("accounts_to", "rejects_to", "events_to", "summary_to")
# What the worked example's rejects and events start with (docs/rules.md §5.2, §5.3).
REJECTS_HEADER = b"line,reason,raw\n"
EVENTS_HEADER = b"line,client,tx,event,amount\n"


def listing(folder: Path) -> set[str]:
    """Every name in `folder`, hidden ones (temporary files) included."""
    return {p.name for p in folder.iterdir()}


def temporary(folder: Path) -> set[str]:
    """The temporary files of runs (`.NAME.accounts-job-PID-XXXXXXXX.tmp` or `.old`)."""
    return {name for name in listing(folder) if f".{TEMP_MARK}-" in name}


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def deposits(path: Path, rows: int, clients: int = 50) -> Path:
    """`rows` deposits of 1.5 by `clients` clients: rows enough to fill a pipe or a disk."""
    body = "".join(f"deposit,{i % clients},{i + 1},1.5\n" for i in range(rows))
    return write(path, "type,client,tx,amount\n" + body)


def contents(folder: Path) -> dict[str, str | bytes]:
    """Every name in `folder`: a symlink's target, a file's bytes."""
    return {
        p.name: os.readlink(p) if p.is_symlink() else p.read_bytes()
        for p in sorted(folder.iterdir())
    }


def one_error_line(stderr: bytes) -> str:
    lines = stderr.decode().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("accounts-job: error: "), stderr
    return lines[0]


@pytest.fixture
def device(tmp_path: Path) -> Path:
    """A private character device 1:3 (what /dev/null is), in the test's folder."""
    node = tmp_path / "dev" / "null"
    node.parent.mkdir()
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (OSError, AttributeError) as e:
        pytest.skip(f"cannot make a device node here: {e}")
    return node


class FifoReader:
    """A FIFO and a thread reading it to the end. The test holds the FIFO open for writing
    as well, so that the reader does not wait for a writer that never comes (a wrong
    engine renames onto the FIFO instead of opening it): `close()` ends the stream."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self._hold = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.data = b""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with open(self.path, "rb") as f:
            self.data = f.read()

    def close(self) -> bytes:
        os.close(self._hold)
        self._thread.join(timeout=60)
        assert not self._thread.is_alive()
        return self.data


# ---------------------------------------------------------------------------- item 2: targets


def test_a_character_device_stays_a_device_and_may_take_every_output(
    example: Path, device: Path
) -> None:
    """What /dev/null is: written to, never replaced; one device for all four outputs
    (docs/rules.md §6.1: a character device may take several). With no suffix, CSV."""
    result = accounts_job.process(example, **{option: device for option in OUTPUTS})
    assert stat.S_ISCHR(device.lstat().st_mode)
    assert device.lstat().st_rdev == os.makedev(1, 3)
    assert listing(device.parent) == {"null"}
    assert result.summary.rows_read == 9


def test_a_device_takes_the_accounts_from_the_command_line(example: Path, device: Path) -> None:
    done = run_script("run", example, "--out", device, "--summary", device, "-q")
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == (b"", b"")
    assert stat.S_ISCHR(device.lstat().st_mode)
    assert listing(device.parent) == {"null"}


@pytest.mark.parametrize("suffix", ["", ".csv", ".parquet"])
def test_a_fifo_is_written_directly(example: Path, tmp_path: Path, suffix: str) -> None:
    """Each output to a FIFO a reader reads: the reader gets the bytes a file would hold,
    and the FIFO stays a FIFO."""
    expected = tmp_path / "files"
    expected.mkdir()
    files = {
        "accounts_to": expected / f"a{suffix or '.csv'}",
        "rejects_to": expected / f"r{suffix or '.csv'}",
        "events_to": expected / f"e{suffix or '.csv'}",
        "summary_to": expected / "s.json",
    }
    accounts_job.process(example, **files)
    pipes = tmp_path / "pipes"
    pipes.mkdir()
    for option, file in files.items():
        fifo = pipes / (file.stem + (suffix if option != "summary_to" else ""))
        reader = FifoReader(fifo)
        try:
            accounts_job.process(example, **{option: fifo})
        finally:
            got = reader.close()
        assert stat.S_ISFIFO(fifo.lstat().st_mode), option
        if option == "summary_to":
            volatile = ("seconds", "rows_per_second", "state_bytes")
            mine, theirs = json.loads(got), json.loads(file.read_bytes())
            for key in volatile:
                mine.pop(key), theirs.pop(key)
            assert mine == theirs
        elif suffix == ".parquet":
            assert pq.read_table(io.BytesIO(got)).equals(pq.read_table(file)), option
        else:
            assert got == file.read_bytes(), option
    assert len(listing(pipes)) == 4


def test_dash_is_stdout(example: Path, outdir: Path) -> None:
    """`--out -`: the accounts as CSV on stdout; `--rejects -` likewise."""
    done = run_script("run", example, "--out", "-", "-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout.decode() == WORKED_EXAMPLE_CSV
    done = run_script("run", example, "--out", outdir / "a.csv", "--rejects", "-", "-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(REJECTS_HEADER)
    assert done.stdout.count(b"\n") == 1 + len(WORKED_EXAMPLE_REJECTS_RAW)
    assert listing(outdir) == {"a.csv"}


def test_dash_takes_no_parquet(example: Path) -> None:
    done = run_script("run", example, "--out", "-", "--format", "parquet")
    assert done.returncode == 2
    assert done.stdout == b""
    one_error_line(done.stderr)


def test_a_link_to_stdout_prints_and_stays_a_link(example: Path, tmp_path: Path) -> None:
    """What /dev/stdout is (a symlink to /proc/self/fd/1), made privately: the summary
    goes to the process's stdout, and the link stays."""
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    out = tmp_path / "a.csv"
    done = run_script("run", example, "--out", out, "--summary", link, "-q")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_read"] == 9
    assert link.is_symlink() and os.readlink(link) == "/proc/self/fd/1"
    assert out.read_text() == WORKED_EXAMPLE_CSV


def test_stdout_appended_to_stays_appended_to(example: Path, tmp_path: Path) -> None:
    """`--summary /dev/stdout >> log`: the summary goes after what the log held; opening
    /proc/self/fd/1 anew would truncate the log."""
    link = tmp_path / "stdout"
    link.symlink_to("/proc/self/fd/1")
    log = write(tmp_path / "log", "earlier\n")
    with open(log, "ab") as f:
        done = subprocess.run(
            [console_script(), "run", example, "--out", tmp_path / "a.csv", "--summary", link],
            stdout=f,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr
    text = log.read_text()
    assert text.startswith("earlier\n")
    assert json.loads(text.removeprefix("earlier\n"))["rows_read"] == 9


@pytest.mark.parametrize("option", OUTPUTS)
@pytest.mark.parametrize("existing", [True, False], ids=["target_exists", "link_dangles"])
def test_a_symlink_stays_a_link_and_its_target_is_replaced(
    example: Path, tmp_path: Path, option: str, existing: bool
) -> None:
    """The link in one folder, its target in another: the target gets the output,
    written and renamed in its own folder; the link is left as it was."""
    names = {"accounts_to": "a.csv", "rejects_to": "r.csv", "events_to": "e.csv"}
    name = names.get(option, "s.json")
    links, targets = tmp_path / "links", tmp_path / "targets"
    links.mkdir(), targets.mkdir()
    target = targets / name
    if existing:
        target.write_bytes(b"old content, longer than the new one\n" * 100)
    link = links / name
    link.symlink_to(Path("..") / "targets" / name)  # relative, as `ln -s` makes them
    accounts_job.process(example, **{option: link})
    assert link.is_symlink()
    assert os.readlink(link) == str(Path("..") / "targets" / name)
    assert stat.S_ISREG(target.lstat().st_mode)
    content = target.read_bytes()
    if option == "accounts_to":
        assert content.decode() == WORKED_EXAMPLE_CSV
    elif option == "summary_to":
        assert json.loads(content)["rows_read"] == 9
    else:
        assert content.startswith(REJECTS_HEADER if option == "rejects_to" else EVENTS_HEADER)
    assert listing(links) == {name}
    assert listing(targets) == {name}


def test_a_chain_of_links_is_followed_to_its_end(example: Path, tmp_path: Path) -> None:
    end = write(tmp_path / "c" / "accounts.csv", "old\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "middle.csv").symlink_to(end)
    first = tmp_path / "first.csv"
    first.symlink_to(tmp_path / "b" / "middle.csv")
    accounts_job.process(example, accounts_to=first)
    assert first.is_symlink() and (tmp_path / "b" / "middle.csv").is_symlink()
    assert end.read_text() == WORKED_EXAMPLE_CSV


def test_a_block_device_is_refused(example: Path, tmp_path: Path) -> None:
    """Writing over a disk is never what `--out` means: 73, and the node stays."""
    node = tmp_path / "disk"
    try:
        os.mknod(node, stat.S_IFBLK | 0o600, os.makedev(7, 200))
    except OSError as e:
        pytest.skip(f"cannot make a device node here: {e}")
    with pytest.raises(OutputError, match="character device"):
        accounts_job.process(example, accounts_to=node, accounts_format="csv")
    assert stat.S_ISBLK(node.lstat().st_mode)
    assert listing(tmp_path) == {"in", "disk"}


# ---------------------------------------------------------------------------- item 7: collisions


def _pair(first: str, second: str):
    def setup(tmp_path: Path, example: Path) -> dict[str, Path]:
        shared = tmp_path / "out" / "x.csv"  # a summary may have any name
        return {first: shared, second: shared}

    return setup


def _relative_and_absolute(tmp_path: Path, example: Path) -> dict[str, object]:
    os.chdir(tmp_path / "out")  # the test's monkeypatch.chdir puts it back
    return {"accounts_to": "a.csv", "rejects_to": f"{tmp_path / 'out'}/./a.csv"}


def _through_a_link(tmp_path: Path, example: Path) -> dict[str, Path]:
    (tmp_path / "out" / "link.csv").symlink_to(tmp_path / "out" / "a.csv")
    return {"accounts_to": tmp_path / "out" / "a.csv", "events_to": tmp_path / "out" / "link.csv"}


def _existing_through_a_link(tmp_path: Path, example: Path) -> dict[str, Path]:
    write(tmp_path / "out" / "a.csv", "old\n")
    return _through_a_link(tmp_path, example)


def _the_input(tmp_path: Path, example: Path) -> dict[str, Path]:
    return {"accounts_to": example}


def _the_input_through_a_link(tmp_path: Path, example: Path) -> dict[str, Path]:
    (tmp_path / "out" / "in.csv").symlink_to(example)
    return {"rejects_to": tmp_path / "out" / "in.csv"}


def _the_input_through_a_hard_link(tmp_path: Path, example: Path) -> dict[str, Path]:
    os.link(example, tmp_path / "out" / "in.csv")
    return {"events_to": tmp_path / "out" / "in.csv"}


def _the_input_through_its_folder(tmp_path: Path, example: Path) -> dict[str, Path]:
    (tmp_path / "out" / "folder").symlink_to(example.parent)
    return {"accounts_to": tmp_path / "out" / "folder" / example.name}


COLLISIONS = {
    "accounts_and_rejects": _pair("accounts_to", "rejects_to"),
    "accounts_and_events": _pair("accounts_to", "events_to"),
    "accounts_and_summary": _pair("accounts_to", "summary_to"),
    "rejects_and_events": _pair("rejects_to", "events_to"),
    "rejects_and_summary": _pair("rejects_to", "summary_to"),
    "events_and_summary": _pair("events_to", "summary_to"),
    "relative_and_absolute": _relative_and_absolute,
    "through_a_link": _through_a_link,
    "existing_through_a_link": _existing_through_a_link,
    "the_input": _the_input,
    "the_input_through_a_link": _the_input_through_a_link,
    "the_input_through_a_hard_link": _the_input_through_a_hard_link,
    "the_input_through_its_folder": _the_input_through_its_folder,
}


@pytest.mark.parametrize("case", COLLISIONS.values(), ids=COLLISIONS.keys())
def test_outputs_that_collide_are_a_usage_error_before_anything_is_opened(
    case, tmp_path: Path, example: Path, outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    outputs = case(tmp_path, example)
    before = contents(outdir)
    with pytest.raises(UsageError, match="would"):
        accounts_job.process(example, **outputs)
    assert example.read_text() == WORKED_EXAMPLE
    assert listing(example.parent) == {example.name}
    assert contents(outdir) == before  # nothing written, not even a temporary file


@pytest.mark.parametrize(
    "args",
    [
        ["--out", "{out}/a.csv", "--summary", "{out}/a.csv"],
        ["--out", "{input}"],
    ],
    ids=["out_summary", "out_input"],
)
def test_colliding_paths_exit_2_from_the_command_line(
    example: Path, outdir: Path, args: list[str]
) -> None:
    args = [a.format(out=outdir, input=example) for a in args]
    done = run_script("run", example, *args)
    assert done.returncode == 2
    assert done.stdout == b""
    assert "would" in one_error_line(done.stderr)
    assert listing(outdir) == set()
    assert example.read_text() == WORKED_EXAMPLE


# ---------------------------------------------------------------------------- rollback


def test_a_failing_rename_puts_back_what_the_other_outputs_replaced(
    example: Path, tmp_path: Path
) -> None:
    """Earlier runs' outputs at every name but the events'; the events' rename fails last
    (a folder appeared there during the run): every other output is back to the earlier
    run's bytes, the one behind a symlink included, and no temporary file is left."""
    folder, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    folder.mkdir(), elsewhere.mkdir()
    outputs = {
        "accounts_to": write(folder / "a.csv", "old accounts\n"),
        "summary_to": folder / "s.json",
        "rejects_to": write(folder / "r.parquet", "old rejects\n"),
        "events_to": folder / "e.csv",
    }
    write(elsewhere / "s.json", "old summary\n")
    outputs["summary_to"].symlink_to(elsewhere / "s.json")
    events = outputs["events_to"]

    def progress(_pass: str, _nbytes: int) -> None:
        events.mkdir(exist_ok=True)
        (events / "keep").touch()  # not empty: no rename replaces it

    with pytest.raises(OutputError, match=r"e\.csv"):
        accounts_job.process(example, progress=progress, **outputs)
    assert (folder / "a.csv").read_text() == "old accounts\n"
    assert (folder / "r.parquet").read_text() == "old rejects\n"
    assert (folder / "s.json").is_symlink()
    assert (elsewhere / "s.json").read_text() == "old summary\n"
    assert listing(folder) == {"a.csv", "r.parquet", "e.csv", "s.json"}
    assert listing(events) == {"keep"}
    assert listing(elsewhere) == {"s.json"}


# ---------------------------------------------------------------------------- item 11: fsync


def test_outputs_and_their_folders_are_synced_before_the_state_commits(
    example: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every output file is fsynced before its rename, and its folder after: all before
    the state's commit, so a power loss cannot leave a state that says "applied" with
    that night's outputs gone (docs/rules.md §6.1)."""
    calls: list[tuple[int, int] | str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        calls.append((st.st_dev, st.st_ino))
        real_fsync(fd)

    real_commit = accounts_job.state.night.Night.commit

    def commit(self, *args, **kwargs):
        calls.append("state")
        return real_commit(self, *args, **kwargs)

    accounts_job.init_state(tmp_path / "state")
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(accounts_job.state.night.Night, "commit", commit)
    a, b, links, d = (tmp_path / name for name in ("a", "b", "links", "d"))
    for folder in (a, b, links, d):
        folder.mkdir()
    (links / "s.json").symlink_to(d / "s.json")
    outputs = {
        "accounts_to": a / "accounts.parquet",
        "rejects_to": b / "rejects.csv",
        "events_to": b / "events.csv",
        "summary_to": links / "s.json",
    }
    accounts_job.process(example, state=tmp_path / "state", **outputs)

    def key(path: Path) -> tuple[int, int]:
        st = os.stat(path)
        return (st.st_dev, st.st_ino)

    assert "state" in calls
    state_at = calls.index("state")
    for path in outputs.values():
        file_at = calls.index(key(path))  # its inode: fsynced under its temporary name
        folder_at = calls.index(key(path.resolve().parent), file_at)  # after the file's
        assert file_at < folder_at < state_at, path
    assert key(links) not in calls[:state_at]  # the link's folder: no rename there


# ---------------------------------------------------------------------------- item 12: full disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs mounted in the test's folder (root only), unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "small"
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Fill the disk under `folder` to the last byte with one file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
    return filler


def test_a_full_disk_exits_73_and_leaves_nothing(tmp_path: Path, small_disk: Path) -> None:
    """The accounts of 60,000 clients (about 2 MB of CSV) do not fit a 1 MiB disk: status
    73, an output cannot be written (not 70, a bug), one line, and the disk as it was."""
    source = deposits(tmp_path / "in.csv", 60_000, clients=60_000)
    done = run_script("run", source, "--out", small_disk / "accounts.csv")
    assert done.returncode == 73, done.stderr
    line = one_error_line(done.stderr)
    assert "accounts.csv" in line and os.strerror(errno.ENOSPC) in line
    assert listing(small_disk) == set()


@pytest.mark.parametrize(
    ("option", "fmt"),
    [(o, f) for o in OUTPUTS[:3] for f in ("csv", "parquet")] + [("summary_to", "csv")],
)
def test_each_output_on_a_full_disk_is_an_output_error(
    example: Path, tmp_path: Path, small_disk: Path, option: str, fmt: str
) -> None:
    """Each output alone on a disk with no byte left; the others elsewhere, with an
    earlier run's content: OutputError, and every folder as it was."""
    elsewhere = tmp_path / "elsewhere"
    outputs = {
        o: write(elsewhere / f"{o}.{'json' if o == 'summary_to' else fmt}", f"old {o}\n")
        for o in OUTPUTS
    }
    outputs[option] = small_disk / f"out.{'json' if option == 'summary_to' else fmt}"
    fill(small_disk)
    with pytest.raises(OutputError, match=r"out\.") as raised:
        accounts_job.process(example, batch_size=2, **outputs)
    assert os.strerror(errno.ENOSPC) in str(raised.value)
    assert listing(small_disk) == {"filler"}
    for o, path in outputs.items():
        if o != option:
            assert path.read_text() == f"old {o}\n"
    assert temporary(elsewhere) == set()


def test_a_read_only_disk_exits_73(example: Path, small_disk: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    done = run_script("run", example, "--out", small_disk / "a.csv")
    assert done.returncode == 73
    assert os.strerror(errno.EROFS) in one_error_line(done.stderr)


def test_a_reader_that_goes_away_is_an_output_error(example: Path, tmp_path: Path) -> None:
    """Events to a FIFO whose reader reads a little and leaves: the job cannot write its
    output (73), and the other outputs do not appear."""
    source = deposits(tmp_path / "in.csv", 20_000)
    fifo = tmp_path / "events"
    os.mkfifo(fifo)

    def read_a_little() -> None:
        with open(fifo, "rb") as f:
            f.read(1000)

    reader = threading.Thread(target=read_a_little, daemon=True)
    reader.start()
    outdir = tmp_path / "out"
    outdir.mkdir()
    with pytest.raises(OutputError, match=os.strerror(errno.EPIPE)):
        accounts_job.process(source, batch_size=500, events_to=fifo, accounts_to=outdir / "a.csv")
    reader.join(timeout=60)
    assert listing(outdir) == set()


# ---------------------------------------------------------------------------- item 10: litter


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporary_files_are_removed_and_live_ones_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead, me = _dead_pid(), os.getpid()
    live = AtomicFile(tmp_path / "live.csv")  # a run's own, locked
    young = f".young.csv.{TEMP_MARK}-{me}-abcd1234.tmp"  # unlocked, its pid running
    stale = {f".a.csv.{TEMP_MARK}-{dead}-abcd1234.tmp", f".r.pq.{TEMP_MARK}-{dead}-x_y9z000.old"}
    kept = {
        young,
        live.tmp.name,
        ".a.csv.k3j4h5g6.tmp",  # not ours: no mark
        "a.csv",
        f"{TEMP_MARK}-{dead}-abcd1234.tmp",  # not hidden
        f".link.{TEMP_MARK}-{dead}-abcd1234.tmp",  # a symlink: never followed, kept
    }
    for name in stale | kept - {live.tmp.name, f".link.{TEMP_MARK}-{dead}-abcd1234.tmp"}:
        write(tmp_path / name, "x")
    (tmp_path / f".link.{TEMP_MARK}-{dead}-abcd1234.tmp").symlink_to(tmp_path / "a.csv")

    assert {p.name for p in remove_stale(tmp_path)} == stale
    assert listing(tmp_path) == kept
    # A running pid that may have been taken over by a new process: stale once old.
    monkeypatch.setattr(accounts_job.io.writers, "STALE_AFTER_SECONDS", -1.0)
    assert {p.name for p in remove_stale(tmp_path)} == {young}
    assert live.tmp.exists()  # locked: never taken for a leftover
    live.discard()
    assert listing(tmp_path) == kept - {young, live.tmp.name}


def test_temporary_files_carry_the_mark_and_the_pid(tmp_path: Path) -> None:
    f = AtomicFile(tmp_path / "accounts.csv")
    try:
        assert f.tmp.parent == tmp_path
        assert f.tmp.name.startswith(f".accounts.csv.{TEMP_MARK}-{os.getpid()}-")
        assert f.tmp.name.endswith(".tmp")
    finally:
        f.discard()
    assert listing(tmp_path) == set()


def start_run(*args: object) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(console_script()), "run", *map(str, args)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for(condition, timeout: float = 120.0) -> bool:
    """Poll `condition` until it holds (True) or `timeout` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def blocked_writing(pid: int) -> bool:
    """The process sleeps in a write to a full pipe (Linux's /proc/PID/wchan)."""
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/wchan").read_text().endswith("pipe_write")
    return False


@pytest.mark.parametrize(
    ("signo", "message"),
    [
        (signal.SIGTERM, "stopped by SIGTERM"),
        (signal.SIGHUP, "stopped by SIGHUP"),
        (signal.SIGINT, "interrupted"),
    ],
    ids=["SIGTERM", "SIGHUP", "SIGINT"],
)
def test_a_signal_mid_run_cleans_up(tmp_path: Path, signo: int, message: str) -> None:
    """A run stopped in the middle (its events stuck on a FIFO nobody reads, its other
    outputs open): exit 128 + signo, one line, no output and no temporary file."""
    source = deposits(tmp_path / "in.csv", 20_000)
    out = tmp_path / "out"
    out.mkdir()
    fifo = tmp_path / "events"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # there, and never reading
    try:
        run = start_run(
            source, "--batch-size", "500", "--events", fifo, "--out", out / "a.csv",
            "--rejects", out / "r.parquet", "--summary", out / "s.json",
        )  # fmt: skip
        try:
            assert wait_for(lambda: len(temporary(out)) == 3 or run.poll() is not None)
            # Where the kernel does not tell (no wchan), ten seconds fill the pipe.
            wait_for(lambda: blocked_writing(run.pid) or run.poll() is not None, timeout=10)
            assert run.poll() is None, run.stderr.read() if run.stderr else ""
            run.send_signal(signo)
            _, stderr = run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
    finally:
        os.close(reader)
    assert run.returncode == 128 + signo, stderr
    assert one_error_line(stderr) == f"accounts-job: error: {message}"
    assert listing(out) == set()


def _kill_runs_and_clean_up(tmp_path: Path, kills: int) -> dict[str, int]:
    """SIGKILL `kills` runs at random moments once their outputs are open; after each,
    a small run with one output in the same folder. Returns the counts."""
    source = deposits(tmp_path / "in.csv", 400_000)
    small = write(tmp_path / "small.csv", WORKED_EXAMPLE)
    out = tmp_path / "out"
    out.mkdir()
    rng = random.Random(15)
    counts = {"kills": 0, "left_temporary_files": 0, "temporary_files": 0, "finished_first": 0}
    for k in range(kills):
        run = start_run(
            source, "--out", out / "a.csv", "--rejects", out / "r.csv",
            "--events", out / "e.parquet", "--summary", out / "s.json", "-q",
        )  # fmt: skip
        try:
            assert wait_for(lambda run=run: temporary(out) or run.poll() is not None)
            time.sleep(0 if k == 0 else rng.uniform(0, 1.0))
            run.kill()
            run.communicate(timeout=120)
        finally:
            if run.poll() is None:
                run.kill()
        if run.returncode == -signal.SIGKILL:
            counts["kills"] += 1
        else:
            counts["finished_first"] += 1
        left = temporary(out)
        counts["left_temporary_files"] += bool(left)
        counts["temporary_files"] += len(left)
        done = run_script("run", small, "--out", out / "next.csv", "-q")
        assert done.returncode == 0, done.stderr
        assert temporary(out) == set(), k
        assert (out / "next.csv").read_text() == WORKED_EXAMPLE_CSV
    return counts


def test_a_killed_runs_temporary_files_are_removed_by_the_next_run(tmp_path: Path) -> None:
    counts = _kill_runs_and_clean_up(tmp_path, kills=2)
    assert counts["left_temporary_files"] >= 1, counts  # the first kill, at least


@pytest.mark.slow
def test_many_killed_runs_leave_nothing_after_the_next_run(tmp_path: Path) -> None:
    counts = _kill_runs_and_clean_up(tmp_path, kills=40)
    print(counts)
    assert counts["left_temporary_files"] >= 1, counts
