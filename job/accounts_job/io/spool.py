"""Inputs that cannot be read twice in place, made into plain local files once per run.

The job reads its input twice (engine/run.py), from a file it can open again. A plain
local CSV is read where it is. Anything else is *spooled*: read once, as a stream,
through its decompressor (io/forms.py tells which), into a file in a temporary folder
that both passes then read (docs/rules.md §2.10):

- a compressed file (gzip, zstd, bzip2, xz), told by its magic bytes, not its name;
- a pipe: `-` (standard input), a FIFO, `/dev/stdin`, a character device;
- a URL (io/source.py: s3://, gs://, https://, file://, ...), read as a stream through
  fsspec, never held in memory.

The temporary folder, `accounts-job-spool-PID-XXXXXXXX` in the system's temporary folder
($TMPDIR), is removed when the run ends, however it ends: a failure, Ctrl-C, SIGTERM or
SIGHUP (cli/app.py turns these into exceptions, so the `finally` here runs). A run
killed outright (SIGKILL, the machine lost) leaves it behind; the next run removes the
folders of runs that are no longer running (`remove_stale_spools`).

A compressed input that is corrupt or cut short fails while it is spooled, before the
first pass: ReadError (exit 74), nothing written, the state untouched.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from ..errors import FormError, InputError, OutputError, ReadError
from .forms import SNIFF_BYTES, Form, check_readable, sniff
from .source import input_size, is_pattern, is_url, open_input
from .writers import process_running

STDIN = "-"
# Bytes read and written at a time while spooling.
CHUNK = 4 << 20
SPOOL_MARK = "accounts-job-spool"
_SPOOL_NAME = re.compile(rf"^{SPOOL_MARK}-(?P<pid>\d+)-[a-z0-9_]+$")

# Reports compressed (as given) bytes read while spooling.
Reading = Callable[[int], None]


@dataclass
class Input:
    """One input of a run, as the passes read it.

    Attributes
    ----------
    name : str
        The input as given: a path, `-`, or a URL.
    form : str
        What it holds (io/forms.py): "csv", or the compression of a CSV.
    path : Path or None
        The plain local file the passes read: the input itself, or its spool file.
        None until `Spools.ready` has made it.
    size : int or None
        The input's bytes as given (compressed, for a compressed input); None for a
        pipe until it is spooled.
    plain_bytes : int or None
        The bytes the passes read (the decompressed size), once known.
    """

    name: str
    form: Form = "csv"
    path: Path | None = None
    size: int | None = None
    plain_bytes: int | None = None

    @property
    def spooled(self) -> bool:
        """Whether the passes read a spool file rather than the input itself."""
        return self.path is not None and self.path != Path(self.name)


def describe(source: str | Path) -> Input:
    """Check an input before any output is opened, and tell its form where that is
    possible without reading it as a stream: a missing or unreadable file is an
    InputError (66), a local file or URL of an unread form (ZIP, Parquet, binary) a
    FormError (65). A pipe is only told when it is read (its bytes can be read once).
    """
    name = str(source)
    if name == STDIN:
        return Input(name, form="csv")
    if is_url(name):
        size = input_size(name)  # InputError when missing
        with open_input(name) as f:
            head = _head(f)
        form = sniff(head)
        check_readable(name, form)
        return Input(name, form=form, size=size)
    try:
        st = os.stat(name)
    except OSError as e:
        raise _input_error(name, e) from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"input is a directory, not a file: {name}")
    if stat.S_ISSOCK(st.st_mode):
        raise InputError(f"input {name} is a socket: give a file, a pipe or `-`")
    if stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode):
        return Input(name, form="csv")  # told when read: opening a FIFO waits for a writer
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"input {name} is not a regular file (a block device?): give a file")
    try:
        with open(name, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as e:
        raise _input_error(name, e) from None
    form = sniff(head)
    check_readable(name, form)
    path = Path(name) if form == "csv" else None
    return Input(name, form=form, path=path, size=st.st_size, plain_bytes=None)


def _head(f: IO[bytes]) -> bytes:
    head = b""
    while len(head) < SNIFF_BYTES:
        more = f.read(SNIFF_BYTES - len(head))
        if not more:
            break
        head += more
    return head


def _input_error(name: str, e: OSError) -> InputError:
    if isinstance(e, FileNotFoundError):
        return InputError(f"input not found: {name}")
    if isinstance(e, PermissionError):
        return InputError(f"input not readable (permission denied): {name}")
    return InputError(f"cannot read input {name}: {e.strerror or e}")


class Spools:
    """The run's temporary folder of spool files: made on first use, removed by `close`
    (a context manager does it on every way out)."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self._parent = Path(folder) if folder is not None else None
        self.folder: Path | None = None
        self._count = 0

    def _new_file(self, name: str) -> Path:
        if self.folder is None:
            parent = self._parent or Path(tempfile.gettempdir())
            remove_stale_spools(parent)
            try:
                self.folder = Path(
                    tempfile.mkdtemp(prefix=f"{SPOOL_MARK}-{os.getpid()}-", dir=parent)
                )
            except OSError as e:
                raise OutputError(
                    f"cannot make a spool folder in {parent} for {name}: "
                    f"{e.strerror or e} (set TMPDIR to a folder with room)"
                ) from None
        self._count += 1
        return self.folder / f"input-{self._count}.csv"

    def ready(self, item: Input, reading: Reading | None = None) -> Input:
        """Make `item` readable by the passes: a plain local file as it is; anything else
        spooled (see the module's docstring). Returns `item`, its `path` set."""
        if item.path is not None:
            if item.plain_bytes is None:
                item.plain_bytes = item.path.stat().st_size
                if reading is not None and item.size:
                    reading(item.size)
            return item
        target = self._new_file(item.name)
        with _open_raw(item.name) as raw:
            counted = _Counted(raw, reading)
            head = counted.peek(SNIFF_BYTES)
            form = sniff(head)
            check_readable(_display(item.name), form)
            item.form = form
            item.plain_bytes = _copy(item.name, form, counted, target)
            item.size = counted.count
        item.path = target
        return item

    def remove(self, item: Input) -> None:
        """Remove `item`'s spool file once both passes are done with it."""
        if item.spooled and item.path is not None:
            with contextlib.suppress(OSError):
                item.path.unlink()

    def close(self) -> None:
        if self.folder is not None:
            folder, self.folder = self.folder, None
            shutil.rmtree(folder, ignore_errors=True)

    def __enter__(self) -> Spools:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _display(name: str) -> str:
    return "standard input" if name == STDIN else name


@contextlib.contextmanager
def _open_raw(name: str) -> Iterator[IO[bytes]]:
    """The input's bytes as given, as a stream."""
    if name == STDIN:
        # The descriptor itself: what the caller piped in, left open for them.
        with open(sys.stdin.fileno(), "rb", buffering=0, closefd=False) as f:
            yield f
        return
    try:
        f = open_input(name)
    except InputError:
        raise
    except OSError as e:
        raise _input_error(name, e) from None
    with f:
        yield f


class _Counted:
    """A raw stream that counts the bytes read from it (the progress bar follows them)
    and can give back its first bytes after looking at them."""

    def __init__(self, raw: IO[bytes], reading: Reading | None) -> None:
        self.raw = raw
        self.reading = reading
        self.count = 0
        self._head = b""

    def peek(self, n: int) -> bytes:
        while len(self._head) < n:
            more = self._raw_read(n - len(self._head))
            if not more:
                break
            self._head += more
        return self._head

    def _raw_read(self, n: int) -> bytes:
        data = self.raw.read(n)
        if data:
            self.count += len(data)
            if self.reading is not None:
                self.reading(len(data))
        return data or b""

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n < 0 or n >= len(self._head):
                data, self._head = self._head, b""
                return data
            data, self._head = self._head[:n], self._head[n:]
            return data
        if n < 0:
            n = CHUNK
        return self._raw_read(n)

    def readinto(self, buffer: memoryview | bytearray) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        pass

    @property
    def closed(self) -> bool:
        return False


def _decompressed(form: Form, raw: _Counted) -> IO[bytes]:
    """A reader of the plain bytes of `raw` (the decompressors chosen by measurement:
    benchmarks/decompress.py)."""
    if form == "gzip":
        from isal import igzip

        return igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[arg-type]
    if form == "zstd":
        return _ZstdFrames(raw)  # type: ignore[return-value]
    # Imported here, as isal is: a run of plain CSV, the common case, never needs them.
    if form == "bz2":
        import bz2

        return bz2.BZ2File(raw, "rb")  # type: ignore[arg-type]
    if form == "xz":
        import lzma

        return lzma.LZMAFile(raw, "rb")  # type: ignore[arg-type]
    return raw  # type: ignore[return-value]


class _ZstdFrames:
    """The plain bytes of one or more zstd frames, one after the other (as `cat a.zst
    b.zst` makes them). zstandard's stream reader ends quietly where the data is cut
    short; this reader says so (EOFError), as the other forms' readers do."""

    _READ = 256 << 10  # compressed bytes at a time: the output of one stays small

    def __init__(self, raw: _Counted) -> None:
        import zstandard

        self._new = zstandard.ZstdDecompressor().decompressobj
        self.raw = raw
        self.frame = self._new()
        self.in_frame = False  # bytes of the current frame were fed
        self.out = b""

    def readinto(self, buffer: memoryview) -> int:
        while not self.out:
            data = self.raw.read(self._READ)
            if not data:
                if self.in_frame:
                    raise EOFError("the zstd data ends inside a frame")
                return 0
            self.out = self._feed(data)
        n = min(len(buffer), len(self.out))
        buffer[:n] = self.out[:n]
        self.out = self.out[n:]
        return n

    def _feed(self, data: bytes) -> bytes:
        parts = []
        while data:
            self.in_frame = True
            parts.append(self.frame.decompress(data))
            if not self.frame.eof:
                break
            data, self.frame, self.in_frame = self.frame.unused_data, self._new(), False
        return b"".join(parts)

    def close(self) -> None:
        pass


_FORM_NAMES = {"gzip": "gzip", "zstd": "zstd", "bz2": "bzip2", "xz": "xz"}


def _copy(name: str, form: Form, raw: _Counted, target: Path) -> int:
    """Write the plain bytes of `raw` to `target`; their count. A read that fails, or
    compressed data that is corrupt or cut short, is a ReadError (74); a spool that
    cannot be written (a full disk) an OutputError (73)."""
    shown = _display(name)
    total = 0
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    try:
        out = open(target, "wb", buffering=0)  # noqa: SIM115 - closed below
    except OSError as e:
        raise OutputError(f"cannot write the spool file {target}: {e.strerror or e}") from None
    with out:
        reader = _decompressed(form, raw)
        try:
            while True:
                try:
                    got = reader.readinto(view)  # type: ignore[attr-defined]
                except (FormError, InputError):
                    raise
                except Exception as e:
                    raise _read_failed(shown, form, e) from None
                if not got:
                    break
                total += got
                try:
                    out.write(view[:got])
                except OSError as e:
                    raise OutputError(
                        f"cannot write the spool file {target} for {shown}: "
                        f"{e.strerror or e} (set TMPDIR to a folder with room)"
                    ) from None
        finally:
            if reader is not raw:
                with contextlib.suppress(Exception):
                    reader.close()
    return total


def _read_failed(name: str, form: Form, e: Exception) -> ReadError:
    reason = str(e) or type(e).__name__
    if form in _FORM_NAMES:
        return ReadError(
            f"reading {name} failed: its {_FORM_NAMES[form]} data is corrupt or cut short "
            f"({reason}); nothing was written"
        )
    return ReadError(f"reading {name} failed: {reason}")


def remove_stale_spools(parent: Path) -> list[Path]:
    """Remove the spool folders in `parent` of runs no longer running; return them."""
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        m = _SPOOL_NAME.match(entry.name)
        if m is None or not entry.is_dir(follow_symlinks=False):
            continue
        pid = int(m["pid"])
        if pid == os.getpid() or process_running(pid):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def expand(sources: Sequence[str | Path]) -> list[str]:
    """The inputs of a run, in order: each source as given, but a name holding a glob
    pattern (`*`, `?`, `[`) that is not itself a file is expanded and sorted (a quoted
    glob: the job expands it, not the shell). A pattern that matches nothing is an
    InputError (66)."""
    import glob

    names: list[str] = []
    for source in sources:
        name = str(source)
        if name != STDIN and not is_url(name) and is_pattern(name) and not os.path.lexists(name):
            found = sorted(p for p in glob.glob(name) if not os.path.isdir(p))
            if not found:
                raise InputError(f"no input matches {name}")
            names.extend(found)
        else:
            names.append(name)
    return names
