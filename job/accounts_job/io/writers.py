"""Writing results: accounts, rejects and events, as CSV or Parquet, whole or not at all.

What an output names decides how it is written (docs/rules.md §6.1):

- A file, or a name not yet taken: written to a temporary file in the same folder and
  renamed onto the name only when the run succeeded, so a reader (or the next night's
  job) never sees half a file. A symlink is followed: its target is replaced, in the
  target's own folder, and the link stays a link.
- A stream: `-` (stdout), a character device (/dev/null, a terminal), a FIFO, or a file
  this process holds open (/dev/stdout, /dev/fd/N): nothing can be renamed onto it, so
  it is written directly, and /dev/null stays a device.
- A URL (io/source.py): a local temporary file, uploaded by `commit`.

The temporary file is created before any work starts, so an unwritable path fails in a
second, not after an hour of reading. Its name says whose it is,
`.NAME.accounts-job-PID-XXXXXXXX.tmp`, and its run holds a lock on it until the end: a
later run that opens an output in the same folder removes those left by runs that are
gone (killed, or the machine went down), see `remove_stale`.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Literal, Union

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from ..errors import OutputError, UsageError
from .rawtext import escape_array
from .schemas import EVENTS_ARROW, REJECTS_CSV_ARROW, REJECTS_FILE_ARROW, with_file_column
from .source import is_url, upload

if TYPE_CHECKING:
    import polars as pl

# The accounts as the engine makes them (Arrow) or as the API returns them (Polars).
Accounts = Union[pa.Table, "pl.DataFrame"]

Format = Literal["csv", "parquet"]
_SUFFIXES: dict[str, Format] = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}

# `-` as an output: this process's stdout.
STDOUT = "-"

# The temporary files of a run: `.NAME.accounts-job-PID-XXXXXXXX.tmp` while it writes,
# `.NAME.accounts-job-PID-XXXXXXXX.old` for the file it replaces while it commits.
TEMP_MARK = "accounts-job"
_TEMP_NAME = re.compile(r"^\..*\.accounts-job-(?P<pid>\d+)-[a-z0-9_]+\.(?:tmp|old)$")
# A temporary file whose lock nobody holds is left over once its pid is gone. A pid that
# is running may be a new process that took over a dead run's number, or the run itself
# between creating the file and locking it (a few microseconds): its files are left over
# once they are this many seconds old.
STALE_AFTER_SECONDS = 60.0
# Room for the temporary name's own parts within a file name's 255 bytes.
_NAME_ROOM = 200


def format_for(path: str | Path, override: str | None = None) -> Format:
    """The output format: `override` if given, else from the file suffix."""
    if override is not None:
        if override not in ("csv", "parquet"):
            raise UsageError(f"unknown format {override!r}: use csv or parquet")
        return override  # type: ignore[return-value]
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise UsageError(
            f"cannot tell the format of {path} from its suffix: "
            "name it .csv or .parquet, or pass --format"
        )
    return _SUFFIXES[suffix]


def output_format(target: str | Path, override: str | None = None) -> Format:
    """The format of an output: as `format_for`, but a stream (`-`, a device, a FIFO)
    whose name has no known suffix takes CSV, as stdout does."""
    stream = str(target) == STDOUT or (not is_url(target) and _names_a_stream(target))
    if override is None and Path(target).suffix.lower() not in _SUFFIXES and stream:
        return "csv"
    return format_for(target, override)


# ---------------------------------------------------------------------------- targets


def _follow(path: str | Path) -> tuple[str, bool]:
    """The file `path` names once its symlinks are followed (the last one may dangle), and
    whether that took it into /proc: /dev/stdout and /dev/fd/N lead to a process's open
    file there, which is written as it is, never replaced."""
    p = os.fspath(path)
    if not os.path.isabs(p):
        p = os.path.join(os.getcwd(), p)
    for _ in range(40):  # as the kernel's own limit of links followed
        head, tail = os.path.split(p)
        folder = os.path.realpath(head)
        if folder == "/proc" or folder.startswith("/proc/"):
            return os.path.join(folder, tail), True
        if tail in ("", ".", ".."):
            return os.path.realpath(p), False
        p = os.path.join(folder, tail)
        try:
            link = os.readlink(p)
        except OSError:  # not a link, or nothing there yet
            return p, False
        p = os.path.join(folder, link)
    raise OutputError(f"cannot write {path}: too many levels of symbolic links")


def _names_a_stream(path: str | Path) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or _follow(path)[1]


def _own_fd(resolved: str) -> int | None:
    """The file descriptor of this process that /proc/PID/fd/N names, if it is ours."""
    m = re.fullmatch(r"/proc/(?P<pid>\d+)(?:/task/\d+)?/fd/(?P<fd>\d+)", resolved)
    if m is None or int(m["pid"]) != os.getpid():
        return None
    return int(m["fd"])


def _reason(e: OSError) -> str:
    return os.strerror(e.errno) if e.errno else str(e)


@contextlib.contextmanager
def _writing(path: object) -> Iterator[None]:
    """An OSError while an output is written (a full disk, a quota, a read-only file
    system, a reader that went away) is that output failing: OutputError, status 73."""
    try:
        yield
    except OSError as e:
        raise OutputError(f"cannot write {path}: {_reason(e)}") from None


def open_output(target: str | Path, *, reversible: bool = False) -> Output:
    """The output for a path: `-`, a device, a FIFO or an open file of this process is a
    `StreamFile`; anything else (a file, a name not yet taken, a URL) an `AtomicFile`.

    Parameters
    ----------
    target : str or Path
        The output's name, as given.
    reversible : bool
        Keep what a file replaces until `finish`, so `rollback` can put it back.

    Raises
    ------
    OutputError
        The target is a folder, a block device or a socket, its folder is missing, or
        it cannot be created.
    """
    if is_url(target):
        return AtomicFile(target, reversible=reversible)
    if str(target) == STDOUT:
        return StreamFile.stdout()
    resolved, in_proc = _follow(target)
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        if in_proc:  # /dev/fd/N of a descriptor that is not open, or a new name in /proc
            folder = os.path.dirname(resolved)
            raise OutputError(f"cannot write {target}: cannot create a file in {folder}") from None
        return AtomicFile(target, reversible=reversible)
    except OSError as e:
        raise OutputError(f"cannot write {target}: {_reason(e)}") from None
    if stat.S_ISDIR(mode):
        raise OutputError(f"cannot write {target}: it is a directory")
    if stat.S_ISCHR(mode) or stat.S_ISFIFO(mode) or in_proc:
        return StreamFile.at(target, resolved, mode)
    if not stat.S_ISREG(mode):
        raise OutputError(
            f"cannot write {target}: it is neither a file, a character device nor a FIFO"
        )
    return AtomicFile(target, reversible=reversible)


class Output:
    """Where one output goes, from before the run to its commit.

    The job writes an output in one go with `write_with`, or streams into `open()`;
    then `commit` makes it visible, and `finish` lets go of what `rollback` would have
    needed. `discard` removes every trace of an output not committed.
    """

    path: str | Path
    # The order of commits (job.py): files first, as they can be taken back; then the
    # uploads; then the streams, which cannot; a stream written in one go last, so that
    # it does not cut into a stream written as the run went.
    phase: int = 0
    reversible: bool = False

    def write_with(self, write: Callable[[Path | IO[bytes]], None]) -> None:
        """Write the output's content: `write(sink)` gets a path or a binary stream."""
        raise NotImplementedError

    def open(self) -> IO[bytes]:
        """A binary stream to write the output to as the run goes; the output closes it."""
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        """Undo `commit` where it can: put back the file it replaced, or remove it."""

    def finish(self) -> None:
        """The commit stands: let go of what `rollback` would have needed."""

    def discard(self) -> None:
        raise NotImplementedError


class AtomicFile(Output):
    """A temporary file beside `path` (beside its target, for a symlink), renamed onto it
    by `commit`, removed by `discard`.

    A URL `path` (io/source.py) gets a local temporary file instead, uploaded by
    `commit`. The temporary file is locked while this object holds it, so another run
    never takes it for a leftover.

    Parameters
    ----------
    path : str or Path
        The output's name; a symlink is followed to its target, which is replaced.
    reversible : bool
        Keep the file `commit` replaces, under a temporary name, until `finish`, so that
        `rollback` can put it back.
    """

    def __init__(self, path: str | Path, *, reversible: bool = False) -> None:
        self.reversible = reversible
        self._lock_fd: int | None = None
        self._stream: IO[bytes] | None = None
        self._backup: Path | None = None
        self._backup_fd: int | None = None
        self._renamed = False
        self.url = str(path) if is_url(path) else None
        if self.url is not None:
            self.path: str | Path = self.url
            self.phase = 1
            self.target: Path | None = None
            folder = Path(tempfile.gettempdir())
            name = PurePosixPath(self.url).name or "output"
        else:
            self.path = Path(path)
            self.target = Path(_follow(path)[0])
            if self.target.is_dir():
                raise OutputError(f"cannot write {path}: it is a directory")
            folder, name = self.target.parent, self.target.name
        remove_stale(folder)
        prefix = f".{name[:_NAME_ROOM]}.{TEMP_MARK}-{os.getpid()}-"
        try:
            fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
        except FileNotFoundError:
            # The folder may exist and still refuse new files (/proc): say which it is.
            if folder.is_dir():
                raise OutputError(
                    f"cannot write {path}: cannot create a file in {folder}"
                ) from None
            raise OutputError(f"cannot write {path}: folder {folder} does not exist") from None
        except OSError as e:
            raise OutputError(f"cannot write {path}: {_reason(e)}") from None
        self._lock_fd = fd
        self.tmp = Path(tmp)
        # Blocking: another run that found the file unlocked holds it for a moment.
        fcntl.flock(fd, fcntl.LOCK_EX)

    @property
    def folder(self) -> Path | None:
        """The folder the rename changes (None for a URL)."""
        return None if self.target is None else self.target.parent

    def write_with(self, write: Callable[[Path | IO[bytes]], None]) -> None:
        with _writing(self.path):
            write(self.tmp)

    def open(self) -> IO[bytes]:
        if self._stream is None:
            with _writing(self.path):
                self._stream = open(self.tmp, "wb")  # noqa: SIM115 - closed by commit, discard
        return self._stream

    def commit(self) -> None:
        """Make the file visible: fsync it, then rename it onto its name (or upload it).

        Raises
        ------
        OutputError
            It cannot be written or renamed; the temporary file is gone, and the name
            holds what it held before.
        """
        if self.url is not None:
            try:
                with _writing(self.path):
                    self._close_stream()
                upload(self.tmp, self.url)
            finally:
                self.discard()
            return
        assert self.target is not None and self._lock_fd is not None
        try:
            with _writing(self.path):
                self._close_stream()
                _fsync(self._lock_fd)
                os.fchmod(self._lock_fd, 0o666 & ~_umask())
                if self.reversible:
                    self._keep_previous()
                os.replace(self.tmp, self.target)
        except BaseException:
            self.discard()
            raise
        self._renamed = True
        if not self.reversible:
            self.finish()

    def _keep_previous(self) -> None:
        """The file the rename will replace, kept under a temporary name (a second link
        to it, so the name holds a whole file at every moment) and locked, as ours."""
        assert self.target is not None
        try:
            if not stat.S_ISREG(os.lstat(self.target).st_mode):
                return  # nothing to keep; a folder fails the rename
        except FileNotFoundError:
            return
        backup = self.tmp.with_suffix(".old")
        try:
            os.link(self.target, backup)
        except OSError:  # a file system without hard links: a copy does the same
            shutil.copyfile(self.target, backup)
        self._backup = backup
        self._backup_fd = os.open(backup, os.O_RDONLY)
        fcntl.flock(self._backup_fd, fcntl.LOCK_EX)

    def rollback(self) -> None:
        if not self._renamed:
            return
        assert self.target is not None
        self._renamed = False
        backup, self._backup = self._backup, None
        try:
            if backup is not None:
                os.replace(backup, self.target)
            else:
                os.unlink(self.target)
        finally:
            # Failed or not, a backup is not removed now: it may hold the only copy.
            self._release()

    def finish(self) -> None:
        if self._backup is not None:
            with contextlib.suppress(OSError):  # left over at worst, for a later run
                os.unlink(self._backup)
            self._backup = None
        self._release()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._close_stream()
        if not self._renamed:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.tmp)
        self.finish()

    def _close_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.close()

    def _release(self) -> None:
        for fd in (self._backup_fd, self._lock_fd):
            if fd is not None:
                os.close(fd)  # and with it the lock
        self._backup_fd = self._lock_fd = None


class StreamFile(Output):
    """An output that cannot be replaced, written directly: `-` (stdout), a character
    device, a FIFO, a process's open file; or a binary stream the caller gives.

    What is streamed to it (rejects, events) goes as the run goes; what is written in
    one go (accounts, summary) goes at `commit`. Neither can be taken back.
    """

    def __init__(self, path: str | Path, stream: IO[bytes], *, owned: bool) -> None:
        self.path = path
        self.phase = 3
        self._stream: IO[bytes] | None = stream
        self._owned = owned
        self._write: Callable[[Path | IO[bytes]], None] | None = None

    @classmethod
    def stdout(cls) -> StreamFile:
        """This process's stdout (`-`), through a descriptor of its own."""
        return cls.at(STDOUT, "", stat.S_IFIFO)

    @classmethod
    def at(cls, path: str | Path, resolved: str, mode: int) -> StreamFile:
        """Open `path` (`resolved`, its symlinks followed; `mode`, what it is) for writing
        as it is: a FIFO waits here for its reader."""
        own = 1 if path == STDOUT else _own_fd(resolved)
        try:
            if own is not None:
                # The descriptor itself, not the file it points to opened anew: its
                # offset and append mode stay, so `>> log` still appends.
                fd = os.dup(own)
            else:
                flags = os.O_WRONLY | os.O_NOCTTY | (os.O_TRUNC if stat.S_ISREG(mode) else 0)
                fd = os.open(path, flags)
        except OSError as e:
            raise OutputError(f"cannot write {path}: {_reason(e)}") from None
        return cls(path, open(fd, "wb"), owned=True)

    @classmethod
    def of(cls, stream: IO[bytes], name: str = "stdout") -> StreamFile:
        """A binary stream of the caller's (such as ``sys.stdout.buffer``), left open."""
        return cls(name, stream, owned=False)

    def write_with(self, write: Callable[[Path | IO[bytes]], None]) -> None:
        self._write = write

    def open(self) -> IO[bytes]:
        assert self._stream is not None
        self.phase = 2
        _flush_stdout()
        return self._stream

    def commit(self) -> None:
        assert self._stream is not None
        try:
            with _writing(self.path):
                _flush_stdout()
                if self._write is not None:
                    self._write(self._stream)
                self._stream.flush()
                _sync_if_file(self._stream)
        finally:
            self.discard()

    def discard(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None and self._owned:
            with contextlib.suppress(OSError, ValueError):
                stream.close()


def _flush_stdout() -> None:
    # What Python holds for stdout goes before what this output writes to the same place.
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()


def _sync_if_file(stream: IO[bytes]) -> None:
    """fsync a stream that ends in a regular file (`> file`); a pipe or a device has
    nothing to sync."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    if stat.S_ISREG(os.fstat(fd).st_mode):
        _fsync(fd)


def _fsync(fd: int) -> None:
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP):  # a file system that cannot
            raise


def sync_folder(folder: Path) -> None:
    """fsync a folder, so the renames into it survive a power loss."""
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as e:
        raise OutputError(f"cannot sync folder {folder}: {_reason(e)}") from None
    try:
        with _writing(f"folder {folder}"):
            _fsync(fd)
    finally:
        os.close(fd)


def remove_stale(folder: Path) -> list[Path]:
    """Remove the temporary files of runs that are gone from `folder`; return them.

    A run's temporary file (`.NAME.accounts-job-PID-XXXXXXXX.tmp`, or `.old` for a file
    its commit replaces) is locked by the run as long as it lives. One that nobody
    holds is left over from a run that was killed or lost its machine: removed when its
    pid is not running here, or when it is older than `STALE_AFTER_SECONDS` (its pid
    now a new process's). Anything else, and a file this process may not remove, stays.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed  # the caller's own open says what is wrong with the folder
    for entry in entries:
        m = _TEMP_NAME.match(entry.name)
        if m is None:
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # its run is alive
            if process_running(int(m["pid"])) and time.time() - st.st_ctime < STALE_AFTER_SECONDS:
                continue
            with contextlib.suppress(OSError):
                # The name still the file we hold: never a newer file of the same name.
                if os.stat(entry.path, follow_symlinks=False).st_ino == st.st_ino:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
        finally:
            os.close(fd)
    return removed


def process_running(pid: int) -> bool:
    """Whether process `pid` is alive (another user's counts): the clean-ups of a dead
    run's leftovers (temporary outputs here, spool folders in io/spool.py) ask it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------- collisions


def _stat_key(st: os.stat_result) -> tuple[tuple[object, ...], bool]:
    """A file's identity, and whether outputs may share it: a character device (/dev/null,
    a terminal) keeps nothing, so it may take several; anything else takes one."""
    if stat.S_ISCHR(st.st_mode):
        return ("device", st.st_rdev), True
    return ("file", st.st_dev, st.st_ino), False


def _output_key(target: object) -> tuple[tuple[object, ...], bool] | None:
    if target is None:
        return None
    if isinstance(target, TableWriter):
        target = target.file.path
    if not isinstance(target, (str, Path)):  # a stream of the caller's
        try:
            return _stat_key(os.fstat(target.fileno()))  # type: ignore[attr-defined]
        except (AttributeError, OSError, ValueError):
            return None
    if str(target) == STDOUT:
        with contextlib.suppress(OSError):
            return _stat_key(os.fstat(1))
        return None
    if is_url(target):
        return ("url", str(target)), False
    try:
        return _stat_key(os.stat(target))
    except OSError:
        return ("path", os.path.normcase(_follow(target)[0])), False


def check_distinct(source: str | Path, outputs: dict[str, object]) -> None:
    """Refuse outputs that would overwrite the input or one another (docs/rules.md §6.1).

    Two names are the same file when they lead to it through symlinks or hard links
    (compared by device and inode, as ``os.path.samefile``), or to the same new name.
    A character device such as /dev/null may take several outputs.

    Parameters
    ----------
    source : str or Path
        The input.
    outputs : dict
        Each output by what it holds ("accounts", "rejects", ...): a path, `-`, a URL,
        a writer, a stream, or None.

    Raises
    ------
    UsageError
        The input or another output is named again.
    """
    taken: dict[tuple[object, ...], str] = {}
    input_key = None
    if not is_url(source):
        with contextlib.suppress(OSError):
            st = os.stat(source)
            if stat.S_ISREG(st.st_mode):
                input_key = _stat_key(st)[0]
    for what, target in outputs.items():
        found = _output_key(target)
        if found is None or found[1]:
            continue
        key = found[0]
        name = target.file.path if isinstance(target, TableWriter) else target
        if not isinstance(name, (str, Path)):
            name = "stdout"
        if key == input_key:
            raise UsageError(f"the {what} would overwrite the input {source}: name another file")
        if key in taken:
            raise UsageError(
                f"the {taken[key]} and the {what} would both be written to {name}: "
                "give each output a file of its own"
            )
        taken[key] = what


# ---------------------------------------------------------------------------- tables


def _arrow(frame: pa.Table | pl.DataFrame) -> pa.Table:
    return frame if isinstance(frame, pa.Table) else frame.to_arrow()


def write_csv(table: pa.Table, out: IO[bytes] | str | Path, header: bool = True) -> None:
    """CSV as docs/rules.md §5 has it: a plain header line, a Decimal(38, 4) with all four
    places (1.5000, -0.2500), booleans as true/false, quotes only where needed."""
    options = pcsv.WriteOptions(include_header=False, quoting_style="needed")
    if isinstance(out, (str, Path)):
        with open(out, "wb") as f:
            write_csv(table, f, header)
        return
    if header:
        out.write((",".join(table.column_names) + "\n").encode())
    pcsv.write_csv(table, out, options)


def write_bytes(sink: Path | IO[bytes], data: bytes) -> None:
    """`data` to a path or a binary stream, as `Output.write_with` hands them."""
    if isinstance(sink, Path):
        sink.write_bytes(data)
    else:
        sink.write(data)


def write_accounts(accounts: Accounts, path: str | Path | None, fmt: Format | None = None) -> None:
    """Write an accounts table (docs/rules.md §5.1), whole or not at all.

    Parameters
    ----------
    accounts : pyarrow.Table or polars.DataFrame
        The accounts, as ``Result.accounts_table`` or ``Result.accounts`` hold them.
    path : str, Path or None
        Where to write: a file appears whole, by rename (a symlink's target is
        replaced); `-`, a device or a FIFO is written directly (docs/rules.md §6.1).
        None writes CSV to stdout.
    fmt : {"csv", "parquet"}, optional
        The format; by default from the suffix of `path` (.csv, .parquet, .pq).

    Raises
    ------
    UsageError
        The format cannot be told from the suffix, or is unknown.
    OutputError
        The path cannot be written; nothing is left behind.
    """
    if path is None:
        sys.stdout.flush()
        write_csv(_arrow(accounts), sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    fmt = output_format(path, fmt)
    target = open_output(path)
    try:
        target.write_with(lambda sink: write_accounts_to(accounts, sink, fmt))
        target.commit()
    except BaseException:
        target.discard()
        raise


def write_accounts_to(accounts: Accounts, sink: Path | IO[bytes], fmt: Format) -> None:
    if fmt == "csv":
        write_csv(_arrow(accounts), sink)
    else:
        pq.write_table(_arrow(accounts), sink)


class TableWriter:
    """Streams a table to a CSV or Parquet file batch by batch, so rows never pile up in
    memory; the file appears, whole, on `commit`, and `discard` removes every trace.

    Parameters
    ----------
    path : str or Path
        The file to write; its temporary twin is created at once beside it, so a path
        that cannot be written fails before any work. `-`, a device or a FIFO is
        written directly, batch by batch (docs/rules.md §6.1), as CSV unless its name
        ends in .parquet.
    schema : pyarrow.Schema
        The columns every batch is cast to.
    fmt : {"csv", "parquet"}, optional
        By default from the suffix of `path`.
    """

    def __init__(self, path: str | Path, schema: pa.Schema, fmt: Format | None = None) -> None:
        self.format = output_format(path, fmt)
        self.schema = schema
        self.file = open_output(path)
        self._parquet: pq.ParquetWriter | None = None
        self._csv: IO[bytes] | None = None
        try:
            with _writing(self.file.path):
                if self.format == "parquet":
                    # A file by its path: Arrow writes it without Python in between.
                    sink = self.file.tmp if isinstance(self.file, AtomicFile) else self.file.open()
                    self._parquet = pq.ParquetWriter(sink, schema)
                else:
                    self._csv = self.file.open()
                    self._csv.write((",".join(schema.names) + "\n").encode())
        except BaseException:
            self.file.discard()
            raise

    @property
    def path(self) -> str | Path:
        return self.file.path

    @property
    def phase(self) -> int:
        return self.file.phase

    def write(self, batch: pa.Table | pl.DataFrame) -> None:
        """Append a batch with the writer's columns (as the engine or the API has them)."""
        table = _arrow(batch).cast(self.schema)
        if table.num_rows == 0:
            return
        with _writing(self.file.path):
            if self._parquet is not None:
                self._parquet.write_table(table)
            else:
                assert self._csv is not None
                write_csv(table, self._csv, header=False)

    def _close(self) -> None:
        self._csv = None  # the file's own stream: closed by its commit or discard
        if self._parquet is not None:
            parquet, self._parquet = self._parquet, None
            parquet.close()

    def commit(self) -> None:
        """Make the file visible (its footer written, fsynced, renamed into place).

        Raises
        ------
        OutputError
            It cannot be written; nothing is left behind.
        """
        try:
            with _writing(self.file.path):
                self._close()
        except BaseException:
            self.discard()
            raise
        self.file.commit()

    def rollback(self) -> None:
        self.file.rollback()

    def finish(self) -> None:
        self.file.finish()

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self._close()
        self.file.discard()


class RejectsWriter(TableWriter):
    """A file of rejected rows (docs/rules.md §5.2): line, reason, raw.

    Pass one (or a path) as ``process(..., rejects_to=...)``: the job writes it batch by
    batch and commits or discards it with its other outputs. With `files`, a first
    column `file` names each row's input, as a run over several inputs writes it
    (docs/rules.md §5.2). `raw` is the line's exact
    bytes: a plain binary column in Parquet, so readers that predate large types read it
    too; escaped text in CSV (io/rawtext.py: never a spreadsheet formula, and
    ``unescape_raw`` gives the bytes back).
    """

    def __init__(self, path: str | Path, fmt: Format | None = None, files: bool = False) -> None:
        fmt = fmt or output_format(path)
        schema = REJECTS_CSV_ARROW if fmt == "csv" else REJECTS_FILE_ARROW
        super().__init__(path, with_file_column(schema) if files else schema, fmt)

    def write(self, batch: pa.Table | pl.DataFrame) -> None:
        """Append a batch of rejects (line, reason, raw as bytes)."""
        table = _arrow(batch)
        if self.format == "csv":
            at = table.column_names.index("raw")
            table = table.set_column(at, "raw", escape_array(table.column(at)))
        super().write(table)


class EventsWriter(TableWriter):
    """A file of the event stream (docs/rules.md §5.3): line, client, tx, event, amount.

    Pass one (or a path) as ``process(..., events_to=...)``: the job writes it batch by
    batch and commits or discards it with its other outputs. With `files`, a first
    column `file` names each event's input (docs/rules.md §5.3).
    """

    def __init__(self, path: str | Path, fmt: Format | None = None, files: bool = False) -> None:
        super().__init__(path, with_file_column(EVENTS_ARROW) if files else EVENTS_ARROW, fmt)
